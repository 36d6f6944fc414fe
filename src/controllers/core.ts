/**
 * The reconcile core shared by the controllers (src/controllers/object-controller.ts,
 * src/controllers/tenant-controller.ts): what they need of the cluster and of Events (ports, so
 * that a unit test can hand in fakes), writing an object's Ready condition, and applying to the
 * store as the operator. controller-runtime's contract holds for every controller: given a key,
 * read the desired state from the cache, make the world match, report; an error means "retry
 * with backoff", and doing it twice is harmless.
 */
import { ANNOTATION_PAUSED, API_GROUP, API_VERSION_FULL, CREATED_BY_OWNERSHIP_TRANSFER, KINDS, LABEL_CREATED_BY, type Kind } from '../model/catalog.js';
import { readiness } from '../model/readiness.js';
import type { TenantState } from '../model/types.js';
import type { DesiredState } from '../model/plan.js';
import { OPERATOR_SOURCE, type AccessStore, type ApplyResult } from '../store/store.js';
import { scrubSecrets, type Logger } from '../log.js';
import { READY, findCondition, setCondition, statusEqual, type ConditionStatus } from '../k8s/status.js';
import { PLURALS, isDeleting, isPaused, objectKey, type AccessResource, type AccessStatus } from '../api/v1alpha1/resource.js';

/** What the controllers need of the cluster: the informer caches and a few writes. */
export interface ClusterPort {
  get(kind: Kind, namespace: string, name: string): AccessResource | undefined;
  list(kind: Kind, namespace?: string): AccessResource[];
  addFinalizer(obj: AccessResource): Promise<void>;
  removeFinalizer(obj: AccessResource): Promise<void>;
  /** Writes `status` (the controllers call it only when the status changed). */
  writeStatus(obj: AccessResource, status: AccessStatus): Promise<void>;
  /** Creates the object; returns it as created, or undefined when it already existed. */
  create(obj: AccessResource): Promise<AccessResource | undefined>;
  /** Replaces spec and labels of an existing object, and drops its pause (restoring a built-in). */
  restore(obj: AccessResource, spec: unknown, labels: Record<string, string>): Promise<void>;
  /**
   * Whether the CustomResourceDefinition of `kind` is installed, being deleted (an uninstall), or
   * absent, read live from the API server. Without it every CRD counts as installed.
   */
  crdState?(kind: Kind): Promise<CrdState>;
  /**
   * Whether the object exists, read live from the API server, never from a cache. Access is
   * taken out of the store on an object's absence from the cache only once this confirms it:
   * a cache can be behind the API server (a watch event not yet arrived, a cache rebuilt after a
   * restart or an outage). Without it the cache's answer stands.
   */
  existsLive?(kind: Kind, namespace: string, name: string): Promise<boolean>;
}

export interface CrdState {
  phase: 'Installed' | 'Terminating' | 'Absent';
  /** When the CRD was created (ms): store-only objects older than it were never in this install. */
  createdAt?: number;
}

/** What the controllers report besides status and Events (Prometheus, in src/operator/metrics.ts). */
export interface ReconcilerMetrics {
  /** Store-only objects of the tenant the cluster does not show (after its drift pass). */
  ghosts(tenant: string, count: number): void;
  /** An orphan the store refused to delete. */
  orphanRefused(tenant: string, kind: Kind): void;
  /** An object let go without touching the store because its CRD is being deleted. */
  uninstallReleased(kind: Kind): void;
}

export interface EventPort {
  record(obj: AccessResource, type: 'Normal' | 'Warning', reason: string, action: string, note: string): void;
}

/** Where each controller's work goes: objects by `Kind/namespace/name`, tenants by namespace. */
export interface Queues {
  enqueueObject(key: string, delayMs?: number): void;
  enqueueTenant(namespace: string, delayMs?: number): void;
}

export interface CoreOptions {
  store: AccessStore;
  cluster: ClusterPort;
  events: EventPort;
  log: Logger;
  queues: Queues;
  metrics?: ReconcilerMetrics;
  now?: () => number;
}

/** The store could not be written: the object was fine, the failure is shared by every object. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The whole status the operator writes for `obj`: its generation observed, the Ready condition
 * (lastTransitionTime kept while the condition's status stays), and `applied`, the generation the
 * store holds (without it the object's last one stays). Pure: benchmarks send the same status.
 */
