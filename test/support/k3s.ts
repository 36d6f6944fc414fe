/**
 * A current Kubernetes for the e2e tests that ask for one (RPA_ACCESS_E2E_K3S=1): K3s in Docker,
 * started through testcontainers. The other e2e suites use the local kube-apiserver 1.20 of
 * scripts/install-control-plane.sh, which has no CEL; this one is where the CRDs' CEL rules are
 * seen enforced by an API server. Needs a Docker engine that may run a privileged container.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The K3s image (a Kubernetes with CEL in CRDs, GA since 1.29); RPA_ACCESS_K3S_IMAGE overrides it. */
export const K3S_IMAGE = process.env.RPA_ACCESS_K3S_IMAGE ?? 'rancher/k3s:v1.31.4-k3s1';

/** Whether a K3s can be started here, and when not, why (one line). */
export async function k3sAvailability(): Promise<{ ok: true } | { ok: false; why: string }> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `no Docker engine answers (${err instanceof Error ? err.message : String(err)})` };
  }
}

export interface K3s {
  /** A kubeconfig file for K3s's admin. */
  kubeconfigPath: string;
  stop(): Promise<void>;
}

export async function startK3s(): Promise<K3s> {
  const { K3sContainer } = await import('@testcontainers/k3s');
  const container = await new K3sContainer(K3S_IMAGE).start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-k3s-'));
  const kubeconfigPath = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfigPath, container.getKubeConfig(), { mode: 0o600 });
  let stopped = false;
  return {
    kubeconfigPath,
    async stop() {
      if (stopped) return;
      stopped = true;
      await container.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
