/** Authentication: token file, TokenReview (with an injected reviewer), none; and the choice of mode. */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { buildServer } from '../../src/server/app.js';
import { AuthConfigError, NoAuth, TokenFileAuth, TokenReviewAuth, bearerToken, kubernetesTokenReviewer, type ReviewResult } from '../../src/server/auth.js';
import { DecisionIndex } from '../../src/server/decision-index.js';
import { start } from '../../src/server/main.js';
import { ServeConfigError, resolveAuthMode } from '../../src/server/options.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import type { AccessStore } from '../../src/store/store.js';
import { sqliteFactory } from '../support/stores.js';
import { TENANT, listen, request, seed, serverOver, sleep, type TestServer } from './fixtures.js';

const CHECK = { tenant: TENANT, user: 'ann', permission: 'Users.View' };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-auth-'));
let store: AccessStore;

beforeAll(async () => {
  store = await sqliteFactory.open();
  await seed(store);
});

afterAll(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['Bearer   abc  ', 'abc'],
  ])('reads %j', (header, token) => {
    expect(bearerToken(header)).toEqual({ token });
  });
  it.each([undefined, '', 'Basic abc', 'Bearer', 'Bearer a b', 'abc'])('refuses %j', (header) => {
    expect(bearerToken(header)).toHaveProperty('reason');
  });
});

