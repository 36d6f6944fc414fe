// Issue 13 items 2 and 3: the invariants of contract section 4 (items 3, 4, 6, 7) hold on the
// RESULTING state of a tenant, whatever sequence of applies leads there. fast-check generates
// sequences of applies (users created active or inactive, owner and administrator bindings,
// transfers, deletes, prunes, documents naming `former-owner-*`), feeds them to the planner
// (the one place the store, the webhook and `validate` all go through) and checks after every
// accepted step that no invariant is broken; a refused step changes nothing (the planner's
// `current` is never touched, and the store test below checks that it writes nothing).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { ADMINISTRATOR_ROLE, OWNER_ROLE } from '../../src/model/catalog.js';
import { planTenant, type DesiredState, type ObjectRefKey } from '../../src/model/plan.js';
import type { AnyEntry, TenantState } from '../../src/model/types.js';
import type { AccessStore } from '../../src/store/store.js';
import { sqliteFactory } from '../support/stores.js';
import { T, binding, snapshot, user } from '../support/fixtures.js';

/** Fixed seed; enough runs to find each of issue 13's item 2 routes on the old planner. */
const RUNS = { seed: 1313, numRuns: 400 };

const USERS = ['u0', 'u1', 'u2'];
const BINDING_NAMES = ['owner', 'own-2', 'admin-a', 'admin-b', 'former-owner-u0', 'former-owner-u1', 'former-owner-u2'];
const ROLES = [OWNER_ROLE, ADMINISTRATOR_ROLE, ADMINISTRATOR_ROLE, 'analyst'];

type Op =
  | { op: 'user'; name: string; active: boolean }
  | { op: 'binding'; name: string; role: string; subjects: string[] }
  | { op: 'delete'; kind: 'User' | 'RoleBinding'; name: string };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('user' as const), name: fc.constantFrom(...USERS), active: fc.constantFrom(true, true, false) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('binding' as const),
      name: fc.constantFrom(...BINDING_NAMES),
      role: fc.constantFrom(...ROLES),
      subjects: fc.uniqueArray(fc.constantFrom(...USERS, 'group:ops'), { minLength: 1, maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('delete' as const), kind: fc.constantFrom('User' as const, 'RoleBinding' as const), name: fc.constantFrom(...USERS, ...BINDING_NAMES) }),
  },
);

/** One apply: a few objects and deletes, sometimes pruning. */
const arbStep = fc.record({ ops: fc.array(arbOp, { minLength: 1, maxLength: 3 }), prune: fc.constantFrom(false, false, false, true) });
const arbSequence = fc.array(arbStep, { minLength: 1, maxLength: 8 });
type Step = typeof arbStep extends fc.Arbitrary<infer S> ? S : never;

function desired(step: Step): DesiredState {
  const upserts = new Map<string, AnyEntry>();
  const deletes: ObjectRefKey[] = [];
  for (const o of step.ops) {
    if (o.op === 'user') upserts.set(`User/${o.name}`, user(o.name, { active: o.active }));
    else if (o.op === 'binding') upserts.set(`RoleBinding/${o.name}`, binding(o.name, o.role, o.subjects));
    else if (!upserts.has(`${o.kind}/${o.name}`)) deletes.push({ kind: o.kind, name: o.name });
  }
  return { tenant: T, upserts: [...upserts.values()], deletes, prune: step.prune };
}

const ownerOf = (s: TenantState): string | undefined =>
  [...s.bindings.values()].find((b) => b.spec.roleRef.name === OWNER_ROLE)?.spec.subjects.find((x) => x.kind === 'User')?.name;

/** Everything wrong with a state, judged on the state alone (written apart from src/model on purpose). */
function brokenInvariants(s: TenantState): string[] {
  const broken: string[] = [];
  for (const b of s.bindings.values()) {
    if (b.spec.roleRef.name !== OWNER_ROLE && b.spec.roleRef.name !== ADMINISTRATOR_ROLE) continue;
    for (const subject of b.spec.subjects) {
      const u = subject.kind === 'User' ? s.users.get(subject.name) : undefined;
      if (u && !u.spec.active) broken.push(`inactive User ${u.name} holds ${b.spec.roleRef.name} through ${b.name}`);
    }
  }
  const owners = [...s.bindings.values()].filter((b) => b.spec.roleRef.name === OWNER_ROLE);
  if (owners.length > 1) broken.push(`${owners.length} owner bindings`);
  for (const b of s.bindings.values()) {
    if (!b.name.startsWith('former-owner-')) continue;
    const who = b.name.slice('former-owner-'.length);
    const exact = b.spec.roleRef.name === ADMINISTRATOR_ROLE && b.spec.subjects.length === 1 && b.spec.subjects[0]!.kind === 'User' && b.spec.subjects[0]!.name === who;
    const rest = Object.keys(b.spec).filter((k) => k !== 'roleRef' && k !== 'subjects');
    if (!exact || rest.length > 0) broken.push(`reserved name ${b.name} holds something else than administrator for ${who}`);
  }
  return broken;
}

