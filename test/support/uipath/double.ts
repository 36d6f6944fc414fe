/**
 * The UiPath test double: one fastify server answering as Orchestrator (one or more tenants) and
 * Identity (one organization), strict about every request and every response (see README.md).
 *
 *   const uip = await startUiPathDouble();
 *   // client: token at uip.identityUrl + '/connect/token' with uip.credentials,
 *   //         Orchestrator at uip.orchestratorUrl(), Identity API at uip.identityUrl + '/api/...'
 *   uip.seed({ users: [{ UserName: 'john@example.com' }] });
 *   expect(uip.snapshot().tenantRoles).toEqual(...);
 *   await uip.stop();
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ValidateFunction } from 'ajv';
import { ApiError, ERROR_CODES } from './errors.js';
import { describeErrors, uipathSchemas, type Operation, type SchemaSet } from './schemas.js';
import { Identity } from './identity.js';
import { OrchestratorTenant } from './orchestrator.js';
import { HANDLERS, type HandlerResult } from './handlers.js';
import { CallLog, Faults, type CallRecord } from './control.js';
import type { EntityType } from './odata.js';
import { seed, snapshot, state, type SeedResult, type SeedSpec, type Snapshot, type DoubleState } from './seed.js';

/** Every scope the double knows (what the target uses, and their .Read/.Write halves). */
export const ALL_SCOPES = [
  'OR.Users', 'OR.Users.Read', 'OR.Users.Write', 'OR.Folders', 'OR.Folders.Read', 'OR.Folders.Write',
  'PM.User', 'PM.User.Read', 'PM.User.Write', 'PM.Group', 'PM.Group.Read', 'PM.Group.Write',
  'PM.RobotAccount', 'PM.RobotAccount.Read', 'PM.RobotAccount.Write',
];

export interface Application {
  clientId: string;
  clientSecret: string;
  /** Scopes granted to the external application; a token request may ask for any subset. */
  scopes: string[];
}

export interface UiPathDoubleOptions {
  /** Default 0 (any free port), on 127.0.0.1. */
  port?: number;
  /** Organization (account) name in Automation Cloud URLs. Default 'acme'. */
  organizationName?: string;
  /** Partition global id of the organization (the token's prt_id). Default: a random uuid. */
  organizationId?: string;
  /** Orchestrator tenants; the first also answers at the root (`/odata/...`). Default ['DefaultTenant']. */
  tenants?: string[];
  /** The external application; default clientId 'rpa-access-test', a random secret, ALL_SCOPES. */
  application?: Partial<Application>;
  /** Lifetime of issued tokens. Default 3600 s (as UiPath's client-credentials tokens). */
  tokenLifetimeSeconds?: number;
  /** Largest page one OData response holds (server-driven paging beyond). Default 1000. */
  maxPageSize?: number;
  /** A new tenant has UiPath's default "Shared" folder. Default true. */
  sharedFolder?: boolean;
  /** Report local users (Type User) as DirectoryUser, as Orchestrator may since 21.10. Default false. */
  localUsersAsDirectoryUsers?: boolean;
}

interface IssuedToken {
  clientId: string;
  scopes: Set<string>;
  expiresAt: number;
}

/** A defect of the double itself (a response its own schemas refuse). */
class DoubleDefect extends Error {}

const ORCH_CONTENT_TYPE = 'application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8';

function base64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

export class UiPathDouble {
  readonly organizationName: string;
  readonly organizationId: string;
  readonly identity: Identity;
  readonly faults = new Faults();
  readonly calls = new CallLog();
  private readonly tenants = new Map<string, OrchestratorTenant>();
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly jwtKey = randomBytes(32);
  private application: Application;
  private readonly tokenLifetime: number;
  private readonly maxPageSize: number;
  private readonly schemas: SchemaSet;
  private readonly entityTypes = new Map<string, EntityType>();
  private readonly defectList: string[] = [];
  /** Tenant name (lower case) → folder ids the application is assigned to; absent: every folder. */
  private readonly applicationFolders = new Map<string, Set<number>>();
  private app?: FastifyInstance;
  private baseUrl = '';

