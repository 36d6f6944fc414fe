/**
 * One Orchestrator tenant: users, roles, folders and folder assignments, with UiPath's rules
 * (reference README): AssignRoles replaces a user's tenant roles; AssignUsers replaces the roles of
 * each (user, folder) pair it names; static roles cannot be changed or deleted; a folder cannot be
 * deleted while it or a descendant holds a user association; names are unique ignoring case.
 * Both the HTTP handlers and the control API's seeding go through these methods.
 */
import { randomUUID } from 'node:crypto';
import { ApiError, ERROR_CODES, badRequest, nameTaken, notFound } from './errors.js';
import type { Identity } from './identity.js';

export type RoleType = 'Tenant' | 'Folder' | 'Mixed';
export type OrchUserType = 'User' | 'Robot' | 'DirectoryUser' | 'DirectoryGroup' | 'DirectoryRobot' | 'DirectoryExternalApplication';
export type PermissionScope = 'Global' | 'Folder' | 'GlobalOrFolder';

export interface Permission {
  Id: number;
  Name: string;
  IsGranted: boolean;
  Scope?: PermissionScope;
}

export interface OrchRole {
  Id: number;
  Name: string;
  DisplayName: string;
  Type: RoleType;
  Groups?: string;
  IsStatic: boolean;
  IsEditable: boolean;
  Permissions: Permission[];
}

export interface OrchUser {
  Id: number;
  Key: string;
  UserName: string;
  Name?: string;
  Surname?: string;
  EmailAddress?: string;
  Type: OrchUserType;
  IsActive: boolean;
  Domain?: string;
  DirectoryIdentifier?: string;
  CreationTime: string;
  LastModificationTime?: string;
  /** Tenant-level roles. */
  roleIds: Set<number>;
  /** The Identity user, group or robot account a directory entry stands for. */
  identityId?: string;
}

export interface OrchFolder {
  Id: number;
  Key: string;
  DisplayName: string;
  Description?: string;
  ParentId?: number;
  /** Direct user associations: user id → folder roles. */
  assignments: Map<number, Set<number>>;
}

/**
 * The static roles a new tenant has (UiPath's built-in roles of modern folders), ids 1..n in this
 * order. Their permission lists are abbreviated: the double does not model what a permission allows.
 */
export const STATIC_ROLES: { Name: string; Type: RoleType; Permissions: string[] }[] = [
  { Name: 'Administrator', Type: 'Mixed', Permissions: ['Users.View', 'Users.Edit', 'Users.Create', 'Users.Delete', 'Roles.View', 'Roles.Edit', 'Roles.Create', 'Roles.Delete', 'Units.View', 'Units.Edit', 'Units.Create', 'Units.Delete'] },
  { Name: 'Allow to be Folder Administrator', Type: 'Tenant', Permissions: ['Users.View', 'Roles.View', 'Units.View'] },
  { Name: 'Allow to be Automation User', Type: 'Tenant', Permissions: ['Users.View'] },
  { Name: 'Allow to be Automation Developer', Type: 'Tenant', Permissions: ['Users.View', 'Units.View'] },
  { Name: 'Allow to be Automation Publisher', Type: 'Tenant', Permissions: ['Users.View'] },
  { Name: 'Folder Administrator', Type: 'Folder', Permissions: ['SubFolders.View', 'SubFolders.Edit', 'SubFolders.Create', 'SubFolders.Delete', 'Processes.View', 'Processes.Edit', 'Jobs.View', 'Jobs.Create', 'Assets.View', 'Assets.Edit'] },
  { Name: 'Automation User', Type: 'Folder', Permissions: ['Processes.View', 'Jobs.View', 'Jobs.Create', 'Assets.View'] },
  { Name: 'Automation Developer', Type: 'Folder', Permissions: ['Processes.View', 'Processes.Create', 'Processes.Edit', 'Jobs.View', 'Jobs.Create', 'Assets.View', 'Assets.Create', 'Assets.Edit'] },
  { Name: 'Automation Publisher', Type: 'Folder', Permissions: ['Processes.View', 'Processes.Create', 'Packages.Create'] },
  { Name: 'Robot', Type: 'Mixed', Permissions: ['Robots.View', 'Processes.View', 'Jobs.View', 'Assets.View', 'Queues.View', 'Transactions.Create'] },
];

