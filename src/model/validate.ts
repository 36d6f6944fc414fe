/**
 * Validation of one document, with no knowledge of other objects: schema (ajv, from the same
 * JSON Schemas the CRDs are generated from) plus the per-document rules a schema cannot say
 * (scope of a Role's resources). Cross-object rules live in invariants.ts.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { API_VERSION_FULL, BUILT_IN_ROLE_NAMES, KINDS, resourceScope, type Kind } from './catalog.js';
import { folderPathProblem } from './folders.js';
import { documentSchema } from './schemas.js';
import type { AccessDocument, RoleSpec } from './types.js';
import { copySharingStrings, isRecord } from './json.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as a namespace.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: false });
(addFormats as unknown as (a: Ajv, f: string[]) => void)(ajv, ['email', 'date-time']);

const validators = new Map<Kind, ValidateFunction>(KINDS.map((k) => [k, ajv.compile(documentSchema(k))]));

export interface ValidationResult {
  /** The document with defaults applied; present only when there is no problem. */
  document?: AccessDocument;
  problems: string[];
  /** What could be read of the document's identity, for error lines. */
  kind?: string;
  namespace?: string;
  name?: string;
}

/** Longest value quoted back in a message: anything longer is cut, so a message stays readable. */
const MAX_QUOTED = 64;

/**
 * A value the document gave, for "(got ...)": a short string or number as JSON, a long one cut,
 * a mapping or a list by its type only. Never serialized whole: a YAML alias bomb is a small
 * file whose values expand to gigabytes, and a message must stay one short line.
 */
function describeValue(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (typeof v === 'string') return v.length > MAX_QUOTED ? `${JSON.stringify(v.slice(0, MAX_QUOTED))}... (${v.length} characters)` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

/** `spec` + `colour` -> `spec.colour`; a key that is not a plain word is quoted, so a message stays one line. */
function member(path: string, key: string): string {
  if (/^\d+$/.test(key)) return `${path}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path ? `${path}.${key}` : key;
  const shown = key.length > MAX_QUOTED ? `${key.slice(0, MAX_QUOTED)}...` : key;
  return `${path}[${JSON.stringify(shown)}]`;
}

/** `/spec/permissions/0/resource` -> `spec.permissions[0].resource` */
function fieldPath(instancePath: string): string {
  let out = '';
  for (const segment of instancePath.split('/').slice(1)) out = member(out, segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  return out;
}

/** The value at an ajv instancePath (`/spec/folder`) of `doc`. */
function valueAt(doc: unknown, instancePath: string): unknown {
  let v = doc;
  for (const segment of instancePath.split('/').slice(1)) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

function describeError(e: ErrorObject, doc: unknown): string {
  const at = fieldPath(e.instancePath);
  const where = at ? `${at}: ` : '';
  switch (e.keyword) {
    case 'required':
      return `${member(at, String((e.params as { missingProperty: string }).missingProperty))} is required`;
    case 'additionalProperties':
      return `${member(at, String((e.params as { additionalProperty: string }).additionalProperty))}: unknown field`;
    case 'enum':
      return `${where}must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues).join(', ')}`;
    case 'const':
      return `${where}must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    case 'pattern':
      if (at.endsWith('folder')) {
        const value = valueAt(doc, e.instancePath);
        return `${where}${(typeof value === 'string' && folderPathProblem(value)) || 'must be a folder path of 1 to 7 non-empty segments like Finance/Invoices'}`;
      }
      if (at === 'metadata.namespace') return `${where}must be a lowercase DNS-1123 label (a-z, 0-9, '-'), as a Kubernetes namespace`;
      if (at.endsWith('name') || at.startsWith('metadata') || /^spec\.groups\[\d+\]$/.test(at)) return `${where}must be a lowercase DNS-1123 name (a-z, 0-9, '-', '.')`;
      if (at === 'spec.language') return `${where}must be a BCP 47 language tag such as en or pt-BR`;
      if (at === 'spec.environment') return `${where}must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit, e.g. staging`;
      return `${where}has an invalid format`;
    case 'format':
      return `${where}must be ${(e.params as { format: string }).format === 'date-time' ? 'an RFC 3339 time such as 2026-12-31T23:59:59Z' : 'a valid ' + (e.params as { format: string }).format}`;
    case 'type':
      return `${where}must be ${(e.params as { type: string }).type}`;
    default:
      return `${where}${e.message ?? 'is invalid'}`;
  }
}

