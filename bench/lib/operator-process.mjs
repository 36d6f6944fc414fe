// @ts-check
/**
 * The operator in a process of its own, for benchmarks that measure its memory: started by
 * bench/operator-scale.ts with `fork`, driven over IPC. Nothing else lives in this process, so
 * its RSS is the operator's.
 *
 * Plain JavaScript over the build (dist/, `npm run build`), as the operator runs in its image:
 * run through tsx, the process would also hold tsx's module hooks (a thread of their own whose
 * memory comes and goes), and RSS growth per object read ±3 KiB at 10,000 objects.
 *
 * Environment: BENCH_KUBECONFIG (a kubeconfig file), BENCH_STORE (store path or URL),
 * BENCH_CONCURRENCY, BENCH_DEFAULT_GC. Messages in: { op: 'memory' | 'idle' | 'resync' | 'stop', id }; every answer
 * is { id, ... } (a memory answer also counts the operator's full GCs so far, their total and
 * longest time). First messages out: { loaded: true, baseline } with the modules loaded, before
 * the operator starts (a cold start is timed from there), then { running: true }. BENCH_SPACES=1
 * also prints V8's heap spaces and process.memoryUsage() on stderr at each memory reading;
 * BENCH_HEAP_SNAPSHOT=PREFIX writes a heap snapshot at each (PREFIX-0.heapsnapshot, ...).
 */
import fs from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import Database from 'better-sqlite3';
import { startOperator } from '../../dist/src/operator/manager.js';
import { tuneHeapForOperator } from '../../dist/src/operator/heap.js';

