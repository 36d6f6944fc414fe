/**
 * Load: N objects across T tenants already in the cluster, then `rpa-access operator` starts as
 * its own process (the built CLI, as in production) on a PostgreSQL store. Reports the time until
 * every object is Ready for its generation, then the time to apply a wave of changes (one spec
 * change per tenant's users, 5% of the objects), and the operator process's memory sampled from
 * /proc every 500 ms (peak and settled RSS): the figures of the README's "Load" row.
 *
 *   npm run build && npx tsx bench/operator-load.ts [--objects 10000] [--tenants 20] [--concurrency 8] [--json]
 *
 * Needs the control plane (scripts/install-control-plane.sh) and PostgreSQL
 * ($DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a fresh schema per run).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import pg from 'pg';
import { assetsDir, startControlPlane } from '../test/support/control-plane.js';
import { PLURAL, createBulk, listReadiness, pool } from '../test/support/bulk.js';
import { installCrds, kubeConfigOf } from '../test/support/kube.js';
import { machineLine } from './lib/stats.js';
import { numberFlag } from './lib/args.js';

const N = numberFlag('objects', 10_000);
const TENANTS = numberFlag('tenants', 20);
const CONCURRENCY = numberFlag('concurrency', 8);
const JSON_OUT = process.argv.includes('--json');
const BUILT_CLI = path.resolve('dist/src/cli/main.js');
const BUILT_INS_PER_TENANT = 11; // 10 built-in roles + the global group

/** Resident set of a process, in bytes, from /proc (Linux). */
function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Polls every 3 s: listing 10,000 objects is work for the API server the operator shares. */
async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (!(await probe())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 3_000));
  }
  return performance.now() - start;
}

async function main(): Promise<void> {
  if (!assetsDir()) throw new Error('no kube-apiserver/etcd: run scripts/install-control-plane.sh first');
  if (!fs.existsSync(BUILT_CLI)) throw new Error('no dist/: run npm run build first');
  const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_load_${process.pid}`;
  const storeUrl = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}schema=${schema}`;

  const cp = await startControlPlane();
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const kc = kubeConfigOf(cp);
    await installCrds(cp, path.resolve('crds'));
    process.stderr.write(`creating ${N} objects in ${TENANTS} tenants...\n`);
    const all = await createBulk(kc, { prefix: 'load', tenants: TENANTS, total: N });
    const expected = all.length + TENANTS * BUILT_INS_PER_TENANT;

    child = spawn(process.execPath, [BUILT_CLI, 'operator', '--store', storeUrl, '--health-port', '0', '--concurrency', String(CONCURRENCY)], {
      env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, RPA_ACCESS_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const pid = child.pid!;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid) ?? 0)), 500);

    const readyCount = async () => (await listReadiness(kc)).filter((o) => o.ready === 'True').length;
    process.stderr.write(`operator pid ${pid}; waiting for ${expected} objects to be Ready...\n`);
    const convergeMs = await waitUntil('every object Ready', async () => (await readyCount()) === expected, 60 * 60_000);
    const rssConverged = rssOf(pid) ?? 0;

    // A wave of changes once converged: 5% of the objects (users) get a new full name.
    const custom = kc.makeApiClient(CustomObjectsApi);
    const users = all.filter((o) => o.kind === 'User');
    const wave = users.slice(0, Math.max(1, Math.floor(all.length * 0.05)));
    const waveStart = performance.now();
    await pool(wave, 8, async (o) => {
      const ref = { group: 'rpa-access.io', version: 'v1alpha1', namespace: o.tenant, plural: PLURAL.User, name: o.name };
      const cur = (await custom.getNamespacedCustomObject(ref)) as { spec: Record<string, unknown> };
      await custom.replaceNamespacedCustomObject({ ...ref, body: { ...cur, spec: { ...cur.spec, fullName: `Changed ${o.name}` } } });
    });
    // Ready is judged for the object's generation, so a changed object counts only once applied.
    await waitUntil('the wave applied', async () => (await readyCount()) === expected, 30 * 60_000);
    const waveTotalMs = performance.now() - waveStart;
    clearInterval(sampler);
    const rssSettled = rssOf(pid) ?? 0;

    const db = new pg.Client({ connectionString: baseUrl });
    await db.connect();
    const stored = Number((await db.query(`select count(*)::int as n from ${schema}.objects`)).rows[0].n);
    await db.query(`drop schema ${schema} cascade`);
    await db.end();

    const row = {
      objects: N,
      tenants: TENANTS,
      workers: CONCURRENCY,
      convergeSeconds: +(convergeMs / 1000).toFixed(1),
      objectsPerSecond: +(expected / (convergeMs / 1000)).toFixed(0),
      waveObjects: wave.length,
      waveSeconds: +(waveTotalMs / 1000).toFixed(1),
      peakRssMiB: +(peak / 2 ** 20).toFixed(0),
      convergedRssMiB: +(rssConverged / 2 ** 20).toFixed(0),
      settledRssMiB: +(rssSettled / 2 ** 20).toFixed(0),
      storedEntries: stored,
    };
    if (JSON_OUT) {
      console.log(JSON.stringify(row));
    } else {
      console.log(machineLine());
      console.log('| objects | tenants | workers | converge (s) | objects/s | wave of changes | wave applied (s) | operator RSS peak / converged / settled (MiB) | store entries |');
      console.log('|---:|---:|---:|---:|---:|---:|---:|---|---:|');
      console.log(`| ${row.objects} | ${row.tenants} | ${row.workers} | ${row.convergeSeconds} | ${row.objectsPerSecond} | ${row.waveObjects} | ${row.waveSeconds} | ${row.peakRssMiB} / ${row.convergedRssMiB} / ${row.settledRssMiB} | ${row.storedEntries} |`);
    }
  } finally {
    child?.kill('SIGTERM');
    await cp.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
