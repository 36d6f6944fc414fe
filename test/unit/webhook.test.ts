// The admission webhook without a cluster: review() on crafted AdmissionReviews (every rule of
// contract section 4, the operator's bypass, terminating namespaces, the escalation check), the
// HTTPS server's protocol edges, and the certificate helpers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessResource } from '../../src/api/v1alpha1/resource.js';
import { parseAdmissionReview, type AdmissionRequest, type AdmissionResponse, type UserInfo } from '../../src/webhook/admission.js';
import { DirectoryCertificates, checkBundle, generateCertificates, issueServingCertificate, webhookHosts } from '../../src/webhook/certs.js';
import { escalationMessage, roleToBind, type BindRequest, type EscalationChecker } from '../../src/webhook/escalation.js';
import { finalizerPatch, mutate } from '../../src/webhook/finalizer.js';
import { FINALIZER } from '../../src/model/catalog.js';
import { review, type ReviewOptions } from '../../src/webhook/review.js';
import { WebhookServer, serviceAccountUsername, webhookOptionsFromEnv } from '../../src/webhook/server.js';
import { staticStateSource, type TenantStateSource } from '../../src/webhook/state.js';
import { builtInEntry } from '../../src/model/tenant.js';

const NS = 'finance';
const OPERATOR = 'system:serviceaccount:rpa-access-system:rpa-access-operator';
const ALICE: UserInfo = { username: 'alice', uid: 'alice-uid', groups: ['system:authenticated'], extra: { scopes: ['a'] } };

function cr(kind: string, name: string, spec: unknown, metadata: Partial<AccessResource['metadata']> = {}, namespace = NS): AccessResource {
  return { apiVersion: 'rpa-access.io/v1alpha1', kind, metadata: { name, namespace, ...metadata }, spec };
}

const builtIn = (kind: 'Role' | 'Group', name: string): AccessResource =>
  cr(kind, name, structuredClone(builtInEntry(kind, name)!.spec), { labels: { 'rpa-access.io/built-in': 'true' } });

// The tenant as the caches would hold it.
const john = cr('User', 'john', { email: 'john@example.com' });
const jane = cr('User', 'jane', { email: 'jane@example.com' });
const ann = cr('User', 'ann', { email: 'ann@example.com' });
const ops = cr('Group', 'ops', { displayName: 'Ops' });
const ownerBinding = cr('RoleBinding', 'owner', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'john' }] });
const janeAdmin = cr('RoleBinding', 'jane-admin', { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: 'jane' }] });
const folderRole = cr('Role', 'invoice-viewer', { scope: 'Folder', permissions: [{ resource: 'Processes', actions: ['View'] }] });
const opsFolder = cr('RoleBinding', 'ops-folder', { roleRef: { name: 'invoice-viewer' }, folder: 'Finance', subjects: [{ kind: 'Group', name: 'ops' }] });
const BASE = [john, jane, ann, ops, ownerBinding, janeAdmin, folderRole, opsFolder, builtIn('Group', 'global'), builtIn('Role', 'owner')];

class FakeChecker implements EscalationChecker {
  calls: BindRequest[] = [];
  constructor(private readonly answer: boolean | Error = true) {}
  async canBind(r: BindRequest) {
    this.calls.push(r);
    if (this.answer instanceof Error) throw this.answer;
    return { allowed: this.answer };
  }
}

let uidCounter = 0;
function admission(operation: AdmissionRequest['operation'], obj: AccessResource | undefined, old?: AccessResource, user: UserInfo = ALICE): AdmissionRequest {
  const o = obj ?? old!;
  const plural = { User: 'users', Group: 'groups', Role: 'roles', RoleBinding: 'rolebindings' }[o.kind] ?? 'things';
  return {
    uid: `uid-${++uidCounter}`,
    kind: { group: 'rpa-access.io', version: 'v1alpha1', kind: o.kind },
    resource: { group: 'rpa-access.io', version: 'v1alpha1', resource: plural },
    name: o.metadata.name,
    namespace: o.metadata.namespace,
    operation,
    userInfo: user,
    ...(operation === 'DELETE' ? {} : { object: obj }),
    ...(old ? { oldObject: old } : {}),
  };
}

