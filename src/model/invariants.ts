/**
 * Cross-object rules (contract section 4), judged on the whole next state of a tenant and, for
 * the rules about transitions, against the current one. Pure: the store, the operator and the
 * webhook all call this one function.
 */
import { OWNER_ROLE, PROTECTED_HOLDER_ROLES, type Kind } from './catalog.js';
import { sameEntry } from './tenant.js';
import type { AnyEntry, Entry, TenantState } from './types.js';

export interface Violation {
  tenant: string;
  kind: Kind;
  name: string;
  /** CamelCase rule name, for Events and webhook answers. */
  rule: string;
  message: string;
}

export function formatViolation(v: Violation): string {
  return `${v.kind} ${v.tenant}/${v.name}: ${v.message}`;
}

function changed(current: TenantState, next: TenantState, e: AnyEntry): boolean {
  const map = { User: current.users, Group: current.groups, Role: current.roles, RoleBinding: current.bindings }[e.kind] as Map<string, AnyEntry>;
  const before = map.get(e.name);
  return !before || !sameEntry(before, e);
}

function uniqueEmails(current: TenantState, next: TenantState, out: Violation[]): void {
  const byEmail = new Map<string, Entry<'User'>[]>();
  for (const u of next.users.values()) {
    const key = u.spec.email.toLowerCase();
    byEmail.set(key, [...(byEmail.get(key) ?? []), u]);
  }
  for (const users of byEmail.values()) {
    if (users.length < 2) continue;
    const sorted = [...users].sort((a, b) => Number(changed(current, next, a)) - Number(changed(current, next, b)) || a.name.localeCompare(b.name));
    const keeper = sorted[0]!;
    for (const u of sorted.slice(1)) {
      out.push({
        tenant: next.tenant, kind: 'User', name: u.name, rule: 'UniqueEmail',
        message: `email ${u.spec.email} is already used by User ${next.tenant}/${keeper.name} (emails are unique in a tenant, case-insensitive)`,
      });
    }
  }
}

function bindingScopes(current: TenantState, next: TenantState, out: Violation[]): void {
  for (const b of next.bindings.values()) {
    const role = next.roles.get(b.spec.roleRef.name);
    if (!role) continue; // dangling: grants nothing, reported as not ready, not refused
    const problem =
      role.spec.scope === 'Folder' && b.spec.folder === undefined
        ? `is a Folder role: spec.folder is required`
        : role.spec.scope === 'Tenant' && b.spec.folder !== undefined
          ? `is a Tenant role: spec.folder is forbidden`
          : undefined;
    if (!problem) continue;
    // Blame what changed: the binding, or the role whose scope moved under an existing binding.
    if (changed(current, next, b) || !changed(current, next, role)) {
      out.push({ tenant: next.tenant, kind: 'RoleBinding', name: b.name, rule: 'BindingScope', message: `role ${role.name} ${problem}` });
    } else {
      out.push({
        tenant: next.tenant, kind: 'Role', name: role.name, rule: 'BindingScope',
        message: `scope cannot become ${role.spec.scope} while RoleBinding ${next.tenant}/${b.name} binds it${b.spec.folder ? ` to folder ${b.spec.folder}` : ' tenant-wide'}`,
      });
    }
  }
}

function immutableRoleRefs(current: TenantState, next: TenantState, out: Violation[]): void {
  for (const b of next.bindings.values()) {
    const before = current.bindings.get(b.name);
    if (before && before.spec.roleRef.name !== b.spec.roleRef.name) {
      out.push({
        tenant: next.tenant, kind: 'RoleBinding', name: b.name, rule: 'ImmutableRoleRef',
        message: `spec.roleRef is immutable (was ${before.spec.roleRef.name}, now ${b.spec.roleRef.name}); delete the binding and create a new one`,
      });
    }
  }
}

function singleOwner(current: TenantState, next: TenantState, out: Violation[]): void {
  const owners = [...next.bindings.values()].filter((b) => b.spec.roleRef.name === OWNER_ROLE);
  for (const b of owners) {
    const users = b.spec.subjects.filter((s) => s.kind === 'User');
    if (b.spec.subjects.length !== 1 || users.length !== 1) {
      out.push({
        tenant: next.tenant, kind: 'RoleBinding', name: b.name, rule: 'SingleOwner',
        message: `the owner role is held by exactly one User: the binding must have exactly one subject of kind User`,
      });
    }
  }
  if (owners.length > 1) {
    const sorted = [...owners].sort((a, b) => Number(changed(current, next, a)) - Number(changed(current, next, b)) || a.name.localeCompare(b.name));
    for (const extra of sorted.slice(1)) {
      out.push({
        tenant: next.tenant, kind: 'RoleBinding', name: extra.name, rule: 'SingleOwner',
        message: `at most one owner per tenant: RoleBinding ${next.tenant}/${sorted[0]!.name} already grants owner (change its subject to transfer ownership)`,
      });
    }
  }
}

/** `User/binding` pairs of a state where an inactive user holds owner or administrator explicitly. */
function inactiveHolders(state: TenantState): Map<string, { user: Entry<'User'>; binding: Entry<'RoleBinding'> }> {
  const out = new Map<string, { user: Entry<'User'>; binding: Entry<'RoleBinding'> }>();
  for (const b of state.bindings.values()) {
    if (!PROTECTED_HOLDER_ROLES.has(b.spec.roleRef.name)) continue;
    for (const s of b.spec.subjects) {
      const u = s.kind === 'User' ? state.users.get(s.name) : undefined;
      if (u && !u.spec.active) out.set(`${u.name}\u0000${b.name}`, { user: u, binding: b });
    }
  }
  return out;
}

