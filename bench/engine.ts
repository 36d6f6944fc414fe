/**
 * In-process benchmark of the decision engine (src/model/engine.ts) against node-casbin.
 *
 *   node --expose-gc --import tsx bench/engine.ts [--sizes 1000,10000,100000] [--json]
 *
 * See bench/README.md for what every column means and the fairness notes.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { TenantIndex, type CheckRequest } from '../src/model/engine.js';
import { planTenant } from '../src/model/plan.js';
import type { TenantState } from '../src/model/types.js';
import { buildCasbinExpanded, buildCasbinRoles, type CasbinEngine } from './lib/casbin.js';
import { generateChecks, generateTenant, tenantState, type GeneratedTenant } from './lib/data.js';
import {
  fmtBytes, fmtCount, fmtMs, fmtNs, fmtPct, gcAvailable, machineInfo, machineLine, markdownTable, nowNs, percentiles,
  settledHeap, type Percentiles,
} from './lib/stats.js';

const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    seed: { type: 'string', default: '1' },
    checks: { type: 'string', default: '200000' },
    passes: { type: 'string', default: '3' },
    verify: { type: 'string', default: '2000' },
    'casbin-seconds': { type: 'string', default: '5' },
    'expanded-seconds': { type: 'string', default: '4' },
    'no-expanded': { type: 'boolean', default: false },
    'no-casbin': { type: 'boolean', default: false },
    'no-validate': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opts.help) {
  console.log(`usage: node --expose-gc --import tsx bench/engine.ts [options]
  --sizes LIST            bindings per tenant (default 1000,10000,100000)
  --seed N                data seed (default 1)
  --checks N              checks per set and pass (default 200000)
  --passes N              timed passes for throughput, median reported (default 3)
  --verify N              checks casbin-roles must answer (and agree on) at least (default 2000)
  --casbin-seconds S      time budget of casbin-roles per size, beyond --verify (default 5)
  --expanded-seconds S    time budget of casbin-expanded per size (default 4)
  --no-expanded           skip the casbin-expanded model
  --no-casbin             skip both casbin models (at 1M bindings casbin-roles takes minutes to load)
  --no-validate           skip running the planner's invariant check on the generated tenant
  --json                  print the results as JSON instead of markdown`);
  process.exit(0);
}

const sizes = opts.sizes.split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const seed = Number(opts.seed);
const CHECKS = Number(opts.checks);
const PASSES = Math.max(1, Number(opts.passes));
const VERIFY = Number(opts.verify);
const CASBIN_NS = Number(opts['casbin-seconds']) * 1e9;
const EXPANDED_NS = Number(opts['expanded-seconds']) * 1e9;
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const loadLine = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');

interface LoopResult {
  set: string;
  checks: number;
  checksPerSec: number;
  passesPerSec: number[];
  latencyNs: Percentiles;
  allowRate: number;
}

interface CasbinResult {
  engine: string;
  policies: number;
  links: number;
  skipped: Record<string, number>;
  buildMs: number;
  heapBytes: number;
  set: string;
  checks: number;
  checksPerSec: number;
  latencyNs: Percentiles;
  agreement: number;
  disagreements: { request: CheckRequest; rpaAccess: boolean; casbin: boolean }[];
  /** rpa-access checks/s on the same check set divided by this engine's. */
  ratio: number;
}

interface WhoResult {
  /** What the request stands for: who holds a permission everyone has, a common one, a rare one. */
  label: string;
  request: { permission: string; folder?: string };
  users: number;
  latencyNs: Percentiles;
}

interface SizeResult {
  bindings: number;
  tenant: Record<string, number>;
  violations: number | null;
  generateMs: number;
  /** Heap of the generated entries and the TenantState maps (shared input of both engines). */
  heapStateBytes: number;
  rpa: {
    buildMs: number;
    heapIndexBytes: number;
    warmMs: number;
    heapCompiledBytes: number;
    /** The first who() (makes what who() reads: bindings by folder, users in name order) and the heap it kept. */
    firstWhoMs: number;
    heapWhoBytes: number;
    users: number;
    firstCheckNs: Percentiles;
    loops: LoopResult[];
    permissions: { user: string; rows: number; latencyNs: Percentiles }[];
    who: WhoResult[];
  };
  /** Load average (1, 5, 15 min) when this size started and when it ended: the machine is shared. */
  load: { start: number[]; end: number[] };
  casbin: CasbinResult[];
}

