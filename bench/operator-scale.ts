/**
 * The operator at scale, on a real kube-apiserver + etcd, each figure beside the raw write rate
 * of the same API server in the same run:
 *
 * 1. cold start: N objects already in the cluster over T tenants, a fresh store, the operator
 *    starts; time until every object is Ready for its generation, beside N plain status patches
 *    at the same parallelism, sent before the operator starts, to objects as the operator finds
 *    them (the same patches sent again once it had stopped ran 25-28 % slower: the objects then
 *    carry the operator's status and its managed fields, and etcd the cold start's history);
 * 2. drift pass with nothing changed: every tenant's drift pass run at once; its time and its API
 *    writes (there should be none);
 * 3. a wave of W spec changes (Users' fullName) made at once; time until each is Ready for its new
 *    generation, beside W plain status patches.
 *
 * The objects are created as in a cluster where rpa-access is installed: through its mutating
 * webhook, which puts the operator's finalizer on at create (bench/lib/finalizer-webhook.ts).
 * `--no-webhook` creates them without it (objects applied before the operator was installed, or
 * with the webhook unreachable): the operator then adds each finalizer with a patch of its own.
 *
 * API writes are counted by the API server itself (`apiserver_request_total` on /metrics), by
 * kind: status patches, other patches of our objects (finalizers, restores), creates of our
 * objects (built-ins), Event creates and Event patches (series). The operator runs in a process
 * of its own (bench/lib/operator-process.mjs), so its RSS is its own.
 *
 *   npx tsx bench/operator-scale.ts [--objects 10000] [--tenants 1] [--wave 1000] [--concurrency 8] [--no-webhook] [--json]
 */
import { execFile, fork } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { MERGE_PATCH, patchStatus, reusingConnections } from '../src/k8s/client.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../test/support/control-plane.js';
import { PLURAL, bulkRef, createBulk, pool, type BulkObject } from '../test/support/bulk.js';
import { installCrds, kubeConfigOf } from '../test/support/kube.js';
import { numberFlag } from './lib/args.js';
import { machineCpuSeconds, processCpuSeconds } from './lib/cpu.js';
import { installFinalizerWebhook } from './lib/finalizer-webhook.js';
import { ReadinessWatch } from './lib/readiness.js';
import { FINALIZER } from '../src/model/catalog.js';

const N = numberFlag('objects', 10_000);
const TENANTS = numberFlag('tenants', 1);
const WAVE = numberFlag('wave', 1_000);
const CONCURRENCY = numberFlag('concurrency', 8); // the operator's default
const JSON_OUT = process.argv.includes('--json');
const WEBHOOK = !process.argv.includes('--no-webhook');
const TIMEOUT_MS = numberFlag('timeout-minutes', 30) * 60_000;
const BUILT_INS_PER_TENANT = 11; // the built-in roles and the global group

const OUR_RESOURCES = new Set(Object.values(PLURAL));
const MiB = 2 ** 20;
const execFileAsync = promisify(execFile);

/** API writes by kind, as the API server counts them. */
interface Writes {
  status: number;
  objectPatches: number;
  objectCreates: number;
  eventCreates: number;
  eventPatches: number;
  other: number;
}

const ZERO: Writes = { status: 0, objectPatches: 0, objectCreates: 0, eventCreates: 0, eventPatches: 0, other: 0 };

/** One series of the API server's request metrics: `apiserver_request_total` or its duration sum. */
interface RequestSeries {
  labels: Record<string, string | undefined>;
  /** Requests served (apiserver_request_total), else 0. */
  count: number;
  /** Seconds spent on them (apiserver_request_duration_seconds_sum), else 0. */
  seconds: number;
}

