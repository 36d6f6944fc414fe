/**
 * The operator against a real etcd + kube-apiserver: YAML in, store converges, status and
 * Events out; built-ins come back; deletes pass through the store; restarts lose nothing;
 * tenants stay apart.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { TenantIndex } from '../../src/model/engine.js';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { openStore } from '../../src/store/open.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventsFor, eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });

function yaml(ns: string, docs: string): string {
  return docs.replaceAll('NS', ns);
}

suite('operator on a real API server', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let storeUrl: string;
  let operator: OperatorHandle | undefined;

  const start = () =>
    startOperator({
      kubeconfig: kc, store: storeUrl, log, healthPort: 0, concurrency: 4, leaderElection: true,
      leaseNamespace: 'default', leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500,
      driftPeriodMs: 2_000,
    });

  const apply = async (docs: string) => {
    const r = await kubectl(cp.kubeconfigPath, ['apply', '-f', '-'], docs);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };
  const namespace = async (name: string) => {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  };
  const stored = async (tenant: string) => {
    const store = operator!.store;
    return (await store.loadTenant(tenant))?.state;
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    storeUrl = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-e2e-'));
    operator = await start();
    await operator.whenRunning();
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
  }, 60_000);

  test('objects become Ready, reach the store, and decisions follow', async () => {
    await namespace('finance');
    await apply(yaml('finance', `
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: automation-users, namespace: NS}
spec: {displayName: Automation Users}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john-smith, namespace: NS}
spec: {email: john.smith@example.com, fullName: John Smith, groups: [automation-users]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: automation-users-a, namespace: NS}
spec: {roleRef: {name: automation-user}, folder: A, subjects: [{kind: Group, name: automation-users}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-folder-admin-a, namespace: NS}
spec: {roleRef: {name: folder-administrator}, folder: A, subjects: [{kind: User, name: john-smith}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: dangling, namespace: NS}
spec: {roleRef: {name: not-yet}, subjects: [{kind: User, name: john-smith}]}
`));
    for (const [kind, name] of [['Group', 'automation-users'], ['User', 'john-smith'], ['RoleBinding', 'automation-users-a'], ['RoleBinding', 'john-folder-admin-a']]) {
      await eventually(`${kind}/${name} Ready=True`, async () => ready(await getResource(kc, kind!, 'finance', name!))?.status === 'True');
    }
    const dangling = await eventually('dangling binding reports RoleNotFound', async () => {
      const c = ready(await getResource(kc, 'RoleBinding', 'finance', 'dangling'));
      return c?.reason === 'RoleNotFound' ? c : undefined;
    });
    expect(dangling.status).toBe('False');
    expect(dangling.message).toContain('not-yet');

    // Built-ins are custom resources too, and ready.
    await eventually('global group ready', async () => ready(await getResource(kc, 'Group', 'finance', 'global'))?.reason === 'BuiltIn');
    await eventually('owner role ready', async () => ready(await getResource(kc, 'Role', 'finance', 'owner'))?.reason === 'BuiltIn');

    const index = new TenantIndex((await stored('finance'))!);
    const r = index.check({ user: 'john.smith@example.com', permission: 'Jobs.Create', folder: 'A/B' });
    expect(r.grants.map((g) => g.via).sort()).toEqual(['group:automation-users', 'user']);

    // The missing role appears: the binding becomes ready without being touched.
    await apply(yaml('finance', `
apiVersion: rpa-access.io/v1alpha1
kind: Role
metadata: {name: not-yet, namespace: NS}
spec: {scope: Tenant, permissions: [{resource: Audit, actions: [View]}]}
`));
    await eventually('dangling binding ready once its role exists', async () => ready(await getResource(kc, 'RoleBinding', 'finance', 'dangling'))?.status === 'True');

    const events = await eventsFor(kc, 'finance', 'john-smith');
    expect(events.some((e) => e.reason === 'Created' && e.type === 'Normal')).toBe(true);
    const listing = await kubectl(cp.kubeconfigPath, ['get', 'rpa-access', '-n', 'finance']);
    expect(listing.stdout).toContain('john-smith');
    expect(listing.stdout).toContain('john.smith@example.com');
  }, 90_000);

  test('deleting the global group or a built-in role: back within seconds, store never lost them', async () => {
    await namespace('hr');
    await apply(yaml('hr', 'apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: ann, namespace: NS}\nspec: {email: ann@example.com}\n'));
    const before = await eventually('global in hr', () => getResource(kc, 'Group', 'hr', 'global'));
    await eventually('owner role in hr', () => getResource(kc, 'Role', 'hr', 'owner'));
    await kubectl(cp.kubeconfigPath, ['delete', 'group.rpa-access.io', 'global', '-n', 'hr', '--wait=false']);
    await kubectl(cp.kubeconfigPath, ['delete', 'role.rpa-access.io', 'owner', '-n', 'hr', '--wait=false']);
    const after = await eventually('global recreated', async () => {
      const g = await getResource(kc, 'Group', 'hr', 'global');
      return g && g.metadata.uid !== before.metadata.uid && !g.metadata.deletionTimestamp ? g : undefined;
    }, 15_000);
    expect(after.spec).toEqual(before.spec);
    await eventually('owner recreated', async () => {
      const o = await getResource(kc, 'Role', 'hr', 'owner');
      return o && !o.metadata.deletionTimestamp;
    }, 15_000);
    const state = (await stored('hr'))!;
    expect(state.groups.has('global')).toBe(true);
    expect(state.roles.has('owner')).toBe(true);
    const audit = await operator!.store.audit({ tenant: 'hr' });
    expect(audit.filter((a) => a.action === 'deleted')).toEqual([]);
    await eventually('an Event says the built-in was restored', async () => (await eventsFor(kc, 'hr')).some((e) => e.reason === 'BuiltInRestored' && e.regarding === 'Group/global'));

    // Editing a built-in is put back too.
    await kubectl(cp.kubeconfigPath, ['patch', 'role.rpa-access.io', 'analyst', '-n', 'hr', '--type=merge', '-p', '{"spec":{"permissions":[{"resource":"Users","actions":["Delete"]}]}}']);
    await eventually('analyst restored', async () => {
      const a = await getResource(kc, 'Role', 'hr', 'analyst');
      return a && JSON.stringify(a.spec).includes('"View"') && !JSON.stringify(a.spec).includes('"Delete"');
    }, 15_000);
  }, 60_000);

  test('deletes pass through the store; a refused delete keeps the object and says why', async () => {
    await namespace('ops');
    await apply(yaml('ops', `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: boss, namespace: NS}
spec: {email: boss@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: temp, namespace: NS}
spec: {email: temp@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: admins, namespace: NS}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: boss}]}
`));
    await eventually('boss ready', async () => ready(await getResource(kc, 'User', 'ops', 'boss'))?.status === 'True');
    await eventually('temp ready', async () => ready(await getResource(kc, 'User', 'ops', 'temp'))?.status === 'True');
    await eventually('admins ready', async () => ready(await getResource(kc, 'RoleBinding', 'ops', 'admins'))?.status === 'True');

    await kubectl(cp.kubeconfigPath, ['delete', 'user.rpa-access.io', 'temp', '-n', 'ops', '--wait=false']);
    await eventually('temp gone from cluster', async () => !(await getResource(kc, 'User', 'ops', 'temp')));
    expect((await stored('ops'))!.users.has('temp')).toBe(false);

    await kubectl(cp.kubeconfigPath, ['delete', 'user.rpa-access.io', 'boss', '-n', 'ops', '--wait=false']);
    const kept = await eventually('boss delete refused', async () => {
      const b = await getResource(kc, 'User', 'ops', 'boss');
      return b?.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'DeleteRefused') ? b : undefined;
    });
    expect(kept.metadata.deletionTimestamp).toBeDefined();
    expect(kept.status!.conditions![0]!.message).toMatch(/administrator.*RoleBinding ops\/admins/);
    expect((await stored('ops'))!.users.has('boss')).toBe(true);
    await eventually('DeleteRefused event', async () => (await eventsFor(kc, 'ops', 'boss')).some((e) => e.reason === 'DeleteRefused' && e.type === 'Warning'));

    // Remove the binding first, as the message says: the user's delete then completes.
    await kubectl(cp.kubeconfigPath, ['delete', 'rolebinding.rpa-access.io', 'admins', '-n', 'ops', '--wait=false']);
    await eventually('boss finally deleted', async () => !(await getResource(kc, 'User', 'ops', 'boss')), 20_000);
    expect((await stored('ops'))!.users.has('boss')).toBe(false);
  }, 60_000);

  test('a second owner is refused with the rule; ownership transfer keeps the former owner administrator', async () => {
    await namespace('own');
    await apply(yaml('own', `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: NS}
spec: {email: ann@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: bob, namespace: NS}
spec: {email: bob@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner, namespace: NS}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: ann}]}
`));
    await eventually('owner binding ready', async () => ready(await getResource(kc, 'RoleBinding', 'own', 'owner'))?.status === 'True');
    await apply(yaml('own', 'apiVersion: rpa-access.io/v1alpha1\nkind: RoleBinding\nmetadata: {name: owner-2, namespace: NS}\nspec: {roleRef: {name: owner}, subjects: [{kind: User, name: bob}]}\n'));
    const refused = await eventually('second owner refused', async () => {
      const c = ready(await getResource(kc, 'RoleBinding', 'own', 'owner-2'));
      return c?.reason === 'SingleOwner' ? c : undefined;
    });
    expect(refused.message).toContain('at most one owner');
    expect((await stored('own'))!.bindings.has('owner-2')).toBe(false);
    await kubectl(cp.kubeconfigPath, ['delete', 'rolebinding.rpa-access.io', 'owner-2', '-n', 'own']);

    await apply(yaml('own', 'apiVersion: rpa-access.io/v1alpha1\nkind: RoleBinding\nmetadata: {name: owner, namespace: NS}\nspec: {roleRef: {name: owner}, subjects: [{kind: User, name: bob}]}\n'));
    await eventually('transfer in the store', async () => (await stored('own'))?.bindings.get('former-owner-ann')?.spec.roleRef.name === 'administrator');
    await eventually('OwnershipTransferred event', async () => (await eventsFor(kc, 'own', 'owner')).some((e) => e.reason === 'OwnershipTransferred'));
  }, 60_000);

  test('drift in the store is put back', async () => {
    await namespace('drift');
    await apply(yaml('drift', 'apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: ann, namespace: NS}\nspec: {email: ann@example.com, fullName: Ann}\n'));
    await eventually('ann ready', async () => ready(await getResource(kc, 'User', 'drift', 'ann'))?.status === 'True');
    // Someone writes to the store behind the operator's back.
    const other = await openStore(storeUrl);
    const ann = (await other.loadTenant('drift'))!.state.users.get('ann')!;
    await other.apply([{ tenant: 'drift', upserts: [{ ...ann, spec: { ...ann.spec, fullName: 'Mallory', active: false } }, { kind: 'User', name: 'ghost', origin: 'user', spec: { ...ann.spec, email: 'ghost@example.com' } }] }]);
    await other.close();
    await eventually('store put back', async () => {
      const s = await stored('drift');
      return s?.users.get('ann')?.spec.fullName === 'Ann' && s.users.get('ann')?.spec.active === true && !s.users.has('ghost');
    }, 20_000);
  }, 40_000);

  test('changes made while the operator is down are applied after a restart; tenants stay apart', async () => {
    await namespace('iso-a');
    await namespace('iso-b');
    await apply(yaml('iso-a', 'apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: u1, namespace: NS}\nspec: {email: u1@example.com}\n'));
    await apply(yaml('iso-b', 'apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: u1, namespace: NS}\nspec: {email: u1@example.com}\n'));
    await eventually('both ready', async () =>
      ready(await getResource(kc, 'User', 'iso-a', 'u1'))?.status === 'True' && ready(await getResource(kc, 'User', 'iso-b', 'u1'))?.status === 'True');
    await operator!.idle();
    const revB = (await operator!.store.revisions()).get('iso-b');

    await operator!.stop();
    operator = undefined;
    await apply(yaml('iso-a', `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: u2, namespace: NS}
spec: {email: u2@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: u1, namespace: NS}
spec: {email: u1@example.com, fullName: Updated While Down}
`));
    await kubectl(cp.kubeconfigPath, ['delete', 'user.rpa-access.io', 'u1', '-n', 'iso-b', '--wait=false']);

    operator = await start();
    await operator.whenRunning();
    await eventually('changes made while down are in the store', async () => {
      const a = await stored('iso-a');
      const b = await stored('iso-b');
      return a?.users.has('u2') && a.users.get('u1')?.spec.fullName === 'Updated While Down' && b && !b.users.has('u1');
    }, 30_000);
    await eventually('u1 in iso-b gone from the cluster', async () => !(await getResource(kc, 'User', 'iso-b', 'u1')));
    // Tenant iso-b changed only by its own delete; nothing of iso-a leaked into it.
    const b = (await stored('iso-b'))!;
    expect([...b.users.keys()]).toEqual([]);
    expect((await operator.store.revisions()).get('iso-b')).toBe(revB! + 1);
  }, 90_000);
});
