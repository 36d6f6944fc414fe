/**
 * What every command shares: where output goes, the global options, the logger, opening the
 * store, and the error type that becomes one `rpa-access: error: ...` line and an exit code.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Command } from 'commander';
import { escapeControl, terminalSafeJson } from '../escape.js';
import { createLogger, type Logger } from '../log.js';
import type { AccessStore } from '../store/store.js';
import { resolveStoreUrl } from '../store/location.js';

/** Exit codes (contract section 5). */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_DENIED = 3;

/** Where a run of the CLI writes and reads; the real process, or a test's buffers. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Standard input, for `-f -`. */
  readStdin?: () => string;
}

export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
};

/** An error the user can act on: printed as one line, exit code 1 unless said otherwise. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_ERROR,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface GlobalOptions {
  store?: string;
  debug?: boolean;
  logLevel?: string;
  logFormat?: string;
}

export interface CliContext {
  io: CliIo;
  globals: GlobalOptions;
  /** The store URL as resolved: --store, else $RPA_ACCESS_STORE, else ./.rpa-access/. */
  storeUrl: string;
  logger: Logger;
  /** Run as the kubectl plugin (`kubectl rpa-access`): read commands default to --from-cluster. */
  plugin: boolean;
  out(line?: string): void;
  err(line: string): void;
  warn(line: string): void;
}

export function createContext(command: Command, io: CliIo, plugin = false): CliContext {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const level = globals.logLevel ?? (globals.debug && !io.env.RPA_ACCESS_LOG_LEVEL ? 'debug' : undefined);
  const logger = createLogger({ level, format: globals.logFormat, env: io.env, name: 'rpa-access' });
  return {
    io,
    globals,
    storeUrl: resolveStoreUrl(globals.store, io.env),
    logger,
    plugin,
    // Text output escapes control and format characters: a name or a folder from a document
    // never moves the cursor, recolours the terminal, reorders text or forges a line.
    out: (line = '') => io.stdout(`${escapeControl(line)}\n`),
    err: (line) => io.stderr(`${escapeControl(line)}\n`),
    warn: (line) => io.stderr(`warning: ${escapeControl(line)}\n`),
  };
}

/**
 * Runs `work` with the store open, and closes it whatever happens. With `readOnly` the store is
 * opened read-only and must exist: a mistyped path is an error naming it (exit 1), never an
 * empty store. `missingIsEmpty` (diff, apply --dry-run: comparing with a store that would be
 * created) gives `work` undefined for an embedded store that does not exist yet.
 * `description` names the store without credentials.
 */
export async function withStore<T>(
  ctx: CliContext,
  options: { readOnly?: boolean; missingIsEmpty?: boolean },
  work: (store: AccessStore | undefined, description: string) => Promise<T>,
): Promise<T> {
  // Loaded here, not at start-up: commands without a store never load the database drivers.
  const { describeStore, isPostgresUrl, openStore } = await import('../store/open.js');
  const description = describeStore(ctx.storeUrl);
  if (options.missingIsEmpty && !isPostgresUrl(ctx.storeUrl) && ctx.storeUrl !== ':memory:' && description.startsWith('sqlite:')) {
    const file = description.slice('sqlite:'.length);
    if (!fs.existsSync(file)) {
      ctx.logger.debug({ store: description }, 'embedded store does not exist yet: empty');
      return work(undefined, description);
    }
  }
  const started = Date.now();
  const store = await openStore(ctx.storeUrl, { readOnly: Boolean(options.readOnly) });
  ctx.logger.debug({ store: store.description, backend: store.backend, readOnly: Boolean(options.readOnly), ms: Date.now() - started }, 'store opened');
  try {
    return await work(store, store.description);
  } finally {
    await store.close();
  }
}

/** Who is applying, for the audit trail: $USER, else the account running the process. */
export function actorName(env: NodeJS.ProcessEnv): string {
  if (env.USER) return env.USER;
  try {
    return os.userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

export type OutputFormat = 'text' | 'json';

/** JSON output: exact (a parser reads back the very same values), yet safe to show in a terminal. */
export function printJson(ctx: CliContext, value: unknown): void {
  ctx.io.stdout(`${terminalSafeJson(JSON.stringify(value, null, 2))}\n`);
}
