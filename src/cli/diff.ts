/**
 * `rpa-access diff -f PATH... [--against STORE | --against-cluster | --against-files PATH...]
 * [--prune] [--output text|json|markdown]`: what applying the documents would change in who may
 * do what. The current state comes from the store, the cluster or other documents; each tenant
 * is planned exactly as `apply` would (same planner, same invariants), and the model compares
 * both sides' effective rights (src/model/access-diff.ts). This module only reads and prints.
 *
 * Exit 0: nothing would change. 2: something would (objects or access), so a pipeline can label
 * the pull request. 1: invalid documents, a refused plan, or an error.
 */
import { checkDocuments, desiredStates, formatProblem, SourceMap, type CheckedDocuments } from '../documents/check.js';
import { loadDocuments } from '../documents/load.js';
import { diffPlanAccess, type TenantAccessDiff, type UserAccessChange } from '../model/access-diff.js';
import { ALL_PERMISSIONS, parsePermission } from '../model/catalog.js';
import type { PermissionGrant } from '../model/engine.js';
import { planTenant, type DesiredState, type TenantPlan } from '../model/plan.js';
import type { TenantState } from '../model/types.js';
import { summarize, type PlanSummary } from './apply.js';
import { CliError, EXIT_ERROR, EXIT_OK, printJson, withStore, type CliContext } from './context.js';
import { noDocumentsMessage, printProblems, readDocuments } from './documents.js';
import { formatTable } from './permissions.js';
import { readTenantFromCluster, type TenantSourceOptions } from './tenant-source.js';

const EXIT_CHANGES = 2;

export interface DiffCommandOptions extends Omit<TenantSourceOptions, 'fromCluster'> {
  filename: string[];
  namespace?: string;
  against?: string;
  againstCluster?: boolean;
  againstFiles?: string[];
  prune?: boolean;
  output: 'text' | 'json' | 'markdown';
}

export interface TenantDiff {
  tenant: string;
  /** The tenant does not exist on the current side. */
  new: boolean;
  plan: PlanSummary;
  access: TenantAccessDiff;
}

export interface DiffReport {
  changed: boolean;
  /** What the documents were compared with, without credentials. */
  against: string;
  tenants: TenantDiff[];
}

/** The JSON document of `--output json` (also what the text and Markdown are made from). */
function diffJson(report: DiffReport) {
  const users = report.tenants.flatMap((t) => t.access.users);
  return {
    changed: report.changed,
    against: report.against,
    summary: {
      tenants: report.tenants.filter(tenantChanged).length,
      usersGaining: users.filter((u) => u.gained.length > 0).length,
      usersLosing: users.filter((u) => u.lost.length > 0).length,
      gained: users.reduce((n, u) => n + u.gained.length, 0),
      lost: users.reduce((n, u) => n + u.lost.length, 0),
      created: report.tenants.reduce((n, t) => n + t.plan.created.length, 0),
      updated: report.tenants.reduce((n, t) => n + t.plan.updated.length, 0),
      deleted: report.tenants.reduce((n, t) => n + t.plan.deleted.length, 0),
    },
    tenants: report.tenants.map((t) => ({ tenant: t.tenant, new: t.new, plan: t.plan, users: t.access.users })),
  };
}

const tenantChanged = (t: TenantDiff): boolean =>
  t.access.users.length > 0 || t.plan.created.length + t.plan.updated.length + t.plan.deleted.length > 0;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `2 users gain 5 permissions, 1 user loses 3 permissions` (or `no access change`). */
function accessPhrase(users: readonly UserAccessChange[]): string {
  const gaining = users.filter((u) => u.gained.length > 0);
  const losing = users.filter((u) => u.lost.length > 0);
  const parts: string[] = [];
  const rows = (list: UserAccessChange[], pick: (u: UserAccessChange) => number) => list.reduce((n, u) => n + pick(u), 0);
  if (gaining.length > 0) parts.push(`${plural(gaining.length, 'user')} ${gaining.length === 1 ? 'gains' : 'gain'} ${plural(rows(gaining, (u) => u.gained.length), 'permission')}`);
  if (losing.length > 0) parts.push(`${plural(losing.length, 'user')} ${losing.length === 1 ? 'loses' : 'lose'} ${plural(rows(losing, (u) => u.lost.length), 'permission')}`);
  const other = users.filter((u) => u.gained.length === 0 && u.lost.length === 0);
  if (other.length > 0) parts.push(`${plural(other.length, 'user')} ${other.map((u) => u.lifecycle).join('/')} without access change`);
  return parts.length > 0 ? parts.join(', ') : 'no access change';
}

function objectsPhrase(plan: PlanSummary): string {
  const parts = (['created', 'updated', 'deleted'] as const).filter((a) => plan[a].length > 0).map((a) => `${plan[a].length} ${a}`);
  return parts.length > 0 ? `objects: ${parts.join(', ')}` : 'no object change';
}

