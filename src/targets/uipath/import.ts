/**
 * Import: an existing UiPath Orchestrator tenant -> rpa-access documents that, applied and
 * synced, reproduce its access (the mapping read backwards). Pure. What cannot be written as
 * documents is reported, never approximated. The objects imported are claimed for the target
 * (the caller records them in the ledger): importing is how a UiPath shop hands them over.
 */
import { API_VERSION_FULL, BUILT_IN_ROLE_NAMES, GLOBAL_GROUP, resourceScope } from '../../model/catalog.js';
import type { AccessDocument, Subject } from '../../model/types.js';
import type { TargetConfig } from '../orchestrator.js';
import type { ObservedUiPath, OwnedKind } from './observed.js';
import {
  BUILT_IN_MAPPING, STATIC_ROLE_NAMES, UIPATH_ADMINISTRATOR, UIPATH_AUTOMATION_USER, UIPATH_FOLDER_ADMINISTRATOR, UIPATH_ROBOT, unmapPermission,
} from './permissions.js';

export interface ImportResult {
  documents: AccessDocument[];
  /** Role names that are not valid object names: `spec.roleMap` entries the target needs. */
  roleMap: Record<string, string>;
  claims: { kind: OwnedKind; id: string | number; name: string }[];
  warnings: string[];
}

/** A Kubernetes object name from free text: lower case, `-` for anything else, at most 63. */
export function objectName(text: string): string {
  const n = text.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').replace(/\.{2,}/g, '.').slice(0, 63).replace(/[^a-z0-9]+$/, '');
  return n || 'x';
}

