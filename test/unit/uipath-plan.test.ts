/**
 * The UiPath target's pure parts: the mapping (store state -> what UiPath must hold) and the
 * planner (desired vs observed + ledger -> ordered steps). `applyToModel` plays a plan onto the
 * observed model the way UiPath's documented semantics say (AssignRoles / AssignUsers replace),
 * so that "a second plan is empty" can be asserted without any server.
 */
import { describe, expect, it } from '@jest/globals';
import { targetConfig, type TargetConfig } from '../../src/targets/orchestrator.js';
import { desiredState } from '../../src/targets/uipath/desired.js';
import { ownedKey, type ObservedUiPath, type Ownership } from '../../src/targets/uipath/observed.js';
import { importUiPath } from '../../src/targets/uipath/import.js';
import { mapPermissions, unmapPermission } from '../../src/targets/uipath/permissions.js';
import { validateDocument } from '../../src/model/validate.js';
import { planTenant } from '../../src/model/plan.js';
import type { AnyEntry } from '../../src/model/types.js';
import { planSummary, planUiPath, type UiPathPlan } from '../../src/targets/uipath/plan.js';
import { NOW, binding, group, robot, role, tenantWith, user } from '../support/fixtures.js';

const ORG = '11111111-2222-3333-4444-555555555555';

function config(spec: Record<string, unknown> = {}): TargetConfig {
  return targetConfig('finance', 'uipath', { type: 'UiPath', url: 'https://cloud.uipath.com/acme/finance/orchestrator_', credentialsSecretRef: { name: 'uipath' }, ...spec });
}

const STATIC_ROLES = [
  { name: 'Administrator', type: 'Mixed' },
  { name: 'Allow to be Folder Administrator', type: 'Tenant' },
  { name: 'Folder Administrator', type: 'Folder' },
  { name: 'Allow to be Automation User', type: 'Tenant' },
  { name: 'Automation User', type: 'Folder' },
  { name: 'Robot', type: 'Mixed' },
];

function emptyUiPath(): ObservedUiPath {
  return {
    organizationId: ORG, users: [], robots: [], groups: [{ id: 'g-everyone', name: 'Everyone', builtIn: true }], principals: [],
    roles: STATIC_ROLES.map((r, i) => ({ id: i + 1, name: r.name, type: r.type, isStatic: true, isEditable: false, permissions: [] })),
    folders: [], assignments: new Map(),
  };
}

const noOwnership = (): Ownership => ({ owned: new Set(), exclusive: new Set() });

/**
 * Plays `plan` onto `model` as UiPath would, recording what was created in `ownership`.
 * Ids: Identity ids `id-N`, Orchestrator ids counting up from 100.
 */
