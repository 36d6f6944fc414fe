/**
 * Kubernetes client plumbing over @kubernetes/client-node 1.x: loading a KubeConfig, request
 * options (Content-Type, abort signal), a raw JSON request for paths the generated APIs do not
 * cover generically, and the writes every controller needs: status through the /status
 * subresource and finalizers, both as JSON merge patches.
 *
 * client-node 1.x facts this file relies on (checked on 1.4.0):
 * - generated patch* methods pick the first media type of their list, `application/json-patch+json`;
 *   the documented way to send a merge patch is a call-time middleware setting Content-Type:
 *   `setHeaderOptions('Content-Type', PatchStrategy.MergePatch)` as the second argument;
 * - the generated methods deserialize into typed models (timestamps become Date), while a watch
 *   stream yields plain JSON; the informer uses rawRequest() so that its cache holds one shape.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { LRUCache } from 'lru-cache';
import {
  ApiException,
  KubeConfig,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type KubernetesObject,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/** How long an agent replaced by new TLS material (a rotated client certificate) keeps its sockets. */
const RETIRED_AGENT_GRACE_MS = 120_000;

/**
 * A KubeConfig whose requests share keep-alive connections. client-node 1.4 builds a new
 * https.Agent for every call (kubernetes-client/javascript#2893): nothing is reused, so every
 * request pays a TLS handshake, on both sides, and a TLS context of its own (native memory the
 * allocator keeps long after). For an operator writing a status per object that was most of its
 * CPU and of its RSS growth (bench/README.md, operator at scale).
 *
 * Everything client-node decides per request still is: credentials (headers: a rotated token is
 * read as before), proxies (a proxy agent is left alone) and the TLS material, which picks the
 * agent: the same CA, client certificate and key get the same agent; new ones (a certificate
 * rotated on disk) get a new one, and the old one's sockets close after a grace period.
 */
export class ConnectionReusingKubeConfig extends KubeConfig {
  private readonly agents = new LRUCache<string, HttpAgent>({
    max: 4,
    dispose: (agent) => setTimeout(() => agent.destroy(), RETIRED_AGENT_GRACE_MS).unref(),
  });

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const agent = context.getAgent();
    if (agent) context.setAgent(this.shared(agent));
  }

  override async applyToHTTPSOptions(opts: Parameters<KubeConfig['applyToHTTPSOptions']>[0]): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    if (opts.agent instanceof HttpAgent) opts.agent = this.shared(opts.agent);
  }

  /** The keep-alive agent for the TLS material of `fresh` (an agent client-node just built). */
  private shared(fresh: HttpAgent): HttpAgent {
    // Proxy agents (and anything else) are subclasses: only plain agents are pooled.
    const tls = fresh.constructor === HttpsAgent;
    if (!tls && fresh.constructor !== HttpAgent) return fresh;
    const o = (fresh as HttpAgent & { options: Record<string, unknown> }).options;
    const hash = createHash('sha256').update(tls ? 'https' : 'http');
    for (const field of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername']) {
      const value = o[field];
      hash.update(`\0${field}=`);
      if (value !== undefined) hash.update(Buffer.isBuffer(value) ? value : JSON.stringify(value));
    }
    const key = hash.digest('base64');
    let agent = this.agents.get(key);
    if (!agent) {
      const options = { ...o, keepAlive: true };
      agent = tls ? new HttpsAgent(options) : new HttpAgent(options);
      this.agents.set(key, agent);
    }
    return agent;
  }
}

/** `kc` as a ConnectionReusingKubeConfig (the same clusters, users and contexts). */
export function reusingConnections(kc: KubeConfig): KubeConfig {
  if (kc instanceof ConnectionReusingKubeConfig) return kc;
  const shared = new ConnectionReusingKubeConfig();
  shared.loadFromOptions({ clusters: kc.clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext });
  return shared;
}

/**
 * The KubeConfig of the environment, as kubectl finds it: the file given, else $KUBECONFIG,
 * else ~/.kube/config, else the in-cluster service account; its requests reuse connections.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new ConnectionReusingKubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** The HTTP status of a failed call: ApiException.code, a watch error's statusCode, or a Status body's code. */
