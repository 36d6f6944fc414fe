/**
 * The decision index: one immutable TenantIndex per tenant, all loaded at start (a first check
 * never waits on the database), kept fresh from the store's change feed.
 *
 * - `store.watch` says "tenant T is now at revision R" (PostgreSQL: LISTEN/NOTIFY; SQLite: a
 *   change counter polled every 100 ms). The index then reads only what changed since its
 *   revision (`store.loadTenantChanges`) and derives the new TenantIndex from the old one
 *   (`withChanges`); the new index is swapped in with one Map assignment: a check sees the old
 *   index or the new one, never a mix.
 * - The whole tenant is read instead (`store.loadTenant`, then a fresh TenantIndex) at start,
 *   when the store cannot answer incrementally (history it did not record, a delta larger than
 *   `maxDeltaChanges`, a store without the method) and when the incremental path fails.
 * - Bursts coalesce: at most one reload per tenant is in flight; a change heard during a reload
 *   marks the tenant dirty and it is reloaded once more after. A failed reload is retried.
 * - A safety net polls `store.revisions()` (one small query) every few seconds: a notification
 *   lost by a broken listener is caught there, and its success is the proof that the store still
 *   answers, which readiness reports (the store's watch exposes no health of its own).
 */
import { TenantIndex } from '../model/engine.js';
import type { AccessStore } from '../store/store.js';
import { silentLogger, type Logger } from '../log.js';
import { sleep } from '../k8s/backoff.js';


export interface DecisionIndexOptions {
  logger?: Logger;
  /** Period of the `revisions()` safety net, also the liveness probe of the store. Default 5 s. */
  resyncIntervalMs?: number;
  /** Delay before retrying a failed load. Default 500 ms. */
  retryDelayMs?: number;
  /** Tenants loaded in parallel at start. Default 4. */
  loadConcurrency?: number;
  /**
   * Largest delta (object changes recorded since the index's revision) applied incrementally;
   * beyond it the tenant is read whole. Default: 1,000 or half the tenant's objects, the larger.
   * 0 turns incremental reloads off.
   */
  maxDeltaChanges?: number;
}

export interface TenantFreshness {
  tenant: string;
  /** Store revision the tenant's index was built from. */
  revision: number;
  /** When that index was swapped in (ms since the epoch). */
  loadedAt: number;
  bindings: number;
}

export interface ReloadEvent {
  tenant: string;
  revision: number;
  /** ms since the epoch when the new index became visible to checks. */
  at: number;
  durationMs: number;
  bindings: number;
  /** `delta`: derived from the previous index and the changes; `full`: the whole tenant read. */
  mode: 'delta' | 'full';
  /** Objects created, updated or deleted by a delta. */
  changes?: number;
}

export interface ReloadFailure {
  tenant: string;
  error: Error;
}

export interface IndexListener {
  reloaded?(e: ReloadEvent): void;
  failed?(e: ReloadFailure): void;
}

interface Slot {
  index: TenantIndex;
  loadedAt: number;
}

interface Reload {
  /** Set when a change arrives during the reload: reload once more after it. */
  again: boolean;
  done: Promise<void>;
}


