/**
 * Deterministic benchmark data: a tenant of N role bindings and check requests against it.
 * Shared by the engine, HTTP and SQL benchmarks: the same (bindings, seed) gives the same
 * tenant, byte for byte, on every machine (seeded sfc32, never Math.random).
 *
 * Shape of a tenant of N bindings (all counts N-proportional unless said otherwise):
 * - users ≈ N/5 (3% robots, 1% inactive), each in 2-4 groups (avg 3, mostly of their department);
 *   groups ≈ N/100, so a group has ≈ 60 members and ≈ 25 bindings whatever N is;
 * - folders: Dept{i}/Team{j}/Proj{k}/Sub{l}, depth 1 to 4, ≈ 56 folders per department,
 *   departments ≈ N/1000 (≈ 5,600 folders at N = 100k);
 * - custom roles: 10 + N/5000 Folder roles, 5 + N/10000 Tenant roles;
 * - bindings: one owner, 3 administrators, 4 bindings of `global` (fixed, not N-proportional),
 *   a "power user" holding ≈ 1,000 effective grants, and the rest: 1% built-in tenant roles,
 *   5% custom tenant roles, 58% custom folder roles, 36% built-in folder roles, 0.2% naming a role
 *   that does not exist; ≈ 85% one User subject, 10% one Group, 5% a group and one or two users;
 *   10% narrowed to resources, 5% to an environment, 6% with expiresAt (half already expired at
 *   BENCH_NOW).
 *
 * So a user's effective bindings (direct ≈ 4.6, through groups ≈ 45, through `global` 4) do not
 * grow with N: that is what lets a per-user index keep checks independent of tenant size.
 */
import {
  ACTIONS, ALL_PERMISSIONS, API_VERSION_FULL, BUILT_IN_ROLES, FOLDER_RESOURCES, GLOBAL_GROUP, ROBOT_ROLE,
  TENANT_RESOURCES, parsePermission, type Action,
} from '../../src/model/catalog.js';
import type { CheckRequest } from '../../src/model/engine.js';
import { builtInEntries, tenantFromEntries } from '../../src/model/tenant.js';
import type { AccessDocument, AnyEntry, Entry, ObjectRef, RoleBindingSpec, Subject, TenantState } from '../../src/model/types.js';
import { Rng } from './random.js';

/** The reference "now" of every benchmark: expiresAt values are generated around it. */
export const BENCH_NOW = Date.parse('2025-06-01T00:00:00Z');
const DAY = 86_400_000;

export const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;
const OBJECT_KINDS = [
  ['Process', 'proc'],
  ['Queue', 'queue'],
  ['Asset', 'asset'],
  ['Robot', 'bot'],
] as const;

export interface GenerateOptions {
  /** Number of RoleBindings (exact). */
  bindings: number;
  seed?: number;
  /** Namespace / tenant name. Default `bench`. */
  tenant?: string;
  /** Effective permission rows the power user should hold through direct bindings. Default 1000. */
  powerUserGrants?: number;
}

export interface GeneratedTenant {
  tenant: string;
  seed: number;
  /** Reference time (BENCH_NOW): pass it as `now` to the engine so expiry is deterministic. */
  now: number;
  /** Users, Groups, custom Roles and RoleBindings (origin `user`); built-ins not included. */
  entries: AnyEntry[];
  users: string[];
  /** Department index of each user of `users` (same order). */
  userHome: number[];
  groups: string[];
  folders: string[];
  /** Folder -> its direct subfolders. */
  children: Map<string, string[]>;
  /** Folders of each department (index = department). */
  foldersByDept: string[][];
  folderRoles: string[];
  tenantRoles: string[];
  /** A user holding ≈ powerUserGrants effective permission rows (for `permissions(user)`). */
  powerUser: string;
  stats: Record<string, number>;
}

interface Pick {
  subjects: Subject[];
  home: number;
}

function pad(n: number, width = 6): string {
  return String(n).padStart(width, '0');
}

function rolePermissions(rng: Rng, resources: readonly string[], lo: number, hi: number): { resource: string; actions: Action[] }[] {
  return rng.sample(resources, rng.range(lo, hi)).map((resource) => {
    const actions: Action[] = ['View'];
    for (const a of ACTIONS) if (a !== 'View' && rng.chance(0.4)) actions.push(a);
    return { resource, actions };
  });
}