/** A transfer from A to B leaves A (still there and active) holding administrator explicitly. */
function formerOwnerKept(before: TenantState, after: TenantState): string[] {
  const a = ownerOf(before);
  const b = ownerOf(after);
  if (!a || !b || a === b || !after.users.get(a)?.spec.active) return [];
  const keeps = [...after.bindings.values()].some(
    (x) => x.spec.roleRef.name === ADMINISTRATOR_ROLE && x.spec.subjects.some((s) => s.kind === 'User' && s.name === a),
  );
  return keeps ? [] : [`former owner ${a} lost administrator in the transfer to ${b}`];
}

describe('invariants on the resulting state, over generated sequences of applies (planner)', () => {
  test('no reachable state breaks an invariant; a refused step changes nothing', () => {
    fc.assert(
      fc.property(arbSequence, (steps) => {
        let state: TenantState | undefined;
        for (const step of steps) {
          const before = state === undefined ? undefined : snapshot(state);
          const p = planTenant(state, desired(step));
          if (p.violations.length > 0) {
            // Refused: the current state is untouched, and every violation names an object and a rule.
            if (state) expect(snapshot(state)).toBe(before);
            for (const v of p.violations) expect(v.rule).toMatch(/^[A-Z][A-Za-z]+$/);
            continue;
          }
          expect([...brokenInvariants(p.next), ...(state ? formerOwnerKept(state, p.next) : [])]).toEqual([]);
          state = p.next;
        }
      }),
      RUNS,
    );
  });
});

describe('the same sequences through the store: a refused apply writes nothing', () => {
  let store: AccessStore;
  beforeAll(async () => {
    store = await sqliteFactory.open();
  });
  afterAll(async () => {
    await store.close();
  });

  test('SQLite store, fewer runs (each step is a transaction)', async () => {
    let tenantNo = 0;
    await fc.assert(
      fc.asyncProperty(arbSequence, async (steps) => {
        const tenant = `seq-${tenantNo++}`;
        for (const step of steps) {
          const before = await store.loadTenant(tenant);
          const result = await store.apply([{ ...desired(step), tenant }], { actor: 'test', source: 'test' });
          const after = await store.loadTenant(tenant);
          if (result.violations.length > 0) {
            expect(result.written).toBe(false);
            expect(after && snapshot(after.state)).toEqual(before && snapshot(before.state));
            expect(after?.revision).toEqual(before?.revision);
          } else {
            expect(brokenInvariants(after!.state)).toEqual([]);
          }
        }
      }),
      { seed: 1313, numRuns: 60 },
    );
  });
});

