/**
 * Runs the UiPath double on its own, for trying a client by hand or from another process:
 *   npx tsx test/support/uipath/serve.ts [--port 8099] [--tenants finance,hr] [--latency 20]
 * Prints one JSON line with the addresses and the application's credentials (test values, not
 * secrets of anything real), then serves until interrupted.
 */
import { parseArgs } from 'node:util';
import { startUiPathDouble } from './double.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    tenants: { type: 'string', default: 'DefaultTenant' },
    latency: { type: 'string', default: '0' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
  },
});
const application = {
  ...(values['client-id'] ? { clientId: values['client-id'] } : {}),
  ...(values['client-secret'] ? { clientSecret: values['client-secret'] } : {}),
};
const uip = await startUiPathDouble({ port: Number(values.port), tenants: values.tenants.split(','), application });
uip.faults.latency(Number(values.latency));
process.stdout.write(
  `${JSON.stringify({
    url: uip.url,
    identityUrl: uip.identityUrl,
    orchestratorUrls: Object.fromEntries(uip.tenantNames.map((t) => [t, uip.orchestratorUrl(t)])),
    organizationId: uip.organizationId,
    ...uip.credentials,
  })}\n`,
);
const stop = (): void => {
  uip.stop().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