const lower = (s: string): string => s.toLowerCase();
const PERMISSION_NAME = /^[A-Za-z]+\.[A-Za-z]+$/;
const TENANT_SCOPED: ReadonlySet<RoleType> = new Set(['Tenant', 'Mixed']);
const FOLDER_SCOPED: ReadonlySet<RoleType> = new Set(['Folder', 'Mixed']);

export interface UserInput {
  Id?: number;
  UserName?: string;
  Name?: string;
  Surname?: string;
  EmailAddress?: string;
  Type?: OrchUserType;
  IsActive?: boolean;
  Domain?: string;
  DirectoryIdentifier?: string;
  RolesList?: string[];
  UserRoles?: { RoleId?: number; RoleName?: string }[];
  OrganizationUnits?: unknown[];
}

export interface RoleInput {
  Id?: number;
  Name?: string;
  DisplayName?: string;
  Type?: RoleType;
  Groups?: string;
  Permissions?: { Name?: string; IsGranted?: boolean; Scope?: PermissionScope }[];
}

export interface FolderInput {
  Id?: number;
  DisplayName: string;
  Description?: string;
  ParentId?: number;
  ParentKey?: string;
  FolderType?: string;
}

export class OrchestratorTenant {
  readonly users = new Map<number, OrchUser>();
  readonly roles = new Map<number, OrchRole>();
  readonly folders = new Map<number, OrchFolder>();
  readonly key = randomUUID();
  private nextUserId = 1;
  private nextRoleId = 1;
  private nextPermissionId = 1;
  private nextFolderId = 1;

  constructor(
    readonly name: string,
    readonly tenantId: number,
    private readonly identity: Identity,
    private readonly now: () => string,
    private readonly options: { sharedFolder: boolean; localUsersAsDirectoryUsers?: boolean },
  ) {
    for (const r of STATIC_ROLES) {
      const role = this.insertRole({ Name: r.Name, Type: r.Type, Permissions: r.Permissions.map((Name) => ({ Name })) });
      role.IsStatic = true;
      role.IsEditable = false;
    }
    if (options.sharedFolder) this.createFolder({ DisplayName: 'Shared' });
  }

  // ---- users -------------------------------------------------------------------------------

  user(id: number, status = 404): OrchUser {
    const u = this.users.get(id);
    if (!u) throw status === 404 ? notFound('User', id) : badRequest(`User ${id} does not exist.`);
    return u;
  }

  findUser(userName: string): OrchUser | undefined {
    const k = lower(userName);
    for (const u of this.users.values()) if (lower(u.UserName) === k) return u;
    return undefined;
  }

  /** The Identity object a directory user entry stands for, found by identifier or else by name. */
  private resolveDirectory(type: OrchUserType, identifier: string | undefined, userName: string | undefined): string {
    const id = identifier ? lower(identifier) : undefined;
    const name = userName ?? '';
    switch (type) {
      case 'DirectoryUser': {
        const u = id ? this.identity.users.get(id) : this.identity.findUser(name);
        if (u) return u.id;
        break;
      }
      case 'DirectoryGroup': {
        const g = id ? this.identity.groups.get(id) : this.identity.findGroup(name);
        if (g) return g.id;
        break;
      }
      case 'DirectoryRobot': {
        const r = id ? this.identity.robotAccounts.get(id) : this.identity.findRobotAccount(name);
        if (r) return r.id;
        break;
      }
      default:
        throw badRequest(`The double does not model users of type ${type}.`);
    }
    throw badRequest(`The directory entity '${identifier ?? name}' (${type}) was not found.`);
  }

