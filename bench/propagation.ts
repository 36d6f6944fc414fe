/**
 * Propagation: time from an apply's commit (the writer's `apply()` resolving) to the decision
 * changing, as seen by a DecisionIndex in this process (over its own store handle, as a replica
 * would have) and by a `serve` child process over HTTP (polled back to back). SQLite and
 * PostgreSQL. Each change grants or revokes `administrator` to one user; the writer waits a
 * random 20-120 ms between changes so they land at every phase of SQLite's 100 ms poll.
 *
 * Each change reaches the index as a delta: the store's incremental read (`loadTenantChanges`:
 * the objects changed since the index's revision) applied to the previous index (`withChanges`).
 * The *reloads* column counts delta and full reloads. Then the cost of each path at 1k / 10k /
 * 100k bindings: a full reload (whole tenant read cold from a fresh store handle, then a fresh
 * TenantIndex built) against a delta of one change (read, then applied).
 *
 *   npx tsx bench/propagation.ts [--changes 100] [--bindings 1000] [--reload-sizes 1000,10000,100000]
 *                               [--large-changes 5] [--pg URL] [--json]
 *
 * `--large-changes N`: N changes seen by a DecisionIndex in the largest `--reload-sizes` tenant
 * (when it is not `--bindings`). `--bindings 100000 --reload-sizes 100000` measures the
 * DecisionIndex and serve over HTTP at 100k.
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
import { DecisionIndex } from '../src/server/decision-index.js';
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

/** Whether the probe user holds the flip binding, per store and tenant (it starts without). */
const flipped = new Map<string, boolean>();
const flipKey = (store: AccessStore, tenant: string) => `${store.description}|${tenant}`;

/** Grants or revokes (alternately) administrator to the probe user; resolves at the commit. */
async function flip(writer: AccessStore, tenant: string, i: number): Promise<{ revision: number; committedAt: number; applyMs: number; grant: boolean }> {
  const grant = !flipped.get(flipKey(writer, tenant));
  const t0 = performance.now();
  const r = await writer.apply([{ tenant, upserts: grant ? [flipBinding] : [], deletes: grant ? [] : [{ kind: 'RoleBinding', name: FLIP }] }], { actor: 'bench', source: 'bench' });
  const committedAt = performance.now();
  if (!r.written) throw new Error(`change ${i} was not written`);
  flipped.set(flipKey(writer, tenant), grant);
  return { revision: r.revisions.get(tenant)!, committedAt, applyMs: committedAt - t0, grant };
}

interface Series {
  backend: string;
  observer: string;
  bindings: number;
  changes: number;
  /** Commit to visible, ms (negative: visible before the writer's apply() resolved). */
  latency: Percentiles;
  applyMs: Percentiles;
  /** Reloads seen by the DecisionIndex, by mode (not known for serve). */
  reloads?: { delta: number; full: number };
}

async function viaIndex(backend: string, url: string, writer: AccessStore, tenant: string, bindings: number, changes: number, rng: Rng): Promise<Series> {
  const replicaStore = await openStore(url);
  const index = new DecisionIndex(replicaStore, { resyncIntervalMs: 60_000 });
  await index.start();
  const seen = new Map<number, number>();
  const reloads = { delta: 0, full: 0 };
  index.listen({
    reloaded: (e) => {
      seen.set(e.revision, performance.now());
      reloads[e.mode]++;
    },
  });
  const samples: number[] = [];
  const applies: number[] = [];
  try {
    for (let i = 0; i < changes; i++) {
      const c = await flip(writer, tenant, i);
      applies.push(c.applyMs);
      await index.waitForRevision(tenant, c.revision, 30_000);
      const at = [...seen.entries()].filter(([rev]) => rev >= c.revision).map(([, t]) => t);
      samples.push(Math.min(...at) - c.committedAt);
      if (index.get(tenant)!.check({ user: USER, permission: 'Users.Delete' }).allowed !== c.grant) throw new Error('index disagrees with the store');
      seen.clear();
      await sleep(20 + rng.int(100));
    }
  } finally {
    await index.stop();
    await replicaStore.close();
  }
  return { backend, observer: 'DecisionIndex (in-process, own store handle)', bindings, changes, latency: percentiles(samples), applyMs: percentiles(applies), reloads };
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
      const c = await flip(writer, tenant, i);
      const want = c.grant;
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
  deltaReadMs: number;
  deltaApplyMs: number;
}

