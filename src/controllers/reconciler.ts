/**
 * The one reconcile core behind the four kinds' controllers. controller-runtime's contract:
 * given a key, read the desired state from the cache, make the world match, report; an error
 * means "retry with backoff", and doing it twice is harmless.
 *
 * Keys: `Kind/namespace/name` for an object; `Tenant/namespace` for a tenant's bootstrap and
 * drift correction (built-in custom resources present, store holding nothing the cluster does not).
 */
import type { Logger } from 'pino';
import { FINALIZER, KINDS, LABEL_BUILT_IN, type Kind } from '../model/catalog.js';
import { readiness } from '../model/conditions.js';
import { formatViolation, type Violation } from '../model/invariants.js';
import { allEntries, builtInEntries, builtInEntry, isReserved, sameSpec } from '../model/tenant.js';
import type { TenantState } from '../model/types.js';
import type { DesiredState } from '../model/plan.js';
import { OPERATOR_SOURCE, type AccessStore, type ApplyResult } from '../store/store.js';
import { scrubSecrets } from '../log.js';
import { isDeleting, objectKey, toEntry, type AccessResource, type AccessStatus } from '../api/v1alpha1/resource.js';
import type { ReconcileResult } from '../k8s/workqueue.js';
import { READY, findCondition, setCondition, statusEqual, type ConditionStatus } from '../k8s/status.js';

/** What the reconciler needs of the cluster: the informer caches and a few writes. */
export interface ClusterPort {
  get(kind: Kind, namespace: string, name: string): AccessResource | undefined;
  list(kind: Kind, namespace?: string): AccessResource[];
  addFinalizer(obj: AccessResource): Promise<void>;
  removeFinalizer(obj: AccessResource): Promise<void>;
  /** Writes `status` (the reconciler calls it only when the status changed). */
  writeStatus(obj: AccessResource, status: AccessStatus): Promise<void>;
  /** Creates the object; returns it as created, or undefined when it already existed. */
  create(obj: AccessResource): Promise<AccessResource | undefined>;
  /** Replaces spec and labels of an existing object (restoring a built-in). */
  restore(obj: AccessResource, spec: unknown, labels: Record<string, string>): Promise<void>;
}

export interface EventPort {
  record(obj: AccessResource, type: 'Normal' | 'Warning', reason: string, action: string, note: string): void;
}

export interface ReconcilerOptions {
  store: AccessStore;
  cluster: ClusterPort;
  events: EventPort;
  log: Logger;
  enqueue: (key: string, delayMs?: number) => void;
  /** How often each tenant is compared with the store even without changes. */
  driftPeriodMs?: number;
  /** How soon a refused delete is tried again. */
  refusedRetryMs?: number;
  isPaused?: (obj: AccessResource) => boolean;
}


export function tenantKey(namespace: string): string {
  return `Tenant/${namespace}`;
}

function violationsOf(result: ApplyResult, obj: AccessResource): Violation[] {
  const own = result.violations.filter((v) => v.kind === obj.kind && v.name === obj.metadata.name);
  return own.length > 0 ? own : result.violations;
}

