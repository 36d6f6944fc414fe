// Checks the local control plane the other e2e tests stand on: a real etcd + kube-apiserver 1.20.2,
// reachable with client-node and kubectl, with RBAC enforced for the static test users.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';

const execFileAsync = promisify(execFile);

const assets = assetsDir();
if (assets === undefined) {
  console.warn(
    'SKIPPING control-plane e2e tests: no etcd/kube-apiserver found. ' +
      'Run scripts/install-control-plane.sh or set KUBEBUILDER_ASSETS.',
  );
}
const describeWithControlPlane = assets === undefined ? describe.skip : describe;

describeWithControlPlane('local control plane (etcd + kube-apiserver 1.20.2)', () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane({ assetsDir: assets });
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
  }, 30_000);

  function coreApi(user = 'admin'): CoreV1Api {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigFor(user));
    return kc.makeApiClient(CoreV1Api);
  }

  function uniqueName(prefix: string): string {
    return `${prefix}-${randomBytes(3).toString('hex')}`;
  }

  it('creates a namespace and lists it with client-node', async () => {
    const name = uniqueName('e2e-cp');
    await coreApi().createNamespace({ body: { metadata: { name } } });

    const list = await coreApi().listNamespace();

    expect(list.items.map((ns) => ns.metadata?.name)).toContain(name);
  });

  it('answers kubectl with the written kubeconfig', async () => {
    const name = uniqueName('e2e-kubectl');
    await coreApi().createNamespace({ body: { metadata: { name } } });

    // kubectl 1.32 warns about the version skew on stderr; only stdout matters.
    const { stdout } = await execFileAsync('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'get', 'ns', '-o', 'name']);

    expect(stdout.split('\n')).toContain(`namespace/${name}`);
  });

  it('enforces RBAC for a static user without grants', async () => {
    await expect(coreApi('alice').listNamespace()).rejects.toMatchObject({ code: 403 });
  });

  it('keeps its data across an API server restart on the same port', async () => {
    const name = uniqueName('e2e-restart');
    await coreApi().createNamespace({ body: { metadata: { name } } });

    await cp.restartApiServer();

    const ns = await coreApi().readNamespace({ name });
    expect(ns.metadata?.name).toBe(name);
  }, 120_000);
});
