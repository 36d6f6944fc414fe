/**
 * Logins per second sustained by `serve` on PostgreSQL, and the latency of a check for a user
 * with an active session (contract section 7), over a tenant of 100k users and 1,000 directory
 * Groups (each bound to a folder role), plus the same check for users without a session.
 *
 *   npx tsx bench/directory.ts [--users 100000] [--groups 1000] [--duration 5] [--connections 1,4,16] [--json]
 *
 * A `serve --auth none` child process (loopback) over a fresh PostgreSQL schema
 * ($DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) is driven by autocannon from
 * this process, closed loop: each login is one write transaction (user found by the email
 * index, session upserted, audit rows, NOTIFY), then the replica's own index takes the delta
 * before the answer returns. Logins present 5 directory group ids each (3 of the tenant, 2
 * unknown); half of the emails are declared users, half new people (auto-provisioned on their
 * first login, logging in again after). Then POST /v1/check for logged-in users (permissions
 * their directory groups grant: the session path) and for users without a session.
 * The server and the load generator share the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createLogger } from '../src/log.js';
import type { AnyEntry } from '../src/model/types.js';
import { start } from '../src/server/main.js';
import { openStore } from '../src/store/open.js';
import { Rng } from './lib/random.js';
import { fmtCount, machineInfo, machineLine, markdownTable, percentiles } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    users: { type: 'string', default: '100000' },
    groups: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '1,4,16' },
    child: { type: 'boolean', default: false },
    store: { type: 'string' },
  },
});

const TENANT = 'bench';

const groupId = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const email = (i: number) => `user${i}@example.com`;
const newcomer = (i: number) => `new${i}@example.com`;

function tenant(users: number, groups: number): AnyEntry[] {
  const out: AnyEntry[] = [
    { kind: 'Role', name: 'runner', origin: 'user', spec: { scope: 'Folder', permissions: [{ resource: 'Jobs', actions: ['View', 'Create'] }, { resource: 'Processes', actions: ['View'] }] } },
    { kind: 'Role', name: 'auditor', origin: 'user', spec: { scope: 'Tenant', permissions: [{ resource: 'Audit', actions: ['View'] }] } },
  ];
  for (let i = 0; i < users; i++) {
    out.push({ kind: 'User', name: `user${i}`, origin: 'user', spec: { email: email(i), type: 'Human', active: true, language: 'en', concurrentExecution: true } });
  }
  for (let g = 0; g < groups; g++) {
    out.push({ kind: 'Group', name: `dir-${g}`, origin: 'user', spec: { displayName: `Directory group ${g}`, directory: { provider: 'azure-ad', id: groupId(g) } } });
    out.push({ kind: 'RoleBinding', name: `dir-${g}-runner`, origin: 'user', spec: { roleRef: { name: 'runner' }, folder: `Dept${g}`, subjects: [{ kind: 'Group', name: `dir-${g}` }] } });
  }
  // Explicit rights for everyone's baseline check.
  for (let i = 0; i < users; i += 1000) {
    out.push({ kind: 'RoleBinding', name: `auditors-${i}`, origin: 'user', spec: { roleRef: { name: 'auditor' }, subjects: Array.from({ length: Math.min(1000, users - i) }, (_, k) => ({ kind: 'User' as const, name: `user${i + k}` })) } });
  }
  return out;
}

async function spawnServer(store: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--store', store], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
  });
  return { child, url };
}

interface Step {
  what: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  requests: number;
  errors: number;
}

async function drive(what: string, url: string, requests: autocannon.Request[], seconds: number, connections: number): Promise<Step> {
  const samples: number[] = [];
  const instance = autocannon({ url, connections, duration: seconds, pipelining: 1, requests }) as unknown as EventEmitter & PromiseLike<autocannon.Result>;
  instance.on('response', (_c: unknown, _s: number, _b: number, ms: number) => samples.push(ms));
  const r = await instance;
  const p = percentiles(samples);
  return { what, connections, rps: r.requests.total / seconds, p50: p.p50, p99: p.p99, max: p.max, requests: r.requests.total, errors: r.errors + r.timeouts + r.non2xx };
}

const post = (path: string, body: unknown): autocannon.Request => ({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function main(): Promise<void> {
  const users = Number(args.users);
  const groups = Number(args.groups);
  const seconds = Number(args.duration);
  const connections = args.connections!.split(',').map(Number);
  const log = (s: string) => (args.json ? undefined : process.stderr.write(`${s}\n`));
  const base = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  base.searchParams.set('schema', `bench_dir_${Date.now().toString(36)}`);
  const url = base.toString();

  let t = performance.now();
  const store = await openStore(url);
  const applied = await store.apply([{ tenant: TENANT, upserts: tenant(users, groups) }], { actor: 'bench', source: 'bench' });
  if (applied.violations.length) throw new Error(`tenant refused: ${applied.violations[0]!.message}`);
  await store.close();
  const buildS = (performance.now() - t) / 1000;
  log(`tenant of ${fmtCount(users)} users and ${fmtCount(groups)} directory groups in PostgreSQL in ${buildS.toFixed(1)} s`);
  t = performance.now();
  const { child, url: api } = await spawnServer(url);
  const loadS = (performance.now() - t) / 1000;
  log(`serve ready in ${loadS.toFixed(1)} s`);

  const rng = new Rng(7);
  const groupsOf = (): string[] => [groupId(rng.int(groups)), groupId(rng.int(groups)), groupId(rng.int(groups)), `unknown-${rng.int(1e6)}`, `CN=Other ${rng.int(1e6)},DC=example,DC=com`];
  // 20,000 distinct logins: half declared users, half newcomers (provisioned once, then logging in again).
  const logins = Array.from({ length: 20_000 }, (_, i) => post(`/v1/tenants/${TENANT}/sessions`, { user: i % 2 ? email(rng.int(users)) : newcomer(rng.int(10_000)), directoryGroups: groupsOf() }));
  const steps: Step[] = [];
  try {
    await drive('warm-up', api, logins.slice(0, 500), 2, 4);
    for (const c of connections) {
      const s = await drive('login', api, logins, seconds, c);
      steps.push(s);
      log(`  login, ${c} connections: ${fmtCount(s.rps)} logins/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, errors ${s.errors}`);
    }
    // Users with an active session: ask for what their directory groups grant (the session path).
    const known = new Map<string, string[]>();
    for (let i = 0; i < 2_000; i++) {
      const who = email(i);
      const gs = [rng.int(groups), rng.int(groups)];
      known.set(who, gs.map((g) => `Dept${g}`));
      const r = await fetch(`${api}/v1/tenants/${TENANT}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: who, directoryGroups: gs.map(groupId) }) });
      if (r.status !== 200) throw new Error(`login ${who}: ${r.status} ${await r.text()}`);
    }
    const sessionChecks = [...known].map(([user, folders]) => post('/v1/check', { tenant: TENANT, user, permission: 'Jobs.Create', folder: `${folders[0]}/Sub` }));
    const explicitChecks = Array.from({ length: 2_000 }, () => post('/v1/check', { tenant: TENANT, user: email(10_000 + rng.int(users - 10_000)), permission: 'Audit.View' }));
    const probe = await (await fetch(`${api}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sessionChecks[0]!.body as string })).json() as { allowed: boolean; grants: { via: string }[] };
    if (!probe.allowed || !probe.grants[0]!.via.startsWith('directory:')) throw new Error(`session check not granted through the session: ${JSON.stringify(probe)}`);
    await drive('warm-up', api, sessionChecks, 2, 4);
    for (const c of [1, 4]) {
      const s = await drive('check, active session', api, sessionChecks, seconds, c);
      steps.push(s);
      log(`  check (session), ${c} connections: ${fmtCount(s.rps)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms`);
      const e = await drive('check, explicit only', api, explicitChecks, seconds, c);
      steps.push(e);
      log(`  check (explicit), ${c} connections: ${fmtCount(e.rps)} req/s, p50 ${e.p50.toFixed(2)} ms, p99 ${e.p99.toFixed(2)} ms`);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  const machine = machineInfo();
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ machine, users, groups, seconds, buildS, loadS, steps }, null, 2)}\n`);
    return;
  }
  console.log(`## Directory logins and session checks (serve --auth none, PostgreSQL, loopback; ${fmtCount(users)} users, ${fmtCount(groups)} directory groups; closed loop, ${seconds} s per step)\n`);
  console.log(`Machine: ${machineLine(machine)}\n`);
  console.log(markdownTable(
    ['what', '>connections', '>req/s', '>p50', '>p99', '>max', '>errors'],
    steps.map((s) => [s.what, String(s.connections), fmtCount(s.rps), `${s.p50.toFixed(2)} ms`, `${s.p99.toFixed(2)} ms`, `${s.max.toFixed(1)} ms`, String(s.errors)]),
  ));
}

if (args.child) {
  const server = await start({ store: args.store!, port: 0, host: '127.0.0.1', auth: 'none', sessionTtl: '1h' }, { logger: createLogger({ level: 'error', name: 'serve' }) });
  await server.loaded;
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
} else {
  await main();
}
