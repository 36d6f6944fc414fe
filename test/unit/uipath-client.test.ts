/**
 * The UiPath client against the strict UiPath double (test/support/uipath): token caching and
 * refresh on 401, paging (ours and the server's), bounded retries honouring Retry-After, the
 * concurrency cap, errors that name the call, the missing scope or folder, and never the secret.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { UiPathClient, UiPathError, retryAfterMs } from '../../src/targets/uipath/client.js';
import { startUiPathDouble, type UiPathDouble } from '../support/uipath/index.js';

const SCOPES = 'OR.Users OR.Folders PM.User PM.Group PM.RobotAccount';

describe('UiPath client', () => {
  let uip: UiPathDouble;
  const waits: number[] = [];
  const client = (extra: Partial<ConstructorParameters<typeof UiPathClient>[0]> = {}) =>
    new UiPathClient({
      url: uip.orchestratorUrl('finance'), identityUrl: uip.identityUrl, scopes: SCOPES, credentials: uip.credentials,
      sleep: async (ms) => void waits.push(ms), ...extra,
    });

  beforeEach(async () => {
    waits.length = 0;
    uip = await startUiPathDouble({ tenants: ['finance'], maxPageSize: 40 });
  });
  afterEach(async () => {
    await uip.stop();
  });

  it('fetches one token, reuses it, and fetches a new one once on a 401', async () => {
    const c = client();
    await c.request('orchestrator', 'GET', '/odata/Roles');
    await c.request('orchestrator', 'GET', '/odata/Roles');
    expect(uip.calls.tokens()).toBe(1);
    uip.expireAllTokens();
    await c.request('orchestrator', 'GET', '/odata/Roles');
    expect(uip.calls.tokens()).toBe(2);
    expect(await c.organizationIdFromToken()).toBe(uip.organizationId);
  });

  it('reads every page: its own $top/$skip pages and the server shortening them', async () => {
    uip.seed({ folders: Array.from({ length: 95 }, (_, i) => `F${String(i).padStart(3, '0')}`) }, 'finance');
    const small = client({ pageSize: 30 });
    expect((await small.odataAll<{ DisplayName: string }>('/odata/Folders')).length).toBe(96); // + Shared
    const big = client({ pageSize: 1000 }); // the double cuts pages at 40 and says so with @odata.nextLink
    expect((await big.odataAll<{ DisplayName: string }>('/odata/Folders')).length).toBe(96);
    uip.seed({ identityUsers: Array.from({ length: 25 }, (_, i) => ({ email: `u${i}@example.com` })) });
    expect((await client({ pageSize: 10 }).identityAll(`/api/User/users/${uip.organizationId}`)).length).toBe(25);
  });

  it('retries 429 and 503 after Retry-After, a bounded number of times, then names the call', async () => {
    uip.faults.rateLimit({ calls: 2, retryAfterSeconds: 7, match: 'Roles_Get' });
    const c = client();
    await c.request('orchestrator', 'GET', '/odata/Roles');
    expect(waits).toEqual([7000, 7000]);
    expect(c.rateLimited).toBe(true);
    uip.faults.unavailable({ calls: Infinity, match: 'Roles_Get' });
    const err = await c.request('orchestrator', 'GET', '/odata/Roles').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UiPathError);
    expect((err as UiPathError).message).toMatch(/^GET \/odata\/Roles: 503/);
    expect((err as UiPathError).reason).toBe('TargetUnreachable');
    expect(waits.length).toBe(2 + 5); // 6 attempts: 5 waits
  });

  it('reports an outage as TargetUnreachable, naming the call', async () => {
    const c = client({ maxAttempts: 2 });
    await c.request('orchestrator', 'GET', '/odata/Roles');
    uip.faults.outage(true);
    const err = (await c.request('orchestrator', 'GET', '/odata/Folders').catch((e: unknown) => e)) as UiPathError;
    expect(err.reason).toBe('TargetUnreachable');
    expect(err.message).toMatch(/^GET \/odata\/Folders: UiPath is unreachable/);
  });

  it('names the missing scope on 403, and the secret appears in no error', async () => {
    uip.setScopes(['OR.Users', 'PM.User']);
    const c = client({ scopes: 'OR.Users PM.User' });
    const err = (await c.request('orchestrator', 'GET', '/odata/Folders').catch((e: unknown) => e)) as UiPathError;
    expect(err.reason).toBe('Forbidden');
    expect(err.message).toContain('needs scope OR.Folders (or OR.Folders.Read)');
    const wrong = new UiPathClient({ url: uip.orchestratorUrl('finance'), identityUrl: uip.identityUrl, scopes: SCOPES, credentials: { clientId: uip.credentials.clientId, clientSecret: 'not-the-secret-1234' } });
    const bad = (await wrong.request('orchestrator', 'GET', '/odata/Roles').catch((e: unknown) => e)) as UiPathError;
    expect(bad.reason).toBe('Unauthorized');
    expect(bad.message).not.toContain('not-the-secret-1234');
    expect(JSON.stringify(bad)).not.toContain('not-the-secret-1234');
  });

  it('keeps at most `concurrency` calls in flight', async () => {
    uip.faults.latency(30);
    const c = client({ concurrency: 3 });
    let inFlight = 0;
    let peak = 0;
    const tracked = new UiPathClient({
      url: uip.orchestratorUrl('finance'), identityUrl: uip.identityUrl, scopes: SCOPES, credentials: uip.credentials, concurrency: 3,
      fetch: async (input, init) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          return await fetch(input, init);
        } finally {
          inFlight--;
        }
      },
    });
    await c.request('orchestrator', 'GET', '/odata/Roles');
    await Promise.all(Array.from({ length: 12 }, () => tracked.request('orchestrator', 'GET', '/odata/Roles')));
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('reads Retry-After in seconds or as a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now())).toBeGreaterThan(3000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
