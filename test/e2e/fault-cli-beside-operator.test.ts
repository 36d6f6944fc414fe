/**
 * The CLI beside the operator, on one PostgreSQL store (a schema of its own), against a real
 * etcd + kube-apiserver: `rpa-access apply` child processes write while the operator (in this
 * process) reconciles a burst of custom resources.
 *
 * What the project's design says (docs/cli.md, src/controllers/reconciler.ts): every write, the
 * operator's and the CLI's, is one store transaction holding the tenant's lock, so they serialize;
 * a tenant the cluster does not hold is the CLI's alone (the operator never touches it); a tenant
 * that has rpa-access objects in the cluster is the cluster's: the operator's drift correction
 * removes what the store holds and the cluster does not, and puts back the cluster's spec of
 * what the CLI changed. The CLI is still refused cleanly (nothing written) for an invariant the
 * operator's objects hold, such as the tenant's single owner.
 *
 * Asserted: no lost update (every object of both writers present where it belongs), no torn
 * state (the audit trail, replayed, is exactly the store; one owner), convergence to the cluster
 * in the managed tenant.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { allEntries, canonicalJson } from '../../src/model/tenant.js';
import type { AnyEntry } from '../../src/model/types.js';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import type { AccessStore, AuditRecord } from '../../src/store/store.js';
import { rpa } from '../cli/helpers.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, installCrds, kubeConfigOf, kubectl } from '../support/kube.js';
import { postgresFactory } from '../support/stores.js';

const runnable = assetsDir() && postgresFactory;
const suite = runnable ? describe : describe.skip;
if (!runnable) console.warn('fault-cli-beside-operator skipped: needs kube-apiserver/etcd (scripts/install-control-plane.sh) and DATABASE_URL');

const API = 'apiVersion: rpa-access.io/v1alpha1';
const MANAGED = 'managed';
const CLI_ONLY = 'cli-only';
const ROUNDS = 3;
const BURST = 30;

const user = (ns: string, name: string, extra = '') => `${API}\nkind: User\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {email: ${name}@example.com${extra}}\n`;
const binding = (ns: string, name: string, role: string, users: string[], folder?: string) =>
  `${API}\nkind: RoleBinding\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  roleRef: {name: ${role}}\n  subjects: [${users.map((u) => `{kind: User, name: ${u}}`).join(', ')}]\n${folder ? `  folder: ${folder}\n` : ''}`;
const docs = (d: string[]) => d.join('---\n');

function replay(audit: AuditRecord[]): Map<string, AnyEntry> {
  const state = new Map<string, AnyEntry>();
  for (const a of audit) {
    const key = `${a.kind}/${a.name}`;
    if (a.action === 'deleted') state.delete(key);
    else state.set(key, a.after!);
  }
  return state;
}

/** The audit trail, replayed, is exactly what the store holds; one revision per apply. */
async function expectConsistent(store: AccessStore, tenant: string): Promise<AuditRecord[]> {
  const snap = (await store.loadTenant(tenant))!;
  const audit = await store.audit({ tenant });
  const replayed = replay(audit);
  const held = allEntries(snap.state);
  expect([...replayed.keys()].sort()).toEqual(held.map((e) => `${e.kind}/${e.name}`).sort());
  for (const e of held) expect(canonicalJson(replayed.get(`${e.kind}/${e.name}`))).toBe(canonicalJson(e));
  expect(new Set(audit.map((a) => a.applyId)).size).toBe(snap.revision);
  const owners = [...snap.state.bindings.values()].filter((b) => b.spec.roleRef.name === 'owner');
  expect(owners.length).toBeLessThanOrEqual(1);
  return audit;
}

const userObjects = async (store: AccessStore, tenant: string) =>
  allEntries((await store.loadTenant(tenant))?.state ?? { tenant, users: new Map(), groups: new Map(), roles: new Map(), bindings: new Map() })
    .filter((e) => e.origin === 'user')
    .map((e) => `${e.kind}/${e.name}`)
    .sort();

