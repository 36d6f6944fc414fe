/**
 * Concurrent applies on one tenant, on each backend (SQLite file store; PostgreSQL in a schema of
 * its own when DATABASE_URL is set): two `rpa-access apply` runs as real child processes, started
 * together, then many store handles in this process at once (more overlap than two process
 * start-ups give).
 *
 * The documents are built so that a lost update or a torn state would show:
 * - non-conflicting sets (distinct users and bindings, plus one object both carry with the same
 *   spec): both applies succeed, every object of both is present afterwards, the shared object
 *   was created exactly once;
 * - conflicting sets (two different owner bindings, two users with the same email): exactly one
 *   apply wins; the other is refused cleanly (exit 1, the rule named, no stack trace) and leaves
 *   nothing of its own in the store.
 * Afterwards the audit trail, replayed in order, is exactly what the store holds, each apply is
 * recorded under its own actor, and revisions count the committed applies.
 */
import { canonicalJson, allEntries } from '../../src/model/tenant.js';
import type { AnyEntry } from '../../src/model/types.js';
import { checkDocuments, desiredStates } from '../../src/documents/check.js';
import { parseDocuments } from '../../src/documents/load.js';
import type { AccessStore, AuditRecord } from '../../src/store/store.js';
import { storeFactories } from '../support/stores.js';
import { expectNoStackTrace, rpa, SPAWN_TIMEOUT, writeTree, type RunResult } from './helpers.js';

const API = 'apiVersion: rpa-access.io/v1alpha1';
const ROUNDS = 3;

const userDoc = (ns: string, name: string, email = `${name}@example.com`) =>
  `${API}\nkind: User\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {email: ${email}, fullName: ${name}}\n`;
const groupDoc = (ns: string, name: string) => `${API}\nkind: Group\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {displayName: Shared by both}\n`;
const bindingDoc = (ns: string, name: string, role: string, users: string[], folder?: string) =>
  `${API}\nkind: RoleBinding\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  roleRef: {name: ${role}}\n` +
  `  subjects: [${users.map((u) => `{kind: User, name: ${u}}`).join(', ')}]\n${folder ? `  folder: ${folder}\n` : ''}`;
const yamlOf = (docs: string[]) => docs.join('---\n');

/** One side of a non-conflicting round: many users, a binding of them all, and the shared group. */
function teamDocs(ns: string, side: string, round: number, users = 60): { yaml: string; refs: string[] } {
  const names = Array.from({ length: users }, (_, i) => `${side}${round}-u${i}`);
  const docs = [
    ...names.map((n) => userDoc(ns, n)),
    groupDoc(ns, 'shared'),
    bindingDoc(ns, `${side}${round}-view`, 'folder-viewer', names, `Team/${side.toUpperCase()}${round}`),
  ];
  return { yaml: yamlOf(docs), refs: [...names.map((n) => `User/${n}`), `RoleBinding/${side}${round}-view`] };
}

/** One side of a conflicting round: its own owner binding and a user with the contested email. */
function raceDocs(ns: string, side: string, round: number): { yaml: string; refs: string[] } {
  const docs = [
    userDoc(ns, `${side}-boss`),
    userDoc(ns, `${side}-dev`),
    userDoc(ns, `${side}-mail`, `contested-${round}@example.com`),
    bindingDoc(ns, `owner-${side}`, 'owner', [`${side}-boss`]),
    bindingDoc(ns, `${side}-devs`, 'developer', [`${side}-dev`]),
  ];
  return { yaml: yamlOf(docs), refs: ['User/' + side + '-boss', `User/${side}-dev`, `User/${side}-mail`, `RoleBinding/owner-${side}`, `RoleBinding/${side}-devs`] };
}

const refsOf = (entries: AnyEntry[]) => entries.map((e) => `${e.kind}/${e.name}`);

/** The tenant rebuilt from its audit trail alone: must be exactly what the store holds. */
function replay(audit: AuditRecord[]): Map<string, AnyEntry> {
  const state = new Map<string, AnyEntry>();
  for (const a of audit) {
    const key = `${a.kind}/${a.name}`;
    if (a.action === 'deleted') {
      expect(state.has(key)).toBe(true);
      state.delete(key);
    } else {
      expect(state.has(key)).toBe(a.action === 'updated');
      state.set(key, a.after!);
    }
  }
  return state;
}

async function expectAuditConsistent(store: AccessStore, tenant: string): Promise<AuditRecord[]> {
  const snapshot = (await store.loadTenant(tenant))!;
  const audit = await store.audit({ tenant });
  const replayed = replay(audit);
  const held = allEntries(snapshot.state);
  expect([...replayed.keys()].sort()).toEqual(refsOf(held).sort());
  for (const e of held) expect(canonicalJson(replayed.get(`${e.kind}/${e.name}`))).toBe(canonicalJson(e));
  // One revision per committed apply that touched the tenant.
  expect(new Set(audit.map((a) => a.applyId)).size).toBe(snapshot.revision);
  // An apply is recorded whole, under one actor and one source.
  const byApply = new Map<number, Set<string>>();
  for (const a of audit) byApply.set(a.applyId, (byApply.get(a.applyId) ?? new Set()).add(`${a.actor}|${a.source}`));
  for (const who of byApply.values()) expect(who.size).toBe(1);
  return audit;
}

