// Issue 13, the decision API under hostile callers:
//  item 5: callers are authorized per tenant (token lines with tenant lists; SubjectAccessReview
//          in tokenreview mode), the same 403 whether the tenant exists or not;
//  item 6: every error, fastify's own included (414, 404, 405, 415, 413, bad URL, bad JSON), is
//          {"error": "one line"}, authentication first, never echoing the URL;
//  item 7: the CLI and the HTTP API name an unknown tenant with the same reason;
//  item 1: a folder with `..` is a 400, never a decision.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DENY_REASONS } from '../../src/model/engine.js';
import { TokenFileAuth, TokenReviewAuth, type ReviewedUser } from '../../src/server/auth.js';
import type { AccessStore } from '../../src/store/store.js';
import { rpaInProcess } from '../cli/helpers.js';
import { sqliteFactory } from '../support/stores.js';
import { TENANT, seed, serverOver, type Response, type TestServer } from './fixtures.js';

let store: AccessStore;
let storeUrl: string;
let tokenFile: string;
let server: TestServer;

beforeAll(async () => {
  storeUrl = sqliteFactory.newUrl();
  store = await sqliteFactory.open(storeUrl);
  await seed(store);
  await seed(store, 'hr');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-tokens-'));
  tokenFile = path.join(dir, 'tokens');
  fs.writeFileSync(tokenFile, '# every tenant\nall-token\n# finance only\nfinance-token finance\nboth-token hr,finance\n');
  server = await serverOver(store, new TokenFileAuth(tokenFile, undefined, 0));
});

afterAll(async () => {
  await server.close();
  await store.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const CHECK = { tenant: 'hr', user: 'ann', permission: 'Users.View' };

/** The one documented error shape: exactly {error}, one line, no control character. */
function expectErrorShape(r: Response, status: number): string {
  expect(r.statusCode).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  const body = r.json();
  expect(Object.keys(body)).toEqual(['error']);
  expect(typeof body.error).toBe('string');
  expect(body.error).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
  return body.error as string;
}

describe('per-tenant authorization (token file lines TOKEN tenant1,tenant2)', () => {
  it('a token limited to finance may ask about finance, not hr, and gets the same 403 for a tenant that does not exist', async () => {
    const asFinance = (payload: unknown) => server.inject({ method: 'POST', url: '/v1/check', payload, headers: bearer('finance-token') });
    expect((await asFinance({ ...CHECK, tenant: TENANT })).statusCode).toBe(200);
    const other = await asFinance(CHECK);
    const missing = await asFinance({ ...CHECK, tenant: 'no-such-tenant' });
    expect(expectErrorShape(other, 403)).toBe(expectErrorShape(missing, 403));
    expect(other.body).toBe(missing.body);
    expect(other.body).not.toContain('hr');
  });

  it('the resource-style routes too: permissions and who (the list of a tenant\'s users)', async () => {
    for (const url of ['/v1/tenants/hr/users/ann/permissions', '/v1/tenants/hr/who?permission=Users.View', '/v1/tenants/nowhere/who?permission=Users.View']) {
      expectErrorShape(await server.inject({ method: 'GET', url, headers: bearer('finance-token') }), 403);
    }
    expect((await server.inject({ method: 'GET', url: '/v1/tenants/hr/who?permission=Users.View', headers: bearer('both-token') })).statusCode).toBe(200);
    // A token without a list may ask about every tenant; an unknown tenant is then a 404 / a denial.
    expect((await server.inject({ method: 'GET', url: '/v1/tenants/nowhere/who?permission=Users.View', headers: bearer('all-token') })).statusCode).toBe(404);
  });
});

describe('per-tenant authorization (tokenreview: a SubjectAccessReview per identity and tenant)', () => {
  it('asks get on decisions.rpa-access.io in the tenant, caches it, 403 when refused, 503 when it cannot tell', async () => {
    const asked: [ReviewedUser, string][] = [];
    let failing = false;
    const auth = new TokenReviewAuth(
      async (token) => ({ authenticated: token === 'sa', user: 'system:serviceaccount:apps:bot', uid: 'u-1', groups: ['system:serviceaccounts'] }),
      {},
      async (user, tenant) => {
        if (failing) throw new Error('connect ECONNREFUSED');
        asked.push([user, tenant]);
        return tenant === TENANT;
      },
    );
    const s = await serverOver(store, auth);
    try {
      const ask = (tenant: string) => s.inject({ method: 'POST', url: '/v1/check', payload: { ...CHECK, tenant }, headers: bearer('sa') });
      expect((await ask(TENANT)).statusCode).toBe(200);
      expect((await ask(TENANT)).statusCode).toBe(200);
      const refused = await ask('hr');
      const missing = await ask('no-such-tenant');
      expect(refused.body).toBe(missing.body);
      expectErrorShape(refused, 403);
      expect(asked).toEqual([
        [{ username: 'system:serviceaccount:apps:bot', uid: 'u-1', groups: ['system:serviceaccounts'] }, TENANT],
        [{ username: 'system:serviceaccount:apps:bot', uid: 'u-1', groups: ['system:serviceaccounts'] }, 'hr'],
        [{ username: 'system:serviceaccount:apps:bot', uid: 'u-1', groups: ['system:serviceaccounts'] }, 'no-such-tenant'],
      ]);
      failing = true;
      expectErrorShape(await ask('platform'), 503);
    } finally {
      await s.close();
    }
  });

  it('without an access reviewer, nobody is authorized: never silently skipped', async () => {
    const auth = new TokenReviewAuth(async () => ({ authenticated: true, user: 'someone' }));
    expect(await auth.authorize({ ok: true, caller: 'someone', user: { username: 'someone' } }, TENANT)).toBe(false);
  });
});

/** A raw HTTP/1.1 exchange, for requests fetch() will not send (bad percent-encoding). */
function raw(base: string, text: string): Promise<Response> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(text));
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const [status, ...headers] = head.split('\r\n');
      resolve({
        statusCode: Number(status!.split(' ')[1]),
        headers: Object.fromEntries(headers.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 1).trim()])),
        body,
        json: () => JSON.parse(body),
      });
    });
  });
}

