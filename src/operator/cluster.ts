/**
 * The operator's view of the cluster: the informer caches (on every replica) and, for the
 * controllers, the ClusterPort over them: caches for reads, the API server for writes.
 */
import { CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Namespace } from '@kubernetes/client-node';
import { FINALIZER, KINDS, type Kind } from '../model/catalog.js';
import { addFinalizer, isConflict, patchObject, patchStatus, removeFinalizer, errorCode } from '../k8s/client.js';
import { Informer, resourcePath } from '../k8s/informer.js';
import type { Logger } from '../log.js';
import type { ClusterPort } from '../controllers/core.js';
import { gvr, type AccessResource, type AccessStatus } from '../api/v1alpha1/resource.js';

const FIELD_MANAGER = 'rpa-access-operator';

/** A custom resource as the informers cache it. */
export type CachedResource = AccessResource & KubernetesObject;

export type Informers = Record<Kind, Informer<CachedResource>>;

export function accessInformers(kc: KubeConfig, make: (path: string, kind: Kind) => Informer<CachedResource>): Informers {
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

export class KubeCluster implements ClusterPort {
  private readonly api: CustomObjectsApi;

  constructor(
    private readonly kc: KubeConfig,
    private readonly informers: Informers,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  get(kind: Kind, namespace: string, name: string): AccessResource | undefined {
    return this.informers[kind].get(namespace, name);
  }

  list(kind: Kind, namespace?: string): AccessResource[] {
    return this.informers[kind].list(namespace);
  }

  async addFinalizer(obj: AccessResource): Promise<void> {
    await addFinalizer(this.kc, ref(obj), obj as KubernetesObject, FINALIZER).catch(tolerateGone);
  }

  async removeFinalizer(obj: AccessResource): Promise<void> {
    await removeFinalizer(this.kc, ref(obj), obj as KubernetesObject, FINALIZER).catch(tolerateGone);
  }

  async writeStatus(obj: AccessResource, status: AccessStatus): Promise<void> {
    await patchStatus(this.kc, ref(obj), status, { fieldManager: FIELD_MANAGER }).catch(tolerateGone);
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
    await patchObject(this.kc, ref(obj), { metadata: { labels }, spec: body }, { fieldManager: FIELD_MANAGER }).catch(tolerateGone);
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