  private tenantRoleIds(input: UserInput): Set<number> | undefined {
    if (input.RolesList === undefined && input.UserRoles === undefined) return undefined;
    const ids = new Set<number>();
    for (const name of input.RolesList ?? []) ids.add(this.roleByName(name, 'tenant').Id);
    for (const ur of input.UserRoles ?? []) {
      const role = ur.RoleId !== undefined ? this.role(ur.RoleId, 400) : this.roleByName(ur.RoleName ?? '', 'tenant');
      this.checkScope(role, 'tenant');
      ids.add(role.Id);
    }
    return ids;
  }

  createUser(input: UserInput): OrchUser {
    const type = input.Type ?? 'User';
    if (input.OrganizationUnits && input.OrganizationUnits.length > 0) {
      throw badRequest('OrganizationUnits (classic folders) are not supported; assign folders with Folders/AssignUsers.');
    }
    let identityId: string | undefined;
    let userName = input.UserName;
    let email = input.EmailAddress;
    if (type.startsWith('Directory')) {
      identityId = this.resolveDirectory(type, input.DirectoryIdentifier, input.UserName);
      const u = this.identity.users.get(identityId);
      userName ??= u?.userName ?? this.identity.groups.get(identityId)?.name ?? this.identity.robotAccounts.get(identityId)?.name;
      email ??= u?.email;
      for (const other of this.users.values()) {
        if (other.identityId === identityId) throw nameTaken(userName ?? identityId);
      }
    }
    if (!userName?.trim()) throw badRequest('UserName is required.');
    if (this.findUser(userName)) throw nameTaken(userName);
    const roleIds = this.tenantRoleIds(input) ?? new Set<number>();
    const user: OrchUser = {
      Id: this.nextUserId++,
      Key: identityId ?? randomUUID(),
      UserName: userName,
      Name: input.Name,
      Surname: input.Surname,
      EmailAddress: email,
      Type: type,
      IsActive: input.IsActive ?? true,
      Domain: input.Domain ?? (identityId ? 'autogen' : undefined),
      DirectoryIdentifier: identityId ?? input.DirectoryIdentifier,
      CreationTime: this.now(),
      roleIds,
      identityId,
    };
    this.users.set(user.Id, user);
    return user;
  }

  /** PUT replaces the editable fields; PATCH (partial) changes only those sent and never roles. */
  updateUser(id: number, input: UserInput, partial: boolean): OrchUser {
    const user = this.user(id);
    if (input.Id !== undefined && input.Id !== 0 && input.Id !== id) throw badRequest(`The Id in the body (${input.Id}) is not the key (${id}).`);
    if (input.Type !== undefined && input.Type !== user.Type) throw badRequest(`The type of a user cannot change (${user.Type} → ${input.Type}).`);
    if (partial && (input.RolesList !== undefined || input.UserRoles !== undefined || input.OrganizationUnits !== undefined)) {
      throw badRequest('Cannot update roles or organization units via PATCH: use AssignRoles and Folders/AssignUsers.');
    }
    if (input.OrganizationUnits && input.OrganizationUnits.length > 0) throw badRequest('OrganizationUnits (classic folders) are not supported.');
    if (input.UserName !== undefined && lower(input.UserName) !== lower(user.UserName)) {
      if (user.identityId) throw badRequest('The UserName of a directory user cannot change.');
      if (!input.UserName.trim()) throw badRequest('UserName is required.');
      if (this.findUser(input.UserName)) throw nameTaken(input.UserName);
    }
    const roleIds = partial ? undefined : this.tenantRoleIds(input);
    if (input.UserName !== undefined) user.UserName = input.UserName;
    else if (!partial && !user.identityId) throw badRequest('UserName is required.');
    const fields = ['Name', 'Surname', 'EmailAddress'] as const;
    for (const f of fields) if (!partial || input[f] !== undefined) user[f] = input[f];
    if (input.IsActive !== undefined) user.IsActive = input.IsActive;
    if (roleIds) user.roleIds = roleIds;
    user.LastModificationTime = this.now();
    return user;
  }

