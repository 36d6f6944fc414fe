/**
 * `rpa-access validate` as a real process: every kind of bad input, each reported once, at
 * `PATH:LINE: Kind namespace/name: message`, exit 1; the examples are valid, exit 0.
 */
import fs from 'node:fs';
import { EXAMPLES, expectNoStackTrace, rpa, SPAWN_TIMEOUT, writeTree } from './helpers.js';

const API = 'apiVersion: rpa-access.io/v1alpha1';
const lines = (...l: string[]) => `${l.join('\n')}\n`;

/** File name -> content; line numbers in the comments are what the problems must name. */
const FILES: Record<string, string> = {
  // Not YAML at all, in the second document: the error line is the file's line 7.
  'a-syntax.yaml': lines(
    API, //                 1
    'kind: Group', //        2
    'metadata: {name: fine, namespace: t1}', // 3
    'spec: {}', //           4
    '---', //                5
    API, //                  6
    'kind: Group: broken', // 7  <- bad indentation of a mapping entry
    'metadata: {name: x, namespace: t1}',
  ),
  'b-not-a-mapping.yaml': lines('just some text'),
  'c-wrong-kinds.yaml': lines(
    'apiVersion: rpa-access.io/v1', // 1
    'kind: User',
    'metadata: {name: ann, namespace: t1}',
    'spec: {email: ann@example.com}',
    '---', //                          5
    'apiVersion: v1', //               6
    'kind: Namespace',
    'metadata: {name: t1}',
    '---', //                          9
    API, //                            10
    'kind: Robot',
    'metadata: {name: r, namespace: t1}',
    'spec: {}',
  ),
  'd-fields.yaml': lines(
    API, //                                   1: missing email, unknown field, wrong types
    'kind: User',
    'metadata: {name: bob, namespace: t1}',
    'spec:',
    '  colour: blue',
    '  active: "yes"',
    '  groups: ops',
    '---', //                                 8
    API, //                                   9: missing subjects and roleRef.name
    'kind: RoleBinding',
    'metadata: {name: rb, namespace: t1}',
    'spec:',
    '  roleRef: {}',
    '---', //                                 14
    API, //                                   15: unknown permissions
    'kind: Role',
    'metadata: {name: starter, namespace: t1}',
    'spec:',
    '  scope: Folder',
    '  permissions:',
    '    - {resource: Robotz, actions: [View]}',
    '    - {resource: Jobs, actions: [Run]}',
    '---', //                                 23
    API, //                                   24: a Tenant role naming a folder resource
    'kind: Role',
    'metadata: {name: tenant-jobs, namespace: t1}',
    'spec:',
    '  scope: Tenant',
    '  permissions: [{resource: Jobs, actions: [Create]}]',
    '---', //                                 30
    API, //                                   31: no namespace, a bad name
    'kind: Group',
    'metadata: {name: Ops_Team}',
    'spec: {}',
  ),
  'sub/e-cross.yaml': lines(
    API, //                                   1
    'kind: User',
    'metadata: {name: ann, namespace: t2}',
    'spec: {email: ann@example.com}',
    '---', //                                 5
    API, //                                   6: same email, other case
    'kind: User',
    'metadata: {name: ann2, namespace: t2}',
    'spec: {email: ANN@example.com}',
    '---', //                                 10
    API, //                                   11
    'kind: RoleBinding',
    'metadata: {name: owner-1, namespace: t2}',
    'spec: {roleRef: {name: owner}, subjects: [{kind: User, name: ann}]}',
    '---', //                                 15
    API, //                                   16: a second owner
    'kind: RoleBinding',
    'metadata: {name: owner-2, namespace: t2}',
    'spec: {roleRef: {name: owner}, subjects: [{kind: User, name: ann2}]}',
    '---', //                                 20
    API, //                                   21: a Tenant role bound in a folder
    'kind: RoleBinding',
    'metadata: {name: admins, namespace: t2}',
    'spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: ann}], folder: Finance}',
    '---', //                                 25
    API, //                                   26: a Folder role bound tenant-wide
    'kind: RoleBinding',
    'metadata: {name: users, namespace: t2}',
    'spec: {roleRef: {name: automation-user}, subjects: [{kind: Group, name: global}]}',
    '---', //                                 30
    API, //                                   31: a built-in role changed
    'kind: Role',
    'metadata: {name: analyst, namespace: t2}',
    'spec: {scope: Tenant, permissions: [{resource: Users, actions: [View, Delete]}]}',
    '---', //                                 35
    API, //                                   36: a folder too deep
    'kind: RoleBinding',
    'metadata: {name: deep, namespace: t2}',
    'spec: {roleRef: {name: folder-viewer}, subjects: [{kind: User, name: ann}], folder: A/B/C/D/E/F/G/H}',
  ),
  'sub/f-dup.yml': lines(
    '# the same user again, in another file', // 1
    API, //                                       2
    'kind: User',
    'metadata: {name: ann, namespace: t2}',
    'spec: {email: other@example.com}',
  ),
};

