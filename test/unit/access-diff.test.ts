// The effective-access comparison of src/model/access-diff.ts: who gains and loses what when a
// plan is applied, answered by the engine on both sides. Each case also checks which users
// were compared: a change must reach its users (and only those), or gains would go unseen.
import { affectedUsers, diffPlanAccess, type TenantAccessDiff } from '../../src/model/access-diff.js';
import type { AnyEntry, TenantState } from '../../src/model/types.js';
import { NOW, binding, group, plan, robot, role, tenantWith, user } from '../support/fixtures.js';

const base = (): TenantState =>
  tenantWith(
    user('ann', { groups: ['ops'] }),
    user('bob', { groups: ['ops'] }),
    user('cat'),
    robot('bot-1'),
    group('ops'),
    role('job-starter', 'Folder', ['Jobs.View', 'Jobs.Create']),
    binding('ops-payments', 'job-starter', ['group:ops'], { folder: 'Finance/Payments' }),
    binding('cat-invoices', 'folder-viewer', ['cat'], { folder: 'Finance/Invoices' }),
  );

/** `user +|- Permission@folder (role/binding/via)`, sorted: the whole answer in a comparable form. */
function lines(d: TenantAccessDiff): string[] {
  return d.users
    .flatMap((u) => [
      ...u.gained.map((r) => `${u.user} + ${r.permission}@${r.folder ?? '-'} (${r.role}/${r.binding}/${r.via})`),
      ...u.lost.map((r) => `${u.user} - ${r.permission}@${r.folder ?? '-'} (${r.role}/${r.binding}/${r.via})`),
    ])
    .sort();
}

function diff(current: TenantState, upserts: AnyEntry[], options: { prune?: boolean; deletes?: { kind: 'User' | 'Group' | 'Role' | 'RoleBinding'; name: string }[] } = {}): TenantAccessDiff {
  const p = plan(current, upserts, options);
  expect(p.violations).toEqual([]);
  return diffPlanAccess(p, { now: NOW });
}

test('moving a group binding to another folder: every member loses the old folder and gains the new one', () => {
  const d = diff(base(), [binding('ops-payments', 'job-starter', ['group:ops'], { folder: 'Finance/Receivables' })]);
  expect(lines(d)).toEqual([
    'ann + Jobs.View@Finance/Receivables (job-starter/ops-payments/group:ops)',
    'ann + Jobs.Create@Finance/Receivables (job-starter/ops-payments/group:ops)',
    'ann - Jobs.View@Finance/Payments (job-starter/ops-payments/group:ops)',
    'ann - Jobs.Create@Finance/Payments (job-starter/ops-payments/group:ops)',
    'bob + Jobs.View@Finance/Receivables (job-starter/ops-payments/group:ops)',
    'bob + Jobs.Create@Finance/Receivables (job-starter/ops-payments/group:ops)',
    'bob - Jobs.View@Finance/Payments (job-starter/ops-payments/group:ops)',
    'bob - Jobs.Create@Finance/Payments (job-starter/ops-payments/group:ops)',
  ].sort());
  expect(d.usersCompared).toBe(2);
});

test('a grant already covered by a parent folder or a wider grant is no gain; its removal is no loss', () => {
  const current = tenantWith(user('ann'), binding('ann-finance', 'folder-administrator', ['ann'], { folder: 'Finance' }));
  const added = diff(current, [binding('ann-payments', 'automation-user', ['ann'], { folder: 'Finance/Payments' })]);
  expect(added.users).toEqual([]);
  expect(added.usersCompared).toBe(1);
  const narrowed = diff(current, [binding('ann-finance', 'folder-administrator', ['ann'], { folder: 'Finance', environment: 'staging' })]);
  // Everywhere in Finance became staging only: every row is lost, and the staging rows are gained.
  expect(narrowed.users[0]!.lost.length).toBeGreaterThan(0);
  expect(narrowed.users[0]!.lost.every((r) => r.environment === undefined)).toBe(true);
  expect(narrowed.users[0]!.gained.every((r) => r.environment === 'staging')).toBe(true);
});

