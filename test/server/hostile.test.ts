/**
 * The decision API under hostile input, over real sockets on 127.0.0.1: malformed JSON, wrong
 * content types, oversized and deeply nested bodies, unknown tenants and users, huge URLs and
 * query strings, and slow clients (raw node:net sockets that send headers and then trickle the
 * body, never finish the headers, or send nothing). The rule: a 4xx with `{error}` or a closed
 * connection, within the configured timeouts; never a 5xx, never a hang, and the server keeps
 * answering everyone else meanwhile.
 *
 * Timeouts are configured short here (request 1.5 s, headers 1 s, checked every 100 ms) so that
 * the slow-client tests end quickly; they assert only that the server ends the exchange, with a
 * generous bound standing for "hangs", never how fast.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/server/app.js';
import { NoAuth } from '../../src/server/auth.js';
import { DecisionIndex } from '../../src/server/decision-index.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import type { AccessStore } from '../../src/store/store.js';
import { sqliteFactory } from '../support/stores.js';
import { TENANT, listen, request, seed } from './fixtures.js';

const REQUEST_TIMEOUT_MS = 1_500;
const HEADERS_TIMEOUT_MS = 1_000;
/** Far above every timeout: reaching it means the server let a client hang. */
const HANG_MS = 20_000;

let store: AccessStore;
let index: DecisionIndex;
let app: FastifyInstance;
let base: string;
let port: number;

beforeAll(async () => {
  store = await sqliteFactory.open();
  await seed(store);
  index = new DecisionIndex(store, { resyncIntervalMs: 1_000 });
  app = await buildServer({
    index, auth: new NoAuth(), metrics: new ServerMetrics({ defaultMetrics: false }),
    requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: HEADERS_TIMEOUT_MS, timeoutCheckIntervalMs: 100,
    keepAliveTimeoutMs: 2_000, connectionTimeoutMs: 5_000,
  });
  await index.start();
  base = await listen(app);
  port = Number(new URL(base).port);
});

afterAll(async () => {
  await app.close();
  await index.stop();
  await store.close();
});

const post = (payload: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  request(base, { method: 'POST', url: '/v1/check', payload, headers });

/** A 4xx with a JSON `{error: string}` body whose message is one short line. */
function expectClientError(r: { statusCode: number; body: string }, status?: number): void {
  if (status !== undefined) expect(r.statusCode).toBe(status);
  expect(r.statusCode).toBeGreaterThanOrEqual(400);
  expect(r.statusCode).toBeLessThan(500);
  const body = JSON.parse(r.body) as { error?: unknown };
  expect(typeof body.error).toBe('string');
  expect(body.error as string).not.toMatch(/\n|^\s+at |node:internal/);
  expect((body.error as string).length).toBeLessThan(2_000);
}

/** The server still answers a good question (nothing is wedged). */
async function stillServing(): Promise<void> {
  const r = await request(base, { method: 'POST', url: '/v1/check', payload: { tenant: TENANT, user: 'ann', permission: 'Users.View' } });
  expect(r.statusCode).toBe(200);
  expect(JSON.parse(r.body)).toMatchObject({ allowed: true });
}

interface RawResult {
  /** Everything the server sent before it closed the connection. */
  response: string;
  /** The server closed (or reset) the connection before HANG_MS. */
  closed: boolean;
}

/**
 * A raw client: connects, writes `chunks` one by one (a number is a pause in ms), then keeps
 * the connection open until the server closes it or HANG_MS passes.
 */
function raw(chunks: (string | Buffer | number)[], opts: { keepWriting?: { every: number; data: string } } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let response = '';
    let done = false;
    let trickle: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(hang);
      if (trickle) clearInterval(trickle);
      socket.destroy();
      resolve({ response, closed });
    };
    const hang = setTimeout(() => finish(false), HANG_MS);
    socket.on('data', (d) => (response += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (done) return;
        if (typeof c === 'number') await new Promise((r) => setTimeout(r, c));
        else socket.write(c);
      }
      if (opts.keepWriting && !done) {
        trickle = setInterval(() => {
          if (!socket.destroyed) socket.write(opts.keepWriting!.data);
        }, opts.keepWriting.every);
      }
    });
  });
}

const statusOf = (response: string): number | undefined => {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(response);
  return m ? Number(m[1]) : undefined;
};

