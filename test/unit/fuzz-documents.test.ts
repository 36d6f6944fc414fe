/**
 * Bad input, property-based (fast-check, fixed seed: see test/support/fuzz-documents.ts).
 *
 * - Reading and checking documents (load.ts + check.ts + validate.ts, what `validate` and
 *   `apply` run first) on generated YAML, valid and broken: never throws, every problem is one
 *   short line `PATH:LINE: ...` without a stack trace, a valid set yields every document, and
 *   the verdict does not depend on the order of the files.
 * - The admission webhook (parseAdmissionReview + review) on AdmissionReviews built from the
 *   same documents and on arbitrary JSON: never throws, always answers the request's uid, a
 *   refusal is a 4xx with a one-line message naming the object.
 * - Engine properties that test/unit/properties.test.ts does not already state: removing a
 *   binding never adds a permission, joining a group never removes one, deactivating a user
 *   takes everything from them and nothing from anyone else, an expired binding grants nothing.
 */
import fc from 'fast-check';
import { checkDocuments, formatProblem } from '../../src/documents/check.js';
import { parseDocuments } from '../../src/documents/load.js';
import { API_GROUP, API_VERSION, KINDS, type Kind } from '../../src/model/catalog.js';
import { TenantIndex } from '../../src/model/engine.js';
import type { AnyEntry, TenantState } from '../../src/model/types.js';
import type { AccessResource } from '../../src/api/v1alpha1/resource.js';
import { parseAdmissionReview, type AdmissionRequest, type AdmissionResponse } from '../../src/webhook/admission.js';
import { review } from '../../src/webhook/review.js';
import { staticStateSource } from '../../src/webhook/state.js';
import { NOW, binding, group, plan, role, user } from '../support/fixtures.js';
import { arbCleanFile, arbDoc, arbFile, arbValidDoc, FUZZ_SEED, fuzzRuns, FZ_TENANT, STACK_TRACE, toYaml } from '../support/fuzz-documents.js';

fc.configureGlobal({ seed: FUZZ_SEED, numRuns: fuzzRuns(150) });

/** A problem line as a user reads it. */
function expectClear(line: string): void {
  expect(line).not.toMatch(/[\r\n]/);
  expect(line).not.toMatch(STACK_TRACE);
  expect(line.length).toBeLessThan(1_000);
  expect(line).toMatch(/\S/);
}

function check(files: { name: string; text: string }[]) {
  const documents = [];
  const problems = [];
  for (const f of files) {
    const parsed = parseDocuments(f.text, f.name);
    documents.push(...parsed.documents);
    problems.push(...parsed.problems);
  }
  return checkDocuments({ documents, problems, files: files.map((f) => f.name) }, { now: NOW });
}

