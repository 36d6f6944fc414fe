/**
 * Where the read commands (check, permissions, who, diff) get a tenant's state: the access
 * store, or with `--from-cluster` the custom resources of the current kubeconfig context (no
 * store at all: what `kubectl rpa-access` does by default). Either way the same engine answers.
 */
import type { TenantSnapshot } from '../store/store.js';
import { CliError, withStore, type CliContext } from './context.js';

/** The options every read command shares (one declaration, in commands.ts). */
export interface TenantSourceOptions {
  /** Read the tenant from the cluster of the kubeconfig instead of the store. */
  fromCluster?: boolean;
  kubeconfig?: string;
  context?: string;
}

/** `--tenant T` or, as kubectl users type it, `-n T`. */
export interface TenantOption {
  tenant?: string;
  namespace?: string;
}

export function tenantOf(o: TenantOption): string {
  const t = o.tenant ?? o.namespace;
  if (!t) throw new CliError("required option '--tenant <tenant>' (or -n, --namespace) not specified");
  if (o.tenant && o.namespace && o.tenant !== o.namespace) throw new CliError(`--tenant ${o.tenant} and --namespace ${o.namespace} disagree: give one`);
  return t;
}

/**
 * Reads from the cluster when asked, or by default when run as the kubectl plugin unless a store
 * was named (`--store` or $RPA_ACCESS_STORE).
 */
function readsCluster(ctx: CliContext, o: TenantSourceOptions): boolean {
  if (o.fromCluster !== undefined) return o.fromCluster;
  return ctx.plugin && !ctx.globals.store && !ctx.io.env.RPA_ACCESS_STORE;
}

/** The kubeconfig as kubectl would pick it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config. */
async function kubeConfig(o: TenantSourceOptions) {
  const { loadKubeConfig } = await import('../k8s/client.js');
  let kc;
  try {
    kc = loadKubeConfig(o.kubeconfig);
  } catch (err) {
    throw new CliError(`cannot read the kubeconfig${o.kubeconfig ? ` ${o.kubeconfig}` : ''}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (o.context) {
    if (!kc.getContexts().some((c) => c.name === o.context)) throw new CliError(`no context ${o.context} in the kubeconfig`);
    kc.setCurrentContext(o.context);
  }
  if (!kc.getCurrentCluster()) throw new CliError('the kubeconfig has no current context: give --context or set one with kubectl config use-context');
  return kc;
}

/** The cluster's view of `namespace`; API errors become one clear line. */
export async function readTenantFromCluster(ctx: CliContext, o: TenantSourceOptions, namespace: string): Promise<{ snapshot: TenantSnapshot | undefined; description: string }> {
  const kc = await kubeConfig(o);
  const [{ readClusterTenant }, { errorMessage, errorCode }] = await Promise.all([import('../api/v1alpha1/read-tenant.js'), import('../k8s/client.js')]);
  const description = `cluster ${kc.getCurrentContext()} (${kc.getCurrentCluster()!.server})`;
  try {
    const read = await readClusterTenant(kc, namespace);
    for (const s of read.skipped) ctx.warn(`${namespace}: ${s} (refused by the schema: grants nothing)`);
    ctx.logger.debug({ namespace, objects: read.objects, skipped: read.skipped.length }, 'tenant read from the cluster');
    // A namespace holding none of our objects is a tenant the cluster does not have.
    return { snapshot: read.objects === 0 ? undefined : { state: read.state, revision: 0 }, description };
  } catch (err) {
    const code = errorCode(err);
    if (code === 404) throw new CliError(`the rpa-access custom resources are not installed in ${description} (kubectl apply -f crds/)`);
    if (code === 401 || code === 403) throw new CliError(`${description} refused to list the rpa-access objects of ${namespace}: ${errorMessage(err)}`);
    throw new CliError(`cannot read tenant ${namespace} from ${description}: ${errorMessage(err)}`);
  }
}

/** Runs `work` with the tenant as the store or the cluster holds it (undefined when unknown there). */
export async function withTenant<T>(
  ctx: CliContext,
  o: TenantSourceOptions,
  tenant: string,
  work: (snapshot: TenantSnapshot | undefined, description: string) => Promise<T>,
): Promise<T> {
  if (readsCluster(ctx, o)) {
    const { snapshot, description } = await readTenantFromCluster(ctx, o, tenant);
    return work(snapshot, description);
  }
  return withStore(ctx, { readOnly: true }, async (store, description) => work(store ? await store.loadTenant(tenant) : undefined, `store ${description}`));
}
