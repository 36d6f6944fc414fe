// The informer (src/k8s/informer.ts) over a fake list/watch: paging, watch resumption, relists
// on 410, backoff, periodic relists, handlers (the real API server is in test/e2e/runtime.test.ts).
// No timing assumptions: conditions are polled for with generous deadlines.
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { cacheKey, Informer, resourcePath, type InformerOptions, type ListFn, type WatchFn } from '../../src/k8s/informer.js';
import { recordingLogger } from '../support/logs.js';
import { until } from '../support/until.js';

interface Obj extends KubernetesObject {
  spec?: { v?: number };
}

function obj(name: string, rv: string, extra: Partial<Obj> = {}, namespace = 'ns'): Obj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, resourceVersion: rv }, ...extra };
}

interface FakeWatchCall {
  query: Record<string, unknown>;
  onEvent: (type: string, obj: unknown) => void;
  onDone: (err: unknown) => void;
  aborted: boolean;
}

/** A fake API server collection: list answers from `items`, watches are driven by the test. */
class FakeCollection {
  items: Obj[] = [];
  resourceVersion = '10';
  pageSize: number | undefined;
  listCalls = 0;
  listError: unknown;
  readonly watches: FakeWatchCall[] = [];

  readonly list: ListFn<Obj> = async ({ limit, continue: cont }) => {
    this.listCalls++;
    if (this.listError) {
      const err = this.listError;
      this.listError = undefined;
      throw err;
    }
    this.pageSize = limit;
    const start = cont ? Number(cont) : 0;
    const size = limit ?? this.items.length;
    const page = this.items.slice(start, start + size).map((o) => structuredClone(o));
    const next = start + size < this.items.length ? String(start + size) : undefined;
    return { items: page, metadata: { resourceVersion: this.resourceVersion, continue: next } };
  };

  readonly watch: WatchFn = async (_path, query, onEvent, onDone) => {
    const call: FakeWatchCall = { query, onEvent, onDone, aborted: false };
    this.watches.push(call);
    return { abort: () => (call.aborted = true) };
  };

  get current(): FakeWatchCall {
    const w = this.watches[this.watches.length - 1];
    if (!w) throw new Error('no watch yet');
    return w;
  }
}

function fakeInformer(src: FakeCollection, extra: Partial<InformerOptions<Obj>> = {}): Informer<Obj> {
  return new Informer<Obj>({
    kc: new KubeConfig(),
    path: '/api/v1/configmaps',
    list: src.list,
    watch: src.watch,
    backoff: { baseMs: 5, capMs: 20, jitter: 0 },
    resyncPeriodMs: 0,
    ...extra,
  });
}

