// The controllers (src/controllers) over a fake ClusterPort and a real embedded store: every
// branch of the object and tenant reconcilers, in seconds, without a cluster.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { objectKey, type AccessResource, type AccessStatus } from '../../src/api/v1alpha1/resource.js';
import { ReconcileCore, StoreUnavailableError, type ClusterPort } from '../../src/controllers/core.js';
import { ObjectReconciler } from '../../src/controllers/object-controller.js';
import { TenantReconciler } from '../../src/controllers/tenant-controller.js';
import { ANNOTATION_PAUSED, API_VERSION_FULL, FINALIZER, LABEL_BUILT_IN, type Kind } from '../../src/model/catalog.js';
import { builtInEntries } from '../../src/model/tenant.js';
import type { AccessStore } from '../../src/store/store.js';
import { sqliteFactory } from '../support/stores.js';

const NS = 'finance';

/** The cluster as the informer caches would show it, with the writes the controllers make. */
class FakeCluster implements ClusterPort {
  readonly objects = new Map<string, AccessResource>();
  readonly writes: string[] = [];
  /** Keys the API server has but the cache does not show yet (a cache behind). */
  readonly onlyLive = new Set<string>();
  liveReads = 0;

  put(obj: AccessResource): AccessResource {
    this.objects.set(objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name), obj);
    return obj;
  }
  get(kind: Kind, namespace: string, name: string) {
    return this.objects.get(objectKey(kind, namespace, name));
  }
  list(kind: Kind, namespace?: string) {
    return [...this.objects.values()].filter((o) => o.kind === kind && (!namespace || o.metadata.namespace === namespace));
  }
  async existsLive(kind: Kind, namespace: string, name: string) {
    this.liveReads++;
    const key = objectKey(kind, namespace, name);
    return this.objects.has(key) || this.onlyLive.has(key);
  }
  async addFinalizer(obj: AccessResource) {
    this.writes.push(`finalizer+ ${obj.kind}/${obj.metadata.name}`);
    obj.metadata.finalizers = [...(obj.metadata.finalizers ?? []), FINALIZER];
  }
  async removeFinalizer(obj: AccessResource) {
    this.writes.push(`finalizer- ${obj.kind}/${obj.metadata.name}`);
    obj.metadata.finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
  }
  async writeStatus(obj: AccessResource, status: AccessStatus) {
    this.writes.push(`status ${obj.kind}/${obj.metadata.name}`);
    obj.status = status;
  }
  async create(obj: AccessResource) {
    if (this.get(obj.kind as Kind, obj.metadata.namespace, obj.metadata.name)) return undefined;
    this.writes.push(`create ${obj.kind}/${obj.metadata.name}`);
    return this.put(structuredClone(obj));
  }
  async restore(obj: AccessResource, spec: unknown, labels: Record<string, string>) {
    this.writes.push(`restore ${obj.kind}/${obj.metadata.name}`);
    obj.spec = structuredClone(spec);
    obj.metadata.labels = labels;
  }
}

const resource = (kind: Kind, name: string, spec: unknown, extra: Partial<AccessResource['metadata']> = {}): AccessResource => ({
  apiVersion: API_VERSION_FULL, kind, metadata: { name, namespace: NS, generation: 1, ...extra }, spec,
});
const ready = (obj: AccessResource) => obj.status?.conditions?.find((c) => c.type === 'Ready');

let store: AccessStore;
let cluster: FakeCluster;
let events: string[];
let enqueued: string[];
let core: ReconcileCore;
let objects: ObjectReconciler;
let tenants: TenantReconciler;

beforeEach(async () => {
  store = await sqliteFactory.open();
  cluster = new FakeCluster();
  events = [];
  enqueued = [];
  core = new ReconcileCore({
    store, cluster, log: pino({ level: 'silent' }),
    events: { record: (obj, type, reason) => events.push(`${type} ${reason} ${obj.kind}/${obj.metadata.name}`) },
    queues: { enqueueObject: (key) => enqueued.push(key), enqueueTenant: (ns) => enqueued.push(`tenant ${ns}`) },
  });
  objects = new ObjectReconciler(core, { refusedRetryMs: 1_234 });
  tenants = new TenantReconciler(core, { driftPeriodMs: 5_678 });
});

afterEach(async () => {
  await store.close();
});

const stored = async (kind: Kind, name: string) => {
  const snap = await store.loadTenant(NS);
  const coll = { User: snap?.state.users, Group: snap?.state.groups, Role: snap?.state.roles, RoleBinding: snap?.state.bindings }[kind];
  return coll?.get(name);
};

