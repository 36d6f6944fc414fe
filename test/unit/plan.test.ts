// Contract section 4 (invariants) on the pure planner (src/model/plan.ts) and the rules it runs
// (src/model/invariants.ts). A plan with violations is refused by its caller as a whole, so each
// refusal below also checks that the planner named the object and the rule, and left `current`
// untouched.
import { BUILT_IN_ROLES, GLOBAL_GROUP_SPEC } from '../../src/model/catalog.js';
import { TenantIndex } from '../../src/model/engine.js';
import { checkInvariants, formatViolation, type Violation } from '../../src/model/invariants.js';
import type { TenantPlan } from '../../src/model/plan.js';
import { builtInEntry, putEntry } from '../../src/model/tenant.js';
import { validateDocument } from '../../src/model/validate.js';
import type { AnyEntry, Entry, TenantState } from '../../src/model/types.js';
import {
  NOW, T, apply, binding, doc, entry, group, plan, role, snapshot, tenantWith, user,
} from '../support/fixtures.js';

/** `Rule Kind/name` of every violation, sorted. */
const refusals = (p: TenantPlan): string[] => p.violations.map((v) => `${v.rule} ${v.kind}/${v.name}`).sort();
/** `action Kind/name` of every change, in plan order. */
const changes = (p: TenantPlan): string[] => p.changes.map((c) => `${c.action} ${c.kind}/${c.name}`);

/** Plans on `current` and checks the planner did not touch it. */
function planOn(current: TenantState, upserts: AnyEntry[], options: Parameters<typeof plan>[2] = {}): TenantPlan {
  const before = snapshot(current);
  const p = plan(current, upserts, options);
  expect(snapshot(current)).toBe(before);
  return p;
}

/** A user-document copy of a built-in (as a GitOps repository might carry it). */
const restated = (kind: 'Role' | 'Group', name: string): AnyEntry => entry(kind, name, structuredClone(builtInEntry(kind, name)!.spec) as Record<string, unknown>) as AnyEntry;

const can = (state: TenantState, u: string, permission: string): boolean => new TenantIndex(state).check({ user: u, permission }, NOW).allowed;

describe('a new tenant', () => {
  test('starts with every built-in role and the global group, of origin builtin', () => {
    const p = plan(undefined, []);
    expect(p.violations).toEqual([]);
    for (const r of BUILT_IN_ROLES) {
      expect(p.next.roles.get(r.name)).toMatchObject({ kind: 'Role', name: r.name, origin: 'builtin', spec: { scope: r.scope } });
    }
    expect(p.next.groups.get('global')).toEqual({ kind: 'Group', name: 'global', origin: 'builtin', spec: { ...GLOBAL_GROUP_SPEC } });
    expect(p.next.groups.get('global')!.spec.displayName).toBe('GLOBAL');
    // Kinds in order (User, Group, Role, RoleBinding), names sorted within a kind.
    expect(changes(p)).toEqual(['created Group/global', ...BUILT_IN_ROLES.map((r) => `created Role/${r.name}`).sort()]);
  });

  test('a current state missing a built-in, or holding an altered one, gets it put back', () => {
    const state = tenantWith(user('ann'));
    state.roles.delete('analyst');
    putEntry(state, { kind: 'Role', name: 'developer', origin: 'builtin', spec: { scope: 'Tenant', permissions: [] } });
    const p = plan(state, []);
    expect(p.violations).toEqual([]);
    expect(changes(p)).toEqual(['created Role/analyst', 'updated Role/developer']);
    expect(p.next.roles.get('developer')).toEqual(builtInEntry('Role', 'developer'));
  });
});

