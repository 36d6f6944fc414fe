/**
 * `rpa-access apply` as a real process, on each store backend (SQLite always, PostgreSQL when
 * DATABASE_URL is set: a schema of its own per store): the plan it prints, idempotence,
 * --dry-run, --prune, refusals that leave the store exactly as it was, and readiness warnings.
 * What the store holds is read through the store API from the test process.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AccessStore } from '../../src/store/store.js';
import { storeFactories } from '../support/stores.js';
import { copyExamples, dumpStore, EXAMPLES, expectNoStackTrace, rpa, SPAWN_TIMEOUT, writeTree } from './helpers.js';

const API = 'apiVersion: rpa-access.io/v1alpha1';

/** Every `Kind/namespace/name` of the examples, from the documents themselves. */
function exampleRefs(dir = EXAMPLES): string[] {
  const refs: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (fs.statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.yaml')) {
        for (const doc of fs.readFileSync(full, 'utf8').split(/^---$/m)) {
          const kind = /^kind: (\w+)$/m.exec(doc)?.[1];
          const name2 = /^ {2}name: (\S+)$/m.exec(doc)?.[1];
          const ns = /^ {2}namespace: (\S+)$/m.exec(doc)?.[1];
          if (kind && name2 && ns) refs.push(`${kind}/${ns}/${name2}`);
        }
      }
    }
  };
  walk(dir);
  return refs.sort();
}

