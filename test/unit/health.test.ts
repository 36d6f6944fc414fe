// The probe and metrics server (src/k8s/health.ts) with the runtime's metrics (src/k8s/metrics.ts)
// fed by a real work queue.
import { HealthServer } from '../../src/k8s/health.js';
import { createRuntimeMetrics, leaderObserver, reconcileObserver, workQueueObserver } from '../../src/k8s/metrics.js';
import { reconcileWorker, WorkQueue } from '../../src/k8s/workqueue.js';
import { until } from '../support/until.js';

describe('metrics and the health server', () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function get(path: string): Promise<{ status: number; body: string; type: string | null }> {
    const res = await fetch(`http://127.0.0.1:${server!.port}${path}`);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  }

  it('serves /healthz, /readyz with named checks, and controller-runtime metrics on /metrics', async () => {
    const metrics = createRuntimeMetrics({ defaultMetrics: false });
    const q = new WorkQueue({ name: 'users', observer: workQueueObserver(metrics, 'users') });
    let calls = 0;
    let badAttempts = 0;
    q.start(
      reconcileWorker(
        q,
        async (key) => {
          calls++;
          if (key === 'bad' && ++badAttempts === 1) throw new Error('boom');
          return key === 'later' ? { requeueAfterMs: 60_000 } : undefined;
        },
        { onResult: reconcileObserver(metrics, 'user') },
      ),
    );
    q.add('good');
    q.add('later');
    q.add('bad');
    await until('the retry of bad', () => calls >= 4, 3_000);
    await q.shutDown();
    const setLeader = leaderObserver(metrics, 'rpa-access-operator');
    setLeader(true);

    let ready = false;
    server = new HealthServer({ port: 0, host: '127.0.0.1', registry: metrics.registry, checkTimeoutMs: 200 });
    server.addReadyCheck('informers-synced', () => ready);
    server.addReadyCheck('store', async () => undefined);
    const port = await server.listen();
    expect(port).toBeGreaterThan(0);

    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('[-]informers-synced failed: not ready');
    expect(notReady.body).not.toContain('store');
    ready = true;
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await get('/readyz?verbose')).body).toBe('[+]informers-synced ok\n[+]store ok\nok\n');

    server.addReadyCheck('slow', () => new Promise(() => undefined));
    server.addHealthCheck('throws', () => {
      throw new Error('wedged');
    });
    expect((await get('/readyz')).body).toContain('[-]slow failed: no answer within 200 ms');
    expect(await get('/healthz')).toMatchObject({ status: 503, body: '[-]throws failed: wedged\n' });

    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toContain('text/plain');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="success"} 2');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="error"} 1');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="requeue_after"} 1');
    expect(m.body).toContain('controller_runtime_reconcile_total{controller="user",result="requeue"} 0');
    expect(m.body).toContain('controller_runtime_reconcile_errors_total{controller="user"} 1');
    expect(m.body).toContain('controller_runtime_reconcile_time_seconds_count{controller="user"} 4');
    expect(m.body).toContain('workqueue_adds_total{name="users"} 4');
    expect(m.body).toContain('workqueue_retries_total{name="users"} 1');
    expect(m.body).toContain('workqueue_depth{name="users"} 0');
    expect(m.body).toContain('workqueue_queue_duration_seconds_count{name="users"} 4');
    expect(m.body).toContain('workqueue_work_duration_seconds_count{name="users"} 4');
    expect(m.body).toContain('leader_election_master_status{name="rpa-access-operator"} 1');

    expect((await get('/nope')).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${port}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('includes process metrics by default', async () => {
    const metrics = createRuntimeMetrics();
    const text = await metrics.registry.metrics();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});