describe('4.1 the global group cannot be deleted or changed', () => {
  const state = tenantWith(user('ann'));

  test('deleting it is refused', () => {
    const p = planOn(state, [], { deletes: [{ kind: 'Group', name: 'global' }] });
    expect(refusals(p)).toEqual(['ProtectedGlobalGroup Group/global']);
    expect(formatViolation(p.violations[0]!)).toBe(`Group ${T}/global: the global group cannot be deleted`);
  });

  test.each([
    ['another display name', { displayName: 'Everyone' }],
    ['no spec at all', {}],
    ['an extra description', { ...GLOBAL_GROUP_SPEC, description: 'All of us' }],
  ])('changing it (%s) is refused', (_what, spec) => {
    const p = planOn(state, [group('global', spec)]);
    expect(refusals(p)).toEqual(['ProtectedGlobalGroup Group/global']);
    expect(formatViolation(p.violations[0]!)).toBe(`Group ${T}/global: the global group cannot be changed`);
  });

  test('restating it identically is fine: no change, listed unchanged', () => {
    const p = planOn(state, [group('global', { ...GLOBAL_GROUP_SPEC })]);
    expect(p.violations).toEqual([]);
    expect(p.changes).toEqual([]);
    expect(p.unchanged).toEqual([{ kind: 'Group', name: 'global' }]);
    expect(p.next.groups.get('global')!.origin).toBe('builtin');
  });

  test('prune never deletes it', () => {
    const p = planOn(state, [], { prune: true });
    expect(p.next.groups.has('global')).toBe(true);
    expect(changes(p)).toEqual(['deleted User/ann']);
  });
});

describe('4.2 built-in roles cannot be deleted or changed; reserved names cannot be taken', () => {
  const state = tenantWith(user('ann'));

  test.each(BUILT_IN_ROLES.map((r) => r.name))('deleting %s is refused', (name) => {
    const p = planOn(state, [], { deletes: [{ kind: 'Role', name }] });
    expect(refusals(p)).toEqual([`BuiltInRole Role/${name}`]);
    expect(formatViolation(p.violations[0]!)).toBe(`Role ${T}/${name}: built-in role ${name} cannot be deleted`);
  });

  test.each(BUILT_IN_ROLES.map((r) => r.name))('taking the reserved name %s for another role is refused', (name) => {
    const scope = builtInEntry('Role', name)!.spec as { scope: 'Tenant' | 'Folder' };
    const mine = role(name, scope.scope, scope.scope === 'Tenant' ? ['Users.View'] : ['Jobs.View']);
    const p = planOn(state, [mine]);
    expect(refusals(p)).toEqual([`BuiltInRole Role/${name}`]);
    expect(p.violations[0]!.message).toBe(`built-in role ${name} cannot be changed (the name ${name} is reserved)`);
    // ...also on a brand-new tenant.
    expect(refusals(plan(undefined, [mine]))).toEqual([`BuiltInRole Role/${name}`]);
  });

  test('changing only the description, or the scope, is a change too', () => {
    const spec = structuredClone(builtInEntry('Role', 'developer')!.spec) as Record<string, unknown>;
    expect(refusals(planOn(state, [entry('Role', 'developer', { ...spec, description: 'mine' })]))).toEqual(['BuiltInRole Role/developer']);
    const analyst = structuredClone(builtInEntry('Role', 'analyst')!.spec) as Record<string, unknown>;
    expect(refusals(planOn(state, [{ kind: 'Role', name: 'analyst', origin: 'user', spec: { ...analyst, scope: 'Folder' } } as AnyEntry]))).toEqual([
      'BuiltInRole Role/analyst',
    ]);
  });

  test('restating built-ins identically is fine, whatever the key order', () => {
    const spec = builtInEntry('Role', 'folder-viewer')!.spec as unknown as Record<string, unknown>;
    const reordered = { kind: 'Role', name: 'folder-viewer', origin: 'user', spec: Object.fromEntries(Object.entries(spec).reverse()) } as unknown as AnyEntry;
    expect(Object.keys(reordered.spec)[0]).toBe('permissions');
    const p = planOn(state, [...BUILT_IN_ROLES.map((r) => restated('Role', r.name)), reordered]);
    expect(p.violations).toEqual([]);
    expect(p.changes).toEqual([]);
    expect(p.next.roles.get('owner')!.origin).toBe('builtin');
  });

  test('prune never deletes them', () => {
    const p = planOn(state, [], { prune: true });
    for (const r of BUILT_IN_ROLES) expect(p.next.roles.get(r.name)?.origin).toBe('builtin');
  });

  test('a Group or a User may use a role name: names are reserved per kind', () => {
    expect(planOn(state, [group('owner'), user('administrator')]).violations).toEqual([]);
  });
});

