/**
 * The decision engine (contract section 3). A TenantIndex is built from a tenant's state and is
 * immutable; when the tenant changes, the decision index swaps in a new one, built from scratch
 * or derived from the previous index and the changes (`withChanges`), which shares everything
 * the changes did not touch.
 *
 * Every binding is compiled once, when the index is built: its role (a small id into a table of
 * which role holds which permission), its folder (a small id into FolderIds), objects,
 * environment and expiry. Bindings are filed under each subject they name. Cost of a check: one
 * lookup for the user's record (the lists of the subjects the user is: themselves and their
 * existing groups; `global` is read apart), the ids of the check's folder and its ancestors
 * (one lookup), then a scan of each list's (role id, folder id, binding) triples, reading a
 * binding only when its role holds the permission and its folder covers the check's. Nothing in
 * a check grows with the tenant's total number of bindings, nothing is compiled or cached per
 * user, and the memory a check touches is kept to a few arrays: at a million bindings the heap
 * is far larger than any cache, and every cold line read costs more than the arithmetic.
 *
 * `who` works from the other end: bindings are also filed by folder (and tenant-wide ones by
 * role), groups know their members, so the holders of a permission are found from the few
 * bindings that can grant it, not by checking every user.
 */
import {
  ALL_PERMISSIONS, BUILT_IN_ROLE_NAMES, GLOBAL_GROUP, ROBOT_ROLE, parsePermission, type Scope,
} from './catalog.js';
import { directoryGroupsById, parseDirectoryGroups } from './directory.js';
import { LayeredMap } from './layered-map.js';
import { RequestError } from './request-error.js';
import { expiryMs } from './time.js';
import { FolderIds, folderAncestry, folderCovers, folderPathProblem } from './folders.js';
import { MAX_FOLDER_DEPTH } from './schemas.js';
import type { AnyEntry, Entry, RoleBindingSpec, Session, TenantState } from './types.js';

export interface Grant {
  role: string;
  /** The binding that grants; null for the `robot` role a Robot user holds implicitly. */
  binding: string | null;
  /**
   * `user` for an explicit grant, `group:NAME` for one inherited from a declared group,
   * `directory:NAME` for one inherited from a directory group through a login session.
   */
  via: string;
  /** The binding's folder, or null for a tenant-wide grant. */
  folder: string | null;
  /** For `directory:` grants through a session: when the session (and so the grant) ends. */
  sessionExpiresAt?: string;
}

export interface PermissionGrant extends Grant {
  permission: string;
  resources?: { kind: string; name: string }[];
  environment?: string;
  expiresAt?: string;
}

export interface CheckRequest {
  user: string;
  permission: string;
  folder?: string;
  /** `Kind/name`, e.g. `Process/invoice-bot`. */
  resource?: string;
  environment?: string;
  /**
   * Directory group ids to answer this one question with, instead of the user's session
   * (contract section 7): the user's directory groups are those of the tenant among them.
   */
  directoryGroups?: string[];
}

/**
 * Why a check was denied: the one set of names, used by the CLI (`check --output json`) and the
 * HTTP API alike. `TenantNotFound`: the store holds no such tenant, so its users are unknown.
 */
export const DENY_REASONS = ['UserNotFound', 'UserInactive', 'NoGrant', 'TenantNotFound'] as const;
export type DenyReason = (typeof DENY_REASONS)[number];

/** The answer for a tenant the store does not hold: a denial, not an error. */
export function tenantNotFound(): { allowed: false; grants: []; reason: 'TenantNotFound' } {
  return { allowed: false, grants: [], reason: 'TenantNotFound' };
}

export interface CheckResult {
  allowed: boolean;
  grants: Grant[];
  /** Why it was denied, when it was. */
  reason?: DenyReason;
  /** The User's object name, when the user is known. */
  user?: string;
}

export interface ParsedRequest {
  permission: string;
  /** Index of the permission in ALL_PERMISSIONS: its bit in a role's permission set. */
  permissionId: number;
  scope: Scope;
  folder: string | null;
  resource: string | null;
  environment: string | null;
  /** Directory group ids given with the question (null: use the user's session). */
  directoryGroups: readonly string[] | null;
}

export function parseRequest(req: Omit<CheckRequest, 'user'>): ParsedRequest {
  const parsed = parsePermission(req.permission);
  if (!parsed) throw new RequestError(`unknown permission ${JSON.stringify(req.permission)}: expected Resource.Action from the catalog, e.g. Jobs.Create`);
  const folder = req.folder === undefined || req.folder === '' ? null : req.folder;
  if (parsed.scope === 'Folder' && folder === null) {
    throw new RequestError(`${parsed.resource} is a folder resource: the check must name a folder`);
  }
  if (parsed.scope === 'Tenant' && folder !== null) {
    throw new RequestError(`${parsed.resource} is a tenant resource: the check must not name a folder`);
  }
  const folderProblem = folder === null ? undefined : folderPathProblem(folder);
  if (folderProblem) throw new RequestError(`invalid folder: ${folderProblem}`);
  let resource: string | null = null;
  if (req.resource !== undefined && req.resource !== '') {
    const slash = req.resource.indexOf('/');
    if (slash <= 0 || slash === req.resource.length - 1) {
      throw new RequestError(`invalid resource ${JSON.stringify(req.resource)}: expected Kind/name, e.g. Process/invoice-bot`);
    }
    resource = req.resource;
  }
  const environment = req.environment === undefined || req.environment === '' ? null : req.environment;
  const directoryGroups = req.directoryGroups === undefined ? null : parseDirectoryGroups(req.directoryGroups);
  return { permission: req.permission, permissionId: PERMISSION_IDS.get(req.permission)!, scope: parsed.scope, folder, resource, environment, directoryGroups };
}

/** Code-unit order (as Array.prototype.sort): cheap, and locale-independent. */
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const BY_VIA = (a: Grant, b: Grant): number =>
  (a.via === 'user' ? 0 : 1) - (b.via === 'user' ? 0 : 1) || cmp(a.via, b.via) || cmp(a.role, b.role) || cmp(a.binding ?? '', b.binding ?? '');

const GLOBAL_VIA = `group:${GLOBAL_GROUP}`;

/** Permission -> its bit; the catalog has 96 permissions, so a role's set is 3 words. */
const PERMISSION_IDS = new Map<string, number>(ALL_PERMISSIONS.map((p, i) => [p, i]));
const PERMISSION_SCOPES: readonly Scope[] = ALL_PERMISSIONS.map((p) => parsePermission(p)!.scope);
const WORDS = Math.ceil(ALL_PERMISSIONS.length / 32);

