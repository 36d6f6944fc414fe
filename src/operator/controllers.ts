/**
 * The leader's part: the object controller and the tenant controller, each with its own work
 * queue and its own metric labels (`controller="object"` / `"tenant"`), fed by the informer
 * caches that every replica keeps (./cluster.ts).
 */
import type { KubeConfig, KubernetesObject, V1Namespace } from '@kubernetes/client-node';
import { KINDS, KINDS_REFERENCED_FIRST, LABEL_TENANT, type Kind } from '../model/catalog.js';
import type { Logger } from '../log.js';
import type { AccessStore } from '../store/store.js';
import { EventRecorder } from '../k8s/events.js';
import { reconcileObserver, workQueueObserver, type RuntimeMetrics } from '../k8s/metrics.js';
import { WorkQueue, reconcileBatchWorker, reconcileWorker, type BatchOptions, type BatchWorker, type KeyOutcome, type ReconcileOutcome, type ReconcileResult } from '../k8s/workqueue.js';
import { objectKey, parseObjectKey } from '../api/v1alpha1/resource.js';
import { ReconcileCore, StoreUnavailableError, type ReconcilerMetrics } from '../controllers/core.js';
import { StatusLedger } from '../controllers/status-ledger.js';
import { statusEqual } from '../k8s/status.js';
import { ObjectReconciler } from '../controllers/object-controller.js';
import { TenantReconciler } from '../controllers/tenant-controller.js';
import { OrchestratorController, type OrchestratorControllerOptions, type TargetSyncMetrics } from '../controllers/orchestrator.js';
import { KubeCluster, type CachedResource, type ClusterCache } from './cluster.js';
import { worthReconciling } from './predicates.js';
import { OPERATOR_DEFAULTS } from './options.js';

/** Metric labels (`controller`, workqueue `name`) of the two controllers. */
const OBJECT_CONTROLLER = 'object';
const TENANT_CONTROLLER = 'tenant';

const STORE_PROBE_MS = 1_000;

export interface ControllersOptions {
  /** Keys reconciled in parallel, by each controller (for the object controller: batches). */
  concurrency: number;
  /** Object keys of one tenant reconciled in one batch at most; default OPERATOR_DEFAULTS.batchSize. */
  batchSize?: number;
  /** How long a tenant's first waiting key waits for others to join; default OPERATOR_DEFAULTS.batchWindowMs. */
  batchWindowMs?: number;
  /** The operator's own metrics (ghosts, refused orphans, uninstall), registered once per operator. */
  metrics?: ReconcilerMetrics;
  driftPeriodMs?: number;
  /** The Orchestrator controller (targets such as UiPath); `false` turns it off. */
  targets?: false | Pick<OrchestratorControllerOptions, 'clientOptions' | 'concurrency'>;
  /** Where the targets' syncs are counted (registered once per operator, as `metrics`). */
  targetMetrics?: TargetSyncMetrics;
}

export class Controllers {
  readonly objects: WorkQueue;
  readonly tenants: WorkQueue;
  private readonly events: EventRecorder;
  /** What the operator last wrote into each object's status: anyone else's write is put back at once. */
  private readonly ledger = new StatusLedger();
  private readonly knownTenants = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly objectWorker: BatchWorker;
  private readonly batch: BatchOptions;
  private readonly tenantWorker: ReturnType<typeof reconcileWorker>;
  private storeProbe: ReturnType<typeof setInterval> | undefined;
  /** Targets (UiPath...): their own queue, fed by Orchestrators, their Secrets and the store's change feed. */
  readonly orchestrators: OrchestratorController | undefined;

  constructor(
    kc: KubeConfig,
    private readonly cache: ClusterCache,
    private readonly store: AccessStore,
    private readonly log: Logger,
    metrics: RuntimeMetrics,
    opts: ControllersOptions,
  ) {
    const onError = (key: string, err: unknown) => log.error({ key, err }, 'reconcile worker failed');
    this.objects = new WorkQueue({ name: OBJECT_CONTROLLER, concurrency: opts.concurrency, observer: workQueueObserver(metrics, OBJECT_CONTROLLER), onError });
    this.tenants = new WorkQueue({ name: TENANT_CONTROLLER, concurrency: opts.concurrency, observer: workQueueObserver(metrics, TENANT_CONTROLLER), onError });
    this.events = new EventRecorder({ kc, log: log.child({ component: 'events' }), onDrop: (type) => metrics.eventsDropped.inc({ type }) });
    this.orchestrators = opts.targets === false
      ? undefined
      : new OrchestratorController({
        kc, store, events: this.events, log: log.child({ component: 'orchestrator' }), ...(opts.targets ?? {}), ...(opts.targetMetrics ? { metrics: opts.targetMetrics } : {}),
      });
    const core = new ReconcileCore({
      store,
      cluster: new KubeCluster(kc, cache.informers, this.ledger, log.child({ component: 'cluster' })),
      metrics: opts.metrics,
      events: { record: (obj, type, reason, action, note) => this.events.record(obj as unknown as KubernetesObject, type, reason, action, note) },
      log: log.child({ component: 'reconciler' }),
      queues: {
        enqueueObject: (key, delayMs) => (delayMs ? this.objects.addAfter(key, delayMs) : this.objects.add(key)),
        enqueueTenant: (namespace, delayMs) => (delayMs ? this.tenants.addAfter(namespace, delayMs) : this.tenants.add(namespace)),
      },
    });
    const objectReconciler = new ObjectReconciler(core);
    const tenantReconciler = new TenantReconciler(core, { driftPeriodMs: opts.driftPeriodMs });
    this.objectWorker = this.batchWorker(this.objects, OBJECT_CONTROLLER, metrics, (keys) => objectReconciler.reconcileBatch(keys));
    // Keys of one tenant waiting together go to the store in one transaction (src/controllers/object-controller.ts).
    this.batch = {
      groupOf: (key) => parseObjectKey(key)?.namespace,
      maxSize: opts.batchSize ?? OPERATOR_DEFAULTS.batchSize,
      windowMs: opts.batchWindowMs ?? OPERATOR_DEFAULTS.batchWindowMs,
    };
    this.tenantWorker = this.worker(this.tenants, TENANT_CONTROLLER, metrics, (namespace) => tenantReconciler.reconcile(namespace));
  }

