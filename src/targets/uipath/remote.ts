/**
 * The UiPath side of a sync: reading an organization + Orchestrator tenant into an
 * ObservedUiPath (list calls only: pages, nothing else), and applying a plan's steps with the
 * calls of the published API (see /work/shared/reference and docs/uipath.md for the list).
 */
import { randomUUID } from 'node:crypto';
import type { DesiredPrincipal } from './desired.js';
import type { UiPathClient } from './client.js';
import { UiPathError } from './client.js';
import type { ObservedFolder, ObservedTenantPrincipal, ObservedUiPath, OwnedKind } from './observed.js';
import type { KnownIds, PlannedStep, Step } from './plan.js';

const ACTION = 'UiPath.Server.Configuration.OData';

interface IdentityUserDto { id: string; userName?: string | null; email?: string | null; displayName?: string | null; name?: string | null; surname?: string | null; isActive?: boolean; groupIDs?: string[] | null; type?: string }
interface RobotAccountDto { id: string; name?: string | null; displayName?: string | null; groupIds?: string[] | null }
interface GroupDto { id: string; name?: string | null; type?: string }
interface OrchUserDto { Id: number; UserName?: string; EmailAddress?: string; Type?: string; DirectoryIdentifier?: string; Key?: string; UserRoles?: { RoleId?: number; RoleName?: string }[]; RolesList?: string[] }
interface RoleDto { Id: number; Name?: string; DisplayName?: string; Type?: string; IsStatic?: boolean; IsEditable?: boolean; Permissions?: { Name?: string; IsGranted?: boolean }[] }
interface FolderDto { Id: number; DisplayName: string; FullyQualifiedName?: string; ParentId?: number | null }
interface UserRolesDto { UserEntity?: { Id?: number }; Roles?: { Id?: number; Name?: string; Origin?: string }[] }

/** Folder paths from display names and parent ids (FullyQualifiedName when UiPath gives it). */
function folderPaths(dtos: FolderDto[]): ObservedFolder[] {
  const byId = new Map(dtos.map((f) => [f.Id, f]));
  const pathOf = (f: FolderDto, depth = 0): string => {
    if (f.FullyQualifiedName) return f.FullyQualifiedName;
    const parent = f.ParentId != null ? byId.get(f.ParentId) : undefined;
    return parent && depth < 64 ? `${pathOf(parent, depth + 1)}/${f.DisplayName}` : f.DisplayName;
  };
  return dtos.map((f) => ({ id: f.Id, path: pathOf(f), displayName: f.DisplayName, ...(f.ParentId != null ? { parentId: f.ParentId } : {}) }));
}

