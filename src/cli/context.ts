/**
 * What every command shares: where output goes, the global options, the logger, opening the
 * store, and the error type that becomes one `rpa-access: error: ...` line and an exit code.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Command } from 'commander';
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
    out: (line = '') => io.stdout(`${line}\n`),
    err: (line) => io.stderr(`${line}\n`),
    warn: (line) => io.stderr(`warning: ${line}\n`),
  };
}

/**
 * Runs `work` with the store open, and closes it whatever happens. With `readOnly`, an embedded
 * store that does not exist yet is not created: `work` gets undefined (an empty store).
 * `description` names the store without credentials.
 */
export async function withStore<T>(
  ctx: CliContext,
  options: { readOnly?: boolean },
  work: (store: AccessStore | undefined, description: string) => Promise<T>,
): Promise<T> {
  // Loaded here, not at start-up: commands without a store never load the database drivers.
  const { describeStore, isPostgresUrl, openStore } = await import('../store/open.js');
  const description = describeStore(ctx.storeUrl);
  if (options.readOnly && !isPostgresUrl(ctx.storeUrl) && ctx.storeUrl !== ':memory:' && description.startsWith('sqlite:')) {
    const file = description.slice('sqlite:'.length);
    if (!fs.existsSync(file)) {
      ctx.logger.debug({ store: description }, 'embedded store does not exist yet: empty');
      return work(undefined, description);
    }
  }
  const started = Date.now();
  const store = await openStore(ctx.storeUrl);
  ctx.logger.debug({ store: store.description, backend: store.backend, ms: Date.now() - started }, 'store opened');
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

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2));
}