  deleteUser(id: number): void {
    this.user(id);
    this.users.delete(id);
    for (const f of this.folders.values()) f.assignments.delete(id);
  }

  /** Forget the directory entries of a deleted Identity object (with their roles and folders). */
  forgetIdentity(identityId: string): void {
    for (const u of [...this.users.values()]) if (u.identityId === identityId) this.deleteUser(u.Id);
  }

  assignRoles(userId: number, roleIds: number[]): void {
    const user = this.user(userId);
    const roles = roleIds.map((r) => this.role(r, 400));
    for (const r of roles) this.checkScope(r, 'tenant');
    user.roleIds = new Set(roles.map((r) => r.Id));
  }

  // ---- roles -------------------------------------------------------------------------------

  role(id: number, status = 404): OrchRole {
    const r = this.roles.get(id);
    if (!r) throw status === 404 ? notFound('Role', id) : badRequest(`Role ${id} does not exist.`);
    return r;
  }

  roleByName(name: string, scope?: 'tenant' | 'folder'): OrchRole {
    const r = [...this.roles.values()].find((x) => lower(x.Name) === lower(name));
    if (!r) throw badRequest(`Role '${name}' does not exist.`);
    if (scope) this.checkScope(r, scope);
    return r;
  }

  private checkScope(role: OrchRole, scope: 'tenant' | 'folder'): void {
    const ok = scope === 'tenant' ? TENANT_SCOPED.has(role.Type) : FOLDER_SCOPED.has(role.Type);
    if (!ok) {
      throw new ApiError(400, ERROR_CODES.roleScope, `Role '${role.Name}' is a ${role.Type} role and cannot be assigned at ${scope} level.`);
    }
  }

  private permissions(roleId: number, input: RoleInput['Permissions']): Permission[] {
    const seen = new Set<string>();
    return (input ?? []).map((p) => {
      if (!p.Name || !PERMISSION_NAME.test(p.Name)) throw badRequest(`'${p.Name ?? ''}' is not a permission name (Entity.Action).`);
      if (seen.has(p.Name)) throw badRequest(`Permission ${p.Name} is listed twice.`);
      seen.add(p.Name);
      const perm: Permission = { Id: this.nextPermissionId++, Name: p.Name, IsGranted: p.IsGranted ?? true };
      if (p.Scope !== undefined) perm.Scope = p.Scope;
      void roleId;
      return perm;
    });
  }

  private insertRole(input: RoleInput): OrchRole {
    const id = this.nextRoleId++;
    const role: OrchRole = {
      Id: id,
      Name: input.Name ?? '',
      DisplayName: input.DisplayName ?? input.Name ?? '',
      Type: input.Type ?? 'Tenant',
      IsStatic: false,
      IsEditable: true,
      Permissions: this.permissions(id, input.Permissions),
    };
    if (input.Groups !== undefined) role.Groups = input.Groups;
    this.roles.set(id, role);
    return role;
  }

  createRole(input: RoleInput): OrchRole {
    const name = input.Name?.trim();
    if (!name) throw badRequest('The role Name is required.');
    if (input.Type === 'Mixed') throw badRequest('Creating mixed roles is not supported: create a Tenant or a Folder role.');
    if ([...this.roles.values()].some((r) => lower(r.Name) === lower(name))) throw nameTaken(name);
    return this.insertRole({ ...input, Name: name, Type: input.Type ?? derivedType(input.Permissions) });
  }

