/**
 * `rpa-access apply -f PATH... [--dry-run] [--prune] [--output json]`: the documents become the
 * desired state of the tenants they name, in one all-or-nothing store transaction.
 *
 * The documents are checked first exactly as `validate` does: any problem and nothing is sent to
 * the store. The store then plans against what it holds and refuses any violation (exit 1,
 * nothing written). Objects that apply but are not ready (a reference to something that does
 * not exist) are reported as warnings: they grant nothing until it appears, which is not an
 * error (contract, "Status").
 */
import { desiredStates, formatProblem, SourceMap, type CheckedDocuments } from '../documents/check.js';
import { readiness } from '../model/readiness.js';
import { planTenant, type DesiredState, type TenantPlan } from '../model/plan.js';
import { OPERATOR_SOURCE, type AccessStore, type ApplyResult } from '../store/store.js';
import { actorName, CliError, EXIT_ERROR, EXIT_OK, printJson, withStore, type CliContext, type OutputFormat } from './context.js';
import { noDocumentsMessage, printProblems, readDocuments, type DocumentOptions } from './documents.js';

export interface ApplyCommandOptions extends DocumentOptions {
  dryRun?: boolean;
  prune?: boolean;
  /** Let --prune delete more than half of a tenant's declared objects (or more than 100). */
  pruneAllowMassDelete?: boolean;
  output: OutputFormat;
}

export interface PlanSummary {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

/**
 * What changed, as `Kind/namespace/name` lists. The built-ins a new tenant starts with are the
 * store's own doing, not the documents': they are left out (the human output mentions them).
 */
export function summarize(plans: readonly TenantPlan[]): PlanSummary & { builtIns: Map<string, number> } {
  const out: PlanSummary = { created: [], updated: [], deleted: [], unchanged: [] };
  const builtIns = new Map<string, number>();
  for (const plan of plans) {
    for (const c of plan.changes) {
      if ((c.after ?? c.before)?.origin === 'builtin') {
        builtIns.set(plan.tenant, (builtIns.get(plan.tenant) ?? 0) + 1);
        continue;
      }
      out[c.action].push(`${c.kind}/${plan.tenant}/${c.name}`);
    }
    for (const u of plan.unchanged) out.unchanged.push(`${u.kind}/${plan.tenant}/${u.name}`);
  }
  return { ...out, builtIns };
}

function printPlan(ctx: CliContext, result: ApplyResult, dryRun: boolean): void {
  const summary = summarize(result.plans);
  const suffix = dryRun ? ' (dry run)' : '';
  for (const action of ['created', 'updated', 'deleted', 'unchanged'] as const) {
    for (const ref of summary[action]) ctx.out(`${action} ${ref}${suffix}`);
  }
  for (const plan of result.plans) {
    const count = (action: 'created' | 'updated' | 'deleted') =>
      plan.changes.filter((c) => c.action === action && (c.after ?? c.before)?.origin !== 'builtin').length;
    const builtIns = summary.builtIns.get(plan.tenant);
    const revision = result.revisions.get(plan.tenant);
    const parts = [
      `${plan.tenant}: ${count('created')} created, ${count('updated')} updated, ${count('deleted')} deleted, ${plan.unchanged.length} unchanged`,
      builtIns ? (plan.current.roles.size === 0 ? '; new tenant: its built-in roles and the global group are created' : `; ${builtIns} built-in object${builtIns === 1 ? '' : 's'} restored`) : '',
      dryRun ? ' (dry run: nothing written)' : result.written && plan.changes.length > 0 ? ` (revision ${revision})` : '',
    ];
    ctx.out(parts.join(''));
  }
}

/** Objects of the documents that applied but grant nothing yet (dangling references, expired). */
function readinessWarnings(ctx: CliContext, checked: CheckedDocuments, plans: readonly TenantPlan[]): void {
  const byTenant = new Map(plans.map((p) => [p.tenant, p.next]));
  for (const o of checked.objects) {
    const state = byTenant.get(o.tenant);
    if (!state) continue;
    const r = readiness(state, o.entry.kind, o.entry.name);
    if (!r.ready) ctx.warn(formatProblem({ ...o.source, kind: o.entry.kind, namespace: o.tenant, name: o.entry.name, message: `not ready (${r.reason}): ${r.message}` }));
  }
}

/**
 * Tenants this apply changes that the operator created in the store: the cluster holds them, and
 * the operator's drift pass removes or restores whatever its custom resources do not declare.
 * The write is still allowed (it is serialized and checked like any other), but said plainly.
 */
async function managedTenantWarnings(ctx: CliContext, store: AccessStore, plans: readonly TenantPlan[], dryRun: boolean): Promise<void> {
  for (const plan of plans) {
    if (plan.changes.length === 0) continue;
    const [first] = await store.audit({ tenant: plan.tenant, limit: 1 });
    if (first?.source !== OPERATOR_SOURCE) continue;
    ctx.warn(
      `tenant ${plan.tenant} is managed by the rpa-access operator (the cluster created it in this store): ` +
        `what this apply ${dryRun ? 'would add or change' : 'added or changed'} there is undone at the operator's next drift pass; ` +
        `change its custom resources instead (kubectl apply -n ${plan.tenant})`,
    );
  }
}

/** A dry run's plans, from the tenants as the store holds them (or none, for a store not created yet). */
async function planOnly(store: AccessStore | undefined, desired: DesiredState[]): Promise<ApplyResult> {
  const plans: TenantPlan[] = [];
  const revisions = new Map<string, number>();
  for (const d of [...desired].sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0))) {
    const snapshot = store ? await store.loadTenant(d.tenant) : undefined;
    plans.push(planTenant(snapshot?.state, d));
    revisions.set(d.tenant, snapshot?.revision ?? 0);
  }
  return { applyId: null, plans, violations: plans.flatMap((p) => p.violations), written: false, revisions };
}

