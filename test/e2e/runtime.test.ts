// The generic controller runtime (src/k8s/) against a real etcd + kube-apiserver 1.20.2:
// informer continuity across an API server restart, leader election hand-over on one Lease,
// aggregated events.k8s.io/v1 Events, and status/finalizer merge patches on a CRD with a
// status subresource. Skips cleanly when the control-plane binaries are not installed.
import { randomBytes } from 'node:crypto';
import {
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Namespace,
} from '@kubernetes/client-node';
import { addFinalizer, errorCode, loadKubeConfig, patchStatus, removeFinalizer, type CustomObjectRef } from '../../src/k8s/client.js';
import { EventRecorder } from '../../src/k8s/events.js';
import { Informer, resourcePath, type InformerEvent } from '../../src/k8s/informer.js';
import { LeaderElector } from '../../src/k8s/leader.js';
import { setCondition } from '../../src/k8s/status.js';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';

const assets = assetsDir();
if (assets === undefined) {
  console.warn('SKIPPING runtime e2e tests: no etcd/kube-apiserver found. Run scripts/install-control-plane.sh or set KUBEBUILDER_ASSETS.');
}
const describeWithControlPlane = assets === undefined ? describe.skip : describe;

const GROUP = 'e2e.rpa-access.io';
const VERSION = 'v1';
const PLURAL = 'widgets';

interface Widget extends KubernetesObject {
  spec?: { size?: number };
  status?: { observedGeneration?: number; conditions?: unknown[] };
}

function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until check() returns a value other than undefined/false, or fails after timeoutMs. */
async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

/** The HTTP status a call failed with (or 'resolved'). */
async function failureCode(p: Promise<unknown>): Promise<number | undefined | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return errorCode(err);
  }
}

/** A small namespaced CRD with a status subresource, standing in for the four real kinds. */
async function installWidgetCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await api.createCustomResourceDefinition({
    body: {
      metadata: { name: `${PLURAL}.${GROUP}` },
      spec: {
        group: GROUP,
        scope: 'Namespaced',
        names: { plural: PLURAL, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: VERSION,
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', properties: { size: { type: 'integer' } } },
                  status: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
                },
              },
            },
          },
        ],
      },
    },
  });
  const custom = kc.makeApiClient(CustomObjectsApi);
  await eventually('the Widget CRD to be served', async () => {
    await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL });
    return true;
  }, 30_000);
}

