// The controller runtime (src/k8s/) without a cluster: the work queue and the pure helpers
// (backoff, status conditions) first, then the Kubernetes-facing pieces driven by fakes
// (informer over a fake list/watch, event recorder and leader election over fake APIs,
// metrics + health server).
// No timing assumptions: workers are gated by deferred promises, delays run on jest's fake clock
// or are polled for with generous deadlines.
import { jest } from '@jest/globals';
import {
  ApiException,
  HttpMethod,
  KubeConfig,
  PatchStrategy,
  RequestContext,
  type EventsV1Event,
  type KubernetesObject,
  type V1Lease,
} from '@kubernetes/client-node';
import { Backoff, exponentialDelay, sleep, withJitter } from '../../src/k8s/backoff.js';
import { errorCode, MERGE_PATCH, requestOptions } from '../../src/k8s/client.js';
import { EventRecorder, objectReference, truncateUtf8, type EventRecorderOptions, type EventsApi } from '../../src/k8s/events.js';
import { HealthServer } from '../../src/k8s/health.js';
import { cacheKey, Informer, resourcePath, type InformerOptions, type ListFn, type WatchFn } from '../../src/k8s/informer.js';
import { LeaderElector, type LeaderElectorOptions, type LeaseApi } from '../../src/k8s/leader.js';
import { createRuntimeMetrics, leaderObserver, reconcileObserver, workQueueObserver } from '../../src/k8s/metrics.js';
import { setCondition, statusEqual, type Condition } from '../../src/k8s/status.js';
import { reconcileWorker, WorkQueue, type ReconcileOutcome, type WorkQueueObserver } from '../../src/k8s/workqueue.js';
import { recordingLogger } from '../support/logs.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every queued microtask and promise continuation run (setImmediate is not faked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A worker whose calls block until the test releases them; it records the order of calls and
 * checks that no key is ever processed twice at once.
 */
class GatedWorker {
  readonly calls: string[] = [];
  readonly gates = new Map<string, Deferred[]>();
  readonly active = new Set<string>();
  maxParallel = 0;
  overlaps: string[] = [];

  readonly fn = async (key: string): Promise<void> => {
    if (this.active.has(key)) this.overlaps.push(key);
    this.active.add(key);
    this.maxParallel = Math.max(this.maxParallel, this.active.size);
    this.calls.push(key);
    const gate = deferred();
    const list = this.gates.get(key) ?? [];
    list.push(gate);
    this.gates.set(key, list);
    try {
      await gate.promise;
    } finally {
      this.active.delete(key);
    }
  };

  release(key: string): void {
    const gate = this.gates.get(key)?.shift();
    if (!gate) throw new Error(`no pending call for ${key}`);
    gate.resolve();
  }

  fail(key: string, err: unknown): void {
    const gate = this.gates.get(key)?.shift();
    if (!gate) throw new Error(`no pending call for ${key}`);
    gate.reject(err);
  }
}

