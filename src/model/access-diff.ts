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
 * A permission row counts as gained only when nothing held before already covers it: a grant of
 * the same permission on the same folder or a parent (or tenant-wide through a built-in role),
 * no narrower in objects or environment, lasting at least as long. Lost is the same the other
 * way round. A right that only changes provenance (another binding now gives it) is neither;
 * the object-level plan shows that change.
 */
import { GLOBAL_GROUP, ROBOT_ROLE } from './catalog.js';
import { expiryMs, TenantIndex, type PermissionGrant } from './engine.js';
import { folderCovers } from './folders.js';
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

/** Does `held` give at least what `row` gives? (Same permission assumed.) */
export function grantCovers(held: PermissionGrant, row: PermissionGrant): boolean {
  if (held.folder !== null && (row.folder === null || !folderCovers(held.folder, row.folder))) return false;
  if (held.resources) {
    if (!row.resources) return false;
    const names = new Set(held.resources.map((r) => `${r.kind}/${r.name}`));
    if (!row.resources.every((r) => names.has(`${r.kind}/${r.name}`))) return false;
  }
  if (held.environment !== undefined && held.environment !== row.environment) return false;
  if (held.expiresAt !== undefined && (row.expiresAt === undefined || expiryMs(held.expiresAt) < expiryMs(row.expiresAt))) return false;
  return true;
}

/** Rows of `rows` that no row of `other` covers. */
function uncovered(rows: readonly PermissionGrant[], other: readonly PermissionGrant[]): PermissionGrant[] {
  if (rows.length === 0) return [];
  const byPermission = new Map<string, PermissionGrant[]>();
  for (const o of other) {
    const list = byPermission.get(o.permission);
    if (list) list.push(o);
    else byPermission.set(o.permission, [o]);
  }
  return rows.filter((r) => !(byPermission.get(r.permission) ?? []).some((o) => grantCovers(o, r)));
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
export function diffTenantAccess(before: TenantState, after: TenantState, changes: readonly ObjectChange[], options: AccessDiffOptions = {}): TenantAccessDiff {
  const now = options.now ?? Date.now();
  const reached = affectedUsers(before, after, changes);
  const names = reached === 'all' ? new Set([...before.users.keys(), ...after.users.keys()]) : reached;
  const result: TenantAccessDiff = { tenant: after.tenant, users: [], usersCompared: names.size };
  if (names.size === 0) return result;
  const beforeIndex = options.beforeIndex ?? new TenantIndex(before);
  const afterIndex = options.afterIndex ?? new TenantIndex(after);
  for (const name of [...names].sort(byName)) {
    const b = before.users.get(name);
    const a = after.users.get(name);
    if (!b && !a) continue; // a subject naming no user, on either side
    const was = b ? (beforeIndex.permissions(name, now) ?? []) : [];
    const is = a ? (afterIndex.permissions(name, now) ?? []) : [];
    const gained = uncovered(is, was);
    const lost = uncovered(was, is);
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
