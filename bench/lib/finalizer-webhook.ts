/**
 * The shipped mutating webhook (config/webhook/mutating_webhook.yaml, served by the operator's
 * own WebhookServer and finalizer.ts) in the benchmark's process, for the time the benchmark
 * creates its objects: they then arrive as they do in a cluster where rpa-access is installed,
 * with the operator's finalizer put on at create. The benchmark serves its own certificate and
 * puts its CA in the configuration (what the operator's certificate sync does in a cluster).
 *
 * The mutating configuration's failurePolicy is Ignore: a webhook the API server cannot reach
 * would go unnoticed, so `install` waits until a server-side dry run comes back with the finalizer.
 */
import { FINALIZER } from '../../src/model/catalog.js';
import { generateCertificates } from '../../src/webhook/certs.js';
import { WebhookServer } from '../../src/webhook/server.js';
import type { ControlPlane } from '../../test/support/control-plane.js';
import { eventually, kubectl } from '../../test/support/kube.js';
import { MUTATING_CONFIGURATION, webhookConfiguration } from '../../test/support/webhook.js';

export interface FinalizerWebhook {
  /** Unregisters the configuration and stops the server. */
  remove(): Promise<void>;
}

export async function installFinalizerWebhook(cp: ControlPlane, probeNamespace: string): Promise<FinalizerWebhook> {
  const bundle = await generateCertificates({ hosts: ['127.0.0.1'] });
  const server = new WebhookServer({
    certificate: { cert: bundle.cert, key: bundle.key, ca: bundle.caCert },
    // Only /mutate is registered here; a validation request would be a mistake of this file.
    judge: async (request) => ({ uid: request.uid, allowed: false, status: { code: 500, reason: 'InternalError', message: 'the benchmark registers no validating webhook' } }),
  });
  const port = await server.listen(0, '127.0.0.1');
  const run = (args: string[], input?: string) => kubectl(cp.kubeconfigPath, args, input);
  const applied = await run(['apply', '-f', '-'], webhookConfiguration(port, { only: [MUTATING_CONFIGURATION], caBundle: bundle.caCert }));
  if (applied.code !== 0) throw new Error(`registering the mutating webhook: ${applied.stderr}`);
  const probe = `apiVersion: rpa-access.io/v1alpha1\nkind: Group\nmetadata: {name: webhook-probe, namespace: ${probeNamespace}}\nspec: {}\n`;
  await eventually('the mutating webhook puts the finalizer on', async () => {
    const r = await run(['create', '--dry-run=server', '-o', 'jsonpath={.metadata.finalizers}', '-f', '-'], probe);
    return r.stdout.includes(FINALIZER);
  });
  return {
    async remove() {
      await run(['delete', 'mutatingwebhookconfiguration', MUTATING_CONFIGURATION, '--ignore-not-found']);
      await server.close();
    },
  };
}
