// who() finds the holders of a permission from the bindings' side (folder and role lists, group
// members, robots). Whatever the tenant, its answer must equal the brute-force one: a check of
// every user, in name order, keeping the allowed ones with their explanation. Random tenants
// (fast-check, fixed seed) include what the planner would refuse but a store may still hold
// (missing roles, groups and users, inactive users, a group listed twice, a subject named twice,
// a directory group listed on a User), login sessions and questions naming directory groups,
// and indexes derived with withChanges, whose who-lists are maintained by deltas.
import fc from 'fast-check';
import { ALL_PERMISSIONS, BUILT_IN_ROLE_NAMES, GLOBAL_GROUP, ROBOT_ROLE, parsePermission } from '../../src/model/catalog.js';
import { TenantIndex, type CheckRequest, type Grant, type TenantDelta } from '../../src/model/engine.js';
import { builtInEntries, tenantFromEntries } from '../../src/model/tenant.js';
import { expiryMs } from '../../src/model/time.js';
import type { AnyEntry, Entry, ObjectRef, Session, Subject, TenantState } from '../../src/model/types.js';
import { NOW, role } from '../support/fixtures.js';

const RUNS = { seed: 20251214, numRuns: 150 };

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'U6'];
const GROUPS = ['g0', 'g1', 'g2', 'd0', 'd1', GLOBAL_GROUP];
/** Directory groups (d0, d1) and the ids a login or a question may present (case varies). */
const DIRECTORY_IDS = ['ID-0', 'id-1', 'id-2'];
const groupEntry = (name: string, directoryId: string | null): AnyEntry => ({
  kind: 'Group', name, origin: name === GLOBAL_GROUP ? 'builtin' : 'user',
  spec: directoryId === null ? {} : { directory: { provider: 'okta', id: directoryId } },
});
const FOLDERS = ['A', 'A/B', 'A/B/C', 'AB', 'B', 'B/A'];
const ROLES = [
  role('c-tenant', 'Tenant', ['Users.View', 'Robots.Edit', 'Billing.View']),
  role('c-folder', 'Folder', ['Jobs.View', 'Jobs.Create', 'Queues.Edit', 'Processes.Delete']),
  role('c-folder-2', 'Folder', ['Jobs.Create', 'Logs.View']),
];
const ROLE_NAMES = ['administrator', 'folder-administrator', 'automation-user', 'folder-viewer', 'robot', 'c-tenant', 'c-folder', 'c-folder-2', 'missing-role'];
const PERMISSIONS = ['Jobs.View', 'Jobs.Create', 'Queues.Edit', 'Logs.View', 'Users.View', 'Robots.Edit', 'Billing.View', 'Settings.Edit', ...ALL_PERMISSIONS.slice(0, 8)];

const arbUser = (name: string): fc.Arbitrary<Entry<'User'>> =>
  fc.record({
    groups: fc.array(fc.constantFrom(...GROUPS, 'missing-group'), { maxLength: 4 }), // repeats, directory groups: on purpose
    robot: fc.boolean(),
    active: fc.constantFrom(true, true, true, false),
  }).map((u) => ({
    kind: 'User', name, origin: 'user',
    spec: { email: `${name.toLowerCase()}@example.com`, type: u.robot ? 'Robot' : 'Human', active: u.active, groups: u.groups, language: 'en', concurrentExecution: false },
  }));

const arbSubject: fc.Arbitrary<Subject> = fc.oneof(
  fc.constantFrom(...USERS, 'ghost').map((name) => ({ kind: 'User' as const, name })),
  fc.constantFrom(...GROUPS, 'missing-group').map((name) => ({ kind: 'Group' as const, name })),
);

