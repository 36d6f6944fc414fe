/**
 * `rpa-access operator`: informers for the four kinds and for namespaces feed one work queue;
 * the shared reconciler drains it with bounded parallelism. Only the leader (a Lease) runs
 * controllers, so replicas can run side by side; losing the lease stops them.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubeConfig, KubernetesObject, V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ANNOTATION_PAUSED, FINALIZER, KINDS, LABEL_TENANT, type Kind } from '../model/catalog.js';
import { loadKubeConfig } from '../k8s/client.js';
import { EventRecorder } from '../k8s/events.js';
import { HealthServer } from '../k8s/health.js';
import { Informer } from '../k8s/informer.js';
import { LeaderElector } from '../k8s/leader.js';
import { createRuntimeMetrics, leaderObserver, reconcileObserver, workQueueObserver } from '../k8s/metrics.js';
import { WorkQueue, reconcileWorker } from '../k8s/workqueue.js';
import { AccessReconciler, StoreUnavailableError, tenantKey } from '../controllers/reconciler.js';
import { objectKey, type AccessResource } from '../api/v1alpha1/resource.js';
import { openStore, resolveStoreUrl } from '../store/open.js';
import type { AccessStore } from '../store/store.js';
import { createLogger } from '../log.js';
import { KubeCluster, accessInformers, type Informers } from './cluster.js';
import { startWebhook, webhookOptionsFromEnv, type WebhookHandle, type WebhookOptions } from '../webhook/server.js';

export interface OperatorOptions {
  store?: string;
  kubeconfig?: KubeConfig;
  log?: Logger;
  /** Health, readiness and metrics port; 0 picks a free one. Default 8081. */
  healthPort?: number;
  /** A separate port for /metrics (the Deployment's 8080); by default metrics share the health port. */
  metricsPort?: number;
  /** Keys reconciled in parallel; default 8 (the API server, not our CPU, is the bound: see bench/). */
  concurrency?: number;
  leaderElection?: boolean;
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
  stop(): Promise<void>;
}

type Obj = AccessResource & KubernetesObject;

function isPaused(obj: AccessResource): boolean {
  return obj.metadata.annotations?.[ANNOTATION_PAUSED] === 'true';
}

/** Like controller-runtime's GenerationChangedPredicate, plus what our reconcile reads from metadata. */
function worthReconciling(obj: Obj, old: Obj | undefined): boolean {
  if (!old) return true;
  const a = obj.metadata;
  const b = old.metadata;
  return (
    a.generation !== b.generation ||
    Boolean(a.deletionTimestamp) !== Boolean(b.deletionTimestamp) ||
    // Our finalizer being added is our own write: nothing to do. Being removed by someone else is.
    (Boolean(b.finalizers?.includes(FINALIZER)) && !a.finalizers?.includes(FINALIZER)) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    a.annotations?.[ANNOTATION_PAUSED] !== b.annotations?.[ANNOTATION_PAUSED]
  );
}

/**
 * The informer caches of the four kinds and of namespaces. They run on every replica, leader or
 * not: the admission webhook judges requests against them, and a standby takes over warm.
 */
export class ClusterCache {
  readonly informers: Informers;
  readonly namespaces: Informer<V1Namespace>;

  constructor(kc: KubeConfig, log: Logger, resyncPeriodMs?: number) {
    const informerLog = log.child({ component: 'informer' });
    this.informers = accessInformers(kc, (path, kind) => new Informer<Obj>({ kc, path, name: kind, resyncPeriodMs, log: informerLog }));
    this.namespaces = new Informer<V1Namespace>({ kc, path: '/api/v1/namespaces', name: 'Namespace', resyncPeriodMs, log: informerLog });
  }

  private all(): Informer<KubernetesObject>[] {
    return [...KINDS.map((k) => this.informers[k]), this.namespaces] as Informer<KubernetesObject>[];
  }

  start(): void {
    for (const i of this.all()) i.start();
  }

  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    const synced = await Promise.all(this.all().map((i) => i.waitForSync({ signal })));
    return !synced.includes(false);
  }

  synced(): boolean {
    return this.all().every((i) => i.hasSynced());
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }
}

const STORE_PROBE_MS = 1_000;

