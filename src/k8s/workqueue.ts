/**
 * A rate-limited work queue of string keys, with the guarantees client-go's workqueue gives
 * controllers, plus the worker pool that Go gets from goroutines:
 *
 * - coalescing: adding a key that is already waiting does nothing; ten events on one object
 *   before a worker gets to it mean one reconcile, not ten;
 * - one at a time per key: a key being processed is never handed to a second worker; adding it
 *   meanwhile marks it dirty and it runs once more afterwards (so no change is missed);
 * - bounded parallelism across keys (`concurrency`);
 * - delayed adds (`addAfter`) and per-key exponential backoff (`addRateLimited` / `forget`);
 * - `shutDown()` stops taking work and waits for what is in flight;
 * - batches (`startBatches`): keys of one group (e.g. one tenant) waiting together are handed to
 *   one worker call, up to `maxSize`, after the group's first key has waited `windowMs` for
 *   others to join (a full batch goes at once). Every key keeps its own guarantees: one at a
 *   time, dirty re-runs, backoff.
 *
 * Pure TypeScript: no Kubernetes, no prom-client. Metrics hook in through `observer`
 * (see metrics.ts); `reconcileWorker` gives controller-runtime's result handling.
 */
import { exponentialDelay, type BackoffOptions } from './backoff.js';

/** Callbacks for metrics; all optional, all synchronous and cheap. */
export interface WorkQueueObserver {
  /** A key was accepted by add() (also counted when it coalesces, like client-go's adds_total). */
  onAdd?(key: string): void;
  /** Number of keys waiting (not counting those being processed). */
  onDepth?(depth: number): void;
  /** Seconds a key waited between being queued and being handed to a worker. */
  onQueueLatency?(seconds: number): void;
  /** Seconds a worker spent on a key. */
  onWorkDuration?(seconds: number): void;
  /** addRateLimited() was called. */
  onRetry?(key: string): void;
}

export interface WorkQueueOptions {
  /** For metrics and logs. */
  name?: string;
  /** Keys processed in parallel; default 1. */
  concurrency?: number;
  /** Per-key retry backoff; default 100 ms doubling up to 60 s. */
  rateLimit?: BackoffOptions;
  observer?: WorkQueueObserver;
  /** Called when a worker rejects (the queue itself never rethrows). */
  onError?: (key: string, err: unknown) => void;
  /** Monotonic clock in ms; injectable for tests. */
  now?: () => number;
}

export type Worker = (key: string) => Promise<void> | void;

/** Handles several keys in one call (see `startBatches`). */
export type BatchWorker = (keys: string[]) => Promise<void> | void;

export interface BatchOptions {
  /** The group a key batches with (a tenant); undefined: the key always goes alone. */
  groupOf(key: string): string | undefined;
  /** Keys in one batch at most. */
  maxSize: number;
  /** How long a group's oldest waiting key waits for others before a partial batch goes. */
  windowMs: number;
}

export interface ShutDownOptions {
  /** Also process the keys still waiting (not only those in flight). Default false. */
  drainQueued?: boolean;
}

/** Defaults chosen for an operator: quick first retry, never more than a minute apart. */
const DEFAULT_RATE_LIMIT: BackoffOptions = { baseMs: 100, capMs: 60_000, factor: 2 };

export class WorkQueue {
  readonly name: string;
  private readonly concurrency: number;
  private readonly rateLimit: BackoffOptions;
  private readonly observer: WorkQueueObserver;
  private readonly now: () => number;
  private readonly onError: (key: string, err: unknown) => void;

  /** Keys waiting for a worker; a Set keeps FIFO order and makes coalescing O(1). */
  private readonly waiting = new Set<string>();
  /** The same keys by batch group (a lone key is a group of its own), groups in FIFO order. */
  private readonly waitingByGroup = new Map<string, Set<string>>();
  /** When each waiting key was queued, for the queue-latency metric. */
  private readonly queuedAt = new Map<string, number>();
  /** Keys a worker is on right now. */
  private readonly processing = new Set<string>();
  /** Keys added while being processed: they go back to `waiting` when their worker finishes. */
  private readonly dirty = new Set<string>();
  /** Pending addAfter() timers, one per key (the earliest wins). */
  private readonly delayed = new Map<string, { at: number; timer: ReturnType<typeof setTimeout> }>();
  /** Consecutive addRateLimited() calls per key since its last forget(). */
  private readonly failures = new Map<string, number>();