export async function readUiPath(client: UiPathClient, organizationId: string): Promise<ObservedUiPath> {
  const org = encodeURIComponent(organizationId);
  const [users, robots, groups, principals, roles, folderDtos] = await Promise.all([
    client.identityAll<IdentityUserDto>(`/api/User/users/${org}`),
    client.identityAll<RobotAccountDto>(`/api/RobotAccount/${org}`),
    client.request<GroupDto[]>('identity', 'GET', `/api/Group/${org}`),
    client.odataAll<OrchUserDto>('/odata/Users', { $expand: 'UserRoles' }),
    client.odataAll<RoleDto>('/odata/Roles', { $expand: 'Permissions' }),
    client.odataAll<FolderDto>('/odata/Folders'),
  ]);
  const roleIdByName = new Map(roles.map((r) => [r.Name ?? '', r.Id]));
  const folders = folderPaths(folderDtos);
  const assignments = new Map<number, Map<number, number[]>>();
  await Promise.all(
    folders.map(async (f) => {
      const rows = await client.odataAll<UserRolesDto>(`/odata/Folders/${ACTION}.GetUsersForFolder(key=${f.id},includeInherited=false)`, {}, { 'X-UIPATH-OrganizationUnitId': String(f.id) });
      const byPrincipal = new Map<number, number[]>();
      for (const row of rows) {
        const pid = row.UserEntity?.Id;
        if (pid === undefined) continue;
        const direct = (row.Roles ?? []).filter((r) => r.Origin !== 'Inherited');
        const ids = direct.map((r) => r.Id ?? roleIdByName.get(r.Name ?? '')).filter((x): x is number => typeof x === 'number');
        if (ids.length > 0) byPrincipal.set(pid, ids);
      }
      assignments.set(f.id, byPrincipal);
    }),
  );
  return {
    organizationId,
    users: users
      .filter((u) => (u.type ?? 'user').toLowerCase() !== 'robot')
      .map((u) => ({
        id: u.id, email: (u.email ?? '').toLowerCase(), userName: u.userName ?? '', displayName: u.displayName ?? '', active: u.isActive !== false, groupIds: u.groupIDs ?? [],
      })),
    robots: robots.map((r) => ({ id: r.id, name: r.name ?? '', displayName: r.displayName ?? '', groupIds: r.groupIds ?? [] })),
    groups: (groups ?? []).map((g) => ({ id: g.id, name: g.name ?? '', builtIn: g.type === 'builtIn' })),
    principals: principals.map((p): ObservedTenantPrincipal => ({
      id: p.Id,
      userName: p.UserName ?? '',
      ...(p.EmailAddress ? { email: p.EmailAddress.toLowerCase() } : {}),
      type: p.Type ?? 'User',
      ...(p.DirectoryIdentifier ? { directoryId: p.DirectoryIdentifier } : p.Key ? { directoryId: p.Key } : {}),
      roleIds: p.UserRoles
        ? p.UserRoles.map((r) => r.RoleId ?? roleIdByName.get(r.RoleName ?? '')).filter((x): x is number => typeof x === 'number')
        : (p.RolesList ?? []).map((n) => roleIdByName.get(n)).filter((x): x is number => typeof x === 'number'),
    })),
    roles: roles.map((r) => ({
      id: r.Id, name: r.Name ?? '', type: r.Type ?? 'Mixed', isStatic: r.IsStatic === true, isEditable: r.IsEditable !== false,
      permissions: (r.Permissions ?? []).filter((p) => p.IsGranted !== false && p.Name).map((p) => p.Name!).sort(),
    })),
    folders,
    assignments,
  };
}

// ---------------------------------------------------------------------------------------------
// Applying

/** What the applier tells its caller as it goes: ids to record in the ledger, and each step done. */
export interface ApplyHooks {
  /** Called before a create whose id is chosen by rpa-access, and after one whose id UiPath chooses. */
  recordOwned(kind: OwnedKind, id: string | number, name: string): Promise<void>;
  forgetOwned(kind: OwnedKind, id: string | number, name: string): Promise<void>;
  stepDone(step: PlannedStep): void;
}

export interface ApplyOutcome {
  done: PlannedStep[];
  failed: { step: PlannedStep; error: UiPathError | Error }[];
  /** Steps not tried because an earlier phase failed. */
  skipped: PlannedStep[];
}

/** Steps of one phase do not depend on one another; a phase starts when the previous one is done. */
function phaseOf(step: Step): number {
  switch (step.op) {
    case 'createFolder':
      return 0 + step.path.split('/').length / 100; // parents first
    case 'createRole':
    case 'updateRole':
    case 'adopt':
      return 1;
    case 'createUser':
    case 'createRobot':
    case 'updateUser':
      return 2;
    case 'createGroup':
    case 'updateGroupMembers':
      return 3;
    case 'addToTenant':
      return 4;
    case 'assignRoles':
    case 'assignFolders':
    case 'removeFromFolder':
      return 5;
    case 'deleteRole':
      return 6;
    case 'removeFromTenant':
      return 7;
    case 'deleteUser':
    case 'deleteRobot':
    case 'deleteGroup':
      return 8;
    case 'deleteFolder':
      return 9 + (10 - step.path.split('/').length) / 100; // children first
  }
}

