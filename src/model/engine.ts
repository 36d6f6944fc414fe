/**
 * The decision engine (contract section 3). A TenantIndex is built once from a tenant's state
 * and is immutable; the store's watcher swaps in a new one when the tenant changes.
 *
 * Cost of a check: resolve the user (hash), then look up the permission in the user's compiled
 * grants (hash) and scan the few grants found there. A user's grants are compiled lazily from
 * the bindings of the subjects they are (themselves, their groups, `global`), so nothing in a
 * check grows with the tenant's total number of bindings.
 */
import {
  ALL_PERMISSIONS, BUILT_IN_ROLE_NAMES, GLOBAL_GROUP, ROBOT_ROLE, parsePermission, type Scope,
} from './catalog.js';
import { folderCovers, isFolderPath } from './folders.js';
import type { Entry, TenantState } from './types.js';

export interface Grant {
  role: string;
  /** The binding that grants; null for the `robot` role a Robot user holds implicitly. */
  binding: string | null;
  /** `user` for an explicit grant, `group:NAME` for an inherited one. */
  via: string;
  /** The binding's folder, or null for a tenant-wide grant. */
  folder: string | null;
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

interface CompiledGrant {
  role: string;
  binding: string | null;
  via: string;
  folder: string | null;
  resources: Set<string> | null;
  resourceList?: { kind: string; name: string }[];
  environment: string | null;
  expiresAtMs: number;
  expiresAt?: string;
}

interface ParsedRequest {
  permission: string;
  scope: Scope;
  folder: string | null;
  resource: string | null;
  environment: string | null;
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
  if (folder !== null && !isFolderPath(folder)) {
    throw new RequestError(`invalid folder path ${JSON.stringify(folder)}: 1 to 7 non-empty segments like Finance/Invoices`);
  }
  let resource: string | null = null;
  if (req.resource !== undefined && req.resource !== '') {
    const slash = req.resource.indexOf('/');
    if (slash <= 0 || slash === req.resource.length - 1) {
      throw new RequestError(`invalid resource ${JSON.stringify(req.resource)}: expected Kind/name, e.g. Process/invoice-bot`);
    }
    resource = req.resource;
  }
  const environment = req.environment === undefined || req.environment === '' ? null : req.environment;
  return { permission: req.permission, scope: parsed.scope, folder, resource, environment };
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

const BY_VIA = (a: Grant, b: Grant): number =>
  (a.via === 'user' ? 0 : 1) - (b.via === 'user' ? 0 : 1) || a.via.localeCompare(b.via) || a.role.localeCompare(b.role) || (a.binding ?? '').localeCompare(b.binding ?? '');

export class TenantIndex {
  readonly tenant: string;
  /** Store revision this index was built from (for freshness reporting). */
  readonly revision: number;
  private readonly users: Map<string, Entry<'User'>>;
  private readonly usersByEmail = new Map<string, Entry<'User'>>();
  private readonly groups: ReadonlySet<string>;
  /** Role name -> permissions it holds. */
  private readonly rolePermissions = new Map<string, ReadonlySet<string>>();
  /** `User/name` or `Group/name` -> bindings naming that subject. */
  private readonly bindingsBySubject = new Map<string, Entry<'RoleBinding'>[]>();
  private readonly compiled = new Map<string, Map<string, CompiledGrant[]>>();
  readonly bindingCount: number;

  constructor(state: TenantState, revision = 0) {
    this.tenant = state.tenant;
    this.revision = revision;
    this.users = state.users;
    for (const u of state.users.values()) this.usersByEmail.set(u.spec.email.toLowerCase(), u);
    this.groups = new Set(state.groups.keys());
    for (const r of state.roles.values()) {
      const perms = new Set<string>();
      for (const p of r.spec.permissions ?? []) for (const a of p.actions) perms.add(`${p.resource}.${a}`);
      this.rolePermissions.set(r.name, perms);
    }
    for (const b of state.bindings.values()) {
      for (const s of b.spec.subjects) {
        const key = `${s.kind}/${s.name}`;
        const list = this.bindingsBySubject.get(key);
        if (list) list.push(b);
        else this.bindingsBySubject.set(key, [b]);
      }
    }
    this.bindingCount = state.bindings.size;
  }

  /** A User by object name or (case-insensitive) email. */
  findUser(nameOrEmail: string): Entry<'User'> | undefined {
    return this.users.get(nameOrEmail) ?? this.usersByEmail.get(nameOrEmail.toLowerCase());
  }

  userNames(): string[] {
    return [...this.users.keys()].sort();
  }

  /** The subjects a user is, with how grants through them are explained. */
  private subjectsOf(user: Entry<'User'>): { key: string; via: string }[] {
    const out = [{ key: `User/${user.name}`, via: 'user' }];
    const groups = new Set([GLOBAL_GROUP, ...(user.spec.groups ?? [])]);
    for (const g of groups) {
      // Membership of a group that does not exist grants nothing (the User reports it as not ready).
      if (this.groups.has(g)) out.push({ key: `Group/${g}`, via: `group:${g}` });
    }
    return out;
  }

