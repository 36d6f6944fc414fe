/**
 * The effective-access change of a plan: who gains and who loses which permissions, where, and
 * through what (`rpa-access diff`). Pure: both sides are answered by the decision engine
 * (`TenantIndex.permissions`), never by a second reading of the rules.
 *
 * Only users a change can reach are compared: the users changed, the subjects of changed
 * bindings (a group's members, everyone for `global`), the holders of changed roles, the
 * members of groups that appeared or vanished. Every other user's rights are the same on both
 * sides by construction (the engine reads nothing else), so a one-binding change in a tenant of
 * 100k bindings costs a handful of users, not the tenant.
 *
 * A permission row counts as gained only when the engine of the other side does not already
 * allow it: the same permission in the row's folder (any folder, for a grant in every folder),
 * for each of its objects, in its environment, until its expiry. Lost is the same the other way
 * round. A right that only changes provenance (another binding now gives it) is neither; the
 * object-level plan shows that change. Only rows through touched grants (changed bindings,
 * roles, groups; every row of a changed user) are candidates: the others are the same on both
 * sides.
 */
import { GLOBAL_GROUP, parsePermission, ROBOT_ROLE } from './catalog.js';
import { TenantIndex, type Grant, type PermissionGrant } from './engine.js';
import { expiryMs } from './time.js';
import type { ObjectChange, TenantPlan } from './plan.js';
import type { Entry, Subject, TenantState } from './types.js';

/** What happened to the user object itself, when something did. */
export type UserLifecycle = 'created' | 'deleted' | 'activated' | 'deactivated';

export interface UserAccessChange {
  user: string;
  email: string;
  fullName?: string;
  lifecycle?: UserLifecycle;
  /** Rows held after the change that nothing before covered, in catalog order. */
  gained: PermissionGrant[];
  /** Rows held before that nothing after covers, in catalog order. */
  lost: PermissionGrant[];
}

