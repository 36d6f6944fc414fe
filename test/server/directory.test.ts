/**
 * The UiPath seed's directory-group narrative through the decision HTTP API (contract section 7),
 * one step per test, on both backends, with two `serve` replicas over one store: a login on one
 * is honoured by the other through the change feed. Bad input: 400 with one line, nothing written.
 */
import { jest } from '@jest/globals';
import path from 'node:path';
import { checkDocuments, desiredStates } from '../../src/documents/check.js';
import { loadDocuments } from '../../src/documents/load.js';
import type { AnyEntry } from '../../src/model/types.js';
import type { AccessStore } from '../../src/store/store.js';
import { storeFactories } from '../support/stores.js';
import { serverOver, sleep, type TestServer } from './fixtures.js';

const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../examples/sales');
const USERS = '8a2c4e6f-1b3d-4f5a-8c7e-9d0b1a2c3e04';
const DEVELOPERS = 'c3d5e7f9-2a4b-4c6d-8e0f-1a3b5c7d9e05';
const ADMINS = '5f1e8d3a-0c2b-4e9a-9d41-6b7c2a11ad01';
const JOHN = 'john.smith-at-example.com';
const TTL_MS = 6_000;

const explicit: AnyEntry = { kind: 'RoleBinding', name: 'john-explicit-analyst', origin: 'user', spec: { roleRef: { name: 'analyst' }, subjects: [{ kind: 'User', name: JOHN }] } };

jest.setTimeout(30_000);