test('every kind of bad input: one line per problem, at PATH:LINE, exit 1', async () => {
  const dir = writeTree(FILES);
  const r = await rpa(['validate', '-f', '.'], { cwd: dir });
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expectNoStackTrace(r.stderr);
  expect(r.stderr.trimEnd().split('\n')).toEqual([
    'a-syntax.yaml:7: invalid YAML: bad indentation of a mapping entry (column 12)',
    'b-not-a-mapping.yaml:1: document must be a mapping with apiVersion, kind, metadata and spec',
    'c-wrong-kinds.yaml:1: User t1/ann: apiVersion must be rpa-access.io/v1alpha1 (got "rpa-access.io/v1")',
    'c-wrong-kinds.yaml:6: Namespace t1: not an rpa-access document (apiVersion v1, kind Namespace): only rpa-access.io/v1alpha1 User, Group, Role, RoleBinding are read; apply other objects with kubectl, from other paths',
    'c-wrong-kinds.yaml:10: Robot t1/r: kind must be one of User, Group, Role, RoleBinding (got "Robot")',
    'd-fields.yaml:1: User t1/bob: spec.email is required',
    'd-fields.yaml:1: User t1/bob: spec.colour: unknown field',
    'd-fields.yaml:1: User t1/bob: spec.active: must be boolean',
    'd-fields.yaml:1: User t1/bob: spec.groups: must be array',
    'd-fields.yaml:9: RoleBinding t1/rb: spec.subjects is required',
    'd-fields.yaml:9: RoleBinding t1/rb: spec.roleRef.name is required',
    expect.stringMatching(/^d-fields\.yaml:15: Role t1\/starter: spec\.permissions\[0\]\.resource: must be one of Users, Groups, .*, Deployments$/),
    'd-fields.yaml:15: Role t1/starter: spec.permissions[1].actions[0]: must be one of View, Create, Edit, Delete',
    'd-fields.yaml:24: Role t1/tenant-jobs: spec.permissions[0].resource: Jobs is a folder resource; a Tenant role may name only tenant resources',
    "d-fields.yaml:31: Group Ops_Team: metadata.name: must be a lowercase DNS-1123 name (a-z, 0-9, '-', '.')",
    'd-fields.yaml:31: Group Ops_Team: metadata.namespace is required: a namespace is a tenant',
    'sub/e-cross.yaml:6: User t2/ann2: email ANN@example.com is already used by User t2/ann (emails are unique in a tenant, case-insensitive)',
    'sub/e-cross.yaml:16: RoleBinding t2/owner-2: at most one owner per tenant: RoleBinding t2/owner-1 already grants owner (change its subject to transfer ownership)',
    'sub/e-cross.yaml:21: RoleBinding t2/admins: role administrator is a Tenant role: spec.folder is forbidden',
    'sub/e-cross.yaml:26: RoleBinding t2/users: role automation-user is a Folder role: spec.folder is required',
    'sub/e-cross.yaml:31: Role t2/analyst: built-in role analyst cannot be changed (the name analyst is reserved)',
    'sub/e-cross.yaml:36: RoleBinding t2/deep: spec.folder: must be a folder path of 1 to 7 non-empty segments like Finance/Invoices: it has 8 levels',
    'sub/f-dup.yml:2: User t2/ann: duplicate: already defined at sub/e-cross.yaml:1',
  ]);
}, SPAWN_TIMEOUT);

test('the examples are valid; standard input is read for -f -; a missing path is a problem', async () => {
  const ok = await rpa(['validate', '-f', EXAMPLES]);
  expect(ok).toEqual({ code: 0, stdout: expect.stringMatching(/^valid: \d+ documents in \d+ files \(tenants finance, hr, platform, sales\)\n$/), stderr: '' });

  const group = fs.readFileSync(`${EXAMPLES}/finance/groups.yaml`, 'utf8');
  const piped = await rpa(['validate', '-f', '-', '-f', 'no/such/dir', '-n', 'finance'], {
    input: `${group}---\n${API}\nkind: RoleBinding\nmetadata: {name: dangling}\nspec: {roleRef: {name: nope}, subjects: [{kind: User, name: nobody}]}\n`,
  });
  expect(piped.code).toBe(1);
  expect(piped.stderr.trimEnd().split('\n')).toEqual(['no/such/dir: cannot read: no such file or directory']);

  // The same without the missing path: valid, with warnings for what the documents do not hold.
  const warned = await rpa(['validate', '-f', '-', '-n', 'finance'], {
    input: `---\n${API}\nkind: RoleBinding\nmetadata: {name: dangling}\nspec: {roleRef: {name: nope}, subjects: [{kind: User, name: nobody}]}\n`,
  });
  expect(warned.code).toBe(0);
  expect(warned.stdout).toBe('valid: 1 document in 1 file (tenant finance)\n');
  expect(warned.stderr).toMatch(/^warning: <stdin>:2: RoleBinding finance\/dangling: Role "nope" does not exist in tenant finance; .*\(checked against these documents and the built-ins only\)\n$/);
}, SPAWN_TIMEOUT);
