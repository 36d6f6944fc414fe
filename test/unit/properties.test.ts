// Properties of the model, checked on random tenants with fast-check (fixed seeds: a failure
// is reproducible and reported with its smallest counterexample).
import fc from 'fast-check';
import {
  ALL_PERMISSIONS, API_VERSION_FULL, BUILT_IN_ROLES, KINDS, OWNER_ROLE, parsePermission,
} from '../../src/model/catalog.js';
import { TenantIndex, type CheckRequest } from '../../src/model/engine.js';
import { checkInvariants } from '../../src/model/invariants.js';
import type { ObjectRefKey } from '../../src/model/plan.js';
import { builtInEntries, getEntry, sameEntry } from '../../src/model/tenant.js';
import { validateDocument } from '../../src/model/validate.js';
import type { AnyEntry, TenantState } from '../../src/model/types.js';
import { NOW, binding, group, plan, role, user } from '../support/fixtures.js';

const RUNS = { seed: 42, numRuns: 200 };

// ---------------------------------------------------------------------------------------------
// Generators: small pools of names, so that random objects meet each other.

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'];
const GROUPS = ['g0', 'g1', 'g2'];
const FOLDERS = ['A', 'A/B', 'A/B/C', 'AB', 'B', 'B/A'];
const ENVIRONMENTS = ['dev', 'prod'];
const OBJECTS = [{ kind: 'Process', name: 'p1' }, { kind: 'Process', name: 'p2' }, { kind: 'Robot', name: 'r1' }];
const CUSTOM_ROLES = [
  role('c-tenant', 'Tenant', ['Users.View', 'Robots.Edit', 'Billing.View']),
  role('c-folder', 'Folder', ['Jobs.View', 'Jobs.Create', 'Queues.Edit', 'Processes.Delete']),
];
const SCOPE = new Map<string, 'Tenant' | 'Folder'>([
  ...BUILT_IN_ROLES.map((r) => [r.name, r.scope] as const),
  ['c-tenant', 'Tenant'], ['c-folder', 'Folder'],
]);
/** Permissions the roles above grant often enough for random checks to be allowed sometimes. */
const LIKELY = ['Jobs.View', 'Jobs.Create', 'Queues.Edit', 'Processes.Delete', 'Deployments.Create', 'Logs.View', 'Users.View', 'Robots.Edit', 'Billing.View', 'Settings.Edit'];

interface UserSpec {
  groups: string[];
  type: 'Human' | 'Robot';
  active: boolean;
}

const arbUserSpec: fc.Arbitrary<UserSpec> = fc.record({
  groups: fc.subarray([...GROUPS, 'global', 'missing-group']),
  type: fc.constantFrom<'Human' | 'Robot'>('Human', 'Human', 'Robot'),
  active: fc.constantFrom(true, true, true, false),
});

const arbSubject = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...USERS, 'ghost').map((n) => n) },
  { weight: 2, arbitrary: fc.constantFrom(...GROUPS, 'global', 'missing-group').map((n) => `group:${n}`) },
);

const arbBindingSpec = fc
  .record({
    role: fc.constantFrom(...BUILT_IN_ROLES.map((r) => r.name).filter((r) => r !== OWNER_ROLE), 'c-tenant', 'c-folder', 'c-tenant', 'c-folder', 'missing-role', OWNER_ROLE),
    subjects: fc.uniqueArray(arbSubject, { minLength: 1, maxLength: 3 }),
    folder: fc.constantFrom(...FOLDERS),
    resources: fc.option(fc.subarray(OBJECTS, { minLength: 1 }), { freq: 3 }),
    environment: fc.option(fc.constantFrom(...ENVIRONMENTS), { freq: 3 }),
    expiresAt: fc.option(fc.constantFrom('2026-01-01T00:00:00Z', '2026-06-01T12:00:00Z', '2027-01-01T00:00:00Z'), { freq: 4 }),
    /** Mostly honour the role's scope; sometimes not, so that the planner has something to refuse. */
    scopeRight: fc.constantFrom(true, true, true, true, true, true, true, false),
  })
  .map((b) => {
    const scope = SCOPE.get(b.role) ?? (b.folder.length % 2 === 0 ? 'Folder' : 'Tenant');
    const withFolder = (scope === 'Folder') === b.scopeRight;
    return {
      role: b.role,
      subjects: b.subjects,
      extra: {
        ...(withFolder ? { folder: b.folder } : {}),
        ...(b.resources ? { resources: b.resources } : {}),
        ...(b.environment ? { environment: b.environment } : {}),
        ...(b.expiresAt ? { expiresAt: b.expiresAt } : {}),
      },
    };
  });
