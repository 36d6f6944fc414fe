/**
 * The decision engine (contract section 3). A TenantIndex is built from a tenant's state and is
 * immutable; when the tenant changes, the decision index swaps in a new one, built from scratch
 * or derived from the previous index and the changes (`withChanges`), which shares everything
 * the changes did not touch.
 *
 * Every binding is compiled once, when the index is built: its role's permissions as a bit set,
 * its folder, objects, environment and expiry. Bindings are filed under each subject they name.
 * Cost of a check: resolve the user (hash), then for each subject the user is (themselves, their
 * groups, `global`: one hash each) scan that subject's compiled bindings, testing the
 * permission's bit first. Nothing in a check grows with the tenant's total number of bindings,
 * and nothing is compiled or cached per user.
 */
import {
  ALL_PERMISSIONS, BUILT_IN_ROLE_NAMES, GLOBAL_GROUP, ROBOT_ROLE, parsePermission, type Scope,
} from './catalog.js';
import { directoryGroupsById, parseDirectoryGroups } from './directory.js';
import { folderCovers, folderPathProblem } from './folders.js';
import type { AnyEntry, Entry, Session, TenantState } from './types.js';

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

export type DenyReason = 'UserNotFound' | 'UserInactive' | 'NoGrant';

export interface CheckResult {
  allowed: boolean;
  grants: Grant[];
  /** Why it was denied, when it was. */
  reason?: DenyReason;
  /** The User's object name, when the user is known. */
  user?: string;
}

/** A malformed question (not a denial): unknown permission, folder missing or misplaced... */
export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

interface ParsedRequest {
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

/**
 * Milliseconds of a binding's RFC 3339 `expiresAt`. A leap second (`23:59:60`), valid RFC 3339
 * that Date.parse cannot read, is the instant after `23:59:59`. Anything still unreadable counts
 * as already expired: a time the engine cannot read must never make a binding grant forever.
 */
export function expiryMs(expiresAt: string): number {
  const ms = Date.parse(expiresAt);
  if (!Number.isNaN(ms)) return ms;
  const leap = /^(.*[Tt ]\d\d:\d\d:)60(.*)$/.exec(expiresAt);
  const before = leap ? Date.parse(`${leap[1]}59${leap[2]}`) : Number.NaN;
  return Number.isNaN(before) ? Number.NEGATIVE_INFINITY : before + 1000;
}

/** Code-unit order (as Array.prototype.sort): cheap, and locale-independent. */
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const BY_VIA = (a: Grant, b: Grant): number =>
  (a.via === 'user' ? 0 : 1) - (b.via === 'user' ? 0 : 1) || cmp(a.via, b.via) || cmp(a.role, b.role) || cmp(a.binding ?? '', b.binding ?? '');

/** Permission -> its bit; the catalog has 96 permissions, so a role's set is 3 words. */
const PERMISSION_IDS = new Map<string, number>(ALL_PERMISSIONS.map((p, i) => [p, i]));
const PERMISSION_SCOPES: readonly Scope[] = ALL_PERMISSIONS.map((p) => parsePermission(p)!.scope);
const WORDS = Math.ceil(ALL_PERMISSIONS.length / 32);

const hasBit = (bits: Uint32Array, id: number): boolean => (bits[id >>> 5]! & (1 << (id & 31))) !== 0;
/** The same bits as 16-bit words, small integers V8 keeps unboxed in a packed array. */
const WORDS16 = Math.ceil(ALL_PERMISSIONS.length / 16);

interface CompiledRole {
  name: string;
  /** The role's permissions, one bit per ALL_PERMISSIONS index. */
  bits: Uint32Array;
  /** `bits` as WORDS16 16-bit words (what subject scans read). */
  words16: number[];
  /** Built-in tenant roles are the only tenant roles whose tenant-wide bindings reach folders. */
  builtIn: boolean;
}

/** A binding as checks read it, compiled once per index (shared by every subject it names). */
interface CompiledBinding {
  role: CompiledRole;
  /** The binding's name; null for the `robot` role a Robot user holds implicitly. */
  binding: string | null;
  folder: string | null;
  resources: Set<string> | null;
  resourceList: { kind: string; name: string }[] | undefined;
  environment: string | null;
  expiresAtMs: number;
  expiresAt: string | undefined;
}

/**
 * The compiled bindings naming one subject, and how grants through it are explained. `masks`
 * holds each binding's role permissions, word by word (`masks[w * n + i]`: 16-bit word w of
 * binding i): a check reads the contiguous run of its permission's word and touches only the
 * bindings whose role holds the permission.
 */
interface SubjectBindings {
  via: string;
  bindings: readonly CompiledBinding[];
  masks: readonly number[];
}

function subjectBindings(via: string, bindings: readonly CompiledBinding[]): SubjectBindings {
  const n = bindings.length;
  const masks: number[] = [];
  for (let w = 0; w < WORDS16; w++) for (let i = 0; i < n; i++) masks.push(bindings[i]!.role.words16[w]!);
  return { via, bindings, masks };
}

const GONE: unique symbol = Symbol('gone');

/**
 * An immutable map as a shared base plus a small overlay of changes (`GONE` marks a deleted base
 * key). Deriving a map with a few changes copies the overlay only, never the base; once the
 * overlay outgrows a few times the square root of the base, the derivation merges both into a new
 * base (so the amortized cost of a change stays small and lookups stay two hash probes at most).
 * The base is a caller's Map, adopted without copying: nothing here ever writes to it.
 */
class LayeredMap<V> {
  private constructor(
    private readonly base: ReadonlyMap<string, V>,
    private readonly top: ReadonlyMap<string, V | typeof GONE>,
    readonly size: number,
  ) {}