function judge(req: AdmissionRequest, opts: Partial<ReviewOptions> & { objects?: AccessResource[]; terminating?: string[] } = {}): Promise<AdmissionResponse> {
  const state: TenantStateSource = opts.state ?? staticStateSource({ [NS]: opts.objects ?? BASE }, opts.terminating);
  return review(req, { state, operatorUsernames: [OPERATOR], escalation: opts.escalation ?? new FakeChecker(true), ...opts });
}

const create = (obj: AccessResource, opts?: Parameters<typeof judge>[1]) => judge(admission('CREATE', obj), opts);
const update = (obj: AccessResource, old: AccessResource, opts?: Parameters<typeof judge>[1]) => judge(admission('UPDATE', obj, old), opts);
const remove = (old: AccessResource, opts?: Parameters<typeof judge>[1]) => judge(admission('DELETE', undefined, old), opts);
const withSpec = (obj: AccessResource, spec: Record<string, unknown>): AccessResource => ({ ...obj, spec: { ...(obj.spec as object), ...spec } });

function expectRefused(r: AdmissionResponse, code: number, ...fragments: string[]): void {
  expect(r.allowed).toBe(false);
  expect(r.status?.code).toBe(code);
  for (const f of fragments) expect(r.status?.message).toContain(f);
}

describe('review: what is not ours, and who is exempt', () => {
  test('another group, a subresource, CONNECT: allowed without judging', async () => {
    const pod = admission('DELETE', undefined, cr('Role', 'owner', {}));
    expect((await judge({ ...pod, kind: { group: '', version: 'v1', kind: 'Pod' } })).allowed).toBe(true);
    expect((await judge({ ...admission('UPDATE', withSpec(builtIn('Role', 'owner'), { scope: 'Folder' }), builtIn('Role', 'owner')), subResource: 'status' })).allowed).toBe(true);
    expect((await judge({ ...pod, operation: 'CONNECT' })).allowed).toBe(true);
  });

  test('the operator creates, restores and deletes built-ins; its requests are not judged', async () => {
    const op: UserInfo = { username: OPERATOR, groups: ['system:serviceaccounts'] };
    expect((await judge(admission('CREATE', builtIn('Role', 'developer'), undefined, op))).allowed).toBe(true);
    expect((await judge(admission('DELETE', undefined, builtIn('Group', 'global'), op))).allowed).toBe(true);
    expect((await judge(admission('UPDATE', withSpec(builtIn('Role', 'owner'), { description: 'x' }), builtIn('Role', 'owner'), op))).allowed).toBe(true);
    // Another service account of the same namespace is not the operator.
    const other = await judge(admission('DELETE', undefined, builtIn('Group', 'global'), { username: 'system:serviceaccount:rpa-access-system:default' }));
    expect(other.allowed).toBe(false);
  });

  test('before the caches are synced nothing is judged blind: 503', async () => {
    const state: TenantStateSource = { ...staticStateSource({}), synced: () => false };
    expectRefused(await judge(admission('CREATE', cr('Group', 'g', {})), { state }), 503, 'Group finance/g', 'not synced');
  });

  test('the answer carries the request uid', async () => {
    const req = admission('CREATE', cr('Group', 'g', {}));
    expect((await judge(req)).uid).toBe(req.uid);
  });
});

describe('review: per-document rules (422 Invalid)', () => {
  test('a schema problem names the object and the field', async () => {
    const r = await create(cr('User', 'bad', { fullName: 'No Email', type: 'Alien' }));
    expectRefused(r, 422, 'User finance/bad: ', 'spec.email is required', 'spec.type: must be one of Human, Robot');
    expect(r.status?.reason).toBe('Invalid');
    expect(r.status?.details?.causes.length).toBe(2);
  });

  test('a Tenant role naming a folder resource', async () => {
    const r = await create(cr('Role', 'mixed', { scope: 'Tenant', permissions: [{ resource: 'Processes', actions: ['View'] }] }));
    expectRefused(r, 422, 'Role finance/mixed: spec.permissions[0].resource: Processes is a folder resource');
  });

  test('a folder deeper than 7 levels', async () => {
    const r = await create(cr('RoleBinding', 'deep', { roleRef: { name: 'invoice-viewer' }, folder: 'a/b/c/d/e/f/g/h', subjects: [{ kind: 'User', name: 'ann' }] }));
    expectRefused(r, 422, 'RoleBinding finance/deep: spec.folder');
  });
});