export async function applySteps(client: UiPathClient, organizationId: string, steps: PlannedStep[], known: KnownIds, hooks: ApplyHooks): Promise<ApplyOutcome> {
  const ids: KnownIds = { identity: new Map(known.identity), tenant: new Map(known.tenant), roles: new Map(known.roles), folders: new Map(known.folders) };
  const outcome: ApplyOutcome = { done: [], failed: [], skipped: [] };
  const phases = new Map<number, PlannedStep[]>();
  for (const s of steps) {
    const p = phaseOf(s.step);
    let list = phases.get(p);
    if (!list) phases.set(p, (list = []));
    list.push(s);
  }
  const order = [...phases.keys()].sort((a, b) => a - b);
  for (const [i, phase] of order.entries()) {
    const list = phases.get(phase)!;
    await Promise.all(
      list.map(async (s) => {
        try {
          await applyStep(client, organizationId, s.step, ids, hooks);
          outcome.done.push(s);
          hooks.stepDone(s);
        } catch (err) {
          outcome.failed.push({ step: s, error: err as Error });
        }
      }),
    );
    if (outcome.failed.length > 0) {
      // Later phases depend on this one (ids, memberships): stop, and say what was not tried.
      for (const later of order.slice(i + 1)) outcome.skipped.push(...phases.get(later)!);
      break;
    }
  }
  return outcome;
}

function need<V>(map: Map<string, V>, key: string, what: string): V {
  const v = map.get(key);
  if (v === undefined) throw new Error(`internal: no ${what} id for ${key}`);
  return v;
}

function splitName(displayName: string): { name: string; surname: string } {
  const parts = displayName.trim().split(/\s+/);
  return parts.length > 1 ? { name: parts.slice(0, -1).join(' '), surname: parts.at(-1)! } : { name: displayName, surname: '' };
}

