// Issue 13, the CLI under hostile documents and mistakes:
//  item 4:  a former owner is offboarded by adopting, then pruning, the store-created binding;
//  item 8:  control characters from documents never reach the terminal raw; JSON stays exact;
//  item 9:  commands that only read work on a store the process may only read (and never migrate);
//  item 10: a store that does not exist is an error for reading commands (exit 1, naming it);
//  item 11: --prune refuses a mass deletion unless --prune-allow-mass-delete, and prints deletions.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { start } from '../../src/server/main.js';
import { SPAWN_TIMEOUT, ROOT, rpa, rpaInProcess, tempDir, writeTree } from './helpers.js';

const API = 'apiVersion: rpa-access.io/v1alpha1';
const userDoc = (name: string, extra = '') => `${API}\nkind: User\nmetadata: {name: ${name}, namespace: t}\nspec:\n  email: ${name}@example.com\n${extra}`;
const ownerDoc = (name: string) => `${API}\nkind: RoleBinding\nmetadata: {name: owner, namespace: t}\nspec: {roleRef: {name: owner}, subjects: [{kind: User, name: ${name}}]}\n`;
const docs = (...parts: string[]) => parts.join('---\n');

describe('item 10: a store that does not exist is an error for commands that only read', () => {
  test('check and permissions: exit 1 naming the path, never "tenant does not exist"; nothing created', async () => {
    const missing = path.join(tempDir(), 'typo');
    for (const args of [
      ['check', '--tenant', 't', '--user', 'ann', '--permission', 'Users.View'],
      ['permissions', '--tenant', 't', '--user', 'ann'],
    ]) {
      const r = await rpaInProcess(['--store', missing, ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(path.join(missing, 'store.db'));
      expect(r.stderr).toMatch(/does not exist/);
    }
    expect(fs.existsSync(missing)).toBe(false);
  });

  test('serve on a missing SQLite store fails clearly, creating nothing', async () => {
    const missing = path.join(tempDir(), 'nothing-here');
    await expect(start({ store: missing, auth: 'none', port: 0, host: '127.0.0.1' })).rejects.toThrow(/nothing-here.*does not exist/);
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe('item 9: read-only stores', () => {
  test(
    'check, permissions and apply --dry-run work as a user who may only read the store (SQLite), writing nothing',
    async () => {
      const dir = tempDir();
      fs.chmodSync(dir, 0o755);
      expect((await rpa(['--store', dir, 'apply', '-f', path.join(ROOT, 'examples/finance')])).code).toBe(0);
      const before = fs.readFileSync(path.join(dir, 'store.db'));
      // As `nobody`: may read the store, not write it nor its directory (root would ignore modes).
      const asNobody = (args: string[]) => rpa(['--store', dir, ...args], { env: { HOME: '/tmp' }, runAs: 65534 });
      const check = await asNobody(['check', '--tenant', 'finance', '--user', 'john.smith@example.com', '--permission', 'Jobs.Create', '--folder', 'Finance/Invoices']);
      expect(check).toMatchObject({ code: 0, stderr: '' });
      const perms = await asNobody(['permissions', '--tenant', 'finance', '--user', 'john.smith@example.com', '--output', 'json']);
      expect(perms.code).toBe(0);
      const dry = await asNobody(['apply', '-f', path.join(ROOT, 'examples/finance'), '--dry-run']);
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      expect(fs.readdirSync(dir)).toEqual(['store.db']);
      expect(fs.readFileSync(path.join(dir, 'store.db')).equals(before)).toBe(true);
    },
    SPAWN_TIMEOUT,
  );

  test('a store whose schema is older than the reader needs is said to be, and never migrated', async () => {
    const dir = tempDir();
    expect((await rpaInProcess(['--store', dir, 'apply', '-f', path.join(ROOT, 'examples/finance')])).code).toBe(0);
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path.join(dir, 'store.db'));
    const last = db.prepare('select name from kysely_migration order by name desc limit 1').get() as { name: string };
    db.prepare('delete from kysely_migration where name = ?').run(last.name);
    db.close();
    const r = await rpaInProcess(['--store', dir, 'check', '--tenant', 'finance', '--user', 'john-smith', '--permission', 'Users.View']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`schema is older than this version reads (missing migration ${last.name})`);
    const again = new Database(path.join(dir, 'store.db'), { readonly: true });
    expect(again.prepare('select count(*) as n from kysely_migration where name = ?').get(last.name)).toEqual({ n: 0 });
    again.close();
  });

  const databaseUrl = process.env.DATABASE_URL;
  (databaseUrl ? test : test.skip)('PostgreSQL: a role with SELECT only reads, and never migrates', async () => {
    const schema = `ro_${process.pid}_${Date.now() % 100000}`;
    const role = `rpa_reader_${process.pid}`;
    const url = new URL(databaseUrl!);
    url.searchParams.set('schema', schema);
    expect((await rpaInProcess(['--store', url.toString(), 'apply', '-f', path.join(ROOT, 'examples/finance')])).code).toBe(0);
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      await admin.query(`drop role if exists ${role}`);
      await admin.query(`create role ${role} login`);
      await admin.query(`grant usage on schema ${schema} to ${role}`);
      await admin.query(`grant select on all tables in schema ${schema} to ${role}`);
      const reader = new URL(url.toString());
      reader.username = role;
      reader.password = '';
      const r = await rpaInProcess(['--store', reader.toString(), 'check', '--tenant', 'finance', '--user', 'john.smith@example.com', '--permission', 'Jobs.Create', '--folder', 'Finance/Invoices']);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      const dry = await rpaInProcess(['--store', reader.toString(), 'apply', '-f', path.join(ROOT, 'examples/finance'), '--dry-run']);
      expect(dry.code).toBe(0);
      // A writer with that role is refused by PostgreSQL, not by us: the role really is read-only.
      expect((await rpaInProcess(['--store', reader.toString(), 'apply', '-f', path.join(ROOT, 'examples/hr')])).code).toBe(1);
    } finally {
      await admin.query(`drop schema if exists ${schema} cascade`);
      await admin.query(`drop owned by ${role}`).catch(() => undefined);
      await admin.query(`drop role if exists ${role}`);
      await admin.end();
    }
  }, SPAWN_TIMEOUT);
});

describe('item 11: the --prune brake', () => {
  test('one document applied with --prune from the wrong place is refused; the flag allows it; deletions are printed', async () => {
    const store = tempDir();
    const all = writeTree({ 't.yaml': docs(...['a', 'b', 'c', 'd', 'e'].map((n) => userDoc(n))) });
    const one = writeTree({ 't.yaml': userDoc('a') });
    expect((await rpaInProcess(['--store', store, 'apply', '-f', all])).code).toBe(0);
    const refused = await rpaInProcess(['--store', store, 'apply', '-f', one, '--prune']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("--prune would delete 4 of the tenant's 5 declared objects (more than half): User/b, User/c, User/d, User/e");
    expect(refused.stderr).toContain('--prune-allow-mass-delete');
    const allowed = await rpaInProcess(['--store', store, 'apply', '-f', one, '--prune', '--prune-allow-mass-delete']);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain('deleted User/t/b\n');
    expect(allowed.stdout).toContain('deleted User/t/e\n');
  });

  test('up to half is allowed without the flag', async () => {
    const store = tempDir();
    expect((await rpaInProcess(['--store', store, 'apply', '-f', writeTree({ 't.yaml': docs(userDoc('a'), userDoc('b'), userDoc('c'), userDoc('d')) })])).code).toBe(0);
    const r = await rpaInProcess(['--store', store, 'apply', '-f', writeTree({ 't.yaml': docs(userDoc('a'), userDoc('b')) }), '--prune', '--output', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).deleted).toEqual(['User/t/c', 'User/t/d']);
  });
});

describe('item 4: offboarding a former owner with the CLI', () => {
  test('transfer; adopt the store-created binding; then prune it and the user away', async () => {
    const store = tempDir();
    const apply = (files: Record<string, string>, ...flags: string[]) => rpaInProcess(['--store', store, 'apply', '-f', writeTree(files), ...flags]);
    expect((await apply({ 't.yaml': docs(userDoc('ann'), userDoc('bob'), ownerDoc('ann')) })).code).toBe(0);
    expect((await apply({ 't.yaml': docs(userDoc('ann'), userDoc('bob'), ownerDoc('bob')) })).code).toBe(0);
    // Pruning ann alone is refused: the store-created binding protects her.
    const refused = await apply({ 't.yaml': docs(userDoc('bob'), ownerDoc('bob')) }, '--prune');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('holds administrator through the explicit RoleBinding t/former-owner-ann');
    const adopt = `${API}\nkind: RoleBinding\nmetadata: {name: former-owner-ann, namespace: t}\nspec: {roleRef: {name: administrator}, subjects: [{kind: User, name: ann}]}\n`;
    const adopted = await apply({ 't.yaml': docs(userDoc('ann'), userDoc('bob'), ownerDoc('bob'), adopt) }, '--output', 'json');
    expect(adopted.code).toBe(0);
    expect(JSON.parse(adopted.stdout).updated).toEqual(['RoleBinding/t/former-owner-ann']);
    const gone = await apply({ 't.yaml': docs(userDoc('bob'), ownerDoc('bob')) }, '--prune', '--output', 'json');
    expect(gone.code).toBe(0);
    expect(JSON.parse(gone.stdout).deleted.sort()).toEqual(['RoleBinding/t/former-owner-ann', 'User/t/ann']);
  });
});

describe('item 8: control characters never reach the terminal raw; JSON stays exact', () => {
  test('permissions and check escape what documents hold; --output json reads back the same values', async () => {
    const store = tempDir();
    const evilName = 'Eve \u001b[2J\u001b[31mAdmin\r\nallowed: everything\u009b\u202e';
    const doc = `${API}\nkind: User\nmetadata: {name: eve, namespace: t}\nspec:\n  email: eve@example.com\n  fullName: ${JSON.stringify(evilName)}\n---\n${API}\nkind: RoleBinding\nmetadata: {name: eve-robot, namespace: t}\nspec:\n  roleRef: {name: folder-viewer}\n  subjects: [{kind: User, name: eve}]\n  folder: Ops\n  resources: [{kind: Process, name: ${JSON.stringify('bot\u001b]0;pwned\u0007')}}]\n`;
    expect((await rpaInProcess(['--store', store, 'apply', '-f', writeTree({ 'e.yaml': doc })])).code).toBe(0);
    const text = await rpaInProcess(['--store', store, 'permissions', '--tenant', 't', '--user', 'eve']);
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(/(?!\n)[\p{Cc}\u202e]/u);
    expect(text.stdout).toContain('Eve \\u001b[2J\\u001b[31mAdmin\\r\\nallowed: everything\\u009b\\u202e (User t/eve');
    const check = await rpaInProcess(['--store', store, 'check', '--tenant', 't', '--user', 'eve', '--permission', 'Jobs.View', '--folder', 'Ops', '--resource', 'Process/other']);
    expect(check.stdout).not.toMatch(/(?!\n)\p{Cc}/u);
    const json = await rpaInProcess(['--store', store, 'permissions', '--tenant', 't', '--user', 'eve', '--output', 'json']);
    expect(json.stdout).not.toMatch(/[\u007f-\u009f\u202e]/);
    expect(JSON.parse(json.stdout).permissions[0].resources).toEqual([{ kind: 'Process', name: 'bot\u001b]0;pwned\u0007' }]);
  });
});
