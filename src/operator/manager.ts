/**
 * The operator as a library (the `operator` command, tests and benchmarks start it): informers
 * for the four kinds and for namespaces on every replica (the admission webhook judges requests
 * against them); the controllers (./controllers.ts) only on the leader of a Lease, so replicas can
 * run side by side; losing the lease stops them.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../log.js';
import { loadKubeConfig, reusingConnections } from '../k8s/client.js';
import { HealthServer } from '../k8s/health.js';
import { LeaderElector } from '../k8s/leader.js';
import { createRuntimeMetrics, leaderObserver } from '../k8s/metrics.js';
import { accessMetrics, targetSyncMetrics } from './metrics.js';
import { openStore } from '../store/open.js';
import type { AccessStore } from '../store/store.js';
import { createWebhookMetrics } from '../webhook/metrics.js';
import { startWebhook, type WebhookHandle, type WebhookOptions } from '../webhook/server.js';
import { ClusterCache } from './cluster.js';
import { Controllers, type ControllersOptions } from './controllers.js';
import { OPERATOR_DEFAULTS } from './options.js';


export interface OperatorOptions {
  /** Store URL or embedded-store path; default: $RPA_ACCESS_STORE, else ./.rpa-access/. */
  store?: string;
  kubeconfig?: KubeConfig;
  log?: Logger;
  /** Health, readiness and metrics port; 0 picks a free one. Default OPERATOR_DEFAULTS.healthPort. */
  healthPort?: number;
  /** A separate port for /metrics (the Deployment's 8080); by default metrics share the health port. */
  metricsPort?: number;
  /** Keys reconciled in parallel by each controller; default OPERATOR_DEFAULTS.concurrency. */
  concurrency?: number;
  /** Run the controllers only while holding the Lease (several replicas); otherwise at once. */
  leaderElection: boolean;
  leaseNamespace?: string;
  leaseName?: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  driftPeriodMs?: number;
  /** Informer relist period; default 10 min. */
  resyncPeriodMs?: number;
  /** Serve the validating admission webhook (src/webhook) from this replica's caches. */
  webhook?: WebhookOptions;
  /** The Orchestrator controller's settings (tests), or `false` to run without it. */
  targets?: ControllersOptions['targets'];
}

export interface OperatorHandle {
  readonly healthPort: number;
  readonly store: AccessStore;
  readonly cache: ClusterCache;
  /** The admission webhook, when started with the `webhook` option. */
  readonly webhook?: WebhookHandle;
  isLeader(): boolean;
  /** Resolves when the controllers run with synced caches (on the leader). */
  whenRunning(): Promise<void>;
  /** Waits until the work queue is empty (for tests and benchmarks). */
  idle(): Promise<void>;
  /** Runs the drift pass of every known tenant now, not at its period (benchmarks, tests). */
  resync(): void;
  stop(): Promise<void>;
}

export async function startOperator(opts: OperatorOptions): Promise<OperatorHandle> {
  const log = opts.log ?? createLogger({ name: 'operator' });
  // Whoever built the KubeConfig, the operator's requests share keep-alive connections.
  const kc = opts.kubeconfig ? reusingConnections(opts.kubeconfig) : loadKubeConfig();
  const store = await openStore(opts.store);
  log.info({ store: store.description }, 'store opened');
  const metrics = createRuntimeMetrics();
  const reconcilerMetrics = accessMetrics(metrics.registry);
  const targetMetrics = targetSyncMetrics(metrics.registry);
  const health = new HealthServer({ port: opts.healthPort ?? OPERATOR_DEFAULTS.healthPort, registry: metrics.registry, log });
  const cache = new ClusterCache(kc, log, opts.resyncPeriodMs);
  cache.start();
  // Every replica serves admission from its own cache, leader or not.
  let webhook: WebhookHandle | undefined;
  if (opts.webhook) {
    try {
      const { admissions } = createWebhookMetrics(metrics.registry);
      webhook = await startWebhook({ ...opts.webhook, kc, cache, log: log.child({ component: 'webhook' }), onReview: (outcome) => admissions.inc({ result: outcome }) });
    } catch (err) {
      await cache.stop();
      await store.close();
      throw err;
    }
  }
  let controllers: Controllers | undefined;
  let running: () => void = () => undefined;
  const runningPromise = new Promise<void>((resolve) => (running = resolve));

  health.addReadyCheck('store', () => store.revisions());
  health.addReadyCheck('caches', () => {
    // Every replica serves the webhook from its caches: ready once they are synced.
    if (!cache.synced()) throw new Error('informer caches not synced');
  });
  const healthPort = await health.listen();
  const metricsServer = opts.metricsPort !== undefined && opts.metricsPort !== opts.healthPort
    ? new HealthServer({ port: opts.metricsPort, registry: metrics.registry, log })
    : undefined;
  await metricsServer?.listen();

  const lead = async (signal: AbortSignal) => {
    controllers = new Controllers(kc, cache, store, log, metrics, { metrics: reconcilerMetrics, targetMetrics, concurrency: opts.concurrency ?? OPERATOR_DEFAULTS.concurrency, driftPeriodMs: opts.driftPeriodMs, ...(opts.targets !== undefined ? { targets: opts.targets } : {}) });
    if (await controllers.start(signal)) running();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const c = controllers;
    controllers = undefined;
    await c.stop();
  };

  let elector: LeaderElector | undefined;
  const stopSelf = new AbortController();
  let leaderless: Promise<void> | undefined;
  if (opts.leaderElection) {
    elector = new LeaderElector({
      kc,
      namespace: opts.leaseNamespace ?? process.env.POD_NAMESPACE ?? 'default',
      name: opts.leaseName ?? 'rpa-access-operator',
      identity: opts.identity ?? `${os.hostname()}_${randomUUID()}`,
      leaseDurationMs: opts.leaseDurationMs,
      renewDeadlineMs: opts.renewDeadlineMs,
      retryPeriodMs: opts.retryPeriodMs,
      onStartedLeading: lead,
      onLeadingChange: leaderObserver(metrics, 'rpa-access'),
      onNewLeader: (identity) => log.info({ leader: identity }, 'leader observed'),
      log: log.child({ component: 'leader' }),
    });
    void elector.run();
  } else {
    leaderless = lead(stopSelf.signal);
  }

  return {
    healthPort,
    store,
    cache,
    webhook,
    isLeader: () => (elector ? elector.isLeader() : true),
    whenRunning: () => runningPromise,
    async idle() {
      // Quiet for a moment: no key waiting, none in flight (requeues after a delay do not count).
      for (let quiet = 0; quiet < 3; ) {
        await new Promise((r) => setTimeout(r, 50));
        quiet = controllers && !controllers.busy() ? quiet + 1 : 0;
      }
    },
    resync() {
      controllers?.resync();
    },
    async stop() {
      stopSelf.abort();
      await elector?.stop();
      await leaderless;
      await webhook?.close();
      await cache.stop();
      await health.close();
      await metricsServer?.close();
      await store.close();
    },
  };
}
