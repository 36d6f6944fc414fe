/**
 * The contract's rules on each real backend (SQLite file, PostgreSQL schema): every scenario of
 * test/support/scenarios.ts, then the store's own promises: all-or-nothing applies, idempotent
 * re-apply, audit trail, serialized concurrent writers, change notification, durability.
 */
import { TenantIndex } from '../../src/model/engine.js';
import { allEntries, canonicalJson } from '../../src/model/tenant.js';
import { openStore } from '../../src/store/open.js';
import type { AccessStore } from '../../src/store/store.js';
import { SCENARIOS, T, bind, group, role, user, type Step } from '../support/scenarios.js';
import { storeFactories } from '../support/stores.js';

async function dump(store: AccessStore): Promise<string> {
  const revisions = [...(await store.revisions())].sort();
  const tenants = await Promise.all(revisions.map(async ([t]) => allEntries((await store.loadTenant(t))!.state)));
  return canonicalJson({ revisions, tenants, audit: (await store.audit()).length });
}

async function runStep(store: AccessStore, step: Step): Promise<void> {
  const before = await dump(store);
  const result = await store.apply(
    [{ tenant: T, upserts: step.upserts ?? [], deletes: step.deletes ?? [], prune: step.prune ?? false }],
    { actor: 'test', source: 'jest' },
  );
  if (step.refused) {
    expect(result.violations.map((v) => v.rule)).toContain(step.refused);
    expect(result.written).toBe(false);
    expect(await dump(store)).toBe(before);
  } else {
    expect(result.violations).toEqual([]);
  }
  if (step.expect) {
    const index = new TenantIndex((await store.loadTenant(T))!.state);
    for (const e of step.expect) {
      const r = index.check(e);
      const got = { ...e, allowed: r.allowed, ...(e.via ? { via: r.grants.map((g) => g.via).sort() } : {}), ...(e.reason ? { reason: r.reason } : {}) };
      expect(got).toEqual(e);
    }
  }
}

