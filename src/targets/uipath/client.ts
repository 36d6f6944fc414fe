/**
 * A small client of UiPath's Orchestrator and Identity APIs on Node's fetch (UiPath publishes no
 * SDK for Node). It owns what every call needs and nothing else:
 * - a token from `<identityUrl>/connect/token` (client credentials), cached until shortly before
 *   it expires, fetched again on a 401 (once per call);
 * - OData paging with `$top`/`$skip` (Identity: `top`/`skip`);
 * - a cap on concurrent calls per target;
 * - bounded retries with backoff on 429 and 503, honouring `Retry-After`;
 * - a timeout per call;
 * - errors that name the call and UiPath's message, and a reason the status can show. The client
 *   secret and the token never appear in an error, a log line or anything else it returns.
 */
import type { Logger } from '../../log.js';

export type UiPathErrorReason = 'TargetUnreachable' | 'Unauthorized' | 'Forbidden' | 'RateLimited' | 'Conflict' | 'BadRequest' | 'NotFound' | 'ServerError';

export class UiPathError extends Error {
  constructor(
    message: string,
    readonly reason: UiPathErrorReason,
    readonly call: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'UiPathError';
  }
}

export interface Credentials {
  clientId: string;
  clientSecret: string;
}

export interface UiPathClientOptions {
  url: string;
  identityUrl: string;
  scopes: string;
  credentials: Credentials;
  /** Concurrent calls at most (default 8). */
  concurrency?: number;
  /** Attempts of a call answered 429/503 (default 6, the first included). */
  maxAttempts?: number;
  /** Per-call timeout in ms (default 30 s). */
  timeoutMs?: number;
  /** Page size of list calls (default 1000, UiPath's maximum). */
  pageSize?: number;
  /** Longest wait between two attempts, in ms (default 30 s). */
  maxBackoffMs?: number;
  /** Base of the exponential backoff when UiPath gives no Retry-After, in ms (default 500). */
  backoffBaseMs?: number;
  fetch?: typeof fetch;
  logger?: Logger;
  sleep?: (ms: number) => Promise<void>;
}

export interface CallCounts {
  reads: number;
  writes: number;
  tokens: number;
  retries: number;
  /** Calls by `METHOD /path-pattern`. */
  byCall: Map<string, number>;
}

type Base = 'orchestrator' | 'identity';

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Status codes that are not errors (besides 2xx). */
  accept?: number[];
}

const TOKEN_MARGIN_MS = 60_000;

/** Which scope a path needs, to name it when UiPath answers 403. */
function scopeFor(base: Base, path: string, method: string): string {
  const write = method !== 'GET';
  if (base === 'identity') {
    const res = path.startsWith('/api/Group') ? 'PM.Group' : path.startsWith('/api/RobotAccount') ? 'PM.RobotAccount' : 'PM.User';
    return `${res} (or ${res}.${write ? 'Write' : 'Read'})`;
  }
  const res = path.startsWith('/odata/Folders') ? 'OR.Folders' : 'OR.Users';
  return `${res} (or ${res}.${write ? 'Write' : 'Read'})`;
}

/** A call as errors and metrics name it: numbers and GUIDs in the path replaced. */
function callPattern(method: string, path: string): string {
  return `${method} ${path.replace(/\(\d+\)/g, '({id})').replace(/key=\d+/g, 'key={id}').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '{guid}')}`;
}

/** UiPath's error text: Orchestrator `{message, errorCode}`, Identity `{errors: [{description}]}` or ProblemDetails. */
function uipathMessage(body: unknown, text: string): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.message === 'string') return b.message;
    if (Array.isArray(b.errors) && b.errors.length > 0) {
      return b.errors.map((e) => (e && typeof e === 'object' ? String((e as Record<string, unknown>).description ?? (e as Record<string, unknown>).code ?? '') : String(e))).join('; ');
    }
    if (b.errors && typeof b.errors === 'object') return JSON.stringify(b.errors);
    if (typeof b.title === 'string') return b.title;
    if (typeof b.error_description === 'string') return b.error_description;
    if (typeof b.error === 'string') return b.error;
  }
  return text.slice(0, 300);
}

