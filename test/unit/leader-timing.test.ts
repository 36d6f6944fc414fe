// Regression: `rpa-access operator --lease-duration 4s` derives the renew deadline and retry
// period as fractions of it (2666.67 ms, 533.33 ms). AbortSignal.timeout() throws on a fraction,
// and it did so outside any try: the campaign rejected unhandled and the process died at start.
import { ApiException, type V1Lease } from '@kubernetes/client-node';
import { LeaderElector, type LeaseApi } from '../../src/k8s/leader.js';

class OneLease {
  lease: V1Lease | undefined;
  private rv = 0;
  writes = 0;
  private keep(body: V1Lease): V1Lease {
    this.writes++;
    this.lease = { ...JSON.parse(JSON.stringify(body)), metadata: { ...body.metadata, resourceVersion: String(++this.rv) } } as V1Lease;
    return JSON.parse(JSON.stringify(this.lease)) as V1Lease;
  }
  readNamespacedLease = async (): Promise<V1Lease> => {
    if (!this.lease) throw new ApiException(404, 'not found', {}, {});
    return JSON.parse(JSON.stringify(this.lease)) as V1Lease;
  };
  createNamespacedLease = async (p: { body: V1Lease }): Promise<V1Lease> => this.keep(p.body);
  replaceNamespacedLease = async (p: { body: V1Lease }): Promise<V1Lease> => {
    if (p.body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw new ApiException(409, 'conflict', {}, {});
    return this.keep(p.body);
  };
}

test('fractional timings (a lease duration times 2/3 and 2/15) lead and renew', async () => {
  const api = new OneLease();
  let leading = false;
  const elector = new LeaderElector({
    api: api as unknown as LeaseApi,
    namespace: 'ns',
    name: 'lease',
    identity: 'a',
    leaseDurationMs: 1000,
    renewDeadlineMs: (1000 * 2) / 3,
    retryPeriodMs: (1000 * 2) / 15,
    onStartedLeading: (signal) => {
      leading = true;
      return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    },
  });
  const done = elector.run();
  const deadline = Date.now() + 5_000;
  while ((!leading || api.writes < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(elector.isLeader()).toBe(true);
  expect(api.writes).toBeGreaterThanOrEqual(3); // created, then renewed
  await elector.stop();
  await done;
  expect(api.lease?.spec?.holderIdentity).toBe('');
});

test('a lease duration alone: the renew deadline and retry period scale with it, fractions and all', async () => {
  const api = new OneLease();
  let leading = false;
  const elector = new LeaderElector({
    api: api as unknown as LeaseApi,
    namespace: 'ns',
    name: 'lease',
    identity: 'a',
    leaseDurationMs: 1000, // 666.67 ms and 133.33 ms derived: valid, and rounded before use
    onStartedLeading: (signal) => {
      leading = true;
      return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    },
  });
  const done = elector.run();
  const deadline = Date.now() + 5_000;
  while ((!leading || api.writes < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(elector.isLeader()).toBe(true);
  expect(api.writes).toBeGreaterThanOrEqual(3);
  await elector.stop();
  await done;
});
