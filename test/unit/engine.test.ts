// Contract section 3 (decision semantics), rule by rule, on the pure engine (src/model/engine.ts)
// and the readiness it goes with (src/model/readiness.ts). Time is always passed explicitly.
import {
  ACTIONS, ALL_PERMISSIONS, BUILT_IN_ROLES, FOLDER_RESOURCES, TENANT_RESOURCES, builtInRole, parsePermission,
} from '../../src/model/catalog.js';
import { readiness } from '../../src/model/readiness.js';
import { TenantIndex, type CheckRequest, type CheckResult } from '../../src/model/engine.js';
import { RequestError } from '../../src/model/request-error.js';
import { validateDocument } from '../../src/model/validate.js';
import type { Entry } from '../../src/model/types.js';
import {
  NOW, T, apply, binding, doc, group, indexWith, robot, role, tenantWith, user,
} from '../support/fixtures.js';

const check = (ix: TenantIndex, req: CheckRequest, now = NOW): CheckResult => ix.check(req, now);
const allowed = (ix: TenantIndex, req: CheckRequest, now = NOW): boolean => check(ix, req, now).allowed;
/** The `via` of every grant of a check, in the engine's order. */
const vias = (r: CheckResult): string[] => r.grants.map((g) => g.via);

/** Every permission a role holds, `Resource.Action`. */
const held = (roleName: string): string[] =>
  (builtInRole(roleName)?.permissions ?? []).flatMap((p) => p.actions.map((a) => `${p.resource}.${a}`));

/** A check of `permission` in `folder` when it is a folder permission, tenant-wide otherwise. */
const at = (u: string, permission: string, folder = 'Finance'): CheckRequest =>
  parsePermission(permission)!.scope === 'Folder' ? { user: u, permission, folder } : { user: u, permission };

describe('3.1 explicit and inherited grants, united', () => {
  const ix = indexWith(
    user('ann'),
    user('bob', { groups: ['ops'] }),
    user('cy', { groups: ['ops', 'auditors'] }),
    user('dee'),
    group('ops'),
    group('auditors'),
    binding('ann-viewer', 'folder-viewer', ['ann'], { folder: 'Finance' }),
    binding('ops-automation', 'automation-user', ['group:ops'], { folder: 'Finance' }),
    binding('bob-admin', 'folder-administrator', ['bob'], { folder: 'Finance' }),
    binding('auditors-analyst', 'analyst', ['group:auditors']),
  );

  test('a binding naming the User grants explicitly: via "user"', () => {
    const r = check(ix, { user: 'ann', permission: 'Jobs.View', folder: 'Finance' });
    expect(r).toEqual({
      allowed: true,
      user: 'ann',
      grants: [{ role: 'folder-viewer', binding: 'ann-viewer', via: 'user', folder: 'Finance' }],
    });
  });

  test('a binding naming a Group the user is in grants by inheritance: via "group:NAME"', () => {
    const r = check(ix, { user: 'cy', permission: 'Jobs.Create', folder: 'Finance' });
    expect(r.allowed).toBe(true);
    expect(r.grants).toEqual([{ role: 'automation-user', binding: 'ops-automation', via: 'group:ops', folder: 'Finance' }]);
  });

  test('rights are the union of explicit and inherited grants; every grant is listed, explicit first', () => {
    // bob: automation-user through ops, folder-administrator explicitly.
    const both = check(ix, { user: 'bob', permission: 'Jobs.Create', folder: 'Finance' });
    expect(both.allowed).toBe(true);
    expect(both.grants).toEqual([
      { role: 'folder-administrator', binding: 'bob-admin', via: 'user', folder: 'Finance' },
      { role: 'automation-user', binding: 'ops-automation', via: 'group:ops', folder: 'Finance' },
    ]);
    expect(vias(check(ix, { user: 'bob', permission: 'Assets.Delete', folder: 'Finance' }))).toEqual(['user']);
    expect(allowed(ix, { user: 'cy', permission: 'Assets.Delete', folder: 'Finance' })).toBe(false);
  });

  test('a member of several groups inherits from all of them', () => {
    expect(vias(check(ix, { user: 'cy', permission: 'Users.View' }))).toEqual(['group:auditors']);
    expect(vias(check(ix, { user: 'cy', permission: 'Jobs.View', folder: 'Finance' }))).toEqual(['group:auditors', 'group:ops']);
  });

  test('there is no deny rule: a narrower grant never takes away a wider one', () => {
    // bob is also folder-viewer: adding it must not reduce what folder-administrator allows.
    const more = indexWith(
      user('bob'),
      binding('bob-admin', 'folder-administrator', ['bob'], { folder: 'Finance' }),
      binding('bob-viewer', 'folder-viewer', ['bob'], { folder: 'Finance' }),
    );
    expect(allowed(more, { user: 'bob', permission: 'Processes.Delete', folder: 'Finance' })).toBe(true);
  });

  test('a user with none of these grants is denied, reason NoGrant', () => {
    expect(check(ix, { user: 'dee', permission: 'Jobs.View', folder: 'Finance' })).toEqual({
      allowed: false, grants: [], reason: 'NoGrant', user: 'dee',
    });
  });

  test('every user is a member of global: a binding to group global grants every user, groups or not', () => {
    const g = indexWith(
      user('ann'),
      user('bob', { groups: ['ops'] }),
      group('ops'),
      robot('bot-1'),
      binding('everyone-views-shared', 'folder-viewer', ['group:global'], { folder: 'Shared' }),
    );
    for (const u of ['ann', 'bob', 'bot-1']) {
      const r = check(g, { user: u, permission: 'Logs.View', folder: 'Shared/Reports' });
      expect(r.allowed).toBe(true);
      expect(r.grants).toContainEqual({ role: 'folder-viewer', binding: 'everyone-views-shared', via: 'group:global', folder: 'Shared' });
    }
    expect(g.who({ permission: 'Logs.View', folder: 'Shared' }, NOW).map((w) => w.user)).toEqual(['ann', 'bob', 'bot-1']);
  });

  test('listing global in spec.groups changes nothing (no duplicate grant)', () => {
    const g = indexWith(user('ann', { groups: ['global'] }), binding('all', 'folder-viewer', ['group:global'], { folder: 'A' }));
    expect(check(g, { user: 'ann', permission: 'Jobs.View', folder: 'A' }).grants).toHaveLength(1);
  });

  test('a group deleted from the tenant takes its inherited rights with it; explicit rights persist', () => {
    const state = tenantWith(
      user('ann', { groups: ['ops'] }),
      group('ops'),
      binding('ops-auto', 'automation-user', ['group:ops'], { folder: 'A' }),
      binding('ann-auto', 'automation-user', ['ann'], { folder: 'B' }),
    );
    const after = apply(state, [], { deletes: [{ kind: 'Group', name: 'ops' }] });
    const ix2 = new TenantIndex(after);
    expect(allowed(ix2, { user: 'ann', permission: 'Jobs.Create', folder: 'A' })).toBe(false);
    expect(allowed(ix2, { user: 'ann', permission: 'Jobs.Create', folder: 'B' })).toBe(true);
  });
});

