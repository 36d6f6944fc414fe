/**
 * The options of `rpa-access serve` and their defaults, in one place: the CLI declares its flags
 * with them (src/cli/commands.ts), `start` and `run` (./main.ts) receive them typed. Kept free of
 * imports so that the CLI reads it without loading the HTTP server.
 */

export const AUTH_MODES = ['tokenreview', 'token', 'none'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

export const SERVE_DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
} as const;

export interface ServeCommandOptions {
  port: number;
  host: string;
  /** Default: `token` with tokenFile, else `tokenreview` (resolveAuthMode); `none` is never a default. */
  auth?: AuthMode;
  /** Accepted bearer tokens, one per line (with auth `token`). */
  tokenFile?: string;
  /** Length of the sessions logins open, e.g. `90s`, `1h` (default 1 hour; parsed by the model). */
  sessionTtl?: string;
  /** Serve the read-only permissions page at /ui/ (src/server/page.ts). */
  ui?: boolean;
}

/** A wrong option: the CLI prints the message and exits 1. */
export class ServeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServeConfigError';
  }
}

/**
 * The authentication mode: `auth` when given; `token` when only `tokenFile` is given;
 * otherwise `tokenreview`. `none` is never a default.
 */
export function resolveAuthMode(options: Pick<ServeCommandOptions, 'auth' | 'tokenFile'>): AuthMode {
  const mode = options.auth ?? (options.tokenFile ? 'token' : 'tokenreview');
  if (!AUTH_MODES.includes(mode)) throw new ServeConfigError(`--auth must be one of ${AUTH_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  if (mode === 'token' && !options.tokenFile) throw new ServeConfigError('--auth token needs --token-file PATH (one token per line)');
  if (mode !== 'token' && options.tokenFile) throw new ServeConfigError(`--token-file is used only with --auth token (got --auth ${mode})`);
  return mode;
}
