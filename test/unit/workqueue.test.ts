// The work queue of the controller runtime (src/k8s/workqueue.ts) and controller-runtime's
// result rules over it (reconcileWorker), without a cluster.
// No timing assumptions: workers are gated by deferred promises, delays run on jest's fake clock.
import { jest } from '@jest/globals';
import { sleep } from '../../src/k8s/backoff.js';
import { reconcileBatchWorker, reconcileWorker, WorkQueue, type KeyOutcome, type ReconcileOutcome, type WorkQueueObserver } from '../../src/k8s/workqueue.js';

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

describe('WorkQueue batches', () => {
  const tenantOf = (key: string) => (key.includes('/') ? key.split('/')[0] : undefined);

  it('hands the waiting keys of one group to one call, up to maxSize; a key without a group goes alone', async () => {
    const calls: string[][] = [];
    const q = new WorkQueue({ concurrency: 1 });
    for (const k of ['a/1', 'b/1', 'a/2', 'lone', 'a/3', 'a/4', 'b/2']) q.add(k);
    q.startBatches((keys) => {
      calls.push(keys);
    }, { groupOf: tenantOf, maxSize: 3, windowMs: 0 });
    await q.whenIdle();
    // Groups in the order of their oldest key; a group with keys left goes behind the others.
    expect(calls).toEqual([['a/1', 'a/2', 'a/3'], ['b/1', 'b/2'], ['lone'], ['a/4']]);
  });

  it('a partial batch waits for its window (a full one goes at once); keys that join meanwhile go with it', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    try {
      const calls: string[][] = [];
      const q = new WorkQueue({ concurrency: 2, now: () => Date.now() });
      q.startBatches((keys) => {
        calls.push(keys);
      }, { groupOf: tenantOf, maxSize: 3, windowMs: 50 });
      q.add('a/1');
      q.add('b/1');
      q.add('b/2');
      q.add('b/3');
      await jest.advanceTimersByTimeAsync(0);
      expect(calls).toEqual([['b/1', 'b/2', 'b/3']]);
      await jest.advanceTimersByTimeAsync(30);
      q.add('a/2');
      await jest.advanceTimersByTimeAsync(0);
      expect(calls).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(20);
      expect(calls).toEqual([['b/1', 'b/2', 'b/3'], ['a/1', 'a/2']]);
      await q.whenIdle();
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps per-key rules: a key of a running batch is not handed out again, and runs once more if added meanwhile', async () => {
    const calls: string[][] = [];
    const gate = deferred();
    const q = new WorkQueue({ concurrency: 4 });
    q.startBatches(async (keys) => {
      calls.push(keys);
      if (calls.length === 1) await gate.promise;
    }, { groupOf: tenantOf, maxSize: 10, windowMs: 0 });
    q.add('a/1');
    q.add('a/2');
    await settle();
    expect(q.inFlight).toBe(2);
    q.add('a/2');
    q.add('a/3');
    await settle();
    expect(calls).toEqual([['a/1', 'a/2'], ['a/3']]);
    gate.resolve();
    await q.whenIdle();
    expect(calls).toEqual([['a/1', 'a/2'], ['a/3'], ['a/2']]);
  });

  it('reconcileBatchWorker applies the result rules key by key; a throw retries every key of the batch', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    try {
      const q = new WorkQueue({ now: () => Date.now() });
      const outcomes: string[] = [];
      let fail = false;
      q.startBatches(reconcileBatchWorker(q, async (keys) => {
        if (fail) throw new Error('store down');
        return new Map<string, KeyOutcome>([
          ['a/1', { result: {} }],
          ['a/2', { result: { requeueAfterMs: 5_000 } }],
          ['a/3', { error: new Error('conflict') }],
        ].filter(([k]) => keys.includes(k as string)) as Array<[string, KeyOutcome]>);
      }, { onResult: (key, outcome) => outcomes.push(`${key} ${outcome}`) }), { groupOf: tenantOf, maxSize: 10, windowMs: 0 });
      q.add('a/1');
      q.add('a/2');
      q.add('a/3');
      q.add('a/4');
      await jest.advanceTimersByTimeAsync(0);
      expect(outcomes).toEqual(['a/1 success', 'a/2 requeue_after', 'a/3 error', 'a/4 success']);
      expect(q.numRequeues('a/3')).toBe(1);
      expect(q.pendingDelayed).toBe(2);
      fail = true;
      outcomes.length = 0;
      await jest.advanceTimersByTimeAsync(5_000);
      expect(outcomes).toContain('a/2 error');
      expect(outcomes.every((o) => o.endsWith(' error'))).toBe(true);
      await q.shutDown();
    } finally {
      jest.useRealTimers();
    }
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
