/**
 * Prometheus metrics of the decision API, in a registry of its own (several servers can live in
 * one process, as in tests). Per-tenant gauges are computed when scraped, not on the hot path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DecisionIndex } from './decision-index.js';

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop lag, GC...). Default true. */
  defaultMetrics?: boolean;
}

type Child = { inc(): void };
type HistChild = { observe(v: number): void };

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly duration: Histogram<'route' | 'method'>;
  private readonly decisions: Counter<'result'>;
  private readonly authFailures: Counter<'mode'>;
  private readonly logins: Counter<'result'>;
  private readonly reloads: Counter<'result' | 'mode'>;
  private readonly reloadDuration: Histogram<'mode'>;
  /** Label-resolved children, so the hot path does no label hashing. */
  private readonly requestChildren = new Map<string, Child>();
  private readonly durationChildren = new Map<string, HistChild>();
  private readonly allowed: Child;
  private readonly denied: Child;
  private detach: (() => void) | undefined;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'rpa_access_http_requests_total', help: 'HTTP requests by route, method and status code',
      labelNames: ['route', 'method', 'status'], registers,
    });
    this.duration = new Histogram({
      name: 'rpa_access_http_request_duration_seconds', help: 'HTTP request latency by route (from request received to response sent)',
      labelNames: ['route', 'method'], registers,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    });
    this.decisions = new Counter({ name: 'rpa_access_decisions_total', help: 'Decisions of POST /v1/check by result', labelNames: ['result'], registers });
    this.allowed = this.decisions.labels('allowed');
    this.denied = this.decisions.labels('denied');
    this.logins = new Counter({ name: 'rpa_access_logins_total', help: 'Logins of POST /v1/tenants/{tenant}/sessions by result (ok, provisioned, refused, invalid)', labelNames: ['result'], registers });
    this.authFailures = new Counter({ name: 'rpa_access_auth_failures_total', help: 'Requests refused with 401', labelNames: ['mode'], registers });
    // `mode`: delta (the changes since the index's revision) or full (the whole tenant read): a full
    // reload costs seconds at 100k bindings, a delta milliseconds, so they are counted and timed apart.
    this.reloads = new Counter({ name: 'rpa_access_index_reloads_total', help: 'Tenant index reloads by result and mode', labelNames: ['result', 'mode'], registers });
    this.reloadDuration = new Histogram({
      name: 'rpa_access_index_reload_duration_seconds', help: 'Time to read a tenant (or its changes) from the store and build its index',
      labelNames: ['mode'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
  }

  /** Index gauges, read at scrape time. */
  attach(index: DecisionIndex): void {
    if (this.detach) return;
    const registers = [this.registry];
    new Gauge({
      name: 'rpa_access_index_ready', help: '1 when the decision index is loaded and the store answers', registers,
      collect() {
        this.set(index.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'rpa_access_index_last_sync_age_seconds', help: 'Seconds since the store last confirmed the index revisions', registers,
      collect() {
        this.set(index.lastSyncAgeSeconds);
      },
    });
    new Gauge({
      name: 'rpa_access_index_revision', help: 'Store revision of each tenant index', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        for (const f of index.freshness()) this.set({ tenant: f.tenant }, f.revision);
      },
    });
    new Gauge({
      name: 'rpa_access_index_age_seconds', help: 'Seconds since each tenant index was built (it is rebuilt only when the tenant changes)', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const f of index.freshness()) this.set({ tenant: f.tenant }, (now - f.loadedAt) / 1000);
      },
    });
    new Gauge({
      name: 'rpa_access_index_bindings', help: 'RoleBindings in each tenant index', labelNames: ['tenant'], registers,
      collect() {
        this.reset();
        for (const f of index.freshness()) this.set({ tenant: f.tenant }, f.bindings);
      },
    });
    this.detach = index.listen({
      reloaded: (e) => {
        this.reloads.inc({ result: 'ok', mode: e.mode });
        this.reloadDuration.observe({ mode: e.mode }, e.durationMs / 1000);
      },
      // A failed delta falls back to a full read; only a failed full read is reported here.
      failed: () => this.reloads.inc({ result: 'error', mode: 'full' }),
    });
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    let c = this.requestChildren.get(key);
    if (!c) {
      c = this.requests.labels(route, method, String(status));
      this.requestChildren.set(key, c);
    }
    c.inc();
    const dkey = `${route} ${method}`;
    let h = this.durationChildren.get(dkey);
    if (!h) {
      h = this.duration.labels(route, method);
      this.durationChildren.set(dkey, h);
    }
    h.observe(seconds);
  }

  login(result: 'ok' | 'provisioned' | 'refused' | 'invalid'): void {
    this.logins.labels(result).inc();
  }

  decision(allowed: boolean): void {
    (allowed ? this.allowed : this.denied).inc();
  }

  authFailure(mode: string): void {
    this.authFailures.inc({ mode });
  }

  close(): void {
    this.detach?.();
    this.registry.clear();
  }
}