describe.each(storeFactories)('directory groups through HTTP on $name (seed narrative)', (factory) => {
  let writer: AccessStore;
  let reader: AccessStore;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const url = factory.newUrl();
    writer = await factory.open(url);
    reader = await factory.open(url);
    const checked = checkDocuments(loadDocuments([EXAMPLES]));
    await writer.apply(desiredStates(checked));
    a = await serverOver(writer, undefined, { sessionTtlMs: TTL_MS });
    b = await serverOver(reader, undefined, { sessionTtlMs: TTL_MS });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await writer?.close();
    await reader?.close();
  }, 30_000);

  const login = (server: TestServer, body: unknown, tenant = 'sales') => server.inject({ method: 'POST', url: `/v1/tenants/${tenant}/sessions`, payload: body });
  const check = (server: TestServer, permission: string, folder?: string, extra: Record<string, unknown> = {}) =>
    server.inject({ method: 'POST', url: '/v1/check', payload: { tenant: 'sales', user: 'john.smith@example.com', permission, ...(folder ? { folder } : {}), ...extra } });
  /** Both replicas follow the store by its change feed (a too: its index hears its own writes
   * asynchronously): wait (bounded) until each has the revision. */
  const follow = async () => {
    const revision = (await writer.revisions()).get('sales')!;
    await Promise.all([a, b].map((server) => server.index.waitForRevision('sales', revision, 5_000)));
  };

  test('John logs in presenting two directory groups and is provisioned (on replica a)', async () => {
    const r = await login(a, { user: 'John.Smith@example.com', directoryGroups: [USERS, DEVELOPERS, 'unrelated'] });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ user: JOHN, provisioned: true, groups: ['automation-developers', 'automation-users'], expiresAt: expect.any(String) });
    await writer.apply([{ tenant: 'sales', upserts: [explicit] }]);
  });

  test('both replicas grant the union of the groups\' rights and the explicit ones, explained', async () => {
    await follow();
    for (const server of [a, b]) {
      const run = (await check(server, 'Jobs.Create', 'Sales')).json();
      expect(run).toEqual({ allowed: true, grants: [{ role: 'automation-user', binding: 'automation-users-sales', via: 'directory:automation-users', folder: 'Sales', sessionExpiresAt: expect.any(String) }] });
      expect((await check(server, 'Processes.Delete', 'Sales/Development')).json().grants[0].via).toBe('directory:automation-developers');
      expect((await check(server, 'Audit.View')).json().grants).toEqual([{ role: 'analyst', binding: 'john-explicit-analyst', via: 'user', folder: null }]);
    }
    const perms = (await b.inject({ method: 'GET', url: `/v1/tenants/sales/users/${JOHN}/permissions` })).json().permissions;
    expect(perms.find((p: { via: string }) => p.via === 'directory:automation-users')).toMatchObject({ sessionExpiresAt: expect.any(String) });
    // directoryGroups on a question: answered with those groups, not the session.
    expect((await check(a, 'Users.Delete', undefined, { directoryGroups: [ADMINS] })).json().grants[0].via).toBe('directory:administrators');
    expect((await check(a, 'Users.Delete')).json().allowed).toBe(false);
  });

  test('his session expires: only the explicit rights remain', async () => {
    await sleep(TTL_MS + 300);
    for (const server of [a, b]) {
      expect((await check(server, 'Jobs.Create', 'Sales')).json()).toMatchObject({ allowed: false, reason: 'NoGrant' });
      expect((await check(server, 'Audit.View')).json().allowed).toBe(true);
    }
  });

  test('a directory Group deleted mid-session: its rights end at once, on every replica', async () => {
    expect((await login(b, { user: 'john.smith@example.com', directoryGroups: [USERS, DEVELOPERS] })).statusCode).toBe(200);
    expect((await check(b, 'Jobs.Create', 'Sales')).json().allowed).toBe(true);
    await writer.apply([{ tenant: 'sales', upserts: [], deletes: [{ kind: 'Group', name: 'automation-users' }] }]);
    await follow();
    for (const server of [a, b]) {
      expect((await check(server, 'Jobs.Create', 'Sales')).json().allowed).toBe(false);
      expect((await check(server, 'Processes.Delete', 'Sales/Development')).json().allowed).toBe(true);
    }
  });

  test('the audit trail holds both messages, worded as the orchestrator', async () => {
    const messages = (await writer.audit({ tenant: 'sales' })).flatMap((r) => (r.message ? [r.message] : []));
    expect(messages).toEqual([
      `User ${JOHN} was automatically provisioned from the following groups: automation-developers, automation-users`,
      `User ${JOHN} was assigned to the following groups: automation-developers, automation-users`,
      `User ${JOHN} was assigned to the following groups: automation-developers, automation-users`,
    ]);
  });

  test('he is still listed, with his profile', async () => {
    const list = (await a.inject({ method: 'GET', url: '/v1/tenants/sales/users' })).json();
    expect(list.users).toEqual([
      { name: JOHN, email: 'John.Smith@example.com', type: 'Human', origin: 'auto-provisioned', active: true, lastLogin: expect.any(String), sessionGroups: ['automation-developers'], sessionExpiresAt: expect.any(String) },
    ]);
    const profile = (await a.inject({ method: 'GET', url: '/v1/tenants/sales/users/john.smith@example.com' })).json();
    expect(profile).toMatchObject({
      name: JOHN, type: 'Human', active: true, language: 'en', slackId: null, teamsId: null,
      notifications: { events: [], channels: [] }, concurrentExecution: true, origin: 'auto-provisioned', lastLogin: expect.any(String),
    });
    expect((await a.inject({ method: 'GET', url: '/v1/tenants/sales/users/nobody' })).statusCode).toBe(404);
  });

  test('a later User document adopts him', async () => {
    await writer.apply([{ tenant: 'sales', upserts: [{ kind: 'User', name: JOHN, origin: 'user', spec: { email: 'john.smith@example.com', fullName: 'John Smith', type: 'Human', active: true, language: 'en', concurrentExecution: true } }] }]);
    await follow();
    const list = (await b.inject({ method: 'GET', url: '/v1/tenants/sales/users' })).json();
    expect(list.users).toMatchObject([{ name: JOHN, origin: 'declared' }]);
    expect((await check(b, 'Audit.View')).json().allowed).toBe(true);
  });

  test('bad input: 400 with one line, nothing written', async () => {
    const before = [...(await writer.revisions())];
    const audit = (await writer.audit()).length;
    const cases: [unknown, string, RegExp][] = [
      [{ user: 'x@example.com', directoryGroups: [USERS] }, 'nope', /unknown tenant "nope"/],
      [{ user: 'john.smith(at)example.com', directoryGroups: [USERS] }, 'sales', /is not an email address/],
      [{ user: 'x@example.com', directoryGroups: ['g'.repeat(10_240)] }, 'sales', /is 10240 characters long/],
      [{ user: 'x@example.com', directoryGroups: Array.from({ length: 10_000 }, (_, i) => `group-${i}`) }, 'sales', /too many directory groups: 10000/],
      [{ user: 'x@example.com', directoryGroups: ['a\u0000b'] }, 'sales', /control characters/],
      [{ user: 'x\u001b[2J@example.com' }, 'sales', /not an email address/],
      [{ user: 'x@example.com', directoryGroups: 'all' }, 'sales', /directoryGroups must be array/],
      [{ user: 'x@example.com', extra: 1 }, 'sales', /must NOT have additional properties/],
    ];
    for (const [body, tenant, message] of cases) {
      const r = await login(a, body, tenant);
      expect([r.statusCode, r.json().error]).toEqual([400, expect.stringMatching(message)]);
      for (const c of ['\n', '\u0000', '\u001b']) expect(r.json().error).not.toContain(c);
    }
    const tooMany = await check(a, 'Jobs.View', 'Sales', { directoryGroups: ['a\u0007'] });
    expect(tooMany.statusCode).toBe(400);
    // Nobody to provision: 403, nothing written either.
    expect((await login(a, { user: 'eve@example.com', directoryGroups: ['elsewhere'] })).statusCode).toBe(403);
    expect([...(await writer.revisions())]).toEqual(before);
    expect((await writer.audit()).length).toBe(audit);
  });
});