/** The leader's part: the work queue and the reconciler draining it. */
class Controllers {
  readonly queue: WorkQueue;
  private readonly events: EventRecorder;
  private readonly tenants = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    kc: KubeConfig,
    private readonly cache: ClusterCache,
    store: AccessStore,
    private readonly log: Logger,
    metrics: ReturnType<typeof createRuntimeMetrics>,
    opts: OperatorOptions,
  ) {
    this.queue = new WorkQueue({
      name: 'rpa-access',
      concurrency: opts.concurrency ?? 8,
      observer: workQueueObserver(metrics, 'rpa-access'),
      onError: (key, err) => log.error({ key, err }, 'reconcile worker failed'),
    });
    this.events = new EventRecorder({ kc, log: log.child({ component: 'events' }) });
    const reconciler = new AccessReconciler({
      store,
      cluster: new KubeCluster(kc, cache.informers),
      events: { record: (obj, type, reason, action, note) => this.events.record(obj as unknown as KubernetesObject, type, reason, action, note) },
      log: log.child({ component: 'reconciler' }),
      enqueue: (key, delayMs) => (delayMs ? this.queue.addAfter(key, delayMs) : this.queue.add(key)),
      driftPeriodMs: opts.driftPeriodMs,
      isPaused,
    });
    const observe = reconcileObserver(metrics, 'rpa-access');
    this.worker = reconcileWorker(this.queue, (key) => reconciler.reconcile(key), {
      onResult: (key, outcome, seconds, err) => {
        observe(key, outcome, seconds, err);
        if (err) log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'reconcile failed; will retry with backoff');
        if (err instanceof StoreUnavailableError) this.watchStoreRecovery(store);
      },
    });
  }

  private storeProbe: ReturnType<typeof setInterval> | undefined;

  /**
   * While the store is down every object backs off on its own, up to a minute. Rather than wait
   * that out, ask the store once a second whether it answers and, when it does, retry at once
   * every object that failed meanwhile.
   */
  private watchStoreRecovery(store: AccessStore): void {
    if (this.storeProbe || this.queue.isShuttingDown()) return;
    let probing = false;
    this.storeProbe = setInterval(() => {
      if (probing) return;
      probing = true;
      store.revisions().then(
        () => {
          clearInterval(this.storeProbe);
          this.storeProbe = undefined;
          const n = this.queue.retryFailedNow();
          this.log.info({ retried: n }, 'the access store answers again; retrying the objects that failed meanwhile');
        },
        () => undefined,
      ).finally(() => (probing = false));
    }, STORE_PROBE_MS);
    this.storeProbe.unref?.();
  }

  private readonly worker: ReturnType<typeof reconcileWorker>;

  /** A namespace becomes a tenant when any of our kinds appears in it (or it is labelled). */
  private noteTenant(namespace: string): void {
    if (this.tenants.has(namespace)) return;
    this.tenants.add(namespace);
    this.queue.add(tenantKey(namespace));
  }

  /** Subscribes to the caches (which replay what they hold) and starts the workers once synced. */
  async start(signal: AbortSignal): Promise<boolean> {
    for (const kind of KINDS) {
      const informer = this.cache.informers[kind];
      for (const obj of informer.list()) this.enqueueObject(kind, obj);
      this.unsubscribe.push(
        informer.on((event, obj, old) => {
          if (event === 'update' && !worthReconciling(obj, old)) return;
          this.enqueueObject(kind, obj);
        }),
      );
    }
    const onNamespace = (ns: V1Namespace) => {
      if (ns.metadata?.labels?.[LABEL_TENANT] === 'true') this.noteTenant(ns.metadata.name!);
    };
    for (const ns of this.cache.namespaces.list()) onNamespace(ns);
    this.unsubscribe.push(this.cache.namespaces.on((event, ns) => event !== 'delete' && onNamespace(ns)));
    if (!(await this.cache.waitForSync(signal)) || signal.aborted) return false;
    this.log.info({ tenants: [...this.tenants] }, 'caches synced; starting workers');
    this.queue.start(this.worker);
    return true;
  }

  private enqueueObject(kind: Kind, obj: Obj): void {
    this.noteTenant(obj.metadata.namespace);
    this.queue.add(objectKey(kind, obj.metadata.namespace, obj.metadata.name));
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    clearInterval(this.storeProbe);
    await this.queue.shutDown();
    await this.events.close();
  }
}

export async function startOperator(opts: OperatorOptions = {}): Promise<OperatorHandle> {
  const log = opts.log ?? createLogger({ name: 'operator' });
  const kc = opts.kubeconfig ?? loadKubeConfig();
  const store = await openStore(resolveStoreUrl(opts.store));
  log.info({ store: store.description }, 'store opened');
  const metrics = createRuntimeMetrics();
  const health = new HealthServer({ port: opts.healthPort ?? 8081, registry: metrics.registry, log });
  const cache = new ClusterCache(kc, log, opts.resyncPeriodMs);
  cache.start();
  // Every replica serves admission from its own cache, leader or not.
  let webhook: WebhookHandle | undefined;
  if (opts.webhook) {
    try {
      webhook = await startWebhook({ ...opts.webhook, kc, cache, log: log.child({ component: 'webhook' }) });
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
    controllers = new Controllers(kc, cache, store, log, metrics, opts);
    if (await controllers.start(signal)) running();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const c = controllers;
    controllers = undefined;
    await c.stop();
  };

  let elector: LeaderElector | undefined;
  const stopSelf = new AbortController();
  let leaderless: Promise<void> | undefined;
  if (opts.leaderElection ?? true) {
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
        const q = controllers?.queue;
        quiet = q && q.depth === 0 && q.inFlight === 0 ? quiet + 1 : 0;
      }
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

/** Options of `rpa-access operator`, as the CLI hands them over (see src/cli/delegate.ts). */
export interface OperatorRunOptions {
  storeUrl: string;
  storeDescription: string;
  logger: Logger;
  leaderElect?: boolean;
  healthPort?: number;
  metricsPort?: number;
  webhookPort?: number;
  webhookCertDir?: string;
  concurrency?: number;
  leaseNamespace?: string;
  /** --lease-duration in ms; the elector derives the renew deadline and retry period from it. */
  leaseDuration?: number;
}

/** Entry point of `rpa-access operator`: runs until SIGTERM or SIGINT. */
export async function run(options: OperatorRunOptions): Promise<number> {
  const log = options.logger;
  const handle = await startOperator({
    store: options.storeUrl,
    log,
    healthPort: options.healthPort,
    metricsPort: options.metricsPort,
    concurrency: options.concurrency,
    leaderElection: options.leaderElect ?? false,
    leaseNamespace: options.leaseNamespace,
    leaseDurationMs: options.leaseDuration, // the elector scales renew deadline and retry period with it
    webhook: options.webhookPort !== undefined ? webhookOptionsFromEnv(options.webhookPort, options.webhookCertDir) : undefined,
  });
  log.info({ store: options.storeDescription, healthPort: handle.healthPort, leaderElection: options.leaderElect ?? false }, 'operator started');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('shutting down');
  await handle.stop();
  return 0;
}