const hasBit = (bits: Uint32Array, id: number): boolean => (bits[id >>> 5]! & (1 << (id & 31))) !== 0;

interface CompiledRole {
  name: string;
  /**
   * Small integer naming the role in this index's permission table (`RoleTable`). A recompiled
   * role keeps the id of its name, so ids stay few however often roles change.
   */
  id: number;
  /** The role's permissions, one bit per ALL_PERMISSIONS index. */
  bits: Uint32Array;
  /** Built-in tenant roles are the only tenant roles whose tenant-wide bindings reach folders. */
  builtIn: boolean;
}

/**
 * Which roles hold which permission, as one byte per (permission, role id): `holds[p * width +
 * role.id]`. A check reads the row of its permission (a few hundred bytes, hot in the cache)
 * instead of touching every binding's role or keeping a mask per binding.
 */
interface RoleTable {
  width: number;
  holds: Uint8Array;
  /** By role id: 1 for the built-in roles, whose tenant-wide bindings reach every folder. */
  reachesFolders: Uint8Array;
  /** Role name -> id, ids ever given (a deleted role's id stays reserved for its name). */
  ids: ReadonlyMap<string, number>;
}

function roleTable(roles: ReadonlyMap<string, CompiledRole>, ids: ReadonlyMap<string, number>): RoleTable {
  const width = Math.max(1, ids.size);
  const holds = new Uint8Array(ALL_PERMISSIONS.length * width);
  const reachesFolders = new Uint8Array(width);
  for (const r of roles.values()) {
    for (let p = 0; p < ALL_PERMISSIONS.length; p++) if (hasBit(r.bits, p)) holds[p * width + r.id] = 1;
    if (r.builtIn) reachesFolders[r.id] = 1;
  }
  return { width, holds, reachesFolders, ids };
}

/** A binding as checks read it, compiled once per index (shared by every subject it names). */
interface CompiledBinding {
  role: CompiledRole;
  /**
   * The binding's spec as written: its subjects (`who` walks from a binding to the users it
   * reaches), resources and expiry as `permissions` reports them.
   */
  spec: Pick<RoleBindingSpec, 'subjects' | 'resources' | 'expiresAt'>;
  /** The binding's name; null for the `robot` role a Robot user holds implicitly. */
  binding: string | null;
  folder: string | null;
  /** The folder's id in the index's FolderIds; -1 for a tenant-wide binding. */
  folderId: number;
  resources: Set<string> | null;
  environment: string | null;
  /** null when the binding never expires (a field that is most often null holds no number box). */
  expiresAtMs: number | null;
}

const expired = (g: CompiledBinding, now: number): boolean => g.expiresAtMs !== null && now > g.expiresAtMs;

/**
 * The compiled bindings naming one subject, and how grants through it are explained, in one flat
 * array: `[via, n, roleId0, folderId0, ..., roleId(n-1), folderId(n-1), binding0, ...,
 * binding(n-1)]`. A check reads the ids (small integers held in the array itself, packed
 * together), tests each role id against its permission's row of the RoleTable and each folder id
 * against the ids of its folder and ancestors, and reads a binding only when both say it may
 * grant. At a million bindings the heap is far larger than any cache: memory touched per check
 * (each cache line, object and string read is a likely miss) is what a check costs.
 */
type SubjectList = readonly (string | number | CompiledBinding)[];

const viaOf = (list: SubjectList): string => list[0] as string;

function subjectList(via: string, bindings: readonly CompiledBinding[]): SubjectList {
  const n = bindings.length;
  const list = new Array<string | number | CompiledBinding>(2 + 3 * n);
  list[0] = via;
  list[1] = n;
  for (let k = 0; k < n; k++) {
    const g = bindings[k]!;
    list[2 + 2 * k] = g.role.id;
    list[3 + 2 * k] = g.folderId;
    list[2 + 2 * n + k] = g;
  }
  return list;
}

function bindingsOf(list: SubjectList): CompiledBinding[] {
  return list.slice(2 + 2 * (list[1] as number)) as CompiledBinding[];
}

/** What an index holds: the tenant's objects and what is compiled from them. */
interface IndexParts {
  users: LayeredMap<Entry<'User'>>;
  groups: LayeredMap<Entry<'Group'>>;
  roles: ReadonlyMap<string, Entry<'Role'>>;
  bindings: LayeredMap<Entry<'RoleBinding'>>;
  usersByEmail: LayeredMap<Entry<'User'>>;
  compiledRoles: Map<string, CompiledRole>;
  roleTable: RoleTable;
  /** Ids of the bindings' folders (shared by derived indexes: see FolderIds). */
  folders: FolderIds;
  /** User name -> bindings naming `User/name` (whether or not the user exists). */
  byUser: LayeredMap<SubjectList>;
  /** Group name -> bindings naming `Group/name` (whether or not the group exists). */
  byGroup: LayeredMap<SubjectList>;
  /**
   * `byGroup` restricted to the groups that exist: what a check reads, one lookup per group of
   * the user (a group that does not exist grants nothing).
   */
  liveGroups: LayeredMap<SubjectList>;
  /**
   * Where bindings are, for `who`: folder -> the compiled bindings on exactly that folder, and
   * `\0role` -> the tenant-wide bindings of that role (a folder path never starts with `\0`).
   * Made on first use (checks never read it: a build for checks alone costs less), then kept
   * by deltas in derived indexes.
   */
  byFolder: LayeredMap<readonly CompiledBinding[]> | undefined;
  /** Group name -> names of the users listing it (once each; `global` is everyone, not listed). */
  members: LayeredMap<readonly string[]>;
  /** Robot users by name: the holders of the implicit `robot` role. */
  robots: LayeredMap<Entry<'User'>>;
  /** User name -> what a check reads of the user (see UserRecord). */
  records: LayeredMap<UserRecord>;
  robot: CompiledBinding | null;
  sortedUsers: SortedUsers | undefined;
  /** Login sessions by email in lower case. */
  sessions: LayeredMap<Session>;
  /** Directory Groups by directory id in lower case. */
  directoryById: ReadonlyMap<string, Entry<'Group'>>;
}

const ACTIVE = 1;
const ROBOT = 2;

/**
 * The users in name order (code units), with a flag byte per position (ACTIVE, ROBOT): when
 * `global` holds a permission, `who` answers every active user by walking these two arrays,
 * without a lookup per user.
 */
interface SortedUsers {
  names: readonly string[];
  flags: Uint8Array;
}