  static of<V>(base: ReadonlyMap<string, V>): LayeredMap<V> {
    return new LayeredMap(base, new Map(), base.size);
  }

  get(key: string): V | undefined {
    if (this.top.size !== 0) {
      const t = this.top.get(key);
      if (t !== undefined) return t === GONE ? undefined : t;
    }
    return this.base.get(key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): IterableIterator<[string, V]> {
    if (this.top.size === 0) {
      yield* this.base.entries();
      return;
    }
    for (const e of this.base.entries()) if (!this.top.has(e[0])) yield e;
    for (const [k, v] of this.top) if (v !== GONE) yield [k, v];
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  /** This map with `changes` applied (undefined deletes); this one is left untouched. */
  with(changes: ReadonlyMap<string, V | undefined>): LayeredMap<V> {
    if (changes.size === 0) return this;
    let size = this.size;
    for (const [k, v] of changes) {
      const had = this.has(k);
      if (v === undefined) size -= had ? 1 : 0;
      else size += had ? 0 : 1;
    }
    if (this.top.size + changes.size > Math.max(256, 4 * Math.sqrt(this.base.size))) {
      const merged = new Map(this.entries());
      for (const [k, v] of changes) {
        if (v === undefined) merged.delete(k);
        else merged.set(k, v);
      }
      return new LayeredMap(merged, new Map(), merged.size);
    }
    const top = new Map(this.top);
    for (const [k, v] of changes) {
      if (v !== undefined) top.set(k, v);
      else if (this.base.has(k)) top.set(k, GONE);
      else top.delete(k);
    }
    return new LayeredMap(this.base, top, size);
  }

  toMap(): Map<string, V> {
    return new Map(this.entries());
  }
}

/** What an index holds: the tenant's objects and what is compiled from them. */
interface IndexParts {
  users: LayeredMap<Entry<'User'>>;
  groups: LayeredMap<Entry<'Group'>>;
  roles: ReadonlyMap<string, Entry<'Role'>>;
  bindings: LayeredMap<Entry<'RoleBinding'>>;
  usersByEmail: LayeredMap<Entry<'User'>>;
  compiledRoles: Map<string, CompiledRole>;
  /** User name -> bindings naming `User/name` (whether or not the user exists). */
  byUser: LayeredMap<SubjectBindings>;
  /** Group name -> bindings naming `Group/name` (whether or not the group exists). */
  byGroup: LayeredMap<SubjectBindings>;
  robot: CompiledBinding | null;
  sortedUsers: readonly string[] | undefined;
  /** Login sessions by email in lower case. */
  sessions: LayeredMap<Session>;
  /** Directory Groups by directory id in lower case. */
  directoryById: ReadonlyMap<string, Entry<'Group'>>;
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

function compileRole(r: Entry<'Role'>): CompiledRole {
  const bits = new Uint32Array(WORDS);
  for (const p of r.spec.permissions ?? []) {
    for (const a of p.actions) {
      const id = PERMISSION_IDS.get(`${p.resource}.${a}`);
      if (id !== undefined) bits[id >>> 5] = (bits[id >>> 5] ?? 0) | (1 << (id & 31));
    }
  }
  const words16 = Array.from({ length: WORDS16 }, (_, w) => ((bits[w >>> 1] ?? 0) >>> ((w & 1) * 16)) & 0xffff);
  return { name: r.name, bits, words16, builtIn: BUILT_IN_ROLE_NAMES.has(r.name) };
}

function compileBinding(b: Entry<'RoleBinding'>, role: CompiledRole): CompiledBinding {
  const s = b.spec;
  // Every field set, in one order: one hidden class for every compiled binding (monomorphic checks).
  return {
    role,
    binding: b.name,
    folder: s.folder ?? null,
    resources: s.resources ? new Set(s.resources.map((r) => `${r.kind}/${r.name}`)) : null,
    resourceList: s.resources,
    environment: s.environment ?? null,
    expiresAtMs: s.expiresAt ? expiryMs(s.expiresAt) : Number.POSITIVE_INFINITY,
    expiresAt: s.expiresAt,
  };
}

function robotGrant(roles: Map<string, CompiledRole>): CompiledBinding | null {
  const role = roles.get(ROBOT_ROLE);
  return role
    ? { role, binding: null, folder: null, resources: null, resourceList: undefined, environment: null, expiresAtMs: Number.POSITIVE_INFINITY, expiresAt: undefined }
    : null;
}

function fileUnder(map: Map<string, CompiledBinding[]>, name: string, c: CompiledBinding): void {
  const have = map.get(name);
  if (have) have.push(c);
  else map.set(name, [c]);
}

function subjectMap(lists: Map<string, CompiledBinding[]>, via: (name: string) => string): Map<string, SubjectBindings> {
  const out = new Map<string, SubjectBindings>();
  for (const [name, list] of lists) out.set(name, subjectBindings(via(name), list));
  return out;
}

function buildParts(state: TenantState): IndexParts {
  const usersByEmail = new Map<string, Entry<'User'>>();
  for (const u of state.users.values()) usersByEmail.set(u.spec.email.toLowerCase(), u);
  const compiledRoles = new Map<string, CompiledRole>();
  for (const r of state.roles.values()) compiledRoles.set(r.name, compileRole(r));
  const byUser = new Map<string, CompiledBinding[]>();
  const byGroup = new Map<string, CompiledBinding[]>();
  for (const b of state.bindings.values()) {
    const role = compiledRoles.get(b.spec.roleRef.name);
    if (!role) continue; // role does not exist: the binding grants nothing (a role change rebuilds)
    const c = compileBinding(b, role);
    for (const s of b.spec.subjects) {
      fileUnder(s.kind === 'User' ? byUser : byGroup, s.name, c);
    }
  }
  return {
    users: LayeredMap.of(state.users),
    groups: LayeredMap.of(state.groups),
    roles: state.roles,
    bindings: LayeredMap.of(state.bindings),
    usersByEmail: LayeredMap.of(usersByEmail),
    compiledRoles,
    byUser: LayeredMap.of(subjectMap(byUser, () => 'user')),
    byGroup: LayeredMap.of(subjectMap(byGroup, (name) => `group:${name}`)),
    robot: robotGrant(compiledRoles),
    sortedUsers: undefined,
    sessions: LayeredMap.of(state.sessions ?? new Map()),
    directoryById: directoryGroupsById(state.groups.values()),
  };
}

/** Does `g` grant the parsed request at time `now`? (Contract 3.2 to 3.4.) */
function matches(g: CompiledBinding, req: ParsedRequest, now: number): boolean {
  if (now > g.expiresAtMs) return false;
  if (g.resources !== null && (req.resource === null || !g.resources.has(req.resource))) return false;
  if (g.environment !== null && g.environment !== req.environment) return false;
  if (req.scope === 'Tenant') return g.folder === null;
  // Folder resource: a folder binding covers its subtree; a tenant binding of a built-in
  // tenant role (the only tenant roles that can hold folder permissions) covers every folder.
  return g.folder === null ? g.role.builtIn : folderCovers(g.folder, req.folder!);
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
    return [...this.sortedUsers()];
  }

  /** User names in code-unit order, sorted once per index (on first use). */
  private sortedUsers(): readonly string[] {
    return (this.parts.sortedUsers ??= [...this.parts.users.keys()].sort());
  }

  /**
   * The subjects a user is, with their compiled bindings, in explanation order: the user, then
   * `global`, then their groups. Membership of a group that does not exist grants nothing (the
   * User reports it as not ready); a group listed twice counts once.
   */
  private subjectsOf(user: Entry<'User'>): SubjectBindings[] {
    const out: SubjectBindings[] = [];
    const own = this.parts.byUser.get(user.name);
    if (own) out.push(own);
    const groups = this.parts.groups;
    if (groups.has(GLOBAL_GROUP)) {
      const g = this.parts.byGroup.get(GLOBAL_GROUP);
      if (g) out.push(g);
    }
    const list = user.spec.groups;
    if (list) {
      for (let i = 0; i < list.length; i++) {
        const name = list[i]!;
        if (name === GLOBAL_GROUP || list.indexOf(name) < i) continue;
        // A directory group listed on a User (refused by the invariants) grants nothing that way.
        const group = groups.get(name);
        if (!group || group.spec.directory) continue;
        const g = this.parts.byGroup.get(name);
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
  private directorySubjects(user: Entry<'User'>, now: number, ids: readonly string[] | null): { subjects: SubjectBindings[]; expiresAt: string | undefined } | null {
    const p = this.parts;
    if (ids !== null) {
      if (ids.length === 0 || p.directoryById.size === 0) return null;
      const subjects: SubjectBindings[] = [];
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
    const subjects: SubjectBindings[] = [];
    for (const { name, id } of session.groups) {
      const dir = p.groups.get(name)?.spec.directory;
      if (!dir || dir.id.toLowerCase() !== id.toLowerCase()) continue;
      const view = this.directoryView(name);
      if (view) subjects.push(view);
    }
    return subjects.length > 0 ? { subjects, expiresAt: session.expiresAt } : null;
  }

  private readonly directoryViews = new Map<string, { from: SubjectBindings; view: SubjectBindings }>();

  /** A directory group's bindings, explained as `directory:NAME` (made once per index and group). */
  private directoryView(name: string): SubjectBindings | undefined {
    const from = this.parts.byGroup.get(name);
    if (!from) return undefined;
    const have = this.directoryViews.get(name);
    if (have && have.from === from) return have.view;
    const view: SubjectBindings = { via: `directory:${name}`, bindings: from.bindings, masks: from.masks };
    this.directoryViews.set(name, { from, view });
    return view;
  }

  /** The session of a user (by name or email), valid or not. */
  sessionOf(userRef: string): Session | undefined {
    const user = this.findUser(userRef);
    return user ? this.parts.sessions.get(user.spec.email.toLowerCase()) : undefined;
  }

  /** Every session of the tenant. */
  sessions(): Session[] {
    return [...this.parts.sessions.values()];
  }

  /** Every User of the tenant, in name order. */
  users(): Entry<'User'>[] {
    return this.sortedUsers().map((n) => this.parts.users.get(n)!);
  }

  check(req: CheckRequest, now: number = Date.now()): CheckResult {
    return this.checkParsed(req.user, parseRequest(req), now);
  }

  checkParsed(userRef: string, req: ParsedRequest, now: number = Date.now()): CheckResult {
    const user = this.findUser(userRef);
    if (!user) return { allowed: false, grants: [], reason: 'UserNotFound' };
    if (!user.spec.active) return { allowed: false, grants: [], reason: 'UserInactive', user: user.name };
    const grants: Grant[] = [];
    const id = req.permissionId;
    const word = id >>> 4;
    const mask = 1 << (id & 15);
    for (const s of this.subjectsOf(user)) {
      const list = s.bindings;
      const masks = s.masks;
      const n = list.length;
      for (let i = 0, at = word * n; i < n; i++, at++) {
        if ((masks[at]! & mask) === 0) continue;
        const g = list[i]!;
        if (matches(g, req, now)) grants.push({ role: g.role.name, binding: g.binding, via: s.via, folder: g.folder });
      }
    }
    const directory = this.directorySubjects(user, now, req.directoryGroups);
    if (directory !== null) {
      for (const s of directory.subjects) {
        const list = s.bindings;
        const masks = s.masks;
        const n = list.length;
        for (let i = 0, at = word * n; i < n; i++, at++) {
          if ((masks[at]! & mask) === 0) continue;
          const g = list[i]!;
          if (!matches(g, req, now)) continue;
          const grant: Grant = { role: g.role.name, binding: g.binding, via: s.via, folder: g.folder };
          if (directory.expiresAt !== undefined) grant.sessionExpiresAt = directory.expiresAt;
          grants.push(grant);
        }
      }
    }
    const robot = this.parts.robot;
    if (robot !== null && user.spec.type === 'Robot' && hasBit(robot.role.bits, id) && matches(robot, req, now)) {
      grants.push({ role: robot.role.name, binding: null, via: 'user', folder: null });
    }
    if (grants.length > 1) grants.sort(BY_VIA);
    return grants.length > 0 ? { allowed: true, grants, user: user.name } : { allowed: false, grants, reason: 'NoGrant', user: user.name };
  }

  /**
   * Effective permissions with provenance ("Check Permissions" of the seeds): one row per
   * permission and grant, unexpired, with the narrowing (resources, environment) kept visible.
   * Rows come in catalog order. Undefined when the user is unknown.
   */
  permissions(userRef: string, now: number = Date.now(), directoryGroups?: readonly string[]): PermissionGrant[] | undefined {
    const user = this.findUser(userRef);
    if (!user) return undefined;
    if (!user.spec.active) return [];
    // Every unexpired grant the user has, with its explanation, then one pass per permission.
    const held: { g: CompiledBinding; via: string; sessionExpiresAt?: string }[] = [];
    for (const s of this.subjectsOf(user)) for (const g of s.bindings) if (now <= g.expiresAtMs) held.push({ g, via: s.via });
    const directory = this.directorySubjects(user, now, directoryGroups ?? null);
    for (const s of directory?.subjects ?? []) {
      for (const g of s.bindings) if (now <= g.expiresAtMs) held.push({ g, via: s.via, ...(directory!.expiresAt ? { sessionExpiresAt: directory!.expiresAt } : {}) });
    }
    if (this.parts.robot && user.spec.type === 'Robot') held.push({ g: this.parts.robot, via: 'user' });
    const rows: PermissionGrant[] = [];
    for (let id = 0; id < ALL_PERMISSIONS.length; id++) {
      const scope = PERMISSION_SCOPES[id]!;
      for (const { g, via, sessionExpiresAt } of held) {
        if (!hasBit(g.role.bits, id)) continue;
        // A tenant binding reaches folder resources only for the built-in tenant roles.
        if (scope === 'Folder' && g.folder === null && !g.role.builtIn) continue;
        if (scope === 'Tenant' && g.folder !== null) continue;
        const row: PermissionGrant = { permission: ALL_PERMISSIONS[id]!, folder: g.folder, role: g.role.name, binding: g.binding, via };
        if (g.resourceList) row.resources = g.resourceList;
        if (g.environment !== null) row.environment = g.environment;
        if (g.expiresAt) row.expiresAt = g.expiresAt;
        if (sessionExpiresAt) row.sessionExpiresAt = sessionExpiresAt;
        rows.push(row);
      }
    }
    return rows;
  }

  /** Everyone allowed, each with what allows them, by user name. */
  who(req: Omit<CheckRequest, 'user'>, now: number = Date.now()): { user: string; grants: Grant[] }[] {
    const parsed = parseRequest(req);
    const out: { user: string; grants: Grant[] }[] = [];
    for (const name of this.sortedUsers()) {
      const r = this.checkParsed(name, parsed, now);
      if (r.allowed) out.push({ user: name, grants: r.grants });
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
    let robot = p.robot;
    if (roles.size > 0) {
      const patched = new Map(p.roles);
      compiledRoles = new Map(p.compiledRoles);
      for (const [name, r] of roles) {
        if (r) {
          patched.set(name, r);
          compiledRoles.set(name, compileRole(r));
        } else {
          patched.delete(name);
          compiledRoles.delete(name);
        }
      }
      nextRoles = patched;
      robot = robotGrant(compiledRoles);
      for (const b of nextBindings.values()) if (roles.has(b.spec.roleRef.name) && !bindings.has(b.name)) bindings.set(b.name, b);
    }

    // Emails: the old address of every changed user goes, the new one comes.
    let usersByEmail = p.usersByEmail;
    if (users.size > 0) {
      const emails = new Map<string, Entry<'User'> | undefined>();
      for (const name of users.keys()) {
        const was = p.users.get(name);
        if (was) {
          const key = was.spec.email.toLowerCase();
          if (p.usersByEmail.get(key) === was) emails.set(key, undefined);
        }
      }
      for (const u of users.values()) if (u) emails.set(u.spec.email.toLowerCase(), u);
      usersByEmail = usersByEmail.with(emails);
    }
    let sortedUsers = p.sortedUsers;
    for (const [name, u] of users) if (p.users.has(name) !== (u !== undefined)) sortedUsers = undefined;

    // Bindings: refile the changed ones under their old and new subjects, one new list per subject.
    const removed = new Map<string, Set<string>>(); // subject key -> binding names to drop
    const added = new Map<string, CompiledBinding[]>(); // subject key -> compiled to add
    const key = (s: { kind: string; name: string }) => `${s.kind === 'User' ? 'U' : 'G'}${s.name}`;
    for (const [name, b] of bindings) {
      const was = p.bindings.get(name);
      if (was) {
        for (const s of was.spec.subjects) {
          const k = key(s);
          const set = removed.get(k);
          if (set) set.add(name);
          else removed.set(k, new Set([name]));
        }
      }
      const role = b ? compiledRoles.get(b.spec.roleRef.name) : undefined;
      if (b && role) {
        const c = compileBinding(b, role);
        for (const s of b.spec.subjects) {
          const k = key(s);
          const list = added.get(k);
          if (list) list.push(c);
          else added.set(k, [c]);
        }
      }
    }
    const userLists = new Map<string, SubjectBindings | undefined>();
    const groupLists = new Map<string, SubjectBindings | undefined>();
    for (const k of new Set([...removed.keys(), ...added.keys()])) {
      const isUser = k[0] === 'U';
      const name = k.slice(1);
      const have = (isUser ? p.byUser : p.byGroup).get(name);
      const drop = removed.get(k);
      const kept = have ? (drop ? have.bindings.filter((c) => !drop.has(c.binding!)) : have.bindings) : [];
      const next = kept.concat(added.get(k) ?? []);
      (isUser ? userLists : groupLists).set(name, next.length > 0 ? subjectBindings(isUser ? 'user' : `group:${name}`, next) : undefined);
    }
    const sessions = delta.sessions && delta.sessions.length > 0 ? p.sessions.with(new Map(delta.sessions.map((s) => [s.email, s]))) : p.sessions;
    // Directory ids: rebuilt when a group changed (groups are few next to users and bindings).
    const directoryById = groups.size > 0 ? directoryGroupsById(nextGroups.values()) : p.directoryById;
    return new TenantIndex({ tenant: this.tenant, users: new Map(), groups: new Map(), roles: new Map(), bindings: new Map() }, revision, {
      users: nextUsers, groups: nextGroups, roles: nextRoles, bindings: nextBindings, usersByEmail,
      compiledRoles, byUser: p.byUser.with(userLists), byGroup: p.byGroup.with(groupLists), robot, sortedUsers, sessions, directoryById,
    });
  }
}
