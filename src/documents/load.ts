/**
 * Loading documents from files and directories, the way `kubectl apply -f` reads them, keeping
 * where each document starts so that every problem can be reported as `PATH:LINE`.
 *
 * - A directory is read recursively: `*.yaml`, `*.yml` and `*.json` files, in name order;
 *   `kustomization.yaml` files and hidden entries (`.git`...) are skipped. A file named
 *   explicitly is read whatever its extension; `-` reads standard input.
 * - A multi-document file is split on `---` document markers at column 0 (and after `...`
 *   document end markers) here, so each document knows its first line; each piece is parsed on
 *   its own, and a syntax error is reported at its own line in the file.
 * - Empty documents are skipped. A `kind: List` (what `kubectl get -o yaml` writes) is expanded
 *   into its items, which all report the line of the list.
 *
 * YAML is read with the core schema plus merge keys: timestamps stay strings (as Kubernetes
 * reads them), so `expiresAt: 2030-12-31T23:59:59Z` is the RFC 3339 text it looks like.
 */
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { isRecord } from '../model/json.js';

export interface LoadedDocument {
  /** The file as the user named it, or as found under a directory they named. */
  path: string;
  /** 1-based line where the document's content starts. */
  line: number;
  /** The parsed document: not yet validated, may be anything. */
  doc: unknown;
}

export interface LoadProblem {
  path: string;
  /** Absent when the problem is the path itself (missing, unreadable). */
  line?: number;
  message: string;
}

export interface LoadResult {
  documents: LoadedDocument[];
  problems: LoadProblem[];
  /** Every file read, in order. */
  files: string[];
}

const STDIN_PATH = '-';
const STDIN_LABEL = '<stdin>';
const DOCUMENT_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const SKIPPED_FILES = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization']);

// js-yaml exports its types at runtime; @types/js-yaml does not declare them.
const mergeType = (yaml as unknown as { types: { merge: yaml.Type } }).types.merge;
const SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [mergeType] });

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function errnoMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return e.message ?? String(err);
  }
}

/** Files to read for the given paths, in the order they are read. */
export function expandPaths(paths: readonly string[]): { files: string[]; problems: LoadProblem[] } {
  const files: string[] = [];
  const problems: LoadProblem[] = [];
  const seenDirs = new Set<string>();

  const walk = (dir: string): void => {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch (err) {
      problems.push({ path: dir, message: `cannot read directory: ${errnoMessage(err)}` });
      return;
    }
    if (seenDirs.has(real)) return; // a symbolic link loop, or the same directory named twice
    seenDirs.add(real);
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort(byName);
    } catch (err) {
      problems.push({ path: dir, message: `cannot read directory: ${errnoMessage(err)}` });
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const full = path.join(dir, name);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(full);
      } catch {
        continue; // a dangling symbolic link: nothing to read
      }
      if (stat.isDirectory()) walk(full);
      else if (stat.isFile() && DOCUMENT_EXTENSIONS.has(path.extname(name).toLowerCase()) && !SKIPPED_FILES.has(name)) files.push(full);
    }
  };

  for (const p of paths) {
    if (p === STDIN_PATH) {
      files.push(STDIN_PATH);
      continue;
    }
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch (err) {
      problems.push({ path: p, message: `cannot read: ${errnoMessage(err)}` });
      continue;
    }
    if (stat.isDirectory()) walk(p);
    else files.push(p);
  }
  return { files, problems };
}

interface Piece {
  text: string;
  /** 1-based line of the piece's first line in the file. */
  start: number;
  lines: string[];
}

const START_MARKER = /^---(?=[ \t]|$)/;
const END_MARKER = /^\.\.\.(?=[ \t]|$)/;

/** Splits a YAML stream into documents at `---` (and after `...`) markers in column 0. */
export function splitDocuments(text: string): Piece[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const pieces: Piece[] = [];
  let current: string[] = [];
  let start = 1;
  const flush = (nextStart: number) => {
    if (current.length > 0) pieces.push({ text: current.join('\n'), start, lines: current });
    current = [];
    start = nextStart;
  };
  lines.forEach((line, i) => {
    if (START_MARKER.test(line)) {
      flush(i + 1);
      current.push(line);
    } else if (END_MARKER.test(line)) {
      current.push(line);
      flush(i + 2);
    } else {
      current.push(line);
    }
  });
  flush(lines.length + 1);
  return pieces;
}

/** Line of a piece's first content: not blank, not a comment or directive, not a bare `---`. */
function contentLine(piece: Piece): number {
  for (let i = 0; i < piece.lines.length; i++) {
    const line = piece.lines[i]!;
    const rest = START_MARKER.test(line) ? line.slice(3) : line;
    const trimmed = rest.trim();
    if (trimmed === '' || trimmed.startsWith('#') || (line.startsWith('%') && rest === line)) continue;
    return piece.start + i;
  }
  return piece.start;
}

/** Parses one file's text into its documents, with their lines. */
export function parseDocuments(text: string, file: string): { documents: LoadedDocument[]; problems: LoadProblem[] } {
  const documents: LoadedDocument[] = [];
  const problems: LoadProblem[] = [];
  for (const piece of splitDocuments(text)) {
    let doc: unknown;
    try {
      doc = yaml.load(piece.text, { schema: SCHEMA, filename: file });
    } catch (err) {
      if (err instanceof yaml.YAMLException) {
        const mark = (err as unknown as { mark?: { line: number; column: number } }).mark;
        const line = mark ? piece.start + mark.line : contentLine(piece);
        const column = mark ? ` (column ${mark.column + 1})` : '';
        problems.push({ path: file, line, message: `invalid YAML: ${err.reason || 'syntax error'}${column}` });
        continue;
      }
      throw err;
    }
    if (doc === null || doc === undefined) continue; // an empty document: nothing to do
    const line = contentLine(piece);
    if (isRecord(doc) && doc.kind === 'List' && doc.apiVersion === 'v1' && Array.isArray(doc.items)) {
      for (const item of doc.items) if (item !== null && item !== undefined) documents.push({ path: file, line, doc: item });
      continue;
    }
    documents.push({ path: file, line, doc });
  }
  return { documents, problems };
}

/** Reads every document under `paths` (files, directories, `-` for standard input). */
export function loadDocuments(paths: readonly string[], options: { readStdin?: () => string } = {}): LoadResult {
  const { files, problems } = expandPaths(paths);
  const documents: LoadedDocument[] = [];
  const read: string[] = [];
  for (const file of files) {
    let text: string;
    const label = file === STDIN_PATH ? STDIN_LABEL : file;
    try {
      text = file === STDIN_PATH ? (options.readStdin ?? (() => fs.readFileSync(0, 'utf8')))() : fs.readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ path: label, message: `cannot read: ${errnoMessage(err)}` });
      continue;
    }
    read.push(label);
    const parsed = parseDocuments(text, label);
    documents.push(...parsed.documents);
    problems.push(...parsed.problems);
  }
  return { documents, problems, files: read };
}