/** The first line of every output: the whole change in one sentence. */
function summaryLine(report: DiffReport): string {
  const changed = report.tenants.filter(tenantChanged);
  if (changed.length === 0) return `no change against ${report.against}`;
  const users = changed.flatMap((t) => t.access.users);
  const plan = { created: changed.flatMap((t) => t.plan.created), updated: changed.flatMap((t) => t.plan.updated), deleted: changed.flatMap((t) => t.plan.deleted), unchanged: [] };
  return `${accessPhrase(users)} in ${plural(changed.length, 'tenant')}; ${objectsPhrase(plan)} (against ${report.against})`;
}

function folderCell(row: PermissionGrant): string {
  if (row.folder !== null) return row.folder;
  return parsePermission(row.permission)?.scope === 'Folder' ? '(every folder)' : '(tenant)';
}

function limitsCell(row: PermissionGrant): string {
  const parts: string[] = [];
  if (row.resources) parts.push(`only ${row.resources.map((r) => `${r.kind}/${r.name}`).join(', ')}`);
  if (row.environment !== undefined) parts.push(`environment ${row.environment}`);
  if (row.expiresAt !== undefined) parts.push(`until ${row.expiresAt}`);
  return parts.join('; ');
}

const catalogOrder = new Map(ALL_PERMISSIONS.map((p, i) => [p, i]));

/** Gained then lost, each by folder then catalog order: how a reviewer reads a user's change. */
function rowsOf(u: UserAccessChange): { sign: '+' | '-'; row: PermissionGrant }[] {
  const order = (a: PermissionGrant, b: PermissionGrant) =>
    Number(a.folder !== null) - Number(b.folder !== null) || (a.folder ?? '').localeCompare(b.folder ?? '') || catalogOrder.get(a.permission)! - catalogOrder.get(b.permission)!;
  return [...[...u.gained].sort(order).map((row) => ({ sign: '+' as const, row })), ...[...u.lost].sort(order).map((row) => ({ sign: '-' as const, row }))];
}

function userTitle(u: UserAccessChange): string {
  const who = [u.fullName, u.email].filter(Boolean).join(', ');
  return `${u.user} (${who})${u.lifecycle ? ` [${u.lifecycle}]` : ''}`;
}

function formatText(report: DiffReport): string[] {
  const lines = [summaryLine(report)];
  for (const t of report.tenants.filter(tenantChanged)) {
    lines.push('', `${t.tenant}${t.new ? ' (new tenant)' : ''}: ${accessPhrase(t.access.users)}; ${objectsPhrase(t.plan)}`);
    for (const u of t.access.users) {
      lines.push(`  ${userTitle(u)}`);
      const rows = rowsOf(u).map(({ sign, row }) => [sign, row.permission, folderCell(row), `role ${row.role}`, row.binding === null ? '(implicit: Robot user)' : `binding ${row.binding}`, `via ${row.via}`, limitsCell(row)]);
      for (const line of formatTable(['', 'PERMISSION', 'FOLDER', 'ROLE', 'BINDING', 'VIA', 'LIMITED TO'], rows).slice(1)) lines.push(`    ${line}`);
    }
    for (const action of ['created', 'updated', 'deleted'] as const) for (const ref of t.plan[action]) lines.push(`  ${action} ${ref}`);
  }
  return lines;
}

/** Text in a Markdown table cell or inline HTML: nothing in a name may close the cell or open a tag. */
function md(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '&#124;').replace(/`/g, '&#96;').replace(/[\r\n]+/g, ' ');
}

/** For a pull-request comment: the summary line first, then one collapsed section per tenant. */
function formatMarkdown(report: DiffReport): string[] {
  const changed = report.tenants.filter(tenantChanged);
  const lines = [`**rpa-access diff**: ${md(summaryLine(report))}`];
  for (const t of changed) {
    lines.push('', '<details>', `<summary><b>${md(t.tenant)}</b>${t.new ? ' (new tenant)' : ''}: ${md(accessPhrase(t.access.users))}; ${md(objectsPhrase(t.plan))}</summary>`, '');
    for (const u of t.access.users) {
      lines.push(`#### ${md(userTitle(u))}`, '');
      const rows = rowsOf(u);
      if (rows.length === 0) {
        lines.push(`No permission changes (${u.lifecycle ?? 'unchanged'}).`, '');
        continue;
      }
      lines.push('| | permission | folder | role | binding | via | limited to |', '|---|---|---|---|---|---|---|');
      for (const { sign, row } of rows) {
        const cells = [sign === '+' ? '➕ gained' : '➖ lost', `\`${row.permission}\``, md(folderCell(row)), md(row.role), md(row.binding ?? '(implicit: Robot user)'), md(row.via), md(limitsCell(row))];
        lines.push(`| ${cells.join(' | ')} |`);
      }
      lines.push('');
    }
    const objects = (['created', 'updated', 'deleted'] as const).flatMap((a) => t.plan[a].map((ref) => `- ${a} \`${ref.replace(/`/g, "'")}\``));
    if (objects.length > 0) lines.push('**Objects**', '', ...objects, '');
    lines.push('</details>');
  }
  return lines;
}