describe('each route of issue 13 item 2, and the squatted name of item 3, refused by the planner', () => {
  const refusals = (p: ReturnType<typeof planTenant>) => p.violations.map((v) => `${v.rule} ${v.kind}/${v.name}`);
  const plan = (current: TenantState | undefined, upserts: AnyEntry[], extra: Partial<DesiredState> = {}) => planTenant(current, { tenant: T, upserts, ...extra });
  const accept = (current: TenantState | undefined, upserts: AnyEntry[], extra: Partial<DesiredState> = {}) => {
    const p = plan(current, upserts, extra);
    expect(p.violations).toEqual([]);
    return p.next;
  };

  test('a new tenant whose only owner is created inactive', () => {
    expect(refusals(plan(undefined, [user('ann', { active: false }), binding('owner', 'owner', ['ann'])]))).toEqual(['ProtectedHolder User/ann']);
  });

  test('an administrator binding together with an inactive user, in one apply', () => {
    const p = plan(undefined, [user('bob', { active: false }), binding('bob-admin', 'administrator', ['bob'])]);
    expect(refusals(p)).toEqual(['ProtectedHolder User/bob']);
    expect(p.violations[0]!.message).toBe('cannot be inactive: holds administrator through the explicit RoleBinding finance/bob-admin; remove the binding first');
  });

  test('an administrator binding naming a user who is already inactive', () => {
    const s = accept(undefined, [user('bob', { active: false })]);
    expect(refusals(plan(s, [binding('bob-admin', 'administrator', ['bob'])]))).toEqual(['InactiveHolder RoleBinding/bob-admin']);
  });

  test('transferring ownership to a user who is already inactive', () => {
    const s = accept(undefined, [user('ann'), user('bob', { active: false }), binding('owner', 'owner', ['ann'])]);
    const p = plan(s, [binding('owner', 'owner', ['bob'])]);
    expect(refusals(p)).toEqual(['InactiveHolder RoleBinding/owner']);
    expect(p.violations[0]!.message).toBe('User finance/bob is inactive: an inactive user cannot be the owner; activate the user first');
  });

  test('a document squatting former-owner-<user> is refused; the exact binding is adopted', () => {
    expect(refusals(plan(undefined, [user('ann'), binding('former-owner-ann', 'analyst', ['ann'])]))).toEqual(['ReservedName RoleBinding/former-owner-ann']);
    expect(refusals(plan(undefined, [binding('former-owner-ann', 'administrator', ['ann', 'bob'])]))).toEqual(['ReservedName RoleBinding/former-owner-ann']);
    expect(refusals(plan(undefined, [binding('former-owner-ann', 'administrator', ['bob'])]))).toEqual(['ReservedName RoleBinding/former-owner-ann']);
    expect(refusals(plan(undefined, [binding('former-owner-ann', 'administrator', ['ann'], { expiresAt: '2030-01-01T00:00:00Z' })]))).toEqual(['ReservedName RoleBinding/former-owner-ann']);
    expect(refusals(plan(undefined, [user('ann'), binding('former-owner-ann', 'administrator', ['ann'])]))).toEqual([]);
  });

  test('a squatter left in a store from before the rule makes the transfer fail, never the former owner lose administrator', () => {
    const s = accept(undefined, [user('ann'), user('bob'), binding('owner', 'owner', ['ann'])]);
    s.bindings.set('former-owner-ann', { ...binding('former-owner-ann', 'analyst', ['ann']) });
    expect(refusals(plan(s, [binding('owner', 'owner', ['bob'])]))).toEqual(['ReservedName RoleBinding/former-owner-ann']);
  });
});

describe('offboarding a former owner (issue 13 item 4)', () => {
  const accept = (current: TenantState | undefined, upserts: AnyEntry[], extra: Partial<DesiredState> = {}) => {
    const p = planTenant(current, { tenant: T, upserts, ...extra });
    expect(p.violations.map((v) => v.message)).toEqual([]);
    return p.next;
  };
  const docs = [user('ann'), user('bob'), binding('owner', 'owner', ['bob'])];

  test('adopt the store-created binding, then prune it with the user', () => {
    let s = accept(undefined, [user('ann'), user('bob'), binding('owner', 'owner', ['ann'])]);
    s = accept(s, docs, { prune: true });
    expect(s.bindings.get('former-owner-ann')?.origin).toBe('system');
    // --prune alone never removes what the store created, and ann cannot leave while she holds it.
    expect(planTenant(s, { tenant: T, upserts: [user('bob'), binding('owner', 'owner', ['bob'])], prune: true }).violations.map((v) => v.rule)).toEqual(['ProtectedHolder']);
    // Adoption: the documents state it exactly; it becomes theirs.
    s = accept(s, [...docs, binding('former-owner-ann', 'administrator', ['ann'])], { prune: true });
    expect(s.bindings.get('former-owner-ann')?.origin).toBe('user');
    // Offboarding: the documents drop the binding and the user; --prune deletes both.
    s = accept(s, [user('bob'), binding('owner', 'owner', ['bob'])], { prune: true });
    expect(s.bindings.has('former-owner-ann')).toBe(false);
    expect(s.users.has('ann')).toBe(false);
  });

  test('deleting the store-created binding (kubectl delete of its mirror) lets the user go', () => {
    let s = accept(undefined, [user('ann'), user('bob'), binding('owner', 'owner', ['ann'])]);
    s = accept(s, docs);
    s = accept(s, [], { deletes: [{ kind: 'RoleBinding', name: 'former-owner-ann' }, { kind: 'User', name: 'ann' }] });
    expect(s.users.has('ann')).toBe(false);
  });
});
