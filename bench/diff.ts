/**
 * `rpa-access diff` at scale: the planner plus the effective-access comparison
 * (src/model/access-diff.ts) on a generated tenant of N bindings (bench/lib/data.ts), for the
 * changes a pull request makes.
 *
 *   npm run bench:diff [-- --bindings 100000 --runs 5]
 *
 * Scenarios: one binding moved to another folder (the common PR); 100 bindings moved; a role
 * edited (its holders compared); a binding of `global` added (every user compared: the worst
 * case). Each time covers planning, building both sides' decision indexes and comparing.
 */
import { parseArgs } from 'node:util';
import { diffPlanAccess } from '../src/model/access-diff.js';
import { planTenant } from '../src/model/plan.js';
import type { AnyEntry, Entry } from '../src/model/types.js';
import { generateTenant, tenantState } from './lib/data.js';
import { fmtMs, machineLine, markdownTable } from './lib/stats.js';

const { values: opts } = parseArgs({
  options: {
    bindings: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
  },
});
const N = Number(opts.bindings);
const RUNS = Math.max(1, Number(opts.runs));
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

log(`generating a tenant of ${N} bindings`);
const gen = generateTenant({ bindings: N, seed: Number(opts.seed) });
const current = tenantState(gen);
const bindings = gen.entries.filter((e): e is Entry<'RoleBinding'> => e.kind === 'RoleBinding');
const folderBindings = bindings.filter((b) => b.spec.folder !== undefined && !b.spec.subjects.some((s) => s.kind === 'Group' && s.name === 'global'));
const moved = (b: Entry<'RoleBinding'>): AnyEntry => ({ ...b, spec: { ...b.spec, folder: `${b.spec.folder}/Moved` } });
const customRole = gen.entries.find((e): e is Entry<'Role'> => e.kind === 'Role' && e.name === gen.folderRoles[0]);

const scenarios: { name: string; upserts: AnyEntry[] }[] = [
  { name: 'one binding moved to another folder', upserts: [moved(folderBindings[0]!)] },
  { name: '100 bindings moved', upserts: folderBindings.filter((_, i) => i % Math.floor(folderBindings.length / 100) === 0).slice(0, 100).map(moved) },
  {
    name: `role ${customRole!.name} loses an action`,
    upserts: [{ ...customRole!, spec: { ...customRole!.spec, permissions: customRole!.spec.permissions!.map((p) => ({ ...p, actions: p.actions.slice(0, 1) })) } }],
  },
  { name: 'a binding of global added (every user compared)', upserts: [{ kind: 'RoleBinding', name: 'bench-everyone-reads', origin: 'user', spec: { roleRef: { name: 'analyst' }, subjects: [{ kind: 'Group', name: 'global' }] } }] },
];

const rows: string[][] = [];
for (const s of scenarios) {
  const times: number[] = [];
  let compared = 0;
  let changedUsers = 0;
  let rowsChanged = 0;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const plan = planTenant(current, { tenant: gen.tenant, upserts: s.upserts });
    if (plan.violations.length > 0) throw new Error(`${s.name}: plan refused: ${plan.violations.map((v) => v.message).join('; ')}`);
    const access = diffPlanAccess(plan, { now: gen.now });
    times.push(performance.now() - started);
    compared = access.usersCompared;
    changedUsers = access.users.length;
    rowsChanged = access.users.reduce((n, u) => n + u.gained.length + u.lost.length, 0);
  }
  times.sort((a, b) => a - b);
  log(`${s.name}: ${times.map((t) => fmtMs(t)).join(', ')}`);
  rows.push([s.name, String(compared), String(changedUsers), String(rowsChanged), fmtMs(times[Math.floor(times.length / 2)]!), fmtMs(times[times.length - 1]!)]);
}

console.log(`diff at ${N.toLocaleString('en')} bindings, ${gen.users.length.toLocaleString('en')} users; ${machineLine()}; median and max of ${RUNS} runs (plan + both indexes + comparison)\n`);
console.log(markdownTable(['change', 'users compared', 'users changed', 'rows gained/lost', 'median', 'max'], rows));
