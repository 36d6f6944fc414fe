// Validation of one document (src/model/validate.ts): every kind of bad input is refused with
// one clear line per problem naming the field; good input comes back with its defaults.
import { API_VERSION_FULL } from '../../src/model/catalog.js';
import { validateDocument, withDefaults } from '../../src/model/validate.js';
import { doc } from '../support/fixtures.js';

const problems = (input: unknown, defaultNamespace?: string): string[] => validateDocument(input, defaultNamespace).problems;

const userDoc = (spec: Record<string, unknown>) => doc('User', 'ann', { email: 'ann@example.com', ...spec });
const bindingDoc = (spec: Record<string, unknown>) =>
  doc('RoleBinding', 'b', { roleRef: { name: 'folder-viewer' }, subjects: [{ kind: 'User', name: 'ann' }], folder: 'Finance', ...spec });
const roleDoc = (spec: Record<string, unknown>) => doc('Role', 'clerk', { scope: 'Folder', permissions: [{ resource: 'Jobs', actions: ['View'] }], ...spec });

const DNS_NAME = "must be a lowercase DNS-1123 name (a-z, 0-9, '-', '.')";
const FOLDER = 'must be a folder path of 1 to 7 non-empty segments like Finance/Invoices';
const TIME = 'must be an RFC 3339 time such as 2026-12-31T23:59:59Z';

/** Every bad input of this file, for the one-line check at the end. */
const seen: string[][] = [];
const bad = (input: unknown, defaultNamespace?: string): string[] => {
  const r = validateDocument(input, defaultNamespace);
  expect(r.document).toBeUndefined();
  expect(r.problems.length).toBeGreaterThan(0);
  seen.push(r.problems);
  return r.problems;
};

describe('valid documents', () => {
  test.each([
    ['User', userDoc({ fullName: 'Ann A', type: 'Robot', groups: ['ops', 'finance.clerks'], slackId: 'U1', teamsId: 't', language: 'pt-BR', notifications: { events: ['All'], channels: ['Slack'] } })],
    ['Group', doc('Group', 'ops', { displayName: 'Operations', description: 'Runs things' })],
    ['Group without spec fields', doc('Group', 'ops', {})],
    ['Folder role', roleDoc({ displayName: 'Clerk' })],
    ['Tenant role', doc('Role', 'user-admin', { scope: 'Tenant', permissions: [{ resource: 'Users', actions: ['View', 'Edit'] }] })],
    ['Role without permissions', doc('Role', 'empty', { scope: 'Tenant' })],
    ['RoleBinding with everything', bindingDoc({
      subjects: [{ kind: 'User', name: 'ann' }, { kind: 'Group', name: 'global' }], folder: 'Finance/Invoices Q1/2026',
      resources: [{ kind: 'Process', name: 'Invoice Bot' }, { kind: 'Robot', name: 'hr-01' }], environment: 'staging_2', expiresAt: '2026-12-31T23:59:59.5+01:00',
    })],
    ['Tenant RoleBinding', doc('RoleBinding', 'admins', { roleRef: { name: 'administrator' }, subjects: [{ kind: 'Group', name: 'admins' }] })],
    ['Kubernetes metadata and status', {
      ...doc('Group', 'ops', {}),
      metadata: { name: 'ops', namespace: 'finance', uid: 'u', resourceVersion: '12', generation: 3, labels: { a: 'b' }, annotations: { c: 'd' } },
      status: { conditions: [] },
    }],
    ['seven folder levels', bindingDoc({ folder: 'A/B/C/D/E/F/G' })],
  ])('%s', (_what, input) => {
    const r = validateDocument(input);
    expect(r.problems).toEqual([]);
    expect(r.document).toBeDefined();
  });

  test('the identity of the document is returned, valid or not', () => {
    expect(validateDocument(doc('Group', 'ops', {}))).toMatchObject({ kind: 'Group', namespace: 'finance', name: 'ops' });
    expect(validateDocument(doc('Group', 'ops', { colour: 'red' }))).toMatchObject({ kind: 'Group', namespace: 'finance', name: 'ops' });
  });

  test('the input is not modified', () => {
    const input = userDoc({});
    const copy = structuredClone(input);
    validateDocument(input);
    expect(input).toEqual(copy);
  });
});