test('a binding of global reaches every user; a changed role reaches its holders only', () => {
  const current = base();
  const d = diff(current, [binding('everyone-reads', 'analyst', ['group:global'])]);
  expect(d.usersCompared).toBe(4);
  expect(d.users.map((u) => u.user)).toEqual(['ann', 'bob', 'bot-1', 'cat']);
  expect(d.users.every((u) => u.gained.some((r) => r.permission === 'Users.View' && r.via === 'group:global'))).toBe(true);

  const r = diff(current, [role('job-starter', 'Folder', ['Jobs.View'])]);
  expect(affectedUsers(current, plan(current, [role('job-starter', 'Folder', ['Jobs.View'])]).next, plan(current, [role('job-starter', 'Folder', ['Jobs.View'])]).changes)).toEqual(new Set(['ann', 'bob']));
  expect(lines(r)).toEqual(['ann - Jobs.Create@Finance/Payments (job-starter/ops-payments/group:ops)', 'bob - Jobs.Create@Finance/Payments (job-starter/ops-payments/group:ops)']);
});

test('deactivating, deleting and creating users: all their rights, and what happened to them', () => {
  const current = base();
  const deactivated = diff(current, [user('ann', { groups: ['ops'], active: false })]);
  expect(deactivated.users).toHaveLength(1);
  expect(deactivated.users[0]).toMatchObject({ user: 'ann', lifecycle: 'deactivated', gained: [] });
  expect(deactivated.users[0]!.lost.map((r) => r.permission).sort()).toEqual(['Jobs.Create', 'Jobs.View']);

  const deleted = diff(current, [], { deletes: [{ kind: 'User', name: 'cat' }] });
  expect(deleted.users).toEqual([expect.objectContaining({ user: 'cat', lifecycle: 'deleted', gained: [] })]);
  expect(deleted.users[0]!.lost.every((r) => r.role === 'folder-viewer' && r.folder === 'Finance/Invoices')).toBe(true);

  const created = diff(current, [user('dan', { groups: ['ops'] })]);
  expect(lines(created)).toEqual(['dan + Jobs.Create@Finance/Payments (job-starter/ops-payments/group:ops)', 'dan + Jobs.View@Finance/Payments (job-starter/ops-payments/group:ops)']);
  expect(created.users[0]!.lifecycle).toBe('created');
});

test('a changed robot role reaches every Robot user, who holds it implicitly', () => {
  const current = base();
  const p = plan(current, []);
  expect(affectedUsers(current, p.next, [{ tenant: 'finance', kind: 'Role', name: 'robot', action: 'updated' }])).toEqual(new Set(['bot-1']));
});

test('a document that changes nothing compares nobody', () => {
  const current = base();
  const d = diff(current, [user('cat')]);
  expect(d).toEqual({ tenant: 'finance', users: [], usersCompared: 0 });
});

test('a narrowing to objects or a shorter expiry is a loss of the wider grant', () => {
  const current = tenantWith(user('ann'), binding('ann-jobs', 'automation-user', ['ann'], { folder: 'Shared', expiresAt: '2030-01-01T00:00:00Z' }));
  const shorter = diff(current, [binding('ann-jobs', 'automation-user', ['ann'], { folder: 'Shared', expiresAt: '2027-01-01T00:00:00Z' })]);
  expect(shorter.users[0]!.lost.every((r) => r.expiresAt === '2030-01-01T00:00:00Z')).toBe(true);
  expect(shorter.users[0]!.gained).toEqual([]); // the shorter grant is covered by the longer one it replaces
  const longer = diff(current, [binding('ann-jobs', 'automation-user', ['ann'], { folder: 'Shared' })]);
  expect(longer.users[0]!.lost).toEqual([]);
  expect(longer.users[0]!.gained.every((r) => r.expiresAt === undefined)).toBe(true);
  const objects = diff(current, [binding('ann-jobs', 'automation-user', ['ann'], { folder: 'Shared', expiresAt: '2030-01-01T00:00:00Z', resources: [{ kind: 'Process', name: 'p1' }] })]);
  expect(objects.users[0]!.gained).toEqual([]);
  expect(objects.users[0]!.lost.every((r) => r.resources === undefined)).toBe(true);
});