  private worker(queue: WorkQueue, controller: string, metrics: RuntimeMetrics, reconcile: (key: string) => Promise<ReconcileResult>) {
    return reconcileWorker(queue, reconcile, { onResult: this.onResult(controller, metrics) });
  }

  private batchWorker(queue: WorkQueue, controller: string, metrics: RuntimeMetrics, reconcile: (keys: string[]) => Promise<Map<string, KeyOutcome>>) {
    return reconcileBatchWorker(queue, reconcile, { onResult: this.onResult(controller, metrics) });
  }

  private onResult(controller: string, metrics: RuntimeMetrics) {
    const observe = reconcileObserver(metrics, controller);
    return (key: string, outcome: ReconcileOutcome, seconds: number, err?: unknown) => {
      observe(key, outcome, seconds, err);
      if (err) this.log.warn({ controller, key, err: err instanceof Error ? err.message : String(err) }, 'reconcile failed; will retry with backoff');
      if (err instanceof StoreUnavailableError) this.watchStoreRecovery();
    };
  }

  /** Keys waiting or in flight in either queue (requeues after a delay do not count). */
  busy(): boolean {
    return [this.objects, this.tenants, ...(this.orchestrators ? [this.orchestrators.queue] : [])].some((q) => q.depth > 0 || q.inFlight > 0);
  }

  /**
   * While the store is down every object backs off on its own, up to a minute. Rather than wait
   * that out, ask the store once a second whether it answers and, when it does, retry at once
   * every key that failed meanwhile.
   */
  private watchStoreRecovery(): void {
    if (this.storeProbe || this.objects.isShuttingDown()) return;
    let probing = false;
    this.storeProbe = setInterval(() => {
      if (probing) return;
      probing = true;
      this.store.revisions().then(
        () => {
          clearInterval(this.storeProbe);
          this.storeProbe = undefined;
          const n = this.objects.retryFailedNow() + this.tenants.retryFailedNow();
          this.log.info({ retried: n }, 'the access store answers again; retrying the objects that failed meanwhile');
        },
        () => undefined,
      ).finally(() => (probing = false));
    }, STORE_PROBE_MS);
    this.storeProbe.unref?.();
  }

  /** Every known tenant's drift pass, now. */
  resync(): void {
    for (const tenant of this.knownTenants) this.tenants.add(tenant);
  }

  /** A namespace becomes a tenant when any of our kinds appears in it (or it is labelled). */
  private noteTenant(namespace: string): void {
    if (this.knownTenants.has(namespace)) return;
    this.knownTenants.add(namespace);
    this.tenants.add(namespace);
  }

  /** Subscribes to the caches (which replay what they hold) and starts the workers once synced. */
  async start(signal: AbortSignal): Promise<boolean> {
    let synced = false;
    for (const kind of KINDS) {
      this.unsubscribe.push(
        this.cache.informers[kind].on((event, obj, old) => {
          const key = objectKey(kind, obj.metadata.namespace, obj.metadata.name);
          if (event === 'delete') this.ledger.forget(key);
          // Until the caches are synced, what they hold is queued below, in order.
          else if (!synced) return;
          // Status is the operator's: a status it did not write is put back now, not at the next drift pass.
          if (event === 'update' && !worthReconciling(obj, old) && !this.statusTampered(key, obj, old)) return;
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
    synced = true;
    // Referenced kinds first: at a cold start each reference is then found on the first pass,
    // instead of reported missing and written again once what it names lands.
    for (const kind of KINDS_REFERENCED_FIRST) for (const obj of this.cache.informers[kind].list()) this.enqueueObject(kind, obj);
    this.log.info({ tenants: [...this.knownTenants] }, 'caches synced; starting workers');
    this.tenants.start(this.tenantWorker);
    this.objects.startBatches(this.objectWorker, this.batch);
    // Targets run beside, and never hold up, the access controllers (their CRD may be missing).
    this.orchestrators?.start(signal).catch((err: unknown) => this.log.error({ err }, 'orchestrator controller failed to start'));
    return true;
  }

  private statusTampered(key: string, obj: CachedResource, old: CachedResource | undefined): boolean {
    return !statusEqual(obj.status, old?.status) && !this.ledger.isOurs(key, obj.status);
  }

  private enqueueObject(kind: Kind, obj: CachedResource): void {
    this.noteTenant(obj.metadata.namespace);
    this.objects.add(objectKey(kind, obj.metadata.namespace, obj.metadata.name));
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    clearInterval(this.storeProbe);
    await this.orchestrators?.stop();
    await Promise.all([this.objects.shutDown(), this.tenants.shutDown()]);
    await this.events.close();
  }
}
