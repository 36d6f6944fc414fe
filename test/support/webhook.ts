/**
 * The shipped webhook configuration (config/webhook/validating_webhook.yaml), pointed at a local
 * URL instead of the in-cluster Service: the e2e tests register exactly what users install.
 */
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';

export const WEBHOOK_CONFIGURATION = 'rpa-access-validating-webhook';
/** How kubectl prefixes a refusal by our webhook. */
export const DENIED = 'admission webhook "validate.rpa-access.io" denied the request: ';

interface WebhookConfiguration {
  metadata: { name: string };
  webhooks: { clientConfig: Record<string, unknown> }[];
}

/** The configuration as YAML, every webhook calling https://127.0.0.1:PORT/validate. */
export function webhookConfiguration(port: number): string {
  const file = path.resolve('config/webhook/validating_webhook.yaml');
  const config = yaml.load(fs.readFileSync(file, 'utf8')) as WebhookConfiguration;
  if (config.metadata.name !== WEBHOOK_CONFIGURATION) throw new Error(`${file}: expected ${WEBHOOK_CONFIGURATION}`);
  for (const hook of config.webhooks) hook.clientConfig = { url: `https://127.0.0.1:${port}/validate` };
  return yaml.dump(config);
}