class Names {
  private readonly used = new Set<string>();
  take(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base.slice(0, 60)}-${i}`;
    this.used.add(name);
    return name;
  }
}

/** Roles rpa-access writes itself for built-ins (developer, developer-folders, ...) -> the built-in. */
const OWNED_BUILT_IN_ROLES = new Map<string, { builtIn: string; half: 'tenant' | 'folder' }>();
for (const [builtIn, m] of Object.entries(BUILT_IN_MAPPING)) {
  if (m.kind !== 'owned') continue;
  if (m.tenantRole) OWNED_BUILT_IN_ROLES.set(m.tenantRole, { builtIn, half: 'tenant' });
  if (m.folderRole) OWNED_BUILT_IN_ROLES.set(m.folderRole, { builtIn, half: 'folder' });
}

export function importUiPath(observed: ObservedUiPath, config: TargetConfig): ImportResult {
  const tenant = config.tenant;
  const documents: AccessDocument[] = [];
  const claims: ImportResult['claims'] = [];
  const warnings: string[] = [];
  const roleMap: Record<string, string> = {};
  const meta = (name: string) => ({ name, namespace: tenant });

  const userById = new Map(observed.users.map((u) => [u.id, u]));
  const robotById = new Map(observed.robots.map((r) => [r.id, r]));
  const groupById = new Map(observed.groups.map((g) => [g.id, g]));
  const roleById = new Map(observed.roles.map((r) => [r.id, r]));
  const folderById = new Map(observed.folders.map((f) => [f.id, f]));

  // Principals of the tenant -> subjects.
  const userNames = new Names();
  const groupNames = new Map<string, string>(); // Identity group id -> Group name
  const subjectOf = new Map<number, Subject>(); // tenant principal id -> subject
  const robots = new Set<number>();
  // Groups first, so that users' memberships can name them.
  const isGroup = (p: (typeof observed.principals)[number]) => (p.directoryId ? groupById.has(p.directoryId.toLowerCase()) || groupById.has(p.directoryId) : false);
  const principals = [...observed.principals].sort((a, b) => Number(isGroup(b)) - Number(isGroup(a)) || a.id - b.id);
  for (const p of principals) {
    if (!p.directoryId) continue;
    const id = p.directoryId.toLowerCase();
    const g = groupById.get(id) ?? [...groupById.values()].find((x) => x.id.toLowerCase() === id);
    if (g) {
      if (g.builtIn) { warnings.push(`Group/${g.name}: a built-in UiPath group; not imported`); continue; }
      if (!g.name.startsWith(config.groupPrefix)) { warnings.push(`Group/${g.name}: does not start with the group prefix ${JSON.stringify(config.groupPrefix)}; not imported`); continue; }
      const name = g.name.slice(config.groupPrefix.length);
      if (name === GLOBAL_GROUP) {
        subjectOf.set(p.id, { kind: 'Group', name: GLOBAL_GROUP });
      } else {
        if (objectName(name) !== name) { warnings.push(`Group/${g.name}: ${JSON.stringify(name)} is not a valid object name; not imported`); continue; }
        groupNames.set(g.id, name);
        subjectOf.set(p.id, { kind: 'Group', name });
        documents.push({ apiVersion: API_VERSION_FULL, kind: 'Group', metadata: meta(name), spec: { displayName: name } });
      }
      claims.push({ kind: 'IdentityGroup', id: g.id, name: g.name }, { kind: 'TenantPrincipal', id: p.id, name: g.name });
      continue;
    }
    const robot = robotById.get(id) ?? [...robotById.values()].find((x) => x.id.toLowerCase() === id);
    if (robot) {
      if (objectName(robot.name) !== robot.name) { warnings.push(`Robot/${robot.name}: not a valid object name (robots map by name); not imported`); continue; }
      const name = userNames.take(robot.name);
      subjectOf.set(p.id, { kind: 'User', name });
      robots.add(p.id);
      documents.push({ apiVersion: API_VERSION_FULL, kind: 'User', metadata: meta(name), spec: { email: `${robot.name}@robots.invalid`, fullName: robot.displayName || robot.name, type: 'Robot', active: true, language: 'en', concurrentExecution: true, ...groupsOf(robot.groupIds) } as never });
      claims.push({ kind: 'RobotAccount', id: robot.id, name: robot.name }, { kind: 'TenantPrincipal', id: p.id, name: robot.name });
      continue;
    }
    const user = userById.get(id) ?? [...userById.values()].find((x) => x.id.toLowerCase() === id);
    if (user) {
      const email = user.email || user.userName;
      const name = userNames.take(objectName(email.split('@')[0] ?? email));
      subjectOf.set(p.id, { kind: 'User', name });
      documents.push({ apiVersion: API_VERSION_FULL, kind: 'User', metadata: meta(name), spec: { email, fullName: user.displayName || email, type: 'Human', active: user.active, language: 'en', concurrentExecution: true, ...groupsOf(user.groupIds) } as never });
      claims.push({ kind: 'IdentityUser', id: user.id, name: email }, { kind: 'TenantPrincipal', id: p.id, name: email });
      continue;
    }
    warnings.push(`${p.type}/${p.userName}: not found in the organization's users, robot accounts or groups; not imported`);
  }
  function groupsOf(ids: string[]): { groups?: string[] } {
    const names = ids.map((g) => groupNames.get(g) ?? groupNameById(g)).filter((n): n is string => n !== undefined && n !== GLOBAL_GROUP);
    return names.length > 0 ? { groups: [...new Set(names)].sort() } : {};
  }
  function groupNameById(id: string): string | undefined {
    const g = groupById.get(id);
    return g && g.name.startsWith(config.groupPrefix) ? g.name.slice(config.groupPrefix.length) : undefined;
  }
  // Custom roles -> Roles (roles rpa-access writes for built-ins, and static ones, are not Roles).
  const roleNames = new Map<number, string>();
  const roleObjects = new Names();
  for (const name of BUILT_IN_ROLE_NAMES) roleObjects.take(name);
  for (const r of [...observed.roles].sort((a, b) => a.id - b.id)) {
    if (r.isStatic || STATIC_ROLE_NAMES.has(r.name)) continue;
    if (OWNED_BUILT_IN_ROLES.has(r.name)) {
      // The roles rpa-access writes for a built-in: handed over with the rest (a sync sets their permissions).
      claims.push({ kind: 'Role', id: r.id, name: r.name });
      continue;
    }
    if (r.type !== 'Tenant' && r.type !== 'Folder') { warnings.push(`Role/${r.name}: a ${r.type} role (tenant and folder permissions at once) has no rpa-access equivalent; not imported`); continue; }
    const permissions = new Map<string, Set<string>>();
    const lost: string[] = [];
    for (const p of r.permissions) {
      const back = unmapPermission(p);
      const scopeOk = back && resourceScope(back.resource) === r.type;
      if (!back || !scopeOk) { lost.push(p); continue; }
      let s = permissions.get(back.resource);
      if (!s) permissions.set(back.resource, (s = new Set()));
      s.add(back.action);
    }
    if (lost.length > 0) warnings.push(`Role/${r.name}: ${lost.join(', ')} have no rpa-access permission; left out (a sync would then remove them from the role)`);
    const name = roleObjects.take(objectName(r.name));
    if (name !== r.name) roleMap[name] = r.name;
    roleNames.set(r.id, name);
    const order = ['View', 'Create', 'Edit', 'Delete'];
    documents.push({
      apiVersion: API_VERSION_FULL, kind: 'Role', metadata: meta(name),
      spec: { scope: r.type, displayName: r.name, permissions: [...permissions].map(([resource, actions]) => ({ resource, actions: order.filter((a) => actions.has(a)) })) } as never,
    });
    claims.push({ kind: 'Role', id: r.id, name: r.name });
  }

  // Assignments -> bindings, one per (role, folder) with every subject holding it there.
  const bindings = new Map<string, { role: string; folder?: string; subjects: Subject[] }>();
  const bind = (role: string, folder: string | undefined, subject: Subject) => {
    const key = `${role}\u0000${folder ?? ''}`;
    let b = bindings.get(key);
    if (!b) bindings.set(key, (b = { role, ...(folder ? { folder } : {}), subjects: [] }));
    if (!b.subjects.some((s) => s.kind === subject.kind && s.name === subject.name)) b.subjects.push(subject);
  };
  const asRole = (roleId: number, where: 'tenant' | 'folder', pid: number): string | null | undefined => {
    const r = roleById.get(roleId);
    if (!r) return undefined;
    if (roleNames.has(roleId)) return roleNames.get(roleId)!;
    if (r.name === UIPATH_ADMINISTRATOR) return 'administrator';
    if (r.name === UIPATH_FOLDER_ADMINISTRATOR) return 'folder-administrator';
    if (r.name === UIPATH_AUTOMATION_USER) return 'automation-user';
    if (r.name === UIPATH_ROBOT) return robots.has(pid) ? null : 'robot';
    const owned = OWNED_BUILT_IN_ROLES.get(r.name);
    if (owned) return owned.half === where || owned.builtIn === 'folder-viewer' ? owned.builtIn : null;
    if (STATIC_ROLE_NAMES.has(r.name)) return null; // "Allow to be ..." companions: implied by their folder role
    return undefined;
  };
  for (const p of observed.principals) {
    const subject = subjectOf.get(p.id);
    if (!subject) continue;
    for (const roleId of p.roleIds) {
      const role = asRole(roleId, 'tenant', p.id);
      if (role === undefined) warnings.push(`TenantRoles/${p.userName}: role ${roleById.get(roleId)?.name ?? roleId} has no rpa-access equivalent; not imported`);
      else if (role !== null) bind(role, undefined, subject);
    }
  }
  for (const [folderId, byPrincipal] of observed.assignments) {
    const folder = folderById.get(folderId);
    if (!folder) continue;
    for (const [pid, roleIds] of byPrincipal) {
      const subject = subjectOf.get(pid);
      if (!subject) continue;
      for (const roleId of roleIds) {
        const role = asRole(roleId, 'folder', pid);
        if (role === undefined) warnings.push(`FolderRoles/${subject.name}@${folder.path}: role ${roleById.get(roleId)?.name ?? roleId} has no rpa-access equivalent; not imported`);
        else if (role !== null && !(OWNED_BUILT_IN_ROLES.get(roleById.get(roleId)!.name)?.half === 'folder' && role !== 'folder-viewer')) bind(role, folder.path, subject);
      }
    }
  }
  const bindingNames = new Names();
  for (const b of [...bindings.values()].sort((x, y) => (x.role + (x.folder ?? '') < y.role + (y.folder ?? '') ? -1 : 1))) {
    const name = bindingNames.take(objectName(b.folder ? `${b.role}-${b.folder}` : b.role));
    b.subjects.sort((x, y) => (x.kind + x.name < y.kind + y.name ? -1 : 1));
    documents.push({ apiVersion: API_VERSION_FULL, kind: 'RoleBinding', metadata: meta(name), spec: { roleRef: { name: b.role }, subjects: b.subjects, ...(b.folder ? { folder: b.folder } : {}) } });
  }
  return { documents, roleMap, claims, warnings };
}
