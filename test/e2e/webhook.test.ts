/**
 * The admission webhook on a real API server: the operator runs in-process with its webhook on
 * an ephemeral port of 127.0.0.1 (self-signed mode), a ValidatingWebhookConfiguration points at
 * it by URL (there is no cluster network here, so no Service), the operator patches the CA into
 * it, and kubectl's writes are judged: refusals carry the object and the rule in kubectl's
 * message, the store is left as it was, and the operator's own bootstrap still passes.
 *
 * The operator runs as its own user (`rpa-operator`, system:masters): kubectl runs as `admin`,
 * whose requests the webhook judges like anyone's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';
import { DENIED, MUTATING_CONFIGURATION, WEBHOOK_CONFIGURATION, webhookConfiguration } from '../support/webhook.js';
import { FINALIZER } from '../../src/model/catalog.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const OPERATOR_USER = 'rpa-operator';
const SYSTEM_NS = 'rpa-access-system';

suite('admission webhook on a real API server', () => {
  let cp: ControlPlane;
  let admin: KubeConfig;
  let operator: OperatorHandle | undefined;
  let storeDir: string;

  const run = (args: string[], input?: string) => kubectl(cp.kubeconfigPath, args, input);
  const apply = async (docs: string) => {
    const r = await run(['apply', '-f', '-'], docs);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
    return r;
  };
  const namespace = (name: string) => admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  const stored = async (tenant: string) => (await operator!.store.loadTenant(tenant))?.state;

  beforeAll(async () => {
    cp = await startControlPlane({ users: [{ name: OPERATOR_USER, groups: ['system:masters'] }] });
    admin = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    await namespace(SYSTEM_NS);
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-webhook-e2e-'));
    operator = await startOperator({
      kubeconfig: kubeConfigOf(cp, OPERATOR_USER), store: storeDir, log, healthPort: 0, leaderElection: false, driftPeriodMs: 2_000,
      webhook: {
        port: 0, host: '127.0.0.1', namespace: SYSTEM_NS, configurationName: WEBHOOK_CONFIGURATION,
        operatorUsernames: [OPERATOR_USER], certSyncPeriodMs: 300,
      },
    });
    await operator.whenRunning();
    await apply(webhookConfiguration(operator.webhook!.port));
    // The operator puts its CA into the configuration; the API server then reaches the webhook.
    await eventually('caBundle patched', async () => {
      const r = await run(['get', 'validatingwebhookconfiguration', WEBHOOK_CONFIGURATION, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}']);
      return r.stdout.length > 100;
    });
    await eventually('the webhook answers', async () => {
      const r = await run(['create', '--dry-run=server', '-f', '-'], 'apiVersion: rpa-access.io/v1alpha1\nkind: Role\nmetadata: {name: owner, namespace: default}\nspec: {scope: Tenant}\n');
      return r.stderr.includes(DENIED);
    });
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }, 60_000);

  test('self-signed mode: the CA and serving certificate are kept in a Secret of the operator namespace', async () => {
    const secret = await admin.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'rpa-access-webhook-cert', namespace: SYSTEM_NS });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const caBundle = (await run(['get', 'validatingwebhookconfiguration', WEBHOOK_CONFIGURATION, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout;
    expect(caBundle).toBe(secret.data!['ca.crt']);
  });

  test('the mutating webhook puts the finalizer on at create: no separate write by the operator', async () => {
    await eventually('mutating caBundle patched', async () => {
      const r = await run(['get', 'mutatingwebhookconfiguration', MUTATING_CONFIGURATION, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}']);
      return r.stdout.length > 100;
    });
    await namespace('mutated');
    const doc = (name: string) => `apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: ${name}, namespace: mutated}\nspec: {email: ${name}@example.com}\n`;
    // The API server may take a moment to use the new caBundle: until then failurePolicy Ignore
    // lets creates through without it (and the operator adds it later), so probe with dry runs.
    await eventually('the mutating webhook answers', async () => {
      const r = await run(['create', '--dry-run=server', '-o', 'jsonpath={.metadata.finalizers}', '-f', '-'], doc('probe'));
      return r.stdout.includes(FINALIZER);
    });
    const created = await run(['create', '-o', 'json', '-f', '-'], doc('ann'));
    expect(created.code).toBe(0);
    const object = JSON.parse(created.stdout);
    expect(object.metadata.finalizers).toEqual([FINALIZER]);
    // The object's first version already carried it, and the operator wrote only its status after.
    await eventually('ann Ready', async () => ready(await getResource(admin, 'User', 'mutated', 'ann'))?.status === 'True');
    const after = await getResource(admin, 'User', 'mutated', 'ann');
    expect(after!.metadata.finalizers).toEqual([FINALIZER]);
    // Nobody else wrote the finalizers: a patch by the operator would file f:finalizers under its
    // own manager (a webhook's addition is filed under nobody's on this API server).
    const full = JSON.parse((await run(['get', 'user', 'ann', '-n', 'mutated', '-o', 'json', '--show-managed-fields'])).stdout);
    const finalizerWriters = (full.metadata.managedFields as { manager: string; fieldsV1?: { 'f:metadata'?: Record<string, unknown> } }[])
      .filter((f) => f.fieldsV1?.['f:metadata']?.['f:finalizers'] !== undefined)
      .map((f) => f.manager);
    expect(finalizerWriters.filter((manager) => manager !== 'kubectl-create')).toEqual([]);
  });

  test('the operator bootstraps a new tenant through its own webhook; valid objects pass', async () => {
    await namespace('finance');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john, namespace: finance}
spec: {email: john@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: jane, namespace: finance}
spec: {email: jane@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner, namespace: finance}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: john}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: jane-admin, namespace: finance}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: jane}]}
`);
    await eventually('global group created by the operator', async () => ready(await getResource(admin, 'Group', 'finance', 'global'))?.reason === 'BuiltIn');
    await eventually('developer role created by the operator', async () => ready(await getResource(admin, 'Role', 'finance', 'developer'))?.reason === 'BuiltIn');
    for (const [kind, name] of [['User', 'john'], ['User', 'jane'], ['RoleBinding', 'owner'], ['RoleBinding', 'jane-admin']] as const) {
      await eventually(`${kind}/${name} Ready`, async () => ready(await getResource(admin, kind, 'finance', name))?.status === 'True');
    }
  }, 60_000);

  test('refusals name the object and the rule; nothing changes', async () => {
    const before = JSON.stringify([...(await stored('finance'))!.bindings.keys(), ...(await stored('finance'))!.users.keys()]);

    const global = await run(['delete', 'groups.rpa-access.io', 'global', '-n', 'finance', '--wait=false']);
    expect(global.code).not.toBe(0);
    expect(global.stderr).toContain(`${DENIED}Group finance/global: the global group cannot be deleted`);

    const edit = await run(['patch', 'roles.rpa-access.io', 'developer', '-n', 'finance', '--type=merge', '-p', '{"spec":{"description":"mine now"}}']);
    expect(edit.code).not.toBe(0);
    expect(edit.stderr).toContain(`${DENIED}Role finance/developer: built-in role developer cannot be changed`);

    const second = await run(['apply', '-f', '-'], `
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner-2, namespace: finance}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: jane}]}
`);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`${DENIED}RoleBinding finance/owner-2: at most one owner per tenant: RoleBinding finance/owner already grants owner`);

    const holder = await run(['delete', 'users.rpa-access.io', 'jane', '-n', 'finance', '--wait=false']);
    expect(holder.code).not.toBe(0);
    expect(holder.stderr).toContain(`${DENIED}User finance/jane: cannot be deleted: holds administrator through the explicit RoleBinding finance/jane-admin`);

    const deactivate = await run(['patch', 'users.rpa-access.io', 'jane', '-n', 'finance', '--type=merge', '-p', '{"spec":{"active":false}}']);
    expect(deactivate.stderr).toContain(`${DENIED}User finance/jane: cannot be deactivated`);

    const roleRef = await run(['patch', 'rolebindings.rpa-access.io', 'jane-admin', '-n', 'finance', '--type=merge', '-p', '{"spec":{"roleRef":{"name":"analyst"}}}']);
    expect(roleRef.stderr).toContain(`${DENIED}RoleBinding finance/jane-admin: spec.roleRef is immutable`);

    const email = await run(['apply', '-f', '-'], 'apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: john2, namespace: finance}\nspec: {email: John@Example.com}\n');
    expect(email.stderr).toContain(`${DENIED}User finance/john2: email John@Example.com is already used by User finance/john`);

    // A reserved name, in a namespace that is not a tenant yet: nobody but the operator takes it.
    await namespace('sales');
    const reserved = await run(['apply', '-f', '-'], 'apiVersion: rpa-access.io/v1alpha1\nkind: Role\nmetadata: {name: administrator, namespace: sales}\nspec: {scope: Tenant}\n');
    expect(reserved.code).not.toBe(0);
    expect(reserved.stderr).toContain(`${DENIED}Role sales/administrator: the name administrator is reserved`);

    // The refusals are Forbidden (403), as kubectl shows.
    expect(global.stderr).toContain('Error from server (Forbidden)');

    // Nothing was applied: the cluster and the store are as they were.
    expect(await getResource(admin, 'Group', 'finance', 'global')).toMatchObject({ metadata: { name: 'global' } });
    expect((await getResource(admin, 'Group', 'finance', 'global'))?.metadata.deletionTimestamp).toBeUndefined();
    expect((await getResource(admin, 'Role', 'finance', 'developer'))?.spec.description).not.toBe('mine now');
    expect(await getResource(admin, 'RoleBinding', 'finance', 'owner-2')).toBeUndefined();
    expect((await getResource(admin, 'User', 'finance', 'jane'))?.spec.active).not.toBe(false);
    expect(await getResource(admin, 'Role', 'sales', 'administrator')).toBeUndefined();
    await operator!.idle();
    const after = JSON.stringify([...(await stored('finance'))!.bindings.keys(), ...(await stored('finance'))!.users.keys()]);
    expect(after).toBe(before);
  }, 60_000);

  test('a dangling reference is admitted with a warning kubectl prints', async () => {
    const r = await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: later, namespace: finance}
spec: {roleRef: {name: not-yet}, subjects: [{kind: User, name: jane}]}
`);
    expect(r.stderr).toContain('Warning: RoleBinding finance/later: Role "not-yet" does not exist in tenant finance');
    await eventually('dangling binding reports RoleNotFound', async () => ready(await getResource(admin, 'RoleBinding', 'finance', 'later'))?.reason === 'RoleNotFound');
  }, 30_000);

  test('an ownership transfer passes (the former owner keeps administrator in the store)', async () => {
    const r = await run(['patch', 'rolebindings.rpa-access.io', 'owner', '-n', 'finance', '--type=merge', '-p', '{"spec":{"subjects":[{"kind":"User","name":"jane"}]}}']);
    expect(r.stderr).not.toContain(DENIED);
    expect(r.code).toBe(0);
    await eventually('former owner keeps administrator', async () => (await stored('finance'))?.bindings.get('former-owner-john')?.spec.roleRef.name === 'administrator');
  }, 30_000);

  test('in a terminating namespace, deletes pass (or the namespace would never go)', async () => {
    await namespace('closing');
    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: boss, namespace: closing}
spec: {email: boss@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: boss-admin, namespace: closing}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: boss}]}
`);
    await eventually('boss ready', async () => ready(await getResource(admin, 'User', 'closing', 'boss'))?.status === 'True');
    await eventually('global of closing ready', async () => ready(await getResource(admin, 'Group', 'closing', 'global'))?.reason === 'BuiltIn');
    expect((await run(['delete', 'users.rpa-access.io', 'boss', '-n', 'closing', '--wait=false'])).stderr).toContain('cannot be deleted');

    // Without kube-controller-manager the namespace stays Terminating and nothing deletes its
    // objects: we delete them as the namespace controller would.
    expect((await run(['delete', 'namespace', 'closing', '--wait=false'])).code).toBe(0);
    await eventually('the webhook sees the namespace terminating', async () => {
      const r = await run(['delete', 'users.rpa-access.io', 'boss', '-n', 'closing', '--wait=false']);
      return r.code === 0;
    });
    const global = await run(['delete', 'groups.rpa-access.io', 'global', '-n', 'closing', '--wait=false']);
    expect(global.stderr).not.toContain(DENIED);
    expect(global.code).toBe(0);
  }, 60_000);
});
