/**
 * Freshness on real stores: a change applied to the store (by this process or by another store
 * handle, as the CLI or the operator would) reaches decisions. SQLite always; PostgreSQL when
 * DATABASE_URL is set (a schema per test). The bound here is generous (5 s); the < 1 s figure is
 * what bench/propagation.ts measures.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { DecisionIndex } from '../../src/server/decision-index.js';
import type { AccessStore } from '../../src/store/store.js';
import { bind } from '../support/scenarios.js';
import { storeFactories } from '../support/stores.js';
import { TENANT, seed, serverOver, sleep, type TestServer } from './fixtures.js';

const BOUND_MS = 5_000;
const GRANT = { tenant: TENANT, user: 'dee', permission: 'Users.Delete' };

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

/** Polls POST /v1/check until `allowed` is `want`; returns the time it took. */
async function pollUntil(server: TestServer, body: object, want: boolean): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const r = await server.inject({ method: 'POST', url: '/v1/check', payload: body });
    expect(r.statusCode).toBe(200);
    if (r.json().allowed === want) return Date.now() - t0;
    if (Date.now() - t0 > BOUND_MS) throw new Error(`decision still ${!want} after ${BOUND_MS} ms`);
    await sleep(20);
  }
}

async function until(cond: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > BOUND_MS) throw new Error(`not within ${BOUND_MS} ms`);
    await sleep(20);
  }
}

describe.each(storeFactories)('freshness on $name', (factory) => {
  async function open(url: string): Promise<AccessStore> {
    const s = await factory.open(url);
    cleanup.push(() => s.close());
    return s;
  }

  /** A seeded store, a server reading it through its own handle, and a second handle to write with (as the CLI or the operator would). */
  async function serverBesideWriter(): Promise<{ writer: AccessStore; server: TestServer }> {
    const url = factory.newUrl();
    const reader = await open(url);
    const writer = await open(url);
    await seed(writer);
    const server = await serverOver(reader);
    cleanup.push(() => server.close());
    return { writer, server };
  }

  it('a change applied by another store handle reaches /v1/check, both ways', async () => {
    const { writer, server } = await serverBesideWriter();
    expect((await server.inject({ method: 'POST', url: '/v1/check', payload: GRANT })).json()).toMatchObject({ allowed: false, reason: 'NoGrant' });

    await writer.apply([{ tenant: TENANT, upserts: [bind('dee-admin', 'administrator', ['u:dee'])] }]);
    await pollUntil(server, GRANT, true);
    const r = await server.inject({ method: 'POST', url: '/v1/check', payload: GRANT });
    expect(r.json().grants).toEqual([{ role: 'administrator', binding: 'dee-admin', via: 'user', folder: null }]);

    await writer.apply([{ tenant: TENANT, upserts: [], deletes: [{ kind: 'RoleBinding', name: 'dee-admin' }] }]);
    await pollUntil(server, GRANT, false);

    // Both changes came as deltas after the one full read at start, and /metrics tells them apart.
    const metrics = (await server.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^rpa_access_index_reloads_total\{result="ok",mode="full"\} 1$/m);
    expect(metrics).toMatch(/^rpa_access_index_reloads_total\{result="ok",mode="delta"\} 2$/m);
    expect(metrics).toMatch(/^rpa_access_index_reload_duration_seconds_count\{mode="delta"\} 2$/m);
  });

  it('a change applied through the same store handle reaches the index', async () => {
    const store = await open(factory.newUrl());
    await seed(store);
    const server = await serverOver(store);
    cleanup.push(() => server.close());
    await store.apply([{ tenant: TENANT, upserts: [bind('dee-admin', 'administrator', ['u:dee'])] }]);
    await pollUntil(server, GRANT, true);
  });

  it('a tenant created after start becomes answerable (TenantNotFound, then a decision)', async () => {
    const { writer, server } = await serverBesideWriter();
    const body = { tenant: 'hr', user: 'ann', permission: 'Users.Delete' };
    expect((await server.inject({ method: 'POST', url: '/v1/check', payload: body })).json().reason).toBe('TenantNotFound');
    await seed(writer, 'hr');
    await pollUntil(server, body, true);
    const ready = await server.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json().tenants).toBe(2);
  });

  it('two indexes (two replicas) over one store both see a change, and a burst settles on the last revision', async () => {
    const url = factory.newUrl();
    const writer = await open(url);
    await seed(writer);
    const replicas: DecisionIndex[] = [];
    for (let i = 0; i < 2; i++) {
      const idx = new DecisionIndex(await open(url), { resyncIntervalMs: 60_000 }); // the watch alone must do it
      await idx.start();
      cleanup.push(() => idx.stop());
      replicas.push(idx);
    }
    const result = await writer.apply([{ tenant: TENANT, upserts: [bind('dee-admin', 'administrator', ['u:dee'])] }]);
    const revision = result.revisions.get(TENANT)!;
    await Promise.all(replicas.map((r) => r.waitForRevision(TENANT, revision, BOUND_MS)));
    for (const r of replicas) expect(r.get(TENANT)!.check({ user: 'dee', permission: 'Users.Delete' }).allowed).toBe(true);

    // A burst of applies: every replica ends on the last revision, with the last state.
    let last = revision;
    for (let i = 0; i < 10; i++) {
      const upserts = i % 2 === 0 ? [] : [bind('dee-admin', 'administrator', ['u:dee'])];
      const deletes = i % 2 === 0 ? [{ kind: 'RoleBinding' as const, name: 'dee-admin' }] : [];
      last = (await writer.apply([{ tenant: TENANT, upserts, deletes }])).revisions.get(TENANT)!;
    }
    await until(() => replicas.every((r) => r.get(TENANT)!.revision === last));
    for (const r of replicas) expect(r.get(TENANT)!.check({ user: 'dee', permission: 'Users.Delete' }).allowed).toBe(true);
  });
});
