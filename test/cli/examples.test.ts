/**
 * The examples keep their promises: every question of examples/README.md gets the answer written
 * there (in-process: one question a millisecond rather than a process a second), and the demo
 * (apply to the embedded store in ./.rpa-access/, then John Smith's permissions) works as real
 * processes from an empty directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, rpa, rpaInProcess, SPAWN_TIMEOUT, tempDir } from './helpers.js';

interface Question {
  question: string;
  args: string[];
  allowed: boolean;
  via?: string;
}

/** Rows of the README's table: `| question | \`rpa-access check ...\` | allowed (exit 0), via \`x\` |`. */
function readmeQuestions(): Question[] {
  const out: Question[] = [];
  for (const line of fs.readFileSync(path.join(EXAMPLES, 'README.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const command = /^`rpa-access (check [^`]+)`$/.exec(cells[2] ?? '')?.[1];
    if (!command) continue;
    const answer = cells[3] ?? '';
    const verdict = /^(allowed|denied) \(exit (\d)\)/.exec(answer);
    if (!verdict) throw new Error(`README row without an answer: ${line}`);
    const via = /via `([^`]+)`/.exec(answer)?.[1];
    out.push({ question: cells[1]!, args: command.split(/\s+/), allowed: verdict[1] === 'allowed', ...(via ? { via } : {}) });
    expect(verdict[2]).toBe(verdict[1] === 'allowed' ? '0' : '3');
  }
  return out;
}

test('every question of examples/README.md has the answer written there', async () => {
  const questions = readmeQuestions();
  expect(questions.length).toBeGreaterThanOrEqual(20);
  // The forum's three use cases and John Smith are all asked.
  for (const who of ['john', 'thorsten-weber', 'dev-anna', 'Robot/hr-01', 'Process/invoice-bot', 'environment']) {
    expect(questions.some((q) => q.args.join(' ').includes(who))).toBe(true);
  }
  const store = tempDir();
  const applied = await rpaInProcess(['--store', store, 'apply', '-f', EXAMPLES]);
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);

  const answers = [];
  for (const q of questions) {
    const r = await rpaInProcess(['--store', store, ...q.args, '--output', 'json']);
    const body = JSON.parse(r.stdout) as { allowed: boolean; grants: { via: string }[] };
    answers.push({ question: q.question, code: r.code, allowed: body.allowed, ...(q.via ? { via: body.grants.some((g) => g.via === q.via) ? q.via : body.grants.map((g) => g.via) } : {}) });
  }
  expect(answers).toEqual(questions.map((q) => ({ question: q.question, code: q.allowed ? 0 : 3, allowed: q.allowed, ...(q.via ? { via: q.via } : {}) })));
});

test('the demo: apply examples/ to the embedded store, then John Smith\'s effective permissions', async () => {
  const cwd = tempDir();
  const applied = await rpa(['apply', '-f', EXAMPLES], { cwd });
  expect(applied.code).toBe(0);
  expect(fs.existsSync(path.join(cwd, '.rpa-access', 'store.db'))).toBe(true);

  const shown = await rpa(['permissions', '--tenant', 'finance', '--user', 'john.smith@example.com'], { cwd });
  expect(shown.code).toBe(0);
  expect(shown.stderr).toBe('');
  const grants = shown.stdout.split('\n').slice(3, 6).map((l) => l.split(/\s{2,}/));
  // The seed's table: Folder Administrator on Folder A (explicit), Automation User on A and B (inherited).
  expect(grants).toEqual([
    ['folder-administrator', 'Finance/Invoices', 'john-smith-folder-admin-invoices', 'user'],
    ['automation-user', 'Finance/Invoices', 'automation-users-invoices', 'group:automation-users'],
    ['automation-user', 'Finance/Payments', 'automation-users-payments', 'group:automation-users'],
  ]);
}, SPAWN_TIMEOUT);
