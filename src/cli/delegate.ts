/**
 * `rpa-access operator` and `rpa-access serve`: long-running processes that live in their own
 * modules (src/operator/main.ts, src/server/main.ts). The CLI parses their options, builds the
 * logger, resolves the store, then imports the module only when the command runs (so the other
 * commands never load the Kubernetes client or the HTTP server) and calls its `run(options)`.
 *
 * `run` receives a `RunOptions` and resolves when the process should exit (after a signal, for
 * instance), optionally with an exit code.
 */
import type { Logger } from '../log.js';
import { CliError, EXIT_OK, type CliContext } from './context.js';

export interface RunOptions {
  /** The store URL as resolved (--store, $RPA_ACCESS_STORE, ./.rpa-access/). May hold a password: never log it. */
  storeUrl: string;
  /** The same, safe to log. */
  storeDescription: string;
  logger: Logger;
  debug: boolean;
  /** Arguments the CLI did not recognise, passed through unchanged. */
  args: string[];
  /** The command's own options (camelCase), e.g. `port`, `auth`, `tokenFile` for serve. */
  [option: string]: unknown;
}

export type RunFunction = (options: RunOptions) => Promise<number | void> | number | void;

const MODULES = {
  operator: { path: '../operator/main.js', what: 'the operator' },
  serve: { path: '../server/main.js', what: 'the decision server' },
} as const;

async function loadRun(command: keyof typeof MODULES): Promise<RunFunction> {
  const { path, what } = MODULES[command];
  const url = new URL(path, import.meta.url);
  let mod: { run?: unknown };
  try {
    mod = (await import(url.href)) as { run?: unknown };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const missing = e.code === 'ERR_MODULE_NOT_FOUND' && (e.message ?? '').includes(url.pathname.replace(/\.js$/, ''));
    if (missing) throw new CliError(`${what} is not part of this build (${path.replace('../', 'src/').replace(/\.js$/, '.ts')} is missing)`);
    throw new CliError(`cannot load ${what}: ${e.message ?? String(err)}`);
  }
  if (typeof mod.run !== 'function') throw new CliError(`cannot start ${what}: ${path} exports no run(options) function`);
  return mod.run as RunFunction;
}

export async function delegate(ctx: CliContext, command: keyof typeof MODULES, options: Record<string, unknown>, args: string[]): Promise<number> {
  const run = await loadRun(command);
  const code = await run({
    ...options,
    storeUrl: ctx.storeUrl,
    storeDescription: (await import('../store/open.js')).describeStore(ctx.storeUrl),
    logger: ctx.logger,
    debug: Boolean(ctx.globals.debug),
    args,
  });
  return typeof code === 'number' ? code : EXIT_OK;
}
