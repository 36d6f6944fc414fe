/** Entry point of `rpa-access operator`: starts the operator (./manager.ts) and runs until SIGTERM or SIGINT. */
import type { Logger } from '../log.js';
import { webhookOptionsFromEnv } from '../webhook/server.js';
import { startOperator } from './manager.js';

/** Options of `rpa-access operator`, as the CLI hands them over (see src/cli/delegate.ts). */
export interface OperatorRunOptions {
  storeUrl: string;
  storeDescription: string;
  logger: Logger;
  leaderElect?: boolean;
  healthPort?: number;
  metricsPort?: number;
  webhookPort?: number;
  webhookCertDir?: string;
  concurrency?: number;
  leaseNamespace?: string;
  /** --lease-duration in ms; the elector derives the renew deadline and retry period from it. */
  leaseDuration?: number;
}

/** Entry point of `rpa-access operator`: runs until SIGTERM or SIGINT. */
export async function run(options: OperatorRunOptions): Promise<number> {
  const log = options.logger;
  const handle = await startOperator({
    store: options.storeUrl,
    log,
    healthPort: options.healthPort,
    metricsPort: options.metricsPort,
    concurrency: options.concurrency,
    leaderElection: options.leaderElect ?? false,
    leaseNamespace: options.leaseNamespace,
    leaseDurationMs: options.leaseDuration,
    webhook: options.webhookPort !== undefined ? webhookOptionsFromEnv(options.webhookPort, options.webhookCertDir) : undefined,
  });
  log.info({ store: options.storeDescription, healthPort: handle.healthPort, leaderElection: options.leaderElect ?? false }, 'operator started');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('shutting down');
  await handle.stop();
  return 0;
}
