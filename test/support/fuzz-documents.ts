/**
 * fast-check generators of rpa-access documents, valid and broken, for the fuzz tests
 * (test/unit/fuzz-documents.test.ts, test/cli/fuzz-apply.test.ts).
 *
 * A document set is built as plain objects from small pools of names (so that documents meet:
 * duplicates, owners, emails, references), some documents are broken on purpose (wrong types,
 * missing and unknown fields, unknown kinds, huge strings, bad names, invariant breakers), and
 * the set is written as YAML text, sometimes damaged as text (truncated, tabs, unterminated
 * quotes, duplicate keys, alias bombs).
 *
 * The seed is fixed (FC_SEED overrides it to explore); every suite names it in its title, and
 * fast-check prints it with the shrunk counterexample when a property fails.
 */
import fc from 'fast-check';
import yaml from 'js-yaml';
import { ALL_PERMISSIONS, API_VERSION_FULL, BUILT_IN_ROLE_NAMES, resourceScope } from '../../src/model/catalog.js';

export const FUZZ_SEED = Number(process.env.FC_SEED ?? 20_251_201);
/** Runs per property: bounded, so a suite stays within seconds on a shared 2-core machine. */
export const fuzzRuns = (n: number): number => Number(process.env.FC_RUNS ?? n);

export const FZ_TENANT = 'fz';
export const USERS = ['u0', 'u1', 'u2', 'u3'];
export const GROUPS = ['g0', 'g1'];

type Doc = Record<string, unknown>;

const meta = (name: string, namespace: string | undefined = FZ_TENANT) => ({ name, ...(namespace !== undefined ? { namespace } : {}) });
const docOf = (kind: string, name: string, spec: unknown): Doc => ({ apiVersion: API_VERSION_FULL, kind, metadata: meta(name), spec });

const arbUser: fc.Arbitrary<Doc> = fc
  .record({
    name: fc.constantFrom(...USERS),
    email: fc.constantFrom('own', 'own', 'own', 'same@example.com', 'SAME@example.com'),
    groups: fc.subarray([...GROUPS, 'global', 'ghost-group']),
    active: fc.constantFrom(true, true, true, false),
    type: fc.constantFrom('Human', 'Human', 'Robot'),
    fullName: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  })
  .map((u) =>
    docOf('User', u.name, {
      email: u.email === 'own' ? `${u.name}@example.com` : u.email,
      groups: u.groups, active: u.active, type: u.type,
      ...(u.fullName !== undefined ? { fullName: u.fullName } : {}),
    }),
  );

const arbGroup: fc.Arbitrary<Doc> = fc
  .record({ name: fc.constantFrom(...GROUPS, ...GROUPS, 'global'), displayName: fc.constantFrom('Ops', 'GLOBAL', 'Something else') })
  .map((g) => docOf('Group', g.name, { displayName: g.displayName }));

const arbRole: fc.Arbitrary<Doc> = fc
  .record({
    name: fc.constantFrom('r-t', 'r-f', 'r-f', 'analyst', 'owner'),
    scope: fc.constantFrom('Tenant', 'Folder'),
    permissions: fc.uniqueArray(fc.constantFrom(...ALL_PERMISSIONS), { minLength: 1, maxLength: 6 }),
  })
  .map((r) => docOf('Role', r.name, {
    scope: r.scope,
    // A custom role names only resources of its scope (a per-document rule; breaking it is a mutation's job).
    permissions: r.permissions
      .filter((p) => BUILT_IN_ROLE_NAMES.has(r.name) || resourceScope(p.split('.')[0]!) === r.scope)
      .map((p) => ({ resource: p.split('.')[0], actions: [p.split('.')[1]] })),
  }));

