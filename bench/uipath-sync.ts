/**
 * The UiPath target against the UiPath double with latency on every call: how long a cold push
 * of a large tenant takes and how many calls it makes, that a sync with nothing to do only reads
 * (the list pages, nothing else), and how many calls one changed binding costs. Calls per change
 * is the figure that matters against UiPath's per-tenant rate limits.
 *
 *   npx tsx bench/uipath-sync.ts [--users 2000] [--roles 100] [--folders 300] [--bindings 5000]
 *                                [--latency 20] [--concurrency 8] [--seed 12] [--json]
 *
 * The double (test/support/uipath) runs in this process and validates every request and
 * response against UiPath's published schemas, so its CPU time is part of the figures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AnyEntry } from '../src/model/types.js';
import { withDefaults } from '../src/model/validate.js';
import { tenantFromEntries } from '../src/model/tenant.js';
import { openStore } from '../src/store/open.js';
import { targetConfig } from '../src/targets/orchestrator.js';
import { newClient, syncTenant, type SyncResult } from '../src/targets/uipath/sync.js';
import { startUiPathDouble } from '../test/support/uipath/index.js';
import { Rng } from './lib/random.js';
import { machineLine, markdownTable } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '2000' },
    roles: { type: 'string', default: '100' },
    folders: { type: 'string', default: '300' },
    bindings: { type: 'string', default: '5000' },
    latency: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '8' },
    seed: { type: 'string', default: '12' },
    json: { type: 'boolean', default: false },
  },
});
const num = (name: keyof typeof args): number => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
};
const N = { users: num('users'), roles: num('roles'), folders: num('folders'), bindings: num('bindings'), latency: num('latency'), concurrency: num('concurrency') };

const entry = (kind: AnyEntry['kind'], name: string, spec: Record<string, unknown>): AnyEntry =>
  ({ kind, name, spec: withDefaults(kind, spec), origin: 'user' }) as AnyEntry;

/** A deterministic tenant: users in groups, custom tenant and folder roles, folders two levels deep, bindings over them. */
function tenant(rng: Rng): AnyEntry[] {
  const groups = Math.max(1, Math.round(N.users / 40));
  const out: AnyEntry[] = [];
  for (let g = 0; g < groups; g++) out.push(entry('Group', `team-${g}`, {}));
  for (let u = 0; u < N.users; u++) {
    const robot = u % 50 === 49;
    out.push(entry('User', `user-${u}`, { email: `user-${u}@example.com`, fullName: `User ${u}`, ...(robot ? { type: 'Robot' } : {}), groups: [`team-${rng.int(groups)}`] }));
  }
  const folderResources = ['Processes', 'Jobs', 'Triggers', 'Queues', 'Assets', 'Logs'];
  const tenantResources = ['Users', 'Roles', 'Folders', 'Robots', 'Machines', 'Audit', 'Alerts', 'Webhooks', 'Packages', 'Settings'];
  const actions = ['View', 'Create', 'Edit', 'Delete'];
  const folderRoles: string[] = [];
  const tenantRoles: string[] = [];
  for (let r = 0; r < N.roles; r++) {
    const folder = r % 3 !== 0;
    const pool = folder ? folderResources : tenantResources;
    const permissions = pool.filter(() => rng.int(2) === 0).map((resource) => ({ resource, actions: actions.filter((_, i) => i === 0 || rng.int(2) === 0) }));
    const name = `${folder ? 'folder' : 'tenant'}-role-${r}`;
    out.push(entry('Role', name, { scope: folder ? 'Folder' : 'Tenant', permissions: permissions.length ? permissions : [{ resource: pool[0], actions: ['View'] }] }));
    (folder ? folderRoles : tenantRoles).push(name);
  }
  const roots = Math.max(1, Math.round(N.folders / 10));
  const folders: string[] = [];
  for (let i = 0; folders.length < N.folders; i++) {
    const root = `Dept${i % roots}`;
    folders.push(i < roots ? root : `${root}/Team${Math.floor(i / roots)}`);
  }
  for (let b = 0; b < N.bindings; b++) {
    const kind = rng.int(10);
    const subject = kind < 2 ? { kind: 'Group', name: `team-${rng.int(groups)}` } : { kind: 'User', name: `user-${rng.int(N.users)}` };
    if (kind < 8 || tenantRoles.length === 0) {
      const builtIn = rng.int(5) === 0;
      out.push(entry('RoleBinding', `binding-${b}`, { roleRef: { name: builtIn ? 'automation-user' : folderRoles[rng.int(folderRoles.length)]! }, folder: folders[rng.int(folders.length)]!, subjects: [subject] }));
    } else {
      out.push(entry('RoleBinding', `binding-${b}`, { roleRef: { name: tenantRoles[rng.int(tenantRoles.length)]! }, subjects: [subject] }));
    }
  }
  return out;
}

