/**
 * The object controller: one User, Group, Role or RoleBinding custom resource (key
 * `Kind/namespace/name`) into the access store, its Ready condition back into the cluster. Built-ins
 * belong to the operator and are put back; a delete passes through the store behind our finalizer.
 */
import { ANNOTATION_PAUSED, FINALIZER, LABEL_BUILT_IN, OWNER_ROLE, type Kind } from '../model/catalog.js';
import { expiryMs } from '../model/time.js';
import { formatViolation, type Violation } from '../model/invariants.js';
import { allEntries, builtInEntry, builtInName, getEntry, isReserved, sameSpec } from '../model/tenant.js';
import type { AnyEntry } from '../model/types.js';
import type { ApplyResult } from '../store/store.js';
import type { KeyOutcome, ReconcileResult } from '../k8s/workqueue.js';
import { isDeleting, isPaused, objectKey, parseObjectKey, toEntry, type AccessResource } from '../api/v1alpha1/resource.js';
import { crdName, type ReconcileCore } from './core.js';

/** How often a directory Group's status (active sessions, provisioned users) is refreshed. */
export const DIRECTORY_STATUS_PERIOD_MS = 60_000;

export interface ObjectControllerOptions {
  /** How soon a refused delete is tried again. */
  refusedRetryMs?: number;
}

/** Writes to the API server one batch makes at once (finalizers, statuses). */
const WRITE_PARALLELISM = 4;

/** Runs `work` over `items`, at most `limit` at once. */
async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** setTimeout's limit is about 24.8 days; a far expiry is re-planned by later reconciles anyway. */
const MAX_REQUEUE_MS = 24 * 3600_000;
/** Requeued a little after `expiresAt`, so that the binding is expired when looked at. */
const EXPIRY_SLACK_MS = 250;

function readyReason(obj: AccessResource): string | undefined {
  return obj.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
}

function violationsOf(result: ApplyResult, obj: AccessResource): Violation[] {
  const own = result.violations.filter((v) => v.kind === obj.kind && v.name === obj.metadata.name);
  return own.length > 0 ? own : result.violations;
}

export class ObjectReconciler {
  private readonly refusedRetryMs: number;

  constructor(
    private readonly core: ReconcileCore,
    o: ObjectControllerOptions = {},
  ) {
    this.refusedRetryMs = o.refusedRetryMs ?? 60_000;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const parsed = parseObjectKey(key);
    if (!parsed) {
      this.core.log.warn({ key }, 'ignoring malformed work-queue key');
      return {};
    }
    const { kind, namespace, name } = parsed;
    const obj = this.core.cluster.get(kind, namespace, name);
    if (!obj) return this.reconcileGone(kind, namespace, name);
    // Built-ins are the operator's: a pause on them is not honoured (restore drops it).
    if (isReserved(kind, name)) return this.reconcileBuiltIn(obj);
    // A revocation must never be blockable: pause does not hold back a delete.
    if (isDeleting(obj)) return this.finalize(obj);
    if (isPaused(obj)) return this.reportPaused(obj);
    return this.upsert(obj);
  }

  /** A binding with a future `expiresAt` is looked at again when it expires: expiry is an event. */
  private expiryRequeue(obj: AccessResource): ReconcileResult {
    if (obj.kind !== 'RoleBinding') return {};
    const expiresAt = (obj.spec as { expiresAt?: unknown } | undefined)?.expiresAt;
    if (typeof expiresAt !== 'string') return {};
    const left = expiryMs(expiresAt) - this.core.now();
    return left >= 0 ? { requeueAfterMs: Math.min(left + EXPIRY_SLACK_MS, MAX_REQUEUE_MS) } : {};
  }

