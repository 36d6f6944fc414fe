/**
 * Least privilege, proven on a real API server: config/rbac is applied as shipped, the operator
 * runs under a token of its ServiceAccount (TokenRequest API; there is no controller-manager, so
 * no token Secret would ever appear), never as admin, and must still do its whole job: take its
 * Lease, create its certificate Secret, patch its webhook configuration's caBundle, bootstrap a
 * tenant, reconcile objects to Ready, write Events. Then the escalation rule with the user-facing
 * ClusterRoles: an editor may bind folder roles but not owner or administrator; an admin may.
 *
 * Aggregation of rpa-access-editor/admin into Kubernetes' edit/admin needs kube-controller-manager
 * (absent here), so the tests bind the rpa-access-* ClusterRoles directly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { serviceAccountUsername } from '../../src/webhook/server.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventsFor, eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';
import { DENIED, MUTATING_CONFIGURATION, WEBHOOK_CONFIGURATION, webhookConfiguration } from '../support/webhook.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const SYSTEM_NS = 'rpa-access-system';
const SA = 'rpa-access-operator';

const binding = (name: string, role: string, subject: string, extra = '') => `
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: ${name}, namespace: finance}
spec: {roleRef: {name: ${role}}, subjects: [{kind: User, name: ${subject}}]${extra}}
`;

suite('least-privilege RBAC (config/rbac) and the escalation check', () => {
  let cp: ControlPlane;
  let admin: KubeConfig;
  let operator: OperatorHandle | undefined;
  let storeDir: string;

  const as = (user: string, args: string[], input?: string) => kubectl(user === 'admin' ? cp.kubeconfigPath : cp.kubeconfigFor(user), args, input);
  const apply = async (docs: string, user = 'admin') => {
    const r = await as(user, ['apply', '-f', '-'], docs);
    if (r.code !== 0) throw new Error(`kubectl apply as ${user} failed: ${r.stderr}`);
    return r;
  };

  /** A kubeconfig authenticating with a fresh token of the operator's ServiceAccount. */
  async function serviceAccountKubeConfig(): Promise<KubeConfig> {
    const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: SA, namespace: SYSTEM_NS, body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'e2e', server: cp.server, caFile: cp.caFile, skipTLSVerify: false }],
      users: [{ name: SA, token: token.status!.token }],
      contexts: [{ name: SA, cluster: 'e2e', user: SA }],
      currentContext: SA,
    });
    return kc;
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    admin = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
    const rbac = await as('admin', ['apply', '-k', 'config/rbac']);
    if (rbac.code !== 0) throw new Error(`kubectl apply -k config/rbac failed: ${rbac.stderr}`);
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'finance' } } });
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-rbac-e2e-'));
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }, 60_000);

  test('the ServiceAccount is not admin: its token is refused what config/rbac does not grant', async () => {
    const kc = await serviceAccountKubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await expect(core.listNamespacedSecret({ namespace: 'finance' })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespacedPod({ namespace: SYSTEM_NS })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespace()).resolves.toBeDefined();
  });

  test('under its ServiceAccount the operator takes its Lease, makes its certificate, patches its caBundle, bootstraps and reconciles', async () => {
    operator = await startOperator({
      kubeconfig: await serviceAccountKubeConfig(), store: storeDir, log, healthPort: 0,
      leaderElection: true, leaseNamespace: SYSTEM_NS, leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500,
      webhook: {
        port: 0, host: '127.0.0.1', namespace: SYSTEM_NS, configurationName: WEBHOOK_CONFIGURATION,
        operatorUsernames: [serviceAccountUsername(SYSTEM_NS, SA)], certSyncPeriodMs: 300,
      },
    });
    // The Secret was made at start (it is what the server serves).
    const secret = await admin.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'rpa-access-webhook-cert', namespace: SYSTEM_NS });
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);

    await operator.whenRunning();
    const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'rpa-access-operator', namespace: SYSTEM_NS });
    expect(lease.spec?.holderIdentity).toBeTruthy();

    // Registered after the operator (its port is ephemeral): the sync loop finds it and sets the CA.
    await apply(webhookConfiguration(operator.webhook!.port));
    // Both configurations: what config/rbac grants must cover the mutating one too.
    for (const [kind, name] of [['validatingwebhookconfiguration', WEBHOOK_CONFIGURATION], ['mutatingwebhookconfiguration', MUTATING_CONFIGURATION]] as const) {
      await eventually(`caBundle of the ${kind} patched by the operator`, async () => {
        const r = await as('admin', ['get', kind, name, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}']);
        return r.stdout === secret.data!['ca.crt'];
      });
    }
    await eventually('the webhook answers', async () => {
      const r = await as('admin', ['create', '--dry-run=server', '-f', '-'], 'apiVersion: rpa-access.io/v1alpha1\nkind: Role\nmetadata: {name: owner, namespace: default}\nspec: {scope: Tenant}\n');
      return r.stderr.includes(DENIED);
    });

    await apply(`
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: ops, namespace: finance}
spec: {displayName: Ops}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john, namespace: finance}
spec: {email: john@example.com, groups: [ops]}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: jane, namespace: finance}
spec: {email: jane@example.com}
`);
    for (const [kind, name] of [['Group', 'ops'], ['User', 'john'], ['User', 'jane']] as const) {
      await eventually(`${kind}/${name} Ready`, async () => ready(await getResource(admin, kind, 'finance', name))?.status === 'True');
    }
    await eventually('built-ins bootstrapped', async () => ready(await getResource(admin, 'Role', 'finance', 'folder-viewer'))?.reason === 'BuiltIn');
    expect((await getResource(admin, 'User', 'finance', 'john'))?.metadata.finalizers).toContain('rpa-access.io/store');
    const events = await eventually('events written', async () => {
      const list = await eventsFor(admin, 'finance');
      return list.some((e) => e.reason === 'BuiltInCreated') && list.some((e) => e.reason === 'Created') ? list : undefined;
    });
    expect(events.find((e) => e.regarding === 'User/john')).toBeDefined();
  }, 90_000);

  test('escalation: an editor binds folder roles, not owner or administrator; an admin may', async () => {
    await apply(`
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-editor, namespace: finance}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rpa-access-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-admin, namespace: finance}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rpa-access-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
`);
    await eventually('alice may create rolebindings', async () => (await as('alice', ['auth', 'can-i', 'create', 'rolebindings.rpa-access.io', '-n', 'finance'])).stdout.trim() === 'yes');
    expect((await as('alice', ['auth', 'can-i', 'bind', 'roles.rpa-access.io/owner', '-n', 'finance'])).stdout.trim()).toBe('no');
    expect((await as('bob', ['auth', 'can-i', 'bind', 'roles.rpa-access.io/owner', '-n', 'finance'])).stdout.trim()).toBe('yes');

    // A folder role: no bind needed.
    await apply(binding('ops-a', 'automation-user', 'john', ', folder: A'), 'alice');

    const admin1 = await as('alice', ['apply', '-f', '-'], binding('jane-admin', 'administrator', 'jane'));
    expect(admin1.code).not.toBe(0);
    expect(admin1.stderr).toContain(
      `${DENIED}RoleBinding finance/jane-admin: binding role administrator requires the 'bind' verb on roles.rpa-access.io "administrator" in namespace finance (escalation check)`,
    );
    const owner1 = await as('alice', ['apply', '-f', '-'], binding('owner', 'owner', 'alice'));
    expect(owner1.stderr).toContain(`${DENIED}RoleBinding finance/owner: binding role owner requires the 'bind' verb on roles.rpa-access.io "owner" in namespace finance`);
    expect(await getResource(admin, 'RoleBinding', 'finance', 'jane-admin')).toBeUndefined();
    expect(await getResource(admin, 'RoleBinding', 'finance', 'owner')).toBeUndefined();

    // bob holds rpa-access-admin, which has bind.
    await apply(binding('owner', 'owner', 'john'), 'bob');
    await apply(binding('jane-admin', 'administrator', 'jane'), 'bob');
    await eventually('jane-admin Ready', async () => ready(await getResource(admin, 'RoleBinding', 'finance', 'jane-admin'))?.status === 'True');

    // alice may change what does not hand the role to anyone new, not its subjects.
    const later = await as('alice', ['patch', 'rolebindings.rpa-access.io', 'jane-admin', '-n', 'finance', '--type=merge', '-p', '{"spec":{"expiresAt":"2099-01-01T00:00:00Z"}}']);
    expect(later.stderr).not.toContain(DENIED);
    expect(later.code).toBe(0);
    const hijack = await as('alice', ['patch', 'rolebindings.rpa-access.io', 'jane-admin', '-n', 'finance', '--type=merge', '-p', '{"spec":{"subjects":[{"kind":"User","name":"alice"}]}}']);
    expect(hijack.stderr).toContain(`${DENIED}RoleBinding finance/jane-admin: binding role administrator requires the 'bind' verb`);
    // The rules come before the escalation check, for bob as for anyone.
    const second = await as('bob', ['apply', '-f', '-'], binding('owner-2', 'owner', 'jane'));
    expect(second.stderr).toContain(`${DENIED}RoleBinding finance/owner-2: at most one owner per tenant`);
  }, 60_000);

  test('config/default renders with kustomize and passes a server-side dry run', async () => {
    const rendered = await as('admin', ['kustomize', 'config/default']);
    expect(rendered.code).toBe(0);
    const kinds = [...rendered.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
    expect(new Set(kinds)).toEqual(new Set([
      'Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding',
      'Service', 'Deployment', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration',
    ]));
    // The CRDs are installed for real (beforeAll); the 1.20 server needs --validate=false for
    // their CEL rules (x-kubernetes-validations), which it does not know.
    const dry = await as('admin', ['apply', '--dry-run=server', '--validate=false', '-f', '-'], rendered.stdout);
    expect(dry.stderr).not.toMatch(/error/i);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('deployment.apps/rpa-access-operator created (server dry run)');
    expect(dry.stdout).toContain('validatingwebhookconfiguration.admissionregistration.k8s.io/rpa-access-validating-webhook configured (server dry run)');
  }, 60_000);
});