  private worker: BatchWorker | undefined;
  private batch: BatchOptions | undefined;
  /** Worker calls running (each one key, or one batch). */
  private running = 0;
  /** The timer that hands out a batch whose window has passed. */
  private windowTimer: ReturnType<typeof setTimeout> | undefined;
  private pumpScheduled = false;
  private shuttingDown = false;
  private drainQueued = false;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? 'queue';
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
    this.rateLimit = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
    this.observer = opts.observer ?? {};
    this.now = opts.now ?? (() => performance.now());
    this.onError = opts.onError ?? (() => undefined);
  }

  /** Starts handing keys to `worker`, at most `concurrency` at once. Call once. */
  start(worker: Worker): void {
    this.startBatches((keys) => worker(keys[0]!), { groupOf: () => undefined, maxSize: 1, windowMs: 0 });
  }

  /**
   * Starts handing keys to `worker` in batches of one group, at most `concurrency` calls at once.
   * Call once (instead of `start`).
   */
  startBatches(worker: BatchWorker, batch: BatchOptions): void {
    if (this.worker) throw new Error(`work queue ${this.name} already started`);
    this.worker = worker;
    this.batch = { ...batch, maxSize: Math.max(1, Math.floor(batch.maxSize)), windowMs: Math.max(0, batch.windowMs) };
    // Keys added before the start were grouped without knowing the groups: group them now.
    this.waitingByGroup.clear();
    for (const key of this.waiting) this.addToGroup(key);
    this.schedulePump();
  }

  private groupKey(key: string): string {
    const group = this.batch && this.batch.maxSize > 1 ? this.batch.groupOf(key) : undefined;
    // A lone key gets a group no real group name can take.
    return group === undefined ? `\u0000${key}` : `g:${group}`;
  }

  private enqueueWaiting(key: string): void {
    this.waiting.add(key);
    this.queuedAt.set(key, this.now());
    this.addToGroup(key);
  }

  private addToGroup(key: string): void {
    const group = this.groupKey(key);
    const members = this.waitingByGroup.get(group);
    if (members) members.add(key);
    else this.waitingByGroup.set(group, new Set([key]));
  }

  private clearWaiting(): void {
    this.waiting.clear();
    this.waitingByGroup.clear();
    this.queuedAt.clear();
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
  }

  /** Queues the key unless it is already waiting; a key in flight is marked to run again. */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.observer.onAdd?.(key);
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.enqueueWaiting(key);
    this.observer.onDepth?.(this.waiting.size);
    this.schedulePump();
  }

  /** Queues the key after ms; if it already has a pending delayed add, the earlier one wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) return this.add(key);
    const at = this.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    // A pending retry alone must not keep the process alive (the informers' watches do that).
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** Queues the key after its own backoff delay, which doubles on each call until forget(). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.observer.onRetry?.(key);
    this.addAfter(key, exponentialDelay(n, this.rateLimit));
  }

  /**
   * Brings forward every key waiting out an error backoff (not the plain addAfter delays) and
   * returns how many: for when the cause they shared is gone, e.g. the store answers again.
   * Their failure counts stay, so a cause that comes back still backs off.
   */
  retryFailedNow(): number {
    let n = 0;
    for (const [key, pending] of [...this.delayed]) {
      if (!this.failures.has(key)) continue;
      clearTimeout(pending.timer);
      this.delayed.delete(key);
      this.add(key);
      n++;
    }
    return n;
  }

  /** Resets the key's backoff: call after it was processed successfully. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times the key was rate-limited since its last forget(). */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys waiting for a worker. */
  get depth(): number {
    return this.waiting.size;
  }

  /** Keys being processed right now (every key of a batch counts). */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys scheduled by addAfter/addRateLimited that are not due yet. */
  get pendingDelayed(): number {
    return this.delayed.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops accepting keys and cancels delayed adds, then resolves when no worker is busy any
   * more. By default keys still waiting are dropped (a new leader or the next start relists
   * and requeues everything anyway); `drainQueued` processes them first.
   */
  shutDown(opts: ShutDownOptions = {}): Promise<void> {
    this.shuttingDown = true;
    this.drainQueued = this.drainQueued || opts.drainQueued === true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.dirty.clear();
    if (!this.drainQueued || !this.worker) {
      this.clearWaiting();
      this.observer.onDepth?.(0);
    }
    return this.whenIdle();
  }

  /** Resolves when nothing is waiting (for a started queue) and nothing is in flight. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    const waitingCounts = this.worker !== undefined && this.waiting.size > 0;
    return this.processing.size === 0 && !waitingCounts && !this.pumpScheduled;
  }

  /**
   * Workers start from a microtask, never inside add(): an informer handler that adds a key
   * must not find itself running the reconcile synchronously, and adds made in one tick
   * coalesce before any worker looks.
   */
  private schedulePump(): void {
    if (this.pumpScheduled || !this.worker) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const worker = this.worker;
    if (!worker) return;
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    const now = this.now();
    let nextWindow = Infinity;
    for (const [group, members] of this.waitingByGroup) {
      if (this.running >= this.concurrency) break;
      if (this.shuttingDown && !this.drainQueued) break;
      const { maxSize, windowMs } = this.batch!;
      const oldest = members.values().next().value as string;
      const age = now - (this.queuedAt.get(oldest) ?? now);
      // A partial batch waits for its window, unless the queue is draining for a shutdown.
      if (members.size < maxSize && age < windowMs && !this.shuttingDown && !group.startsWith('\u0000')) {
        nextWindow = Math.min(nextWindow, windowMs - age);
        continue;
      }
      const keys: string[] = [];
      for (const key of members) {
        if (keys.length >= maxSize) break;
        keys.push(key);
      }
      for (const key of keys) {
        members.delete(key);
        this.waiting.delete(key);
        this.observer.onQueueLatency?.(Math.max(0, now - (this.queuedAt.get(key) ?? now)) / 1000);
        this.queuedAt.delete(key);
        this.processing.add(key);
      }
      // Still keys left: the group goes to the back, behind the groups that waited longer.
      this.waitingByGroup.delete(group);
      if (members.size > 0) this.waitingByGroup.set(group, members);
      this.running++;
      const started = this.now();
      this.observer.onDepth?.(this.waiting.size);
      // Promise.resolve().then: a worker that throws synchronously is handled like a rejection.
      void Promise.resolve()
        .then(() => worker(keys))
        .catch((err: unknown) => this.reportError(keys.join(','), err))
        .finally(() => this.done(keys, started));
    }
    if (nextWindow < Infinity && this.running < this.concurrency) {
      this.windowTimer = setTimeout(() => this.schedulePump(), Math.max(1, Math.ceil(nextWindow)));
      this.windowTimer.unref?.();
    }
    this.notifyIfIdle();
  }

  private done(keys: string[], started: number): void {
    this.observer.onWorkDuration?.(Math.max(0, this.now() - started) / 1000);
    this.running--;
    for (const key of keys) {
      this.processing.delete(key);
      if (this.dirty.delete(key) && !this.shuttingDown) {
        this.enqueueWaiting(key);
        this.observer.onDepth?.(this.waiting.size);
      }
    }
    this.pump();
  }

  private reportError(key: string, err: unknown): void {
    try {
      this.onError(key, err);
    } catch {
      // An error callback that throws must not wedge the key in `processing`.
    }
  }

  private notifyIfIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** What a reconcile asks for, as in controller-runtime's ctrl.Result. */
export interface ReconcileResult {
  /** Run again after the key's backoff delay (counts as a retry). */
  requeue?: boolean;
  /** Run again after this many ms (resets the backoff). */
  requeueAfterMs?: number;
}

export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after';

export interface ReconcileWorkerOptions {
  /** Called after every reconcile, e.g. to count metrics or log errors. */
  onResult?: (key: string, outcome: ReconcileOutcome, seconds: number, err?: unknown) => void;
  now?: () => number;
}

/** One key's outcome in a batch reconcile: its result, or the error to retry it with backoff. */
export type KeyOutcome = { result: ReconcileResult } | { error: unknown };

/** controller-runtime's result rules for one key; returns the outcome to report. */
function settle(queue: WorkQueue, key: string, outcome: KeyOutcome): ReconcileOutcome {
  if ('error' in outcome) {
    queue.addRateLimited(key);
    return 'error';
  }
  const result = outcome.result;
  if (result.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
    queue.forget(key);
    queue.addAfter(key, result.requeueAfterMs);
    return 'requeue_after';
  }
  if (result.requeue) {
    queue.addRateLimited(key);
    return 'requeue';
  }
  queue.forget(key);
  return 'success';
}

/**
 * Wraps a reconcile function into a queue worker with controller-runtime's rules:
 * error -> retry with the key's backoff; requeueAfterMs -> forget the backoff and run again
 * after that delay; requeue -> retry with backoff; otherwise forget the backoff.
 */
export function reconcileWorker(
  queue: WorkQueue,
  reconcile: (key: string) => Promise<ReconcileResult | void> | ReconcileResult | void,
  opts: ReconcileWorkerOptions = {},
): Worker {
  const now = opts.now ?? (() => performance.now());
  return async (key: string) => {
    const started = now();
    let outcome: KeyOutcome;
    try {
      outcome = { result: (await reconcile(key)) ?? {} };
    } catch (err) {
      outcome = { error: err };
    }
    const reported = settle(queue, key, outcome);
    opts.onResult?.(key, reported, Math.max(0, now() - started) / 1000, 'error' in outcome ? outcome.error : undefined);
  };
}

/**
 * The same rules for a batch worker (`startBatches`): `reconcile` answers for each key (a key it
 * does not answer for counts as done); when it throws, every key of the batch is retried.
 * The time reported for each key is the batch's.
 */
export function reconcileBatchWorker(
  queue: WorkQueue,
  reconcile: (keys: string[]) => Promise<Map<string, KeyOutcome>>,
  opts: ReconcileWorkerOptions = {},
): BatchWorker {
  const now = opts.now ?? (() => performance.now());
  return async (keys: string[]) => {
    const started = now();
    let outcomes: Map<string, KeyOutcome>;
    try {
      outcomes = await reconcile(keys);
    } catch (err) {
      outcomes = new Map(keys.map((k) => [k, { error: err }]));
    }
    const seconds = Math.max(0, now() - started) / 1000;
    for (const key of keys) {
      const outcome = outcomes.get(key) ?? { result: {} };
      const reported = settle(queue, key, outcome);
      opts.onResult?.(key, reported, seconds, 'error' in outcome ? outcome.error : undefined);
    }
  };
}
