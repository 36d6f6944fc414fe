/**
 * Offline checking of a set of loaded documents: each document against its schema, the set for
 * duplicates, and each tenant's documents against the cross-object invariants (planned onto an
 * empty tenant that holds only the built-ins). What passes becomes store entries, each
 * remembering the document it came from, so later problems (the store's own verdict, readiness)
 * can point at `PATH:LINE` too.
 */
import { API_GROUP, API_VERSION_FULL, KINDS, type Kind } from '../model/catalog.js';
import { readiness } from '../model/readiness.js';
import type { Violation } from '../model/invariants.js';
import { planTenant, type DesiredState } from '../model/plan.js';
import type { AnyEntry } from '../model/types.js';
import { validateDocument } from '../model/validate.js';
import type { LoadResult } from './load.js';
import { isRecord } from '../model/json.js';

export interface Source {
  path: string;
  line: number;
}

export interface DocumentProblem {
  /** Where, when the problem comes from a document or a path. */
  path?: string;
  line?: number;
  /** What could be read of the object's identity. */
  kind?: string;
  namespace?: string;
  name?: string;
  message: string;
}

export interface SourcedEntry {
  tenant: string;
  entry: AnyEntry;
  source: Source;
}

export interface CheckedDocuments {
  /** Valid objects, in document order. */
  objects: SourcedEntry[];
  /** Problems that make the set invalid, in file then line order. */
  problems: DocumentProblem[];
  /** Things worth saying that do not make the set invalid (dangling references, expired bindings). */
  warnings: DocumentProblem[];
  /** Tenants named by the valid objects, sorted. */
  tenants: string[];
  /** Number of documents read. */
  documentCount: number;
  files: string[];
}

/** `Kind namespace/name`, or as much of it as is known. */
export function identity(p: { kind?: string; namespace?: string; name?: string }): string {
  if (p.kind === undefined && p.name === undefined) return '';
  const name = p.name === undefined ? '(unnamed)' : shorten(p.name);
  return `${p.kind === undefined ? '(no kind)' : shorten(p.kind)} ${p.namespace !== undefined ? `${shorten(p.namespace)}/` : ''}${name}`;
}

/**
 * Longest identity part printed whole: a valid name has at most 253 characters; an invalid one
 * (a 100 kB name, a name with a line break) is cut and kept on one line, its own problem says why.
 */
const MAX_IDENTITY = 253;

function shorten(s: string): string {
  const line = /[\r\n]/.test(s) ? JSON.stringify(s) : s;
  return line.length > MAX_IDENTITY ? `${line.slice(0, 64)}... (${s.length} characters)` : line;
}

/** `PATH:LINE: Kind namespace/name: message` (the parts that are known). */
export function formatProblem(p: DocumentProblem): string {
  const where = p.path !== undefined ? `${p.path}${p.line !== undefined ? `:${p.line}` : ''}: ` : '';
  const who = identity(p);
  return `${where}${who ? `${who}: ` : ''}${p.message}`;
}

/** Documents that are Kubernetes objects but not ours: clear words instead of a schema error. */
function foreignDocument(doc: Record<string, unknown>): string | undefined {
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  if (apiVersion === API_VERSION_FULL || apiVersion.startsWith(`${API_GROUP}/`)) return undefined;
  return `not an rpa-access document (apiVersion ${shorten(apiVersion)}, kind ${shorten(kind)}): only ${API_VERSION_FULL} ${KINDS.join(', ')} are read; apply other objects with kubectl, from other paths`;
}

const key = (tenant: string, kind: string, name: string) => `${kind}/${tenant}/${name}`;

/** Maps store verdicts (violations) back to the documents the objects came from. */
export class SourceMap {
  private readonly sources = new Map<string, Source>();

  constructor(objects: readonly SourcedEntry[]) {
    for (const o of objects) this.sources.set(key(o.tenant, o.entry.kind, o.entry.name), o.source);
  }

  get(tenant: string, kind: string, name: string): Source | undefined {
    return this.sources.get(key(tenant, kind, name));
  }

  violation(v: Violation): DocumentProblem {
    const source = this.get(v.tenant, v.kind, v.name);
    return { ...(source ? { path: source.path, line: source.line } : {}), kind: v.kind, namespace: v.tenant, name: v.name, message: v.message };
  }
}