  /**
   * Pause stops applying changes, nothing else: the store keeps what it holds for the object,
   * and the object says so, with the generation the store holds, until the annotation goes.
   */
  private async reportPaused(obj: AccessResource): Promise<ReconcileResult> {
    const { core } = this;
    const { namespace, name } = obj.metadata;
    if (!obj.metadata.finalizers?.includes(FINALIZER)) await core.cluster.addFinalizer(obj);
    const generation = obj.metadata.generation ?? 0;
    const snapshot = await core.store.loadTenant(namespace);
    const stored = snapshot && allEntries(snapshot.state).find((e) => e.kind === obj.kind && e.name === name);
    const wanted = toEntry(obj).entry;
    // The generation the store holds: this one when the specs agree, else the last one applied.
    let applied: number | undefined;
    if (stored && wanted && sameSpec(stored.spec, wanted.spec)) applied = generation;
    else if (stored) applied = obj.status?.appliedGeneration ?? (readyReason(obj) !== 'Paused' ? obj.status?.observedGeneration : undefined);
    const pausedBy = `Paused by the annotation ${ANNOTATION_PAUSED}: the operator applies no change to this object, but a delete still goes through.`;
    let holds: string;
    if (!stored) holds = 'The access store does not hold it: it grants nothing.';
    else if (applied === generation) holds = `The access store holds generation ${generation}, the current one.`;
    else holds = `The access store holds ${applied !== undefined ? `generation ${applied}` : 'an earlier generation'}; generation ${generation} is not applied and grants nothing.`;
    await core.setReady(obj, 'False', 'Paused', `${pausedBy} ${holds} Remove the annotation to resume.`, { generation: applied });
    return {};
  }

