/** Many realistic objects at once, for load, fault tests and benchmarks. */
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { gvr } from '../../src/api/v1alpha1/resource.js';
import type { CustomObjectRef } from '../../src/k8s/client.js';

export const PLURAL = { User: 'users', Group: 'groups', Role: 'roles', RoleBinding: 'rolebindings' } as const;
export type BulkKind = keyof typeof PLURAL;
export interface BulkObject {
  tenant: string;
  kind: BulkKind;
  name: string;
  spec: Record<string, unknown>;
}

/** Where a bulk object lives in the API (for patchStatus and the raw requests). */
export function bulkRef(o: BulkObject): CustomObjectRef {
  return { ...gvr(o.kind), namespace: o.tenant, name: o.name };
}

/** A tenant's mix: users in groups, a few custom roles, bindings to users and groups. */
export function tenantObjects(tenant: string, count: number): BulkObject[] {
  const out: BulkObject[] = [];
  const groups = Math.max(2, Math.floor(count * 0.02));
  const roles = Math.max(2, Math.floor(count * 0.03));
  const bindings = Math.floor(count * 0.35);
  const users = count - groups - roles - bindings;
  for (let g = 0; g < groups; g++) out.push({ tenant, kind: 'Group', name: `team-${g}`, spec: { displayName: `Team ${g}` } });
  for (let r = 0; r < roles; r++) out.push({ tenant, kind: 'Role', name: `role-${r}`, spec: { scope: 'Folder', permissions: [{ resource: 'Jobs', actions: ['View', 'Create'] }, { resource: 'Queues', actions: ['View'] }] } });
  for (let u = 0; u < users; u++) out.push({ tenant, kind: 'User', name: `user-${u}`, spec: { email: `user-${u}@${tenant}.example.com`, groups: [`team-${u % groups}`] } });
  for (let b = 0; b < bindings; b++) {
    const subject = b % 3 === 0 ? { kind: 'Group', name: `team-${b % groups}` } : { kind: 'User', name: `user-${b % users}` };
    out.push({ tenant, kind: 'RoleBinding', name: `binding-${b}`, spec: { roleRef: { name: `role-${b % roles}` }, folder: `Dept${b % 7}/Team${b % 5}`, subjects: [subject] } });
  }
  return out;
}

export async function pool<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** Creates namespaces `${prefix}-0..` and `total` objects spread over them; returns the objects. */
export async function createBulk(kc: KubeConfig, opts: { prefix: string; tenants: number; total: number; parallel?: number }): Promise<BulkObject[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const all: BulkObject[] = [];
  for (let t = 0; t < opts.tenants; t++) {
    const tenant = `${opts.prefix}-${t}`;
    await core.createNamespace({ body: { metadata: { name: tenant } } });
    all.push(...tenantObjects(tenant, Math.floor(opts.total / opts.tenants)));
  }
  await pool(all, opts.parallel ?? 8, async (o) => {
    await custom.createNamespacedCustomObject({
      group: 'rpa-access.io', version: 'v1alpha1', namespace: o.tenant, plural: PLURAL[o.kind],
      body: { apiVersion: 'rpa-access.io/v1alpha1', kind: o.kind, metadata: { name: o.name, namespace: o.tenant }, spec: o.spec },
    });
  });
  return all;
}

interface Listed { metadata: { name: string; namespace: string; generation: number }; status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason: string; message?: string }[] } }

/** Every object of our kinds in the cluster, with its Ready condition (for its generation). */
export async function listReadiness(kc: KubeConfig): Promise<{ key: string; ready?: string; reason?: string; message?: string }[]> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const out: { key: string; ready?: string; reason?: string; message?: string }[] = [];
  for (const kind of Object.keys(PLURAL) as BulkKind[]) {
    const list = (await custom.listClusterCustomObject({ group: 'rpa-access.io', version: 'v1alpha1', plural: PLURAL[kind] })) as { items: Listed[] };
    for (const i of list.items) {
      const c = i.status?.observedGeneration === i.metadata.generation ? i.status?.conditions?.find((x) => x.type === 'Ready') : undefined;
      out.push({ key: `${kind}/${i.metadata.namespace}/${i.metadata.name}`, ready: c?.status, reason: c?.reason, message: c?.message });
    }
  }
  return out;
}