describe('4.3 at most one owner, held by exactly one User', () => {
  const state = tenantWith(user('ann'), user('bob'), group('ops'), binding('tenant-owner', 'owner', ['ann']));

  test('the owner may do everything', () => {
    expect(can(state, 'ann', 'Billing.Delete')).toBe(true);
  });

  test('a second owner binding is refused, naming it and the existing one', () => {
    const p = planOn(state, [binding('another-owner', 'owner', ['bob'])]);
    expect(refusals(p)).toEqual(['SingleOwner RoleBinding/another-owner']);
    expect(formatViolation(p.violations[0]!)).toBe(
      `RoleBinding ${T}/another-owner: at most one owner per tenant: RoleBinding ${T}/tenant-owner already grants owner (change its subject to transfer ownership)`,
    );
  });

  test('a second owner binding is refused even when it sorts first by name', () => {
    expect(refusals(planOn(state, [binding('a-owner', 'owner', ['bob'])]))).toEqual(['SingleOwner RoleBinding/a-owner']);
  });

  test('two owner bindings on a new tenant are refused', () => {
    expect(refusals(plan(undefined, [user('ann'), user('bob'), binding('o1', 'owner', ['ann']), binding('o2', 'owner', ['bob'])]))).toEqual([
      'SingleOwner RoleBinding/o2',
    ]);
  });

  test.each([
    ['two Users', ['ann', 'bob']],
    ['a Group', ['group:ops']],
    ['a User and a Group', ['ann', 'group:ops']],
  ])('an owner binding with %s is refused', (_what, subjects) => {
    const p = planOn(state, [binding('tenant-owner', 'owner', subjects)]);
    expect(refusals(p)).toEqual(['SingleOwner RoleBinding/tenant-owner']);
    expect(p.violations[0]!.message).toContain('exactly one subject of kind User');
  });

  test('no owner at all is allowed (the binding may be removed)', () => {
    const p = planOn(state, [], { deletes: [{ kind: 'RoleBinding', name: 'tenant-owner' }] });
    expect(p.violations).toEqual([]);
    expect([...p.next.bindings.keys()]).toEqual([]);
  });
});

