/**
 * The decision HTTP API (contract section 6) as a fastify instance. `buildServer` wires the
 * routes to a DecisionIndex and an Authenticator; main.ts adds the store, the logger and the
 * process around it. Bad input is always a 4xx with `{error}`; never a 5xx.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import { accessMatrix, parseMatrixQuery } from '../model/access-matrix.js';
import { ALL_PERMISSIONS, parsePermission } from '../model/catalog.js';
import { DEFAULT_SESSION_TTL_MS, parseLogin, userProfile, userSummary } from '../model/directory.js';
import { parseRequest, tenantNotFound, type CheckRequest } from '../model/engine.js';
import { RequestError } from '../model/request-error.js';
import { nearMisses } from '../model/near-misses.js';
import { oneLine } from '../escape.js';
import { collectRoutes, createHttpApp, FRAMEWORK_ERRORS } from '../http/fastify.js';
import { AuthUnavailableError, type Authenticator, type Caller } from './auth.js';
import type { DecisionIndex } from './decision-index.js';
import { ServerMetrics } from './metrics.js';
import { PAGE_PATHS, registerPage } from './page.js';

export interface ServerOptions {
  index: DecisionIndex;
  auth: Authenticator;
  /** Our pino logger; silent when absent. */
  logger?: Logger;
  /** Defaults to a fresh registry with process metrics. */
  metrics?: ServerMetrics;
  /** Largest accepted body (bytes). Default 16 KiB: larger is 413. */
  bodyLimit?: number;
  /** The whole request (headers and body) must arrive within this. Default 10 s. */
  requestTimeoutMs?: number;
  /** Headers must arrive within this. Default 5 s. */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. Default 65 s (above common proxies' 60 s). */
  keepAliveTimeoutMs?: number;
  /** A socket with no activity at all is destroyed after this. Default 120 s. */
  connectionTimeoutMs?: number;
  /** How often Node checks request and header timeouts. Default 1 s. */
  timeoutCheckIntervalMs?: number;
  /** Length of the sessions logins open (`--session-ttl`). Default 1 hour. */
  sessionTtlMs?: number;
  /** Serve the read-only permissions page under /ui/ (`--ui`). Default false: no such routes. */
  ui?: boolean;
}

/**
 * Largest login body: up to MAX_DIRECTORY_GROUPS ids of up to 1 KiB fit, so that too many groups
 * or too long an id gets its own clear 400, not a 413.
 */
export const LOGIN_BODY_LIMIT = 1024 * 1024;

export const DEFAULT_BODY_LIMIT = 16 * 1024;

const name = { type: 'string', minLength: 1, maxLength: 253 } as const;
const userName = { type: 'string', minLength: 1, maxLength: 320 } as const;
const optional = (maxLength: number) => ({ type: 'string', maxLength }) as const;

/** What is asked, apart from who asks: shared by POST /v1/check and GET /who. */
const question = {
  permission: { type: 'string', minLength: 1, maxLength: 64 },
  folder: optional(1024),
  resource: optional(512),
  environment: optional(253),
} as const;

/** Directory group ids: their bounds (count, length, characters) are the model's (parseDirectoryGroups). */
const directoryGroups = { type: 'array', items: { type: 'string' } } as const;

const checkBody = {
  type: 'object',
  required: ['tenant', 'user', 'permission'],
  additionalProperties: false,
  properties: {
    tenant: name,
    user: userName,
    ...question,
    directoryGroups,
  },
} as const;

/** A login: the identity token's email and groups claim. The email's shape is the model's (parseLogin). */
const loginBody = {
  type: 'object',
  required: ['user'],
  additionalProperties: false,
  properties: { user: { type: 'string' }, directoryGroups },
} as const;

const whoQuery = {
  type: 'object',
  required: ['permission'],
  additionalProperties: false,
  properties: question,
} as const;

const tenantParams = { type: 'object', required: ['tenant'], properties: { tenant: name } } as const;
const userParams = {
  type: 'object',
  required: ['tenant', 'user'],
  properties: { tenant: name, user: userName },
} as const;

