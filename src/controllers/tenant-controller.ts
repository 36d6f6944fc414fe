/**
 * The tenant controller: one namespace (the work-queue key) at a time, bootstrap and drift
 * correction. A new tenant gets its built-ins in the store (the store creates them) and as custom
 * resources in the cluster; a built-in missing from the cluster comes back; what the store holds
 * for the tenant and the cluster does not, goes; and every object of the tenant is handed to the
 * object controller to be compared with the store. Runs again every drift period.
 */
import { API_VERSION_FULL, KINDS_REFERENCED_FIRST, LABEL_BUILT_IN } from '../model/catalog.js';
import { formatViolation } from '../model/invariants.js';
import { storeOnly } from '../model/ghosts.js';
import { builtInEntries, builtInName } from '../model/tenant.js';
import type { Kind } from '../model/catalog.js';
import type { TenantState } from '../model/types.js';
import { OPERATOR_SOURCE } from '../store/store.js';
import type { ReconcileResult } from '../k8s/workqueue.js';
import { objectKey } from '../api/v1alpha1/resource.js';
import { allInstalled, crdName, type ReconcileCore } from './core.js';

interface Orphan {
  kind: Kind;
  name: string;
}

export interface TenantControllerOptions {
  /** How often each tenant is compared with the store even without changes. */
  driftPeriodMs?: number;
  /** How soon a tenant with ghosts (orphans the store refused to delete) is looked at again. */
  ghostRetryMs?: number;
}

export class TenantReconciler {
  private readonly driftPeriodMs: number;
  private readonly ghostRetryMs: number;

  constructor(
    private readonly core: ReconcileCore,
    o: TenantControllerOptions = {},
  ) {
    this.driftPeriodMs = o.driftPeriodMs ?? 5 * 60_000;
    this.ghostRetryMs = o.ghostRetryMs ?? 60_000;
  }

  async reconcile(namespace: string): Promise<ReconcileResult> {
    const { core } = this;
    // The store creates a new tenant's built-ins itself; the cluster gets them as custom resources.
    const ensured = await core.apply([{ tenant: namespace, upserts: [] }]);
    const newTenant = ensured.written;
    // While a CRD is being deleted (an uninstall) or missing, nothing is created in the cluster.
    const installed = allInstalled(await core.crdStates({ fresh: false }));
    for (const builtIn of installed ? builtInEntries() : []) {
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
    const state = ensured.plans[0]!.next;
    if (installed) await core.mirrorStoreCreated(namespace, state);
    await this.repairDrift(namespace, state);
    // And every object of the cluster is compared with the store by its own reconcile.
    for (const kind of KINDS_REFERENCED_FIRST) for (const obj of core.cluster.list(kind, namespace)) core.queues.enqueueObject(objectKey(kind, namespace, obj.metadata.name));
    const ghosts = core.ghosts.get(namespace)?.size ?? 0;
    return { requeueAfterMs: ghosts > 0 ? Math.min(this.driftPeriodMs, this.ghostRetryMs) : this.driftPeriodMs };
  }

  /**
   * Drift: what the store holds for this tenant and the cluster does not show goes, object by
   * object: one the store refuses to delete is reported and kept, and holds back no other.
   */
  private async repairDrift(namespace: string, state: TenantState): Promise<void> {
    const { core } = this;
    const missingFromCache = storeOnly(state, (kind, name) => core.cluster.get(kind, namespace, name) !== undefined);
    const candidates = await core.absentFromCluster(namespace, missingFromCache);
    const crds = candidates.length > 0 ? await core.crdStates({ fresh: true }) : undefined;
    if (crds && !allInstalled(crds)) {
      // An uninstall (or a half-finished install): what the cluster lacks says nothing about access.
      core.log.warn(
        { tenant: namespace, crds: Object.fromEntries([...crds].map(([k, c]) => [crdName(k), c.phase])) },
        'not every rpa-access CRD is installed (an uninstall in progress?): drift correction skipped; the access store keeps the tenant as it is',
      );
      return;
    }
    const kept = new Map<string, string>();
    let orphans: Orphan[] = candidates.map((e) => ({ kind: e.kind, name: e.name }));
    if (orphans.length > 0 && core.store.objectTimes) {
      // Older than the CRD of its kind: it was never in this install of the cluster (a reinstall
      // before the documents are applied again, or another door): a ghost, never a revocation.
      const times = await core.store.objectTimes(namespace);
      orphans = orphans.filter((o) => {
        const createdAt = crds?.get(o.kind)?.createdAt;
        const at = times.get(`${o.kind}/${o.name}`);
        if (createdAt === undefined || at === undefined || Date.parse(at) >= createdAt) return true;
        kept.set(`${o.kind}/${o.name}`, `last written to the access store before the ${crdName(o.kind)} CRD was installed; apply its document to adopt it, or delete it from the store`);
        return false;
      });
    }
    const removed: Orphan[] = [];
    const refused: { orphan: Orphan; why: string }[] = [];
    await this.removeOrphans(namespace, orphans, removed, refused);
    if (removed.length > 0) {
      core.log.info({ tenant: namespace, removed: removed.map((e) => `${e.kind}/${e.name}`) }, 'drift corrected: removed objects the cluster no longer has');
    }
    const global = core.cluster.get('Group', namespace, 'global');
    for (const { orphan, why } of refused) {
      const id = `${orphan.kind} ${namespace}/${orphan.name}`;
      kept.set(`${orphan.kind}/${orphan.name}`, why);
      core.metrics?.orphanRefused(namespace, orphan.kind);
      core.log.warn({ tenant: namespace, object: `${orphan.kind}/${orphan.name}`, refusal: why }, 'object gone from the cluster, but the access store refuses to delete it: it keeps granting; the other orphans of the tenant were removed');
      if (global) {
        core.events.record(
          global, 'Warning', 'OrphanKept', 'DriftRepair',
          `${id} is gone from the cluster, but the access store refuses to delete it, so it still counts: ${why}. Do that and it is removed at once; the tenant's other objects are not held back.`,
        );
      }
    }
    if (kept.size > 0) core.ghosts.set(namespace, kept);
    else core.ghosts.delete(namespace);
    core.metrics?.ghosts(namespace, kept.size);
  }

  /**
   * Deletes the orphans in as few applies as it can: all at once; when refused, the objects the
   * refusals name are set aside and the rest tried again; when a refusal names none of them
   * (an invariant across objects), one by one.
   */
  private async removeOrphans(namespace: string, orphans: Orphan[], removed: Orphan[], refused: { orphan: Orphan; why: string }[]): Promise<void> {
    const drift = (batch: Orphan[]) =>
      this.core.apply([{ tenant: namespace, upserts: [], deletes: batch.map((e) => ({ kind: e.kind, name: e.name })) }], `${OPERATOR_SOURCE}-drift`);
    let pending = orphans;
    while (pending.length > 0) {
      const result = await drift(pending);
      if (result.violations.length === 0) {
        removed.push(...pending);
        return;
      }
      const named = (o: Orphan) => result.violations.filter((v) => v.kind === o.kind && v.name === o.name);
      const blamed = pending.filter((o) => named(o).length > 0);
      if (blamed.length === 0) break;
      for (const o of blamed) refused.push({ orphan: o, why: named(o).map(formatViolation).join('; ') });
      pending = pending.filter((o) => named(o).length === 0);
    }
    for (const o of pending) {
      const result = await drift([o]);
      if (result.violations.length === 0) removed.push(o);
      else refused.push({ orphan: o, why: result.violations.map(formatViolation).join('; ') });
    }
  }
}