/** Timer overhead: two hrtime.bigint() reads with nothing between. */
function timerOverheadNs(): number {
  const n = 100_000;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    s[i] = Number(process.hrtime.bigint() - t0);
  }
  return percentiles(s).p50;
}

function measureRpa(idx: TenantIndex, set: string, checks: CheckRequest[], now: number): { loop: LoopResult; answers: Uint8Array } {
  // Warm-up: the first 10% (JIT; every user's grants are already compiled by the caller).
  for (let i = 0; i < Math.min(checks.length, 20_000); i++) idx.check(checks[i]!, now);
  // Throughput: tight loops, no per-call timing; median of PASSES.
  const rates: number[] = [];
  let sink = 0;
  for (let p = 0; p < PASSES; p++) {
    const t0 = nowNs();
    for (let i = 0; i < checks.length; i++) if (idx.check(checks[i]!, now).allowed) sink++;
    rates.push(checks.length / ((nowNs() - t0) / 1e9));
  }
  // Latency: every call timed on its own with hrtime.bigint().
  const lat = new Float64Array(checks.length);
  const answers = new Uint8Array(checks.length);
  let allowed = 0;
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]!;
    const t0 = process.hrtime.bigint();
    const r = idx.check(c, now);
    lat[i] = Number(process.hrtime.bigint() - t0);
    if (r.allowed) {
      answers[i] = 1;
      allowed++;
    }
  }
  if (sink < 0) log('impossible');
  const sorted = [...rates].sort((a, b) => a - b);
  return {
    loop: { set, checks: checks.length, checksPerSec: sorted[Math.floor(sorted.length / 2)]!, passesPerSec: rates, latencyNs: percentiles(lat), allowRate: allowed / checks.length },
    answers,
  };
}

async function measureCasbin(
  build: () => Promise<CasbinEngine>, set: string, checks: CheckRequest[], answers: Uint8Array, rpaRate: number, minChecks: number, budgetNs: number,
): Promise<CasbinResult> {
  const h0 = settledHeap();
  const t0 = nowNs();
  const engine = await build();
  const buildMs = (nowNs() - t0) / 1e6;
  const heapBytes = settledHeap() - h0;
  // Warm-up: a few calls (or 0.5 s), not counted.
  const w0 = nowNs();
  for (let i = 0; i < 200 && nowNs() - w0 < 5e8; i++) engine.check(checks[checks.length - 1 - i]!);
  const lat: number[] = [];
  const disagreements: CasbinResult['disagreements'] = [];
  let agree = 0;
  const start = nowNs();
  let i = 0;
  for (; i < checks.length; i++) {
    const elapsed = nowNs() - start;
    if (i >= Math.max(1, minChecks) && elapsed >= budgetNs) break;
    const c = checks[i]!;
    const a = process.hrtime.bigint();
    const ok = engine.check(c);
    lat.push(Number(process.hrtime.bigint() - a));
    if (ok === (answers[i] === 1)) agree++;
    else if (disagreements.length < 5) disagreements.push({ request: c, rpaAccess: answers[i] === 1, casbin: ok });
  }
  const totalNs = lat.reduce((s, x) => s + x, 0);
  const result: CasbinResult = {
    engine: engine.name, policies: engine.policies, links: engine.links, skipped: engine.skipped, buildMs, heapBytes, set,
    checks: i, checksPerSec: i / (totalNs / 1e9), latencyNs: percentiles(lat), agreement: agree / i, disagreements, ratio: 0,
  };
  result.ratio = rpaRate / result.checksPerSec;
  return result;
}