  constructor(options: UiPathDoubleOptions = {}) {
    this.schemas = uipathSchemas();
    this.organizationName = options.organizationName ?? 'acme';
    this.organizationId = (options.organizationId ?? randomUUID()).toLowerCase();
    const now = (): string => new Date().toISOString();
    this.identity = new Identity(this.organizationId, now);
    const names = options.tenants ?? ['DefaultTenant'];
    if (names.length === 0) throw new Error('startUiPathDouble: at least one tenant');
    names.forEach((name, i) => this.tenants.set(name.toLowerCase(), new OrchestratorTenant(name, i + 1, this.identity, now, { sharedFolder: options.sharedFolder ?? true, localUsersAsDirectoryUsers: options.localUsersAsDirectoryUsers })));
    this.identity.onDelete = (id) => {
      for (const t of this.tenants.values()) t.forgetIdentity(id);
    };
    this.application = {
      clientId: options.application?.clientId ?? 'rpa-access-test',
      clientSecret: options.application?.clientSecret ?? randomBytes(18).toString('base64url'),
      scopes: options.application?.scopes ?? [...ALL_SCOPES],
    };
    this.tokenLifetime = options.tokenLifetimeSeconds ?? 3600;
    this.maxPageSize = options.maxPageSize ?? 1000;
  }

  // ---- addresses ---------------------------------------------------------------------------

  /** http://127.0.0.1:PORT */
  get url(): string {
    return this.baseUrl;
  }

  /** Automation Cloud style: `${url}/${organization}/${tenant}/orchestrator_` (default: the first tenant). */
  orchestratorUrl(tenant?: string): string {
    return `${this.baseUrl}/${this.organizationName}/${this.tenant(tenant).name}/orchestrator_`;
  }

  /** Automation Cloud style Identity base: token at `${identityUrl}/connect/token`, API at `${identityUrl}/api/...`. */
  get identityUrl(): string {
    return `${this.baseUrl}/identity_`;
  }

  /** Standalone style: Orchestrator at the root (first tenant), Identity at `${url}/identity`. */
  get standaloneIdentityUrl(): string {
    return `${this.baseUrl}/identity`;
  }

  get tenantNames(): string[] {
    return [...this.tenants.values()].map((t) => t.name);
  }

  // ---- credentials and tokens --------------------------------------------------------------

  get credentials(): { clientId: string; clientSecret: string } {
    return { clientId: this.application.clientId, clientSecret: this.application.clientSecret };
  }

  /** Replaces the external application (rotation: tokens already issued stay valid until they expire). */
  setApplication(app: Partial<Application>): void {
    this.application = { ...this.application, ...app, scopes: [...(app.scopes ?? this.application.scopes)] };
  }

  /** The scopes granted to the application (a later token request asking for more gets invalid_scope). */
  setScopes(scopes: string[]): void {
    this.application = { ...this.application, scopes: [...scopes] };
  }

  /** Every token issued so far is expired from now on (the next call with one answers 401). */
  expireAllTokens(): void {
    for (const t of this.tokens.values()) t.expiresAt = 0;
  }

  /** Tokens issued and not expired. */
  liveTokens(): number {
    const now = Date.now();
    return [...this.tokens.values()].filter((t) => t.expiresAt > now).length;
  }

  // ---- state -------------------------------------------------------------------------------

  /** An Orchestrator tenant's model (default: the first), for seeding through UiPath's rules. */
  tenant(name?: string): OrchestratorTenant {
    const t = name === undefined ? this.tenants.values().next().value : this.tenants.get(name.toLowerCase());
    if (!t) throw new Error(`UiPath double: no tenant ${name ?? ''}`);
    return t;
  }

