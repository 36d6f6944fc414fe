/**
 * The operator's own metrics, beside the controller runtime's (src/k8s/metrics.ts): what the
 * access store holds that the cluster does not show, and why; how the targets (Orchestrators)
 * sync. Registered once per operator on its registry (leadership terms come and go; metrics stay).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Kind } from '../model/catalog.js';
import type { ReconcilerMetrics } from '../controllers/core.js';
import type { TargetSyncMetrics } from '../controllers/orchestrator.js';

export function accessMetrics(registry: Registry): ReconcilerMetrics {
  const registers = [registry];
  const ghosts = new Gauge({
    name: 'rpa_access_ghost_objects',
    help: 'Objects the access store holds for a tenant that the cluster does not show (kept after the drift pass: refused deletes, or older than the CRDs); list them with `rpa-access ghosts`',
    labelNames: ['tenant'],
    registers,
  });
  const refused = new Counter({
    name: 'rpa_access_orphan_delete_refused_total',
    help: 'Drift repair: objects gone from the cluster whose delete the access store refused (each refusal of each pass)',
    labelNames: ['tenant', 'kind'],
    registers,
  });
  const released = new Counter({
    name: 'rpa_access_uninstall_released_total',
    help: 'Objects let go without touching the access store because their CustomResourceDefinition was being deleted (an uninstall)',
    labelNames: ['kind'],
    registers,
  });
  return {
    ghosts: (tenant: string, count: number) => ghosts.set({ tenant }, count),
    orphanRefused: (tenant: string, kind: Kind) => refused.inc({ tenant, kind }),
    uninstallReleased: (kind: Kind) => released.inc({ kind }),
  };
}

const SYNC_RESULTS = ['success', 'error'] as const;

/** Syncs of each Orchestrator target by result, and when each last synced to the end. */
export function targetSyncMetrics(registry: Registry): TargetSyncMetrics {
  const registers = [registry];
  const syncs = new Counter({
    name: 'rpa_access_target_sync_total',
    help: 'Syncs of an Orchestrator target (label target: namespace/name) by result: success (ran to the end) or error (see its Synced condition: kubectl describe rpaorch)',
    labelNames: ['target', 'result'],
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'rpa_access_target_last_success_timestamp_seconds',
    help: 'When the Orchestrator target last synced to the end (Unix time, seconds)',
    labelNames: ['target'],
    registers,
  });
  return {
    synced(target, result, at) {
      syncs.inc({ target, result });
      if (result === 'success') lastSuccess.set({ target }, at / 1000);
    },
    forget(target) {
      for (const result of SYNC_RESULTS) syncs.remove({ target, result });
      lastSuccess.remove({ target });
    },
  };
}
