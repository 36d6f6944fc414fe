/**
 * The tenant controller: one namespace (the work-queue key) at a time, bootstrap and drift
 * correction. A new tenant gets its built-ins in the store (the store creates them) and as custom
 * resources in the cluster; a built-in missing from the cluster comes back; what the store holds
 * for the tenant and the cluster does not, goes; and every object of the tenant is handed to the
 * object controller to be compared with the store. Runs again every drift period.
 */
import { API_VERSION_FULL, KINDS, LABEL_BUILT_IN } from '../model/catalog.js';
import { formatViolation } from '../model/invariants.js';
import { allEntries, builtInEntries, builtInName } from '../model/tenant.js';
import { OPERATOR_SOURCE } from '../store/store.js';
import type { ReconcileResult } from '../k8s/workqueue.js';
import { objectKey } from '../api/v1alpha1/resource.js';
import type { ReconcileCore } from './core.js';

export interface TenantControllerOptions {
  /** How often each tenant is compared with the store even without changes. */
  driftPeriodMs?: number;
}

export class TenantReconciler {
  private readonly driftPeriodMs: number;

  constructor(
    private readonly core: ReconcileCore,
    o: TenantControllerOptions = {},
  ) {
    this.driftPeriodMs = o.driftPeriodMs ?? 5 * 60_000;
  }

  async reconcile(namespace: string): Promise<ReconcileResult> {
    const { core } = this;
    // The store creates a new tenant's built-ins itself; the cluster gets them as custom resources.
    const ensured = await core.apply([{ tenant: namespace, upserts: [] }]);
    const newTenant = ensured.written;
    for (const builtIn of builtInEntries()) {
      // Present, or still terminating (its own reconcile lets it go, and brings us back here).
      if (core.cluster.get(builtIn.kind, namespace, builtIn.name)) continue;
      const created = await core.cluster.create({
        apiVersion: API_VERSION_FULL,
        kind: builtIn.kind,
        metadata: { name: builtIn.name, namespace, labels: { [LABEL_BUILT_IN]: 'true' } },
        spec: builtIn.spec,
      });
      if (!created) continue;
      const what = builtInName(builtIn.kind, builtIn.name, true);
      if (newTenant) {
        core.events.record(created, 'Normal', 'BuiltInCreated', 'Bootstrap', `${what} created for tenant ${namespace}`);
      } else {
        core.events.record(created, 'Warning', 'BuiltInRestored', 'Restore', `${what} was missing from the cluster (deleted?); it cannot be deleted and was recreated. The access store never lost it.`);
      }
    }
    // Drift: what the store holds for this tenant and the cluster does not, goes.
    const state = ensured.plans[0]!.next;
    const orphans = allEntries(state).filter((e) => e.origin === 'user' && !core.cluster.get(e.kind, namespace, e.name));
    if (orphans.length > 0) {
      const result = await core.apply([{ tenant: namespace, upserts: [], deletes: orphans.map((e) => ({ kind: e.kind, name: e.name })) }], `${OPERATOR_SOURCE}-drift`);
      if (result.violations.length > 0) core.log.warn({ tenant: namespace, violations: result.violations.map(formatViolation) }, 'drift correction refused');
      else core.log.info({ tenant: namespace, removed: orphans.map((e) => `${e.kind}/${e.name}`) }, 'drift corrected: removed objects the cluster no longer has');
    }
    // And every object of the cluster is compared with the store by its own reconcile.
    for (const kind of KINDS) for (const obj of core.cluster.list(kind, namespace)) core.queues.enqueueObject(objectKey(kind, namespace, obj.metadata.name));
    return { requeueAfterMs: this.driftPeriodMs };
  }
}