function applyToModel(model: ObservedUiPath, plan: UiPathPlan, ownership: Ownership): void {
  let next = 100 + model.principals.length + model.roles.length + model.folders.length;
  const identity = new Map(plan.known.identity);
  const tenant = new Map(plan.known.tenant);
  const roles = new Map(plan.known.roles);
  const folders = new Map(plan.known.folders);
  const own = (kind: Parameters<typeof ownedKey>[0], id: string | number) => {
    ownership.owned.add(ownedKey(kind, id));
    ownership.exclusive.add(ownedKey(kind, id));
  };
  const principal = (key: string) => model.principals.find((p) => p.id === tenant.get(key))!;
  for (const { step } of plan.steps) {
    switch (step.op) {
      case 'createFolder': {
        const id = next++;
        model.folders.push({ id, path: step.path, displayName: step.displayName, ...(step.parent ? { parentId: folders.get(step.parent)! } : {}) });
        folders.set(step.path, id);
        own('Folder', id);
        break;
      }
      case 'createRole': {
        const id = next++;
        model.roles.push({ id, name: step.role.name, type: step.role.type, isStatic: false, isEditable: true, permissions: [...step.role.permissions] });
        roles.set(step.role.name, id);
        own('Role', id);
        break;
      }
      case 'updateRole':
        Object.assign(model.roles.find((r) => r.id === step.id)!, { type: step.role.type, permissions: [...step.role.permissions] });
        break;
      case 'adopt':
        own(step.kind, step.id);
        break;
      case 'createUser': {
        const id = `id-${next++}`;
        model.users.push({ id, email: step.principal.name, userName: step.principal.name, displayName: step.principal.displayName, active: step.principal.active, groupIds: [] });
        identity.set(step.principal.key, id);
        own('IdentityUser', id);
        break;
      }
      case 'createRobot': {
        const id = `id-${next++}`;
        model.robots.push({ id, name: step.principal.name, displayName: step.principal.displayName, groupIds: [] });
        identity.set(step.principal.key, id);
        own('RobotAccount', id);
        break;
      }
      case 'createGroup': {
        const id = `id-${next++}`;
        model.groups.push({ id, name: step.principal.name, builtIn: false });
        identity.set(step.principal.key, id);
        own('IdentityGroup', id);
        for (const m of step.members) {
          const who = [...model.users, ...model.robots].find((u) => u.id === identity.get(m))!;
          who.groupIds.push(id);
        }
        break;
      }
      case 'updateUser':
        Object.assign(model.users.find((u) => u.id === step.id)!, { ...(step.active !== undefined ? { active: step.active } : {}), ...(step.displayName !== undefined ? { displayName: step.displayName } : {}) });
        break;
      case 'updateGroupMembers': {
        const gid = identity.get(step.key)!;
        const resolve = (k: string) => (k.startsWith('id:') ? k.slice(3) : identity.get(k)!);
        for (const m of step.add.map(resolve)) [...model.users, ...model.robots].find((u) => u.id === m)!.groupIds.push(gid);
        for (const m of step.remove.map(resolve)) {
          const who = [...model.users, ...model.robots].find((u) => u.id === m)!;
          who.groupIds = who.groupIds.filter((g) => g !== gid);
        }
        break;
      }
      case 'addToTenant': {
        const id = next++;
        model.principals.push({ id, userName: step.principal.name, type: 'DirectoryUser', directoryId: identity.get(step.key)!, roleIds: [] });
        tenant.set(step.key, id);
        own('TenantPrincipal', id);
        break;
      }
      case 'assignRoles':
        principal(step.key).roleIds = step.roles.map((r) => roles.get(r)!);
        break;
      case 'assignFolders':
        for (const f of step.folders) {
          const fid = folders.get(f.path)!;
          if (!model.assignments.has(fid)) model.assignments.set(fid, new Map());
          model.assignments.get(fid)!.set(tenant.get(step.key)!, f.roles.map((r) => roles.get(r)!));
        }
        break;
      case 'removeFromFolder':
        model.assignments.get(folders.get(step.path)!)?.delete(tenant.get(step.key)!);
        break;
      case 'deleteRole':
        model.roles = model.roles.filter((r) => r.id !== step.id);
        break;
      case 'removeFromTenant':
        model.principals = model.principals.filter((p) => p.id !== step.id);
        for (const m of model.assignments.values()) m.delete(step.id);
        break;
      case 'deleteUser':
        model.users = model.users.filter((u) => u.id !== step.id);
        break;
      case 'deleteRobot':
        model.robots = model.robots.filter((u) => u.id !== step.id);
        break;
      case 'deleteGroup':
        model.groups = model.groups.filter((u) => u.id !== step.id);
        break;
      case 'deleteFolder':
        model.folders = model.folders.filter((f) => f.id !== step.id);
        model.assignments.delete(step.id);
        break;
    }
  }
}

