/**
 * A tenant as the cluster declares it: the four kinds of one namespace read from the API server
 * of a kubeconfig, as a TenantState the engine can answer from, with no store (`kubectl
 * rpa-access ... --from-cluster`, `diff --against-cluster`).
 *
 * Each custom resource becomes a store entry exactly as the operator would take it (`toEntry`,
 * the same schema check); an object the operator would refuse grants nothing and is reported.
 * Built-in roles and the `global` group are the model's, whatever the cluster mirrors of them;
 * an object being deleted is already gone (the operator removes it from the store first).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, CREATED_BY_OWNERSHIP_TRANSFER, KINDS, LABEL_BUILT_IN, LABEL_CREATED_BY, type Kind } from '../../model/catalog.js';
import { rawRequest } from '../../k8s/client.js';
import { resourcePath } from '../../k8s/informer.js';
import { builtInEntries, isReserved, tenantFromEntries } from '../../model/tenant.js';
import type { AnyEntry, TenantState } from '../../model/types.js';
import { isDeleting, PLURALS, toEntry, type AccessResource } from './resource.js';

export interface ClusterTenant {
  state: TenantState;
  /** Objects read (custom resources of the namespace, every kind). */
  objects: number;
  /** Objects that grant nothing because the operator would refuse them: `Kind/name: why`. */
  skipped: string[];
}

interface ListBody {
  items?: AccessResource[];
  metadata?: { continue?: string };
}

async function listAll(kc: KubeConfig, kind: Kind, namespace: string): Promise<AccessResource[]> {
  const out: AccessResource[] = [];
  let token: string | undefined;
  do {
    const page = await rawRequest<ListBody>(kc, {
      path: resourcePath({ group: API_GROUP, version: API_VERSION, plural: PLURALS[kind], namespace }),
      query: { limit: 500, continue: token },
    });
    // A list's items carry no apiVersion/kind: put them back, toEntry judges by kind.
    for (const item of page.items ?? []) out.push({ ...item, kind, apiVersion: `${API_GROUP}/${API_VERSION}` });
    token = page.metadata?.continue || undefined;
  } while (token);
  return out;
}

export async function readClusterTenant(kc: KubeConfig, namespace: string): Promise<ClusterTenant> {
  const lists = await Promise.all(KINDS.map((kind) => listAll(kc, kind, namespace)));
  const entries: AnyEntry[] = [...builtInEntries()];
  const skipped: string[] = [];
  let objects = 0;
  for (const obj of lists.flat()) {
    objects++;
    if (isDeleting(obj) || obj.metadata.labels?.[LABEL_BUILT_IN] === 'true' || isReserved(obj.kind as Kind, obj.metadata.name)) continue;
    const { entry, problems } = toEntry(obj);
    if (!entry) {
      skipped.push(`${obj.kind}/${obj.metadata.name}: ${problems.join('; ')}`);
      continue;
    }
    const origin = obj.metadata.labels?.[LABEL_CREATED_BY] === CREATED_BY_OWNERSHIP_TRANSFER ? 'system' : 'user';
    entries.push({ ...entry, origin } as AnyEntry);
  }
  return { state: tenantFromEntries(namespace, entries), objects, skipped };
}