describe('the John Smith example (seed 002): inherited Automation User, explicit Folder Administrator', () => {
  // Finance service: John is in the Automation Users group (automation-user on folders A and B)
  // and was explicitly granted Folder Administrator on folder A.
  const finance = indexWith(
    user('john', { email: 'John.Smith@example.com', fullName: 'John Smith', groups: ['automation-users'] }),
    group('automation-users', { displayName: 'Automation Users' }),
    binding('automation-users-a', 'automation-user', ['group:automation-users'], { folder: 'Folder A' }),
    binding('automation-users-b', 'automation-user', ['group:automation-users'], { folder: 'Folder B' }),
    binding('john-folder-admin-a', 'folder-administrator', ['john'], { folder: 'Folder A' }),
  );

  test('in folder A he holds both: Automation User (inherited) and Folder Administrator (explicit)', () => {
    const r = check(finance, { user: 'john.smith@example.com', permission: 'Jobs.Create', folder: 'Folder A' });
    expect(r.allowed).toBe(true);
    expect(r.grants).toEqual([
      { role: 'folder-administrator', binding: 'john-folder-admin-a', via: 'user', folder: 'Folder A' },
      { role: 'automation-user', binding: 'automation-users-a', via: 'group:automation-users', folder: 'Folder A' },
    ]);
    expect(check(finance, { user: 'john', permission: 'Processes.Delete', folder: 'Folder A' }).grants.map((g) => g.role)).toEqual(['folder-administrator']);
  });

  test('in folder B he is only an Automation User; in any other folder, nothing', () => {
    expect(vias(check(finance, { user: 'john', permission: 'Jobs.Create', folder: 'Folder B' }))).toEqual(['group:automation-users']);
    expect(allowed(finance, { user: 'john', permission: 'Processes.Delete', folder: 'Folder B' })).toBe(false);
    expect(allowed(finance, { user: 'john', permission: 'Jobs.View', folder: 'Folder C' })).toBe(false);
    expect(allowed(finance, { user: 'john', permission: 'Users.View' })).toBe(false);
  });

  test('"Check Permissions" lists both sources for folder A', () => {
    const rows = finance.permissions('john', NOW)!;
    const jobsCreate = rows.filter((r) => r.permission === 'Jobs.Create');
    expect(jobsCreate).toEqual(
      expect.arrayContaining([
        { permission: 'Jobs.Create', folder: 'Folder A', role: 'folder-administrator', binding: 'john-folder-admin-a', via: 'user' },
        { permission: 'Jobs.Create', folder: 'Folder A', role: 'automation-user', binding: 'automation-users-a', via: 'group:automation-users' },
        { permission: 'Jobs.Create', folder: 'Folder B', role: 'automation-user', binding: 'automation-users-b', via: 'group:automation-users' },
      ]),
    );
    expect(jobsCreate).toHaveLength(3);
  });

  test('HR service: Folder Administrator on D and E through Administrators, explicitly on F', () => {
    const hr = indexWith(
      user('john', { email: 'john.smith@example.com', groups: ['administrators'] }),
      group('administrators'),
      binding('admins-d', 'folder-administrator', ['group:administrators'], { folder: 'D' }),
      binding('admins-e', 'folder-administrator', ['group:administrators'], { folder: 'E' }),
      binding('john-f', 'folder-administrator', ['john'], { folder: 'F' }),
    );
    expect(vias(check(hr, { user: 'john', permission: 'Queues.Edit', folder: 'D' }))).toEqual(['group:administrators']);
    expect(vias(check(hr, { user: 'john', permission: 'Queues.Edit', folder: 'E' }))).toEqual(['group:administrators']);
    expect(vias(check(hr, { user: 'john', permission: 'Queues.Edit', folder: 'F' }))).toEqual(['user']);
    expect(allowed(hr, { user: 'john', permission: 'Queues.Edit', folder: 'G' })).toBe(false);
  });
});

