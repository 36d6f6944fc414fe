/** The decision index: coalesced reloads, retries, the resync safety net (with a fake store). */
import { describe, expect, it } from '@jest/globals';
import { tenantFromEntries } from '../../src/model/tenant.js';
import { builtInEntries } from '../../src/model/tenant.js';
import type { AccessStore, TenantSnapshot } from '../../src/store/store.js';
import { DecisionIndex, type ReloadEvent } from '../../src/server/decision-index.js';
import { bind, group, user } from '../support/scenarios.js';
import { storeFactories } from '../support/stores.js';
import { sleep } from './fixtures.js';

/** A store whose loads and notifications the test drives. */
class FakeStore {
  revs = new Map<string, number>();
  loads: string[] = [];
  failNextLoads = 0;
  failRevisions = false;
  /** When set, loads wait for `release()`. */
  gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  onChange: ((tenant: string, revision: number) => void) | undefined;
  watchStopped = false;

  snapshot(tenant: string, revision: number): TenantSnapshot {
    // Revision r: user ann holds administrator iff r is even.
    const entries = [...builtInEntries(), user('ann'), ...(revision % 2 === 0 ? [bind('ann-admin', 'administrator', ['u:ann'])] : [])];
    return { state: tenantFromEntries(tenant, entries), revision };
  }

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    const open = this.open;
    this.gate = undefined;
    this.open = undefined;
    open?.();
  }

  async loadTenant(tenant: string): Promise<TenantSnapshot | undefined> {
    this.loads.push(tenant);
    const rev = this.revs.get(tenant);
    if (this.gate) await this.gate;
    if (this.failNextLoads > 0) {
      this.failNextLoads--;
      throw new Error('connection reset');
    }
    return rev === undefined ? undefined : this.snapshot(tenant, this.revs.get(tenant)!);
  }

  async revisions(): Promise<Map<string, number>> {
    if (this.failRevisions) throw new Error('store down');
    return new Map(this.revs);
  }

  async watch(onChange: (tenant: string, revision: number) => void): Promise<() => Promise<void>> {
    this.onChange = onChange;
    return async () => {
      this.watchStopped = true;
    };
  }

  /** Commits a change; notifies unless told not to. */
  commit(tenant: string, notify = true): number {
    const rev = (this.revs.get(tenant) ?? 0) + 1;
    this.revs.set(tenant, rev);
    if (notify) this.onChange?.(tenant, rev);
    return rev;
  }
}

const admin = (index: DecisionIndex, tenant = 't1') => index.get(tenant)?.check({ user: 'ann', permission: 'Users.Delete' }).allowed;

