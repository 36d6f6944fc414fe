/**
 * The logger factory shared by the CLI, the operator and the decision server.
 *
 * JSON lines on stderr by default (stdout belongs to command output); human-readable lines only
 * when asked for, with `--log-format pretty` or RPA_ACCESS_LOG_FORMAT=pretty. The level comes
 * from `--log-level` or RPA_ACCESS_LOG_LEVEL (default `info`). Secrets are redacted whatever the
 * level: passwords, tokens, authorization headers and store URLs (which may carry a password).
 */
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The one logger type of the project: pino's. Every module that logs takes a `Logger`; a test
 * that reads what was logged gives one writing to its own stream (`pino(options, stream)`).
 */
export type { Logger };

/** For a caller that wants silence: logs nothing at any level (and opens no stream for it). */
export const silentLogger: Logger = pino({ level: 'silent' }, { write: () => undefined });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Paths pino removes from every log record, at any level. */
const REDACT_PATHS = [
  'password', '*.password',
  'token', '*.token',
  'authorization', '*.authorization',
  'headers.authorization', 'req.headers.authorization', 'request.headers.authorization',
  'storeUrl', '*.storeUrl',
  'databaseUrl', '*.databaseUrl',
];

const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi;
const BEARER = /\b(bearer)\s+[A-Za-z0-9._~+/=-]+/gi;

/**
 * Free text (an error message, a stack) with credentials taken out: the password of any URL
 * (`postgres://u:secret@h` → `postgres://u:***@h`) and bearer tokens. Driver errors sometimes
 * quote the connection string; this is what keeps it out of logs, status and Events.
 */
export function scrubSecrets(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@').replace(BEARER, '$1 [redacted]');
}

function errSerializer(err: Error): Record<string, unknown> {
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const key of ['message', 'stack'] as const) {
    if (typeof out[key] === 'string') out[key] = scrubSecrets(out[key] as string);
  }
  return out;
}

export interface LoggerOptions {
  /** Flag value, if given; else the environment, else `info`. */
  level?: string;
  /** Flag value, if given; else the environment, else `json`. */
  format?: string;
  /** Logger name, e.g. `operator`. */
  name?: string;
  /** Where records go; stderr (fd 2, synchronous) by default. */
  destination?: DestinationStream;
  env?: NodeJS.ProcessEnv;
}

/** A bad --log-level / --log-format value: a user error, reported as one line. */
export class LogConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogConfigError';
  }
}

export function resolveLogLevel(flag?: string, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const value = (flag || env.RPA_ACCESS_LOG_LEVEL || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new LogConfigError(`invalid log level ${JSON.stringify(flag || env.RPA_ACCESS_LOG_LEVEL)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as LogLevel;
}

export function resolveLogFormat(flag?: string, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const value = (flag || env.RPA_ACCESS_LOG_FORMAT || 'json').toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(value)) {
    throw new LogConfigError(`invalid log format ${JSON.stringify(flag || env.RPA_ACCESS_LOG_FORMAT)}: expected one of ${LOG_FORMATS.join(', ')}`);
  }
  return value as LogFormat;
}

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream;

/**
 * pino-pretty is a development dependency: where it is not installed, pretty output falls back
 * to JSON (with one warning record) rather than failing the command.
 */
function prettyStream(): DestinationStream | undefined {
  try {
    const required = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    const factory = typeof required === 'function' ? required : required.default;
    // Synchronous, in this thread: nothing is lost when a CLI command exits right after logging.
    return factory({ destination: 2, sync: true, colorize: Boolean(process.stderr.isTTY), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  } catch {
    return undefined;
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const level = resolveLogLevel(options.level, env);
  const format = resolveLogFormat(options.format, env);
  const pretty = !options.destination && format === 'pretty' ? prettyStream() : undefined;
  const destination = options.destination ?? pretty ?? pino.destination({ fd: 2, sync: true });
  const logger = pino(
    {
      level,
      ...(options.name ? { name: options.name } : {}),
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: errSerializer, error: errSerializer },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  if (format === 'pretty' && !pretty && !options.destination) {
    logger.warn('pino-pretty is not installed: logging JSON instead of the pretty format');
  }
  return logger;
}
