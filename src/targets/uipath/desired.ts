/**
 * The mapping (contract section 8): a tenant's state in the store -> what its UiPath
 * Orchestrator tenant must hold. Pure. What UiPath cannot express is left out and listed:
 * nothing is ever pushed in a wider form.
 *
 * Principals are keyed as the sync's output names them: a human by lower-case email, a robot
 * as `robot:<name>`, a group as `group:<UiPath group name>`.
 */
import { BUILT_IN_ROLE_NAMES, GLOBAL_GROUP, ROBOT_ROLE, builtInRole, resourceScope } from '../../model/catalog.js';
import { expiryMs } from '../../model/time.js';
import type { Entry, TenantState } from '../../model/types.js';
import type { TargetConfig } from '../orchestrator.js';
import { BUILT_IN_MAPPING, mapPermissions } from './permissions.js';

export type PrincipalKind = 'User' | 'Robot' | 'Group';

export interface DesiredPrincipal {
  key: string;
  kind: PrincipalKind;
  /** Email (humans), robot account name, or UiPath group name. */
  name: string;
  displayName: string;
  active: boolean;
}

export interface DesiredRole {
  name: string;
  type: 'Tenant' | 'Folder';
  /** UiPath permission names, sorted. */
  permissions: string[];
}

export interface DesiredUiPath {
  principals: Map<string, DesiredPrincipal>;
  /** Group key -> member keys (users and robots). */
  members: Map<string, Set<string>>;
  /** Roles rpa-access owns in UiPath (custom roles and the built-ins UiPath has no static role for). */
  roles: Map<string, DesiredRole>;
  /** UiPath roles referenced but never written (static roles, roleMap targets of built-ins). */
  referencedRoles: Set<string>;
  /** Folders that must exist (ancestors included). */
  folders: Set<string>;
  /** Principal key -> tenant role names. */
  tenantRoles: Map<string, Set<string>>;
  /** Principal key -> folder path -> folder role names. */
  folderRoles: Map<string, Map<string, Set<string>>>;
  /** Principal key -> folder roles to hold on every root folder (tenant-wide built-ins). */
  everyRootFolder: Map<string, Set<string>>;
  /** `Kind/<name>: <why>` lines. */
  notRepresentable: string[];
  /** When the earliest binding still granting expires (ms), to sync again then. */
  nextExpiry?: number;
}

export function userKey(user: Entry<'User'>): string {
  return user.spec.type === 'Robot' ? `robot:${user.name}` : user.spec.email.toLowerCase();
}

function groupName(config: Pick<TargetConfig, 'groupPrefix'>, group: string): string {
  return `${config.groupPrefix}${group}`;
}

function groupKey(uipathGroupName: string): string {
  return `group:${uipathGroupName}`;
}

/** `Finance/Invoices/2024` -> `Finance`, `Finance/Invoices`, `Finance/Invoices/2024`. */
function withAncestors(folder: string): string[] {
  const parts = folder.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

function add<K, V>(map: Map<K, Set<V>>, key: K, ...values: V[]): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  for (const v of values) set.add(v);
}

/** The UiPath role name of an rpa-access Role (the Role's name unless spec.roleMap says otherwise). */
function uipathRoleName(config: Pick<TargetConfig, 'roleMap'>, role: string): string {
  return config.roleMap[role] ?? role;
}

