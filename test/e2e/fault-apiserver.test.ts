/**
 * Fault: the operator loses the API server, and with it its watches.
 *
 * 1. kube-apiserver crashes (SIGKILL) and comes back; right after, while the operator's
 *    informers are still backing off, objects are created, updated and deleted, some deletes
 *    forced (finalizer stripped), so they are gone for good before the operator looks again.
 *    The informers resume, the leader (which lost its Lease meanwhile) leads again, and the
 *    store ends exactly as the cluster says.
 * 2. Watch expiry (410 Gone): the operator is cut off from the API server (a TCP proxy between
 *    them drops its connections and refuses new ones). Meanwhile objects change, etcd is
 *    compacted past the operator's resourceVersions and kube-apiserver restarts (so its watch
 *    cache, rebuilt from etcd, cannot serve them either): a watch from the operator's
 *    resourceVersion now answers 410, checked directly. Then the partition heals: every informer
 *    must relist, turn the difference into adds/updates/deletes, and the store converge.
 *
 * Measured durations go to $RPA_ACCESS_FAULT_REPORT_DIR (or /tmp)/fault-apiserver.json; the test
 * asserts outcomes, not timings (the machine is shared).
 */
import fs from 'node:fs';
import { request as httpRequest } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import pino from 'pino';
import { toEntry, type AccessResource } from '../../src/api/v1alpha1/resource.js';
import { allEntries, sameSpec } from '../../src/model/tenant.js';
import { startOperator, type OperatorHandle } from '../../src/operator/manager.js';
import { createBulk, PLURAL, type BulkKind } from '../support/bulk.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, installCrds, kubeConfigOf } from '../support/kube.js';

const suite = assetsDir() ? describe : describe.skip;
const GROUP = 'rpa-access.io';
const VERSION = 'v1alpha1';
const KINDS = Object.keys(PLURAL) as BulkKind[];
/** Polls every 500 ms by default: listing many objects is not free on two shared cores. */
const poll = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 500): Promise<T> => eventually(what, probe, timeoutMs, intervalMs);
const REPORT = path.join(process.env.RPA_ACCESS_FAULT_REPORT_DIR ?? '/tmp', 'fault-apiserver.json');
const report: Record<string, unknown> = {};
const writeReport = (): void => fs.writeFileSync(REPORT, JSON.stringify(report, null, 2));

/**
 * A TCP proxy in front of kube-apiserver for the operator alone: partition() resets every
 * connection through it and refuses new ones (the operator sees what a network split shows);
 * heal() lets connections through again. TLS passes through untouched.
 */
class Partitionable {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private cut = false;

  constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => {
      if (this.cut) return void client.resetAndDestroy();
      const upstream = net.connect(this.upstreamPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once('close', () => this.sockets.delete(s));
      }
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  partition(): void {
    this.cut = true;
    for (const s of this.sockets) s.resetAndDestroy();
  }

  heal(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.partition();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

interface Obj extends AccessResource {
  metadata: AccessResource['metadata'] & { generation?: number };
}

suite('fault: API server restart and watch expiry', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let proxy: Partitionable;
  let operator: OperatorHandle | undefined;
  let storeDir: string;
  const logLines: Array<{ msg?: string; informer?: string; [k: string]: unknown }> = [];
  const tenants = ['apis-0', 'apis-1'];

  const relists = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const l of logLines) if (l.msg === 'watch resourceVersion expired (410), relisting') out[l.informer!] = (out[l.informer!] ?? 0) + 1;
    return out;
  };

  const listKind = async (kind: BulkKind, namespace: string): Promise<Obj[]> =>
    ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL[kind] })) as { items: Obj[] }).items;

  const clusterObjects = async (): Promise<Obj[]> => (await Promise.all(tenants.flatMap((t) => KINDS.map((k) => listKind(k, t))))).flat();

  /**
   * Converged: every object of the tenants Ready=True for its generation, none left terminating,
   * and the store holding exactly the cluster's user objects with the cluster's specs.
   */
  const converged = async (): Promise<true | undefined> => {
    const objs = await clusterObjects();
    for (const o of objs) {
      if (o.metadata.deletionTimestamp) return undefined;
      const c = o.status?.conditions?.find((x) => x.type === 'Ready');
      if (o.status?.observedGeneration !== o.metadata.generation || c?.status !== 'True') return undefined;
    }
    for (const tenant of tenants) {
      const state = (await operator!.store.loadTenant(tenant))?.state;
      if (!state) return undefined;
      const stored = new Map(allEntries(state).filter((e) => e.origin === 'user').map((e) => [`${e.kind}/${e.name}`, e.spec]));
      const desired = objs.filter((o) => o.metadata.namespace === tenant && o.metadata.labels?.['rpa-access.io/built-in'] !== 'true');
      if (stored.size !== desired.length) return undefined;
      for (const o of desired) {
        const spec = stored.get(`${o.kind}/${o.metadata.name}`);
        if (spec === undefined || !sameSpec(spec, toEntry(o).entry?.spec)) return undefined;
      }
    }
    return true;
  };

  const storedNames = async (tenant: string): Promise<Set<string>> =>
    new Set(allEntries((await operator!.store.loadTenant(tenant))!.state).filter((e) => e.origin === 'user').map((e) => `${e.kind}/${e.name}`));

  const del = async (kind: BulkKind, namespace: string, name: string, force: boolean): Promise<void> => {
    const ref = { group: GROUP, version: VERSION, namespace, plural: PLURAL[kind], name };
    await custom.deleteNamespacedCustomObject(ref);
    if (!force) return;
    // Strip the finalizer, as someone unsticking a Terminating object would: it is gone at once.
    await custom.patchNamespacedCustomObject({ ...ref, body: [{ op: 'add', path: '/metadata/finalizers', value: [] }] }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 404) throw err;
    });
  };

  /**
   * Creates, updates and deletes in tenant apis-0 (tenantObjects(…, 100): users 0-59, of which
   * 35-59 are named by no binding; bindings 0-34; roles 0-2; groups 0-1). Returns what must hold.
   */
  const change = async (tag: string, offset: number) => {
    const ns = tenants[0]!;
    const created: string[] = [];
    for (let i = 0; i < 4; i++) {
      const user = `${tag}-user-${i}`;
      await custom.createNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: ns, plural: 'users',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'User', metadata: { name: user, namespace: ns }, spec: { email: `${user}@example.com`, groups: ['team-1'] } },
      });
      await custom.createNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: ns, plural: 'rolebindings',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RoleBinding', metadata: { name: `${tag}-binding-${i}`, namespace: ns }, spec: { roleRef: { name: 'role-1' }, folder: `${tag}/F${i}`, subjects: [{ kind: 'User', name: user }] } },
      });
      created.push(`User/${user}`, `RoleBinding/${tag}-binding-${i}`);
    }
    const renamed: Record<string, string> = {};
    for (let i = offset; i < offset + 4; i++) {
      const name = `user-${i}`;
      renamed[name] = `${tag} renamed ${i}`;
      await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'users', name, body: [{ op: 'add', path: '/spec/fullName', value: renamed[name] }] });
    }
    const role = `role-${offset % 3}`;
    const permissions = [{ resource: 'Jobs', actions: ['View'] }, { resource: 'Assets', actions: ['View', 'Edit'] }, { resource: 'Logs', actions: ['View'] }].slice(0, 1 + (offset % 3));
    await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'roles', name: role, body: [{ op: 'replace', path: '/spec/permissions', value: permissions }] });
    const deleted: string[] = [];
    for (let i = offset; i < offset + 6; i++) {
      await del('RoleBinding', ns, `binding-${i}`, i >= offset + 3);
      deleted.push(`RoleBinding/binding-${i}`);
    }
    for (let i = 40 + offset; i < 43 + offset; i++) {
      await del('User', ns, `user-${i}`, i !== 40 + offset);
      deleted.push(`User/user-${i}`);
    }
    return { created, deleted, renamed, role, permissions };
  };

  const expectChangesApplied = async (changes: Awaited<ReturnType<typeof change>>): Promise<void> => {
    const names = await storedNames(tenants[0]!);
    for (const c of changes.created) expect(names.has(c)).toBe(true);
    for (const d of changes.deleted) expect(names.has(d)).toBe(false);
    const state = (await operator!.store.loadTenant(tenants[0]!))!.state;
    const entries = allEntries(state);
    for (const [name, fullName] of Object.entries(changes.renamed)) {
      expect((entries.find((e) => e.kind === 'User' && e.name === name)?.spec as { fullName?: string }).fullName).toBe(fullName);
    }
    expect((entries.find((e) => e.kind === 'Role' && e.name === changes.role)?.spec as { permissions?: unknown }).permissions).toEqual(changes.permissions);
    for (const d of changes.deleted) {
      const [kind, name] = d.split('/') as [BulkKind, string];
      expect((await listKind(kind, tenants[0]!)).some((o) => o.metadata.name === name)).toBe(false);
    }
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = kubeConfigOf(cp);
    custom = kc.makeApiClient(CustomObjectsApi);
    await installCrds(cp, path.resolve('crds'));
    proxy = new Partitionable(Number(new URL(cp.server).port));
    const proxyPort = await proxy.listen();
    // The operator reaches the API server through the proxy; the test itself does not.
    const operatorKc = new KubeConfig();
    operatorKc.loadFromOptions({
      clusters: [{ name: 'via-proxy', server: `https://127.0.0.1:${proxyPort}`, caFile: cp.caFile, skipTLSVerify: false }],
      users: [{ name: 'admin', token: cp.adminToken }],
      contexts: [{ name: 'admin', cluster: 'via-proxy', user: 'admin' }],
      currentContext: 'admin',
    });
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-apis-'));
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          try {
            logLines.push(JSON.parse(line) as (typeof logLines)[number]);
          } catch {
            /* not JSON */
          }
        }
        cb();
      },
    });
    operator = await startOperator({
      kubeconfig: operatorKc, store: storeDir, log: pino({ level: 'info' }, sink), healthPort: 0, concurrency: 8,
      leaderElection: true, leaseNamespace: 'default', leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500,
    });
    await operator.whenRunning();
    await createBulk(kc, { prefix: 'apis', tenants: 2, total: 200 });
    await poll('the initial 200 objects converged', converged, 180_000, 1_000);
  }, 300_000);

  afterAll(async () => {
    await operator?.stop().catch(() => undefined);
    await proxy?.close();
    await cp?.stop();
    writeReport();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }, 60_000);

  test('kube-apiserver crashes and restarts; changes made before the operator reconnects all reach the store', async () => {
    const before = relists();
    const down = Date.now();
    await cp.stopApiServer('SIGKILL');
    // Long enough for the leader to miss its renew deadline (3 s) and the informers to back off.
    await new Promise((r) => setTimeout(r, 5_000));
    await cp.startApiServer();
    const up = Date.now();
    const changes = await change('restart', 0);
    const changed = Date.now();
    await poll('convergence after the restart', converged, 180_000);
    const convergedAt = Date.now();
    await expectChangesApplied(changes);
    expect(operator!.isLeader()).toBe(true);
    const after = relists();
    // When the informers came back through a relist, relative to the end of the changes
    // (positive: the relist, not the watch, brought the changes in, deletes included).
    const relistTimes = logLines.filter((l) => l.msg === 'watch resourceVersion expired (410), relisting' && Number(l.time) >= up).map((l) => Number(l.time) - changed);
    report.apiServerRestart = {
      apiServerDownMs: up - down,
      changesMs: changed - up,
      upToConvergedMs: convergedAt - up,
      killToConvergedMs: convergedAt - down,
      relistsOn410: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)])),
      relistsAfterChangesMs: relistTimes,
      leadershipLost: logLines.some((l) => l.msg === 'failed to renew the lease within the renew deadline; stopping leading'),
    };
    writeReport();
  }, 300_000);

  test('watch expiry: partitioned while etcd compacts and the API server restarts; the informers relist on 410 and converge', async () => {
    const before = relists();
    proxy.partition();
    const partitionedAt = Date.now();
    // Let every informer notice (their watches are reset at once) before anything changes.
    await new Promise((r) => setTimeout(r, 1_000));
    const staleRv = operator!.cache.informers.User.lastSyncResourceVersion;
    const changes = await change('expiry', 10);

    // Compact etcd up to its current revision (etcd's v3 JSON gateway), then restart
    // kube-apiserver so that its watch cache is rebuilt from what etcd still has.
    const etcd = (op: string, body: unknown): Promise<{ header?: { revision?: string } }> =>
      new Promise((resolve, reject) => {
        // No keep-alive: an idle pooled socket would outlive the test.
        const req = httpRequest(`${cp.etcdUrl}/v3/kv/${op}`, { method: 'POST', agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
            if (res.statusCode === 200) resolve(JSON.parse(text) as { header?: { revision?: string } });
            else reject(new Error(`etcd ${op}: ${res.statusCode} ${text}`));
          });
        });
        req.on('error', reject).end(JSON.stringify(body));
      });
    const revision = Number((await etcd('range', { key: Buffer.from('/registry/').toString('base64'), limit: 1 })).header?.revision);
    expect(revision).toBeGreaterThan(Number(staleRv));
    await etcd('compaction', { revision: String(revision), physical: true });
    await cp.restartApiServer();

    // The fault is real: a watch from the operator's resourceVersion is answered 410 Gone.
    const answer = await new Promise<number | undefined>((resolve) => {
      let code: number | undefined;
      void new Watch(kc).watch(`/apis/${GROUP}/${VERSION}/users`, { resourceVersion: staleRv, timeoutSeconds: 2 }, (type, obj: { code?: number }) => {
        if (type === 'ERROR') code = obj.code;
      }, (err: unknown) => resolve(code ?? (err as { statusCode?: number } | null)?.statusCode));
    });
    expect(answer).toBe(410);

    proxy.heal();
    const healedAt = Date.now();
    await poll('convergence after the partition heals', converged, 180_000);
    const convergedAt = Date.now();
    await expectChangesApplied(changes);
    // Every informer of our kinds comes back through a relist, not a resumed watch. An informer
    // whose kind the changes did not touch (Groups) may still be in its retry backoff (up to 36 s)
    // when the store has converged: wait for its retry rather than expect it at once.
    const expiredSince = (): Record<string, number> =>
      Object.fromEntries(Object.entries(relists()).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    const expired = await poll('every informer relisted on 410', async () => {
      const e = expiredSince();
      return KINDS.every((kind) => (e[kind] ?? 0) > 0) && e;
    }, 90_000);
    for (const kind of KINDS) expect(expired[kind]).toBeGreaterThan(0);
    report.watchExpiry = {
      partitionMs: healedAt - partitionedAt,
      staleResourceVersion: staleRv,
      compactedAt: revision,
      healToConvergedMs: convergedAt - healedAt,
      relistsOn410: expired,
    };
    writeReport();
  }, 300_000);
});