suite('fault: the CLI beside the operator on one PostgreSQL store', () => {
  let cp: ControlPlane;
  let operator: OperatorHandle | undefined;
  let url: string;
  let store: AccessStore;
  let dir: string;

  const cli = (file: string, actor: string) => rpa(['--store', url, 'apply', '-f', file], { env: { USER: actor } });
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const kube = async (text: string) => {
    const r = await kubectl(cp.kubeconfigPath, ['apply', '-f', '-'], text);
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-cli-op-'));
    url = postgresFactory!.newUrl();
    store = await postgresFactory!.open(url);
    cp = await startControlPlane();
    await installCrds(cp, path.resolve('crds'));
    operator = await startOperator({
      kubeconfig: kubeConfigOf(cp), store: url, log: pino({ level: process.env.E2E_LOG_LEVEL ?? 'silent' }), healthPort: 0,
      leaderElection: false, concurrency: 4, driftPeriodMs: 2_000,
    });
    await operator.whenRunning();
    await kube(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${MANAGED}}\n---\n${docs([user(MANAGED, 'boss'), user(MANAGED, 'ops'), binding(MANAGED, 'owner', 'owner', ['boss'])])}`);
    await eventually('the managed tenant reaches the store', async () => (await userObjects(store, MANAGED)).length === 3, 60_000);
  }, 180_000);

  afterAll(async () => {
    await operator?.stop().catch(() => undefined);
    await store?.close();
    await cp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test(`${ROUNDS} rounds: CLI applies to its own tenant while the operator reconciles a burst; nothing lost, nothing torn`, async () => {
    const cliExpected = new Set<string>();
    const clusterExpected = new Set(['User/boss', 'User/ops', 'RoleBinding/owner']);
    for (let round = 0; round < ROUNDS; round++) {
      const names = Array.from({ length: BURST }, (_, i) => `r${round}-k${i}`);
      const burst = docs([...names.map((n) => user(MANAGED, n)), binding(MANAGED, `r${round}-view`, 'folder-viewer', names, `Round${round}`)]);
      const cliUsers = Array.from({ length: 20 }, (_, i) => `r${round}-c${i}`);
      const cliFile = write(`cli-${round}.yaml`, docs([...cliUsers.map((n) => user(CLI_ONLY, n)), binding(CLI_ONLY, `r${round}-dev`, 'developer', cliUsers)]));
      // The cluster burst and two CLI processes, at once.
      const [, a, b] = await Promise.all([kube(burst), cli(cliFile, 'alice'), cli(cliFile, 'bob')]);
      expect([a.code, b.code]).toEqual([0, 0]);
      expect(a.stderr + b.stderr).toBe('');
      for (const n of cliUsers) cliExpected.add(`User/${n}`);
      cliExpected.add(`RoleBinding/r${round}-dev`);
      for (const n of names) clusterExpected.add(`User/${n}`);
      clusterExpected.add(`RoleBinding/r${round}-view`);
      // The same documents by two writers: one created them, the other found them unchanged.
      expect([a, b].filter((r) => r.stdout.includes(`created User/${CLI_ONLY}/r${round}-c0`))).toHaveLength(1);

      await eventually(`round ${round}: the operator has applied the burst`, async () => {
        const held = await userObjects(store, MANAGED);
        return held.length === clusterExpected.size && held.every((r) => clusterExpected.has(r));
      }, 120_000);
      expect(await userObjects(store, CLI_ONLY)).toEqual([...cliExpected].sort());
      const cliAudit = await expectConsistent(store, CLI_ONLY);
      // The operator never wrote into a tenant the cluster does not hold.
      expect(new Set(cliAudit.map((x) => x.source))).toEqual(new Set(['cli']));
      const managedAudit = await expectConsistent(store, MANAGED);
      expect(new Set(managedAudit.map((x) => x.actor))).toEqual(new Set(['operator']));
    }
  }, 400_000);

  test('the CLI writing into the managed tenant: serialized with the operator, refused cleanly on the owner, then corrected to the cluster', async () => {
    // A second owner: refused by the store against the operator's objects, nothing written.
    const before = await store.audit({ tenant: MANAGED });
    const revision = (await store.loadTenant(MANAGED))!.revision;
    const second = await cli(write('second-owner.yaml', docs([user(MANAGED, 'usurper'), binding(MANAGED, 'owner-2', 'owner', ['usurper'])])), 'mallory');
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`RoleBinding ${MANAGED}/owner-2: at most one owner per tenant: RoleBinding ${MANAGED}/owner already grants owner`);
    expect(second.stderr).not.toMatch(/^\s+at /m);
    expect((await store.audit({ tenant: MANAGED })).length).toBe(before.length);
    expect((await store.loadTenant(MANAGED))!.revision).toBe(revision);

    // Accepted writes, while the cluster changes too: an intruder, and a changed spec of a cluster object.
    const intrusion = write('intrusion.yaml', docs([user(MANAGED, 'intruder'), user(MANAGED, 'ops', ', fullName: Changed by the CLI')]));
    const [r] = await Promise.all([cli(intrusion, 'mallory'), kube(docs([user(MANAGED, 'late-arrival')]))]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^created User/${MANAGED}/intruder$`, 'm'));
    expect(r.stderr).toContain(`warning: tenant ${MANAGED} is managed by the rpa-access operator (the cluster created it in this store): what this apply added or changed there is undone at the operator's next drift pass`);

    // The cluster is the managed tenant's truth: the operator removes the intruder, puts ops back,
    // and keeps the cluster's late arrival (not lost to the CLI's concurrent write).
    await eventually('drift corrected to the cluster', async () => {
      const snap = (await store.loadTenant(MANAGED))!.state;
      return !snap.users.has('intruder') && snap.users.has('late-arrival') && snap.users.get('ops')?.spec.fullName === undefined;
    }, 60_000);
    const audit = await expectConsistent(store, MANAGED);
    const intruder = audit.filter((x) => x.kind === 'User' && x.name === 'intruder');
    expect(intruder.map((x) => [x.action, x.source, x.actor])).toEqual([['created', 'cli', 'mallory'], ['deleted', 'operator-drift', 'operator']]);
    const ops = audit.filter((x) => x.kind === 'User' && x.name === 'ops').map((x) => [x.action, x.source]);
    expect(ops.slice(-2)).toEqual([['updated', 'cli'], ['updated', 'operator']]);
    expect(await userObjects(store, MANAGED)).toContain('User/late-arrival');
    // The CLI's own tenant is untouched by all of this.
    expect(new Set((await store.audit({ tenant: CLI_ONLY })).map((x) => x.source))).toEqual(new Set(['cli']));
  }, 180_000);
});