  /** Creates Identity and Orchestrator objects by name (see SeedSpec), through the same rules as the API. */
  seed(spec: SeedSpec, tenant?: string): SeedResult {
    return seed(this.identity, this.tenant(tenant), spec);
  }

  /** The full state (ids included) of Identity and every tenant, as plain data. */
  state(): DoubleState {
    return state(this.identity, [...this.tenants.values()], this.organizationId);
  }

  /** A tenant's access by names, for assertions (see Snapshot). */
  snapshot(tenant?: string): Snapshot {
    return snapshot(this.identity, this.tenant(tenant));
  }

  /** Responses the double sent that its own schemas refuse: each is a bug of the double. */
  defects(): string[] {
    return [...this.defectList];
  }

  // ---- server ------------------------------------------------------------------------------

  async start(port = 0): Promise<void> {
    const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/*', handler: (req, reply) => this.handle(req, reply) });
    await app.listen({ host: '127.0.0.1', port });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('UiPath double: no TCP address');
    this.baseUrl = `http://127.0.0.1:${address.port}`;
    this.app = app;
  }

  /** Stops the server; rejects if the double sent a response its schemas refuse (a defect of the double). */
  async stop(): Promise<void> {
    await this.app?.close();
    this.app = undefined;
    if (this.defectList.length > 0) throw new Error(`UiPath double sent invalid responses:\n${this.defectList.join('\n')}`);
  }

  private async handle(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));
    const [rawPath = '', query = ''] = req.url.split(/\?(.*)/s);
    const method = req.method;
    if (this.faults.outageMode === 'reset') {
      this.calls.add({ method, path: rawPath, query, operation: `${method} ?`, status: 0, fault: 'outage' });
      req.raw.socket.destroy();
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      path = rawPath;
    }
    const route = this.route(path);
    const op = route ? this.findOperation(route.api, route.rest, method) : undefined;
    const record: Omit<CallRecord, 'seq' | 'time' | 'status'> = {
      method,
      path: rawPath,
      query,
      operation: op && op !== 'method' ? `${method} ${op.template}` : `${method} ?`,
      operationId: op && op !== 'method' ? op.operationId : undefined,
      api: route?.api === 'identity' && op && op !== 'method' ? op.api : route?.api,
      tenant: route?.tenant?.name,
    };
    const send = (status: number, body: unknown, headers: Record<string, string> = {}, fault?: string): void => {
      this.calls.add({ ...record, status, fault });
      for (const [k, v] of Object.entries(headers)) void reply.header(k, v);
      if (body === undefined) {
        void reply.code(status).send();
      } else {
        const contentType = route?.api === 'orchestrator' ? ORCH_CONTENT_TYPE : 'application/json; charset=utf-8';
        void reply.code(status).header('content-type', contentType).send(JSON.stringify(body));
      }
    };
    const fail = (err: ApiError, headers: Record<string, string> = {}, fault?: string): void => {
      const api = op && op !== 'method' ? op.api : (route?.api ?? 'orchestrator');
      const body = this.errorBody(api, err, op && op !== 'method' ? op : undefined);
      send(err.status, body, headers, fault);
    };

    if (this.faults.outageMode === '503') return fail(new ApiError(503, ERROR_CODES.unavailable, 'Service Unavailable'), {}, 'outage');
    if (!route) return fail(new ApiError(404, ERROR_CODES.itemNotFound, `No UiPath API answers at ${rawPath}.`));
    if (op === undefined) return fail(new ApiError(404, ERROR_CODES.itemNotFound, `No resource found that matches the request URI '${rawPath}'.`));
    if (op === 'method') return fail(new ApiError(405, ERROR_CODES.invalidRequest, `The requested resource does not support http method '${method}'.`));

    const fault = this.faults.take(method, rawPath, op.operationId);
    if (fault) {
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      const err = fault.status === 429
        ? new ApiError(429, ERROR_CODES.rateLimited, 'Too Many Requests: the rate limit of this endpoint was reached.')
        : new ApiError(503, ERROR_CODES.unavailable, 'Service Unavailable');
      return fail(err, headers, fault.status === 429 ? 'rate-limit' : 'unavailable');
    }

