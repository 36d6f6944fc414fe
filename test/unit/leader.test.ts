// Leader election (src/k8s/leader.ts) over a fake Lease API with the API server's optimistic
// concurrency; its timings against a real clock are in leader-timing.test.ts.
import { ApiException, type V1Lease } from '@kubernetes/client-node';
import { LeaderElector, type LeaderElectorOptions, type LeaseApi } from '../../src/k8s/leader.js';
import { until } from '../support/until.js';

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
