/**
 * Running the CLI from tests: as a real child process (`node --import tsx src/cli/main.ts`, no
 * build needed) or in-process through `runCli` with captured output (for long tables of
 * questions, where a process per question would cost a second each).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkDocuments, desiredStates } from '../../src/documents/check.js';
import { loadDocuments } from '../../src/documents/load.js';
import { allEntries, canonicalJson } from '../../src/model/tenant.js';
import { runCli } from '../../src/cli/program.js';
import type { AccessStore } from '../../src/store/store.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const EXAMPLES = path.join(ROOT, 'examples');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a child: ours without jest's NODE_OPTIONS or a store of the caller's. */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.RPA_ACCESS_STORE;
  delete env.RPA_ACCESS_LOG_LEVEL;
  delete env.RPA_ACCESS_LOG_FORMAT;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** `rpa-access ARGS` as a child process. */
export function rpa(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string; input?: string; runAs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', TSX, MAIN, ...args],
      {
        cwd: options.cwd ?? ROOT, env: childEnv(options.env ?? {}), maxBuffer: 16 * 1024 * 1024, timeout: 60_000,
        // runAs: a user id (and its group) other than ours, e.g. 65534 (nobody), for file permission tests.
        ...(options.runAs !== undefined ? { uid: options.runAs, gid: options.runAs } : {}),
      },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code ?? null) : 0;
        if (err && typeof code !== 'number') return reject(err);
        resolve({ code: code as number, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** `rpa-access ARGS` in this process, with captured output. */
export async function rpaInProcess(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: { PATH: process.env.PATH, ...env } });
  return { code, stdout, stderr };
}

const created: string[] = [];
afterAll(() => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A new temporary directory, removed after the test file. */
export function tempDir(prefix = 'rpa-access-cli-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Writes `files` (relative path -> content) under a new temporary directory. */
export function writeTree(files: Record<string, string>, dir = tempDir()): string {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  return dir;
}

/** A copy of examples/ to modify. */
export function copyExamples(): string {
  const dir = tempDir('rpa-access-examples-');
  fs.cpSync(EXAMPLES, dir, { recursive: true });
  return dir;
}

/** Everything the store holds, audit length included: equal dumps mean nothing was written. */
export async function dumpStore(store: AccessStore): Promise<string> {
  const revisions = [...(await store.revisions())].sort();
  const tenants = await Promise.all(revisions.map(async ([t]) => allEntries((await store.loadTenant(t))!.state)));
  return canonicalJson({ revisions, tenants, audit: (await store.audit()).length });
}

/** Applies documents straight through the store API (to set a store up without a process). */
export async function applyDirect(store: AccessStore, paths: string[]): Promise<void> {
  const checked = checkDocuments(loadDocuments(paths));
  if (checked.problems.length > 0) throw new Error(`fixture problems: ${JSON.stringify(checked.problems)}`);
  const result = await store.apply(desiredStates(checked), { actor: 'test', source: 'jest' });
  if (result.violations.length > 0) throw new Error(`fixture refused: ${JSON.stringify(result.violations)}`);
}

/** No stack trace, no Node.js error dump: what a user must never see without --debug. */
export function expectNoStackTrace(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at .+[:(]/m);
  expect(stderr).not.toMatch(/node:internal|Node\.js v\d/);
}

/** Timeout of a test that starts child processes (each costs about a second on a busy machine). */
export const SPAWN_TIMEOUT = 120_000;