  private async upsert(obj: AccessResource): Promise<ReconcileResult> {
    const outcome = (await this.upsertMany(obj.metadata.namespace, [obj])).get(objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name));
    if (outcome && 'error' in outcome) throw outcome.error;
    return outcome?.result ?? {};
  }

  /**
   * Reconciles several keys at once: the objects of one tenant to write go to the store in one
   * transaction (one load, one plan, one write: the cost of a plan is the tenant's size, so this
   * is what keeps a large tenant's cost per object flat); every other key (a delete, a pause, a
   * built-in, a key gone from the cache) takes the path of `reconcile`, one at a time.
   */
  async reconcileBatch(keys: string[]): Promise<Map<string, KeyOutcome>> {
    const out = new Map<string, KeyOutcome>();
    const byTenant = new Map<string, AccessResource[]>();
    const alone: string[] = [];
    for (const key of keys) {
      const parsed = parseObjectKey(key);
      const obj = parsed && this.core.cluster.get(parsed.kind, parsed.namespace, parsed.name);
      if (!obj || isReserved(obj.kind as Kind, obj.metadata.name) || isDeleting(obj) || isPaused(obj)) {
        alone.push(key);
        continue;
      }
      const list = byTenant.get(obj.metadata.namespace);
      if (list) list.push(obj);
      else byTenant.set(obj.metadata.namespace, [obj]);
    }
    for (const key of alone) {
      try {
        out.set(key, { result: await this.reconcile(key) });
      } catch (err) {
        out.set(key, { error: err });
      }
    }
    for (const [namespace, objs] of byTenant) for (const [key, outcome] of await this.upsertMany(namespace, objs)) out.set(key, outcome);
    return out;
  }

  /**
   * Writes `objs` (one tenant's, none deleting, paused or built-in) to the store together.
   *
   * An object refused by an invariant does not hold back the others. The planner names the
   * object each violation blames (src/model/invariants.ts: what changed, and between two changed
   * objects the first by name); those objects are refused, each with its own violations, and the
   * rest planned again without them, until a plan passes. A violation that blames none of the
   * objects left (a rule across objects that blames one already in the store) sends them one by
   * one, in queue order, so each stands or falls alone. When two objects of a batch conflict (two
   * owner bindings, two Users with one email), the one the planner keeps wins; one by one, the
   * first to reach the store would have: docs/runtime.md says which.
   */
  private async upsertMany(namespace: string, objs: AccessResource[]): Promise<Map<string, KeyOutcome>> {
    const { core } = this;
    const out = new Map<string, KeyOutcome>();
    const keyOf = (obj: AccessResource) => objectKey(obj.kind, namespace, obj.metadata.name);
    // The finalizer first, so that a delete can never bypass the store; for a batch, side by side.
    await forEachLimited(objs.filter((o) => !o.metadata.finalizers?.includes(FINALIZER)), WRITE_PARALLELISM, async (obj) => {
      try {
        await core.cluster.addFinalizer(obj);
      } catch (err) {
        out.set(keyOf(obj), { error: err });
      }
    });
    let pending: { obj: AccessResource; entry: AnyEntry }[] = [];
    for (const obj of objs) {
      if (out.has(keyOf(obj))) continue;
      const { entry, problems } = toEntry(obj);
      if (entry) {
        pending.push({ obj, entry });
        continue;
      }
      const message = problems.join('; ');
      core.events.record(obj, 'Warning', 'Invalid', 'Validate', message);
      await this.settle(out, obj, () => core.setReady(obj, 'False', 'Invalid', message));
    }
    pending = await this.skipUnchanged(namespace, pending, out);
    while (pending.length > 0) {
      let result: ApplyResult;
      try {
        result = await core.applyAll(pending.map((p) => p.obj), [{ tenant: namespace, upserts: pending.map((p) => p.entry) }]);
      } catch (err) {
        for (const { obj } of pending) out.set(keyOf(obj), { error: err });
        return out;
      }
      if (result.violations.length === 0) {
        await this.landed(namespace, pending.map((p) => p.obj), result, out);
        return out;
      }
      const named = (obj: AccessResource) => result.violations.filter((v) => v.kind === obj.kind && v.name === obj.metadata.name);
      const blamed = pending.filter((p) => named(p.obj).length > 0);
      if (pending.length === 1 || blamed.length === 0) {
        if (pending.length === 1) await this.refuse(out, pending[0]!.obj, violationsOf(result, pending[0]!.obj));
        else for (const { obj } of pending) for (const [key, outcome] of await this.upsertMany(namespace, [obj])) out.set(key, outcome);
        return out;
      }
      for (const { obj } of blamed) await this.refuse(out, obj, named(obj));
      pending = pending.filter((p) => named(p.obj).length === 0);
    }
    return out;
  }

  /**
   * Objects the store already holds exactly as declared need no plan: nothing would change, so
   * their readiness is read from the store's current state. A drift pass (every object of the
   * tenant handed over, nothing changed) then costs a read of the tenant's revision per batch,
   * not a plan of the whole tenant.
   * Returns the objects that do need the store.
   */
  private async skipUnchanged(namespace: string, pending: { obj: AccessResource; entry: AnyEntry }[], out: Map<string, KeyOutcome>): Promise<{ obj: AccessResource; entry: AnyEntry }[]> {
    if (pending.length === 0) return pending;
    let snapshot;
    try {
      snapshot = await this.core.store.loadTenant(namespace);
    } catch {
      return pending; // the apply says StoreUnavailable for each
    }
    if (!snapshot) return pending;
    const state = snapshot.state;
    const held = (p: { entry: AnyEntry }) => {
      const stored = getEntry(state, p.entry.kind, p.entry.name);
      return stored !== undefined && stored.origin === 'user' && sameSpec(stored.spec, p.entry.spec);
    };
    const unchanged = new Set(pending.filter(held));
    await forEachLimited([...unchanged].map((p) => p.obj), WRITE_PARALLELISM, (obj) => this.settle(out, obj, () => this.core.reportReadiness(obj, state), this.afterApply(obj)));
    return pending.filter((p) => !unchanged.has(p));
  }

  /** The store refused `obj`: a Warning named after the rule, and Ready=False saying why. */
  private async refuse(out: Map<string, KeyOutcome>, obj: AccessResource, violations: Violation[]): Promise<void> {
    const message = violations.map(formatViolation).join('; ');
    this.core.events.record(obj, 'Warning', violations[0]!.rule, 'Apply', `Refused by the access store: ${message}`);
    await this.settle(out, obj, () => this.core.setReady(obj, 'False', violations[0]!.rule, message));
  }

  /** Runs `write` for `obj` and records its outcome: done, or its error (retried by the queue). */
  private async settle(out: Map<string, KeyOutcome>, obj: AccessResource, write: () => Promise<unknown>, result: ReconcileResult = {}): Promise<void> {
    const key = objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
    try {
      await write();
      out.set(key, { result });
    } catch (err) {
      out.set(key, { error: err });
    }
  }

  /** `objs` are in the store as `result` says: Events for what changed, then each one's status. */
  private async landed(namespace: string, objs: AccessResource[], result: ApplyResult, out: Map<string, KeyOutcome>): Promise<void> {
    const { core } = this;
    const plan = result.plans[0]!;
    if (result.written) {
      const changes = new Map(plan.changes.map((c) => [`${c.kind}/${c.name}`, c]));
      const revision = result.revisions.get(namespace);
      for (const obj of objs) {
        const own = changes.get(`${obj.kind}/${obj.metadata.name}`);
        if (!own) continue;
        const drift = obj.status?.observedGeneration === obj.metadata.generation && own.action === 'updated' && readyReason(obj) !== 'Paused';
        core.events.record(
          obj, 'Normal', drift ? 'DriftCorrected' : own.action === 'created' ? 'Created' : 'Updated', 'Apply',
          drift ? `The access store differed from this object; put back (revision ${revision})` : `${own.action === 'created' ? 'Created in' : 'Updated in'} the access store (revision ${revision})`,
        );
      }
      const transfer = plan.changes.find((c) => c.action === 'created' && c.after?.origin === 'system');
      if (transfer) {
        // Said on the owner binding that caused it, when it is one of these objects.
        const cause = objs.find((o) => o.kind === 'RoleBinding' && (o.spec as { roleRef?: { name?: string } } | undefined)?.roleRef?.name === OWNER_ROLE) ?? objs[0]!;
        core.events.record(cause, 'Normal', 'OwnershipTransferred', 'Apply', `Ownership transferred; the former owner keeps administrator through RoleBinding ${namespace}/${transfer.name}`);
        await core.mirrorStoreCreated(namespace, plan.next);
      }
      if (plan.changes.some((c) => c.action !== 'updated' && c.kind !== 'RoleBinding')) {
        core.requeueDependents(namespace, plan.next, new Set(objs.map((o) => objectKey(o.kind, namespace, o.metadata.name))));
      }
    }
    await forEachLimited(objs, WRITE_PARALLELISM, (obj) => this.settle(out, obj, () => core.reportReadiness(obj, plan.next), this.afterApply(obj)));
  }

  /** When to look at an applied object again, unasked. */
  private afterApply(obj: AccessResource): ReconcileResult {
    // A directory Group's status counts sessions, which logins change without touching the
    // cluster: look again now and then.
    if (obj.kind === 'Group' && (obj.spec as { directory?: unknown } | undefined)?.directory) return { requeueAfterMs: DIRECTORY_STATUS_PERIOD_MS };
    return this.expiryRequeue(obj);
  }

  private async finalize(obj: AccessResource): Promise<ReconcileResult> {
    const { core } = this;
    if (!obj.metadata.finalizers?.includes(FINALIZER)) return {};
    const { namespace, name } = obj.metadata;
    const kind = obj.kind as Kind;
    if (await core.uninstalling(kind)) {
      // The API server deletes every object of a CRD being deleted: that is an uninstall, not a
      // revocation. The store keeps the tenant as it is; a reinstall adopts the objects again.
      core.log.warn(
        { key: objectKey(kind, namespace, name), crd: crdName(kind) },
        `CRD ${crdName(kind)} is being deleted (uninstall?): releasing ${kind} ${namespace}/${name} without touching the access store; its access stays as it is`,
      );
      core.metrics?.uninstallReleased(kind);
      await core.cluster.removeFinalizer(obj);
      return {};
    }
    const result = await core.applyFor(obj, [{ tenant: namespace, upserts: [], deletes: [{ kind, name }] }]);
    if (result.violations.length > 0) {
      const violations = violationsOf(result, obj);
      const message = violations.map(formatViolation).join('; ');
      core.events.record(obj, 'Warning', 'DeleteRefused', 'Delete', `Kept: the access store refused the delete: ${message}`);
      await core.setReady(obj, 'False', 'DeleteRefused', `Delete refused, object kept: ${message}`);
      return { requeueAfterMs: this.refusedRetryMs };
    }
    if (result.written) {
      core.events.record(obj, 'Normal', 'Deleted', 'Delete', `Removed from the access store (revision ${result.revisions.get(namespace)})`);
      core.requeueDependents(namespace, result.plans[0]!.next, objectKey(obj.kind, namespace, name));
      core.retryGhosts(namespace);
    }
    await core.cluster.removeFinalizer(obj);
    return {};
  }

  /** Built-ins belong to the operator: put back any change, let a delete go and recreate. */
  private async reconcileBuiltIn(obj: AccessResource): Promise<ReconcileResult> {
    const { core } = this;
    const { namespace, name } = obj.metadata;
    const canonical = builtInEntry(obj.kind as Kind, name)!;
    if (isDeleting(obj)) {
      if (obj.metadata.finalizers?.includes(FINALIZER)) await core.cluster.removeFinalizer(obj);
      core.queues.enqueueTenant(namespace);
      return {};
    }
    const paused = isPaused(obj);
    if (paused || !sameSpec(obj.spec, canonical.spec) || obj.metadata.labels?.[LABEL_BUILT_IN] !== 'true') {
      await core.cluster.restore(obj, canonical.spec, { ...obj.metadata.labels, [LABEL_BUILT_IN]: 'true' });
      core.events.record(
        obj, 'Warning', 'BuiltInRestored', 'Restore',
        paused ? `${builtInName(obj.kind as Kind, name)} cannot be paused: the operator keeps it as defined; the annotation ${ANNOTATION_PAUSED} was removed` : `${builtInName(obj.kind as Kind, name)} cannot be changed; its definition was put back`,
      );
      return {};
    }
    await core.setReady(obj, 'True', 'BuiltIn', `${obj.kind === 'Group' ? 'Protected group' : 'Built-in role'}: created and kept by the operator.`);
    return {};
  }

  /** The object is gone from the cluster: a built-in comes back; anything else leaves the store. */
  private async reconcileGone(kind: Kind, namespace: string, name: string): Promise<ReconcileResult> {
    const { core } = this;
    if (isReserved(kind, name)) {
      core.queues.enqueueTenant(namespace);
      return {};
    }
    const snapshot = await core.store.loadTenant(namespace);
    const stored = snapshot && allEntries(snapshot.state).find((e) => e.kind === kind && e.name === name);
    if (!stored || stored.origin !== 'user') return {};
    // Gone because its CRD is being deleted: an uninstall, not a revocation.
    if (await core.uninstalling(kind)) return {};
    // Missing from a cache that is behind: the informer's add brings the object back here.
    if ((await core.absentFromCluster(namespace, [{ kind, name }])).length === 0) return {};
    // Deleted without passing our finalizer (forced, or before the operator saw it).
    const result = await core.apply([{ tenant: namespace, upserts: [], deletes: [{ kind, name }] }]);
    if (result.violations.length > 0) {
      // The tenant's drift pass reports it where people look, and keeps it listed as a ghost.
      core.log.warn({ key: objectKey(kind, namespace, name), violations: result.violations.map(formatViolation) }, 'object deleted from the cluster, but the store refuses to delete it; kept in the store');
      core.queues.enqueueTenant(namespace);
    } else if (result.written) {
      core.log.info({ key: objectKey(kind, namespace, name) }, 'object gone from the cluster; removed from the store');
      core.retryGhosts(namespace);
    }
    return {};
  }
}
