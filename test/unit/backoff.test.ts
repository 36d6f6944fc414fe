// The backoff helpers of the controller runtime (src/k8s/backoff.ts).
import { Backoff, exponentialDelay, sleep, withJitter } from '../../src/k8s/backoff.js';

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
