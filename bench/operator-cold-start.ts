/**
 * Operator cold start: N objects already in the cluster, a fresh store, the operator starts;
 * how long until every object is Ready for its generation? Beside it, in the same run and on the
 * same API server: the time for N plain status patches at the same parallelism, i.e. the raw
 * write rate the operator is bounded by (it writes a finalizer, a status and an Event per object).
 *
 *   npx tsx bench/operator-cold-start.ts [--objects 1000] [--tenants 4] [--concurrency 8] [--json]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startOperator } from '../src/operator/manager.js';
import { patchStatus } from '../src/k8s/client.js';
import { assetsDir, startControlPlane } from '../test/support/control-plane.js';
import { bulkRef, createBulk, listReadiness, pool } from '../test/support/bulk.js';
import { installCrds, kubeConfigOf } from '../test/support/kube.js';
import { numberFlag } from './lib/args.js';

const N = numberFlag('objects', 1000);
const TENANTS = numberFlag('tenants', 4);
const CONCURRENCY = numberFlag('concurrency', 8); // the operator's default
const JSON_OUT = process.argv.includes('--json');

async function main(): Promise<void> {
  if (!assetsDir()) throw new Error('no kube-apiserver/etcd: run scripts/install-control-plane.sh first');
  const cp = await startControlPlane();
  try {
    const kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    const all = await createBulk(kc, { prefix: 'tenant', tenants: TENANTS, total: N });

    // Raw write rate: one status patch per object, same parallelism as the operator's workers.
    const rawStart = performance.now();
    await pool(all, CONCURRENCY, async (o) => {
      await patchStatus(kc, bulkRef(o), { conditions: [] });
    });
    const rawMs = performance.now() - rawStart;

    const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-bench-'));
    const memBefore = process.memoryUsage().rss;
    const start = performance.now();
    const operator = await startOperator({ kubeconfig: kc, store: storeDir, log: pino({ level: 'silent' }), healthPort: 0, concurrency: CONCURRENCY, leaderElection: false });
    await operator.whenRunning();
    const readyAt = async (): Promise<number> => (await listReadiness(kc)).filter((o) => o.ready === 'True').length;
    const expected = all.length + TENANTS * 11; // plus each tenant's built-in roles and global group
    let ready = 0;
    while ((ready = await readyAt()) < expected) {
      if (performance.now() - start > 10 * 60_000) throw new Error(`not converged after 10 min: ${ready}/${expected}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const convergeMs = performance.now() - start;
    const rss = process.memoryUsage().rss;
    await operator.stop();

    const rows = {
      objects: all.length, tenants: TENANTS, concurrency: CONCURRENCY,
      convergeSeconds: +(convergeMs / 1000).toFixed(2),
      objectsPerSecond: +(all.length / (convergeMs / 1000)).toFixed(1),
      rawStatusPatchSeconds: +(rawMs / 1000).toFixed(2),
      rawPatchesPerSecond: +(all.length / (rawMs / 1000)).toFixed(1),
      ratio: +(convergeMs / rawMs).toFixed(2),
      processRssMiB: +(rss / 2 ** 20).toFixed(0),
      rssGrowthMiB: +((rss - memBefore) / 2 ** 20).toFixed(0),
    };
    if (JSON_OUT) {
      console.log(JSON.stringify(rows));
      return;
    }
    console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}, kube-apiserver 1.20.2 + etcd 3.4 on tmpfs, SQLite store`);
    console.log('| objects | tenants | workers | cold start to all Ready (s) | objects/s | N raw status patches (s) | patches/s | ratio | RSS (MiB) |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(`| ${rows.objects} | ${rows.tenants} | ${rows.concurrency} | ${rows.convergeSeconds} | ${rows.objectsPerSecond} | ${rows.rawStatusPatchSeconds} | ${rows.rawPatchesPerSecond} | ${rows.ratio} | ${rows.processRssMiB} |`);
  } finally {
    await cp.stop();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
