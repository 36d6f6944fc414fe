// The access matrix (users × folders, strongest role per cell) is computed from the engine's
// effective permissions: these tests pin what "strongest" means and that every cell agrees with
// what a check would answer.
import { ALL_PERMISSIONS, parsePermission } from '../../src/model/catalog.js';
import { MAX_MATRIX_FOLDER_LIMIT, MAX_MATRIX_LIMIT, accessMatrix, parseMatrixQuery, strongestRoles } from '../../src/model/access-matrix.js';
import { RequestError } from '../../src/model/request-error.js';
import { NOW, binding, group, indexWith, role, user } from '../support/fixtures.js';

const FOLDER_PERMISSIONS = ALL_PERMISSIONS.filter((p) => parsePermission(p)!.scope === 'Folder');

const index = () =>
  indexWith(
    user('ann'),
    user('bob', { groups: ['ops'] }),
    user('cy', { active: false }),
    user('dee'),
    user('eve'),
    group('ops'),
    role('job-starter', 'Folder', ['Jobs.View', 'Jobs.Create']),
    binding('ann-admin', 'administrator', ['ann']),
    binding('ops-auto', 'automation-user', ['group:ops'], { folder: 'Finance' }),
    binding('bob-viewer', 'folder-viewer', ['bob'], { folder: 'Finance/Payments' }),
    binding('bob-fa', 'folder-administrator', ['bob'], { folder: 'HR' }),
    binding('cy-fa', 'folder-administrator', ['cy'], { folder: 'Finance' }),
    binding('dee-jobs', 'job-starter', ['dee'], { folder: 'Finance/Payments', environment: 'prod' }),
    binding('eve-old', 'folder-administrator', ['eve'], { folder: 'Finance', expiresAt: '2026-01-01T00:00:00Z' }),
  );

describe('accessMatrix', () => {
  const m = accessMatrix(index(), { now: NOW });
  const row = (u: string) => m.users.find((r) => r.user === u)!;
  const cell = (u: string, f: string) => row(u).cells.find((c) => c.folder === f);

  test('columns are the folders the bindings name, rows every user in name order', () => {
    expect(m.folders).toEqual(['Finance', 'Finance/Payments', 'HR']);
    expect(m.users.map((r) => r.user)).toEqual(['ann', 'bob', 'cy', 'dee', 'eve']);
    expect(m.totalUsers).toBe(5);
    expect(m.truncated).toBe(false);
  });

  test('a built-in tenant role reaches every folder, from a tenant-wide grant', () => {
    for (const f of m.folders) {
      expect(cell('ann', f)).toMatchObject({ role: 'administrator', binding: 'ann-admin', via: 'user', from: null, narrowed: false });
    }
  });

  test('a folder binding covers its subtree; the stronger role wins', () => {
    expect(cell('bob', 'Finance')).toMatchObject({ role: 'automation-user', via: 'group:ops', from: 'Finance', roles: ['automation-user'] });
    // In Finance/Payments bob is folder-viewer (explicit) and automation-user (inherited): the
    // latter may start jobs, the former only look (at more things).
    const payments = cell('bob', 'Finance/Payments')!;
    expect(payments.role).toBe('automation-user');
    expect(payments.roles).toEqual(['automation-user', 'folder-viewer']);
    expect(cell('bob', 'HR')).toMatchObject({ role: 'folder-administrator', binding: 'bob-fa' });
  });

  test('a cell counts the permissions a check would allow there', () => {
    const idx = index();
    for (const r of m.users) {
      for (const c of r.cells) {
        const allowed = FOLDER_PERMISSIONS.filter((p) => idx.check({ user: r.user, permission: p, folder: c.folder }, NOW).grants.some((g) => g.role === c.role));
        // Narrowed grants need their environment to be asked: count them as the rows do.
        if (!c.narrowed) expect([r.user, c.folder, allowed.length]).toEqual([r.user, c.folder, c.permissions]);
      }
    }
  });

  test('inactive users and expired bindings hold nothing; narrowed grants are flagged', () => {
    expect(row('cy')).toEqual({ user: 'cy', active: false, cells: [] });
    expect(row('eve').cells).toEqual([]);
    expect(cell('dee', 'Finance/Payments')).toMatchObject({ role: 'job-starter', permissions: 2, narrowed: true });
    expect(cell('dee', 'Finance')).toBeUndefined();
  });

  test('the legend lists the roles shown, strongest first', () => {
    expect(m.roles).toEqual([
      { role: 'administrator', permissions: 40, changes: 30 },
      { role: 'folder-administrator', permissions: 40, changes: 30 },
      { role: 'automation-user', permissions: 8, changes: 1 },
      { role: 'job-starter', permissions: 2, changes: 1 },
    ]);
  });

  test('offset and limit page the users', () => {
    const page = accessMatrix(index(), { now: NOW, offset: 1, limit: 2 });
    expect(page.users.map((r) => r.user)).toEqual(['bob', 'cy']);
    expect(page).toMatchObject({ totalUsers: 5, truncated: true });
    expect(accessMatrix(index(), { now: NOW, offset: 3, limit: 2 }).truncated).toBe(false);
  });

  test('folders page too, and a folder keeps its subtree only', () => {
    const page = accessMatrix(index(), { now: NOW, folderOffset: 1, folderLimit: 1 });
    expect(page).toMatchObject({ folders: ['Finance/Payments'], totalFolders: 3, foldersTruncated: true });
    expect(page.users.find((r) => r.user === 'bob')!.cells.map((c) => c.folder)).toEqual(['Finance/Payments']);
    expect(accessMatrix(index(), { now: NOW, folder: 'Finance' })).toMatchObject({ folders: ['Finance', 'Finance/Payments'], totalFolders: 2, foldersTruncated: false });
    expect(accessMatrix(index(), { now: NOW, folder: 'Fin' }).folders).toEqual([]);
  });
});