/** `Retry-After`: seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The claims of a JWT, unverified (only to read `prt_id`, the organization id). */
function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    return JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export class UiPathClient {
  readonly counts: CallCounts = { reads: 0, writes: 0, tokens: 0, retries: 0, byCall: new Map() };
  private token: { value: string; expiresAt: number; claims?: Record<string, unknown> } | undefined;
  private tokenRequest: Promise<string> | undefined;
  private readonly gate: Semaphore;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly opts: Required<Pick<UiPathClientOptions, 'maxAttempts' | 'timeoutMs' | 'pageSize' | 'maxBackoffMs' | 'backoffBaseMs'>>;
  /** Set when any call was retried for 429: the sync reports RateLimited if it then fails. */
  rateLimited = false;

  constructor(private readonly options: UiPathClientOptions) {
    this.gate = new Semaphore(options.concurrency ?? 8);
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.opts = {
      maxAttempts: options.maxAttempts ?? 6,
      timeoutMs: options.timeoutMs ?? 30_000,
      pageSize: options.pageSize ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      backoffBaseMs: options.backoffBaseMs ?? 500,
    };
  }

  /** Removes the secret and the token from any text that leaves the client. */
  private scrub(text: string): string {
    let out = text;
    for (const secret of [this.options.credentials.clientSecret, this.token?.value]) {
      if (secret && secret.length >= 4) out = out.split(secret).join('***');
    }
    return out;
  }

  /** The organization (Identity partition) id from the token's `prt_id` claim. */
  async organizationIdFromToken(): Promise<string | undefined> {
    await this.accessToken();
    const prt = this.token?.claims?.prt_id;
    return typeof prt === 'string' ? prt : undefined;
  }

  private async accessToken(): Promise<string> {
    if (this.token && Date.now() < this.token.expiresAt) return this.token.value;
    this.tokenRequest ??= this.fetchToken().finally(() => {
      this.tokenRequest = undefined;
    });
    return this.tokenRequest;
  }

  private async fetchToken(): Promise<string> {
    const call = `POST ${this.options.identityUrl}/connect/token`;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.options.credentials.clientId,
      client_secret: this.options.credentials.clientSecret,
      scope: this.options.scopes,
    });
    this.counts.tokens++;
    let res: Response;
    try {
      res = await this.withRetries('POST /connect/token', () =>
        this.fetchImpl(`${this.options.identityUrl}/connect/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: form.toString(),
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        }),
      );
    } catch (err) {
      throw this.unreachable(call, err);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const msg = this.scrub(uipathMessage(body, text));
      if (res.status === 400 && /scope/i.test(msg)) {
        throw new UiPathError(`${call}: ${res.status}: ${msg}: grant the external application these scopes (or set spec.scopes to those it has)`, 'Forbidden', call, res.status);
      }
      if (res.status === 400 || res.status === 401) {
        throw new UiPathError(`${call}: ${res.status}: ${msg}: the client id or secret is wrong`, 'Unauthorized', call, res.status);
      }
      throw this.httpError(call, res.status, msg, 'identity', '/connect/token', 'POST');
    }
    const t = body as { access_token?: unknown; expires_in?: unknown };
    if (typeof t?.access_token !== 'string') throw new UiPathError(`${call}: the answer holds no access_token`, 'ServerError', call, res.status);
    const lifetimeMs = (typeof t.expires_in === 'number' ? t.expires_in : 3600) * 1000;
    const claims = jwtClaims(t.access_token);
    this.token = { value: t.access_token, expiresAt: Date.now() + Math.max(lifetimeMs - TOKEN_MARGIN_MS, lifetimeMs / 2), ...(claims ? { claims } : {}) };
    return t.access_token;
  }

  private unreachable(call: string, err: unknown): UiPathError {
    if (err instanceof UiPathError) return err;
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs / 1000}s` : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
    return new UiPathError(`${call}: UiPath is unreachable: ${this.scrub(why)}`, 'TargetUnreachable', call);
  }

  private httpError(call: string, status: number, msg: string, base: Base, path: string, method: string, folder?: string): UiPathError {
    if (status === 401) return new UiPathError(`${call}: 401 Unauthorized: ${msg}`, 'Unauthorized', call, status);
    if (status === 403) {
      const hint = folder ? `the external application needs scope ${scopeFor(base, path, method)} and must be assigned to folder ${folder}` : `the external application needs scope ${scopeFor(base, path, method)}`;
      return new UiPathError(`${call}: 403 Forbidden: ${msg}: ${hint}`, 'Forbidden', call, status);
    }
    if (status === 429) return new UiPathError(`${call}: 429 Too Many Requests after ${this.opts.maxAttempts} attempts: ${msg}`, 'RateLimited', call, status);
    if (status === 409) return new UiPathError(`${call}: 409 Conflict: ${msg}`, 'Conflict', call, status);
    if (status === 404) return new UiPathError(`${call}: 404 Not Found: ${msg}`, 'NotFound', call, status);
    if (status >= 500) return new UiPathError(`${call}: ${status}: ${msg}`, status === 503 ? 'TargetUnreachable' : 'ServerError', call, status);
    return new UiPathError(`${call}: ${status}: ${msg}`, 'BadRequest', call, status);
  }

  /** Runs `attempt` until it answers something other than 429/503, at most maxAttempts times. */
  private async withRetries(call: string, attempt: () => Promise<Response>): Promise<Response> {
    for (let n = 1; ; n++) {
      const res = await attempt();
      if ((res.status !== 429 && res.status !== 503) || n >= this.opts.maxAttempts) return res;
      if (res.status === 429) this.rateLimited = true;
      const wait = Math.min(retryAfterMs(res.headers.get('retry-after')) ?? this.opts.backoffBaseMs * 2 ** (n - 1), this.opts.maxBackoffMs);
      this.counts.retries++;
      this.options.logger?.debug({ call, status: res.status, attempt: n, waitMs: Math.round(wait) }, 'UiPath asked to retry later');
      await res.body?.cancel().catch(() => undefined);
      await this.sleep(wait);
    }
  }

  /** One call. Returns the parsed JSON body (undefined for an empty one). */
  async request<T = unknown>(base: Base, method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const root = base === 'orchestrator' ? this.options.url : this.options.identityUrl;
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const url = `${root}${path}${qs.size > 0 ? `?${qs.toString()}` : ''}`;
    const pattern = callPattern(method, path);
    const call = `${method} ${path}`;
    this.counts.byCall.set(pattern, (this.counts.byCall.get(pattern) ?? 0) + 1);
    if (method === 'GET') this.counts.reads++;
    else this.counts.writes++;
    const folder = options.headers?.['X-UIPATH-OrganizationUnitId'];
    return this.gate.run(async () => {
      for (let authAttempt = 0; ; authAttempt++) {
        const token = await this.accessToken();
        let res: Response;
        try {
          res = await this.withRetries(call, () =>
            this.fetchImpl(url, {
              method,
              headers: {
                authorization: `Bearer ${token}`,
                accept: 'application/json',
                ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
                ...options.headers,
              },
              ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
              signal: AbortSignal.timeout(this.opts.timeoutMs),
            }),
          );
        } catch (err) {
          throw this.unreachable(call, err);
        }
        if (res.status === 401 && authAttempt === 0) {
          // The token expired early or was revoked: fetch a new one, once.
          await res.body?.cancel().catch(() => undefined);
          this.token = undefined;
          continue;
        }
        const text = await res.text();
        let body: unknown;
        if (text !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
        }
        if (res.ok || options.accept?.includes(res.status)) return body as T;
        throw this.httpError(call, res.status, this.scrub(uipathMessage(body, text)), base, path, method, folder);
      }
    });
  }

  /**
   * Every item of an OData collection, page by page (`$top`/`$skip`). A server that pages on its
   * own (a shorter page with `@odata.nextLink`) is followed from where its page ended.
   */
  async odataAll<T>(path: string, query: Record<string, string> = {}, headers?: Record<string, string>): Promise<T[]> {
    const out: T[] = [];
    for (let skip = 0; ; ) {
      const page = await this.request<{ value?: T[]; '@odata.nextLink'?: string }>('orchestrator', 'GET', path, { query: { ...query, $top: this.opts.pageSize, $skip: skip }, ...(headers ? { headers } : {}) });
      const items = page?.value ?? [];
      out.push(...items);
      skip += items.length;
      if (items.length === 0 || (items.length < this.opts.pageSize && !page?.['@odata.nextLink'])) return out;
    }
  }

  /** Every item of an Identity paged list (`top`/`skip`, `{totalCount, results}`). */
  async identityAll<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    for (let skip = 0; ; skip += this.opts.pageSize) {
      const page = await this.request<{ totalCount?: number; results?: T[] | null }>('identity', 'GET', path, { query: { top: this.opts.pageSize, skip } });
      const items = page?.results ?? [];
      out.push(...items);
      if (items.length < this.opts.pageSize || (page?.totalCount !== undefined && out.length >= page.totalCount)) return out;
    }
  }
}
