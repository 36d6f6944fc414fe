/** The reconciler's view of the cluster: informer caches for reads, the API server for writes. */
import { CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { FINALIZER, KINDS, type Kind } from '../model/catalog.js';
import { addFinalizer, isConflict, patchObject, patchStatus, removeFinalizer, errorCode } from '../k8s/client.js';
import { Informer, resourcePath } from '../k8s/informer.js';
import type { ClusterPort } from '../controllers/reconciler.js';
import { gvr, type AccessResource, type AccessStatus } from '../api/v1alpha1/resource.js';

const FIELD_MANAGER = 'rpa-access-operator';

export type Informers = Record<Kind, Informer<AccessResource & KubernetesObject>>;

export function accessInformers(kc: KubeConfig, make: (path: string, kind: Kind) => Informer<AccessResource & KubernetesObject>): Informers {
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