const arbBinding = (name: string): fc.Arbitrary<Entry<'RoleBinding'>> =>
  fc.record({
    role: fc.constantFrom(...ROLE_NAMES),
    subjects: fc.array(arbSubject, { minLength: 1, maxLength: 4 }), // repeats on purpose
    folder: fc.option(fc.constantFrom(...FOLDERS), { freq: 2 }),
    resources: fc.option(fc.constantFrom<ObjectRef[]>([{ kind: 'Process', name: 'p1' }], [{ kind: 'Process', name: 'p2' }, { kind: 'Robot', name: 'r1' }]), { freq: 4 }),
    environment: fc.option(fc.constantFrom('dev', 'prod'), { freq: 4 }),
    expiresAt: fc.option(fc.constantFrom('2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'not a time'), { freq: 4 }),
  }).map((b) => ({
    kind: 'RoleBinding', name, origin: 'user',
    spec: {
      roleRef: { name: b.role }, subjects: b.subjects,
      ...(b.folder !== null ? { folder: b.folder } : {}),
      ...(b.resources !== null ? { resources: b.resources } : {}),
      ...(b.environment !== null ? { environment: b.environment } : {}),
      ...(b.expiresAt !== null ? { expiresAt: b.expiresAt } : {}),
    },
  }));

/** Objects of one tenant: some users, groups (global may be absent), custom roles and bindings. */
const arbEntries: fc.Arbitrary<AnyEntry[]> = fc
  .record({
    users: fc.tuple(...USERS.map((n) => fc.option(arbUser(n), { freq: 6 }))),
    groups: fc.subarray(GROUPS.filter((g) => g !== GLOBAL_GROUP)).chain((names) =>
      fc.tuple(...names.map((n) => (n.startsWith('d') ? fc.constantFrom(...DIRECTORY_IDS) : fc.constant(null)).map((id) => groupEntry(n, id))))),
    global: fc.constantFrom(true, true, false),
    roles: fc.subarray(ROLES),
    bindings: fc.array(fc.nat(), { maxLength: 14 }).chain((ns) => fc.tuple(...ns.map((_, i) => arbBinding(`b${i}`)))),
  })
  .map((t) => {
    const builtIns = builtInEntries().filter((e) => t.global || !(e.kind === 'Group' && e.name === GLOBAL_GROUP));
    return [
      ...builtIns,
      ...t.users.filter((u): u is Entry<'User'> => u !== null),
      ...t.groups,
      ...t.roles,
      ...t.bindings,
    ];
  });

const arbQuestion: fc.Arbitrary<Omit<CheckRequest, 'user'> & { at: number }> = fc
  .record({
    permission: fc.constantFrom(...PERMISSIONS),
    folder: fc.constantFrom(...FOLDERS, 'A/B/C/D', 'C'),
    resource: fc.option(fc.constantFrom('Process/p1', 'Process/p2', 'Robot/r1')),
    environment: fc.option(fc.constantFrom('dev', 'prod')),
    directoryGroups: fc.option(fc.array(fc.constantFrom(...DIRECTORY_IDS, 'ID-1', 'nobody'), { maxLength: 2 }), { freq: 4 }),
    at: fc.constantFrom(NOW, Date.parse('2028-01-01T00:00:00Z')),
  })
  .map((q) => ({
    permission: q.permission,
    ...(parsePermission(q.permission)!.scope === 'Folder' ? { folder: q.folder } : {}),
    ...(q.resource !== null ? { resource: q.resource } : {}),
    ...(q.environment !== null ? { environment: q.environment } : {}),
    ...(q.directoryGroups !== null ? { directoryGroups: q.directoryGroups } : {}),
    at: q.at,
  }));

/**
 * A few edits of a tenant: an object removed, a group added, a user or binding replaced, a role
 * added. Small, so that most of the tenant is left alone and the derivation must keep it right.
 */
type Edit = { op: 'remove'; at: number } | { op: 'group'; name: string } | { op: 'put'; entry: AnyEntry };
const arbEdits: fc.Arbitrary<Edit[]> = fc.array(
  fc.oneof(
    fc.nat().map((at): Edit => ({ op: 'remove', at })),
    fc.constantFrom(...GROUPS).map((name): Edit => ({ op: 'group', name })),
    fc.constantFrom(...USERS).chain(arbUser).map((entry): Edit => ({ op: 'put', entry })),
    fc.nat({ max: 16 }).chain((i) => arbBinding(`b${i}`)).map((entry): Edit => ({ op: 'put', entry })),
    fc.constantFrom(...ROLES).map((entry): Edit => ({ op: 'put', entry })),
  ),
  { minLength: 1, maxLength: 4 },
);

function edited(entries: AnyEntry[], edits: Edit[]): AnyEntry[] {
  const byKey = new Map(entries.map((e) => [`${e.kind}/${e.name}`, e]));
  for (const e of edits) {
    if (e.op === 'remove') byKey.delete([...byKey.keys()][e.at % byKey.size]!);
    else if (e.op === 'group') byKey.set(`Group/${e.name}`, groupEntry(e.name, e.name.startsWith('d') ? DIRECTORY_IDS[e.name.length % 3]! : null));
    else byKey.set(`${e.entry.kind}/${e.entry.name}`, e.entry);
  }
  return [...byKey.values()];
}

/** Login sessions of some users: directory groups (by name and the id that matched), valid or expired. */
const arbSessions: fc.Arbitrary<Session[]> = fc.uniqueArray(
  fc.record({
    user: fc.constantFrom(...USERS),
    groups: fc.array(fc.record({ name: fc.constantFrom('d0', 'd1', 'g0', 'gone'), id: fc.constantFrom(...DIRECTORY_IDS, 'id-0') }), { maxLength: 3 }),
    expiresAt: fc.constantFrom('2026-06-01T13:00:00Z', '2026-06-01T11:00:00Z'),
  }).map((x): Session => ({ email: `${x.user.toLowerCase()}@example.com`, user: x.user, groups: x.groups, startedAt: '2026-06-01T10:00:00Z', expiresAt: x.expiresAt })),
  { selector: (x) => x.email, maxLength: 4 },
);

function stateOf(entries: AnyEntry[], sessions: Session[]): TenantState {
  const state = tenantFromEntries('t', entries);
  state.sessions = new Map(sessions.map((x) => [x.email, x]));
  return state;
}

/** The answer by definition: every user checked, the allowed ones kept, in name order. */
function bruteForce(ix: TenantIndex, q: Omit<CheckRequest, 'user'>, at: number): { user: string; grants: Grant[] }[] {
  const out: { user: string; grants: Grant[] }[] = [];
  for (const name of ix.userNames()) {
    const r = ix.check({ user: name, ...q }, at);
    if (r.allowed) out.push({ user: name, grants: r.grants });
  }
  return out;
}

function expectWhoAsBruteForce(ix: TenantIndex, questions: (Omit<CheckRequest, 'user'> & { at: number })[]): void {
  for (const { at, ...q } of questions) expect(ix.who(q, at)).toEqual(bruteForce(ix, q, at));
}

describe('who() equals checking every user', () => {
  test('on random tenants', () => {
    fc.assert(
      fc.property(arbEntries, arbSessions, fc.array(arbQuestion, { minLength: 10, maxLength: 20 }), (entries, sessions, questions) => {
        expectWhoAsBruteForce(new TenantIndex(stateOf(entries, sessions)), questions);
      }),
      RUNS,
    );
  });

  test('on random tenants padded with users who hold nothing of their own (few holders: names sorted, not every user walked)', () => {
    const padding: AnyEntry[] = Array.from({ length: 120 }, (_, i) => ({
      kind: 'User', name: `pad-${String(i).padStart(3, '0')}`, origin: 'user',
      spec: { email: `pad-${i}@example.com`, type: i % 10 === 0 ? 'Robot' : 'Human', active: i % 7 !== 0, groups: i % 3 === 0 ? ['g0'] : [], language: 'en', concurrentExecution: false },
    }));
    fc.assert(
      fc.property(arbEntries, arbSessions, fc.array(arbQuestion, { minLength: 10, maxLength: 20 }), (entries, sessions, questions) => {
        expectWhoAsBruteForce(new TenantIndex(stateOf([...entries, ...padding], sessions)), questions);
      }),
      RUNS,
    );
  });

  test('on indexes derived by withChanges (who-lists maintained by deltas)', () => {
    fc.assert(
      fc.property(arbEntries, arbSessions, arbEdits, arbSessions, fc.array(arbQuestion, { minLength: 10, maxLength: 20 }), (first, sessions, edits, logins, questions) => {
        const second = edited(first, edits);
        // From the first tenant to the second in one delta: new and changed objects upserted,
        // missing ones deleted, equal ones left out (so that what the delta does not name must
        // be kept right by the derivation, e.g. the members of a group that appeared).
        const before = new TenantIndex(stateOf(first, sessions));
        expectWhoAsBruteForce(before, questions); // caches what who() keeps (the users in order) before deriving
        const keyOf = (e: { kind: string; name: string }) => `${e.kind}/${e.name}`;
        const was = new Map(first.map((e) => [keyOf(e), JSON.stringify(e)]));
        const now = new Map(second.map((e) => [keyOf(e), e]));
        const delta: TenantDelta = {
          upserts: second.filter((e) => was.get(keyOf(e)) !== JSON.stringify(e)),
          deletes: first.filter((e) => !now.has(keyOf(e))).map((e) => ({ kind: e.kind, name: e.name })),
          sessions: logins,
        };
        const derived = before.withChanges(delta, 2);
        expectWhoAsBruteForce(derived, questions);
        // And the derived index decides as a fresh build of the second tenant.
        const after = new Map([...sessions, ...logins].map((x) => [x.email, x]));
        const fresh = new TenantIndex(stateOf(second, [...after.values()]));
        for (const { at, ...q } of questions) expect(derived.who(q, at)).toEqual(fresh.who(q, at));
        // The first index is untouched by the derivation.
        expectWhoAsBruteForce(before, questions);
      }),
      RUNS,
    );
  });
});

test('who(): grants everyone has come in explanation order, as a check gives them', () => {
  const entries: AnyEntry[] = [
    ...builtInEntries(),
    { kind: 'User', name: 'ann', origin: 'user', spec: { email: 'ann@example.com', type: 'Human', active: true, language: 'en', concurrentExecution: false } },
    // Filed in this order; explained in role order (automation-user before folder-viewer).
    { kind: 'RoleBinding', name: 'z', origin: 'user', spec: { roleRef: { name: 'folder-viewer' }, subjects: [{ kind: 'Group', name: GLOBAL_GROUP }], folder: 'A' } },
    { kind: 'RoleBinding', name: 'a', origin: 'user', spec: { roleRef: { name: 'automation-user' }, subjects: [{ kind: 'Group', name: GLOBAL_GROUP }], folder: 'A' } },
  ];
  const ix = new TenantIndex(tenantFromEntries('t', entries));
  const q = { permission: 'Jobs.View', folder: 'A/B' };
  expect(ix.who(q, NOW)).toEqual(bruteForce(ix, q, NOW));
  expect(ix.who(q, NOW)[0]!.grants.map((g) => g.role)).toEqual(['automation-user', 'folder-viewer']);
});

/**
 * The contract (sections 3.2 to 3.4) read literally, with no index: every binding of the tenant is
 * looked at for every question. The engine files bindings by subject and folder, judges roles and
 * folders by small ids and finds who() from the bindings' side; this is what all of that must
 * still answer. Directory groups reach users through sessions or questions only, which the
 * questions here leave out (a directory group listed on a User grants nothing that way).
 */
function referenceGrants(state: TenantState, userName: string, q: Omit<CheckRequest, 'user'>, at: number): Grant[] {
  const user = state.users.get(userName);
  if (!user || !user.spec.active) return [];
  const scope = parsePermission(q.permission)!.scope;
  const [resource, action] = q.permission.split('.');
  const holds = (roleName: string): boolean =>
    (state.roles.get(roleName)?.spec.permissions ?? []).some((p) => p.resource === resource && (p.actions as string[]).includes(action!));
  // The subjects the user is, with how a grant through each is explained.
  const via = new Map<string, string>([[`User/${user.name}`, 'user']]);
  for (const g of [GLOBAL_GROUP, ...(user.spec.groups ?? [])]) {
    const group = state.groups.get(g);
    if (group && (g === GLOBAL_GROUP || !group.spec.directory)) via.set(`Group/${g}`, `group:${g}`);
  }
  const grants: Grant[] = [];
  for (const b of state.bindings.values()) {
    const s = b.spec;
    if (!state.roles.has(s.roleRef.name) || !holds(s.roleRef.name)) continue;
    if (s.expiresAt !== undefined && at > expiryMs(s.expiresAt)) continue;
    if (s.resources && !s.resources.some((r) => `${r.kind}/${r.name}` === q.resource)) continue;
    if (s.environment !== undefined && s.environment !== q.environment) continue;
    const reaches = scope === 'Tenant'
      ? s.folder === undefined
      : s.folder === undefined ? BUILT_IN_ROLE_NAMES.has(s.roleRef.name) : q.folder === s.folder || q.folder!.startsWith(`${s.folder}/`);
    if (!reaches) continue;
    for (const subject of s.subjects) { // a subject named twice grants twice, as the engine says
      const v = via.get(`${subject.kind}/${subject.name}`);
      if (v !== undefined) grants.push({ role: s.roleRef.name, binding: b.name, via: v, folder: s.folder ?? null });
    }
  }
  if (user.spec.type === 'Robot' && state.roles.has(ROBOT_ROLE) && holds(ROBOT_ROLE)) grants.push({ role: ROBOT_ROLE, binding: null, via: 'user', folder: null });
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return grants.sort((a, b) => (a.via === 'user' ? 0 : 1) - (b.via === 'user' ? 0 : 1) || cmp(a.via, b.via) || cmp(a.role, b.role) || cmp(a.binding ?? '', b.binding ?? ''));
}

function expectAsReference(ix: TenantIndex, state: TenantState, questions: (Omit<CheckRequest, 'user' | 'directoryGroups'> & { at: number })[]): void {
  const names = [...state.users.keys()].sort();
  for (const { at, ...q } of questions) {
    const naive: { user: string; grants: Grant[] }[] = [];
    for (const name of names) {
      const grants = referenceGrants(state, name, q, at);
      expect(ix.check({ user: name, ...q }, at).grants).toEqual(grants);
      if (grants.length > 0) naive.push({ user: name, grants });
    }
    expect(ix.who(q, at)).toEqual(naive);
  }
}

const arbPlainQuestion = arbQuestion.map(({ directoryGroups: _ignored, ...q }) => q);

describe('check() and who() equal the contract read with no index', () => {
  test('on random tenants (groups, global, folder inheritance, resources, environments, expiry, robots)', () => {
    fc.assert(
      fc.property(arbEntries, fc.array(arbPlainQuestion, { minLength: 10, maxLength: 20 }), (entries, questions) => {
        const state = stateOf(entries, []);
        expectAsReference(new TenantIndex(state), state, questions);
      }),
      RUNS,
    );
  });

  test('on indexes derived by withChanges (new folders, roles and bindings arriving by deltas)', () => {
    fc.assert(
      fc.property(arbEntries, arbEdits, fc.array(arbPlainQuestion, { minLength: 10, maxLength: 20 }), (first, edits, questions) => {
        const second = edited(first, edits);
        const keyOf = (e: { kind: string; name: string }) => `${e.kind}/${e.name}`;
        const was = new Map(first.map((e) => [keyOf(e), JSON.stringify(e)]));
        const now = new Set(second.map(keyOf));
        const before = new TenantIndex(stateOf(first, []));
        const derived = before.withChanges({
          upserts: second.filter((e) => was.get(keyOf(e)) !== JSON.stringify(e)),
          deletes: first.filter((e) => !now.has(keyOf(e))).map((e) => ({ kind: e.kind, name: e.name })),
        }, 2);
        expectAsReference(derived, stateOf(second, []), questions);
        expectAsReference(before, stateOf(first, []), questions); // untouched by the derivation
      }),
      RUNS,
    );
  });
});
