/**
 * The reconcile core's side of issue 15 and issue 13 item 13, over an in-memory cluster and an
 * in-memory SQLite store: pause, expiry, object-by-object drift repair, uninstall. The same cases
 * run against a real kube-apiserver in test/e2e/truthful-status.test.ts and uninstall.test.ts.
 */
import pino from 'pino';
import { ReconcileCore, type ClusterPort, type CrdState, type ReconcilerMetrics } from '../../src/controllers/core.js';
import { ObjectReconciler } from '../../src/controllers/object-controller.js';
import { TenantReconciler } from '../../src/controllers/tenant-controller.js';
import type { ReconcileResult } from '../../src/k8s/workqueue.js';

const tenantKey = (namespace: string) => `Tenant/${namespace}`;

/** Both controllers behind one `reconcile(key)`, as the queues hand them keys. */
class Reconcilers {
  private readonly objects: ObjectReconciler;
  private readonly tenants: TenantReconciler;
  constructor(private readonly core: ReconcileCore) {
    this.objects = new ObjectReconciler(core);
    this.tenants = new TenantReconciler(core);
  }
  reconcile(key: string): Promise<ReconcileResult> {
    return key.startsWith('Tenant/') ? this.tenants.reconcile(key.slice('Tenant/'.length)) : this.objects.reconcile(key);
  }
  ghostsOf(tenant: string): ReadonlyMap<string, string> {
    return this.core.ghosts.get(tenant) ?? new Map();
  }
}
import { objectKey, type AccessResource, type AccessStatus } from '../../src/api/v1alpha1/resource.js';
import { FINALIZER, type Kind } from '../../src/model/catalog.js';
import { openStore } from '../../src/store/open.js';
import type { AccessStore } from '../../src/store/store.js';

class MemoryCluster implements ClusterPort {
  readonly objects = new Map<string, AccessResource>();
  crd: CrdState = { phase: 'Installed', createdAt: 0 };

  put(kind: Kind, name: string, spec: unknown, extra: Partial<AccessResource['metadata']> = {}): AccessResource {
    const key = objectKey(kind, 't', name);
    const before = this.objects.get(key);
    const obj: AccessResource = {
      apiVersion: 'rpa-access.io/v1alpha1', kind,
      metadata: { name, namespace: 't', generation: (before?.metadata.generation ?? 0) + 1, finalizers: before?.metadata.finalizers, ...extra },
      spec, status: before?.status,
    };
    this.objects.set(key, obj);
    return obj;
  }
  annotate(kind: Kind, name: string, annotations: Record<string, string>): void {
    const o = this.objects.get(objectKey(kind, 't', name))!;
    this.objects.set(objectKey(kind, 't', name), { ...o, metadata: { ...o.metadata, annotations } });
  }
  markDeleted(kind: Kind, name: string): void {
    const o = this.objects.get(objectKey(kind, 't', name))!;
    this.objects.set(objectKey(kind, 't', name), { ...o, metadata: { ...o.metadata, deletionTimestamp: new Date().toISOString() } });
  }
  get(kind: Kind, namespace: string, name: string) {
    return this.objects.get(objectKey(kind, namespace, name));
  }
  list(kind: Kind, namespace?: string) {
    return [...this.objects.values()].filter((o) => o.kind === kind && (!namespace || o.metadata.namespace === namespace));
  }
  async addFinalizer(obj: AccessResource) {
    const key = objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
    this.objects.set(key, { ...obj, metadata: { ...obj.metadata, finalizers: [FINALIZER] } });
  }
  async removeFinalizer(obj: AccessResource) {
    const key = objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
    if (obj.metadata.deletionTimestamp) this.objects.delete(key);
    else this.objects.set(key, { ...obj, metadata: { ...obj.metadata, finalizers: [] } });
  }
  async writeStatus(obj: AccessResource, status: AccessStatus) {
    const key = objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
    const current = this.objects.get(key);
    if (current) this.objects.set(key, { ...current, status });
  }
  async create(obj: AccessResource) {
    const key = objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
    if (this.objects.has(key)) return undefined;
    const created = { ...obj, metadata: { ...obj.metadata, generation: 1 } };
    this.objects.set(key, created);
    return created;
  }
  async restore(obj: AccessResource, spec: unknown, labels: Record<string, string>) {
    const key = objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
    this.objects.set(key, { ...obj, spec, metadata: { ...obj.metadata, labels, annotations: {} } });
  }
  async crdState() {
    return this.crd;
  }
}