/** The finance tenant of the seeds, cut down: John Smith with inherited and explicit rights. */
function johnSmithTenant(...more: Parameters<typeof tenantWith>) {
  return tenantWith(
    group('automation-users'),
    user('john-smith', { email: 'John.Smith@example.com', fullName: 'John Smith', groups: ['automation-users'] }),
    user('olivia-chen', { email: 'olivia.chen@example.com', fullName: 'Olivia Chen' }),
    robot('invoice-bot'),
    role('invoice-approver', 'Folder', ['Queues.View', 'Queues.Edit', 'Triggers.View', 'ResultFiles.View']),
    binding('automation-users-run', 'automation-user', ['group:automation-users'], { folder: 'Finance/Invoices' }),
    binding('john-approves', 'invoice-approver', ['john-smith'], { folder: 'Finance/Invoices/2026' }),
    binding('john-develops', 'developer', ['john-smith']),
    binding('olivia-admin', 'administrator', ['olivia-chen']),
    binding('everyone-views-finance', 'folder-viewer', ['group:global'], { folder: 'Finance' }),
    ...more,
  );
}

describe('permission table', () => {
  it('maps catalog names to UiPath names and leaves out what UiPath lacks, never widening', () => {
    const m = mapPermissions([{ resource: 'Folders', actions: ['View'] }, { resource: 'Triggers', actions: ['Edit'] }, { resource: 'Jobs', actions: ['Delete'] }, { resource: 'Billing', actions: ['View'] }]);
    expect(m.names).toEqual(['Schedules.Edit', 'Units.View']);
    expect(m.dropped).toEqual(['Jobs.Delete', 'Billing.View']);
    expect(unmapPermission('Schedules.Edit')).toEqual({ resource: 'Triggers', action: 'Edit' });
    expect(unmapPermission('SubFolders.View')).toEqual({ resource: 'Folders', action: 'View' });
    expect(unmapPermission('Transactions.View')).toBeUndefined();
  });
});