/** Role rules a schema cannot express: a Tenant role names only tenant resources, a Folder role only folder ones. */
function roleProblems(name: string, spec: RoleSpec): string[] {
  if (BUILT_IN_ROLE_NAMES.has(name)) return []; // compared with the built-in definition by the planner
  const problems: string[] = [];
  (spec.permissions ?? []).forEach((p, i) => {
    const scope = resourceScope(p.resource);
    if (scope && scope !== spec.scope) {
      problems.push(
        `spec.permissions[${i}].resource: ${p.resource} is a ${scope.toLowerCase()} resource; a ${spec.scope} role may name only ${spec.scope.toLowerCase()} resources`,
      );
    }
  });
  return problems;
}

/** Deeper than any valid document (spec.notifications.events[0] is 4 levels down): refused unread. */
export const MAX_DOCUMENT_DEPTH = 32;

/**
 * True when `value` nests objects or arrays deeper than `max` levels. Iterative (a hostile
 * document may nest tens of thousands of levels, more than the call stack holds) and visiting a
 * shared node again only when reached deeper (YAML aliases make graphs; an alias bomb stays
 * linear, a cycle ends at `max`).
 */
export function nestedDeeperThan(value: unknown, max: number = MAX_DOCUMENT_DEPTH): boolean {
  const seen = new Map<object, number>();
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    if ((seen.get(v) ?? -1) >= depth) continue;
    seen.set(v, depth);
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * Validates one parsed document. `defaultNamespace` fills a missing metadata.namespace (like
 * kubectl's -n); without it a missing namespace is a problem, because a namespace is a tenant.
 */
export function validateDocument(input: unknown, defaultNamespace?: string): ValidationResult {
  if (!isRecord(input)) return { problems: ['document must be a mapping with apiVersion, kind, metadata and spec'] };
  if (nestedDeeperThan(input)) {
    const kind = typeof input.kind === 'string' ? input.kind : undefined;
    const meta = isRecord(input.metadata) ? input.metadata : undefined;
    const id = {
      kind,
      name: typeof meta?.name === 'string' ? meta.name : undefined,
      namespace: typeof meta?.namespace === 'string' ? meta.namespace : meta && meta.namespace === undefined ? defaultNamespace : undefined,
    };
    return { ...id, problems: [`document nests deeper than ${MAX_DOCUMENT_DEPTH} levels: no valid document does`] };
  }
  const doc = copySharingStrings(input);
  const kind = typeof doc.kind === 'string' ? doc.kind : undefined;
  const meta = isRecord(doc.metadata) ? doc.metadata : undefined;
  const name = typeof meta?.name === 'string' ? meta.name : undefined;
  if (meta && meta.namespace === undefined && defaultNamespace) meta.namespace = defaultNamespace;
  const namespace = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  const id = { kind, namespace, name };

  if (doc.apiVersion !== API_VERSION_FULL) {
    return { ...id, problems: [`apiVersion must be ${API_VERSION_FULL} (got ${describeValue(doc.apiVersion)})`] };
  }
  if (!kind || !(KINDS as readonly string[]).includes(kind)) {
    return { ...id, problems: [`kind must be one of ${KINDS.join(', ')} (got ${describeValue(doc.kind)})`] };
  }
  const validate = validators.get(kind as Kind)!;
  const problems: string[] = [];
  if (!validate(doc)) problems.push(...(validate.errors ?? []).map((e) => describeError(e, doc)));
  if (meta && meta.namespace === undefined) problems.push('metadata.namespace is required: a namespace is a tenant');
  if (problems.length === 0 && kind === 'Role') problems.push(...roleProblems(name!, (doc as unknown as AccessDocument<'Role'>).spec));
  if (problems.length > 0) return { ...id, problems: [...new Set(problems)] };
  return { ...id, problems, document: doc as unknown as AccessDocument };
}

/** Applies the schema defaults to a spec (e.g. for objects read back from Kubernetes). */
export function withDefaults<K extends Kind>(kind: K, spec: unknown): AccessDocument<K>['spec'] {
  const result = validateDocument({ apiVersion: API_VERSION_FULL, kind, metadata: { name: 'x', namespace: 'x' }, spec });
  return (result.document?.spec ?? spec) as AccessDocument<K>['spec'];
}