describe('review: built-ins and reserved names (403)', () => {
  test('the global group cannot be deleted or changed', async () => {
    const del = await remove(builtIn('Group', 'global'));
    expectRefused(del, 403, 'Group finance/global: the global group cannot be deleted');
    expect(del.status?.reason).toBe('Forbidden');
    expect(del.status?.details?.causes[0]?.reason).toBe('ProtectedGlobalGroup');
    expectRefused(await update(withSpec(builtIn('Group', 'global'), { displayName: 'Everyone' }), builtIn('Group', 'global')), 403, 'Group finance/global: the global group cannot be changed');
  });

  test('built-in roles cannot be deleted or changed', async () => {
    expectRefused(await remove(builtIn('Role', 'owner')), 403, 'Role finance/owner: built-in role owner cannot be deleted');
    const r = await update(withSpec(builtIn('Role', 'analyst'), { permissions: [{ resource: 'Billing', actions: ['Edit'] }] }), builtIn('Role', 'analyst'));
    expectRefused(r, 403, 'Role finance/analyst: built-in role analyst cannot be changed');
    expect(r.status?.details?.causes[0]?.reason).toBe('BuiltInRole');
  });

  test('nobody but the operator creates a reserved name, even with the built-in definition', async () => {
    expectRefused(await create(builtIn('Role', 'administrator')), 403, 'Role finance/administrator: the name administrator is reserved');
    expectRefused(await create(cr('Role', 'owner', { scope: 'Tenant' })), 403, 'Role finance/owner: the name owner is reserved');
    expectRefused(await create(builtIn('Group', 'global')), 403, 'Group finance/global: the name global is reserved');
    // `owner` is reserved for Roles only: a Group may be called owner.
    expect((await create(cr('Group', 'owner', {}))).allowed).toBe(true);
  });

  test('metadata edits of a built-in pass, but it keeps its label and cannot be paused', async () => {
    const role = builtIn('Role', 'developer');
    const annotated = { ...role, metadata: { ...role.metadata, annotations: { note: 'ours' }, finalizers: ['rpa-access.io/store'] } };
    expect((await update(annotated, role)).allowed).toBe(true);
    // Re-stating the same spec with keys in another order is no change.
    const reordered = { ...role, spec: Object.fromEntries(Object.entries(role.spec as object).reverse()) };
    expect((await update(reordered, role)).allowed).toBe(true);
    const unlabelled = { ...role, metadata: { ...role.metadata, labels: {} } };
    expectRefused(await update(unlabelled, role), 403, 'Role finance/developer: built-in role developer cannot be changed: the label rpa-access.io/built-in must stay "true"');
    const paused = { ...role, metadata: { ...role.metadata, annotations: { 'rpa-access.io/paused': 'true' } } };
    expectRefused(await update(paused, role), 403, 'built-in role developer cannot be paused');
  });
});