describe('mapping a tenant to UiPath', () => {
  it('writes global only when something is granted to it', () => {
    const d = desiredState(tenantWith(user('ann')), config(), NOW);
    expect([...d.principals.keys()]).toEqual(['ann@example.com']);
    expect(d.roles.size).toBe(0);
  });

  it('maps users by email, robots by name, groups with the prefix, global to every active user', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    expect([...d.principals.keys()].sort()).toEqual(['group:finance-automation-users', 'group:finance-global', 'john.smith@example.com', 'olivia.chen@example.com', 'robot:invoice-bot']);
    expect([...d.members.get('group:finance-global')!].sort()).toEqual(['john.smith@example.com', 'olivia.chen@example.com', 'robot:invoice-bot']);
    expect([...d.members.get('group:finance-automation-users')!]).toEqual(['john.smith@example.com']);
  });

  it('writes bindings as tenant roles and folder assignments, built-ins as static or owned roles', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    expect([...d.tenantRoles.get('john.smith@example.com')!]).toEqual(['developer']);
    expect([...d.everyRootFolder.get('john.smith@example.com')!]).toEqual(['developer-folders']);
    expect([...d.tenantRoles.get('olivia.chen@example.com')!]).toEqual(['Administrator']);
    expect([...d.tenantRoles.get('robot:invoice-bot')!]).toEqual(['Robot']);
    expect([...d.tenantRoles.get('group:finance-automation-users')!]).toEqual(['Allow to be Automation User']);
    expect([...d.folderRoles.get('group:finance-automation-users')!.get('Finance/Invoices')!]).toEqual(['Automation User']);
    expect([...d.folderRoles.get('john.smith@example.com')!.get('Finance/Invoices/2026')!]).toEqual(['invoice-approver']);
    expect([...d.folders].sort()).toEqual(['Finance', 'Finance/Invoices', 'Finance/Invoices/2026']);
    expect(d.roles.get('invoice-approver')).toEqual({ name: 'invoice-approver', type: 'Folder', permissions: ['Queues.Edit', 'Queues.View', 'Schedules.View'] });
    expect(d.roles.get('developer')!.type).toBe('Tenant');
    expect(d.roles.get('developer-folders')!.permissions).toContain('Processes.Create');
    expect(d.notRepresentable).toContain('Role/invoice-approver: ResultFiles.View have no UiPath permission; left out');
  });

  it('leaves out bindings narrowed by resources or environment, and says so', () => {
    const d = desiredState(johnSmithTenant(binding('john-one-process', 'automation-user', ['john-smith'], { folder: 'Finance', resources: [{ kind: 'Process', name: 'invoice-bot' }] })), config(), NOW);
    expect(d.folderRoles.get('john.smith@example.com')!.has('Finance')).toBe(false);
    expect(d.notRepresentable).toContain('RoleBinding/john-one-process: narrowed by resources, which UiPath cannot express; not pushed (a wider grant would be wrong)');
  });

  it('drops expired bindings and reports the next expiry', () => {
    const soon = new Date(NOW + 60_000).toISOString();
    const d = desiredState(johnSmithTenant(
      binding('olivia-old', 'analyst', ['olivia-chen'], { expiresAt: new Date(NOW - 1000).toISOString() }),
      binding('olivia-temp', 'billing-contact', ['olivia-chen'], { expiresAt: soon }),
    ), config(), NOW);
    expect([...d.tenantRoles.get('olivia.chen@example.com')!].sort()).toEqual(['Administrator', 'billing-contact']);
    expect(d.nextExpiry).toBe(Date.parse(soon));
  });

  it('gives an inactive user nothing: no role, no assignment, no group', () => {
    const d = desiredState(tenantWith(group('ops'), user('ann', { active: false, groups: ['ops'] }), binding('ann-admin', 'folder-administrator', ['group:ops'], { folder: 'Ops' }), binding('all-view', 'folder-viewer', ['group:global'], { folder: 'Ops' })), config(), NOW);
    expect(d.principals.get('ann@example.com')!.active).toBe(false);
    expect(d.tenantRoles.get('ann@example.com')).toBeUndefined();
    expect([...d.members.get('group:finance-ops')!]).toEqual([]);
    expect([...d.members.get('group:finance-global')!]).toEqual([]);
  });

  it('follows roleMap and groupPrefix', () => {
    const d = desiredState(johnSmithTenant(), config({ roleMap: { developer: 'Automation Developer', 'invoice-approver': 'Invoice Approver' }, groupPrefix: 'fin/' }), NOW);
    expect([...d.tenantRoles.get('john.smith@example.com')!]).toEqual(['Automation Developer']);
    expect(d.everyRootFolder.get('john.smith@example.com')).toBeUndefined();
    expect(d.referencedRoles.has('Automation Developer')).toBe(true);
    expect(d.roles.has('Invoice Approver')).toBe(true);
    expect(d.principals.has('group:fin/automation-users')).toBe(true);
  });
});

