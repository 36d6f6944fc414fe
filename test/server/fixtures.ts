/** Shared fixtures of the server tests: a small tenant, stores, and a server over them. */
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/server/app.js';
import { NoAuth, type Authenticator } from '../../src/server/auth.js';
import { DecisionIndex } from '../../src/server/decision-index.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import type { AnyEntry } from '../../src/model/types.js';
import type { AccessStore } from '../../src/store/store.js';
import { bind, group, role, user } from '../support/scenarios.js';

export const TENANT = 'finance';

/** ann: administrator; bob: through group ops, automation-user in Finance; cy: inactive; r1: a robot. */
export function financeEntries(): AnyEntry[] {
  return [
    user('ann'),
    user('bob', { groups: ['ops'], email: 'Bob.Builder@Example.com' }),
    user('cy', { active: false }),
    user('dee'),
    user('r1', { type: 'Robot' }),
    group('ops'),
    role('auditor', 'Tenant', [['Audit', ['View']]]),
    bind('ann-admin', 'administrator', ['u:ann']),
    bind('ops-auto', 'automation-user', ['g:ops'], { folder: 'Finance' }),
    bind('cy-analyst', 'analyst', ['u:cy']),
    bind('dee-audit', 'auditor', ['u:dee'], { environment: 'prod' }),
    bind('dee-invoice', 'folder-administrator', ['u:dee'], { folder: 'Finance/Invoices', resources: [{ kind: 'Process', name: 'invoice-bot' }] }),
  ];
}

export async function seed(store: AccessStore, tenant = TENANT, entries = financeEntries()): Promise<void> {
  const r = await store.apply([{ tenant, upserts: entries }], { actor: 'test', source: 'test' });
  if (r.violations.length > 0) throw new Error(`fixture refused: ${r.violations.map((v) => v.message).join('; ')}`);
}

export interface Response {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(): any;
}

export interface Request {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  url: string;
  /** An object is sent as JSON; a string as it is (give its content-type). */
  payload?: unknown;
  headers?: Record<string, string>;
}

/**
 * A real HTTP request to `base`, answering like fastify.inject. (fastify.inject cannot run under
 * jest here: light-my-request 6 require()s the ESM-only cookie 2, which Node 20 loads natively
 * but jest's module runtime does not.)
 */
export async function request(base: string, req: Request): Promise<Response> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  let body: string | undefined;
  if (req.payload !== undefined) {
    if (typeof req.payload === 'string') body = req.payload;
    else {
      body = JSON.stringify(req.payload);
      headers['content-type'] ??= 'application/json';
    }
  }
  // redirect: manual, as inject: a redirect is an answer to check, not to follow.
  const r = await fetch(base + req.url, { method: req.method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
  const text = await r.text();
  return {
    statusCode: r.status,
    headers: Object.fromEntries(r.headers.entries()),
    body: text,
    json: () => JSON.parse(text),
  };
}

export interface TestServer {
  app: FastifyInstance;
  index: DecisionIndex;
  url: string;
  inject(req: Request): Promise<Response>;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (a free port) and returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

export async function serverOver(
  store: AccessStore,
  auth: Authenticator = new NoAuth(),
  opts: { start?: boolean; resyncIntervalMs?: number; sessionTtlMs?: number; ui?: boolean } = {},
): Promise<TestServer> {
  const index = new DecisionIndex(store, { resyncIntervalMs: opts.resyncIntervalMs ?? 1_000 });
  const app = await buildServer({
    index, auth, metrics: new ServerMetrics({ defaultMetrics: false }), ...(opts.sessionTtlMs ? { sessionTtlMs: opts.sessionTtlMs } : {}), ui: opts.ui ?? false,
  });
  if (opts.start ?? true) await index.start();
  const url = await listen(app);
  return {
    app,
    index,
    url,
    inject: (req) => request(url, req),
    async close() {
      await app.close();
      await index.stop();
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
