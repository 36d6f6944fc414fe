/**
 * Issue 15: what the cluster shows is what grants. Each case was found on a real kube-apiserver
 * with a binding that the cluster showed as gone, changed or healthy while the store granted
 * something else: pause kept access after a delete and hid a change, expiry went unreported,
 * one refused orphan held back drift repair for its whole tenant, and a hand-edited status stood.
 *
 * The operator runs with a drift period far longer than the tests, so nothing here passes thanks
 * to the periodic drift pass: every correction must come from the event that calls for it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { rpa } from '../cli/helpers.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventsFor, eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const TEN_MINUTES = 600_000;

/** RFC 3339 with whole seconds, `seconds` from now. */
function inSeconds(seconds: number): string {
  return new Date(Math.ceil(Date.now() / 1000) * 1000 + seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

suite('what the cluster shows is what grants (issue 15)', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let storeUrl: string;
  let operator: OperatorHandle | undefined;

  const start = () =>
    startOperator({ kubeconfig: kc, store: storeUrl, log, healthPort: 0, concurrency: 4, leaderElection: false, driftPeriodMs: TEN_MINUTES });
  const run = (args: string[], input?: string) => kubectl(cp.kubeconfigPath, args, input);
  const apply = async (docs: string) => {
    const r = await run(['apply', '-f', '-'], docs);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };
  const must = async (args: string[]) => {
    const r = await run(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
    return r;
  };
  const namespace = (name: string) => kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  const stored = async (tenant: string) => (await operator!.store.loadTenant(tenant))?.state;
  const readyOf = async (kind: string, ns: string, name: string) => ready(await getResource(kc, kind, ns, name));
  const metrics = async () => (await fetch(`http://127.0.0.1:${operator!.healthPort}/metrics`)).text();
  /** Deleted past our finalizer, as `kubectl patch` on finalizers after a delete does. */
  const forceDelete = async (resource: string, ns: string, name: string) => {
    await must(['delete', resource, name, '-n', ns, '--wait=false']);
    await must(['patch', resource, name, '-n', ns, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    storeUrl = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-truth-e2e-'));
    operator = await start();
    await operator.whenRunning();
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    if (storeUrl) fs.rmSync(storeUrl, { recursive: true, force: true });
  }, 60_000);

  test('case 2: a paused binding reports Paused with the generation last applied, and its change waits until resumed', async () => {
    await namespace('pause');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: pause}
spec: {email: ann@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: ann-viewer, namespace: pause}
spec: {roleRef: {name: folder-viewer}, folder: Shared, subjects: [{kind: User, name: ann}]}
`);
    await eventually('ann-viewer Ready', async () => (await readyOf('RoleBinding', 'pause', 'ann-viewer'))?.status === 'True');

    await must(['annotate', 'rolebinding.rpa-access.io', 'ann-viewer', '-n', 'pause', 'rpa-access.io/paused=true']);
    const paused = await eventually('Ready=False, Paused', async () => {
      const c = await readyOf('RoleBinding', 'pause', 'ann-viewer');
      return c?.reason === 'Paused' ? c : undefined;
    }, 15_000);
    expect(paused.status).toBe('False');
    expect(paused.message).toContain('generation 1');
    await eventually('a Paused Event', async () => (await eventsFor(kc, 'pause', 'ann-viewer')).some((e) => e.reason === 'Paused'), 15_000);

    // The change is in the cluster, not in the store, and the object says so.
    await must(['patch', 'rolebinding.rpa-access.io', 'ann-viewer', '-n', 'pause', '--type=merge', '-p', '{"spec":{"folder":"Secret"}}']);
    const behind = await eventually('Paused names generation 2 as not applied', async () => {
      const r = await getResource(kc, 'RoleBinding', 'pause', 'ann-viewer');
      const c = ready(r);
      return r?.metadata.generation === 2 && c?.reason === 'Paused' ? c : undefined;
    }, 15_000);
    expect(behind.status).toBe('False');
    expect(behind.message).toMatch(/generation 1/);
    expect(behind.message).toMatch(/generation 2/);
    await operator!.idle();
    expect((await stored('pause'))!.bindings.get('ann-viewer')!.spec.folder).toBe('Shared');

    // Resuming applies the change, and an Event says pause ended.
    await must(['annotate', 'rolebinding.rpa-access.io', 'ann-viewer', '-n', 'pause', 'rpa-access.io/paused-']);
    await eventually('Ready=True again', async () => (await readyOf('RoleBinding', 'pause', 'ann-viewer'))?.status === 'True', 15_000);
    expect((await stored('pause'))!.bindings.get('ann-viewer')!.spec.folder).toBe('Secret');
    await eventually('a Resumed Event', async () => (await eventsFor(kc, 'pause', 'ann-viewer')).some((e) => e.reason === 'Resumed'), 15_000);
  }, 90_000);

  test('case 1: pause never blocks a deletion: the binding leaves the cluster and the store', async () => {
    await namespace('pause-delete');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: bob, namespace: pause-delete}
spec: {email: bob@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: bob-admin, namespace: pause-delete}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: bob}]}
`);
    await eventually('bob-admin Ready', async () => (await readyOf('RoleBinding', 'pause-delete', 'bob-admin'))?.status === 'True');
    await must(['annotate', 'rolebinding.rpa-access.io', 'bob-admin', '-n', 'pause-delete', 'rpa-access.io/paused=true']);
    await eventually('bob-admin Paused', async () => (await readyOf('RoleBinding', 'pause-delete', 'bob-admin'))?.reason === 'Paused', 15_000);

    await must(['delete', 'rolebinding.rpa-access.io', 'bob-admin', '-n', 'pause-delete', '--wait=false']);
    await eventually('bob-admin gone from the cluster', async () => !(await getResource(kc, 'RoleBinding', 'pause-delete', 'bob-admin')), 15_000);
    expect((await stored('pause-delete'))!.bindings.has('bob-admin')).toBe(false);
  }, 60_000);

  test('built-ins cannot be paused: the operator keeps restoring them and drops the annotation', async () => {
    await namespace('pause-builtin');
    await apply('apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: cy, namespace: pause-builtin}\nspec: {email: cy@example.com}\n');
    await eventually('analyst role ready', async () => (await readyOf('Role', 'pause-builtin', 'analyst'))?.reason === 'BuiltIn');
    await must(['annotate', 'role.rpa-access.io', 'analyst', '-n', 'pause-builtin', 'rpa-access.io/paused=true']);
    await must(['patch', 'role.rpa-access.io', 'analyst', '-n', 'pause-builtin', '--type=merge', '-p', '{"spec":{"permissions":[{"resource":"Users","actions":["Delete"]}]}}']);
    await eventually('analyst restored and unpaused', async () => {
      const r = await getResource(kc, 'Role', 'pause-builtin', 'analyst');
      const annotations = (r?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
      return r && !JSON.stringify(r.spec).includes('"Delete"') && annotations['rpa-access.io/paused'] === undefined;
    }, 15_000);
  }, 60_000);

  test('case 3: expiry is an event in time: Ready=False Expired and an Expired Event at expiresAt', async () => {
    await namespace('expiry');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: dan, namespace: expiry}
spec: {email: dan@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: dan-temp, namespace: expiry}
spec: {roleRef: {name: analyst}, subjects: [{kind: User, name: dan}], expiresAt: "${inSeconds(6)}"}
`);
    await eventually('dan-temp Ready while valid', async () => (await readyOf('RoleBinding', 'expiry', 'dan-temp'))?.reason === 'Applied');
    const expired = await eventually('Ready=False, Expired', async () => {
      const c = await readyOf('RoleBinding', 'expiry', 'dan-temp');
      return c?.reason === 'Expired' ? c : undefined;
    }, 20_000);
    expect(expired.status).toBe('False');
    await eventually('an Expired Event', async () => (await eventsFor(kc, 'expiry', 'dan-temp')).some((e) => e.reason === 'Expired'), 10_000);
  }, 60_000);

  test('case 5: a hand-edited status is put back at once', async () => {
    await namespace('handedit');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: handedit}
spec: {email: ann@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: bob, namespace: handedit}
spec: {email: bob@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner, namespace: handedit}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: ann}]}
`);
    await eventually('owner Ready', async () => (await readyOf('RoleBinding', 'handedit', 'owner'))?.status === 'True');
    await apply('apiVersion: rpa-access.io/v1alpha1\nkind: RoleBinding\nmetadata: {name: owner-2, namespace: handedit}\nspec: {roleRef: {name: owner}, subjects: [{kind: User, name: bob}]}\n');
    await eventually('owner-2 refused', async () => (await readyOf('RoleBinding', 'handedit', 'owner-2'))?.reason === 'SingleOwner');
    await operator!.idle();

    const lie = { status: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Applied', message: 'In the access store and effective.', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
    await must(['patch', 'rolebinding.rpa-access.io', 'owner-2', '-n', 'handedit', '--subresource=status', '--type=merge', '-p', JSON.stringify(lie)]);
    const back = await eventually('the operator\'s status is back', async () => {
      const c = await readyOf('RoleBinding', 'handedit', 'owner-2');
      return c?.reason === 'SingleOwner' ? c : undefined;
    }, 10_000);
    expect(back.status).toBe('False');

    // The other way round: a healthy object hand-marked as failing is put back too.
    const scare = { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'Invalid', message: 'hand-written', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
    await must(['patch', 'user.rpa-access.io', 'ann', '-n', 'handedit', '--subresource=status', '--type=merge', '-p', JSON.stringify(scare)]);
    await eventually('ann Ready again', async () => (await readyOf('User', 'handedit', 'ann'))?.reason === 'Applied', 10_000);
  }, 60_000);

  test('case 4: a refused orphan is reported and does not hold back the other orphans of its tenant; ghosts are listed', async () => {
    await namespace('orphans');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: boss, namespace: orphans}
spec: {email: boss@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: carol, namespace: orphans}
spec: {email: carol@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: dave, namespace: orphans}
spec: {email: dave@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner, namespace: orphans}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: boss}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: carol-admin, namespace: orphans}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: carol}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: dave-view, namespace: orphans}
spec: {roleRef: {name: analyst}, subjects: [{kind: User, name: dave}]}
`);
    for (const [kind, name] of [['User', 'boss'], ['RoleBinding', 'owner'], ['RoleBinding', 'carol-admin'], ['RoleBinding', 'dave-view']] as const) {
      await eventually(`${kind}/${name} Ready`, async () => (await readyOf(kind, 'orphans', name))?.status === 'True');
    }
    await eventually('global group ready', async () => (await readyOf('Group', 'orphans', 'global'))?.reason === 'BuiltIn');
    await operator!.idle();

    // While the operator is down, objects leave the cluster past its finalizer.
    await operator!.stop();
    operator = undefined;
    await forceDelete('user.rpa-access.io', 'orphans', 'boss');
    await forceDelete('rolebinding.rpa-access.io', 'orphans', 'carol-admin');
    await forceDelete('rolebinding.rpa-access.io', 'orphans', 'dave-view');
    operator = await start();
    await operator.whenRunning();

    // The other orphans go, though the store refuses to delete boss (he holds owner).
    await eventually('carol-admin and dave-view leave the store', async () => {
      const s = await stored('orphans');
      return s && !s.bindings.has('carol-admin') && !s.bindings.has('dave-view');
    }, 20_000);
    expect((await stored('orphans'))!.users.has('boss')).toBe(true);

    // The refusal is seen where users look, and names what would unblock it.
    const warning = await eventually('a Warning Event on the global group', async () =>
      (await eventsFor(kc, 'orphans', 'global')).find((e) => e.type === 'Warning' && e.note.includes('User orphans/boss')), 15_000);
    expect(warning.note).toContain('RoleBinding orphans/owner');
    const text = await eventually('the ghost on /metrics', async () => {
      const m = await metrics();
      return m.includes('rpa_access_ghost_objects{tenant="orphans"} 1') ? m : undefined;
    }, 10_000);
    expect(text).toMatch(/rpa_access_orphan_delete_refused_total\{tenant="orphans",kind="User"\} [1-9]/);

    // A CLI command lists the ghosts: what the store holds and the cluster does not show.
    const listed = await rpa(['--store', storeUrl, 'ghosts', '--tenant', 'orphans', '--output', 'json'], { env: { KUBECONFIG: cp.kubeconfigPath } });
    expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining('error') });
    expect(JSON.parse(listed.stdout)).toEqual({ ghosts: [{ tenant: 'orphans', kind: 'User', name: 'boss', reason: expect.stringContaining('RoleBinding orphans/owner') }] });
    const plain = await rpa(['--store', storeUrl, 'ghosts'], { env: { KUBECONFIG: cp.kubeconfigPath } });
    expect(plain.stdout).toContain('User/orphans/boss');

    // Doing what the refusal says unblocks it without waiting for the drift period.
    await must(['delete', 'rolebinding.rpa-access.io', 'owner', '-n', 'orphans', '--wait=false']);
    await eventually('boss leaves the store', async () => !(await stored('orphans'))?.users.has('boss'), 20_000);
    await eventually('no ghost left', async () => (await metrics()).includes('rpa_access_ghost_objects{tenant="orphans"} 0'), 10_000);
  }, 120_000);

  test('contract 4.7: the binding the store creates at an ownership transfer is mirrored into the cluster, labelled; deleting it offboards the former owner', async () => {
    await namespace('transfer');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: transfer}
spec: {email: ann@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: bob, namespace: transfer}
spec: {email: bob@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner, namespace: transfer}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: ann}]}
`);
    await eventually('owner Ready', async () => (await readyOf('RoleBinding', 'transfer', 'owner'))?.status === 'True');
    await must(['patch', 'rolebinding.rpa-access.io', 'owner', '-n', 'transfer', '--type=merge', '-p', '{"spec":{"subjects":[{"kind":"User","name":"bob"}]}}']);
    const mirrored = await eventually('former-owner-ann in the cluster', () => getResource(kc, 'RoleBinding', 'transfer', 'former-owner-ann'), 15_000);
    expect((mirrored.metadata as { labels?: Record<string, string> }).labels?.['rpa-access.io/created-by']).toBe('ownership-transfer');
    expect(mirrored.spec).toEqual({ roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'ann' }] });
    await eventually('former-owner-ann Ready', async () => (await readyOf('RoleBinding', 'transfer', 'former-owner-ann'))?.status === 'True', 15_000);
    await eventually('an Event on it says where it comes from', async () => (await eventsFor(kc, 'transfer', 'former-owner-ann')).some((e) => e.reason === 'CreatedByOwnershipTransfer'), 10_000);

    // Offboarding the former owner, as docs say: delete the binding, then the user.
    await must(['delete', 'rolebinding.rpa-access.io', 'former-owner-ann', '-n', 'transfer', '--wait=false']);
    await eventually('binding gone from the store', async () => !(await stored('transfer'))?.bindings.has('former-owner-ann'), 15_000);
    await must(['delete', 'user.rpa-access.io', 'ann', '-n', 'transfer', '--wait=false']);
    await eventually('ann gone from the store', async () => !(await stored('transfer'))?.users.has('ann'), 15_000);
    expect(await getResource(kc, 'RoleBinding', 'transfer', 'former-owner-ann')).toBeUndefined();
  }, 60_000);

  test('case 3 after a restart: a binding that expired while the operator was down is reported at start', async () => {
    await namespace('expiry-down');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: eve, namespace: expiry-down}
spec: {email: eve@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: eve-temp, namespace: expiry-down}
spec: {roleRef: {name: analyst}, subjects: [{kind: User, name: eve}], expiresAt: "${inSeconds(6)}"}
`);
    await eventually('eve-temp Ready while valid', async () => (await readyOf('RoleBinding', 'expiry-down', 'eve-temp'))?.reason === 'Applied');
    await operator!.stop();
    operator = undefined;
    await new Promise((r) => setTimeout(r, 8_000));
    operator = await start();
    await operator.whenRunning();
    await eventually('Ready=False, Expired', async () => (await readyOf('RoleBinding', 'expiry-down', 'eve-temp'))?.reason === 'Expired', 15_000);
    await eventually('an Expired Event', async () => (await eventsFor(kc, 'expiry-down', 'eve-temp')).some((e) => e.reason === 'Expired'), 10_000);
  }, 60_000);
});