export function checkDocuments(loaded: LoadResult, options: { defaultNamespace?: string; now?: number } = {}): CheckedDocuments {
  const problems: DocumentProblem[] = loaded.problems.map((p) => ({ path: p.path, ...(p.line !== undefined ? { line: p.line } : {}), message: p.message }));
  const objects: SourcedEntry[] = [];
  const firstSeen = new Map<string, Source>();

  for (const d of loaded.documents) {
    const foreign = isRecord(d.doc) ? foreignDocument(d.doc) : undefined;
    if (foreign) {
      const meta = isRecord((d.doc as Record<string, unknown>).metadata) ? ((d.doc as Record<string, unknown>).metadata as Record<string, unknown>) : {};
      problems.push({
        path: d.path, line: d.line, kind: String((d.doc as Record<string, unknown>).kind),
        ...(typeof meta.namespace === 'string' ? { namespace: meta.namespace } : {}),
        ...(typeof meta.name === 'string' ? { name: meta.name } : {}),
        message: foreign,
      });
      continue;
    }
    const result = validateDocument(d.doc, options.defaultNamespace);
    const id = {
      ...(result.kind !== undefined ? { kind: result.kind } : {}),
      ...(result.namespace !== undefined ? { namespace: result.namespace } : {}),
      ...(result.name !== undefined ? { name: result.name } : {}),
    };
    // Duplicates are looked for among every document that says who it is, valid or not.
    const source = { path: d.path, line: d.line };
    if (result.kind !== undefined && result.namespace !== undefined && result.name !== undefined) {
      const k = key(result.namespace, result.kind, result.name);
      const earlier = firstSeen.get(k);
      if (earlier) {
        problems.push({ ...source, ...id, message: `duplicate: already defined at ${earlier.path}:${earlier.line}` });
        continue;
      }
      firstSeen.set(k, source);
    }
    if (!result.document) {
      for (const message of result.problems) problems.push({ ...source, ...id, message });
      continue;
    }
    const doc = result.document;
    const tenant = doc.metadata.namespace;
    objects.push({ tenant, source, entry: { kind: doc.kind as Kind, name: doc.metadata.name, spec: doc.spec, origin: 'user' } as AnyEntry });
  }

  // Cross-object rules, tenant by tenant, against a new tenant holding only the built-ins.
  const sources = new SourceMap(objects);
  const warnings: DocumentProblem[] = [];
  const tenants = [...new Set(objects.map((o) => o.tenant))].sort();
  for (const tenant of tenants) {
    const mine = objects.filter((o) => o.tenant === tenant);
    const plan = planTenant(undefined, { tenant, upserts: mine.map((o) => o.entry) });
    problems.push(...plan.violations.map((v) => sources.violation(v)));
    for (const o of mine) {
      const r = readiness(plan.next, o.entry.kind, o.entry.name, options.now);
      if (!r.ready) {
        warnings.push({ ...o.source, kind: o.entry.kind, namespace: tenant, name: o.entry.name, message: r.message });
      }
    }
  }

  const fileOrder = new Map(loaded.files.map((f, i) => [f, i]));
  const order = (p: DocumentProblem) => [p.path === undefined ? -1 : (fileOrder.get(p.path) ?? -1), p.line ?? 0] as const;
  const sortProblems = (list: DocumentProblem[]) =>
    list
      .map((p, i) => ({ p, i }))
      .sort((a, b) => {
        const [fa, la] = order(a.p);
        const [fb, lb] = order(b.p);
        return fa - fb || la - lb || a.i - b.i;
      })
      .map((x) => x.p);

  return {
    objects,
    problems: sortProblems(problems),
    warnings: sortProblems(warnings),
    tenants,
    documentCount: loaded.documents.length,
    files: loaded.files,
  };
}

/** One desired state per tenant named by the documents. */
export function desiredStates(checked: CheckedDocuments, options: { prune?: boolean; pruneBrake?: boolean } = {}): DesiredState[] {
  return checked.tenants.map((tenant) => ({
    tenant,
    upserts: checked.objects.filter((o) => o.tenant === tenant).map((o) => o.entry),
    prune: Boolean(options.prune),
    ...(options.pruneBrake ? { pruneBrake: true } : {}),
  }));
}