/**
 * Everything measured on the rpa-access index. A function of its own so that the index is
 * garbage before casbin is measured.
 */
function measureRpaAll(N: number, state: TenantState, gen: GeneratedTenant, mix: CheckRequest[], plain: CheckRequest[]) {
  const now = gen.now;
  let t: number;
  log(`N=${N}: rpa-access build`);
  const h0 = settledHeap();
  t = nowNs();
  const idx = new TenantIndex(state);
  const buildMs = (nowNs() - t) / 1e6;
  const h1 = settledHeap();
  // Every user's first check on the fresh index, timed on its own (the index compiles every
  // binding at build time, so a first check should cost what a warm one does); the heap it adds
  // (column "heap (first checks)") should be about nothing.
  const everyone = [...state.users.keys()];
  const first = new Float64Array(everyone.length);
  t = nowNs();
  for (let i = 0; i < everyone.length; i++) {
    const a = process.hrtime.bigint();
    idx.check({ user: everyone[i]!, permission: 'Users.View' }, now);
    first[i] = Number(process.hrtime.bigint() - a);
  }
  const warmMs = (nowNs() - t) / 1e6;
  const h2 = settledHeap();

  log(`N=${N}: rpa-access checks`);
  const mixRun = measureRpa(idx, 'mix', mix, now);
  const plainRun = measureRpa(idx, 'plain', plain, now);

  // permissions(user): the power user (≈ 1,000 rows) and an ordinary user.
  const permissions: SizeResult['rpa']['permissions'] = [];
  for (const user of [gen.powerUser, gen.users[5]!]) {
    const rows = idx.permissions(user, now)!.length;
    for (let i = 0; i < 200; i++) idx.permissions(user, now);
    const n = 2000;
    const lat = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const a = process.hrtime.bigint();
      idx.permissions(user, now);
      lat[i] = Number(process.hrtime.bigint() - a);
    }
    permissions.push({ user, rows, latencyNs: percentiles(lat) });
  }

  // who(): the holders of a permission granted to `global` in a team folder (every active user),
  // of a folder permission held through tenant-wide roles and folder bindings, and of a rare
  // tenant permission. One untimed call (the first who() sorts the users once), then timed ones.
  const deepFolder = gen.foldersByDept[gen.foldersByDept.length - 1]!.at(-1)!;
  const whoRequests = [
    { label: 'everyone (global)', request: { permission: 'Jobs.Create', folder: gen.foldersByDept[0]![1]! } },
    { label: 'folder, common', request: { permission: 'Queues.Edit', folder: deepFolder } },
    { label: 'folder, rare', request: { permission: 'Environments.Delete', folder: deepFolder } },
    { label: 'tenant permission', request: { permission: 'Billing.Delete' } },
  ];
  const h3 = settledHeap();
  t = nowNs();
  idx.who(whoRequests[0]!.request, now);
  const firstWhoMs = (nowNs() - t) / 1e6;
  const h4 = settledHeap();
  const who: WhoResult[] = [];
  for (const { label, request } of whoRequests) {
    const users = idx.who(request, now).length;
    const lat = new Float64Array(users > 10_000 ? 20 : 200);
    for (let i = 0; i < lat.length; i++) {
      const a = process.hrtime.bigint();
      idx.who(request, now);
      lat[i] = Number(process.hrtime.bigint() - a);
    }
    who.push({ label, request, users, latencyNs: percentiles(lat) });
  }

  return {
    rpa: {
      buildMs, heapIndexBytes: h1 - h0, warmMs, heapCompiledBytes: h2 - h1, firstWhoMs, heapWhoBytes: h4 - h3, users: everyone.length,
      firstCheckNs: percentiles(first), loops: [mixRun.loop, plainRun.loop], permissions, who,
    },
    mixRun, plainRun,
  };
}

/**
 * JIT warm-up of the engine's build, compile, check and permissions paths on a small tenant, so
 * that the first size's figures measure the engine, not V8 compiling it. The warm-up index is
 * kept alive for the whole run on purpose: were it collected in the middle of a later
 * measurement, that measurement's heap delta would come out too small.
 */