type BindingSpec = typeof arbBindingSpec extends fc.Arbitrary<infer B> ? B : never;

interface TenantDocs {
  users: Map<string, UserSpec>;
  groups: string[];
  roles: number[];
  bindings: BindingSpec[];
}

const arbTenant: fc.Arbitrary<TenantDocs> = fc.record({
  users: fc.tuple(...USERS.map(() => fc.option(arbUserSpec, { freq: 5 }))).map(
    (specs) => new Map(specs.flatMap((s, i) => (s ? [[USERS[i]!, s] as const] : []))),
  ),
  groups: fc.subarray(GROUPS),
  roles: fc.subarray([0, 1]),
  bindings: fc.array(arbBindingSpec, { maxLength: 8 }),
});

const userEntry = (name: string, s: UserSpec): AnyEntry => user(name, { groups: s.groups, type: s.type, active: s.active });
const bindingEntry = (name: string, b: BindingSpec): AnyEntry => binding(name, b.role, b.subjects, b.extra);

function entries(t: TenantDocs): AnyEntry[] {
  return [
    ...[...t.users].map(([n, s]) => userEntry(n, s)),
    ...t.groups.map((g) => group(g)),
    ...t.roles.map((i) => CUSTOM_ROLES[i]!),
    ...t.bindings.map((b, i) => bindingEntry(`b${i}`, b)),
  ];
}

/** An accepted state of the documents, or undefined when the planner refuses them. */
function accepted(docs: AnyEntry[], current?: TenantState, options: { deletes?: ObjectRefKey[]; prune?: boolean } = {}): TenantState | undefined {
  const p = plan(current, docs, options);
  return p.violations.length === 0 ? p.next : undefined;
}

const arbQuery: fc.Arbitrary<CheckRequest> = fc
  .record({
    user: fc.constantFrom(...USERS, 'ghost', 'U1@EXAMPLE.COM'),
    permission: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...LIKELY) }, { weight: 1, arbitrary: fc.constantFrom(...ALL_PERMISSIONS) }),
    folder: fc.constantFrom(...FOLDERS, 'A/B/C/D', 'C'),
    resource: fc.option(fc.constantFrom('Process/p1', 'Process/p2', 'Robot/r1', 'Queue/q1')),
    environment: fc.option(fc.constantFrom(...ENVIRONMENTS, 'test')),
    at: fc.constantFrom(NOW, Date.parse('2025-01-01T00:00:00Z'), Date.parse('2028-01-01T00:00:00Z')),
  })
  .map((q) => {
    const req: CheckRequest = { user: q.user, permission: q.permission };
    if (parsePermission(q.permission)!.scope === 'Folder') req.folder = q.folder;
    if (q.resource) req.resource = q.resource;
    if (q.environment) req.environment = q.environment;
    return Object.assign(req, { at: q.at });
  });
const arbQueries = fc.array(arbQuery, { minLength: 20, maxLength: 40 });
const when = (q: CheckRequest): number => (q as CheckRequest & { at: number }).at;
const query = (q: CheckRequest): CheckRequest => {
  const { at: _at, ...rest } = q as CheckRequest & { at: number };
  return rest;
};

/** Every permission row of every user, as comparable strings. */
function rows(state: TenantState, at = NOW): Set<string> {
  const ix = new TenantIndex(state);
  return new Set(ix.userNames().flatMap((u) => (ix.permissions(u, at) ?? []).map((r) => JSON.stringify({ u, ...r }))));
}

const subset = (a: Set<string>, b: Set<string>): string[] => [...a].filter((x) => !b.has(x));

// ---------------------------------------------------------------------------------------------

