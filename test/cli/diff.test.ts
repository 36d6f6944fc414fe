/**
 * `rpa-access diff` on the examples with one binding changed: the Automation Users group's
 * binding moves from Finance/Payments to Finance/Receivables. Its members (john-smith and
 * priya-nair; former-clerk is inactive and holds nothing either way) lose Automation User on
 * Finance/Payments and gain it on Finance/Receivables, and nobody else changes. Compared with
 * a store, with other documents (a pull request's base), in JSON, text and Markdown.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, copyExamples, rpaInProcess, tempDir } from './helpers.js';

const BINDING = 'bindings/automation-users.yaml';
/** What automation-user holds (catalog.ts): each gained on Receivables and lost on Payments. */
const AUTOMATION_USER = ['Processes.View', 'Jobs.View', 'Jobs.Create', 'Queues.View', 'Assets.View', 'Logs.View', 'ResultFiles.View', 'Environments.View'];

function changedExamples(): string {
  const dir = copyExamples();
  const file = path.join(dir, 'finance', BINDING);
  const text = fs.readFileSync(file, 'utf8');
  expect(text).toContain('folder: Finance/Payments');
  fs.writeFileSync(file, text.replace('folder: Finance/Payments', 'folder: Finance/Receivables'));
  return dir;
}

interface Row { permission: string; folder: string | null; role: string; binding: string | null; via: string }
interface Json {
  changed: boolean;
  summary: Record<string, number>;
  tenants: { tenant: string; plan: { created: string[]; updated: string[]; deleted: string[] }; users: { user: string; gained: Row[]; lost: Row[] }[] }[];
}

let store: string;
beforeAll(async () => {
  store = path.join(tempDir(), 'store.db');
  const applied = await rpaInProcess(['--store', store, 'apply', '-f', EXAMPLES]);
  expect(applied.code).toBe(0);
});

/** `user +|- permission@folder via` lines, sorted. */
const rowsOf = (json: Json) =>
  json.tenants.flatMap((t) => t.users.flatMap((u) => [...u.gained.map((r) => ['+', r] as const), ...u.lost.map((r) => ['-', r] as const)].map(([s, r]) => `${t.tenant} ${u.user} ${s} ${r.permission}@${r.folder} ${r.role}/${r.binding}/${r.via}`))).sort();

const expected = ['john-smith', 'priya-nair']
  .flatMap((user) => AUTOMATION_USER.flatMap((p) => [
    `finance ${user} + ${p}@Finance/Receivables automation-user/automation-users-payments/group:automation-users`,
    `finance ${user} - ${p}@Finance/Payments automation-user/automation-users-payments/group:automation-users`,
  ]))
  .sort();