describe('4.3 ownership transfer leaves the former owner administrator', () => {
  const docs = [user('ann'), user('bob'), user('cy'), binding('tenant-owner', 'owner', ['ann'])];
  const state = tenantWith(...docs);
  const formerOwnerAnn: Entry<'RoleBinding'> = {
    kind: 'RoleBinding', name: 'former-owner-ann', origin: 'system',
    spec: { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'ann' }] },
  };

  test('changing the subject transfers: a system binding former-owner-<user> grants administrator', () => {
    const p = planOn(state, [binding('tenant-owner', 'owner', ['bob'])]);
    expect(p.violations).toEqual([]);
    expect(changes(p)).toEqual(['created RoleBinding/former-owner-ann', 'updated RoleBinding/tenant-owner']);
    expect(p.next.bindings.get('former-owner-ann')).toEqual(formerOwnerAnn);
    const ix = new TenantIndex(p.next);
    expect(ix.check({ user: 'bob', permission: 'Billing.Edit' }, NOW).grants).toEqual([{ role: 'owner', binding: 'tenant-owner', via: 'user', folder: null }]);
    expect(ix.check({ user: 'ann', permission: 'Users.Delete' }, NOW).grants).toEqual([
      { role: 'administrator', binding: 'former-owner-ann', via: 'user', folder: null },
    ]);
    expect(ix.check({ user: 'ann', permission: 'Jobs.Create', folder: 'Any' }, NOW).allowed).toBe(true);
  });

  test('replacing the owner binding by another one is a transfer too', () => {
    const p = planOn(state, [user('ann'), user('bob'), user('cy'), binding('new-owner', 'owner', ['bob'])], { prune: true });
    expect(p.violations).toEqual([]);
    expect(p.next.bindings.get('former-owner-ann')).toEqual(formerOwnerAnn);
    expect(changes(p)).toEqual(['created RoleBinding/former-owner-ann', 'created RoleBinding/new-owner', 'deleted RoleBinding/tenant-owner']);
  });

  test('prune never deletes the system binding; re-planning the same documents changes nothing', () => {
    const transferred = apply(state, [binding('tenant-owner', 'owner', ['bob'])]);
    const again = planOn(transferred, [user('ann'), user('bob'), user('cy'), binding('tenant-owner', 'owner', ['bob'])], { prune: true });
    expect(again.violations).toEqual([]);
    expect(again.changes).toEqual([]);
    expect(again.next.bindings.get('former-owner-ann')).toEqual(formerOwnerAnn);
  });

  test('transferring on and back leaves both former owners administrator', () => {
    const toBob = apply(state, [binding('tenant-owner', 'owner', ['bob'])]);
    const toCy = apply(toBob, [binding('tenant-owner', 'owner', ['cy'])]);
    expect([...toCy.bindings.keys()].sort()).toEqual(['former-owner-ann', 'former-owner-bob', 'tenant-owner']);
    const back = apply(toCy, [binding('tenant-owner', 'owner', ['ann'])]);
    expect(back.bindings.get('former-owner-cy')?.origin).toBe('system');
    expect(can(back, 'ann', 'Billing.Edit')).toBe(true);
  });

  test('a former owner deleted in the same plan gets no binding', () => {
    const p = planOn(state, [binding('tenant-owner', 'owner', ['bob'])], { deletes: [{ kind: 'User', name: 'ann' }] });
    expect(p.violations).toEqual([]);
    expect(p.next.bindings.has('former-owner-ann')).toBe(false);
  });

  test('a former owner deactivated in the same plan gets no binding, and the plan is accepted', () => {
    // Handing the tenant over and deactivating the leaver is one step, as deleting them is.
    const p = planOn(state, [binding('tenant-owner', 'owner', ['bob']), user('ann', { active: false })]);
    expect(p.violations).toEqual([]);
    expect(p.next.bindings.has('former-owner-ann')).toBe(false);
  });

  test('removing the owner binding without a new owner is not a transfer', () => {
    const p = planOn(state, [], { deletes: [{ kind: 'RoleBinding', name: 'tenant-owner' }] });
    expect(p.next.bindings.has('former-owner-ann')).toBe(false);
  });
});