/**
 * Contract 4.4 and 4.6: judged on the resulting state, whatever the order of steps that leads
 * there. A tenant never has an inactive owner, nor an inactive user holding administrator
 * through an explicit binding: a user deactivated, created inactive, or made owner or
 * administrator while inactive are the same broken state. Only what this plan brings is blamed
 * (a store written before this rule keeps its past, and can still be changed elsewhere), on the
 * object that changed: the user, else the binding.
 */
function protectedHolders(current: TenantState, next: TenantState, out: Violation[]): void {
  for (const before of current.users.values()) {
    if (next.users.has(before.name)) continue;
    // Deletion is refused whatever the user's state, or the binding would pass to the next User
    // created under that name.
    const holding = [...next.bindings.values()].find(
      (b) => PROTECTED_HOLDER_ROLES.has(b.spec.roleRef.name) && b.spec.subjects.some((s) => s.kind === 'User' && s.name === before.name),
    );
    if (!holding) continue;
    out.push({
      tenant: next.tenant, kind: 'User', name: before.name, rule: 'ProtectedHolder',
      message: `cannot be deleted: holds ${holding.spec.roleRef.name} through the explicit RoleBinding ${next.tenant}/${holding.name}; remove the binding first`,
    });
  }
  const already = inactiveHolders(current);
  const blamed = new Set<string>();
  for (const [key, { user, binding }] of inactiveHolders(next)) {
    if (already.has(key)) continue;
    const role = binding.spec.roleRef.name;
    const was = current.users.get(user.name);
    if (changed(current, next, user) && !(was && !was.spec.active)) {
      if (blamed.has(`User/${user.name}`)) continue;
      blamed.add(`User/${user.name}`);
      out.push({
        tenant: next.tenant, kind: 'User', name: user.name, rule: 'ProtectedHolder',
        message: `cannot be ${was ? 'deactivated' : 'inactive'}: holds ${role} through the explicit RoleBinding ${next.tenant}/${binding.name}; remove the binding first`,
      });
    } else {
      if (blamed.has(`RoleBinding/${binding.name}`)) continue;
      blamed.add(`RoleBinding/${binding.name}`);
      out.push({
        tenant: next.tenant, kind: 'RoleBinding', name: binding.name, rule: 'InactiveHolder',
        message: `User ${next.tenant}/${user.name} is inactive: ${role === OWNER_ROLE ? 'an inactive user cannot be the owner' : `an inactive user cannot hold ${role}`}; activate the user first`,
      });
    }
  }
}

/**
 * Contract 7: a directory group's members are the people whose login presents it, never a list
 * in Git; and one directory id names one Group of the tenant (a login must know which it matched).
 */
function directoryGroups(current: TenantState, next: TenantState, out: Violation[]): void {
  const byId = new Map<string, Entry<'Group'>[]>();
  for (const g of next.groups.values()) {
    const dir = g.spec.directory;
    if (!dir) continue;
    const key = dir.id.toLowerCase();
    byId.set(key, [...(byId.get(key) ?? []), g]);
  }
  for (const groups of byId.values()) {
    if (groups.length < 2) continue;
    const sorted = [...groups].sort((a, b) => Number(changed(current, next, a)) - Number(changed(current, next, b)) || a.name.localeCompare(b.name));
    for (const g of sorted.slice(1)) {
      out.push({
        tenant: next.tenant, kind: 'Group', name: g.name, rule: 'UniqueDirectoryGroup',
        message: `directory id ${JSON.stringify(g.spec.directory!.id)} is already referenced by Group ${next.tenant}/${sorted[0]!.name} (one Group per directory group in a tenant, ids compared case-insensitively)`,
      });
    }
  }
  for (const u of next.users.values()) {
    for (const name of u.spec.groups ?? []) {
      const g = next.groups.get(name);
      if (!g?.spec.directory) continue;
      // Blame what changed: the User listing it, or the Group that became a directory group under it.
      if (changed(current, next, u) || !changed(current, next, g)) {
        out.push({
          tenant: next.tenant, kind: 'User', name: u.name, rule: 'DirectoryGroupMembership',
          message: `spec.groups lists ${name}, a directory group (${g.spec.directory.provider} ${JSON.stringify(g.spec.directory.id)}): its members are the people whose login presents it, not Users listing it; remove it from spec.groups (or bind the user explicitly)`,
        });
      } else {
        out.push({
          tenant: next.tenant, kind: 'Group', name: g.name, rule: 'DirectoryGroupMembership',
          message: `cannot become a directory group while User ${next.tenant}/${u.name} lists it in spec.groups (a directory group's members come from logins); remove it from the users first`,
        });
      }
    }
  }
}

/** All violations of the next state of one tenant, given the state it replaces. */
export function checkInvariants(current: TenantState, next: TenantState): Violation[] {
  const out: Violation[] = [];
  uniqueEmails(current, next, out);
  bindingScopes(current, next, out);
  immutableRoleRefs(current, next, out);
  singleOwner(current, next, out);
  protectedHolders(current, next, out);
  directoryGroups(current, next, out);
  return out;
}