describe('defaults', () => {
  test('a User gets type Human, active true, language en, concurrentExecution true', () => {
    const r = validateDocument(doc('User', 'ann', { email: 'ann@example.com' }));
    expect(r.document!.spec).toEqual({ email: 'ann@example.com', type: 'Human', active: true, language: 'en', concurrentExecution: true });
  });

  test('given values win over defaults', () => {
    const r = validateDocument(userDoc({ type: 'Robot', active: false, language: 'de', concurrentExecution: false }));
    expect(r.document!.spec).toMatchObject({ type: 'Robot', active: false, language: 'de', concurrentExecution: false });
  });

  test('notifications default to the Email channel', () => {
    const r = validateDocument(userDoc({ notifications: { events: ['TaskCompletion'] } }));
    expect(r.document!.spec).toMatchObject({ notifications: { events: ['TaskCompletion'], channels: ['Email'] } });
    const again = validateDocument(userDoc({ notifications: {} }));
    expect(again.document!.spec).toMatchObject({ notifications: { channels: ['Email'] } });
    // Defaults are fresh values, not one shared array.
    (r.document!.spec as { notifications: { channels: string[] } }).notifications.channels.push('Slack');
    expect(validateDocument(userDoc({ notifications: {} })).document!.spec).toMatchObject({ notifications: { channels: ['Email'] } });
  });

  test('defaultNamespace fills a missing namespace (like kubectl -n), never replaces one', () => {
    const noNs = { apiVersion: API_VERSION_FULL, kind: 'Group', metadata: { name: 'ops' }, spec: {} };
    expect(validateDocument(noNs, 'hr')).toMatchObject({ namespace: 'hr', problems: [] });
    expect(validateDocument(noNs, 'hr').document!.metadata.namespace).toBe('hr');
    expect(validateDocument(doc('Group', 'ops', {}, 'finance'), 'hr').namespace).toBe('finance');
  });

  test('withDefaults applies them to a bare spec, and leaves an invalid one alone', () => {
    expect(withDefaults('User', { email: 'a@example.com' })).toEqual({ email: 'a@example.com', type: 'Human', active: true, language: 'en', concurrentExecution: true });
    const invalid = { email: 5 };
    expect(withDefaults('User', invalid)).toBe(invalid);
  });
});

describe('refused: not a document', () => {
  test.each([null, undefined, 42, 'User', [], [userDoc({})], true])('%p', (input) => {
    expect(bad(input)).toEqual(['document must be a mapping with apiVersion, kind, metadata and spec']);
  });
});

describe('refused: wrong apiVersion or kind', () => {
  test.each([
    ['rpa-access.io/v1', '"rpa-access.io/v1"'],
    ['v1', '"v1"'],
    ['rbac.authorization.k8s.io/v1', '"rbac.authorization.k8s.io/v1"'],
    [undefined, 'null'],
    [1, '1'],
  ])('apiVersion %p', (apiVersion, shown) => {
    const r = validateDocument({ ...userDoc({}), apiVersion });
    expect(bad({ ...userDoc({}), apiVersion })).toEqual([`apiVersion must be rpa-access.io/v1alpha1 (got ${shown})`]);
    expect(r).toMatchObject({ kind: 'User', name: 'ann', namespace: 'finance' });
  });

  test.each([
    ['Team', '"Team"'],
    ['user', '"user"'],
    ['ClusterRole', '"ClusterRole"'],
    [undefined, 'null'],
  ])('kind %p', (kind, shown) => {
    expect(bad({ ...userDoc({}), kind })).toEqual([`kind must be one of User, Group, Role, RoleBinding (got ${shown})`]);
  });
});