/** The API server's request counters as it has them now (its `/metrics`). */
async function requestMetrics(cp: ControlPlane): Promise<RequestSeries[]> {
  // /metrics is a few MB: more than kubectl()'s default output buffer.
  const { stdout } = await execFileAsync('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'get', '--raw', '/metrics'], { maxBuffer: 256 * MiB });
  const series: RequestSeries[] = [];
  for (const line of stdout.split('\n')) {
    const total = line.startsWith('apiserver_request_total{');
    if (!total && !line.startsWith('apiserver_request_duration_seconds_sum{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]]));
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    series.push({ labels, count: total ? value : 0, seconds: total ? 0 : value });
  }
  return series;
}

/** API writes so far, by kind (the requests' counts). */
function writesOf(series: RequestSeries[]): Writes {
  const w = { ...ZERO };
  for (const { labels, count } of series) {
    const verb = labels.verb ?? '';
    if (count === 0 || !['POST', 'PATCH', 'PUT', 'DELETE'].includes(verb)) continue;
    const resource = labels.resource ?? '';
    if (OUR_RESOURCES.has(resource as never)) {
      if (verb === 'PATCH' && labels.subresource === 'status') w.status += count;
      else if (verb === 'PATCH') w.objectPatches += count;
      else if (verb === 'POST') w.objectCreates += count;
      else w.other += count;
    } else if (resource === 'events') {
      if (verb === 'POST') w.eventCreates += count;
      else if (verb === 'PATCH') w.eventPatches += count;
      else w.other += count;
    } else if (resource !== 'leases' && resource !== 'namespaces') {
      w.other += count;
    }
  }
  return w;
}

async function apiWrites(cp: ControlPlane): Promise<Writes> {
  return writesOf(await requestMetrics(cp));
}

/**
 * Every request served so far, as `verb resource[/subresource]` → count and seconds in all
 * (BENCH_REQUESTS=1 prints the raw phase's and the cold start's, reads included).
 */
function tallyOf(series: RequestSeries[]): Map<string, { count: number; seconds: number }> {
  const tally = new Map<string, { count: number; seconds: number }>();
  for (const { labels, count, seconds } of series) {
    // Only the counter has a code: non-2xx requests get keys of their own.
    const code = labels.code && !labels.code.startsWith('2') ? ` (HTTP ${labels.code})` : '';
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}${code}`;
    const entry = tally.get(key) ?? { count: 0, seconds: 0 };
    entry.count += count;
    entry.seconds += seconds;
    tally.set(key, entry);
  }
  return tally;
}

function printTallyDiff(title: string, a: Map<string, { count: number; seconds: number }>, b: Map<string, { count: number; seconds: number }>): void {
  process.stderr.write(`${title}: requests by verb and resource (count, seconds in all)\n`);
  for (const [key, after] of [...b].sort(([x], [y]) => x.localeCompare(y))) {
    const before = a.get(key) ?? { count: 0, seconds: 0 };
    const count = after.count - before.count;
    if (count > 0) process.stderr.write(`  ${key}: ${count}, ${(after.seconds - before.seconds).toFixed(2)} s\n`);
  }
}

/**
 * BENCH_APISERVER_PROFILE=DIR: CPU profiles of kube-apiserver (`go tool pprof` reads them), one
 * per `seconds` window from now until `done` resolves: DIR/PHASE-1.pprof, DIR/PHASE-2.pprof, ...
 */
async function profileApiServer(cp: ControlPlane, phase: string, done: Promise<unknown>, seconds = 15): Promise<void> {
  const dir = process.env.BENCH_APISERVER_PROFILE;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  let finished = false;
  void done.finally(() => (finished = true));
  for (let window = 1; !finished; window++) {
    try {
      const { stdout } = await execFileAsync('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'get', '--raw', `/debug/pprof/profile?seconds=${seconds}`], { maxBuffer: 256 * MiB, encoding: 'buffer' });
      fs.writeFileSync(path.join(dir, `${phase}-${window}.pprof`), stdout);
    } catch (err) {
      process.stderr.write(`kube-apiserver profile ${phase}-${window} failed: ${String(err)}\n`);
      return;
    }
  }
}

/** The counts once they stop moving: Events are written after the reconciles, from a queue. */
async function settledWrites(cp: ControlPlane): Promise<Writes> {
  let last = await apiWrites(cp);
  for (;;) {
    await new Promise((r) => setTimeout(r, 2_000));
    const now = await apiWrites(cp);
    if (JSON.stringify(now) === JSON.stringify(last)) return now;
    last = now;
  }
}

function minus(a: Writes, b: Writes): Writes {
  return Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof Writes] - b[k as keyof Writes]])) as unknown as Writes;
}

/** CPU seconds so far of each process that shares the machine during a phase. */
interface Cpu { apiServer: number; etcd: number; operator: number; bench: number; machine: number }

function cpuNow(cp: ControlPlane, operatorPid?: number): Cpu {
  const self = process.cpuUsage();
  const pids = cp.pids();
  return {
    apiServer: processCpuSeconds(pids.apiServer), etcd: processCpuSeconds(pids.etcd), operator: operatorPid === undefined ? 0 : processCpuSeconds(operatorPid),
    bench: (self.user + self.system) / 1e6, machine: machineCpuSeconds(),
  };
}

/** CPU milliseconds per object between two readings, by process; `other` is the rest of the machine. */
function cpuPerObject(a: Cpu, b: Cpu, n: number): Record<keyof Cpu | 'other', number> {
  const ms = (k: keyof Cpu) => round(((b[k] - a[k]) * 1000) / n, 2);
  const ours = (['apiServer', 'etcd', 'operator', 'bench'] as const).reduce((sum, k) => sum + (b[k] - a[k]), 0);
  return { apiServer: ms('apiServer'), etcd: ms('etcd'), operator: ms('operator'), bench: ms('bench'), machine: ms('machine'), other: round(((b.machine - a.machine - ours) * 1000) / n, 2) };
}

/** The operator process's memory once idle (bench/lib/operator-process.mjs). */
interface Memory { rss: number; heapUsed: number; heapTotal: number; external: number }

/**
 * The environment the image gives the operator (the Dockerfile's `ENV` lines): glibc's malloc
 * settings are read once, when a process starts, so the benchmark's operator process must start
 * with them to measure the memory the image's operator uses.
 */
function imageEnvironment(): Record<string, string> {
  const dockerfile = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../Dockerfile'), 'utf8');
  const env: Record<string, string> = {};
  for (const [, name, value] of dockerfile.matchAll(/^ENV\s+(MALLOC_\w+)=(\S+)/gm)) env[name!] = value!;
  return env;
}

/** The operator in its own process, driven over IPC. */
class OperatorProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: Record<string, number>) => void>();
  get pid(): number | undefined {
    return this.child.pid;
  }

  private constructor(private readonly child: ReturnType<typeof fork>, readonly baseline: Memory) {
    child.on('message', (m) => {
      const answer = m as { id?: number } & Record<string, number>;
      if (answer.id !== undefined) this.waiting.get(answer.id)?.(answer);
    });
  }

  /** Resolves once the process has loaded its modules, just before the operator starts. */
  static start(kubeconfig: string, store: string): Promise<OperatorProcess> {
    const here = path.dirname(fileURLToPath(import.meta.url));
    if (!fs.existsSync(path.join(here, '../dist/src/operator/manager.js'))) throw new Error('the operator process runs the build: npm run build first (npm run bench:scale does)');
    const child = fork(path.join(here, 'lib/operator-process.mjs'), [], {
      // BENCH_OPERATOR_NODE_ARGS: more node flags for the operator process alone (say --cpu-prof).
      execArgv: ['--expose-gc', ...(process.env.BENCH_OPERATOR_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
      env: { ...process.env, ...imageEnvironment(), BENCH_KUBECONFIG: kubeconfig, BENCH_STORE: store, BENCH_CONCURRENCY: String(CONCURRENCY) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`operator process exited (${code})`)));
      child.once('message', (m) => resolve(new OperatorProcess(child, (m as { baseline: Memory }).baseline)));
    });
  }

  ask(op: 'memory' | 'idle' | 'resync' | 'stop'): Promise<Record<string, number>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ id, op });
    });
  }

  async stop(): Promise<void> {
    this.child.removeAllListeners('exit');
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.ask('stop');
    await exited;
  }
}

async function rawStatusPatches(kc: KubeConfig, objs: BulkObject[]): Promise<number> {
  const start = performance.now();
  await pool(objs, CONCURRENCY, async (o) => {
    await patchStatus(kc, bulkRef(o), { conditions: [] });
  });
  return performance.now() - start;
}

/** Waits until `expected` objects (of `keys`, or of all) are Ready for their generation; ms since `since`. */
async function converged(ready: ReadinessWatch, expected: number, keys?: Set<string>, since = performance.now()): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not converged after ${TIMEOUT_MS / 60_000} min: ${ready.count(keys)}/${expected}`)), TIMEOUT_MS - (performance.now() - since));
  });
  // Progress on stderr: where the time goes (start-up, then the rate).
  const progress = setInterval(() => process.stderr.write(`  ${((performance.now() - since) / 1000).toFixed(0)} s: ${ready.count(keys)}/${expected} Ready\n`), 2_000);
  try {
    await Promise.race([ready.until(expected, keys), timeout]);
    return performance.now() - since;
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
  }
}