export function errorCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown; body?: { code?: unknown } };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number') return e.code;
    if (typeof e.body?.code === 'number') return e.body.code;
  }
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  return errorCode(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return errorCode(err) === 409;
}

/** A short description of an API error for logs and events (the Status message when there is one). */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: unknown } | string | undefined;
    const message = typeof body === 'object' && body && typeof body.message === 'string' ? body.message : String(body ?? '');
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Wraps a value into client-node's Observable (its middleware API is Observable-based). */
function observableOf<T>(value: T): Observable<T> {
  return new Observable(Promise.resolve(value));
}

/**
 * Call-time options for a generated API method: a Content-Type (e.g. PatchStrategy.MergePatch)
 * and/or an AbortSignal (client-node otherwise has no per-request timeout: a hung connection
 * would hang the caller forever).
 */
export function requestOptions(opts: { contentType?: string; signal?: AbortSignal }): ConfigurationOptions<ObservableMiddleware> {
  let options: ConfigurationOptions<ObservableMiddleware> = { middleware: [], middlewareMergeStrategy: 'append' };
  if (opts.contentType) options = setHeaderOptions('Content-Type', opts.contentType, options);
  if (opts.signal) {
    const signal = opts.signal;
    const withSignal: ObservableMiddleware = {
      pre: (ctx: RequestContext) => {
        ctx.setSignal(signal);
        return observableOf(ctx);
      },
      post: (rsp: ResponseContext) => observableOf(rsp),
    };
    options = { ...options, middleware: [...(options.middleware ?? []), withSignal], middlewareMergeStrategy: 'append' };
  }
  return options;
}

/** Merge patch options: generated patch* methods would otherwise send JSON Patch. */
export const MERGE_PATCH = requestOptions({ contentType: PatchStrategy.MergePatch });

export interface RawRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute API path, e.g. /api/v1/namespaces or /apis/rpa-access.io/v1alpha1/users. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Defaults to application/json when a body is given. */
  contentType?: string;
  signal?: AbortSignal;
  /** Gives up (and rejects) when no response completes in time. Default 60 s. */
  timeoutMs?: number;
}

/**
 * One request to the API server, returning the parsed JSON as sent (no model deserialization).
 * Uses the KubeConfig's TLS, credentials and proxy agent through applyToHTTPSOptions, so it
 * authenticates exactly as the generated clients do. Non-2xx answers throw an ApiException.
 */
export async function rawRequest<T = unknown>(kc: KubeConfig, req: RawRequest): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
  for (const [key, value] of Object.entries(req.query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const options: RequestOptions = { method: req.method ?? 'GET', headers: {} };
  await kc.applyToHTTPSOptions(options);
  options.headers = {
    ...(options.headers as Record<string, string>),
    Accept: 'application/json',
    ...(body ? { 'Content-Type': req.contentType ?? 'application/json', 'Content-Length': String(body.length) } : {}),
  };
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  const timeoutMs = req.timeoutMs ?? 60_000;

  return new Promise<T>((resolve, reject) => {
    const r = send(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // Not JSON (a proxy's HTML error page, say): keep the text for the error.
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(parsed as T);
        else reject(new ApiException(status, res.statusMessage ?? 'request failed', parsed, res.headers as Record<string, string>));
      });
    });
    const timer = setTimeout(() => r.destroy(new Error(`${options.method} ${req.path}: no answer within ${timeoutMs} ms`)), timeoutMs);
    r.on('close', () => clearTimeout(timer));
    r.on('error', reject);
    const onAbort = (): void => {
      r.destroy(new Error(`${options.method} ${req.path}: aborted`));
    };
    if (req.signal?.aborted) onAbort();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    r.on('close', () => req.signal?.removeEventListener('abort', onAbort));
    r.end(body);
  });
}

/** Where a namespaced custom object lives. */
export interface CustomObjectRef {
  group: string;
  version: string;
  plural: string;
  namespace: string;
  name: string;
}