  updateRole(id: number, input: RoleInput): OrchRole {
    const role = this.role(id);
    if (role.IsStatic || !role.IsEditable) {
      throw new ApiError(400, ERROR_CODES.staticRole, `Role '${role.Name}' is a static role: it cannot be changed.`);
    }
    if (input.Id !== undefined && input.Id !== 0 && input.Id !== id) throw badRequest(`The Id in the body (${input.Id}) is not the key (${id}).`);
    const name = input.Name?.trim();
    if (!name) throw badRequest('The role Name is required.');
    if ([...this.roles.values()].some((r) => r.Id !== id && lower(r.Name) === lower(name))) throw nameTaken(name);
    if (input.Type !== undefined && input.Type !== role.Type) throw badRequest(`The type of role '${role.Name}' cannot change (${role.Type} → ${input.Type}).`);
    role.Permissions = this.permissions(id, input.Permissions);
    role.Name = name;
    role.DisplayName = input.DisplayName ?? name;
    if (input.Groups !== undefined) role.Groups = input.Groups;
    else delete role.Groups;
    return role;
  }

  deleteRole(id: number): void {
    const role = this.role(id);
    if (role.IsStatic) throw new ApiError(400, ERROR_CODES.staticRole, `Role '${role.Name}' is a static role: it cannot be deleted.`);
    this.roles.delete(id);
    for (const u of this.users.values()) u.roleIds.delete(id);
    for (const f of this.folders.values()) for (const roles of f.assignments.values()) roles.delete(id);
  }

  /** Roles/SetUsers: adds and removes users of one tenant role (not a replace). */
  setUsers(roleId: number, added: number[], removed: number[]): void {
    const role = this.role(roleId);
    this.checkScope(role, 'tenant');
    const both = added.filter((a) => removed.includes(a));
    if (both.length > 0) throw badRequest(`Users ${both.join(', ')} are both added and removed.`);
    const addUsers = added.map((u) => this.user(u, 400));
    const removeUsers = removed.map((u) => this.user(u, 400));
    for (const u of addUsers) u.roleIds.add(roleId);
    for (const u of removeUsers) u.roleIds.delete(roleId);
  }

  // ---- folders -----------------------------------------------------------------------------

  folder(id: number, status = 404): OrchFolder {
    const f = this.folders.get(id);
    if (!f) throw status === 404 ? notFound('Folder', id) : badRequest(`Folder ${id} does not exist.`);
    return f;
  }

  path(f: OrchFolder): string {
    const names: string[] = [];
    for (let cur: OrchFolder | undefined = f; cur; cur = cur.ParentId !== undefined ? this.folders.get(cur.ParentId) : undefined) names.unshift(cur.DisplayName);
    return names.join('/');
  }

  folderByPath(path: string): OrchFolder | undefined {
    const k = lower(path);
    for (const f of this.folders.values()) if (lower(this.path(f)) === k) return f;
    return undefined;
  }

  /** The folder and its ancestors, nearest first. */
  ancestry(f: OrchFolder): OrchFolder[] {
    const out: OrchFolder[] = [];
    for (let cur: OrchFolder | undefined = f; cur; cur = cur.ParentId !== undefined ? this.folders.get(cur.ParentId) : undefined) out.push(cur);
    return out;
  }

  descendants(f: OrchFolder): OrchFolder[] {
    const out: OrchFolder[] = [f];
    for (let i = 0; i < out.length; i++) {
      const cur = out[i] as OrchFolder;
      for (const c of this.folders.values()) if (c.ParentId === cur.Id) out.push(c);
    }
    return out;
  }

  private checkFolderName(name: string, parentId: number | undefined, self?: number): string {
    const n = name.trim();
    if (!n) throw badRequest('DisplayName is required.');
    if (/[/\\]/.test(n)) throw badRequest(`A folder name cannot contain '/' or '\\' ('${n}').`);
    for (const f of this.folders.values()) {
      if (f.Id !== self && f.ParentId === parentId && lower(f.DisplayName) === lower(n)) throw nameTaken(n);
    }
    return n;
  }