export function readyStatus(obj: AccessResource, status: ConditionStatus, reason: string, message: string, applied?: { generation: number | undefined }): AccessStatus {
  const observedGeneration = obj.metadata.generation ?? 0;
  const ours = findCondition(obj.status?.conditions, READY);
  const next: AccessStatus = {
    observedGeneration,
    conditions: setCondition(ours ? [ours] : [], { type: READY, status, reason, message: scrubSecrets(message), observedGeneration }),
  };
  const appliedGeneration = applied ? applied.generation : obj.status?.appliedGeneration;
  if (appliedGeneration !== undefined) next.appliedGeneration = appliedGeneration;
  return next;
}

/** Live reads made at once when confirming that objects missing from the cache are gone. */
const LIVE_READS_AT_ONCE = 8;

export class ReconcileCore {
  readonly store: AccessStore;
  readonly cluster: ClusterPort;
  readonly events: EventPort;
  readonly log: Logger;
  readonly queues: Queues;
  readonly metrics: ReconcilerMetrics | undefined;
  readonly now: () => number;
  /**
   * Ghosts: per tenant, the store-only objects its last drift pass kept (`Kind/name` -> why). The
   * tenant controller fills it; the object controller retries a tenant's ghosts after a delete.
   */
  readonly ghosts = new Map<string, Map<string, string>>();
  private crdMemo?: { at: number; states: Map<Kind, CrdState> };

  constructor(o: CoreOptions) {
    this.store = o.store;
    this.cluster = o.cluster;
    this.events = o.events;
    this.log = o.log;
    this.queues = o.queues;
    this.metrics = o.metrics;
    this.now = o.now ?? Date.now;
  }

  /**
   * Writes the whole status (status is the operator's: nothing written by others stays) when it
   * says something new (see src/k8s/status.ts), and records the Events of the transitions people
   * must hear about: pause starting and ending, expiry. `applied` is the generation the store now
   * holds; without it the last one stays.
   */
  async setReady(obj: AccessResource, status: ConditionStatus, reason: string, message: string, applied?: { generation: number | undefined }): Promise<void> {
    const next = readyStatus(obj, status, reason, message, applied);
    if (statusEqual(obj.status, next)) return;
    const before = findCondition(obj.status?.conditions, READY)?.reason;
    if (before !== reason) {
      if (reason === 'Paused') this.events.record(obj, 'Normal', 'Paused', 'Pause', message);
      else if (before === 'Paused' && !isPaused(obj)) this.events.record(obj, 'Normal', 'Resumed', 'Resume', `The annotation ${ANNOTATION_PAUSED} was removed; the operator applies this object again.`);
      if (reason === 'Expired') this.events.record(obj, 'Normal', 'Expired', 'Expire', message);
    }
    await this.cluster.writeStatus(obj, next);
  }

  /** Ready from the tenant's state; the store holds this generation of the object. */
  async reportReadiness(obj: AccessResource, state: TenantState): Promise<void> {
    const r = readiness(state, obj.kind as Kind, obj.metadata.name, this.now());
    await this.setReady(obj, r.ready ? 'True' : 'False', r.reason, r.message, { generation: obj.metadata.generation ?? 0 });
  }

  /**
   * Objects of the tenant whose readiness may have changed because something appeared or went
   * away; `self`, the object(s) that changed, report their own.
   */
  requeueDependents(namespace: string, state: TenantState, self: string | ReadonlySet<string>): void {
    const isSelf = typeof self === 'string' ? (key: string) => key === self : (key: string) => self.has(key);
    for (const kind of KINDS) {
      for (const other of this.cluster.list(kind, namespace)) {
        const key = objectKey(kind, namespace, other.metadata.name);
        if (isSelf(key) || isDeleting(other)) continue;
        // An object without a Ready condition has not been reconciled yet: it is queued anyway.
        const have = findCondition(other.status?.conditions, READY);
        if (!have) continue;
        const r = readiness(state, kind, other.metadata.name, this.now());
        if (have.reason !== r.reason || have.status !== (r.ready ? 'True' : 'False')) this.queues.enqueueObject(key);
      }
    }
  }

  /** Applies to the store as the operator (`source` tells the audit trail which part of it). */
  apply(desired: DesiredState[], source: string = OPERATOR_SOURCE): Promise<ApplyResult> {
    return this.store.apply(desired, { actor: 'operator', source });
  }

  /**
   * Applies on behalf of `obj`; when the store cannot be reached the object says so (Ready=False,
   * StoreUnavailable) and the error goes back to the queue, which retries with backoff.
   */
  applyFor(obj: AccessResource, desired: DesiredState[]): Promise<ApplyResult> {
    return this.applyAll([obj], desired);
  }