const grant = {
  type: 'object',
  properties: {
    role: { type: 'string' },
    binding: { type: ['string', 'null'] },
    via: { type: 'string' },
    folder: { type: ['string', 'null'] },
    sessionExpiresAt: { type: 'string' },
  },
} as const;

const userSummarySchema = {
  name: { type: 'string' },
  email: { type: 'string' },
  type: { type: 'string' },
  origin: { type: 'string' },
  active: { type: 'boolean' },
  lastLogin: { type: ['string', 'null'] },
  sessionGroups: { type: 'array', items: { type: 'string' } },
  sessionExpiresAt: { type: ['string', 'null'] },
} as const;

const nullableString = { type: ['string', 'null'] } as const;
const strings = { type: 'array', items: { type: 'string' } } as const;

const errorBody = { type: 'object', properties: { error: { type: 'string' } } } as const;

const checkResponse = {
  200: {
    type: 'object',
    properties: {
      allowed: { type: 'boolean' },
      grants: { type: 'array', items: grant },
      reason: { type: 'string' },
      nearMisses: {
        type: 'array',
        items: { type: 'object', properties: { binding: { type: 'string' }, reason: { type: 'string' }, message: { type: 'string' } } },
      },
    },
  },
} as const;

const permissionsResponse = {
  200: {
    type: 'object',
    properties: {
      permissions: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            permission: { type: 'string' },
            folder: { type: ['string', 'null'] },
            role: { type: 'string' },
            binding: { type: ['string', 'null'] },
            via: { type: 'string' },
            resources: { type: 'array', items: { type: 'object', properties: { kind: { type: 'string' }, name: { type: 'string' } } } },
            environment: { type: 'string' },
            expiresAt: { type: 'string' },
            sessionExpiresAt: { type: 'string' },
          },
        },
      },
    },
  },
  404: errorBody,
} as const;

const whoResponse = {
  200: {
    type: 'object',
    properties: {
      users: { type: 'array', items: { type: 'object', properties: { user: { type: 'string' }, grants: { type: 'array', items: grant } } } },
    },
  },
  404: errorBody,
} as const;

const loginResponse = {
  200: {
    type: 'object',
    properties: { user: { type: 'string' }, provisioned: { type: 'boolean' }, groups: strings, expiresAt: { type: 'string' } },
  },
  400: errorBody,
  403: errorBody,
} as const;

const usersResponse = {
  200: { type: 'object', properties: { users: { type: 'array', items: { type: 'object', properties: userSummarySchema } } } },
  404: errorBody,
} as const;

const profileResponse = {
  200: {
    type: 'object',
    properties: {
      ...userSummarySchema,
      fullName: nullableString,
      language: { type: 'string' },
      slackId: nullableString,
      teamsId: nullableString,
      notifications: { type: 'object', properties: { events: strings, channels: strings } },
      concurrentExecution: { type: 'boolean' },
      groups: strings,
    },
  },
  404: errorBody,
} as const;

const tenantsResponse = {
  200: {
    type: 'object',
    properties: {
      tenants: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' }, users: { type: 'integer' }, bindings: { type: 'integer' }, revision: { type: 'integer' } } },
      },
    },
  },
} as const;

const catalogResponse = {
  200: {
    type: 'object',
    properties: { permissions: { type: 'array', items: { type: 'object', properties: { permission: { type: 'string' }, scope: { type: 'string' } } } } },
  },
} as const;

/** Paging of the matrix (users, folders) and a folder subtree; their bounds are the model's (parseMatrixQuery). */
const matrixQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { offset: optional(16), limit: optional(16), folder: optional(1024), folderOffset: optional(16), folderLimit: optional(16) },
} as const;

const strength = { role: { type: 'string' }, permissions: { type: 'integer' }, changes: { type: 'integer' } } as const;