describe('WorkQueue', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('processes each added key once', async () => {
    const seen: string[] = [];
    const q = new WorkQueue();
    q.start((key) => {
      seen.push(key);
    });
    q.add('a');
    q.add('b');
    await q.whenIdle();
    expect(seen).toEqual(['a', 'b']);
  });

  it('coalesces duplicates of a waiting key', async () => {
    const seen: string[] = [];
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    expect(q.depth).toBe(2);
    q.start((key) => {
      seen.push(key);
    });
    await q.whenIdle();
    expect(seen).toEqual(['a', 'b']);
  });

  it('does not run the worker synchronously inside add()', async () => {
    const seen: string[] = [];
    const q = new WorkQueue();
    q.start((key) => {
      seen.push(key);
    });
    q.add('a');
    expect(seen).toEqual([]);
    await q.whenIdle();
    expect(seen).toEqual(['a']);
  });

  it('hands keys out in FIFO order', async () => {
    const seen: string[] = [];
    const q = new WorkQueue();
    for (const k of ['c', 'a', 'd', 'b']) q.add(k);
    q.start((key) => {
      seen.push(key);
    });
    await q.whenIdle();
    expect(seen).toEqual(['c', 'a', 'd', 'b']);
  });

  it('never processes one key twice at once and reruns a key added while in flight, once', async () => {
    const w = new GatedWorker();
    const q = new WorkQueue({ concurrency: 4 });
    q.start(w.fn);
    q.add('a');
    await settle();
    expect(w.calls).toEqual(['a']);

    // Three adds while 'a' is being processed: marked dirty, not started in parallel.
    q.add('a');
    q.add('a');
    q.add('a');
    await settle();
    expect(w.calls).toEqual(['a']);
    expect(q.depth).toBe(0);
    expect(q.inFlight).toBe(1);

    w.release('a');
    await settle();
    expect(w.calls).toEqual(['a', 'a']);

    w.release('a');
    await q.whenIdle();
    expect(w.calls).toEqual(['a', 'a']);
    expect(w.overlaps).toEqual([]);
  });

  it('bounds parallelism across keys by concurrency', async () => {
    const w = new GatedWorker();
    const q = new WorkQueue({ concurrency: 3 });
    q.start(w.fn);
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    for (const k of keys) q.add(k);
    await settle();
    expect(w.active.size).toBe(3);
    expect(q.depth).toBe(7);

    // Release in an order different from the start order, one at a time.
    const released = new Set<string>();
    while (released.size < keys.length) {
      const running = [...w.active];
      expect(running.length).toBeLessThanOrEqual(3);
      const key = running[running.length - 1]!;
      w.release(key);
      released.add(key);
      await settle();
    }
    await q.whenIdle();
    expect(w.maxParallel).toBe(3);
    expect([...w.calls].sort()).toEqual([...keys].sort());
  });

  it('keeps going after a worker rejects or throws, reporting the error', async () => {
    const errors: Array<[string, unknown]> = [];
    const seen: string[] = [];
    const q = new WorkQueue({ onError: (key, err) => errors.push([key, err]) });
    q.start((key) => {
      seen.push(key);
      if (key === 'sync') throw new Error('sync boom');
      if (key === 'async') return Promise.reject(new Error('async boom'));
    });
    q.add('sync');
    q.add('async');
    q.add('ok');
    await q.whenIdle();
    expect(seen).toEqual(['sync', 'async', 'ok']);
    expect(errors.map(([k, e]) => [k, (e as Error).message])).toEqual([
      ['sync', 'sync boom'],
      ['async', 'async boom'],
    ]);
    // The failed keys are not stuck as "in flight": they can run again.
    q.add('sync');
    await q.whenIdle();
    expect(seen).toEqual(['sync', 'async', 'ok', 'sync']);
  });

  it('survives an onError callback that throws', async () => {
    const seen: string[] = [];
    const q = new WorkQueue({
      onError: () => {
        throw new Error('bad logger');
      },
    });
    q.start((key) => {
      seen.push(key);
      throw new Error('boom');
    });
    q.add('a');
    await q.whenIdle();
    q.add('a');
    await q.whenIdle();
    expect(seen).toEqual(['a', 'a']);
  });

  it('refuses a second start()', () => {
    const q = new WorkQueue({ name: 'twice' });
    q.start(() => undefined);
    expect(() => q.start(() => undefined)).toThrow(/twice/);
  });

  describe('delays (fake clock)', () => {
    beforeEach(() => {
      jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    });

    it('addAfter queues the key only when the delay has passed', async () => {
      const seen: string[] = [];
      const q = new WorkQueue({ now: () => Date.now() });
      q.start((key) => {
        seen.push(key);
      });
      q.addAfter('a', 1_000);
      expect(q.pendingDelayed).toBe(1);
      await jest.advanceTimersByTimeAsync(999);
      expect(seen).toEqual([]);
      await jest.advanceTimersByTimeAsync(1);
      expect(seen).toEqual(['a']);
      expect(q.pendingDelayed).toBe(0);
    });

    it('addAfter keeps the earliest of two pending delays for one key', async () => {
      const seen: number[] = [];
      const q = new WorkQueue({ now: () => Date.now() });
      const t0 = Date.now();
      q.start(() => {
        seen.push(Date.now() - t0);
      });
      q.addAfter('a', 5_000);
      q.addAfter('a', 2_000); // earlier: replaces
      q.addAfter('a', 3_000); // later: ignored
      await jest.advanceTimersByTimeAsync(10_000);
      expect(seen).toEqual([2_000]);
    });

    it('addAfter with zero or a negative delay adds at once', async () => {
      const seen: string[] = [];
      const q = new WorkQueue({ now: () => Date.now() });
      q.start((key) => {
        seen.push(key);
      });
      q.addAfter('a', 0);
      q.addAfter('b', -5);
      await jest.advanceTimersByTimeAsync(0);
      expect(seen).toEqual(['a', 'b']);
    });

    it('addRateLimited backs off exponentially per key (100 ms doubling, 60 s cap) until forget()', async () => {
      const times: number[] = [];
      const q = new WorkQueue({ now: () => Date.now() });
      const t0 = Date.now();
      q.start(() => {
        times.push(Date.now() - t0);
      });
      const expected = [100, 200, 400, 800, 1_600];
      let at = 0;
      for (const delay of expected) {
        q.addRateLimited('a');
        await jest.advanceTimersByTimeAsync(delay);
        at += delay;
        expect(times[times.length - 1]).toBe(at);
      }
      expect(q.numRequeues('a')).toBe(5);
      // Another key has its own, fresh backoff.
      q.addRateLimited('b');
      await jest.advanceTimersByTimeAsync(100);
      expect(times).toHaveLength(6);
      expect(q.numRequeues('b')).toBe(1);

      q.forget('a');
      expect(q.numRequeues('a')).toBe(0);
      q.addRateLimited('a');
      await jest.advanceTimersByTimeAsync(99);
      expect(times).toHaveLength(6);
      await jest.advanceTimersByTimeAsync(1);
      expect(times).toHaveLength(7);
    });

    it('retryFailedNow brings forward the keys in error backoff, not plain delays, and keeps their counts', async () => {
      const seen: string[] = [];
      const q = new WorkQueue({ now: () => Date.now() });
      q.start((key) => {
        seen.push(key);
      });
      for (let i = 0; i < 6; i++) q.addRateLimited('failed'); // next try in 3.2 s
      q.addAfter('scheduled', 10_000); // a requeueAfter, not a failure
      expect(q.pendingDelayed).toBe(2);
      expect(q.retryFailedNow()).toBe(1);
      await jest.advanceTimersByTimeAsync(0);
      expect(seen).toEqual(['failed']);
      expect(q.pendingDelayed).toBe(1);
      expect(q.numRequeues('failed')).toBe(6);
      await jest.advanceTimersByTimeAsync(10_000);
      expect(seen).toEqual(['failed', 'scheduled']);
    });

    it('caps the backoff delay', async () => {
      const q = new WorkQueue({ now: () => Date.now(), rateLimit: { baseMs: 100, capMs: 1_000 } });
      let runs = 0;
      q.start(() => {
        runs++;
      });
      const delays: number[] = [];
      for (let i = 0; i < 7; i++) {
        const before = runs;
        q.addRateLimited('x');
        let waited = 0;
        while (runs === before) {
          await jest.advanceTimersByTimeAsync(50);
          waited += 50;
        }
        delays.push(waited);
      }
      expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    });

    it('reports queue latency and work duration to the observer', async () => {
      const latencies: number[] = [];
      const durations: number[] = [];
      const depths: number[] = [];
      const adds: string[] = [];
      const retries: string[] = [];
      const observer: WorkQueueObserver = {
        onAdd: (k) => adds.push(k),
        onDepth: (d) => depths.push(d),
        onQueueLatency: (s) => latencies.push(s),
        onWorkDuration: (s) => durations.push(s),
        onRetry: (k) => retries.push(k),
      };
      const q = new WorkQueue({ now: () => Date.now(), observer });
      q.add('a');
      q.add('a');
      q.add('b');
      expect(adds).toEqual(['a', 'a', 'b']);
      expect(depths).toEqual([1, 2]);
      await jest.advanceTimersByTimeAsync(250);
      q.start(async () => {
        await sleep(500);
      });
      await jest.advanceTimersByTimeAsync(1_000);
      await q.whenIdle();
      // 'a' waited 250 ms; 'b' waited 250 + 500 ms behind it (concurrency 1).
      expect(latencies).toEqual([0.25, 0.75]);
      expect(durations).toEqual([0.5, 0.5]);
      expect(depths.slice(2)).toEqual([1, 0]);
      q.addRateLimited('c');
      expect(retries).toEqual(['c']);
    });
  });

  describe('shutDown', () => {
    it('waits for work in flight, drops waiting keys and ignores later adds', async () => {
      const w = new GatedWorker();
      const q = new WorkQueue({ concurrency: 1 });
      q.start(w.fn);
      q.add('a');
      q.add('b');
      await settle();
      q.add('a'); // dirty: would rerun, but shutdown drops it

      let done = false;
      const shutdown = q.shutDown().then(() => (done = true));
      expect(q.isShuttingDown()).toBe(true);
      q.add('c');
      q.addAfter('d', 1);
      q.addRateLimited('e');
      await settle();
      expect(done).toBe(false);

      w.release('a');
      await shutdown;
      expect(w.calls).toEqual(['a']);
      expect(q.depth).toBe(0);
      expect(q.pendingDelayed).toBe(0);
    });

    it('with drainQueued, processes the keys still waiting first', async () => {
      const w = new GatedWorker();
      const q = new WorkQueue({ concurrency: 1 });
      q.start(w.fn);
      q.add('a');
      q.add('b');
      await settle();
      const shutdown = q.shutDown({ drainQueued: true });
      w.release('a');
      await settle();
      expect(w.calls).toEqual(['a', 'b']);
      w.release('b');
      await shutdown;
    });

    it('cancels pending delayed adds', async () => {
      jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
      const seen: string[] = [];
      const q = new WorkQueue({ now: () => Date.now() });
      q.start((key) => {
        seen.push(key);
      });
      q.addAfter('a', 1_000);
      q.addRateLimited('b');
      await q.shutDown();
      await jest.advanceTimersByTimeAsync(120_000);
      expect(seen).toEqual([]);
    });

    it('resolves at once for an idle or never started queue', async () => {
      const q = new WorkQueue();
      q.add('a');
      await q.shutDown();
      expect(q.depth).toBe(0);
    });
  });
});