describe('planning against UiPath', () => {
  it('creates everything into an empty tenant in dependency order, then has nothing left to do', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    const plan = planUiPath(d, model, ownership, config());
    const ops = plan.steps.map((s) => s.step.op);
    const last = (op: string) => ops.lastIndexOf(op as never);
    const first = (op: string) => ops.indexOf(op as never);
    expect(last('createFolder')).toBeLessThan(first('assignFolders'));
    expect(last('createRole')).toBeLessThan(first('assignRoles'));
    expect(last('addToTenant')).toBeLessThan(first('assignRoles'));
    const summary = planSummary(plan);
    expect(summary.created).toEqual(expect.arrayContaining([
      'User/john.smith@example.com', 'Robot/invoice-bot', 'Group/finance-automation-users', 'Role/invoice-approver', 'Folder/Finance/Invoices/2026',
      'TenantRoles/john.smith@example.com', 'FolderRoles/john.smith@example.com@Finance/Invoices/2026', 'FolderRoles/group:finance-automation-users@Finance/Invoices',
      'FolderRoles/john.smith@example.com@Finance',
    ]));
    expect(summary.conflicts).toEqual([]);
    applyToModel(model, plan, ownership);
    const again = planUiPath(d, model, ownership, config());
    expect(again.steps).toEqual([]);
    expect(planSummary(again).unchanged).toEqual(expect.arrayContaining(['User/john.smith@example.com', 'TenantRoles/john.smith@example.com', 'Folder/Finance']));
  });

  it('sends the full set of tenant roles and folder roles: UiPath replaces them', () => {
    const d1 = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d1, model, ownership, config()), ownership);
    const d2 = desiredState(johnSmithTenant(binding('john-analyst', 'billing-contact', ['john-smith']), binding('john-viewer', 'folder-viewer', ['john-smith'], { folder: 'Finance/Invoices/2026' })), config(), NOW);
    const plan = planUiPath(d2, model, ownership, config());
    expect(plan.steps.map((s) => s.step)).toEqual([
      { op: 'createRole', role: { name: 'billing-contact', type: 'Tenant', permissions: [] } },
      { op: 'assignRoles', key: 'john.smith@example.com', roles: ['billing-contact', 'developer'] },
      { op: 'assignFolders', key: 'john.smith@example.com', folders: [{ path: 'Finance/Invoices/2026', roles: ['folder-viewer', 'invoice-approver'] }] },
    ]);
    expect(d2.notRepresentable).toContain('Role/billing-contact: Billing.View, Billing.Create, Billing.Edit, Billing.Delete have no UiPath permission; left out');
  });

  it('puts back a role removed by hand (drift), with the full set', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d, model, ownership, config()), ownership);
    const olivia = model.principals.find((p) => p.userName === 'olivia.chen@example.com')!;
    olivia.roleIds = [];
    const fid = model.folders.find((f) => f.path === 'Finance/Invoices/2026')!.id;
    model.assignments.get(fid)!.clear();
    const plan = planUiPath(d, model, ownership, config());
    expect(planSummary(plan).created).toEqual(['FolderRoles/john.smith@example.com@Finance/Invoices/2026', 'TenantRoles/olivia.chen@example.com']);
    expect(plan.steps.map((s) => s.step.op)).toEqual(['assignFolders', 'assignRoles']);
  });

  it('leaves objects it did not create alone and reports them, unless adopt', () => {
    const model = emptyUiPath();
    model.users.push({ id: 'foreign-john', email: 'john.smith@example.com', userName: 'john.smith@example.com', displayName: 'John', active: true, groupIds: [] });
    model.principals.push({ id: 7, userName: 'john.smith@example.com', type: 'DirectoryUser', directoryId: 'foreign-john', roleIds: [1] });
    model.roles.push({ id: 50, name: 'invoice-approver', type: 'Folder', isStatic: false, isEditable: true, permissions: ['Queues.View'] });
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const plan = planUiPath(d, model, noOwnership(), config());
    const summary = planSummary(plan);
    expect(summary.conflicts).toEqual([
      'Role/invoice-approver: a UiPath role of that name exists that rpa-access did not create; left alone, and not assigned (adopt: true takes it over)',
      'User/john.smith@example.com: exists in UiPath and was not created by rpa-access; left alone (adopt: true takes it over)',
    ]);
    expect(plan.steps.some((s) => 'key' in s.step && s.step.key === 'john.smith@example.com')).toBe(false);
    expect(plan.steps.some((s) => s.step.op === 'updateRole')).toBe(false);

    const adopted = planUiPath(d, model, noOwnership(), config({ adopt: true }));
    expect(planSummary(adopted).conflicts).toEqual([]);
    expect(adopted.steps.filter((s) => s.step.op === 'adopt').map((s) => s.step)).toEqual([
      { op: 'adopt', kind: 'Role', id: 50, name: 'invoice-approver' },
      { op: 'adopt', kind: 'IdentityUser', id: 'foreign-john', name: 'john.smith@example.com' },
    ]);
    expect(adopted.steps.find((s) => s.step.op === 'assignRoles' && s.step.key === 'john.smith@example.com')!.step).toEqual({ op: 'assignRoles', key: 'john.smith@example.com', roles: ['developer'] });
  });

  it('never touches principals it does not manage, even in its own folders', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d, model, ownership, config()), ownership);
    model.users.push({ id: 'someone', email: 'someone@else.com', userName: 'someone@else.com', displayName: 'S', active: true, groupIds: [] });
    model.principals.push({ id: 9999, userName: 'someone@else.com', type: 'DirectoryUser', directoryId: 'someone', roleIds: [1] });
    model.assignments.get(model.folders.find((f) => f.path === 'Finance')!.id)!.set(9999, [5]);
    expect(planUiPath(d, model, ownership, config()).steps).toEqual([]);
    expect(planUiPath(d, model, ownership, config({ deletionPolicy: 'Delete' })).steps).toEqual([]);
  });

  it('Retain: what leaves Git loses its roles and assignments and stays; Delete: deletes it, folders bottom-up when empty', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d, model, ownership, config()), ownership);
    const without = desiredState(tenantWith(user('olivia-chen', { email: 'olivia.chen@example.com', fullName: 'Olivia Chen' }), binding('olivia-admin', 'administrator', ['olivia-chen'])), config(), NOW);

    const retain = planSummary(planUiPath(without, model, ownership, config()));
    expect(retain.deleted).toEqual(expect.arrayContaining([
      'TenantRoles/john.smith@example.com', 'FolderRoles/john.smith@example.com@Finance', 'FolderRoles/john.smith@example.com@Finance/Invoices/2026',
      'FolderRoles/group:finance-automation-users@Finance/Invoices', 'TenantRoles/robot:invoice-bot',
    ]));
    expect(retain.deleted.some((e) => e.startsWith('User/') || e.startsWith('Folder/') || e.startsWith('Role/'))).toBe(false);
    const retainModel = structuredClone(model);
    const retainOwnership = { owned: new Set(ownership.owned), exclusive: new Set(ownership.exclusive) };
    applyToModel(retainModel, planUiPath(without, retainModel, retainOwnership, config()), retainOwnership);
    expect(planUiPath(without, retainModel, retainOwnership, config()).steps).toEqual([]);
    expect(retainModel.users.map((u) => u.email).sort()).toEqual(['john.smith@example.com', 'olivia.chen@example.com']);

    const del = planUiPath(without, model, ownership, config({ deletionPolicy: 'Delete' }));
    const s = planSummary(del);
    expect(s.deleted).toEqual(expect.arrayContaining(['User/john.smith@example.com', 'Robot/invoice-bot', 'Group/finance-automation-users', 'Role/invoice-approver', 'Folder/Finance/Invoices/2026', 'Folder/Finance/Invoices', 'Folder/Finance']));
    const folderOps = del.steps.filter((x) => x.step.op === 'deleteFolder').map((x) => (x.step as { path: string }).path);
    expect(folderOps).toEqual(['Finance/Invoices/2026', 'Finance/Invoices', 'Finance']);
    const ops = del.steps.map((x) => x.step.op);
    expect(ops.lastIndexOf('removeFromTenant')).toBeLessThan(ops.indexOf('deleteFolder'));
    applyToModel(model, del, ownership);
    expect(planUiPath(without, model, ownership, config({ deletionPolicy: 'Delete' })).steps).toEqual([]);
  });

  it('keeps a folder that left Git while someone it does not manage is assigned there', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d, model, ownership, config()), ownership);
    model.principals.push({ id: 9999, userName: 'someone', type: 'DirectoryUser', roleIds: [] });
    model.assignments.get(model.folders.find((f) => f.path === 'Finance/Invoices/2026')!.id)!.set(9999, [5]);
    const plan = planSummary(planUiPath(desiredState(tenantWith(), config(), NOW), model, ownership, config({ deletionPolicy: 'Delete' })));
    expect(plan.deleted).not.toContain('Folder/Finance/Invoices/2026');
    expect(plan.deleted).not.toContain('Folder/Finance');
    expect(plan.conflicts).toContain('Folder/Finance/Invoices/2026: left Git but is not empty (assignments or subfolders rpa-access does not manage); kept');
  });

  it('deletes only what no other target of the store also claims', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d, model, ownership, config()), ownership);
    const john = model.users.find((u) => u.email === 'john.smith@example.com')!;
    ownership.exclusive.delete(ownedKey('IdentityUser', john.id));
    const plan = planSummary(planUiPath(desiredState(tenantWith(), config(), NOW), model, ownership, config({ deletionPolicy: 'Delete' })));
    expect(plan.deleted).not.toContain('User/john.smith@example.com');
    expect(plan.deleted).toContain('User/olivia.chen@example.com');
  });

  it('sets an inactive user inactive and takes its roles away', () => {
    const d = desiredState(johnSmithTenant(), config(), NOW);
    const model = emptyUiPath();
    const ownership = noOwnership();
    applyToModel(model, planUiPath(d, model, ownership, config()), ownership);
    const state = johnSmithTenant();
    state.users.set('john-smith', user('john-smith', { email: 'John.Smith@example.com', fullName: 'John Smith', groups: ['automation-users'], active: false }));
    const plan = planUiPath(desiredState(state, config(), NOW), model, ownership, config());
    const s = planSummary(plan);
    expect(s.updated).toEqual(expect.arrayContaining(['User/john.smith@example.com', 'Group/finance-automation-users', 'Group/finance-global']));
    expect(s.deleted).toEqual(expect.arrayContaining(['TenantRoles/john.smith@example.com', 'FolderRoles/john.smith@example.com@Finance/Invoices/2026']));
    expect(plan.steps.find((x) => x.step.op === 'updateUser')!.step).toMatchObject({ active: false });
  });

  it('does not assign a static role UiPath lacks, and says so', () => {
    const model = emptyUiPath();
    model.roles = model.roles.filter((r) => r.name !== 'Automation User');
    const plan = planUiPath(desiredState(johnSmithTenant(), config(), NOW), model, noOwnership(), config());
    expect(planSummary(plan).conflicts).toContain('Role/Automation User: no UiPath role of that name; grants of it are left out');
    expect(plan.steps.some((s) => s.step.op === 'assignFolders' && s.step.folders.some((f) => f.roles.includes('Automation User')))).toBe(false);
  });
});

