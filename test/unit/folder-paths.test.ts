// Issue 13 item 1: a folder path is validated once, in the model (src/model/folders.ts), and
// documents, `check --folder` and the HTTP API all go through it. `..` must never let a binding
// on Ops/Pay answer for Ops/Pay/../Payroll (a folder it does not cover).
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseRequest } from '../../src/model/engine.js';
import { RequestError } from '../../src/model/request-error.js';
import { folderPathProblem, isFolderPath } from '../../src/model/folders.js';
import { FOLDER_PATTERN } from '../../src/model/schemas.js';
import { validateDocument } from '../../src/model/validate.js';
import { binding, doc, plan, user } from '../support/fixtures.js';
import { TenantIndex } from '../../src/model/engine.js';

const HOSTILE: [string, string][] = [
  ['a .. segment', 'Ops/Pay/../Payroll'],
  ['a . segment', 'Ops/./Pay'],
  ['only ..', '..'],
  ['a trailing ..', 'Ops/..'],
  ['a NUL', 'Ops/Pay\u0000'],
  ['an escape sequence', 'Ops/\u001b[31mPay'],
  ['a line break', 'Ops/Pa\ny'],
  ['a DEL', 'Ops/Pay\u007f'],
  ['a C1 control', 'Ops/Pay\u009b'],
  ['a zero-width space (format)', 'Ops/Pa\u200by'],
  ['a right-to-left override (format)', 'Ops/\u202ePay'],
  ['a line separator', 'Ops/Pa\u2028y'],
  ['a leading blank', ' Ops/Pay'],
  ['a trailing blank', 'Ops/Pay '],
  ['a trailing no-break space', 'Ops/Pay\u00a0'],
  ['an empty segment', 'Ops//Pay'],
  ['8 levels', 'A/B/C/D/E/F/G/H'],
];

const GOOD = ['Ops', 'Ops/Pay', 'Finance/Invoices Q1/2026', 'A/B/C/D/E/F/G', '.hidden', 'a..b', '...', 'x.', 'Café/Ünïcode', '日本/経理'];

describe('folder paths: one rule in the model', () => {
  test.each(HOSTILE)('refused: %s', (_what, folder) => {
    expect(isFolderPath(folder)).toBe(false);
    expect(folderPathProblem(folder)).toEqual(expect.any(String));
  });

  test.each(GOOD)('accepted: %j', (folder) => {
    expect(isFolderPath(folder)).toBe(true);
    expect(folderPathProblem(folder)).toBeUndefined();
  });

  test('the schema pattern (CRDs, ajv) and the explaining function agree on any string', () => {
    const re = new RegExp(FOLDER_PATTERN, 'u');
    const alphabet = fc.constantFrom('A', 'b', '.', '/', ' ', '\u0000', '\u001b', '\t', '\u200b', '\u00a0', 'é', '\u2028');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 20 }).map((a) => a.join('')), (s) => {
        expect(folderPathProblem(s) === undefined).toBe(re.test(s));
      }),
      { seed: 13, numRuns: 3000 },
    );
  });

  test.each(HOSTILE)('documents: a RoleBinding with %s is refused, naming the rule', (_what, folder) => {
    const r = validateDocument(doc('RoleBinding', 'b', { roleRef: { name: 'folder-viewer' }, subjects: [{ kind: 'User', name: 'ann' }], folder }));
    expect(r.document).toBeUndefined();
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^spec\.folder: /);
    // One line, whatever the folder held.
    expect(r.problems[0]).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
  });

  test.each(HOSTILE)('a question (check --folder, HTTP): %s is a RequestError, never a decision', (_what, folder) => {
    expect(() => parseRequest({ permission: 'Jobs.View', folder })).toThrow(RequestError);
  });

  test('a binding on Ops/Pay never answers for Ops/Pay/../Payroll', () => {
    const state = plan(undefined, [user('ann'), binding('ann-pay', 'folder-viewer', ['ann'], { folder: 'Ops/Pay' })]).next;
    const index = new TenantIndex(state, 1);
    expect(index.check({ user: 'ann', permission: 'Jobs.View', folder: 'Ops/Pay/Sub' }).allowed).toBe(true);
    expect(() => index.check({ user: 'ann', permission: 'Jobs.View', folder: 'Ops/Pay/../Payroll' })).toThrow(RequestError);
  });
});
