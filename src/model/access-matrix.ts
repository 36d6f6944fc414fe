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
import { folderAncestry, folderCovers, folderPathProblem } from './folders.js';
import { RequestError } from './request-error.js';

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
  /** The folders shown: a page of those the tenant's bindings name (under `folder` when asked), in code-unit order. */
  folders: string[];
  /** The roles some cell shows, strongest first (the legend: colours follow this order). */
  roles: Strength[];
  users: MatrixRow[];
  /** Users of the tenant; more than `users.length` when the page was cut (`truncated`). */
  totalUsers: number;
  truncated: boolean;
  /** Folders the matrix could show (under `folder` when asked); more than `folders.length` when cut (`foldersTruncated`). */
  totalFolders: number;
  foldersTruncated: boolean;
}

export interface MatrixOptions {
  now?: number;
  /** First user (in name order) to include. Default 0. */
  offset?: number;
  /** Most users to include. Default DEFAULT_MATRIX_LIMIT, at most MAX_MATRIX_LIMIT. */
  limit?: number;
  /** Only this folder and its subfolders as columns. */
  folder?: string;
  /** First folder (in order) to include. Default 0. */
  folderOffset?: number;
  /** Most folders to include. Default DEFAULT_MATRIX_FOLDER_LIMIT, at most MAX_MATRIX_FOLDER_LIMIT. */
  folderLimit?: number;
}

/**
 * Page sizes: a matrix is read by people, and its cost and size grow with users × folders (a
 * tenant-wide administrator has a cell in every folder), so both sides are paged.
 */
export const DEFAULT_MATRIX_LIMIT = 100;
export const MAX_MATRIX_LIMIT = 500;
export const DEFAULT_MATRIX_FOLDER_LIMIT = 100;
export const MAX_MATRIX_FOLDER_LIMIT = 200;

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

/** What one role grants the user at one place (a folder, or tenant-wide): its permissions, first row, narrowing. */
interface Held {
  permissions: Set<string>;
  /** Index in the user's rows of its first row: the grant a cell names. */
  first: number;
  narrowed: boolean;
}

/**
 * One user's cells: for each folder, the roles whose rows reach it (a row of a folder permission
 * on the folder or an ancestor, or tenant-wide), ranked by the distinct folder permissions each
 * grants there (STRONGEST_FIRST). Folders the user holds nothing in have no cell. The rows are
 * filed once by place; a folder then reads at most its seven ancestors and the tenant-wide place.
 */
export function strongestRoles(rows: readonly PermissionGrant[], folders: readonly string[]): MatrixCell[] {
  const byPlace = new Map<string | null, Map<string, Held>>();
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (!isFolderPermission(r.permission)) continue;
    const narrowed = r.resources !== undefined || r.environment !== undefined;
    let roles = byPlace.get(r.folder);
    if (!roles) byPlace.set(r.folder, (roles = new Map()));
    const held = roles.get(r.role);
    if (held) {
      held.permissions.add(r.permission);
      held.narrowed &&= narrowed;
    } else {
      roles.set(r.role, { permissions: new Set([r.permission]), first: i, narrowed });
    }
  }
  if (byPlace.size === 0) return [];
  const tenantWide = byPlace.get(null);
  const cells: MatrixCell[] = [];
  for (const folder of folders) {
    const places: Map<string, Held>[] = tenantWide ? [tenantWide] : [];
    for (const f of folderAncestry(folder)) {
      const here = byPlace.get(f);
      if (here) places.push(here);
    }
    if (places.length === 0) continue;
    const byRole = new Map<string, Held>();
    for (const place of places) {
      for (const [role, held] of place) {
        const seen = byRole.get(role);
        if (!seen) byRole.set(role, { permissions: held.permissions, first: held.first, narrowed: held.narrowed });
        else {
          // Copy on the first merge: the place's own set is shared by every folder below it.
          seen.permissions = new Set([...seen.permissions, ...held.permissions]);
          seen.first = Math.min(seen.first, held.first);
          seen.narrowed &&= held.narrowed;
        }
      }
    }
    const ranked = [...byRole]
      .map(([role, v]) => ({ role, permissions: v.permissions.size, changes: changes(v.permissions), first: rows[v.first]!, narrowed: v.narrowed }))
      .sort(STRONGEST_FIRST);
    const top = ranked[0]!;
    cells.push({
      folder, role: top.role, permissions: top.permissions, changes: top.changes, binding: top.first.binding, via: top.first.via, from: top.first.folder,
      narrowed: top.narrowed, roles: ranked.map((r) => r.role),
    });
  }
  return cells;
}

/** The page of a matrix asked for as text (a query string): numbers within the bounds, a valid folder; RequestError otherwise. */
export function parseMatrixQuery(query: { offset?: string; limit?: string; folder?: string; folderOffset?: string; folderLimit?: string }): MatrixOptions {
  const count = (name: string, value: string | undefined, min: number, max: number): number | undefined => {
    if (value === undefined) return undefined;
    const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max)) throw new RequestError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  const options: MatrixOptions = {};
  const set = <K extends keyof MatrixOptions>(key: K, value: MatrixOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('offset', count('offset', query.offset, 0, 999_999_999));
  set('limit', count('limit', query.limit, 1, MAX_MATRIX_LIMIT));
  set('folderOffset', count('folderOffset', query.folderOffset, 0, 999_999_999));
  set('folderLimit', count('folderLimit', query.folderLimit, 1, MAX_MATRIX_FOLDER_LIMIT));
  if (query.folder !== undefined) {
    const problem = folderPathProblem(query.folder);
    if (problem !== undefined) throw new RequestError(`invalid folder: ${problem}`);
    options.folder = query.folder;
  }
  return options;
}

const clamp = (value: number | undefined, fallback: number, max: number): number => Math.min(Math.max(1, value ?? fallback), max);

/**
 * The matrix of a tenant: a page of its users (in name order) × a page of the folders its
 * bindings name (all, or those under `folder`).
 */
export function accessMatrix(index: TenantIndex, options: MatrixOptions = {}): AccessMatrix {
  const now = options.now ?? Date.now();
  const offset = Math.max(0, options.offset ?? 0);
  const limit = clamp(options.limit, DEFAULT_MATRIX_LIMIT, MAX_MATRIX_LIMIT);
  const folderOffset = Math.max(0, options.folderOffset ?? 0);
  const folderLimit = clamp(options.folderLimit, DEFAULT_MATRIX_FOLDER_LIMIT, MAX_MATRIX_FOLDER_LIMIT);
  const under = options.folder;
  const allFolders = under === undefined ? index.folders() : index.folders().filter((f) => folderCovers(under, f));
  const folders = allFolders.slice(folderOffset, folderOffset + folderLimit);
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
  return {
    tenant: index.tenant, folders, roles, users,
    totalUsers: all.length, truncated: offset + page.length < all.length,
    totalFolders: allFolders.length, foldersTruncated: folderOffset + folders.length < allFolders.length,
  };
}
