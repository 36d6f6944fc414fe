/** Small helpers for e2e tests: kubectl, polling, reading our custom resources. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CustomObjectsApi, EventsV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from './control-plane.js';
import { errorCode } from '../../src/k8s/client.js';
import { sleep } from '../../src/k8s/backoff.js';

const execFileAsync = promisify(execFile);

export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Polls `probe` every `intervalMs` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as T;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function kubeConfigOf(cp: ControlPlane, user = 'admin'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(user === 'admin' ? cp.kubeconfigPath : cp.kubeconfigFor(user));
  return kc;
}

const PLURAL: Record<string, string> = { User: 'users', Group: 'groups', Role: 'roles', RoleBinding: 'rolebindings' };

export interface Resource {
  metadata: { name: string; namespace: string; deletionTimestamp?: string; finalizers?: string[]; uid?: string; generation?: number };
  spec: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason: string; message: string }[] };
}

export async function getResource(kc: KubeConfig, kind: string, namespace: string, name: string): Promise<Resource | undefined> {
  try {
    return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'rpa-access.io', version: 'v1alpha1', plural: PLURAL[kind]!, namespace, name })) as Resource;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export function ready(r: Resource | undefined): { status: string; reason: string; message: string } | undefined {
  const c = r?.status?.conditions?.find((x) => x.type === 'Ready');
  return c && r?.status?.observedGeneration === r?.metadata.generation ? c : undefined;
}

/**
 * Events of a namespace (of one object, with `name`). A 5xx or 429 from the API server is read
 * again (up to 5 times, 200 ms apart): one CI run met a lone `500 ... unexpected EOF` from etcd
 * on this list under load, which says nothing about the operator under test.
 */
export async function eventsFor(kc: KubeConfig, namespace: string, name?: string): Promise<{ reason: string; note: string; type: string; regarding: string }[]> {
  const api = kc.makeApiClient(EventsV1Api);
  let list;
  for (let attempt = 1; ; attempt++) {
    try {
      list = await api.listNamespacedEvent({ namespace });
      break;
    } catch (err) {
      const code = errorCode(err);
      if (attempt >= 5 || code === undefined || (code < 500 && code !== 429)) throw err;
      await sleep(200);
    }
  }
  return list.items
    .filter((e) => !name || e.regarding?.name === name)
    .map((e) => ({ reason: e.reason ?? '', note: e.note ?? '', type: e.type ?? '', regarding: `${e.regarding?.kind}/${e.regarding?.name}` }));
}

export async function installCrds(cp: Pick<ControlPlane, 'kubeconfigPath'>, crdDir: string): Promise<void> {
  // The 1.20 server does not know x-kubernetes-validations (CEL): kubectl's client-side check
  // refuses the field unless told not to validate; the server then drops the rule.
  const r = await kubectl(cp.kubeconfigPath, ['apply', '--validate=false', '-f', crdDir]);
  if (r.code !== 0) throw new Error(`kubectl apply crds failed: ${r.stderr}`);
  await execFileAsync('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'wait', '--for=condition=Established', '--timeout=60s', '-f', crdDir]);
}
