/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
 * only the holder of an unexpired Lease runs the controllers, so two replicas never reconcile
 * at once.
 *
 * - Acquire: the Lease is free when absent, released (empty holder) or expired. "Expired" is
 *   judged by when *we* last saw the record change plus its leaseDurationSeconds, on our own
 *   clock, never by comparing the holder's renewTime with our clock (clocks drift).
 * - Every write is a create or a PUT carrying the resourceVersion that was read: if another
 *   candidate wrote in between, the API server answers 409 and we simply lost this round.
 * - The leader renews every retryPeriod; if it cannot renew for renewDeadline it stops leading
 *   (aborts the signal given to onStartedLeading) before the lease can expire for others,
 *   because leaseDuration > renewDeadline.
 * - On a graceful stop the leader releases the Lease (empty holder, 1 s duration) so a
 *   successor takes over at its next retry instead of waiting out the lease.
 *
 * client-node 1.4: Lease times are MicroTime (RFC 3339 with exactly 6 fraction digits; the API
 * server rejects Date's 3), so writes use V1MicroTime; reads come back as strings despite the
 * Date typing, because the generated deserializer does not know V1MicroTime.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { sleep, withJitter } from './backoff.js';
import { errorMessage, isConflict, isNotFound, requestOptions } from './client.js';
import { silentLogger, type Logger } from '../log.js';

/** The Lease calls the elector makes (CoordinationV1Api satisfies it; tests may fake it). */
export type LeaseApi = Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>;

export interface LeaderElectorOptions {
  /** Used to build a CoordinationV1Api unless `api` is given. */
  kc?: KubeConfig;
  api?: LeaseApi;
  namespace: string;
  /** Lease name, e.g. rpa-access-operator. */
  name: string;
  /** Unique per replica; default `<hostname>_<uuid>`. */
  identity?: string;
  /** How long a lease is valid after its last renewal; default 15 s. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before giving up leadership; default 2/3 of the lease (10 s). */
  renewDeadlineMs?: number;
  /** Pause between attempts to acquire or renew; default 2/15 of the lease (2 s). */
  retryPeriodMs?: number;
  /** Release the lease on stop() so that a successor need not wait it out; default true. */
  releaseOnStop?: boolean;
  /** Start the controllers; stop them when `signal` aborts. Called once per term. A rejection ends the term: the lease is released and the elector campaigns again. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called at the end of each term (lease lost or stopped), after the signal was aborted. */
  onStoppedLeading?: () => void;
  /** Called with true when this replica starts leading and false when it stops (for a gauge). */
  onLeadingChange?: (leading: boolean) => void;
  /** Called whenever the observed holder changes (including to us, and to '' on release). */
  onNewLeader?: (identity: string) => void;
  log?: Logger;
}

interface Timing {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export class LeaderElector {
  readonly identity: string;
  private readonly api: LeaseApi;
  private readonly o: LeaderElectorOptions & Timing;
  private readonly log: Logger;
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;
  private leading = false;
  /** The last Lease spec seen, and when (our clock) it last changed: the basis of expiry. */
  private observedSpec = '';
  private observedAt = 0;
  private observedHolder: string | undefined;

  constructor(opts: LeaderElectorOptions) {
    // `??`, not spread defaults: callers pass options through as explicit undefined.
    // Whole milliseconds: AbortSignal.timeout() throws on a fraction (e.g. a duration times 2/3),
    // and it would throw outside any try, ending the campaign with an unhandled rejection.
    // Unset, the renew deadline and retry period scale with the lease as client-go's defaults do
    // (15 s : 10 s : 2 s), so a shorter lease alone is a valid configuration.
    const leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.o = {
      ...opts,
      leaseDurationMs: Math.ceil(leaseDurationMs),
      renewDeadlineMs: Math.ceil(opts.renewDeadlineMs ?? (leaseDurationMs * 2) / 3),
      retryPeriodMs: Math.ceil(opts.retryPeriodMs ?? (leaseDurationMs * 2) / 15),
    };
    if (!(this.o.leaseDurationMs > this.o.renewDeadlineMs)) throw new Error('leaseDurationMs must be greater than renewDeadlineMs');
    if (!(this.o.renewDeadlineMs > this.o.retryPeriodMs * 1.2)) throw new Error('renewDeadlineMs must be greater than 1.2 x retryPeriodMs');
    if (!opts.api && !opts.kc) throw new Error('LeaderElector needs kc or api');
    this.api = opts.api ?? opts.kc!.makeApiClient(CoordinationV1Api);
    this.identity = opts.identity ?? `${hostname()}_${randomUUID()}`;
    this.log = opts.log ?? silentLogger;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last observed ('' when released, undefined before the first read). */
  getLeader(): string | undefined {
    return this.observedHolder;
  }

  /**
   * Campaigns, leads, and campaigns again after a lost lease, until stop(); resolves then.
   * Each term gets its own signal; a new term starts only after the previous term's work
   * (the promise of onStartedLeading) has settled, so two terms never overlap in one process.
   * (controller-runtime exits the process instead; re-campaigning keeps a single replica
   * working after an API server outage longer than the renew deadline.)
   */
  run(): Promise<void> {
    this.running ??= this.campaign();
    return this.running;
  }

  /** Ends the term (releasing the lease) or the campaign; resolves when run() has finished. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running;
  }

  private get leaseDurationSeconds(): number {
    return Math.max(1, Math.ceil(this.o.leaseDurationMs / 1000));
  }

  private async campaign(): Promise<void> {
    const stop = this.stopController.signal;
    while (!stop.aborted) {
      let won = false;
      while (!stop.aborted && !(won = await this.tryAcquireOrRenew())) {
        await sleep(withJitter(this.o.retryPeriodMs, 0.2), stop);
      }
      if (stop.aborted) {
        // stop() arrived while the winning write was in flight: hand the lease straight back.
        if (won && (this.o.releaseOnStop ?? true)) await this.release();
        return;
      }
      const resigned = await this.lead();
      // After resigning, give the other candidates a retry period's head start.
      if (resigned) await sleep(withJitter(this.o.retryPeriodMs, 0.2), stop);
    }
  }

  /** One term; resolves true when it ended because the leading work failed (resigned). */
  private async lead(): Promise<boolean> {
    const stop = this.stopController.signal;
    const term = new AbortController();
    const resign = new AbortController();
    const ending = AbortSignal.any([stop, resign.signal]);
    this.setLeading(true);
    this.log.info({ lease: this.o.name, identity: this.identity }, 'became leader');
    const work = Promise.resolve()
      .then(() => this.o.onStartedLeading(term.signal))
      .catch((err: unknown) => {
        if (term.signal.aborted) return;
        this.log.error({ lease: this.o.name, err: errorMessage(err) }, 'leading work failed; resigning');
        resign.abort();
      });

    let lastRenew = Date.now();
    while (!ending.aborted) {
      await sleep(this.o.retryPeriodMs, ending);
      if (ending.aborted) break;
      if (await this.tryAcquireOrRenew(lastRenew + this.o.renewDeadlineMs)) {
        lastRenew = Date.now();
      } else if (Date.now() >= lastRenew + this.o.renewDeadlineMs) {
        this.log.warn({ lease: this.o.name, identity: this.identity }, 'failed to renew the lease within the renew deadline; stopping leading');
        break;
      }
    }

    term.abort();
    this.setLeading(false);
    if (!ending.aborted) {
      // Lost: the next term (ours or another replica's) must not overlap with this one's work.
      await work;
    } else if (resign.signal.aborted || (this.o.releaseOnStop ?? true)) {
      // Let the controllers wind down before handing over, but not beyond the renew deadline.
      // (The nap is cancelled once the work is done: a pending timer would hold the process.)
      const settled = new AbortController();
      await Promise.race([work.finally(() => settled.abort()), sleep(this.o.renewDeadlineMs, settled.signal)]);
      await this.release();
    }
    this.log.info({ lease: this.o.name, identity: this.identity }, 'stopped leading');
    try {
      this.o.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'onStoppedLeading threw');
    }
    return resign.signal.aborted;
  }

  /** One round: true when we hold the lease afterwards. Never throws. */
  private async tryAcquireOrRenew(deadline?: number): Promise<boolean> {
    const timeoutMs = Math.max(1, Math.ceil((deadline ?? Date.now() + this.o.renewDeadlineMs) - Date.now()));
    const options = requestOptions({ signal: AbortSignal.timeout(timeoutMs) });
    const { namespace, name } = this.o;
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ namespace, name }, options);
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.warn({ lease: name, err: errorMessage(err) }, 'reading the lease failed');
        return false;
      }
      const spec: V1LeaseSpec = {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      };
      try {
        const created = await this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec } }, options);
        this.observe(created.spec ?? spec);
        return true;
      } catch (createErr) {
        // 409: another candidate created it first.
        if (!isConflict(createErr)) this.log.warn({ lease: name, err: errorMessage(createErr) }, 'creating the lease failed');
        return false;
      }
    }

    const spec = lease.spec ?? {};
    this.observe(spec);
    const holder = spec.holderIdentity ?? '';
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    if (holder !== '' && holder !== this.identity && Date.now() < this.observedAt + durationMs) return false;

    const renewing = holder === this.identity;
    const next: V1LeaseSpec = {
      ...spec,
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: renewing && spec.acquireTime ? spec.acquireTime : now,
      renewTime: now,
      leaseTransitions: renewing ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    };
    try {
      // The body keeps metadata.resourceVersion as read: a concurrent writer makes this a 409.
      const updated = await this.api.replaceNamespacedLease({ namespace, name, body: { ...lease, spec: next } }, options);
      this.observe(updated.spec ?? next);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn({ lease: name, err: errorMessage(err) }, 'updating the lease failed');
      return false;
    }
  }

  /** Gives the lease up if we still hold it: empty holder, so successors need not wait. */
  private async release(): Promise<void> {
    const { namespace, name } = this.o;
    const options = requestOptions({ signal: AbortSignal.timeout(this.o.renewDeadlineMs) });
    try {
      const lease = await this.api.readNamespacedLease({ namespace, name }, options);
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = new V1MicroTime();
      const spec: V1LeaseSpec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      };
      const updated = await this.api.replaceNamespacedLease({ namespace, name, body: { ...lease, spec } }, options);
      this.observe(updated.spec ?? spec);
      this.log.info({ lease: name, identity: this.identity }, 'released the lease');
    } catch (err) {
      this.log.warn({ lease: name, err: errorMessage(err) }, 'releasing the lease failed; successors wait for it to expire');
    }
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    try {
      this.o.onLeadingChange?.(leading);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'onLeadingChange threw');
    }
  }

  private observe(spec: V1LeaseSpec): void {
    const key = JSON.stringify(spec);
    if (key !== this.observedSpec) {
      this.observedSpec = key;
      this.observedAt = Date.now();
    }
    const holder = spec.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      try {
        this.o.onNewLeader?.(holder);
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'onNewLeader threw');
      }
    }
  }
}
