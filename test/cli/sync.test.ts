/**
 * `rpa-access sync` and `rpa-access import` against the strict UiPath double: the plan printed
 * and applied, exit codes (0 / 2 conflicts or pending / 1 error), objects rpa-access did not
 * create left alone, deletionPolicy Retain and Delete, and import -> apply -> sync --dry-run
 * showing nothing to change.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';

jest.setTimeout(60_000);
import { startUiPathDouble, type UiPathDouble } from '../support/uipath/index.js';
import { rpaInProcess, tempDir, writeTree } from './helpers.js';

const TENANT = `
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: automation-users, namespace: finance}
spec: {displayName: Automation Users}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john-smith, namespace: finance}
spec: {email: john.smith@example.com, fullName: John Smith, groups: [automation-users]}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: olivia-chen, namespace: finance}
spec: {email: olivia.chen@example.com, fullName: Olivia Chen}
---
apiVersion: rpa-access.io/v1alpha1
kind: Role
metadata: {name: approver, namespace: finance}
spec: {scope: Folder, permissions: [{resource: Queues, actions: [View, Edit]}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: automation-users-run, namespace: finance}
spec: {roleRef: {name: automation-user}, folder: Finance/Invoices, subjects: [{kind: Group, name: automation-users}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: olivia-approves, namespace: finance}
spec: {roleRef: {name: approver}, folder: Finance/Invoices/Approvals, subjects: [{kind: User, name: olivia-chen}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: olivia-admin, namespace: finance}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: olivia-chen}]}
`;

describe('sync and import against the UiPath double', () => {
  let uip: UiPathDouble;
  let dir: string;
  let env: Record<string, string>;
  const target = (extra: Record<string, unknown> = {}, tenant = 'finance') => {
    const spec = { type: 'UiPath', url: uip.orchestratorUrl(tenant), identityUrl: uip.identityUrl, credentialsSecretRef: { name: 'uipath' }, ...extra };
    const file = path.join(dir, `target-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, JSON.stringify({ apiVersion: 'rpa-access.io/v1alpha1', kind: 'Orchestrator', metadata: { name: 'uipath', namespace: 'finance' }, spec }));
    return file;
  };
  const cli = (...args: string[]) => rpaInProcess(['--store', path.join(dir, 'store'), ...args], env);
  const sync = async (file: string, ...more: string[]) => {
    const r = await cli('sync', '--tenant', 'finance', '--target', file, '--output', 'json', ...more);
    return { ...r, json: r.code !== 1 ? (JSON.parse(r.stdout) as Record<string, string[]>) : undefined };
  };
  const applyDocs = async (docs: string, ...more: string[]) => {
    const r = await cli('apply', '-f', writeTree({ 'tenant.yaml': docs }), ...more);
    expect(r.stderr.replace(/^warning:.*\n/gm, '')).toBe('');
    expect(r.code).toBe(0);
  };

  beforeEach(async () => {
    uip = await startUiPathDouble({ tenants: ['finance'] });
    dir = tempDir('rpa-access-sync-');
    env = { RPA_ACCESS_TARGET_CLIENT_ID: uip.credentials.clientId, RPA_ACCESS_TARGET_CLIENT_SECRET: uip.credentials.clientSecret };
  });
  afterEach(async () => {
    await uip.stop();
  });

  it('prints the plan, applies it, and then has nothing to do; --dry-run --exit-code says whether changes are pending', async () => {
    await applyDocs(TENANT);
    const file = target();
    const dry = await sync(file, '--dry-run', '--exit-code');
    expect(dry.code).toBe(2);
    expect(uip.calls.writes()).toBe(0);
    expect(dry.json!.created).toEqual(expect.arrayContaining([
      'User/john.smith@example.com', 'Group/finance-automation-users', 'Role/approver', 'Folder/Finance/Invoices/Approvals',
      'TenantRoles/olivia.chen@example.com', 'FolderRoles/group:finance-automation-users@Finance/Invoices', 'FolderRoles/olivia.chen@example.com@Finance/Invoices/Approvals',
    ]));
    expect(Object.keys(dry.json!).sort()).toEqual(['conflicts', 'created', 'deleted', 'notRepresentable', 'unchanged', 'updated']);

    const done = await sync(file);
    expect(done.code).toBe(0);
    expect(done.json!.created).toEqual(dry.json!.created);
    expect(uip.snapshot('finance').users['olivia.chen@example.com']!.roles).toEqual(['Administrator']);

    uip.calls.reset();
    const again = await sync(file, '--dry-run', '--exit-code');
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ created: [], updated: [], deleted: [] });
    expect(uip.calls.writes()).toBe(0);
    const text = await cli('sync', '--tenant', 'finance', '--target', file);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('unchanged TenantRoles/olivia.chen@example.com');
    expect(uip.calls.writes()).toBe(0);
  });

  it('leaves objects it did not create alone, lists them, and exits 2; adopt takes them over', async () => {
    uip.seed({
      identityUsers: [{ email: 'john.smith@example.com', name: 'Johnny' }],
      roles: [{ Name: 'approver', Type: 'Folder', Permissions: ['Queues.View', 'Assets.Delete'] }],
      groups: [{ name: 'sales', members: ['john.smith@example.com'] }],
      users: [{ UserName: 'john.smith@example.com', Type: 'DirectoryUser', roles: ['Administrator'] }],
    }, 'finance');
    await applyDocs(TENANT);
    const before = uip.snapshot('finance');
    const r = await sync(target());
    expect(r.code).toBe(2);
    expect(r.json!.conflicts).toEqual([
      'Role/approver: a UiPath role of that name exists that rpa-access did not create; left alone, and not assigned (adopt: true takes it over)',
      'User/john.smith@example.com: exists in UiPath and was not created by rpa-access; left alone (adopt: true takes it over)',
    ]);
    const after = uip.snapshot('finance');
    expect(after.roles.approver).toEqual(before.roles.approver);
    expect(after.users['john.smith@example.com']).toEqual(before.users['john.smith@example.com']);
    expect(after.groups.sales).toEqual(['john.smith@example.com']);
    expect(after.groups['finance-automation-users']).toEqual([]); // john is not ours to move
    expect(after.folderRoles['Finance/Invoices/Approvals']).toBeUndefined(); // the foreign role is not assigned

    const adopted = await sync(target({ adopt: true }));
    expect(adopted.code).toBe(0);
    const taken = uip.snapshot('finance');
    expect(taken.roles.approver!.permissions).toEqual(['Queues.Edit', 'Queues.View']);
    expect(taken.users['john.smith@example.com']!.roles).toEqual([]);
    expect(taken.groups['finance-automation-users']).toEqual(['john.smith@example.com']);
    expect(taken.groups.sales).toEqual(['john.smith@example.com']); // a group rpa-access does not manage
  });

  it('deletionPolicy Retain strips what left Git and keeps it; Delete deletes it, folders bottom-up', async () => {
    await applyDocs(TENANT);
    expect((await sync(target())).code).toBe(0);
    const without = TENANT.split('---').filter((d) => !/name: (olivia-chen|olivia-approves|olivia-admin|approver)\b/.test(d)).join('---');
    await applyDocs(without, '--prune', '--prune-allow-mass-delete'); // 4 of 7: the brake would refuse it

    const retain = await sync(target());
    expect(retain.code).toBe(0);
    expect(retain.json!.deleted).toEqual(['FolderRoles/olivia.chen@example.com@Finance/Invoices/Approvals', 'TenantRoles/olivia.chen@example.com']);
    let snap = uip.snapshot('finance');
    expect(snap.users['olivia.chen@example.com']).toMatchObject({ roles: [] });
    expect(snap.identityUsers['olivia.chen@example.com']).toBeDefined();
    expect(snap.roles.approver).toBeDefined();
    expect(snap.folders).toContain('Finance/Invoices/Approvals');

    const del = await sync(target({ deletionPolicy: 'Delete' }));
    expect(del.code).toBe(0);
    expect(del.json!.deleted).toEqual(['Folder/Finance/Invoices/Approvals', 'Role/approver', 'User/olivia.chen@example.com']);
    snap = uip.snapshot('finance');
    expect(snap.identityUsers['olivia.chen@example.com']).toBeUndefined();
    expect(snap.users['olivia.chen@example.com']).toBeUndefined();
    expect(snap.roles.approver).toBeUndefined();
    expect(snap.folders).toEqual(expect.arrayContaining(['Finance', 'Finance/Invoices']));
    expect(snap.folders).not.toContain('Finance/Invoices/Approvals');
    expect((await sync(target({ deletionPolicy: 'Delete' }), '--dry-run', '--exit-code')).code).toBe(0);
  });

  it('import writes documents that, applied, make sync --dry-run show nothing to change', async () => {
    uip.seed({
      identityUsers: [{ email: 'ann.lee@example.com', name: 'Ann', surname: 'Lee' }, { email: 'bo.chan@example.com', name: 'Bo', surname: 'Chan' }],
      robotAccounts: [{ name: 'payroll-bot', displayName: 'payroll-bot' }],
      groups: [{ name: 'finance-ops', members: ['ann.lee@example.com', 'bo.chan@example.com'] }],
      roles: [{ Name: 'queue-keeper', Type: 'Folder', Permissions: ['Queues.View', 'Queues.Edit', 'Schedules.View'] }, { Name: 'auditor', Type: 'Tenant', Permissions: ['Audit.View', 'Users.View'] }],
      folders: ['Payroll/Runs'],
      users: [
        { UserName: 'ann.lee@example.com', Type: 'DirectoryUser', roles: ['auditor'] },
        { UserName: 'bo.chan@example.com', Type: 'DirectoryUser' },
        { UserName: 'payroll-bot', Type: 'DirectoryRobot', roles: ['Robot'] },
        { UserName: 'finance-ops', Type: 'DirectoryGroup', roles: ['Allow to be Automation User'] },
      ],
      folderRoles: [
        { user: 'finance-ops', folder: 'Payroll', roles: ['Automation User'] },
        { user: 'bo.chan@example.com', folder: 'Payroll/Runs', roles: ['queue-keeper'] },
      ],
    }, 'finance');
    const file = target();
    const out = tempDir('rpa-access-import-');
    const imp = await cli('import', '--target', file, '--tenant', 'finance', '-o', out);
    expect(imp.stderr).toBe(`wrote 9 documents to ${path.join(out, 'finance.yaml')}\n`);
    expect(imp.code).toBe(0);
    const validate = await cli('validate', '-f', out);
    expect(validate.code).toBe(0);
    expect((await cli('apply', '-f', out)).code).toBe(0);
    uip.calls.reset();
    const dry = await sync(file, '--dry-run', '--exit-code');
    expect(dry.json).toMatchObject({ created: [], updated: [], deleted: [], conflicts: [] });
    expect(dry.code).toBe(0);
    expect(uip.calls.writes()).toBe(0);
  });

  it('refuses to run without credentials, and never prints the secret', async () => {
    await applyDocs(TENANT);
    const none = await rpaInProcess(['--store', path.join(dir, 'store'), 'sync', '--tenant', 'finance', '--target', target()], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('RPA_ACCESS_TARGET_CLIENT_ID');
    const wrong = await rpaInProcess(['--store', path.join(dir, 'store'), 'sync', '--tenant', 'finance', '--target', target()], { ...env, RPA_ACCESS_TARGET_CLIENT_SECRET: 'wrong-secret-987654' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^rpa-access: error: UiPath: POST .*\/connect\/token: 401/);
    expect(wrong.stderr + wrong.stdout).not.toContain('wrong-secret-987654');
  });
});
