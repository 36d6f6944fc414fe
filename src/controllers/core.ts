/**
 * The reconcile core shared by the controllers (src/controllers/object-controller.ts,
 * src/controllers/tenant-controller.ts): what they need of the cluster and of Events (ports, so
 * that a unit test can hand in fakes), writing an object's Ready condition, and applying to the
 * store as the operator. controller-runtime's contract holds for every controller: given a key,
 * read the desired state from the cache, make the world match, report; an error means "retry
 * with backoff", and doing it twice is harmless.
 */
import { KINDS, type Kind } from '../model/catalog.js';
import { readiness } from '../model/readiness.js';
import type { TenantState } from '../model/types.js';
import type { DesiredState } from '../model/plan.js';
import { OPERATOR_SOURCE, type AccessStore, type ApplyResult } from '../store/store.js';
import { scrubSecrets, type Logger } from '../log.js';
import { READY, findCondition, setCondition, statusEqual, type ConditionStatus } from '../k8s/status.js';
import { isDeleting, objectKey, type AccessResource, type AccessStatus } from '../api/v1alpha1/resource.js';

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
  /** Replaces spec and labels of an existing object (restoring a built-in). */
  restore(obj: AccessResource, spec: unknown, labels: Record<string, string>): Promise<void>;
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
}

/** The store could not be written: the object was fine, the failure is shared by every object. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export class ReconcileCore {
  readonly store: AccessStore;
  readonly cluster: ClusterPort;
  readonly events: EventPort;
  readonly log: Logger;
  readonly queues: Queues;

  constructor(o: CoreOptions) {
    this.store = o.store;
    this.cluster = o.cluster;
    this.events = o.events;
    this.log = o.log;
    this.queues = o.queues;
  }

  /** Writes the Ready condition, only when the status says something new (see src/k8s/status.ts). */
  async setReady(obj: AccessResource, status: ConditionStatus, reason: string, message: string): Promise<void> {
    const observedGeneration = obj.metadata.generation ?? 0;
    const next: AccessStatus = {
      ...obj.status,
      observedGeneration,
      conditions: setCondition(obj.status?.conditions, { type: READY, status, reason, message: scrubSecrets(message), observedGeneration }),
    };
    if (statusEqual(obj.status, next)) return;
    await this.cluster.writeStatus(obj, next);
  }

  async reportReadiness(obj: AccessResource, state: TenantState): Promise<void> {
    const r = readiness(state, obj.kind as Kind, obj.metadata.name);
    await this.setReady(obj, r.ready ? 'True' : 'False', r.reason, r.message);
  }

  /** Objects of the tenant whose readiness may have changed because something appeared or went away. */
  requeueDependents(namespace: string, state: TenantState, self: string): void {
    for (const kind of KINDS) {
      for (const other of this.cluster.list(kind, namespace)) {
        const key = objectKey(kind, namespace, other.metadata.name);
        if (key === self || isDeleting(other)) continue;
        // An object without a Ready condition has not been reconciled yet: it is queued anyway.
        const have = findCondition(other.status?.conditions, READY);
        if (!have) continue;
        const r = readiness(state, kind, other.metadata.name);
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
  async applyFor(obj: AccessResource, desired: DesiredState[]): Promise<ApplyResult> {
    try {
      return await this.apply(desired);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      await this.setReady(obj, 'False', 'StoreUnavailable', `The access store cannot be reached (${reason}); retrying with backoff.`).catch(() => undefined);
      throw new StoreUnavailableError(reason, { cause: err });
    }
  }
}