describe('tenant controller', () => {
  it('bootstraps a new tenant: built-ins in the store and in the cluster, with Events; drift period next', async () => {
    const r = await tenants.reconcile(NS);
    expect(r).toEqual({ requeueAfterMs: 5_678 });
    for (const b of builtInEntries()) {
      expect(cluster.get(b.kind, NS, b.name)?.metadata.labels?.[LABEL_BUILT_IN]).toBe('true');
      expect(await stored(b.kind, b.name)).toBeDefined();
    }
    expect(events).toContain('Normal BuiltInCreated Group/global');
    // Every object of the tenant is handed to the object controller.
    expect(enqueued).toContain(objectKey('Group', NS, 'global'));
  });

  it('recreates a built-in missing from the cluster as a warning, and removes what the cluster no longer has', async () => {
    await tenants.reconcile(NS);
    await store.apply([{ tenant: NS, upserts: [{ kind: 'Group', name: 'orphans', spec: {}, origin: 'user' }] }], { actor: 't', source: 't' });
    cluster.objects.delete(objectKey('Group', NS, 'global'));
    events.length = 0;
    await tenants.reconcile(NS);
    expect(events).toEqual(['Warning BuiltInRestored Group/global']);
    expect(await stored('Group', 'orphans')).toBeUndefined();
  });

  it('takes nothing out of the store that the cache lacks but the API server still has (a cache behind)', async () => {
    await tenants.reconcile(NS);
    const upserts = ['late', 'gone'].map((name) => ({ kind: 'Group' as const, name, spec: {}, origin: 'user' as const }));
    await store.apply([{ tenant: NS, upserts }], { actor: 't', source: 't' });
    cluster.onlyLive.add(objectKey('Group', NS, 'late'));
    cluster.liveReads = 0;
    await tenants.reconcile(NS);
    expect(cluster.liveReads).toBe(2);
    expect(await stored('Group', 'late')).toBeDefined();
    expect(await stored('Group', 'gone')).toBeUndefined();
    // And the object controller, told the key is gone, asks the API server too.
    await objects.reconcile(objectKey('Group', NS, 'late'));
    expect(await stored('Group', 'late')).toBeDefined();
    cluster.onlyLive.clear();
    await objects.reconcile(objectKey('Group', NS, 'late'));
    expect(await stored('Group', 'late')).toBeUndefined();
  });

  it('removes nothing when the live read fails: the reconcile fails and is retried', async () => {
    await tenants.reconcile(NS);
    await store.apply([{ tenant: NS, upserts: [{ kind: 'Group', name: 'orphan', spec: {}, origin: 'user' }] }], { actor: 't', source: 't' });
    cluster.existsLive = async () => {
      throw new Error('HTTP 503: the API server is restarting');
    };
    await expect(tenants.reconcile(NS)).rejects.toThrow(/503/);
    await expect(objects.reconcile(objectKey('Group', NS, 'orphan'))).rejects.toThrow(/503/);
    expect(await stored('Group', 'orphan')).toBeDefined();
  });
});

