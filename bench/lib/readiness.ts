/**
 * Which of our objects are Ready for their generation, kept current from a watch (the project's
 * own Informer) rather than by listing every object again and again: at 10,000 objects a list
 * every half second is itself a load on the API server the operator shares, and the raw patch
 * baseline beside it bears no such load.
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { Informer, resourcePath } from '../../src/k8s/informer.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { PLURAL, type BulkKind } from '../../test/support/bulk.js';
import { ready, type Resource } from '../../test/support/kube.js';

type Watched = KubernetesObject & Resource;

export class ReadinessWatch {
  private readonly ready = new Set<string>();
  private readonly informers: Informer<Watched>[] = [];
  private waiters: { keys?: Set<string>; expected: number; resolve: () => void }[] = [];

  private constructor(kc: KubeConfig) {
    // BENCH_LOG (debug, info): the benchmark's own watches log as the operator's do, so a watch
    // the API server closes shows whose it was.
    const log = process.env.BENCH_LOG ? createLogger({ name: 'benchmark-readiness', level: process.env.BENCH_LOG, format: 'json' }) : silentLogger;
    for (const kind of Object.keys(PLURAL) as BulkKind[]) {
      const informer = new Informer<Watched>({ kc, path: resourcePath({ group: 'rpa-access.io', version: 'v1alpha1', plural: PLURAL[kind] }), name: kind, resyncPeriodMs: 0, log });
      informer.on((event, obj) => {
        const key = `${kind}/${obj.metadata?.namespace}/${obj.metadata?.name}`;
        if (event !== 'delete' && ready(obj)?.status === 'True') this.ready.add(key);
        else this.ready.delete(key);
        this.wake();
      });
      this.informers.push(informer);
    }
  }

  static async start(kc: KubeConfig): Promise<ReadinessWatch> {
    const watch = new ReadinessWatch(kc);
    for (const informer of watch.informers) informer.start();
    for (const informer of watch.informers) await informer.waitForSync();
    return watch;
  }

  /** How many objects (of `keys`, or of all) are Ready for their generation now. */
  count(keys?: Set<string>): number {
    if (!keys) return this.ready.size;
    let n = 0;
    for (const key of keys) if (this.ready.has(key)) n++;
    return n;
  }

  /** Resolves once `expected` objects (of `keys`, or of all) are Ready for their generation. */
  until(expected: number, keys?: Set<string>): Promise<void> {
    if (this.count(keys) >= expected) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ keys, expected, resolve }));
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      // Counting a subset is O(keys): only worth it when the total could be enough.
      if (this.ready.size < w.expected || this.count(w.keys) < w.expected) return true;
      w.resolve();
      return false;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
