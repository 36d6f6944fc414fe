/**
 * The operator's probe and metrics endpoint, on its own small node:http server (not the
 * decision API's) so that probes keep answering when the API is saturated and the port can be
 * kept off the Service:
 *
 * - /healthz: the process is alive (liveness; optional named checks);
 * - /readyz: every registered readiness check passes (caches synced, store reachable...);
 *   `?verbose` lists each check, as kube-apiserver does;
 * - /metrics: the Prometheus registry in text format.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { errorMessage, silentLogger, type Logger } from './client.js';

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

export class HealthServer {
  private readonly server: Server;
  private readonly readyChecks = new Map<string, Check>();
  private readonly healthChecks = new Map<string, Check>();
  private readonly checkTimeoutMs: number;
  private readonly log: Logger;

  constructor(private readonly opts: HealthServerOptions = {}) {
    this.checkTimeoutMs = opts.checkTimeoutMs ?? 5_000;
    this.log = opts.log ?? silentLogger;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err: errorMessage(err), url: req.url }, 'health endpoint failed');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    // Probes open a connection per request; do not let idle sockets delay close().
    this.server.keepAliveTimeout = 1_000;
  }

  addReadyCheck(name: string, check: Check): void {
    this.readyChecks.set(name, check);
  }

  addHealthCheck(name: string, check: Check): void {
    this.healthChecks.set(name, check);
  }

  /** Starts listening; resolves to the bound port (useful with port 0). */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 8081, this.opts.host, () => {
        this.server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  get port(): number {
    const addr = this.server.address() as AddressInfo | null;
    return addr?.port ?? 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    switch (url.pathname) {
      case '/healthz':
      case '/livez':
        return this.answerChecks(res, this.healthChecks, url.searchParams.has('verbose'));
      case '/readyz':
        return this.answerChecks(res, this.readyChecks, url.searchParams.has('verbose'));
      case '/metrics': {
        if (!this.opts.registry) break;
        const body = await this.opts.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.opts.registry.contentType });
        res.end(body);
        return;
      }
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  }

  private async answerChecks(res: ServerResponse, checks: Map<string, Check>, verbose: boolean): Promise<void> {
    const results = await Promise.all([...checks].map(async ([name, check]) => ({ name, error: await this.runCheck(check) })));
    const failed = results.filter((r) => r.error !== undefined);
    const lines = results.map((r) => (r.error === undefined ? `[+]${r.name} ok` : `[-]${r.name} failed: ${r.error}`));
    const ok = failed.length === 0;
    let body: string;
    if (verbose) body = [...lines, ok ? 'ok' : 'failed'].join('\n') + '\n';
    else body = ok ? 'ok\n' : lines.filter((l) => l.startsWith('[-]')).join('\n') + '\n';
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(body);
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
