/**
 * The options of `rpa-access operator` and their defaults, in one place: the CLI declares its
 * flags with them (src/cli/commands.ts), the entry point (./main.ts) receives them typed. Kept
 * free of imports so that the CLI reads it without loading the Kubernetes client.
 */

export const OPERATOR_DEFAULTS = {
  /** /healthz, /readyz (and /metrics unless metricsPort) */
  healthPort: 8081,
  /** Keys reconciled in parallel by each controller (the API server, not our CPU, is the bound: see bench/). */
  concurrency: 8,
  /** Keys of one tenant the object controller writes to the store in one transaction, at most. */
  batchSize: 200,
  /** How long a tenant's first waiting key waits for others to join its batch (ms). */
  batchWindowMs: 20,
  /** Run the controllers only while holding the Lease: off unless asked for (--leader-elect). */
  leaderElect: false,
} as const;

export interface OperatorCommandOptions {
  leaderElect: boolean;
  /** Namespace of the Lease; default the pod's ($POD_NAMESPACE). */
  leaseNamespace?: string;
  /** In ms; the elector derives the renew deadline and retry period from it. */
  leaseDuration?: number;
  healthPort: number;
  /** A separate port for /metrics (the Deployment's 8080). */
  metricsPort?: number;
  /** Serve the admission webhook on this HTTPS port. */
  webhookPort?: number;
  webhookCertDir?: string;
  concurrency: number;
}
