/**
 * A shared-informer in the manner of client-go's reflector + store: list, then watch from the
 * list's resourceVersion, keep a local cache, tell handlers what changed.
 *
 * What client-node's own makeInformer lacks, and this one does:
 * - it never gives up: any watch or list error is retried with capped, jittered backoff
 *   (client-node's stops on anything but 410 until someone calls start() again);
 * - a watch that ends normally (server timeout, apiserver restart) resumes from the last seen
 *   resourceVersion, kept fresh by bookmarks, so no relist and no missed event;
 * - 410 Gone (as an HTTP status or as an ERROR event) means the resourceVersion was compacted
 *   away: relist, and diff the fresh list against the cache so handlers see exactly the
 *   adds/updates/deletes they missed;
 * - a periodic full relist (default 10 min) does the same diff, as a safety net;
 * - watches carry a jittered server-side timeout plus a client-side idle watchdog, because a
 *   half-open TCP connection would otherwise silence the informer forever.
 *
 * Objects are kept as the plain JSON the API server sent (timestamps are strings), transformed
 * once on the way in (by default without managedFields and the last-applied-configuration
 * annotation: they are large and nobody here reads them).
 * Handlers and callers must treat cached objects as read-only.
 */
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import { errorCode, errorMessage, rawRequest } from './client.js';
import { silentLogger, type Logger } from '../log.js';
import { sameJson } from '../model/json.js';

export type InformerEvent = 'add' | 'update' | 'delete';

/** `old` is the previous cached version for updates and the last known one for deletes. */
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T) => void;

export interface ListPage<T> {
  items?: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export type ListFn<T> = (opts: { limit?: number; continue?: string; signal: AbortSignal }) => Promise<ListPage<T>>;

/** Same shape as client-node's Watch.watch (injectable for tests). */
export type WatchFn = (
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: (type: string, obj: unknown) => void,
  onDone: (err: unknown) => void,
) => Promise<{ abort(): void }>;

export interface InformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Collection path, for list and watch alike: /api/v1/namespaces, /apis/rpa-access.io/v1alpha1/users. */
  path: string;
  /** For logs; defaults to the path. */
  name?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Items per list page (paging keeps memory and apiserver load flat); default 500. */
  pageSize?: number;
  /** Full relist period in ms (0 = never); default 10 min. */
  resyncPeriodMs?: number;
  /** Also report unchanged objects as updates on a periodic relist (a periodic reconcile of everything). */
  resyncUnchanged?: boolean;
  /** Server-side watch timeout; each watch uses a random value between this and twice it. Default 300. */
  watchTimeoutSeconds?: number;
  /** Retry backoff after errors; default 800 ms doubling up to 30 s, +20 % jitter (client-go's reflector). */
  backoff?: BackoffOptions;
  /** Applied to every object before it is cached; default `slimForCache`. */
  transform?: (obj: T) => T;
  list?: ListFn<T>;
  watch?: WatchFn;
  log?: Logger;
}

/** The key of an object in the cache: `namespace/name`, or `name` for cluster-scoped objects. */
export function cacheKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

// The collection path of a resource lives with the requests that use it (client.ts).
export { resourcePath } from './client.js';

/** `kubectl apply`'s copy of the whole last applied object, kept in an annotation. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * The default transform (controller-runtime's cache does the same with managedFields): drops
 * metadata.managedFields and the last-applied-configuration annotation. Both are large (the
 * annotation repeats the whole object as a string), change on writes and are read by nobody here;
 * the cache holds every object of every watched kind, so they would be most of its memory. Safe
 * because nothing writes a cached object back whole: every write is a patch naming its fields.
 * Values many objects repeat (apiVersion, finalizers, condition texts) share one string.
 */
export function slimForCache<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata;
  if (!meta) return internShared(obj);
  const lastApplied = meta.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined;
  if (meta.managedFields === undefined && !lastApplied) return internShared(obj);
  // A new metadata object rather than `delete`: V8 turns an object that loses a property into a
  // hash table (≈ 0.4 KiB more per cached object, slower to read); a copy stays compact.
  const { managedFields: _managed, annotations, ...rest } = meta;
  let kept = annotations;
  if (lastApplied) {
    const { [LAST_APPLIED_ANNOTATION]: _dropped, ...others } = annotations!;
    kept = Object.keys(others).length > 0 ? others : undefined;
  }
  obj.metadata = kept === undefined ? rest : { ...rest, annotations: kept };
  return internShared(obj);
}

