/**
 * Exponential backoff with a cap and jitter, shared by the informer (watch/list retries), the
 * work queue (per-key retries) and leader election (retry period).
 *
 * Why jitter: many replicas (or many keys) failing at the same moment, e.g. when the API server
 * restarts, must not all come back at the same instant and knock it over again.
 */

export interface BackoffOptions {
  /** First delay. */
  baseMs: number;
  /** Upper bound for any delay (before jitter). */
  capMs: number;
  /** Growth per failure; 2 doubles. */
  factor?: number;
  /** Adds up to this fraction of the delay at random (0.2 = up to +20 %). */
  jitter?: number;
}

/** base * factor^attempt, capped; attempt 0 gives base. Safe for huge attempt counts. */
export function exponentialDelay(attempt: number, opts: BackoffOptions): number {
  const factor = opts.factor ?? 2;
  // Cap the exponent so that factor^attempt never overflows to Infinity/NaN.
  const exp = Math.min(Math.max(attempt, 0), 64);
  return Math.min(opts.capMs, opts.baseMs * Math.pow(factor, exp));
}

/** ms plus up to `fraction` of it at random: spreads out retries of many clients. */
export function withJitter(ms: number, fraction: number, random: () => number = Math.random): number {
  if (fraction <= 0) return ms;
  return ms + ms * fraction * random();
}

/** Stateful backoff: next() grows the delay, reset() after a success. */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay to wait before the next attempt; each call counts one more failure. */
  next(): number {
    const delay = exponentialDelay(this.failures, this.opts);
    this.failures++;
    return withJitter(delay, this.opts.jitter ?? 0, this.random);
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/**
 * Resolves after ms, or as soon as the signal aborts (never rejects): loops that sleep between
 * attempts must wake up at once on shutdown instead of finishing their nap.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
