/**
 * The naive alternative to the decision index: one SQL query per check, straight over the
 * store's `objects` table in PostgreSQL (spec is JSON text, cast to jsonb in the query), against
 * the in-memory TenantIndex on the same data and the same checks. Two SQL variants: as the store
 * is (no index beyond the primary key), and with expression indexes a DBA would add (users by
 * email; a GIN index on the bindings' subjects, queried per subject).
 *
 *   npx tsx bench/sql-baseline.ts [--sizes 1000,10000,100000] [--seconds 5] [--concurrency 4] [--pg URL] [--explain] [--json]
 *
 * Every SQL answer is compared with the index's: the table reports disagreements (expected 0).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { BUILT_IN_ROLE_NAMES } from '../src/model/catalog.js';
import { TenantIndex, parseRequest, type CheckRequest } from '../src/model/engine.js';
import { openStore } from '../src/store/open.js';
import { generateChecks, generateTenant } from './lib/data.js';
import { fmtCount, machineInfo, machineLine, markdownTable, nowNs, percentiles, type Percentiles } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '1000,10000,100000' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '4' },
    pg: { type: 'string' },
    explain: { type: 'boolean', default: false },
  },
});

const PG_URL = args.pg ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The active user (by name, else by email), the subjects they are, and every grant: one statement. */
const grantsFrom = (bindings: string) => `
with u as (
  select name, spec::jsonb as s from objects
  where tenant = $1 and kind = 'User' and (name = $2 or lower(spec::jsonb->>'email') = lower($2))
  order by (name = $2) desc limit 1
),
active as (select * from u where coalesce((s->>'active')::boolean, true)),
subj as (
  select 'User'::text as kind, name, 'user'::text as via from active
  union
  select 'Group', gs.g, 'group:' || gs.g
  from active, lateral (select jsonb_array_elements_text(coalesce(active.s->'groups', '[]'::jsonb)) as g union select 'global') gs
  where exists (select 1 from objects o where o.tenant = $1 and o.kind = 'Group' and o.name = gs.g)
),
grants as (
  select r.name as role, b.name as binding, subj.via, b.s->>'folder' as folder
  from ${bindings}
  join objects r on r.tenant = $1 and r.kind = 'Role' and r.name = b.s->'roleRef'->>'name'
  where exists (select 1 from jsonb_array_elements(r.spec::jsonb->'permissions') p where p->>'resource' = $3 and p->'actions' ? $4)
    and (b.s->>'expiresAt' is null or (b.s->>'expiresAt')::timestamptz >= $8::timestamptz)
    and (b.s->'resources' is null or exists (select 1 from jsonb_array_elements(b.s->'resources') x where (x->>'kind') || '/' || (x->>'name') = $6::text))
    and (b.s->>'environment' is null or b.s->>'environment' = $7::text)
    and case when $9::text = 'Tenant' then b.s->>'folder' is null
             when b.s->>'folder' is null then r.name = any($10::text[])
             else $5::text = b.s->>'folder' or left($5::text, length(b.s->>'folder') + 1) = (b.s->>'folder') || '/' end
  union all
  select 'robot', null, 'user', null from active, objects r
  where active.s->>'type' = 'Robot' and r.tenant = $1 and r.kind = 'Role' and r.name = 'robot'
    and exists (select 1 from jsonb_array_elements(r.spec::jsonb->'permissions') p where p->>'resource' = $3 and p->'actions' ? $4)
)
select (select count(*) from u)::int as found, (select count(*) from active)::int as active,
       coalesce((select json_agg(grants) from grants), '[]'::json) as grants`;

/** As the store is: every RoleBinding of the tenant is cast and matched against the subjects. */
const NAIVE = grantsFrom(`rb b
  join subj on b.s->'subjects' @> jsonb_build_array(jsonb_build_object('kind', subj.kind, 'name', subj.name))`).replace(
  'grants as (',
  // Cast each binding's spec once (without it PostgreSQL re-parses the JSON in every join probe).
  "rb as materialized (select name, spec::jsonb as s from objects where tenant = $1 and kind = 'RoleBinding'),\ngrants as (",
);

/** With a GIN expression index on the subjects: one index probe per subject. */
const INDEXED = grantsFrom(`subj cross join lateral (
    select o.name, o.spec::jsonb as s from objects o
    where o.kind = 'RoleBinding' and o.tenant = $1
      and (o.spec::jsonb->'subjects') @> jsonb_build_array(jsonb_build_object('kind', subj.kind, 'name', subj.name))
  ) b`);

const INDEXES = [
  `create index if not exists bench_user_email on objects (tenant, lower(spec::jsonb->>'email')) where kind = 'User'`,
  `create index if not exists bench_binding_subjects on objects using gin ((spec::jsonb->'subjects') jsonb_path_ops) where kind = 'RoleBinding'`,
  'analyze objects',
];

interface Run {
  variant: string;
  checks: number;
  perSecond: number;
  /** Latency of one check, in microseconds. */
  latency: Percentiles;
  disagreements: number;
}

function params(tenant: string, c: CheckRequest, now: number): unknown[] {
  const p = parseRequest(c);
  const [resource, action] = c.permission.split('.') as [string, string];
  return [tenant, c.user, resource, action, p.folder, p.resource, p.environment, new Date(now).toISOString(), p.scope, [...BUILT_IN_ROLE_NAMES]];
}