describe('parseMatrixQuery', () => {
  test('reads numbers within the bounds and a valid folder', () => {
    expect(parseMatrixQuery({})).toEqual({});
    expect(parseMatrixQuery({ offset: '0', limit: String(MAX_MATRIX_LIMIT), folder: 'A/B', folderOffset: '7', folderLimit: '1' }))
      .toEqual({ offset: 0, limit: MAX_MATRIX_LIMIT, folder: 'A/B', folderOffset: 7, folderLimit: 1 });
  });

  test.each([
    [{ limit: '0' }, /limit must be a whole number from 1 to/],
    [{ limit: String(MAX_MATRIX_LIMIT + 1) }, /limit/],
    [{ folderLimit: String(MAX_MATRIX_FOLDER_LIMIT + 1) }, /folderLimit/],
    [{ offset: '-1' }, /offset/],
    [{ offset: '1e3' }, /offset/],
    [{ limit: ' 5' }, /limit/],
    [{ folder: 'A//B' }, /invalid folder/],
  ])('refuses %j', (query, message) => {
    expect(() => parseMatrixQuery(query)).toThrow(RequestError);
    expect(() => parseMatrixQuery(query)).toThrow(message);
  });
});

describe('strongestRoles', () => {
  test('a changing permission outranks any number of views', () => {
    const rows = [
      ...['Jobs.View', 'Logs.View', 'Queues.View'].map((permission) => ({ permission, folder: 'A', role: 'viewer', binding: 'v', via: 'user' })),
      { permission: 'Jobs.Create', folder: 'A', role: 'starter', binding: 's', via: 'user' },
    ];
    expect(strongestRoles(rows, ['A'])[0]).toMatchObject({ role: 'starter', permissions: 1, changes: 1, roles: ['starter', 'viewer'] });
  });

  test('ties go to the role name; tenant permissions never count', () => {
    const rows = [
      { permission: 'Jobs.View', folder: 'A', role: 'b-role', binding: 'b1', via: 'user' },
      { permission: 'Jobs.View', folder: 'A', role: 'a-role', binding: 'a1', via: 'group:g' },
      { permission: 'Users.View', folder: null, role: 'b-role', binding: 'b2', via: 'user' },
    ];
    expect(strongestRoles(rows, ['A', 'A/B', 'B'])).toEqual([
      { folder: 'A', role: 'a-role', permissions: 1, changes: 0, binding: 'a1', via: 'group:g', from: 'A', narrowed: false, roles: ['a-role', 'b-role'] },
      { folder: 'A/B', role: 'a-role', permissions: 1, changes: 0, binding: 'a1', via: 'group:g', from: 'A', narrowed: false, roles: ['a-role', 'b-role'] },
    ]);
  });

  test('a role is narrowed only when all its grants there are', () => {
    const rows = [
      { permission: 'Jobs.View', folder: 'A', role: 'r', binding: 'narrow', via: 'user', environment: 'prod' },
      { permission: 'Jobs.View', folder: null, role: 'r', binding: 'wide', via: 'user' },
    ];
    expect(strongestRoles(rows, ['A'])[0]).toMatchObject({ narrowed: false, permissions: 1, binding: 'narrow' });
  });
});
