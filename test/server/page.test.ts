/**
 * `serve --ui`: the page's routes (public, with strict security headers, absent without --ui) and
 * the read endpoints it uses (GET /v1/tenants, /v1/permissions, /v1/tenants/{t}/matrix), behind
 * the same authentication and per-tenant authorization as the rest of /v1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ALL_PERMISSIONS } from '../../src/model/catalog.js';
import Fastify from 'fastify';
import { TokenFileAuth } from '../../src/server/auth.js';
import { ServeConfigError } from '../../src/server/options.js';
import { registerPage } from '../../src/server/page.js';
import type { AccessStore } from '../../src/store/store.js';
import { sqliteFactory } from '../support/stores.js';
import { TENANT, seed, serverOver, type TestServer } from './fixtures.js';
import { user } from '../support/scenarios.js';
import { ROOT } from '../cli/helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-page-'));
const ALL = { authorization: 'Bearer all-tenants' };
const HR_ONLY = { authorization: 'Bearer hr-only' };
let store: AccessStore;
let auth: TokenFileAuth;
let withUi: TestServer;
let withoutUi: TestServer;

beforeAll(async () => {
  store = await sqliteFactory.open();
  await seed(store);
  await seed(store, 'hr', [user('hal')]);
  fs.writeFileSync(path.join(dir, 'tokens'), 'all-tenants\nhr-only hr\n');
  auth = new TokenFileAuth(path.join(dir, 'tokens'), undefined, 0);
  withUi = await serverOver(store, auth, { ui: true });
  withoutUi = await serverOver(store, auth);
});

afterAll(async () => {
  await withUi.close();
  await withoutUi.close();
  auth.close();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the page', () => {
  it.each([
    ['/ui/', 'text/html'],
    ['/ui/app.js', 'text/javascript'],
    ['/ui/app.css', 'text/css'],
  ])('serves %s without a token, with a strict content security policy', async (url, type) => {
    const r = await withUi.inject({ method: 'GET', url });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain(type);
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
    expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.body.length).toBeGreaterThan(100);
  });

  it('sends / and /ui to the page', async () => {
    for (const url of ['/', '/ui']) {
      const r = await withUi.inject({ method: 'GET', url });
      expect([url, r.statusCode, r.headers.location]).toEqual([url, 302, 'ui/']);
    }
  });

  it('the page holds no inline script or style, and never stores the token', async () => {
    const html = (await withUi.inject({ method: 'GET', url: '/ui/' })).body;
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i);
    const js = (await withUi.inject({ method: 'GET', url: '/ui/app.js' })).body
      .split('\n')
      .filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line)) // comments may name what the code never does
      .join('\n');
    expect(js).not.toMatch(/localStorage|sessionStorage|document\.cookie|innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it('does not exist without --ui: 404 to an authenticated caller, 401 to others', async () => {
    for (const url of ['/', '/ui', '/ui/', '/ui/app.js']) {
      expect([url, (await withoutUi.inject({ method: 'GET', url, headers: ALL })).statusCode]).toEqual([url, 404]);
      expect([url, (await withoutUi.inject({ method: 'GET', url })).statusCode]).toEqual([url, 401]);
    }
  });

  it('other paths still ask for a token with --ui', async () => {
    expect((await withUi.inject({ method: 'GET', url: '/ui/other.js' })).statusCode).toBe(401);
    expect((await withUi.inject({ method: 'GET', url: '/v1/tenants' })).statusCode).toBe(401);
    expect((await withUi.inject({ method: 'POST', url: '/ui/', headers: ALL })).statusCode).toBe(405);
  });
});

describe('the page in the package', () => {
  it('ships: the build copies ui/ beside page.js in dist/, which `files` includes', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[]; scripts: { build: string } };
    expect(pkg.scripts.build).toContain("cpSync('src/server/ui', 'dist/src/server/ui'");
    expect(pkg.files).toContain('dist/src');
  });

  it('a missing file stops serve --ui at start, with a clear error', () => {
    expect(() => registerPage(Fastify(), new URL('file:///nonexistent/ui/'))).toThrow(ServeConfigError);
    expect(() => registerPage(Fastify(), new URL('file:///nonexistent/ui/'))).toThrow(/--ui: cannot read the page's file \/nonexistent\/ui\/index.html \(ENOENT\)/);
  });
});

describe('GET /v1/tenants', () => {
  it('lists the tenants this caller may ask about, and only those', async () => {
    const all = await withUi.inject({ method: 'GET', url: '/v1/tenants', headers: ALL });
    expect(all.statusCode).toBe(200);
    expect(all.json().tenants.map((t: { name: string }) => t.name)).toEqual([TENANT, 'hr']);
    expect(all.json().tenants[0]).toEqual({ name: TENANT, users: 5, bindings: expect.any(Number), revision: expect.any(Number) });
    const hr = await withUi.inject({ method: 'GET', url: '/v1/tenants', headers: HR_ONLY });
    expect(hr.json().tenants.map((t: { name: string }) => t.name)).toEqual(['hr']);
  });

  it('is there without --ui too (it is API, not page)', async () => {
    expect((await withoutUi.inject({ method: 'GET', url: '/v1/tenants', headers: ALL })).statusCode).toBe(200);
  });
});

describe('GET /v1/permissions', () => {
  it('is the catalog, with scopes', async () => {
    const r = await withUi.inject({ method: 'GET', url: '/v1/permissions', headers: HR_ONLY });
    expect(r.statusCode).toBe(200);
    expect(r.json().permissions.map((p: { permission: string }) => p.permission)).toEqual(ALL_PERMISSIONS);
    expect(r.json().permissions).toContainEqual({ permission: 'Jobs.Create', scope: 'Folder' });
  });
});

describe('GET /v1/tenants/{tenant}/matrix', () => {
  it('answers users × folders with the strongest role', async () => {
    const r = await withUi.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/matrix`, headers: ALL });
    expect(r.statusCode).toBe(200);
    const m = r.json();
    expect(m.folders).toEqual(['Finance', 'Finance/Invoices']);
    expect(m.users.map((u: { user: string }) => u.user)).toEqual(['ann', 'bob', 'cy', 'dee', 'r1']);
    const bob = m.users.find((u: { user: string }) => u.user === 'bob');
    expect(bob.cells[0]).toEqual({
      folder: 'Finance', role: 'automation-user', permissions: 8, changes: 1, binding: 'ops-auto', via: 'group:ops', from: 'Finance', narrowed: false, roles: ['automation-user'],
    });
    expect(m).toMatchObject({ tenant: TENANT, totalUsers: 5, truncated: false, totalFolders: 2, foldersTruncated: false });
  });

  it('pages users and folders, keeps a folder subtree; refuses paging out of bounds or not a number, and a bad folder', async () => {
    const page = await withUi.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/matrix?offset=1&limit=2`, headers: ALL });
    expect(page.json().users.map((u: { user: string }) => u.user)).toEqual(['bob', 'cy']);
    expect(page.json().truncated).toBe(true);
    const sub = await withUi.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/matrix?folder=Finance%2FInvoices&folderLimit=5`, headers: ALL });
    expect(sub.json()).toMatchObject({ folders: ['Finance/Invoices'], totalFolders: 1 });
    for (const q of ['limit=0', 'limit=99999', 'limit=-1', 'limit=abc', 'offset=1e3', 'folderLimit=0', 'folder=A%2F%2FB', 'other=1', 'limit=1&limit=2']) {
      const r = await withUi.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/matrix?${q}`, headers: ALL });
      expect([q, r.statusCode]).toEqual([q, 400]);
      expect(r.json().error).toEqual(expect.any(String));
    }
  });

  it('is 403 for a caller not authorized for the tenant (whether it exists or not), 404 for an unknown tenant', async () => {
    expect((await withUi.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/matrix`, headers: HR_ONLY })).statusCode).toBe(403);
    expect((await withUi.inject({ method: 'GET', url: '/v1/tenants/nowhere/matrix', headers: HR_ONLY })).statusCode).toBe(403);
    expect((await withUi.inject({ method: 'GET', url: '/v1/tenants/nowhere/matrix', headers: ALL })).statusCode).toBe(404);
  });
});