describe.each(storeFactories)('access store on $name', (factory) => {
  let store: AccessStore;
  beforeEach(async () => {
    store = await factory.open();
  });
  afterEach(async () => {
    await store.close();
  });

  describe('contract rules', () => {
    test.each(SCENARIOS.map((s) => [s.rule, s] as const))('%s', async (_rule, scenario) => {
      for (const step of scenario.steps) await runStep(store, step);
    });
  });

  test('objectTimes: when each object of a tenant was last written (the drift pass tells never-seen objects from deleted ones)', async () => {
    const before = Date.now() - 1_000;
    await store.apply([{ tenant: T, upserts: [user('ann')] }]);
    const times = await store.objectTimes!(T);
    expect(Date.parse(times.get('User/ann')!)).toBeGreaterThanOrEqual(before);
    expect(times.has('Group/global')).toBe(true);
    expect((await store.objectTimes!('nobody')).size).toBe(0);
  });

  test('a new tenant starts with its built-in roles and the global group', async () => {
    const r = await store.apply([{ tenant: T, upserts: [user('ann')] }]);
    expect(r.written).toBe(true);
    const state = (await store.loadTenant(T))!.state;
    expect([...state.roles.keys()].sort()).toEqual(
      ['administrator', 'analyst', 'automation-user', 'billing-contact', 'developer', 'folder-administrator', 'folder-viewer', 'operator', 'owner', 'robot'],
    );
    expect(state.groups.get('global')?.origin).toBe('builtin');
  });

  test('re-applying the same documents reports everything unchanged and writes nothing', async () => {
    const docs = [user('ann', { groups: ['ops'] }), group('ops'), bind('b', 'automation-user', ['g:ops'], { folder: 'A' })];
    const first = await store.apply([{ tenant: T, upserts: docs }]);
    expect(first.written).toBe(true);
    const before = await dump(store);
    const second = await store.apply([{ tenant: T, upserts: docs }]);
    expect(second.written).toBe(false);
    expect(second.applyId).toBeNull();
    expect(second.plans[0]!.changes).toEqual([]);
    expect(second.plans[0]!.unchanged).toHaveLength(3);
    expect(await dump(store)).toBe(before);
  });

  test('a dry run plans but writes nothing', async () => {
    const r = await store.apply([{ tenant: T, upserts: [user('ann')] }], { dryRun: true });
    expect(r.written).toBe(false);
    expect(r.plans[0]!.changes.some((c) => c.kind === 'User' && c.action === 'created')).toBe(true);
    expect((await store.revisions()).size).toBe(0);
  });

  test('a refusal in one tenant leaves every tenant of the apply untouched', async () => {
    await store.apply([{ tenant: 'hr', upserts: [user('x'), bind('owner', 'owner', ['u:x'])] }]);
    const before = await dump(store);
    const r = await store.apply([
      { tenant: T, upserts: [user('ann'), user('bob')] },
      { tenant: 'hr', upserts: [user('y'), bind('owner-2', 'owner', ['u:y'])] },
    ]);
    expect(r.written).toBe(false);
    expect(r.violations.map((v) => `${v.tenant}/${v.name}:${v.rule}`)).toEqual(['hr/owner-2:SingleOwner']);
    expect(await dump(store)).toBe(before);
  });

  test('prune deletes what the documents no longer hold, never built-ins', async () => {
    await store.apply([{ tenant: T, upserts: [user('ann'), user('bob'), group('ops')] }]);
    const r = await store.apply([{ tenant: T, upserts: [user('ann')], prune: true }]);
    expect(r.plans[0]!.changes.map((c) => `${c.action} ${c.kind}/${c.name}`)).toEqual(['deleted User/bob', 'deleted Group/ops']);
    const state = (await store.loadTenant(T))!.state;
    expect(state.groups.has('global')).toBe(true);
    expect(state.roles.size).toBe(10);
  });

  test('every change is audited with before, after, actor and apply', async () => {
    await store.apply([{ tenant: T, upserts: [user('ann')] }], { actor: 'alice', source: 'cli' });
    const r = await store.apply([{ tenant: T, upserts: [user('ann', { fullName: 'Ann Lee' })] }], { actor: 'bob', source: 'operator' });
    const records = await store.audit({ applyId: r.applyId! });
    expect(records).toHaveLength(1);
    const rec = records[0]!;
    expect(rec).toMatchObject({ tenant: T, kind: 'User', name: 'ann', action: 'updated', actor: 'bob', source: 'operator' });
    expect(rec.before?.spec).not.toHaveProperty('fullName');
    expect(rec.after?.spec).toHaveProperty('fullName', 'Ann Lee');
    expect(Date.parse(rec.at)).not.toBeNaN();
    const all = await store.audit({ tenant: T });
    expect(all.filter((a) => a.actor === 'alice').length).toBe(12); // 10 roles, global, ann
  });

  test('concurrent writers on one store serialize: no lost update, one owner', async () => {
    const url = factory.newUrl();
    const a = await factory.open(url);
    const b = await factory.open(url);
    try {
      await a.apply([{ tenant: T, upserts: [user('ann'), user('bob')] }]);
      const results = await Promise.all([
        a.apply([{ tenant: T, upserts: [user('cy'), bind('owner-a', 'owner', ['u:ann'])] }]),
        b.apply([{ tenant: T, upserts: [user('dee'), bind('owner-b', 'owner', ['u:bob'])] }]),
      ]);
      // Exactly one became owner; the other was judged against the winner's committed state.
      expect(results.filter((r) => r.written)).toHaveLength(1);
      expect(results.flatMap((r) => r.violations.map((v) => v.rule))).toEqual(['SingleOwner']);
      const parallel = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).apply([{ tenant: T, upserts: [user(`p${i}`)] }])));
      expect(parallel.every((r) => r.written)).toBe(true);
      const state = (await b.loadTenant(T))!.state;
      for (let i = 0; i < 6; i++) expect(state.users.has(`p${i}`)).toBe(true);
      expect((await a.revisions()).get(T)).toBe(8);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('watchers in another connection hear of every committed change', async () => {
    const url = factory.newUrl();
    const writer = await factory.open(url);
    const reader = await factory.open(url);
    const seen: [string, number][] = [];
    const stop = await reader.watch((tenant, revision) => seen.push([tenant, revision]));
    try {
      await writer.apply([{ tenant: T, upserts: [user('ann')] }]);
      await writer.apply([{ tenant: 'hr', upserts: [user('bob')] }]);
      const deadline = Date.now() + 10_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(seen.sort()).toEqual([['finance', 1], ['hr', 1]]);
    } finally {
      await stop();
      await writer.close();
      await reader.close();
    }
  });

  test('what was committed survives closing and reopening the store', async () => {
    const url = factory.newUrl();
    const first = await factory.open(url);
    await first.apply([{ tenant: T, upserts: [user('ann'), role('r', 'Folder', [['Jobs', ['View']]]), bind('b', 'r', ['u:ann'], { folder: 'A' })] }]);
    const before = await dump(first);
    await first.close();
    const again = await factory.open(url);
    try {
      expect(await dump(again)).toBe(before);
    } finally {
      await again.close();
    }
  });
});

test('a store URL with a password never shows it in errors', async () => {
  const url = 'postgres://someone:s3cret-pw@127.0.0.1:1/nowhere';
  await expect(openStore(url)).rejects.toThrow(/cannot open store postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere/);
  await openStore(url).catch((e: Error) => expect(e.message).not.toContain('s3cret-pw'));
});