describe('review: cross-object rules, planned against the cached tenant (403)', () => {
  test('at most one owner per tenant', async () => {
    const second = cr('RoleBinding', 'owner-2', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] });
    const r = await create(second);
    expectRefused(r, 403, 'RoleBinding finance/owner-2: at most one owner per tenant: RoleBinding finance/owner already grants owner');
    expect(r.status?.details?.causes.map((c) => c.reason)).toEqual(['SingleOwner']);
  });

  test('the owner binding has exactly one User subject', async () => {
    const two = withSpec(ownerBinding, { subjects: [{ kind: 'User', name: 'john' }, { kind: 'User', name: 'ann' }] });
    expectRefused(await update(two, ownerBinding), 403, 'RoleBinding finance/owner: the owner role is held by exactly one User');
    const toGroup = withSpec(ownerBinding, { subjects: [{ kind: 'Group', name: 'ops' }] });
    expectRefused(await update(toGroup, ownerBinding), 403, 'exactly one subject of kind User');
  });

  test('an explicit owner or administrator cannot be deleted or deactivated', async () => {
    expectRefused(await remove(jane), 403, 'User finance/jane: cannot be deleted: holds administrator through the explicit RoleBinding finance/jane-admin');
    expectRefused(await update(withSpec(jane, { active: false }), jane), 403, 'User finance/jane: cannot be deactivated');
    expectRefused(await remove(john), 403, 'User finance/john: cannot be deleted: holds owner');
    // Without such a binding, deleting and deactivating are fine.
    expect((await remove(ann)).allowed).toBe(true);
    expect((await update(withSpec(ann, { active: false }), ann)).allowed).toBe(true);
    // Removing the binding first is the way.
    expect((await remove(janeAdmin)).allowed).toBe(true);
  });

  test('roleRef is immutable', async () => {
    const r = await update(withSpec(opsFolder, { roleRef: { name: 'folder-viewer' } }), opsFolder);
    expectRefused(r, 403, 'RoleBinding finance/ops-folder: spec.roleRef is immutable (was invoice-viewer, now folder-viewer)');
    // Even when the old object was itself invalid (so not in the cache's tenant state).
    const invalidOld = withSpec(opsFolder, { folder: '' });
    expectRefused(await update(withSpec(opsFolder, { roleRef: { name: 'folder-viewer' } }), invalidOld), 403, 'spec.roleRef is immutable');
  });

  test('scope: a Folder role needs a folder, a Tenant role forbids one, a role cannot change scope under a binding', async () => {
    expectRefused(await create(cr('RoleBinding', 'no-folder', { roleRef: { name: 'invoice-viewer' }, subjects: [{ kind: 'User', name: 'ann' }] })), 403,
      'RoleBinding finance/no-folder: role invoice-viewer is a Folder role: spec.folder is required');
    expectRefused(await create(cr('RoleBinding', 'analyst-a', { roleRef: { name: 'analyst' }, folder: 'A', subjects: [{ kind: 'User', name: 'ann' }] })), 403,
      'role analyst is a Tenant role: spec.folder is forbidden');
    expectRefused(await update(withSpec(folderRole, { scope: 'Tenant', permissions: [{ resource: 'Audit', actions: ['View'] }] }), folderRole), 403,
      'Role finance/invoice-viewer: scope cannot become Tenant while RoleBinding finance/ops-folder binds it to folder Finance');
  });

  test('emails are unique in a tenant, case-insensitive', async () => {
    expectRefused(await create(cr('User', 'john2', { email: 'JOHN@example.com' })), 403,
      'User finance/john2: email JOHN@example.com is already used by User finance/john');
    expectRefused(await update(withSpec(ann, { email: 'Jane@Example.com' }), ann), 403, 'User finance/ann: email Jane@Example.com is already used');
  });

  test('an ownership transfer (changing the owner binding\'s subject) is allowed', async () => {
    const r = await update(withSpec(ownerBinding, { subjects: [{ kind: 'User', name: 'ann' }] }), ownerBinding);
    expect(r.allowed).toBe(true);
  });

  test('a change the rules accept is allowed', async () => {
    expect((await create(cr('User', 'mary', { email: 'mary@example.com', groups: ['ops'] }))).allowed).toBe(true);
    expect((await update(withSpec(opsFolder, { folder: 'Finance/Invoices' }), opsFolder)).allowed).toBe(true);
    expect((await remove(opsFolder)).allowed).toBe(true);
  });
});

describe('review: what is not blamed on a request', () => {
  // A second owner binding and a duplicate email, admitted while the webhook was down.
  const rogue = cr('RoleBinding', 'rogue-owner', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] });
  const dup = cr('User', 'dup', { email: 'ann@example.com' });
  const objects = [...BASE, rogue, dup];

  test('a violation already there, on another object, does not block unrelated changes', async () => {
    expect((await create(cr('Group', 'new-group', {}), { objects })).allowed).toBe(true);
    expect((await remove(opsFolder, { objects })).allowed).toBe(true);
  });

  test('a change of the offending object itself must fix it', async () => {
    expectRefused(await update(withSpec(rogue, { expiresAt: '2030-01-01T00:00:00Z' }), rogue, { objects }), 403, 'RoleBinding finance/rogue-owner: at most one owner');
  });

  test('metadata-only updates (a finalizer removed, a label) are never judged', async () => {
    const withFinalizer = { ...rogue, metadata: { ...rogue.metadata, finalizers: ['rpa-access.io/store'] } };
    expect((await update(rogue, withFinalizer, { objects })).allowed).toBe(true);
  });

  test('deletes in a terminating namespace pass, built-ins and protected holders included', async () => {
    const opts = { terminating: [NS] };
    expect((await remove(builtIn('Group', 'global'), opts)).allowed).toBe(true);
    expect((await remove(builtIn('Role', 'owner'), opts)).allowed).toBe(true);
    expect((await remove(jane, opts)).allowed).toBe(true);
    // Creates and changes there are still judged.
    expectRefused(await create(builtIn('Role', 'owner'), opts), 403, 'reserved');
  });

  test('an object already being deleted may be deleted again', async () => {
    const deleting = { ...jane, metadata: { ...jane.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    expect((await remove(deleting)).allowed).toBe(true);
  });
});