async function until(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('DecisionIndex', () => {
  it('loads every tenant at start, then answers from memory', async () => {
    const store = new FakeStore();
    store.commit('t1');
    store.commit('t1');
    store.commit('t2');
    const index = new DecisionIndex(store as unknown as AccessStore);
    expect(index.ready).toBe(false);
    await index.start();
    expect(index.ready).toBe(true);
    expect(index.healthy).toBe(true);
    expect(index.tenants()).toEqual(['t1', 't2']);
    expect(index.freshness().map((f) => [f.tenant, f.revision])).toEqual([['t1', 2], ['t2', 1]]);
    expect(admin(index)).toBe(true);
    expect(admin(index, 't2')).toBe(false);
    expect(index.get('t3')).toBeUndefined();
    await index.stop();
    expect(store.watchStopped).toBe(true);
    expect(index.ready).toBe(false);
  });

  it('reloads a tenant on a change and swaps the index', async () => {
    const store = new FakeStore();
    store.commit('t1');
    const index = new DecisionIndex(store as unknown as AccessStore);
    await index.start();
    const before = index.get('t1');
    expect(admin(index)).toBe(false);
    const rev = store.commit('t1');
    await index.waitForRevision('t1', rev);
    expect(admin(index)).toBe(true);
    expect(before!.check({ user: 'ann', permission: 'Users.Delete' }).allowed).toBe(false); // the old index is untouched
    await index.stop();
  });

  it('coalesces a burst: one reload in flight, one more after it', async () => {
    const store = new FakeStore();
    store.commit('t1');
    const index = new DecisionIndex(store as unknown as AccessStore);
    await index.start();
    store.loads = [];
    store.hold();
    store.commit('t1'); // starts a reload, held
    for (let i = 0; i < 9; i++) store.commit('t1'); // heard during it
    await sleep(20);
    expect(store.loads).toHaveLength(1);
    store.release();
    await index.waitForRevision('t1', 11);
    await sleep(20);
    expect(store.loads).toHaveLength(2);
    expect(index.get('t1')!.revision).toBe(11);
    await index.stop();
  });

  it('ignores a notification for a revision it already has', async () => {
    const store = new FakeStore();
    store.commit('t1');
    const index = new DecisionIndex(store as unknown as AccessStore);
    await index.start();
    store.loads = [];
    store.onChange!('t1', 1);
    await sleep(20);
    expect(store.loads).toEqual([]);
    await index.stop();
  });

  it('keeps the previous index while a reload fails, and retries', async () => {
    const store = new FakeStore();
    store.commit('t1');
    const failures: string[] = [];
    const index = new DecisionIndex(store as unknown as AccessStore, { retryDelayMs: 10 });
    index.listen({ failed: (e) => failures.push(e.error.message) });
    await index.start();
    store.failNextLoads = 2;
    const rev = store.commit('t1');
    await sleep(5);
    expect(admin(index)).toBe(false);
    await index.waitForRevision('t1', rev);
    expect(failures).toEqual(['connection reset', 'connection reset']);
    expect(admin(index)).toBe(true);
    await index.stop();
  });

  it('retries the initial load until the store answers', async () => {
    const store = new FakeStore();
    store.commit('t1');
    store.failRevisions = true;
    const index = new DecisionIndex(store as unknown as AccessStore, { retryDelayMs: 10 });
    const started = index.start();
    await sleep(50);
    expect(index.ready).toBe(false);
    store.failRevisions = false;
    await started;
    expect(index.ready).toBe(true);
    await index.stop();
  });

  it('learns of new tenants', async () => {
    const store = new FakeStore();
    const index = new DecisionIndex(store as unknown as AccessStore);
    await index.start();
    expect(index.tenants()).toEqual([]);
    const rev = store.commit('fresh');
    await index.waitForRevision('fresh', rev);
    expect(index.tenants()).toEqual(['fresh']);
    await index.stop();
  });

  it('catches a lost notification with the resync poll, and reports the store as unhealthy when it stops answering', async () => {
    const store = new FakeStore();
    store.commit('t1');
    const index = new DecisionIndex(store as unknown as AccessStore, { resyncIntervalMs: 30 });
    await index.start();
    const rev = store.commit('t1', false);
    await index.waitForRevision('t1', rev, 2_000);
    expect(admin(index)).toBe(true);
    store.failRevisions = true;
    await until(() => !index.healthy);
    expect(index.ready).toBe(true); // decisions go on from the last index
    expect(admin(index)).toBe(true);
    store.failRevisions = false;
    await until(() => index.healthy);
    await index.stop();
  });

  it('stop() during the initial load rejects start()', async () => {
    const store = new FakeStore();
    store.failRevisions = true;
    const index = new DecisionIndex(store as unknown as AccessStore, { retryDelayMs: 10 });
    const started = index.start();
    await sleep(20);
    await index.stop();
    await expect(started).rejects.toThrow(/stopped before it was loaded/);
  });
});

/**
 * Incremental reloads over real stores: a change is read as a delta (`loadTenantChanges`) and
 * applied to the previous index; when the delta is refused, too large or fails, the tenant is
 * read whole. Either way the decisions are those of the store.
 */
describe.each(storeFactories)('DecisionIndex incremental reloads on $name', (factory) => {
  type Mode = 'ok' | 'throw' | 'refuse';
  /** A real store whose incremental read the test can break, counting whole-tenant loads. */
  async function wrapped(url: string) {
    const real = await factory.open(url);
    const ctl = { mode: 'ok' as Mode, fullLoads: 0, deltaCalls: 0 };
    const store: AccessStore = {
      backend: real.backend,
      description: real.description,
      apply: (d, o) => real.apply(d, o),
      loadTenant: (t) => {
        ctl.fullLoads++;
        return real.loadTenant(t);
      },
      loadTenantChanges: async (t, since, o) => {
        ctl.deltaCalls++;
        if (ctl.mode === 'throw') throw new Error('delta query failed');
        if (ctl.mode === 'refuse') return undefined;
        return real.loadTenantChanges!(t, since, o);
      },
      revisions: () => real.revisions(),
      audit: (q) => real.audit(q),
      login: (t, r, o) => real.login(t, r, o),
      watch: (cb) => real.watch(cb),
      loadTargetObjects: (scopes) => real.loadTargetObjects(scopes),
      recordTargetObjects: (target, changes) => real.recordTargetObjects(target, changes),
      close: () => real.close(),
    };
    return { store, ctl };
  }

  async function setup(options: ConstructorParameters<typeof DecisionIndex>[1] = {}) {
    const url = factory.newUrl();
    const writer = await factory.open(url);
    await writer.apply([{ tenant: 't1', upserts: [user('ann', { groups: ['ops'] }), user('bob'), group('ops'), bind('ops-admin', 'administrator', ['g:ops'])] }]);
    const { store, ctl } = await wrapped(url);
    const index = new DecisionIndex(store, { resyncIntervalMs: 60_000, retryDelayMs: 10, ...options });
    const events: ReloadEvent[] = [];
    index.listen({ reloaded: (e) => events.push(e) });
    await index.start();
    const commit = async (upserts: ReturnType<typeof user>[], deletes: { kind: 'User' | 'Group' | 'Role' | 'RoleBinding'; name: string }[] = []) => {
      const r = await writer.apply([{ tenant: 't1', upserts, deletes }]);
      expect(r.violations).toEqual([]);
      const revision = r.revisions.get('t1')!;
      await index.waitForRevision('t1', revision, 5_000);
      return events.find((e) => e.revision === revision) ?? events[events.length - 1]!;
    };
    const can = (u: string) => index.get('t1')!.check({ user: u, permission: 'Users.Delete' }).allowed;
    const close = async () => {
      await index.stop();
      await store.close();
      await writer.close();
    };
    return { index, ctl, events, commit, can, close };
  }

  it('an update and a delete propagate as deltas, leaving the previous index untouched', async () => {
    const t = await setup();
    try {
      expect(t.events.map((e) => e.mode)).toEqual(['full']);
      expect([t.can('ann'), t.can('bob')]).toEqual([true, false]);
      const before = t.index.get('t1')!;
      const fullLoads = t.ctl.fullLoads;

      // An update: the binding now names bob instead of the group.
      const e1 = await t.commit([bind('ops-admin', 'administrator', ['u:bob'])]);
      expect(e1).toMatchObject({ mode: 'delta', changes: 1 });
      expect([t.can('ann'), t.can('bob')]).toEqual([false, true]);
      expect(before.check({ user: 'ann', permission: 'Users.Delete' }).allowed).toBe(true);

      // A delete.
      const e2 = await t.commit([], [{ kind: 'RoleBinding', name: 'ops-admin' }]);
      expect(e2).toMatchObject({ mode: 'delta', changes: 1 });
      expect([t.can('ann'), t.can('bob')]).toEqual([false, false]);

      // A user deleted, another created: findable by email at once.
      const e3 = await t.commit([user('cy')], [{ kind: 'User', name: 'bob' }]);
      expect(e3.mode).toBe('delta');
      expect(t.index.get('t1')!.findUser('cy@example.com')?.name).toBe('cy');
      expect(t.index.get('t1')!.findUser('bob')).toBeUndefined();
      expect(t.index.get('t1')!.userNames()).toEqual(['ann', 'cy']);
      expect(t.ctl.fullLoads).toBe(fullLoads); // no whole-tenant read after the start
    } finally {
      await t.close();
    }
  });

  it('falls back to a full reload when the incremental read fails or refuses, with the same decisions', async () => {
    const t = await setup();
    try {
      t.ctl.mode = 'throw';
      const loads = t.ctl.fullLoads;
      const e1 = await t.commit([bind('bob-admin', 'administrator', ['u:bob'])]);
      expect(e1.mode).toBe('full');
      expect(t.ctl.fullLoads).toBe(loads + 1);
      expect(t.can('bob')).toBe(true);

      t.ctl.mode = 'refuse';
      const e2 = await t.commit([], [{ kind: 'RoleBinding', name: 'bob-admin' }]);
      expect(e2.mode).toBe('full');
      expect(t.can('bob')).toBe(false);

      // Working again: back to deltas, from the index the full reload built.
      t.ctl.mode = 'ok';
      const e3 = await t.commit([bind('bob-admin', 'administrator', ['u:bob'])]);
      expect(e3.mode).toBe('delta');
      expect(t.can('bob')).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('a delta larger than maxDeltaChanges is read whole; 0 turns deltas off', async () => {
    const t = await setup({ maxDeltaChanges: 2 });
    try {
      expect((await t.commit([user('cy'), user('dee'), user('eve')])).mode).toBe('full');
      expect((await t.commit([user('fay')])).mode).toBe('delta');
      expect(t.index.get('t1')!.userNames()).toEqual(['ann', 'bob', 'cy', 'dee', 'eve', 'fay']);
    } finally {
      await t.close();
    }
    const off = await setup({ maxDeltaChanges: 0 });
    try {
      expect((await off.commit([user('cy')])).mode).toBe('full');
      expect(off.ctl.deltaCalls).toBe(0);
    } finally {
      await off.close();
    }
  });
});
