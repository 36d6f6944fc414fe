/**
 * `rpa-access check --tenant T --user U --permission R.A [--folder PATH] [--resource Kind/name]
 * [--environment E] [--output json]`: one decision, explained. Exit 0 allowed, 3 denied, 1 error
 * (a malformed question, an unreachable store). A tenant the store does not know is a denial.
 */
import { parseRequest, tenantNotFound, TenantIndex, type CheckRequest, type DenyReason, type Grant } from '../model/engine.js';
import { nearMisses } from '../model/near-misses.js';
import { EXIT_DENIED, EXIT_OK, printJson, type CliContext, type OutputFormat } from './context.js';
import { tenantOf, withTenant, type TenantOption, type TenantSourceOptions } from './tenant-source.js';

/** The question of the decision API's POST /v1/check, and how to print the answer. */
export interface CheckCommandOptions extends CheckRequest, TenantOption, TenantSourceOptions {
  output: OutputFormat;
  /** `--directory-group ID...`: answer with these directory groups instead of the session. */
  directoryGroup?: string[];
}

/** The options with the tenant resolved (`--tenant` or `-n`). */
type Question = CheckCommandOptions & { tenant: string };

type Reason = DenyReason;

export function describeGrant(g: Grant): string {
  const binding = g.binding === null ? 'implicit for Robot users' : `binding ${g.binding}`;
  const session = g.sessionExpiresAt ? ` (login session until ${g.sessionExpiresAt})` : '';
  return `role ${g.role} via ${g.via}${session}, ${binding}, ${g.folder === null ? 'tenant-wide' : `folder ${g.folder}`}`;
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
  const request = {
    permission: o.permission, folder: o.folder, resource: o.resource, environment: o.environment,
    ...(o.directoryGroup ? { directoryGroups: o.directoryGroup } : {}),
  };
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
    const misses = result.reason === 'NoGrant' && index ? nearMisses(index, o.user, parsed, now) : [];
    if (o.output === 'json') {
      // As the decision API's answer (docs/decision-api.md).
      printJson(ctx, {
        allowed: result.allowed, grants: result.grants,
        ...(result.reason && !result.allowed ? { reason: result.reason } : {}),
        ...(misses.length > 0 ? { nearMisses: misses } : {}),
      });
    } else if (result.allowed) {
      ctx.out(`allowed: ${describeQuestion(o, user)} (${result.grants.map(describeGrant).join('; ')})`);
    } else {
      ctx.out(`denied: ${describeQuestion(o, user)} (${reasonText(result.reason ?? 'NoGrant', o, user, misses.map((m) => m.message), description.startsWith('store') ? 'store' : description)})`);
    }
    return result.allowed ? EXIT_OK : EXIT_DENIED;
  });
}
