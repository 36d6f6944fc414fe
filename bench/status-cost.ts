/**
 * What one status patch costs the API server, by what it writes. bench/operator-scale.ts compares
 * the operator with raw patches of `{conditions: []}`; the operator writes more than that, the
 * status the contract asks for: observedGeneration, appliedGeneration and a Ready condition with a
 * reason, a message, lastTransitionTime and observedGeneration. This benchmark sends each of the
 * two, raw, to N fresh objects, and prints the write rate and the API server's CPU per patch: how
 * much of the cold-start ratio is the status itself, before the operator does anything else.
 *
 * The status is built by the operator's own code (`readyStatus`, `statusPatch`) from the model's
 * readiness of each object, and sent under the operator's field manager. Each round runs on a
 * control plane of its own (what one patch costs grows with what the API server holds), and the
 * rounds alternate A B B A A B ..., so a machine that slows down weighs on both alike.
 *
 *   npx tsx bench/status-cost.ts [--objects 5000] [--rounds 4] [--concurrency 8]
 */
import os from 'node:os';
import path from 'node:path';
import { readiness } from '../src/model/readiness.js';
import { tenantFromEntries } from '../src/model/tenant.js';
import type { AnyEntry } from '../src/model/types.js';
import { toEntry, type AccessResource } from '../src/api/v1alpha1/resource.js';
import { readyStatus } from '../src/controllers/core.js';
import { FIELD_MANAGER, statusPatch } from '../src/operator/cluster.js';
import { patchStatus, readObjectLive, reusingConnections } from '../src/k8s/client.js';
import { assetsDir, startControlPlane } from '../test/support/control-plane.js';
import { bulkRef, createBulk, pool, type BulkObject } from '../test/support/bulk.js';
import { installCrds, kubeConfigOf } from '../test/support/kube.js';
import { numberFlag } from './lib/args.js';
import { processCpuSeconds } from './lib/cpu.js';

const N = numberFlag('objects', 5_000);
const ROUNDS = numberFlag('rounds', 4);
const CONCURRENCY = numberFlag('concurrency', 8);

type Body = 'minimal' | 'operator';
const LABEL: Record<Body, string> = {
  minimal: '`{conditions: []}` (operator-scale\'s raw baseline)',
  operator: 'the operator\'s status (Ready, generations)',
};

function asResource(o: BulkObject): AccessResource {
  return { apiVersion: 'rpa-access.io/v1alpha1', kind: o.kind, metadata: { name: o.name, namespace: o.tenant, generation: 1 }, spec: o.spec };
}

/** Each object's patch body: the operator's whole status for it, as a cold start writes it. */
function operatorStatuses(objs: BulkObject[]): Map<BulkObject, unknown> {
  const resources = objs.map(asResource);
  const state = tenantFromEntries(objs[0]!.tenant, resources.map((r) => toEntry(r).entry).filter((e): e is AnyEntry => e !== undefined));
  const now = Date.now();
  return new Map(objs.map((o, i) => {
    const r = readiness(state, o.kind, o.name, now);
    return [o, statusPatch(readyStatus(resources[i]!, r.ready ? 'True' : 'False', r.reason, r.message, { generation: 1 }))];
  }));
}

interface Round { body: Body; patchesPerSecond: number; apiServerMsPerPatch: number; objectBytes: number }

async function round(body: Body): Promise<Round> {
  const cp = await startControlPlane();
  try {
    const kc = reusingConnections(kubeConfigOf(cp));
    await installCrds(cp, path.resolve('crds'));
    const objs = await createBulk(kc, { prefix: 'tenant', tenants: 1, total: N });
    const statuses = body === 'operator' ? operatorStatuses(objs) : undefined;
    const pid = cp.pids().apiServer!;
    const cpuBefore = processCpuSeconds(pid);
    const start = performance.now();
    await pool(objs, CONCURRENCY, async (o) => {
      await patchStatus(kc, bulkRef(o), statuses ? statuses.get(o) : { conditions: [] }, statuses ? { fieldManager: FIELD_MANAGER } : {});
    });
    const seconds = (performance.now() - start) / 1000;
    const cpu = processCpuSeconds(pid) - cpuBefore;
    const user = objs.find((o) => o.kind === 'User')!;
    const sample = await readObjectLive(kc, bulkRef(user));
    if (!sample) throw new Error(`${user.tenant}/${user.name} is gone after its status patch`);
    return { body, patchesPerSecond: objs.length / seconds, apiServerMsPerPatch: (cpu * 1000) / objs.length, objectBytes: JSON.stringify(sample).length };
  } finally {
    await cp.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (!assetsDir()) throw new Error('no kube-apiserver/etcd: run scripts/install-control-plane.sh first');
  // A B B A A B B A ...: a linear drift of the machine weighs on both bodies alike.
  const order: Body[] = Array.from({ length: ROUNDS * 2 }, (_, i) => ((i % 4 === 0 || i % 4 === 3) ? 'minimal' : 'operator'));
  const rounds: Round[] = [];
  for (const [i, body] of order.entries()) {
    process.stderr.write(`round ${i + 1}/${order.length}: ${body}...\n`);
    const r = await round(body);
    process.stderr.write(`  ${r.patchesPerSecond.toFixed(0)} patches/s, kube-apiserver ${r.apiServerMsPerPatch.toFixed(2)} ms CPU per patch\n`);
    rounds.push(r);
  }
  console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}, kube-apiserver 1.20.2 + etcd 3.4; ${N} objects in 1 tenant, ${CONCURRENCY} patches in flight, ${ROUNDS} rounds of each, each on a control plane of its own`);
  console.log('');
  console.log('| status patch | patches/s (median) | kube-apiserver CPU per patch (median) | each round (patches/s) | a User object after it |');
  console.log('|---|---:|---:|---|---:|');
  const med: Record<Body, number> = { minimal: 0, operator: 0 };
  for (const body of ['minimal', 'operator'] as const) {
    const mine = rounds.filter((r) => r.body === body);
    med[body] = median(mine.map((r) => r.patchesPerSecond));
    console.log(`| ${LABEL[body]} | ${med[body].toFixed(0)} | ${median(mine.map((r) => r.apiServerMsPerPatch)).toFixed(2)} ms | ${mine.map((r) => r.patchesPerSecond.toFixed(0)).join(', ')} | ${mine[0]!.objectBytes} B |`);
  }
  console.log('');
  console.log(`The operator's status alone costs ${(med.minimal / med.operator).toFixed(2)}× the raw baseline's patch in time: a cold start at that ratio would be at the API server's own rate for what it writes.`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