describe('object controller', () => {
  beforeEach(async () => {
    await tenants.reconcile(NS);
    enqueued.length = 0;
    events.length = 0;
  });

  it('adds the finalizer first, writes the store, reports Ready=True once', async () => {
    const u = cluster.put(resource('User', 'ann', { email: 'ann@example.com' }));
    expect(await objects.reconcile(objectKey('User', NS, 'ann'))).toEqual({});
    expect(cluster.writes.slice(-2)).toEqual(['finalizer+ User/ann', 'status User/ann']);
    expect(await stored('User', 'ann')).toBeDefined();
    expect(ready(u)).toMatchObject({ status: 'True', reason: 'Applied', observedGeneration: 1 });
    expect(u.status?.observedGeneration).toBe(1);
    expect(events).toEqual(['Normal Created User/ann']);
    const writes = cluster.writes.length;
    await objects.reconcile(objectKey('User', NS, 'ann'));
    expect(cluster.writes.length).toBe(writes); // unchanged status is not written again
  });

  it('reports a missing reference as Ready=False with its reason, and requeues dependents when it appears', async () => {
    const u = cluster.put(resource('User', 'ann', { email: 'ann@example.com', groups: ['ops'] }));
    await objects.reconcile(objectKey('User', NS, 'ann'));
    expect(ready(u)).toMatchObject({ status: 'False', reason: 'GroupNotFound' });
    cluster.put(resource('Group', 'ops', {}));
    await objects.reconcile(objectKey('Group', NS, 'ops'));
    expect(enqueued).toContain(objectKey('User', NS, 'ann'));
  });

  it('refuses an invalid spec: Warning Invalid, Ready=False, store untouched', async () => {
    const u = cluster.put(resource('User', 'bad', { email: 'not an email' }));
    await objects.reconcile(objectKey('User', NS, 'bad'));
    expect(ready(u)).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(events).toEqual(['Warning Invalid User/bad']);
    expect(await stored('User', 'bad')).toBeUndefined();
  });

  it('refuses a violation with the rule as reason', async () => {
    cluster.put(resource('User', 'ann', { email: 'ann@example.com' }));
    cluster.put(resource('User', 'bob', { email: 'bob@example.com' }));
    await objects.reconcile(objectKey('User', NS, 'ann'));
    await objects.reconcile(objectKey('User', NS, 'bob'));
    cluster.put(resource('RoleBinding', 'own1', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] }));
    await objects.reconcile(objectKey('RoleBinding', NS, 'own1'));
    const second = cluster.put(resource('RoleBinding', 'own2', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'bob' }] }));
    await objects.reconcile(objectKey('RoleBinding', NS, 'own2'));
    expect(ready(second)?.status).toBe('False');
    expect(events.at(-1)).toMatch(/^Warning \S+ RoleBinding\/own2$/);
    expect(await stored('RoleBinding', 'own2')).toBeUndefined();
  });

  it('passes a delete through the store, then lets the object go', async () => {
    const g = cluster.put(resource('Group', 'ops', {}));
    await objects.reconcile(objectKey('Group', NS, 'ops'));
    g.metadata.deletionTimestamp = new Date().toISOString();
    await objects.reconcile(objectKey('Group', NS, 'ops'));
    expect(await stored('Group', 'ops')).toBeUndefined();
    expect(cluster.writes.at(-1)).toBe('finalizer- Group/ops');
    expect(events.at(-1)).toBe('Normal Deleted Group/ops');
    // Without our finalizer there is nothing to do.
    const before = cluster.writes.length;
    await objects.reconcile(objectKey('Group', NS, 'ops'));
    expect(cluster.writes.length).toBe(before);
  });

  it('keeps an object whose delete the store refuses, says why, and retries later', async () => {
    const ann = cluster.put(resource('User', 'ann', { email: 'ann@example.com' }));
    await objects.reconcile(objectKey('User', NS, 'ann'));
    cluster.put(resource('RoleBinding', 'own', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] }));
    await objects.reconcile(objectKey('RoleBinding', NS, 'own'));
    ann.metadata.deletionTimestamp = new Date().toISOString();
    expect(await objects.reconcile(objectKey('User', NS, 'ann'))).toEqual({ requeueAfterMs: 1_234 });
    expect(ready(ann)).toMatchObject({ status: 'False', reason: 'DeleteRefused' });
    expect(ann.metadata.finalizers).toContain(FINALIZER);
    expect(await stored('User', 'ann')).toBeDefined();
  });

  it('removes from the store an object deleted without passing the finalizer', async () => {
    cluster.put(resource('Group', 'ops', {}));
    await objects.reconcile(objectKey('Group', NS, 'ops'));
    cluster.objects.delete(objectKey('Group', NS, 'ops'));
    await objects.reconcile(objectKey('Group', NS, 'ops'));
    expect(await stored('Group', 'ops')).toBeUndefined();
  });

  it('puts back a changed built-in; a deleted or missing one goes to the tenant controller', async () => {
    const admin = cluster.get('Role', NS, 'administrator')!;
    admin.spec = { scope: 'Tenant', permissions: [] };
    await objects.reconcile(objectKey('Role', NS, 'administrator'));
    expect(cluster.writes.at(-1)).toBe('restore Role/administrator');
    expect(events).toEqual(['Warning BuiltInRestored Role/administrator']);
    await objects.reconcile(objectKey('Role', NS, 'administrator'));
    expect(ready(admin)).toMatchObject({ status: 'True', reason: 'BuiltIn' });

    admin.metadata.deletionTimestamp = new Date().toISOString();
    await objects.reconcile(objectKey('Role', NS, 'administrator'));
    expect(enqueued).toEqual([`tenant ${NS}`]);
    cluster.objects.delete(objectKey('Role', NS, 'administrator'));
    await objects.reconcile(objectKey('Role', NS, 'administrator'));
    expect(enqueued).toEqual([`tenant ${NS}`, `tenant ${NS}`]);
  });

  it('applies nothing of a paused object but says so (Paused, issue 15), and ignores a malformed key', async () => {
    const g = cluster.put(resource('Group', 'ops', {}, { annotations: { [ANNOTATION_PAUSED]: 'true' } }));
    expect(await objects.reconcile(objectKey('Group', NS, 'ops'))).toEqual({});
    expect(ready(g)).toMatchObject({ status: 'False', reason: 'Paused' });
    expect(events).toContain('Normal Paused Group/ops');
    const before = cluster.writes.length;
    expect(await objects.reconcile('Nope/x/y')).toEqual({});
    expect(await objects.reconcile('Group/only-two')).toEqual({});
    expect(cluster.writes.length).toBe(before);
    expect(await stored('Group', 'ops')).toBeUndefined();
  });

  it('says StoreUnavailable and throws for the queue to retry when the store cannot be written', async () => {
    const g = cluster.put(resource('Group', 'ops', {}));
    await store.close();
    await expect(objects.reconcile(objectKey('Group', NS, 'ops'))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(ready(g)).toMatchObject({ status: 'False', reason: 'StoreUnavailable' });
    store = await sqliteFactory.open(); // for afterEach
  });
});