describe('refused: missing fields', () => {
  test.each([
    ['metadata', { apiVersion: API_VERSION_FULL, kind: 'Group', spec: {} }, ['metadata is required']],
    ['spec', { apiVersion: API_VERSION_FULL, kind: 'Group', metadata: { name: 'ops', namespace: 'finance' } }, ['spec is required']],
    ['metadata.name', { apiVersion: API_VERSION_FULL, kind: 'Group', metadata: { namespace: 'finance' }, spec: {} }, ['metadata.name is required']],
    ['metadata.namespace', { apiVersion: API_VERSION_FULL, kind: 'Group', metadata: { name: 'ops' }, spec: {} }, ['metadata.namespace is required: a namespace is a tenant']],
    ['spec.email', doc('User', 'ann', { fullName: 'Ann' }), ['spec.email is required']],
    ['spec.scope', doc('Role', 'r', { permissions: [] }), ['spec.scope is required']],
    ['spec.roleRef and spec.subjects', doc('RoleBinding', 'b', {}), ['spec.roleRef is required', 'spec.subjects is required']],
    ['spec.roleRef.name', bindingDoc({ roleRef: {} }), ['spec.roleRef.name is required']],
    ['a subject kind', bindingDoc({ subjects: [{ name: 'ann' }] }), ['spec.subjects[0].kind is required']],
    ['a permission\'s actions', roleDoc({ permissions: [{ resource: 'Jobs' }] }), ['spec.permissions[0].actions is required']],
    ['a resource name', bindingDoc({ resources: [{ kind: 'Process' }] }), ['spec.resources[0].name is required']],
  ])('%s', (_what, input, expected) => {
    expect(bad(input)).toEqual(expected);
  });

  test('empty lists where one item is the least', () => {
    expect(bad(bindingDoc({ subjects: [] }))).toEqual(['spec.subjects: must NOT have fewer than 1 items']);
    expect(bad(roleDoc({ permissions: [{ resource: 'Jobs', actions: [] }] }))).toEqual(['spec.permissions[0].actions: must NOT have fewer than 1 items']);
    expect(bad(bindingDoc({ resources: [] }))).toEqual(['spec.resources: must NOT have fewer than 1 items']);
  });
});

describe('refused: unknown fields', () => {
  test.each([
    ['top level', { ...userDoc({}), extra: 1 }, 'extra: unknown field'],
    ['spec', userDoc({ colour: 'red' }), 'spec.colour: unknown field'],
    ['Group spec', doc('Group', 'ops', { members: ['ann'] }), 'spec.members: unknown field'],
    ['nested', userDoc({ notifications: { events: ['All'], sms: true } }), 'spec.notifications.sms: unknown field'],
    ['a subject', bindingDoc({ subjects: [{ kind: 'User', name: 'ann', namespace: 'hr' }] }), 'spec.subjects[0].namespace: unknown field'],
    ['roleRef, as Kubernetes RBAC writes it', bindingDoc({ roleRef: { kind: 'Role', name: 'folder-viewer' } }), 'spec.roleRef.kind: unknown field'],
    ['a permission', roleDoc({ permissions: [{ resource: 'Jobs', actions: ['View'], verbs: ['get'] }] }), 'spec.permissions[0].verbs: unknown field'],
    ['a key with a line break, quoted to keep one line', userDoc({ 'a\nb': 1 }), 'spec["a\\nb"]: unknown field'],
    ['a key with a dot, quoted', userDoc({ 'full.name': 'Ann' }), 'spec["full.name"]: unknown field'],
  ])('%s', (_what, input, expected) => {
    expect(bad(input)).toEqual([expected]);
  });
});

describe('refused: wrong types', () => {
  test.each([
    ['spec is a list', doc('Group', 'ops', []), 'spec: must be object'],
    ['spec is null', doc('Group', 'ops', null), 'spec: must be object'],
    ['metadata is a string', { ...doc('Group', 'ops', {}), metadata: 'ops' }, 'metadata: must be object'],
    ['metadata.name is a number', { ...doc('Group', 'ops', {}), metadata: { name: 5, namespace: 'finance' } }, 'metadata.name: must be string'],
    ['email is a number', userDoc({ email: 5 }), 'spec.email: must be string'],
    ['active is a string', userDoc({ active: 'yes' }), 'spec.active: must be boolean'],
    ['concurrentExecution is a number', userDoc({ concurrentExecution: 0 }), 'spec.concurrentExecution: must be boolean'],
    ['groups is a string', userDoc({ groups: 'ops' }), 'spec.groups: must be array'],
    ['subjects is a mapping', bindingDoc({ subjects: { kind: 'User', name: 'ann' } }), 'spec.subjects: must be array'],
    ['roleRef is a string', bindingDoc({ roleRef: 'folder-viewer' }), 'spec.roleRef: must be object'],
    ['a label value is a number', { ...doc('Group', 'ops', {}), metadata: { name: 'ops', namespace: 'finance', labels: { tier: 1 } } }, 'metadata.labels.tier: must be string'],
    ['a label value under a prefixed key', { ...doc('Group', 'ops', {}), metadata: { name: 'ops', namespace: 'finance', labels: { 'app.kubernetes.io/name': true } } }, 'metadata.labels["app.kubernetes.io/name"]: must be string'],
    ['expiresAt is a number', bindingDoc({ expiresAt: 1767225600 }), 'spec.expiresAt: must be string'],
    ['folder is a list', bindingDoc({ folder: ['Finance'] }), 'spec.folder: must be string'],
  ])('%s', (_what, input, expected) => {
    expect(bad(input)).toEqual([expected]);
  });
});