let readings = 0;
// Full GCs of the operator's own work (not those memory() forces): how many, how long in all, the longest.
const fullGcs = { count: 0, totalMs: 0, maxMs: 0 };
let measuring = false;
new PerformanceObserver((list) => {
  if (measuring) return;
  for (const e of list.getEntries()) {
    if (/** @type {{ detail?: { kind?: number } }} */ (e).detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
    fullGcs.count++;
    fullGcs.totalMs += e.duration;
    fullGcs.maxMs = Math.max(fullGcs.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });
const gc = () => /** @type {{ gc?: () => void }} */ (globalThis).gc?.();
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 2 ** 20;
const youngGeneration = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

/**
 * The process's memory once idle: after a full GC, and once V8's memory reducer has given back
 * what a busy spell grew (it shrinks the young generation from up to 32 MiB back to 1-2 MiB some
 * 10-20 s after allocation calms down, compacts the old generation, and the pages a GC freed are
 * unmapped from a background thread): RSS, the V8 heap in use and reserved (heapTotal), and
 * memory outside it (Buffers, native). Read at once after a GC, RSS would count up to 3 KiB per
 * object more at 10,000 objects, by chance of timing, that a running operator does not keep.
 */
async function memory() {
  measuring = true;
  try {
    return await idleMemory();
  } finally {
    // GC entries are delivered after the GC: let those of this reading pass first.
    await sleep(100);
    measuring = false;
  }
}

/**
 * Polls `read` every `everyMs` until it has not fallen for `steadyMs` (`maxMs` at most): memory a
 * GC or the memory reducer gives back arrives over seconds, not at once.
 * @param {() => number} read
 * @param {{ everyMs: number, steadyMs: number, maxMs: number }} opts
 */
async function untilSteady(read, { everyMs, steadyMs, maxMs }) {
  let lowest = read();
  for (let steady = 0, waited = 0; steady < steadyMs && waited < maxMs; waited += everyMs) {
    await sleep(everyMs);
    const now = read();
    steady = now < lowest ? 0 : steady + everyMs;
    lowest = Math.min(lowest, now);
  }
}

async function idleMemory() {
  gc();
  for (let waited = 0; youngGeneration() > 2 * MiB && waited < 40_000; waited += 1_000) await sleep(1_000);
  // The memory reducer runs up to three GCs, some 8 s apart, each compacting what it can: wait
  // until the reserved heap has stopped shrinking for 10 s (40 s at most).
  await untilSteady(() => process.memoryUsage().heapTotal, { everyMs: 2_000, steadyMs: 10_000, maxMs: 40_000 });
  gc();
  // The pages that GC freed go back to the system from a background thread, sometimes seconds
  // later: wait until RSS has stopped falling for 2 s (10 s at most). Read at a fixed 1 s, the
  // reading after a 10,000-object cold start landed 30 MiB high in some runs and not in others
  // (the idle process's RSS polled from outside: 163 MiB, 132 MiB once given back), and the
  // baseline the same way, so that growth per object read 3 KiB or 6.7 KiB by chance.
  await untilSteady(() => process.memoryUsage.rss(), { everyMs: 250, steadyMs: 2_000, maxMs: 10_000 });
  const m = process.memoryUsage();
  if (process.env.BENCH_HEAP_SNAPSHOT) console.error(`heap snapshot: ${v8.writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}-${readings++}.heapsnapshot`)}`);
  if (process.env.BENCH_SPACES) {
    const mib = (/** @type {number} */ n) => (n / MiB).toFixed(1);
    for (const sp of v8.getHeapSpaceStatistics()) console.error(`${sp.space_name}: size ${mib(sp.space_size)} used ${mib(sp.space_used_size)} available ${mib(sp.space_available_size)} physical ${mib(sp.physical_space_size)}`);
    console.error(JSON.stringify(m));
    console.error(smapsSummary());
  }
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
}

/** RSS by mapping (from /proc/self/smaps): the V8 heap, malloc's heap and arenas, files. */
function smapsSummary() {
  const text = fs.readFileSync('/proc/self/smaps', 'utf8');
  /** @type {{ name: string, rss: number, size: number }[]} */
  const maps = [];
  let cur = /** @type {{ name: string, rss: number, size: number } | undefined} */ (undefined);
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) { cur = { name: head[1] || '[anon]', rss: 0, size: 0 }; maps.push(cur); continue; }
    const kv = /^(Rss|Size):\s+(\d+) kB/.exec(line);
    if (kv && cur) cur[kv[1] === 'Rss' ? 'rss' : 'size'] = +kv[2];
  }
  /** @type {Map<string, { rss: number, n: number, size: number }>} */
  const byName = new Map();
  for (const m of maps) {
    const k = m.name.startsWith('/') ? m.name.replace(/.*\//, '') : m.name;
    const e = byName.get(k) ?? { rss: 0, n: 0, size: 0 };
    e.rss += m.rss; e.n++; e.size += m.size; byName.set(k, e);
  }
  const top = [...byName].sort((a, b) => b[1].rss - a[1].rss).slice(0, 8).map(([k, e]) => `${k} x${e.n} rss ${(e.rss / 1024).toFixed(1)} MiB of ${(e.size / 1024).toFixed(1)}`);
  const anonSizes = maps.filter((m) => m.name === '[anon]').map((m) => m.rss).sort((a, b) => b - a).slice(0, 12).map((k) => (k / 1024).toFixed(1));
  return `smaps: ${top.join('; ')}\nbiggest anonymous mappings (MiB rss): ${anonSizes.join(' ')}`;
}

async function main() {
  const send = (/** @type {object} */ message) => /** @type {NonNullable<typeof process.send>} */ (process.send)(message);
  const kc = new KubeConfig();
  kc.loadFromFile(/** @type {string} */ (process.env.BENCH_KUBECONFIG));
  // As `rpa-access operator` does (src/operator/main.ts); BENCH_DEFAULT_GC=1 leaves V8's defaults,
  // to compare.
  if (!process.env.BENCH_DEFAULT_GC) tuneHeapForOperator();
  // Before the operator exists: what the process costs with its modules loaded. better-sqlite3
  // loads its native addon (1.9 MiB of code) when the first database opens: opened here, so the
  // store's code counts in the baseline, as the rest of the operator's code does.
  new Database(':memory:').close();
  const baseline = await memory();
  send({ loaded: true, baseline });
  const operator = await startOperator({
    kubeconfig: kc, store: /** @type {string} */ (process.env.BENCH_STORE), log: pino({ level: process.env.BENCH_LOG ?? 'silent' }, pino.destination(2)), healthPort: 0,
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8), leaderElection: false, driftPeriodMs: 24 * 3600_000,
  });
  await operator.whenRunning();
  send({ running: true });
  process.on('message', (raw) => {
    const req = /** @type {{ id: number, op: 'memory' | 'idle' | 'resync' | 'stop' }} */ (raw);
    void (async () => {
      if (req.op === 'memory') return { ...(await memory()), fullGcs: fullGcs.count, fullGcMs: fullGcs.totalMs, longestFullGcMs: fullGcs.maxMs };
      if (req.op === 'idle') return operator.idle().then(() => ({}));
      if (req.op === 'resync') {
        operator.resync();
        return {};
      }
      await operator.stop();
      return {};
    })().then((answer) => {
      send({ id: req.id, ...answer });
      if (req.op === 'stop') process.disconnect();
    });
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