/**
 * The strings shared lately, least recently used out first: timestamps and messages come and go
 * over an operator's life, and a table that only grew would end up full of old ones.
 */
const interned = new LRUCache<string, string>({ max: 4096 });
const SHARED_CONDITION_FIELDS = ['type', 'status', 'reason', 'message', 'lastTransitionTime'];

/** One copy of a string value that many cached objects repeat. */
function intern(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const known = interned.get(value);
  if (known !== undefined) return known;
  interned.set(value, value);
  return value;
}

/**
 * JSON.parse makes a new string for every value, so 10,000 cached objects hold 10,000 copies of
 * their apiVersion, their finalizer, the same condition message and the few timestamps a bulk
 * apply shares (≈ 0.25 KiB per object). The fields that repeat across objects by nature share
 * one copy; names, uids and specs, which do not, are left alone.
 */
function internShared<T extends KubernetesObject>(obj: T): T {
  const o = obj as T & { status?: { conditions?: Record<string, unknown>[] } };
  o.apiVersion = intern(o.apiVersion) as string | undefined;
  o.kind = intern(o.kind) as string | undefined;
  const meta = o.metadata;
  if (meta) {
    meta.namespace = intern(meta.namespace) as string | undefined;
    if (typeof meta.creationTimestamp === 'string') meta.creationTimestamp = intern(meta.creationTimestamp) as never;
    if (Array.isArray(meta.finalizers)) meta.finalizers = meta.finalizers.map((f) => intern(f) as string);
  }
  const conditions = o.status?.conditions;
  if (Array.isArray(conditions)) {
    for (const c of conditions) {
      if (!c || typeof c !== 'object') continue;
      for (const field of SHARED_CONDITION_FIELDS) if (field in c) c[field] = intern(c[field]);
    }
  }
  return obj;
}

/**
 * An update that leaves the spec as it was (a status write, a label, a finalizer) keeps the
 * cached spec rather than a fresh parse of the same thing: every status echo would otherwise
 * replace every spec, and the store's state, which shares a spec's strings (validateDocument
 * copies containers, not strings), would stop sharing them. Compared by value, not trusted to
 * `generation`: the API server also changes a spec without bumping it (defaults of a new CRD
 * version applied on read). A new generation is a changed spec, not compared.
 */
function keepUnchangedSpec(obj: KubernetesObject, old: KubernetesObject): void {
  const generation = obj.metadata?.generation;
  if (typeof generation === 'number' && generation !== old.metadata?.generation) return;
  const o = obj as KubernetesObject & { spec?: unknown };
  const previous = (old as KubernetesObject & { spec?: unknown }).spec;
  if (o.spec !== undefined && previous !== undefined && sameJson(o.spec, previous)) o.spec = previous;
}

type WatchOutcome = 'ended' | 'expired' | 'resync' | 'stopped';

class WatchFailure extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

