/**
 * Propagation: time from an apply's commit (the writer's `apply()` resolving) to the decision
 * changing, as seen by a DecisionIndex in this process (over its own store handle, as a replica
 * would have) and by a `serve` child process over HTTP (polled back to back). SQLite and
 * PostgreSQL. Each change grants or revokes `administrator` to one user; the writer waits a
 * random 20-120 ms between changes so they land at every phase of SQLite's 100 ms poll.
 *
 * Then the cost that bounds propagation in large tenants: a reload reads the whole tenant
 * (the store offers no incremental read), measured cold at 1k / 10k / 100k bindings.
 *
 *   npx tsx bench/propagation.ts [--changes 100] [--bindings 1000] [--reload-sizes 1000,10000,100000]
 *                               [--large-changes 5] [--pg URL] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { TenantIndex } from '../src/model/engine.js';
import type { AnyEntry } from '../src/model/types.js';
import { withDefaults } from '../src/model/validate.js';
import { DecisionIndex } from '../src/server/index-cache.js';
import { openStore } from '../src/store/open.js';
import type { AccessStore } from '../src/store/store.js';
import { generateTenant } from './lib/data.js';
import { Rng } from './lib/random.js';
import { fmtCount, machineInfo, machineLine, markdownTable, percentiles, type Percentiles } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    changes: { type: 'string', default: '100' },
    bindings: { type: 'string', default: '1000' },
    'reload-sizes': { type: 'string', default: '1000,10000,100000' },
    'large-changes': { type: 'string', default: '5' },
    pg: { type: 'string' },
  },
});

const PG_URL = args.pg ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const HTTP_CHILD = fileURLToPath(new URL('./http.ts', import.meta.url));
const USER = 'propagation-probe';
const FLIP = 'propagation-flip';
const log = (s: string) => {
  if (!args.json) process.stderr.write(`${s}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const probeUser: AnyEntry = { kind: 'User', name: USER, origin: 'user', spec: withDefaults('User', { email: `${USER}@bench.example` }) };
const flipBinding: AnyEntry = {
  kind: 'RoleBinding', name: FLIP, origin: 'user',
  spec: withDefaults('RoleBinding', { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: USER }] }),
};

interface Backend {
  name: 'sqlite' | 'postgres';
  url(label: string): string;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    url: (label) => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), `rpa-access-bench-prop-${label}-`));
      dirs.push(d);
      return d;
    },
    async cleanup() {
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}

function postgresBackend(): Backend {
  const schemas: string[] = [];
  return {
    name: 'postgres',
    url: (label) => {
      const schema = `bench_prop_${process.pid}_${label}`;
      schemas.push(schema);
      const u = new URL(PG_URL);
      u.searchParams.set('schema', schema);
      return u.toString();
    },
    async cleanup() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      for (const s of schemas) await c.query(`drop schema if exists ${s} cascade`).catch(() => undefined);
      await c.end();
    },
  };
}

async function seeded(url: string, bindings: number): Promise<{ store: AccessStore; tenant: string; buildMs: number }> {
  const gen = generateTenant({ bindings, seed: 1 });
  const t = performance.now();
  const store = await openStore(url);
  const r = await store.apply([{ tenant: gen.tenant, upserts: [...gen.entries, probeUser] }], { actor: 'bench', source: 'bench' });
  if (r.violations.length) throw new Error(`generated tenant refused: ${r.violations[0]!.message}`);
  return { store, tenant: gen.tenant, buildMs: performance.now() - t };
}

/** Grants (even i) or revokes (odd i) administrator to the probe user; resolves at the commit. */
async function flip(writer: AccessStore, tenant: string, i: number): Promise<{ revision: number; committedAt: number; applyMs: number }> {
  const grant = i % 2 === 0;
  const t0 = performance.now();
  const r = await writer.apply([{ tenant, upserts: grant ? [flipBinding] : [], deletes: grant ? [] : [{ kind: 'RoleBinding', name: FLIP }] }], { actor: 'bench', source: 'bench' });
  const committedAt = performance.now();
  if (!r.written) throw new Error(`change ${i} was not written`);
  return { revision: r.revisions.get(tenant)!, committedAt, applyMs: committedAt - t0 };
}

interface Series {
  backend: string;
  observer: string;
  bindings: number;
  changes: number;
  /** Commit to visible, ms (negative: visible before the writer's apply() resolved). */
  latency: Percentiles;
  applyMs: Percentiles;
}

async function viaIndex(backend: string, url: string, writer: AccessStore, tenant: string, bindings: number, changes: number, rng: Rng): Promise<Series> {
  const replicaStore = await openStore(url);
  const index = new DecisionIndex(replicaStore, { resyncIntervalMs: 60_000 });
  await index.start();
  const seen = new Map<number, number>();
  index.listen({ reloaded: (e) => seen.set(e.revision, performance.now()) });
  const samples: number[] = [];
  const applies: number[] = [];
  try {
    for (let i = 0; i < changes; i++) {
      const c = await flip(writer, tenant, i);
      applies.push(c.applyMs);
      await index.waitForRevision(tenant, c.revision, 30_000);
      const at = [...seen.entries()].filter(([rev]) => rev >= c.revision).map(([, t]) => t);
      samples.push(Math.min(...at) - c.committedAt);
      const want = i % 2 === 0;
      if (index.get(tenant)!.check({ user: USER, permission: 'Users.Delete' }).allowed !== want) throw new Error('index disagrees with the store');
      seen.clear();
      await sleep(20 + rng.int(100));
    }
  } finally {
    await index.stop();
    await replicaStore.close();
  }
  return { backend, observer: 'DecisionIndex (in-process, own store handle)', bindings, changes, latency: percentiles(samples), applyMs: percentiles(applies) };
}