describe('import', () => {
  it('reads a UiPath tenant into documents that map back to exactly what it holds', () => {
    const model = emptyUiPath();
    const pushed = noOwnership();
    applyToModel(model, planUiPath(desiredState(johnSmithTenant(), config(), NOW), model, pushed, config()), pushed);

    const imported = importUiPath(model, config());
    expect(imported.warnings).toEqual([]);
    const entries = imported.documents.map((d) => {
      const r = validateDocument(d);
      expect(r.problems).toEqual([]);
      return { kind: r.document!.kind, name: r.document!.metadata.name, spec: r.document!.spec, origin: 'user' } as AnyEntry;
    });
    const plan = planTenant(undefined, { tenant: 'finance', upserts: entries });
    expect(plan.violations).toEqual([]);
    const ownership = noOwnership();
    for (const c of imported.claims) {
      ownership.owned.add(ownedKey(c.kind, c.id));
      ownership.exclusive.add(ownedKey(c.kind, c.id));
    }
    const again = planUiPath(desiredState(plan.next, config(), NOW), model, ownership, config());
    expect(planSummary(again)).toMatchObject({ created: [], updated: [], deleted: [], conflicts: [] });
    expect(again.steps).toEqual([]);
    expect(imported.documents.filter((d) => d.kind === 'RoleBinding').map((d) => d.metadata.name).sort()).toEqual([
      'administrator', 'automation-user-finance-invoices', 'developer', 'folder-viewer-finance', 'invoice-approver-finance-invoices-2026',
    ]);
  });
});