/** A watch that ends cleanly sooner than this without any event counts as a failure (no hot loop). */
const MIN_HEALTHY_WATCH_MS = 1_000;
/** Extra time over the server-side timeout before the idle watchdog declares the connection dead. */
const WATCHDOG_GRACE_MS = 30_000;

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  private readonly cache = new Map<string, T>();
  private readonly handlers = new Set<InformerHandler<T>>();
  private readonly opts: Required<Pick<InformerOptions<T>, 'pageSize' | 'resyncPeriodMs' | 'watchTimeoutSeconds'>> & InformerOptions<T>;
  private readonly log: Logger;
  private readonly listFn: ListFn<T>;
  private readonly watchFn: WatchFn;
  private readonly transform: (obj: T) => T;
  private readonly backoff: Backoff;

  private resourceVersion = '';
  private synced = false;
  private syncWaiters: Array<(synced: boolean) => void> = [];
  private stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private lastListAt = 0;

  constructor(opts: InformerOptions<T>) {
    // `??`, not spread defaults: callers pass options through as explicit undefined.
    this.opts = {
      ...opts,
      pageSize: opts.pageSize ?? 500,
      resyncPeriodMs: opts.resyncPeriodMs ?? 10 * 60_000,
      watchTimeoutSeconds: opts.watchTimeoutSeconds ?? 300,
    };
    this.name = opts.name ?? opts.path;
    this.log = opts.log ?? silentLogger;
    this.transform = opts.transform ?? slimForCache;
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 800, capMs: 30_000, factor: 2, jitter: 0.2 });
    this.listFn = opts.list ?? this.defaultList();
    this.watchFn = opts.watch ?? defaultWatch(opts.kc);
  }

  /** Registers a handler; if the cache is already filled, it first gets an `add` for each object. */
  on(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    if (this.synced) for (const obj of this.cache.values()) this.call(handler, 'add', obj);
    return () => this.handlers.delete(handler);
  }

  onAdd(fn: (obj: T) => void): () => void {
    return this.on((event, obj) => event === 'add' && fn(obj));
  }

  onUpdate(fn: (obj: T, old: T) => void): () => void {
    return this.on((event, obj, old) => event === 'update' && fn(obj, old as T));
  }

  onDelete(fn: (obj: T) => void): () => void {
    return this.on((event, obj) => event === 'delete' && fn(obj));
  }

  /** Starts listing and watching in the background; idempotent. */
  start(): void {
    if (this.stopController.signal.aborted) throw new Error(`informer ${this.name} was stopped; create a new one`);
    if (this.loop) return;
    this.loop = this.run();
  }

  /** Stops the watch and every retry; resolves when the background loop has ended. */
  async stop(): Promise<void> {
    this.stopController.abort();
    this.resolveSyncWaiters(false);
    await this.loop;
  }

  /** True once the first list has filled the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves true when synced, false on timeout or stop (as client-go's WaitForCacheSync). */
  waitForSync(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.stopController.signal.aborted || opts.signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (ok: boolean): void => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.syncWaiters = this.syncWaiters.filter((w) => w !== finish);
        resolve(ok);
      };
      const onAbort = (): void => finish(false);
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => finish(false), opts.timeoutMs);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(finish);
    });
  }

  /** Cached objects, optionally of one namespace. */
  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => (o.metadata?.namespace ?? '') === namespace);
  }

  /** A cached object; pass '' (or undefined) as namespace for cluster-scoped kinds. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  get size(): number {
    return this.cache.size;
  }

  /** The resourceVersion the informer is caught up to ('' before the first list). */
  get lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(): Promise<void> {
    const stop = this.stopController.signal;
    let needList = true;
    while (!stop.aborted) {
      try {
        if (needList) {
          await this.listAndReplace();
          needList = false;
        }
        const started = Date.now();
        const { outcome, events, timeoutSeconds } = await this.watchOnce();
        if (outcome === 'expired') {
          needList = true;
          if (events === 0 && started - this.lastListAt < MIN_HEALTHY_WATCH_MS) {
            // Expired straight after a fresh list: relisting at once would only spin; back off.
            throw new WatchFailure('watch expired right after a fresh list');
          }
          this.log.info({ informer: this.name, resourceVersion: this.resourceVersion }, 'watch resourceVersion expired (410), relisting');
        } else if (outcome === 'resync') {
          needList = true;
        } else if (outcome === 'ended') {
          if (events === 0 && Date.now() - started < MIN_HEALTHY_WATCH_MS) {
            throw new WatchFailure('watch closed immediately without events');
          }
          // Ended well before its timeout, a watch was most likely dropped by the API server's
          // watch cache, whose buffer for it stayed full. Nothing is lost (the next watch resumes
          // from the last resourceVersion). When every client's watch of a kind ends at once, the
          // API server could not feed them (seen with both cores busy); when only this process's
          // do, it reads them too slowly.
          const seconds = Math.round((Date.now() - started) / 100) / 10;
          this.log.debug({ informer: this.name, events, seconds, timeoutSeconds, early: seconds < timeoutSeconds / 2 }, 'watch ended by the API server; resuming');
          this.backoff.reset();
        }
      } catch (err) {
        if (stop.aborted) break;
        if (errorCode(err) === 410) {
          // Also reached when a paged list's continue token expired: a fresh list fixes both.
          needList = true;
          continue;
        }
        const delay = this.backoff.next();
        this.log.warn({ informer: this.name, err: errorMessage(err), retryInMs: Math.round(delay), relist: needList }, 'informer error, retrying');
        await sleep(delay, stop);
      }
    }
  }

  private defaultList(): ListFn<T> {
    return ({ limit, continue: cont, signal }) =>
      rawRequest<ListPage<T>>(this.opts.kc, {
        path: this.opts.path,
        query: { limit, continue: cont, labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector },
        signal,
      });
  }

  /** Lists everything (page by page), then brings cache and handlers in line with the result. */
  private async listAndReplace(): Promise<void> {
    const signal = this.stopController.signal;
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.listFn({ limit: this.opts.pageSize, continue: cont, signal });
      if (signal.aborted) return;
      items.push(...(page.items ?? []));
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);

    const fresh = new Map<string, T>();
    for (const raw of items) {
      const obj = this.transform(raw);
      fresh.set(cacheKey(obj), obj);
    }
    const resync = this.synced;
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old, old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      if (old) keepUnchangedSpec(obj, old);
      this.cache.set(key, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion || (resync && this.opts.resyncUnchanged)) {
        this.emit('update', obj, old);
      }
    }
    this.resourceVersion = resourceVersion;
    this.lastListAt = Date.now();
    this.backoff.reset();
    this.log.debug({ informer: this.name, items: fresh.size, resourceVersion }, 'listed');
    if (!this.synced) {
      this.synced = true;
      this.resolveSyncWaiters(true);
    }
  }

  /** One watch from the current resourceVersion, until it ends, fails, expires or a resync is due. */
  private watchOnce(): Promise<{ outcome: WatchOutcome; events: number; timeoutSeconds: number }> {
    const stop = this.stopController.signal;
    const timeoutSeconds = Math.round(this.opts.watchTimeoutSeconds * (1 + Math.random()));
    const query = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
    };
    let events = 0;
    return new Promise((resolve, reject) => {
      let finished = false;
      let handle: { abort(): void } | undefined;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      let resyncTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = (outcome: WatchOutcome | Error): void => {
        if (finished) return;
        finished = true;
        clearTimeout(watchdog);
        clearTimeout(resyncTimer);
        stop.removeEventListener('abort', onStop);
        handle?.abort();
        if (outcome instanceof Error) reject(outcome);
        else resolve({ outcome, events, timeoutSeconds });
      };
      const onStop = (): void => finish('stopped');
      const armWatchdog = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish(new WatchFailure(`watch silent for ${timeoutSeconds}s + grace; reconnecting`)), timeoutSeconds * 1000 + WATCHDOG_GRACE_MS);
      };
      if (stop.aborted) return finish('stopped');
      stop.addEventListener('abort', onStop, { once: true });
      if (this.opts.resyncPeriodMs > 0) {
        const due = this.lastListAt + this.opts.resyncPeriodMs - Date.now();
        resyncTimer = setTimeout(() => finish('resync'), Math.max(0, due));
      }
      armWatchdog();

      const onEvent = (type: string, obj: unknown): void => {
        if (finished) return;
        armWatchdog();
        if (type === 'ERROR') {
          const status = obj as { code?: number; message?: string };
          if (status?.code === 410) return finish('expired');
          return finish(new WatchFailure(`watch ERROR event: ${status?.message ?? JSON.stringify(obj)}`, status?.code));
        }
        events++;
        this.applyWatchEvent(type, obj as T);
      };
      const onDone = (err: unknown): void => {
        if (finished) return;
        if (!err) return finish('ended');
        if (errorCode(err) === 410) return finish('expired');
        finish(err instanceof Error ? err : new Error(String(err)));
      };
      this.watchFn(this.opts.path, query, onEvent, onDone).then(
        (h) => {
          handle = h;
          if (finished) h.abort();
        },
        (err: unknown) => onDone(err ?? new Error('watch failed')),
      );
    });
  }

  private applyWatchEvent(type: string, raw: T): void {
    const rv = raw?.metadata?.resourceVersion;
    if (type === 'BOOKMARK') {
      // A bookmark carries only a resourceVersion: resuming from it avoids a 410 after quiet periods.
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') {
      this.log.warn({ informer: this.name, type }, 'unknown watch event type');
      return;
    }
    const obj = this.transform(raw);
    const key = cacheKey(obj);
    const old = this.cache.get(key);
    if (old) keepUnchangedSpec(obj, old);
    if (type === 'DELETED') {
      this.cache.delete(key);
      this.emit('delete', obj, old);
    } else {
      this.cache.set(key, obj);
      this.emit(old ? 'update' : 'add', obj, old);
    }
    if (rv) this.resourceVersion = rv;
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const handler of this.handlers) this.call(handler, event, obj, old);
  }

  /** A handler that throws must neither break the informer nor starve the other handlers. */
  private call(handler: InformerHandler<T>, event: InformerEvent, obj: T, old?: T): void {
    try {
      handler(event, obj, old);
    } catch (err) {
      this.log.error({ informer: this.name, event, key: cacheKey(obj), err: errorMessage(err) }, 'informer handler threw');
    }
  }

  private resolveSyncWaiters(ok: boolean): void {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w(ok);
  }
}

function defaultWatch(kc: KubeConfig): WatchFn {
  const watch = new Watch(kc);
  return (path, query, onEvent, onDone) => watch.watch(path, query, (type, obj) => onEvent(type, obj), onDone);
}