describe("every error in one shape, fastify's own included, authentication first", () => {
  const longName = 'a'.repeat(600);
  const cases: [string, () => Promise<Response>, number][] = [
    ['a path parameter over 512 characters (414)', () => server.inject({ method: 'GET', url: `/v1/tenants/${longName}/who?permission=Users.View` }), 414],
    ['an unknown route (404)', () => server.inject({ method: 'GET', url: `/v1/nothing/${'x'.repeat(100)}` }), 404],
    ['a known route with another method (405)', () => server.inject({ method: 'DELETE', url: '/v1/check' }), 405],
    ['a content type other than JSON (415)', () => server.inject({ method: 'POST', url: '/v1/check', payload: '<check/>', headers: { 'content-type': 'application/xml' } }), 415],
    ['a body over the limit (413)', () => server.inject({ method: 'POST', url: '/v1/check', payload: JSON.stringify({ ...CHECK, user: 'x'.repeat(20_000) }), headers: { 'content-type': 'application/json' } }), 413],
    ['malformed JSON (400)', () => server.inject({ method: 'POST', url: '/v1/check', payload: '{"tenant": "finance", "user": "\u001b[31mevil', headers: { 'content-type': 'application/json' } }), 400],
    ['an invalid percent-encoding (400)', () => raw(server.url, 'GET /v1/tenants/%zz/who?permission=Users.View HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400],
  ];

  it.each(cases)('%s: 401 {error} without a token', async (_what, send) => {
    const r = await send();
    expectErrorShape(r, 401);
    expect(r.headers['www-authenticate']).toBe('Bearer');
  });

  it.each(cases)('%s: its status and {error} with a token, never echoing the request', async (what, send, status) => {
    const withToken = async () => {
      // The same request, with a valid token.
      const original = server.inject;
      const authorized: typeof original = (req) => original({ ...req, headers: { ...(req.headers ?? {}), ...bearer('all-token') } });
      server.inject = authorized;
      try {
        if (what.includes('percent')) return raw(server.url, 'GET /v1/tenants/%zz/who?permission=Users.View HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer all-token\r\nConnection: close\r\n\r\n');
        return await send();
      } finally {
        server.inject = original;
      }
    };
    const r = await withToken();
    const error = expectErrorShape(r, status);
    expect(error).not.toContain('aaaaaaaaaa');
    expect(error).not.toContain('xxxxxxxxxx');
    expect(error).not.toContain('%zz');
    expect(error).not.toContain('evil');
  });
});

describe('one set of denial reasons, declared in the model, for the CLI and HTTP alike', () => {
  it('an unknown tenant is TenantNotFound on both doors', async () => {
    const http = await server.inject({ method: 'POST', url: '/v1/check', payload: { ...CHECK, tenant: 'no-such-tenant' }, headers: bearer('all-token') });
    const cli = await rpaInProcess(['--store', storeUrl, 'check', '--tenant', 'no-such-tenant', '--user', 'ann', '--permission', 'Users.View', '--output', 'json']);
    expect(cli.code).toBe(3);
    expect(http.json()).toEqual({ allowed: false, grants: [], reason: 'TenantNotFound' });
    expect(JSON.parse(cli.stdout)).toEqual(http.json());
    expect(DENY_REASONS).toEqual(['UserNotFound', 'UserInactive', 'NoGrant', 'TenantNotFound']);
  });
});

describe('folder paths on the HTTP API (item 1)', () => {
  it('a folder with .. or an escape sequence is 400, never a decision', async () => {
    for (const folder of ['Finance/../Payroll', 'Finance/./Invoices', 'Finance/\u001b[2J']) {
      const r = await server.inject({ method: 'POST', url: '/v1/check', payload: { tenant: TENANT, user: 'bob', permission: 'Jobs.View', folder }, headers: bearer('all-token') });
      expect(expectErrorShape(r, 400)).toMatch(/^invalid folder: /);
    }
    const who = await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/who?permission=Jobs.View&folder=${encodeURIComponent('Finance/..')}`, headers: bearer('all-token') });
    expectErrorShape(who, 400);
  });
});
