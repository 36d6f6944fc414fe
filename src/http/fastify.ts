/**
 * The one HTTP stack: the decision API (src/server), the admission webhook (src/webhook) and the
 * operator's probes and metrics (src/k8s/health.ts) are fastify instances made here, so that
 * timeouts, body limits, JSON parsing and the answers to what fastify itself refuses (a body too
 * large, a wrong content type, malformed JSON or URL) are set up once.
 *
 * Every error is one line, never echoing what the request sent. Its shape is the door's
 * (`errorReply`): `{"error": "..."}` by default (the decision API's contract), text for the
 * probes, as kube-apiserver's own /readyz answers.
 */
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { oneLine } from '../escape.js';
import type { Logger } from '../log.js';

/** fastify's own errors, in our words: a status and one line that never quotes the request. */
export const FRAMEWORK_ERRORS: Readonly<Record<string, { status: number; message: string }>> = {
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, message: 'a path parameter is longer than 512 characters' },
  FST_ERR_BAD_URL: { status: 400, message: 'malformed URL: invalid percent-encoding' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, message: 'unsupported content type: send application/json' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: 'empty JSON body: send a JSON object' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, message: 'malformed JSON body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, message: 'Content-Length does not match the body' },
  FST_ERR_CTP_INVALID_TYPE: { status: 400, message: 'invalid Content-Type header' },
};

/** Every method a route may be asked with: the others of a known path are answered 405. */
export const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/** Puts one error line to the client, in the door's shape. */
export type ErrorReply = (reply: FastifyReply, status: number, message: string) => FastifyReply;

/** The default shape: `{"error": "one line"}`. */
const jsonErrorReply: ErrorReply = (reply, status, message) => reply.code(status).send({ error: message });

/** A door's own errors (a RequestError is 400...): a status and a line, or undefined for the shared rules. */
export type ErrorClassifier = (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => FastifyReply | undefined;

export interface HttpAppOptions {
  /** Largest accepted body in bytes: larger is 413. */
  bodyLimit: number;
  /** Where unexpected failures (500) are logged; silent when absent. */
  log?: Logger;
  /**
   * Also fastify's logger (request.log, the listening address): the decision API's. Request
   * logging stays ours either way: the hot path must not write two lines per request.
   */
  fastifyLogger?: Logger;
  /** Serve HTTPS with this certificate (see serveCertificate for rotation). */
  https?: { cert: string; key: string };
  /** The whole request (headers and body) must arrive within this. Default 10 s. */
  requestTimeoutMs?: number;
  /** Headers must arrive within this (never more than requestTimeoutMs). Default 5 s. */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. Default 65 s (above common proxies' 60 s). */
  keepAliveTimeoutMs?: number;
  /** A socket with no activity at all is destroyed after this. Default: none. */
  connectionTimeoutMs?: number;
  /** How often Node checks request and header timeouts. Default: Node's (30 s). */
  timeoutCheckIntervalMs?: number;
  /** close() ends open connections at once (probes, the webhook) instead of letting them finish. */
  forceCloseConnections?: boolean;
  /** Only `application/json` bodies (a missing Content-Type is taken as JSON): `text/plain` is 415 too. */
  jsonOnly?: boolean;
  /** The shape of every error answer. Default `{"error": "..."}`. */
  errorReply?: ErrorReply;
  /** The door's own errors, asked before the shared rules. */
  classifyError?: ErrorClassifier;
  /** More fastify options (schemas, router, frameworkErrors...). */
  fastify?: FastifyServerOptions;
}

/** TLS below 1.2 is refused, for the first certificate and every rotated one alike. */
const TLS = { minVersion: 'TLSv1.2' } as const;

/**
 * A fastify instance with the shared setup: timeouts, body limit, JSON parsing, and one error
 * handler (framework errors in our words, other 4xx without what the request sent, anything else
 * 500 "internal error", logged).
 */
export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const requestTimeout = options.requestTimeoutMs ?? 10_000;
  const headersTimeout = Math.min(options.headersTimeoutMs ?? 5_000, requestTimeout);
  const errorReply = options.errorReply ?? jsonErrorReply;
  const fastifyLogger = options.fastifyLogger;
  // One object for the http and https flavours of fastify's options (typed apart by fastify).
  const fastifyOptions: Record<string, unknown> = {
    ...(fastifyLogger ? { loggerInstance: fastifyLogger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    requestTimeout,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000,
    ...(options.connectionTimeoutMs !== undefined ? { connectionTimeout: options.connectionTimeoutMs } : {}),
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key, ...TLS } } : {}),
    http: { requestTimeout, headersTimeout, ...(options.timeoutCheckIntervalMs !== undefined ? { connectionsCheckingInterval: options.timeoutCheckIntervalMs } : {}) },
    return503OnClosing: true,
    ...(options.forceCloseConnections ? { forceCloseConnections: true } : {}),
    // The router's own refusals (a bad percent-encoding, a path parameter too long): our line, never the URL.
    frameworkErrors: ((err, _request, reply) => {
      const known = FRAMEWORK_ERRORS[err.code] ?? { status: 400, message: 'malformed request' };
      void errorReply(reply as unknown as FastifyReply, known.status, known.message);
    }) satisfies FastifyServerOptions['frameworkErrors'],
    ...options.fastify,
  };
  const app = Fastify(fastifyOptions as FastifyServerOptions) as unknown as FastifyInstance;
  // `http` options are not given to an https server: its header deadline is set here.
  app.server.headersTimeout = headersTimeout;

  if (options.jsonOnly) {
    app.removeContentTypeParser('text/plain');
    app.addHook('onRequest', async (request) => {
      if (request.headers['content-type'] === undefined) request.headers['content-type'] = 'application/json';
    });
  }

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const own = options.classifyError?.(err, request, reply);
    if (own) return own;
    if (err.validation) return errorReply(reply, 400, oneLine(err.message));
    const known = err.code ? FRAMEWORK_ERRORS[err.code] : undefined;
    if (known) return errorReply(reply, known.status, known.message);
    const status = err.statusCode ?? 500;
    // Other client errors of fastify's: their status, in our shape, without what the request sent.
    if (status >= 400 && status < 500) return errorReply(reply, status, `request refused (${err.code ?? status})`);
    (fastifyLogger ? request.log : options.log)?.error({ err }, 'request failed');
    return errorReply(reply, 500, 'internal error');
  });
  return app;
}