const keepAlive: unknown[] = [];
function warmUpJit(): void {
  const gen = generateTenant({ bindings: 2000, seed: seed + 1000 });
  const idx = new TenantIndex(tenantState(gen));
  for (const c of generateChecks(gen, 20_000, seed + 1001)) idx.check(c, gen.now);
  for (const u of gen.users.slice(0, 50)) idx.permissions(u, gen.now);
  keepAlive.push(gen, idx);
}

async function runSize(N: number): Promise<SizeResult> {
  const loadStart = os.loadavg();
  log(`N=${N}: generating (load average ${loadLine(loadStart)})`);
  const hs = settledHeap();
  const t = nowNs();
  const gen = generateTenant({ bindings: N, seed });
  const generateMs = (nowNs() - t) / 1e6;
  const state = tenantState(gen);
  const heapStateBytes = settledHeap() - hs;
  const mix = generateChecks(gen, CHECKS, seed + 1, { narrowing: true });
  const plain = generateChecks(gen, CHECKS, seed + 2, { narrowing: false });
  const now = gen.now;

  const { rpa, mixRun, plainRun } = measureRpaAll(N, state, gen, mix, plain);
  settledHeap();

  const casbin: CasbinResult[] = [];
  if (!opts['no-casbin']) {
    log(`N=${N}: casbin-roles`);
    casbin.push(await measureCasbin(() => buildCasbinRoles(state, now), 'plain', plain, plainRun.answers, plainRun.loop.checksPerSec, VERIFY, CASBIN_NS));
  }
  if (!opts['no-expanded'] && !opts['no-casbin']) {
    log(`N=${N}: casbin-expanded`);
    casbin.push(await measureCasbin(() => buildCasbinExpanded(state, now), 'mix', mix, mixRun.answers, mixRun.loop.checksPerSec, 0, EXPANDED_NS));
  }
  // Last, so that the planner's garbage cannot blur the heap figures above.
  const violations = opts['no-validate'] ? null : planTenant(undefined, { tenant: gen.tenant, upserts: gen.entries }).violations.length;
  for (const c of casbin) {
    if (c.agreement !== 1) log(`N=${N}: ${c.engine} DISAGREES with rpa-access on ${c.checks - Math.round(c.agreement * c.checks)} of ${c.checks} checks: ${JSON.stringify(c.disagreements)}`);
  }

  return {
    bindings: N,
    load: { start: loadStart, end: os.loadavg() },
    tenant: gen.stats,
    violations,
    generateMs,
    heapStateBytes,
    rpa,
    casbin,
  };
}

/** What the index costs on top of the tenant state: built, after every user's first check, after the first who(). */
const heapPerBinding = (r: SizeResult): number =>
  (r.rpa.heapIndexBytes + Math.max(0, r.rpa.heapCompiledBytes) + Math.max(0, r.rpa.heapWhoBytes)) / r.bindings;

