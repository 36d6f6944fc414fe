/**
 * Prometheus metrics with controller-runtime's and client-go's names and labels, so the
 * dashboards and alerts written for Go operators work for this one unchanged.
 *
 * Everything lives in one Registry (not prom-client's global one): tests and several
 * operators in one process do not collide, and /metrics serves exactly this registry.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReconcileOutcome, ReconcileWorkerOptions, WorkQueueObserver } from './workqueue.js';

/** controller-runtime's reconcile_time_seconds buckets. */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3,
  3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go's workqueue buckets: 10 ns to 1000 s, times 10. */
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * Math.pow(10, i));

const OUTCOMES: ReconcileOutcome[] = ['success', 'error', 'requeue', 'requeue_after'];

export interface RuntimeMetrics {
  registry: Registry;
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  workqueueDepth: Gauge<'name'>;
  workqueueAdds: Counter<'name'>;
  workqueueQueueDuration: Histogram<'name'>;
  workqueueWorkDuration: Histogram<'name'>;
  workqueueRetries: Counter<'name'>;
  leaderStatus: Gauge<'name'>;
  eventsDropped: Counter<'type'>;
}

export interface RuntimeMetricsOptions {
  /** Default: a new Registry. */
  registry?: Registry;
  /** Process and Node.js metrics (CPU, memory, event loop lag...); default true. */
  defaultMetrics?: boolean;
}

export function createRuntimeMetrics(opts: RuntimeMetricsOptions = {}): RuntimeMetrics {
  const registry = opts.registry ?? new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: RECONCILE_BUCKETS,
      registers,
    }),
    workqueueDepth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers }),
    workqueueAdds: new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers }),
    workqueueQueueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    workqueueWorkDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    workqueueRetries: new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers,
    }),
    eventsDropped: new Counter({
      name: 'rpa_access_events_dropped_total',
      help: 'Events not written because the write queue was full (the API server slow or unreachable), by type; Warnings are kept before Normal ones',
      labelNames: ['type'],
      registers,
    }),
  };
}

/** The WorkQueueObserver feeding the workqueue_* metrics of the queue `name`; pass it as `observer`. */
export function workQueueObserver(m: RuntimeMetrics, name: string): WorkQueueObserver {
  // Series exist (at 0) from the start, so rate() and absent() behave before the first add.
  m.workqueueDepth.set({ name }, 0);
  m.workqueueAdds.inc({ name }, 0);
  m.workqueueRetries.inc({ name }, 0);
  return {
    onAdd: () => m.workqueueAdds.inc({ name }),
    onDepth: (depth) => m.workqueueDepth.set({ name }, depth),
    onQueueLatency: (s) => m.workqueueQueueDuration.observe({ name }, s),
    onWorkDuration: (s) => m.workqueueWorkDuration.observe({ name }, s),
    onRetry: () => m.workqueueRetries.inc({ name }),
  };
}

/** The onResult callback of reconcileWorker() feeding the controller_runtime_* metrics. */
export function reconcileObserver(
  m: RuntimeMetrics,
  controller: string,
  next?: ReconcileWorkerOptions['onResult'],
): NonNullable<ReconcileWorkerOptions['onResult']> {
  for (const result of OUTCOMES) m.reconcileTotal.inc({ controller, result }, 0);
  m.reconcileErrors.inc({ controller }, 0);
  return (key, outcome, seconds, err) => {
    m.reconcileTotal.inc({ controller, result: outcome });
    if (outcome === 'error') m.reconcileErrors.inc({ controller });
    m.reconcileTime.observe({ controller }, seconds);
    next?.(key, outcome, seconds, err);
  };
}

/** The onLeadingChange callback of LeaderElector feeding leader_election_master_status. */
export function leaderObserver(m: RuntimeMetrics, name: string): (leading: boolean) => void {
  m.leaderStatus.set({ name }, 0);
  return (leading) => m.leaderStatus.set({ name }, leading ? 1 : 0);
}
