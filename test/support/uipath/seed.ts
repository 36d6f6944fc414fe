/**
 * The control API's data side: seeding by names (through the same rules as the HTTP API) and
 * reading the state back, by ids (`state`) or by names (`snapshot`) for readable assertions.
 */
import type { Identity } from './identity.js';
import type { OrchestratorTenant, OrchUserType, PermissionScope, RoleType } from './orchestrator.js';

export interface SeedSpec {
  /** Identity local users (organization-wide). */
  identityUsers?: { email: string; userName?: string; name?: string; surname?: string; isActive?: boolean }[];
  /** Identity robot accounts (organization-wide). */
  robotAccounts?: { name: string; displayName?: string }[];
  /** Identity groups; members by user name, email or robot account name. */
  groups?: { name: string; members?: string[] }[];
  /** Custom roles of the tenant; Permissions by name (granted), or as the API's PermissionDto. */
  roles?: { Name: string; Type: Exclude<RoleType, 'Mixed'>; Permissions?: (string | { Name: string; IsGranted?: boolean; Scope?: PermissionScope })[] }[];
  /** Folders of the tenant by path ('Finance/AP'); missing ancestors are created. */
  folders?: (string | { path: string; Description?: string })[];
  /**
   * Orchestrator users of the tenant. A Directory* type links to the Identity object of that
   * name (seed it first); `roles` are tenant role names.
   */
  users?: { UserName: string; Type?: OrchUserType; EmailAddress?: string; Name?: string; Surname?: string; IsActive?: boolean; roles?: string[] }[];
  /** Folder assignments: user (UserName) → folder path → role names (replaces that pair). */
  folderRoles?: { user: string; folder: string; roles: string[] }[];
}

export interface SeedResult {
  identityUsers: Record<string, string>;
  robotAccounts: Record<string, string>;
  groups: Record<string, string>;
  roles: Record<string, number>;
  folders: Record<string, number>;
  users: Record<string, number>;
}

export function seed(identity: Identity, tenant: OrchestratorTenant, spec: SeedSpec): SeedResult {
  const out: SeedResult = { identityUsers: {}, robotAccounts: {}, groups: {}, roles: {}, folders: {}, users: {} };
  for (const u of spec.identityUsers ?? []) {
    const user = identity.createUser({ email: u.email, userName: u.userName, name: u.name, surname: u.surname });
    if (u.isActive === false) identity.updateUser(user.id, { isActive: false });
    out.identityUsers[u.email] = user.id;
  }
  for (const r of spec.robotAccounts ?? []) {
    out.robotAccounts[r.name] = identity.createRobotAccount({ partitionGlobalId: identity.organizationId, name: r.name, displayName: r.displayName }).id;
  }
  for (const g of spec.groups ?? []) {
    const members = (g.members ?? []).map((m) => {
      const id = identity.findUser(m)?.id ?? identity.findRobotAccount(m)?.id;
      if (!id) throw new Error(`seed: group ${g.name}: no Identity user or robot account ${m}`);
      return id;
    });
    out.groups[g.name] = identity.createGroup({ partitionGlobalId: identity.organizationId, name: g.name, directoryUserMemberIDs: members }).id;
  }
  for (const r of spec.roles ?? []) {
    const permissions = (r.Permissions ?? []).map((p) => (typeof p === 'string' ? { Name: p, IsGranted: true } : p));
    out.roles[r.Name] = tenant.createRole({ Name: r.Name, Type: r.Type, Permissions: permissions }).Id;
  }
  for (const f of spec.folders ?? []) {
    const path = typeof f === 'string' ? f : f.path;
    let parentId: number | undefined;
    const parts = path.split('/');
    parts.forEach((name, i) => {
      const sub = parts.slice(0, i + 1).join('/');
      const existing = tenant.folderByPath(sub);
      const last = i === parts.length - 1;
      const folder = existing ?? tenant.createFolder({ DisplayName: name, ParentId: parentId, Description: last && typeof f !== 'string' ? f.Description : undefined });
      parentId = folder.Id;
      out.folders[sub] = folder.Id;
    });
  }
  for (const u of spec.users ?? []) {
    const user = tenant.createUser({
      UserName: u.UserName,
      Type: u.Type,
      EmailAddress: u.EmailAddress,
      Name: u.Name,
      Surname: u.Surname,
      IsActive: u.IsActive,
      RolesList: u.roles,
    });
    out.users[u.UserName] = user.Id;
  }
  for (const a of spec.folderRoles ?? []) {
    const user = tenant.findUser(a.user);
    if (!user) throw new Error(`seed: no user ${a.user}`);
    const folder = tenant.folderByPath(a.folder);
    if (!folder) throw new Error(`seed: no folder ${a.folder}`);
    tenant.assignUsers([user.Id], [{ FolderId: folder.Id, RoleIds: a.roles.map((r) => tenant.roleByName(r, 'folder').Id) }]);
  }
  return out;
}