export function desiredState(state: TenantState, config: TargetConfig, now: number = Date.now()): DesiredUiPath {
  const out: DesiredUiPath = {
    principals: new Map(), members: new Map(), roles: new Map(), referencedRoles: new Set(), folders: new Set(),
    tenantRoles: new Map(), folderRoles: new Map(), everyRootFolder: new Map(), notRepresentable: [],
  };

  // Users, robots, and their memberships. An inactive user exists (set inactive) but holds
  // nothing: no role, no assignment, no group (a group would lend it the group's roles).
  const activeKeys: string[] = [];
  const userKeys = new Map<string, string>();
  for (const user of [...state.users.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const key = userKey(user);
    userKeys.set(user.name, key);
    const robot = user.spec.type === 'Robot';
    out.principals.set(key, {
      key, kind: robot ? 'Robot' : 'User', name: robot ? user.name : user.spec.email.toLowerCase(),
      displayName: user.spec.fullName ?? user.name, active: user.spec.active,
    });
    if (!user.spec.active) continue;
    activeKeys.push(key);
  }
  for (const group of state.groups.values()) {
    const name = groupName(config, group.name);
    const key = groupKey(name);
    out.principals.set(key, { key, kind: 'Group', name, displayName: group.spec.displayName ?? group.name, active: true });
    out.members.set(key, new Set());
  }
  for (const user of state.users.values()) {
    if (!user.spec.active) continue;
    const key = userKeys.get(user.name)!;
    for (const g of [GLOBAL_GROUP, ...(user.spec.groups ?? [])]) {
      if (state.groups.has(g)) add(out.members, groupKey(groupName(config, g)), key);
    }
    // Robots hold the `robot` role implicitly (contract section 1): UiPath's Robot role.
    if (user.spec.type === 'Robot') grantTenantWide(out, config, key, ROBOT_ROLE);
  }

  // Roles: every custom Role has its UiPath counterpart; a built-in is written only once a
  // binding uses it (UiPath's static roles are only referenced, never written).
  for (const role of state.roles.values()) {
    if (BUILT_IN_ROLE_NAMES.has(role.name)) continue;
    const name = uipathRoleName(config, role.name);
    const mp = mapPermissions(role.spec.permissions ?? []);
    out.roles.set(name, { name, type: role.spec.scope, permissions: mp.names });
    if (mp.dropped.length > 0) out.notRepresentable.push(`Role/${role.name}: ${mp.dropped.join(', ')} have no UiPath permission; left out`);
  }

  // Bindings.
  for (const binding of [...state.bindings.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const spec = binding.spec;
    const role = state.roles.get(spec.roleRef.name);
    if (!role) continue; // grants nothing (the binding's status says so)
    if (spec.resources?.length || spec.environment) {
      const narrowed = [spec.resources?.length ? 'resources' : '', spec.environment ? 'environment' : ''].filter(Boolean).join(' and ');
      out.notRepresentable.push(`RoleBinding/${binding.name}: narrowed by ${narrowed}, which UiPath cannot express; not pushed (a wider grant would be wrong)`);
      continue;
    }
    if (spec.expiresAt) {
      const at = expiryMs(spec.expiresAt);
      if (at <= now) continue;
      out.nextExpiry = Math.min(out.nextExpiry ?? Infinity, at);
    }
    for (const subject of spec.subjects) {
      let key: string | undefined;
      if (subject.kind === 'User') {
        const user = state.users.get(subject.name);
        if (!user || !user.spec.active) continue;
        key = userKeys.get(subject.name)!;
      } else {
        if (!state.groups.has(subject.name)) continue;
        key = groupKey(groupName(config, subject.name));
      }
      if (role.spec.scope === 'Tenant') grantTenantWide(out, config, key, role.name);
      else if (spec.folder) grantInFolder(out, config, key, role.name, spec.folder);
    }
  }

  // `global` is written only when something is granted to it: a group of every user that
  // grants nothing would only be noise in the organization.
  const globalKey = groupKey(groupName(config, GLOBAL_GROUP));
  if (!out.tenantRoles.has(globalKey) && !out.folderRoles.has(globalKey) && !out.everyRootFolder.has(globalKey)) {
    out.principals.delete(globalKey);
    out.members.delete(globalKey);
  }
  return out;
}

/** Writes the roles rpa-access owns for a built-in (tenant half, folder half), once. */
function ownBuiltIn(out: DesiredUiPath, role: string): void {
  const m = BUILT_IN_MAPPING[role];
  const builtIn = builtInRole(role);
  if (!m || m.kind !== 'owned' || !builtIn) return;
  if ((m.tenantRole && out.roles.has(m.tenantRole)) || (m.folderRole && out.roles.has(m.folderRole))) return;
  const tenantRules = builtIn.permissions.filter((p) => isTenantResource(p.resource));
  const folderRules = builtIn.permissions.filter((p) => !isTenantResource(p.resource));
  const dropped: string[] = [];
  if (m.tenantRole) {
    // A tenant-wide built-in keeps its tenant half here and its folder half in `<name>-folders`.
    const mp = mapPermissions(builtIn.scope === 'Tenant' && m.folderRole ? tenantRules : builtIn.permissions);
    dropped.push(...mp.dropped);
    out.roles.set(m.tenantRole, { name: m.tenantRole, type: 'Tenant', permissions: mp.names });
  }
  if (m.folderRole) {
    const rules = builtIn.scope === 'Tenant' ? [...folderRules, ...builtIn.permissions.filter((p) => p.resource === 'Folders')] : builtIn.permissions;
    const mp = mapPermissions(rules, builtIn.scope === 'Tenant');
    dropped.push(...mp.dropped.filter((d) => !d.startsWith('Folders.')));
    out.roles.set(m.folderRole, { name: m.folderRole, type: 'Folder', permissions: mp.names });
  }
  if (dropped.length > 0) out.notRepresentable.push(`Role/${role}: ${dropped.join(', ')} have no UiPath permission; left out`);
}

function isTenantResource(resource: string): boolean {
  return resourceScope(resource) === 'Tenant';
}

function grantTenantWide(out: DesiredUiPath, config: TargetConfig, key: string, role: string): void {
  const mapped = config.roleMap[role];
  const m = BUILT_IN_MAPPING[role];
  if (mapped || !BUILT_IN_ROLE_NAMES.has(role) || !m) {
    if (mapped && BUILT_IN_ROLE_NAMES.has(role)) out.referencedRoles.add(mapped);
    add(out.tenantRoles, key, uipathRoleName(config, role));
    return;
  }
  if (m.kind === 'static') {
    for (const r of m.tenantRoles) out.referencedRoles.add(r);
    add(out.tenantRoles, key, ...m.tenantRoles);
    return;
  }
  ownBuiltIn(out, role);
  if (m.tenantRole) add(out.tenantRoles, key, m.tenantRole);
  if (m.folderRole && m.everyFolder) add(out.everyRootFolder, key, m.folderRole);
}

function grantInFolder(out: DesiredUiPath, config: TargetConfig, key: string, role: string, folder: string): void {
  for (const f of withAncestors(folder)) out.folders.add(f);
  let byFolder = out.folderRoles.get(key);
  if (!byFolder) out.folderRoles.set(key, (byFolder = new Map()));
  const mapped = config.roleMap[role];
  const m = BUILT_IN_MAPPING[role];
  if (mapped || !BUILT_IN_ROLE_NAMES.has(role) || !m) {
    if (mapped && BUILT_IN_ROLE_NAMES.has(role)) out.referencedRoles.add(mapped);
    add(byFolder, folder, uipathRoleName(config, role));
    return;
  }
  if (m.kind === 'static') {
    // UiPath's folder roles need their tenant-level "Allow to be ..." companion.
    for (const r of [...m.tenantRoles, ...m.folderRoles]) out.referencedRoles.add(r);
    add(out.tenantRoles, key, ...m.tenantRoles);
    add(byFolder, folder, ...m.folderRoles);
    return;
  }
  ownBuiltIn(out, role);
  if (m.folderRole) add(byFolder, folder, m.folderRole);
}