describe('refused: values outside an enum', () => {
  test.each([
    ['user type', userDoc({ type: 'Bot' }), 'spec.type: must be one of Human, Robot'],
    ['role scope', roleDoc({ scope: 'Global' }), 'spec.scope: must be one of Tenant, Folder'],
    ['action', roleDoc({ permissions: [{ resource: 'Jobs', actions: ['View', 'Run'] }] }), 'spec.permissions[0].actions[1]: must be one of View, Create, Edit, Delete'],
    ['subject kind', bindingDoc({ subjects: [{ kind: 'ServiceAccount', name: 'x' }] }), 'spec.subjects[0].kind: must be one of User, Group'],
    ['resource kind', bindingDoc({ resources: [{ kind: 'Workflow', name: 'x' }] }), 'spec.resources[0].kind: must be one of Process, Robot, Queue, Asset, Trigger, Machine, Package, Runner, Environment'],
    ['notification event', userDoc({ notifications: { events: ['Any'] } }), 'spec.notifications.events[0]: must be one of All, TaskCompletion, NewResultFile, NewBotRelease, NewErrorEvent, RunnerOffline'],
    ['notification channel', userDoc({ notifications: { channels: ['Pager'] } }), 'spec.notifications.channels[0]: must be one of Email, Slack, Teams'],
  ])('%s', (_what, input, expected) => {
    expect(bad(input)).toEqual([expected]);
  });

  test('a resource outside the catalog names the catalog', () => {
    const [p] = bad(roleDoc({ permissions: [{ resource: 'Robotz', actions: ['View'] }] }));
    expect(p).toMatch(/^spec\.permissions\[0\]\.resource: must be one of Users, Groups, Roles, .*, Processes, Jobs, .*, Deployments$/);
  });
});

describe('refused: bad folder paths', () => {
  test.each([
    ['empty', '', 'is empty'],
    ['an empty segment', 'Finance//Invoices', 'has an empty segment'],
    ['a leading slash', '/Finance', 'has an empty segment'],
    ['a trailing slash', 'Finance/', 'has an empty segment'],
    ['8 levels', 'A/B/C/D/E/F/G/H', 'has 8 levels'],
    ['a segment starting with a space', 'Finance/ Invoices', 'has a segment starting or ending with a blank'],
    ['a segment ending with a space', 'Finance /Invoices', 'has a segment starting or ending with a blank'],
    ['only a slash', '/', 'has an empty segment'],
    ['a tab', 'Finance\tOld/\tX', 'holds the control or format character U+0009'],
  ])('%s', (_what, folder, why) => {
    expect(bad(bindingDoc({ folder }))).toEqual([`spec.folder: ${FOLDER}: it ${why}`]);
  });
});

describe('refused: bad expiresAt', () => {
  test.each([
    'tomorrow',
    '2026-12-31',
    '2026-12-31T23:59:59',
    '2026-13-01T00:00:00Z',
    '2026-02-30T00:00:00Z',
    '2026-12-31T24:00:00Z',
    '31/12/2026 23:59',
    '',
  ])('%p', (expiresAt) => {
    expect(bad(bindingDoc({ expiresAt }))).toEqual([`spec.expiresAt: ${TIME}`]);
  });
});