describe('reconcileWorker', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  function setup(results: Record<string, Array<() => unknown>>) {
    const q = new WorkQueue({ now: () => Date.now() });
    const outcomes: Array<[string, ReconcileOutcome]> = [];
    const calls: string[] = [];
    q.start(
      reconcileWorker(
        q,
        async (key) => {
          calls.push(key);
          const next = results[key]?.shift();
          return next?.() as never;
        },
        { onResult: (key, outcome) => outcomes.push([key, outcome]), now: () => Date.now() },
      ),
    );
    return { q, outcomes, calls };
  }

  it('forgets the backoff of a key reconciled successfully', async () => {
    const { q, outcomes } = setup({ a: [() => undefined] });
    q.addRateLimited('a');
    q.addRateLimited('a'); // two failures recorded
    await jest.advanceTimersByTimeAsync(100);
    expect(outcomes).toEqual([['a', 'success']]);
    expect(q.numRequeues('a')).toBe(0);
  });

  it('retries an error with backoff, then succeeds', async () => {
    const boom = (): never => {
      throw new Error('boom');
    };
    const { q, outcomes, calls } = setup({ a: [boom, boom, () => ({})] });
    q.add('a');
    await jest.advanceTimersByTimeAsync(0);
    expect(outcomes).toEqual([['a', 'error']]);
    await jest.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1); // 100 ms
    expect(calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(199);
    expect(calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(1); // 200 ms
    expect(outcomes.map(([, o]) => o)).toEqual(['error', 'error', 'success']);
    expect(q.numRequeues('a')).toBe(0);
  });

  it('requeueAfterMs runs the key again after that delay, without backoff', async () => {
    const { q, outcomes, calls } = setup({ a: [() => ({ requeueAfterMs: 5_000 }), () => undefined] });
    q.addRateLimited('a'); // a failure before: requeue_after forgets it
    await jest.advanceTimersByTimeAsync(100);
    expect(outcomes).toEqual([['a', 'requeue_after']]);
    expect(q.numRequeues('a')).toBe(0);
    await jest.advanceTimersByTimeAsync(4_999);
    expect(calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(outcomes).toEqual([
      ['a', 'requeue_after'],
      ['a', 'success'],
    ]);
  });

  it('requeue runs the key again with backoff', async () => {
    const { q, outcomes } = setup({ a: [() => ({ requeue: true }), () => undefined] });
    q.add('a');
    await jest.advanceTimersByTimeAsync(0);
    expect(outcomes).toEqual([['a', 'requeue']]);
    expect(q.numRequeues('a')).toBe(1);
    await jest.advanceTimersByTimeAsync(100);
    expect(outcomes).toEqual([
      ['a', 'requeue'],
      ['a', 'success'],
    ]);
  });
});

describe('backoff helpers', () => {
  it('exponentialDelay doubles from the base and stops at the cap', () => {
    const opts = { baseMs: 100, capMs: 60_000 };
    expect([0, 1, 2, 3].map((n) => exponentialDelay(n, opts))).toEqual([100, 200, 400, 800]);
    expect(exponentialDelay(9, opts)).toBe(51_200);
    expect(exponentialDelay(10, opts)).toBe(60_000);
    expect(exponentialDelay(10_000, opts)).toBe(60_000);
    expect(exponentialDelay(-3, opts)).toBe(100);
    expect(exponentialDelay(2, { baseMs: 10, capMs: 1_000, factor: 3 })).toBe(90);
  });

  it('withJitter adds at most the given fraction', () => {
    expect(withJitter(1_000, 0.5, () => 0)).toBe(1_000);
    expect(withJitter(1_000, 0.5, () => 0.999)).toBeCloseTo(1_499.5);
    expect(withJitter(1_000, 0, () => 0.9)).toBe(1_000);
  });

  it('Backoff grows on next() and starts over after reset()', () => {
    const b = new Backoff({ baseMs: 800, capMs: 30_000, jitter: 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([800, 1_600, 3_200]);
    expect(b.attempts).toBe(3);
    b.reset();
    expect(b.next()).toBe(800);
  });

  it('sleep wakes up early when its signal aborts', async () => {
    const ctrl = new AbortController();
    const started = Date.now();
    const slept = sleep(60_000, ctrl.signal);
    ctrl.abort();
    await slept;
    expect(Date.now() - started).toBeLessThan(5_000);
    await sleep(10, ctrl.signal); // already aborted: immediate
  });
});

describe('status conditions', () => {
  const t1 = new Date('2024-01-01T00:00:00Z');
  const t2 = new Date('2024-01-02T00:00:00Z');

  it('adds a condition with lastTransitionTime = now', () => {
    const out = setCondition([], { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', observedGeneration: 1 }, t1);
    expect(out).toEqual([
      { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', observedGeneration: 1, lastTransitionTime: '2024-01-01T00:00:00Z' },
    ]);
  });

  it('keeps lastTransitionTime when the status does not change, even if reason or message do', () => {
    const before = setCondition([], { type: 'Ready', status: 'False', reason: 'RoleNotFound', message: 'a' }, t1);
    const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'GroupNotFound', message: 'b' }, t2);
    expect(after[0]).toMatchObject({ reason: 'GroupNotFound', message: 'b', lastTransitionTime: '2024-01-01T00:00:00Z' });
    const flipped = setCondition(after, { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok' }, t2);
    expect(flipped[0]!.lastTransitionTime).toBe('2024-01-02T00:00:00Z');
  });

  it('leaves other conditions and the input array alone', () => {
    const input: Condition[] = [
      { type: 'Other', status: 'True', reason: 'X', message: '', lastTransitionTime: '2020-01-01T00:00:00Z' },
    ];
    const out = setCondition(input, { type: 'Ready', status: 'True', reason: 'Applied', message: '' }, t1);
    expect(input).toHaveLength(1);
    expect(out.map((c) => c.type)).toEqual(['Other', 'Ready']);
  });

  it('statusEqual ignores lastTransitionTime and condition order, nothing else', () => {
    const a = { observedGeneration: 2, conditions: [
      { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', lastTransitionTime: '2024-01-01T00:00:00Z' },
      { type: 'Synced', status: 'True', reason: 'Done', message: '' },
    ] };
    const b = { observedGeneration: 2, conditions: [
      { type: 'Synced', status: 'True', reason: 'Done', message: '', lastTransitionTime: '2030-01-01T00:00:00Z' },
      { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', lastTransitionTime: '2025-05-05T00:00:00Z' },
    ] };
    expect(statusEqual(a, b)).toBe(true);
    expect(statusEqual(a, { ...b, observedGeneration: 3 })).toBe(false);
    expect(statusEqual(a, { ...b, conditions: [b.conditions[1]!] })).toBe(false);
    expect(statusEqual(a, { ...b, conditions: [{ ...b.conditions[0]!, message: 'x' }, b.conditions[1]!] })).toBe(false);
    expect(statusEqual(undefined, {})).toBe(true);
    expect(statusEqual(undefined, { conditions: [] })).toBe(true);
    expect(statusEqual({ extra: { n: 1 } }, { extra: { n: 1 } })).toBe(true);
    expect(statusEqual({ extra: { n: 1 } }, { extra: { n: 2 } })).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// The Kubernetes-facing pieces, driven by fakes (the real API server is in test/e2e/runtime.test.ts).
// ---------------------------------------------------------------------------------------------

interface Obj extends KubernetesObject {
  spec?: { v?: number };
}

function obj(name: string, rv: string, extra: Partial<Obj> = {}, namespace = 'ns'): Obj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, resourceVersion: rv }, ...extra };
}

/** Polls a condition on real timers (small delays only). */
async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface FakeWatchCall {
  query: Record<string, unknown>;
  onEvent: (type: string, obj: unknown) => void;
  onDone: (err: unknown) => void;
  aborted: boolean;
}

/** A fake API server collection: list answers from `items`, watches are driven by the test. */
class FakeCollection {
  items: Obj[] = [];
  resourceVersion = '10';
  pageSize: number | undefined;
  listCalls = 0;
  listError: unknown;
  readonly watches: FakeWatchCall[] = [];

  readonly list: ListFn<Obj> = async ({ limit, continue: cont }) => {
    this.listCalls++;
    if (this.listError) {
      const err = this.listError;
      this.listError = undefined;
      throw err;
    }
    this.pageSize = limit;
    const start = cont ? Number(cont) : 0;
    const size = limit ?? this.items.length;
    const page = this.items.slice(start, start + size).map((o) => structuredClone(o));
    const next = start + size < this.items.length ? String(start + size) : undefined;
    return { items: page, metadata: { resourceVersion: this.resourceVersion, continue: next } };
  };

  readonly watch: WatchFn = async (_path, query, onEvent, onDone) => {
    const call: FakeWatchCall = { query, onEvent, onDone, aborted: false };
    this.watches.push(call);
    return { abort: () => (call.aborted = true) };
  };

  get current(): FakeWatchCall {
    const w = this.watches[this.watches.length - 1];
    if (!w) throw new Error('no watch yet');
    return w;
  }
}

function fakeInformer(src: FakeCollection, extra: Partial<InformerOptions<Obj>> = {}): Informer<Obj> {
  return new Informer<Obj>({
    kc: new KubeConfig(),
    path: '/api/v1/configmaps',
    list: src.list,
    watch: src.watch,
    backoff: { baseMs: 5, capMs: 20, jitter: 0 },
    resyncPeriodMs: 0,
    ...extra,
  });
}

describe('Informer (fake API server)', () => {
  let informers: Array<Informer<Obj>> = [];
  function track(inf: Informer<Obj>): Informer<Obj> {
    informers.push(inf);
    return inf;
  }
  afterEach(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    informers = [];
  });

  it('lists page by page, reports adds, then watches from the list resourceVersion with bookmarks and a jittered timeout', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1'), obj('b', '2'), obj('c', '3', {}, 'other'), obj('d', '4')];
    src.items[0]!.metadata!.managedFields = [{ manager: 'kubectl' }];
    const inf = track(fakeInformer(src, { pageSize: 3, watchTimeoutSeconds: 100 }));
    const events: string[] = [];
    inf.on((e, o) => events.push(`${e}:${o.metadata!.name}`));
    expect(inf.hasSynced()).toBe(false);
    inf.start();
    expect(await inf.waitForSync({ timeoutMs: 2_000 })).toBe(true);
    expect(src.pageSize).toBe(3);
    expect(src.listCalls).toBe(2);
    expect(events).toEqual(['add:a', 'add:b', 'add:c', 'add:d']);
    expect(inf.list().map((o) => o.metadata!.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(inf.list('other').map((o) => o.metadata!.name)).toEqual(['c']);
    expect(inf.get('ns', 'a')?.metadata?.managedFields).toBeUndefined();
    expect(inf.get('other', 'a')).toBeUndefined();

    await until('a watch', () => src.watches.length === 1);
    const q = src.current.query;
    expect(q).toMatchObject({ resourceVersion: '10', allowWatchBookmarks: true });
    expect(q.timeoutSeconds).toBeGreaterThanOrEqual(100);
    expect(q.timeoutSeconds).toBeLessThanOrEqual(200);
  });

  it('applies watch events to the cache and tells handlers, with the old object on update and delete', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1', { spec: { v: 1 } })];
    const inf = track(fakeInformer(src));
    const events: Array<[string, string, number | undefined, number | undefined]> = [];
    inf.on((e, o, old) => events.push([e, o.metadata!.name!, o.spec?.v, old?.spec?.v]));
    inf.start();
    await until('a watch', () => src.watches.length === 1);

    src.current.onEvent('ADDED', obj('b', '11', { spec: { v: 1 } }));
    src.current.onEvent('MODIFIED', obj('a', '12', { spec: { v: 2 } }));
    src.current.onEvent('DELETED', obj('b', '13', { spec: { v: 1 } }));
    src.current.onEvent('BOOKMARK', { kind: 'ConfigMap', metadata: { resourceVersion: '20' } });
    expect(events).toEqual([
      ['add', 'a', 1, undefined],
      ['add', 'b', 1, undefined],
      ['update', 'a', 2, 1],
      ['delete', 'b', 1, 1],
    ]);
    expect(inf.get('ns', 'a')?.spec?.v).toBe(2);
    expect(inf.get('ns', 'b')).toBeUndefined();
    expect(inf.lastSyncResourceVersion).toBe('20');
  });

  it('resumes a watch that ended from the last resourceVersion seen, without relisting', async () => {
    const src = new FakeCollection();
    const inf = track(fakeInformer(src));
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    src.current.onEvent('ADDED', obj('a', '15'));
    src.current.onEvent('BOOKMARK', { metadata: { resourceVersion: '17' } });
    // Let the watch count as healthy (it lasted a while) before the server closes it.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    src.current.onDone(null);
    await until('a second watch', () => src.watches.length === 2);
    expect(src.current.query.resourceVersion).toBe('17');
    expect(src.listCalls).toBe(1);
  });

  it('relists on 410 Gone, as an ERROR event or as an HTTP status, and reports only the difference', async () => {
    const src = new FakeCollection();
    src.items = [obj('keep', '1'), obj('change', '2', { spec: { v: 1 } }), obj('vanish', '3')];
    const inf = track(fakeInformer(src));
    const events: string[] = [];
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    inf.on((e, o, old) => events.push(`${e}:${o.metadata!.name}${old ? `<-${old.metadata!.resourceVersion}` : ''}`));
    events.length = 0; // drop the replay of the cache to the late handler

    // While the watch was away: one changed, one vanished, one appeared.
    src.items = [obj('keep', '1'), obj('change', '5', { spec: { v: 2 } }), obj('new', '6')];
    src.resourceVersion = '30';
    src.current.onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    expect(src.watches[0]!.aborted).toBe(true);
    await until('a watch after the relist', () => src.watches.length === 2);
    expect(src.listCalls).toBe(2);
    expect(events.sort()).toEqual(['add:new', 'delete:vanish<-3', 'update:change<-2']);
    expect(src.current.query.resourceVersion).toBe('30');

    // The same through an HTTP 410 answer to the watch request.
    src.resourceVersion = '40';
    src.current.onDone(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await until('a watch after the second relist', () => src.watches.length === 3);
    expect(src.listCalls).toBe(3);
    expect(src.current.query.resourceVersion).toBe('40');
  });

  it('retries other watch and list errors with backoff, resuming from the same resourceVersion', async () => {
    const src = new FakeCollection();
    const { log, at } = recordingLogger();
    src.listError = new Error('connection refused');
    const inf = track(fakeInformer(src, { log }));
    inf.start();
    expect(await inf.waitForSync({ timeoutMs: 2_000 })).toBe(true);
    expect(src.listCalls).toBe(2);
    await until('a watch', () => src.watches.length === 1);
    src.current.onEvent('ADDED', obj('a', '12'));
    src.current.onDone(new Error('socket hang up'));
    await until('a second watch', () => src.watches.length === 2);
    src.current.onEvent('ERROR', { kind: 'Status', code: 500, message: 'internal error' });
    await until('a third watch', () => src.watches.length === 3);
    expect(src.current.query.resourceVersion).toBe('12');
    expect(src.listCalls).toBe(2);
    expect(at('warn').map((r) => JSON.stringify(r)).join('\n')).toMatch(/connection refused[\s\S]*socket hang up[\s\S]*internal error/);
  });

  it('treats a watch that closes at once without events as a failure (no hot loop)', async () => {
    const src = new FakeCollection();
    const inf = track(fakeInformer(src, { backoff: { baseMs: 200, capMs: 200, jitter: 0 } }));
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    src.current.onDone(null);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(src.watches).toHaveLength(1);
    await until('a second watch', () => src.watches.length === 2);
  });

  it('relists periodically, reporting changes only (or everything with resyncUnchanged)', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1'), obj('b', '2')];
    const quiet = track(fakeInformer(src, { resyncPeriodMs: 30 }));
    const loud = track(fakeInformer(src, { resyncPeriodMs: 30, resyncUnchanged: true }));
    const quietEvents: string[] = [];
    const loudEvents: string[] = [];
    quiet.on((e, o) => quietEvents.push(`${e}:${o.metadata!.name}`));
    loud.on((e, o) => loudEvents.push(`${e}:${o.metadata!.name}`));
    quiet.start();
    loud.start();
    await until('several relists', () => src.listCalls >= 6);
    expect(quietEvents).toEqual(['add:a', 'add:b']);
    expect(loudEvents.slice(0, 4)).toEqual(['add:a', 'add:b', 'update:a', 'update:b']);
    src.items = [obj('a', '1'), obj('b', '3')];
    await until('the change', () => quietEvents.length === 3);
    expect(quietEvents[2]).toBe('update:b');
  });

  it('survives a throwing handler and replays the cache to a late handler', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1')];
    const inf = track(fakeInformer(src));
    const seen: string[] = [];
    inf.on(() => {
      throw new Error('handler bug');
    });
    inf.onAdd((o) => seen.push(`first:${o.metadata!.name}`));
    inf.start();
    await inf.waitForSync();
    const late: string[] = [];
    const off = inf.onAdd((o) => late.push(o.metadata!.name!));
    expect(late).toEqual(['a']);
    off();
    await until('a watch', () => src.watches.length === 1);
    src.current.onEvent('ADDED', obj('b', '11'));
    expect(seen).toEqual(['first:a', 'first:b']);
    expect(late).toEqual(['a']);
  });

  it('stop() ends the watch and the loop; waitForSync answers false when stopped before sync', async () => {
    const src = new FakeCollection();
    src.listError = new Error('down');
    const inf = fakeInformer(src, { backoff: { baseMs: 60_000, capMs: 60_000, jitter: 0 } });
    inf.start();
    const synced = inf.waitForSync();
    await until('the failed list', () => src.listCalls === 1);
    await inf.stop(); // also wakes the 60 s backoff sleep at once
    expect(await synced).toBe(false);
    expect(() => inf.start()).toThrow(/stopped/);

    const src2 = new FakeCollection();
    const inf2 = fakeInformer(src2);
    inf2.start();
    await until('a watch', () => src2.watches.length === 1);
    await inf2.stop();
    expect(src2.current.aborted).toBe(true);
    expect(await inf2.waitForSync({ timeoutMs: 10 })).toBe(true);
  });

  it('resourcePath and cacheKey name core and custom resources', () => {
    expect(resourcePath({ group: '', version: 'v1', plural: 'namespaces' })).toBe('/api/v1/namespaces');
    expect(resourcePath({ group: 'rpa-access.io', version: 'v1alpha1', plural: 'users' })).toBe('/apis/rpa-access.io/v1alpha1/users');
    expect(resourcePath({ group: 'rpa-access.io', version: 'v1alpha1', plural: 'users', namespace: 'fin' })).toBe(
      '/apis/rpa-access.io/v1alpha1/namespaces/fin/users',
    );
    expect(cacheKey({ metadata: { name: 'fin' } })).toBe('fin');
    expect(cacheKey({ metadata: { name: 'u', namespace: 'fin' } })).toBe('fin/u');
  });
});

/** A fake events.k8s.io API recording what the recorder sends. */
class FakeEventsApi {
  readonly created: EventsV1Event[] = [];
  readonly patches: Array<{ name: string; body: unknown; contentType: unknown }> = [];
  failCreate = false;
  patchNotFound = false;

  createNamespacedEvent = async (p: { namespace: string; body: EventsV1Event }): Promise<EventsV1Event> => {
    if (this.failCreate) throw new ApiException(403, 'forbidden', { message: 'nope' }, {});
    this.created.push(JSON.parse(JSON.stringify(p.body)) as EventsV1Event);
    return p.body;
  };

  patchNamespacedEvent = async (p: { name: string; body: unknown }, options?: { middleware?: unknown[] }): Promise<EventsV1Event> => {
    if (this.patchNotFound) {
      this.patchNotFound = false;
      throw new ApiException(404, 'not found', {}, {});
    }
    this.patches.push({ name: p.name, body: JSON.parse(JSON.stringify(p.body)), contentType: options?.middleware?.length });
    return {} as EventsV1Event;
  };
}

describe('EventRecorder (fake API)', () => {
  const widget = { apiVersion: 'rpa-access.io/v1alpha1', kind: 'User', metadata: { name: 'jo', namespace: 'fin', uid: 'u1', resourceVersion: '7' } };

  function recorder(api: FakeEventsApi, now: () => number, extra: Partial<EventRecorderOptions> = {}): EventRecorder {
    return new EventRecorder({ api: api as unknown as EventsApi, reportingInstance: 'op-0', flushIntervalMs: 1_000, now, ...extra });
  }

  it('creates an event with regarding, reporting fields and a MicroTime eventTime', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.parse('2024-05-01T10:00:00.123Z'));
    r.record(widget, 'Warning', 'GroupNotFound', 'Apply', 'Group "ops" does not exist');
    await r.flush();
    expect(api.created).toHaveLength(1);
    expect(api.created[0]).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: 'fin' },
      eventTime: '2024-05-01T10:00:00.123000Z',
      regarding: { apiVersion: 'rpa-access.io/v1alpha1', kind: 'User', name: 'jo', namespace: 'fin', uid: 'u1', resourceVersion: '7' },
      type: 'Warning',
      reason: 'GroupNotFound',
      action: 'Apply',
      note: 'Group "ops" does not exist',
      reportingController: 'rpa-access.io/operator',
      reportingInstance: 'op-0',
    });
    expect(api.created[0]!.metadata!.name).toMatch(/^jo\.[0-9a-f]+$/);
  });

  it('counts identical events in a series, patched at most once per flush interval', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    try {
      const api = new FakeEventsApi();
      const r = recorder(api, () => Date.now());
      for (let i = 0; i < 5; i++) r.record(widget, 'Warning', 'Refused', 'Apply', 'same');
      await jest.advanceTimersByTimeAsync(0);
      expect(api.created).toHaveLength(1);
      expect(api.patches).toHaveLength(0);
      await jest.advanceTimersByTimeAsync(1_000);
      expect(api.patches).toHaveLength(1);
      expect(api.patches[0]!.body).toMatchObject({ series: { count: 5 } });
      expect(api.patches[0]!.name).toBe(api.created[0]!.metadata!.name);
      expect(api.patches[0]!.contentType).toBe(1); // the merge-patch Content-Type middleware

      r.record(widget, 'Warning', 'Refused', 'Apply', 'same');
      await jest.advanceTimersByTimeAsync(999);
      expect(api.patches).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(api.patches.map((p) => (p.body as { series: { count: number } }).series.count)).toEqual([5, 6]);

      // A different note is a different event; so is the same one after the series window.
      r.record(widget, 'Warning', 'Refused', 'Apply', 'other');
      await jest.advanceTimersByTimeAsync(7 * 60_000);
      r.record(widget, 'Warning', 'Refused', 'Apply', 'same');
      await r.flush();
      expect(api.created.map((e) => e.note)).toEqual(['same', 'other', 'same']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('starts a new event when the old one is gone', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.now(), { flushIntervalMs: 0 });
    r.record(widget, 'Normal', 'Applied', 'Apply', 'ok');
    await r.flush();
    api.patchNotFound = true;
    r.record(widget, 'Normal', 'Applied', 'Apply', 'ok');
    await r.flush();
    expect(api.created).toHaveLength(2);
    expect(api.created[1]!.series).toMatchObject({ count: 2 });
  });

  it('truncates the note to 1024 bytes of UTF-8 and never throws into the caller', async () => {
    const api = new FakeEventsApi();
    const { log, at } = recordingLogger();
    const r = recorder(api, () => Date.now(), { log });
    r.record(widget, 'Normal', 'Long', 'Apply', 'é'.repeat(2_000));
    await r.flush();
    const note = api.created[0]!.note!;
    expect(Buffer.byteLength(note, 'utf8')).toBeLessThanOrEqual(1024);
    expect(note.endsWith('…')).toBe(true);
    expect(truncateUtf8('short', 1024)).toBe('short');

    api.failCreate = true;
    expect(() => r.record(widget, 'Warning', 'X', 'Y', 'z')).not.toThrow();
    await r.close();
    expect(at('warn').map((r) => r.msg)).toEqual(['could not create event']);
    r.record(widget, 'Warning', 'Closed', 'Y', 'ignored');
    expect(api.created).toHaveLength(1);
  });

  it('queues writes behind a few writers, drops (counted, logged once) when the queue is full, and never blocks the caller', async () => {
    const api = new FakeEventsApi();
    let inFlight = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    const create = api.createNamespacedEvent;
    api.createNamespacedEvent = async (p) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight--;
      return create(p);
    };
    const { log, at } = recordingLogger();
    let drops = 0;
    const r = recorder(api, () => Date.now(), { maxInFlight: 2, maxQueued: 3, log, onDrop: () => drops++ });
    // Seven different events at once: 2 sent, 3 queued, 2 dropped; record() returns at once each time.
    for (let i = 0; i < 7; i++) expect(r.record(widget, 'Normal', 'Applied', 'Apply', `change ${i}`)).toBeUndefined();
    await new Promise((resolve) => setImmediate(resolve));
    expect(most).toBe(2);
    expect(r.dropped).toBe(2);
    expect(drops).toBe(2);
    expect(r.backlog).toBe(5);
    expect(at('warn').map((r) => r.msg)).toEqual(['event write queue full: dropping events (the API server is slow or unreachable)']);
    while (api.created.length < 5) {
      gates.splice(0).forEach((open) => open());
      await new Promise((resolve) => setImmediate(resolve));
    }
    await r.flush();
    expect(most).toBe(2);
    expect(api.created.map((e) => e.note)).toEqual(['change 0', 'change 1', 'change 2', 'change 3', 'change 4']);
    // A dropped event is not remembered as a series: its next occurrence is created.
    r.record(widget, 'Normal', 'Applied', 'Apply', 'change 6');
    while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
    gates.splice(0).forEach((open) => open());
    await r.flush();
    expect(api.created.map((e) => e.note)).toContain('change 6');
    expect(api.patches).toHaveLength(0);
  });

  it('a repeat of the same reason and note for the same object patches the existing Event, never creates another', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.now(), { flushIntervalMs: 0 });
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'refused');
    await r.flush();
    r.record({ ...widget, metadata: { ...widget.metadata, resourceVersion: '8' } }, 'Warning', 'SingleOwner', 'Apply', 'refused');
    await r.flush();
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'refused');
    await r.flush();
    expect(api.created).toHaveLength(1);
    expect(api.patches.map((p) => [p.name, (p.body as { series: { count: number } }).series.count])).toEqual([
      [api.created[0]!.metadata!.name, 2],
      [api.created[0]!.metadata!.name, 3],
    ]);
  });

  it('puts events about cluster-scoped objects in kube-system', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.now());
    r.record({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fin', uid: 'n1' } }, 'Normal', 'TenantReady', 'Bootstrap', 'ok');
    await r.flush();
    expect(api.created[0]!.metadata!.namespace).toBe('kube-system');
    expect(objectReference({ kind: 'Namespace', metadata: { name: 'fin' } })).toEqual({ kind: 'Namespace', name: 'fin' });
  });
});

