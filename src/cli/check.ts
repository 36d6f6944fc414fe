/**
 * `rpa-access check --tenant T --user U --permission R.A [--folder PATH] [--resource Kind/name]
 * [--environment E] [--output json]`: one decision, explained. Exit 0 allowed, 3 denied, 1 error
 * (a malformed question, an unreachable store). A tenant the store does not know is a denial.
 */
import { BUILT_IN_ROLE_NAMES } from '../model/catalog.js';
import { parseRequest, tenantNotFound, TenantIndex, type CheckRequest, type DenyReason, type Grant } from '../model/engine.js';
import { folderCovers } from '../model/folders.js';
import { EXIT_DENIED, EXIT_OK, printJson, type CliContext, type OutputFormat } from './context.js';
import { tenantOf, withTenant, type TenantOption, type TenantSourceOptions } from './tenant-source.js';

/** The question of the decision API's POST /v1/check, and how to print the answer. */
export interface CheckCommandOptions extends CheckRequest, TenantOption, TenantSourceOptions {
  output: OutputFormat;
}

/** The options with the tenant resolved (`--tenant` or `-n`). */
type Question = CheckCommandOptions & { tenant: string };

type Reason = DenyReason;

export function describeGrant(g: Grant): string {
  const binding = g.binding === null ? 'implicit for Robot users' : `binding ${g.binding}`;
  return `role ${g.role} via ${g.via}, ${binding}, ${g.folder === null ? 'tenant-wide' : `folder ${g.folder}`}`;
}

/** `Jobs.Create on Process/x in Finance/Invoices (environment staging) for john` */
function describeQuestion(o: Question, user: string): string {
  const parts = [o.permission];
  if (o.resource) parts.push(`on ${o.resource}`);
  parts.push(o.folder ? `in ${o.folder}` : `in tenant ${o.tenant}`);
  if (o.environment) parts.push(`(environment ${o.environment})`);
  parts.push(`for ${user}`);
  return parts.join(' ');
}

/**
 * Why nothing granted it, when something nearly did: bindings of the permission that are
 * narrowed elsewhere (another folder, other objects, another environment) or expired.
 */
function nearMisses(index: TenantIndex, o: Question, user: string, now: number): string[] {
  const hints: string[] = [];
  for (const row of index.permissions(user, now) ?? []) {
    if (row.permission !== o.permission) continue;
    const name = row.binding ?? row.role;
    if (row.folder !== null && o.folder && !folderCovers(row.folder, o.folder)) hints.push(`binding ${name} grants it only in folder ${row.folder}`);
    else if (row.resources && !row.resources.some((r) => `${r.kind}/${r.name}` === o.resource)) {
      hints.push(`binding ${name} grants it only for ${row.resources.map((r) => `${r.kind}/${r.name}`).join(', ')}`);
    } else if (row.environment !== undefined && row.environment !== o.environment) hints.push(`binding ${name} grants it only in environment ${row.environment}`);
    else if (row.folder === null && !BUILT_IN_ROLE_NAMES.has(row.role) && o.folder) hints.push(`binding ${name} is tenant-wide`);
  }
  // Bindings that would grant it, had they not expired: ask again as if it were long ago.
  const past = index.check({ user, permission: o.permission, ...(o.folder ? { folder: o.folder } : {}), ...(o.resource ? { resource: o.resource } : {}), ...(o.environment ? { environment: o.environment } : {}) }, 0);
  for (const g of past.grants) if (g.binding) hints.push(`binding ${g.binding} has expired`);
  return [...new Set(hints)].slice(0, 5);
}

function reasonText(reason: Reason, o: Question, user: string, hints: string[], source: string): string {
  switch (reason) {
    case 'TenantNotFound':
      return `tenant ${o.tenant} does not exist in the ${source}`;
    case 'UserNotFound':
      return `no user ${o.user} in tenant ${o.tenant}`;
    case 'UserInactive':
      return `user ${user} is inactive`;
    case 'NoGrant':
      return `no binding grants it${hints.length > 0 ? `: ${hints.join('; ')}` : ''}`;
  }
}

export async function checkCommand(ctx: CliContext, options: CheckCommandOptions): Promise<number> {
  const o: Question = { ...options, tenant: tenantOf(options) };
  const request = { permission: o.permission, folder: o.folder, resource: o.resource, environment: o.environment };
  // A malformed question is an error (exit 1) whether or not the tenant exists.
  const parsed = parseRequest(request);
  return withTenant(ctx, o, o.tenant, async (snapshot, description) => {
    const now = Date.now();
    let result: { allowed: boolean; grants: Grant[]; reason?: Reason; user?: string };
    let index: TenantIndex | undefined;
    if (!snapshot) {
      result = tenantNotFound();
    } else {
      index = new TenantIndex(snapshot.state, snapshot.revision);
      result = index.checkParsed(o.user, parsed, now);
    }
    ctx.logger.debug({ tenant: o.tenant, user: o.user, ...request, allowed: result.allowed, reason: result.reason, revision: snapshot?.revision }, 'check');
    const user = result.user ?? o.user;
    if (o.output === 'json') {
      printJson(ctx, { allowed: result.allowed, grants: result.grants, ...(result.reason && !result.allowed ? { reason: result.reason } : {}) });
    } else if (result.allowed) {
      ctx.out(`allowed: ${describeQuestion(o, user)} (${result.grants.map(describeGrant).join('; ')})`);
    } else {
      const hints = result.reason === 'NoGrant' && index ? nearMisses(index, o, user, now) : [];
      ctx.out(`denied: ${describeQuestion(o, user)} (${reasonText(result.reason ?? 'NoGrant', o, user, hints, description.startsWith('store') ? 'store' : description)})`);
    }
    return result.allowed ? EXIT_OK : EXIT_DENIED;
  });
}