describe(`documents through validate (fast-check seed ${FUZZ_SEED})`, () => {
  test('never throws; every problem is one clear line naming the file and line', () => {
    fc.assert(
      fc.property(fc.array(arbFile, { minLength: 1, maxLength: 3 }), (files) => {
        const named = files.map((f, i) => ({ name: `dir/f${i}.yaml`, text: f.text }));
        const checked = check(named);
        for (const p of checked.problems) {
          const line = formatProblem(p);
          expectClear(line);
          expect(line).toMatch(/^dir\/f\d\.yaml:\d+: /);
        }
        for (const w of checked.warnings) expectClear(formatProblem(w));
        // Nothing valid is lost, nothing invalid slips through.
        expect(checked.objects.length).toBeLessThanOrEqual(checked.documentCount);
        if (checked.problems.length === 0) expect(checked.objects).toHaveLength(checked.documentCount);
      }),
    );
  });

  test('a broken document is always a problem, named by its file and line', () => {
    fc.assert(
      fc.property(arbDoc, arbCleanFile, (broken, clean) => {
        fc.pre(broken.mutation !== undefined && broken.mutation.op !== 'unknownField');
        const checked = check([{ name: 'ok.yaml', text: clean.text }, { name: 'bad.yaml', text: toYaml([broken.doc]) }]);
        // A mutation may by chance produce a valid document (e.g. a string where a string goes).
        const alone = check([{ name: 'bad.yaml', text: toYaml([broken.doc]) }]);
        if (alone.objects.length === 0) {
          expect(checked.problems.some((p) => p.path === 'bad.yaml' && p.line === 1)).toBe(true);
        }
      }),
    );
  });

  test('an unknown field is always a problem that names it', () => {
    fc.assert(
      fc.property(arbValidDoc, fc.constantFrom('colour', 'constructor', '__proto__', 'x'.repeat(100)), fc.constantFrom('spec', 'top'), (doc, key, where) => {
        const copy = structuredClone(doc);
        Object.defineProperty(where === 'top' ? copy : copy.spec, key, { value: 1, enumerable: true, configurable: true, writable: true });
        const checked = check([{ name: 'u.yaml', text: toYaml([copy]) }]);
        expect(checked.objects).toEqual([]);
        const lines = checked.problems.map(formatProblem);
        lines.forEach(expectClear);
        expect(lines.some((l) => l.includes('unknown field') && l.includes(key.slice(0, 20)))).toBe(true);
      }),
    );
  });

  test('a clean file: every problem is a cross-object rule, and the verdict does not depend on file order', () => {
    fc.assert(
      fc.property(arbCleanFile, fc.nat(), (clean, cut) => {
        const docs = clean.docs;
        const at = cut % (docs.length + 1);
        const one = check([{ name: 'a.yaml', text: toYaml(docs.slice(0, at)) }, { name: 'b.yaml', text: toYaml(docs.slice(at)) }]);
        const other = check([{ name: 'b.yaml', text: toYaml(docs.slice(at)) }, { name: 'a.yaml', text: toYaml(docs.slice(0, at)) }]);
        const messages = (c: typeof one) => c.problems.map((p) => `${p.kind}/${p.name}: ${p.message}`).sort();
        expect(messages(one)).toEqual(messages(other));
        expect(one.objects).toHaveLength(docs.length);
        for (const p of one.problems) {
          expect(p.message).not.toMatch(/^(spec|metadata|apiVersion|kind)\b|unknown field|duplicate/);
          expectClear(formatProblem(p));
        }
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The webhook.

const OPERATOR = 'system:serviceaccount:rpa-access-system:rpa-access-operator';
const BASE: AccessResource[] = [
  { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'User', metadata: { name: 'u0', namespace: FZ_TENANT }, spec: { email: 'u0@example.com' } },
  { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'User', metadata: { name: 'u1', namespace: FZ_TENANT }, spec: { email: 'u1@example.com' } },
  { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'RoleBinding', metadata: { name: 'owner-1', namespace: FZ_TENANT }, spec: { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'u0' }] } },
  { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'RoleBinding', metadata: { name: 'b1', namespace: FZ_TENANT }, spec: { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'u1' }] } },
];
const state = staticStateSource({ [FZ_TENANT]: BASE });

const arbUserInfo = fc.oneof(
  fc.constant({ username: 'alice', groups: ['system:authenticated'] }),
  fc.constant({ username: OPERATOR }),
  fc.constant({}),
  fc.record({ username: fc.oneof(fc.string(), fc.integer() as fc.Arbitrary<unknown> as fc.Arbitrary<string>) }),
);

/** An AdmissionReview body built from generated documents: object, oldObject, operation. */
const arbReview = fc
  .record({
    object: arbDoc,
    old: fc.option(arbDoc, { nil: undefined }),
    operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'),
    userInfo: arbUserInfo,
    kindOverride: fc.option(fc.constantFrom(...KINDS, 'Team', ''), { nil: undefined, freq: 4 }),
    nameFromObject: fc.boolean(),
    version: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'),
    uid: fc.uuid(),
  })
  .map((r) => {
    const obj = r.object.doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | undefined;
    const kind = r.kindOverride ?? (typeof obj?.kind === 'string' ? obj.kind : 'User');
    const request: Record<string, unknown> = {
      uid: r.uid,
      kind: { group: API_GROUP, version: API_VERSION, kind },
      resource: { group: API_GROUP, version: API_VERSION, resource: `${kind.toLowerCase()}s` },
      operation: r.operation,
      userInfo: r.userInfo,
      ...(r.operation === 'DELETE' ? {} : { object: r.object.doc }),
      ...(r.old || r.operation === 'DELETE' ? { oldObject: (r.old ?? r.object).doc } : {}),
    };
    if (r.nameFromObject && typeof obj?.metadata?.name === 'string') request.name = obj.metadata.name;
    if (typeof obj?.metadata?.namespace === 'string') request.namespace = obj.metadata.namespace;
    return { apiVersion: r.version, kind: 'AdmissionReview', request };
  });

/** What server.ts does with a body, minus HTTP: parse, then judge. */
async function admit(body: unknown): Promise<{ error: string } | AdmissionResponse> {
  const parsed = parseAdmissionReview(body);
  if ('error' in parsed) return parsed;
  return review(parsed.request, {
    state, operatorUsernames: [OPERATOR], now: () => NOW,
    escalation: { canBind: async (r) => ({ allowed: r.role !== 'owner' }) },
  });
}

describe(`the admission webhook on hostile reviews (fast-check seed ${FUZZ_SEED})`, () => {
  test('never throws; answers the uid; a refusal is a 4xx with one clear line naming the object', async () => {
    await fc.assert(
      fc.asyncProperty(arbReview, async (body) => {
        const r = await admit(body);
        if ('error' in r) {
          expectClear(r.error);
          return;
        }
        expect(r.uid).toBe((body.request as { uid: string }).uid);
        if (r.allowed) {
          for (const w of r.warnings ?? []) expectClear(w);
          return;
        }
        expect([403, 422]).toContain(r.status!.code);
        expectClear(r.status!.message);
        for (const c of r.status!.details?.causes ?? []) expectClear(c.message);
      }),
    );
  });

  test('a document the schema refuses is never admitted (unless the operator asks)', async () => {
    await fc.assert(
      fc.asyncProperty(arbReview, async (body) => {
        const req = body.request as unknown as AdmissionRequest & { object?: unknown };
        fc.pre(req.operation === 'CREATE' || req.operation === 'UPDATE');
        fc.pre((req.userInfo as { username?: unknown }).username !== OPERATOR);
        const kind = req.kind!.kind!;
        fc.pre((KINDS as readonly string[]).includes(kind));
        const alone = check([{ name: 'x.yaml', text: toYaml([{ ...(req.object as object), kind }]) }]);
        fc.pre(alone.objects.length === 0 && alone.problems.some((p) => /must be|is required|unknown field/.test(p.message)));
        // The webhook judges spec: metadata (name and namespace come from the request) and apiVersion
        // are the API server's to check, and a missing spec is an empty one, as the reconciler reads it.
        const specProblem = alone.problems.some((p) => /^spec\./.test(p.message)) && !alone.problems.some((p) => /apiVersion|^kind/.test(p.message));
        fc.pre(specProblem);
        const r = await admit(body);
        if ('error' in r) return;
        const unchangedUpdate = req.operation === 'UPDATE' && JSON.stringify((req.object as { spec?: unknown }).spec) === JSON.stringify((req.oldObject as { spec?: unknown } | undefined)?.spec);
        if (!unchangedUpdate) expect(r.allowed).toBe(false);
      }),
      { numRuns: fuzzRuns(300) },
    );
  });

  test('parseAdmissionReview and review never throw on arbitrary JSON, or on a review with arbitrary parts', async () => {
    const arbBroken = fc.record(
      {
        apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), fc.jsonValue()),
        kind: fc.oneof(fc.constant('AdmissionReview'), fc.jsonValue()),
        request: fc.oneof(
          fc.record({
            uid: fc.oneof(fc.constant('u'), fc.jsonValue()),
            operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE'), fc.jsonValue()),
            kind: fc.oneof(fc.constant({ group: API_GROUP, version: API_VERSION, kind: 'User' }), fc.jsonValue()),
            name: fc.oneof(fc.constant('u9'), fc.jsonValue()),
            namespace: fc.oneof(fc.constant(FZ_TENANT), fc.jsonValue()),
            userInfo: fc.oneof(fc.constant({ username: 'alice' }), fc.jsonValue()),
            object: fc.oneof(fc.constant({ metadata: { name: 'u9' }, spec: { email: 'u9@example.com' } }), fc.record({ metadata: fc.jsonValue(), spec: fc.jsonValue() }), fc.jsonValue()),
            oldObject: fc.oneof(fc.record({ metadata: fc.jsonValue(), spec: fc.jsonValue() }), fc.jsonValue()),
          }, { requiredKeys: [] }),
          fc.jsonValue(),
        ),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(arbBroken, fc.jsonValue()), async (body) => {
        const r = await admit(body);
        if ('error' in r) expectClear(r.error);
        else if (!r.allowed) expectClear(r.status!.message);
      }),
      { numRuns: fuzzRuns(400) },
    );
  });

  test('deeply nested and huge specs are refused as invalid, not as a webhook failure', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 20_000; i++) deep = [deep];
    const bodies = [
      { spec: { email: 'u9@example.com', groups: deep } },
      { spec: deep },
      { spec: { email: 'u9@example.com', fullName: 'f'.repeat(900_000) } },
      { spec: { email: 'u9@example.com', groups: Array.from({ length: 100_000 }, (_, i) => `g${i}`) } },
    ];
    for (const extra of bodies) {
      const r = await admit({
        apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
        request: {
          uid: 'deep', operation: 'CREATE', userInfo: { username: 'alice' }, name: 'u9', namespace: FZ_TENANT,
          kind: { group: API_GROUP, version: API_VERSION, kind: 'User' },
          object: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'User', metadata: { name: 'u9', namespace: FZ_TENANT }, ...extra },
        },
      });
      expect('error' in r).toBe(false);
      const response = r as AdmissionResponse;
      expect(response.allowed).toBe(false);
      expect(response.status!.code).toBe(422);
      expectClear(response.status!.message);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Engine properties (those test/unit/properties.test.ts does not state already).

const P_USERS = ['p0', 'p1', 'p2'];
const P_GROUPS = ['pg0', 'pg1'];
const P_FOLDERS = ['A', 'A/B', 'B'];
const QUERIES: { permission: string; folder?: string }[] = [
  { permission: 'Users.View' }, { permission: 'Billing.View' }, { permission: 'Robots.Edit' },
  ...P_FOLDERS.flatMap((folder) => ['Jobs.View', 'Jobs.Create', 'Queues.Edit', 'Logs.View'].map((permission) => ({ permission, folder }))),
];

const arbBindingEntry = fc
  .record({
    // Not administrator: users here may be inactive, and an inactive administrator is refused (contract 4.6).
    role: fc.constantFrom('developer', 'analyst', 'automation-user', 'folder-viewer', 'p-tenant', 'p-folder', 'missing-role'),
    subjects: fc.uniqueArray(fc.constantFrom(...P_USERS.map((u) => `user:${u}`), ...P_GROUPS.map((g) => `group:${g}`), 'group:global'), { minLength: 1, maxLength: 3 }),
    folder: fc.constantFrom(...P_FOLDERS),
    expiresAt: fc.option(fc.constantFrom('2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z'), { nil: undefined, freq: 3 }),
  })
  .map((b) => ({ ...b, folderRole: ['automation-user', 'folder-viewer', 'p-folder'].includes(b.role) }));

const arbPTenant = fc.record({
  users: fc.array(fc.record({ groups: fc.subarray(P_GROUPS), active: fc.constantFrom(true, true, false), type: fc.constantFrom('Human', 'Human', 'Robot') }), { minLength: 3, maxLength: 3 }),
  bindings: fc.array(arbBindingEntry, { maxLength: 6 }),
});
type PTenant = typeof arbPTenant extends fc.Arbitrary<infer T> ? T : never;

const bindingOf = (name: string, b: PTenant['bindings'][number]): AnyEntry =>
  binding(name, b.role, b.subjects, { ...(b.folderRole ? { folder: b.folder } : {}), ...(b.expiresAt ? { expiresAt: b.expiresAt } : {}) });

function pEntries(t: PTenant): AnyEntry[] {
  return [
    ...t.users.map((u, i) => user(P_USERS[i]!, u)),
    ...P_GROUPS.map((g) => group(g)),
    role('p-tenant', 'Tenant', ['Users.View', 'Robots.Edit']),
    role('p-folder', 'Folder', ['Jobs.View', 'Jobs.Create', 'Queues.Edit']),
    ...t.bindings.map((b, i) => bindingOf(`pb${i}`, b)),
  ];
}

function accepted(entries: AnyEntry[], current?: TenantState, options: { deletes?: { kind: Kind; name: string }[] } = {}): TenantState {
  const p = plan(current, entries, options);
  expect(p.violations).toEqual([]); // these tenants break no invariant: no owner, no scope mix-up
  return p.next;
}

/** Every (user, permission, folder) allowed, at `at`. */
function allowed(state: TenantState, at = NOW): Set<string> {
  const ix = new TenantIndex(state);
  const out = new Set<string>();
  for (const u of P_USERS) for (const q of QUERIES) if (ix.check({ user: u, ...q }, at).allowed) out.add(`${u} ${q.permission} ${q.folder ?? '-'}`);
  return out;
}
const minus = (a: Set<string>, b: Set<string>) => [...a].filter((x) => !b.has(x));

describe(`engine properties (fast-check seed ${FUZZ_SEED})`, () => {
  test('removing a binding never adds a permission', () => {
    fc.assert(
      fc.property(arbPTenant, fc.nat(), (t, which) => {
        fc.pre(t.bindings.length > 0);
        const before = accepted(pEntries(t));
        const after = accepted([], before, { deletes: [{ kind: 'RoleBinding', name: `pb${which % t.bindings.length}` }] });
        expect(minus(allowed(after), allowed(before))).toEqual([]);
      }),
    );
  });

  test('joining a group never removes a permission', () => {
    fc.assert(
      fc.property(arbPTenant, fc.nat(2), fc.constantFrom(...P_GROUPS), (t, who, g) => {
        fc.pre(!t.users[who]!.groups.includes(g));
        const before = accepted(pEntries(t));
        const u = t.users[who]!;
        const after = accepted([user(P_USERS[who]!, { ...u, groups: [...u.groups, g] })], before);
        expect(minus(allowed(before), allowed(after))).toEqual([]);
      }),
    );
  });

  test('deactivating a user takes everything from them and nothing from anyone else', () => {
    fc.assert(
      fc.property(arbPTenant, fc.nat(2), (t, who) => {
        const before = accepted(pEntries(t));
        const u = t.users[who]!;
        const p = plan(before, [user(P_USERS[who]!, { ...u, active: false })]);
        // An explicit administrator cannot be deactivated (contract 4.4): refused, nothing to compare.
        fc.pre(p.violations.length === 0);
        const after = p.next;
        const name = P_USERS[who]!;
        const was = allowed(before);
        const now = allowed(after);
        expect([...now].filter((x) => x.startsWith(`${name} `))).toEqual([]);
        expect([...was].filter((x) => !x.startsWith(`${name} `))).toEqual([...now]);
        expect(new TenantIndex(after).permissions(name, NOW)).toEqual([]);
      }),
    );
  });

  test('an expired binding grants nothing, and time passing never adds a permission', () => {
    fc.assert(
      fc.property(arbPTenant, (t) => {
        const state = accepted(pEntries(t));
        const ix = new TenantIndex(state);
        const later = Date.parse('2028-01-01T00:00:00Z');
        for (const u of P_USERS) {
          for (const q of QUERIES) {
            const r = ix.check({ user: u, ...q }, later);
            for (const g of r.grants) {
              if (g.binding === null) continue;
              expect(state.bindings.get(g.binding)!.spec.expiresAt).toBeUndefined();
            }
          }
        }
        expect(minus(allowed(state, later), allowed(state, NOW))).toEqual([]);
      }),
    );
  });
});