describe('malformed and hostile bodies', () => {
  const malformed: [string, string][] = [
    ['truncated JSON', '{"tenant": "finance", "user": "ann"'],
    ['trailing garbage', '{"tenant": "finance", "user": "ann", "permission": "Users.View"} xyz'],
    ['NaN', '{"tenant": NaN}'],
    ['single quotes', "{'tenant': 'finance'}"],
    ['a bare string', '"finance"'],
    ['a number', '42'],
    ['null', 'null'],
    ['comments', '{"tenant": "finance" /* hi */}'],
    ['a constructor.prototype body', '{"constructor": {"prototype": {"allowed": true}}, "tenant": "finance", "user": "ann", "permission": "Users.View"}'],
    ['a control character in a string', '{"tenant": "fin\u0001ance", "user": "ann", "permission": "Users.View"}'],
    ['a number for a string', '{"tenant": 1e400, "user": "ann", "permission": "Users.View"}'],
    ['duplicate keys, the second wrong', '{"tenant": "finance", "user": "ann", "permission": "Users.View", "permission": 7}'],
  ];
  it.each(malformed)('answers 400 {error} for %s', async (_what, payload) => {
    expectClientError(await post(payload), 400);
  });

  it('answers 400 for invalid UTF-8 and for a byte-order mark, never 5xx', async () => {
    const bad = Buffer.concat([Buffer.from('{"tenant": "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('", "user": "ann", "permission": "Users.View"}')]);
    const r1 = await fetch(`${base}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bad });
    expect(r1.status).toBeGreaterThanOrEqual(200);
    expect(r1.status).toBeLessThan(500);
    const r2 = await post('\uFEFF{"tenant": "finance", "user": "ann", "permission": "Users.View"}');
    expect(r2.statusCode).toBeLessThan(500);
  });

  it('answers 400 for JSON nested thousands of levels deep, and for a deep value within the body limit', async () => {
    expectClientError(await post(`${'['.repeat(8_000)}${']'.repeat(8_000)}`), 400);
    expectClientError(await post(`{"tenant": ${'{"a":'.repeat(2_500)}1${'}'.repeat(2_500)}, "user": "ann", "permission": "Users.View"}`), 400);
    expectClientError(await post(`{"tenant": "finance", "user": "ann", "permission": "Users.View", "folder": ${'['.repeat(5_000)}${']'.repeat(5_000)}}`), 400);
    await stillServing();
  });

  it('answers 413 for a body over the limit, whatever the Content-Length says, and keeps serving', async () => {
    const big = JSON.stringify({ tenant: TENANT, user: 'ann', permission: 'Users.View', folder: 'x'.repeat(1024 * 1024) });
    expectClientError(await post(big), 413);
    // A Content-Length of 10 GB with a tiny body: refused up front, not awaited.
    const lying = await raw([`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n{}`]);
    expect(lying.closed).toBe(true);
    expect(statusOf(lying.response)).toBe(413);
    // Chunked, with no length announced: cut off once over the limit.
    const chunk = `${(8 * 1024).toString(16)}\r\n${'a'.repeat(8 * 1024)}\r\n`;
    const chunked = await raw([`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk, chunk, chunk, chunk], { keepWriting: { every: 50, data: chunk } });
    expect(chunked.closed).toBe(true);
    expect([413, undefined]).toContain(statusOf(chunked.response));
    await stillServing();
  });

  it('answers a wrong content type with 4xx: none, text/plain, form, multipart, a malformed header', async () => {
    const body = JSON.stringify({ tenant: TENANT, user: 'ann', permission: 'Users.View' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonp', ';;;', 'application/json; charset=utf-16']) {
      const r = await post(body, { 'content-type': type });
      expect({ type, status: r.statusCode < 500 }).toEqual({ type, status: true });
      if (r.statusCode !== 200) expectClientError(r);
    }
    const none = await raw([`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`]);
    expect(statusOf(none.response)).toBeGreaterThanOrEqual(400);
    expect(statusOf(none.response)).toBeLessThan(500);
  });
});

describe('unknown tenants, users, and hostile URLs', () => {
  it('answers unknown tenants and users with a decision or 404, whatever their spelling', async () => {
    const names = ['nobody', '\ud800', '\u0000', 'NOBODY@EXAMPLE.COM', '../../etc/passwd', '%00', 'a%2Fb', 'ü', '%F0%9F%92%A9', '__proto__', 'constructor', "'; drop table objects; --"];
    // A lone surrogate cannot be URI-encoded: its (invalid) UTF-8 bytes are sent instead.
    const enc = (n: string) => {
      try {
        return encodeURIComponent(n);
      } catch {
        return '%ED%A0%80';
      }
    };
    for (const n of names) {
      const perms = await request(base, { method: 'GET', url: `/v1/tenants/${TENANT}/users/${enc(n)}/permissions` });
      expectClientError(perms, n === "\ud800" ? 400 : 404); // invalid UTF-8 in the path: malformed, 400
      const otherTenant = await request(base, { method: 'GET', url: `/v1/tenants/${enc(n)}/users/ann/permissions` });
      expect(otherTenant.statusCode).toBeGreaterThanOrEqual(400);
      expect(otherTenant.statusCode).toBeLessThan(500);
      const check = await request(base, { method: 'POST', url: '/v1/check', payload: { tenant: n, user: n, permission: 'Users.View' } });
      expect(check.statusCode).toBe(200);
      expect(JSON.parse(check.body)).toMatchObject({ allowed: false });
    }
    // The tables of the store are intact.
    await stillServing();
  });

  it('answers malformed percent-encoding and overlong path parameters with 4xx', async () => {
    for (const url of [`/v1/tenants/${TENANT}/users/%E0%A4%A/permissions`, `/v1/tenants/%/who?permission=Users.View`, `/v1/tenants/${'t'.repeat(600)}/who?permission=Users.View`, `/v1/tenants/${TENANT}/users/${'u'.repeat(2_000)}/permissions`]) {
      const r = await request(base, { method: 'GET', url });
      expect({ url: url.slice(0, 60), ok: r.statusCode >= 400 && r.statusCode < 500 }).toEqual({ url: url.slice(0, 60), ok: true });
    }
  });

  it('answers huge query strings and headers with 4xx (or closes), never 5xx', async () => {
    const q = (s: string) => request(base, { method: 'GET', url: `/v1/tenants/${TENANT}/who?${s}` });
    expectClientError(await q(`permission=Users.View&folder=${'F'.repeat(2_000)}`), 400);
    expectClientError(await q(`permission=Users.View&permission=Jobs.View`), 400);
    expectClientError(await q(`permission=Users.View&${Array.from({ length: 500 }, (_, i) => `p${i}=x`).join('&')}`), 400);
    expectClientError(await q(`permission[$ne]=x`), 400);
    // Over Node's header limit (16 KiB): 431 or a closed connection, as Node decides.
    const huge = await raw([`GET /v1/tenants/${TENANT}/who?permission=Users.View&folder=${'F'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`]);
    expect(huge.closed).toBe(true);
    const status = statusOf(huge.response);
    if (status !== undefined) expect(status).toBeGreaterThanOrEqual(400);
    if (status !== undefined) expect(status).toBeLessThan(500);
    const header = await raw([`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(64 * 1024)}\r\n\r\n`]);
    expect(header.closed).toBe(true);
    await stillServing();
  });

  it('answers garbage that is not HTTP with 400 and a closed connection', async () => {
    for (const junk of ['HELLO\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', '\u0000\u0001\u0002\r\n\r\n', 'POST /v1/check HTTP/1.1\r\nContent-Length: -5\r\n\r\n', 'POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
      const r = await raw([junk]);
      expect(r.closed).toBe(true);
      const status = statusOf(r.response);
      if (status !== undefined) expect(status).toBeLessThan(500);
    }
    await stillServing();
  });
});

describe('slow clients', () => {
  const head = (length: number) => `POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('a client that sends headers and never the body is answered 408 (or cut off), not left hanging', async () => {
    const r = await raw([head(100), '{"tenant": "fin']);
    expect(r.closed).toBe(true);
    const status = statusOf(r.response);
    if (status !== undefined) expect(status).toBe(408);
  }, HANG_MS + 5_000);

  it('a client that trickles its body one byte at a time is cut off at the request timeout', async () => {
    const r = await raw([head(10_000), '{'], { keepWriting: { every: 100, data: ' ' } });
    expect(r.closed).toBe(true);
    const status = statusOf(r.response);
    if (status !== undefined) expect(status).toBe(408);
  }, HANG_MS + 5_000);

  it('a client that never finishes its headers (slowloris) is cut off', async () => {
    const r = await raw(['POST /v1/check HTTP/1.1\r\nHost: x\r\n'], { keepWriting: { every: 100, data: 'X-A: b\r\n' } });
    expect(r.closed).toBe(true);
    const status = statusOf(r.response);
    if (status !== undefined) expect(status).toBe(408);
  }, HANG_MS + 5_000);

  it('a client that connects and sends nothing is disconnected', async () => {
    const r = await raw([]);
    expect(r.closed).toBe(true);
  }, HANG_MS + 5_000);

  it('forty slow clients at once do not keep the server from answering others, nor from closing them all', async () => {
    const slow = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? raw([head(500), '{"tenant"'], { keepWriting: { every: 200, data: ' ' } }) : raw(['GET /healthz HTTP/1.1\r\n'], { keepWriting: { every: 200, data: 'X: y\r\n' } }),
    );
    // While they dribble, the server answers everyone else.
    for (let i = 0; i < 5; i++) await stillServing();
    const results = await Promise.all(slow);
    expect(results.filter((r) => !r.closed)).toEqual([]);
    await stillServing();
  }, HANG_MS + 10_000);
});
