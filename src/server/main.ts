/**
 * `rpa-access serve`: the decision HTTP API as a process. The CLI imports this module and calls
 * `run(options)`, which resolves when the server has stopped (SIGTERM / SIGINT); `start` is the
 * same without the signal handling, for tests and benchmarks.
 *
 * Order of start: store opened (and migrated), port bound (so /healthz answers and /readyz says
 * 503 while loading), then every tenant loaded into the index; /v1 answers 503 until then.
 */
import { createLogger, type Logger } from '../log.js';
import type { FastifyInstance } from 'fastify';
import { describeStore, openStore, resolveStoreUrl } from '../store/open.js';
import type { AccessStore } from '../store/store.js';
import { buildServer } from './app.js';
import { AuthConfigError, NoAuth, TokenFileAuth, TokenReviewAuth, kubernetesTokenReviewer, type AuthMode, type Authenticator, type TokenReviewer } from './auth.js';
import { DecisionIndex } from './index-cache.js';
import { ServerMetrics } from './metrics.js';

/**
 * Options of `serve`. The CLI (src/cli/delegate.ts) passes its parsed flags plus `storeUrl`
 * (already resolved) and its `logger`; `store`, `logLevel` and `logFormat` serve direct callers.
 */
export interface ServeOptions {
  store?: string;
  storeUrl?: string;
  port?: number | string;
  host?: string;
  auth?: AuthMode;
  tokenFile?: string;
  logLevel?: string;
  logFormat?: string;
  logger?: Logger;
  [option: string]: unknown;
}

/** What `start` needs beyond the command-line options (tests inject these). */
export interface StartOverrides {
  logger?: Logger;
  /** Replaces the Kubernetes TokenReview for `--auth tokenreview`. */
  tokenReviewer?: TokenReviewer;
  /** Period of the index's store poll (default 5 s). */
  resyncIntervalMs?: number;
  /** Process metrics in /metrics (default true). */
  defaultMetrics?: boolean;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '0.0.0.0';

/** A wrong option: the CLI prints the message and exits 1. */
export class ServeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServeConfigError';
  }
}

const AUTH_MODES: readonly AuthMode[] = ['tokenreview', 'token', 'none'];

/**
 * The authentication mode: `--auth` when given; `token` when only `--token-file` is given;
 * otherwise `tokenreview`. `none` is never a default.
 */
export function resolveAuthMode(options: Pick<ServeOptions, 'auth' | 'tokenFile'>): AuthMode {
  const mode = options.auth ?? (options.tokenFile ? 'token' : 'tokenreview');
  if (!AUTH_MODES.includes(mode)) throw new ServeConfigError(`--auth must be one of ${AUTH_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  if (mode === 'token' && !options.tokenFile) throw new ServeConfigError('--auth token needs --token-file PATH (one token per line)');
  if (mode !== 'token' && options.tokenFile) throw new ServeConfigError(`--token-file is used only with --auth token (got --auth ${mode})`);
  return mode;
}

async function createAuthenticator(mode: AuthMode, options: ServeOptions, log: Logger, overrides: StartOverrides): Promise<Authenticator> {
  try {
    if (mode === 'none') return new NoAuth();
    if (mode === 'token') return new TokenFileAuth(options.tokenFile!, log);
    return new TokenReviewAuth(overrides.tokenReviewer ?? (await kubernetesTokenReviewer()));
  } catch (err) {
    if (err instanceof AuthConfigError) throw new ServeConfigError(err.message);
    throw err;
  }
}

export interface RunningServer {
  app: FastifyInstance;
  index: DecisionIndex;
  store: AccessStore;
  auth: Authenticator;
  logger: Logger;
  /** `http://host:port` as bound (port 0 resolves to the real one). */
  url: string;
  port: number;
  /** Resolves when every tenant is loaded. */
  loaded: Promise<void>;
  close(): Promise<void>;
}

export async function start(options: ServeOptions = {}, overrides: StartOverrides = {}): Promise<RunningServer> {
  const port = options.port === undefined ? DEFAULT_PORT : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ServeConfigError(`--port must be an integer from 0 to 65535 (got ${String(options.port)})`);
  const host = options.host ?? DEFAULT_HOST;
  const mode = resolveAuthMode(options);
  const logger = overrides.logger ?? options.logger ?? createLogger({ level: options.logLevel, format: options.logFormat, name: 'serve' });
  const auth = await createAuthenticator(mode, options, logger, overrides);
  const storeUrl = options.storeUrl ?? resolveStoreUrl(options.store);
  let store: AccessStore | undefined;
  let index: DecisionIndex | undefined;
  let app: FastifyInstance | undefined;
  try {
    store = await openStore(storeUrl);
    index = new DecisionIndex(store, { logger: logger.child({ component: 'index' }), ...(overrides.resyncIntervalMs ? { resyncIntervalMs: overrides.resyncIntervalMs } : {}) });
    app = await buildServer({ index, auth, logger, metrics: new ServerMetrics({ defaultMetrics: overrides.defaultMetrics ?? true }) });
    await app.listen({ port, host });
  } catch (err) {
    await app?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    auth.close();
    throw err;
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  logger.info({ url, store: describeStore(storeUrl), auth: mode }, 'decision API listening');
  if (mode === 'none') {
    logger.warn({ url }, 'authentication is OFF (--auth none): anyone who can reach this port can query every tenant\'s access');
  }
  const loaded = index.start();
  // A failure here means stop() was called first; the caller sees it through `loaded` if it waits.
  loaded.catch(() => undefined);
  let closing: Promise<void> | undefined;
  const s = store;
  const i = index;
  const a = app;
  const close = () => {
    closing ??= (async () => {
      await a.close().catch((err: unknown) => logger.error({ err }, 'closing the HTTP server failed'));
      await i.stop();
      auth.close();
      await s.close().catch((err: unknown) => logger.error({ err }, 'closing the store failed'));
      logger.info({}, 'decision API stopped');
    })();
    return closing;
  };
  return { app, index, store, auth, logger, url, port: boundPort, loaded, close };
}

/** `rpa-access serve`: runs until SIGTERM or SIGINT, then drains and closes; resolves with exit code 0. */
export async function run(options: ServeOptions = {}): Promise<number> {
  const server = await start(options);
  const hup = () => {
    if (server.auth instanceof TokenFileAuth) server.auth.reload();
  };
  process.on('SIGHUP', hup);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      server.logger.info({ signal }, 'stopping');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  process.off('SIGHUP', hup);
  await server.close();
  return 0;
}