/**
 * Merge-patches `status` through the /status subresource, so that a controller never touches
 * spec and users never race the controller over status. Arrays (conditions) are replaced
 * whole, which is what we want. With `resourceVersion` the write is conditional (409 when the
 * object changed since it was read). Returns the updated object.
 */
export async function patchStatus<T extends KubernetesObject = KubernetesObject>(
  kc: KubeConfig,
  ref: CustomObjectRef,
  status: unknown,
  opts: { resourceVersion?: string; fieldManager?: string } = {},
): Promise<T> {
  const body: Record<string, unknown> = { status };
  if (opts.resourceVersion) body.metadata = { resourceVersion: opts.resourceVersion };
  // rawRequest, not the generated client: one write per object at scale, and the generated
  // path (node-fetch, middleware, model deserialization) cost more CPU than the write itself.
  return rawRequest<T>(kc, {
    method: 'PATCH', path: `${objectPath(ref)}/status`, body, contentType: PatchStrategy.MergePatch,
    query: { fieldManager: opts.fieldManager },
  });
}

/** The collection path of a resource: core group "" lives under /api, the others under /apis. */
export function resourcePath(gvr: { group: string; version: string; plural: string; namespace?: string }): string {
  const base = gvr.group === '' ? `/api/${gvr.version}` : `/apis/${gvr.group}/${gvr.version}`;
  return gvr.namespace ? `${base}/namespaces/${gvr.namespace}/${gvr.plural}` : `${base}/${gvr.plural}`;
}

/** The API path of a namespaced custom object. */
function objectPath(ref: CustomObjectRef): string {
  return `${resourcePath(ref)}/${encodeURIComponent(ref.name)}`;
}

/** The object as the API server has it now (a read from etcd, never a cache), or undefined when there is none. */
export async function readObjectLive<T extends KubernetesObject = KubernetesObject>(kc: KubeConfig, ref: CustomObjectRef): Promise<T | undefined> {
  try {
    return await rawRequest<T>(kc, { path: objectPath(ref), timeoutMs: 10_000 });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Merge-patches the main resource (metadata, spec); same conditional rule as patchStatus. */
export async function patchObject<T extends KubernetesObject = KubernetesObject>(
  kc: KubeConfig,
  ref: CustomObjectRef,
  patch: Record<string, unknown>,
  opts: { fieldManager?: string } = {},
): Promise<T> {
  return rawRequest<T>(kc, { method: 'PATCH', path: objectPath(ref), body: patch, contentType: PatchStrategy.MergePatch, query: { fieldManager: opts.fieldManager } });
}

/**
 * Adds a finalizer unless present. The patch carries the full finalizer list and the object's
 * resourceVersion: a merge patch cannot add to a list, and the resourceVersion turns a race
 * with another writer of the list into a 409 (retry from a fresh read) instead of a lost
 * finalizer. Returns the updated object, or the given one when nothing had to change.
 */
export async function addFinalizer<T extends KubernetesObject>(kc: KubeConfig, ref: CustomObjectRef, obj: T, finalizer: string): Promise<T> {
  const current = obj.metadata?.finalizers ?? [];
  if (current.includes(finalizer)) return obj;
  return patchFinalizers(kc, ref, obj, [...current, finalizer]);
}

/** Removes a finalizer if present; conditional on resourceVersion like addFinalizer. */
export async function removeFinalizer<T extends KubernetesObject>(kc: KubeConfig, ref: CustomObjectRef, obj: T, finalizer: string): Promise<T> {
  const current = obj.metadata?.finalizers ?? [];
  if (!current.includes(finalizer)) return obj;
  return patchFinalizers(kc, ref, obj, current.filter((f) => f !== finalizer));
}

async function patchFinalizers<T extends KubernetesObject>(kc: KubeConfig, ref: CustomObjectRef, obj: T, finalizers: string[]): Promise<T> {
  const metadata: Record<string, unknown> = { finalizers };
  if (obj.metadata?.resourceVersion) metadata.resourceVersion = obj.metadata.resourceVersion;
  return patchObject<T>(kc, ref, { metadata });
}