describe('refused: invalid names', () => {
  test.each(['John', 'john_smith', '-john', 'john-', 'john smith', '', 'a'.repeat(254), 'jöhn'])('object name %p', (name) => {
    const ps = bad(doc('Group', name, {}));
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatch(/^metadata\.name: must /);
  });

  test.each(['Finance', 'fin.ance', 'fin_ance', '-fin'])('namespace %p', (namespace) => {
    expect(bad(doc('Group', 'ops', {}, namespace))).toEqual([
      "metadata.namespace: must be a lowercase DNS-1123 label (a-z, 0-9, '-'), as a Kubernetes namespace",
    ]);
  });

  test.each([
    ['a subject', bindingDoc({ subjects: [{ kind: 'User', name: 'John Smith' }] }), `spec.subjects[0].name: ${DNS_NAME}`],
    ['roleRef', bindingDoc({ roleRef: { name: 'Folder Viewer' } }), `spec.roleRef.name: ${DNS_NAME}`],
    ['a group of a user', userDoc({ groups: ['ops', 'Ops'] }), `spec.groups[1]: ${DNS_NAME}`],
  ])('%s', (_what, input, expected) => {
    expect(bad(input)).toEqual([expected]);
  });

  test('other malformed values', () => {
    expect(bad(userDoc({ email: 'ann' }))).toEqual(['spec.email: must be a valid email']);
    expect(bad(userDoc({ language: 'english1' }))).toEqual(['spec.language: must be a BCP 47 language tag such as en or pt-BR']);
    expect(bad(bindingDoc({ environment: 'my env' }))).toEqual([
      "spec.environment: must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit, e.g. staging",
    ]);
    expect(bad(userDoc({ fullName: 'x'.repeat(257) }))).toEqual(['spec.fullName: must NOT have more than 256 characters']);
    expect(bad(bindingDoc({ resources: [{ kind: 'Process', name: '' }] }))).toEqual(['spec.resources[0].name: must NOT have fewer than 1 characters']);
  });
});

describe('refused: a role naming resources outside its scope', () => {
  test('a Tenant role naming a folder resource', () => {
    expect(bad(doc('Role', 'r', { scope: 'Tenant', permissions: [{ resource: 'Users', actions: ['View'] }, { resource: 'Jobs', actions: ['Create'] }] }))).toEqual([
      'spec.permissions[1].resource: Jobs is a folder resource; a Tenant role may name only tenant resources',
    ]);
  });

  test('a Folder role naming tenant resources, each reported', () => {
    expect(bad(doc('Role', 'r', { scope: 'Folder', permissions: [{ resource: 'Users', actions: ['View'] }, { resource: 'Billing', actions: ['Edit'] }] }))).toEqual([
      'spec.permissions[0].resource: Users is a tenant resource; a Folder role may name only folder resources',
      'spec.permissions[1].resource: Billing is a tenant resource; a Folder role may name only folder resources',
    ]);
  });

  test('a document under a built-in name is left to the planner, which compares it with the built-in', () => {
    expect(problems(doc('Role', 'developer', { scope: 'Tenant', permissions: [{ resource: 'Jobs', actions: ['Create'] }] }))).toEqual([]);
  });
});

describe('every problem at once, each on one clear line', () => {
  test('a document with many problems lists them all', () => {
    const ps = bad({ ...doc('User', 'A_B', { email: 5, type: 'Bot', active: 'yes', extra: 1 }), metadata: { name: 'A_B' }, foo: 1 });
    expect(ps).toEqual([
      'foo: unknown field',
      `metadata.name: ${DNS_NAME}`,
      'spec.extra: unknown field',
      'spec.email: must be string',
      'spec.type: must be one of Human, Robot',
      'spec.active: must be boolean',
      'metadata.namespace is required: a namespace is a tenant',
    ]);
  });

  test('the same problem is reported once', () => {
    const ps = bad(userDoc({ email: 'ann', groups: ['A', 'A'] }));
    expect(ps).toEqual(['spec.email: must be a valid email', `spec.groups[0]: ${DNS_NAME}`, `spec.groups[1]: ${DNS_NAME}`]);
    expect(new Set(ps).size).toBe(ps.length);
  });

  test('every message of this file is one non-empty line, naming a field or the document', () => {
    expect(seen.length).toBeGreaterThan(50);
    for (const list of seen) {
      for (const p of list) {
        expect(p.length).toBeGreaterThan(0);
        expect(p.length).toBeLessThan(300);
        expect(p).not.toMatch(/[\r\n]/);
        expect(p).toMatch(/^(document |apiVersion |kind |metadata|spec|[a-z]+: unknown field)/);
        expect(p).not.toMatch(/undefined|\[object Object\]/);
      }
    }
  });
});