async function runSql(pool: pg.Pool, name: string, text: string, tenant: string, checks: CheckRequest[], expected: boolean[], now: number, seconds: number, concurrency: number): Promise<Run> {
  const samples: number[] = [];
  let disagreements = 0;
  let next = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  const worker = async () => {
    const client = await pool.connect();
    try {
      while (performance.now() < deadline) {
        const i = next++ % checks.length;
        const start = nowNs();
        const r = await client.query<{ found: number; active: number; grants: unknown[] }>({ name, text, values: params(tenant, checks[i]!, now) });
        samples.push((nowNs() - start) / 1e3);
        const row = r.rows[0]!;
        const allowed = row.found === 1 && row.active === 1 && row.grants.length > 0;
        if (allowed !== expected[i]) disagreements++;
      }
    } finally {
      client.release();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return { variant: name, checks: samples.length, perSecond: samples.length / elapsed, latency: percentiles(samples), disagreements };
}

function runIndex(index: TenantIndex, checks: CheckRequest[], now: number): Run {
  const parsed = checks.map((c) => ({ user: c.user, req: parseRequest(c) }));
  for (let i = 0; i < 20_000; i++) index.checkParsed(parsed[i % parsed.length]!.user, parsed[i % parsed.length]!.req, now); // warm-up
  const n = 100_000;
  const samples = new Float64Array(n);
  const t0 = nowNs();
  for (let i = 0; i < n; i++) {
    const p = parsed[i % parsed.length]!;
    const s = nowNs();
    index.checkParsed(p.user, p.req, now);
    samples[i] = (nowNs() - s) / 1e3;
  }
  const elapsed = (nowNs() - t0) / 1e9;
  return { variant: 'in-memory index (1 thread)', checks: n, perSecond: n / elapsed, latency: percentiles(samples), disagreements: 0 };
}

async function benchSize(bindings: number, seconds: number, concurrency: number, log: (s: string) => void) {
  const gen = generateTenant({ bindings, seed: 1 });
  const schema = `bench_sql_${process.pid}_${bindings}`;
  const u = new URL(PG_URL);
  u.searchParams.set('schema', schema);
  const store = await openStore(u.toString());
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    let t = performance.now();
    const applied = await store.apply([{ tenant: gen.tenant, upserts: gen.entries }], { actor: 'bench', source: 'bench' });
    if (applied.violations.length) throw new Error(`generated tenant refused: ${applied.violations[0]!.message}`);
    log(`  ${bindings} bindings stored in PostgreSQL in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const snapshot = (await store.loadTenant(gen.tenant))!;
    const index = new TenantIndex(snapshot.state, snapshot.revision);
    const checks = generateChecks(gen, 2_000, 7);
    const expected = checks.map((c) => index.check(c, gen.now).allowed);
    const memory = runIndex(index, checks, gen.now);

    const pool = new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${schema}`, max: concurrency });
    try {
      await pool.query('analyze objects');
      const explain = async (text: string) => {
        if (!args.explain) return;
        const r = await pool.query<Record<string, string>>(`explain (analyze, costs off) ${text}`, params(gen.tenant, checks[1]!, gen.now));
        process.stderr.write(`${r.rows.map((row) => Object.values(row)[0]).join('\n')}\n\n`);
      };
      await explain(NAIVE);
      const naive = await runSql(pool, 'naive', NAIVE, gen.tenant, checks, expected, gen.now, seconds, concurrency);
      log(`  naive SQL: ${fmtCount(naive.perSecond)} checks/s`);
      t = performance.now();
      for (const q of INDEXES) await pool.query(q);
      const indexMs = performance.now() - t;
      await explain(INDEXED);
      const indexed = await runSql(pool, 'indexed', INDEXED, gen.tenant, checks, expected, gen.now, seconds, concurrency);
      log(`  indexed SQL: ${fmtCount(indexed.perSecond)} checks/s`);
      return { bindings, users: gen.users.length, allowedShare: expected.filter(Boolean).length / expected.length, indexBuildMs: indexMs, runs: [naive, indexed, memory] };
    } finally {
      await pool.end();
    }
  } finally {
    await store.close();
    await admin.query(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    await admin.end();
  }
}

const sizes = args.sizes!.split(',').map(Number);
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const log = (s: string) => {
  if (!args.json) process.stderr.write(`${s}\n`);
};
const machine = machineInfo();
const results = [];
for (const n of sizes) results.push(await benchSize(n, seconds, concurrency, log));

if (args.json) {
  process.stdout.write(`${JSON.stringify({ machine, seconds, concurrency, results }, null, 2)}\n`);
} else {
  const us = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(x >= 10_000 ? 0 : 1)} ms` : `${x.toFixed(x < 10 ? 2 : 0)} µs`);
  console.log(`## One SQL query per check (PostgreSQL, ${concurrency} connections) vs the in-memory index\n`);
  console.log(`Machine: ${machineLine(machine)}\n`);
  console.log(markdownTable(
    ['>bindings', 'how', '>checks/s', '>p50', '>p99', '>checks run', '>disagreements'],
    results.flatMap((r) => r.runs.map((run) => [
      fmtCount(r.bindings),
      run.variant === 'naive' ? 'SQL, store schema as is' : run.variant === 'indexed' ? 'SQL + GIN index on subjects' : run.variant,
      fmtCount(run.perSecond), us(run.latency.p50), us(run.latency.p99), fmtCount(run.checks), String(run.disagreements),
    ])),
  ));
  console.log(`\nChecks: bench/lib/data.ts generateChecks (seed 7), ${(results[0]!.allowedShare * 100).toFixed(0)}% allowed at ${sizes[0]} bindings; the SQL variants' answers are compared with the index's.`);
}
