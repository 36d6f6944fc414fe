/**
 * One sync of a tenant into its UiPath Orchestrator tenant: read UiPath and the ledger, map the
 * tenant's state, plan, and (unless a dry run or `managementPolicy: Observe`) apply. Shared by
 * `rpa-access sync` and the operator's Orchestrator controller.
 */
import type { Logger } from '../../log.js';
import type { TenantState } from '../../model/types.js';
import type { AccessStore, TargetObject } from '../../store/store.js';
import type { TargetConfig } from '../orchestrator.js';
import { UiPathClient, UiPathError, type CallCounts, type Credentials, type UiPathClientOptions } from './client.js';
import { desiredState } from './desired.js';
import { ownedKey, type ObservedUiPath, type OwnedKind, type Ownership } from './observed.js';
import { hasChanges, planSummary, planUiPath, type PlannedStep, type UiPathPlan } from './plan.js';
import { applySteps, readUiPath } from './remote.js';

export interface SyncOptions {
  config: TargetConfig;
  credentials: Credentials;
  store: AccessStore;
  /** The tenant's state in the store. */
  state: TenantState;
  /** Plan only. */
  dryRun?: boolean;
  now?: number;
  logger?: Logger;
  client?: UiPathClient;
  clientOptions?: Partial<UiPathClientOptions>;
  /** Told of each step applied (the operator turns them into Events). */
  onStep?: (step: PlannedStep) => void;
}

export interface SyncResult {
  plan: UiPathPlan;
  summary: ReturnType<typeof planSummary>;
  /** True when the plan's steps were sent to UiPath (false for a dry run, Observe, or nothing to do). */
  applied: boolean;
  done: PlannedStep[];
  /** The first failure, if any step failed: the sync is then incomplete. */
  error?: UiPathError | Error;
  failedSteps: number;
  calls: CallCounts;
  organizationId: string;
  /** When to sync again for an expiring binding (ms since the epoch). */
  nextExpiry?: number;
}

const IDENTITY_KINDS: ReadonlySet<OwnedKind> = new Set(['IdentityUser', 'RobotAccount', 'IdentityGroup']);

export function ledgerScopes(config: Pick<TargetConfig, 'url' | 'identityUrl'>, organizationId: string): { identity: string; orchestrator: string } {
  return { identity: `identity:${config.identityUrl}#${organizationId.toLowerCase()}`, orchestrator: `orchestrator:${config.url}` };
}

export function newClient(config: TargetConfig, credentials: Credentials, options: Partial<UiPathClientOptions> = {}): UiPathClient {
  return new UiPathClient({ url: config.url, identityUrl: config.identityUrl, scopes: config.scopes, credentials, ...options });
}

async function resolveOrganization(client: UiPathClient, config: TargetConfig): Promise<string> {
  if (config.organizationId) return config.organizationId;
  const fromToken = await client.organizationIdFromToken();
  if (!fromToken) throw new UiPathError('the token carries no prt_id claim: set spec.organizationId to the organization id', 'BadRequest', 'POST /connect/token');
  return fromToken.toLowerCase();
}

async function loadOwnership(store: AccessStore, config: TargetConfig, organizationId: string): Promise<Ownership> {
  const scopes = ledgerScopes(config, organizationId);
  const claims = await store.loadTargetObjects([scopes.identity, scopes.orchestrator]);
  const owned = new Set<string>();
  const others = new Set<string>();
  for (const c of claims) {
    const key = ownedKey(c.kind as OwnedKind, c.externalId);
    owned.add(key);
    if (c.target !== config.id) others.add(key);
  }
  return { owned, exclusive: new Set([...owned].filter((k) => !others.has(k))) };
}

/** Reads UiPath and the ledger: what a plan is made from. */
export async function observe(client: UiPathClient, store: AccessStore, config: TargetConfig): Promise<{ observed: ObservedUiPath; ownership: Ownership; organizationId: string }> {
  const organizationId = await resolveOrganization(client, config);
  const [observed, ownership] = await Promise.all([readUiPath(client, organizationId), loadOwnership(store, config, organizationId)]);
  return { observed, ownership, organizationId };
}

export async function syncTenant(options: SyncOptions): Promise<SyncResult> {
  const { config, store } = options;
  const client = options.client ?? newClient(config, options.credentials, options.clientOptions);
  const { observed, ownership, organizationId } = await observe(client, store, config);
  const desired = desiredState(options.state, config, options.now ?? Date.now());
  const plan = planUiPath(desired, observed, ownership, config);
  const result: SyncResult = {
    plan, summary: planSummary(plan), applied: false, done: [], failedSteps: 0, calls: client.counts, organizationId,
    ...(desired.nextExpiry !== undefined ? { nextExpiry: desired.nextExpiry } : {}),
  };
  if (options.dryRun || config.managementPolicy === 'Observe' || !hasChanges(plan)) return result;

  const scopes = ledgerScopes(config, organizationId);
  const claim = (kind: OwnedKind, id: string | number, name: string): TargetObject => ({ scope: IDENTITY_KINDS.has(kind) ? scopes.identity : scopes.orchestrator, kind, externalId: String(id), name });
  const outcome = await applySteps(client, organizationId, plan.steps, plan.known, {
    recordOwned: (kind, id, name) => store.recordTargetObjects(config.id, { add: [claim(kind, id, name)] }),
    forgetOwned: (kind, id, name) => store.recordTargetObjects(config.id, { remove: [claim(kind, id, name)] }),
    stepDone: (s) => options.onStep?.(s),
  });
  result.applied = true;
  result.done = outcome.done;
  result.failedSteps = outcome.failed.length + outcome.skipped.length;
  const first = outcome.failed[0];
  if (first) {
    const folderDelete = outcome.failed.every((f) => f.step.step.op === 'deleteFolder');
    if (folderDelete) {
      // UiPath refuses to delete a folder that still holds anything (processes, queues...): not an error of the sync.
      for (const f of outcome.failed) result.summary.conflicts.push(`Folder/${(f.step.step as { path: string }).path}: UiPath refused to delete it (${f.error.message}); kept`);
      result.failedSteps = 0;
    } else result.error = first.error;
  }
  options.logger?.info({ target: config.id, steps: outcome.done.length, failed: outcome.failed.length, skipped: outcome.skipped.length, calls: client.counts.reads + client.counts.writes }, 'UiPath sync applied');
  return result;
}