export function generateTenant(opts: GenerateOptions): GeneratedTenant {
  const N = Math.max(1, Math.floor(opts.bindings));
  const seed = opts.seed ?? 1;
  const tenant = opts.tenant ?? 'bench';
  const rng = new Rng(seed);
  const entries: AnyEntry[] = [];
  const stats: Record<string, number> = {};
  const bump = (k: string, by = 1) => (stats[k] = (stats[k] ?? 0) + by);

  // --- folders ---------------------------------------------------------------------------------
  const D = Math.max(2, Math.round(N / 1000));
  const folders: string[] = [];
  const children = new Map<string, string[]>();
  const foldersByDept: string[][] = [];
  /** [dept][depth-1] -> folders */
  const byDeptDepth: string[][][] = [];
  const addFolder = (path: string, parent: string | null, dept: number, depth: number) => {
    folders.push(path);
    foldersByDept[dept]!.push(path);
    byDeptDepth[dept]![depth - 1]!.push(path);
    if (parent !== null) children.get(parent)!.push(path);
    children.set(path, []);
  };
  for (let d = 0; d < D; d++) {
    foldersByDept.push([]);
    byDeptDepth.push([[], [], [], []]);
    const dept = `Dept${d}`;
    addFolder(dept, null, d, 1);
    for (let t = 0; t < 5; t++) {
      const team = `${dept}/Team${t}`;
      addFolder(team, dept, d, 2);
      for (let p = 0; p < 4; p++) {
        const proj = `${team}/Proj${p}`;
        addFolder(proj, team, d, 3);
        const subs = rng.int(4);
        for (let s = 0; s < subs; s++) addFolder(`${proj}/Sub${s}`, proj, d, 4);
      }
    }
  }
  const folderIn = (dept: number): string => {
    const depth = rng.weighted([[1, 0.05], [2, 0.2], [3, 0.45], [4, 0.3]] as const);
    const levels = byDeptDepth[dept]!;
    const list = levels[depth - 1]!.length > 0 ? levels[depth - 1]! : levels[2]!;
    return rng.pick(list);
  };

  // --- groups and users ------------------------------------------------------------------------
  const G = Math.max(2, Math.round(N / 100));
  const groups: string[] = [];
  const groupsByDept: string[][] = Array.from({ length: D }, () => []);
  for (let g = 0; g < G; g++) {
    const name = `group-${pad(g, 4)}`;
    groups.push(name);
    groupsByDept[g % D]!.push(name);
    entries.push({ kind: 'Group', name, origin: 'user', spec: { displayName: `Group ${g}`, description: `Team group ${g} of Dept${g % D}` } });
  }
  const groupHome = (name: string): number => Number(name.slice(6)) % D;

  const U = Math.max(10, Math.round(N / 5));
  const users: string[] = [];
  const userHome: number[] = [];
  for (let u = 0; u < U; u++) {
    const name = `user-${pad(u)}`;
    const home = rng.int(D);
    const robot = u > 10 && rng.chance(0.03);
    const active = u <= 10 || !rng.chance(0.01);
    const want = rng.weighted([[2, 0.3], [3, 0.4], [4, 0.3]] as const);
    const mine = new Set(rng.sample(groupsByDept[home]!, want - 1));
    while (mine.size < want && mine.size < groups.length) mine.add(rng.pick(groups));
    users.push(name);
    userHome.push(home);
    if (robot) bump('robotUsers');
    if (!active) bump('inactiveUsers');
    entries.push({
      kind: 'User', name, origin: 'user',
      spec: {
        email: `${name}@bench.example.com`, fullName: `User ${u}`, type: robot ? 'Robot' : 'Human', active,
        groups: [...mine].sort(), language: 'en', concurrentExecution: true,
      },
    });
  }
  const powerUser = 'power-user';
  entries.push({
    kind: 'User', name: powerUser, origin: 'user',
    spec: { email: 'power-user@bench.example.com', fullName: 'Power User', type: 'Human', active: true, groups: [], language: 'en', concurrentExecution: true },
  });

  // --- roles -----------------------------------------------------------------------------------
  const folderRolePerms = new Map<string, number>();
  const folderRoles: string[] = [];
  const tenantRoles: string[] = [];
  const CF = 10 + Math.round(N / 5000);
  const CT = 5 + Math.round(N / 10000);
  for (let i = 0; i < CF; i++) {
    const name = `folder-role-${pad(i, 3)}`;
    const permissions = rolePermissions(rng, FOLDER_RESOURCES, 2, 5);
    folderRoles.push(name);
    folderRolePerms.set(name, permissions.reduce((s, p) => s + p.actions.length, 0));
    entries.push({ kind: 'Role', name, origin: 'user', spec: { scope: 'Folder', displayName: `Folder role ${i}`, permissions } });
  }
  for (let i = 0; i < CT; i++) {
    const name = `tenant-role-${pad(i, 3)}`;
    tenantRoles.push(name);
    entries.push({ kind: 'Role', name, origin: 'user', spec: { scope: 'Tenant', displayName: `Tenant role ${i}`, permissions: rolePermissions(rng, TENANT_RESOURCES, 1, 4) } });
  }
  for (const r of BUILT_IN_ROLES) if (r.scope === 'Folder') folderRolePerms.set(r.name, r.permissions.reduce((s, p) => s + p.actions.length, 0));

  // --- bindings --------------------------------------------------------------------------------
  let seq = 0;
  const bind = (spec: RoleBindingSpec) => {
    entries.push({ kind: 'RoleBinding', name: `rb-${pad(seq++, 7)}`, origin: 'user', spec });
    if (spec.subjects.some((s) => s.kind === 'Group')) bump('groupSubjectBindings');
    if (spec.resources) bump('resourceBindings');
    if (spec.environment) bump('environmentBindings');
    if (spec.expiresAt) bump(Date.parse(spec.expiresAt) < BENCH_NOW ? 'expiredBindings' : 'expiringBindings');
  };
  bind({ roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: users[0]! }] });
  for (let i = 1; i <= 3; i++) bind({ roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: users[i]! }] });
  const global: Subject[] = [{ kind: 'Group', name: GLOBAL_GROUP }];
  bind({ roleRef: { name: 'automation-user' }, subjects: global, folder: 'Dept0/Team0' });
  bind({ roleRef: { name: 'folder-viewer' }, subjects: global, folder: 'Dept1/Team1' });
  bind({ roleRef: { name: tenantRoles[0]! }, subjects: global });
  bind({ roleRef: { name: 'folder-viewer' }, subjects: global, folder: 'Dept0/Team2/Proj0', environment: 'prod' });

  // The power user: folder roles on distinct folders until ≈ powerUserGrants permission rows.
  const target = opts.powerUserGrants ?? 1000;
  const powerRoles = [...folderRoles, 'automation-user', 'folder-viewer'];
  const powerFolders = rng.sample(folders, folders.length);
  let rows = 0;
  for (let i = 0; rows < target && seq < N / 4 && i < powerFolders.length; i++) {
    const role = powerRoles[i % powerRoles.length]!;
    rows += folderRolePerms.get(role)!;
    bind({ roleRef: { name: role }, subjects: [{ kind: 'User', name: powerUser }], folder: powerFolders[i]! });
  }
  stats.powerUserDirectRows = rows;

  const pickUser = (): Pick => {
    const u = rng.int(users.length);
    return { subjects: [{ kind: 'User', name: users[u]! }], home: userHome[u]! };
  };
  const pickGroup = (): Pick => {
    const g = rng.pick(groups);
    return { subjects: [{ kind: 'Group', name: g }], home: groupHome(g) };
  };
  const pickSubjects = (groupShare: number): Pick => {
    const r = rng.next();
    if (r < 0.05) {
      const first = pickGroup();
      const more = rng.range(1, 2);
      const seen = new Set<string>();
      for (let i = 0; i < more; i++) {
        const u = pickUser().subjects[0]!;
        if (!seen.has(u.name)) first.subjects.push(u);
        seen.add(u.name);
      }
      return first;
    }
    return r < 0.05 + groupShare ? pickGroup() : pickUser();
  };
  const narrow = (spec: RoleBindingSpec, home: number) => {
    if (rng.chance(0.1)) {
      const objects = new Map<string, ObjectRef>();
      const n = rng.range(1, 3);
      for (let i = 0; i < n; i++) {
        const [kind, prefix] = rng.pick(OBJECT_KINDS);
        const ref = { kind, name: `${prefix}-${home}-${rng.int(20)}` };
        objects.set(`${ref.kind}/${ref.name}`, ref);
      }
      spec.resources = [...objects.values()];
    }
    if (rng.chance(0.05)) spec.environment = rng.pick(ENVIRONMENTS);
    if (rng.chance(0.06)) {
      const days = rng.chance(0.5) ? -rng.range(1, 90) : rng.range(1, 365);
      spec.expiresAt = new Date(BENCH_NOW + days * DAY).toISOString().replace('.000Z', 'Z');
    }
    return spec;
  };

  const builtInTenant = [['developer', 0.4], ['operator', 0.35], ['analyst', 0.2], ['billing-contact', 0.05]] as const;
  const builtInFolder = [['folder-administrator', 0.2], ['automation-user', 0.5], ['folder-viewer', 0.3]] as const;
  let dangling = 0;
  while (seq < N) {
    const kind = rng.weighted([['builtinTenant', 1], ['customTenant', 5], ['customFolder', 58], ['builtinFolder', 36], ['dangling', 0.2]] as const);
    bump(`${kind}Bindings`);
    if (kind === 'builtinTenant' || kind === 'customTenant') {
      const { subjects, home } = pickSubjects(kind === 'builtinTenant' ? 0.05 : 0.15);
      const role = kind === 'builtinTenant' ? rng.weighted(builtInTenant) : rng.pick(tenantRoles);
      bind(narrow({ roleRef: { name: role }, subjects }, home));
    } else {
      const { subjects, home } = pickSubjects(0.1);
      const dept = rng.chance(0.8) ? home : rng.int(D);
      const role =
        kind === 'customFolder' ? rng.pick(folderRoles) : kind === 'builtinFolder' ? rng.weighted(builtInFolder) : `retired-role-${dangling++ % 7}`;
      bind(narrow({ roleRef: { name: role }, subjects, folder: folderIn(dept) }, home));
    }
  }

  Object.assign(stats, { users: users.length + 1, groups: groups.length, roles: CF + CT, bindings: seq, folders: folders.length, departments: D });
  return { tenant, seed, now: BENCH_NOW, entries, users, userHome, groups, folders, children, foldersByDept, folderRoles, tenantRoles, powerUser, stats };
}