export interface Snapshot {
  /** Orchestrator users by UserName: type, email, active, tenant roles (sorted names). */
  users: Record<string, { Type: OrchUserType; EmailAddress?: string; IsActive: boolean; roles: string[] }>;
  /** Roles by name (static ones included). */
  roles: Record<string, { Type: RoleType; IsStatic: boolean; permissions: string[] }>;
  /** Folder paths, sorted. */
  folders: string[];
  /** folder path → UserName → sorted role names (direct assignments only). */
  folderRoles: Record<string, Record<string, string[]>>;
  /** Identity group name → sorted member user names / robot account names. */
  groups: Record<string, string[]>;
  /** Identity users by user name. */
  identityUsers: Record<string, { email?: string; isActive: boolean }>;
  /** Identity robot account names, sorted. */
  robotAccounts: string[];
}

const sorted = (xs: string[]): string[] => [...xs].sort((a, b) => a.localeCompare(b));

export function snapshot(identity: Identity, tenant: OrchestratorTenant): Snapshot {
  const roleName = (id: number): string => tenant.roles.get(id)?.Name ?? `#${id}`;
  const users: Snapshot['users'] = {};
  for (const u of tenant.users.values()) {
    users[u.UserName] = { Type: u.Type, IsActive: u.IsActive, roles: sorted([...u.roleIds].map(roleName)) };
    if (u.EmailAddress !== undefined) users[u.UserName]!.EmailAddress = u.EmailAddress;
  }
  const roles: Snapshot['roles'] = {};
  for (const r of tenant.roles.values()) {
    roles[r.Name] = { Type: r.Type, IsStatic: r.IsStatic, permissions: sorted(r.Permissions.filter((p) => p.IsGranted).map((p) => p.Name)) };
  }
  const folderRoles: Snapshot['folderRoles'] = {};
  for (const f of tenant.folders.values()) {
    if (f.assignments.size === 0) continue;
    const entry: Record<string, string[]> = {};
    for (const [userId, roleIds] of f.assignments) entry[tenant.users.get(userId)?.UserName ?? `#${userId}`] = sorted([...roleIds].map(roleName));
    folderRoles[tenant.path(f)] = entry;
  }
  const memberName = (id: string): string => identity.users.get(id)?.userName ?? identity.robotAccounts.get(id)?.name ?? id;
  const groups: Snapshot['groups'] = {};
  for (const g of identity.groups.values()) groups[g.name] = sorted([...g.members].map(memberName));
  const identityUsers: Snapshot['identityUsers'] = {};
  for (const u of identity.users.values()) identityUsers[u.userName] = { email: u.email, isActive: u.isActive };
  return {
    users,
    roles,
    folders: sorted([...tenant.folders.values()].map((f) => tenant.path(f))),
    folderRoles,
    groups,
    identityUsers,
    robotAccounts: sorted([...identity.robotAccounts.values()].map((r) => r.name)),
  };
}

export interface DoubleState {
  organizationId: string;
  identity: {
    users: ReturnType<Identity['userDto']>[];
    groups: ReturnType<Identity['groupDto']>[];
    robotAccounts: ReturnType<Identity['robotAccountDto']>[];
  };
  tenants: Record<
    string,
    {
      users: (Record<string, unknown> & { Id: number; UserName: string; roleIds: number[] })[];
      roles: Record<string, unknown>[];
      folders: Record<string, unknown>[];
      /** Direct folder assignments. */
      folderAssignments: { folderId: number; folderPath: string; userId: number; userName: string; roleIds: number[] }[];
    }
  >;
}

export function state(identity: Identity, tenants: OrchestratorTenant[], organizationId: string): DoubleState {
  const out: DoubleState = {
    organizationId,
    identity: {
      users: [...identity.users.values()].map((u) => identity.userDto(u)),
      groups: [...identity.groups.values()].map((g) => identity.groupDto(g, true)),
      robotAccounts: [...identity.robotAccounts.values()].map((r) => identity.robotAccountDto(r)),
    },
    tenants: {},
  };
  for (const t of tenants) {
    out.tenants[t.name] = {
      users: [...t.users.values()].map((u) => ({ ...t.userDto(u, new Set()), Id: u.Id, UserName: u.UserName, roleIds: [...u.roleIds].sort((a, b) => a - b) })),
      roles: [...t.roles.values()].map((r) => t.roleDto(r, new Set(['Permissions']))),
      folders: [...t.folders.values()].map((f) => t.folderDto(f)),
      folderAssignments: [...t.folders.values()].flatMap((f) =>
        [...f.assignments].map(([userId, roleIds]) => ({
          folderId: f.Id,
          folderPath: t.path(f),
          userId,
          userName: t.users.get(userId)?.UserName ?? `#${userId}`,
          roleIds: [...roleIds].sort((a, b) => a - b),
        })),
      ),
    };
  }
  return out;
}