describe('monotonicity of the decision', () => {
  test('adding a binding never removes a permission', () => {
    fc.assert(
      fc.property(arbTenant, arbBindingSpec, arbQueries, (t, extra, queries) => {
        const before = accepted(entries(t));
        fc.pre(before !== undefined);
        const after = accepted([bindingEntry('extra', extra)], before);
        fc.pre(after !== undefined);
        const ixBefore = new TenantIndex(before!);
        const ixAfter = new TenantIndex(after!);
        for (const q of queries) {
          const a = ixBefore.check(query(q), when(q));
          const b = ixAfter.check(query(q), when(q));
          if (a.allowed) {
            expect(b.allowed).toBe(true);
            for (const g of a.grants) expect(b.grants).toContainEqual(g);
          }
        }
        expect(subset(rows(before!), rows(after!))).toEqual([]);
      }),
      RUNS,
    );
  });

  test('removing a group membership never adds a permission', () => {
    fc.assert(
      fc.property(arbTenant, fc.nat(), fc.nat(), arbQueries, (t, whichUser, whichGroup, queries) => {
        const members = [...t.users].filter(([, s]) => s.groups.length > 0);
        fc.pre(members.length > 0);
        const [name, spec] = members[whichUser % members.length]!;
        const dropped = spec.groups[whichGroup % spec.groups.length]!;
        const before = accepted(entries(t));
        fc.pre(before !== undefined);
        const after = accepted([userEntry(name, { ...spec, groups: spec.groups.filter((g) => g !== dropped) })], before);
        expect(after).toBeDefined(); // changing one's groups breaks no invariant
        const ixBefore = new TenantIndex(before!);
        const ixAfter = new TenantIndex(after!);
        for (const q of queries) {
          if (ixAfter.check(query(q), when(q)).allowed) expect(ixBefore.check(query(q), when(q)).allowed).toBe(true);
        }
        expect(subset(rows(after!), rows(before!))).toEqual([]);
      }),
      RUNS,
    );
  });

  test('an inactive user holds nothing', () => {
    fc.assert(
      fc.property(arbTenant, fc.constantFrom(...USERS), arbQueries, (t, name, queries) => {
        const users = new Map(t.users);
        users.set(name, { ...(users.get(name) ?? { groups: [], type: 'Human' as const }), active: false });
        const state = accepted(entries({ ...t, users }));
        fc.pre(state !== undefined);
        const ix = new TenantIndex(state!);
        for (const q of queries) {
          const r = ix.check({ ...query(q), user: name }, when(q));
          expect(r).toEqual({ allowed: false, grants: [], reason: 'UserInactive', user: name });
          expect(ix.check({ ...query(q), user: `${name.toUpperCase()}@example.com` }, when(q)).allowed).toBe(false);
          expect(ix.who(query(q), when(q)).map((w) => w.user)).not.toContain(name);
        }
        expect(ix.permissions(name, NOW)).toEqual([]);
      }),
      RUNS,
    );
  });

  test('every grant is explained by a binding that exists, names the user or one of their groups, and holds the permission', () => {
    fc.assert(
      fc.property(arbTenant, arbQueries, (t, queries) => {
        const state = accepted(entries(t));
        fc.pre(state !== undefined);
        const ix = new TenantIndex(state!);
        for (const q of queries) {
          const r = ix.check(query(q), when(q));
          expect(r.allowed).toBe(r.grants.length > 0);
          const u = r.user === undefined ? undefined : state!.users.get(r.user);
          for (const g of r.grants) {
            expect(u?.spec.active).toBe(true);
            if (g.binding === null) {
              expect([g.role, g.via, u!.spec.type]).toEqual(['robot', 'user', 'Robot']);
              continue;
            }
            const b = state!.bindings.get(g.binding)!;
            expect(b.spec.roleRef.name).toBe(g.role);
            const p = parsePermission(q.permission)!;
            expect(state!.roles.get(g.role)!.spec.permissions!.some((x) => x.resource === p.resource && x.actions.includes(p.action))).toBe(true);
            const via = g.via === 'user' ? { kind: 'User', name: u!.name } : { kind: 'Group', name: g.via.slice('group:'.length) };
            expect(b.spec.subjects).toContainEqual(via);
            if (via.kind === 'Group' && via.name !== 'global') expect(u!.spec.groups).toContain(via.name);
            expect(state!.groups.has(via.name) || via.kind === 'User').toBe(true);
          }
        }
      }),
      RUNS,
    );
  });
});

