/**
 * Loading documents (files, directories, multi-document YAML with line numbers) and checking a
 * document set offline. In-process: no child process needed for these.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkDocuments, formatProblem } from '../../src/documents/check.js';
import { expandPaths, loadDocuments, parseDocuments, splitDocuments } from '../../src/documents/load.js';
import { EXAMPLES, writeTree } from './helpers.js';

const group = (name: string, ns = 't1') => `apiVersion: rpa-access.io/v1alpha1\nkind: Group\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec: {}\n`;

describe('splitting and parsing YAML streams', () => {
  test('each document knows the line its content starts on', () => {
    const text = [
      '# leading comment', //  1
      group('a').trimEnd(), //  2-7
      '---', //  8
      '# about b', //  9
      '', // 10
      group('b').trimEnd(), // 11-16
      '--- # an empty document', // 17
      '---', // 18
      '--- {apiVersion: x, kind: Y}', // 19
      '...', // 20
      '---', // 21
      'kind: Z', // 22
    ].join('\n');
    const { documents, problems } = parseDocuments(text, 'f.yaml');
    expect(problems).toEqual([]);
    expect(documents.map((d) => [d.line, (d.doc as { kind: string }).kind])).toEqual([
      [2, 'Group'],
      [11, 'Group'],
      [19, 'Y'],
      [22, 'Z'],
    ]);
  });

  test('CRLF line ends and a byte-order mark do not shift lines', () => {
    const text = '\uFEFF' + `${group('a')}---\n${group('b')}`.replace(/\n/g, '\r\n');
    const { documents } = parseDocuments(text, 'f.yaml');
    expect(documents.map((d) => d.line)).toEqual([1, 8]);
    expect((documents[1]!.doc as { metadata: { name: string } }).metadata.name).toBe('b');
  });

  test('a syntax error is reported at its own line in the file, and other documents still load', () => {
    const text = `${group('a')}---\napiVersion: rpa-access.io/v1alpha1\nkind: Group\nmetadata:\n  name: [unclosed\n  namespace: t1\n---\n${group('c')}`;
    const { documents, problems } = parseDocuments(text, 'f.yaml');
    expect(documents.map((d) => d.line)).toEqual([1, 14]);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.line).toBeGreaterThanOrEqual(11);
    expect(problems[0]!.line).toBeLessThanOrEqual(12);
    expect(problems[0]!.message).toMatch(/^invalid YAML: /);
    const dup = parseDocuments('kind: Group\nmetadata:\n  name: a\n  name: b\n', 'g.yaml');
    expect(dup.problems).toEqual([{ path: 'g.yaml', line: 4, message: expect.stringContaining('duplicated mapping key') }]);
  });

  test('timestamps stay strings, merge keys work, a kubectl List is expanded', () => {
    const { documents } = parseDocuments(
      'base: &b {x: 1}\nspec:\n  <<: *b\n  expiresAt: 2030-12-31T23:59:59Z\n  on: yes\n---\napiVersion: v1\nkind: List\nitems:\n  - {kind: Group}\n  - {kind: User}\n',
      'f.yaml',
    );
    expect(documents[0]!.doc).toEqual({ base: { x: 1 }, spec: { x: 1, expiresAt: '2030-12-31T23:59:59Z', on: 'yes' } });
    expect(documents.slice(1).map((d) => [d.line, (d.doc as { kind: string }).kind])).toEqual([
      [7, 'Group'],
      [7, 'User'],
    ]);
  });

  test('a document marker is only one at column 0', () => {
    expect(splitDocuments('a: |\n  ---\n  text\nb: 1\n')).toHaveLength(1);
    expect(splitDocuments('a: 1\n---\nb: 2\n---x: 3\n')).toHaveLength(2);
  });
});

describe('expanding paths', () => {
  test('directories recursively, in name order, YAML and JSON only, kustomization and hidden entries skipped', () => {
    const dir = writeTree({
      'b.yaml': group('b'),
      'a.yml': group('a'),
      'c.json': JSON.stringify({ kind: 'Group' }),
      'notes.txt': 'not read',
      'README.md': '# not read',
      'kustomization.yaml': 'resources: [a.yml]\n',
      'sub/z.yaml': group('z'),
      'sub/deeper/y.yaml': group('y'),
      '.git/config.yaml': 'x: 1\n',
    });
    fs.symlinkSync(dir, path.join(dir, 'sub/loop'));
    const { files, problems } = expandPaths([dir, path.join(dir, 'notes.txt'), path.join(dir, 'missing.yaml')]);
    expect(files.map((f) => path.relative(dir, f))).toEqual(['a.yml', 'b.yaml', 'c.json', 'sub/deeper/y.yaml', 'sub/z.yaml', 'notes.txt']);
    expect(problems).toEqual([{ path: path.join(dir, 'missing.yaml'), message: 'cannot read: no such file or directory' }]);
  });

  test('loadDocuments reads standard input for -', () => {
    const loaded = loadDocuments(['-'], { readStdin: () => `---\n${group('a')}` });
    expect(loaded.documents).toEqual([{ path: '<stdin>', line: 2, doc: expect.objectContaining({ kind: 'Group' }) }]);
  });

  test('the examples load: every tenant directory, every document', () => {
    const loaded = loadDocuments([EXAMPLES]);
    expect(loaded.problems).toEqual([]);
    expect(new Set(loaded.files.map((f) => path.relative(EXAMPLES, f).split(path.sep)[0]))).toEqual(new Set(['finance', 'hr', 'platform', 'sales']));
    const checked = checkDocuments(loaded);
    expect(checked.problems).toEqual([]);
    expect(checked.warnings).toEqual([]);
    expect(checked.tenants).toEqual(['finance', 'hr', 'platform', 'sales']);
  });
});

describe('checking a document set offline', () => {
  const check = (files: Record<string, string>, defaultNamespace?: string) => {
    const dir = writeTree(files);
    const checked = checkDocuments(loadDocuments([dir]), defaultNamespace ? { defaultNamespace } : {});
    const rel = (s: string) => s.replaceAll(`${dir}${path.sep}`, '');
    return { ...checked, lines: checked.problems.map((p) => rel(formatProblem(p))), warningLines: checked.warnings.map((p) => rel(formatProblem(p))) };
  };

  test('duplicates, foreign kinds and cross-object rules, each at its document', () => {
    const owner = (name: string, user: string) =>
      `apiVersion: rpa-access.io/v1alpha1\nkind: RoleBinding\nmetadata:\n  name: ${name}\n  namespace: t1\nspec:\n  roleRef: {name: owner}\n  subjects: [{kind: User, name: ${user}}]\n`;
    const { lines, objects } = check({
      'a.yaml': `${group('g')}---\n${group('g')}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: t1\n`,
      'b.yaml': `${owner('o1', 'ann')}---\n${owner('o2', 'bob')}`,
    });
    expect(lines).toEqual([
      'a.yaml:8: Group t1/g: duplicate: already defined at a.yaml:1',
      'a.yaml:15: Namespace t1: not an rpa-access document (apiVersion v1, kind Namespace): only rpa-access.io/v1alpha1 User, Group, Role, RoleBinding are read; apply other objects with kubectl, from other paths',
      expect.stringMatching(/^b\.yaml:10: RoleBinding t1\/o2: at most one owner per tenant: RoleBinding t1\/o1 already grants owner/),
    ]);
    expect(objects.map((o) => o.entry.name)).toEqual(['g', 'o1', 'o2']);
  });

  test('a default namespace fills documents that name none; dangling references are warnings', () => {
    const binding = 'apiVersion: rpa-access.io/v1alpha1\nkind: RoleBinding\nmetadata:\n  name: b\nspec:\n  roleRef: {name: missing-role}\n  subjects: [{kind: Group, name: ops}]\n  folder: A\n';
    const { lines, warningLines, tenants } = check({ 'b.yaml': binding }, 'finance');
    expect(lines).toEqual([]);
    expect(tenants).toEqual(['finance']);
    expect(warningLines).toEqual([expect.stringMatching(/^b\.yaml:1: RoleBinding finance\/b: Role "missing-role" does not exist in tenant finance/)]);
  });
});