  createFolder(input: FolderInput): OrchFolder {
    if (input.FolderType !== undefined && input.FolderType !== 'Standard') throw badRequest(`The double creates Standard folders only, not ${input.FolderType}.`);
    let parentId = input.ParentId;
    if (input.ParentKey !== undefined) {
      const parent = [...this.folders.values()].find((f) => f.Key === lower(input.ParentKey ?? ''));
      if (!parent) throw badRequest(`Parent folder ${input.ParentKey} does not exist.`);
      if (parentId !== undefined && parentId !== parent.Id) throw badRequest('ParentId and ParentKey name different folders.');
      parentId = parent.Id;
    }
    if (parentId !== undefined) this.folder(parentId, 400);
    const folder: OrchFolder = {
      Id: this.nextFolderId++,
      Key: randomUUID(),
      DisplayName: this.checkFolderName(input.DisplayName, parentId),
      Description: input.Description,
      ParentId: parentId,
      assignments: new Map(),
    };
    this.folders.set(folder.Id, folder);
    return folder;
  }

  updateFolder(id: number, input: FolderInput): OrchFolder {
    const folder = this.folder(id);
    if (input.Id !== undefined && input.Id !== 0 && input.Id !== id) throw badRequest(`The Id in the body (${input.Id}) is not the key (${id}).`);
    if (input.ParentId !== undefined && input.ParentId !== folder.ParentId) throw badRequest('A folder is moved with MoveFolder, not PUT.');
    folder.DisplayName = this.checkFolderName(input.DisplayName, folder.ParentId, id);
    folder.Description = input.Description;
    return folder;
  }

  deleteFolder(id: number): void {
    const folder = this.folder(id);
    const subtree = this.descendants(folder);
    const used = subtree.filter((f) => f.assignments.size > 0);
    if (used.length > 0) {
      throw new ApiError(
        409,
        ERROR_CODES.folderInUse,
        `Folder '${this.path(folder)}' cannot be deleted: user associations exist in ${used.map((f) => `'${this.path(f)}'`).join(', ')}.`,
      );
    }
    for (const f of subtree) this.folders.delete(f.Id);
  }

  /** Folders/AssignUsers: for every (user, folder) pair named, the folder roles become RoleIds. */
  assignUsers(userIds: number[], rolesPerFolder: { FolderId?: number; RoleIds?: number[] }[]): void {
    if (userIds.length === 0) throw badRequest('assignments.UserIds is empty.');
    if (rolesPerFolder.length === 0) throw badRequest('assignments.RolesPerFolder is empty.');
    const users = userIds.map((u) => this.user(u, 400));
    const plan = rolesPerFolder.map((rpf) => {
      if (rpf.FolderId === undefined) throw badRequest('RolesPerFolder[].FolderId is required.');
      const folder = this.folder(rpf.FolderId, 400);
      const roles = (rpf.RoleIds ?? []).map((r) => this.role(r, 400));
      for (const r of roles) this.checkScope(r, 'folder');
      return { folder, roleIds: roles.map((r) => r.Id) };
    });
    for (const { folder, roleIds } of plan) for (const u of users) folder.assignments.set(u.Id, new Set(roleIds));
  }

  removeUserFromFolder(folderId: number, userId: number): void {
    const folder = this.folder(folderId);
    this.user(userId, 400);
    folder.assignments.delete(userId);
  }

  /** The Orchestrator entries of the directory groups a user belongs to (through Identity). */
  groupEntriesOf(user: OrchUser): OrchUser[] {
    if (!user.identityId) return [];
    const groupIds = new Set(this.identity.groupIdsOf(user.identityId));
    return [...this.users.values()].filter((u) => u.Type === 'DirectoryGroup' && u.identityId && groupIds.has(u.identityId));
  }

  // ---- DTOs (shapes of the vendor's UserDto, RoleDto, FolderDto, ...) ----------------------

  /** "Since 21.10 local users may come back with Type: DirectoryUser" (reference README), when asked to. */
  private reportedType(u: OrchUser): OrchUserType {
    return u.Type === 'User' && this.options.localUsersAsDirectoryUsers ? 'DirectoryUser' : u.Type;
  }