/** How many of our objects carry the operator's finalizer. */
async function countWithFinalizer(kc: KubeConfig): Promise<number> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  let n = 0;
  for (const plural of OUR_RESOURCES) {
    const list = (await custom.listClusterCustomObject({ group: 'rpa-access.io', version: 'v1alpha1', plural })) as { items: { metadata: { finalizers?: string[] } }[] };
    n += list.items.filter((i) => i.metadata.finalizers?.includes(FINALIZER)).length;
  }
  return n;
}

const round = (x: number, digits = 1) => +x.toFixed(digits);

async function main(): Promise<void> {
  if (!assetsDir()) throw new Error('no kube-apiserver/etcd: run scripts/install-control-plane.sh first');
  const cp = await startControlPlane();
  let operator: OperatorProcess | undefined;
  let ready: ReadinessWatch | undefined;
  let storeDir: string | undefined;
  try {
    // The raw rate over kept-alive connections, as the operator's own requests (a TLS handshake
    // per request, client-node's default, would make the baseline look slow).
    const kc = reusingConnections(kubeConfigOf(cp));
    await installCrds(cp, path.resolve('crds'));
    process.stderr.write(`creating ${N} objects in ${TENANTS} tenant(s), ${WEBHOOK ? 'through the mutating webhook' : 'without the mutating webhook'}...\n`);
    const webhook = WEBHOOK ? await installFinalizerWebhook(cp, 'default') : undefined;
    const all = await createBulk(kc, { prefix: 'tenant', tenants: TENANTS, total: N });
    await webhook?.remove();
    const withFinalizer = await countWithFinalizer(kc);
    // Readiness from a watch (bench/lib/readiness.ts), open from here on: the raw patches carry
    // the same watch load as the operator's writes.
    ready = await ReadinessWatch.start(kc);
    const tallyBeforeRaw = process.env.BENCH_REQUESTS ? tallyOf(await requestMetrics(cp)) : undefined;
    const cpuBeforeRaw = cpuNow(cp);
    const rawDone = rawStatusPatches(kc, all);
    const rawProfile = profileApiServer(cp, 'raw', rawDone);
    const rawMs = await rawDone;
    const rawCpu = cpuPerObject(cpuBeforeRaw, cpuNow(cp), all.length);
    await rawProfile;
    if (tallyBeforeRaw) printTallyDiff('raw status patches', tallyBeforeRaw, tallyOf(await requestMetrics(cp)));
    const users = all.filter((o) => o.kind === 'User');
    const wave = users.slice(0, Math.min(WAVE, users.length));
    const rawWaveMs = await rawStatusPatches(kc, wave);

    // 1. Cold start.
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-bench-'));
    process.stderr.write('cold start...\n');
    const metricsBefore = await requestMetrics(cp);
    const before = writesOf(metricsBefore);
    const tallyBeforeCold = process.env.BENCH_REQUESTS ? tallyOf(metricsBefore) : undefined;
    operator = await OperatorProcess.start(cp.kubeconfigPath, storeDir);
    const start = performance.now();
    const cpuBeforeCold = cpuNow(cp, operator.pid);
    const expected = all.length + TENANTS * BUILT_INS_PER_TENANT;
    const coldDone = converged(ready, expected, undefined, start);
    const coldProfile = profileApiServer(cp, 'cold-start', coldDone);
    const convergeMs = await coldDone;
    const coldCpu = cpuPerObject(cpuBeforeCold, cpuNow(cp, operator.pid), all.length);
    await coldProfile;
    if (tallyBeforeCold) printTallyDiff('cold start', tallyBeforeCold, tallyOf(await requestMetrics(cp)));
    await operator.ask('idle');
    const afterCold = await settledWrites(cp);
    const memCold = await operator.ask('memory');

    // 2. The drift pass, nothing changed.
    process.stderr.write('drift pass...\n');
    const driftStart = performance.now();
    await operator.ask('resync');
    await operator.ask('idle');
    const driftMs = performance.now() - driftStart;
    const afterDrift = await settledWrites(cp);

    // 3. A wave of spec changes.
    process.stderr.write(`wave of ${wave.length} changes...\n`);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const waveStart = performance.now();
    await pool(wave, CONCURRENCY, async (o) => {
      await custom.patchNamespacedCustomObject(
        { group: 'rpa-access.io', version: 'v1alpha1', plural: 'users', namespace: o.tenant, name: o.name, body: { spec: { fullName: `Changed ${o.name}` } } },
        MERGE_PATCH,
      );
    });
    const waveKeys = new Set(wave.map((o) => `User/${o.tenant}/${o.name}`));
    const waveMs = await converged(ready, wave.length, waveKeys, waveStart);
    await operator.ask('idle');
    const afterWave = await settledWrites(cp);
    const memWave = await operator.ask('memory');
    const baseline = operator.baseline;
    await operator.stop();
    operator = undefined;

    const cold = minus(afterCold, before);
    const drift = minus(afterDrift, afterCold);
    const waveWrites = minus(afterWave, afterDrift);
    waveWrites.objectPatches -= wave.length; // the benchmark's own spec changes
    const perObject = (w: Writes, n: number) => ({
      status: round(w.status / n, 2), finalizer: round(w.objectPatches / n, 2), events: round((w.eventCreates + w.eventPatches) / n, 2),
      creates: w.objectCreates, other: w.other,
    });
    const rows = {
      objects: all.length, tenants: TENANTS, concurrency: CONCURRENCY, createdWithFinalizer: withFinalizer, load: os.loadavg().map((l) => round(l, 2)),
      coldStart: {
        seconds: round(convergeMs / 1000, 2), objectsPerSecond: round(all.length / (convergeMs / 1000)),
        rawSeconds: round(rawMs / 1000, 2), rawPatchesPerSecond: round(all.length / (rawMs / 1000)), ratio: round(convergeMs / rawMs, 2),
        writes: cold, perObject: perObject(cold, expected),
        // CPU ms per object (of the N, as the raw baseline) by process, raw patches beside the cold start.
        cpuMsPerObject: { raw: rawCpu, coldStart: coldCpu },
      },
      drift: { seconds: round(driftMs / 1000, 2), writes: drift, total: Object.values(drift).reduce((a, b) => a + b, 0) },
      wave: {
        changes: wave.length, seconds: round(waveMs / 1000, 2), rawSeconds: round(rawWaveMs / 1000, 2), ratio: round(waveMs / rawWaveMs, 2),
        writes: waveWrites, perObject: perObject(waveWrites, wave.length),
      },
      memory: {
        baselineRssMiB: round(baseline.rss / MiB), rssAfterColdMiB: round(memCold.rss! / MiB), rssAfterWaveMiB: round(memWave.rss! / MiB),
        rssGrowthKiBPerObject: round((memCold.rss! - baseline.rss) / 1024 / expected, 2),
        heapGrowthKiBPerObject: round((memCold.heapUsed! - baseline.heapUsed) / 1024 / expected, 2),
        heapTotalGrowthKiBPerObject: round((memCold.heapTotal! - baseline.heapTotal) / 1024 / expected, 2),
        externalGrowthKiBPerObject: round((memCold.external! - baseline.external) / 1024 / expected, 2),
        // The operator's full GCs up to the end of the cold start: what keeping its heap compact costs.
        fullGcs: memCold.fullGcs!, fullGcSeconds: round(memCold.fullGcMs! / 1000, 2), longestFullGcMs: round(memCold.longestFullGcMs!),
      },
    };
    if (JSON_OUT) {
      console.log(JSON.stringify(rows));
      return;
    }
    console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}, kube-apiserver 1.20.2 + etcd 3.4, SQLite store; load average ${rows.load.join(' ')} (a shared 2-core machine under load: figures are noisy)`);
    console.log(`objects created ${WEBHOOK ? 'through the mutating webhook' : 'without the mutating webhook (--no-webhook)'}: ${withFinalizer} of ${all.length} carried the finalizer before the operator started`);
    console.log('');
    console.log('| objects | tenants | cold start (s) | objects/s | raw patches/s | ratio | drift pass (s) | drift API writes | wave | wave (s) | raw wave (s) | wave ratio |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    console.log(`| ${rows.objects} | ${rows.tenants} | ${rows.coldStart.seconds} | ${rows.coldStart.objectsPerSecond} | ${rows.coldStart.rawPatchesPerSecond} | ${rows.coldStart.ratio} | ${rows.drift.seconds} | ${rows.drift.total} | ${rows.wave.changes} | ${rows.wave.seconds} | ${rows.wave.rawSeconds} | ${rows.wave.ratio} |`);
    console.log('');
    console.log('| phase | status patches / object | finalizer patches / object | Event writes / object | object creates | other writes |');
    console.log('|---|---:|---:|---:|---:|---:|');
    console.log(`| cold start | ${rows.coldStart.perObject.status} | ${rows.coldStart.perObject.finalizer} | ${rows.coldStart.perObject.events} | ${rows.coldStart.perObject.creates} | ${rows.coldStart.perObject.other} |`);
    console.log(`| drift pass (totals) | ${drift.status} | ${drift.objectPatches} | ${drift.eventCreates + drift.eventPatches} | ${drift.objectCreates} | ${drift.other} |`);
    console.log(`| wave | ${rows.wave.perObject.status} | ${rows.wave.perObject.finalizer} | ${rows.wave.perObject.events} | ${rows.wave.perObject.creates} | ${rows.wave.perObject.other} |`);
    console.log('');
    const c = rows.coldStart.cpuMsPerObject;
    console.log('| CPU ms per object | kube-apiserver | etcd | operator | benchmark (patches, watch) | rest of the machine | machine |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const [phase, x] of [['raw status patches', c.raw], ['cold start', c.coldStart]] as const) {
      console.log(`| ${phase} | ${x.apiServer} | ${x.etcd} | ${x.operator} | ${x.bench} | ${x.other} | ${x.machine} |`);
    }
    console.log('');
    const m = rows.memory;
    console.log(`operator process: RSS ${m.baselineRssMiB} MiB before it starts (modules loaded), ${m.rssAfterColdMiB} MiB after the cold start, ${m.rssAfterWaveMiB} MiB after the wave; growth ${m.rssGrowthKiBPerObject} KiB per object (V8 heap in use ${m.heapGrowthKiBPerObject}, reserved ${m.heapTotalGrowthKiBPerObject}, outside the heap ${m.externalGrowthKiBPerObject} KiB per object)`);
    console.log(`operator full GCs during the cold start: ${m.fullGcs}, ${m.fullGcSeconds} s in all, the longest ${m.longestFullGcMs} ms`);
  } finally {
    await operator?.stop().catch(() => undefined);
    await ready?.stop();
    // BENCH_APISERVER_LOG=FILE keeps the API server's log (watchers it closed, slow requests).
    if (process.env.BENCH_APISERVER_LOG) {
      try {
        fs.copyFileSync(path.join(cp.dir, 'kube-apiserver.log'), process.env.BENCH_APISERVER_LOG);
      } catch (err) {
        process.stderr.write(`kube-apiserver's log not kept: ${String(err)}\n`);
      }
    }
    await cp.stop();
    // The store (some 7 MiB at 10,000 objects) is the run's alone.
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