/** The generated tenant as a TenantState, built-in roles and the `global` group included. */
export function tenantState(gen: GeneratedTenant): TenantState {
  return tenantFromEntries(gen.tenant, [...builtInEntries(), ...gen.entries]);
}

/** The generated objects as documents (for `apply -f`, the API server or a SQL store). */
export function toDocuments(gen: GeneratedTenant): AccessDocument[] {
  return gen.entries.map((e) => ({
    apiVersion: API_VERSION_FULL,
    kind: e.kind,
    metadata: { name: e.name, namespace: gen.tenant },
    spec: e.spec,
  })) as AccessDocument[];
}

export interface CheckOptions {
  /** Share of checks aimed at a permission one of the user's bindings holds. Default 0.5. */
  targetedShare?: number;
  /**
   * Whether checks may name a resource or an environment. Default true. Turn it off to compare
   * with an engine that does not model binding narrowing.
   */
  narrowing?: boolean;
  /** Share of checks naming a user that does not exist. Default 0.005. */
  unknownUserShare?: number;
}

interface Held {
  role: string;
  folder?: string;
  resources?: ObjectRef[];
  environment?: string;
}

/**
 * `count` check requests against a generated tenant, deterministic for (tenant, count, seed).
 * About `targetedShare` of them aim at a permission the user holds through one of their bindings
 * (in its folder or a subfolder, naming its resource and environment most of the time), which
 * mostly allows; the rest are a random user, permission and folder, which mostly denies.
 */
