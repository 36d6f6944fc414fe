/**
 * Throughput and latency of `POST /v1/check` over HTTP: a `serve` child process (`--auth none`,
 * loopback, SQLite store) over a generated tenant of 1k / 10k / 100k bindings, driven by
 * autocannon from this process, closed loop, at 1, 2, 4... connections: the highest throughput
 * whose p99 stays under 5 ms is the sustained rate. (autocannon's fixed-rate mode sends each
 * second's quota in a burst and "corrects" latencies with a 1 ms expected interval: its figures
 * at these rates describe autocannon, not the server. Its histogram also rounds to whole ms, so
 * latencies here are taken from every response.)
 *
 *   npx tsx bench/http.ts [--sizes 1000,10000,100000] [--duration 4] [--connections 1,2,4,8,16,32] [--json]
 *
 * The server and the load generator share the machine: on 2 cores each has about one. The
 * checks are the engine benchmark's (bench/lib/data.ts: half aimed at held permissions).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { start } from '../src/server/main.js';
import { createLogger } from '../src/log.js';
import { openStore } from '../src/store/open.js';
import { generateChecks, generateTenant } from './lib/data.js';
import { fmtBytes, fmtCount, machineInfo, machineLine, markdownTable, percentiles } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '1000,10000,100000' },
    duration: { type: 'string', default: '4' },
    connections: { type: 'string', default: '1,2,4,8,16,32' },
    'p99-budget': { type: 'string', default: '5' },
    child: { type: 'boolean', default: false },
    store: { type: 'string' },
  },
});

const P99_BUDGET_MS = Number(args['p99-budget']);

if (args.child) {
  // The server side: `serve --auth none` on a free loopback port; prints its URL once loaded.
  const server = await start({ store: args.store!, port: 0, host: '127.0.0.1', auth: 'none' }, { logger: createLogger({ level: 'error', name: 'serve' }) });
  await server.loaded;
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
} else {
  await main();
}

interface Step {
  connections: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  requests: number;
  errors: number;
  non2xx: number;
  ok: boolean;
}

interface SizeResult {
  bindings: number;
  users: number;
  storeBuildMs: number;
  serverLoadMs: number;
  rssBytes: number;
  steps: Step[];
  best: Step | null;
}

async function spawnServer(store: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--store', store], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
  });
  return { child, url };
}

async function rssOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^process_resident_memory_bytes (\d+)/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * One closed-loop run: `connections` clients, each sending its next request when the previous
 * answer arrives. Latencies are taken from every response (ms, float), not from autocannon's
 * histogram, which rounds to whole milliseconds.
 */
async function drive(url: string, requests: autocannon.Request[], seconds: number, connections: number): Promise<Step> {
  const samples: number[] = [];
  // Without a callback, autocannon returns its tracker (an EventEmitter) made thenable.
  const instance = autocannon({ url, connections, duration: seconds, pipelining: 1, requests }) as unknown as EventEmitter & PromiseLike<autocannon.Result>;
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => samples.push(ms));
  const r = await instance;
  const p = percentiles(samples);
  const step: Step = {
    connections, rps: r.requests.total / seconds,
    p50: p.p50, p90: p.p90, p99: p.p99, max: p.max,
    requests: r.requests.total, errors: r.errors + r.timeouts, non2xx: r.non2xx, ok: false,
  };
  step.ok = step.errors === 0 && step.non2xx === 0 && step.p99 < P99_BUDGET_MS;
  return step;
}

async function benchSize(bindings: number, seconds: number, connectionSteps: number[], log: (s: string) => void): Promise<SizeResult> {
  const gen = generateTenant({ bindings, seed: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rpa-access-bench-http-${bindings}-`));
  let t = performance.now();
  const store = await openStore(dir);
  const applied = await store.apply([{ tenant: gen.tenant, upserts: gen.entries }], { actor: 'bench', source: 'bench' });
  if (applied.violations.length) throw new Error(`generated tenant refused: ${applied.violations[0]!.message}`);
  await store.close();
  const storeBuildMs = performance.now() - t;
  t = performance.now();
  const { child, url } = await spawnServer(dir);
  const serverLoadMs = performance.now() - t;
  try {
    const requests: autocannon.Request[] = generateChecks(gen, 2_000, 7).map((c) => ({
      method: 'POST',
      path: '/v1/check',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: gen.tenant, ...c }),
    }));
    log(`  ${bindings} bindings: store built in ${(storeBuildMs / 1000).toFixed(1)} s, serve ready in ${(serverLoadMs / 1000).toFixed(1)} s; warming up`);
    await drive(url, requests, 2, 8); // warm-up: JIT, users' compiled grants
    const steps: Step[] = [];
    for (const c of connectionSteps) {
      const st = await drive(url, requests, seconds, c);
      steps.push(st);
      log(`  ${c} connections: ${fmtCount(st.rps)} req/s, p50 ${st.p50.toFixed(2)} ms, p99 ${st.p99.toFixed(2)} ms${st.ok ? '' : ' (over budget)'}`);
    }
    const best = steps.filter((s) => s.ok).sort((a, b) => b.rps - a.rps)[0] ?? null;
    const rssBytes = await rssOf(url);
    return { bindings, users: gen.users.length, storeBuildMs, serverLoadMs, rssBytes, steps, best };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = args.sizes!.split(',').map(Number);
  const seconds = Number(args.duration);
  const connections = args.connections!.split(',').map(Number);
  const log = (s: string) => {
    if (!args.json) process.stderr.write(`${s}\n`);
  };
  const machine = machineInfo();
  const results: SizeResult[] = [];
  for (const n of sizes) results.push(await benchSize(n, seconds, connections, log));

  if (args.json) {
    process.stdout.write(`${JSON.stringify({ machine, p99BudgetMs: P99_BUDGET_MS, seconds, connections, results }, null, 2)}\n`);
    return;
  }
  const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
  const top = (r: SizeResult) => [...r.steps].sort((a, b) => b.rps - a.rps)[0]!;
  console.log(`## POST /v1/check over HTTP (serve --auth none, SQLite store, loopback; closed loop, ${seconds} s per step)\n`);
  console.log(`Machine: ${machineLine(machine)}\n`);
  console.log(markdownTable(
    ['>bindings', '>users', `>sustained req/s (p99 < ${P99_BUDGET_MS} ms)`, '>connections', '>p50', '>p99', '>peak req/s', '>p99 at peak', '>serve RSS', '>serve ready'],
    results.map((r) => [
      fmtCount(r.bindings), fmtCount(r.users),
      r.best ? fmtCount(r.best.rps) : 'none', r.best ? String(r.best.connections) : '-', r.best ? ms(r.best.p50) : '-', r.best ? ms(r.best.p99) : '-',
      fmtCount(top(r).rps), ms(top(r).p99), fmtBytes(r.rssBytes), `${(r.serverLoadMs / 1000).toFixed(1)} s`,
    ]),
  ));
  console.log('\nEvery step:\n');
  console.log(markdownTable(
    ['>bindings', '>connections', '>req/s', '>p50', '>p90', '>p99', '>max', '>errors', `p99 < ${P99_BUDGET_MS} ms`],
    results.flatMap((r) => r.steps.map((s) => [
      fmtCount(r.bindings), String(s.connections), fmtCount(s.rps), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max),
      String(s.errors + s.non2xx), s.ok ? 'yes' : 'no',
    ])),
  ));
}