export async function applyCommand(ctx: CliContext, options: ApplyCommandOptions): Promise<number> {
  const checked = readDocuments(ctx, options);
  if (checked.problems.length > 0) {
    printProblems(ctx, checked);
    ctx.err(`rpa-access: error: ${checked.problems.length} problem${checked.problems.length === 1 ? '' : 's'} in the documents: nothing applied`);
    return EXIT_ERROR;
  }
  if (checked.documentCount === 0) throw new CliError(noDocumentsMessage(options));
  const desired = desiredStates(checked, { prune: options.prune, pruneBrake: !options.pruneAllowMassDelete });
  const dryRun = Boolean(options.dryRun);

  // A dry run only reads: the store is opened read-only (a replica, an auditor's copy) and planned
  // here, by the same planner the store runs; a store that does not exist yet is planned as empty.
  return withStore(ctx, dryRun ? { readOnly: true, missingIsEmpty: true } : {}, async (store) => {
    const started = Date.now();
    const result = dryRun ? await planOnly(store, desired) : await store!.apply(desired, { dryRun, actor: actorName(ctx.io.env), source: 'cli' });
    ctx.logger.debug(
      { store: store?.description, tenants: checked.tenants, dryRun, prune: Boolean(options.prune), written: result.written, applyId: result.applyId, ms: Date.now() - started },
      'apply planned',
    );
    if (result.violations.length > 0) {
      const sources = new SourceMap(checked.objects);
      for (const v of result.violations) ctx.err(formatProblem(sources.violation(v)));
      ctx.err(`rpa-access: error: refused by the store (${result.violations.length} violation${result.violations.length === 1 ? '' : 's'}): nothing ${dryRun ? 'would be' : 'was'} written`);
      return EXIT_ERROR;
    }
    if (options.output === 'json') {
      const { created, updated, deleted, unchanged } = summarize(result.plans);
      printJson(ctx, { created, updated, deleted, unchanged });
    } else {
      printPlan(ctx, result, dryRun);
    }
    readinessWarnings(ctx, checked, result.plans);
    if (store) await managedTenantWarnings(ctx, store, result.plans, dryRun);
    return EXIT_OK;
  });
}