const matrixResponse = {
  200: {
    type: 'object',
    properties: {
      tenant: { type: 'string' },
      folders: strings,
      roles: { type: 'array', items: { type: 'object', properties: strength } },
      users: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            user: { type: 'string' },
            active: { type: 'boolean' },
            cells: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  folder: { type: 'string' }, ...strength, binding: nullableString, via: { type: 'string' }, from: nullableString,
                  narrowed: { type: 'boolean' }, roles: strings,
                },
              },
            },
          },
        },
      },
      totalUsers: { type: 'integer' },
      truncated: { type: 'boolean' },
      totalFolders: { type: 'integer' },
      foldersTruncated: { type: 'boolean' },
    },
  },
  400: errorBody,
  404: errorBody,
} as const;

type CheckBody = CheckRequest & { tenant: string };

type WhoQuery = Omit<CheckRequest, 'user'>;

/** Ajv's error list as one readable line naming the offending field. */
function formatValidation(errors: { instancePath: string; message?: string; params: Record<string, unknown> }[], dataVar: string): Error {
  const parts = errors.map((e) => {
    const where = `${dataVar}${e.instancePath.replaceAll('/', '.')}`;
    const extra = e.params.additionalProperty !== undefined ? ` (${JSON.stringify(e.params.additionalProperty)})` : '';
    return `${where} ${e.message ?? 'is invalid'}${extra}`;
  });
  return new Error(parts.join('; '));
}

