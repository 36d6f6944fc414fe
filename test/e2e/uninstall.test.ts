/**
 * Issue 13 item 13: uninstalling never revokes access. Deleting the CustomResourceDefinitions
 * (what `kubectl delete -k config/default` does, or one mistaken command) makes the API server
 * delete every object of the kind; the operator must let them go without touching the store, so
 * that the CRDs actually go away and every tenant keeps its access; a reinstall adopts them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { allEntries, canonicalJson } from '../../src/model/tenant.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const CRD_DIR = path.resolve('crds');

function tenant(ns: string): string {
  return `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: boss, namespace: ${ns}}
spec: {email: boss@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: clerk, namespace: ${ns}}
spec: {email: clerk@example.com, groups: [clerks]}
---
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: clerks, namespace: ${ns}}
spec: {displayName: Clerks}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner, namespace: ${ns}}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: boss}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: clerks-run, namespace: ${ns}}
spec: {roleRef: {name: automation-user}, folder: Invoices, subjects: [{kind: Group, name: clerks}]}
`;
}

suite('uninstalling never revokes access (issue 13 item 13)', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let storeUrl: string;
  let operator: OperatorHandle | undefined;

  const run = (args: string[], input?: string) => kubectl(cp.kubeconfigPath, args, input);
  const snapshot = async (ns: string) => canonicalJson(allEntries((await operator!.store.loadTenant(ns))!.state));
  const metrics = async () => (await fetch(`http://127.0.0.1:${operator!.healthPort}/metrics`)).text();

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    await installCrds(cp, CRD_DIR);
    storeUrl = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-uninstall-e2e-'));
    operator = await startOperator({ kubeconfig: kc, store: storeUrl, log, healthPort: 0, leaderElection: false, driftPeriodMs: 3_000 });
    await operator.whenRunning();
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    if (storeUrl) fs.rmSync(storeUrl, { recursive: true, force: true });
  }, 60_000);

  test('deleting the CRDs with objects in two tenants: the store is unchanged and the CRDs go away; a reinstall adopts them', async () => {
    for (const ns of ['hr', 'sales']) {
      await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
      const r = await run(['apply', '-f', '-'], tenant(ns));
      if (r.code !== 0) throw new Error(r.stderr);
    }
    for (const ns of ['hr', 'sales']) {
      for (const [kind, name] of [['User', 'boss'], ['User', 'clerk'], ['Group', 'clerks'], ['RoleBinding', 'owner'], ['RoleBinding', 'clerks-run']] as const) {
        await eventually(`${kind} ${ns}/${name} Ready`, async () => ready(await getResource(kc, kind, ns, name))?.status === 'True');
      }
      await eventually(`global of ${ns} ready`, async () => ready(await getResource(kc, 'Group', ns, 'global'))?.reason === 'BuiltIn');
    }
    await operator!.idle();
    const before = { hr: await snapshot('hr'), sales: await snapshot('sales') };
    const auditBefore = (await operator!.store.audit({})).length;

    // The uninstall: every CRD at once, as `kubectl delete -k config/default` does.
    const del = await run(['delete', '-f', CRD_DIR, '--wait=false']);
    expect(del.code).toBe(0);
    await eventually('every CRD is gone', async () => {
      const r = await run(['get', 'crd', '-o', 'name']);
      return r.code === 0 && !r.stdout.includes('rpa-access.io');
    }, 60_000, 500);

    // Nobody lost anything, in either tenant, and a drift pass or two later still nothing.
    await new Promise((r) => setTimeout(r, 7_000));
    expect(await snapshot('hr')).toBe(before.hr);
    expect(await snapshot('sales')).toBe(before.sales);
    const audit = await operator!.store.audit({});
    expect(audit.length).toBe(auditBefore);
    expect(await metrics()).toMatch(/rpa_access_uninstall_released_total\{kind="User"\} [1-9]/);

    // Reinstall: the CRDs come back and the same documents are adopted, nothing rewritten.
    await installCrds(cp, CRD_DIR);
    for (const ns of ['hr', 'sales']) {
      const r = await run(['apply', '-f', '-'], tenant(ns));
      if (r.code !== 0) throw new Error(r.stderr);
    }
    for (const ns of ['hr', 'sales']) {
      for (const [kind, name] of [['User', 'boss'], ['RoleBinding', 'owner'], ['RoleBinding', 'clerks-run']] as const) {
        await eventually(`${kind} ${ns}/${name} Ready after reinstall`, async () => ready(await getResource(kc, kind, ns, name))?.status === 'True', 60_000);
      }
      await eventually(`global of ${ns} back`, async () => ready(await getResource(kc, 'Group', ns, 'global'))?.reason === 'BuiltIn', 60_000);
    }
    await operator!.idle();
    expect(await snapshot('hr')).toBe(before.hr);
    expect(await snapshot('sales')).toBe(before.sales);
    expect((await operator!.store.audit({})).filter((a) => a.action === 'deleted')).toEqual([]);
  }, 240_000);
});