describe('review: escalation check', () => {
  const adminFor = (who: string, name = `${who}-admin`) => cr('RoleBinding', name, { roleRef: { name: 'administrator' }, subjects: [{ kind: 'User', name: who }] });

  test('granting administrator without bind is refused, naming the verb, the role and the namespace', async () => {
    const checker = new FakeChecker(false);
    const r = await create(adminFor('ann'), { escalation: checker });
    expectRefused(r, 403);
    expect(r.status?.message).toBe(
      `RoleBinding finance/ann-admin: binding role administrator requires the 'bind' verb on roles.rpa-access.io "administrator" in namespace finance (escalation check)`,
    );
    expect(r.status?.details?.causes[0]?.reason).toBe('Escalation');
    expect(checker.calls).toEqual([{ user: ALICE, namespace: NS, role: 'administrator' }]);
  });

  test('with bind it passes; folder roles need none by default', async () => {
    expect((await create(adminFor('ann'), { escalation: new FakeChecker(true) })).allowed).toBe(true);
    const checker = new FakeChecker(false);
    const folder = cr('RoleBinding', 'ann-a', { roleRef: { name: 'automation-user' }, folder: 'A', subjects: [{ kind: 'User', name: 'ann' }] });
    expect((await create(folder, { escalation: checker })).allowed).toBe(true);
    expect(checker.calls).toEqual([]);
    // `*` guards every role.
    expectRefused(await create(folder, { escalation: checker, bindCheckRoles: ['*'] }), 403, 'binding role automation-user requires');
  });

  test('an update needs bind only when it hands the role to someone else', async () => {
    const checker = new FakeChecker(false);
    const moreTime = withSpec(janeAdmin, { expiresAt: '2030-01-01T00:00:00Z' });
    expect((await update(moreTime, janeAdmin, { escalation: checker })).allowed).toBe(true);
    expectRefused(await update(withSpec(janeAdmin, { subjects: [{ kind: 'User', name: 'ann' }] }), janeAdmin, { escalation: checker }), 403, 'escalation check');
    // An ownership transfer is a change of subject: it needs bind on owner.
    expectRefused(await update(withSpec(ownerBinding, { subjects: [{ kind: 'User', name: 'ann' }] }), ownerBinding, { escalation: checker }), 403, 'binding role owner requires');
    expect(roleToBind('DELETE', undefined, janeAdmin, ['administrator'])).toBeUndefined();
  });

  test('rules first: a refused binding is refused for the rule, without asking the API server', async () => {
    const checker = new FakeChecker(true);
    const second = cr('RoleBinding', 'owner-2', { roleRef: { name: 'owner' }, subjects: [{ kind: 'User', name: 'ann' }] });
    expectRefused(await create(second, { escalation: checker }), 403, 'at most one owner');
    expect(checker.calls).toEqual([]);
  });

  test('fails closed: a checker error or no checker refuses with 500', async () => {
    expectRefused(await create(adminFor('ann'), { escalation: new FakeChecker(new Error('SubjectAccessReview failed: HTTP 503')) }), 500, 'escalation check could not be made', 'HTTP 503');
    const state = staticStateSource({ [NS]: BASE });
    expectRefused(await review(admission('CREATE', adminFor('ann')), { state, operatorUsernames: [OPERATOR] }), 500, 'no escalation checker');
  });

  test('the message format', () => {
    expect(escalationMessage('finance', 'x', 'owner')).toBe(`RoleBinding finance/x: binding role owner requires the 'bind' verb on roles.rpa-access.io "owner" in namespace finance (escalation check)`);
  });
});

