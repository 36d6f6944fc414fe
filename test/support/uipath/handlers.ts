/**
 * One function per implemented operation (by the vendor's operationId). Each receives validated
 * input (path and query parameters converted to their declared types, the body checked against
 * the vendor's schema) and returns the status and body to send, which the server validates in
 * turn. Operations of the documents that are not here answer 501.
 */
import type { Identity } from './identity.js';
import type { OrchestratorTenant, FolderInput, RoleInput, UserInput } from './orchestrator.js';
import { applyQuery, type CollectionQuery, type EntityType, type Row } from './odata.js';
import { badRequest } from './errors.js';

export interface HandlerContext {
  params: Record<string, unknown>;
  body: unknown;
  tenant: OrchestratorTenant;
  identity: Identity;
  /** Entity type of the operation's collection result (for $filter/$select checks). */
  entityType?: EntityType;
  maxTop: number;
  pageSize: number;
  /** Base URL of the API as the client addressed it, for @odata.context. */
  base: string;
  /** The request's URL without its query, for @odata.nextLink. */
  nextLinkBase: string;
}

export interface HandlerResult {
  status: number;
  body?: unknown;
}

type Handler = (c: HandlerContext) => HandlerResult;

const EXPANDABLE: Record<string, string[]> = {
  UserDto: ['UserRoles', 'OrganizationUnits'],
  RoleDto: ['Permissions'],
  FolderDto: [],
  UserRolesDto: [],
};

function expandSet(c: HandlerContext, type: string): Set<string> {
  const raw = c.params.$expand as string | undefined;
  const set = new Set<string>();
  if (raw === undefined) return set;
  for (const name of raw.split(',').map((s) => s.trim())) {
    if (!(EXPANDABLE[type] ?? []).includes(name)) {
      throw badRequest(`Invalid OData query options. Could not find a navigation property named '${name}' on type 'UiPath.Server.Configuration.OData.${type}'.`);
    }
    set.add(name);
  }
  return set;
}

function select(row: Row, c: HandlerContext): Row {
  const raw = c.params.$select as string | undefined;
  if (raw === undefined) return row;
  const names = raw.split(',').map((s) => s.trim());
  if (names.includes('*')) return row;
  return Object.fromEntries(names.filter((n) => n in row).map((n) => [n, row[n]]));
}

function collection(c: HandlerContext, entitySet: string, rows: Row[]): HandlerResult {
  if (!c.entityType) throw new Error('collection without an entity type');
  const q: CollectionQuery = {
    $filter: c.params.$filter as string | undefined,
    $orderby: c.params.$orderby as string | undefined,
    $select: c.params.$select as string | undefined,
    $top: c.params.$top as number | undefined,
    $skip: c.params.$skip as number | undefined,
    $count: c.params.$count as boolean | undefined,
  };
  const page = applyQuery(rows, q, c.entityType, c.maxTop, c.pageSize);
  const body: Record<string, unknown> = { '@odata.context': `${c.base}/odata/$metadata#${entitySet}` };
  if (page.count !== undefined) body['@odata.count'] = page.count;
  body.value = page.rows;
  if (page.nextSkip !== undefined) {
    // The rest of what was asked: $top shrinks by what this page holds, $skip moves past it.
    const rest: Record<string, unknown> = { ...q, $skip: page.nextSkip };
    if (q.$top !== undefined) rest.$top = q.$top - (page.nextSkip - (q.$skip ?? 0));
    const query = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
      .join('&');
    body['@odata.nextLink'] = `${c.nextLinkBase}?${query}`;
  }
  return { status: 200, body };
}

function entity(c: HandlerContext, entitySet: string, row: Row, status = 200): HandlerResult {
  return { status, body: { '@odata.context': `${c.base}/odata/$metadata#${entitySet}/$entity`, ...select(row, c) } };
}

const key = (c: HandlerContext): number => c.params.key as number;