describe.each(storeFactories)('apply on $name', (factory) => {
  let url: string;
  let store: AccessStore;
  const cli = (args: string[], options: Parameters<typeof rpa>[1] = {}) => rpa(['--store', url, ...args], options);
  const refs = exampleRefs();

  beforeAll(async () => {
    url = factory.newUrl();
    store = await factory.open(url);
  });
  afterAll(async () => {
    await store.close();
  });

  test('apply prints the plan; applying the same documents again changes nothing and writes nothing', async () => {
    const first = await cli(['apply', '-f', EXAMPLES], { env: { USER: 'alice' } });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const out = first.stdout.trimEnd().split('\n');
    expect(out.filter((l) => l.startsWith('created ')).map((l) => l.slice('created '.length)).sort()).toEqual(refs);
    expect(out).toContain('created User/finance/john-smith');
    expect(out.slice(-4)).toEqual([
      'finance: 18 created, 0 updated, 0 deleted, 0 unchanged; new tenant: its built-in roles and the global group are created (revision 1)',
      'hr: 16 created, 0 updated, 0 deleted, 0 unchanged; new tenant: its built-in roles and the global group are created (revision 1)',
      'platform: 21 created, 0 updated, 0 deleted, 0 unchanged; new tenant: its built-in roles and the global group are created (revision 1)',
      'sales: 6 created, 0 updated, 0 deleted, 0 unchanged; new tenant: its built-in roles and the global group are created (revision 1)',
    ]);
    expect(Object.fromEntries(await store.revisions())).toEqual({ finance: 1, hr: 1, platform: 1, sales: 1 });
    const audit = await store.audit();
    expect(new Set(audit.map((a) => `${a.actor}/${a.source}`))).toEqual(new Set(['alice/cli']));
    expect((await store.loadTenant('finance'))!.state.roles.has('owner')).toBe(true);

    const before = await dumpStore(store);
    const second = await cli(['apply', '-f', EXAMPLES, '--output', 'json']);
    expect(second.code).toBe(0);
    expect(second.stderr).toBe('');
    const plan = JSON.parse(second.stdout) as Record<string, string[]>;
    expect(Object.keys(plan)).toEqual(['created', 'updated', 'deleted', 'unchanged']);
    expect(plan).toEqual({ created: [], updated: [], deleted: [], unchanged: expect.any(Array) });
    expect([...plan.unchanged!].sort()).toEqual(refs);
    expect(await dumpStore(store)).toBe(before);
  }, SPAWN_TIMEOUT);

  test('--dry-run plans against the store and writes nothing; without it the same plan is applied', async () => {
    const dir = copyExamples();
    const users = path.join(dir, 'finance/users.yaml');
    fs.writeFileSync(users, fs.readFileSync(users, 'utf8').replace('fullName: John Smith', 'fullName: John Q. Smith'));
    fs.writeFileSync(path.join(dir, 'finance/controllers.yaml'), `${API}\nkind: Group\nmetadata: {name: controllers, namespace: finance}\nspec: {displayName: Controllers}\n`);
    const before = await dumpStore(store);

    const text = await cli(['apply', '-f', path.join(dir, 'finance'), '--dry-run']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toContain('created Group/finance/controllers (dry run)');
    expect(lines).toContain('updated User/finance/john-smith (dry run)');
    expect(lines).toContain('unchanged User/finance/maria-garcia (dry run)');
    expect(lines.at(-1)).toBe('finance: 1 created, 1 updated, 0 deleted, 17 unchanged (dry run: nothing written)');
    expect(await dumpStore(store)).toBe(before);

    const json = await cli(['apply', '-f', dir, '--dry-run', '-o', 'json']);
    const plan = JSON.parse(json.stdout) as Record<string, string[]>;
    expect({ ...plan, unchanged: plan.unchanged!.length }).toEqual({
      created: ['Group/finance/controllers'], updated: ['User/finance/john-smith'], deleted: [], unchanged: refs.length - 1,
    });
    expect(await dumpStore(store)).toBe(before);

    const real = await cli(['apply', '-f', dir, '-o', 'json']);
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout)).toEqual(plan);
    expect(Object.fromEntries(await store.revisions())).toEqual({ finance: 2, hr: 1, platform: 1, sales: 1 });
    expect((await store.loadTenant('finance'))!.state.users.get('john-smith')!.spec.fullName).toBe('John Q. Smith');
  }, SPAWN_TIMEOUT);

  test('--prune deletes what the named tenants hold that the documents no longer contain, and nothing else', async () => {
    const dir = copyExamples();
    fs.rmSync(path.join(dir, 'finance/bindings/external-audit.yaml'));
    const r = await cli(['apply', '-f', path.join(dir, 'finance'), '--prune', '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as Record<string, string[]>;
    expect({ ...plan, unchanged: plan.unchanged!.length }).toEqual({
      created: [], updated: ['User/finance/john-smith'], deleted: ['Group/finance/controllers', 'RoleBinding/finance/finance-auditors-read'], unchanged: 16,
    });
    const finance = (await store.loadTenant('finance'))!.state;
    expect(finance.roles.size).toBe(11); // the ten built-ins and job-starter
    expect(finance.groups.has('global')).toBe(true);
    expect(Object.fromEntries(await store.revisions())).toEqual({ finance: 3, hr: 1, platform: 1, sales: 1 });
  }, SPAWN_TIMEOUT);

  test('a refused apply exits 1, names the object and its document, and leaves the store exactly as it was', async () => {
    const before = await dumpStore(store);
    // A second owner: only the store knows of the first one.
    const dir = writeTree({
      'second-owner.yaml': `${API}\nkind: RoleBinding\nmetadata: {name: second-owner, namespace: finance}\nspec: {roleRef: {name: owner}, subjects: [{kind: User, name: olivia-chen}]}\n`,
      // Valid on its own, and not written either: nothing is partially applied.
      'group.yaml': `${API}\nkind: Group\nmetadata: {name: newcomers, namespace: finance}\nspec: {}\n`,
    });
    const owner = await cli(['apply', '-f', dir]);
    expect(owner.code).toBe(1);
    expect(owner.stdout).toBe('');
    expectNoStackTrace(owner.stderr);
    expect(owner.stderr.trimEnd().split('\n')).toEqual([
      `${path.join(dir, 'second-owner.yaml')}:1: RoleBinding finance/second-owner: at most one owner per tenant: RoleBinding finance/owner already grants owner (change its subject to transfer ownership)`,
      'rpa-access: error: refused by the store (1 violation): nothing was written',
    ]);
    expect(await dumpStore(store)).toBe(before);

    // Deactivating an explicit administrator, and pruning away an explicit administrator's User
    // (an object no document names any more: no PATH:LINE for it).
    const copy = copyExamples();
    const users = path.join(copy, 'finance/users.yaml');
    const text = fs.readFileSync(users, 'utf8');
    fs.writeFileSync(users, text.replace('fullName: Olivia Chen', 'fullName: Olivia Chen\n  active: false'));
    const inactive = await cli(['apply', '-f', path.join(copy, 'finance'), '--output', 'json']);
    expect(inactive.code).toBe(1);
    expect(inactive.stdout).toBe('');
    // The documents alone already show it (validate judges the state they describe).
    expect(inactive.stderr).toContain(`${users}:16: User finance/olivia-chen: cannot be inactive: holds administrator through the explicit RoleBinding finance/administrators; remove the binding first\n`);

    fs.writeFileSync(users, text.replace(/---\napiVersion: rpa-access.io\/v1alpha1\nkind: User\nmetadata:\n {2}name: olivia-chen[\s\S]*?(?=---)/, ''));
    const pruned = await cli(['apply', '-f', path.join(copy, 'finance'), '--prune']);
    expect(pruned.code).toBe(1);
    expect(pruned.stderr.trimEnd().split('\n')).toEqual([
      'User finance/olivia-chen: cannot be deleted: holds administrator through the explicit RoleBinding finance/administrators; remove the binding first',
      'rpa-access: error: refused by the store (1 violation): nothing was written',
    ]);
    expect(await dumpStore(store)).toBe(before);
  }, SPAWN_TIMEOUT);

  test('objects that apply but grant nothing yet are reported as warnings, not errors', async () => {
    const dir = writeTree({
      'dangling.yaml': `${API}\nkind: RoleBinding\nmetadata: {name: dangling}\nspec: {roleRef: {name: job-starter}, subjects: [{kind: Group, name: night-shift}], folder: Finance}\n`,
    });
    const r = await cli(['apply', '-f', dir, '-n', 'finance']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^created RoleBinding\/finance\/dangling\nfinance: 1 created, 0 updated, 0 deleted, 0 unchanged \(revision 4\)\n$/);
    expect(r.stderr).toBe(
      `warning: ${path.join(dir, 'dangling.yaml')}:1: RoleBinding finance/dangling: not ready (SubjectNotFound): Group "night-shift" does not exist in tenant finance; nothing is granted to it until it appears.\n`,
    );
  }, SPAWN_TIMEOUT);
});