describe('review: warnings for dangling references', () => {
  test('a binding of a role that does not exist is allowed, with a warning', async () => {
    const r = await create(cr('RoleBinding', 'later', { roleRef: { name: 'not-yet' }, subjects: [{ kind: 'User', name: 'ann' }] }));
    expect(r.allowed).toBe(true);
    expect(r.warnings).toEqual([expect.stringContaining('RoleBinding finance/later: Role "not-yet" does not exist in tenant finance')]);
  });

  test('deleting a role warns about the bindings it leaves granting nothing', async () => {
    const r = await remove(folderRole);
    expect(r.allowed).toBe(true);
    expect(r.warnings).toEqual([expect.stringContaining('RoleBinding finance/ops-folder: Role "invoice-viewer" does not exist')]);
  });

  test('no warning when everything resolves', async () => {
    expect((await create(cr('User', 'mary', { email: 'mary@example.com', groups: ['ops'] }))).warnings).toBeUndefined();
  });
});

describe('AdmissionReview parsing', () => {
  const ok = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'CREATE', userInfo: { username: 'x' } } };
  test.each([
    [null, 'JSON AdmissionReview object'],
    [[], 'JSON AdmissionReview object'],
    [{ ...ok, apiVersion: 'v1' }, 'apiVersion'],
    [{ ...ok, kind: 'Pod' }, 'kind must be AdmissionReview'],
    [{ ...ok, request: undefined }, 'request is required'],
    [{ ...ok, request: { ...ok.request, uid: '' } }, 'request.uid'],
    [{ ...ok, request: { ...ok.request, operation: 'PATCH' } }, 'request.operation'],
    [{ ...ok, request: { ...ok.request, userInfo: 'x' } }, 'request.userInfo'],
    [{ ...ok, request: { ...ok.request, name: 3 } }, 'request.name'],
  ])('%j is refused', (body, why) => {
    const r = parseAdmissionReview(body);
    expect('error' in r && r.error).toContain(why);
  });
  test('a good one, and a missing userInfo becomes empty', () => {
    expect(parseAdmissionReview(ok)).toMatchObject({ apiVersion: 'admission.k8s.io/v1', request: { uid: 'u' } });
    const { userInfo: _, ...noUser } = ok.request;
    expect(parseAdmissionReview({ ...ok, request: noUser })).toMatchObject({ request: { userInfo: {} } });
  });
});

