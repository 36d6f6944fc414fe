/**
 * The operator's view of the cluster: the informer caches (on every replica) and, for the
 * controllers, the ClusterPort over them: caches for reads, the API server for writes.
 */
import { ApiextensionsV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Namespace } from '@kubernetes/client-node';
import { ANNOTATION_PAUSED, FINALIZER, KINDS, type Kind } from '../model/catalog.js';
import { addFinalizer, isConflict, patchObject, patchStatus, readObjectLive, removeFinalizer, errorCode } from '../k8s/client.js';
import { Informer, resourcePath } from '../k8s/informer.js';
import type { Logger } from '../log.js';
import { crdName, type ClusterPort, type CrdState } from '../controllers/core.js';
import type { StatusLedger } from '../controllers/status-ledger.js';
import { gvr, objectKey, type AccessResource, type AccessStatus } from '../api/v1alpha1/resource.js';

/** The field manager of every write the operator makes. */
export const FIELD_MANAGER = 'rpa-access-operator';

/** A custom resource as the informers cache it. */
export type CachedResource = AccessResource & KubernetesObject;

export type Informers = Record<Kind, Informer<CachedResource>>;

function accessInformers(kc: KubeConfig, make: (path: string, kind: Kind) => Informer<CachedResource>): Informers {
  return Object.fromEntries(
    KINDS.map((kind) => [kind, make(resourcePath(gvr(kind)), kind)]),
  ) as Informers;
}

function ref(obj: AccessResource) {
  return { ...gvr(obj.kind as Kind), namespace: obj.metadata.namespace, name: obj.metadata.name };
}

/** A write that lost a race, or whose object vanished, is retried by the queue from a fresh read. */
function tolerateGone(err: unknown): void {
  if (errorCode(err) === 404) return;
  throw err;
}

/** The merge patch that makes `status` the whole status: status is the operator's, so every key it may hold is named (null removes). */
export function statusPatch(status: AccessStatus): Record<string, unknown> {
  return { observedGeneration: null, appliedGeneration: null, conditions: null, ...status };
}

/** A CRD seen terminating or absent stays so for this long: an uninstall releases objects by the hundred. */
const CRD_GONE_MEMO_MS = 2_000;

export class KubeCluster implements ClusterPort {
  private readonly api: CustomObjectsApi;
  private readonly crds: ApiextensionsV1Api;
  private readonly crdGone = new Map<Kind, { state: CrdState; until: number }>();
  private crdForbiddenLogged = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly informers: Informers,
    private readonly ledger?: StatusLedger,
    private readonly log?: Logger,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.crds = kc.makeApiClient(ApiextensionsV1Api);
  }

  /**
   * Read live, never from a cache: the API server marks the CRD deleted before it deletes its
   * objects, so a live read made for an object's delete always sees an uninstall in progress.
   */
  async crdState(kind: Kind): Promise<CrdState> {
    const memo = this.crdGone.get(kind);
    if (memo && memo.until > Date.now()) return memo.state;
    let state: CrdState;
    try {
      const crd = await this.crds.readCustomResourceDefinition({ name: crdName(kind) });
      const createdAt = crd.metadata?.creationTimestamp ? new Date(crd.metadata.creationTimestamp).getTime() : undefined;
      state = { phase: crd.metadata?.deletionTimestamp ? 'Terminating' : 'Installed', createdAt };
    } catch (err) {
      const code = errorCode(err);
      if (code === 404) state = { phase: 'Absent' };
      else if (code === 403) {
        // An older RBAC without `get` on CRDs: behave as before rather than stop working.
        if (!this.crdForbiddenLogged) this.log?.warn('cannot read CustomResourceDefinitions (RBAC): an uninstall cannot be told from a mass delete; grant get on customresourcedefinitions');
        this.crdForbiddenLogged = true;
        return { phase: 'Installed' };
      } else throw err;
    }
    if (state.phase === 'Installed') this.crdGone.delete(kind);
    else this.crdGone.set(kind, { state, until: Date.now() + CRD_GONE_MEMO_MS });
    return state;
  }

  get(kind: Kind, namespace: string, name: string): AccessResource | undefined {
    return this.informers[kind].get(namespace, name);
  }

  list(kind: Kind, namespace?: string): AccessResource[] {
    return this.informers[kind].list(namespace);
  }

  async existsLive(kind: Kind, namespace: string, name: string): Promise<boolean> {
    return (await readObjectLive(this.kc, { ...gvr(kind), namespace, name })) !== undefined;
  }

  async addFinalizer(obj: AccessResource): Promise<void> {
    await addFinalizer(this.kc, ref(obj), obj as KubernetesObject, FINALIZER).catch(tolerateGone);
  }

  async removeFinalizer(obj: AccessResource): Promise<void> {
    await removeFinalizer(this.kc, ref(obj), obj as KubernetesObject, FINALIZER).catch(tolerateGone);
  }

  async writeStatus(obj: AccessResource, status: AccessStatus): Promise<void> {
    this.ledger?.record(objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name), status);
    await patchStatus(this.kc, ref(obj), statusPatch(status), { fieldManager: FIELD_MANAGER }).catch(tolerateGone);
  }

  async create(obj: AccessResource): Promise<AccessResource | undefined> {
    const { group, version, plural, namespace } = ref(obj);
    try {
      return (await this.api.createNamespacedCustomObject({ group, version, plural, namespace, body: obj, fieldManager: FIELD_MANAGER })) as AccessResource;
    } catch (err) {
      if (isConflict(err)) return undefined; // already there (another replica, or a race with its delete)
      throw err;
    }
  }

  async restore(obj: AccessResource, spec: unknown, labels: Record<string, string>): Promise<void> {
    // A merge patch keeps keys it does not name: name every key the object has, null for extras.
    const current = (obj.spec ?? {}) as Record<string, unknown>;
    const desired = spec as Record<string, unknown>;
    const body = { ...Object.fromEntries(Object.keys(current).map((k) => [k, null])), ...desired };
    // A built-in cannot be paused: the annotation goes with the change it would have protected.
    const metadata = { labels, ...(obj.metadata.annotations?.[ANNOTATION_PAUSED] !== undefined ? { annotations: { [ANNOTATION_PAUSED]: null } } : {}) };
    await patchObject(this.kc, ref(obj), { metadata, spec: body }, { fieldManager: FIELD_MANAGER }).catch(tolerateGone);
  }
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
    this.informers = accessInformers(kc, (path, kind) => new Informer<CachedResource>({ kc, path, name: kind, resyncPeriodMs, log: informerLog }));
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
