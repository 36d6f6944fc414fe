/** The decision API's contract (section 6) over HTTP on 127.0.0.1: shapes, 400s, 404s, 413. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AccessStore } from '../../src/store/store.js';
import { DecisionIndex } from '../../src/server/decision-index.js';
import { buildServer } from '../../src/server/app.js';
import { NoAuth } from '../../src/server/auth.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { sqliteFactory } from '../support/stores.js';
import { TENANT, listen, request, seed, serverOver, type TestServer } from './fixtures.js';

let store: AccessStore;
let server: TestServer;

beforeAll(async () => {
  store = await sqliteFactory.open();
  await seed(store);
  server = await serverOver(store);
});

afterAll(async () => {
  await server.close();
  await store.close();
});

const check = (payload: unknown, headers: Record<string, string> = {}) =>
  server.inject({ method: 'POST', url: '/v1/check', payload: payload as string, headers });

describe('POST /v1/check', () => {
  it('allows with grants {role, binding, via, folder} and no reason', async () => {
    const r = await check({ tenant: TENANT, user: 'bob', permission: 'Jobs.Create', folder: 'Finance/Invoices' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json()).toEqual({ allowed: true, grants: [{ role: 'automation-user', binding: 'ops-auto', via: 'group:ops', folder: 'Finance' }] });
  });

  it('explains a tenant-wide grant with folder null', async () => {
    const r = await check({ tenant: TENANT, user: 'ann', permission: 'Users.Delete' });
    expect(r.json()).toEqual({ allowed: true, grants: [{ role: 'administrator', binding: 'ann-admin', via: 'user', folder: null }] });
  });

  it('finds a user by email, case-insensitively', async () => {
    const r = await check({ tenant: TENANT, user: 'BOB.builder@example.com', permission: 'Jobs.View', folder: 'Finance' });
    expect(r.json()).toMatchObject({ allowed: true });
  });

  it('denies with a reason: NoGrant, UserNotFound, UserInactive, TenantNotFound', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ tenant: TENANT, user: 'bob', permission: 'Jobs.Create', folder: 'FinanceOld' }, 'NoGrant'],
      [{ tenant: TENANT, user: 'bob', permission: 'Jobs.Create', folder: 'Fin' }, 'NoGrant'],
      [{ tenant: TENANT, user: 'nobody', permission: 'Jobs.Create', folder: 'Finance' }, 'UserNotFound'],
      [{ tenant: TENANT, user: 'cy', permission: 'Users.View' }, 'UserInactive'],
      [{ tenant: 'no-such-tenant', user: 'ann', permission: 'Users.View' }, 'TenantNotFound'],
    ];
    for (const [body, reason] of cases) {
      const r = await check(body);
      expect(r.statusCode).toBe(200);
      const { nearMisses: _explained, ...answer } = r.json();
      expect(answer).toEqual({ allowed: false, grants: [], reason });
    }
  });

  it('explains a NoGrant denial with the near misses of the engine, as the CLI does', async () => {
    const r = await check({ tenant: TENANT, user: 'bob', permission: 'Jobs.Create', folder: 'FinanceOld' });
    expect(r.json()).toEqual({
      allowed: false, grants: [], reason: 'NoGrant',
      nearMisses: [{ binding: 'ops-auto', reason: 'OtherFolder', message: 'binding ops-auto grants it only in folder Finance' }],
    });
    const env = await check({ tenant: TENANT, user: 'dee', permission: 'Audit.View', environment: 'staging' });
    expect(env.json().nearMisses).toEqual([{ binding: 'dee-audit', reason: 'OtherEnvironment', message: 'binding dee-audit grants it only in environment prod' }]);
    // Nothing near: no nearMisses member at all.
    expect(await (await check({ tenant: TENANT, user: 'bob', permission: 'Users.Delete' })).json()).toEqual({ allowed: false, grants: [], reason: 'NoGrant' });
  });

  it('honours environment and resources narrowing', async () => {
    expect((await check({ tenant: TENANT, user: 'dee', permission: 'Audit.View', environment: 'prod' })).json().allowed).toBe(true);
    expect((await check({ tenant: TENANT, user: 'dee', permission: 'Audit.View', environment: 'staging' })).json().allowed).toBe(false);
    expect((await check({ tenant: TENANT, user: 'dee', permission: 'Audit.View' })).json().allowed).toBe(false);
    const inv = { tenant: TENANT, user: 'dee', permission: 'Processes.Edit', folder: 'Finance/Invoices/2024' };
    expect((await check({ ...inv, resource: 'Process/invoice-bot' })).json().allowed).toBe(true);
    expect((await check({ ...inv, resource: 'Process/other' })).json().allowed).toBe(false);
    expect((await check(inv)).json().allowed).toBe(false);
  });

  it('gives a Robot user the robot role implicitly (binding null)', async () => {
    const r = await check({ tenant: TENANT, user: 'r1', permission: 'Jobs.Edit', folder: 'Anywhere' });
    expect(r.json()).toEqual({ allowed: true, grants: [{ role: 'robot', binding: null, via: 'user', folder: null }] });
  });

  const bad: [string, unknown, RegExp][] = [
    ['malformed JSON', '{"tenant": "finance",', /JSON/],
    ['an empty body', '', /empty/i],
    ['an array body', '[]', /body must be object/],
    ['a missing field', { tenant: TENANT, permission: 'Jobs.View' }, /required property 'user'/],
    ['a wrong type', { tenant: TENANT, user: 7, permission: 'Jobs.View', folder: 'A' }, /body\.user must be string/],
    ['a null field', { tenant: TENANT, user: 'ann', permission: 'Jobs.View', folder: null }, /body\.folder must be string/],
    ['an unknown field', { tenant: TENANT, user: 'ann', permission: 'Users.View', admin: true }, /additional properties \("admin"\)/],
    ['an empty tenant', { tenant: '', user: 'ann', permission: 'Users.View' }, /body\.tenant/],
    ['an unknown permission', { tenant: TENANT, user: 'ann', permission: 'Jobs.Launch', folder: 'A' }, /unknown permission "Jobs\.Launch"/],
    ['a permission without action', { tenant: TENANT, user: 'ann', permission: 'Jobs' }, /unknown permission/],
    ['a folder resource without folder', { tenant: TENANT, user: 'ann', permission: 'Jobs.Create' }, /must name a folder/],
    ['a tenant resource with a folder', { tenant: TENANT, user: 'ann', permission: 'Users.View', folder: 'A' }, /must not name a folder/],
    ['a folder deeper than 7 levels', { tenant: TENANT, user: 'ann', permission: 'Jobs.View', folder: 'a/b/c/d/e/f/g/h' }, /invalid folder: /],
    ['an empty folder segment', { tenant: TENANT, user: 'ann', permission: 'Jobs.View', folder: 'a//b' }, /invalid folder: /],
    ['a resource without kind', { tenant: TENANT, user: 'ann', permission: 'Jobs.View', folder: 'A', resource: 'invoice-bot' }, /invalid resource/],
    ['a prototype-poisoning body', '{"__proto__": {"allowed": true}, "tenant": "finance", "user": "ann", "permission": "Users.View"}', /JSON/],
  ];
  it.each(bad)('answers 400 {error} for %s', async (_what, payload, message) => {
    const r = await check(payload, typeof payload === 'string' ? { 'content-type': 'application/json' } : {});
    expect(r.statusCode).toBe(400);
    expect(Object.keys(r.json())).toEqual(['error']);
    expect(r.json().error).toMatch(message);
  });

  it('validates the question before the tenant: an unknown permission in an unknown tenant is 400', async () => {
    const r = await check({ tenant: 'no-such-tenant', user: 'ann', permission: 'Nope.View' });
    expect(r.statusCode).toBe(400);
  });

  it('answers 400 for a non-JSON content type, never 5xx', async () => {
    const r = await check('tenant=finance', { 'content-type': 'text/plain' });
    expect(r.statusCode).toBe(400);
    const r2 = await check('<x/>', { 'content-type': 'application/xml' });
    expect(r2.statusCode).toBe(415);
  });

  it('answers 413 for a body over 16 KiB', async () => {
    const r = await check({ tenant: TENANT, user: 'ann', permission: 'Users.View', environment: 'x'.repeat(17 * 1024) });
    expect(r.statusCode).toBe(413);
    expect(r.json().error).toMatch(/too large/i);
  });

  it('refuses an overlong field with 400', async () => {
    const r = await check({ tenant: TENANT, user: 'u'.repeat(400), permission: 'Users.View' });
    expect(r.statusCode).toBe(400);
  });
});

describe('GET /v1/tenants/{tenant}/users/{user}/permissions', () => {
  it('lists effective permissions with provenance', async () => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/users/bob/permissions` });
    expect(r.statusCode).toBe(200);
    const { permissions } = r.json() as { permissions: Record<string, unknown>[] };
    expect(permissions).toContainEqual({ permission: 'Jobs.Create', folder: 'Finance', role: 'automation-user', binding: 'ops-auto', via: 'group:ops' });
    expect(permissions.every((p) => p.via === 'group:ops')).toBe(true);
  });

  it('keeps narrowing visible (resources, environment)', async () => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/users/dee/permissions` });
    const { permissions } = r.json() as { permissions: Record<string, unknown>[] };
    expect(permissions).toContainEqual({ permission: 'Audit.View', folder: null, role: 'auditor', binding: 'dee-audit', via: 'user', environment: 'prod' });
    expect(permissions).toContainEqual({
      permission: 'Processes.Edit', folder: 'Finance/Invoices', role: 'folder-administrator', binding: 'dee-invoice', via: 'user',
      resources: [{ kind: 'Process', name: 'invoice-bot' }],
    });
  });

  it('takes a URL-encoded email', async () => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/users/bob.builder%40example.com/permissions` });
    expect(r.statusCode).toBe(200);
    expect(r.json().permissions.length).toBeGreaterThan(0);
  });

  it('answers an inactive user with no permission', async () => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/users/cy/permissions` });
    expect(r.json()).toEqual({ permissions: [] });
  });

  it('answers 404 for an unknown tenant or user', async () => {
    const t = await server.inject({ method: 'GET', url: '/v1/tenants/nope/users/ann/permissions' });
    expect(t.statusCode).toBe(404);
    expect(t.json().error).toMatch(/unknown tenant "nope"/);
    const u = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/users/nobody/permissions` });
    expect(u.statusCode).toBe(404);
    expect(u.json().error).toMatch(/unknown user "nobody"/);
  });
});

describe('GET /v1/tenants/{tenant}/who', () => {
  it('lists everyone allowed, each with grants', async () => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/who?permission=Jobs.Create&folder=Finance/Payroll` });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      users: [
        { user: 'ann', grants: [{ role: 'administrator', binding: 'ann-admin', via: 'user', folder: null }] },
        { user: 'bob', grants: [{ role: 'automation-user', binding: 'ops-auto', via: 'group:ops', folder: 'Finance' }] },
      ],
    });
  });

  it('applies resource and environment', async () => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/who?permission=Audit.View&environment=prod` });
    expect(r.json().users.map((u: { user: string }) => u.user)).toEqual(['ann', 'dee']);
    const r2 = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/who?permission=Processes.Delete&folder=Finance/Invoices&resource=Process/invoice-bot` });
    expect(r2.json().users.map((u: { user: string }) => u.user)).toEqual(['ann', 'dee']);
  });

  it.each([
    ['no permission', '', /required property 'permission'/],
    ['an unknown parameter', '?permission=Users.View&tenant=x', /additional properties \("tenant"\)/],
    ['a repeated parameter', '?permission=Users.View&permission=Users.Edit', /querystring\.permission must be string/],
    ['an unknown permission', '?permission=Users.Fly', /unknown permission/],
    ['a folder resource without folder', '?permission=Jobs.View', /must name a folder/],
  ])('answers 400 for %s', async (_what, qs, message) => {
    const r = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/who${qs}` });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatch(message);
  });

  it('answers 404 for an unknown tenant', async () => {
    const r = await server.inject({ method: 'GET', url: '/v1/tenants/nope/who?permission=Users.View' });
    expect(r.statusCode).toBe(404);
  });
});

describe('health, readiness, metrics, unknown routes', () => {
  it('/healthz and /readyz answer 200 when loaded', async () => {
    expect((await server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const r = await server.inject({ method: 'GET', url: '/readyz' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ ready: true, loaded: true, tenants: 1 });
  });

  it('/metrics exposes requests, latency, decisions and index freshness in Prometheus text', async () => {
    await check({ tenant: TENANT, user: 'ann', permission: 'Users.View' });
    const r = await server.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body).toMatch(/^rpa_access_http_requests_total\{route="\/v1\/check",method="POST",status="200"\} \d+$/m);
    expect(r.body).toMatch(/^rpa_access_http_requests_total\{route="\/v1\/check",method="POST",status="400"\} \d+$/m);
    expect(r.body).toMatch(/^rpa_access_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/check",method="POST"\} \d+$/m);
    expect(r.body).toMatch(/^rpa_access_decisions_total\{result="allowed"\} \d+$/m);
    expect(r.body).toMatch(/^rpa_access_index_revision\{tenant="finance"\} 1$/m);
    expect(r.body).toMatch(/^rpa_access_index_age_seconds\{tenant="finance"\} [\d.e-]+$/m);
    expect(r.body).toMatch(/^rpa_access_index_reloads_total\{result="ok",mode="full"\} 1$/m);
    expect(r.body).toMatch(/^rpa_access_index_ready 1$/m);
  });

  it('includes process metrics when enabled', async () => {
    const index = new DecisionIndex(store);
    await index.start();
    const app = await buildServer({ index, auth: new NoAuth(), metrics: new ServerMetrics() });
    const r = await request(await listen(app), { method: 'GET', url: '/metrics' });
    expect(r.body).toMatch(/^process_cpu_user_seconds_total /m);
    expect(r.body).toMatch(/^nodejs_eventloop_lag_seconds /m);
    await app.close();
    await index.stop();
  });

  it('answers 405 {error} with Allow for a known route with another method, 404 for an unknown route, never echoing the URL', async () => {
    const r = await server.inject({ method: 'GET', url: '/v1/check' });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect(r.json()).toEqual({ error: 'method not allowed: POST' });
    const nf = await server.inject({ method: 'GET', url: '/v2/anything-at-all' });
    expect(nf.statusCode).toBe(404);
    expect(Object.keys(nf.json())).toEqual(['error']);
    expect(nf.body).not.toContain('anything-at-all');
  });
});

describe('before the index is loaded', () => {
  it('/readyz and /v1 answer 503, /healthz 200', async () => {
    const s = await serverOver(store, new NoAuth(), { start: false });
    try {
      expect((await s.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const ready = await s.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ ready: false, loaded: false });
      const r = await s.inject({ method: 'POST', url: '/v1/check', payload: { tenant: TENANT, user: 'ann', permission: 'Users.View' } });
      expect(r.statusCode).toBe(503);
      expect(r.headers['retry-after']).toBe('1');
      await s.index.start();
      expect((await s.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await s.close();
    }
  });
});
