/** `serve` as a process would run it: start() over a store URL, real sockets, slow clients. */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { buildServer } from '../../src/server/app.js';
import { NoAuth } from '../../src/server/auth.js';
import { DecisionIndex } from '../../src/server/decision-index.js';
import { start, type RunningServer } from '../../src/server/main.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { openStore } from '../../src/store/open.js';
import { TENANT, listen, request, seed } from './fixtures.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-serve-'));
const silent = pino({ level: 'silent' });

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('start()', () => {
  let server: RunningServer;
  const tokenFile = path.join(dir, 'tokens');

  beforeAll(async () => {
    const store = await openStore(dir);
    await seed(store);
    await store.close();
    fs.writeFileSync(tokenFile, 'tok-1\n');
    server = await start({ store: dir, port: 0, host: '127.0.0.1', tokenFile }, { logger: silent, defaultMetrics: false });
    await server.loaded;
  });
  afterAll(() => server.close());

  it('binds the port, loads the store and answers with the token of --token-file (auth token implied)', async () => {
    expect(server.auth.mode).toBe('token');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const ok = await request(server.url, { method: 'POST', url: '/v1/check', payload: { tenant: TENANT, user: 'ann', permission: 'Users.View' }, headers: { authorization: 'Bearer tok-1' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().allowed).toBe(true);
    expect((await request(server.url, { method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('serves many requests on one keep-alive connection', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        request(server.url, { method: 'POST', url: '/v1/check', payload: { tenant: TENANT, user: i % 2 ? 'ann' : 'bob', permission: 'Users.View' }, headers: { authorization: 'Bearer tok-1' } }),
      ),
    );
    expect(results.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
    expect(results.filter((r) => r.json().allowed)).toHaveLength(25);
  });

  it('close() stops listening and is idempotent', async () => {
    const other = await start({ store: dir, port: 0, host: '127.0.0.1', auth: 'none' }, { logger: silent, defaultMetrics: false });
    await other.loaded;
    await Promise.all([other.close(), other.close()]);
    await expect(fetch(`${other.url}/healthz`)).rejects.toThrow();
  });
});

describe('slow and broken clients', () => {
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const store = await openStore(path.join(dir, 'slow'));
    await seed(store);
    const index = new DecisionIndex(store);
    await index.start();
    const app = await buildServer({
      index, auth: new NoAuth(), metrics: new ServerMetrics({ defaultMetrics: false }),
      requestTimeoutMs: 600, headersTimeoutMs: 400, timeoutCheckIntervalMs: 100, keepAliveTimeoutMs: 300,
    });
    url = await listen(app);
    close = async () => {
      await app.close();
      await index.stop();
      await store.close();
    };
  });
  afterAll(() => close());

  /** Opens a raw socket, writes `data`, and resolves with what the server sent when it closed the socket. */
  function rawExchange(data: string, timeoutMs = 5_000): Promise<{ text: string; ms: number }> {
    const { port } = new URL(url);
    return new Promise((resolve, reject) => {
      const t0 = Date.now();
      let text = '';
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(data));
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ text, ms: Date.now() - t0 });
      });
      socket.on('error', () => undefined);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`server kept the socket open for ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  it('drops a client that never finishes its headers (408)', async () => {
    const r = await rawExchange('POST /v1/check HTTP/1.1\r\nHost: x\r\n');
    expect(r.text).toMatch(/^HTTP\/1.1 408/);
    expect(r.ms).toBeLessThan(3_000);
  });

  it('drops a client that never finishes its body (408)', async () => {
    const r = await rawExchange('POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tenant":');
    expect(r.text).toMatch(/^HTTP\/1.1 408/);
    expect(r.ms).toBeLessThan(3_000);
  });

  it('closes an idle keep-alive connection', async () => {
    const body = JSON.stringify({ tenant: TENANT, user: 'ann', permission: 'Users.View' });
    const r = await rawExchange(`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(r.text).toMatch(/^HTTP\/1.1 200/);
    expect(r.text).toMatch(/"allowed":true/);
    expect(r.ms).toBeLessThan(3_000);
  });

  it('answers garbage with 400, not a crash', async () => {
    const r = await rawExchange('NOT HTTP AT ALL\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1.1 400/);
    expect((await request(url, { method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('answers 413 to a declared oversized body without reading it', async () => {
    const r = await rawExchange('POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n{');
    expect(r.text).toMatch(/^HTTP\/1.1 413/);
  });
});