async function applyStep(client: UiPathClient, org: string, step: Step, ids: KnownIds, hooks: ApplyHooks): Promise<void> {
  switch (step.op) {
    case 'createFolder': {
      const parentId = step.parent ? need(ids.folders, step.parent, 'folder') : undefined;
      const dto = await client.request<FolderDto>('orchestrator', 'POST', '/odata/Folders', {
        body: { DisplayName: step.displayName, ...(parentId !== undefined ? { ParentId: parentId } : {}) },
      });
      ids.folders.set(step.path, dto.Id);
      await hooks.recordOwned('Folder', dto.Id, step.path);
      return;
    }
    case 'createRole': {
      const dto = await client.request<RoleDto>('orchestrator', 'POST', '/odata/Roles', {
        body: { Name: step.role.name, DisplayName: step.role.name, Type: step.role.type, Permissions: step.role.permissions.map((Name) => ({ Name, IsGranted: true })) },
      });
      ids.roles.set(step.role.name, dto.Id);
      await hooks.recordOwned('Role', dto.Id, step.role.name);
      return;
    }
    case 'updateRole':
      await client.request('orchestrator', 'PUT', `/odata/Roles(${step.id})`, {
        body: { Id: step.id, Name: step.role.name, DisplayName: step.role.name, Type: step.role.type, Permissions: step.role.permissions.map((Name) => ({ Name, IsGranted: true })) },
      });
      return;
    case 'adopt':
      await hooks.recordOwned(step.kind, step.id, step.name);
      return;
    case 'createUser': {
      // The id is ours to choose (CreateUserCommand.id): recorded before the call, so a crash
      // between the two can never leave a user rpa-access created but does not know as its own.
      const id = randomUUID();
      await hooks.recordOwned('IdentityUser', id, step.principal.name);
      await client.request('identity', 'POST', '/api/User', { body: identityUserBody(step.principal, id, org) });
      ids.identity.set(step.principal.key, id);
      return;
    }
    case 'createRobot': {
      const dto = await client.request<RobotAccountDto>('identity', 'POST', '/api/RobotAccount', {
        body: { partitionGlobalId: org, name: step.principal.name, displayName: step.principal.displayName },
      });
      ids.identity.set(step.principal.key, dto.id);
      await hooks.recordOwned('RobotAccount', dto.id, step.principal.name);
      return;
    }
    case 'createGroup': {
      const members = step.members.map((k) => need(ids.identity, k, 'Identity'));
      const dto = await client.request<GroupDto>('identity', 'POST', '/api/Group', {
        body: { partitionGlobalId: org, name: step.principal.name, directoryUserMemberIDs: members },
      });
      ids.identity.set(step.principal.key, dto.id);
      await hooks.recordOwned('IdentityGroup', dto.id, step.principal.name);
      return;
    }
    case 'updateUser':
      await client.request('identity', 'PUT', `/api/User/${step.id}`, {
        body: { ...(step.active !== undefined ? { isActive: step.active } : {}), ...(step.displayName !== undefined ? { displayName: step.displayName } : {}) },
      });
      return;
    case 'updateGroupMembers': {
      const resolve = (k: string) => (k.startsWith('id:') ? k.slice(3) : need(ids.identity, k, 'Identity'));
      const groupId = need(ids.identity, step.key, 'group');
      await client.request('identity', 'PUT', `/api/Group/${groupId}`, {
        body: { partitionGlobalId: org, name: step.name, directoryUserIDsToAdd: step.add.map(resolve), directoryUserIDsToRemove: step.remove.map(resolve) },
      });
      return;
    }
    case 'addToTenant': {
      const directoryId = need(ids.identity, step.key, 'Identity');
      const p = step.principal;
      const dto = await client.request<OrchUserDto>('orchestrator', 'POST', '/odata/Users', { body: tenantPrincipalBody(p, directoryId) });
      ids.tenant.set(step.key, dto.Id);
      await hooks.recordOwned('TenantPrincipal', dto.Id, p.name);
      return;
    }
    case 'assignRoles': {
      const roleIds = step.roles.map((r) => need(ids.roles, r, 'role'));
      const pid = need(ids.tenant, step.key, 'tenant principal');
      await client.request('orchestrator', 'POST', `/odata/Users(${pid})/${ACTION}.AssignRoles`, { body: { roleIds } });
      return;
    }
    case 'assignFolders': {
      const pid = need(ids.tenant, step.key, 'tenant principal');
      await client.request('orchestrator', 'POST', `/odata/Folders/${ACTION}.AssignUsers`, {
        body: {
          assignments: {
            UserIds: [pid],
            RolesPerFolder: step.folders.map((f) => ({ FolderId: need(ids.folders, f.path, 'folder'), RoleIds: f.roles.map((r) => need(ids.roles, r, 'role')) })),
          },
        },
      });
      return;
    }
    case 'removeFromFolder': {
      const pid = need(ids.tenant, step.key, 'tenant principal');
      const fid = need(ids.folders, step.path, 'folder');
      await client.request('orchestrator', 'POST', `/odata/Folders(${fid})/${ACTION}.RemoveUserFromFolder`, { body: { userId: pid }, headers: { 'X-UIPATH-OrganizationUnitId': String(fid) } });
      return;
    }
    case 'deleteRole':
      await client.request('orchestrator', 'DELETE', `/odata/Roles(${step.id})`);
      await hooks.forgetOwned('Role', step.id, step.name);
      return;
    case 'removeFromTenant':
      await client.request('orchestrator', 'DELETE', `/odata/Users(${step.id})`);
      await hooks.forgetOwned('TenantPrincipal', step.id, step.key);
      return;
    case 'deleteUser':
      await client.request('identity', 'DELETE', `/api/User/${step.id}`);
      await hooks.forgetOwned('IdentityUser', step.id, step.key);
      return;
    case 'deleteRobot':
      await client.request('identity', 'DELETE', `/api/RobotAccount/${encodeURIComponent(org)}/${step.id}`);
      await hooks.forgetOwned('RobotAccount', step.id, step.key);
      return;
    case 'deleteGroup':
      await client.request('identity', 'DELETE', `/api/Group/${encodeURIComponent(org)}/${step.id}`);
      await hooks.forgetOwned('IdentityGroup', step.id, step.key);
      return;
    case 'deleteFolder':
      await client.request('orchestrator', 'DELETE', `/odata/Folders(${step.id})`);
      await hooks.forgetOwned('Folder', step.id, step.path);
      return;
  }
}

function identityUserBody(p: DesiredPrincipal, id: string, org: string): Record<string, unknown> {
  const { name, surname } = splitName(p.displayName);
  return { id, partitionGlobalId: org, userName: p.name, email: p.name, name, surname, displayName: p.displayName, type: 'user', groupIDs: [] };
}

function tenantPrincipalBody(p: DesiredPrincipal, directoryId: string): Record<string, unknown> {
  const Type = p.kind === 'User' ? 'DirectoryUser' : p.kind === 'Robot' ? 'DirectoryRobot' : 'DirectoryGroup';
  return { UserName: p.name, ...(p.kind === 'User' ? { EmailAddress: p.name } : {}), Type, DirectoryIdentifier: directoryId, Domain: 'autogen' };
}
