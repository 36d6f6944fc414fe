/**
 * The operator's probe and metrics endpoint, on its own small server (not the decision API's) so
 * that probes keep answering when the API is saturated and the port can be kept off the Service.
 * It is fastify, set up as the other two servers (src/http/fastify.ts):
 *
 * - /healthz: the process is alive (liveness; optional named checks);
 * - /readyz: every registered readiness check passes (caches synced, store reachable...);
 *   `?verbose` lists each check, as kube-apiserver does;
 * - /metrics: the Prometheus registry in text format.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { boundPort, createHttpApp, listen, type ErrorReply } from '../http/fastify.js';
import { errorMessage } from './client.js';
import { silentLogger, type Logger } from '../log.js';

/** Passes by resolving (to anything but false); fails by throwing or returning false. */
export type Check = () => unknown | Promise<unknown>;

export interface HealthServerOptions {
  /** 0 picks a free port (see listen()'s result); default 8081. */
  port?: number;
  /** Default: all interfaces (probes come from the kubelet, not from localhost). */
  host?: string;
  registry?: Registry;
  /** A check that takes longer counts as failed; default 5 s. */
  checkTimeoutMs?: number;
  log?: Logger;
}

/** Probes read text, as kube-apiserver's own /healthz and /readyz answer: errors are one text line too. */
const textReply: ErrorReply = (reply, status, message) => reply.code(status).type('text/plain').send(`${message}\n`);

export class HealthServer {
  private readonly app: FastifyInstance;
  private readonly readyChecks = new Map<string, Check>();
  private readonly healthChecks = new Map<string, Check>();
  private readonly checkTimeoutMs: number;

  constructor(private readonly opts: HealthServerOptions = {}) {
    this.checkTimeoutMs = opts.checkTimeoutMs ?? 5_000;
    this.app = createHttpApp({
      // Probes send no body.
      bodyLimit: 1024,
      log: opts.log ?? silentLogger,
      // Probes open a connection per request; do not let idle sockets delay close().
      keepAliveTimeoutMs: 1_000,
      forceCloseConnections: true,
      errorReply: textReply,
    });
    // GET routes answer HEAD too (fastify's exposeHeadRoutes).
    this.app.get('/healthz', async (request, reply) => this.answerChecks(reply, this.healthChecks, verbose(request)));
    this.app.get('/livez', async (request, reply) => this.answerChecks(reply, this.healthChecks, verbose(request)));
    this.app.get('/readyz', async (request, reply) => this.answerChecks(reply, this.readyChecks, verbose(request)));
    const registry = opts.registry;
    if (registry) this.app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    this.app.setNotFoundHandler((request, reply) => {
      if (request.method === 'GET' || request.method === 'HEAD') return textReply(reply, 404, 'not found');
      return textReply(reply.header('allow', 'GET, HEAD'), 405, 'method not allowed');
    });
  }

  addReadyCheck(name: string, check: Check): void {
    this.readyChecks.set(name, check);
  }

  addHealthCheck(name: string, check: Check): void {
    this.healthChecks.set(name, check);
  }

  /** Starts listening; resolves to the bound port (useful with port 0). */
  listen(): Promise<number> {
    return listen(this.app, this.opts.port ?? 8081, this.opts.host);
  }

  get port(): number {
    return boundPort(this.app);
  }

  close(): Promise<void> {
    return this.app.close();
  }

  private async answerChecks(reply: FastifyReply, checks: Map<string, Check>, verbose: boolean): Promise<FastifyReply> {
    const results = await Promise.all([...checks].map(async ([name, check]) => ({ name, error: await this.runCheck(check) })));
    const failed = results.filter((r) => r.error !== undefined);
    const lines = results.map((r) => (r.error === undefined ? `[+]${r.name} ok` : `[-]${r.name} failed: ${r.error}`));
    const ok = failed.length === 0;
    let body: string;
    if (verbose) body = [...lines, ok ? 'ok' : 'failed'].join('\n') + '\n';
    else body = ok ? 'ok\n' : lines.filter((l) => l.startsWith('[-]')).join('\n') + '\n';
    return reply.code(ok ? 200 : 503).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(body);
  }

  /** undefined when the check passed, else why it failed. */
  private async runCheck(check: Check): Promise<string | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${this.checkTimeoutMs} ms`), this.checkTimeoutMs);
    });
    const run = (async () => {
      try {
        return (await check()) === false ? 'not ready' : undefined;
      } catch (err) {
        return errorMessage(err);
      }
    })();
    try {
      return await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `?verbose` lists every check, as kube-apiserver does. */
function verbose(request: FastifyRequest): boolean {
  return Object.hasOwn(request.query as object, 'verbose');
}
