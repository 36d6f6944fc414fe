/**
 * Issue 13 item 12: the webhook knows the identity the operator really runs as. Run as the
 * contract says (`rpa-access operator` with the current kubeconfig, out of cluster) while the
 * webhook is registered, the operator must still create the built-ins: its webhook learns its
 * user at start (SelfSubjectReview where the API server has it; on 1.20, a TokenReview of its own
 * token, or the CN of its client certificate) instead of assuming the in-cluster ServiceAccount.
 *
 * The webhook options are those `rpa-access operator --webhook-port` builds from the environment:
 * no test-only list of operator usernames.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { webhookOptionsFromEnv } from '../../src/webhook/server.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, getResource, installCrds, kubeConfigOf, kubectl, ready } from '../support/kube.js';
import { DENIED, webhookConfiguration } from '../support/webhook.js';

const execFileAsync = promisify(execFile);
const assets = assetsDir();
const suite = assets ? describe : describe.skip;
if (!assets) console.warn('e2e skipped: no kube-apiserver/etcd (run scripts/install-control-plane.sh)');

const log = pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' });
const SYSTEM_NS = 'rpa-access-system';
const TOKEN_USER = 'dev-laptop';
const CERT_USER = 'ci-runner';

suite('the webhook knows the operator it runs in (issue 13 item 12)', () => {
  let cp: ControlPlane;
  let admin: KubeConfig;
  let operator: OperatorHandle | undefined;
  let storeDir: string;

  const run = (args: string[], input?: string) => kubectl(cp.kubeconfigPath, args, input);
  const namespace = (name: string) => admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });

  /** `rpa-access operator --webhook-port 0` as a person runs it from a laptop: the pod's defaults, another user. */
  async function startAs(kc: KubeConfig): Promise<OperatorHandle> {
    const fromEnv = webhookOptionsFromEnv(0, undefined, { POD_NAMESPACE: SYSTEM_NS });
    const handle = await startOperator({
      kubeconfig: kc, store: storeDir, log, healthPort: 0, leaderElection: false,
      webhook: { ...fromEnv, host: '127.0.0.1', certSyncPeriodMs: 300 },
    });
    await handle.whenRunning();
    const r = await run(['apply', '-f', '-'], webhookConfiguration(handle.webhook!.port));
    if (r.code !== 0) throw new Error(r.stderr);
    await eventually('the webhook answers', async () => {
      const probe = await run(['create', '--dry-run=server', '-f', '-'], 'apiVersion: rpa-access.io/v1alpha1\nkind: Role\nmetadata: {name: owner, namespace: default}\nspec: {scope: Tenant}\n');
      return probe.stderr.includes(DENIED);
    });
    return handle;
  }

  /** A client certificate signed by the cluster's CA: CN is the user, O its group. */
  async function certificateKubeConfig(user: string): Promise<KubeConfig> {
    const dir = cp.dir;
    const ossl = (...args: string[]) => execFileAsync('openssl', args, { cwd: dir });
    await ossl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/O=system:masters/CN=${user}`, '-keyout', `${user}.key`, '-out', `${user}.csr`);
    await ossl('x509', '-req', '-in', `${user}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${user}.crt`);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'e2e', server: cp.server, caFile: cp.caFile, skipTLSVerify: false }],
      users: [{ name: user, certFile: path.join(dir, `${user}.crt`), keyFile: path.join(dir, `${user}.key`) }],
      contexts: [{ name: user, cluster: 'e2e', user }],
      currentContext: user,
    });
    return kc;
  }

  async function expectBootstrap(ns: string): Promise<void> {
    await namespace(ns);
    const r = await run(['apply', '-f', '-'], `apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: ann, namespace: ${ns}}\nspec: {email: ann@example.com}\n`);
    expect(r.code).toBe(0);
    await eventually(`global group of ${ns} created by the operator`, async () => ready(await getResource(admin, 'Group', ns, 'global'))?.reason === 'BuiltIn', 20_000);
    await eventually(`owner role of ${ns} created by the operator`, async () => ready(await getResource(admin, 'Role', ns, 'owner'))?.reason === 'BuiltIn', 20_000);
    await eventually(`ann of ${ns} Ready`, async () => ready(await getResource(admin, 'User', ns, 'ann'))?.status === 'True', 20_000);
    // Anyone else is still judged: the reserved names stay the operator's.
    const taken = await run(['apply', '-f', '-'], `apiVersion: rpa-access.io/v1alpha1\nkind: Role\nmetadata: {name: analyst-2, namespace: ${ns}}\nspec: {scope: Tenant}\n`);
    expect(taken.code).toBe(0);
    const reserved = await run(['delete', 'groups.rpa-access.io', 'global', '-n', ns, '--wait=false']);
    expect(reserved.stderr).toContain(`${DENIED}Group ${ns}/global: the global group cannot be deleted`);
  }

  beforeAll(async () => {
    cp = await startControlPlane({ users: [{ name: TOKEN_USER, groups: ['system:masters'] }] });
    admin = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    await namespace(SYSTEM_NS);
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-identity-e2e-'));
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }, 60_000);

  test('run with a bearer token of a person (TokenReview): the operator bootstraps a tenant through its own webhook', async () => {
    operator = await startAs(kubeConfigOf(cp, TOKEN_USER));
    await expectBootstrap('laptop');
    await operator.stop();
    operator = undefined;
  }, 120_000);

  test('run with a client certificate (its CN): the operator bootstraps a tenant through its own webhook', async () => {
    operator = await startAs(await certificateKubeConfig(CERT_USER));
    await expectBootstrap('runner');
  }, 120_000);
});