function refuse(ctx: CliContext, checked: CheckedDocuments, what: string): number {
  printProblems(ctx, checked);
  ctx.err(`rpa-access: error: ${plural(checked.problems.length, 'problem')} in ${what}: nothing compared`);
  return EXIT_ERROR;
}

/** The current state of each tenant: from other documents (as a fresh store would hold them). */
function statesFromFiles(ctx: CliContext, paths: string[], namespace: string | undefined): Map<string, TenantState> | number {
  const loaded = loadDocuments(paths, ctx.io.readStdin ? { readStdin: ctx.io.readStdin } : {});
  const checked = checkDocuments(loaded, namespace ? { defaultNamespace: namespace } : {});
  if (checked.problems.length > 0) return refuse(ctx, checked, `the documents compared with (${paths.join(', ')})`);
  const states = new Map<string, TenantState>();
  for (const d of desiredStates(checked)) states.set(d.tenant, planTenant(undefined, d).next);
  return states;
}

export async function diffCommand(ctx: CliContext, options: DiffCommandOptions): Promise<number> {
  const sources = [options.against !== undefined, Boolean(options.againstCluster), options.againstFiles !== undefined].filter(Boolean).length;
  if (sources > 1) throw new CliError('give one of --against, --against-cluster and --against-files');
  const checked = readDocuments(ctx, options);
  if (checked.problems.length > 0) return refuse(ctx, checked, 'the documents');
  if (checked.documentCount === 0) throw new CliError(noDocumentsMessage(options));

  const byFiles = options.againstFiles !== undefined;
  const desired: DesiredState[] = desiredStates(checked, { prune: Boolean(options.prune) || byFiles });
  const now = Date.now();
  let against: string;
  const current = new Map<string, TenantState | undefined>();

  const fromCluster = options.againstCluster ?? (ctx.plugin && sources === 0 && !ctx.globals.store && !ctx.io.env.RPA_ACCESS_STORE);
  if (byFiles) {
    const states = statesFromFiles(ctx, options.againstFiles!, options.namespace);
    if (typeof states === 'number') return states;
    against = options.againstFiles!.join(', ');
    // A tenant the base documents have and these do not is removed entirely.
    for (const tenant of states.keys()) if (!desired.some((d) => d.tenant === tenant)) desired.push({ tenant, upserts: [], prune: true });
    for (const d of desired) current.set(d.tenant, states.get(d.tenant));
  } else if (fromCluster) {
    against = '';
    for (const d of desired) {
      const read = await readTenantFromCluster(ctx, options, d.tenant);
      against = read.description;
      current.set(d.tenant, read.snapshot?.state);
    }
  } else {
    const storeCtx = options.against !== undefined ? { ...ctx, storeUrl: options.against } : ctx;
    against = await withStore(storeCtx, { readOnly: true, missingIsEmpty: true }, async (store, description) => {
      for (const d of desired) current.set(d.tenant, store ? (await store.loadTenant(d.tenant))?.state : undefined);
      return `store ${description}`;
    });
  }

  desired.sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
  const plans: TenantPlan[] = desired.map((d) => planTenant(current.get(d.tenant), d));
  const violations = plans.flatMap((p) => p.violations);
  if (violations.length > 0) {
    const sourceMap = new SourceMap(checked.objects);
    for (const v of violations) ctx.err(formatProblem(sourceMap.violation(v)));
    ctx.err(`rpa-access: error: the documents would be refused (${plural(violations.length, 'violation')}): nothing compared`);
    return EXIT_ERROR;
  }

  const started = Date.now();
  const tenants: TenantDiff[] = plans.map((plan) => {
    const { created, updated, deleted, unchanged } = summarize([plan]);
    return { tenant: plan.tenant, new: !current.get(plan.tenant), plan: { created, updated, deleted, unchanged }, access: diffPlanAccess(plan, { now }) };
  });
  ctx.logger.debug({ tenants: tenants.length, usersCompared: tenants.reduce((n, t) => n + t.access.usersCompared, 0), ms: Date.now() - started }, 'access compared');
  const report: DiffReport = { changed: tenants.some(tenantChanged), against, tenants };

  if (options.output === 'json') printJson(ctx, diffJson(report));
  else for (const line of options.output === 'markdown' ? formatMarkdown(report) : formatText(report)) ctx.out(line);
  return report.changed ? EXIT_CHANGES : EXIT_OK;
}
