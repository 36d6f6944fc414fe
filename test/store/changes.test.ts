/**
 * The store's incremental read, `loadTenantChanges(tenant, since)`, on each real backend: what
 * changed after a revision (upserts as they are now, deletes), the cases where it must refuse
 * (and the reader loads the whole tenant), and that the state at `since` plus the changes is
 * exactly the state at the returned revision, also while several writers commit concurrently.
 */
import { TenantIndex } from '../../src/model/engine.js';
import { allEntries, canonicalJson } from '../../src/model/tenant.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import type { AccessStore, TenantChanges } from '../../src/store/store.js';
import { T, bind, group, role, user } from '../support/scenarios.js';
import { storeFactories } from '../support/stores.js';

const names = (c: TenantChanges | undefined) => ({
  upserts: (c?.upserts ?? []).map((e) => `${e.kind}/${e.name}`).sort(),
  deletes: (c?.deletes ?? []).map((d) => `${d.kind}/${d.name}`).sort(),
});

async function put(store: AccessStore, upserts: Parameters<AccessStore['apply']>[0][0]['upserts'], deletes: { kind: 'User' | 'Group' | 'Role' | 'RoleBinding'; name: string }[] = []): Promise<number> {
  const r = await store.apply([{ tenant: T, upserts, deletes }], { actor: 'test', source: 'jest' });
  expect(r.violations).toEqual([]);
  return r.revisions.get(T)!;
}

/** The decisions-relevant content of a state: every entry, canonical. */
const dumpIndex = (ix: TenantIndex) => canonicalJson(allEntries(ix.toState()));

