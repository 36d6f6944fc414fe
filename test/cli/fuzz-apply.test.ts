/**
 * Bad input through `apply`, property-based (fast-check, fixed seed: see
 * test/support/fuzz-documents.ts), in process on an embedded SQLite store:
 *
 * - the store apply path: generated document sets, valid and broken, checked as the CLI checks
 *   them and, when clean, applied on a store that already holds a tenant. A refused apply (or
 *   documents with problems, which never reach the store) leaves the store exactly as it was:
 *   every tenant's objects, every revision and the whole audit trail, compared before and after.
 *   An accepted one is recorded in the audit trail and is idempotent.
 * - `rpa-access apply -f` itself (runCli, captured output) on generated files: exit 0 or 1, never
 *   a crash; every stderr line is one clear line without a stack trace; a refusal changes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { checkDocuments, desiredStates } from '../../src/documents/check.js';
import { parseDocuments } from '../../src/documents/load.js';
import { allEntries, canonicalJson } from '../../src/model/tenant.js';
import type { AccessStore } from '../../src/store/store.js';
import { sqliteFactory } from '../support/stores.js';
import { arbCleanFile, arbFile, FUZZ_SEED, fuzzRuns, STACK_TRACE, toYaml } from '../support/fuzz-documents.js';
import { rpaInProcess, tempDir } from './helpers.js';

fc.configureGlobal({ seed: FUZZ_SEED, numRuns: fuzzRuns(60) });

/** Everything the store holds: each tenant's objects and revision, and every audit record. */
async function fullDump(store: AccessStore): Promise<string> {
  const revisions = [...(await store.revisions())].sort(([a], [b]) => (a < b ? -1 : 1));
  const tenants = [];
  for (const [t] of revisions) {
    const snap = (await store.loadTenant(t))!;
    tenants.push({ t, revision: snap.revision, entries: allEntries(snap.state).map((e) => canonicalJson(e)).sort() });
  }
  return canonicalJson({ revisions, tenants, audit: await store.audit() });
}

/** Documents the store already holds: an owner, an administrator, a group, a custom role. */
const SEED_YAML = `
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: u0, namespace: fz}
spec: {email: u0@example.com}
---
apiVersion: rpa-access.io/v1alpha1
kind: User
metadata: {name: u1, namespace: fz}
spec: {email: u1@example.com, groups: [g0]}
---
apiVersion: rpa-access.io/v1alpha1
kind: Group
metadata: {name: g0, namespace: fz}
spec: {displayName: Zero}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: owner-1, namespace: fz}
spec: {roleRef: {name: owner}, subjects: [{kind: User, name: u0}]}
---
apiVersion: rpa-access.io/v1alpha1
kind: RoleBinding
metadata: {name: b1, namespace: fz}
spec: {roleRef: {name: administrator}, subjects: [{kind: User, name: u1}]}
`;

function checkText(text: string, name = 'gen.yaml') {
  return checkDocuments({ ...parseDocuments(text, name), files: [name] });
}