describe('--auth token', () => {
  const file = path.join(dir, 'tokens');
  let auth: TokenFileAuth;
  let server: TestServer;

  beforeAll(async () => {
    fs.writeFileSync(file, '# callers of the decision API\n\nfirst-token\n  second-token  \n');
    auth = new TokenFileAuth(file, undefined, 0);
    server = await serverOver(store, auth);
  });
  afterAll(async () => {
    await server.close();
    auth.close();
  });

  const ask = (headers: Record<string, string>) => server.inject({ method: 'POST', url: '/v1/check', payload: CHECK, headers });

  it('accepts every token of the file (trimmed, comments and blank lines ignored)', async () => {
    expect((await ask({ authorization: 'Bearer first-token' })).statusCode).toBe(200);
    expect((await ask({ authorization: 'Bearer second-token' })).statusCode).toBe(200);
  });

  it('answers 401 with WWW-Authenticate for a missing, malformed or invalid token', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Basic Zmlyc3QtdG9rZW4=' }, { authorization: 'Bearer wrong' }, { authorization: 'Bearer first-token-x' }, { authorization: 'Bearer # callers' }]) {
      const r = await ask(headers);
      expect(r.statusCode).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer');
      expect(r.json().error).toMatch(/^unauthorized: /);
    }
  });

  it('protects every /v1 route', async () => {
    expect((await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/users/ann/permissions` })).statusCode).toBe(401);
    expect((await server.inject({ method: 'GET', url: `/v1/tenants/${TENANT}/who?permission=Users.View` })).statusCode).toBe(401);
    // Unauthenticated callers learn nothing, not even whether the question was well formed.
    expect((await server.inject({ method: 'POST', url: '/v1/check', payload: '{oops', headers: { 'content-type': 'application/json' } })).statusCode).toBe(401);
  });

  it('leaves /healthz, /readyz and /metrics open', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics']) expect((await server.inject({ method: 'GET', url })).statusCode).toBe(200);
  });

  it('counts refusals in /metrics', async () => {
    const r = await server.inject({ method: 'GET', url: '/metrics' });
    expect(r.body).toMatch(/^rpa_access_auth_failures_total\{mode="token"\} [1-9]\d*$/m);
  });

  it('picks up a rewritten file on reload() (SIGHUP), and keeps the tokens if the file vanishes', async () => {
    fs.writeFileSync(file, 'rotated-token\n');
    auth.reload();
    expect((await ask({ authorization: 'Bearer first-token' })).statusCode).toBe(401);
    expect((await ask({ authorization: 'Bearer rotated-token' })).statusCode).toBe(200);
    fs.rmSync(file);
    auth.reload();
    expect((await ask({ authorization: 'Bearer rotated-token' })).statusCode).toBe(200);
  });

  it('notices a changed file by itself', async () => {
    const f = path.join(dir, 'watched');
    fs.writeFileSync(f, 'one\n');
    const watched = new TokenFileAuth(f, undefined, 50);
    try {
      expect(await watched.authenticate('Bearer one')).toMatchObject({ ok: true });
      await sleep(20);
      fs.writeFileSync(f, 'two\n');
      const deadline = Date.now() + 5_000;
      while ((await watched.authenticate('Bearer two')).ok !== true && Date.now() < deadline) await sleep(25);
      expect(await watched.authenticate('Bearer two')).toMatchObject({ ok: true, caller: 'token#1' });
      expect(await watched.authenticate('Bearer one')).toMatchObject({ ok: false });
    } finally {
      watched.close();
    }
  });

  it('refuses to start on a missing or empty file', () => {
    expect(() => new TokenFileAuth(path.join(dir, 'absent'), undefined, 0)).toThrow(AuthConfigError);
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '# nothing\n\n');
    expect(() => new TokenFileAuth(empty, undefined, 0)).toThrow(/holds no token/);
  });
});

describe('--auth none', () => {
  it('lets requests without a token through', async () => {
    const server = await serverOver(store, new NoAuth());
    try {
      expect((await server.inject({ method: 'POST', url: '/v1/check', payload: CHECK })).statusCode).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('--auth tokenreview (injected reviewer)', () => {
  function reviewer(valid: Record<string, string>) {
    const calls: string[] = [];
    const fn = async (token: string): Promise<ReviewResult> => {
      calls.push(token);
      await sleep(5);
      return valid[token] ? { authenticated: true, user: valid[token] } : { authenticated: false, error: 'token not valid' };
    };
    return { fn, calls };
  }

  it('accepts what the reviewer authenticates, caching it for 30 s', async () => {
    let now = 1_000_000;
    const r = reviewer({ good: 'system:serviceaccount:apps:bot' });
    const auth = new TokenReviewAuth(r.fn, { now: () => now });
    expect(await auth.authenticate('Bearer good')).toEqual({ ok: true, caller: 'system:serviceaccount:apps:bot', user: { username: 'system:serviceaccount:apps:bot' } });
    expect(await auth.authenticate('Bearer good')).toMatchObject({ ok: true });
    expect(r.calls).toEqual(['good']);
    now += 29_000;
    await auth.authenticate('Bearer good');
    expect(r.calls).toHaveLength(1);
    now += 2_000;
    await auth.authenticate('Bearer good');
    expect(r.calls).toHaveLength(2);
  });

  it('caches a refusal for 5 s only', async () => {
    let now = 0;
    const r = reviewer({});
    const auth = new TokenReviewAuth(r.fn, { now: () => now });
    expect(await auth.authenticate('Bearer bad')).toEqual({ ok: false, reason: 'invalid token' });
    now += 4_000;
    await auth.authenticate('Bearer bad');
    expect(r.calls).toHaveLength(1);
    now += 1_500;
    await auth.authenticate('Bearer bad');
    expect(r.calls).toHaveLength(2);
  });

  it('sends one review for concurrent requests with the same new token', async () => {
    const r = reviewer({ t: 'u' });
    const auth = new TokenReviewAuth(r.fn);
    const results = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate('Bearer t')));
    expect(results.every((x) => x.ok)).toBe(true);
    expect(r.calls).toHaveLength(1);
  });

  it('bounds its cache, dropping the oldest entries', async () => {
    const r = reviewer({});
    const auth = new TokenReviewAuth(r.fn, { maxEntries: 3 });
    for (const t of ['a', 'b', 'c', 'd']) await auth.authenticate(`Bearer ${t}`);
    expect(auth.cacheSize).toBe(3);
    await auth.authenticate('Bearer a');
    expect(r.calls).toEqual(['a', 'b', 'c', 'd', 'a']);
  });

  it('does not ask the reviewer without a bearer token', async () => {
    const r = reviewer({});
    const auth = new TokenReviewAuth(r.fn);
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false, reason: expect.stringMatching(/missing/) });
    expect(r.calls).toHaveLength(0);
  });

  it('over HTTP: 200 for a reviewed token, 401 otherwise, 503 (not cached) when the reviewer fails', async () => {
    let failing = false;
    const calls: string[] = [];
    const auth = new TokenReviewAuth(async (token) => {
      calls.push(token);
      if (failing) throw new Error('connect ECONNREFUSED 10.0.0.1:443');
      return { authenticated: token === 'sa-token', user: 'system:serviceaccount:rpa:client' };
    }, {}, async () => true);
    const server = await serverOver(store, auth);
    try {
      const ask = (token?: string) =>
        server.inject({ method: 'POST', url: '/v1/check', payload: CHECK, headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect((await ask('sa-token')).statusCode).toBe(200);
      expect((await ask('other')).statusCode).toBe(401);
      expect((await ask()).statusCode).toBe(401);
      failing = true;
      const r = await ask('new-token');
      expect(r.statusCode).toBe(503);
      expect(r.json().error).toMatch(/cannot verify the token/);
      expect((await ask('new-token')).statusCode).toBe(503);
      expect(calls.filter((t) => t === 'new-token')).toHaveLength(2);
      expect((await ask('sa-token')).statusCode).toBe(200); // still cached
    } finally {
      await server.close();
    }
  });
});

describe('kubernetesTokenReviewer (against a stub API server)', () => {
  const saved = process.env.KUBECONFIG;
  afterAll(() => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });

  it('sends a TokenReview with the kubeconfig credentials and reads the status', async () => {
    const seen: { auth?: string; url?: string; body?: { spec?: { token?: string } } }[] = [];
    const api = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(data) as { spec: { token: string } };
        seen.push({ auth: req.headers.authorization, url: req.url, body });
        const ok = body.spec.token === 'good-sa-token';
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: body.spec,
          status: ok ? { authenticated: true, user: { username: 'system:serviceaccount:apps:client' } } : { authenticated: false, error: 'invalid bearer token' },
        }));
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as { port: number }).port;
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: c',
      'clusters: [{name: k, cluster: {server: "http://127.0.0.1:' + port + '", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: server-credential}}]',
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ].join('\n'));
    process.env.KUBECONFIG = kubeconfig;
    try {
      const review = await kubernetesTokenReviewer({ timeoutMs: 2_000 });
      expect(await review('good-sa-token')).toEqual({ authenticated: true, user: 'system:serviceaccount:apps:client' });
      expect(await review('bad')).toEqual({ authenticated: false, error: 'invalid bearer token' });
      expect(seen[0]).toMatchObject({ auth: 'Bearer server-credential', url: '/apis/authentication.k8s.io/v1/tokenreviews', body: { spec: { token: 'good-sa-token' } } });
      api.close();
      await expect(review('x')).rejects.toThrow();
    } finally {
      api.close();
    }
  });

  it('start() with the default mode and no Kubernetes credentials refuses to start, naming the options', async () => {
    process.env.KUBECONFIG = path.join(dir, 'no-such-kubeconfig');
    await expect(start({ store: path.join(dir, 'never2') }, { logger: pino({ level: 'silent' }) })).rejects.toThrow(ServeConfigError);
    await expect(start({ store: path.join(dir, 'never2') }, { logger: pino({ level: 'silent' }) })).rejects.toThrow(/--auth tokenreview: cannot load Kubernetes credentials/);
  });
});

describe('tokens never reach the logs', () => {
  it('logs requests at debug level without the Authorization header or the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = pino({ level: 'trace', redact: ['req.headers.authorization'] }, sink);
    const file = path.join(dir, 'log-tokens');
    fs.writeFileSync(file, 's3cr3t-token-value\n');
    const auth = new TokenFileAuth(file, logger, 0);
    const index = new DecisionIndex(store, { logger });
    const app = await buildServer({ index, auth, logger, metrics: new ServerMetrics({ defaultMetrics: false }) });
    await index.start();
    const url = await listen(app);
    try {
      await request(url, { method: 'POST', url: '/v1/check', payload: CHECK, headers: { authorization: 'Bearer s3cr3t-token-value' } });
      await request(url, { method: 'POST', url: '/v1/check', payload: CHECK, headers: { authorization: 'Bearer s3cr3t-wrong-value' } });
      await request(url, { method: 'POST', url: '/v1/check', payload: '{', headers: { authorization: 'Bearer s3cr3t-token-value', 'content-type': 'application/json' } });
    } finally {
      await app.close();
      await index.stop();
      auth.close();
    }
    const log = lines.join('');
    expect(log).toMatch(/"route":"\/v1\/check"/); // request lines are there, at debug level
    expect(log).toMatch(/"level":20/);
    expect(log).not.toMatch(/s3cr3t/);
    expect(log.toLowerCase()).not.toMatch(/bearer /);
  });
});

describe('choice of the mode', () => {
  it('defaults to tokenreview, to token when only --token-file is given, never to none', () => {
    expect(resolveAuthMode({})).toBe('tokenreview');
    expect(resolveAuthMode({ tokenFile: '/x' })).toBe('token');
    expect(resolveAuthMode({ auth: 'none' })).toBe('none');
    expect(resolveAuthMode({ auth: 'token', tokenFile: '/x' })).toBe('token');
  });

  it.each([
    [{ auth: 'token' as const }, /--auth token needs --token-file/],
    [{ auth: 'none' as const, tokenFile: '/x' }, /--token-file is used only with --auth token/],
    [{ auth: 'tokenreview' as const, tokenFile: '/x' }, /--token-file is used only with --auth token/],
    [{ auth: 'ldap' as never }, /--auth must be one of tokenreview, token, none/],
  ])('refuses %j', (options, message) => {
    expect(() => resolveAuthMode(options)).toThrow(ServeConfigError);
    expect(() => resolveAuthMode(options)).toThrow(message);
  });

  it('start() refuses a missing token file with a clear message, before opening the store', async () => {
    await expect(start({ auth: 'token', tokenFile: path.join(dir, 'nope'), store: path.join(dir, 'never') }, { logger: pino({ level: 'silent' }) }))
      .rejects.toThrow(/cannot read token file .*nope: ENOENT/);
    expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
  });
});