describeWithControlPlane('controller runtime on kube-apiserver 1.20', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    cp = await startControlPlane({ assetsDir: assets });
    kc = loadKubeConfig(cp.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await installWidgetCrd(kc);
  }, 120_000);

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  }, 30_000);

  afterAll(async () => {
    await cp?.stop();
  }, 30_000);

  async function createNamespace(prefix: string): Promise<string> {
    const name = uniqueName(prefix);
    await core.createNamespace({ body: { metadata: { name } } });
    return name;
  }

  function widgetRef(namespace: string, name: string): CustomObjectRef {
    return { group: GROUP, version: VERSION, plural: PLURAL, namespace, name };
  }

  async function createWidget(namespace: string, name: string, size = 1): Promise<Widget> {
    return (await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', metadata: { name, namespace }, spec: { size } },
    })) as Widget;
  }

  async function readWidget(namespace: string, name: string): Promise<Widget> {
    return (await custom.getNamespacedCustomObject(widgetRef(namespace, name))) as Widget;
  }

  describe('Informer', () => {
    it('sees adds, updates and deletes of a namespaced CRD and of namespaces, also across an API server restart', async () => {
      const ns = await createNamespace('inf');
      await createWidget(ns, 'before');

      const seen: Array<[InformerEvent, string, string?]> = [];
      const widgets = new Informer<Widget>({ kc, path: resourcePath({ group: GROUP, version: VERSION, plural: PLURAL }), watchTimeoutSeconds: 30 });
      widgets.on((event, obj, old) => {
        if (obj.metadata?.namespace === ns) seen.push([event, obj.metadata.name!, old?.metadata?.resourceVersion]);
      });
      const namespaces = new Informer<V1Namespace>({ kc, path: resourcePath({ group: '', version: 'v1', plural: 'namespaces' }) });
      cleanups.push(() => widgets.stop(), () => namespaces.stop());
      widgets.start();
      namespaces.start();
      expect(await widgets.waitForSync({ timeoutMs: 15_000 })).toBe(true);
      expect(await namespaces.waitForSync({ timeoutMs: 15_000 })).toBe(true);

      // The initial list: existing objects arrive as adds, managedFields dropped.
      expect(seen).toEqual([['add', 'before', undefined]]);
      expect(widgets.get(ns, 'before')?.spec?.size).toBe(1);
      expect(widgets.get(ns, 'before')?.metadata?.managedFields).toBeUndefined();
      expect(namespaces.get('', ns)?.metadata?.name).toBe(ns);
      expect(widgets.list(ns)).toHaveLength(1);

      // Watch: add, update (with the previous version), delete.
      await createWidget(ns, 'w1', 1);
      await eventually('add of w1', () => widgets.get(ns, 'w1'));
      const before = widgets.get(ns, 'w1')!;
      await custom.patchNamespacedCustomObject(
        { ...widgetRef(ns, 'w1'), body: [{ op: 'replace', path: '/spec/size', value: 2 }] },
      );
      await eventually('update of w1', () => widgets.get(ns, 'w1')?.spec?.size === 2);
      await custom.deleteNamespacedCustomObject(widgetRef(ns, 'w1'));
      await eventually('delete of w1', () => widgets.get(ns, 'w1') === undefined);
      expect(seen.slice(1)).toEqual([
        ['add', 'w1', undefined],
        ['update', 'w1', before.metadata!.resourceVersion],
        ['delete', 'w1', expect.any(String)],
      ]);

      const ns2 = await createNamespace('inf-ns');
      await eventually('add of the new namespace', () => namespaces.get(undefined, ns2));

      // Restart the API server: the informers must reconnect on their own and miss nothing.
      await cp.restartApiServer();
      await createWidget(ns, 'after-restart', 7);
      await custom.deleteNamespacedCustomObject(widgetRef(ns, 'before'));
      await eventually('add after restart', () => widgets.get(ns, 'after-restart'), 60_000);
      await eventually('delete after restart', () => widgets.get(ns, 'before') === undefined, 30_000);
      const ns3 = await createNamespace('inf-ns-after');
      await eventually('namespace added after restart', () => namespaces.get('', ns3), 30_000);

      // Cache and API server agree.
      const listed = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns })) as { items: Widget[] };
      expect(widgets.list(ns).map((w) => w.metadata!.name).sort()).toEqual(listed.items.map((w) => w.metadata!.name).sort());
      expect(seen.filter(([, name]) => name === 'after-restart').map(([e]) => e)).toEqual(['add']);
      expect(seen.filter(([e, name]) => name === 'before' && e === 'delete')).toHaveLength(1);
    }, 120_000);

    it('a periodic relist reports only what changed', async () => {
      const ns = await createNamespace('resync');
      await createWidget(ns, 'a');
      const events: string[] = [];
      const inf = new Informer<Widget>({
        kc,
        path: resourcePath({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns }),
        resyncPeriodMs: 500,
      });
      inf.on((event, obj) => events.push(`${event}:${obj.metadata!.name}`));
      cleanups.push(() => inf.stop());
      inf.start();
      expect(await inf.waitForSync({ timeoutMs: 15_000 })).toBe(true);
      await sleep(1_700); // at least two relists
      expect(events).toEqual(['add:a']);
      await createWidget(ns, 'b');
      await eventually('b', () => inf.get(ns, 'b'));
      expect(events).toEqual(['add:a', 'add:b']);
    }, 60_000);
  });

  describe('LeaderElector', () => {
    const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };

    function elector(lease: string, identity: string, log: string[], extra: Partial<ConstructorParameters<typeof LeaderElector>[0]> = {}): LeaderElector {
      return new LeaderElector({
        kc,
        namespace: 'default',
        name: lease,
        identity,
        ...timing,
        onStartedLeading: (signal) => {
          log.push(`${identity} started`);
          signal.addEventListener('abort', () => log.push(`${identity} signal aborted`));
        },
        onStoppedLeading: () => log.push(`${identity} stopped`),
        ...extra,
      });
    }

    async function readLease(name: string) {
      return kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: 'default', name });
    }

    it('lets exactly one of two candidates lead and hands over at once when the leader stops', async () => {
      const lease = uniqueName('lease');
      const log: string[] = [];
      const a = elector(lease, 'a', log);
      const b = elector(lease, 'b', log);
      const runA = a.run();
      await eventually('a to lead', () => a.isLeader());
      const runB = b.run();
      cleanups.push(async () => {
        await Promise.all([a.stop(), b.stop()]);
      });

      // Several renew periods: a keeps the lease, b never leads.
      await sleep(1_500);
      expect(a.isLeader()).toBe(true);
      expect(b.isLeader()).toBe(false);
      expect(b.getLeader()).toBe('a');
      const held = await readLease(lease);
      expect(held.spec?.holderIdentity).toBe('a');
      expect(held.spec?.leaseDurationSeconds).toBe(3);
      expect(held.spec?.leaseTransitions).toBe(0);
      // MicroTime: six fraction digits, and the leader renews.
      expect(String(held.spec?.renewTime)).toMatch(/\.\d{6}Z$/);
      await sleep(700);
      expect(String((await readLease(lease)).spec?.renewTime)).not.toBe(String(held.spec?.renewTime));

      const stoppedAt = Date.now();
      await a.stop();
      await runA;
      expect(log).toEqual(['a started', 'a signal aborted', 'a stopped']);
      await eventually('b to lead', () => b.isLeader(), 5_000);
      // Released: b took over at its next retry, well within the 3 s lease duration.
      expect(Date.now() - stoppedAt).toBeLessThan(3_000);
      const taken = await readLease(lease);
      expect(taken.spec?.holderIdentity).toBe('b');
      expect(taken.spec?.leaseTransitions).toBe(1);

      await b.stop();
      await runB;
      expect((await readLease(lease)).spec?.holderIdentity).toBe('');
    }, 60_000);

    it('steps down when the API server is gone for longer than the renew deadline, and leads again after', async () => {
      const lease = uniqueName('lease');
      const log: string[] = [];
      const a = elector(lease, 'a', log);
      cleanups.push(() => a.stop());
      void a.run();
      await eventually('a to lead', () => a.isLeader());
      await cp.stopApiServer('SIGKILL');
      try {
        await eventually('a to step down', () => !a.isLeader(), 10_000);
        expect(log).toEqual(['a started', 'a signal aborted', 'a stopped']);
      } finally {
        await cp.startApiServer();
      }
      await eventually('a to lead again', () => a.isLeader(), 20_000);
      expect(log).toEqual(['a started', 'a signal aborted', 'a stopped', 'a started']);
      expect((await readLease(lease)).spec?.holderIdentity).toBe('a');
    }, 90_000);

    it('takes over an unreleased lease only after it expires', async () => {
      const lease = uniqueName('lease');
      const log: string[] = [];
      const a = elector(lease, 'a', log, { releaseOnStop: false });
      const b = elector(lease, 'b', log);
      cleanups.push(async () => {
        await Promise.all([a.stop(), b.stop()]);
      });
      void a.run();
      await eventually('a to lead', () => a.isLeader());
      void b.run();
      await sleep(500);
      const stoppedAt = Date.now();
      await a.stop(); // a crash, as far as the Lease is concerned
      expect((await readLease(lease)).spec?.holderIdentity).toBe('a');
      await eventually('b to lead', () => b.isLeader(), 10_000);
      const waited = Date.now() - stoppedAt;
      // b observed a's last renewal at most one retry before a stopped, and waits a full lease.
      expect(waited).toBeGreaterThan(2_000);
      expect(waited).toBeLessThan(6_000);
    }, 60_000);
  });

  describe('EventRecorder', () => {
    it('creates events.k8s.io/v1 Events and counts repeats in series', async () => {
      const ns = await createNamespace('events');
      const widget = await createWidget(ns, 'noisy');
      const recorder = new EventRecorder({ kc, reportingInstance: 'e2e-test', flushIntervalMs: 200 });
      recorder.record(widget, 'Warning', 'RoleNotFound', 'Apply', 'Role "ghost" does not exist');
      recorder.record(widget, 'Warning', 'RoleNotFound', 'Apply', 'Role "ghost" does not exist');
      recorder.record(widget, 'Warning', 'RoleNotFound', 'Apply', 'Role "ghost" does not exist');
      recorder.record(widget, 'Normal', 'Applied', 'Apply', 'x'.repeat(5_000));
      await recorder.flush();
      await sleep(300);
      await recorder.flush();

      const events = kc.makeApiClient(EventsV1Api);
      const list = await events.listNamespacedEvent({ namespace: ns });
      const byReason = new Map(list.items.map((e) => [e.reason, e]));
      expect(list.items).toHaveLength(2);
      const warning = byReason.get('RoleNotFound')!;
      expect(warning).toMatchObject({
        type: 'Warning',
        action: 'Apply',
        note: 'Role "ghost" does not exist',
        reportingController: 'rpa-access.io/operator',
        reportingInstance: 'e2e-test',
        regarding: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', name: 'noisy', namespace: ns, uid: widget.metadata!.uid },
      });
      expect(warning.series?.count).toBe(3);
      const normal = byReason.get('Applied')!;
      expect(Buffer.byteLength(normal.note!, 'utf8')).toBeLessThanOrEqual(1024);
      expect(normal.series).toBeUndefined();

      // A cluster-scoped object's events go to kube-system (the only namespace 1.20 accepts).
      const nsObject = await core.readNamespace({ name: ns });
      recorder.record({ ...nsObject, apiVersion: 'v1', kind: 'Namespace' }, 'Normal', 'TenantReady', 'Bootstrap', `tenant ${ns} ready`);
      await recorder.close();
      const inSystem = await events.listNamespacedEvent({ namespace: 'kube-system' });
      expect(inSystem.items.some((e) => e.regarding?.name === ns && e.reason === 'TenantReady')).toBe(true);
    }, 30_000);

    it('never throws into the caller when the API refuses', async () => {
      const recorder = new EventRecorder({ kc });
      // Invalid: the event's namespace does not exist.
      recorder.record({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'does-not-exist' } }, 'Normal', 'R', 'A', 'n');
      await expect(recorder.close()).resolves.toBeUndefined();
    });
  });

  describe('status and finalizer patches', () => {
    it('patchStatus merge-patches the /status subresource only', async () => {
      const ns = await createNamespace('status');
      const widget = await createWidget(ns, 'w', 3);
      const conditions = setCondition([], { type: 'Ready', status: 'True', reason: 'Applied', message: 'ok', observedGeneration: 1 });
      const updated = await patchStatus<Widget>(kc, widgetRef(ns, 'w'), { observedGeneration: 1, conditions });
      expect(updated.status).toEqual({ observedGeneration: 1, conditions });

      const read = await readWidget(ns, 'w');
      expect(read.status?.conditions).toEqual(conditions);
      expect(read.spec).toEqual({ size: 3 });
      expect(read.metadata?.generation).toBe(widget.metadata?.generation);

      // spec in a status patch is ignored by the subresource.
      await patchStatus(kc, widgetRef(ns, 'w'), { observedGeneration: 2 });
      const again = await readWidget(ns, 'w');
      expect(again.status?.observedGeneration).toBe(2);
      expect(again.status?.conditions).toEqual(conditions);

      // Conditional on resourceVersion: a stale one is a 409.
      const stale = widget.metadata!.resourceVersion!;
      expect(await failureCode(patchStatus(kc, widgetRef(ns, 'w'), { observedGeneration: 3 }, { resourceVersion: stale }))).toBe(409);
    }, 30_000);

    it('adds and removes a finalizer, refusing a stale object', async () => {
      const ns = await createNamespace('fin');
      const widget = await createWidget(ns, 'w');
      const ref = widgetRef(ns, 'w');
      const withFinalizer = await addFinalizer(kc, ref, widget, 'rpa-access.io/finalizer');
      expect(withFinalizer.metadata?.finalizers).toEqual(['rpa-access.io/finalizer']);
      // Idempotent: nothing to do, no request.
      expect(await addFinalizer(kc, ref, withFinalizer, 'rpa-access.io/finalizer')).toBe(withFinalizer);

      // The original object is stale now: its write must fail rather than drop the finalizer.
      expect(await failureCode(addFinalizer(kc, ref, widget, 'other.io/finalizer'))).toBe(409);

      const second = await addFinalizer(kc, ref, withFinalizer, 'other.io/finalizer');
      expect(second.metadata?.finalizers).toEqual(['rpa-access.io/finalizer', 'other.io/finalizer']);
      const removed = await removeFinalizer(kc, ref, second, 'rpa-access.io/finalizer');
      expect(removed.metadata?.finalizers).toEqual(['other.io/finalizer']);
      const none = await removeFinalizer(kc, ref, removed, 'other.io/finalizer');
      expect(none.metadata?.finalizers ?? []).toEqual([]);

      // Deleting works once no finalizer is left.
      await custom.deleteNamespacedCustomObject(ref);
      await eventually('the widget to be gone', async () => {
        try {
          await readWidget(ns, 'w');
          return false;
        } catch (err) {
          return errorCode(err) === 404;
        }
      });
    }, 30_000);
  });
});