function actorsOf(audit: AuditRecord[], refs: string[]): Set<string> {
  const wanted = new Set(refs);
  return new Set(audit.filter((a) => wanted.has(`${a.kind}/${a.name}`)).map((a) => a.actor));
}

describe.each(storeFactories)('concurrent applies on $name', (factory) => {
  let url: string;
  let store: AccessStore;
  const cli = (args: string[], user: string): Promise<RunResult> => rpa(['--store', url, ...args], { env: { USER: user } });

  beforeAll(async () => {
    url = factory.newUrl();
    // Created (and migrated) once here, so that the children race on applies, not on set-up.
    store = await factory.open(url);
  });
  afterAll(async () => {
    await store.close();
  });

  test(`two CLI processes, ${ROUNDS} rounds: non-conflicting sets both land; of two owners exactly one wins`, async () => {
    const team = 'team';
    const expectedTeam = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      // Non-conflicting: both land, the shared group is created once.
      const a = teamDocs(team, 'a', round);
      const b = teamDocs(team, 'b', round);
      const dir = writeTree({ 'a.yaml': a.yaml, 'b.yaml': b.yaml });
      const [ra, rb] = await Promise.all([cli(['apply', '-f', `${dir}/a.yaml`], 'alice'), cli(['apply', '-f', `${dir}/b.yaml`], 'bob')]);
      for (const r of [ra, rb]) {
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      }
      for (const ref of [...a.refs, ...b.refs, 'Group/shared']) expectedTeam.add(ref);
      const state = (await store.loadTenant(team))!.state;
      const held = new Set(refsOf(allEntries(state).filter((e) => e.origin === 'user')));
      expect([...expectedTeam].filter((r) => !held.has(r))).toEqual([]); // no lost update
      expect([...held].filter((r) => !expectedTeam.has(r))).toEqual([]);
      const audit = await expectAuditConsistent(store, team);
      expect(audit.filter((x) => x.kind === 'Group' && x.name === 'shared').map((x) => x.action)).toEqual(['created']);
      expect(actorsOf(audit, a.refs)).toEqual(new Set(['alice']));
      expect(actorsOf(audit, b.refs)).toEqual(new Set(['bob']));
      // The printed plans tell the same story: the shared group is created by exactly one of them.
      const createdShared = [ra, rb].filter((r) => r.stdout.includes(`created Group/${team}/shared`)).length;
      expect(createdShared).toBe(round === 0 ? 1 : 0);

      // Conflicting, on a new tenant (its creation is raced too): exactly one wins.
      const race = `race-${round}`;
      const ca = raceDocs(race, 'a', round);
      const cb = raceDocs(race, 'b', round);
      const dir2 = writeTree({ 'a.yaml': ca.yaml, 'b.yaml': cb.yaml });
      const results = await Promise.all([cli(['apply', '-f', `${dir2}/a.yaml`], 'alice'), cli(['apply', '-f', `${dir2}/b.yaml`], 'bob')]);
      expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
      const winner = results[0]!.code === 0 ? { side: 'a', docs: ca, actor: 'alice' } : { side: 'b', docs: cb, actor: 'bob' };
      const loser = winner.side === 'a' ? { side: 'b', docs: cb, result: results[1]! } : { side: 'a', docs: ca, result: results[0]! };
      expect(loser.result.stdout).toBe('');
      expectNoStackTrace(loser.result.stderr);
      expect(loser.result.stderr).toContain(`RoleBinding ${race}/owner-${loser.side}: at most one owner per tenant: RoleBinding ${race}/owner-${winner.side} already grants owner`);
      expect(loser.result.stderr).toContain(`User ${race}/${loser.side}-mail: email contested-${round}@example.com is already used by User ${race}/${winner.side}-mail`);
      expect(loser.result.stderr.trimEnd().split('\n').at(-1)).toMatch(/^rpa-access: error: refused by the store \(2 violations\): nothing was written$/);

      const snapshot = (await store.loadTenant(race))!;
      const held2 = refsOf(allEntries(snapshot.state).filter((e) => e.origin === 'user')).sort();
      expect(held2).toEqual([...winner.docs.refs].sort());
      const owners = [...snapshot.state.bindings.values()].filter((x) => x.spec.roleRef.name === 'owner');
      expect(owners.map((o) => o.spec.subjects)).toEqual([[{ kind: 'User', name: `${winner.side}-boss` }]]);
      expect(snapshot.revision).toBe(1);
      const audit2 = await expectAuditConsistent(store, race);
      expect(new Set(audit2.map((x) => x.actor))).toEqual(new Set([winner.actor]));
    }
  }, SPAWN_TIMEOUT * 2);

  test('two CLI processes on a tenant with an owner: two ownership transfers serialize, no torn state', async () => {
    const ns = 'transfer';
    const base = writeTree({
      'base.yaml': yamlOf([userDoc(ns, 'first'), userDoc(ns, 'x'), userDoc(ns, 'y'), bindingDoc(ns, 'owner', 'owner', ['first'])]),
      'x.yaml': yamlOf([bindingDoc(ns, 'owner', 'owner', ['x'])]),
      'y.yaml': yamlOf([bindingDoc(ns, 'owner', 'owner', ['y'])]),
    });
    expect((await cli(['apply', '-f', `${base}/base.yaml`], 'setup')).code).toBe(0);
    const [rx, ry] = await Promise.all([cli(['apply', '-f', `${base}/x.yaml`], 'alice'), cli(['apply', '-f', `${base}/y.yaml`], 'bob')]);
    expect([rx.code, ry.code]).toEqual([0, 0]);
    const { state, revision } = (await store.loadTenant(ns))!;
    expect(revision).toBe(3);
    const owner = state.bindings.get('owner')!.spec.subjects[0]!.name;
    expect(['x', 'y']).toContain(owner);
    const other = owner === 'x' ? 'y' : 'x';
    // Serialized: the first owner passed it on, then the second transfer left the middle one administrator.
    expect([...state.bindings.keys()].filter((k) => k.startsWith('former-owner-')).sort()).toEqual([`former-owner-${other}`, 'former-owner-first'].sort());
    expect([...state.bindings.values()].filter((x) => x.spec.roleRef.name === 'owner')).toHaveLength(1);
    await expectAuditConsistent(store, ns);
  }, SPAWN_TIMEOUT);

  test('eight store handles in this process at once: distinct sets all land, of eight owners one wins', async () => {
    const handles = await Promise.all(Array.from({ length: 8 }, () => factory.open(url)));
    try {
      const desired = (yaml: string) => {
        const checked = checkDocuments({ ...parseDocuments(yaml, 'mem.yaml'), files: ['mem.yaml'] });
        expect(checked.problems).toEqual([]);
        return desiredStates(checked);
      };
      // Distinct sets (plus the shared group) on one tenant.
      const sets = handles.map((_, i) => teamDocs('crowd', `h${i}`, 0, 20));
      const results = await Promise.all(handles.map((h, i) => h.apply(desired(sets[i]!.yaml), { actor: `h${i}`, source: 'test' })));
      expect(results.map((r) => r.violations)).toEqual(handles.map(() => []));
      expect(results.filter((r) => r.written)).toHaveLength(8);
      expect(results.map((r) => r.revisions.get('crowd')).sort((x, y) => x! - y!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const state = (await store.loadTenant('crowd'))!.state;
      const held = new Set(refsOf(allEntries(state)));
      for (const s of sets) for (const r of s.refs) expect(held.has(r)).toBe(true);
      const audit = await expectAuditConsistent(store, 'crowd');
      expect(audit.filter((x) => x.kind === 'Group' && x.name === 'shared')).toHaveLength(1);
      sets.forEach((s, i) => expect(actorsOf(audit, s.refs)).toEqual(new Set([`h${i}`])));

      // Eight different owners of one new tenant: one wins, seven are refused and write nothing.
      const owners = handles.map((_, i) => raceDocs('crowd-race', `o${i}`, 99));
      const raced = await Promise.all(handles.map((h, i) => h.apply(desired(owners[i]!.yaml), { actor: `o${i}`, source: 'test' })));
      const winners = raced.flatMap((r, i) => (r.violations.length === 0 ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of raced) expect(r.written).toBe(r.violations.length === 0);
      for (const r of raced.filter((x) => x.violations.length > 0)) {
        expect(r.violations.map((v) => v.rule).sort()).toEqual(['SingleOwner', 'UniqueEmail']);
        expect(r.applyId).toBeNull();
      }
      const snap = (await store.loadTenant('crowd-race'))!;
      expect(snap.revision).toBe(1);
      expect(refsOf(allEntries(snap.state).filter((e) => e.origin === 'user')).sort()).toEqual([...owners[winners[0]!]!.refs].sort());
      const audit2 = await expectAuditConsistent(store, 'crowd-race');
      expect(new Set(audit2.map((x) => x.actor))).toEqual(new Set([`o${winners[0]}`]));
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
  }, SPAWN_TIMEOUT);

  test('two CLI processes on a store that does not exist yet: both open it, both applies land', async () => {
    const fresh = factory.newUrl();
    const a = teamDocs('fresh', 'a', 0, 5);
    const b = teamDocs('fresh', 'b', 0, 5);
    const dir = writeTree({ 'a.yaml': a.yaml, 'b.yaml': b.yaml });
    const results = await Promise.all([
      rpa(['--store', fresh, 'apply', '-f', `${dir}/a.yaml`], { env: { USER: 'alice' } }),
      rpa(['--store', fresh, 'apply', '-f', `${dir}/b.yaml`], { env: { USER: 'bob' } }),
    ]);
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const s = await factory.open(fresh);
    try {
      const held = new Set(refsOf(allEntries((await s.loadTenant('fresh'))!.state)));
      for (const r of [...a.refs, ...b.refs, 'Group/shared']) expect(held.has(r)).toBe(true);
      await expectAuditConsistent(s, 'fresh');
    } finally {
      await s.close();
    }
  }, SPAWN_TIMEOUT);
});
