/**
 * Authentication and per-tenant authorization of the decision API's callers (contract section
 * 6): a bearer token, verified by a Kubernetes TokenReview (`tokenreview`, the default; a
 * SubjectAccessReview then says which tenants the caller may ask about) or against a token file
 * (`token`; each line may list its tenants); `none` only when asked for. Tokens are never logged
 * and never kept in clear in a cache key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { LRUCache } from 'lru-cache';
import { silentLogger, type Logger } from '../log.js';
import type { AuthMode } from './options.js';


/** Who a TokenReview says the caller is: what a SubjectAccessReview asks about. */
export interface ReviewedUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export type AuthDecision =
  | {
      ok: true;
      caller: string;
      /** `token` mode: the tenants this token may ask about; undefined means every tenant. */
      tenants?: ReadonlySet<string>;
      /** `tokenreview` mode: the reviewed identity, for the SubjectAccessReview. */
      user?: ReviewedUser;
    }
  | { ok: false; reason: string };

export type Caller = Extract<AuthDecision, { ok: true }>;

export interface Authenticator {
  readonly mode: AuthMode;
  /** Judges an `Authorization` header value. Throws AuthUnavailableError when it cannot tell. */
  authenticate(header: string | undefined): Promise<AuthDecision>;
  /**
   * May this authenticated caller ask about `tenant`? Answered without looking the tenant up, so
   * that the answer (403) is the same whether the tenant exists or not. Throws
   * AuthUnavailableError when it cannot tell.
   */
  authorize(caller: Caller, tenant: string): Promise<boolean>;
  close(): void;
}

/** The virtual resource a caller needs `get` on, in a tenant's namespace, to ask about it. */
const DECISIONS_RESOURCE = { group: 'rpa-access.io', resource: 'decisions', verb: 'get' } as const;

/** The verifier could not be asked (the Kubernetes API is unreachable...): 503, not 401. */
export class AuthUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthUnavailableError';
  }
}

/** A configuration problem found at start: the server refuses to start with this message. */
export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}