/** The store could not be written: the object was fine, the failure is shared by every object. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export class AccessReconciler {
  private readonly driftPeriodMs: number;
  private readonly refusedRetryMs: number;

  constructor(private readonly o: ReconcilerOptions) {
    this.driftPeriodMs = o.driftPeriodMs ?? 5 * 60_000;
    this.refusedRetryMs = o.refusedRetryMs ?? 60_000;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const parts = key.split('/');
    if (parts[0] === 'Tenant' && parts.length === 2) return this.reconcileTenant(parts[1]!);
    const [kind, namespace, name] = parts as [Kind, string, string];
    if (parts.length !== 3 || !(KINDS as readonly string[]).includes(kind)) {
      this.o.log.warn({ key }, 'ignoring malformed work-queue key');
      return {};
    }
    const obj = this.o.cluster.get(kind, namespace, name);
    if (!obj) return this.reconcileGone(kind, namespace, name);
    if (this.o.isPaused?.(obj)) return {};
    if (isReserved(kind, name)) return this.reconcileBuiltIn(obj);
    return isDeleting(obj) ? this.finalize(obj) : this.upsert(obj);
  }

  /** Writes the Ready condition, only when the status says something new (see src/k8s/status.ts). */
  private async setReady(obj: AccessResource, status: ConditionStatus, reason: string, message: string): Promise<void> {
    const observedGeneration = obj.metadata.generation ?? 0;
    const next: AccessStatus = {
      ...obj.status,
      observedGeneration,
      conditions: setCondition(obj.status?.conditions, { type: READY, status, reason, message: scrubSecrets(message), observedGeneration }),
    };
    if (statusEqual(obj.status, next)) return;
    await this.o.cluster.writeStatus(obj, next);
  }

  private async reportReadiness(obj: AccessResource, state: TenantState): Promise<void> {
    const r = readiness(state, obj.kind as Kind, obj.metadata.name);
    await this.setReady(obj, r.ready ? 'True' : 'False', r.reason, r.message);
  }

  /** Objects whose readiness may have changed because `changed` appeared or went away. */
  private requeueDependents(namespace: string, state: TenantState, self: string): void {
    for (const kind of KINDS) {
      for (const other of this.o.cluster.list(kind, namespace)) {
        const key = objectKey(kind, namespace, other.metadata.name);
        if (key === self || isDeleting(other)) continue;
        // An object without a Ready condition has not been reconciled yet: it is queued anyway.
        const have = findCondition(other.status?.conditions, READY);
        if (!have) continue;
        const r = readiness(state, kind, other.metadata.name);
        if (have.reason !== r.reason || have.status !== (r.ready ? 'True' : 'False')) this.o.enqueue(key);
      }
    }
  }

  /**
   * Applies to the store; when the store cannot be reached the object says so (Ready=False,
   * StoreUnavailable) and the error goes back to the queue, which retries with backoff.
   */
  private async storeApply(obj: AccessResource, desired: DesiredState[]): Promise<ApplyResult> {
    try {
      return await this.o.store.apply(desired, { actor: 'operator', source: OPERATOR_SOURCE });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      await this.setReady(obj, 'False', 'StoreUnavailable', `The access store cannot be reached (${reason}); retrying with backoff.`).catch(() => undefined);
      throw new StoreUnavailableError(reason, { cause: err });
    }
  }

  private async upsert(obj: AccessResource): Promise<ReconcileResult> {
    const { namespace, name } = obj.metadata;
    const key = objectKey(obj.kind, namespace, name);
    if (!obj.metadata.finalizers?.includes(FINALIZER)) {
      // First, so that a delete can never bypass the store.
      await this.o.cluster.addFinalizer(obj);
    }
    const { entry, problems } = toEntry(obj);
    if (!entry) {
      const message = problems.join('; ');
      this.o.events.record(obj, 'Warning', 'Invalid', 'Validate', message);
      await this.setReady(obj, 'False', 'Invalid', message);
      return {};
    }
    const result = await this.storeApply(obj, [{ tenant: namespace, upserts: [entry] }]);
    const plan = result.plans[0]!;
    if (result.violations.length > 0) {
      const violations = violationsOf(result, obj);
      const message = violations.map(formatViolation).join('; ');
      this.o.events.record(obj, 'Warning', violations[0]!.rule, 'Apply', `Refused by the access store: ${message}`);
      await this.setReady(obj, 'False', violations[0]!.rule, message);
      return {};
    }
    if (result.written) {
      const own = plan.changes.find((c) => c.kind === obj.kind && c.name === name);
      if (own) {
        const drift = obj.status?.observedGeneration === obj.metadata.generation && own.action === 'updated';
        this.o.events.record(
          obj, 'Normal', drift ? 'DriftCorrected' : own.action === 'created' ? 'Created' : 'Updated', 'Apply',
          drift ? `The access store differed from this object; put back (revision ${result.revisions.get(namespace)})` : `${own.action === 'created' ? 'Created in' : 'Updated in'} the access store (revision ${result.revisions.get(namespace)})`,
        );
      }
      const transfer = plan.changes.find((c) => c.action === 'created' && c.after?.origin === 'system');
      if (transfer) {
        this.o.events.record(obj, 'Normal', 'OwnershipTransferred', 'Apply', `Ownership transferred; the former owner keeps administrator through RoleBinding ${namespace}/${transfer.name}`);
      }
      if (plan.changes.some((c) => c.action !== 'updated' && c.kind !== 'RoleBinding')) this.requeueDependents(namespace, plan.next, key);
    }
    await this.reportReadiness(obj, plan.next);
    return {};
  }

  private async finalize(obj: AccessResource): Promise<ReconcileResult> {
    if (!obj.metadata.finalizers?.includes(FINALIZER)) return {};
    const { namespace, name } = obj.metadata;
    const result = await this.storeApply(obj, [{ tenant: namespace, upserts: [], deletes: [{ kind: obj.kind as Kind, name }] }]);
    if (result.violations.length > 0) {
      const violations = violationsOf(result, obj);
      const message = violations.map(formatViolation).join('; ');
      this.o.events.record(obj, 'Warning', 'DeleteRefused', 'Delete', `Kept: the access store refused the delete: ${message}`);
      await this.setReady(obj, 'False', 'DeleteRefused', `Delete refused, object kept: ${message}`);
      return { requeueAfterMs: this.refusedRetryMs };
    }
    if (result.written) {
      this.o.events.record(obj, 'Normal', 'Deleted', 'Delete', `Removed from the access store (revision ${result.revisions.get(namespace)})`);
      this.requeueDependents(namespace, result.plans[0]!.next, objectKey(obj.kind, namespace, name));
    }
    await this.o.cluster.removeFinalizer(obj);
    return {};
  }

  /** Built-ins belong to the operator: put back any change, let a delete go and recreate. */
  private async reconcileBuiltIn(obj: AccessResource): Promise<ReconcileResult> {
    const { namespace, name } = obj.metadata;
    const canonical = builtInEntry(obj.kind as Kind, name)!;
    const what = obj.kind === 'Group' ? 'the global group' : `built-in role ${name}`;
    if (isDeleting(obj)) {
      if (obj.metadata.finalizers?.includes(FINALIZER)) await this.o.cluster.removeFinalizer(obj);
      this.o.enqueue(tenantKey(namespace));
      return {};
    }
    if (!sameSpec(obj.spec, canonical.spec) || obj.metadata.labels?.[LABEL_BUILT_IN] !== 'true') {
      await this.o.cluster.restore(obj, canonical.spec, { ...obj.metadata.labels, [LABEL_BUILT_IN]: 'true' });
      this.o.events.record(obj, 'Warning', 'BuiltInRestored', 'Restore', `${what} cannot be changed; its definition was put back`);
      return {};
    }
    await this.setReady(obj, 'True', 'BuiltIn', `${obj.kind === 'Group' ? 'Protected group' : 'Built-in role'}: created and kept by the operator.`);
    return {};
  }

  /** The object is gone from the cluster: a built-in comes back; anything else leaves the store. */
  private async reconcileGone(kind: Kind, namespace: string, name: string): Promise<ReconcileResult> {
    if (isReserved(kind, name)) {
      this.o.enqueue(tenantKey(namespace));
      return {};
    }
    const snapshot = await this.o.store.loadTenant(namespace);
    const stored = snapshot && allEntries(snapshot.state).find((e) => e.kind === kind && e.name === name);
    if (!stored || stored.origin !== 'user') return {};
    // Deleted without passing our finalizer (forced, or before the operator saw it).
    const result = await this.o.store.apply([{ tenant: namespace, upserts: [], deletes: [{ kind, name }] }], { actor: 'operator', source: OPERATOR_SOURCE });
    if (result.violations.length > 0) {
      this.o.log.warn({ key: objectKey(kind, namespace, name), violations: result.violations.map(formatViolation) }, 'object deleted from the cluster, but the store refuses to delete it; kept in the store');
    } else if (result.written) {
      this.o.log.info({ key: objectKey(kind, namespace, name) }, 'object gone from the cluster; removed from the store');
    }
    return {};
  }

  /** Bootstrap and drift correction of one tenant. */
  private async reconcileTenant(namespace: string): Promise<ReconcileResult> {
    // The store creates a new tenant's built-ins itself; the cluster gets them as custom resources.
    const ensured = await this.o.store.apply([{ tenant: namespace, upserts: [] }], { actor: 'operator', source: OPERATOR_SOURCE });
    const newTenant = ensured.written;
    for (const builtIn of builtInEntries()) {
      // Present, or still terminating (its own reconcile lets it go, and brings us back here).
      if (this.o.cluster.get(builtIn.kind, namespace, builtIn.name)) continue;
      const created = await this.o.cluster.create({
        apiVersion: 'rpa-access.io/v1alpha1',
        kind: builtIn.kind,
        metadata: { name: builtIn.name, namespace, labels: { [LABEL_BUILT_IN]: 'true' } },
        spec: builtIn.spec,
      });
      if (!created) continue;
      const what = builtIn.kind === 'Group' ? 'The global group' : `Built-in role ${builtIn.name}`;
      if (newTenant) {
        this.o.events.record(created, 'Normal', 'BuiltInCreated', 'Bootstrap', `${what} created for tenant ${namespace}`);
      } else {
        this.o.events.record(created, 'Warning', 'BuiltInRestored', 'Restore', `${what} was missing from the cluster (deleted?); it cannot be deleted and was recreated. The access store never lost it.`);
      }
    }
    // Drift: what the store holds for this tenant and the cluster does not, goes.
    const state = ensured.plans[0]!.next;
    const orphans = allEntries(state).filter((e) => e.origin === 'user' && !this.o.cluster.get(e.kind, namespace, e.name));
    if (orphans.length > 0) {
      const result = await this.o.store.apply([{ tenant: namespace, upserts: [], deletes: orphans.map((e) => ({ kind: e.kind, name: e.name })) }], { actor: 'operator', source: `${OPERATOR_SOURCE}-drift` });
      if (result.violations.length > 0) this.o.log.warn({ tenant: namespace, violations: result.violations.map(formatViolation) }, 'drift correction refused');
      else this.o.log.info({ tenant: namespace, removed: orphans.map((e) => `${e.kind}/${e.name}`) }, 'drift corrected: removed objects the cluster no longer has');
    }
    // And every object of the cluster is compared with the store by its own reconcile.
    for (const kind of KINDS) for (const obj of this.o.cluster.list(kind, namespace)) this.o.enqueue(objectKey(kind, namespace, obj.metadata.name));
    return { requeueAfterMs: this.driftPeriodMs };
  }
}
