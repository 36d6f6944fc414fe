/**
 * `rpa-access check` and `rpa-access permissions` as real processes, on each store backend:
 * exit codes 0 / 3 / 1, the JSON shapes of the contract, the human lines, one-line errors.
 */
import type { AccessStore } from '../../src/store/store.js';
import { storeFactories } from '../support/stores.js';
import { applyDirect, EXAMPLES, expectNoStackTrace, rpa, SPAWN_TIMEOUT } from './helpers.js';

describe.each(storeFactories)('check and permissions on $name', (factory) => {
  let url: string;
  let store: AccessStore;
  const cli = (args: string[]) => rpa(['--store', url, ...args]);

  beforeAll(async () => {
    url = factory.newUrl();
    store = await factory.open(url);
    await applyDirect(store, [EXAMPLES]);
  });
  afterAll(async () => {
    await store.close();
  });

  test('check: allowed exits 0, denied 3, a malformed question 1; JSON as the contract says', async () => {
    const [allowed, allowedText, denied, deniedText, noTenant, malformed] = await Promise.all([
      cli(['check', '--tenant', 'finance', '--user', 'john.smith@example.com', '--permission', 'Jobs.Create', '--folder', 'Finance/Invoices', '--output', 'json']),
      cli(['check', '--tenant', 'finance', '--user', 'john.smith@example.com', '--permission', 'Jobs.Create', '--folder', 'Finance/Payments/2024']),
      cli(['check', '--tenant', 'finance', '--user', 'john-smith', '--permission', 'Jobs.Delete', '--folder', 'Finance/Payments', '-o', 'json']),
      cli(['check', '--tenant', 'finance', '--user', 'thorsten-weber', '--permission', 'Jobs.Create', '--folder', 'Finance/Invoices', '--resource', 'Process/payroll-bot']),
      cli(['check', '--tenant', 'nowhere', '--user', 'john-smith', '--permission', 'Users.View', '-o', 'json']),
      cli(['check', '--tenant', 'finance', '--user', 'john-smith', '--permission', 'Jobs.Launch', '--folder', 'Finance']),
    ]);

    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toBe('');
    expect(JSON.parse(allowed.stdout)).toEqual({
      allowed: true,
      grants: [
        { role: 'folder-administrator', binding: 'john-smith-folder-admin-invoices', via: 'user', folder: 'Finance/Invoices' },
        { role: 'automation-user', binding: 'automation-users-invoices', via: 'group:automation-users', folder: 'Finance/Invoices' },
      ],
    });

    expect(allowedText).toEqual({
      code: 0,
      stdout: 'allowed: Jobs.Create in Finance/Payments/2024 for john-smith (role automation-user via group:automation-users, binding automation-users-payments, folder Finance/Payments)\n',
      stderr: '',
    });

    expect(denied.code).toBe(3);
    expect(JSON.parse(denied.stdout)).toEqual({
      allowed: false, grants: [], reason: 'NoGrant',
      nearMisses: [{ binding: 'john-smith-folder-admin-invoices', reason: 'OtherFolder', message: 'binding john-smith-folder-admin-invoices grants it only in folder Finance/Invoices' }],
    });

    expect(deniedText).toEqual({
      code: 3,
      stdout:
        'denied: Jobs.Create on Process/payroll-bot in Finance/Invoices for thorsten-weber (no binding grants it: binding thorsten-starts-invoice-bot grants it only for Process/invoice-bot)\n',
      stderr: '',
    });

    expect(noTenant.code).toBe(3);
    expect(JSON.parse(noTenant.stdout)).toEqual({ allowed: false, grants: [], reason: 'TenantNotFound' });

    expect(malformed.code).toBe(1);
    expect(malformed.stdout).toBe('');
    expect(malformed.stderr).toBe('rpa-access: error: unknown permission "Jobs.Launch": expected Resource.Action from the catalog, e.g. Jobs.Create\n');
  }, SPAWN_TIMEOUT);

  test('permissions: JSON rows with provenance; a table for people; unknown user or tenant is an error', async () => {
    const [json, owner, text, unknownUser, unknownTenant] = await Promise.all([
      cli(['permissions', '--tenant', 'finance', '--user', 'john.smith@example.com', '--output', 'json']),
      cli(['permissions', '--tenant', 'platform', '--user', 'dev-anna', '-o', 'json']),
      cli(['permissions', '--tenant', 'finance', '--user', 'john-smith']),
      cli(['permissions', '--tenant', 'finance', '--user', 'nobody@example.com']),
      cli(['permissions', '--tenant', 'nowhere', '--user', 'john-smith', '-o', 'json']),
    ]);

    expect(json.code).toBe(0);
    const { permissions } = JSON.parse(json.stdout) as { permissions: Record<string, unknown>[] };
    expect(Object.keys(JSON.parse(json.stdout))).toEqual(['permissions']);
    for (const row of permissions) expect(Object.keys(row).sort()).toEqual(['binding', 'folder', 'permission', 'role', 'via']);
    expect(permissions).toContainEqual({ permission: 'Jobs.Create', folder: 'Finance/Payments', role: 'automation-user', binding: 'automation-users-payments', via: 'group:automation-users' });
    expect(permissions).toContainEqual({ permission: 'Jobs.Create', folder: 'Finance/Invoices', role: 'automation-user', binding: 'automation-users-invoices', via: 'group:automation-users' });
    expect(permissions).toContainEqual({ permission: 'Processes.Delete', folder: 'Finance/Invoices', role: 'folder-administrator', binding: 'john-smith-folder-admin-invoices', via: 'user' });
    expect(permissions.some((p) => p.permission === 'Processes.Delete' && p.folder === 'Finance/Payments')).toBe(false);
    expect(new Set(permissions.map((p) => p.binding))).toEqual(new Set(['automation-users-invoices', 'automation-users-payments', 'john-smith-folder-admin-invoices']));

    // Tenant-wide rows have folder null; narrowed rows say how.
    const anna = (JSON.parse(owner.stdout) as { permissions: Record<string, unknown>[] }).permissions;
    expect(anna).toContainEqual({ permission: 'Packages.Create', folder: null, role: 'package-publisher', binding: 'developers-publish-packages', via: 'group:developers' });
    expect(anna).toContainEqual({ permission: 'Deployments.Create', folder: 'Shared', role: 'deployer', binding: 'developers-deploy-staging', via: 'group:developers', environment: 'staging' });

    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toBe('John Smith (User finance/john-smith, john.smith@example.com) in tenant finance');
    expect(lines.slice(2, 6).map((l) => l.split(/\s{2,}/))).toEqual([
      ['ROLE', 'WHERE', 'BINDING', 'VIA'],
      ['folder-administrator', 'Finance/Invoices', 'john-smith-folder-admin-invoices', 'user'],
      ['automation-user', 'Finance/Invoices', 'automation-users-invoices', 'group:automation-users'],
      ['automation-user', 'Finance/Payments', 'automation-users-payments', 'group:automation-users'],
    ]);
    expect(lines).toContain('48 permissions (a folder\'s permissions hold in its subfolders too):');

    expect(unknownUser).toEqual({ code: 1, stdout: '', stderr: 'rpa-access: error: no user nobody@example.com in tenant finance (give a User name or email)\n' });
    expect(unknownTenant.code).toBe(1);
    expect(unknownTenant.stdout).toBe('');
    expect(unknownTenant.stderr).toMatch(/^rpa-access: error: tenant nowhere does not exist in the store [^\n]+\n$/);
    expectNoStackTrace(unknownTenant.stderr);
  }, SPAWN_TIMEOUT);
});
