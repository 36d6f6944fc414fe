/**
 * What tests steer besides HTTP: fault injection and the call log. Kept apart from the server so
 * the rules are easy to read and to test.
 */

export interface FaultRule {
  /** 429 (rate limited) or 503 (unavailable), answered instead of the call. */
  status: 429 | 503;
  /** How many matching calls still fail (Infinity: until cleared). */
  remaining: number;
  /** Which calls: a RegExp tested on "METHOD /path", or a string that is an operationId or a part of the path. */
  match?: RegExp | string;
  /** Seconds for the Retry-After header (always sent on 429; on 503 only when set). */
  retryAfterSeconds?: number;
}

export interface FaultOptions {
  calls?: number;
  match?: RegExp | string;
  retryAfterSeconds?: number;
}

export type OutageMode = 'reset' | '503';

export class Faults {
  rules: FaultRule[] = [];
  outageMode: OutageMode | undefined;
  latencyMs = 0;

  /** The next `calls` matching calls (default 1) answer 429 with Retry-After (default 1 s). */
  rateLimit(options: FaultOptions = {}): void {
    this.rules.push({ status: 429, remaining: options.calls ?? 1, match: options.match, retryAfterSeconds: options.retryAfterSeconds ?? 1 });
  }

  /** The next `calls` matching calls (default 1) answer 503 (with Retry-After if given). */
  unavailable(options: FaultOptions = {}): void {
    this.rules.push({ status: 503, remaining: options.calls ?? 1, match: options.match, retryAfterSeconds: options.retryAfterSeconds });
  }

  /**
   * Full outage of both APIs and the token endpoint until called with false: 'reset' (default)
   * drops every connection (the client sees a network error), '503' answers Service Unavailable.
   */
  outage(on: boolean, mode: OutageMode = 'reset'): void {
    this.outageMode = on ? mode : undefined;
  }

  /** Added before every answer (including faults), in milliseconds. */
  latency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`latency: ${ms} is not a duration in ms`);
    this.latencyMs = ms;
  }

  clear(): void {
    this.rules = [];
    this.outageMode = undefined;
    this.latencyMs = 0;
  }

  /** The rule that takes this call, if any (and counts it down). */
  take(method: string, path: string, operationId: string | undefined): FaultRule | undefined {
    const rule = this.rules.find((r) => r.remaining > 0 && matches(r.match, method, path, operationId));
    if (rule) {
      rule.remaining--;
      if (rule.remaining <= 0) this.rules = this.rules.filter((r) => r !== rule);
    }
    return rule;
  }
}

function matches(m: RegExp | string | undefined, method: string, path: string, operationId: string | undefined): boolean {
  if (m === undefined) return true;
  if (m instanceof RegExp) return m.test(`${method} ${path}`);
  return m === operationId || path.includes(m);
}

export interface CallRecord {
  seq: number;
  time: number;
  method: string;
  /** The request path as sent, without the query. */
  path: string;
  query: string;
  /** "METHOD template" with the vendor's path template, e.g. "GET /odata/Users({key})"; "METHOD ?" when no path matched. */
  operation: string;
  operationId?: string;
  api?: 'orchestrator' | 'identity' | 'token';
  tenant?: string;
  status: number;
  /** The parsed JSON body of an Orchestrator or Identity call that passed authentication (never the token request's). */
  body?: unknown;
  /** Set when the answer was injected: 'rate-limit', 'unavailable', 'outage'. */
  fault?: string;
}

export class CallLog {
  private records: CallRecord[] = [];
  private seq = 0;

  add(r: Omit<CallRecord, 'seq' | 'time'>): CallRecord {
    const rec = { ...r, seq: ++this.seq, time: Date.now() };
    this.records.push(rec);
    return rec;
  }

  list(): CallRecord[] {
    return [...this.records];
  }

  /** Calls matching: an operationId, an "METHOD template" operation key, or a predicate. */
  count(filter?: string | ((r: CallRecord) => boolean)): number {
    if (filter === undefined) return this.records.length;
    const f = typeof filter === 'function' ? filter : (r: CallRecord) => r.operationId === filter || r.operation === filter;
    return this.records.filter(f).length;
  }

  /** Calls per "METHOD template" (e.g. {"GET /odata/Users": 3, "POST /connect/token": 1}). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.records) out[r.operation] = (out[r.operation] ?? 0) + 1;
    return out;
  }

  /** GET calls to Orchestrator and Identity (the token endpoint is not counted). */
  reads(): number {
    return this.records.filter((r) => r.api !== 'token' && r.method === 'GET').length;
  }

  /** Non-GET calls to Orchestrator and Identity (the token endpoint is not counted). */
  writes(): number {
    return this.records.filter((r) => r.api !== 'token' && r.method !== 'GET').length;
  }

  tokens(): number {
    return this.records.filter((r) => r.api === 'token').length;
  }

  reset(): void {
    this.records = [];
  }
}
