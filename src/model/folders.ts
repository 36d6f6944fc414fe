/**
 * Folder paths: `Finance/Invoices`. A binding on a folder applies to it and to every subfolder.
 * The one rule of what a folder path is (contract section 4.7) lives here and in FOLDER_PATTERN,
 * which says the same for the CRDs and ajv: documents, `check --folder` and the HTTP API all use
 * it, so a path that could name another folder once normalised (`..`) never reaches a decision.
 */
import { FOLDER_PATTERN, MAX_FOLDER_DEPTH } from './schemas.js';

const folderRe = new RegExp(FOLDER_PATTERN, 'u');
export const MAX_FOLDER_LENGTH = 1024;

export function isFolderPath(path: string): boolean {
  return path.length <= MAX_FOLDER_LENGTH && folderRe.test(path);
}

const FORBIDDEN_CHAR = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

/** `U+001B`: how a character is named in a message, never the character itself. */
function codePoint(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Why `path` is not a folder path, as `must be a folder path ...: it has ...` (without quoting
 * the path: it may hold escape sequences); undefined when it is one. Agrees with FOLDER_PATTERN
 * (a property test says so).
 */
export function folderPathProblem(path: string): string | undefined {
  // A check names a folder each time: one regular expression settles a good path; only a bad one
  // is taken apart to say what is wrong with it.
  if (isFolderPath(path)) return undefined;
  const why = folderPathDefect(path);
  return why === undefined ? undefined : `must be a folder path of 1 to ${MAX_FOLDER_DEPTH} non-empty segments like Finance/Invoices: it ${why}`;
}

function folderPathDefect(path: string): string | undefined {
  if (path.length > MAX_FOLDER_LENGTH) return `is longer than ${MAX_FOLDER_LENGTH} characters`;
  if (path === '') return 'is empty';
  const bad = FORBIDDEN_CHAR.exec(path);
  if (bad) return `holds the control or format character ${codePoint(bad[0])}`;
  const segments = path.split('/');
  if (segments.length > MAX_FOLDER_DEPTH) return `has ${segments.length} levels`;
  for (const s of segments) {
    if (s === '') return 'has an empty segment';
    if (s === '.' || s === '..') return `has a "${s}" segment (segments name folders, never . or ..)`;
    if (/^\s|\s$/u.test(s)) return 'has a segment starting or ending with a blank';
  }
  return folderRe.test(path) ? undefined : 'is not one';
}

/** True when `folder` is `scope` or lies below it (`Finance` covers `Finance/Invoices`, not `FinanceOld`). */
export function folderCovers(scope: string, folder: string): boolean {
  return folder === scope || (folder.length > scope.length && folder.startsWith(scope) && folder.charCodeAt(scope.length) === 47 /* / */);
}

/** `A/B/C` -> [`A`, `A/B`, `A/B/C`]: the folders whose bindings reach `A/B/C`. */
export function folderAncestry(folder: string): string[] {
  const out: string[] = [];
  let i = folder.indexOf('/');
  while (i !== -1) {
    out.push(folder.slice(0, i));
    i = folder.indexOf('/', i + 1);
  }
  out.push(folder);
  return out;
}

/**
 * Folder paths as small integers, for the decision engine. Every path given, and each of its
 * ancestors, gets an id, and each id knows its parent's: a check turns its folder into the ids of
 * the folder and its ancestors once (`coveringIds`), then tells whether a binding's folder covers
 * it by comparing integers, without reading the binding's path (at a million bindings, each
 * path read is a cache miss). Ids are only ever added, never changed: indexes derived from one
 * another share one table, and a path an older index never saw has an id none of its bindings
 * carries, so it changes none of that index's answers. A full rebuild starts a new table.
 */
export class FolderIds {
  private readonly ids = new Map<string, number>();
  private parents = new Int32Array(256);

  /** The id of `path`, given now (with its ancestors') if it has none. */
  idOf(path: string): number {
    const have = this.ids.get(path);
    if (have !== undefined) return have;
    const slash = path.lastIndexOf('/');
    const parent = slash === -1 ? -1 : this.idOf(path.slice(0, slash));
    const id = this.ids.size;
    if (id === this.parents.length) {
      const grown = new Int32Array(id * 2);
      grown.set(this.parents);
      this.parents = grown;
    }
    this.parents[id] = parent;
    this.ids.set(path, id);
    return id;
  }

  /**
   * Writes into `out` the ids of the folders whose bindings reach `path` (`path` and its
   * ancestors, those that have an id; nearest first) and returns how many. The table holds the
   * ancestors of every path it holds, so the first ancestor found leads to all the others.
   */
  coveringIds(path: string, out: Int32Array): number {
    let id = this.ids.get(path);
    let rest = path;
    while (id === undefined) {
      const slash = rest.lastIndexOf('/');
      if (slash === -1) return 0;
      rest = rest.slice(0, slash);
      id = this.ids.get(rest);
    }
    let n = 0;
    for (let i = id; i !== -1 && n < out.length; i = this.parents[i]!) out[n++] = i;
    return n;
  }
}