describe(`apply on generated documents (fast-check seed ${FUZZ_SEED})`, () => {
  let store: AccessStore;
  let url: string;

  beforeAll(async () => {
    url = sqliteFactory.newUrl();
    store = await sqliteFactory.open(url);
    const seeded = await store.apply(desiredStates(checkText(SEED_YAML)), { actor: 'seed', source: 'test' });
    expect(seeded.violations).toEqual([]);
  });
  afterAll(async () => {
    await store.close();
  });

  test('through the store: a refused apply leaves everything as it was; an accepted one is audited and idempotent', async () => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(arbCleanFile, arbFile), fc.boolean(), async (file, prune) => {
        const checked = checkText(file.text);
        const before = await fullDump(store);
        if (checked.problems.length > 0 || checked.objects.length === 0) {
          // What the CLI does: problems in the documents, the store is never asked.
          expect(await fullDump(store)).toBe(before);
          return;
        }
        const auditBefore = (await store.audit()).length;
        const result = await store.apply(desiredStates(checked, { prune }), { actor: 'fuzz', source: 'test' });
        if (result.violations.length > 0) {
          refused++;
          expect(result.written).toBe(false);
          expect(result.applyId).toBeNull();
          for (const v of result.violations) {
            expect(v.message).not.toMatch(/[\r\n]/);
            expect(v.message).not.toMatch(STACK_TRACE);
            expect(v.name).toMatch(/\S/);
          }
          expect(await fullDump(store)).toBe(before);
          return;
        }
        accepted++;
        const changes = result.plans.reduce((n, p) => n + p.changes.length, 0);
        expect((await store.audit()).length).toBe(auditBefore + changes);
        // Every object of the documents is held as the documents say.
        const snap = (await store.loadTenant('fz'))!;
        for (const o of checked.objects) {
          const held = allEntries(snap.state).find((e) => e.kind === o.entry.kind && e.name === o.entry.name);
          expect(held && canonicalJson(held.spec)).toBe(canonicalJson(o.entry.spec));
        }
        // The same documents again: nothing to do, nothing written.
        const after = await fullDump(store);
        const again = await store.apply(desiredStates(checked, { prune }), { actor: 'fuzz', source: 'test' });
        expect(again.violations).toEqual([]);
        expect(again.written).toBe(false);
        expect(await fullDump(store)).toBe(after);
      }),
    );
    // The generators must exercise both paths, or the property proves little.
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  }, 120_000);

  test('rpa-access apply -f: exit 0 or 1, clear stderr lines, and a refusal or a problem writes nothing', async () => {
    const dir = tempDir('rpa-access-fuzz-');
    let n = 0;
    const codes = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(arbFile, arbCleanFile), { minLength: 1, maxLength: 2 }), fc.boolean(), fc.boolean(), async (files, prune, json) => {
        const sub = path.join(dir, `run-${n++}`);
        fs.mkdirSync(sub);
        files.forEach((f, i) => fs.writeFileSync(path.join(sub, `f${i}.yaml`), f.text));
        const before = await fullDump(store);
        const args = ['--store', url, 'apply', '-f', sub, ...(prune ? ['--prune'] : []), ...(json ? ['--output', 'json'] : [])];
        const r = await rpaInProcess(args, { USER: 'fuzz' });
        codes.add(r.code ?? -1);
        expect([0, 1]).toContain(r.code);
        for (const line of r.stderr.split('\n').filter(Boolean)) {
          expect(line).not.toMatch(STACK_TRACE);
          expect(line.length).toBeLessThan(1_000);
        }
        if (r.code === 1) {
          expect(r.stderr).toMatch(/^rpa-access: error: .+$/m);
          expect(r.stdout).toBe('');
          expect(await fullDump(store)).toBe(before);
        } else if (json) {
          expect(Object.keys(JSON.parse(r.stdout))).toEqual(['created', 'updated', 'deleted', 'unchanged']);
        }
      }),
      { numRuns: fuzzRuns(40) },
    );
    expect([...codes].sort()).toEqual([0, 1]);
  }, 120_000);

  test('hostile files: alias bombs, deep nesting, huge and binary content are problems, not crashes', async () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]'];
    for (let i = 1; i < 9; i++) bomb.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
    const hostile: Record<string, string> = {
      'bomb-kind.yaml': `${bomb.join('\n')}\napiVersion: rpa-access.io/v1alpha1\nkind: *l8\nmetadata: {name: x, namespace: fz}\nspec: {}\n`,
      'bomb-api.yaml': `${bomb.join('\n')}\napiVersion: *l8\nkind: User\nmetadata: {name: x, namespace: fz}\nspec: {}\n`,
      'bomb-spec.yaml': `${bomb.join('\n')}\napiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: x, namespace: fz}\nspec: {email: x@example.com, groups: *l8}\n`,
      'deep.yaml': `apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: x, namespace: fz}\nspec: {email: x@example.com, fullName: ${'['.repeat(90)}${']'.repeat(90)}}\n`,
      'huge-name.yaml': `apiVersion: rpa-access.io/v1alpha1\nkind: User\nmetadata: {name: ${'n'.repeat(300_000)}, namespace: fz}\nspec: {email: x@example.com}\n`,
      'huge-kind.yaml': `apiVersion: v1\nkind: ${'K'.repeat(300_000)}\nmetadata: {name: x}\n`,
      'binary.yaml': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('latin1'),
      'nul.yaml': 'apiVersion: rpa-access.io/v1alpha1\u0000\nkind: User\n',
      'many-docs.yaml': toYaml(Array.from({ length: 2_000 }, (_, i) => ({ apiVersion: 'rpa-access.io/v1alpha1', kind: 'User', metadata: { name: 'same', namespace: 'fz' }, spec: { email: `s${i}@example.com` } }))),
    };
    const dir = tempDir('rpa-access-hostile-');
    for (const [name, text] of Object.entries(hostile)) {
      fs.writeFileSync(path.join(dir, name), text);
      const before = await fullDump(store);
      const r = await rpaInProcess(['--store', url, 'apply', '-f', path.join(dir, name)], { USER: 'fuzz' });
      expect({ name, code: r.code }).toEqual({ name, code: 1 });
      const lines = r.stderr.split('\n').filter(Boolean);
      for (const line of lines) {
        expect(line).not.toMatch(STACK_TRACE);
        expect(line.length).toBeLessThan(1_000);
      }
      expect(lines.at(-1)).toMatch(/^rpa-access: error: \d+ problems? in the documents: nothing applied$/);
      expect(lines[0]).toMatch(new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${name}:\\d+: `));
      expect(await fullDump(store)).toBe(before);
    }
  }, 120_000);
});