describe('Informer (fake API server)', () => {
  let informers: Array<Informer<Obj>> = [];
  function track(inf: Informer<Obj>): Informer<Obj> {
    informers.push(inf);
    return inf;
  }
  afterEach(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    informers = [];
  });

  it('lists page by page, reports adds, then watches from the list resourceVersion with bookmarks and a jittered timeout', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1'), obj('b', '2'), obj('c', '3', {}, 'other'), obj('d', '4')];
    src.items[0]!.metadata!.managedFields = [{ manager: 'kubectl' }];
    const inf = track(fakeInformer(src, { pageSize: 3, watchTimeoutSeconds: 100 }));
    const events: string[] = [];
    inf.on((e, o) => events.push(`${e}:${o.metadata!.name}`));
    expect(inf.hasSynced()).toBe(false);
    inf.start();
    expect(await inf.waitForSync({ timeoutMs: 2_000 })).toBe(true);
    expect(src.pageSize).toBe(3);
    expect(src.listCalls).toBe(2);
    expect(events).toEqual(['add:a', 'add:b', 'add:c', 'add:d']);
    expect(inf.list().map((o) => o.metadata!.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(inf.list('other').map((o) => o.metadata!.name)).toEqual(['c']);
    expect(inf.get('ns', 'a')?.metadata?.managedFields).toBeUndefined();
    expect(inf.get('other', 'a')).toBeUndefined();

    await until('a watch', () => src.watches.length === 1);
    const q = src.current.query;
    expect(q).toMatchObject({ resourceVersion: '10', allowWatchBookmarks: true });
    expect(q.timeoutSeconds).toBeGreaterThanOrEqual(100);
    expect(q.timeoutSeconds).toBeLessThanOrEqual(200);
  });

  it('keeps the cached spec across updates that leave it as it was, takes the new one when it changed', async () => {
    const src = new FakeCollection();
    const gen = (g: number | undefined, v: number, rv: number) => ({ metadata: { name: 'a', namespace: 'ns', resourceVersion: String(rv), ...(g === undefined ? {} : { generation: g }) }, spec: { v } });
    src.items = [{ apiVersion: 'v1', kind: 'ConfigMap', ...gen(1, 1, 11) }];
    const inf = track(fakeInformer(src));
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    const first = inf.get('ns', 'a')!.spec;

    // A status echo: same generation, a fresh parse of the same spec.
    src.current.onEvent('MODIFIED', { kind: 'ConfigMap', ...gen(1, 1, 12), status: { ok: true } });
    expect(inf.get('ns', 'a')!.spec).toBe(first);
    expect((inf.get('ns', 'a') as { status?: unknown }).status).toEqual({ ok: true });

    // The same generation with another spec (a default the API server applies on read): taken.
    src.current.onEvent('MODIFIED', { kind: 'ConfigMap', ...gen(1, 2, 13) });
    expect(inf.get('ns', 'a')!.spec).toEqual({ v: 2 });

    // A new generation: the new spec, even were it equal.
    const second = inf.get('ns', 'a')!.spec;
    src.current.onEvent('MODIFIED', { kind: 'ConfigMap', ...gen(2, 2, 14) });
    expect(inf.get('ns', 'a')!.spec).toEqual({ v: 2 });
    expect(inf.get('ns', 'a')!.spec).not.toBe(second);

    // Without a generation: compared by value.
    src.current.onEvent('MODIFIED', { kind: 'ConfigMap', ...gen(undefined, 3, 15) });
    const third = inf.get('ns', 'a')!.spec;
    src.current.onEvent('MODIFIED', { kind: 'ConfigMap', ...gen(undefined, 3, 16) });
    expect(inf.get('ns', 'a')!.spec).toBe(third);
    src.current.onEvent('MODIFIED', { kind: 'ConfigMap', ...gen(undefined, 4, 17) });
    expect(inf.get('ns', 'a')!.spec).toEqual({ v: 4 });
  });

  it('applies watch events to the cache and tells handlers, with the old object on update and delete', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1', { spec: { v: 1 } })];
    const inf = track(fakeInformer(src));
    const events: Array<[string, string, number | undefined, number | undefined]> = [];
    inf.on((e, o, old) => events.push([e, o.metadata!.name!, o.spec?.v, old?.spec?.v]));
    inf.start();
    await until('a watch', () => src.watches.length === 1);

    src.current.onEvent('ADDED', obj('b', '11', { spec: { v: 1 } }));
    src.current.onEvent('MODIFIED', obj('a', '12', { spec: { v: 2 } }));
    src.current.onEvent('DELETED', obj('b', '13', { spec: { v: 1 } }));
    src.current.onEvent('BOOKMARK', { kind: 'ConfigMap', metadata: { resourceVersion: '20' } });
    expect(events).toEqual([
      ['add', 'a', 1, undefined],
      ['add', 'b', 1, undefined],
      ['update', 'a', 2, 1],
      ['delete', 'b', 1, 1],
    ]);
    expect(inf.get('ns', 'a')?.spec?.v).toBe(2);
    expect(inf.get('ns', 'b')).toBeUndefined();
    expect(inf.lastSyncResourceVersion).toBe('20');
  });

  it('resumes a watch that ended from the last resourceVersion seen, without relisting, and says the API server ended it early', async () => {
    const src = new FakeCollection();
    const { log, at } = recordingLogger();
    const inf = track(fakeInformer(src, { log, name: 'ConfigMap' }));
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    src.current.onEvent('ADDED', obj('a', '15'));
    src.current.onEvent('BOOKMARK', { metadata: { resourceVersion: '17' } });
    // Let the watch count as healthy (it lasted a while) before the server closes it.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    src.current.onDone(null);
    await until('a second watch', () => src.watches.length === 2);
    expect(src.current.query.resourceVersion).toBe('17');
    expect(src.listCalls).toBe(1);
    // Ended ~1 s into a watch of 300-600 s: what a watch cache dropping a watcher looks like.
    const ended = at('debug').filter((r) => r.msg === 'watch ended by the API server; resuming');
    expect(ended).toEqual([expect.objectContaining({ informer: 'ConfigMap', events: 2, early: true })]);
    expect(ended[0]!.timeoutSeconds).toBeGreaterThanOrEqual(300);
  });

  it('relists on 410 Gone, as an ERROR event or as an HTTP status, and reports only the difference', async () => {
    const src = new FakeCollection();
    src.items = [obj('keep', '1'), obj('change', '2', { spec: { v: 1 } }), obj('vanish', '3')];
    const inf = track(fakeInformer(src));
    const events: string[] = [];
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    inf.on((e, o, old) => events.push(`${e}:${o.metadata!.name}${old ? `<-${old.metadata!.resourceVersion}` : ''}`));
    events.length = 0; // drop the replay of the cache to the late handler

    // While the watch was away: one changed, one vanished, one appeared.
    src.items = [obj('keep', '1'), obj('change', '5', { spec: { v: 2 } }), obj('new', '6')];
    src.resourceVersion = '30';
    src.current.onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    expect(src.watches[0]!.aborted).toBe(true);
    await until('a watch after the relist', () => src.watches.length === 2);
    expect(src.listCalls).toBe(2);
    expect(events.sort()).toEqual(['add:new', 'delete:vanish<-3', 'update:change<-2']);
    expect(src.current.query.resourceVersion).toBe('30');

    // The same through an HTTP 410 answer to the watch request.
    src.resourceVersion = '40';
    src.current.onDone(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await until('a watch after the second relist', () => src.watches.length === 3);
    expect(src.listCalls).toBe(3);
    expect(src.current.query.resourceVersion).toBe('40');
  });

  it('retries other watch and list errors with backoff, resuming from the same resourceVersion', async () => {
    const src = new FakeCollection();
    const { log, at } = recordingLogger();
    src.listError = new Error('connection refused');
    const inf = track(fakeInformer(src, { log }));
    inf.start();
    expect(await inf.waitForSync({ timeoutMs: 2_000 })).toBe(true);
    expect(src.listCalls).toBe(2);
    await until('a watch', () => src.watches.length === 1);
    src.current.onEvent('ADDED', obj('a', '12'));
    src.current.onDone(new Error('socket hang up'));
    await until('a second watch', () => src.watches.length === 2);
    src.current.onEvent('ERROR', { kind: 'Status', code: 500, message: 'internal error' });
    await until('a third watch', () => src.watches.length === 3);
    expect(src.current.query.resourceVersion).toBe('12');
    expect(src.listCalls).toBe(2);
    expect(at('warn').map((r) => JSON.stringify(r)).join('\n')).toMatch(/connection refused[\s\S]*socket hang up[\s\S]*internal error/);
  });

  it('treats a watch that closes at once without events as a failure (no hot loop)', async () => {
    const src = new FakeCollection();
    const inf = track(fakeInformer(src, { backoff: { baseMs: 200, capMs: 200, jitter: 0 } }));
    inf.start();
    await until('a watch', () => src.watches.length === 1);
    src.current.onDone(null);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(src.watches).toHaveLength(1);
    await until('a second watch', () => src.watches.length === 2);
  });

  it('relists periodically, reporting changes only (or everything with resyncUnchanged)', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1'), obj('b', '2')];
    const quiet = track(fakeInformer(src, { resyncPeriodMs: 30 }));
    const loud = track(fakeInformer(src, { resyncPeriodMs: 30, resyncUnchanged: true }));
    const quietEvents: string[] = [];
    const loudEvents: string[] = [];
    quiet.on((e, o) => quietEvents.push(`${e}:${o.metadata!.name}`));
    loud.on((e, o) => loudEvents.push(`${e}:${o.metadata!.name}`));
    quiet.start();
    loud.start();
    await until('several relists', () => src.listCalls >= 6);
    expect(quietEvents).toEqual(['add:a', 'add:b']);
    expect(loudEvents.slice(0, 4)).toEqual(['add:a', 'add:b', 'update:a', 'update:b']);
    src.items = [obj('a', '1'), obj('b', '3')];
    await until('the change', () => quietEvents.length === 3);
    expect(quietEvents[2]).toBe('update:b');
  });

  it('survives a throwing handler and replays the cache to a late handler', async () => {
    const src = new FakeCollection();
    src.items = [obj('a', '1')];
    const inf = track(fakeInformer(src));
    const seen: string[] = [];
    inf.on(() => {
      throw new Error('handler bug');
    });
    inf.onAdd((o) => seen.push(`first:${o.metadata!.name}`));
    inf.start();
    await inf.waitForSync();
    const late: string[] = [];
    const off = inf.onAdd((o) => late.push(o.metadata!.name!));
    expect(late).toEqual(['a']);
    off();
    await until('a watch', () => src.watches.length === 1);
    src.current.onEvent('ADDED', obj('b', '11'));
    expect(seen).toEqual(['first:a', 'first:b']);
    expect(late).toEqual(['a']);
  });

  it('stop() ends the watch and the loop; waitForSync answers false when stopped before sync', async () => {
    const src = new FakeCollection();
    src.listError = new Error('down');
    const inf = fakeInformer(src, { backoff: { baseMs: 60_000, capMs: 60_000, jitter: 0 } });
    inf.start();
    const synced = inf.waitForSync();
    await until('the failed list', () => src.listCalls === 1);
    await inf.stop(); // also wakes the 60 s backoff sleep at once
    expect(await synced).toBe(false);
    expect(() => inf.start()).toThrow(/stopped/);

    const src2 = new FakeCollection();
    const inf2 = fakeInformer(src2);
    inf2.start();
    await until('a watch', () => src2.watches.length === 1);
    await inf2.stop();
    expect(src2.current.aborted).toBe(true);
    expect(await inf2.waitForSync({ timeoutMs: 10 })).toBe(true);
  });

  it('resourcePath and cacheKey name core and custom resources', () => {
    expect(resourcePath({ group: '', version: 'v1', plural: 'namespaces' })).toBe('/api/v1/namespaces');
    expect(resourcePath({ group: 'rpa-access.io', version: 'v1alpha1', plural: 'users' })).toBe('/apis/rpa-access.io/v1alpha1/users');
    expect(resourcePath({ group: 'rpa-access.io', version: 'v1alpha1', plural: 'users', namespace: 'fin' })).toBe(
      '/apis/rpa-access.io/v1alpha1/namespaces/fin/users',
    );
    expect(cacheKey({ metadata: { name: 'fin' } })).toBe('fin');
    expect(cacheKey({ metadata: { name: 'u', namespace: 'fin' } })).toBe('fin/u');
  });
});