function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class DecisionIndex {
  private readonly slots = new Map<string, Slot>();
  private readonly reloads = new Map<string, Reload>();
  private readonly listeners = new Set<IndexListener>();
  private readonly log: Logger;
  private readonly resyncIntervalMs: number;
  private readonly retryDelayMs: number;
  private readonly loadConcurrency: number;
  private readonly maxDeltaChanges: number | undefined;
  private stopWatch: (() => Promise<void>) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncing = false;
  private stopped = false;
  /** Aborted by stop(): retry naps end at once. */
  private readonly stopping = new AbortController();
  private storeFailing = false;
  private loaded = false;
  /** Last time the store answered `revisions()` (ms since the epoch). */
  private lastSyncAt = 0;
  private startedAt = 0;

  constructor(readonly store: AccessStore, options: DecisionIndexOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 5_000;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.loadConcurrency = Math.max(1, options.loadConcurrency ?? 4);
    this.maxDeltaChanges = options.maxDeltaChanges;
  }

  /**
   * Subscribes to the store's changes, then loads every tenant; resolves when all are loaded.
   * Subscribing first means no change committed during the initial load can be missed. Store
   * errors are retried until `stop()`; `start()` rejects only when stopped before it is ready.
   */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) throw new Error('decision index stopped before it was loaded');
      try {
        if (!this.stopWatch) this.stopWatch = await this.store.watch((tenant, revision) => this.changed(tenant, revision));
        await this.loadAll();
        break;
      } catch (err) {
        const delay = Math.min(this.retryDelayMs * 2 ** (attempt - 1), 10_000);
        this.log.warn({ err: asError(err), attempt, retryInMs: delay }, 'decision index: initial load failed, retrying');
        await sleep(delay, this.stopping.signal);
      }
    }
    if (this.stopped) throw new Error('decision index stopped before it was loaded');
    this.loaded = true;
    this.resyncTimer = setInterval(() => void this.resync(), this.resyncIntervalMs);
    this.resyncTimer.unref();
    this.log.info(
      { tenants: this.slots.size, bindings: this.bindingCount(), ms: Date.now() - this.startedAt },
      'decision index loaded',
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    const stop = this.stopWatch;
    this.stopWatch = undefined;
    await stop?.().catch(() => undefined);
    await Promise.allSettled([...this.reloads.values()].map((r) => r.done));
  }

  /** The index of a tenant; undefined when the store has never seen the tenant. */
  get(tenant: string): TenantIndex | undefined {
    return this.slots.get(tenant)?.index;
  }

  /** Initial load done. */
  get ready(): boolean {
    return this.loaded && !this.stopped;
  }

  /** Ready, subscribed to changes, and the store answered within the last three resync periods. */
  get healthy(): boolean {
    return this.ready && this.stopWatch !== undefined && Date.now() - this.lastSyncAt < 3 * this.resyncIntervalMs;
  }

  /** Seconds since the store last confirmed (or corrected) the index's revisions. */
  get lastSyncAgeSeconds(): number {
    return this.lastSyncAt === 0 ? Number.NaN : (Date.now() - this.lastSyncAt) / 1000;
  }

  tenants(): string[] {
    return [...this.slots.keys()].sort();
  }

  freshness(): TenantFreshness[] {
    return this.tenants().map((tenant) => {
      const s = this.slots.get(tenant)!;
      return { tenant, revision: s.index.revision, loadedAt: s.loadedAt, bindings: s.index.bindingCount };
    });
  }

  bindingCount(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.index.bindingCount;
    return n;
  }

  /** Subscribes to reloads (metrics, benchmarks); returns the unsubscribe function. */
  listen(listener: IndexListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the tenant's index is at `revision` or later (tests, benchmarks). */
  waitForRevision(tenant: string, revision: number, timeoutMs = 5_000): Promise<void> {
    if ((this.get(tenant)?.revision ?? -1) >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`tenant ${tenant} did not reach revision ${revision} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.listen({
        reloaded: (e) => {
          if (e.tenant === tenant && e.revision >= revision) {
            clearTimeout(timer);
            off();
            resolve();
          }
        },
      });
    });
  }

  /**
   * Brings `tenant` to `revision` now (a write this process made: a login answers only once its
   * own replica honours it), without waiting for the change feed; gives up quietly after
   * `timeoutMs` (the feed then catches up on its own).
   */
  async caughtUp(tenant: string, revision: number, timeoutMs = 2_000): Promise<void> {
    if ((this.get(tenant)?.revision ?? -1) >= revision) return;
    const reached = this.waitForRevision(tenant, revision, timeoutMs).catch(() => undefined);
    this.changed(tenant, revision);
    await reached;
  }

  /** The store says `tenant` is at `revision`. */
  private changed(tenant: string, revision: number): void {
    if (this.stopped) return;
    const have = this.slots.get(tenant);
    if (have && have.index.revision >= revision) return;
    this.reload(tenant).catch(() => undefined); // failures are logged and retried inside
  }

  /** Reloads a tenant, coalescing with a reload already in flight. */
  private reload(tenant: string): Promise<void> {
    const running = this.reloads.get(tenant);
    if (running) {
      running.again = true;
      return running.done;
    }
    const r: Reload = { again: true, done: Promise.resolve() };
    this.reloads.set(tenant, r);
    r.done = this.reloadLoop(tenant, r);
    return r.done;
  }

  private async reloadLoop(tenant: string, r: Reload): Promise<void> {
    try {
      await this.reloadUntilClean(tenant, r);
    } finally {
      // Synchronously with the loop's end: a change heard after this starts a new reload.
      this.reloads.delete(tenant);
    }
  }

  private async reloadUntilClean(tenant: string, r: Reload): Promise<void> {
    let failures = 0;
    while (r.again && !this.stopped) {
      r.again = false;
      const started = performance.now();
      try {
        const have = this.slots.get(tenant);
        const delta = have ? await this.deltaOf(tenant, have.index) : undefined;
        if (this.stopped) return;
        let index: TenantIndex;
        let changes: number | undefined;
        if (delta === 'current') {
          failures = 0;
          continue;
        } else if (delta) {
          index = delta.index;
          changes = delta.changes;
        } else {
          const snapshot = await this.store.loadTenant(tenant);
          if (this.stopped) return;
          if (!snapshot) {
            // Not (or no longer) in the store: nothing to decide from.
            this.slots.delete(tenant);
            failures = 0;
            continue;
          }
          const now = this.slots.get(tenant);
          if (now && now.index.revision >= snapshot.revision) {
            failures = 0;
            continue;
          }
          index = new TenantIndex(snapshot.state, snapshot.revision);
        }
        failures = 0;
        const at = Date.now();
        this.slots.set(tenant, { index, loadedAt: at });
        const event: ReloadEvent = {
          tenant, revision: index.revision, at, durationMs: performance.now() - started, bindings: index.bindingCount,
          mode: changes === undefined ? 'full' : 'delta', ...(changes === undefined ? {} : { changes }),
        };
        this.log.debug({ tenant, revision: event.revision, mode: event.mode, ms: Math.round(event.durationMs) }, 'tenant index reloaded');
        for (const l of this.listeners) l.reloaded?.(event);
      } catch (err) {
        const error = asError(err);
        failures++;
        this.log.error({ err: error, tenant, failures }, 'tenant index reload failed; keeping the previous index');
        for (const l of this.listeners) l.failed?.({ tenant, error });
        if (!this.loaded && failures >= 3) throw error; // the initial load retries as a whole
        await sleep(Math.min(this.retryDelayMs * 2 ** (failures - 1), 10_000), this.stopping.signal);
        r.again = true;
      }
    }
  }

  /**
   * The incremental path: the changes since `index`'s revision applied to it. `current` when the
   * store is at that revision; undefined when the tenant must be read whole (no incremental read,
   * a delta too large, unknown history, or any error on the way, which is logged).
   */
  private async deltaOf(tenant: string, index: TenantIndex): Promise<{ index: TenantIndex; changes: number } | 'current' | undefined> {
    const limit = this.maxDeltaChanges ?? Math.max(1_000, Math.floor(index.objectCount / 2));
    if (!this.store.loadTenantChanges || limit <= 0) return undefined;
    try {
      const delta = await this.store.loadTenantChanges(tenant, index.revision, { limit });
      if (!delta) return undefined;
      if (delta.revision <= index.revision) return 'current';
      return { index: index.withChanges(delta, delta.revision), changes: delta.upserts.length + delta.deletes.length };
    } catch (err) {
      this.log.warn({ err: asError(err), tenant, revision: index.revision }, 'incremental reload failed; reading the whole tenant');
      return undefined;
    }
  }

  private async loadAll(): Promise<void> {
    const revisions = await this.store.revisions();
    this.lastSyncAt = Date.now();
    const queue = [...revisions.keys()];
    const worker = async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        const have = this.slots.get(t);
        if (have && have.index.revision >= revisions.get(t)!) continue;
        await this.reload(t);
        if (!this.slots.has(t)) throw new Error(`tenant ${t} could not be loaded`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.loadConcurrency, queue.length) }, worker));
  }

  /** The safety net: compares every tenant's revision with the store's. */
  private async resync(): Promise<void> {
    if (this.resyncing || this.stopped) return;
    this.resyncing = true;
    try {
      const revisions = await this.store.revisions();
      this.lastSyncAt = Date.now();
      if (this.storeFailing) this.log.info({}, 'store answers again');
      this.storeFailing = false;
      for (const [tenant, revision] of revisions) {
        const have = this.slots.get(tenant);
        if (!have || have.index.revision < revision) {
          if (have) this.log.warn({ tenant, have: have.index.revision, store: revision }, 'change not notified; caught by the resync poll');
          this.reload(tenant).catch(() => undefined);
        }
      }
      for (const tenant of this.slots.keys()) if (!revisions.has(tenant)) this.reload(tenant).catch(() => undefined);
    } catch (err) {
      if (!this.storeFailing) this.log.error({ err: asError(err) }, 'store does not answer; decisions continue from the last loaded index');
      this.storeFailing = true;
    } finally {
      this.resyncing = false;
    }
  }
}