  userDto(u: OrchUser, expand: Set<string>): Record<string, unknown> {
    const roles = [...u.roleIds].map((r) => this.roles.get(r)).filter((r): r is OrchRole => r !== undefined);
    const dto: Record<string, unknown> = {
      Id: u.Id,
      Key: u.Key,
      UserName: u.UserName,
      FullName: [u.Name, u.Surname].filter(Boolean).join(' ') || u.UserName,
      IsActive: u.IsActive,
      CreationTime: u.CreationTime,
      Type: this.reportedType(u),
      ProvisionType: 'Manual',
      RolesList: roles.map((r) => r.Name),
      LoginProviders: [],
      TenantId: this.tenantId,
      TenancyName: this.name,
      TenantDisplayName: this.name,
      TenantKey: this.key,
      MayHaveUserSession: u.Type !== 'DirectoryGroup',
      MayHaveRobotSession: u.Type === 'User' || u.Type === 'DirectoryUser',
      MayHaveUnattendedSession: u.Type === 'Robot' || u.Type === 'DirectoryRobot',
      MayHavePersonalWorkspace: false,
      RestrictToPersonalWorkspace: false,
    };
    if (u.Name !== undefined) dto.Name = u.Name;
    if (u.Surname !== undefined) dto.Surname = u.Surname;
    if (u.EmailAddress !== undefined) dto.EmailAddress = u.EmailAddress;
    if (u.Domain !== undefined) dto.Domain = u.Domain;
    if (u.DirectoryIdentifier !== undefined) dto.DirectoryIdentifier = u.DirectoryIdentifier;
    if (u.LastModificationTime !== undefined) dto.LastModificationTime = u.LastModificationTime;
    if (expand.has('UserRoles')) {
      dto.UserRoles = roles.map((r) => ({ Id: u.Id * 1000 + r.Id, UserId: u.Id, RoleId: r.Id, UserName: u.UserName, RoleName: r.Name, RoleType: r.Type }));
    }
    if (expand.has('OrganizationUnits')) dto.OrganizationUnits = [];
    return dto;
  }

  roleDto(r: OrchRole, expand: Set<string>): Record<string, unknown> {
    const dto: Record<string, unknown> = {
      Id: r.Id,
      Name: r.Name,
      DisplayName: r.DisplayName,
      Type: r.Type,
      IsStatic: r.IsStatic,
      IsEditable: r.IsEditable,
    };
    if (r.Groups !== undefined) dto.Groups = r.Groups;
    if (expand.has('Permissions')) dto.Permissions = r.Permissions.map((p) => ({ ...p, RoleId: r.Id }));
    return dto;
  }

  folderDto(f: OrchFolder): Record<string, unknown> {
    const dto: Record<string, unknown> = {
      Id: f.Id,
      Key: f.Key,
      DisplayName: f.DisplayName,
      FullyQualifiedName: this.path(f),
      FolderType: 'Standard',
      IsPersonal: false,
      ProvisionType: 'Automatic',
      PermissionModel: 'FineGrained',
      FeedType: 'Processes',
    };
    if (f.Description !== undefined) dto.Description = f.Description;
    if (f.ParentId !== undefined) {
      dto.ParentId = f.ParentId;
      dto.ParentKey = this.folders.get(f.ParentId)?.Key;
    }
    return dto;
  }

  simpleFolder(f: OrchFolder): Record<string, unknown> {
    return { Id: f.Id, DisplayName: f.DisplayName, FullyQualifiedName: this.path(f) };
  }