describe('object controller, in batches', () => {
  beforeEach(async () => {
    await tenants.reconcile(NS);
    enqueued.length = 0;
    events.length = 0;
  });

  const key = (kind: Kind, name: string) => objectKey(kind, NS, name);
  const revision = async () => (await store.loadTenant(NS))!.revision;

  it('writes the objects of a tenant in one store transaction, each with its Event and status', async () => {
    const before = await revision();
    const objs = ['ann', 'bob', 'cy'].map((n) => cluster.put(resource('User', n, { email: `${n}@example.com` })));
    const outcomes = await objects.reconcileBatch(objs.map((o) => key('User', o.metadata.name)));
    expect([...outcomes.values()]).toEqual([{ result: {} }, { result: {} }, { result: {} }]);
    expect(await revision()).toBe(before + 1);
    for (const o of objs) expect(ready(o)).toMatchObject({ status: 'True', reason: 'Applied' });
    expect(events.sort()).toEqual(['Normal Created User/ann', 'Normal Created User/bob', 'Normal Created User/cy']);
    // Nothing changed: the same batch again writes nothing at all.
    const writes = cluster.writes.length;
    await objects.reconcileBatch(objs.map((o) => key('User', o.metadata.name)));
    expect(cluster.writes.length).toBe(writes);
    expect(await revision()).toBe(before + 1);
  });

  it('refuses the objects an invariant blames and lands the rest: two owner bindings, a reserved name, an invalid spec', async () => {
    cluster.put(resource('User', 'ann', { email: 'ann@example.com' }));
    cluster.put(resource('User', 'bob', { email: 'bob@example.com' }));
    await objects.reconcileBatch([key('User', 'ann'), key('User', 'bob')]);
    events.length = 0;
    const batch = [
      cluster.put(resource('RoleBinding', 'own-a', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] })),
      cluster.put(resource('RoleBinding', 'own-b', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'bob' }] })),
      cluster.put(resource('RoleBinding', 'former-owner-zed', { roleRef: { name: 'viewer' }, subjects: [{ kind: 'User', name: 'bob' }] })),
      cluster.put(resource('Group', 'ops', {})),
      cluster.put(resource('User', 'bad', { email: 'not an email' })),
      cluster.put(resource('User', 'cy', { email: 'cy@example.com', groups: ['ops'] })),
    ];
    const outcomes = await objects.reconcileBatch(batch.map((o) => key(o.kind as Kind, o.metadata.name)));
    expect([...outcomes.values()].every((o) => 'result' in o)).toBe(true);
    // Between two new owner bindings the planner keeps the first by name.
    expect(await stored('RoleBinding', 'own-a')).toBeDefined();
    expect(await stored('RoleBinding', 'own-b')).toBeUndefined();
    expect(await stored('RoleBinding', 'former-owner-zed')).toBeUndefined();
    expect(await stored('User', 'bad')).toBeUndefined();
    expect(await stored('Group', 'ops')).toBeDefined();
    expect(await stored('User', 'cy')).toBeDefined();
    const [ownA, ownB, reserved, ops, bad, cy] = batch;
    expect(ready(ownA!)).toMatchObject({ status: 'True', reason: 'Applied' });
    expect(ready(ownB!)).toMatchObject({ status: 'False', reason: 'SingleOwner' });
    expect(ready(ownB!)?.message).toMatch(/own-a already grants owner/);
    expect(ready(reserved!)).toMatchObject({ status: 'False', reason: 'ReservedName' });
    expect(ready(ops!)).toMatchObject({ status: 'True', reason: 'Applied' });
    expect(ready(bad!)).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(ready(cy!)).toMatchObject({ status: 'True', reason: 'Applied' });
    expect(events).toEqual(expect.arrayContaining([
      'Warning SingleOwner RoleBinding/own-b', 'Warning ReservedName RoleBinding/former-owner-zed', 'Warning Invalid User/bad',
      'Normal Created RoleBinding/own-a', 'Normal Created Group/ops', 'Normal Created User/cy',
    ]));
  });

  it('a refusal that depends on another refused object of the batch is judged again without it', async () => {
    // The Folder role's scope change is refused (a binding uses it tenant-wide)... a binding of
    // the batch that needed the new scope is then refused on its own account, the rest lands.
    cluster.put(resource('Role', 'ops', { scope: 'Tenant', permissions: [] }));
    cluster.put(resource('User', 'ann', { email: 'ann@example.com' }));
    cluster.put(resource('RoleBinding', 'wide', { roleRef: { name: 'ops' }, subjects: [{ kind: 'User', name: 'ann' }] }));
    await objects.reconcileBatch([key('Role', 'ops'), key('User', 'ann'), key('RoleBinding', 'wide')]);
    expect(await stored('RoleBinding', 'wide')).toBeDefined();
    const role = cluster.put(resource('Role', 'ops', { scope: 'Folder', permissions: [] }, { generation: 2 }));
    const inFolder = cluster.put(resource('RoleBinding', 'in-folder', { roleRef: { name: 'ops' }, folder: 'Finance', subjects: [{ kind: 'User', name: 'ann' }] }));
    const group = cluster.put(resource('Group', 'ok', {}));
    await objects.reconcileBatch([key('Role', 'ops'), key('RoleBinding', 'in-folder'), key('Group', 'ok')]);
    expect(ready(role)).toMatchObject({ status: 'False', reason: 'BindingScope' });
    expect(ready(inFolder)).toMatchObject({ status: 'False', reason: 'BindingScope' });
    expect(ready(group)).toMatchObject({ status: 'True' });
    expect((await stored('Role', 'ops'))?.spec).toMatchObject({ scope: 'Tenant' });
    expect(await stored('RoleBinding', 'in-folder')).toBeUndefined();
  });

  it('sends deletes, pauses, built-ins and gone keys down their own path beside the batch', async () => {
    const g = cluster.put(resource('Group', 'gone-soon', {}));
    await objects.reconcileBatch([key('Group', 'gone-soon')]);
    g.metadata.deletionTimestamp = new Date().toISOString();
    const paused = cluster.put(resource('Group', 'held', {}, { annotations: { [ANNOTATION_PAUSED]: 'true' } }));
    const fresh = cluster.put(resource('Group', 'fresh', {}));
    const outcomes = await objects.reconcileBatch([key('Group', 'gone-soon'), key('Group', 'held'), key('Group', 'fresh'), key('Group', 'global'), 'Nope/x/y']);
    expect(outcomes.size).toBe(5);
    expect(await stored('Group', 'gone-soon')).toBeUndefined();
    expect(cluster.writes).toContain('finalizer- Group/gone-soon');
    expect(ready(paused)).toMatchObject({ reason: 'Paused' });
    expect(ready(fresh)).toMatchObject({ status: 'True', reason: 'Applied' });
  });

  it('when the store is down, every object of the batch says StoreUnavailable and is retried', async () => {
    const a = cluster.put(resource('Group', 'a', {}));
    const b = cluster.put(resource('Group', 'b', {}));
    await store.close();
    const outcomes = await objects.reconcileBatch([key('Group', 'a'), key('Group', 'b')]);
    for (const o of outcomes.values()) expect('error' in o && o.error).toBeInstanceOf(StoreUnavailableError);
    expect(ready(a)).toMatchObject({ reason: 'StoreUnavailable' });
    expect(ready(b)).toMatchObject({ reason: 'StoreUnavailable' });
    store = await sqliteFactory.open(); // for afterEach
  });
});
