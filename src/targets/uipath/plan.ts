/**
 * The UiPath planner: desired state (from the store) vs observed state (from UiPath) and the
 * ledger of what rpa-access created -> an ordered list of steps. Pure: no I/O, no clock.
 *
 * Order: folders (top-down) and roles, then principals and group memberships, then tenant roles
 * and folder assignments (full sets: AssignRoles and AssignUsers replace), then, only under
 * `deletionPolicy: Delete`, roles, principals and folders (bottom-up) that left Git.
 *
 * Never touched: UiPath's static roles, and objects rpa-access did not create (matched by email
 * or name) unless `adopt`; those are reported as conflicts and everything hanging on them is
 * left out (a foreign role's permissions are unknown to us: assigning it could widen access).
 */
import type { TargetConfig } from '../orchestrator.js';
import type { DesiredPrincipal, DesiredRole, DesiredUiPath } from './desired.js';
import { ownedKey, type ObservedUiPath, type OwnedKind, type Ownership } from './observed.js';

export type EntryAction = 'created' | 'updated' | 'deleted';

export interface PlanEntry {
  action: EntryAction;
  /** `User/<email>`, `Robot/<name>`, `Group/<name>`, `Role/<name>`, `Folder/<path>`, `TenantRoles/<p>`, `FolderRoles/<p>@<path>`. */
  entry: string;
}

/** A principal as a step names it: its key, plus its ids when they are known before applying. */
export type Step =
  | { op: 'createFolder'; path: string; displayName: string; parent?: string }
  | { op: 'createRole'; role: DesiredRole }
  | { op: 'updateRole'; id: number; role: DesiredRole }
  | { op: 'adopt'; kind: OwnedKind; id: string | number; name: string }
  | { op: 'createUser'; principal: DesiredPrincipal }
  | { op: 'createRobot'; principal: DesiredPrincipal }
  | { op: 'createGroup'; principal: DesiredPrincipal; members: string[] }
  | { op: 'updateUser'; key: string; id: string; active?: boolean; displayName?: string }
  | { op: 'updateGroupMembers'; key: string; name: string; add: string[]; remove: string[] }
  | { op: 'addToTenant'; key: string; principal: DesiredPrincipal }
  | { op: 'assignRoles'; key: string; roles: string[] }
  | { op: 'assignFolders'; key: string; folders: { path: string; roles: string[] }[] }
  | { op: 'removeFromFolder'; key: string; path: string }
  | { op: 'deleteRole'; id: number; name: string }
  | { op: 'removeFromTenant'; key: string; id: number }
  | { op: 'deleteUser'; key: string; id: string }
  | { op: 'deleteRobot'; key: string; id: string }
  | { op: 'deleteGroup'; key: string; id: string }
  | { op: 'deleteFolder'; id: number; path: string };

export interface PlannedStep {
  step: Step;
  /** What the step changes, as the CLI and Events name it (empty for ledger-only steps). */
  entries: PlanEntry[];
  /** Drift: the step undoes a change made in UiPath since rpa-access last wrote it. */
}

export interface UiPathPlan {
  steps: PlannedStep[];
  unchanged: string[];
  notRepresentable: string[];
  conflicts: string[];
  /** Ids known before applying: principal key -> Identity id / tenant principal id; role name -> id; folder path -> id. */
  known: KnownIds;
  counts: { users: number; groups: number; roles: number; folders: number; assignments: number };
}

export interface KnownIds {
  identity: Map<string, string>;
  tenant: Map<string, number>;
  roles: Map<string, number>;
  folders: Map<string, number>;
}

const sortStrings = (values: Iterable<string>): string[] => [...values].sort();
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function principalEntry(p: DesiredPrincipal): string {
  return p.kind === 'User' ? `User/${p.name}` : p.kind === 'Robot' ? `Robot/${p.name}` : `Group/${p.name}`;
}

function parentOf(path: string): string | undefined {
  const i = path.lastIndexOf('/');
  return i === -1 ? undefined : path.slice(0, i);
}

