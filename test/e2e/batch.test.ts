// Batches on a real API server: objects of one tenant waiting together are written to the store
// in one transaction; the ones an invariant refuses get their own refusal and hold back nothing
// (docs/runtime.md, "Objects of one tenant are written in batches").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { allEntries } from '../../src/model/tenant.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventsFor, eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const NS = 'mixed';

/** Valid objects and objects that break an invariant, in one document set. */
const DOCS = `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: ${NS}}
spec: {email: ann@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: bob, namespace: ${NS}}
spec: {email: bob@example.com, groups: [ops]}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: bob-again, namespace: ${NS}}
spec: {email: BOB@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: ops, namespace: ${NS}}
spec: {}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: own-a, namespace: ${NS}}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: ann}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: own-b, namespace: ${NS}}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: bob}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: former-owner-zed, namespace: ${NS}}
spec: {roleRef: {name: viewer}, subjects: [{kind: User, name: bob}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: ops-view, namespace: ${NS}}
spec: {roleRef: {name: analyst}, subjects: [{kind: Group, name: ops}]}
`;

suite('batches of one tenant on a real API server', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let operator: OperatorHandle | undefined;

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
  }, 60_000);

  test('a batch mixing valid objects and objects breaking invariants: the valid land Ready, the others are refused, nothing else changes', async () => {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    // Declared before the operator starts: every key is waiting at once, so they form one batch.
    const r = await kubectl(cp.kubeconfigPath, ['apply', '-f', '-'], DOCS);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
    const store = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-e2e-batch-'));
    operator = await startOperator({ kubeconfig: kc, store, log, healthPort: 0, concurrency: 2, leaderElection: false, driftPeriodMs: 60_000 });
    await operator.whenRunning();

    const condition = (kind: string, name: string) =>
      eventually(`${kind}/${name} reports`, async () => ready(await getResource(kc, kind, NS, name)), 60_000);
    for (const [kind, name] of [['User', 'ann'], ['User', 'bob'], ['Group', 'ops'], ['RoleBinding', 'own-a'], ['RoleBinding', 'ops-view']] as const) {
      await eventually(`${kind}/${name} Ready=True`, async () => ready(await getResource(kc, kind, NS, name))?.status === 'True', 60_000);
    }
    // Between two new owner bindings the first by name wins; the second is refused, naming it.
    const ownB = await condition('RoleBinding', 'own-b');
    expect(ownB).toMatchObject({ status: 'False', reason: 'SingleOwner' });
    expect(ownB.message).toContain(`RoleBinding ${NS}/own-a already grants owner`);
    const reserved = await condition('RoleBinding', 'former-owner-zed');
    expect(reserved).toMatchObject({ status: 'False', reason: 'ReservedName' });
    // Two Users with one email: the first by name (bob) lands, bob-again is refused.
    const again = await condition('User', 'bob-again');
    expect(again).toMatchObject({ status: 'False', reason: 'UniqueEmail' });
    expect(again.message).toContain(`User ${NS}/bob`);

    await operator.idle();
    const state = (await operator.store.loadTenant(NS))!.state;
    const declared = allEntries(state).filter((e) => e.origin === 'user').map((e) => `${e.kind}/${e.name}`).sort();
    expect(declared).toEqual(['Group/ops', 'RoleBinding/ops-view', 'RoleBinding/own-a', 'User/ann', 'User/bob']);
    // The refusals are told where people look, each on its own object.
    await eventually('Warning Events on the refused objects', async () => {
      const events = await eventsFor(kc, NS);
      return ['RoleBinding/own-b', 'RoleBinding/former-owner-zed', 'User/bob-again'].every((what) => events.some((e) => e.type === 'Warning' && e.regarding === what));
    }, 15_000);
    // Refused objects keep their finalizer: a later delete still passes through the store.
    expect((await getResource(kc, 'RoleBinding', NS, 'own-b'))?.metadata.finalizers).toContain('rpa-access.io/store');
  }, 180_000);
});