test('against the store: exactly the members gain the new folder and lose the old one; exit 2', async () => {
  // automation-user holds more than the contract's minimum: read the role rather than assume.
  const perms = await rpaInProcess(['--store', store, 'permissions', '--tenant', 'finance', '--user', 'priya-nair', '--output', 'json']);
  const held = (JSON.parse(perms.stdout) as { permissions: Row[] }).permissions.filter((r) => r.folder === 'Finance/Payments').map((r) => r.permission);
  expect(new Set(held)).toEqual(new Set(AUTOMATION_USER));

  const r = await rpaInProcess(['--store', store, 'diff', '-f', changedExamples(), '--output', 'json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(2);
  const json = JSON.parse(r.stdout) as Json;
  expect(rowsOf(json)).toEqual(expected);
  expect(json.changed).toBe(true);
  expect(json.summary).toEqual({ tenants: 1, usersGaining: 2, usersLosing: 2, gained: 16, lost: 16, created: 0, updated: 1, deleted: 0 });
  const finance = json.tenants.find((t) => t.tenant === 'finance')!;
  expect(finance.plan.updated).toEqual(['RoleBinding/finance/automation-users-payments']);
  expect(json.tenants.filter((t) => t.tenant !== 'finance').every((t) => t.users.length === 0 && t.plan.updated.length === 0)).toBe(true);
});

test('the same documents as the store: no change, exit 0', async () => {
  const r = await rpaInProcess(['--store', store, 'diff', '-f', EXAMPLES]);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  expect(r.stdout).toMatch(/^no change against store sqlite:/);
});

test('against other documents (a pull request base), without a store', async () => {
  const r = await rpaInProcess(['diff', '-f', changedExamples(), '--against-files', EXAMPLES, '--output', 'json'], { RPA_ACCESS_STORE: path.join(tempDir(), 'absent.db') });
  expect(r.code).toBe(2);
  expect(rowsOf(JSON.parse(r.stdout) as Json)).toEqual(expected);
  // Removing a whole tenant from the documents takes everything from its users.
  const withoutHr = copyExamples();
  fs.rmSync(path.join(withoutHr, 'hr'), { recursive: true });
  const removed = JSON.parse((await rpaInProcess(['diff', '-f', withoutHr, '--against-files', EXAMPLES, '--output', 'json'])).stdout) as Json;
  const hr = removed.tenants.find((t) => t.tenant === 'hr')!;
  expect(hr.users.length).toBeGreaterThan(0);
  expect(hr.users.every((u) => u.gained.length === 0 && u.lost.length >= 0)).toBe(true);
  expect(hr.plan.deleted.length).toBeGreaterThan(0);
});

test('text output: the summary line, then each user with + and - rows and the plan', async () => {
  const r = await rpaInProcess(['--store', store, 'diff', '-f', changedExamples()]);
  expect(r.code).toBe(2);
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^2 users gain 16 permissions, 2 users lose 16 permissions in 1 tenant; objects: 1 updated \(against store sqlite:/);
  expect(lines).toContain('finance: 2 users gain 16 permissions, 2 users lose 16 permissions; objects: 1 updated');
  expect(lines.some((l) => /^ {2}john-smith \(John Smith, john\.smith@example\.com\)$/.test(l))).toBe(true);
  expect(lines.some((l) => /^ {4}\+ +Jobs\.Create +Finance\/Receivables +role automation-user +binding automation-users-payments +via group:automation-users$/.test(l))).toBe(true);
  expect(lines.some((l) => /^ {4}- +Jobs\.Create +Finance\/Payments /.test(l))).toBe(true);
  expect(lines).toContain('  updated RoleBinding/finance/automation-users-payments');
});

test('Markdown for a pull request: summary line first, one collapsed section per changed tenant, a table per user', async () => {
  const r = await rpaInProcess(['--store', store, 'diff', '-f', changedExamples(), '--output', 'markdown']);
  expect(r.code).toBe(2);
  const md = r.stdout;
  const lines = md.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^\*\*rpa-access diff\*\*: 2 users gain 16 permissions, 2 users lose 16 permissions in 1 tenant/);
  // Structure: balanced <details>, one per changed tenant, each with a <summary> on its first line.
  const opens = lines.filter((l) => l === '<details>').length;
  expect(opens).toBe(1);
  expect(lines.filter((l) => l === '</details>').length).toBe(opens);
  const at = lines.indexOf('<details>');
  expect(lines[at + 1]).toMatch(/^<summary><b>finance<\/b>: .*<\/summary>$/);
  // A blank line after the summary, or GitHub renders the table as text.
  expect(lines[at + 2]).toBe('');
  const headings = lines.filter((l) => l.startsWith('#### '));
  expect(headings).toEqual(['#### john-smith (John Smith, john.smith@example.com)', '#### priya-nair (Priya Nair, priya.nair@example.com)']);
  // Each user's table: a header, a separator, then 16 rows of 7 cells.
  for (const h of headings) {
    const start = lines.indexOf(h) + 2;
    expect(lines[start]).toBe('| | permission | folder | role | binding | via | limited to |');
    expect(lines[start + 1]).toBe('|---|---|---|---|---|---|---|');
    const rows = lines.slice(start + 2, start + 18);
    expect(rows.every((row) => row.split(' | ').length === 7 && row.startsWith('| ') && row.endsWith(' |'))).toBe(true);
    expect(rows.filter((row) => row.startsWith('| ➕ gained')).length).toBe(8);
    expect(rows.filter((row) => row.startsWith('| ➖ lost')).length).toBe(8);
    expect(lines[start + 18]).toBe('');
  }
  expect(lines).toContain('- updated `RoleBinding/finance/automation-users-payments`');
});

test('Markdown escapes what could break the table or open a tag', async () => {
  const dir = copyExamples();
  const file = path.join(dir, 'finance', BINDING);
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('folder: Finance/Payments', 'folder: "Finance/<b>a|b</b>"'));
  const r = await rpaInProcess(['--store', store, 'diff', '-f', dir, '--output', 'markdown']);
  expect(r.code).toBe(2);
  expect(r.stdout).toContain('Finance/&lt;b&gt;a&#124;b&lt;/b&gt;');
  expect(r.stdout).not.toContain('<b>a|b');
});

test('invalid documents or a refused plan: exit 1, one line per problem, nothing compared', async () => {
  const dir = copyExamples();
  const file = path.join(dir, 'finance', BINDING);
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('name: automation-user\n', 'name: owner\n'));
  const r = await rpaInProcess(['--store', store, 'diff', '-f', dir]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/automation-users/);
  const both = await rpaInProcess(['diff', '-f', EXAMPLES, '--against-cluster', '--against-files', EXAMPLES]);
  expect(both).toMatchObject({ code: 1, stderr: 'rpa-access: error: give one of --against, --against-cluster and --against-files\n' });
});