async function main(): Promise<void> {
  const rng = new Rng(Number(args.seed));
  const entries = tenant(rng);
  const uip = await startUiPathDouble({ tenants: ['bench'] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-bench-uipath-'));
  const store = await openStore(dir);
  const config = targetConfig('bench', 'uipath', { type: 'UiPath', url: uip.orchestratorUrl('bench'), identityUrl: uip.identityUrl, credentialsSecretRef: { name: 'x' } });
  const rows: string[][] = [];
  const figures: Record<string, unknown> = {};
  const run = async (label: string, state: ReturnType<typeof tenantFromEntries>): Promise<SyncResult> => {
    uip.calls.reset();
    const client = newClient(config, uip.credentials, { concurrency: N.concurrency });
    const started = performance.now();
    const r = await syncTenant({ config, credentials: uip.credentials, store, state, client });
    const seconds = (performance.now() - started) / 1000;
    if (r.error) throw r.error;
    const changes = r.summary.created.length + r.summary.updated.length + r.summary.deleted.length;
    const reads = uip.calls.reads();
    const writes = uip.calls.writes();
    const perChange = changes > 0 ? (writes / changes).toFixed(2) : '-';
    rows.push([label, seconds.toFixed(1), String(reads), String(writes), String(uip.calls.tokens()), String(changes), perChange]);
    figures[label] = { seconds, reads, writes, tokens: uip.calls.tokens(), changes, writesPerChange: changes > 0 ? writes / changes : null, conflicts: r.summary.conflicts.length };
    process.stderr.write(`${label}: ${seconds.toFixed(1)} s, ${reads} reads, ${writes} writes, ${changes} changes\n`);
    return r;
  };
  try {
    uip.faults.latency(N.latency);
    const state = tenantFromEntries('bench', entries);
    await run('cold push', state);
    await run('no change', state);
    // One binding moves to another folder: an assignment removed, one added.
    const moved = entries.find((e) => e.kind === 'RoleBinding' && 'folder' in e.spec && e.spec.folder)!;
    const spec = moved.spec as { folder: string };
    const otherFolder = spec.folder.includes('/') ? spec.folder.slice(0, spec.folder.indexOf('/')) : `${spec.folder}/Team1`;
    const changed = entries.map((e) => (e === moved ? ({ ...e, spec: { ...e.spec, folder: otherFolder } } as AnyEntry) : e));
    await run('one binding changed', tenantFromEntries('bench', changed));
    await run('no change again', tenantFromEntries('bench', changed));
  } finally {
    await store.close();
    await uip.stop();
  }
  const header = `UiPath sync: ${N.users} users, ${N.roles} roles, ${N.folders} folders, ${N.bindings} bindings; ${N.latency} ms per call, ${N.concurrency} calls in flight`;
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ params: N, figures, machine: machineLine() }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${header}\n${machineLine()}\n\n`);
  process.stdout.write(markdownTable(['sync', 'seconds', 'reads', 'writes', 'token calls', 'changes', 'writes per change'], rows));
  process.stdout.write('\n');
}

await main();
