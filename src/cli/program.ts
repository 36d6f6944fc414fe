/**
 * The `rpa-access` command line (contract section 5), built with commander. `runCli` never exits
 * the process nor throws: it returns the exit code, so tests can run it in-process too.
 *
 * Errors are one line on stderr, `rpa-access: error: ...`, with a stack trace only under
 * --debug. Exit codes: 0 success / allowed, 1 error / invalid / refused, 3 denied (check).
 * Usage errors (unknown option, missing argument) exit 1 as well.
 */
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { LOG_FORMATS, LOG_LEVELS, LogConfigError } from '../log.js';
import { RequestError } from '../model/request-error.js';
import { StoreOpenError } from '../store/location.js';
import { ServeConfigError } from '../server/options.js';
import { registerCommands, RpaCommand } from './commands.js';
import { CliError, createContext, EXIT_ERROR, EXIT_OK, processIo, type CliContext, type CliIo } from './context.js';

/** The package version, found by walking up from this module (src/cli or dist/src/cli). */
function packageVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'rpa-access' && pkg.version) return pkg.version;
    } catch {
      /* keep looking */
    }
    dir = new URL('..', dir);
  }
  return '0.0.0';
}

/** Commander's multi-line messages become one line. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Errors a user causes and can fix: no hint about --debug for those. */
function isUserError(err: unknown): boolean {
  return [CliError, RequestError, LogConfigError, StoreOpenError, ServeConfigError].some((type) => err instanceof type);
}

/** How the CLI was started: as `rpa-access`, or as the kubectl plugin `kubectl rpa-access`. */
export interface CliMode {
  plugin?: boolean;
}

function buildProgram(io: CliIo, state: { exitCode: number; debug: boolean }, mode: CliMode = {}): Command {
  const plugin = Boolean(mode.plugin);
  const name = plugin ? 'kubectl rpa-access' : 'rpa-access';
  const program = new RpaCommand(name);

  /** Runs a command's work with its context; records the exit code; errors are reported by runCli. */
  const run = async (command: Command, fn: (ctx: CliContext) => Promise<number>): Promise<void> => {
    state.debug = Boolean(command.optsWithGlobals<{ debug?: boolean }>().debug);
    const ctx = createContext(command, io, plugin);
    state.exitCode = await fn(ctx);
  };

  program
    .description('Access control for RPA orchestrators: validate and apply Users, Groups, Roles and RoleBindings; check and explain decisions.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .addOption(new Option('--store <url>', 'access store: postgres://... or a directory/file for the embedded store (default: $RPA_ACCESS_STORE, else ./.rpa-access/)'))
    .option('--debug', 'print stack traces on errors, and debug logs')
    .addOption(new Option('--log-level <level>', 'log level (default: $RPA_ACCESS_LOG_LEVEL, else info)').choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'log format on stderr (default: $RPA_ACCESS_LOG_FORMAT, else json)').choices(LOG_FORMATS))
    .helpCommand(true)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s, write) => write(`${name}: ${oneLine(s)}\n`),
    })
    .addHelpText(
      'after',
      '\nExit codes: 0 success (check: allowed; diff: no change), 1 error, invalid documents or refused apply, 2 changes (diff), 3 denied (check).\n' +
        `Run ${name} COMMAND --help for a command's options and examples.`,
    );

  registerCommands(program, run);

  // Subcommands were created after the settings above, so they inherit exitOverride and the
  // output configuration; a usage error names the command's help.
  for (const command of program.commands) {
    command.configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s, write) => write(`${name}: ${oneLine(s)} (see ${name} ${command.name()} --help)\n`),
    });
  }
  return program;
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo, mode: CliMode = {}): Promise<number> {
  const state = { exitCode: EXIT_OK, debug: argv.includes('--debug') };
  let program: Command;
  try {
    program = buildProgram(io, state, mode);
    await program.parseAsync([...argv], { from: 'user' });
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed the message (or the help / version).
      return err.exitCode === 0 ? EXIT_OK : EXIT_ERROR;
    }
    const hint = state.debug || isUserError(err) ? '' : ' (run with --debug for details)';
    io.stderr(`${mode.plugin ? 'kubectl rpa-access' : 'rpa-access'}: error: ${oneLine(errorMessage(err))}${hint}\n`);
    if (state.debug && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return EXIT_ERROR;
  }
}
