/**
 * The UiPath seed's directory-group narrative through the command line (contract section 7), one
 * step per test, on the embedded store with examples/sales: John logs in presenting two directory
 * groups and is provisioned; he holds both groups' rights and his explicit ones; his session
 * ends and only the explicit rights remain; a directory Group deleted mid-session takes its
 * rights at once; the audit trail says what the orchestrator says; he is still listed; a User
 * document adopts him. And bad input: exit 1, nothing written.
 */
import { jest } from '@jest/globals';
import path from 'node:path';
import { openStore } from '../../src/store/open.js';
import { EXAMPLES, expectNoStackTrace, rpa, rpaInProcess, SPAWN_TIMEOUT, tempDir, writeTree } from './helpers.js';

const USERS = '8a2c4e6f-1b3d-4f5a-8c7e-9d0b1a2c3e04';
const DEVELOPERS = 'c3d5e7f9-2a4b-4c6d-8e0f-1a3b5c7d9e05';
const JOHN = 'john-smith-at-example.com';
const EMAIL = 'John.Smith@example.com';

const explicit = `apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: john-explicit-analyst, namespace: sales}
spec:
  roleRef: {name: analyst}
  subjects: [{kind: User, name: john.smith-at-example.com}]
`;

jest.setTimeout(30_000);