  /** Rows of GetUsersForFolder: who holds roles on the folder, directly or (optionally) from ancestors. */
  usersForFolder(folderId: number, includeInherited: boolean): Record<string, unknown>[] {
    const folder = this.folder(folderId);
    const chain = includeInherited ? this.ancestry(folder) : [folder];
    const byUser = new Map<number, { direct: number[]; roles: Record<string, unknown>[] }>();
    for (const f of chain) {
      for (const [userId, roleIds] of f.assignments) {
        const entry = byUser.get(userId) ?? { direct: [], roles: [] };
        byUser.set(userId, entry);
        entry.direct.push(f.Id);
        for (const roleId of roleIds) {
          const role = this.roles.get(roleId);
          if (!role) continue;
          const r: Record<string, unknown> = { Id: role.Id, Name: role.Name, RoleType: role.Type, Origin: f === folder ? 'Assigned' : 'Inherited' };
          if (f !== folder) r.InheritedFromFolder = this.simpleFolder(f);
          entry.roles.push(r);
        }
      }
    }
    return [...byUser.entries()]
      .sort(([a], [b]) => a - b)
      .map(([userId, entry]) => {
        const u = this.user(userId);
        return {
          Id: u.Id,
          UserEntity: {
            Id: u.Id,
            UserName: u.UserName,
            FullName: [u.Name, u.Surname].filter(Boolean).join(' ') || u.UserName,
            Type: this.reportedType(u),
            IsInherited: !entry.direct.includes(folder.Id),
            AssignedToFolderIds: entry.direct,
            MayHaveAttended: u.Type === 'User' || u.Type === 'DirectoryUser',
            MayHaveUnattended: u.Type === 'Robot' || u.Type === 'DirectoryRobot',
            Source: 'Orchestrator',
          },
          Roles: entry.roles,
          HasAlertsEnabled: false,
        };
      });
  }

  /**
   * GetAllRolesForUser: the principal's tenant roles and a page of its folder assignments,
   * including those it holds through its directory groups (the Users of each role say who).
   */
  rolesForUser(userName: string, type: string, skip: number, take: number): Record<string, unknown> {
    const types: Record<string, OrchUserType[]> = {
      User: ['User', 'DirectoryUser'],
      Group: ['DirectoryGroup'],
      Robot: ['Robot', 'DirectoryRobot'],
      ExternalApplication: ['DirectoryExternalApplication'],
      Machine: [],
    };
    const user = this.findUser(userName);
    if (!user || !(types[type] ?? []).includes(user.Type)) throw notFound(type, userName);
    const principals = [user, ...this.groupEntriesOf(user)];
    const entity = (p: OrchUser): Record<string, unknown> => ({ Id: p.Id, UserName: p.UserName, Type: this.reportedType(p), IsInherited: p !== user });
    const roleUsers = (pairs: [OrchUser, number][]): Record<string, unknown>[] => {
      const byRole = new Map<number, OrchUser[]>();
      for (const [p, roleId] of pairs) byRole.set(roleId, [...(byRole.get(roleId) ?? []), p]);
      return [...byRole.entries()]
        .sort(([a], [b]) => a - b)
        .map(([roleId, ps]) => ({ Id: roleId, Name: this.role(roleId).Name, Users: ps.map(entity) }));
    };
    const tenantRoles = roleUsers(principals.flatMap((p) => [...p.roleIds].map((r): [OrchUser, number] => [p, r])));
    const items = [...this.folders.values()]
      .filter((f) => principals.some((p) => f.assignments.has(p.Id)))
      .sort((a, b) => this.path(a).localeCompare(this.path(b)));
    const page = items.slice(skip, skip + take).map((f) => ({
      Folder: this.simpleFolder(f),
      Roles: roleUsers(principals.flatMap((p) => [...(f.assignments.get(p.Id) ?? [])].map((r): [OrchUser, number] => [p, r]))),
    }));
    return { Id: user.Id, TenantRoles: tenantRoles, PageItems: page, Count: items.length };
  }
}

function derivedType(perms: RoleInput['Permissions']): RoleType {
  const scopes = new Set((perms ?? []).map((p) => p.Scope ?? 'GlobalOrFolder'));
  if (scopes.has('Global') && scopes.has('Folder')) throw badRequest('Creating mixed roles is not supported: the permissions span tenant and folder scopes.');
  return scopes.has('Folder') ? 'Folder' : 'Tenant';
}