describe.each(storeFactories)('loadTenantChanges on $name', (factory) => {
  let store: AccessStore;
  beforeEach(async () => {
    store = await factory.open();
  });
  afterEach(async () => {
    await store.close();
  });

  test('returns what changed after a revision: created, updated, deleted', async () => {
    const r1 = await put(store, [user('ann'), user('bob'), group('ops'), bind('ann-admin', 'administrator', ['u:ann'])]);
    expect(await store.loadTenantChanges!(T, r1)).toEqual({ since: r1, revision: r1, upserts: [], deletes: [] });

    const r2 = await put(store, [user('ann', { fullName: 'Ann' }), user('cy')], [{ kind: 'User', name: 'bob' }]);
    const c2 = await store.loadTenantChanges!(T, r1);
    expect(c2?.revision).toBe(r2);
    expect(names(c2)).toEqual({ upserts: ['User/ann', 'User/cy'], deletes: ['User/bob'] });
    expect(c2!.upserts.find((e) => e.name === 'ann')!.spec).toMatchObject({ fullName: 'Ann' });

    const r3 = await put(store, [], [{ kind: 'RoleBinding', name: 'ann-admin' }, { kind: 'Group', name: 'ops' }]);
    expect(names(await store.loadTenantChanges!(T, r2))).toEqual({ upserts: [], deletes: ['Group/ops', 'RoleBinding/ann-admin'] });
    // Over several revisions: the union, each object as it is now.
    expect(names(await store.loadTenantChanges!(T, r1))).toEqual({
      upserts: ['User/ann', 'User/cy'], deletes: ['Group/ops', 'RoleBinding/ann-admin', 'User/bob'],
    });
    expect((await store.loadTenantChanges!(T, r1))!.revision).toBe(r3);
  });

  test('an object deleted and created again is an upsert, not a delete', async () => {
    const r1 = await put(store, [user('ann'), bind('ann-admin', 'administrator', ['u:ann'])]);
    await put(store, [], [{ kind: 'RoleBinding', name: 'ann-admin' }]);
    await put(store, [bind('ann-admin', 'administrator', ['u:ann'], { expiresAt: '2030-01-01T00:00:00Z' })]);
    const c = await store.loadTenantChanges!(T, r1);
    expect(names(c)).toEqual({ upserts: ['RoleBinding/ann-admin'], deletes: [] });
    expect(c!.upserts[0]!.spec).toMatchObject({ expiresAt: '2030-01-01T00:00:00Z' });
  });

  test('refuses what it cannot answer exactly: unknown tenant, a revision ahead, a delta over the limit', async () => {
    const r1 = await put(store, [user('ann')]);
    expect(await store.loadTenantChanges!('nobody', 0)).toBeUndefined();
    expect(await store.loadTenantChanges!(T, r1 + 1)).toBeUndefined();
    expect(await store.loadTenantChanges!(T, -1)).toBeUndefined();
    await put(store, [user('bob'), user('cy'), user('dee')]);
    expect(await store.loadTenantChanges!(T, r1, { limit: 2 })).toBeUndefined();
    expect(names(await store.loadTenantChanges!(T, r1, { limit: 3 })).upserts).toEqual(['User/bob', 'User/cy', 'User/dee']);
    // From revision 0, the tenant's creation: everything (built-ins included) is an upsert.
    const all = await store.loadTenantChanges!(T, 0);
    expect(all!.upserts.length).toBe(allEntries((await store.loadTenant(T))!.state).length);
  });

  test('refuses a delta reaching into history without recorded revisions (audit rows older than migration 0002)', async () => {
    const r1 = await put(store, [user('ann')]);
    const r2 = await put(store, [user('bob')]);
    const r3 = await put(store, [], [{ kind: 'User', name: 'bob' }]);
    // As a store upgraded from 0001 would have it: the audit rows of r2 carry no revision.
    await (store as SqlStore).db.updateTable('audit').set({ revision: null }).where('tenant', '=', T).where('revision', '=', r2).execute();
    expect(await store.loadTenantChanges!(T, r1)).toBeUndefined();
    expect(names(await store.loadTenantChanges!(T, r2))).toEqual({ upserts: [], deletes: ['User/bob'] });
    expect((await store.loadTenantChanges!(T, r3))!.upserts).toEqual([]);
  });

  test('the index at `since` plus the changes equals a fresh load, change after change (roles included)', async () => {
    await put(store, [user('ann', { groups: ['ops'] }), user('bob'), group('ops'), role('viewer', 'Folder', [['Jobs', ['View']]])]);
    let snap = (await store.loadTenant(T))!;
    let ix = new TenantIndex(snap.state, snap.revision);
    const steps: [Parameters<typeof put>[1], Parameters<typeof put>[2]][] = [
      [[bind('ops-view', 'viewer', ['g:ops'], { folder: 'A' })], []],
      [[bind('bob-view', 'viewer', ['u:bob'], { folder: 'B' }), user('cy', { groups: ['ops'] })], []],
      [[role('viewer', 'Folder', [['Jobs', ['View', 'Create']]])], []],
      [[bind('ops-view', 'viewer', ['g:ops', 'u:bob'], { folder: 'A' })], [{ kind: 'User', name: 'cy' }]],
      [[], [{ kind: 'RoleBinding', name: 'bob-view' }, { kind: 'Group', name: 'ops' }]],
    ];
    for (const [upserts, deletes] of steps) {
      await put(store, upserts, deletes);
      const c = (await store.loadTenantChanges!(T, ix.revision))!;
      ix = ix.withChanges(c, c.revision);
      snap = (await store.loadTenant(T))!;
      expect(ix.revision).toBe(snap.revision);
      expect(dumpIndex(ix)).toBe(canonicalJson(allEntries(snap.state)));
    }
  });

  test('consistent under concurrent writers: deltas read while two handles commit end on the store state', async () => {
    // Two writer handles on the same store: each flips its own bindings, 8 times.
    const url = factory.newUrl();
    const base = await factory.open(url);
    const w1 = await factory.open(url);
    const w2 = await factory.open(url);
    try {
      await base.apply([{ tenant: T, upserts: [user('ann'), user('bob')] }]);
      const first = (await base.loadTenant(T))!;
      let ix = new TenantIndex(first.state, first.revision);
      const writer = async (w: AccessStore, who: string) => {
        for (let i = 0; i < 8; i++) {
          const name = `${who}-b${i % 3}`;
          if (i % 2 === 0) await w.apply([{ tenant: T, upserts: [bind(name, 'folder-viewer', [`u:${who}`], { folder: `F${i}` })] }]);
          else await w.apply([{ tenant: T, upserts: [], deletes: [{ kind: 'RoleBinding', name: `${who}-b${(i - 1) % 3}` }] }]);
        }
      };
      let reading = true;
      const reader = (async () => {
        while (reading) {
          const c = await base.loadTenantChanges!(T, ix.revision);
          if (c && c.revision > ix.revision) ix = ix.withChanges(c, c.revision);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await Promise.all([writer(w1, 'ann'), writer(w2, 'bob')]);
      reading = false;
      await reader;
      const c = (await base.loadTenantChanges!(T, ix.revision))!;
      ix = ix.withChanges(c, c.revision);
      const fresh = await factory.open(url);
      try {
        const snap = (await fresh.loadTenant(T))!;
        expect(ix.revision).toBe(snap.revision);
        expect(dumpIndex(ix)).toBe(canonicalJson(allEntries(snap.state)));
      } finally {
        await fresh.close();
      }
    } finally {
      await Promise.all([base.close(), w1.close(), w2.close()]);
    }
  });
});
