/**
 * The operator in a process of its own, for benchmarks that measure its memory: started by
 * bench/operator-scale.ts with `fork`, driven over IPC. Nothing else lives in this process, so
 * its RSS is the operator's.
 *
 * Environment: BENCH_KUBECONFIG (a kubeconfig file), BENCH_STORE (store path or URL),
 * BENCH_CONCURRENCY. Messages in: { op: 'memory' | 'idle' | 'resync' | 'stop', id }; every answer
 * is { id, ... }. First messages out: { loaded: true, baseline } with the modules loaded, before
 * the operator starts (a cold start is timed from there), then { running: true }. BENCH_SPACES=1
 * also prints V8's heap spaces and process.memoryUsage() on stderr at each memory reading.
 */
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import v8 from 'node:v8';
import { startOperator } from '../../src/operator/manager.js';

interface Request {
  id: number;
  op: 'memory' | 'idle' | 'resync' | 'stop';
}

/** After a full GC: RSS, the V8 heap in use and reserved (heapTotal), and memory outside it (Buffers, native). */
function memory(): { rss: number; heapUsed: number; heapTotal: number; external: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  if (process.env.BENCH_SPACES) for (const sp of v8.getHeapSpaceStatistics()) console.error(`${sp.space_name}: size ${(sp.space_size / 2 ** 20).toFixed(1)} used ${(sp.space_used_size / 2 ** 20).toFixed(1)} avail ${(sp.space_available_size / 2 ** 20).toFixed(1)} phys ${(sp.physical_space_size / 2 ** 20).toFixed(1)}`);
  if (process.env.BENCH_SPACES) console.error(JSON.stringify(m));
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
}

async function main(): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.BENCH_KUBECONFIG!);
  // Before the operator exists: what the process costs with its modules loaded.
  const baseline = memory();
  process.send!({ loaded: true, baseline });
  const operator = await startOperator({
    kubeconfig: kc, store: process.env.BENCH_STORE!, log: pino({ level: 'silent' }), healthPort: 0,
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8), leaderElection: false, driftPeriodMs: 24 * 3600_000,
  });
  await operator.whenRunning();
  process.send!({ running: true });
  process.on('message', (raw) => {
    const req = raw as Request;
    void (async () => {
      if (req.op === 'memory') return { ...memory() };
      if (req.op === 'idle') return operator.idle().then(() => ({}));
      if (req.op === 'resync') {
        operator.resync();
        return {};
      }
      await operator.stop();
      return {};
    })().then((answer) => {
      process.send!({ id: req.id, ...answer });
      if (req.op === 'stop') process.disconnect();
    });
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