describe('4.4 an explicit owner or administrator cannot be deleted or deactivated', () => {
  const state = tenantWith(
    user('ann'), user('olga'), user('gus', { groups: ['admins'] }), user('fay'), group('admins'),
    binding('ann-admin', 'administrator', ['ann']),
    binding('tenant-owner', 'owner', ['olga']),
    binding('admins', 'administrator', ['group:admins']),
    binding('fay-folder-admin', 'folder-administrator', ['fay'], { folder: 'A' }),
    binding('fay-dev', 'developer', ['fay']),
  );

  test('deleting an explicit administrator is refused', () => {
    const p = planOn(state, [], { deletes: [{ kind: 'User', name: 'ann' }] });
    expect(refusals(p)).toEqual(['ProtectedHolder User/ann']);
    expect(formatViolation(p.violations[0]!)).toBe(
      `User ${T}/ann: cannot be deleted: holds administrator through the explicit RoleBinding ${T}/ann-admin; remove the binding first`,
    );
  });

  test('deleting the owner, or pruning them away, is refused', () => {
    expect(refusals(planOn(state, [], { deletes: [{ kind: 'User', name: 'olga' }] }))).toEqual(['ProtectedHolder User/olga']);
    const everythingButOlga = [...state.users.values(), ...state.groups.values(), ...state.bindings.values()].filter(
      (e) => e.origin === 'user' && e.name !== 'olga',
    ) as AnyEntry[];
    expect(refusals(planOn(state, everythingButOlga, { prune: true }))).toEqual(['ProtectedHolder User/olga']);
  });

  test('deactivating them is refused', () => {
    const p = planOn(state, [user('ann', { active: false }), user('olga', { active: false })]);
    expect(refusals(p)).toEqual(['ProtectedHolder User/ann', 'ProtectedHolder User/olga']);
    expect(p.violations.find((v) => v.name === 'olga')!.message).toBe(
      `cannot be deactivated: holds owner through the explicit RoleBinding ${T}/tenant-owner; remove the binding first`,
    );
  });

  test('removing the binding in the same plan allows it', () => {
    expect(planOn(state, [], { deletes: [{ kind: 'RoleBinding', name: 'ann-admin' }, { kind: 'User', name: 'ann' }] }).violations).toEqual([]);
    expect(planOn(state, [user('ann', { active: false })], { deletes: [{ kind: 'RoleBinding', name: 'ann-admin' }] }).violations).toEqual([]);
    // ...or taking the user out of the binding's subjects.
    const shared = apply(state, [binding('ann-admin', 'administrator', ['ann', 'fay'])]);
    expect(planOn(shared, [binding('ann-admin', 'administrator', ['fay'])], { deletes: [{ kind: 'User', name: 'ann' }] }).violations).toEqual([]);
  });

  test('holding administrator only through a group does not protect', () => {
    expect(planOn(state, [], { deletes: [{ kind: 'User', name: 'gus' }] }).violations).toEqual([]);
    expect(planOn(state, [user('gus', { active: false, groups: ['admins'] })]).violations).toEqual([]);
  });

  test('other roles do not protect', () => {
    expect(planOn(state, [], { deletes: [{ kind: 'User', name: 'fay' }] }).violations).toEqual([]);
  });

  test('an inactive explicit holder cannot be deleted either (the binding would pass to the next user of that name)', () => {
    // Only a store written before contract 4.6 holds an inactive administrator.
    const dormant = apply(undefined, [user('ann'), binding('ann-admin', 'administrator', ['ann'])]);
    dormant.users.set('ann', user('ann', { active: false }));
    const p = planOn(dormant, [], { deletes: [{ kind: 'User', name: 'ann' }] });
    expect(refusals(p)).toEqual(['ProtectedHolder User/ann']);
    expect(p.violations[0]!.message).toMatch(/^cannot be deleted: holds administrator/);
  });

  test('an administrator binding is never given to an inactive user (contract 4.6: judged on the resulting state)', () => {
    const p = planOn(state, [user('ivy', { active: false }), binding('ivy-admin', 'administrator', ['ivy'])]);
    expect(refusals(p)).toEqual(['ProtectedHolder User/ivy']);
  });

  test('the former owner left administrator by a transfer is protected by that binding', () => {
    const transferred = apply(state, [binding('tenant-owner', 'owner', ['ann'])]);
    expect(transferred.bindings.get('former-owner-olga')?.origin).toBe('system');
    const p = planOn(transferred, [], { deletes: [{ kind: 'User', name: 'olga' }] });
    expect(p.violations.map((v) => v.message)).toEqual([
      `cannot be deleted: holds administrator through the explicit RoleBinding ${T}/former-owner-olga; remove the binding first`,
    ]);
    expect(planOn(transferred, [], { deletes: [{ kind: 'RoleBinding', name: 'former-owner-olga' }, { kind: 'User', name: 'olga' }] }).violations).toEqual([]);
  });
});

