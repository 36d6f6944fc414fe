/**
 * Issue 13 item 5 on a real kube-apiserver: `serve --auth tokenreview` authorizes each caller per
 * tenant with a SubjectAccessReview of `get` on the virtual resource decisions.rpa-access.io in
 * the tenant's namespace. The ClusterRole rpa-access-decision-reader is applied as shipped in
 * config/rbac and bound in one namespace: its holder may ask about that tenant only, and gets the
 * same 403 for another tenant and for one that does not exist.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, type RunningServer } from '../../src/server/main.js';
import { openStore } from '../../src/store/open.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { kubectl } from '../support/kube.js';
import { bind, user } from '../support/scenarios.js';

const assets = assetsDir();
const suite = assets ? describe : describe.skip;

suite('decision API: per-tenant authorization by SubjectAccessReview (real kube-apiserver)', () => {
  let cp: ControlPlane;
  let server: RunningServer;
  let previousKubeconfig: string | undefined;

  beforeAll(async () => {
    cp = await startControlPlane();
    const roles = fs.readFileSync(path.resolve('config/rbac/user_roles.yaml'), 'utf8');
    const reader = roles.split(/^---$/m).find((d) => d.includes('name: rpa-access-decision-reader'))!;
    for (const input of [reader, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: finance}\n']) {
      const r = await kubectl(cp.kubeconfigPath, ['apply', '-f', '-'], input);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    const rb = await kubectl(cp.kubeconfigPath, ['create', 'rolebinding', 'alice-decisions', '-n', 'finance', '--clusterrole', 'rpa-access-decision-reader', '--user', 'alice']);
    if (rb.code !== 0) throw new Error(rb.stderr);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-sar-'));
    const store = await openStore(dir);
    for (const tenant of ['finance', 'hr']) {
      await store.apply([{ tenant, upserts: [user('ann'), bind('ann-admin', 'administrator', ['u:ann'])] }], { actor: 'test', source: 'test' });
    }
    await store.close();
    // The server's own identity: the admin kubeconfig (it may create TokenReviews and SubjectAccessReviews).
    previousKubeconfig = process.env.KUBECONFIG;
    process.env.KUBECONFIG = cp.kubeconfigPath;
    server = await start({ store: dir, auth: 'tokenreview', port: 0, host: '127.0.0.1' }, { defaultMetrics: false });
    await server.loaded;
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    if (previousKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = previousKubeconfig;
    await cp?.stop();
  });

  const ask = async (who: string, tenant: string) => {
    const r = await fetch(`${server.url}/v1/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.tokenFor(who)}` },
      body: JSON.stringify({ tenant, user: 'ann', permission: 'Users.View' }),
    });
    return { status: r.status, body: await r.text() };
  };

  it('a caller bound to rpa-access-decision-reader in finance may ask about finance only; the same 403 elsewhere', async () => {
    expect(await ask('alice', 'finance')).toEqual({ status: 200, body: JSON.stringify({ allowed: true, grants: [{ role: 'administrator', binding: 'ann-admin', via: 'user', folder: null }] }) });
    const other = await ask('alice', 'hr');
    const missing = await ask('alice', 'no-such-tenant');
    expect(other.status).toBe(403);
    expect(missing).toEqual(other);
    expect(JSON.parse(other.body)).toEqual({ error: 'forbidden: this caller may not ask about this tenant' });
    // bob holds nothing: authenticated, yet authorized nowhere.
    expect((await ask('bob', 'finance')).status).toBe(403);
    const who = await fetch(`${server.url}/v1/tenants/hr/who?permission=Users.View`, { headers: { authorization: `Bearer ${cp.tokenFor('alice')}` } });
    expect(who.status).toBe(403);
  });
});