function report(results: SizeResult[], timerNs: number): string {
  const out: string[] = [];
  out.push(`# rpa-access decision engine benchmark`, '');
  out.push(`Machine: ${machineLine()} (a shared machine: other work ran beside this benchmark)`);
  out.push(`Load average (1, 5, 15 min) per size, at its start → end: ${results.map((r) => `${r.bindings}: ${loadLine(r.load.start)} → ${loadLine(r.load.end)}`).join('; ')}`);
  out.push(`Seed ${seed}; ${fmtCount(CHECKS)} checks per set; throughput = median of ${PASSES} untimed passes; latency = every call timed with hrtime.bigint() (timer overhead ≈ ${timerNs.toFixed(0)} ns, included).`);
  if (!gcAvailable()) out.push('', '*Heap columns are n/a: run with `node --expose-gc --import tsx bench/engine.ts`.*');

  out.push('', '## Tenants', '');
  out.push(markdownTable(
    ['>bindings', '>users', '>groups', '>folders', '>custom roles', '>narrowed', '>expired', '>planner violations', '>allowed (mix)', '>allowed (plain)'],
    results.map((r) => [
      String(r.bindings), String(r.tenant.users), String(r.tenant.groups), String(r.tenant.folders), String(r.tenant.roles),
      String((r.tenant.resourceBindings ?? 0) + (r.tenant.environmentBindings ?? 0)), String(r.tenant.expiredBindings ?? 0),
      r.violations === null ? 'n/a' : String(r.violations), fmtPct(r.rpa.loops[0]!.allowRate), fmtPct(r.rpa.loops[1]!.allowRate),
    ]),
  ));

  out.push('', '## rpa-access: build and memory', '');
  out.push(markdownTable(
    ['>bindings', '>heap (tenant state)', '>index build', '>heap (index)', '>first check of every user', '>heap (first checks)', '>first who()', '>heap (first who)', '>heap per binding', '>first check p50', '>first check p99', '>first check max'],
    results.map((r) => [
      String(r.bindings), fmtBytes(r.heapStateBytes), fmtMs(r.rpa.buildMs), fmtBytes(r.rpa.heapIndexBytes), `${fmtMs(r.rpa.warmMs)} (${r.rpa.users} users)`, fmtBytes(r.rpa.heapCompiledBytes),
      fmtMs(r.rpa.firstWhoMs), fmtBytes(r.rpa.heapWhoBytes),
      Number.isFinite(r.rpa.heapIndexBytes) ? `${Math.round(heapPerBinding(r))} B` : 'n/a',
      fmtNs(r.rpa.firstCheckNs.p50), fmtNs(r.rpa.firstCheckNs.p99), fmtNs(r.rpa.firstCheckNs.max),
    ]),
  ));

  out.push('', '## rpa-access: check (warm)', '');
  out.push(markdownTable(
    ['>bindings', 'set', '>checks/s', '>p50', '>p99', '>p999', '>max', '>allowed'],
    results.flatMap((r) => r.rpa.loops.map((l) => [
      String(r.bindings), l.set, fmtCount(l.checksPerSec), fmtNs(l.latencyNs.p50), fmtNs(l.latencyNs.p99), fmtNs(l.latencyNs.p999), fmtNs(l.latencyNs.max), fmtPct(l.allowRate),
    ])),
  ));

  out.push('', '## rpa-access: permissions(user)', '');
  out.push(markdownTable(
    ['>bindings', 'user', '>rows', '>p50', '>p99', '>calls/s (1/mean)'],
    results.flatMap((r) => r.rpa.permissions.map((p) => [
      String(r.bindings), p.user, String(p.rows), fmtNs(p.latencyNs.p50), fmtNs(p.latencyNs.p99), fmtCount(1e9 / p.latencyNs.mean),
    ])),
  ));

  out.push('', '## rpa-access: who(permission, folder) on a warm index', '');
  out.push(markdownTable(
    ['>bindings', 'holders', 'request', '>users in tenant', '>users allowed', '>calls', '>p50', '>p99'],
    results.flatMap((r) => r.rpa.who.map((w) => [
      String(r.bindings), w.label, `${w.request.permission}${w.request.folder ? ` in ${w.request.folder}` : ''}`, String(r.rpa.users), String(w.users),
      String(w.latencyNs.count), fmtNs(w.latencyNs.p50), fmtNs(w.latencyNs.p99),
    ])),
  ));

  out.push('', '## casbin (node-casbin) on the same policy', '');
  out.push(markdownTable(
    ['>bindings', 'engine', 'set', '>p rows', '>g rows', '>build', '>heap', '>checks run', '>checks/s', '>p50', '>p99', '>agreement', '>rpa-access ÷ casbin'],
    results.flatMap((r) => r.casbin.map((c) => [
      String(r.bindings), c.engine, c.set, String(c.policies), String(c.links), fmtMs(c.buildMs), fmtBytes(c.heapBytes), String(c.checks),
      fmtCount(c.checksPerSec), fmtNs(c.latencyNs.p50), fmtNs(c.latencyNs.p99), fmtPct(c.agreement), `${fmtCount(c.ratio)}×`,
    ])),
  ));

  // Goals.
  const big = results[results.length - 1];
  const small = results[0];
  if (big) {
    const plain = big.rpa.loops[1]!;
    const mix = big.rpa.loops[0]!;
    const roles = big.casbin.find((c) => c.engine === 'casbin-roles');
    const goal = (ok: boolean) => (ok ? 'met' : '**NOT met**');
    out.push('', `## Goals at ${big.bindings} bindings`, '');
    out.push(`- check p99 < 50 µs: ${goal(Math.max(plain.latencyNs.p99, mix.latencyNs.p99) < 50_000)} (mix ${fmtNs(mix.latencyNs.p99)}, plain ${fmtNs(plain.latencyNs.p99)})`);
    if (roles) out.push(`- ≥ 10× casbin throughput: ${goal(roles.ratio >= 10)} (${fmtCount(roles.ratio)}× casbin-roles${big.casbin[1] ? `, ${fmtCount(big.casbin[1].ratio)}× casbin-expanded` : ''})`);
    if (small && small !== big) {
      const f = (r: SizeResult, i: number) => r.rpa.loops[i]!.latencyNs.p50;
      const g = (r: SizeResult) => r.rpa.loops[0]!.checksPerSec;
      const ratio = Math.max(f(big, 0) / f(small, 0), f(big, 1) / f(small, 1));
      out.push(`- check p50 within 2× of the ${small.bindings}-binding figure: ${goal(ratio <= 2)} (mix ${fmtNs(f(small, 0))} → ${fmtNs(f(big, 0))}, plain ${fmtNs(f(small, 1))} → ${fmtNs(f(big, 1))}: ×${ratio.toFixed(2)} at worst); checks/s ×${(g(big) / g(small)).toFixed(2)}`);
    }
    const slowest = big.rpa.who.reduce((a, b) => (b.latencyNs.p50 > a.latencyNs.p50 ? b : a));
    out.push(`- who() under 200 ms: ${goal(slowest.latencyNs.p50 < 200e6)} (slowest p50 ${fmtNs(slowest.latencyNs.p50)}, p99 ${fmtNs(slowest.latencyNs.p99)}: ${slowest.label}, ${slowest.users} users; ${big.rpa.who.filter((w) => w !== slowest).map((w) => `${w.label} ${fmtNs(w.latencyNs.p50)}`).join(', ')})`);
    const perBinding = heapPerBinding(big);
    if (Number.isFinite(perBinding)) out.push(`- index heap per binding ≤ 295 B: ${goal(perBinding <= 295)} (${Math.round(perBinding)} B)`);
    out.push(`- index build: ${fmtMs(big.rpa.buildMs)} at ${big.bindings} bindings${small && small !== big ? ` (${fmtMs(small.rpa.buildMs)} at ${small.bindings})` : ''}`);
    const agreeing = results.flatMap((r) => r.casbin.map((c) => `${c.engine}@${r.bindings}: ${fmtPct(c.agreement)} of ${c.checks}`));
    if (agreeing.length > 0) out.push(`- agreement with casbin: ${agreeing.join('; ')}`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  if (!gcAvailable()) log('no global.gc: heap figures will be n/a (run with node --expose-gc --import tsx bench/engine.ts)');
  const timerNs = timerOverheadNs();
  const results: SizeResult[] = [];
  const t0 = nowNs();
  warmUpJit();
  for (const N of sizes) results.push(await runSize(N));
  log(`done in ${((nowNs() - t0) / 1e9).toFixed(0)} s`);
  if (opts.json) console.log(JSON.stringify({ machine: machineInfo(), seed, checks: CHECKS, passes: PASSES, timerOverheadNs: timerNs, results }, null, 2));
  else console.log(report(results, timerNs));
  if (results.some((r) => r.casbin.some((c) => c.agreement !== 1))) process.exitCode = 2;
}

await main();