describe('certificates', () => {
  const hosts = webhookHosts('rpa-access-webhook', 'rpa-access-system');

  test('the serving names: the Service, its DNS forms, and loopback', () => {
    expect(hosts).toEqual([
      'rpa-access-webhook.rpa-access-system.svc', 'rpa-access-webhook.rpa-access-system.svc.cluster.local',
      'rpa-access-webhook.rpa-access-system', 'rpa-access-webhook', 'localhost', '127.0.0.1',
    ]);
  });

  test('a generated bundle checks out; renewals keep the CA; a wrong piece is found', async () => {
    const b = await generateCertificates({ hosts });
    expect(checkBundle(b, hosts, 30 * 86_400_000)).toEqual({ ok: true });
    expect(checkBundle(b, [...hosts, 'other.example'], 0)).toMatchObject({ ok: false, keepCa: true, why: expect.stringContaining('other.example') });
    expect(checkBundle(b, hosts, 400 * 86_400_000)).toMatchObject({ ok: false, keepCa: true, why: expect.stringContaining('expires') });
    const renewed = await issueServingCertificate(b, { hosts: [...hosts, 'other.example'] });
    expect(renewed.caCert).toBe(b.caCert);
    expect(checkBundle(renewed, [...hosts, 'other.example'], 0)).toEqual({ ok: true });
    expect(checkBundle({ ...b, key: renewed.key }, hosts, 0)).toMatchObject({ ok: false, keepCa: true, why: 'tls.key does not match tls.crt' });
    const other = await generateCertificates({ hosts });
    expect(checkBundle({ ...b, caCert: other.caCert, caKey: other.caKey }, hosts, 0)).toMatchObject({ ok: false, keepCa: true, why: expect.stringContaining('not signed by the CA') });
    expect(checkBundle({ ...b, caKey: other.caKey }, hosts, 0)).toMatchObject({ ok: false, keepCa: false });
    expect(checkBundle({ cert: b.cert, key: b.key }, hosts, 0)).toMatchObject({ ok: false, keepCa: false, why: 'no CA' });
    expect(checkBundle({ ...b, caCert: b.cert }, hosts, 0)).toMatchObject({ ok: false, keepCa: false, why: 'ca.crt is not a CA certificate' });
  });

  test('a certificate directory is read, and a rotated pair is picked up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rpa-access-certs-'));
    try {
      const a = await generateCertificates({ hosts });
      writeFileSync(join(dir, 'tls.crt'), a.cert);
      writeFileSync(join(dir, 'tls.key'), a.key);
      const source = new DirectoryCertificates(dir, { pollMs: 50 });
      expect((await source.start()).cert).toBe(a.cert);
      const seen: string[] = [];
      source.onChange((c) => seen.push(c.cert));
      const b = await generateCertificates({ hosts });
      writeFileSync(join(dir, 'tls.crt'), b.cert); // half-rotated: the old key does not match
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual([]);
      writeFileSync(join(dir, 'tls.key'), b.key);
      for (let i = 0; i < 40 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual([b.cert]);
      source.stop();
      await expect(new DirectoryCertificates(join(dir, 'missing')).start()).rejects.toThrow(/expected tls.crt and tls.key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the HTTPS server', () => {
  let server: WebhookServer;
  let port: number;
  let ca: string;
  let judged: AdmissionRequest[] = [];
  let counted: string[] = [];

  beforeAll(async () => {
    const certs = await generateCertificates({ hosts: ['localhost', '127.0.0.1'] });
    ca = certs.caCert;
    server = new WebhookServer({
      certificate: certs,
      maxBodyBytes: 64 * 1024,
      onReview: (outcome) => counted.push(outcome),
      judge: async (req) => {
        judged.push(req);
        if (req.name === 'explode') throw new Error('boom');
        return { uid: req.uid, allowed: req.name !== 'refuse', ...(req.name === 'refuse' ? { status: { code: 403, reason: 'Forbidden', message: 'no' } } : {}) };
      },
    });
    port = await server.listen(0, '127.0.0.1');
  });
  afterAll(() => server.close());
  beforeEach(() => {
    judged = [];
    counted = [];
  });

  function post(path: string, body: string | Buffer, opts: { method?: string; contentType?: string; trust?: string } = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, method: opts.method ?? 'POST', ca: opts.trust ?? ca, agent: false, headers: { 'Content-Type': opts.contentType ?? 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const reviewBody = (name: string, apiVersion = 'admission.k8s.io/v1') => JSON.stringify({
    apiVersion, kind: 'AdmissionReview',
    request: { uid: `uid-${name}`, operation: 'CREATE', name, namespace: NS, kind: { group: 'rpa-access.io', version: 'v1alpha1', kind: 'Group' }, userInfo: { username: 'alice' }, object: {} },
  });

  test('POST /validate: an AdmissionReview in, one out, with the same uid and apiVersion', async () => {
    const r = await post('/validate', reviewBody('fine'));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'uid-fine', allowed: true } });
    const refused = JSON.parse((await post('/validate?timeout=5s', reviewBody('refuse', 'admission.k8s.io/v1beta1'))).body);
    expect(refused).toMatchObject({ apiVersion: 'admission.k8s.io/v1beta1', response: { uid: 'uid-refuse', allowed: false, status: { code: 403 } } });
  });

  test('POST /mutate: the finalizer patched in at create, nothing judged, nothing counted', async () => {
    const body = JSON.parse(reviewBody('fine'));
    body.request.object = { metadata: { name: 'fine', namespace: NS } };
    const r = await post('/mutate', JSON.stringify(body));
    expect(r.status).toBe(200);
    const { response } = JSON.parse(r.body);
    expect(response).toMatchObject({ uid: 'uid-fine', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(response.patch, 'base64').toString())).toEqual([{ op: 'add', path: '/metadata/finalizers', value: ['rpa-access.io/store'] }]);
    expect(judged).toEqual([]);
    expect(counted).toEqual([]);
    expect((await post('/mutate', '{not json')).status).toBe(400);
    await post('/validate', reviewBody('fine'));
    expect(counted).toEqual(['allowed']);
  });

  test('a judging failure is a refusal with code 500, not a crash', async () => {
    const r = await post('/validate', reviewBody('explode'));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).response).toMatchObject({ uid: 'uid-explode', allowed: false, status: { code: 500, message: expect.stringContaining('boom') } });
    expect((await post('/validate', reviewBody('fine'))).status).toBe(200);
  });

  test('malformed bodies are 400, never judged', async () => {
    expect((await post('/validate', '{not json')).status).toBe(400);
    const notReview = await post('/validate', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }));
    expect(notReview.status).toBe(400);
    expect(JSON.parse(notReview.body).message).toContain('not an AdmissionReview');
    expect(judged).toEqual([]);
  });

  test('over the body limit: 413', async () => {
    const big = Buffer.alloc(100 * 1024, 'a');
    expect((await post('/validate', big)).status).toBe(413);
    expect((await post('/validate', reviewBody('fine'))).status).toBe(200);
  });

  test('other paths, methods and content types', async () => {
    expect((await post('/mutating', reviewBody('fine'))).status).toBe(404);
    expect((await post('/mutate', '', { method: 'GET' })).status).toBe(405);
    expect((await post('/validate', '', { method: 'GET' })).status).toBe(405);
    expect((await post('/validate', reviewBody('fine'), { contentType: 'text/plain' })).status).toBe(415);
    expect((await post('/healthz', '', { method: 'GET' })).status).toBe(200);
  });

  test('a new certificate (rotation) is served to new connections', async () => {
    const next = await generateCertificates({ hosts: ['127.0.0.1'] });
    server.setCertificate(next);
    expect((await post('/validate', reviewBody('fine'), { trust: next.caCert })).status).toBe(200);
    await expect(post('/validate', reviewBody('fine'))).rejects.toThrow();
  });
});