describe('4.5 roleRef never changes', () => {
  const state = tenantWith(user('ann'), binding('b', 'folder-viewer', ['ann'], { folder: 'A' }));

  test('changing it is refused, naming old and new', () => {
    const p = planOn(state, [binding('b', 'automation-user', ['ann'], { folder: 'A' })]);
    expect(refusals(p)).toEqual(['ImmutableRoleRef RoleBinding/b']);
    expect(formatViolation(p.violations[0]!)).toBe(
      `RoleBinding ${T}/b: spec.roleRef is immutable (was folder-viewer, now automation-user); delete the binding and create a new one`,
    );
  });

  test('everything else of a binding may change', () => {
    const p = planOn(state, [binding('b', 'folder-viewer', ['ann', 'group:global'], { folder: 'B/C', environment: 'prod', expiresAt: '2030-01-01T00:00:00Z' })]);
    expect(p.violations).toEqual([]);
    expect(changes(p)).toEqual(['updated RoleBinding/b']);
  });

  test('deleting it and creating it again with another role is allowed', () => {
    const gone = apply(state, [], { deletes: [{ kind: 'RoleBinding', name: 'b' }] });
    expect(plan(gone, [binding('b', 'automation-user', ['ann'], { folder: 'A' })]).violations).toEqual([]);
  });
});

describe('4.5 scope rules: folder required for Folder roles, forbidden for Tenant roles', () => {
  const state = tenantWith(
    user('ann'),
    role('clerk', 'Folder', ['Jobs.View']),
    role('user-admin', 'Tenant', ['Users.View']),
    binding('clerk-a', 'clerk', ['ann'], { folder: 'A' }),
    binding('ua', 'user-admin', ['ann']),
  );

  test.each([
    ['folder-viewer', undefined, 'role folder-viewer is a Folder role: spec.folder is required'],
    ['clerk', undefined, 'role clerk is a Folder role: spec.folder is required'],
    ['administrator', 'A', 'role administrator is a Tenant role: spec.folder is forbidden'],
    ['owner', 'A', 'role owner is a Tenant role: spec.folder is forbidden'],
    ['user-admin', 'A/B', 'role user-admin is a Tenant role: spec.folder is forbidden'],
  ])('binding %s with folder %s is refused', (roleName, folder, message) => {
    const p = planOn(state, [binding('new', roleName, ['ann'], folder ? { folder } : {})]);
    expect(refusals(p)).toEqual(['BindingScope RoleBinding/new']);
    expect(p.violations[0]!.message).toBe(message);
  });

  test('changing the scope of a role under an existing binding blames the role', () => {
    const p = planOn(state, [role('clerk', 'Tenant', ['Users.View'])]);
    expect(refusals(p)).toEqual(['BindingScope Role/clerk']);
    expect(formatViolation(p.violations[0]!)).toBe(`Role ${T}/clerk: scope cannot become Tenant while RoleBinding ${T}/clerk-a binds it to folder A`);
    const q = planOn(state, [role('user-admin', 'Folder', ['Jobs.View'])]);
    expect(refusals(q)).toEqual(['BindingScope Role/user-admin']);
    expect(q.violations[0]!.message).toBe(`scope cannot become Folder while RoleBinding ${T}/ua binds it tenant-wide`);
  });

  test('changing the role scope and the binding together is fine', () => {
    const p = planOn(state, [role('clerk', 'Tenant', ['Users.View']), binding('clerk-a', 'clerk', ['ann'])]);
    expect(p.violations).toEqual([]);
  });

  test('a binding to a role that does not exist yet is not refused, with or without folder', () => {
    expect(planOn(state, [binding('x', 'later', ['ann']), binding('y', 'later-too', ['ann'], { folder: 'A' })]).violations).toEqual([]);
  });

  test('a role arriving under a dangling binding of the wrong scope is what gets blamed', () => {
    const dangling = apply(state, [binding('x', 'later', ['ann'])]);
    const p = planOn(dangling, [role('later', 'Folder', ['Jobs.View'])]);
    expect(refusals(p)).toEqual(['BindingScope Role/later']);
  });

  test('folders deeper than 7 levels never reach the planner: the schema refuses them', () => {
    expect(validateDocument(doc('RoleBinding', 'deep', { roleRef: { name: 'clerk' }, subjects: [{ kind: 'User', name: 'ann' }], folder: 'A/B/C/D/E/F/G/H' })).problems).toEqual([
      'spec.folder: must be a folder path of 1 to 7 non-empty segments like Finance/Invoices: it has 8 levels',
    ]);
    expect(planOn(state, [binding('deep', 'clerk', ['ann'], { folder: 'A/B/C/D/E/F/G' })]).violations).toEqual([]);
  });
});

