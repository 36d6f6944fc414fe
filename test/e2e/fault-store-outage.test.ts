/**
 * Fault: the store's PostgreSQL stops in the middle of reconciling 1,000 objects, then comes
 * back. Meanwhile objects say StoreUnavailable and retries back off; afterwards the store holds
 * exactly the desired state, each object written once, the audit trail complete.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { allEntries } from '../../src/model/tenant.js';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { openStore } from '../../src/store/open.js';
import { createBulk, listReadiness, type BulkObject } from '../support/bulk.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventsFor, eventually, installCrds, kubeConfigOf } from '../support/kube.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';

const runnable = assetsDir() && postgresBinDir();
const PASSWORD = 's3cret-store-password';
const suite = runnable ? describe : describe.skip;

suite('fault: store outage during a bulk reconcile', () => {
  let cp: ControlPlane;
  let pg: PrivatePostgres;
  let operator: OperatorHandle | undefined;

  beforeAll(async () => {
    [cp, pg] = await Promise.all([startControlPlane(), startPrivatePostgres()]);
    await installCrds(cp, path.resolve('crds'));
  }, 120_000);
  afterAll(async () => {
    await operator?.stop().catch(() => undefined);
    pg?.destroy();
    await cp?.stop();
  }, 60_000);

  test('stop PostgreSQL mid-way, start it again: nothing lost, nothing duplicated', async () => {
    const kc = kubeConfigOf(cp);
    // The server trusts loopback, so the password is never checked: it is there to prove it never leaks.
    const storeUrl = pg.url.replace('postgres@', `postgres:${PASSWORD}@`);
    operator = await startOperator({ kubeconfig: kc, store: storeUrl, log: pino({ level: 'info' }, pino.destination({ dest: path.join(process.env.RPA_ACCESS_FAULT_REPORT_DIR ?? '/tmp', 'fault-store-outage.log'), sync: true })), healthPort: 0, leaderElection: false, driftPeriodMs: 5_000 });
    await operator.whenRunning();
    // The objects arrive while the operator works (it writes each tenant's waiting objects in
    // one batch, so it keeps pace with their creation): the outage must fall amid the arrivals.
    const creating: Promise<BulkObject[]> = createBulk(kc, { prefix: 'outage', tenants: 4, total: 1000 });

    // Let part of the work land, then take the store away.
    await eventually('a third of the objects applied', async () => (await listReadiness(kc)).filter((o) => o.ready === 'True').length > 300, 120_000);
    const outageStart = Date.now();
    pg.stop();
    const objects = await creating;
    const unavailableObjects = await eventually('objects report StoreUnavailable', async () => {
      const list = (await listReadiness(kc)).filter((o) => o.reason === 'StoreUnavailable');
      return list.length > 0 ? list : undefined;
    }, 60_000);
    const unavailable = unavailableObjects.length;
    expect(unavailableObjects[0]!.message).toMatch(/^The access store cannot be reached \(.+\); retrying with backoff\.$/);
    expect(JSON.stringify(unavailableObjects)).not.toContain(PASSWORD);
    await new Promise((r) => setTimeout(r, 3_000));
    pg.start();
    const outageMs = Date.now() - outageStart;

    const expectedReady = objects.length + 4 * 11;
    const recovered = Date.now();
    await eventually('no object says StoreUnavailable any more', async () => !(await listReadiness(kc)).some((o) => o.reason === 'StoreUnavailable'), 120_000);
    const unavailableClearedMs = Date.now() - recovered;
    await eventually('every object Ready after recovery', async () => (await listReadiness(kc)).filter((o) => o.ready === 'True').length === expectedReady, 180_000);
    const recoveryMs = Date.now() - recovered;
    fs.writeFileSync(path.join(process.env.RPA_ACCESS_FAULT_REPORT_DIR ?? '/tmp', 'fault-store-outage.json'), JSON.stringify({ outageMs, unavailableClearedMs, recoveryMs, unavailable }));

    const events = (await Promise.all([0, 1, 2, 3].map((t) => eventsFor(kc, `outage-${t}`)))).flat();
    expect(JSON.stringify(events)).not.toContain(PASSWORD);

    // The store, read by a fresh connection: exactly the desired objects, each created once.
    const store = await openStore(pg.url);
    try {
      for (let t = 0; t < 4; t++) {
        const tenant = `outage-${t}`;
        const state = (await store.loadTenant(tenant))!.state;
        const userObjects = allEntries(state).filter((e) => e.origin === 'user').map((e) => `${e.kind}/${tenant}/${e.name}`).sort();
        const desired = objects.filter((o) => o.tenant === tenant).map((o) => `${o.kind}/${tenant}/${o.name}`).sort();
        expect(userObjects).toEqual(desired);
        const audit = await store.audit({ tenant });
        const created = audit.filter((a) => a.action === 'created').map((a) => `${a.kind}/${tenant}/${a.name}`);
        expect(new Set(created).size).toBe(created.length); // no duplicate
        expect(created.length).toBe(desired.length + 11); // every object and built-in audited
        expect(audit.filter((a) => a.action !== 'created')).toEqual([]);
      }
    } finally {
      await store.close();
    }
  }, 400_000);
});
