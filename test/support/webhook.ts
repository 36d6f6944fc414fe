/**
 * The shipped webhook configurations (config/webhook/validating_webhook.yaml and
 * mutating_webhook.yaml), pointed at a local URL instead of the in-cluster Service: the e2e tests
 * register exactly what users install.
 */
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';

export const WEBHOOK_CONFIGURATION = 'rpa-access-validating-webhook';
export const MUTATING_CONFIGURATION = 'rpa-access-mutating-webhook';
/** How kubectl prefixes a refusal by our webhook. */
export const DENIED = 'admission webhook "validate.rpa-access.io" denied the request: ';

interface WebhookConfiguration {
  metadata: { name: string };
  webhooks: { clientConfig: { service?: { path?: string }; [k: string]: unknown } }[];
}

/** Both configurations as YAML, every webhook calling https://127.0.0.1:PORT at its own path. */
export function webhookConfiguration(port: number): string {
  const shipped: [string, string][] = [
    ['config/webhook/validating_webhook.yaml', WEBHOOK_CONFIGURATION],
    ['config/webhook/mutating_webhook.yaml', MUTATING_CONFIGURATION],
  ];
  return shipped
    .map(([relative, name]) => {
      const file = path.resolve(relative);
      const config = yaml.load(fs.readFileSync(file, 'utf8')) as WebhookConfiguration;
      if (config.metadata.name !== name) throw new Error(`${file}: expected ${name}`);
      for (const hook of config.webhooks) hook.clientConfig = { url: `https://127.0.0.1:${port}${hook.clientConfig.service?.path ?? '/validate'}` };
      return yaml.dump(config);
    })
    .join('---\n');
}