/**
 * Answers 405 with `Allow` for a known path asked with another method (404 would say the path
 * does not exist). Call once every route is registered: it covers the routes added since
 * `collectRoutes` was called.
 */
export function collectRoutes(app: FastifyInstance): { answerOtherMethods(errorReply?: ErrorReply): void } {
  const routes = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = routes.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) methods.add(m);
    routes.set(route.url, methods);
  });
  return {
    answerOtherMethods(errorReply = jsonErrorReply) {
      for (const [url, methods] of routes) {
        const allow = [...methods].sort();
        const others = ALL_METHODS.filter((m) => !methods.has(m));
        if (others.length === 0) continue;
        app.route({
          method: others, url,
          handler: async (_request, reply) => errorReply(reply.header('allow', allow.join(', ')), 405, `method not allowed: ${allow.join(', ')}`),
        });
      }
    },
  };
}

/** New connections get this certificate (rotation without a restart); open ones keep theirs. */
export function serveCertificate(app: FastifyInstance, certificate: { cert: string; key: string }): void {
  (app.server as unknown as HttpsServer).setSecureContext({ cert: certificate.cert, key: certificate.key, ...TLS });
}

/**
 * Starts listening; resolves to the bound port (useful with port 0). Without a host, on every
 * interface as Node does (IPv6 and IPv4 where the machine has IPv6, else IPv4): fastify alone
 * would listen on localhost only, and probes and admission requests come from elsewhere.
 */
export async function listen(app: FastifyInstance, port: number, host?: string): Promise<number> {
  if (host !== undefined) {
    await app.listen({ port, host });
  } else {
    try {
      await app.listen({ port, host: '::' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT' && (err as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL') throw err;
      await app.listen({ port, host: '0.0.0.0' });
    }
  }
  return boundPort(app);
}

/** The port the server is bound to, 0 when it is not listening. */
export function boundPort(app: FastifyInstance): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}