const arbBinding: fc.Arbitrary<Doc> = fc
  .record({
    name: fc.constantFrom('b0', 'b1', 'b2', 'owner-1', 'owner-2'),
    role: fc.constantFrom('owner', 'administrator', 'folder-viewer', 'automation-user', 'developer', 'r-t', 'r-f', 'ghost-role'),
    subjects: fc.uniqueArray(
      fc.oneof(fc.constantFrom(...USERS, 'ghost').map((n) => ({ kind: 'User', name: n })), fc.constantFrom(...GROUPS, 'global', 'ghost-group').map((n) => ({ kind: 'Group', name: n }))),
      { minLength: 1, maxLength: 3, selector: (s) => `${s.kind}/${s.name}` },
    ),
    folder: fc.option(fc.constantFrom('A', 'A/B', 'Finance/Invoices', 'a/b/c/d/e/f/g'), { nil: undefined, freq: 2 }),
    environment: fc.option(fc.constantFrom('staging', 'prod'), { nil: undefined, freq: 4 }),
    expiresAt: fc.option(fc.constantFrom('2020-01-01T00:00:00Z', '2099-01-01T00:00:00Z'), { nil: undefined, freq: 4 }),
  })
  .map((b) => docOf('RoleBinding', b.name, {
    roleRef: { name: b.role }, subjects: b.subjects,
    ...(b.folder !== undefined ? { folder: b.folder } : {}),
    ...(b.environment !== undefined ? { environment: b.environment } : {}),
    ...(b.expiresAt !== undefined ? { expiresAt: b.expiresAt } : {}),
  }));

/** A document of one of the four kinds, valid on its own (cross-object rules may still refuse it). */
export const arbValidDoc: fc.Arbitrary<Doc> = fc.oneof({ weight: 3, arbitrary: arbUser }, arbGroup, arbRole, { weight: 3, arbitrary: arbBinding });

/** Values of the wrong type, or of the right type and wrong content, for any field. */
const arbBadValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
  fc.constant({ nested: { deeper: [1, 2, { x: 'y' }] } }),
  fc.string({ maxLength: 8 }),
  fc.constantFrom('', ' ', 'Bad_Name', '-x', 'x-', 'ü', 'a/b', '../etc', 'line\nbreak', 'tab\there', '\u0000', '%00', '${HOME}', '{{x}}'),
  fc.constantFrom('x'.repeat(300), 'y'.repeat(70_000)),
  fc.constantFrom('2030-13-45T99:00:00Z', 'tomorrow', 'not-an-email', 'a@', 'View', 'Jobs.View'),
);

/** Field paths worth breaking, per kind (besides apiVersion, kind and metadata). */
const FIELDS: Record<string, string[][]> = {
  User: [['spec', 'email'], ['spec', 'groups'], ['spec', 'groups', '0'], ['spec', 'active'], ['spec', 'type'], ['spec', 'language'], ['spec', 'notifications'], ['spec', 'notifications', 'events'], ['spec', 'concurrentExecution']],
  Group: [['spec', 'displayName'], ['spec', 'description']],
  Role: [['spec', 'scope'], ['spec', 'permissions'], ['spec', 'permissions', '0'], ['spec', 'permissions', '0', 'resource'], ['spec', 'permissions', '0', 'actions'], ['spec', 'permissions', '0', 'actions', '0']],
  RoleBinding: [['spec', 'roleRef'], ['spec', 'roleRef', 'name'], ['spec', 'subjects'], ['spec', 'subjects', '0'], ['spec', 'subjects', '0', 'kind'], ['spec', 'subjects', '0', 'name'], ['spec', 'folder'], ['spec', 'resources'], ['spec', 'environment'], ['spec', 'expiresAt']],
};
const COMMON: string[][] = [['apiVersion'], ['kind'], ['metadata'], ['metadata', 'name'], ['metadata', 'namespace'], ['metadata', 'labels'], ['spec']];

function setPath(doc: Doc, path: string[], value: unknown, remove: boolean): void {
  let at: Record<string, unknown> = doc;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== 'object' || next === null) return;
    at = next as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (remove) delete at[last];
  else at[last] = value;
}

export type Mutation =
  | { op: 'set'; field: number; value: unknown }
  | { op: 'delete'; field: number }
  | { op: 'unknownField'; where: 'top' | 'spec' | 'metadata'; key: string }
  | { op: 'kind'; kind: string; apiVersion: string }
  | { op: 'notAMapping'; value: unknown };

const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), field: fc.nat(), value: arbBadValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), field: fc.nat() }) },
  fc.record({ op: fc.constant('unknownField' as const), where: fc.constantFrom('top' as const, 'spec' as const, 'metadata' as const), key: fc.constantFrom('colour', 'x'.repeat(100), '__proto__', 'constructor', 'status') }),
  fc.record({
    op: fc.constant('kind' as const),
    kind: fc.constantFrom('Team', 'Namespace', 'user', 'ClusterRole', 'List', ''),
    apiVersion: fc.constantFrom(API_VERSION_FULL, 'v1', 'rpa-access.io/v1', 'rbac.authorization.k8s.io/v1'),
  }),
  fc.record({ op: fc.constant('notAMapping' as const), value: fc.oneof(fc.constant([1, 2]), fc.constant('just a string'), fc.integer()) }),
);