describe('emails are unique in a tenant, case-insensitively', () => {
  const state = tenantWith(user('ann', { email: 'Ann@Example.com' }));

  test('a new user with the same email in another case is refused; the existing one is kept', () => {
    const p = planOn(state, [user('aaron', { email: 'ann@example.COM' })]);
    expect(refusals(p)).toEqual(['UniqueEmail User/aaron']);
    expect(formatViolation(p.violations[0]!)).toBe(
      `User ${T}/aaron: email ann@example.COM is already used by User ${T}/ann (emails are unique in a tenant, case-insensitive)`,
    );
  });

  test('two new users with one email: the second by name is refused', () => {
    expect(refusals(plan(undefined, [user('zed', { email: 'x@example.com' }), user('bea', { email: 'X@example.com' })]))).toEqual(['UniqueEmail User/zed']);
  });

  test('a user may change the case of their own email; users may swap emails in one plan', () => {
    expect(planOn(state, [user('ann', { email: 'ann@example.com' })]).violations).toEqual([]);
    const two = tenantWith(user('ann'), user('bob'));
    expect(planOn(two, [user('ann', { email: 'bob@example.com' }), user('bob', { email: 'ann@example.com' })]).violations).toEqual([]);
  });
});

describe('prune, deletes and the reported changes', () => {
  const docs = [user('ann'), user('bob'), group('ops'), role('clerk', 'Folder', ['Jobs.View']), binding('b', 'clerk', ['ann'], { folder: 'A' })];
  const state = tenantWith(...docs);

  test('without prune, objects the documents do not name are kept', () => {
    const p = planOn(state, [user('ann', { fullName: 'Ann' })]);
    expect(changes(p)).toEqual(['updated User/ann']);
    expect(p.changes[0]!.before!.spec).toMatchObject({ email: 'ann@example.com' });
    expect(p.changes[0]!.after!.spec).toMatchObject({ fullName: 'Ann' });
    expect(p.unchanged).toEqual([]);
  });

  test('with prune, every object of origin user that the documents do not name is deleted', () => {
    const p = planOn(state, [user('ann'), role('clerk', 'Folder', ['Jobs.View']), user('cy')], { prune: true });
    expect(p.violations).toEqual([]);
    expect(changes(p)).toEqual(['deleted User/bob', 'created User/cy', 'deleted Group/ops', 'deleted RoleBinding/b']);
    expect(p.unchanged).toEqual([{ kind: 'User', name: 'ann' }, { kind: 'Role', name: 'clerk' }]);
    expect(p.changes.find((c) => c.name === 'bob')!.before).toEqual(state.users.get('bob'));
  });

  test('prune with no documents empties the tenant down to its built-ins', () => {
    const p = planOn(state, [], { prune: true });
    expect([...p.next.users.keys(), ...p.next.bindings.keys()]).toEqual([]);
    expect([...p.next.groups.keys()]).toEqual(['global']);
    expect(p.next.roles.size).toBe(BUILT_IN_ROLES.length);
  });

  test('deletes remove objects; deleting what does not exist is no change', () => {
    const p = planOn(state, [], { deletes: [{ kind: 'Group', name: 'ops' }, { kind: 'User', name: 'nobody' }] });
    expect(changes(p)).toEqual(['deleted Group/ops']);
  });

  test('re-creating a pruned object makes it come back as created', () => {
    const pruned = apply(state, [], { prune: true });
    expect(changes(planOn(pruned, [group('ops')]))).toEqual(['created Group/ops']);
  });
});