describe('the finalizer at create (the mutating webhook)', () => {
  const request = (operation: AdmissionRequest['operation'], object: unknown, group = 'rpa-access.io'): AdmissionRequest =>
    ({ uid: 'u', operation, kind: { group, version: 'v1alpha1', kind: 'User' }, userInfo: ALICE, object });
  const patchOf = (response: AdmissionResponse) => (response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString()) : undefined);

  test('added to the finalizers a created object has, or as its only one', () => {
    expect(finalizerPatch(request('CREATE', cr('User', 'a', {})))).toEqual([{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
    expect(finalizerPatch(request('CREATE', cr('User', 'a', {}, { finalizers: ['example.com/keep'] })))).toEqual([{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]);
    expect(patchOf(mutate(request('CREATE', cr('User', 'a', {}))))).toEqual([{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
  });

  test('nothing else: already there, not a create, not ours, not an object: allowed unchanged', () => {
    for (const r of [
      request('CREATE', cr('User', 'a', {}, { finalizers: [FINALIZER] })),
      request('UPDATE', cr('User', 'a', {})),
      request('DELETE', undefined),
      request('CREATE', cr('User', 'a', {}), 'example.com'),
      request('CREATE', 'garbage'),
      request('CREATE', { metadata: { finalizers: 'not-a-list' } }),
    ]) {
      expect(finalizerPatch(r)).toBeUndefined();
      expect(mutate(r)).toEqual({ uid: 'u', allowed: true });
    }
  });
});

describe('options from the environment (rpa-access operator --webhook-port)', () => {
  test('the pod namespace, the service account, owner and administrator guarded', () => {
    expect(webhookOptionsFromEnv(9443, undefined, { POD_NAMESPACE: 'ops' })).toEqual({
      port: 9443, certDir: undefined, namespace: 'ops', configurationName: 'rpa-access-validating-webhook', mutatingConfigurationName: 'rpa-access-mutating-webhook',
      operatorUsernames: ['system:serviceaccount:ops:rpa-access-operator'], bindCheckRoles: ['owner', 'administrator'],
    });
    expect(webhookOptionsFromEnv(9443, '/certs', { RPA_ACCESS_BIND_CHECK_ROLES: '*' })).toMatchObject({
      namespace: 'rpa-access-system', certDir: '/certs', bindCheckRoles: ['*'],
    });
    expect(serviceAccountUsername('a')).toBe('system:serviceaccount:a:rpa-access-operator');
  });
});
