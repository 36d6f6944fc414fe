/**
 * The operator on a current Kubernetes (K3s in Docker through testcontainers), asked for with
 * RPA_ACCESS_E2E_K3S=1: the CRDs install as they are, their CEL rules are enforced by the API
 * server alone (no webhook runs here), and a tenant's documents become Ready and reach the store.
 * Without a Docker engine it skips, saying why in one line; without RPA_ACCESS_E2E_K3S it skips
 * quietly (the other e2e suites run on the local kube-apiserver 1.20).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { eventually, getResource, installCrds, kubectl, ready } from '../support/kube.js';
import { K3S_IMAGE, k3sAvailability, startK3s, type K3s } from '../support/k3s.js';

const wanted = process.env.RPA_ACCESS_E2E_K3S === '1';
const availability = wanted ? await k3sAvailability() : undefined;
if (availability && !availability.ok) console.warn(`K3s e2e skipped: RPA_ACCESS_E2E_K3S=1 but ${availability.why}`);
const suite = availability?.ok ? describe : describe.skip;

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });

suite(`operator on K3s (${K3S_IMAGE})`, () => {
  let k3s: K3s;
  let kc: KubeConfig;
  let operator: OperatorHandle | undefined;

  const apply = (docs: string) => kubectl(k3s.kubeconfigPath, ['apply', '-f', '-'], docs);

  beforeAll(async () => {
    k3s = await startK3s();
    kc = new KubeConfig();
    kc.loadFromFile(k3s.kubeconfigPath);
    await installCrds(k3s, path.resolve('crds'));
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'finance' } } });
    operator = await startOperator({
      kubeconfig: kc, store: fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-e2e-k3s-')), log, healthPort: 0, concurrency: 4, leaderElection: false,
    });
    await operator.whenRunning();
  }, 300_000);

  afterAll(async () => {
    await operator?.stop();
    await k3s?.stop();
  }, 120_000);

  test('the API server refuses a folder role without a folder (CEL), before any webhook', async () => {
    const r = await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: no-folder, namespace: finance}
spec: {roleRef: {name: automation-user}, subjects: [{kind: User, name: john-smith}]}
`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.folder is required for a folder role');
  });

  test('documents become Ready and reach the store; roleRef stays immutable (CEL)', async () => {
    const created = await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john-smith, namespace: finance}
spec: {email: john.smith@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-payments, namespace: finance}
spec: {roleRef: {name: automation-user}, folder: Finance/Payments, subjects: [{kind: User, name: john-smith}]}
`);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    await eventually('RoleBinding Ready', async () => ready(await getResource(kc, 'RoleBinding', 'finance', 'john-payments'))?.status === 'True', 60_000, 250);
    const state = (await operator!.store.loadTenant('finance'))?.state;
    expect(state?.bindings.get('john-payments')?.spec.folder).toBe('Finance/Payments');

    const changed = await kubectl(k3s.kubeconfigPath, ['patch', 'rolebinding.rpa-access.io', 'john-payments', '-n', 'finance', '--type=merge', '-p', '{"spec":{"roleRef":{"name":"folder-viewer"}}}']);
    expect(changed.code).not.toBe(0);
    expect(changed.stderr).toContain('roleRef is immutable');
  }, 120_000);
});
