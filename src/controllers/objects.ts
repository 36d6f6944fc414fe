/** How the four kinds look in Kubernetes, and how a custom resource becomes a store entry. */
import { API_GROUP, API_VERSION, API_VERSION_FULL, KINDS, LABEL_BUILT_IN, type Kind } from '../model/catalog.js';
import { validateDocument } from '../model/validate.js';
import type { AnyEntry } from '../model/types.js';

export const PLURALS: Record<Kind, string> = { User: 'users', Group: 'groups', Role: 'roles', RoleBinding: 'rolebindings' };

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
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
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

export const GVR = (kind: Kind) => ({ group: API_GROUP, version: API_VERSION, plural: PLURALS[kind] });

/** Work-queue key of an object: `Kind/namespace/name`. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function parseObjectKey(key: string): { kind: Kind; namespace: string; name: string } | undefined {
  const [kind, namespace, name, ...rest] = key.split('/');
  if (rest.length > 0 || !kind || !namespace || !name || !(KINDS as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as Kind, namespace, name };
}

export function isBuiltInResource(obj: AccessResource): boolean {
  return obj.metadata.labels?.[LABEL_BUILT_IN] === 'true';
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