async function spawnServe(store: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', HTTP_CHILD, '--child', '--store', store], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
  });
  return { child, url };
}

async function viaHttp(backend: string, url: string, writer: AccessStore, tenant: string, bindings: number, changes: number, rng: Rng): Promise<Series> {
  const { child, url: base } = await spawnServe(url);
  const body = JSON.stringify({ tenant, user: USER, permission: 'Users.Delete' });
  const ask = async () => {
    const r = await fetch(`${base}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return ((await r.json()) as { allowed: boolean }).allowed;
  };
  const samples: number[] = [];
  const applies: number[] = [];
  try {
    await ask();
    for (let i = 0; i < changes; i++) {
      const want = i % 2 === 0;
      const c = await flip(writer, tenant, i);
      applies.push(c.applyMs);
      const deadline = c.committedAt + 30_000;
      while ((await ask()) !== want) if (performance.now() > deadline) throw new Error(`serve did not see change ${i} within 30 s`);
      samples.push(performance.now() - c.committedAt);
      await sleep(20 + rng.int(100));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  return { backend, observer: 'serve over HTTP (child process, polled)', bindings, changes, latency: percentiles(samples), applyMs: percentiles(applies) };
}

interface ReloadCost {
  backend: string;
  bindings: number;
  loadMs: number;
  buildMs: number;
}

/** A cold tenant load (fresh store handle, as a replica reloading after another's write) and the index build. */
async function reloadCost(backend: string, url: string, tenant: string, bindings: number): Promise<ReloadCost> {
  const loads: number[] = [];
  const builds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const store = await openStore(url);
    try {
      let t = performance.now();
      const snap = (await store.loadTenant(tenant))!;
      loads.push(performance.now() - t);
      t = performance.now();
      new TenantIndex(snap.state, snap.revision);
      builds.push(performance.now() - t);
    } finally {
      await store.close();
    }
  }
  return { backend, bindings, loadMs: percentiles(loads).p50, buildMs: percentiles(builds).p50 };
}

async function main(): Promise<void> {
  const changes = Number(args.changes);
  const bindings = Number(args.bindings);
  const reloadSizes = args['reload-sizes']!.split(',').filter(Boolean).map(Number);
  const largeChanges = Number(args['large-changes']);
  const machine = machineInfo();
  const series: Series[] = [];
  const reloads: ReloadCost[] = [];
  for (const backend of [sqliteBackend(), postgresBackend()]) {
    try {
      const rng = new Rng(42);
      const url = backend.url('main');
      const { store: writer, tenant } = await seeded(url, bindings);
      try {
        log(`${backend.name}: ${changes} changes seen by a DecisionIndex...`);
        series.push(await viaIndex(backend.name, url, writer, tenant, bindings, changes, rng));
        log(`${backend.name}: ${changes} changes seen by serve over HTTP...`);
        series.push(await viaHttp(backend.name, url, writer, tenant, bindings, changes, rng));
      } finally {
        await writer.close();
      }
      for (const n of reloadSizes) {
        const u = n === bindings ? url : backend.url(String(n));
        let writerStore: AccessStore | undefined;
        let t = tenant;
        if (n !== bindings) {
          log(`${backend.name}: building a tenant of ${n} bindings...`);
          const s = await seeded(u, n);
          writerStore = s.store;
          t = s.tenant;
        }
        try {
          reloads.push(await reloadCost(backend.name, u, t, n));
          if (writerStore && n === Math.max(...reloadSizes) && largeChanges > 0) {
            log(`${backend.name}: ${largeChanges} changes in the ${n}-binding tenant...`);
            series.push(await viaIndex(backend.name, u, writerStore, t, n, largeChanges, rng));
          }
        } finally {
          await writerStore?.close();
        }
      }
    } finally {
      await backend.cleanup();
    }
  }

  if (args.json) {
    process.stdout.write(`${JSON.stringify({ machine, series, reloads }, null, 2)}\n`);
    return;
  }
  const ms = (x: number) => (Math.abs(x) >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`);
  console.log('## Propagation: commit of an apply -> decision changed\n');
  console.log(`Machine: ${machineLine(machine)}\n`);
  console.log(markdownTable(
    ['store', 'observer', '>bindings', '>changes', '>p50', '>p90', '>p99', '>max', '>apply p50'],
    series.map((s) => [s.backend, s.observer, fmtCount(s.bindings), String(s.changes), ms(s.latency.p50), ms(s.latency.p90), ms(s.latency.p99), ms(s.latency.max), ms(s.applyMs.p50)]),
  ));
  console.log('\nCost of one reload (whole tenant read from a fresh store handle, then the index built; median of 3):\n');
  console.log(markdownTable(
    ['store', '>bindings', '>loadTenant', '>TenantIndex build', '>total'],
    reloads.map((r) => [r.backend, fmtCount(r.bindings), ms(r.loadMs), ms(r.buildMs), ms(r.loadMs + r.buildMs)]),
  ));
}

await main();