export function generateChecks(gen: GeneratedTenant, count: number, seed: number, opts: CheckOptions = {}): CheckRequest[] {
  const rng = new Rng(seed ^ 0x5bd1e995);
  const narrowing = opts.narrowing ?? true;
  const targetedShare = opts.targetedShare ?? 0.5;
  const unknownShare = opts.unknownUserShare ?? 0.005;

  const rolePerms = new Map<string, string[]>();
  for (const r of BUILT_IN_ROLES) rolePerms.set(r.name, r.permissions.flatMap((p) => p.actions.map((a) => `${p.resource}.${a}`)));
  const userSpecs = new Map<string, Entry<'User'>>();
  const bySubject = new Map<string, Held[]>();
  for (const e of gen.entries) {
    if (e.kind === 'Role') rolePerms.set(e.name, (e.spec.permissions ?? []).flatMap((p) => p.actions.map((a) => `${p.resource}.${a}`)));
    else if (e.kind === 'User') userSpecs.set(e.name, e);
    else if (e.kind === 'RoleBinding') {
      const held: Held = { role: e.spec.roleRef.name, ...(e.spec.folder ? { folder: e.spec.folder } : {}), ...(e.spec.resources ? { resources: e.spec.resources } : {}), ...(e.spec.environment ? { environment: e.spec.environment } : {}) };
      for (const s of e.spec.subjects) {
        const key = `${s.kind}/${s.name}`;
        const list = bySubject.get(key);
        if (list) list.push(held);
        else bySubject.set(key, [held]);
      }
    }
  }
  const heldCache = new Map<string, Held[]>();
  const heldBy = (user: string): Held[] => {
    let held = heldCache.get(user);
    if (held) return held;
    const spec = userSpecs.get(user)!.spec;
    held = [...(bySubject.get(`User/${user}`) ?? [])];
    for (const g of [GLOBAL_GROUP, ...(spec.groups ?? [])]) held.push(...(bySubject.get(`Group/${g}`) ?? []));
    if (spec.type === 'Robot') held.push({ role: ROBOT_ROLE });
    heldCache.set(user, held);
    return held;
  };
  const below = (folder: string): string => {
    let f = folder;
    if (rng.chance(0.5)) return f;
    for (;;) {
      const kids = gen.children.get(f) ?? [];
      if (kids.length === 0 || !rng.chance(0.7)) return f;
      f = rng.pick(kids);
    }
  };
  const randomResource = (home: number): string => {
    const [kind, prefix] = rng.pick(OBJECT_KINDS);
    return `${kind}/${prefix}-${home}-${rng.int(20)}`;
  };

  const out: CheckRequest[] = [];
  for (let i = 0; i < count; i++) {
    const u = rng.int(gen.users.length);
    const home = gen.userHome[u]!;
    const user = rng.chance(unknownShare) ? `ghost-user-${rng.int(1000)}` : gen.users[u]!;
    const req: CheckRequest = { user, permission: '' };
    const held = userSpecs.has(user) && rng.chance(targetedShare) ? heldBy(user) : [];
    const h = held.length > 0 ? rng.pick(held) : undefined;
    const perms = h ? rolePerms.get(h.role) : undefined;
    if (h && perms && perms.length > 0) {
      req.permission = rng.pick(perms);
      if (parsePermission(req.permission)!.scope === 'Folder') {
        req.folder = h.folder ? below(h.folder) : rng.pick(rng.chance(0.6) ? gen.foldersByDept[home]! : gen.folders);
      }
      if (narrowing) {
        if (h.resources ? rng.chance(0.85) : rng.chance(0.05)) {
          const r = h.resources ? rng.pick(h.resources) : undefined;
          req.resource = r ? `${r.kind}/${r.name}` : randomResource(home);
        }
        if (h.environment ? rng.chance(0.85) : rng.chance(0.1)) req.environment = h.environment ?? rng.pick(ENVIRONMENTS);
      }
    } else {
      req.permission = rng.pick(ALL_PERMISSIONS);
      if (parsePermission(req.permission)!.scope === 'Folder') {
        req.folder = rng.pick(rng.chance(0.3) ? gen.foldersByDept[home]! : gen.folders);
      }
      if (narrowing) {
        if (rng.chance(0.05)) req.resource = randomResource(home);
        if (rng.chance(0.08)) req.environment = rng.pick(ENVIRONMENTS);
      }
    }
    out.push(req);
  }
  return out;
}