export function planUiPath(desired: DesiredUiPath, observed: ObservedUiPath, ownership: Ownership, config: Pick<TargetConfig, 'adopt' | 'deletionPolicy'>): UiPathPlan {
  const steps: PlannedStep[] = [];
  const unchanged: string[] = [];
  const conflicts: string[] = [];
  const owns = (kind: OwnedKind, id: string | number) => ownership.owned.has(ownedKey(kind, id));
  const exclusive = (kind: OwnedKind, id: string | number) => ownership.exclusive.has(ownedKey(kind, id));
  const known: KnownIds = { identity: new Map(), tenant: new Map(), roles: new Map(), folders: new Map() };
  const push = (step: Step, ...entries: PlanEntry[]) => steps.push({ step, entries });

  // ---- folders: found by path; created top-down when missing (their ids recorded as ours).
  const folderByPath = new Map(observed.folders.map((f) => [f.path, f]));
  for (const f of observed.folders) known.folders.set(f.path, f.id);
  for (const path of sortStrings(desired.folders)) {
    if (folderByPath.has(path)) unchanged.push(`Folder/${path}`);
    else {
      const parent = parentOf(path);
      push({ op: 'createFolder', path, displayName: path.slice(path.lastIndexOf('/') + 1), ...(parent ? { parent } : {}) }, { action: 'created', entry: `Folder/${path}` });
    }
  }

  // ---- roles: ours are created or kept equal; foreign ones of the same name are conflicts.
  const roleByName = new Map(observed.roles.map((r) => [r.name, r]));
  const usableRoles = new Set<string>();
  for (const r of observed.roles) known.roles.set(r.name, r.id);
  for (const role of [...desired.roles.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const have = roleByName.get(role.name);
    if (!have) {
      push({ op: 'createRole', role }, { action: 'created', entry: `Role/${role.name}` });
      usableRoles.add(role.name);
      continue;
    }
    const ours = owns('Role', have.id);
    if (!ours && (have.isStatic || !config.adopt)) {
      conflicts.push(`Role/${role.name}: a UiPath role of that name exists that rpa-access did not create${have.isStatic ? ' (a static role)' : ''}; left alone, and not assigned${have.isStatic ? '' : ' (adopt: true takes it over)'}`);
      continue;
    }
    if (!ours) push({ op: 'adopt', kind: 'Role', id: have.id, name: role.name });
    usableRoles.add(role.name);
    if (have.type !== role.type || !sameSet(have.permissions, role.permissions)) {
      if (have.isStatic || !have.isEditable) {
        conflicts.push(`Role/${role.name}: not editable in UiPath; its permissions differ from the Role's`);
        usableRoles.delete(role.name);
        continue;
      }
      push({ op: 'updateRole', id: have.id, role }, { action: 'updated', entry: `Role/${role.name}` });
    } else unchanged.push(`Role/${role.name}`);
  }
  for (const name of sortStrings(desired.referencedRoles)) {
    if (roleByName.has(name)) usableRoles.add(name);
    else conflicts.push(`Role/${name}: no UiPath role of that name; grants of it are left out`);
  }

  // ---- principals: Identity object (user / robot account / group) + the tenant's entry for it.
  const userByEmail = new Map(observed.users.map((u) => [(u.email || u.userName).toLowerCase(), u]));
  const robotByName = new Map(observed.robots.map((r) => [r.name, r]));
  const groupByName = new Map(observed.groups.map((g) => [g.name, g]));
  const tenantByDirectoryId = new Map<string, (typeof observed.principals)[number]>();
  for (const p of observed.principals) if (p.directoryId) tenantByDirectoryId.set(p.directoryId.toLowerCase(), p);
  const identityKind = (k: DesiredPrincipal['kind']): OwnedKind => (k === 'User' ? 'IdentityUser' : k === 'Robot' ? 'RobotAccount' : 'IdentityGroup');

  /** Principals whose roles and assignments rpa-access manages: key -> observed tenant principal id (if any). */
  const managed = new Map<string, number | undefined>();
  /** Principal key -> Identity id (observed). */
  const identityOf = new Map<string, string>();
  const groupMembersObserved = new Map<string, Set<string>>(); // group id -> member identity ids
  for (const u of observed.users) for (const g of u.groupIds) addTo(groupMembersObserved, g, u.id);
  for (const r of observed.robots) for (const g of r.groupIds) addTo(groupMembersObserved, g, r.id);

  const desiredPrincipals = [...desired.principals.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  // Groups are created after users and robots, with their members in the creating call.
  const ordered = [...desiredPrincipals.filter((p) => p.kind !== 'Group'), ...desiredPrincipals.filter((p) => p.kind === 'Group')];
  const createdGroups = new Set<string>();
  for (const p of ordered) {
    const have = p.kind === 'User' ? userByEmail.get(p.name) : p.kind === 'Robot' ? robotByName.get(p.name) : groupByName.get(p.name);
    const kind = identityKind(p.kind);
    if (!have) {
      if (p.kind === 'User') push({ op: 'createUser', principal: p }, { action: 'created', entry: principalEntry(p) });
      else if (p.kind === 'Robot') push({ op: 'createRobot', principal: p }, { action: 'created', entry: principalEntry(p) });
      else {
        createdGroups.add(p.key);
        continue; // created below, once its members are known
      }
      push({ op: 'addToTenant', key: p.key, principal: p });
      managed.set(p.key, undefined);
      continue;
    }
    if (p.kind === 'Group' && (have as { builtIn: boolean }).builtIn) {
      conflicts.push(`${principalEntry(p)}: a built-in UiPath group has that name; left alone`);
      continue;
    }
    if (!owns(kind, have.id)) {
      if (!config.adopt) {
        conflicts.push(`${principalEntry(p)}: exists in UiPath and was not created by rpa-access; left alone (adopt: true takes it over)`);
        continue;
      }
      push({ op: 'adopt', kind, id: have.id, name: p.name });
    }
    identityOf.set(p.key, have.id);
    known.identity.set(p.key, have.id);
    const entries: PlanEntry[] = [];
    // Only what decides access is kept equal: whether the user is active. Display names are
    // set on creation and then left to UiPath (its portal derives them, and churn helps nobody).
    if (p.kind === 'User') {
      const u = have as (typeof observed.users)[number];
      if (u.active !== p.active) {
        push({ op: 'updateUser', key: p.key, id: u.id, active: p.active }, { action: 'updated', entry: principalEntry(p) });
        entries.push({ action: 'updated', entry: principalEntry(p) });
      }
    }
    const entry = tenantByDirectoryId.get(have.id.toLowerCase());
    if (entry) {
      known.tenant.set(p.key, entry.id);
      managed.set(p.key, entry.id);
    } else {
      push({ op: 'addToTenant', key: p.key, principal: p });
      managed.set(p.key, undefined);
    }
    if (p.kind !== 'Group' && entries.length === 0) unchanged.push(principalEntry(p));
  }

  // ---- group memberships (members that are conflicts are neither added nor removed: not ours to move).
  const foreignIdentityIds = new Set<string>();
  for (const p of desiredPrincipals) {
    if (p.kind !== 'Group' && !managed.has(p.key)) {
      const have = p.kind === 'User' ? userByEmail.get(p.name) : robotByName.get(p.name);
      if (have) foreignIdentityIds.add(have.id);
    }
  }
  const keyOfIdentity = new Map<string, string>();
  for (const [key, id] of identityOf) keyOfIdentity.set(id, key);
  for (const p of ordered) {
    if (p.kind !== 'Group') continue;
    const wanted = sortStrings([...(desired.members.get(p.key) ?? [])].filter((k) => managed.has(k)));
    if (createdGroups.has(p.key)) {
      push({ op: 'createGroup', principal: p, members: wanted }, { action: 'created', entry: principalEntry(p) });
      push({ op: 'addToTenant', key: p.key, principal: p });
      managed.set(p.key, undefined);
      continue;
    }
    const id = identityOf.get(p.key);
    if (!id) continue; // conflict
    const observedMembers = groupMembersObserved.get(id) ?? new Set<string>();
    const wantedIds = new Set(wanted.map((k) => identityOf.get(k)).filter((x): x is string => x !== undefined));
    const add = wanted.filter((k) => !identityOf.has(k) || !observedMembers.has(identityOf.get(k)!));
    // Members to remove: anyone in the group we do not want, except principals rpa-access leaves alone.
    const remove = [...observedMembers].filter((m) => !wantedIds.has(m) && !foreignIdentityIds.has(m)).sort();
    if (add.length > 0 || remove.length > 0) {
      push({ op: 'updateGroupMembers', key: p.key, name: p.name, add, remove: remove.map((m) => keyOfIdentity.get(m) ?? `id:${m}`) }, { action: 'updated', entry: principalEntry(p) });
    } else unchanged.push(principalEntry(p));
  }

  // ---- tenant roles and folder assignments of every managed principal (full sets).
  const roleName = new Map(observed.roles.map((r) => [r.id, r.name]));
  const folderPath = new Map(observed.folders.map((f) => [f.id, f.path]));
  const rootFolders = sortStrings(new Set([...observed.folders.filter((f) => !f.path.includes('/')).map((f) => f.path), ...[...desired.folders].filter((f) => !f.includes('/'))]));
  const observedFoldersOf = new Map<number, Map<string, string[]>>(); // tenant principal id -> path -> role names
  let assignmentCount = 0;
  for (const [folderId, byPrincipal] of observed.assignments) {
    for (const [pid, roleIds] of byPrincipal) {
      const path = folderPath.get(folderId);
      if (path === undefined) continue;
      let m = observedFoldersOf.get(pid);
      if (!m) observedFoldersOf.set(pid, (m = new Map()));
      m.set(path, sortStrings(roleIds.map((r) => roleName.get(r) ?? `#${r}`)));
    }
  }
  const tenantPrincipalById = new Map(observed.principals.map((p) => [p.id, p]));
  for (const [key, tenantId] of [...managed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const wantTenant = sortStrings([...(desired.tenantRoles.get(key) ?? [])].filter((r) => usableRoles.has(r)));
    const haveTenant = tenantId === undefined ? [] : sortStrings((tenantPrincipalById.get(tenantId)?.roleIds ?? []).map((r) => roleName.get(r) ?? `#${r}`));
    const label = `TenantRoles/${key}`;
    if (!sameSet(wantTenant, haveTenant)) {
      push({ op: 'assignRoles', key, roles: wantTenant }, { action: haveTenant.length === 0 ? 'created' : wantTenant.length === 0 ? 'deleted' : 'updated', entry: label });
    } else if (wantTenant.length > 0) unchanged.push(label);

    const wantFolders = new Map<string, Set<string>>();
    for (const [path, roles] of desired.folderRoles.get(key) ?? []) wantFolders.set(path, new Set([...roles].filter((r) => usableRoles.has(r))));
    for (const role of desired.everyRootFolder.get(key) ?? []) {
      if (!usableRoles.has(role)) continue;
      for (const root of rootFolders) {
        let s = wantFolders.get(root);
        if (!s) wantFolders.set(root, (s = new Set()));
        s.add(role);
      }
    }
    const haveFolders = tenantId === undefined ? new Map<string, string[]>() : observedFoldersOf.get(tenantId) ?? new Map<string, string[]>();
    const assign: { path: string; roles: string[] }[] = [];
    const assignEntries: PlanEntry[] = [];
    for (const path of sortStrings(new Set([...wantFolders.keys(), ...haveFolders.keys()]))) {
      const want = sortStrings(wantFolders.get(path) ?? []);
      const have = haveFolders.get(path) ?? [];
      const flabel = `FolderRoles/${key}@${path}`;
      if (want.length > 0) assignmentCount++;
      if (sameSet(want, have)) {
        if (want.length > 0) unchanged.push(flabel);
        continue;
      }
      if (want.length === 0) {
        push({ op: 'removeFromFolder', key, path }, { action: 'deleted', entry: flabel });
        continue;
      }
      assign.push({ path, roles: want });
      assignEntries.push({ action: have.length === 0 ? 'created' : 'updated', entry: flabel });
    }
    if (assign.length > 0) push({ op: 'assignFolders', key, folders: assign }, ...assignEntries);
  }

  // ---- principals rpa-access created that left Git: Retain strips them, Delete deletes them.
  const desiredKeys = new Set(desired.principals.keys());
  const leaving: { key: string; kind: OwnedKind; id: string; entry: string }[] = [];
  for (const u of observed.users) {
    const key = (u.email || u.userName).toLowerCase();
    if (!desiredKeys.has(key) && owns('IdentityUser', u.id)) leaving.push({ key, kind: 'IdentityUser', id: u.id, entry: `User/${key}` });
  }
  for (const r of observed.robots) {
    const key = `robot:${r.name}`;
    if (!desiredKeys.has(key) && owns('RobotAccount', r.id)) leaving.push({ key, kind: 'RobotAccount', id: r.id, entry: `Robot/${r.name}` });
  }
  for (const g of observed.groups) {
    const key = `group:${g.name}`;
    if (!desiredKeys.has(key) && owns('IdentityGroup', g.id)) leaving.push({ key, kind: 'IdentityGroup', id: g.id, entry: `Group/${g.name}` });
  }
  const deleting = config.deletionPolicy === 'Delete';
  const lateSteps: { step: Step; entries: PlanEntry[] }[] = [];
  for (const l of leaving) {
    const entry = tenantByDirectoryId.get(l.id.toLowerCase());
    if (deleting) {
      if (entry) push({ op: 'removeFromTenant', key: l.key, id: entry.id });
      if (exclusive(l.kind, l.id)) {
        const op = l.kind === 'IdentityUser' ? 'deleteUser' : l.kind === 'RobotAccount' ? 'deleteRobot' : 'deleteGroup';
        lateSteps.push({ step: { op, key: l.key, id: l.id } as Step, entries: [{ action: 'deleted', entry: l.entry }] });
      }
      continue;
    }
    if (!entry) continue;
    const haveTenant = entry.roleIds;
    if (haveTenant.length > 0) push({ op: 'assignRoles', key: l.key, roles: [] }, { action: 'deleted', entry: `TenantRoles/${l.key}` });
    for (const path of sortStrings(observedFoldersOf.get(entry.id)?.keys() ?? [])) {
      push({ op: 'removeFromFolder', key: l.key, path }, { action: 'deleted', entry: `FolderRoles/${l.key}@${path}` });
    }
    known.tenant.set(l.key, entry.id);
  }
  for (const l of leaving) {
    const entry = tenantByDirectoryId.get(l.id.toLowerCase());
    if (entry) known.tenant.set(l.key, entry.id);
    known.identity.set(l.key, l.id);
  }

  // ---- Delete: roles after the assignments, then principals, then folders bottom-up when empty.
  if (deleting) {
    const desiredRoles = new Set(desired.roles.keys());
    for (const r of observed.roles) {
      if (!desiredRoles.has(r.name) && !r.isStatic && exclusive('Role', r.id)) push({ op: 'deleteRole', id: r.id, name: r.name }, { action: 'deleted', entry: `Role/${r.name}` });
    }
    for (const s of lateSteps) steps.push(s);
    const remainingAssignments = new Set<number>();
    for (const [folderId, byPrincipal] of observed.assignments) if (byPrincipal.size > 0) remainingAssignments.add(folderId);
    const removedEverywhere = new Set(steps.filter((s) => s.step.op === 'removeFromTenant').map((s) => (s.step as { id: number }).id));
    const removedFrom = new Map<number, Set<number>>();
    for (const s of steps) {
      if (s.step.op !== 'removeFromFolder') continue;
      const fid = known.folders.get(s.step.path);
      const pid = known.tenant.get(s.step.key) ?? managed.get(s.step.key);
      if (fid !== undefined && pid !== undefined) addTo(removedFrom, fid, pid);
    }
    const deletable = observed.folders.filter((f) => !desired.folders.has(f.path) && exclusive('Folder', f.id)).sort((a, b) => b.path.split('/').length - a.path.split('/').length || (a.path < b.path ? -1 : 1));
    const kept = new Set(observed.folders.map((f) => f.path));
    for (const f of deletable) {
      const holders = [...(observed.assignments.get(f.id)?.keys() ?? [])].filter((pid) => !removedEverywhere.has(pid) && !removedFrom.get(f.id)?.has(pid));
      const hasChild = [...kept].some((p) => p.startsWith(`${f.path}/`));
      if (holders.length > 0 || hasChild) {
        conflicts.push(`Folder/${f.path}: left Git but is not empty (assignments or subfolders rpa-access does not manage); kept`);
        continue;
      }
      kept.delete(f.path);
      push({ op: 'deleteFolder', id: f.id, path: f.path }, { action: 'deleted', entry: `Folder/${f.path}` });
    }
  }

  return {
    steps,
    unchanged: sortStrings(new Set(unchanged)),
    notRepresentable: [...desired.notRepresentable],
    conflicts,
    known,
    counts: {
      users: [...desired.principals.values()].filter((p) => p.kind !== 'Group').length,
      groups: [...desired.principals.values()].filter((p) => p.kind === 'Group').length,
      roles: desired.roles.size,
      folders: desired.folders.size,
      assignments: assignmentCount,
    },
  };
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let s = map.get(key);
  if (!s) map.set(key, (s = new Set()));
  s.add(value);
}

/** The plan as the CLI prints it: created / updated / deleted / unchanged entries. */
export function planSummary(plan: UiPathPlan): { created: string[]; updated: string[]; deleted: string[]; unchanged: string[]; notRepresentable: string[]; conflicts: string[] } {
  const by: Record<EntryAction, Set<string>> = { created: new Set(), updated: new Set(), deleted: new Set() };
  for (const s of plan.steps) for (const e of s.entries) by[e.action].add(e.entry);
  // An entry both created and updated in one plan (a new group's members) reads as created.
  for (const e of by.created) by.updated.delete(e);
  return {
    created: [...by.created].sort(),
    updated: [...by.updated].sort(),
    deleted: [...by.deleted].sort(),
    unchanged: plan.unchanged.filter((u) => !by.created.has(u) && !by.updated.has(u) && !by.deleted.has(u)),
    notRepresentable: plan.notRepresentable,
    conflicts: plan.conflicts,
  };
}

export function hasChanges(plan: UiPathPlan): boolean {
  return plan.steps.some((s) => s.entries.length > 0 || s.step.op === 'adopt');
}
