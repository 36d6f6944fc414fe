/**
 * What the admission webhook reports to /metrics: each review's outcome. A webhook that refuses
 * every request (a broken cache, a wrong identity, an expired certificate seen as errors) stops
 * every change to the four kinds; the PrometheusRule's RpaAccessWebhookRefusingAll reads this.
 */
import { Counter, type Registry } from 'prom-client';

export type AdmissionOutcome = 'allowed' | 'denied' | 'error';

export interface WebhookMetrics {
  admissions: Counter<'result'>;
}

export function createWebhookMetrics(registry: Registry): WebhookMetrics {
  return {
    admissions: new Counter({
      name: 'rpa_access_webhook_admissions_total',
      help: 'Admission reviews answered by the webhook, by result (allowed, denied, error: the webhook could not judge)',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