    try {
      if (op.api === 'token') {
        const result = this.token(req);
        return this.sendChecked(op, result, send);
      }
      this.authorize(req, op);
      const params = this.parameters(op, route.rest, query);
      const body = this.requestBody(op, req);
      record.body = body;
      const tenant = route.tenant ?? this.tenant();
      const headerFolder = this.checkFolderHeader(req, tenant);
      this.checkFolderAccess(op, params, body, tenant, headerFolder);
      const handler = HANDLERS[op.operationId];
      if (!handler) {
        throw new ApiError(501, ERROR_CODES.notImplemented, `The UiPath double does not implement ${op.operationId} (${method} ${op.template}).`);
      }
      const result = handler({
        params,
        body,
        tenant,
        identity: this.identity,
        entityType: op.entitySchema ? this.entityType(op.entitySchema) : undefined,
        maxTop: 1000,
        pageSize: this.maxPageSize,
        base: route.base,
        nextLinkBase: `${this.baseUrl}${rawPath}`,
      });
      return this.sendChecked(op, result, send);
    } catch (e) {
      if (e instanceof ApiError) return fail(e, e.status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {});
      const message = e instanceof DoubleDefect ? e.message : `UiPath double: ${(e as Error).stack ?? String(e)}`;
      this.defectList.push(message);
      send(500, { message, errorCode: 9999, traceId: randomUUID() });
    }
  }

  /** Which API and tenant a path addresses, and the path within that API. */
  private route(path: string): { api: 'orchestrator' | 'identity'; rest: string; tenant?: OrchestratorTenant; base: string } | undefined {
    const org = this.organizationName.toLowerCase();
    const isOrg = (s: string | undefined): boolean => s !== undefined && (s.toLowerCase() === org || s.toLowerCase() === this.organizationId);
    let m = /^\/(identity_|identity)(\/.*)$/.exec(path);
    if (m) return { api: 'identity', rest: m[2] as string, base: `${this.baseUrl}/${m[1]}` };
    m = /^\/([^/]+)\/identity_(\/.*)$/.exec(path);
    if (m && isOrg(m[1])) return { api: 'identity', rest: m[2] as string, base: `${this.baseUrl}/${m[1]}/identity_` };
    m = /^\/([^/]+)\/([^/]+)\/orchestrator_(\/.*)$/.exec(path);
    if (m && isOrg(m[1])) {
      const tenant = this.tenants.get((m[2] as string).toLowerCase());
      if (!tenant) return undefined;
      return { api: 'orchestrator', rest: m[3] as string, tenant, base: `${this.baseUrl}/${m[1]}/${m[2]}/orchestrator_` };
    }
    if (/^\/(odata|api)\//.test(path)) return { api: 'orchestrator', rest: path, tenant: this.tenant(), base: this.baseUrl };
    return undefined;
  }

  /** The operation at this path and method; 'method' when the path exists for other methods only. */
  private findOperation(api: 'orchestrator' | 'identity', rest: string, method: string): Operation | 'method' | undefined {
    const apis = api === 'identity' ? ['identity', 'token'] : ['orchestrator'];
    const atPath = this.schemas.operations.filter((o) => apis.includes(o.api) && o.regex.test(rest));
    if (atPath.length === 0) return undefined;
    return atPath.find((o) => o.method === method) ?? 'method';
  }

  private authorize(req: FastifyRequest, op: Operation): void {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new ApiError(401, ERROR_CODES.unauthenticated, 'You are not authenticated!');
    const token = this.tokens.get(m[1] as string);
    if (!token || token.expiresAt <= Date.now()) throw new ApiError(401, ERROR_CODES.unauthenticated, 'You are not authenticated! (the access token is unknown or expired)');
    if (!op.scopes.some((s) => token.scopes.has(s))) {
      throw new ApiError(403, ERROR_CODES.forbidden, `The access token lacks the scope this call requires: one of ${op.scopes.join(', ')}.`);
    }
  }

  /** Path and query parameters, converted to their declared types and validated against the document. */
  private parameters(op: Operation, rest: string, query: string): Record<string, unknown> {
    const params: Record<string, unknown> = {};
    const types = new Map(op.parameters.map((p) => [p.name, p.type]));
    const convert = (name: string, raw: string): unknown => {
      const type = types.get(name);
      if (type === 'integer' && /^-?\d+$/.test(raw)) return Number(raw);
      if (type === 'number' && raw.trim() !== '' && !Number.isNaN(Number(raw))) return Number(raw);
      if (type === 'boolean' && (raw === 'true' || raw === 'false')) return raw === 'true';
      return raw;
    };
    const m = op.regex.exec(rest);
    op.pathParams.forEach((name, i) => {
      let raw = m?.[i + 1] ?? '';
      if (name === 'username') raw = raw.replace(/''/g, "'");
      params[name] = convert(name, raw);
    });
    const search = new URLSearchParams(query);
    for (const name of new Set(search.keys())) {
      const values = search.getAll(name);
      if (values.length > 1) throw new ApiError(400, ERROR_CODES.invalidRequest, `Invalid OData query options. Query option '${name}' was specified more than once.`);
      params[name] = convert(name, values[0] as string);
    }
    const validate = this.schemas.compile(op.parametersSchema);
    if (!validate(params)) throw new ApiError(400, ERROR_CODES.invalidRequest, `The request is invalid. ${describeErrors(validate.errors, 'parameters')}`);
    return params;
  }

  private requestBody(op: Operation, req: FastifyRequest): unknown {
    const raw = typeof req.body === 'string' ? req.body : '';
    if (op.requestContentTypes.length === 0) {
      if (raw.trim() !== '') throw new ApiError(400, ERROR_CODES.invalidRequest, `${op.operationId} takes no request body.`);
      return undefined;
    }
    const contentType = String(req.headers['content-type'] ?? '').toLowerCase().replace(/\s+/g, '');
    const accepted = op.requestContentTypes.some((t) => {
      const want = t.toLowerCase().replace(/\s+/g, '');
      return contentType === want || contentType.startsWith(`${want};`) || (want === 'application/json' && contentType.startsWith('application/json;'));
    });
    if (!accepted) throw new ApiError(415, ERROR_CODES.invalidRequest, `Unsupported media type '${contentType}' for ${op.operationId}.`);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new ApiError(400, ERROR_CODES.invalidRequest, 'The request is invalid. The body is not valid JSON.');
    }
    if (op.requestSchema) {
      const validate = this.schemas.compile(op.requestSchema);
      if (!validate(body)) throw new ApiError(400, ERROR_CODES.invalidRequest, `The request is invalid. ${describeErrors(validate.errors, 'body')}`);
    }
    return body;
  }

  /** Folder-scoped calls name the folder in X-UIPATH-OrganizationUnitId: it must be a folder of the tenant. */
  private checkFolderHeader(req: FastifyRequest, tenant: OrchestratorTenant): number | undefined {
    const raw = req.headers['x-uipath-organizationunitid'];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string' || !/^\d+$/.test(raw)) {
      throw new ApiError(400, ERROR_CODES.invalidRequest, `X-UIPATH-OrganizationUnitId must be a folder id, not '${String(raw)}'.`);
    }
    if (!tenant.folders.has(Number(raw))) throw new ApiError(400, 1100, `Folder does not exist or the user does not have access to the folder. (${raw})`);
    return Number(raw);
  }

  /**
   * UiPath: "the application must be assigned to every folder it manages". With
   * setApplicationFolders() the application reaches only the folders given and their descendants;
   * a call naming another folder (header, key, or FolderId in the body) answers 403.
   */
  private checkFolderAccess(op: Operation, params: Record<string, unknown>, body: unknown, tenant: OrchestratorTenant, headerFolder: number | undefined): void {
    const allowed = this.applicationFolders.get(tenant.name.toLowerCase());
    if (allowed === undefined) return;
    const named: number[] = [];
    if (headerFolder !== undefined) named.push(headerFolder);
    if (op.operationId.startsWith('Folders_') && typeof params.key === 'number') named.push(params.key);
    if (op.operationId === 'Folders_Post' && isRecord(body) && typeof body.ParentId === 'number') named.push(body.ParentId);
    if (op.operationId === 'Folders_AssignUsers' && isRecord(body) && isRecord(body.assignments)) {
      for (const rpf of (body.assignments.RolesPerFolder as { FolderId?: number }[] | undefined) ?? []) if (typeof rpf.FolderId === 'number') named.push(rpf.FolderId);
    }
    for (const id of named) {
      const folder = tenant.folders.get(id);
      if (!folder) continue; // the operation answers 404/400 for a folder that does not exist
      if (!tenant.ancestry(folder).some((f) => allowed.has(f.Id))) {
        throw new ApiError(403, ERROR_CODES.forbidden, `The external application is not assigned to folder '${tenant.path(folder)}' (id ${id}) or any of its parents.`);
      }
    }
  }

  /**
   * Restricts the application to these folders (ids or paths) and their descendants in a tenant;
   * 'all' (the default) lifts the restriction.
   */
  setApplicationFolders(folders: 'all' | (number | string)[], tenant?: string): void {
    const t = this.tenant(tenant);
    if (folders === 'all') {
      this.applicationFolders.delete(t.name.toLowerCase());
      return;
    }
    const ids = folders.map((f) => {
      const folder = typeof f === 'number' ? t.folders.get(f) : t.folderByPath(f);
      if (!folder) throw new Error(`setApplicationFolders: no folder ${f} in ${t.name}`);
      return folder.Id;
    });
    this.applicationFolders.set(t.name.toLowerCase(), new Set(ids));
  }

  private token(req: FastifyRequest): HandlerResult {
    const tokenError = (status: number, error: string, description: string): HandlerResult => ({ status, body: { error, error_description: description } });
    const contentType = String(req.headers['content-type'] ?? '');
    if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return tokenError(400, 'invalid_request', 'The token request must be application/x-www-form-urlencoded.');
    }
    const form = new URLSearchParams(typeof req.body === 'string' ? req.body : '');
    const fields: Record<string, string> = {};
    for (const [k, v] of form) fields[k] = v;
    const op = this.schemas.operations.find((o) => o.api === 'token');
    const schema = op?.requestSchema;
    if (schema) {
      const validate = this.schemas.compile(schema);
      if (!validate(fields)) return tokenError(400, 'invalid_request', describeErrors(validate.errors, 'form'));
    }
    if (fields.grant_type !== 'client_credentials') return tokenError(400, 'unsupported_grant_type', `grant_type '${fields.grant_type}' is not supported.`);
    if (fields.client_id !== this.application.clientId || fields.client_secret !== this.application.clientSecret) {
      return tokenError(401, 'invalid_client', 'Unknown client or wrong client secret.');
    }
    const granted = new Set(this.application.scopes);
    const requested = (fields.scope ?? '').split(/\s+/).filter(Boolean);
    const missing = requested.filter((s) => !granted.has(s));
    if (missing.length > 0) return tokenError(400, 'invalid_scope', `Scopes not granted to the application: ${missing.join(' ')}.`);
    const scopes = requested.length > 0 ? requested : [...granted];
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      iss: this.identityUrl,
      aud: 'UiPath.Orchestrator',
      nbf: now,
      iat: now,
      exp: now + this.tokenLifetime,
      client_id: this.application.clientId,
      sub: this.application.clientId,
      prt_id: this.organizationId,
      scope: scopes,
      jti: randomUUID(),
    };
    const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const signingInput = `${head}.${base64url(JSON.stringify(payload))}`;
    const accessToken = `${signingInput}.${base64url(createHmac('sha256', this.jwtKey).update(signingInput).digest())}`;
    this.tokens.set(accessToken, { clientId: this.application.clientId, scopes: new Set(scopes), expiresAt: Date.now() + this.tokenLifetime * 1000 });
    return { status: 200, body: { access_token: accessToken, expires_in: this.tokenLifetime, token_type: 'Bearer', scope: scopes.join(' ') } };
  }

  private errorBody(api: 'orchestrator' | 'identity' | 'token', err: ApiError, op: Operation | undefined): unknown {
    const traceId = randomUUID();
    if (api === 'token') return { error: err.status === 401 ? 'invalid_client' : 'invalid_request', error_description: err.message };
    if (api === 'identity') {
      // Identity's user commands declare IdentityResult as their 400 body.
      if (err.status === 400 && op && op.responses.get(400)) {
        return { succeeded: false, errors: [{ code: err.identityCode ?? 'InvalidRequest', description: err.message }] };
      }
      return { type: `https://httpstatuses.io/${err.status}`, title: err.message, status: err.status, traceId };
    }
    return {
      message: err.message,
      errorCode: err.errorCode,
      traceId,
      result: null,
      targetUrl: null,
      success: false,
      error: { code: err.errorCode, message: err.message, details: null },
      unAuthorizedRequest: err.status === 401,
      __abp: true,
    };
  }

  /** Validates the response against the document (or the double's error schemas) before sending it. */
  private sendChecked(op: Operation, result: HandlerResult, send: (status: number, body: unknown) => void): void {
    const { status, body } = result;
    let validate: ValidateFunction | null | undefined;
    if (op.api === 'token') {
      // The token document declares "200: Success" without a body: RFC 6749 says what it holds.
      validate = this.schemas.validator(status === 200 ? 'uipath-double#/definitions/TokenResponse' : 'uipath-double#/definitions/TokenError');
    } else if (op.responses.has(status)) {
      const schema = op.responses.get(status);
      validate = schema ? this.schemas.compile(schema) : null;
    } else if (status >= 400) {
      validate = this.schemas.validator(op.api === 'orchestrator' ? 'uipath-double#/definitions/OrchestratorError' : 'uipath-double#/definitions/ProblemDetails');
    } else {
      throw new DoubleDefect(`${op.operationId}: status ${status} is not declared by the document`);
    }
    if (validate === null) {
      if (body !== undefined) throw new DoubleDefect(`${op.operationId}: status ${status} has no body in the document, but the double sent one`);
      return send(status, undefined);
    }
    // OData annotations (@odata.context, @odata.count, @odata.nextLink) are protocol, not payload.
    const payload = isRecord(body) ? Object.fromEntries(Object.entries(body).filter(([k]) => !k.startsWith('@odata.'))) : body;
    if (!validate(payload)) {
      throw new DoubleDefect(`${op.operationId}: the double's ${status} response does not match the document: ${describeErrors(validate.errors, 'response')}`);
    }
    send(status, body);
  }

  private entityType(name: string): EntityType {
    const cached = this.entityTypes.get(name);
    if (cached) return cached;
    const type: EntityType = { name, properties: {} };
    this.entityTypes.set(name, type);
    const schema = this.schemas.definition('orchestrator', name) as { properties?: Record<string, { $ref?: string }> };
    for (const [prop, s] of Object.entries(schema.properties ?? {})) {
      const ref = s.$ref?.split('/definitions/')[1];
      type.properties[prop] = ref ? this.entityType(ref) : true;
    }
    return type;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Starts a double on 127.0.0.1 (a free port unless `port` is given). */
export async function startUiPathDouble(options: UiPathDoubleOptions = {}): Promise<UiPathDouble> {
  const double = new UiPathDouble(options);
  await double.start(options.port ?? 0);
  return double;
}
