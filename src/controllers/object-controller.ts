/**
 * The object controller: one User, Group, Role or RoleBinding custom resource (key
 * `Kind/namespace/name`) into the access store, its Ready condition back into the cluster. Built-ins
 * belong to the operator and are put back; a delete passes through the store behind our finalizer.
 */
import { FINALIZER, LABEL_BUILT_IN, type Kind } from '../model/catalog.js';
import { formatViolation, type Violation } from '../model/invariants.js';
import { allEntries, builtInEntry, builtInName, isReserved, sameSpec } from '../model/tenant.js';
import type { ApplyResult } from '../store/store.js';
import type { ReconcileResult } from '../k8s/workqueue.js';
import { isDeleting, objectKey, parseObjectKey, toEntry, type AccessResource } from '../api/v1alpha1/resource.js';

/** How often a directory Group's status (active sessions, provisioned users) is refreshed. */
export const DIRECTORY_STATUS_PERIOD_MS = 60_000;
import type { ReconcileCore } from './core.js';

export interface ObjectControllerOptions {
  /** How soon a refused delete is tried again. */
  refusedRetryMs?: number;
  /** An object the controller leaves alone for now (e.g. annotated paused). */
  isPaused?: (obj: AccessResource) => boolean;
}

function violationsOf(result: ApplyResult, obj: AccessResource): Violation[] {
  const own = result.violations.filter((v) => v.kind === obj.kind && v.name === obj.metadata.name);
  return own.length > 0 ? own : result.violations;
}

export class ObjectReconciler {
  private readonly refusedRetryMs: number;

  constructor(
    private readonly core: ReconcileCore,
    private readonly o: ObjectControllerOptions = {},
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
    if (this.o.isPaused?.(obj)) return {};
    if (isReserved(kind, name)) return this.reconcileBuiltIn(obj);
    return isDeleting(obj) ? this.finalize(obj) : this.upsert(obj);
  }

  private async upsert(obj: AccessResource): Promise<ReconcileResult> {
    const { core } = this;
    const { namespace, name } = obj.metadata;
    const key = objectKey(obj.kind, namespace, name);
    if (!obj.metadata.finalizers?.includes(FINALIZER)) {
      // First, so that a delete can never bypass the store.
      await core.cluster.addFinalizer(obj);
    }
    const { entry, problems } = toEntry(obj);
    if (!entry) {
      const message = problems.join('; ');
      core.events.record(obj, 'Warning', 'Invalid', 'Validate', message);
      await core.setReady(obj, 'False', 'Invalid', message);
      return {};
    }
    const result = await core.applyFor(obj, [{ tenant: namespace, upserts: [entry] }]);
    const plan = result.plans[0]!;
    if (result.violations.length > 0) {
      const violations = violationsOf(result, obj);
      const message = violations.map(formatViolation).join('; ');
      core.events.record(obj, 'Warning', violations[0]!.rule, 'Apply', `Refused by the access store: ${message}`);
      await core.setReady(obj, 'False', violations[0]!.rule, message);
      return {};
    }
    if (result.written) {
      const own = plan.changes.find((c) => c.kind === obj.kind && c.name === name);
      if (own) {
        const drift = obj.status?.observedGeneration === obj.metadata.generation && own.action === 'updated';
        core.events.record(
          obj, 'Normal', drift ? 'DriftCorrected' : own.action === 'created' ? 'Created' : 'Updated', 'Apply',
          drift ? `The access store differed from this object; put back (revision ${result.revisions.get(namespace)})` : `${own.action === 'created' ? 'Created in' : 'Updated in'} the access store (revision ${result.revisions.get(namespace)})`,
        );
      }
      const transfer = plan.changes.find((c) => c.action === 'created' && c.after?.origin === 'system');
      if (transfer) {
        core.events.record(obj, 'Normal', 'OwnershipTransferred', 'Apply', `Ownership transferred; the former owner keeps administrator through RoleBinding ${namespace}/${transfer.name}`);
      }
      if (plan.changes.some((c) => c.action !== 'updated' && c.kind !== 'RoleBinding')) core.requeueDependents(namespace, plan.next, key);
    }
    await core.reportReadiness(obj, plan.next);
    // A directory Group's status counts sessions, which logins change without touching the
    // cluster: look again now and then.
    if (obj.kind === 'Group' && (obj.spec as { directory?: unknown } | undefined)?.directory) return { requeueAfterMs: DIRECTORY_STATUS_PERIOD_MS };
    return {};
  }

  private async finalize(obj: AccessResource): Promise<ReconcileResult> {
    const { core } = this;
    if (!obj.metadata.finalizers?.includes(FINALIZER)) return {};
    const { namespace, name } = obj.metadata;
    const result = await core.applyFor(obj, [{ tenant: namespace, upserts: [], deletes: [{ kind: obj.kind as Kind, name }] }]);
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
    if (!sameSpec(obj.spec, canonical.spec) || obj.metadata.labels?.[LABEL_BUILT_IN] !== 'true') {
      await core.cluster.restore(obj, canonical.spec, { ...obj.metadata.labels, [LABEL_BUILT_IN]: 'true' });
      core.events.record(obj, 'Warning', 'BuiltInRestored', 'Restore', `${builtInName(obj.kind as Kind, name)} cannot be changed; its definition was put back`);
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
    // Deleted without passing our finalizer (forced, or before the operator saw it).
    const result = await core.apply([{ tenant: namespace, upserts: [], deletes: [{ kind, name }] }]);
    if (result.violations.length > 0) {
      core.log.warn({ key: objectKey(kind, namespace, name), violations: result.violations.map(formatViolation) }, 'object deleted from the cluster, but the store refuses to delete it; kept in the store');
    } else if (result.written) {
      core.log.info({ key: objectKey(kind, namespace, name) }, 'object gone from the cluster; removed from the store');
    }
    return {};
  }
}