const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The token of a `Bearer` header, or a reason why there is none. */
export function bearerToken(header: string | undefined): { token: string } | { reason: string } {
  if (header === undefined || header === '') return { reason: 'missing bearer token (Authorization: Bearer TOKEN)' };
  const m = BEARER.exec(header);
  if (!m) return { reason: 'malformed Authorization header: expected Bearer TOKEN' };
  return { token: m[1]! };
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class NoAuth implements Authenticator {
  readonly mode = 'none' as const;
  async authenticate(): Promise<AuthDecision> {
    return { ok: true, caller: 'anonymous' };
  }
  async authorize(): Promise<boolean> {
    return true;
  }
  close(): void {}
}

/** A tenant list of a token line: `tenant1,tenant2`. */
function parseTenantList(list: string | undefined): ReadonlySet<string> | undefined {
  if (list === undefined) return undefined;
  return new Set(list.split(',').map((t) => t.trim()).filter((t) => t !== ''));
}

/**
 * Tokens from a file, one per line (blank lines and `#` comments ignored): `TOKEN` may ask about
 * every tenant, `TOKEN tenant1,tenant2` only about those. The file is re-read
 * when it changes (polled every 2 s: works for Kubernetes Secret volumes, which swap a symlink)
 * and on `reload()` (the server calls it on SIGHUP). Comparison is constant-time: SHA-256 digests
 * compared with timingSafeEqual against every entry, without an early exit.
 */
export class TokenFileAuth implements Authenticator {
  readonly mode = 'token' as const;
  private digests: Buffer[] = [];
  private tenantLists: (ReadonlySet<string> | undefined)[] = [];
  private readonly onChange: () => void;

  constructor(readonly file: string, private readonly log: Logger = silentLogger, pollIntervalMs = 2_000) {
    const count = this.load();
    if (count === 0) throw new AuthConfigError(`token file ${file} holds no token (one token per line)`);
    this.onChange = () => this.reload();
    if (pollIntervalMs > 0) fs.watchFile(file, { interval: pollIntervalMs, persistent: false }, this.onChange);
  }

  /** Reads the file; returns the number of tokens. Throws AuthConfigError when it cannot be read. */
  private load(): number {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new AuthConfigError(`cannot read token file ${this.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const byToken = new Map<string, ReadonlySet<string> | undefined>();
    for (const line of lines) {
      const [token, list, ...rest] = line.split(/\s+/);
      if (rest.length > 0) throw new AuthConfigError(`token file ${this.file}: a line is TOKEN or TOKEN tenant1,tenant2 (found more fields)`);
      // The same token twice: the wider of the two lists would be a surprise; keep the narrower (first) one.
      if (!byToken.has(token!)) byToken.set(token!, parseTenantList(list));
    }
    this.digests = [...byToken.keys()].map(sha256);
    this.tenantLists = [...byToken.values()];
    return this.digests.length;
  }

  /** Re-reads the file; on a read error the previous tokens stay in force. */
  reload(): void {
    try {
      const count = this.load();
      if (count === 0) this.log.warn({ file: this.file }, 'token file holds no token: every request will be refused');
      else this.log.info({ file: this.file, tokens: count }, 'token file reloaded');
    } catch (err) {
      this.log.error({ file: this.file, err: (err as Error).message }, 'token file unreadable; keeping the previous tokens');
    }
  }

  async authenticate(header: string | undefined): Promise<AuthDecision> {
    const t = bearerToken(header);
    if ('reason' in t) return { ok: false, reason: t.reason };
    const digest = sha256(t.token);
    let match = -1;
    const digests = this.digests;
    for (let i = 0; i < digests.length; i++) {
      // No early exit: the time taken does not depend on which entry (if any) matches.
      if (timingSafeEqual(digest, digests[i]!) && match < 0) match = i;
    }
    if (match < 0) return { ok: false, reason: 'invalid token' };
    const tenants = this.tenantLists[match];
    return { ok: true, caller: `token#${match + 1}`, ...(tenants ? { tenants } : {}) };
  }

  async authorize(caller: Caller, tenant: string): Promise<boolean> {
    return caller.tenants === undefined || caller.tenants.has(tenant);
  }

  close(): void {
    fs.unwatchFile(this.file, this.onChange);
  }
}

export interface ReviewResult {
  authenticated: boolean;
  /** The authenticated user name (e.g. `system:serviceaccount:ns:name`). */
  user?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
  error?: string;
}

/** Asks the authority about one token (a Kubernetes TokenReview, or a stub in tests). */
export type TokenReviewer = (token: string) => Promise<ReviewResult>;

/** Asks the authority whether `user` may `get` decisions in namespace `tenant` (a SubjectAccessReview). */
export type AccessReviewer = (user: ReviewedUser, tenant: string) => Promise<boolean>;

export interface TokenReviewAuthOptions {
  /** How long a valid token is trusted without asking again. Default 30 s. */
  positiveTtlMs?: number;
  /** How long a refused token is refused without asking again. Default 5 s. */
  negativeTtlMs?: number;
  /** Cache entries at most, per cache (the least recently used dropped first). Default 10 000. */
  maxEntries?: number;
  /** The clock, in milliseconds (tests move it); default performance.now(). */
  now?: () => number;
}

/**
 * A bounded cache whose entries expire, each after its own TTL (lru-cache): an expired entry is
 * never answered, whatever its recency.
 */
function expiringCache<V extends object | boolean>(maxEntries: number, now?: () => number): LRUCache<string, V> {
  return new LRUCache<string, V>({
    max: Math.max(1, maxEntries),
    // Read the clock on every look-up: the default keeps one reading for 1 ms, with a timer each time.
    ttlResolution: 0,
    // lru-cache takes a start time of 0 for "no TTL": a clock that starts at 0 is shifted by one.
    ...(now ? { perf: { now: () => now() + 1 } } : {}),
  });
}

/**
 * Verifies tokens with a reviewer, caching answers by the token's SHA-256: 30 s for a valid
 * token, 5 s for a refused one, bounded in size. Concurrent requests with the same new token
 * share one review. A reviewer failure is not cached and answers 503.
 */
export class TokenReviewAuth implements Authenticator {
  readonly mode = 'tokenreview' as const;
  private readonly cache: LRUCache<string, AuthDecision>;
  private readonly inFlight = new Map<string, Promise<AuthDecision>>();
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;
  /** Reviews actually sent (for tests and metrics). */
  reviews = 0;

  private readonly access: LRUCache<string, boolean>;
  private readonly accessInFlight = new Map<string, Promise<boolean>>();
  /** SubjectAccessReviews actually sent. */
  accessReviews = 0;

  constructor(
    private readonly reviewer: TokenReviewer,
    options: TokenReviewAuthOptions = {},
    private readonly accessReviewer?: AccessReviewer,
  ) {
    this.positiveTtlMs = options.positiveTtlMs ?? 30_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 5_000;
    const maxEntries = options.maxEntries ?? 10_000;
    this.cache = expiringCache(maxEntries, options.now);
    this.access = expiringCache(maxEntries, options.now);
  }

  async authenticate(header: string | undefined): Promise<AuthDecision> {
    const t = bearerToken(header);
    if ('reason' in t) return { ok: false, reason: t.reason };
    const key = sha256(t.token).toString('base64');
    const hit = this.cache.get(key);
    if (hit) return hit;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const p = this.review(key, t.token).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  private async review(key: string, token: string): Promise<AuthDecision> {
    let result: ReviewResult;
    this.reviews++;
    try {
      result = await this.reviewer(token);
    } catch (err) {
      throw new AuthUnavailableError(`cannot verify the token: ${err instanceof Error ? err.message : String(err)}`);
    }
    const decision: AuthDecision = result.authenticated
      ? {
          ok: true,
          caller: result.user ?? 'unknown',
          user: { username: result.user ?? '', ...(result.uid ? { uid: result.uid } : {}), ...(result.groups ? { groups: result.groups } : {}), ...(result.extra ? { extra: result.extra } : {}) },
        }
      : { ok: false, reason: 'invalid token' };
    this.cache.set(key, decision, { ttl: decision.ok ? this.positiveTtlMs : this.negativeTtlMs });
    return decision;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  /**
   * A SubjectAccessReview of `get` on decisions.rpa-access.io in the tenant's namespace, cached
   * per identity and tenant as tokens are (30 s allowed, 5 s refused). Without an access
   * reviewer every authenticated caller is refused: authorization is never silently skipped.
   */
  async authorize(caller: Caller, tenant: string): Promise<boolean> {
    if (!this.accessReviewer || !caller.user) return false;
    const user = caller.user;
    const key = sha256(JSON.stringify([user.username, user.uid ?? '', [...(user.groups ?? [])].sort(), tenant])).toString('base64');
    const hit = this.access.get(key);
    if (hit !== undefined) return hit;
    const pending = this.accessInFlight.get(key);
    if (pending) return pending;
    const reviewer = this.accessReviewer;
    const p = (async () => {
      this.accessReviews++;
      let allowed: boolean;
      try {
        allowed = await reviewer(user, tenant);
      } catch (err) {
        throw new AuthUnavailableError(`cannot check the caller's access: ${err instanceof Error ? err.message : String(err)}`);
      }
      this.access.set(key, allowed, { ttl: allowed ? this.positiveTtlMs : this.negativeTtlMs });
      return allowed;
    })().finally(() => this.accessInFlight.delete(key));
    this.accessInFlight.set(key, p);
    return p;
  }

  close(): void {
    this.cache.clear();
    this.access.clear();
  }
}

/** True when client-node found nothing to load and fell back to its http://localhost:8080 default. */
function isFallbackConfig(server: string | undefined, user: { token?: string; certFile?: string; certData?: string; exec?: unknown; authProvider?: unknown; username?: string } | null): boolean {
  return server === 'http://localhost:8080' && !!user && !user.token && !user.certFile && !user.certData && !user.exec && !user.authProvider && !user.username;
}

/**
 * A reviewer that sends a Kubernetes TokenReview with the in-cluster service account or the
 * current kubeconfig context. The service account needs `create` on `tokenreviews`
 * (the `system:auth-delegator` ClusterRole grants it).
 */
export async function kubernetesTokenReviewer(options: { timeoutMs?: number; audiences?: string[] } = {}): Promise<TokenReviewer> {
  return (await kubernetesReviewers(options)).tokenReviewer;
}

/** Rejects after `timeoutMs` with `what` in the message. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The TokenReview and SubjectAccessReview of the in-cluster service account or the current
 * kubeconfig context. The service account needs `create` on `tokenreviews` and
 * `subjectaccessreviews` (the `system:auth-delegator` ClusterRole grants both).
 */
export async function kubernetesReviewers(options: { timeoutMs?: number; audiences?: string[] } = {}): Promise<{ tokenReviewer: TokenReviewer; accessReviewer: AccessReviewer }> {
  const k8s = await import('@kubernetes/client-node');
  // loadKubeConfig's KubeConfig keeps its connections: a review per request not in the caches
  // goes over one kept-alive connection, not a TLS handshake each.
  const { loadKubeConfig } = await import('../k8s/client.js');
  let kc: InstanceType<typeof k8s.KubeConfig>;
  try {
    kc = loadKubeConfig();
  } catch (err) {
    throw new AuthConfigError(`--auth tokenreview: cannot load Kubernetes credentials: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (isFallbackConfig(kc.getCurrentCluster()?.server, kc.getCurrentUser())) {
    throw new AuthConfigError(
      '--auth tokenreview (the default) needs Kubernetes credentials: run in a cluster or set KUBECONFIG; ' +
        'or choose --auth token --token-file PATH, or --auth none to turn authentication off',
    );
  }
  const api = kc.makeApiClient(k8s.AuthenticationV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const timeoutMs = options.timeoutMs ?? 5_000;
  // ApiException carries the response body, which may echo the request: keep only the code.
  const failure = (what: string, err: unknown): Error => {
    const code = (err as { code?: number }).code;
    return new Error(code ? `${what} failed with HTTP ${code}` : err instanceof Error ? err.message : String(err));
  };
  const tokenReviewer: TokenReviewer = async (token: string) => {
    try {
      const review = await withTimeout(
        api.createTokenReview({
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            spec: { token, ...(options.audiences ? { audiences: options.audiences } : {}) },
          },
        }),
        timeoutMs,
        'TokenReview',
      );
      const status = review.status;
      const user = status?.user;
      return {
        authenticated: status?.authenticated === true,
        ...(user?.username ? { user: user.username } : {}),
        ...(user?.uid ? { uid: user.uid } : {}),
        ...(user?.groups ? { groups: user.groups } : {}),
        ...(user?.extra ? { extra: user.extra } : {}),
        ...(status?.error ? { error: status.error } : {}),
      };
    } catch (err) {
      throw failure('TokenReview', err);
    }
  };
  const accessReviewer: AccessReviewer = async (user, tenant) => {
    try {
      const review = await withTimeout(
        authz.createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: user.username,
              ...(user.uid ? { uid: user.uid } : {}),
              ...(user.groups ? { groups: user.groups } : {}),
              ...(user.extra ? { extra: user.extra } : {}),
              resourceAttributes: { namespace: tenant, ...DECISIONS_RESOURCE },
            },
          },
        }),
        timeoutMs,
        'SubjectAccessReview',
      );
      return review.status?.allowed === true && review.status?.denied !== true;
    } catch (err) {
      throw failure('SubjectAccessReview', err);
    }
  };
  return { tokenReviewer, accessReviewer };
}