const userFlags = (u: Entry<'User'>): number => (u.spec.active ? ACTIVE : 0) | (u.spec.type === 'Robot' ? ROBOT : 0);

/** Position of `name` in sorted `names`, or -1. */
function positionOf(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const n = names[mid]!;
    if (n === name) return mid;
    if (n < name) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * A user as checks read them: the entry and the subject lists the user is (their own bindings,
 * then those of each existing group they list, once; `global` is shared by everyone and read
 * apart). One lookup per check reaches everything, instead of a lookup and a key comparison per
 * group: at a million bindings each of those is a cache miss.
 */
interface UserRecord {
  /** The User's object name. */
  name: string;
  /** ACTIVE, ROBOT: what a check needs of the User itself, without reading the entry. */
  flags: number;
  subjects: readonly SubjectList[];
}

type ListsByName = { get(name: string): SubjectList | undefined };

function userRecord(u: Entry<'User'>, byUser: ListsByName, liveGroups: ListsByName): UserRecord {
  const subjects: SubjectList[] = [];
  const own = byUser.get(u.name);
  if (own) subjects.push(own);
  const list = u.spec.groups;
  if (list) {
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (g === GLOBAL_GROUP || list.indexOf(g) < i) continue;
      const s = liveGroups.get(g);
      if (s) subjects.push(s);
    }
  }
  return { name: u.name, flags: userFlags(u), subjects };
}

/** Objects created, updated or deleted since an index's revision (the store's incremental read). */
export interface TenantDelta {
  /** Entries created or updated, as they are now. */
  upserts: readonly AnyEntry[];
  /** Objects deleted (an object both deleted and re-created appears in `upserts` only). */
  deletes: readonly { kind: string; name: string }[];
  /** Sessions created or replaced (logins). */
  sessions?: readonly Session[];
}

function compileRole(r: Entry<'Role'>, id: number): CompiledRole {
  const bits = new Uint32Array(WORDS);
  for (const p of r.spec.permissions ?? []) {
    for (const a of p.actions) {
      const pid = PERMISSION_IDS.get(`${p.resource}.${a}`);
      if (pid !== undefined) bits[pid >>> 5] = (bits[pid >>> 5] ?? 0) | (1 << (pid & 31));
    }
  }
  return { name: r.name, id, bits, builtIn: BUILT_IN_ROLE_NAMES.has(r.name) };
}

/** `folderId`: the id of the binding's folder in the index's FolderIds, -1 for none. */
function compileBinding(b: Entry<'RoleBinding'>, role: CompiledRole, folderId: number): CompiledBinding {
  const s = b.spec;
  // Every field set, in one order: one hidden class for every compiled binding (monomorphic checks).
  return {
    role,
    spec: s,
    binding: b.name,
    folder: s.folder ?? null,
    folderId,
    resources: s.resources ? new Set(s.resources.map((r) => `${r.kind}/${r.name}`)) : null,
    environment: s.environment ?? null,
    expiresAtMs: s.expiresAt ? expiryMs(s.expiresAt) : null,
  };
}

const ROBOT_SPEC: CompiledBinding['spec'] = Object.freeze({ subjects: [] });

function robotGrant(roles: Map<string, CompiledRole>): CompiledBinding | null {
  const role = roles.get(ROBOT_ROLE);
  return role ? { role, spec: ROBOT_SPEC, binding: null, folder: null, folderId: -1, resources: null, environment: null, expiresAtMs: null } : null;
}

/** Where `who` files a binding: its folder, or its role for a tenant-wide binding. */
const folderKey = (folder: string | null | undefined, role: string): string => folder ?? `\0${role}`;

/** The groups a user's checks go through besides `global`: each existing name once. */
function groupsOf(u: Entry<'User'>): string[] {
  const list = u.spec.groups;
  if (!list) return [];
  return list.filter((name, i) => name !== GLOBAL_GROUP && list.indexOf(name) === i);
}