describe('idempotence: planning the same documents on the result changes nothing', () => {
  const docs: AnyEntry[] = [
    user('ann', { fullName: 'Ann A', groups: ['ops'], notifications: { events: ['All'], channels: ['Email', 'Slack'] }, slackId: 'U123' }),
    user('bob', { type: 'Robot', concurrentExecution: false, language: 'pt-BR' }),
    group('ops', { displayName: 'Operations' }),
    group('global', { ...GLOBAL_GROUP_SPEC }),
    restated('Role', 'developer'),
    role('clerk', 'Folder', ['Jobs.View', 'Jobs.Create', 'Queues.Edit'], { displayName: 'Clerk' }),
    binding('tenant-owner', 'owner', ['ann']),
    binding('clerk-ops', 'clerk', ['group:ops', 'bob'], {
      folder: 'Finance/Invoices', resources: [{ kind: 'Process', name: 'invoice-bot' }], environment: 'prod', expiresAt: '2030-01-01T00:00:00Z',
    }),
    binding('dangling', 'not-yet', ['ann']),
  ];

  test.each([false, true])('prune %s', (prune) => {
    const first = plan(undefined, docs, { prune });
    expect(first.violations).toEqual([]);
    const second = planOn(first.next, docs, { prune });
    expect(second.violations).toEqual([]);
    expect(second.changes).toEqual([]);
    expect(second.unchanged).toEqual(docs.map((d) => ({ kind: d.kind, name: d.name })));
    expect(snapshot(second.next)).toBe(snapshot(first.next));
  });

  test('after an ownership transfer too', () => {
    const transferred = apply(tenantWith(...docs), docs.map((d) => (d.name === 'tenant-owner' ? binding('tenant-owner', 'owner', ['bob']) : d)));
    const again = docs.map((d) => (d.name === 'tenant-owner' ? binding('tenant-owner', 'owner', ['bob']) : d));
    const p = planOn(transferred, again, { prune: true });
    expect(p.changes).toEqual([]);
    expect(p.violations).toEqual([]);
  });
});

describe('violations name the object and the rule; all of them are reported at once', () => {
  const state = tenantWith(user('ann'), user('bob'), binding('tenant-owner', 'owner', ['ann']), binding('b', 'folder-viewer', ['ann'], { folder: 'A' }));

  test('one plan, many violations', () => {
    const p = planOn(state, [
      group('global', { displayName: 'Everyone' }),
      role('analyst', 'Tenant', ['Users.View']),
      binding('b', 'automation-user', ['ann'], { folder: 'A' }),
      binding('second-owner', 'owner', ['bob']),
      binding('c', 'folder-viewer', ['bob']),
      user('carl', { email: 'ANN@example.com' }),
      user('ann', { active: false }),
    ], { deletes: [{ kind: 'Role', name: 'owner' }] });
    expect(refusals(p)).toEqual([
      'BindingScope RoleBinding/c',
      'BuiltInRole Role/analyst',
      'BuiltInRole Role/owner',
      'ImmutableRoleRef RoleBinding/b',
      'ProtectedGlobalGroup Group/global',
      'ProtectedHolder User/ann',
      'SingleOwner RoleBinding/second-owner',
      'UniqueEmail User/carl',
    ]);
    for (const v of p.violations) {
      const line = formatViolation(v);
      expect(line.startsWith(`${v.kind} ${T}/${v.name}: `)).toBe(true);
      expect(line).not.toContain('\n');
      expect(v.tenant).toBe(T);
      expect(v.rule).toMatch(/^[A-Z][A-Za-z]+$/);
    }
  });

  test('checkInvariants on an accepted state finds nothing', () => {
    expect(checkInvariants(state, state)).toEqual([]);
  });

  test('formatViolation', () => {
    const v: Violation = { tenant: 'hr', kind: 'User', name: 'x', rule: 'UniqueEmail', message: 'email taken' };
    expect(formatViolation(v)).toBe('User hr/x: email taken');
  });
});