  /** `applyFor` on behalf of several objects (a batch): each says StoreUnavailable when it fails. */
  async applyAll(objs: AccessResource[], desired: DesiredState[]): Promise<ApplyResult> {
    try {
      return await this.apply(desired);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      for (const obj of objs) {
        await this.setReady(obj, 'False', 'StoreUnavailable', `The access store cannot be reached (${reason}); retrying with backoff.`).catch(() => undefined);
      }
      throw new StoreUnavailableError(reason, { cause: err });
    }
  }

  /** True while the CRD of `kind` is being deleted or is gone: the cluster's view of that kind says nothing about access. */
  async uninstalling(kind: Kind): Promise<boolean> {
    if (!this.cluster.crdState) return false;
    return (await this.cluster.crdState(kind)).phase !== 'Installed';
  }

  /**
   * The four CRDs' states. Tenant passes share a read for a few seconds (`fresh: false`) to
   * decide on bootstrap; drift repair reads them live once it has orphans in hand: an object
   * released by an uninstall leaves the cache only after its CRD was marked deleted, so a read
   * made after the orphans were found always sees the uninstall.
   */
  async crdStates(opts: { fresh: boolean }): Promise<Map<Kind, CrdState>> {
    if (!opts.fresh && this.crdMemo && this.now() - this.crdMemo.at < CRD_MEMO_MS) return this.crdMemo.states;
    const states = new Map<Kind, CrdState>();
    for (const kind of KINDS) states.set(kind, this.cluster.crdState ? await this.cluster.crdState(kind) : { phase: 'Installed' });
    this.crdMemo = { at: this.now(), states };
    return states;
  }

  /**
   * Of `entries`, which the cache does not show, those the API server has not got either (read
   * live, a few at a time): only these may leave the store. A cache behind the API server (a
   * watch event not yet arrived) thus never revokes access.
   * A failed read throws: nothing is removed, and the caller's reconcile is retried.
   */
  async absentFromCluster<E extends { kind: Kind; name: string }>(namespace: string, entries: E[]): Promise<E[]> {
    const existsLive = this.cluster.existsLive?.bind(this.cluster);
    if (!existsLive || entries.length === 0) return entries;
    const absent: E[] = [];
    for (let i = 0; i < entries.length; i += LIVE_READS_AT_ONCE) {
      const batch = entries.slice(i, i + LIVE_READS_AT_ONCE);
      const exists = await Promise.all(batch.map((e) => existsLive(e.kind, namespace, e.name)));
      batch.forEach((e, j) => {
        if (!exists[j]) absent.push(e);
      });
    }
    if (absent.length < entries.length) {
      this.log.info(
        { tenant: namespace, objects: entries.filter((e) => !absent.includes(e)).map((e) => `${e.kind}/${e.name}`) },
        'not in the informer cache but still in the API server (the cache is behind): kept in the access store',
      );
    }
    return absent;
  }

  /** A delete may have unblocked a ghost of the tenant (the binding its refusal named): try again now. */
  retryGhosts(namespace: string): void {
    if ((this.ghosts.get(namespace)?.size ?? 0) > 0) this.queues.enqueueTenant(namespace);
  }

  /**
   * Contract 4.7: a binding the store created (the administrator binding left to a former owner)
   * is shown in the cluster as a RoleBinding labelled `rpa-access.io/created-by:
   * ownership-transfer`, so that people see it, and can keep it in Git or delete it to offboard
   * the former owner. Once in the cluster it is reconciled as any binding: the store adopts it.
   */
  async mirrorStoreCreated(namespace: string, state: TenantState): Promise<void> {
    for (const binding of state.bindings.values()) {
      if (binding.origin !== 'system' || this.cluster.get('RoleBinding', namespace, binding.name)) continue;
      const created = await this.cluster.create({
        apiVersion: API_VERSION_FULL,
        kind: 'RoleBinding',
        metadata: { name: binding.name, namespace, labels: { [LABEL_CREATED_BY]: CREATED_BY_OWNERSHIP_TRANSFER } },
        spec: binding.spec,
      });
      if (!created) continue;
      this.log.info({ tenant: namespace, binding: binding.name }, 'mirrored a binding the store created at an ownership transfer');
      this.events.record(
        created, 'Normal', 'CreatedByOwnershipTransfer', 'Mirror',
        'Created by the access store when ownership was transferred: the former owner keeps administrator. Keep it (commit it to Git) or delete it to offboard them.',
      );
    }
  }
}

const CRD_MEMO_MS = 5_000;

export function allInstalled(crds: Map<Kind, CrdState>): boolean {
  return [...crds.values()].every((c) => c.phase === 'Installed');
}

export function crdName(kind: Kind): string {
  return `${PLURALS[kind]}.${API_GROUP}`;
}