/** Two lists in explanation order (BY_VIA) as one. */
function mergeSorted(a: readonly Grant[], b: readonly Grant[]): Grant[] {
  const out = new Array<Grant>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = BY_VIA(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

function fileUnder<V>(map: Map<string, V[]>, name: string, v: V): void {
  const have = map.get(name);
  if (have) have.push(v);
  else map.set(name, [v]);
}

function subjectMap(lists: Map<string, CompiledBinding[]>, via: (name: string) => string): Map<string, SubjectList> {
  const out = new Map<string, SubjectList>();
  for (const [name, list] of lists) out.set(name, subjectList(via(name), list));
  return out;
}

function buildParts(state: TenantState): IndexParts {
  const usersByEmail = new Map<string, Entry<'User'>>();
  const members = new Map<string, string[]>();
  const robots = new Map<string, Entry<'User'>>();
  for (const u of state.users.values()) {
    usersByEmail.set(u.spec.email.toLowerCase(), u);
    for (const g of groupsOf(u)) fileUnder(members, g, u.name);
    if (u.spec.type === 'Robot') robots.set(u.name, u);
  }
  const compiledRoles = new Map<string, CompiledRole>();
  const ids = new Map<string, number>();
  for (const r of state.roles.values()) {
    ids.set(r.name, ids.size);
    compiledRoles.set(r.name, compileRole(r, ids.get(r.name)!));
  }
  const folders = new FolderIds();
  const byUser = new Map<string, CompiledBinding[]>();
  const byGroup = new Map<string, CompiledBinding[]>();
  for (const b of state.bindings.values()) {
    const role = compiledRoles.get(b.spec.roleRef.name);
    if (!role) continue; // role does not exist: the binding grants nothing (a role change rebuilds)
    const c = compileBinding(b, role, b.spec.folder === undefined ? -1 : folders.idOf(b.spec.folder));
    for (const s of b.spec.subjects) {
      fileUnder(s.kind === 'User' ? byUser : byGroup, s.name, c);
    }
  }
  const userSubjects = subjectMap(byUser, () => 'user');
  const groupSubjects = subjectMap(byGroup, (name) => `group:${name}`);
  const liveGroups = new Map<string, SubjectList>();
  for (const [name, s] of groupSubjects) if (countsForMembers(state.groups.get(name), name)) liveGroups.set(name, s);
  const records = new Map<string, UserRecord>();
  for (const u of state.users.values()) records.set(u.name, userRecord(u, userSubjects, liveGroups));
  return {
    users: LayeredMap.of(state.users),
    groups: LayeredMap.of(state.groups),
    roles: state.roles,
    bindings: LayeredMap.of(state.bindings),
    usersByEmail: LayeredMap.of(usersByEmail),
    compiledRoles,
    roleTable: roleTable(compiledRoles, ids),
    folders,
    byUser: LayeredMap.of(userSubjects),
    byGroup: LayeredMap.of(groupSubjects),
    liveGroups: LayeredMap.of(liveGroups),
    byFolder: undefined,
    members: LayeredMap.of(members),
    robots: LayeredMap.of(robots),
    records: LayeredMap.of(records),
    robot: robotGrant(compiledRoles),
    sortedUsers: undefined,
    sessions: LayeredMap.of(state.sessions ?? new Map()),
    directoryById: directoryGroupsById(state.groups.values()),
  };
}

/**
 * Whether a group's bindings reach the users listing it (and, for `global`, everyone): while it
 * exists, and is not a directory group (those reach the users of a login session instead; a
 * directory group listed on a User, refused by the invariants, grants nothing that way).
 */
function countsForMembers(group: Entry<'Group'> | undefined, name: string): boolean {
  return group !== undefined && (name === GLOBAL_GROUP || !group.spec.directory);
}

/** Does `g` grant the parsed request at time `now`? (Contract 3.2 to 3.4.) */
function matches(g: CompiledBinding, req: ParsedRequest, now: number): boolean {
  if (!narrowingAllows(g, req, now)) return false;
  if (req.scope === 'Tenant') return g.folder === null;
  // Folder resource: a folder binding covers its subtree; a tenant binding of a built-in
  // tenant role (the only tenant roles that can hold folder permissions) covers every folder.
  return g.folder === null ? g.role.builtIn : folderCovers(g.folder, req.folder!);
}

/** Does `g` grant at `now`, on the request's object and environment? (Expiry, `resources`, `environment`.) */
function narrowingAllows(g: CompiledBinding, req: ParsedRequest, now: number): boolean {
  if (g.expiresAtMs !== null && now > g.expiresAtMs) return false;
  if (g.resources !== null && (req.resource === null || !g.resources.has(req.resource))) return false;
  return g.environment === null || g.environment === req.environment;
}

/**
 * What a check compares a subject list with, worked out once per check: the row of its
 * permission in the RoleTable, and (for a folder resource) the ids of its folder and ancestors.
 */
interface Scan {
  holds: Uint8Array;
  row: number;
  reachesFolders: Uint8Array;
  /** Tenant resource: only tenant-wide bindings (folder id -1) grant. */
  tenant: boolean;
  covering: Int32Array;
  coveringCount: number;
}

/** A check never runs inside another, so one buffer serves every check's covering folder ids. */
const COVERING = new Int32Array(MAX_FOLDER_DEPTH);

/**
 * The grants of one subject's bindings for a request (the same as `matches` on each binding
 * whose role holds the permission). Role and folder are judged from the list's ids; a binding
 * is read only when both allow it, for its narrowing and its explanation.
 */
function scanSubject(list: SubjectList, scan: Scan, req: ParsedRequest, now: number, grants: Grant[]): void {
  const { holds, row, covering, coveringCount } = scan;
  const n = list[1] as number;
  for (let k = 0; k < n; k++) {
    const roleId = list[2 + 2 * k] as number;
    if (holds[row + roleId] === 0) continue;
    const folderId = list[3 + 2 * k] as number;
    if (folderId === -1) {
      // Tenant-wide: grants tenant resources, and folder ones only through a built-in role.
      if (!scan.tenant && scan.reachesFolders[roleId] === 0) continue;
    } else {
      if (scan.tenant) continue;
      let k = 0;
      while (k < coveringCount && covering[k] !== folderId) k++;
      if (k === coveringCount) continue;
    }
    const g = list[2 + 2 * n + k] as CompiledBinding;
    if (narrowingAllows(g, req, now)) grants.push({ role: g.role.name, binding: g.binding, via: list[0] as string, folder: g.folder });
  }
}

export class TenantIndex {
  readonly tenant: string;
  /** Store revision this index was built from (for freshness reporting). */
  readonly revision: number;
  readonly bindingCount: number;
  private readonly parts: IndexParts;

  /**
   * An index of `state`, whose maps are adopted as they are (never written to: the caller must
   * not change them either). `parts` is for `withChanges` only.
   */
  constructor(state: TenantState, revision = 0, parts?: IndexParts) {
    this.tenant = state.tenant;
    this.revision = revision;
    this.parts = parts ?? buildParts(state);
    this.bindingCount = this.parts.bindings.size;
  }

  /** Objects of the tenant, every kind. */
  get objectCount(): number {
    const p = this.parts;
    return p.users.size + p.groups.size + p.roles.size + p.bindings.size;
  }

  /** The tenant's objects this index decides from, as a new TenantState (a copy: O(objects)). */
  toState(): TenantState {
    const p = this.parts;
    return {
      tenant: this.tenant, users: p.users.toMap(), groups: p.groups.toMap(), roles: new Map(p.roles), bindings: p.bindings.toMap(),
      ...(p.sessions.size > 0 ? { sessions: p.sessions.toMap() } : {}),
    };
  }

  /** A User by object name or (case-insensitive) email. */
  findUser(nameOrEmail: string): Entry<'User'> | undefined {
    return this.parts.users.get(nameOrEmail) ?? this.parts.usersByEmail.get(nameOrEmail.toLowerCase());
  }

  userNames(): string[] {
    return [...this.sortedUsers().names];
  }

  /** User names in code-unit order, sorted once per index (on first use). */
  private sortedUsers(): SortedUsers {
    if (this.parts.sortedUsers) return this.parts.sortedUsers;
    const names = [...this.parts.users.keys()].sort();
    const flags = new Uint8Array(names.length);
    for (let i = 0; i < names.length; i++) flags[i] = userFlags(this.parts.users.get(names[i]!)!);
    return (this.parts.sortedUsers = { names, flags });
  }

  /**
   * Where `who` finds bindings: folder -> the bindings on exactly that folder, `\0role` -> the
   * tenant-wide bindings of the role. Made from the subject lists on first use (every compiled
   * binding names at least one subject; one named twice is filed once).
   */
  private byFolder(): LayeredMap<readonly CompiledBinding[]> {
    const p = this.parts;
    if (p.byFolder) return p.byFolder;
    const byFolder = new Map<string, CompiledBinding[]>();
    for (const [kind, lists] of [['User', p.byUser], ['Group', p.byGroup]] as const) {
      for (const [name, list] of lists.entries()) {
        for (let i = 2 + 2 * (list[1] as number); i < list.length; i++) {
          const g = list[i] as CompiledBinding;
          // Each binding once: from the list of its first subject, at its first place there (a
          // subject named twice files the binding twice in a row).
          const first = g.spec.subjects[0]!;
          if ((first.kind === 'User') !== (kind === 'User') || first.name !== name || list[i - 1] === g) continue;
          fileUnder(byFolder, folderKey(g.folder, g.role.name), g);
        }
      }
    }
    return (p.byFolder = LayeredMap.of<readonly CompiledBinding[]>(byFolder));
  }

  /**
   * The subjects a user is, with their compiled bindings, in explanation order: the user, then
   * `global`, then their groups. Membership of a group that does not exist grants nothing (the
   * User reports it as not ready); a group listed twice counts once.
   */
  private subjectsOf(user: Entry<'User'>): SubjectList[] {
    const p = this.parts;
    const out: SubjectList[] = [];
    const own = p.byUser.get(user.name);
    if (own) out.push(own);
    const global = p.liveGroups.get(GLOBAL_GROUP);
    if (global) out.push(global);
    const list = user.spec.groups;
    if (list) {
      for (let i = 0; i < list.length; i++) {
        const name = list[i]!;
        if (name === GLOBAL_GROUP || list.indexOf(name) < i) continue;
        const g = p.liveGroups.get(name);
        if (g) out.push(g);
      }
    }
    return out;
  }

  /**
   * The user's directory groups: those given with the question, else those of the user's
   * session while it is valid at `now`. A session's group counts only while the Group still
   * exists and still references the directory id that matched at login: deleting the Group (or
   * pointing it elsewhere) ends the rights at once, mid-session.
   */
  private directorySubjects(user: Entry<'User'>, now: number, ids: readonly string[] | null): { subjects: SubjectList[]; expiresAt: string | undefined } | null {
    const p = this.parts;
    if (ids !== null) {
      if (ids.length === 0 || p.directoryById.size === 0) return null;
      const subjects: SubjectList[] = [];
      const seen = new Set<string>();
      for (const id of ids) {
        const g = p.directoryById.get(id.toLowerCase());
        if (!g || seen.has(g.name)) continue;
        seen.add(g.name);
        const view = this.directoryView(g.name);
        if (view) subjects.push(view);
      }
      return subjects.length > 0 ? { subjects, expiresAt: undefined } : null;
    }
    if (p.sessions.size === 0) return null;
    const session = p.sessions.get(user.spec.email.toLowerCase());
    if (!session || session.groups.length === 0 || !(now <= expiryMs(session.expiresAt))) return null;
    const subjects: SubjectList[] = [];
    for (const { name, id } of session.groups) {
      const dir = p.groups.get(name)?.spec.directory;
      if (!dir || dir.id.toLowerCase() !== id.toLowerCase()) continue;
      const view = this.directoryView(name);
      if (view) subjects.push(view);
    }
    return subjects.length > 0 ? { subjects, expiresAt: session.expiresAt } : null;
  }

  private readonly directoryViews = new Map<string, { from: SubjectList; view: SubjectList }>();

  /**
   * A directory group's bindings, explained as `directory:NAME` (a copy of its list with that
   * explanation, made once per index and group: directory groups are few).
   */
  private directoryView(name: string): SubjectList | undefined {
    const from = this.parts.byGroup.get(name);
    if (!from) return undefined;
    const have = this.directoryViews.get(name);
    if (have && have.from === from) return have.view;
    const view: SubjectList = [`directory:${name}`, ...from.slice(1)];
    this.directoryViews.set(name, { from, view });
    return view;
  }

  /**
   * The session of a user (by name or email), valid or not, holding only the groups that still
   * count: those whose Group exists and references the directory id that matched at login.
   */
  sessionOf(userRef: string): Session | undefined {
    const user = this.findUser(userRef);
    const session = user ? this.parts.sessions.get(user.spec.email.toLowerCase()) : undefined;
    if (!session) return undefined;
    const live = session.groups.filter(({ name, id }) => this.parts.groups.get(name)?.spec.directory?.id.toLowerCase() === id.toLowerCase());
    return live.length === session.groups.length ? session : { ...session, groups: live };
  }

  /** Every session of the tenant. */
  sessions(): Session[] {
    return [...this.parts.sessions.values()];
  }

  /** The folders the tenant's bindings name, in code-unit order (the access matrix's columns). */
  folders(): string[] {
    const out: string[] = [];
    // byFolder also files tenant-wide bindings, under `\0role`: a folder path never starts so.
    for (const [key, list] of this.byFolder().entries()) if (!key.startsWith('\0') && list.length > 0) out.push(key);
    return out.sort();
  }

  /** Every User of the tenant, in name order. */
  users(): Entry<'User'>[] {
    return this.sortedUsers().names.map((n) => this.parts.users.get(n)!);
  }

  check(req: CheckRequest, now: number = Date.now()): CheckResult {
    return this.checkParsed(req.user, parseRequest(req), now);
  }

  checkParsed(userRef: string, req: ParsedRequest, now: number = Date.now()): CheckResult {
    const p = this.parts;
    let record = p.records.get(userRef);
    if (record === undefined) {
      const byEmail = p.usersByEmail.get(userRef.toLowerCase());
      if (byEmail) record = p.records.get(byEmail.name);
    }
    if (!record) return { allowed: false, grants: [], reason: 'UserNotFound' };
    const name = record.name;
    if ((record.flags & ACTIVE) === 0) return { allowed: false, grants: [], reason: 'UserInactive', user: name };
    const grants: Grant[] = [];
    const id = req.permissionId;
    const table = p.roleTable;
    const tenant = req.scope === 'Tenant';
    const scan: Scan = {
      holds: table.holds, row: id * table.width, reachesFolders: table.reachesFolders, tenant,
      covering: COVERING, coveringCount: tenant ? 0 : p.folders.coveringIds(req.folder!, COVERING),
    };
    // The subjects the user is (see subjectsOf), scanned without building the list.
    const global = p.liveGroups.get(GLOBAL_GROUP);
    if (global) scanSubject(global, scan, req, now, grants);
    const subjects = record.subjects;
    // The lists' lengths first: independent reads the processor overlaps, where the scans one
    // after the other would wait for each list's first line in turn (at 1M each is a miss).
    let bindings = 0;
    for (let i = 0; i < subjects.length; i++) bindings += subjects[i]![1] as number;
    if (bindings > 0) for (let i = 0; i < subjects.length; i++) scanSubject(subjects[i]!, scan, req, now, grants);
    if (p.directoryById.size > 0) {
      const directory = this.directorySubjects(p.users.get(name)!, now, req.directoryGroups);
      if (directory !== null) {
        const from = grants.length;
        for (const s of directory.subjects) scanSubject(s, scan, req, now, grants);
        if (directory.expiresAt !== undefined) for (let i = from; i < grants.length; i++) grants[i]!.sessionExpiresAt = directory.expiresAt;
      }
    }
    const robot = p.robot;
    if (robot !== null && (record.flags & ROBOT) !== 0 && hasBit(robot.role.bits, id) && matches(robot, req, now)) {
      grants.push({ role: robot.role.name, binding: null, via: 'user', folder: null });
    }
    if (grants.length > 1) grants.sort(BY_VIA);
    return grants.length > 0 ? { allowed: true, grants, user: name } : { allowed: false, grants, reason: 'NoGrant', user: name };
  }

  /**
   * Effective permissions with provenance ("Check Permissions" of the seeds): one row per
   * permission and grant, unexpired, with the narrowing (resources, environment) kept visible.
   * Rows come in catalog order. Undefined when the user is unknown.
   */
  permissions(userRef: string, now: number = Date.now(), directoryGroups?: readonly string[], only?: (grant: Grant) => boolean): PermissionGrant[] | undefined {
    const user = this.findUser(userRef);
    if (!user) return undefined;
    if (!user.spec.active) return [];
    // Every unexpired grant the user has, with its explanation, then one pass per permission.
    const held: { g: CompiledBinding; via: string; sessionExpiresAt?: string }[] = [];
    for (const s of this.subjectsOf(user)) for (const g of bindingsOf(s)) if (!expired(g, now)) held.push({ g, via: viaOf(s) });
    const directory = this.directorySubjects(user, now, directoryGroups ?? null);
    for (const s of directory?.subjects ?? []) {
      for (const g of bindingsOf(s)) if (!expired(g, now)) held.push({ g, via: viaOf(s), ...(directory!.expiresAt ? { sessionExpiresAt: directory!.expiresAt } : {}) });
    }
    if (this.parts.robot && user.spec.type === 'Robot') held.push({ g: this.parts.robot, via: 'user' });
    // `only`: the rows of some grants alone (what a diff compares), at the cost of those grants.
    const kept = only ? held.filter(({ g, via }) => only({ role: g.role.name, binding: g.binding, via, folder: g.folder })) : held;
    const rows: PermissionGrant[] = [];
    for (let id = 0; id < ALL_PERMISSIONS.length; id++) {
      const scope = PERMISSION_SCOPES[id]!;
      for (const { g, via, sessionExpiresAt } of kept) {
        if (!hasBit(g.role.bits, id)) continue;
        // A tenant binding reaches folder resources only for the built-in tenant roles.
        if (scope === 'Folder' && g.folder === null && !g.role.builtIn) continue;
        if (scope === 'Tenant' && g.folder !== null) continue;
        const row: PermissionGrant = { permission: ALL_PERMISSIONS[id]!, folder: g.folder, role: g.role.name, binding: g.binding, via };
        if (g.spec.resources) row.resources = g.spec.resources;
        if (g.environment !== null) row.environment = g.environment;
        if (g.spec.expiresAt) row.expiresAt = g.spec.expiresAt;
        if (sessionExpiresAt) row.sessionExpiresAt = sessionExpiresAt;
        rows.push(row);
      }
    }
    return rows;
  }

  /**
   * Everyone allowed, each with what allows them, by user name: the same answers and
   * explanations as a check of every user, found from the other end. The bindings that can grant
   * are those on the request's folder or an ancestor (at most seven lists) and the tenant-wide
   * ones of the roles holding the permission; each is followed to its users (directly, through
   * its groups' members, or everyone for `global`). The cost follows the holders of the
   * permission, not the number of users.
   */
  who(req: Omit<CheckRequest, 'user'>, now: number = Date.now()): { user: string; grants: readonly Grant[] }[] {
    const parsed = parseRequest(req);
    const p = this.parts;
    const id = parsed.permissionId;
    const holds = p.roleTable.holds;
    const row = id * p.roleTable.width;
    const byFolder = this.byFolder();
    const candidates: CompiledBinding[] = [];
    const take = (list: readonly CompiledBinding[] | undefined): void => {
      if (list) for (const g of list) if (holds[row + g.role.id] === 1 && matches(g, parsed, now)) candidates.push(g);
    };
    for (const r of p.compiledRoles.values()) {
      // Tenant-wide bindings reach folder resources only for the built-in tenant roles.
      if (holds[row + r.id] === 1 && (parsed.scope === 'Tenant' || r.builtIn)) take(byFolder.get(folderKey(null, r.name)));
    }
    if (parsed.folder !== null) for (const f of folderAncestry(parsed.folder)) take(byFolder.get(f));

    const byUser = new Map<string, Grant[]>();
    // Grants every active user has (`global`'s, and those of directory groups named in the
    // question): made once and shared, frozen, by every row.
    const everyone: Grant[] = [];
    const shared = (g: CompiledBinding, via: string): void => {
      everyone.push(Object.freeze<Grant>({ role: g.role.name, binding: g.binding, via, folder: g.folder }));
    };
    const asked = parsed.directoryGroups === null ? null : this.askedDirectoryGroups(parsed.directoryGroups);
    const throughSessions = new Map<string, CompiledBinding[]>(); // directory group -> its bindings here
    for (const g of candidates) {
      for (const s of g.spec.subjects) {
        if (s.kind === 'User') {
          fileUnder(byUser, s.name, { role: g.role.name, binding: g.binding, via: 'user', folder: g.folder });
          continue;
        }
        const group = p.groups.get(s.name);
        if (!group) continue; // a group that does not exist grants nothing
        if (s.name === GLOBAL_GROUP) shared(g, GLOBAL_VIA);
        else if (!group.spec.directory) {
          // One grant, frozen, shared by every member: a tenant-wide group binding can reach
          // tens of thousands of users, and one object per member is what who() would cost.
          const members = p.members.get(s.name);
          if (members) {
            const one = Object.freeze<Grant>({ role: g.role.name, binding: g.binding, via: `group:${s.name}`, folder: g.folder });
            for (const m of members) fileUnder(byUser, m, one);
          }
        }
        if (!group.spec.directory) continue;
        // A directory group reaches the users of a valid login session naming it, or, when the
        // question names directory groups, every user (the session is not read then).
        if (asked === null) fileUnder(throughSessions, s.name, g);
        else if (asked.has(s.name)) shared(g, `directory:${s.name}`);
      }
    }
    if (throughSessions.size > 0) this.sessionGrants(throughSessions, now, byUser);
    const robot = p.robot;
    const robots = robot !== null && hasBit(robot.role.bits, id) && matches(robot, parsed, now);

    // Many holders: one walk of the users in name order beats sorting the holders' names.
    if (everyone.length > 0 || (byUser.size + (robots ? p.robots.size : 0)) * 16 > p.users.size) return this.walkWho(everyone, byUser, robots);
    const set = new Set(byUser.keys());
    if (robots) for (const name of p.robots.keys()) set.add(name);
    const names = [...set].sort();
    const robotGrant = robots ? Object.freeze<Grant>({ role: robot.role.name, binding: null, via: 'user', folder: null }) : undefined;
    const out: { user: string; grants: Grant[] }[] = [];
    for (const name of names) {
      const user = p.users.get(name);
      if (!user || !user.spec.active) continue;
      const grants = byUser.get(name) ?? [];
      if (robotGrant && user.spec.type === 'Robot') grants.push(robotGrant);
      if (grants.length === 0) continue;
      if (grants.length > 1) grants.sort(BY_VIA);
      out.push({ user: name, grants });
    }
    return out;
  }

  /** The directory groups a question names (by id, case-insensitive), as group names. */
  private askedDirectoryGroups(ids: readonly string[]): Set<string> {
    const out = new Set<string>();
    const byId = this.parts.directoryById;
    if (byId.size > 0) for (const id of ids) {
      const g = byId.get(id.toLowerCase());
      if (g) out.add(g.name);
    }
    return out;
  }

  /**
   * For `who`: the grants of directory groups through login sessions (see directorySubjects),
   * filed under the session's user. Walks the sessions, so its cost follows logins, not users.
   */
  private sessionGrants(bindings: ReadonlyMap<string, readonly CompiledBinding[]>, now: number, byUser: Map<string, Grant[]>): void {
    const p = this.parts;
    for (const [email, session] of p.sessions.entries()) {
      if (session.groups.length === 0 || !(now <= expiryMs(session.expiresAt))) continue;
      const user = p.usersByEmail.get(email); // emails are unique in a tenant (UniqueEmail)
      if (!user || p.sessions.get(user.spec.email.toLowerCase()) !== session) continue;
      for (const { name, id } of session.groups) {
        const dir = p.groups.get(name)?.spec.directory;
        if (!dir || dir.id.toLowerCase() !== id.toLowerCase()) continue;
        for (const g of bindings.get(name) ?? []) {
          fileUnder(byUser, user.name, { role: g.role.name, binding: g.binding, via: `directory:${name}`, folder: g.folder, sessionExpiresAt: session.expiresAt });
        }
      }
    }
  }

  /**
   * `who` by one walk of the users in name order (a flag byte each for active and robot). When
   * some grants reach every active user (`everyone`: `global`, directory groups named in the
   * question), every active user comes, with those grants (made once and shared, frozen:
   * allocating per user is what would cost at 200k users) and their own; otherwise the users
   * with grants of their own.
   */
  private walkWho(everyone: Grant[], byUser: ReadonlyMap<string, Grant[]>, robots: boolean): { user: string; grants: readonly Grant[] }[] {
    const robot = this.parts.robot;
    const robotGrant = robots && robot ? Object.freeze<Grant>({ role: robot.role.name, binding: null, via: 'user', folder: null }) : undefined;
    // In explanation order, frozen, and the very same list for every user who has nothing else.
    const shared = Object.freeze(everyone.sort(BY_VIA));
    const { names, flags } = this.sortedUsers();
    const out: { user: string; grants: readonly Grant[] }[] = [];
    for (let i = 0; i < names.length; i++) {
      const f = flags[i]!;
      if ((f & ACTIVE) === 0) continue;
      const name = names[i]!;
      const own = byUser.size > 0 ? byUser.get(name) : undefined;
      const isRobot = robotGrant !== undefined && (f & ROBOT) !== 0;
      if (own === undefined && !isRobot) {
        if (shared.length > 0) out.push({ user: name, grants: shared });
        continue;
      }
      const mine = own ?? [];
      if (isRobot) mine.push(robotGrant);
      if (mine.length > 1) mine.sort(BY_VIA);
      out.push({ user: name, grants: mergeSorted(mine, shared) });
    }
    return out;
  }

  /**
   * A new index at `revision`: this one with `delta` applied. This index is left untouched (a
   * check running on it sees it whole); the new one shares every structure the delta does not
   * touch, so the cost follows the size of the delta, not of the tenant. A changed Role costs
   * more: its bindings are found (one pass over the bindings) and recompiled.
   */
  withChanges(delta: TenantDelta, revision: number): TenantIndex {
    const p = this.parts;
    const users = new Map<string, Entry<'User'> | undefined>();
    const groups = new Map<string, Entry<'Group'> | undefined>();
    const roles = new Map<string, Entry<'Role'> | undefined>();
    const bindings = new Map<string, Entry<'RoleBinding'> | undefined>();
    const byKind = { User: users, Group: groups, Role: roles, RoleBinding: bindings } as Record<string, Map<string, AnyEntry | undefined>>;
    const put = (kind: string, name: string, e: AnyEntry | undefined) => {
      const m = byKind[kind];
      if (!m) throw new Error(`unknown kind ${kind} in a tenant delta`);
      m.set(name, e);
    };
    for (const d of delta.deletes) put(d.kind, d.name, undefined);
    for (const e of delta.upserts) put(e.kind, e.name, e);

    const nextUsers = p.users.with(users);
    const nextGroups = p.groups.with(groups);
    const nextBindings = p.bindings.with(bindings);
    // Roles: recompile the changed ones; every binding of a changed role is refiled below.
    let nextRoles = p.roles;
    let compiledRoles = p.compiledRoles;
    let table = p.roleTable;
    let robot = p.robot;
    if (roles.size > 0) {
      const patched = new Map(p.roles);
      const ids = new Map(p.roleTable.ids);
      compiledRoles = new Map(p.compiledRoles);
      for (const [name, r] of roles) {
        if (r) {
          patched.set(name, r);
          if (!ids.has(name)) ids.set(name, ids.size);
          compiledRoles.set(name, compileRole(r, ids.get(name)!));
        } else {
          patched.delete(name);
          compiledRoles.delete(name);
        }
      }
      nextRoles = patched;
      table = roleTable(compiledRoles, ids);
      robot = robotGrant(compiledRoles);
      for (const b of nextBindings.values()) if (roles.has(b.spec.roleRef.name) && !bindings.has(b.name)) bindings.set(b.name, b);
    }

    // Users: the old address of every changed user goes, the new one comes; so do memberships.
    let usersByEmail = p.usersByEmail;
    let members = p.members;
    let robots = p.robots;
    if (users.size > 0) {
      const emails = new Map<string, Entry<'User'> | undefined>();
      const left = new Map<string, Set<string>>(); // group -> users leaving it
      const joined = new Map<string, string[]>(); // group -> users joining it
      const robotChanges = new Map<string, Entry<'User'> | undefined>();
      for (const [name, u] of users) {
        const was = p.users.get(name);
        if (was) {
          const key = was.spec.email.toLowerCase();
          if (p.usersByEmail.get(key) === was) emails.set(key, undefined);
          for (const g of groupsOf(was)) {
            const set = left.get(g);
            if (set) set.add(name);
            else left.set(g, new Set([name]));
          }
        }
        if (u) for (const g of groupsOf(u)) fileUnder(joined, g, name);
        if (was?.spec.type === 'Robot' || u?.spec.type === 'Robot') robotChanges.set(name, u?.spec.type === 'Robot' ? u : undefined);
      }
      for (const u of users.values()) if (u) emails.set(u.spec.email.toLowerCase(), u);
      usersByEmail = usersByEmail.with(emails);
      const memberLists = new Map<string, readonly string[] | undefined>();
      for (const g of new Set([...left.keys(), ...joined.keys()])) {
        const drop = left.get(g);
        const have = p.members.get(g) ?? [];
        const next = (drop ? have.filter((n) => !drop.has(n)) : have).concat(joined.get(g) ?? []);
        memberLists.set(g, next.length > 0 ? next : undefined);
      }
      members = members.with(memberLists);
      robots = robots.with(robotChanges);
    }
    // The sorted users: gone when a user came or went (sorted again on use), patched otherwise.
    let sortedUsers = p.sortedUsers;
    for (const [name, u] of users) if (p.users.has(name) !== (u !== undefined)) sortedUsers = undefined;
    if (sortedUsers && users.size > 0) {
      const flags = sortedUsers.flags.slice();
      for (const [name, u] of users) flags[positionOf(sortedUsers.names, name)] = userFlags(u!);
      sortedUsers = { names: sortedUsers.names, flags };
    }

    // Bindings: refile the changed ones under their old and new subjects and folders, one new
    // list per subject or folder touched.
    const removed = new Map<string, Set<string>>(); // subject or folder key -> binding names to drop
    const added = new Map<string, CompiledBinding[]>(); // subject or folder key -> compiled to add
    const drop = (k: string, name: string): void => {
      const set = removed.get(k);
      if (set) set.add(name);
      else removed.set(k, new Set([name]));
    };
    const key = (s: { kind: string; name: string }) => `${s.kind === 'User' ? 'U' : 'G'}${s.name}`;
    for (const [name, b] of bindings) {
      const was = p.bindings.get(name);
      if (was) {
        for (const s of was.spec.subjects) drop(key(s), name);
        if (p.byFolder) drop(`F${folderKey(was.spec.folder, was.spec.roleRef.name)}`, name);
      }
      const role = b ? compiledRoles.get(b.spec.roleRef.name) : undefined;
      if (b && role) {
        const c = compileBinding(b, role, b.spec.folder === undefined ? -1 : p.folders.idOf(b.spec.folder));
        for (const s of b.spec.subjects) fileUnder(added, key(s), c);
        if (p.byFolder) fileUnder(added, `F${folderKey(c.folder, role.name)}`, c);
      }
    }
    const userLists = new Map<string, SubjectList | undefined>();
    const groupLists = new Map<string, SubjectList | undefined>();
    const folderLists = new Map<string, readonly CompiledBinding[] | undefined>();
    for (const k of new Set([...removed.keys(), ...added.keys()])) {
      const name = k.slice(1);
      const gone = removed.get(k);
      const keep = (have: readonly CompiledBinding[]): readonly CompiledBinding[] => (gone ? have.filter((c) => !gone.has(c.binding!)) : have);
      if (k[0] === 'F') {
        const next = keep(p.byFolder!.get(name) ?? []).concat(added.get(k) ?? []);
        folderLists.set(name, next.length > 0 ? next : undefined);
        continue;
      }
      const isUser = k[0] === 'U';
      const have = (isUser ? p.byUser : p.byGroup).get(name);
      const next = keep(have ? bindingsOf(have) : []).concat(added.get(k) ?? []);
      (isUser ? userLists : groupLists).set(name, next.length > 0 ? subjectList(isUser ? 'user' : `group:${name}`, next) : undefined);
    }
    const byUser = p.byUser.with(userLists);
    const byGroup = p.byGroup.with(groupLists);
    // A group's bindings count for checks while the group exists.
    const live = new Map<string, SubjectList | undefined>();
    for (const name of new Set([...groups.keys(), ...groupLists.keys()])) live.set(name, countsForMembers(nextGroups.get(name), name) ? byGroup.get(name) : undefined);
    const liveGroups = p.liveGroups.with(live);
    // Records: of the users changed, of those whose own bindings changed, of the members of a
    // group whose bindings or existence changed (`global` is read apart: its changes touch none).
    const stale = new Set([...users.keys(), ...userLists.keys()]);
    for (const g of live.keys()) if (g !== GLOBAL_GROUP) for (const m of members.get(g) ?? []) stale.add(m);
    const recordChanges = new Map<string, UserRecord | undefined>();
    for (const name of stale) {
      const u = nextUsers.get(name);
      recordChanges.set(name, u ? userRecord(u, byUser, liveGroups) : undefined);
    }
    const sessions = delta.sessions && delta.sessions.length > 0 ? p.sessions.with(new Map(delta.sessions.map((x) => [x.email, x]))) : p.sessions;
    // Directory ids: rebuilt when a group changed (groups are few next to users and bindings).
    const directoryById = groups.size > 0 ? directoryGroupsById(nextGroups.values()) : p.directoryById;
    return new TenantIndex({ tenant: this.tenant, users: new Map(), groups: new Map(), roles: new Map(), bindings: new Map() }, revision, {
      users: nextUsers, groups: nextGroups, roles: nextRoles, bindings: nextBindings, usersByEmail,
      compiledRoles, roleTable: table, folders: p.folders, byUser, byGroup, liveGroups,
      byFolder: p.byFolder?.with(folderLists), members, robots, records: p.records.with(recordChanges), robot, sortedUsers, sessions, directoryById,
    });
  }
}