/**
 * A full reload: a cold tenant load (fresh store handle, as a replica reloading after another's
 * write) and a fresh index build. Then a delta: one change committed, read with
 * `loadTenantChanges` and applied to that index with `withChanges`. Median of 3.
 */
async function reloadCost(backend: string, url: string, tenant: string, bindings: number): Promise<ReloadCost> {
  const loads: number[] = [];
  const builds: number[] = [];
  const reads: number[] = [];
  const applies: number[] = [];
  for (let i = 0; i < 3; i++) {
    const store = await openStore(url);
    try {
      let t = performance.now();
      const snap = (await store.loadTenant(tenant))!;
      loads.push(performance.now() - t);
      t = performance.now();
      const index = new TenantIndex(snap.state, snap.revision);
      builds.push(performance.now() - t);
      const granted = snap.state.bindings.has(FLIP);
      const r = await store.apply([{ tenant, upserts: granted ? [] : [flipBinding], deletes: granted ? [{ kind: 'RoleBinding', name: FLIP }] : [] }], { actor: 'bench', source: 'bench' });
      if (!r.written) throw new Error('reload-cost change was not written');
      flipped.set(flipKey(store, tenant), !granted);
      t = performance.now();
      const delta = (await store.loadTenantChanges!(tenant, index.revision))!;
      reads.push(performance.now() - t);
      t = performance.now();
      const next = delta && index.withChanges(delta, delta.revision);
      applies.push(performance.now() - t);
      if (!next || next.check({ user: USER, permission: 'Users.Delete' }).allowed === granted) throw new Error('the delta did not carry the change');
    } finally {
      await store.close();
    }
  }
  return {
    backend, bindings, loadMs: percentiles(loads).p50, buildMs: percentiles(builds).p50,
    deltaReadMs: percentiles(reads).p50, deltaApplyMs: percentiles(applies).p50,
  };
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
  const ms = (x: number) => (Math.abs(x) >= 100 ? `${x.toFixed(0)} ms` : Math.abs(x) >= 1 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`);
  console.log('## Propagation: commit of an apply -> decision changed\n');
  console.log(`Machine: ${machineLine(machine)}\n`);
  console.log(markdownTable(
    ['store', 'observer', '>bindings', '>changes', '>p50', '>p90', '>p99', '>max', '>apply p50', '>reloads (delta/full)'],
    series.map((s) => [
      s.backend, s.observer, fmtCount(s.bindings), String(s.changes), ms(s.latency.p50), ms(s.latency.p90), ms(s.latency.p99), ms(s.latency.max), ms(s.applyMs.p50),
      s.reloads ? `${s.reloads.delta}/${s.reloads.full}` : 'n/a',
    ]),
  ));
  console.log('\nCost of one reload, full (whole tenant read from a fresh store handle, then a TenantIndex built) and delta (one change read with loadTenantChanges, then applied with withChanges); median of 3:\n');
  console.log(markdownTable(
    ['store', '>bindings', '>loadTenant', '>TenantIndex build', '>full total', '>loadTenantChanges', '>withChanges', '>delta total'],
    reloads.map((r) => [
      r.backend, fmtCount(r.bindings), ms(r.loadMs), ms(r.buildMs), ms(r.loadMs + r.buildMs), ms(r.deltaReadMs), ms(r.deltaApplyMs), ms(r.deltaReadMs + r.deltaApplyMs),
    ]),
  ));
}

await main();