interface Recorded {
  regarding: string;
  type: string;
  reason: string;
  note: string;
}

describe('reconcile core: what the cluster shows is what grants', () => {
  let store: AccessStore;
  let cluster: MemoryCluster;
  let events: Recorded[];
  let now: number;
  let reconciler: Reconcilers;
  let gauges: Map<string, number>;
  let refused: string[];
  let released: string[];
  const queued: string[] = [];

  beforeEach(async () => {
    store = await openStore(':memory:');
    cluster = new MemoryCluster();
    events = [];
    gauges = new Map();
    refused = [];
    released = [];
    queued.length = 0;
    now = Date.parse('2026-12-02T12:00:00Z');
    const metrics: ReconcilerMetrics = {
      ghosts: (tenant, n) => gauges.set(tenant, n),
      orphanRefused: (tenant, kind) => refused.push(`${tenant}/${kind}`),
      uninstallReleased: (kind) => released.push(kind),
    };
    reconciler = new Reconcilers(new ReconcileCore({
      store, cluster, log: pino({ level: 'silent' }), metrics, now: () => now,
      events: { record: (obj, type, reason, _action, note) => events.push({ regarding: `${obj.kind}/${obj.metadata.name}`, type, reason, note }) },
      queues: { enqueueObject: (key) => queued.push(key), enqueueTenant: (ns) => queued.push(tenantKey(ns)) },
    }));
  });

  afterEach(async () => {
    await store.close();
  });

  const ready = (kind: Kind, name: string) => cluster.get(kind, 't', name)?.status?.conditions?.find((c) => c.type === 'Ready');
  const run = (kind: Kind, name: string) => reconciler.reconcile(objectKey(kind, 't', name));
  const stored = async () => (await store.loadTenant('t'))!.state;

  test('a paused binding says Paused with the generation the store holds; its change waits; resume applies it', async () => {
    cluster.put('User', 'ann', { email: 'ann@example.com' });
    cluster.put('RoleBinding', 'view', { roleRef: { name: 'folder-viewer' }, folder: 'Shared', subjects: [{ kind: 'User', name: 'ann' }] });
    await run('User', 'ann');
    await run('RoleBinding', 'view');
    expect(ready('RoleBinding', 'view')?.reason).toBe('Applied');
    expect(cluster.get('RoleBinding', 't', 'view')!.status!.appliedGeneration).toBe(1);

    cluster.annotate('RoleBinding', 'view', { 'rpa-access.io/paused': 'true' });
    await run('RoleBinding', 'view');
    expect(ready('RoleBinding', 'view')).toMatchObject({ status: 'False', reason: 'Paused' });
    expect(ready('RoleBinding', 'view')!.message).toContain('holds generation 1, the current one');
    expect(events.filter((e) => e.reason === 'Paused')).toHaveLength(1);

    cluster.put('RoleBinding', 'view', { roleRef: { name: 'folder-viewer' }, folder: 'Secret', subjects: [{ kind: 'User', name: 'ann' }] }, { annotations: { 'rpa-access.io/paused': 'true' } });
    await run('RoleBinding', 'view');
    expect(ready('RoleBinding', 'view')!.message).toContain('holds generation 1; generation 2 is not applied');
    expect(cluster.get('RoleBinding', 't', 'view')!.status!.appliedGeneration).toBe(1);
    expect((await stored()).bindings.get('view')!.spec.folder).toBe('Shared');
    expect(events.filter((e) => e.reason === 'Paused')).toHaveLength(1);

    cluster.annotate('RoleBinding', 'view', {});
    await run('RoleBinding', 'view');
    expect(ready('RoleBinding', 'view')?.reason).toBe('Applied');
    expect((await stored()).bindings.get('view')!.spec.folder).toBe('Secret');
    expect(events.map((e) => e.reason)).toContain('Resumed');
    expect(events.map((e) => e.reason)).not.toContain('DriftCorrected');
  });

  test('pause never blocks a delete', async () => {
    cluster.put('User', 'bob', { email: 'bob@example.com' });
    cluster.put('RoleBinding', 'admin', { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'bob' }] });
    await run('User', 'bob');
    await run('RoleBinding', 'admin');
    cluster.annotate('RoleBinding', 'admin', { 'rpa-access.io/paused': 'true' });
    await run('RoleBinding', 'admin');
    cluster.markDeleted('RoleBinding', 'admin');
    await run('RoleBinding', 'admin');
    expect(cluster.get('RoleBinding', 't', 'admin')).toBeUndefined();
    expect((await stored()).bindings.has('admin')).toBe(false);
  });

  test('expiry: requeued at expiresAt, then Ready=False Expired with an Expired Event, once', async () => {
    cluster.put('User', 'dan', { email: 'dan@example.com' });
    cluster.put('RoleBinding', 'temp', { roleRef: { name: 'analyst' }, subjects: [{ kind: 'User', name: 'dan' }], expiresAt: '2026-12-02T12:00:10Z' });
    await run('User', 'dan');
    const first = await run('RoleBinding', 'temp');
    expect(ready('RoleBinding', 'temp')?.reason).toBe('Applied');
    expect(first.requeueAfterMs).toBe(10_250);
    now += 10_250;
    const second = await run('RoleBinding', 'temp');
    expect(second.requeueAfterMs).toBeUndefined();
    expect(ready('RoleBinding', 'temp')).toMatchObject({ status: 'False', reason: 'Expired' });
    await run('RoleBinding', 'temp');
    expect(events.filter((e) => e.reason === 'Expired')).toHaveLength(1);
  });

  test('drift: a refused orphan is reported and kept; the other orphans go; a delete in the tenant retries it', async () => {
    for (const u of ['boss', 'carol', 'dave']) cluster.put('User', u, { email: `${u}@example.com` });
    cluster.put('RoleBinding', 'owner', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'boss' }] });
    cluster.put('RoleBinding', 'carol-admin', { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'carol' }] });
    cluster.put('RoleBinding', 'dave-view', { roleRef: { name: 'analyst' }, subjects: [{ kind: 'User', name: 'dave' }] });
    await reconciler.reconcile(tenantKey('t'));
    for (const [kind, name] of [['User', 'boss'], ['User', 'carol'], ['User', 'dave'], ['RoleBinding', 'owner'], ['RoleBinding', 'carol-admin'], ['RoleBinding', 'dave-view']] as const) await run(kind, name);
    for (const key of ['User/t/boss', 'RoleBinding/t/carol-admin', 'RoleBinding/t/dave-view']) cluster.objects.delete(key);

    const result = await reconciler.reconcile(tenantKey('t'));
    const state = await stored();
    expect(state.bindings.has('carol-admin')).toBe(false);
    expect(state.bindings.has('dave-view')).toBe(false);
    expect(state.users.has('boss')).toBe(true);
    expect(gauges.get('t')).toBe(1);
    expect(refused).toEqual(['t/User']);
    const warning = events.find((e) => e.reason === 'OrphanKept')!;
    expect(warning).toMatchObject({ regarding: 'Group/global', type: 'Warning' });
    expect(warning.note).toContain('User t/boss');
    expect(warning.note).toContain('remove the binding first');
    expect(reconciler.ghostsOf('t').get('User/boss')).toContain('RoleBinding t/owner');
    expect(result.requeueAfterMs).toBe(60_000);

    cluster.markDeleted('RoleBinding', 'owner');
    queued.length = 0;
    await run('RoleBinding', 'owner');
    expect(queued).toContain(tenantKey('t'));
    await reconciler.reconcile(tenantKey('t'));
    expect((await stored()).users.has('boss')).toBe(false);
    expect(gauges.get('t')).toBe(0);
  });

  test('an orphan older than the CRD of its kind is a ghost, never removed (a reinstall before the documents come back)', async () => {
    cluster.put('User', 'old', { email: 'old@example.com' });
    await reconciler.reconcile(tenantKey('t'));
    await run('User', 'old');
    cluster.objects.delete('User/t/old');
    cluster.crd = { phase: 'Installed', createdAt: Date.now() + 60_000 };
    await reconciler.reconcile(tenantKey('t'));
    expect((await stored()).users.has('old')).toBe(true);
    expect(reconciler.ghostsOf('t').get('User/old')).toContain('before the users.rpa-access.io CRD was installed');
  });

  test('while a CRD is being deleted, objects are released without touching the store, and drift repair waits', async () => {
    cluster.put('User', 'ann', { email: 'ann@example.com' });
    await reconciler.reconcile(tenantKey('t'));
    await run('User', 'ann');
    const audit = (await store.audit({})).length;
    cluster.crd = { phase: 'Terminating' };
    cluster.markDeleted('User', 'ann');
    await run('User', 'ann');
    expect(cluster.get('User', 't', 'ann')).toBeUndefined();
    await run('User', 'ann');
    await reconciler.reconcile(tenantKey('t'));
    cluster.crd = { phase: 'Absent' };
    await reconciler.reconcile(tenantKey('t'));
    expect((await stored()).users.has('ann')).toBe(true);
    expect((await store.audit({})).length).toBe(audit);
    expect(released).toEqual(['User']);
  });

  test('contract 4.7: the binding the store creates at a transfer is mirrored into the cluster, labelled, and adopted', async () => {
    cluster.put('User', 'ann', { email: 'ann@example.com' });
    cluster.put('User', 'bob', { email: 'bob@example.com' });
    cluster.put('RoleBinding', 'owner', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] });
    await reconciler.reconcile(tenantKey('t'));
    for (const [kind, name] of [['User', 'ann'], ['User', 'bob'], ['RoleBinding', 'owner']] as const) await run(kind, name);
    cluster.put('RoleBinding', 'owner', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'bob' }] });
    await run('RoleBinding', 'owner');
    const mirrored = cluster.get('RoleBinding', 't', 'former-owner-ann')!;
    expect(mirrored.metadata.labels).toEqual({ 'rpa-access.io/created-by': 'ownership-transfer' });
    expect(mirrored.spec).toEqual({ roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'ann' }] });
    expect(events.map((e) => e.reason)).toContain('CreatedByOwnershipTransfer');
    await run('RoleBinding', 'former-owner-ann');
    expect(ready('RoleBinding', 'former-owner-ann')?.reason).toBe('Applied');
    expect((await stored()).bindings.get('former-owner-ann')!.origin).toBe('user');
  });

  test('a built-in cannot be paused: put back, annotation dropped', async () => {
    cluster.put('User', 'cy', { email: 'cy@example.com' });
    await reconciler.reconcile(tenantKey('t'));
    const analyst = cluster.get('Role', 't', 'analyst')!;
    cluster.objects.set('Role/t/analyst', { ...analyst, spec: { scope: 'Tenant', permissions: [{ resource: 'Users', actions: ['Delete'] }] }, metadata: { ...analyst.metadata, annotations: { 'rpa-access.io/paused': 'true' } } });
    await run('Role', 'analyst');
    expect(JSON.stringify(cluster.get('Role', 't', 'analyst')!.spec)).not.toContain('Delete');
    expect(cluster.get('Role', 't', 'analyst')!.metadata.annotations).toEqual({});
    expect(events.find((e) => e.reason === 'BuiltInRestored')!.note).toContain('cannot be paused');
  });
});