/** Answered without a token (and, with `ui`, the page's PAGE_PATHS). */
const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** The catalog as the page's who-can form lists it: every permission and its scope, in catalog order. */
const CATALOG = { permissions: ALL_PERMISSIONS.map((permission) => ({ permission, scope: parsePermission(permission)!.scope })) };

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const { index, auth } = options;
  const metrics = options.metrics ?? new ServerMetrics();
  metrics.attach(index);
  const logger = options.logger;
  /**
   * Probes and metrics answer without a token (contract section 6), and so does the page (it
   * holds no data); everything else asks for one.
   */
  const publicPaths = options.ui ? new Set([...PUBLIC_PATHS, ...PAGE_PATHS]) : PUBLIC_PATHS;
  const isPublicUrl = (url: string | undefined): boolean => publicPaths.has((url ?? '').split('?')[0] ?? '');
  const app = createHttpApp({
    ...(logger ? { fastifyLogger: logger } : {}),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.headersTimeoutMs !== undefined ? { headersTimeoutMs: options.headersTimeoutMs } : {}),
    ...(options.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: options.keepAliveTimeoutMs } : {}),
    connectionTimeoutMs: options.connectionTimeoutMs ?? 120_000,
    timeoutCheckIntervalMs: options.timeoutCheckIntervalMs ?? 1_000,
    classifyError: (err, request, reply) => {
      if (err instanceof RequestError) return reply.code(400).send({ error: oneLine(err.message) });
      if (err instanceof AuthUnavailableError) {
        request.log.warn({ err: err.message }, 'authentication unavailable');
        return reply.code(503).header('retry-after', '1').send({ error: oneLine(err.message) });
      }
      return undefined;
    },
    fastify: {
      routerOptions: { maxParamLength: 512 },
      // Strict validation: no type coercion, unknown fields rejected rather than silently dropped.
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
      schemaErrorFormatter: formatValidation,
      // Errors the router answers before any hook (a path parameter over maxParamLength, a bad
      // percent-encoding): authenticated first, then answered in the one shape, never echoing the URL.
      frameworkErrors: (err, request, rawReply) => {
        const reply = rawReply as unknown as FastifyReply;
        void (async () => {
          try {
            if (!isPublicUrl(request.raw.url) && !(await authenticate(request, reply))) return;
            const known = FRAMEWORK_ERRORS[err.code] ?? { status: 400, message: 'malformed request' };
            await reply.code(known.status).send({ error: known.message });
          } catch (e) {
            if (e instanceof AuthUnavailableError) await reply.code(503).header('retry-after', '1').send({ error: oneLine(e.message) });
            else await reply.code(500).send({ error: 'internal error' });
          }
        })();
      },
    },
  });

  const isPublic = (request: FastifyRequest) => isPublicUrl(request.raw.url);

  /**
   * Authentication first, for every route, every method and every error (an unknown route, a
   * wrong method, a body too large or of the wrong type): a caller without a valid token learns
   * nothing, not even whether its request was well formed. Returns the caller, or undefined
   * when the reply (401) was sent.
   */
  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<Caller | undefined> {
    const decision = await auth.authenticate(request.headers.authorization);
    if (decision.ok) return decision;
    metrics.authFailure(auth.mode);
    request.log.debug({ reason: decision.reason }, 'unauthenticated request');
    await reply.code(401).header('www-authenticate', 'Bearer').send({ error: `unauthorized: ${decision.reason}` });
    return undefined;
  }

  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (request, reply) => {
    if (isPublic(request)) return;
    const caller = await authenticate(request, reply);
    if (caller) (request as FastifyRequest & { caller: Caller | null }).caller = caller;
  });

  app.setNotFoundHandler((_request, reply) => {
    // Never the URL back: it is the caller's text, and may be 64 KiB of it.
    reply.code(404).send({ error: `no such route: see GET /healthz, /readyz, /metrics${options.ui ? ', the page at /ui/' : ''} and the /v1 API in docs/decision-api.md` });
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    if (logger?.isLevelEnabled('debug')) {
      request.log.debug({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, 'request');
    }
    done();
  });

  // Every route's methods, to answer 405 rather than 404 for a known path with another method.
  const routes = collectRoutes(app);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const body = { ready: index.healthy, loaded: index.ready, tenants: index.tenants().length, lastSyncAgeSeconds: index.lastSyncAgeSeconds };
    return reply.code(body.ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  if (options.ui) registerPage(app);

  await app.register(async (v1) => {
    /**
     * Authorization per tenant (contract section 6), before the tenant is looked up: the same
     * 403 whether it exists or not. The tenant is the path's `{tenant}` or the body's `tenant`.
     */
    v1.addHook('preHandler', async (request, reply) => {
      const tenant = (request.params as { tenant?: unknown } | undefined)?.tenant ?? (request.body as { tenant?: unknown } | undefined)?.tenant;
      if (typeof tenant !== 'string') return undefined;
      const caller = (request as FastifyRequest & { caller: Caller | null }).caller;
      if (caller && (await auth.authorize(caller, tenant))) return undefined;
      metrics.authFailure(auth.mode);
      request.log.debug({ caller: caller?.caller }, 'caller not authorized for the tenant');
      return reply.code(403).send({ error: 'forbidden: this caller may not ask about this tenant' });
    });
    v1.addHook('preHandler', async (_request, reply) => {
      if (!index.ready) return reply.code(503).header('retry-after', '1').send({ error: 'the decision index is still loading' });
      return undefined;
    });

    v1.post('/v1/check', { schema: { body: checkBody, response: checkResponse } }, async (request) => {
      const body = request.body as CheckBody;
      // Malformed questions are 400 whatever the tenant: validate before looking it up.
      const parsed = parseRequest(body);
      const tenant = index.get(body.tenant);
      if (!tenant) {
        metrics.decision(false);
        return tenantNotFound();
      }
      const now = Date.now();
      const result = tenant.checkParsed(body.user, parsed, now);
      metrics.decision(result.allowed);
      if (result.reason !== 'NoGrant') return result;
      const misses = nearMisses(tenant, body.user, parsed, now);
      return misses.length > 0 ? { ...result, nearMisses: misses } : result;
    });

    /**
     * The tenants this caller may ask about (the others are not named: the same as a 403 on each,
     * which does not say whether a tenant exists either). One authorization per tenant, cached
     * by the authenticator as every other.
     */
    v1.get('/v1/tenants', { schema: { response: tenantsResponse } }, async (request) => {
      const caller = (request as FastifyRequest & { caller: Caller | null }).caller;
      const names = index.tenants().sort();
      const allowed = caller ? await Promise.all(names.map((t) => auth.authorize(caller, t))) : [];
      const tenants = [];
      for (let i = 0; i < names.length; i++) {
        const idx = allowed[i] ? index.get(names[i]!) : undefined;
        if (idx) tenants.push({ name: idx.tenant, users: idx.userNames().length, bindings: idx.bindingCount, revision: idx.revision });
      }
      return { tenants };
    });

    v1.get('/v1/permissions', { schema: { response: catalogResponse } }, async () => CATALOG);

    v1.get('/v1/tenants/:tenant/matrix', { schema: { params: tenantParams, querystring: matrixQuery, response: matrixResponse } }, async (request, reply) => {
      const { tenant } = request.params as { tenant: string };
      // Malformed paging is 400 whatever the tenant: parsed before looking it up.
      const page = parseMatrixQuery(request.query as Record<string, string | undefined>);
      const idx = index.get(tenant);
      if (!idx) return reply.code(404).send({ error: `unknown tenant ${JSON.stringify(tenant)}` });
      return accessMatrix(idx, page);
    });

    v1.post('/v1/tenants/:tenant/sessions', { bodyLimit: LOGIN_BODY_LIMIT, schema: { params: tenantParams, body: loginBody, response: loginResponse } }, async (request, reply) => {
      const { tenant } = request.params as { tenant: string };
      const login = parseLogin(request.body as { user: string; directoryGroups?: string[] });
      const result = await index.store.login(tenant, login, { ttlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS, actor: 'serve', source: 'api' });
      if (result.refused !== undefined) {
        metrics.login(result.unknownTenant ? 'invalid' : 'refused');
        return reply.code(result.unknownTenant ? 400 : 403).send({ error: `login refused: ${result.refused}` });
      }
      metrics.login(result.provisioned ? 'provisioned' : 'ok');
      // Read your writes: this replica answers with the session before the login returns (others
      // follow through the change feed).
      await index.caughtUp(tenant, result.revision);
      return { user: result.user.name, provisioned: result.provisioned, groups: result.session.groups.map((g) => g.name), expiresAt: result.session.expiresAt };
    });

    v1.get('/v1/tenants/:tenant/users', { schema: { params: tenantParams, response: usersResponse } }, async (request, reply) => {
      const { tenant } = request.params as { tenant: string };
      const idx = index.get(tenant);
      if (!idx) return reply.code(404).send({ error: `unknown tenant ${JSON.stringify(tenant)}` });
      const now = Date.now();
      return { users: idx.users().map((u) => userSummary(u, idx.sessionOf(u.name), now)) };
    });

    v1.get('/v1/tenants/:tenant/users/:user', { schema: { params: userParams, response: profileResponse } }, async (request, reply) => {
      const { tenant, user } = request.params as { tenant: string; user: string };
      const idx = index.get(tenant);
      if (!idx) return reply.code(404).send({ error: `unknown tenant ${JSON.stringify(tenant)}` });
      const found = idx.findUser(user);
      if (!found) return reply.code(404).send({ error: `unknown user ${JSON.stringify(user)} in tenant ${tenant}` });
      return userProfile(found, idx.sessionOf(found.name), Date.now());
    });

    v1.get('/v1/tenants/:tenant/users/:user/permissions', { schema: { params: userParams, response: permissionsResponse } }, async (request, reply) => {
      const { tenant, user } = request.params as { tenant: string; user: string };
      const idx = index.get(tenant);
      if (!idx) return reply.code(404).send({ error: `unknown tenant ${JSON.stringify(tenant)}` });
      const permissions = idx.permissions(user);
      if (!permissions) return reply.code(404).send({ error: `unknown user ${JSON.stringify(user)} in tenant ${tenant}` });
      return { permissions };
    });

    v1.get('/v1/tenants/:tenant/who', { schema: { params: tenantParams, querystring: whoQuery, response: whoResponse } }, async (request, reply) => {
      const { tenant } = request.params as { tenant: string };
      const query = request.query as WhoQuery;
      parseRequest(query);
      const idx = index.get(tenant);
      if (!idx) return reply.code(404).send({ error: `unknown tenant ${JSON.stringify(tenant)}` });
      return { users: idx.who(query) };
    });
  });

  // A known path asked with another method: 405 with Allow (after authentication, as everything).
  routes.answerOtherMethods();

  app.addHook('onClose', async () => {
    metrics.close();
  });
  return app;
}