/** Identity's own paging (top default 10, at most 1000; skip), with its searchTerm and sort. */
function identityPage(rows: Row[], c: HandlerContext, searchable: string[]): HandlerResult {
  const term = (c.params.searchTerm as string | undefined)?.toLowerCase();
  let out = term ? rows.filter((r) => searchable.some((f) => typeof r[f] === 'string' && (r[f] as string).toLowerCase().includes(term))) : rows;
  const sortBy = c.params.sortBy as string | undefined;
  if (sortBy !== undefined) {
    if (!(sortBy in (out[0] ?? { [sortBy]: 1 }))) throw badRequest(`Cannot sort by '${sortBy}'.`);
    const dir = c.params.sortOrder === 'desc' ? -1 : 1;
    out = [...out].sort((a, b) => dir * String(a[sortBy] ?? '').localeCompare(String(b[sortBy] ?? '')));
  }
  const top = (c.params.top as number | undefined) ?? 10;
  const skip = (c.params.skip as number | undefined) ?? 0;
  return { status: 200, body: { totalCount: out.length, results: out.slice(skip, skip + top) } };
}

const identityOk = { succeeded: true, errors: [] };

export const HANDLERS: Record<string, Handler> = {
  // ---- Orchestrator: users ------------------------------------------------------------------
  Users_Get: (c) => {
    const expand = expandSet(c, 'UserDto');
    return collection(c, 'Users', [...c.tenant.users.values()].map((u) => c.tenant.userDto(u, expand)));
  },
  Users_GetById: (c) => entity(c, 'Users', c.tenant.userDto(c.tenant.user(key(c)), expandSet(c, 'UserDto'))),
  Users_Post: (c) => entity(c, 'Users', c.tenant.userDto(c.tenant.createUser(c.body as UserInput), new Set()), 201),
  Users_PutById: (c) => {
    c.tenant.updateUser(key(c), c.body as UserInput, false);
    return { status: 200 };
  },
  Users_PatchById: (c) => {
    c.tenant.updateUser(key(c), c.body as UserInput, true);
    return { status: 200 };
  },
  Users_DeleteById: (c) => {
    c.tenant.deleteUser(key(c));
    return { status: 204 };
  },
  Users_AssignRolesById: (c) => {
    c.tenant.assignRoles(key(c), (c.body as { roleIds: number[] }).roleIds);
    return { status: 200 };
  },

  // ---- Orchestrator: roles ------------------------------------------------------------------
  Roles_Get: (c) => {
    const expand = expandSet(c, 'RoleDto');
    return collection(c, 'Roles', [...c.tenant.roles.values()].map((r) => c.tenant.roleDto(r, expand)));
  },
  Roles_GetById: (c) => entity(c, 'Roles', c.tenant.roleDto(c.tenant.role(key(c)), expandSet(c, 'RoleDto'))),
  Roles_Post: (c) => entity(c, 'Roles', c.tenant.roleDto(c.tenant.createRole(c.body as RoleInput), new Set(['Permissions'])), 201),
  Roles_PutById: (c) => {
    c.tenant.updateRole(key(c), c.body as RoleInput);
    return { status: 200 };
  },
  Roles_DeleteById: (c) => {
    c.tenant.deleteRole(key(c));
    return { status: 204 };
  },
  Roles_SetUsersById: (c) => {
    const b = c.body as { addedUserIds: number[]; removedUserIds: number[] };
    c.tenant.setUsers(key(c), b.addedUserIds, b.removedUserIds);
    return { status: 204 };
  },

  // ---- Orchestrator: folders ----------------------------------------------------------------
  Folders_Get: (c) => {
    expandSet(c, 'FolderDto');
    return collection(c, 'Folders', [...c.tenant.folders.values()].map((f) => c.tenant.folderDto(f)));
  },
  Folders_GetById: (c) => {
    expandSet(c, 'FolderDto');
    return entity(c, 'Folders', c.tenant.folderDto(c.tenant.folder(key(c))));
  },
  Folders_Post: (c) => entity(c, 'Folders', c.tenant.folderDto(c.tenant.createFolder(c.body as FolderInput)), 201),
  Folders_PutById: (c) => entity(c, 'Folders', c.tenant.folderDto(c.tenant.updateFolder(key(c), c.body as FolderInput))),
  Folders_DeleteById: (c) => {
    c.tenant.deleteFolder(key(c));
    return { status: 204 };
  },
  Folders_AssignUsers: (c) => {
    const a = (c.body as { assignments: { UserIds?: number[]; RolesPerFolder?: { FolderId?: number; RoleIds?: number[] }[] } }).assignments;
    c.tenant.assignUsers(a.UserIds ?? [], a.RolesPerFolder ?? []);
    return { status: 204 };
  },
  Folders_RemoveUserFromFolderById: (c) => {
    c.tenant.removeUserFromFolder(key(c), (c.body as { userId: number }).userId);
    return { status: 204 };
  },
  Folders_GetUsersForFolderByKeyAndIncludeinherited: (c) => {
    expandSet(c, 'UserRolesDto');
    if (c.params.includeAlertsEnabled !== undefined && typeof c.params.includeAlertsEnabled !== 'boolean') throw badRequest('includeAlertsEnabled');
    return collection(c, 'UserRoles', c.tenant.usersForFolder(key(c), c.params.includeInherited as boolean));
  },
  Folders_GetAllRolesForUserByUsernameAndSkipAndTake: (c) => {
    const skip = c.params.skip as number;
    const take = c.params.take as number;
    if (skip < 0 || take < 0) throw badRequest('skip and take must not be negative.');
    const body = c.tenant.rolesForUser(c.params.username as string, (c.params.type as string | undefined) ?? 'User', skip, take);
    return { status: 200, body: { '@odata.context': `${c.base}/odata/$metadata#UiPath.Server.Configuration.OData.UserRoleAssignmentsDto`, ...body } };
  },

  // ---- Identity: users ----------------------------------------------------------------------
  User_GetUsers: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    return identityPage([...c.identity.users.values()].map((u) => c.identity.userDto(u)), c, ['userName', 'email', 'name', 'surname', 'displayName']);
  },
  User_GetUser: (c) => ({ status: 200, body: c.identity.userDto(c.identity.user(c.params.userId as string)) }),
  User_CreateUser: (c) => {
    c.identity.createUser(c.body as Parameters<Identity['createUser']>[0]);
    return { status: 200, body: identityOk };
  },
  User_Update: (c) => {
    c.identity.updateUser(c.params.userId as string, c.body as Parameters<Identity['updateUser']>[1]);
    return { status: 200, body: identityOk };
  },
  User_Delete: (c) => {
    c.identity.deleteUser(c.params.userId as string);
    return { status: 204 };
  },

  // ---- Identity: groups ---------------------------------------------------------------------
  Group_GetGroups: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    return { status: 200, body: [...c.identity.groups.values()].map((g) => c.identity.groupDto(g, false)) };
  },
  Group_GetGroup: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    return { status: 200, body: c.identity.groupDto(c.identity.group(c.params.groupId as string), true) };
  },
  Group_CreateGroup: (c) => ({ status: 201, body: c.identity.groupDto(c.identity.createGroup(c.body as Parameters<Identity['createGroup']>[0]), true) }),
  Group_UpdateGroup: (c) => ({
    status: 200,
    body: c.identity.groupDto(c.identity.updateGroup(c.params.groupId as string, c.body as Parameters<Identity['updateGroup']>[1]), true),
  }),
  Group_Delete: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    c.identity.deleteGroup(c.params.groupId as string);
    return { status: 204 };
  },

  // ---- Identity: robot accounts -------------------------------------------------------------
  RobotAccount_GetRobotAccounts: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    return identityPage([...c.identity.robotAccounts.values()].map((r) => c.identity.robotAccountDto(r)), c, ['name', 'displayName']);
  },
  RobotAccount_GetRobotAccount: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    return { status: 200, body: c.identity.robotAccountDto(c.identity.robotAccount(c.params.robotAccountId as string)) };
  },
  RobotAccount_CreateRobotAccount: (c) => ({
    status: 201,
    body: c.identity.robotAccountDto(c.identity.createRobotAccount(c.body as Parameters<Identity['createRobotAccount']>[0])),
  }),
  RobotAccount_UpdateRobotAccount: (c) => ({
    status: 200,
    body: c.identity.robotAccountDto(
      c.identity.updateRobotAccount(c.params.robotAccountId as string, c.body as Parameters<Identity['updateRobotAccount']>[1]),
    ),
  }),
  RobotAccount_Delete: (c) => {
    c.identity.checkPartition(c.params.partitionGlobalId as string, 'path');
    c.identity.deleteRobotAccount(c.params.robotAccountId as string);
    return { status: 204 };
  },
};
