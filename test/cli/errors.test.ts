/**
 * Errors: one clear line on stderr, `rpa-access: error: ...`, exit 1, never a stack trace unless
 * --debug (as real processes); help, version and malformed questions (in-process, cheaper).
 */
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, expectNoStackTrace, rpa, rpaInProcess, SPAWN_TIMEOUT, tempDir } from './helpers.js';

test('usage errors and an unreachable store: one line, exit 1, no stack trace unless --debug; no password shown', async () => {
  const store = 'postgres://app:s3cret@127.0.0.1:1/rpa';
  const [unknownCommand, typo, missingValue, unreachable, debug] = await Promise.all([
    rpa(['bogus']),
    rpa(['check', '--tenant', 'finance', '--user', 'ann', '--permision', 'Jobs.View']),
    rpa(['validate', '-f']),
    rpa(['--store', store, 'check', '--tenant', 'finance', '--user', 'ann', '--permission', 'Users.View']),
    rpa(['--debug', '--store', store, 'permissions', '--tenant', 'finance', '--user', 'ann']),
  ]);
  expect(unknownCommand).toEqual({ code: 1, stdout: '', stderr: "rpa-access: error: unknown command 'bogus'\n" });
  expect(typo).toEqual({ code: 1, stdout: '', stderr: "rpa-access: error: unknown option '--permision' (Did you mean --permission?) (see rpa-access check --help)\n" });
  expect(missingValue).toEqual({ code: 1, stdout: '', stderr: "rpa-access: error: option '-f, --filename <path...>' argument missing (see rpa-access validate --help)\n" });

  expect(unreachable.code).toBe(1);
  expect(unreachable.stdout).toBe('');
  expect(unreachable.stderr).toMatch(/^rpa-access: error: cannot open store postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/rpa: [^\n]+\n$/);
  expectNoStackTrace(unreachable.stderr);

  expect(debug.code).toBe(1);
  expect(debug.stderr).toMatch(/^rpa-access: error: cannot open store postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/rpa: /);
  expect(debug.stderr).toMatch(/^\s+at .+/m);
  for (const r of [unknownCommand, typo, missingValue, unreachable, debug]) expect(r.stderr).not.toContain('s3cret');
}, SPAWN_TIMEOUT);

describe('in-process', () => {
  test('every command has --help (exit 0); --version; no command prints the help and exits 1', async () => {
    for (const command of ['validate', 'apply', 'check', 'permissions', 'operator', 'serve']) {
      const r = await rpaInProcess([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: rpa-access ${command} \\[options\\]`));
    }
    const help = await rpaInProcess(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['validate', 'apply', 'check', 'permissions', 'operator', 'serve']) expect(help.stdout).toContain(`\n  ${command} `);
    expect(await rpaInProcess(['--version'])).toEqual({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/), stderr: '' });
    const none = await rpaInProcess([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^Usage: rpa-access /);
  });

  test('a malformed question is an error (exit 1), before the store is even read', async () => {
    const store = path.join(tempDir(), 'never-created');
    const ask = (...extra: string[]) => rpaInProcess(['--store', store, 'check', '--tenant', 'finance', '--user', 'ann', ...extra]);
    const cases: [string[], string][] = [
      [['--permission', 'Jobs.Create'], 'Jobs is a folder resource: the check must name a folder'],
      [['--permission', 'Users.View', '--folder', 'Finance'], 'Users is a tenant resource: the check must not name a folder'],
      [['--permission', 'Jobs.Create', '--folder', 'Finance//Invoices'], 'invalid folder: must be a folder path of 1 to 7 non-empty segments like Finance/Invoices: it has an empty segment'],
      [['--permission', 'Jobs.Create', '--folder', 'F', '--resource', 'invoice-bot'], 'invalid resource "invoice-bot": expected Kind/name, e.g. Process/invoice-bot'],
      [['--permission', 'jobs.create', '--folder', 'F'], 'unknown permission "jobs.create": expected Resource.Action from the catalog, e.g. Jobs.Create'],
    ];
    for (const [args, message] of cases) {
      expect(await ask(...args)).toEqual({ code: 1, stdout: '', stderr: `rpa-access: error: ${message}\n` });
    }
    // A well-formed question about a store that does not exist: an error naming it (a mistyped
    // path is not an empty store), and nothing created.
    const r = await ask('--permission', 'Users.View');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${path.join(store, 'store.db')}: it does not exist`);
    expect(fs.existsSync(store)).toBe(false);
  });

  test('$RPA_ACCESS_STORE selects the store; a bad log setting is one error line', async () => {
    const dir = tempDir();
    const applied = await rpaInProcess(['apply', '-f', path.join(EXAMPLES, 'hr'), '-o', 'json'], { RPA_ACCESS_STORE: dir });
    expect(applied.code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'store.db'))).toBe(true);
    const checked = await rpaInProcess(['check', '--tenant', 'hr', '--user', 'hr-01', '--permission', 'Logs.Create', '--folder', 'HR', '-o', 'json'], { RPA_ACCESS_STORE: dir });
    expect(JSON.parse(checked.stdout)).toEqual({ allowed: true, grants: [{ role: 'robot', binding: null, via: 'user', folder: null }] });

    const bad = await rpaInProcess(['validate', '-f', EXAMPLES], { RPA_ACCESS_LOG_LEVEL: 'loud' });
    expect(bad).toEqual({ code: 1, stdout: '', stderr: 'rpa-access: error: invalid log level "loud": expected one of fatal, error, warn, info, debug, trace, silent\n' });
    const badFlag = await rpaInProcess(['--log-format', 'xml', 'validate', '-f', EXAMPLES]);
    expect(badFlag.code).toBe(1);
    expect(badFlag.stderr).toBe("rpa-access: error: option '--log-format <format>' argument 'xml' is invalid. Allowed choices are json, pretty.\n");
  });

  test('no documents at all is an error, not a success', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'notes.md'), '# nothing here');
    // (Global options may follow the command.)
    for (const args of [['validate', '-f', dir], ['apply', '-f', dir, '--store', path.join(dir, 'store')]]) {
      const r = await rpaInProcess(args);
      expect(r).toEqual({ code: 1, stdout: '', stderr: `rpa-access: error: no documents found in ${dir} (*.yaml, *.yml and *.json files are read)\n` });
    }
  });
});
