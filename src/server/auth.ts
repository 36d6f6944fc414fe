/**
 * Authentication of the decision API's callers (contract section 6): a bearer token, verified by
 * a Kubernetes TokenReview (`tokenreview`, the default) or against a token file (`token`);
 * `none` only when asked for. Tokens are never logged and never kept in clear in a cache key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { silentLogger, type LogPort } from '../log.js';
import type { AuthMode } from './options.js';


export type AuthDecision = { ok: true; caller: string } | { ok: false; reason: string };

export interface Authenticator {
  readonly mode: AuthMode;
  /** Judges an `Authorization` header value. Throws AuthUnavailableError when it cannot tell. */
  authenticate(header: string | undefined): Promise<AuthDecision>;
  close(): void;
}

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
  close(): void {}
}

/**
 * Tokens from a file, one per line (blank lines and `#` comments ignored). The file is re-read
 * when it changes (polled every 2 s: works for Kubernetes Secret volumes, which swap a symlink)
 * and on `reload()` (the server calls it on SIGHUP). Comparison is constant-time: SHA-256 digests
 * compared with timingSafeEqual against every entry, without an early exit.
 */
export class TokenFileAuth implements Authenticator {
  readonly mode = 'token' as const;
  private digests: Buffer[] = [];
  private readonly onChange: () => void;

  constructor(readonly file: string, private readonly log: LogPort = silentLogger, pollIntervalMs = 2_000) {
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
    const tokens = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    this.digests = [...new Set(tokens)].map(sha256);
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
    return match >= 0 ? { ok: true, caller: `token#${match + 1}` } : { ok: false, reason: 'invalid token' };
  }

  close(): void {
    fs.unwatchFile(this.file, this.onChange);
  }
}

export interface ReviewResult {
  authenticated: boolean;
  /** The authenticated user name (e.g. `system:serviceaccount:ns:name`). */
  user?: string;
  error?: string;
}

/** Asks the authority about one token (a Kubernetes TokenReview, or a stub in tests). */
export type TokenReviewer = (token: string) => Promise<ReviewResult>;

export interface TokenReviewAuthOptions {
  /** How long a valid token is trusted without asking again. Default 30 s. */
  positiveTtlMs?: number;
  /** How long a refused token is refused without asking again. Default 5 s. */
  negativeTtlMs?: number;
  /** Cache entries at most (oldest dropped first). Default 10 000. */
  maxEntries?: number;
  now?: () => number;
}

interface CacheEntry {
  decision: AuthDecision;
  expires: number;
}

/**
 * Verifies tokens with a reviewer, caching answers by the token's SHA-256: 30 s for a valid
 * token, 5 s for a refused one, bounded in size. Concurrent requests with the same new token
 * share one review. A reviewer failure is not cached and answers 503.
 */
export class TokenReviewAuth implements Authenticator {
  readonly mode = 'tokenreview' as const;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<AuthDecision>>();
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Reviews actually sent (for tests and metrics). */
  reviews = 0;

  constructor(private readonly reviewer: TokenReviewer, options: TokenReviewAuthOptions = {}) {
    this.positiveTtlMs = options.positiveTtlMs ?? 30_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 5_000;
    this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
    this.now = options.now ?? Date.now;
  }

  async authenticate(header: string | undefined): Promise<AuthDecision> {
    const t = bearerToken(header);
    if ('reason' in t) return { ok: false, reason: t.reason };
    const key = sha256(t.token).toString('base64');
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.expires > this.now()) return hit.decision;
      this.cache.delete(key);
    }
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
      ? { ok: true, caller: result.user ?? 'unknown' }
      : { ok: false, reason: 'invalid token' };
    if (this.cache.size >= this.maxEntries) {
      // Map iteration order is insertion order: drop the oldest.
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, { decision, expires: this.now() + (decision.ok ? this.positiveTtlMs : this.negativeTtlMs) });
    return decision;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  close(): void {
    this.cache.clear();
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
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromDefault();
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
  const timeoutMs = options.timeoutMs ?? 5_000;
  return async (token: string) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`TokenReview timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const review = await Promise.race([
        api.createTokenReview({
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            spec: { token, ...(options.audiences ? { audiences: options.audiences } : {}) },
          },
        }),
        timeout,
      ]);
      const status = review.status;
      return {
        authenticated: status?.authenticated === true,
        ...(status?.user?.username ? { user: status.user.username } : {}),
        ...(status?.error ? { error: status.error } : {}),
      };
    } catch (err) {
      // ApiException carries the response body, which may echo the request: keep only the code.
      const code = (err as { code?: number }).code;
      // eslint-disable-next-line preserve-caught-error -- the cause may carry the token back; the message is enough
      throw new Error(code ? `TokenReview failed with HTTP ${code}` : err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
    }
  };
}
