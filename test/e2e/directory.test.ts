/**
 * Directory Groups through the operator against a real etcd + kube-apiserver (contract section
 * 7): they reconcile like Groups, show their directory id in `kubectl get`, count the sessions
 * and provisioned users that refer to them in status; drift correction keeps auto-provisioned
 * users; deleting a directory Group ends the rights through it at once, mid-session.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { TenantIndex } from '../../src/model/engine.js';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const USERS_ID = '8a2c4e6f-1b3d-4f5a-8c7e-9d0b1a2c3e04';

suite('directory Groups through the operator', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let operator: OperatorHandle | undefined;

  const apply = async (docs: string) => {
    const r = await kubectl(cp.kubeconfigPath, ['apply', '-f', '-'], docs);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    operator = await startOperator({
      kubeconfig: kc, store: fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-e2e-dir-')), log, healthPort: 0, concurrency: 4, leaderElection: true,
      leaseNamespace: 'default', leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500, driftPeriodMs: 1_000,
    });
    await operator.whenRunning();
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'sales' } } });
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
  }, 60_000);

  test('reconciled like Groups; status counts sessions and provisioned users; drift keeps them; deletion ends rights at once', async () => {
    await apply(fs.readFileSync(path.resolve('examples/sales/groups.yaml'), 'utf8') + '\n---\n' + fs.readFileSync(path.resolve('examples/sales/bindings.yaml'), 'utf8'));
    await eventually('automation-users Ready', async () => ready(await getResource(kc, 'Group', 'sales', 'automation-users'))?.status === 'True');
    const listing = await kubectl(cp.kubeconfigPath, ['get', 'rpagroup', '-n', 'sales']);
    expect(listing.stdout).toMatch(/automation-users\s+Automation Users\s+8a2c4e6f-1b3d-4f5a-8c7e-9d0b1a2c3e04\s+True/);
    const explain = await kubectl(cp.kubeconfigPath, ['explain', 'groups.rpa-access.io.spec.directory']);
    expect(explain.stdout).toMatch(/identity provider/);

    // John logs in (through the store the operator writes to, as serve would).
    const store = operator!.store;
    const login = await store.login('sales', { email: 'john.smith@example.com', directoryGroups: [USERS_ID] });
    expect(login).toMatchObject({ provisioned: true, user: { name: 'john.smith-at-example.com' } });
    // Any update of the Group reconciles it now (otherwise within a minute): the counts follow.
    await kubectl(cp.kubeconfigPath, ['annotate', '-n', 'sales', 'rpagroup', 'automation-users', 'touched=1']);
    const status = await eventually('status counts the session', async () => {
      const c = ready(await getResource(kc, 'Group', 'sales', 'automation-users'));
      return c?.message.includes('1 active session') ? c : undefined;
    });
    expect(status.message).toContain('1 auto-provisioned user refer to it');

    // Drift correction runs every second here: the provisioned user, absent from the cluster, stays.
    await new Promise((r) => setTimeout(r, 2_500));
    const state = (await store.loadTenant('sales'))!.state;
    expect(state.users.get('john.smith-at-example.com')?.origin).toBe('directory');
    expect(new TenantIndex(state).check({ user: 'john.smith@example.com', permission: 'Jobs.Create', folder: 'Sales' }).allowed).toBe(true);

    // A User listing a directory group is refused with the rule.
    await apply(`apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: sales}
spec: {email: ann@example.com, groups: [automation-users]}
`).catch(() => undefined);
    const refused = await eventually('ann refused', async () => {
      const c = ready(await getResource(kc, 'User', 'sales', 'ann'));
      return c?.reason === 'DirectoryGroupMembership' ? c : undefined;
    });
    expect(refused.message).toMatch(/a directory group/);
    await kubectl(cp.kubeconfigPath, ['delete', '-n', 'sales', 'rpauser', 'ann', '--wait=false']);

    // Deleting the directory Group ends the inherited rights at once, the session notwithstanding.
    const del = await kubectl(cp.kubeconfigPath, ['delete', '-n', 'sales', 'rpagroup', 'automation-users', '--timeout=30s']);
    expect(del.code).toBe(0);
    const after = (await store.loadTenant('sales'))!.state;
    expect(after.groups.has('automation-users')).toBe(false);
    expect(new TenantIndex(after).check({ user: 'john.smith@example.com', permission: 'Jobs.Create', folder: 'Sales' }).allowed).toBe(false);
    expect(after.users.has('john.smith-at-example.com')).toBe(true);
  }, 120_000);
});
