/**
 * The tenant access matrix: users × folders, each cell naming the strongest role the user holds
 * in that folder. What the permissions page colours, computed from the engine's effective
 * permissions (`TenantIndex.permissions`), so that a cell says exactly what `permissions` and
 * `check` would: a folder binding covers its subtree, a built-in tenant role reaches every folder,
 * expired bindings count for nothing, an inactive user holds nothing.
 *
 * "Strongest" is measured, not declared: the role granting the user the most distinct folder
 * permissions that change something (Create, Edit, Delete) in the folder, then the most folder
 * permissions in all, then role name order. So a custom role ranks where its permissions put it
 * next to the built-in ones, and a role that may start a job outranks one that may only look at
 * everything (automation-user above folder-viewer).
 */
import { parsePermission } from './catalog.js';
import type { PermissionGrant, TenantIndex } from './engine.js';
import { folderCovers } from './folders.js';

export interface MatrixCell {
  folder: string;
  /** The strongest role the user holds in the folder. */
  role: string;
  /** How many distinct folder permissions that role grants the user here... */
  permissions: number;
  /** ...and how many of them change something (not `View`). */
  changes: number;
  /** Where the strongest role comes from: its first grant (explicit before inherited, as `permissions` lists them). */
  binding: string | null;
  via: string;
  /** The folder of that grant (an ancestor of the cell's folder, or null for a tenant-wide grant). */
  from: string | null;
  /** True when every grant of the strongest role here is narrowed (to objects or an environment). */
  narrowed: boolean;
  /** Every role reaching the folder, strongest first. */
  roles: string[];
}

export interface MatrixRow {
  user: string;
  active: boolean;
  /** The folders the user holds something in, in the matrix's folder order. */
  cells: MatrixCell[];
}

export interface AccessMatrix {
  tenant: string;
  /** Every folder the tenant's bindings name, in code-unit order. */
  folders: string[];
  /** The roles some cell shows, strongest first (the legend: colours follow this order). */
  roles: Strength[];
  users: MatrixRow[];
  /** Users of the tenant; more than `users.length` when the page was cut (`truncated`). */
  totalUsers: number;
  truncated: boolean;
}

export interface MatrixOptions {
  now?: number;
  /** First user (in name order) to include. Default 0. */
  offset?: number;
  /** Most users to include. Default DEFAULT_MATRIX_LIMIT. */
  limit?: number;
}

export const DEFAULT_MATRIX_LIMIT = 500;
export const MAX_MATRIX_LIMIT = 5_000;

const isFolderPermission = (permission: string): boolean => parsePermission(permission)?.scope === 'Folder';

/** How strong a role is where it is held: what a cell and the legend rank by. */
export interface Strength {
  role: string;
  permissions: number;
  changes: number;
}

/** Strongest first: more changing permissions, then more permissions, then role name (code units). */
const STRONGEST_FIRST = (a: Strength, b: Strength): number =>
  b.changes - a.changes || b.permissions - a.permissions || (a.role < b.role ? -1 : a.role > b.role ? 1 : 0);

const changes = (permissions: Iterable<string>): number => {
  let n = 0;
  for (const p of permissions) if (!p.endsWith('.View')) n++;
  return n;
};

/**
 * One user's cells: for each folder, the roles whose rows reach it (a row of a folder permission
 * on the folder or an ancestor, or tenant-wide), ranked by the distinct folder permissions each
 * grants there (STRONGEST_FIRST). Folders the user holds nothing in have no cell.
 */
export function strongestRoles(rows: readonly PermissionGrant[], folders: readonly string[]): MatrixCell[] {
  const folderRows = rows.filter((r) => isFolderPermission(r.permission));
  const cells: MatrixCell[] = [];
  for (const folder of folders) {
    const byRole = new Map<string, { permissions: Set<string>; first: PermissionGrant; narrowed: boolean }>();
    for (const r of folderRows) {
      if (r.folder !== null && !folderCovers(r.folder, folder)) continue;
      const narrowed = r.resources !== undefined || r.environment !== undefined;
      const seen = byRole.get(r.role);
      if (seen) {
        seen.permissions.add(r.permission);
        seen.narrowed &&= narrowed;
      } else {
        byRole.set(r.role, { permissions: new Set([r.permission]), first: r, narrowed });
      }
    }
    if (byRole.size === 0) continue;
    const ranked = [...byRole].map(([role, v]) => ({ role, permissions: v.permissions.size, changes: changes(v.permissions), first: v.first, narrowed: v.narrowed })).sort(STRONGEST_FIRST);
    const top = ranked[0]!;
    cells.push({
      folder, role: top.role, permissions: top.permissions, changes: top.changes, binding: top.first.binding, via: top.first.via, from: top.first.folder,
      narrowed: top.narrowed, roles: ranked.map((r) => r.role),
    });
  }
  return cells;
}

/** The matrix of a tenant: its users (a page of them, in name order) × every folder its bindings name. */
export function accessMatrix(index: TenantIndex, options: MatrixOptions = {}): AccessMatrix {
  const now = options.now ?? Date.now();
  const offset = Math.max(0, options.offset ?? 0);
  const limit = Math.min(Math.max(1, options.limit ?? DEFAULT_MATRIX_LIMIT), MAX_MATRIX_LIMIT);
  const folders = index.folders();
  const all = index.users();
  const page = all.slice(offset, offset + limit);
  const legend = new Map<string, Strength>();
  const users: MatrixRow[] = page.map((u) => {
    const cells = u.spec.active ? strongestRoles(index.permissions(u.name, now) ?? [], folders) : [];
    for (const c of cells) {
      const seen = legend.get(c.role);
      if (!seen || STRONGEST_FIRST(c, seen) < 0) legend.set(c.role, { role: c.role, permissions: c.permissions, changes: c.changes });
    }
    return { user: u.name, active: u.spec.active, cells };
  });
  const roles = [...legend.values()].sort(STRONGEST_FIRST);
  return { tenant: index.tenant, folders, roles, users, totalUsers: all.length, truncated: offset + page.length < all.length };
}
