/**
 * `rpa-access serve`: the decision HTTP API as a process. The CLI imports this module and calls
 * `runServe(options)`, which resolves when the server has stopped (SIGTERM / SIGINT); `start` is
 * the same without the signal handling, for tests and benchmarks.
 *
 * Order of start: store opened (and migrated), port bound (so /healthz answers and /readyz says
 * 503 while loading), then every tenant loaded into the index; /v1 answers 503 until then.
 */
import { createLogger, type Logger } from '../log.js';
import type { FastifyInstance } from 'fastify';
import { openStore } from '../store/open.js';
import type { AccessStore } from '../store/store.js';
import { parseSessionTtl } from '../model/directory.js';
import { buildServer } from './app.js';
import { AuthConfigError, NoAuth, TokenFileAuth, TokenReviewAuth, kubernetesReviewers, type AccessReviewer, type Authenticator, type TokenReviewer } from './auth.js';
import { SERVE_DEFAULTS, ServeConfigError, resolveAuthMode, type AuthMode, type ServeCommandOptions } from './options.js';
import { DecisionIndex } from './decision-index.js';
import { ServerMetrics } from './metrics.js';

/**
 * Options of `start`: the command's (defaults in SERVE_DEFAULTS) and the store, a URL or an
 * embedded-store path (default: $RPA_ACCESS_STORE, else ./.rpa-access/).
 */
export interface ServeOptions extends Partial<ServeCommandOptions> {
  store?: string;
}

/** What `start` needs beyond the command-line options (tests inject these). */
export interface StartOverrides {
  logger?: Logger;
  /** Replaces the Kubernetes TokenReview for `--auth tokenreview`. */
  tokenReviewer?: TokenReviewer;
  /** The SubjectAccessReview of `tokenreview` mode (tests inject one; default: the Kubernetes API's). */
  accessReviewer?: AccessReviewer;
  /** Period of the index's store poll (default 5 s). */
  resyncIntervalMs?: number;
  /** Process metrics in /metrics (default true). */
  defaultMetrics?: boolean;
}

async function createAuthenticator(mode: AuthMode, options: ServeOptions, log: Logger, overrides: StartOverrides): Promise<Authenticator> {
  try {
    if (mode === 'none') return new NoAuth();
    if (mode === 'token') return new TokenFileAuth(options.tokenFile!, log);
    const kube = overrides.tokenReviewer && overrides.accessReviewer ? undefined : await kubernetesReviewers();
    return new TokenReviewAuth(overrides.tokenReviewer ?? kube!.tokenReviewer, {}, overrides.accessReviewer ?? kube!.accessReviewer);
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
  const port = options.port ?? SERVE_DEFAULTS.port;
  const host = options.host ?? SERVE_DEFAULTS.host;
  const mode = resolveAuthMode(options);
  let sessionTtlMs: number | undefined;
  try {
    sessionTtlMs = options.sessionTtl === undefined ? undefined : parseSessionTtl(String(options.sessionTtl));
  } catch (err) {
    throw new ServeConfigError(`--session-ttl: ${(err as Error).message}`);
  }
  const logger = overrides.logger ?? createLogger({ name: 'serve' });
  const auth = await createAuthenticator(mode, options, logger, overrides);
  let store: AccessStore | undefined;
  let index: DecisionIndex | undefined;
  let app: FastifyInstance | undefined;
  try {
    // serve reads: a missing store is an error, a read-only one is fine, nothing is migrated.
    store = await openStore(options.store, { existing: true });
    index = new DecisionIndex(store, { logger: logger.child({ component: 'index' }), ...(overrides.resyncIntervalMs ? { resyncIntervalMs: overrides.resyncIntervalMs } : {}) });
    app = await buildServer({
      index, auth, logger, metrics: new ServerMetrics({ defaultMetrics: overrides.defaultMetrics ?? true }), ...(sessionTtlMs === undefined ? {} : { sessionTtlMs }),
      ui: options.ui ?? false,
    });
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
  logger.info({ url, store: store.description, auth: mode, ...(options.ui ? { page: `${url}/ui/` } : {}) }, 'decision API listening');
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
export async function runServe(options: ServeCommandOptions, io: { storeUrl: string; logger: Logger }): Promise<number> {
  const server = await start({ ...options, store: io.storeUrl }, { logger: io.logger });
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