describe('directory groups through the CLI (seed narrative)', () => {
  const store = tempDir('rpa-access-directory-');
  const cli = (...args: string[]) => rpaInProcess(['--store', store, ...args]);
  const json = async (...args: string[]) => {
    const r = await cli(...args, '--output', 'json');
    return { code: r.code, body: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
  };
  const check = (permission: string, folder?: string) => json('check', '--tenant', 'sales', '--user', 'john.smith@example.com', '--permission', permission, ...(folder ? ['--folder', folder] : []));
  const revisions = async () => {
    const s = await openStore(store);
    try {
      return [...(await s.revisions())];
    } finally {
      await s.close();
    }
  };

  beforeAll(async () => {
    expect((await cli('apply', '-f', path.join(EXAMPLES, 'sales'))).code).toBe(0);
  }, 60_000);

  test('John logs in presenting two directory groups and is provisioned', async () => {
    const r = await json('login', '--tenant', 'sales', '--user', EMAIL, '--directory-group', USERS, DEVELOPERS, 'not-a-group-of-sales', '--session-ttl', '6s');
    expect(r.code).toBe(0);
    expect(r.body).toEqual({ user: JOHN.replace('john-smith', 'john.smith'), provisioned: true, groups: ['automation-developers', 'automation-users'], expiresAt: expect.any(String) });
    // Explicit rights, given to the provisioned user by a document.
    expect((await cli('apply', '-f', writeTree({ 'john.yaml': explicit }))).code).toBe(0);
  });

  test('he holds the union of both groups\' rights and his explicit ones, each explained', async () => {
    const run = await check('Jobs.Create', 'Sales');
    expect(run.code).toBe(0);
    expect(run.body.grants).toEqual([{ role: 'automation-user', binding: 'automation-users-sales', via: 'directory:automation-users', folder: 'Sales', sessionExpiresAt: expect.any(String) }]);
    const deploy = await check('Processes.Delete', 'Sales/Development');
    expect(deploy.body.grants.map((g: { via: string }) => g.via)).toEqual(['directory:automation-developers']);
    const audit = await check('Audit.View');
    expect(audit.body.grants).toEqual([{ role: 'analyst', binding: 'john-explicit-analyst', via: 'user', folder: null }]);
    const text = await cli('permissions', '--tenant', 'sales', '--user', 'john.smith@example.com');
    expect(text.stdout).toMatch(/directory:automation-users\s+login session until \d{4}-/);
  });

  test('his session expires: only the explicit rights remain', async () => {
    await new Promise((r) => setTimeout(r, 6_200));
    expect((await check('Jobs.Create', 'Sales')).code).toBe(3);
    expect((await check('Audit.View')).code).toBe(0);
    const text = await cli('check', '--tenant', 'sales', '--user', 'john.smith@example.com', '--permission', 'Jobs.Create', '--folder', 'Sales');
    expect(text.stdout).toMatch(/through a login session that ended at/);
  });

  test('a directory Group deleted mid-session: its rights end at once, the others stay', async () => {
    expect((await cli('login', '--tenant', 'sales', '--user', EMAIL, '--directory-group', USERS, DEVELOPERS)).code).toBe(0);
    expect((await check('Jobs.Create', 'Sales')).code).toBe(0);
    const docs = tempDir('rpa-access-sales-');
    const sales = writeTree({ 'john.yaml': explicit }, docs);
    const groups = (await import('node:fs')).readFileSync(path.join(EXAMPLES, 'sales/groups.yaml'), 'utf8').split('\n---\n').filter((d) => !d.includes('name: automation-users'));
    writeTree({ 'groups.yaml': groups.join('\n---\n'), 'bindings.yaml': (await import('node:fs')).readFileSync(path.join(EXAMPLES, 'sales/bindings.yaml'), 'utf8') }, sales);
    expect((await cli('apply', '-f', sales, '--prune')).code).toBe(0);
    expect((await check('Jobs.Create', 'Sales')).code).toBe(3);
    expect((await check('Processes.Delete', 'Sales/Development')).code).toBe(0);
    expect((await check('Audit.View')).code).toBe(0);
  });

  test('the audit trail says who was provisioned from which groups, and each login\'s groups', async () => {
    const s = await openStore(store);
    try {
      const messages = (await s.audit({ tenant: 'sales' })).flatMap((a) => (a.message ? [a.message] : []));
      expect(messages).toEqual([
        'User john.smith-at-example.com was automatically provisioned from the following groups: automation-developers, automation-users',
        'User john.smith-at-example.com was assigned to the following groups: automation-developers, automation-users',
        'User john.smith-at-example.com was assigned to the following groups: automation-developers, automation-users',
      ]);
    } finally {
      await s.close();
    }
  });

  test('he is still listed, as auto-provisioned, after --prune', async () => {
    const r = await json('users', '--tenant', 'sales');
    expect(r.body.users).toEqual([
      {
        name: 'john.smith-at-example.com', email: EMAIL, type: 'Human', origin: 'auto-provisioned', active: true,
        lastLogin: expect.any(String), sessionGroups: ['automation-developers'], sessionExpiresAt: expect.any(String),
      },
    ]);
  });

  test('a later User document with his email adopts him: declared, explicit rights kept', async () => {
    const user = `apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: john.smith-at-example.com, namespace: sales}
spec: {email: john.smith@example.com, fullName: John Smith}
`;
    expect((await cli('apply', '-f', writeTree({ 'user.yaml': user }))).code).toBe(0);
    const r = await json('users', '--tenant', 'sales');
    expect(r.body.users).toMatchObject([{ name: 'john.smith-at-example.com', origin: 'declared' }]);
    expect((await check('Audit.View')).code).toBe(0);
    expect((await check('Processes.Delete', 'Sales/Development')).code).toBe(0);
  });

  test('a User may not list a directory group in spec.groups', async () => {
    const user = `apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: ann, namespace: sales}
spec: {email: ann@example.com, groups: [administrators]}
`;
    const r = await cli('apply', '-f', writeTree({ 'ann.yaml': user }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/administrators, a directory group/);
  });

  test('bad input: one clear line, exit 1, nothing written', async () => {
    const before = await revisions();
    const cases: [string[], RegExp][] = [
      [['--tenant', 'nope', '--user', EMAIL, '--directory-group', USERS], /unknown tenant "nope"/],
      [['--tenant', 'sales', '--user', 'john.smith(at)example.com', '--directory-group', USERS], /is not an email address/],
      [['--tenant', 'sales', '--user', EMAIL, '--directory-group', 'x'.repeat(10_240)], /is 10240 characters long \(at most 1024\)/],
      [['--tenant', 'sales', '--user', EMAIL, '--directory-group', ...Array.from({ length: 10_000 }, (_, i) => `g${i}`)], /too many directory groups: 10000/],
      [['--tenant', 'sales', '--user', EMAIL, '--directory-group', 'evil\u0007\u009bgroup'], /holds control characters/],
      [['--tenant', 'sales', '--user', 'john\u0000@example.com'], /is not an email address/],
      [['--tenant', 'sales', '--user', EMAIL, '--session-ttl', '3d'], /invalid session TTL "3d"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('login', ...args);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(message)]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      for (const c of ['\u0000', '\u0007', '\u009b']) expect(r.stderr).not.toContain(c);
    }
    expect(await revisions()).toEqual(before);
    // A login nobody can be provisioned from: refused, exit 3, nothing written.
    expect((await cli('login', '--tenant', 'sales', '--user', 'eve@example.com', '--directory-group', 'somewhere-else')).code).toBe(3);
    expect(await revisions()).toEqual(before);
  });

  test('as a process: login and users --help, and a login', async () => {
    const help = await rpa(['login', '--help']);
    expect(help.stdout).toMatch(/--directory-group/);
    const r = await rpa(['--store', store, 'login', '--tenant', 'sales', '--user', 'jane@example.com', '--directory-group', DEVELOPERS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/jane-at-example.com \(jane@example.com\) provisioned and logged in to tenant sales: directory groups automation-developers until/);
    expectNoStackTrace(r.stderr);
  }, SPAWN_TIMEOUT);
});