describe('metrics and the health server', () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function get(path: string): Promise<{ status: number; body: string; type: string | null }> {
    const res = await fetch(`http://127.0.0.1:${server!.port}${path}`);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  }

  it('serves /healthz, /readyz with named checks, and controller-runtime metrics on /metrics', async () => {
    const metrics = createRuntimeMetrics({ defaultMetrics: false });
    const q = new WorkQueue({ name: 'users', observer: workQueueObserver(metrics, 'users') });
    let calls = 0;
    let badAttempts = 0;
    q.start(
      reconcileWorker(
        q,
        async (key) => {
          calls++;
          if (key === 'bad' && ++badAttempts === 1) throw new Error('boom');
          return key === 'later' ? { requeueAfterMs: 60_000 } : undefined;
        },
        { onResult: reconcileObserver(metrics, 'user') },
      ),
    );
    q.add('good');
    q.add('later');
    q.add('bad');
    await until('the retry of bad', () => calls >= 4, 3_000);
    await q.shutDown();
    const setLeader = leaderObserver(metrics, 'rpa-access-operator');
    setLeader(true);

    let ready = false;
    server = new HealthServer({ port: 0, host: '127.0.0.1', registry: metrics.registry, checkTimeoutMs: 200 });
    server.addReadyCheck('informers-synced', () => ready);
    server.addReadyCheck('store', async () => undefined);
    const port = await server.listen();
    expect(port).toBeGreaterThan(0);

    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('[-]informers-synced failed: not ready');
    expect(notReady.body).not.toContain('store');
    ready = true;
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await get('/readyz?verbose')).body).toBe('[+]informers-synced ok\n[+]store ok\nok\n');

    server.addReadyCheck('slow', () => new Promise(() => undefined));
    server.addHealthCheck('throws', () => {
      throw new Error('wedged');
    });
    expect((await get('/readyz')).body).toContain('[-]slow failed: no answer within 200 ms');
    expect(await get('/healthz')).toMatchObject({ status: 503, body: '[-]throws failed: wedged\n' });

    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toContain('text/plain');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="success"} 2');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="error"} 1');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="requeue_after"} 1');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="requeue"} 0');
    expect(m.body).toContain('controller_runtime_reconcile_errors_total{controller="user"} 1');
    expect(m.body).toContain('controller_runtime_reconcile_time_seconds_count{controller="user"} 4');
    expect(m.body).toContain('workqueue_adds_total{name="users"} 4');
    expect(m.body).toContain('workqueue_retries_total{name="users"} 1');
    expect(m.body).toContain('workqueue_depth{name="users"} 0');
    expect(m.body).toContain('workqueue_queue_duration_seconds_count{name="users"} 4');
    expect(m.body).toContain('workqueue_work_duration_seconds_count{name="users"} 4');
    expect(m.body).toContain('leader_election_master_status{name="rpa-access-operator"} 1');

    expect((await get('/nope')).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${port}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('includes process metrics by default', async () => {
    const metrics = createRuntimeMetrics();
    const text = await metrics.registry.metrics();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});

describe('request options for client-node 1.4', () => {
  it('adds a Content-Type middleware and an abort-signal middleware, appended to the configured ones', async () => {
    const signal = new AbortController().signal;
    const opts = requestOptions({ contentType: PatchStrategy.MergePatch, signal });
    expect(opts.middlewareMergeStrategy).toBe('append');
    expect(opts.middleware).toHaveLength(2);
    const ctx = new RequestContext('https://example.invalid/apis', HttpMethod.PATCH);
    for (const mw of opts.middleware!) await mw.pre(ctx).toPromise();
    expect(ctx.getHeaders()['Content-Type']).toBe('application/merge-patch+json');
    expect(ctx.getSignal()).toBe(signal);
    expect(MERGE_PATCH.middleware).toHaveLength(1);
  });

  it('errorCode reads ApiException, watch errors and Status bodies', () => {
    expect(errorCode(new ApiException(409, 'conflict', {}, {}))).toBe(409);
    expect(errorCode(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(410);
    expect(errorCode({ body: { code: 404 } })).toBe(404);
    expect(errorCode(new Error('ECONNREFUSED'))).toBeUndefined();
  });
});

/** An in-memory Lease endpoint with the API server's optimistic concurrency (and an off switch). */
class FakeLeaseApi {
  lease: V1Lease | undefined;
  private rv = 0;
  down = false;
  writes = 0;
  /** holderIdentity of every write, in order ('' for a released Lease). */
  holders: string[] = [];

  private check(): void {
    if (this.down) throw new Error('connect ECONNREFUSED');
  }

  private store(body: V1Lease): V1Lease {
    this.writes++;
    this.holders.push(body.spec?.holderIdentity ?? '');
    const copy = JSON.parse(JSON.stringify(body)) as V1Lease;
    copy.metadata = { ...copy.metadata, resourceVersion: String(++this.rv) };
    this.lease = copy;
    return JSON.parse(JSON.stringify(copy)) as V1Lease;
  }

  readNamespacedLease = async (): Promise<V1Lease> => {
    this.check();
    if (!this.lease) throw new ApiException(404, 'not found', {}, {});
    return JSON.parse(JSON.stringify(this.lease)) as V1Lease;
  };

  createNamespacedLease = async (p: { body: V1Lease }): Promise<V1Lease> => {
    this.check();
    if (this.lease) throw new ApiException(409, 'already exists', {}, {});
    return this.store(p.body);
  };

  replaceNamespacedLease = async (p: { body: V1Lease }): Promise<V1Lease> => {
    this.check();
    if (p.body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw new ApiException(409, 'conflict', {}, {});
    return this.store(p.body);
  };
}

describe('LeaderElector (fake Lease API)', () => {
  const timing = { leaseDurationMs: 600, renewDeadlineMs: 400, retryPeriodMs: 50 };
  let electors: LeaderElector[] = [];
  afterEach(async () => {
    await Promise.all(electors.map((e) => e.stop()));
    electors = [];
  });

  function candidate(api: FakeLeaseApi, identity: string, log: string[], extra: Partial<LeaderElectorOptions> = {}): LeaderElector {
    const e = new LeaderElector({
      api: api as unknown as LeaseApi,
      namespace: 'ns',
      name: 'lease',
      identity,
      ...timing,
      onStartedLeading: (signal) => {
        log.push(`${identity}+`);
        return new Promise<void>((resolve) => signal.addEventListener('abort', () => {
          log.push(`${identity}-`);
          resolve();
        }));
      },
      onStoppedLeading: () => log.push(`${identity} stopped`),
      ...extra,
    });
    electors.push(e);
    return e;
  }

  it('elects one of several racing candidates and hands over on stop', async () => {
    const api = new FakeLeaseApi();
    const log: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((id) => candidate(api, id, log));
    for (const e of [a!, b!, c!]) void e.run();
    await until('a leader', () => [a, b, c].some((e) => e!.isLeader()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const leaders = [a!, b!, c!].filter((e) => e.isLeader());
    expect(leaders).toHaveLength(1);
    const leader = leaders[0]!;
    expect(api.lease?.spec?.holderIdentity).toBe(leader.identity);
    expect(String(api.lease?.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    await leader.stop();
    expect(api.lease?.spec?.holderIdentity).toBe('');
    expect(api.lease?.spec?.leaseDurationSeconds).toBe(1);
    await until('a successor', () => [a!, b!, c!].some((e) => e.isLeader()), 2_000);
    expect(api.lease?.spec?.leaseTransitions).toBe(1);
    expect(log.filter((l) => l.endsWith('+'))).toHaveLength(2);
  });

  it('steps down when it cannot renew within the renew deadline, and leads again once the API is back', async () => {
    const api = new FakeLeaseApi();
    const log: string[] = [];
    const a = candidate(api, 'a', log);
    void a.run();
    await until('a leads', () => a.isLeader());
    api.down = true;
    await until('a steps down', () => !a.isLeader(), 2_000);
    expect(log).toEqual(['a+', 'a-', 'a stopped']);
    api.down = false;
    await until('a leads again', () => a.isLeader(), 2_000);
    expect(log).toEqual(['a+', 'a-', 'a stopped', 'a+']);
    // Its own lease, never released: a renewal, not a transition.
    expect(api.lease?.spec?.leaseTransitions).toBe(0);
  });

  it('waits for an unreleased lease to expire before taking it over', async () => {
    const api = new FakeLeaseApi();
    const log: string[] = [];
    const a = candidate(api, 'a', log, { releaseOnStop: false });
    const b = candidate(api, 'b', log);
    void a.run();
    await until('a leads', () => a.isLeader());
    void b.run();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = Date.now();
    await a.stop();
    expect(api.lease?.spec?.holderIdentity).toBe('a');
    await until('b leads', () => b.isLeader(), 3_000);
    // leaseDurationSeconds is whole seconds: 600 ms rounds up to 1 s.
    expect(Date.now() - stopped).toBeGreaterThanOrEqual(700);
    expect(api.lease?.spec?.leaseTransitions).toBe(1);
  });

  it('resigns (releasing the lease) when its leading work fails', async () => {
    const api = new FakeLeaseApi();
    const log: string[] = [];
    const a = candidate(api, 'a', log, {
      onStartedLeading: async () => {
        log.push('a+');
        throw new Error('controllers failed to start');
      },
    });
    void a.run();
    await until('a resigned', () => log.includes('a stopped'), 2_000);
    // Resigning is releasing: the write after a's term empties the holder, so a successor need
    // not wait out the lease duration.
    const term = api.holders.indexOf('a');
    expect(term).toBeGreaterThanOrEqual(0);
    await until('the lease released', () => api.holders.slice(term).includes(''), 2_000);
    expect(api.holders.slice(term, api.holders.indexOf('', term) + 1).every((h) => h === 'a' || h === '')).toBe(true);
    const b = candidate(api, 'b', log);
    void b.run();
    await until('someone leads again', () => a.isLeader() || b.isLeader(), 2_000);
  });

  it('checks its timings and defaults options given as undefined', () => {
    const api = new FakeLeaseApi() as unknown as LeaseApi;
    const base = { api, namespace: 'ns', name: 'l', onStartedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 1_000, renewDeadlineMs: 1_000 })).toThrow(/leaseDurationMs/);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/renewDeadlineMs/);
    expect(() => new LeaderElector({ ...base, leaseDurationMs: undefined, renewDeadlineMs: undefined, retryPeriodMs: undefined })).not.toThrow();
    expect(new LeaderElector(base).identity).toMatch(/_[0-9a-f-]{36}$/);
  });
});