describe('3.2 folders: a binding covers its folder and every subfolder, nothing else', () => {
  const ix = indexWith(
    user('ann'),
    user('bob'),
    binding('ann-finance', 'automation-user', ['ann'], { folder: 'Finance' }),
    binding('bob-invoices', 'automation-user', ['bob'], { folder: 'Finance/Invoices' }),
  );
  const jobs = (u: string, folder: string) => allowed(ix, { user: u, permission: 'Jobs.Create', folder });

  test('Finance covers Finance and everything below it', () => {
    expect(jobs('ann', 'Finance')).toBe(true);
    expect(jobs('ann', 'Finance/Invoices')).toBe(true);
    expect(jobs('ann', 'Finance/Invoices/2026/Q1/Week1/Day1/Run')).toBe(true);
    expect(check(ix, { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/Invoices' }).grants[0]!.folder).toBe('Finance');
  });

  test('Finance covers neither a prefix (Fin) nor a longer name (FinanceOld), nor Finance-like siblings', () => {
    expect(jobs('ann', 'Fin')).toBe(false);
    expect(jobs('ann', 'FinanceOld')).toBe(false);
    expect(jobs('ann', 'FinanceOld/Invoices')).toBe(false);
    expect(jobs('ann', 'Finance Old')).toBe(false);
    expect(jobs('ann', 'HR/Finance')).toBe(false);
  });

  test('Finance/Invoices covers neither its parent nor a sibling', () => {
    expect(jobs('bob', 'Finance/Invoices')).toBe(true);
    expect(jobs('bob', 'Finance/Invoices/2026')).toBe(true);
    expect(jobs('bob', 'Finance')).toBe(false);
    expect(jobs('bob', 'Finance/Payroll')).toBe(false);
    expect(jobs('bob', 'Finance/InvoicesOld')).toBe(false);
  });

  test('a check of a folder resource must name a folder: RequestError', () => {
    expect(() => ix.check({ user: 'ann', permission: 'Jobs.Create' }, NOW)).toThrow(RequestError);
    expect(() => ix.check({ user: 'ann', permission: 'Jobs.Create', folder: '' }, NOW)).toThrow(/folder resource: the check must name a folder/);
  });

  test('a check of a tenant resource must not name a folder: RequestError', () => {
    expect(() => ix.check({ user: 'ann', permission: 'Users.View', folder: 'Finance' }, NOW)).toThrow(RequestError);
    expect(() => ix.check({ user: 'ann', permission: 'Users.View', folder: 'Finance' }, NOW)).toThrow(/tenant resource: the check must not name a folder/);
  });

  test('malformed questions are RequestErrors, not denials, even for unknown users', () => {
    const bad: CheckRequest[] = [
      { user: 'ann', permission: 'Jobs.Run', folder: 'A' },
      { user: 'ann', permission: 'jobs.create', folder: 'A' },
      { user: 'ann', permission: 'Jobs', folder: 'A' },
      { user: 'ann', permission: 'Jobs.Create.Now', folder: 'A' },
      { user: 'ann', permission: '' },
      { user: 'ann', permission: 'Jobs.Create', folder: '/Finance' },
      { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/' },
      { user: 'ann', permission: 'Jobs.Create', folder: 'Finance//Invoices' },
      { user: 'ann', permission: 'Jobs.Create', folder: 'A/B/C/D/E/F/G/H' },
      { user: 'ann', permission: 'Jobs.Create', folder: 'A', resource: 'invoice-bot' },
      { user: 'ann', permission: 'Jobs.Create', folder: 'A', resource: 'Process/' },
      { user: 'ghost', permission: 'Nope.View' },
    ];
    for (const req of bad) {
      expect(() => ix.check(req, NOW)).toThrow(RequestError);
    }
    const e = (() => {
      try {
        ix.check({ user: 'ann', permission: 'Jobs.Run', folder: 'A' }, NOW);
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(Error);
    expect(e!.name).toBe('RequestError');
    expect(e!.message).toMatch(/unknown permission "Jobs.Run"/);
    expect(e!.message).not.toContain('\n');
  });

  test('seven levels are a valid folder path', () => {
    const deep = indexWith(user('ann'), binding('deep', 'folder-viewer', ['ann'], { folder: 'A/B/C/D/E/F/G' }));
    expect(allowed(deep, { user: 'ann', permission: 'Jobs.View', folder: 'A/B/C/D/E/F/G' })).toBe(true);
    expect(allowed(deep, { user: 'ann', permission: 'Jobs.View', folder: 'A/B/C/D/E/F' })).toBe(false);
  });
});

describe('3.3 resources and environment narrow a binding', () => {
  const ix = indexWith(
    user('ann'),
    user('bob'),
    user('cy'),
    binding('invoice-bot-only', 'automation-user', ['ann'], { folder: 'Finance', resources: [{ kind: 'Process', name: 'invoice-bot' }] }),
    binding('two-robots', 'automation-user', ['bob'], {
      folder: 'HR', resources: [{ kind: 'Robot', name: 'hr-01' }, { kind: 'Robot', name: 'hr-02' }],
    }),
    binding('staging-admin', 'folder-administrator', ['cy'], { folder: 'Apps', environment: 'staging' }),
    binding('staging-invoice', 'automation-user', ['cy'], {
      folder: 'Finance', environment: 'staging', resources: [{ kind: 'Process', name: 'invoice-bot' }],
    }),
    binding('anywhere', 'folder-viewer', ['cy'], { folder: 'Shared' }),
  );

  test('a binding with resources grants only checks naming one of them', () => {
    expect(allowed(ix, { user: 'ann', permission: 'Jobs.Create', folder: 'Finance', resource: 'Process/invoice-bot' })).toBe(true);
    expect(allowed(ix, { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/Sub', resource: 'Process/invoice-bot' })).toBe(true);
    expect(allowed(ix, { user: 'ann', permission: 'Jobs.Create', folder: 'Finance', resource: 'Process/payroll-bot' })).toBe(false);
    expect(allowed(ix, { user: 'ann', permission: 'Jobs.Create', folder: 'Finance', resource: 'Robot/invoice-bot' })).toBe(false);
  });

  test('a binding with resources grants nothing to a check naming no resource', () => {
    const r = check(ix, { user: 'ann', permission: 'Jobs.Create', folder: 'Finance' });
    expect(r).toMatchObject({ allowed: false, reason: 'NoGrant' });
  });

  test('any of several resources matches', () => {
    expect(allowed(ix, { user: 'bob', permission: 'Jobs.Create', folder: 'HR', resource: 'Robot/hr-01' })).toBe(true);
    expect(allowed(ix, { user: 'bob', permission: 'Jobs.Create', folder: 'HR', resource: 'Robot/hr-02' })).toBe(true);
    expect(allowed(ix, { user: 'bob', permission: 'Jobs.Create', folder: 'HR', resource: 'Robot/hr-03' })).toBe(false);
  });

  test('a binding without resources grants for every object, named or not', () => {
    expect(allowed(ix, { user: 'cy', permission: 'Jobs.View', folder: 'Shared', resource: 'Process/anything' })).toBe(true);
    expect(allowed(ix, { user: 'cy', permission: 'Jobs.View', folder: 'Shared' })).toBe(true);
  });

  test('a binding with environment grants only in that environment', () => {
    expect(allowed(ix, { user: 'cy', permission: 'Deployments.Create', folder: 'Apps', environment: 'staging' })).toBe(true);
    expect(allowed(ix, { user: 'cy', permission: 'Deployments.Create', folder: 'Apps', environment: 'production' })).toBe(false);
    expect(allowed(ix, { user: 'cy', permission: 'Deployments.Create', folder: 'Apps' })).toBe(false);
  });

  test('a binding without environment grants in every environment', () => {
    expect(allowed(ix, { user: 'cy', permission: 'Jobs.View', folder: 'Shared', environment: 'production' })).toBe(true);
  });

  test('resources and environment together: both must match', () => {
    const q = { user: 'cy', permission: 'Jobs.Create', folder: 'Finance' };
    expect(allowed(ix, { ...q, environment: 'staging', resource: 'Process/invoice-bot' })).toBe(true);
    expect(allowed(ix, { ...q, environment: 'production', resource: 'Process/invoice-bot' })).toBe(false);
    expect(allowed(ix, { ...q, environment: 'staging', resource: 'Process/other' })).toBe(false);
    expect(allowed(ix, { ...q, environment: 'staging' })).toBe(false);
  });

  test('narrowing applies to tenant resources as well', () => {
    const t = indexWith(
      user('ann'),
      role('robot-keeper', 'Tenant', ['Robots.View', 'Robots.Edit']),
      binding('hr-robot', 'robot-keeper', ['ann'], { resources: [{ kind: 'Robot', name: 'hr-01' }] }),
    );
    expect(allowed(t, { user: 'ann', permission: 'Robots.Edit', resource: 'Robot/hr-01' })).toBe(true);
    expect(allowed(t, { user: 'ann', permission: 'Robots.Edit', resource: 'Robot/hr-02' })).toBe(false);
    expect(allowed(t, { user: 'ann', permission: 'Robots.Edit' })).toBe(false);
  });
});

describe('3.4 expiresAt: after it, the binding grants nothing', () => {
  const expiresAt = '2026-06-30T00:00:00Z';
  const t = Date.parse(expiresAt);
  const ix = indexWith(user('ann'), binding('temp', 'folder-viewer', ['ann'], { folder: 'A', expiresAt }));
  const q = { user: 'ann', permission: 'Jobs.View', folder: 'A' };

  test('before and at the expiry it grants; after it, it does not', () => {
    expect(allowed(ix, q, t - 1)).toBe(true);
    expect(allowed(ix, q, t)).toBe(true);
    expect(check(ix, q, t + 1)).toEqual({ allowed: false, grants: [], reason: 'NoGrant', user: 'ann' });
  });

  test('an expired binding does not hide another one that still grants', () => {
    const two = indexWith(
      user('ann'),
      binding('temp', 'folder-viewer', ['ann'], { folder: 'A', expiresAt }),
      binding('perm', 'folder-viewer', ['ann'], { folder: 'A' }),
    );
    expect(check(two, q, t + 1).grants.map((g) => g.binding)).toEqual(['perm']);
  });

  test('time zones are honoured', () => {
    const tz = indexWith(user('ann'), binding('temp', 'folder-viewer', ['ann'], { folder: 'A', expiresAt: '2026-06-30T02:00:00+02:00' }));
    expect(allowed(tz, q, t)).toBe(true);
    expect(allowed(tz, q, t + 1)).toBe(false);
  });

  test('a leap-second expiry (23:59:60, valid RFC 3339) expires too, instead of granting forever', () => {
    const leap = indexWith(user('ann'), binding('temp', 'folder-viewer', ['ann'], { folder: 'A', expiresAt: '2026-12-31T23:59:60Z' }));
    const newYear = Date.parse('2027-01-01T00:00:00Z');
    expect(allowed(leap, q, newYear - 1000)).toBe(true);
    expect(allowed(leap, q, newYear + 1000)).toBe(false);
    expect(leap.permissions('ann', newYear + 1000)).toEqual([]);
    expect(readiness(tenantWith(user('ann'), binding('temp', 'folder-viewer', ['ann'], { folder: 'A', expiresAt: '2026-12-31T23:59:60Z' })), 'RoleBinding', 'temp', newYear + 1000).reason).toBe('Expired');
  });

  test('permissions() shows the expiry while it runs and drops the row afterwards', () => {
    expect(ix.permissions('ann', t - 1)!.find((r) => r.permission === 'Jobs.View')).toMatchObject({ expiresAt, binding: 'temp' });
    expect(ix.permissions('ann', t + 1)).toEqual([]);
  });

  test('readiness reports Expired', () => {
    const state = tenantWith(user('ann'), binding('temp', 'folder-viewer', ['ann'], { folder: 'A', expiresAt }));
    expect(readiness(state, 'RoleBinding', 'temp', t - 1)).toMatchObject({ ready: true });
    expect(readiness(state, 'RoleBinding', 'temp', t + 1)).toMatchObject({ ready: false, reason: 'Expired' });
  });
});

describe('3.4 denied always: unknown user, inactive user, missing role, missing group, no role', () => {
  test('an unknown user is denied with UserNotFound and no user name', () => {
    const ix = indexWith(user('ann'), binding('all', 'administrator', ['group:global']));
    expect(check(ix, { user: 'ghost', permission: 'Users.View' })).toEqual({ allowed: false, grants: [], reason: 'UserNotFound' });
    expect(check(ix, { user: 'ghost@example.com', permission: 'Users.View' }).reason).toBe('UserNotFound');
    expect(ix.permissions('ghost', NOW)).toBeUndefined();
  });

  test('an inactive user is denied everything, whatever the bindings say', () => {
    const state = tenantWith(
      user('ann', { groups: ['ops'] }),
      group('ops'),
      binding('ann-admin', 'administrator', ['ann']),
      binding('ops-admin', 'folder-administrator', ['group:ops'], { folder: 'A' }),
      binding('all', 'analyst', ['group:global']),
    );
    // The planner refuses an inactive administrator (contract 4.6); a store written before that
    // rule may still hold one, and the engine denies them everything all the same.
    state.users.set('ann', user('ann', { active: false, groups: ['ops'] }));
    const ix = new TenantIndex(state);
    for (const permission of ALL_PERMISSIONS) {
      expect(check(ix, at('ann', permission))).toEqual({ allowed: false, grants: [], reason: 'UserInactive', user: 'ann' });
    }
    expect(ix.permissions('ann', NOW)).toEqual([]);
    expect(ix.who({ permission: 'Users.View' }, NOW)).toEqual([]);
  });

  test('an inactive Robot user loses its implicit robot role too', () => {
    const ix = indexWith(robot('bot', { active: false }));
    expect(check(ix, { user: 'bot', permission: 'Jobs.Edit', folder: 'A' }).reason).toBe('UserInactive');
  });

  test('a binding whose role does not exist grants nothing, until the role appears', () => {
    const state = tenantWith(user('ann'), binding('dangling', 'invoice-clerk', ['ann'], { folder: 'A' }));
    expect(check(new TenantIndex(state), { user: 'ann', permission: 'Jobs.View', folder: 'A' })).toMatchObject({ allowed: false, reason: 'NoGrant' });
    expect(readiness(state, 'RoleBinding', 'dangling', NOW)).toMatchObject({ ready: false, reason: 'RoleNotFound' });
    expect(readiness(state, 'RoleBinding', 'dangling', NOW).message).toContain('"invoice-clerk"');

    const later = apply(state, [role('invoice-clerk', 'Folder', ['Jobs.View'])]);
    expect(allowed(new TenantIndex(later), { user: 'ann', permission: 'Jobs.View', folder: 'A' })).toBe(true);
    expect(readiness(later, 'RoleBinding', 'dangling', NOW)).toMatchObject({ ready: true, reason: 'Applied' });
  });

  test('a user in a group that does not exist inherits nothing from it, until it appears', () => {
    const state = tenantWith(
      user('ann', { groups: ['night-shift'] }),
      binding('night', 'automation-user', ['group:night-shift'], { folder: 'A' }),
    );
    expect(allowed(new TenantIndex(state), { user: 'ann', permission: 'Jobs.Create', folder: 'A' })).toBe(false);
    expect(readiness(state, 'User', 'ann', NOW)).toMatchObject({ ready: false, reason: 'GroupNotFound' });
    expect(readiness(state, 'User', 'ann', NOW).message).toContain('"night-shift"');
    expect(readiness(state, 'RoleBinding', 'night', NOW)).toMatchObject({ ready: false, reason: 'SubjectNotFound' });

    const later = apply(state, [group('night-shift')]);
    expect(vias(check(new TenantIndex(later), { user: 'ann', permission: 'Jobs.Create', folder: 'A' }))).toEqual(['group:night-shift']);
    expect(readiness(later, 'User', 'ann', NOW).ready).toBe(true);
    expect(readiness(later, 'RoleBinding', 'night', NOW).ready).toBe(true);
  });

  test('a binding to a user that does not exist yet reports SubjectNotFound and grants once the user appears', () => {
    const state = tenantWith(binding('early', 'folder-viewer', ['newcomer', 'group:ghosts'], { folder: 'A' }));
    const r = readiness(state, 'RoleBinding', 'early', NOW);
    expect(r).toMatchObject({ ready: false, reason: 'SubjectNotFound' });
    expect(r.message).toContain('User "newcomer"');
    expect(r.message).toContain('Group "ghosts"');
    const later = new TenantIndex(apply(state, [user('newcomer')]));
    expect(allowed(later, { user: 'newcomer', permission: 'Jobs.View', folder: 'A' })).toBe(true);
  });

  test('readiness of objects that are fine, inactive or absent', () => {
    const state = tenantWith(user('ann'), user('old', { active: false }));
    expect(readiness(state, 'User', 'ann', NOW)).toMatchObject({ ready: true, reason: 'Applied' });
    expect(readiness(state, 'User', 'old', NOW)).toMatchObject({ ready: true, reason: 'Inactive' });
    expect(readiness(state, 'Group', 'global', NOW).ready).toBe(true);
    expect(readiness(state, 'Role', 'owner', NOW).ready).toBe(true);
    expect(readiness(state, 'User', 'nobody', NOW)).toMatchObject({ ready: false, reason: 'NotInStore' });
  });

  test('a user without any role can do nothing', () => {
    const ix = indexWith(user('ann'), user('bob'), binding('bob-admin', 'administrator', ['bob']));
    for (const permission of ALL_PERMISSIONS) {
      expect(check(ix, at('ann', permission))).toEqual({ allowed: false, grants: [], reason: 'NoGrant', user: 'ann' });
    }
    expect(ix.permissions('ann', NOW)).toEqual([]);
  });
});

describe('built-in roles', () => {
  const holders = ['owner', 'administrator', 'developer', 'operator', 'analyst', 'billing-contact', 'robot'];
  const ix = indexWith(
    ...holders.map((r) => user(`${r}-holder`)),
    ...holders.map((r) => binding(`${r}-binding`, r, [`${r}-holder`])),
  );
  const folders = ['A', 'Finance/Invoices', 'A/B/C/D/E/F/G'];

  test.each(['owner', 'administrator', 'developer', 'operator', 'analyst', 'robot'])(
    'tenant role %s reaches its folder permissions in every folder, tenant-wide',
    (name) => {
      const folderPerms = held(name).filter((p) => parsePermission(p)!.scope === 'Folder');
      expect(folderPerms.length).toBeGreaterThan(0);
      for (const permission of folderPerms) {
        for (const folder of folders) {
          const r = check(ix, { user: `${name}-holder`, permission, folder });
          expect(r.allowed).toBe(true);
          expect(r.grants).toEqual([{ role: name, binding: `${name}-binding`, via: 'user', folder: null }]);
        }
      }
    },
  );

  test.each(holders)('tenant role %s grants exactly what it holds and nothing else', (name) => {
    const mine = new Set(held(name));
    for (const permission of ALL_PERMISSIONS) {
      expect([permission, allowed(ix, at(`${name}-holder`, permission, 'Any/Folder'))]).toEqual([permission, mine.has(permission)]);
    }
  });

  test('owner and administrator hold everything; analyst View on everything and nothing else', () => {
    expect(new Set(held('owner'))).toEqual(new Set(ALL_PERMISSIONS));
    expect(new Set(held('administrator'))).toEqual(new Set(ALL_PERMISSIONS));
    expect(new Set(held('analyst'))).toEqual(new Set(ALL_PERMISSIONS.filter((p) => p.endsWith('.View'))));
    expect(held('billing-contact').every((p) => p.startsWith('Billing.'))).toBe(true);
    expect(held('billing-contact')).toContain('Billing.View');
  });

  test('folder roles: folder-administrator every folder permission, folder-viewer View only, automation-user starts jobs', () => {
    const folderPerms = FOLDER_RESOURCES.flatMap((r) => ACTIONS.map((a) => `${r}.${a}`));
    expect(new Set(held('folder-administrator'))).toEqual(new Set(folderPerms));
    expect(new Set(held('folder-viewer'))).toEqual(new Set(FOLDER_RESOURCES.map((r) => `${r}.View`)));
    expect(held('automation-user')).toEqual(expect.arrayContaining(['Processes.View', 'Jobs.View', 'Jobs.Create']));
    for (const r of BUILT_IN_ROLES.filter((x) => x.scope === 'Folder')) {
      expect(r.permissions.every((p) => (FOLDER_RESOURCES as readonly string[]).includes(p.resource))).toBe(true);
    }
    const f = indexWith(user('ann'), binding('fa', 'folder-administrator', ['ann'], { folder: 'A' }));
    expect(allowed(f, { user: 'ann', permission: 'Deployments.Create', folder: 'A/B' })).toBe(true);
    expect(allowed(f, { user: 'ann', permission: 'Deployments.Create', folder: 'B' })).toBe(false);
    expect(allowed(f, { user: 'ann', permission: 'Folders.View' })).toBe(false);
  });

  test('a custom Tenant role cannot be made to reach folder resources: validation refuses it', () => {
    const r = validateDocument(doc('Role', 'jobs-everywhere', { scope: 'Tenant', permissions: [{ resource: 'Jobs', actions: ['Create'] }] }));
    expect(r.document).toBeUndefined();
    expect(r.problems).toEqual([
      'spec.permissions[0].resource: Jobs is a folder resource; a Tenant role may name only tenant resources',
    ]);
  });

  test('a custom Tenant role is bound without a folder and grants its tenant permissions only', () => {
    const t = indexWith(user('ann'), role('user-admin', 'Tenant', ['Users.View', 'Users.Edit']), binding('ua', 'user-admin', ['ann']));
    expect(vias(check(t, { user: 'ann', permission: 'Users.Edit' }))).toEqual(['user']);
    expect(allowed(t, { user: 'ann', permission: 'Users.Delete' })).toBe(false);
  });

  test('even a Tenant role that names folder resources (bypassing validation) reaches no folder', () => {
    // Defense in depth: the engine only lets built-in tenant roles reach folders.
    const sneaky: Entry<'Role'> = {
      kind: 'Role', name: 'sneaky', origin: 'user',
      spec: { scope: 'Tenant', permissions: [{ resource: 'Jobs', actions: ['Create'] }, { resource: 'Users', actions: ['View'] }] },
    };
    const t = indexWith(user('ann'), sneaky, binding('s', 'sneaky', ['ann']));
    expect(allowed(t, { user: 'ann', permission: 'Jobs.Create', folder: 'A' })).toBe(false);
    expect(allowed(t, { user: 'ann', permission: 'Users.View' })).toBe(true);
    expect(t.permissions('ann', NOW)!.map((r) => r.permission)).toEqual(['Users.View']);
  });

  test('a custom Folder role grants in its folder subtree', () => {
    const t = indexWith(user('ann'), role('queue-worker', 'Folder', ['Queues.View', 'Queues.Edit']), binding('qw', 'queue-worker', ['ann'], { folder: 'Ops' }));
    expect(allowed(t, { user: 'ann', permission: 'Queues.Edit', folder: 'Ops/Night' })).toBe(true);
    expect(allowed(t, { user: 'ann', permission: 'Queues.Edit', folder: 'Dev' })).toBe(false);
    expect(allowed(t, { user: 'ann', permission: 'Queues.Delete', folder: 'Ops' })).toBe(false);
  });
});

describe('Robot users hold the robot role implicitly', () => {
  const ix = indexWith(robot('hr-bot'), user('ann'), binding('bot-extra', 'folder-viewer', ['hr-bot'], { folder: 'HR' }));

  test('without any binding, in every folder, with binding null', () => {
    const r = check(ix, { user: 'hr-bot', permission: 'Jobs.Edit', folder: 'Anywhere/Deep' });
    expect(r).toEqual({ allowed: true, user: 'hr-bot', grants: [{ role: 'robot', binding: null, via: 'user', folder: null }] });
    expect(allowed(ix, { user: 'hr-bot', permission: 'Robots.View' })).toBe(true);
    expect(allowed(ix, { user: 'hr-bot', permission: 'Users.View' })).toBe(false);
    expect(allowed(ix, { user: 'hr-bot', permission: 'Deployments.Create', folder: 'HR' })).toBe(false);
  });

  test('a Human user does not', () => {
    expect(allowed(ix, { user: 'ann', permission: 'Jobs.Edit', folder: 'A' })).toBe(false);
  });

  test('bindings add to it (union)', () => {
    const r = check(ix, { user: 'hr-bot', permission: 'Processes.View', folder: 'HR' });
    expect(r.grants).toEqual([
      { role: 'folder-viewer', binding: 'bot-extra', via: 'user', folder: 'HR' },
      { role: 'robot', binding: null, via: 'user', folder: null },
    ]);
    expect(allowed(ix, { user: 'hr-bot', permission: 'Deployments.View', folder: 'HR' })).toBe(true);
  });

  test('permissions() lists the implicit rows with binding null', () => {
    const rows = ix.permissions('hr-bot', NOW)!;
    expect(rows).toContainEqual({ permission: 'Jobs.Edit', folder: null, role: 'robot', binding: null, via: 'user' });
    expect(rows.filter((r) => r.binding === null).map((r) => r.permission).sort()).toEqual([...held('robot')].sort());
  });
});

describe('users are found by name or by email, case-insensitively', () => {
  const ix = indexWith(user('john', { email: 'John.Smith@Example.com' }), binding('j', 'analyst', ['john']));

  test.each(['john', 'John.Smith@Example.com', 'john.smith@example.com', 'JOHN.SMITH@EXAMPLE.COM'])('%s', (ref) => {
    const r = check(ix, { user: ref, permission: 'Users.View' });
    expect(r).toMatchObject({ allowed: true, user: 'john' });
    expect(ix.permissions(ref, NOW)!.length).toBeGreaterThan(0);
  });

  test('object names are exact', () => {
    expect(check(ix, { user: 'John', permission: 'Users.View' }).reason).toBe('UserNotFound');
    expect(ix.findUser('JOHN')).toBeUndefined();
    expect(ix.findUser('john.smith@EXAMPLE.com')?.name).toBe('john');
  });
});

describe('permissions(): effective permissions with provenance', () => {
  const ix = indexWith(
    user('ann', { groups: ['ops'] }),
    group('ops'),
    role('user-admin', 'Tenant', ['Users.View', 'Users.Edit']),
    binding('ua', 'user-admin', ['ann']),
    binding('ops-auto', 'automation-user', ['group:ops'], { folder: 'Finance', environment: 'prod', resources: [{ kind: 'Process', name: 'invoice-bot' }] }),
    binding('all-view', 'folder-viewer', ['group:global'], { folder: 'Shared', expiresAt: '2027-01-01T00:00:00Z' }),
  );
  const rows = ix.permissions('ann', NOW)!;

  test('one row per permission and grant, with role, binding, via and folder (null tenant-wide)', () => {
    expect(rows).toContainEqual({ permission: 'Users.Edit', folder: null, role: 'user-admin', binding: 'ua', via: 'user' });
    expect(rows).toContainEqual({
      permission: 'Jobs.Create', folder: 'Finance', role: 'automation-user', binding: 'ops-auto', via: 'group:ops',
      environment: 'prod', resources: [{ kind: 'Process', name: 'invoice-bot' }],
    });
    expect(rows).toContainEqual({
      permission: 'Logs.View', folder: 'Shared', role: 'folder-viewer', binding: 'all-view', via: 'group:global', expiresAt: '2027-01-01T00:00:00Z',
    });
    const automation = held('automation-user').length;
    expect(rows).toHaveLength(2 + automation + FOLDER_RESOURCES.length);
  });

  test('rows come in catalog order (tenant permissions first)', () => {
    const order = rows.map((r) => ALL_PERMISSIONS.indexOf(r.permission));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(TENANT_RESOURCES.some((t) => rows[0]!.permission.startsWith(`${t}.`))).toBe(true);
  });

  test('every row is a grant that a check confirms', () => {
    for (const row of rows) {
      const req: CheckRequest = { user: 'ann', permission: row.permission };
      if (row.folder !== null) req.folder = row.folder;
      if (row.resources) req.resource = `${row.resources[0]!.kind}/${row.resources[0]!.name}`;
      if (row.environment) req.environment = row.environment;
      expect(check(ix, req).grants).toContainEqual({ role: row.role, binding: row.binding, via: row.via, folder: row.folder });
    }
  });

  test('tenant roles reaching folders list folder permissions with folder null', () => {
    const dev = indexWith(user('dev'), binding('d', 'developer', ['dev']));
    expect(dev.permissions('dev', NOW)).toContainEqual({ permission: 'Deployments.Create', folder: null, role: 'developer', binding: 'd', via: 'user' });
  });
});

describe('who(): everyone allowed, each with what allows them', () => {
  const ix = indexWith(
    user('ann'),
    user('bob', { groups: ['ops'] }),
    user('cy'),
    user('old', { active: false }),
    group('ops'),
    binding('ann-admin', 'administrator', ['ann']),
    binding('ops-auto', 'automation-user', ['group:ops', 'old'], { folder: 'Finance' }),
    binding('cy-bot', 'automation-user', ['cy'], { folder: 'Finance', resources: [{ kind: 'Process', name: 'invoice-bot' }] }),
  );

  test('lists allowed users by name, with grants; inactive and ungranted users are absent', () => {
    expect(ix.who({ permission: 'Jobs.Create', folder: 'Finance/Invoices' }, NOW)).toEqual([
      { user: 'ann', grants: [{ role: 'administrator', binding: 'ann-admin', via: 'user', folder: null }] },
      { user: 'bob', grants: [{ role: 'automation-user', binding: 'ops-auto', via: 'group:ops', folder: 'Finance' }] },
    ]);
  });

  test('honours resources', () => {
    expect(ix.who({ permission: 'Jobs.Create', folder: 'Finance', resource: 'Process/invoice-bot' }, NOW).map((w) => w.user)).toEqual(['ann', 'bob', 'cy']);
  });

  test('tenant permissions', () => {
    expect(ix.who({ permission: 'Users.Delete' }, NOW).map((w) => w.user)).toEqual(['ann']);
  });

  test('malformed questions throw RequestError', () => {
    expect(() => ix.who({ permission: 'Jobs.Create' }, NOW)).toThrow(RequestError);
    expect(() => ix.who({ permission: 'Users.View', folder: 'A' }, NOW)).toThrow(RequestError);
  });
});

test('the index is built per tenant from its state and reports its tenant', () => {
  const ix = new TenantIndex(tenantWith(user('ann')), 7);
  expect(ix.tenant).toBe(T);
  expect(ix.revision).toBe(7);
  expect(ix.userNames()).toEqual(['ann']);
});

describe('withChanges: an index derived from the previous one and a delta decides as a fresh build', () => {
  const start = tenantWith(
    user('ann', { groups: ['ops', 'ops', 'global'] }),
    user('bob', { email: 'Bob@Example.com' }),
    robot('bot-1'),
    group('ops'),
    role('job-runner', 'Folder', ['Jobs.View', 'Jobs.Create']),
    binding('ops-run', 'job-runner', ['group:ops'], { folder: 'A' }),
    binding('bob-run', 'job-runner', ['bob', 'bob'], { folder: 'B', environment: 'prod' }),
    binding('all-view', 'folder-viewer', ['group:global'], { folder: 'Shared', expiresAt: '2027-01-01T00:00:00Z' }),
    binding('ann-admin', 'administrator', ['ann']),
  );
  /** Every user's effective permissions and a few who() answers: what decisions depend on. */
  const decisions = (ix: TenantIndex) => ({
    users: ix.userNames(),
    permissions: ix.userNames().map((u) => [u, (ix.permissions(u, NOW) ?? []).map((r) => JSON.stringify(r)).sort()]),
    who: [
      ix.who({ permission: 'Jobs.Create', folder: 'A/B' }, NOW),
      ix.who({ permission: 'Jobs.Create', folder: 'B', environment: 'prod' }, NOW),
      ix.who({ permission: 'Logs.View', folder: 'Shared' }, NOW),
      ix.who({ permission: 'Users.Delete' }, NOW),
    ],
    byEmail: ['ann@example.com', 'bob@example.com', 'BOB@EXAMPLE.COM', 'robert@example.com', 'carl@example.com'].map((e) => ix.findUser(e)?.name ?? null),
  });
  type Step = { upserts?: Parameters<typeof apply>[1]; deletes?: { kind: 'User' | 'Group' | 'Role' | 'RoleBinding'; name: string }[] };
  const steps: [string, Step][] = [
    ['a binding updated (new subjects, new folder)', { upserts: [binding('ops-run', 'job-runner', ['group:ops', 'bob'], { folder: 'A/B' })] }],
    ['a binding deleted', { deletes: [{ kind: 'RoleBinding', name: 'bob-run' }] }],
    ['a user created, another changes email and groups', { upserts: [user('carl', { groups: ['ops'] }), user('bob', { email: 'robert@example.com', groups: ['ops'] })] }],
    ['a group deleted, then its bindings grant nothing', { deletes: [{ kind: 'Group', name: 'ops' }] }],
    ['a group created again', { upserts: [group('ops')] }],
    ['a role changed: its bindings recompiled', { upserts: [role('job-runner', 'Folder', ['Jobs.View'])] }],
    ['a user deactivated, a user deleted', { upserts: [user('carl', { groups: ['ops'], active: false })], deletes: [{ kind: 'User', name: 'bob' }] }],
    ['a binding to a missing role, then the role', { upserts: [binding('late', 'late-role', ['ann'], { folder: 'L' })] }],
    ['...the role appears', { upserts: [role('late-role', 'Folder', ['Queues.View'])] }],
  ];

  test.each(steps.map((s, i) => [i, s[0]] as const))('step %i: %s', (i) => {
    let state = start;
    let ix = new TenantIndex(state, 1);
    for (let k = 0; k <= i; k++) {
      const { upserts = [], deletes = [] } = steps[k]![1];
      const next = apply(state, upserts, { deletes });
      // The delta as the store reports it: every entry that is new or different, every name gone.
      const changed = [...(['users', 'groups', 'roles', 'bindings'] as const)].flatMap((m) =>
        [...next[m].values()].filter((e) => state[m].get(e.name) !== e),
      );
      const gone = [...(['users', 'groups', 'roles', 'bindings'] as const)].flatMap((m) =>
        [...state[m].values()].filter((e) => !next[m].has(e.name)).map((e) => ({ kind: e.kind, name: e.name })),
      );
      const before = decisions(ix);
      const derived = ix.withChanges({ upserts: changed, deletes: gone }, k + 2);
      expect(decisions(ix)).toEqual(before); // the previous index is untouched
      expect(derived.revision).toBe(k + 2);
      expect(derived.bindingCount).toBe(next.bindings.size);
      expect(decisions(derived)).toEqual(decisions(new TenantIndex(next, k + 2)));
      state = next;
      ix = derived;
    }
  });

  test('an empty delta, and deletes of objects it does not have, change nothing', () => {
    const ix = new TenantIndex(start, 3);
    const same = ix.withChanges({ upserts: [], deletes: [{ kind: 'RoleBinding', name: 'nope' }, { kind: 'User', name: 'nobody' }] }, 4);
    expect(decisions(same)).toEqual(decisions(ix));
  });
});

test('withChanges over many revisions (the overlay merged into a new base on the way) still decides as a fresh build', () => {
  let ix = new TenantIndex(tenantWith(user('ann'), group('ops'), binding('ops-view', 'folder-viewer', ['group:ops'], { folder: 'A' })), 1);
  const fresh = () => new TenantIndex(ix.toState(), ix.revision);
  const answers = (x: TenantIndex) =>
    x.userNames().map((u) => [u, x.check({ user: u, permission: 'Jobs.View', folder: 'A/B' }, NOW).grants, x.check({ user: u, permission: 'Users.Delete' }, NOW).allowed]);
  for (let i = 0; i < 700; i++) {
    const u = user(`u${i % 300}`, { groups: i % 3 === 0 ? ['ops'] : [] });
    const upserts = [u, binding(`b${i % 250}`, 'administrator', [`u${i % 300}`])];
    const deletes = i % 5 === 4 ? [{ kind: 'User', name: `u${(i + 7) % 300}` }, { kind: 'RoleBinding', name: `b${(i + 3) % 250}` }] : [];
    ix = ix.withChanges({ upserts, deletes }, i + 2);
    if (i % 175 === 174) expect(answers(ix)).toEqual(answers(fresh()));
  }
  expect(ix.bindingCount).toBe(ix.toState().bindings.size);
  expect(ix.objectCount).toBe(fresh().objectCount);
});