/** The document with the mutation applied (a copy); a document may also stop being a mapping. */
export function mutate(doc: Doc, m: Mutation): unknown {
  const copy = structuredClone(doc);
  const kind = String(doc.kind);
  const fields = [...COMMON, ...(FIELDS[kind] ?? [])];
  switch (m.op) {
    case 'set':
      setPath(copy, fields[m.field % fields.length]!, m.value, false);
      return copy;
    case 'delete':
      setPath(copy, fields[m.field % fields.length]!, undefined, true);
      return copy;
    case 'unknownField': {
      const target = m.where === 'top' ? copy : (copy[m.where] as Record<string, unknown>);
      Object.defineProperty(target, m.key, { value: 'surprise', enumerable: true, configurable: true, writable: true });
      return copy;
    }
    case 'kind':
      copy.kind = m.kind;
      copy.apiVersion = m.apiVersion;
      return copy;
    case 'notAMapping':
      return m.value;
  }
}

export interface GeneratedDoc {
  doc: unknown;
  mutation?: Mutation;
}

/** A document: mostly valid, sometimes broken. */
export const arbDoc: fc.Arbitrary<GeneratedDoc> = fc
  .tuple(arbValidDoc, fc.option(arbMutation, { freq: 3, nil: undefined }))
  .map(([doc, mutation]) => (mutation ? { doc: mutate(doc, mutation), mutation } : { doc }));

export type TextDamage =
  | { op: 'none' }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; text: string };

const arbDamage: fc.Arbitrary<TextDamage> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ op: 'none' as const }) },
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.constantFrom(
      '\n\tkind: User\n', '\nname: "unterminated\n', '\nkind: User\nkind: Group\n', '\n: no key\n', '\n- a\nb: c\n', '\n---\n',
      '\n...\n', '\n%YAML 1.2\n', '\n!!js/function "function(){}"\n', '\n&a [*a]\n', '\u0000', '\uFEFF', '\r\n', '\n[[[[[[[[[[\n',
      '\nbomb: &b1 [x,x,x,x,x,x,x,x,x]\nb2: &b2 [*b1,*b1,*b1,*b1,*b1,*b1,*b1,*b1,*b1]\nb3: &b3 [*b2,*b2,*b2,*b2,*b2,*b2,*b2,*b2,*b2]\nb4: &b4 [*b3,*b3,*b3,*b3,*b3,*b3,*b3,*b3,*b3]\nkind: *b4\n',
    ),
  }),
);

/** YAML text of the documents, as a file would hold them. */
export function toYaml(docs: unknown[]): string {
  return docs.map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true })).join('---\n');
}

export function damage(text: string, d: TextDamage): string {
  switch (d.op) {
    case 'none':
      return text;
    case 'truncate':
      return text.slice(0, d.at % (text.length + 1));
    case 'insert': {
      const at = d.at % (text.length + 1);
      return text.slice(0, at) + d.text + text.slice(at);
    }
  }
}

export interface GeneratedFile {
  docs: GeneratedDoc[];
  damage: TextDamage;
  /** Some documents given twice (duplicates). */
  text: string;
}

/** A file of 1 to 8 documents, sometimes with duplicates, sometimes damaged as text. */
export const arbFile: fc.Arbitrary<GeneratedFile> = fc
  .record({
    docs: fc.array(arbDoc, { minLength: 1, maxLength: 8 }),
    duplicate: fc.option(fc.nat(), { freq: 4, nil: undefined }),
    damage: arbDamage,
  })
  .map(({ docs, duplicate, damage: d }) => {
    const all = duplicate === undefined ? docs : [...docs, docs[duplicate % docs.length]!];
    return { docs: all, damage: d, text: damage(toYaml(all.map((x) => x.doc)), d) };
  });

/** A file of valid documents only (the planner may still refuse them for cross-object rules). */
export const arbCleanFile: fc.Arbitrary<{ docs: Doc[]; text: string }> = fc
  .uniqueArray(arbValidDoc, { minLength: 1, maxLength: 10, selector: (d) => `${String(d.kind)}/${(d.metadata as { name: string }).name}` })
  .map((docs) => ({ docs, text: toYaml(docs) }));

/** What a user must never see: a stack frame, a Node.js error dump, an object printed raw. */
export const STACK_TRACE = /^\s+at .+[:(]|node:internal|Node\.js v\d|\[object Object\]/m;
