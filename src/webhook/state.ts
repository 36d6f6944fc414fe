/**
 * What the webhook judges against: each tenant as the operator's informer caches hold it. The
 * same conversion as the reconciler's (toEntry), the same built-ins as the store's, so that a
 * change the webhook admits is one the store accepts (up to the cache's lag behind etcd).
 */
import type { V1Namespace } from '@kubernetes/client-node';
import { KINDS, type Kind } from '../model/catalog.js';
import { builtInEntries, isReserved, tenantFromEntries } from '../model/tenant.js';
import type { AnyEntry, TenantState } from '../model/types.js';
import { isDeleting, toEntry, type AccessResource } from '../api/v1alpha1/resource.js';

export interface TenantStateSource {
  /** False until every cache has listed once: the webhook does not judge blind. */
  synced(): boolean;
  /** The built-ins plus every valid, non-deleting object of the namespace. */
  state(namespace: string): TenantState;
  /** The namespace is being deleted: its objects must be let go, or it never goes away. */
  terminating(namespace: string): boolean;
}

/** The part of the operator's ClusterCache (src/operator/cluster.ts) the webhook reads. */
export interface CacheLike {
  readonly informers: Record<Kind, { list(namespace?: string): AccessResource[] }>;
  readonly namespaces: { get(namespace: string | undefined, name: string): V1Namespace | undefined };
  synced(): boolean;
}

/** The store entry of a custom resource, or undefined when it is invalid. */
export function entryOf(kind: Kind, obj: AccessResource): AnyEntry | undefined {
  return toEntry({ ...obj, kind }).entry;
}

export function cacheStateSource(cache: CacheLike): TenantStateSource {
  // Cached objects are replaced, never mutated, on every change: their identity is a version.
  const entries = new WeakMap<AccessResource, AnyEntry | null>();
  const convert = (kind: Kind, obj: AccessResource): AnyEntry | undefined => {
    let e = entries.get(obj);
    if (e === undefined) {
      e = entryOf(kind, obj) ?? null;
      entries.set(obj, e);
    }
    return e ?? undefined;
  };
  return {
    synced: () => cache.synced(),
    state(namespace) {
      const objects: AnyEntry[] = [];
      for (const kind of KINDS) {
        for (const obj of cache.informers[kind].list(namespace)) {
          // Built-ins are the operator's: their canonical definition counts, whatever the cluster holds.
          if (isDeleting(obj) || isReserved(kind, obj.metadata.name)) continue;
          const e = convert(kind, obj);
          if (e) objects.push(e);
        }
      }
      return tenantFromEntries(namespace, [...builtInEntries(), ...objects]);
    },
    terminating(namespace) {
      const ns = cache.namespaces.get(undefined, namespace);
      return Boolean(ns && (ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp));
    },
  };
}

/** A fixed set of objects (tests, and the CLI's offline view): never terminating, always synced. */
export function staticStateSource(objects: Record<string, AccessResource[]>, terminating: string[] = []): TenantStateSource {
  return {
    synced: () => true,
    state(namespace) {
      const found = (objects[namespace] ?? [])
        .filter((o) => !isDeleting(o) && !isReserved(o.kind as Kind, o.metadata.name))
        .map((o) => entryOf(o.kind as Kind, o))
        .filter((e): e is AnyEntry => e !== undefined);
      return tenantFromEntries(namespace, [...builtInEntries(), ...found]);
    },
    terminating: (namespace) => terminating.includes(namespace),
  };
}