  private compile(user: Entry<'User'>): Map<string, CompiledGrant[]> {
    const cached = this.compiled.get(user.name);
    if (cached) return cached;
    const byPermission = new Map<string, CompiledGrant[]>();
    const add = (perms: ReadonlySet<string>, g: CompiledGrant) => {
      for (const p of perms) {
        const list = byPermission.get(p);
        if (list) list.push(g);
        else byPermission.set(p, [g]);
      }
    };
    for (const { key, via } of this.subjectsOf(user)) {
      for (const b of this.bindingsBySubject.get(key) ?? []) {
        const perms = this.rolePermissions.get(b.spec.roleRef.name);
        if (!perms) continue; // role does not exist: the binding grants nothing
        const expiresAtMs = b.spec.expiresAt ? expiryMs(b.spec.expiresAt) : Number.POSITIVE_INFINITY;
        add(perms, {
          role: b.spec.roleRef.name,
          binding: b.name,
          via,
          folder: b.spec.folder ?? null,
          resources: b.spec.resources ? new Set(b.spec.resources.map((r) => `${r.kind}/${r.name}`)) : null,
          ...(b.spec.resources ? { resourceList: b.spec.resources } : {}),
          environment: b.spec.environment ?? null,
          expiresAtMs,
          ...(b.spec.expiresAt ? { expiresAt: b.spec.expiresAt } : {}),
        });
      }
    }
    if (user.spec.type === 'Robot') {
      const perms = this.rolePermissions.get(ROBOT_ROLE);
      if (perms) add(perms, { role: ROBOT_ROLE, binding: null, via: 'user', folder: null, resources: null, environment: null, expiresAtMs: Number.POSITIVE_INFINITY });
    }
    this.compiled.set(user.name, byPermission);
    return byPermission;
  }

  /** Does `g` grant the parsed request at time `now`? (Contract 3.2 to 3.4.) */
  private static matches(g: CompiledGrant, req: ParsedRequest, now: number): boolean {
    if (now > g.expiresAtMs) return false;
    if (g.resources !== null && (req.resource === null || !g.resources.has(req.resource))) return false;
    if (g.environment !== null && g.environment !== req.environment) return false;
    if (req.scope === 'Tenant') return g.folder === null;
    // Folder resource: a folder binding covers its subtree; a tenant binding of a built-in
    // tenant role (the only tenant roles that can hold folder permissions) covers every folder.
    return g.folder === null ? BUILT_IN_ROLE_NAMES.has(g.role) : folderCovers(g.folder, req.folder!);
  }

  check(req: CheckRequest, now: number = Date.now()): CheckResult {
    return this.checkParsed(req.user, parseRequest(req), now);
  }

  checkParsed(userRef: string, req: ParsedRequest, now: number = Date.now()): CheckResult {
    const user = this.findUser(userRef);
    if (!user) return { allowed: false, grants: [], reason: 'UserNotFound' };
    if (!user.spec.active) return { allowed: false, grants: [], reason: 'UserInactive', user: user.name };
    const candidates = this.compile(user).get(req.permission);
    const grants: Grant[] = [];
    if (candidates) {
      for (const g of candidates) {
        if (TenantIndex.matches(g, req, now)) grants.push({ role: g.role, binding: g.binding, via: g.via, folder: g.folder });
      }
    }
    if (grants.length > 1) grants.sort(BY_VIA);
    return grants.length > 0 ? { allowed: true, grants, user: user.name } : { allowed: false, grants, reason: 'NoGrant', user: user.name };
  }

  /**
   * Effective permissions with provenance ("Check Permissions" of the seeds): one row per
   * permission and grant, unexpired, with the narrowing (resources, environment) kept visible.
   * Undefined when the user is unknown.
   */
  permissions(userRef: string, now: number = Date.now()): PermissionGrant[] | undefined {
    const user = this.findUser(userRef);
    if (!user) return undefined;
    if (!user.spec.active) return [];
    const rows: PermissionGrant[] = [];
    const compiled = this.compile(user);
    for (const permission of ALL_PERMISSIONS) {
      const scope = parsePermission(permission)!.scope;
      for (const g of compiled.get(permission) ?? []) {
        if (now > g.expiresAtMs) continue;
        // A tenant binding reaches folder resources only for the built-in tenant roles.
        if (scope === 'Folder' && g.folder === null && !BUILT_IN_ROLE_NAMES.has(g.role)) continue;
        if (scope === 'Tenant' && g.folder !== null) continue;
        rows.push({
          permission, folder: g.folder, role: g.role, binding: g.binding, via: g.via,
          ...(g.resourceList ? { resources: g.resourceList } : {}),
          ...(g.environment !== null ? { environment: g.environment } : {}),
          ...(g.expiresAt ? { expiresAt: g.expiresAt } : {}),
        });
      }
    }
    return rows;
  }

  /** Everyone allowed, each with what allows them. */
  who(req: Omit<CheckRequest, 'user'>, now: number = Date.now()): { user: string; grants: Grant[] }[] {
    const parsed = parseRequest(req);
    const out: { user: string; grants: Grant[] }[] = [];
    for (const name of this.userNames()) {
      const r = this.checkParsed(name, parsed, now);
      if (r.allowed) out.push({ user: name, grants: r.grants });
    }
    return out;
  }
}
