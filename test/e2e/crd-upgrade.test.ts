/**
 * An upgrade of the CRDs under a running operator, from the schema of earlier releases, where
 * `status.conditions` was a map list keyed by `type`, to today's atomic list. The API server keeps
 * the objects and their managedFields as they were written under the old schema; the operator must
 * go on writing status (a condition that changes, a new generation) and the store must keep what
 * it holds: an upgrade revokes nothing and leaves no object stuck with a stale status.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import pino from 'pino';
import { buildCrds } from '../../src/api/v1alpha1/crds.js';
import { FIELD_MANAGER } from '../../src/operator/cluster.js';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Today's CRDs with the conditions of earlier releases: a map list keyed by `type`. */
function crdsWithMapConditions(): Json[] {
  return (structuredClone(buildCrds()) as Json[]).map((crd) => {
    const conditions = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.conditions as Json;
    conditions['x-kubernetes-list-type'] = 'map';
    conditions['x-kubernetes-list-map-keys'] = ['type'];
    return crd;
  });
}

/** The fields the operator's status patches own, as the API server tracks them. */
async function operatorStatusFields(kc: KubeConfig, kind: string, ns: string, name: string): Promise<Json | undefined> {
  const r = (await getResource(kc, kind, ns, name)) as unknown as { metadata: { managedFields?: { manager: string; fieldsV1?: Json }[] } };
  return r.metadata.managedFields?.find((m) => m.manager === FIELD_MANAGER && m.fieldsV1?.['f:status'])?.fieldsV1?.['f:status'];
}

suite('CRD upgrade: conditions from a map list to an atomic list', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let storeUrl: string;
  let oldCrdDir: string;
  let operator: OperatorHandle | undefined;

  const run = (args: string[], input?: string) => kubectl(cp.kubeconfigPath, args, input);
  const must = async (args: string[], input?: string) => {
    const r = await run(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
    return r;
  };
  const readyOf = async (kind: string, name: string) => ready(await getResource(kc, kind, 'upgrade', name));

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    oldCrdDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-old-crds-'));
    fs.writeFileSync(path.join(oldCrdDir, 'crds.yaml'), crdsWithMapConditions().map((c) => yaml.dump(c)).join('---\n'));
    await installCrds(cp, oldCrdDir);
    storeUrl = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-upgrade-e2e-'));
    operator = await startOperator({ kubeconfig: kc, store: storeUrl, log, healthPort: 0, concurrency: 4, leaderElection: false });
    await operator.whenRunning();
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    for (const dir of [storeUrl, oldCrdDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('objects written under the old schema keep their access, and their status goes on following them', async () => {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'upgrade' } } });
    await must(['apply', '-f', '-'], `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: upgrade}
spec: {email: ann@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: ann-auditor, namespace: upgrade}
spec: {roleRef: {name: auditor}, subjects: [{kind: User, name: ann}]}
`);
    await eventually('ann Ready', async () => (await readyOf('User', 'ann'))?.status === 'True');
    const missing = await eventually('ann-auditor waits for its role', async () => (await readyOf('RoleBinding', 'ann-auditor')));
    expect(missing).toMatchObject({ status: 'False' });
    // The old schema was in force: the API server tracked the Ready condition field by field.
    expect(Object.keys((await operatorStatusFields(kc, 'User', 'upgrade', 'ann'))!['f:conditions'])).toContain('k:{"type":"Ready"}');

    await installCrds(cp, path.resolve('crds'));

    // A condition that changes: the role appears, the binding turns Ready.
    await must(['apply', '-f', '-'], `
apiVersion: rpa-access.io/v1alpha1
kind: Role
metadata: {name: auditor, namespace: upgrade}
spec: {scope: Tenant, permissions: [{resource: Audit, actions: [View]}]}
`);
    await eventually('ann-auditor Ready under the new schema', async () => (await readyOf('RoleBinding', 'ann-auditor'))?.status === 'True', 30_000);
    // A new generation: the status follows it.
    await must(['patch', 'user.rpa-access.io', 'ann', '-n', 'upgrade', '--type=merge', '-p', '{"spec":{"fullName":"Ann Smith"}}']);
    await eventually('ann Ready for generation 2', async () => {
      const r = await getResource(kc, 'User', 'upgrade', 'ann');
      return r?.metadata.generation === 2 && ready(r)?.status === 'True';
    }, 30_000);

    // The conditions are one value to the API server now, and nothing left the store.
    expect((await operatorStatusFields(kc, 'RoleBinding', 'upgrade', 'ann-auditor'))!['f:conditions']).toEqual({});
    expect((await operatorStatusFields(kc, 'User', 'upgrade', 'ann'))!['f:conditions']).toEqual({});
    await operator!.idle();
    const state = (await operator!.store.loadTenant('upgrade'))!.state;
    expect(state.users.get('ann')?.spec.fullName).toBe('Ann Smith');
    expect(state.bindings.get('ann-auditor')?.spec.roleRef.name).toBe('auditor');
  }, 120_000);
});
