/**
 * `rpa-access ghosts [--tenant T] [--output json]`: what the access store holds that the cluster
 * (current kubeconfig) does not show. In a tenant the operator manages, such an object is either
 * about to be removed by its drift pass, or kept because the store refuses to delete it, in which
 * case it still grants, and `reason` says what would unblock it. The operator's /metrics counts
 * them by tenant (`rpa_access_ghost_objects`).
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, KINDS, type Kind } from '../model/catalog.js';
import { deleteRefusal, storeOnly } from '../model/ghosts.js';
import { PLURALS } from '../api/v1alpha1/resource.js';
import { errorCode, errorMessage, loadKubeConfig } from '../k8s/client.js';
import { CliError, EXIT_OK, printJson, withStore, type CliContext, type OutputFormat } from './context.js';

export interface GhostsCommandOptions {
  tenant?: string;
  kubeconfig?: string;
  output: OutputFormat;
}

interface Ghost {
  tenant: string;
  kind: Kind;
  name: string;
  /** Why the store refuses to delete it; absent when nothing holds it (the drift pass removes it). */
  reason?: string;
}

/** `namespace/Kind/name` of every object of the four kinds in the cluster (a kind whose CRD is absent has none). */
async function clusterObjects(kubeconfig: string | undefined): Promise<Set<string>> {
  const kc = loadKubeConfig(kubeconfig);
  const api = kc.makeApiClient(CustomObjectsApi);
  const seen = new Set<string>();
  for (const kind of KINDS) {
    let list: { items?: { metadata?: { namespace?: string; name?: string } }[] };
    try {
      list = (await api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: PLURALS[kind] })) as typeof list;
    } catch (err) {
      if (errorCode(err) === 404) continue;
      throw new CliError(`cannot list ${PLURALS[kind]}.${API_GROUP} in the cluster of the current kubeconfig: ${errorMessage(err)}`);
    }
    for (const item of list.items ?? []) seen.add(`${item.metadata?.namespace}/${kind}/${item.metadata?.name}`);
  }
  return seen;
}

export async function ghostsCommand(ctx: CliContext, o: GhostsCommandOptions): Promise<number> {
  return withStore(ctx, { readOnly: true }, async (store, description) => {
    const tenants = store ? [...(await store.revisions()).keys()].sort() : [];
    if (o.tenant !== undefined && !tenants.includes(o.tenant)) throw new CliError(`tenant ${o.tenant} does not exist in the store ${description}`);
    const inCluster = await clusterObjects(o.kubeconfig);
    const ghosts: Ghost[] = [];
    for (const tenant of o.tenant !== undefined ? [o.tenant] : tenants) {
      const state = (await store!.loadTenant(tenant))?.state;
      if (!state) continue;
      for (const e of storeOnly(state, (kind, name) => inCluster.has(`${tenant}/${kind}/${name}`))) {
        const reason = deleteRefusal(state, e.kind, e.name);
        ghosts.push({ tenant, kind: e.kind, name: e.name, ...(reason ? { reason } : {}) });
      }
    }
    if (o.output === 'json') {
      printJson(ctx, { ghosts });
      return EXIT_OK;
    }
    if (ghosts.length === 0) {
      ctx.out(`no ghosts: the cluster shows every object the store holds${o.tenant !== undefined ? ` in tenant ${o.tenant}` : ''}`);
      return EXIT_OK;
    }
    for (const g of ghosts) {
      ctx.out(`${g.kind}/${g.tenant}/${g.name}: ${g.reason ? `kept, still counts: ${g.reason}` : 'not in the cluster; the operator\'s drift pass removes it'}`);
    }
    return EXIT_OK;
  });
}
