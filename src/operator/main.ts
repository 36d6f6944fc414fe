/** Entry point of `rpa-access operator`: starts the operator (./manager.ts) and runs until SIGTERM or SIGINT. */
import type { Logger } from '../log.js';
import { webhookOptionsFromEnv } from '../webhook/server.js';
import { tuneHeapForOperator } from './heap.js';
import { startOperator } from './manager.js';
import type { OperatorCommandOptions } from './options.js';

export async function runOperator(options: OperatorCommandOptions, io: { storeUrl: string; logger: Logger }): Promise<number> {
  const log = io.logger;
  tuneHeapForOperator();
  const handle = await startOperator({
    store: io.storeUrl,
    log,
    healthPort: options.healthPort,
    metricsPort: options.metricsPort,
    concurrency: options.concurrency,
    leaderElection: options.leaderElect,
    leaseNamespace: options.leaseNamespace,
    leaseDurationMs: options.leaseDuration,
    webhook: options.webhookPort !== undefined ? webhookOptionsFromEnv(options.webhookPort, options.webhookCertDir) : undefined,
  });
  log.info({ store: handle.store.description, healthPort: handle.healthPort, leaderElection: options.leaderElect }, 'operator started');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('shutting down');
  await handle.stop();
  return 0;
}