export interface TenantAccessDiff {
  tenant: string;
  /** Users whose effective access changes, by user name. */
  users: UserAccessChange[];
  /** Users the comparison looked at (the rest cannot have changed). */
  usersCompared: number;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A folder no binding of either side names (nor lies under): asking the engine about it tells
 * whether a user holds a folder permission in every folder (a built-in tenant role), not only
 * in some.
 */
function probeFolder(before: TenantState, after: TenantState): string {
  const roots = new Set<string>();
  for (const state of [before, after]) for (const b of state.bindings.values()) if (b.spec.folder) roots.add(b.spec.folder.split('/')[0]!);
  let probe = 'rpa-access-diff-probe';
  while (roots.has(probe)) probe += '-';
  return probe;
}

/**
 * Does the engine of `index` give `user` at least what `row` gives? The same question asked of
 * the other side: the same permission in the row's folder (every folder: a probe folder), for
 * each of its objects, in its environment, at its expiry (a grant valid then is valid until then).
 */
function holds(index: TenantIndex, user: string, row: PermissionGrant, probe: string): boolean {
  const folder = row.folder ?? (parsePermission(row.permission)?.scope === 'Folder' ? probe : undefined);
  const at = row.expiresAt === undefined ? Number.POSITIVE_INFINITY : expiryMs(row.expiresAt);
  const ask = (resource: string | undefined) =>
    index.check({ user, permission: row.permission, ...(folder !== undefined ? { folder } : {}), ...(resource ? { resource } : {}), ...(row.environment !== undefined ? { environment: row.environment } : {}) }, at).allowed;
  return row.resources ? row.resources.every((r) => ask(`${r.kind}/${r.name}`)) : ask(undefined);
}

/** What a plan's changes touch: a grant through any of these may differ between the sides. */
interface Touched {
  bindings: Set<string>;
  roles: Set<string>;
  /** `group:NAME` of groups created or deleted (`group:global` included). */
  via: Set<string>;
  users: Set<string>;
}

function touched(changes: readonly ObjectChange[]): Touched {
  const t: Touched = { bindings: new Set(), roles: new Set(), via: new Set(), users: new Set() };
  for (const c of changes) {
    if (c.kind === 'RoleBinding') t.bindings.add(c.name);
    else if (c.kind === 'Role') t.roles.add(c.name);
    else if (c.kind === 'Group') t.via.add(`group:${c.name}`);
    else t.users.add(c.name);
  }
  return t;
}

/**
 * The users a set of object changes can reach, by name, on either side; `all` when a change
 * reaches everyone (a binding of `global`, the global group itself).
 */
export function affectedUsers(before: TenantState, after: TenantState, changes: readonly ObjectChange[]): Set<string> | 'all' {
  const users = new Set<string>();
  let membersOf: Map<string, Set<string>> | undefined;
  const members = (group: string): Iterable<string> => {
    if (!membersOf) {
      membersOf = new Map();
      for (const state of [before, after]) {
        for (const u of state.users.values()) {
          for (const g of u.spec.groups ?? []) {
            const set = membersOf.get(g);
            if (set) set.add(u.name);
            else membersOf.set(g, new Set([u.name]));
          }
        }
      }
    }
    return membersOf.get(group) ?? [];
  };
  let all = false;
  const reach = (subjects: readonly Subject[]) => {
    for (const s of subjects) {
      if (s.kind === 'User') users.add(s.name);
      else if (s.name === GLOBAL_GROUP) all = true;
      else for (const m of members(s.name)) users.add(m);
    }
  };
  const changedRoles = new Set<string>();
  for (const c of changes) {
    const entries = [c.before, c.after].filter((e) => e !== undefined);
    switch (c.kind) {
      case 'User':
        users.add(c.name);
        break;
      case 'Group':
        if (c.name === GLOBAL_GROUP) all = true;
        else for (const m of members(c.name)) users.add(m);
        break;
      case 'RoleBinding':
        for (const e of entries) reach((e as Entry<'RoleBinding'>).spec.subjects);
        break;
      case 'Role':
        changedRoles.add(c.name);
        break;
    }
    if (all) return 'all';
  }
  if (changedRoles.size > 0) {
    for (const state of [before, after]) {
      for (const b of state.bindings.values()) if (changedRoles.has(b.spec.roleRef.name)) reach(b.spec.subjects);
      if (all) return 'all';
    }
    if (changedRoles.has(ROBOT_ROLE)) {
      for (const state of [before, after]) for (const u of state.users.values()) if (u.spec.type === 'Robot') users.add(u.name);
    }
  }
  return all ? 'all' : users;
}

function lifecycle(before: Entry<'User'> | undefined, after: Entry<'User'> | undefined): UserLifecycle | undefined {
  if (!before) return after ? 'created' : undefined;
  if (!after) return 'deleted';
  if (before.spec.active !== after.spec.active) return after.spec.active ? 'activated' : 'deactivated';
  return undefined;
}

export interface AccessDiffOptions {
  /** The instant both sides are judged at (expiry). Default: now. */
  now?: number;
  /** Indexes already built of either side (the bench and the CLI may have them). */
  beforeIndex?: TenantIndex;
  afterIndex?: TenantIndex;
}

/** The effective-access change between two states of one tenant, given the object changes between them. */
function diffTenantAccess(before: TenantState, after: TenantState, changes: readonly ObjectChange[], options: AccessDiffOptions = {}): TenantAccessDiff {
  const now = options.now ?? Date.now();
  const reached = affectedUsers(before, after, changes);
  const names = reached === 'all' ? new Set([...before.users.keys(), ...after.users.keys()]) : reached;
  const result: TenantAccessDiff = { tenant: after.tenant, users: [], usersCompared: names.size };
  if (names.size === 0) return result;
  const beforeIndex = options.beforeIndex ?? new TenantIndex(before);
  // The after side is the before side with the changes: derived, it shares all the rest.
  const afterIndex =
    options.afterIndex ??
    beforeIndex.withChanges({ upserts: changes.flatMap((c) => (c.after ? [c.after] : [])), deletes: changes.filter((c) => !c.after).map((c) => ({ kind: c.kind, name: c.name })) }, 0);
  const t = touched(changes);
  const probe = probeFolder(before, after);
  // Rows through untouched grants are the same on both sides: only the others are candidates.
  const candidate = (g: Grant) => (g.binding !== null && t.bindings.has(g.binding)) || t.roles.has(g.role) || t.via.has(g.via);
  for (const name of [...names].sort(byName)) {
    const b = before.users.get(name);
    const a = after.users.get(name);
    if (!b && !a) continue; // a subject naming no user, on either side
    const only = t.users.has(name) ? undefined : candidate;
    const was = b ? (beforeIndex.permissions(name, now, undefined, only) ?? []) : [];
    const is = a ? (afterIndex.permissions(name, now, undefined, only) ?? []) : [];
    const gained = a ? is.filter((row) => !b || !holds(beforeIndex, name, row, probe)) : [];
    const lost = b ? was.filter((row) => !a || !holds(afterIndex, name, row, probe)) : [];
    const life = lifecycle(b, a);
    if (gained.length === 0 && lost.length === 0 && life === undefined) continue;
    const user = (a ?? b)!;
    result.users.push({
      user: name,
      email: user.spec.email,
      ...(user.spec.fullName ? { fullName: user.spec.fullName } : {}),
      ...(life ? { lifecycle: life } : {}),
      gained,
      lost,
    });
  }
  return result;
}

/** The effective-access change a plan would cause. */
export function diffPlanAccess(plan: TenantPlan, options: AccessDiffOptions = {}): TenantAccessDiff {
  return diffTenantAccess(plan.current, plan.next, plan.changes, options);
}