describe('validateDocument never throws', () => {
  const check = (input: unknown) => {
    const r = validateDocument(input);
    expect(Array.isArray(r.problems)).toBe(true);
    expect(r.document === undefined).toBe(r.problems.length > 0);
    for (const p of r.problems) {
      expect(typeof p).toBe('string');
      expect(p).not.toMatch(/[\r\n]/);
    }
  };

  test('on arbitrary values', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBoxedValues: true, withMap: true, withSet: true, withDate: true, withNullPrototype: true, withBigInt: true,
          withObjectString: true, withTypedArray: true, withSparseArray: true, stringUnit: 'binary',
        }),
        check,
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  test('on arbitrary JSON', () => {
    fc.assert(fc.property(fc.jsonValue(), check), { seed: 42, numRuns: 300 });
  });

  test('on documents of the right shape with arbitrary contents', () => {
    const field = fc.constantFrom(
      'email', 'type', 'active', 'groups', 'language', 'notifications', 'concurrentExecution', 'scope', 'permissions',
      'roleRef', 'subjects', 'folder', 'resources', 'environment', 'expiresAt', 'displayName', 'weird\nkey', '__proto__', 'constructor',
    );
    const arbDoc = fc.record({
      apiVersion: fc.constantFrom(API_VERSION_FULL, API_VERSION_FULL, API_VERSION_FULL, 'v1'),
      kind: fc.constantFrom(...KINDS, 'Team'),
      metadata: fc.oneof(
        fc.record({ name: fc.oneof(fc.constantFrom('ok', 'a.b'), fc.string({ unit: 'binary' })), namespace: fc.oneof(fc.constant('t'), fc.string()) }, { requiredKeys: [] }),
        fc.record({ name: fc.constant('ok'), labels: fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue()) }),
        fc.jsonValue(),
      ),
      spec: fc.oneof(
        fc.dictionary(field, fc.oneof(fc.jsonValue(), fc.array(fc.dictionary(fc.constantFrom('kind', 'name', 'resource', 'actions', 'x\r'), fc.jsonValue())))),
        fc.jsonValue(),
      ),
    });
    fc.assert(fc.property(arbDoc, check), { seed: 42, numRuns: 500 });
  });
});

describe('the planner', () => {
  const arbStep = fc.record({
    tenant: arbTenant,
    prune: fc.boolean(),
    deletes: fc.array(
      fc.record({
        kind: fc.constantFrom(...KINDS),
        name: fc.constantFrom(...USERS, ...GROUPS, 'global', 'owner', 'administrator', 'c-tenant', 'b0', 'b1', 'former-owner-u0'),
      }),
      { maxLength: 2 },
    ),
  });

  /** What every accepted state must satisfy, whatever led to it. */
  function expectSound(state: TenantState): void {
    const owners = [...state.bindings.values()].filter((b) => b.spec.roleRef.name === OWNER_ROLE);
    expect(owners.length).toBeLessThanOrEqual(1);
    for (const o of owners) {
      expect(o.spec.subjects).toHaveLength(1);
      expect(o.spec.subjects[0]!.kind).toBe('User');
    }
    for (const b of builtInEntries()) expect(sameEntry(getEntry(state, b.kind, b.name)!, b)).toBe(true);
    expect(checkInvariants(state, state)).toEqual([]);
    const emails = [...state.users.values()].map((u) => u.spec.email.toLowerCase());
    expect(new Set(emails).size).toBe(emails.length);
  }

  test('never throws on random documents; accepted states keep a single owner and every invariant', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 3 }), (steps) => {
        let current: TenantState | undefined;
        for (const step of steps) {
          const p = plan(current, entries(step.tenant), { prune: step.prune, deletes: step.deletes });
          expect(Array.isArray(p.violations)).toBe(true);
          if (p.violations.length > 0) continue; // refused: the caller keeps `current`
          expectSound(p.next);
          // Ownership transfer: a former owner who is still an active user keeps administrator.
          const ownerOf = (s: TenantState | undefined) =>
            [...(s?.bindings.values() ?? [])].filter((b) => b.spec.roleRef.name === OWNER_ROLE).map((b) => b.spec.subjects[0]!.name);
          const [was] = ownerOf(current);
          const [now] = ownerOf(p.next);
          if (was !== undefined && now !== undefined && was !== now && p.next.users.get(was)?.spec.active) {
            expect(new TenantIndex(p.next).check({ user: was, permission: 'Users.Delete' }, NOW).allowed).toBe(true);
          }
          current = p.next;
        }
      }),
      RUNS,
    );
  });

  test('is idempotent: the same documents planned on the result change nothing', () => {
    fc.assert(
      fc.property(arbTenant, fc.boolean(), (t, prune) => {
        const docs = entries(t);
        const first = plan(undefined, docs, { prune });
        fc.pre(first.violations.length === 0);
        const second = plan(first.next, docs, { prune });
        expect(second.violations).toEqual([]);
        expect(second.changes).toEqual([]);
        expect(second.unchanged).toHaveLength(docs.length);
      }),
      RUNS,
    );
  });

  test('never modifies the state it is given', () => {
    fc.assert(
      fc.property(arbTenant, arbStep, (t, step) => {
        const current = plan(undefined, entries(t)).next;
        const copy = structuredClone(current);
        plan(current, entries(step.tenant), { prune: step.prune, deletes: step.deletes });
        expect(current).toEqual(copy);
      }),
      RUNS,
    );
  });
});
