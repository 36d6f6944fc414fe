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

const SHIPPED = {
  [WEBHOOK_CONFIGURATION]: 'config/webhook/validating_webhook.yaml',
  [MUTATING_CONFIGURATION]: 'config/webhook/mutating_webhook.yaml',
} as const;

/**
 * The shipped configurations as YAML (both, or those named in `only`), every webhook calling
 * https://127.0.0.1:PORT at its own path; with `caBundle` (PEM) when the caller serves the
 * certificate itself instead of letting the operator patch its CA in.
 */
export function webhookConfiguration(port: number, opts: { only?: (keyof typeof SHIPPED)[]; caBundle?: string } = {}): string {
  const names = opts.only ?? [WEBHOOK_CONFIGURATION, MUTATING_CONFIGURATION];
  return names
    .map((name) => {
      const file = path.resolve(SHIPPED[name]);
      const config = yaml.load(fs.readFileSync(file, 'utf8')) as WebhookConfiguration;
      if (config.metadata.name !== name) throw new Error(`${file}: expected ${name}`);
      for (const hook of config.webhooks) {
        hook.clientConfig = { url: `https://127.0.0.1:${port}${hook.clientConfig.service?.path ?? '/validate'}` };
        if (opts.caBundle) hook.clientConfig.caBundle = Buffer.from(opts.caBundle).toString('base64');
      }
      return yaml.dump(config);
    })
    .join('---\n');
}
