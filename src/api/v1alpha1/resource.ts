/**
 * The rpa-access.io/v1alpha1 custom resources as Kubernetes holds them: their names (plurals,
 * short names), their shape, and how one becomes a store entry. The operator, the webhook and
 * the CRD generator all read them from here; the rules they carry stay in src/model.
 */
import { ANNOTATION_PAUSED, API_GROUP, API_VERSION, API_VERSION_FULL, KINDS, type Kind } from '../../model/catalog.js';
import { validateDocument } from '../../model/validate.js';
import type { AnyEntry } from '../../model/types.js';
import type { Condition } from '../../k8s/status.js';

export const PLURALS: Record<Kind, string> = { User: 'users', Group: 'groups', Role: 'roles', RoleBinding: 'rolebindings' };

export const SHORT_NAMES: Record<Kind, string[]> = {
  User: ['rpauser'],
  Group: ['rpagroup'],
  Role: ['rparole'],
  RoleBinding: ['rparb'],
};

/** `kubectl get rpa-access -n TENANT` lists every kind of a tenant. */
export const CRD_CATEGORY = 'rpa-access';

/** Status of every kind: the generation last reconciled and metav1-style conditions (`Ready`). */
export interface AccessStatus {
  observedGeneration?: number;
  /**
   * The generation whose spec the access store holds. Behind `generation` while the object is
   * paused or refused: what grants is the older generation (or nothing, when absent).
   */
  appliedGeneration?: number;
  conditions?: Condition[];
}

/** A custom resource as the informer caches it. */
export interface AccessResource {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    deletionTimestamp?: string | Date;
    finalizers?: string[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  status?: AccessStatus;
}

/** Group, version and plural of a kind: what a REST path or a CustomObjectsApi call needs. */
export function gvr(kind: Kind): { group: string; version: string; plural: string } {
  return { group: API_GROUP, version: API_VERSION, plural: PLURALS[kind] };
}

/** Work-queue key of an object: `Kind/namespace/name`. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** The parts of an object key, or undefined when it is not one (unknown kind, wrong arity). */
export function parseObjectKey(key: string): { kind: Kind; namespace: string; name: string } | undefined {
  const [kind, namespace, name, ...rest] = key.split('/');
  if (rest.length > 0 || !kind || !namespace || !name || !(KINDS as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as Kind, namespace, name };
}

/** Paused by its annotation: the operator applies no change to it (built-ins excepted: they cannot be paused). */
export function isPaused(obj: AccessResource): boolean {
  return obj.metadata.annotations?.[ANNOTATION_PAUSED] === 'true';
}

export function isDeleting(obj: AccessResource): boolean {
  return obj.metadata.deletionTimestamp !== undefined && obj.metadata.deletionTimestamp !== null;
}

/** The store entry a custom resource asks for, or the problems that keep it out. */
export function toEntry(obj: AccessResource): { entry?: AnyEntry; problems: string[] } {
  const result = validateDocument({
    apiVersion: API_VERSION_FULL,
    kind: obj.kind,
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
    spec: obj.spec ?? {},
  });
  if (!result.document) return { problems: result.problems };
  return { entry: { kind: obj.kind as Kind, name: obj.metadata.name, spec: result.document.spec, origin: 'user' } as AnyEntry, problems: [] };
}
