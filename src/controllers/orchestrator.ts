/**
 * The Orchestrator controller: keeps each `Orchestrator`'s external tenant holding what its
 * namespace's tenant says (src/targets/uipath/sync.ts does one sync).
 *
 * Triggers: the Orchestrator itself (spec changes), any committed store change of its tenant
 * (the store's change feed), its credentials Secret (one watch per named Secret, so a rotated
 * secret is used at once, and no other Secret is read), the sync period (drift), and the next
 * expiry of a binding. A failed sync is retried with backoff; status says why, in words a person
 * can act on. Every change made in UiPath is an Event (reason `UiPathChanged`), every drift
 * corrected too (`DriftCorrected`): the audit trail of what rpa-access did there.
 *
 * Nothing is pushed while the tenant is unknown to the store (a lost or empty store must never
 * take access away in UiPath): the status says so and the sync waits.
 */
import { CoreV1Api, type KubeConfig, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import { orchestratorGvr, type OrchestratorResource, type OrchestratorStatus } from '../api/v1alpha1/orchestrator.js';
import { errorCode, patchStatus } from '../k8s/client.js';
import type { EventRecorder } from '../k8s/events.js';
import { Informer, resourcePath } from '../k8s/informer.js';
import { setCondition, statusEqual, type Condition } from '../k8s/status.js';
import { WorkQueue, reconcileWorker } from '../k8s/workqueue.js';
import type { Logger } from '../log.js';
import type { AccessStore } from '../store/store.js';
import { targetConfig, TargetSpecError, type TargetConfig } from '../targets/orchestrator.js';
import { UiPathError, type UiPathClient } from '../targets/uipath/client.js';
import type { PlannedStep } from '../targets/uipath/plan.js';
import { hasChanges } from '../targets/uipath/plan.js';
import { newClient, syncTenant, type SyncResult } from '../targets/uipath/sync.js';

type Obj = OrchestratorResource & KubernetesObject;

const FIELD_MANAGER = 'rpa-access-operator';
const MAX_BACKOFF_MS = 15_000;

/**
 * How each sync of a target ended, for the operator's metrics (src/operator/metrics.ts), so that
 * a target failing for long is an alert, not only a status condition nobody reads.
 */
export interface TargetSyncMetrics {
  /**
   * A sync of `target` (`namespace/name`) ended at `at` (ms): `success` when it ran to the end
   * (UiPath holds what the tenant says, or an Observe target's pending changes were listed, or
   * objects rpa-access did not create were left alone), `error` when it did not (invalid spec,
   * credentials, the tenant not in the store, UiPath unreachable or refusing).
   */
  synced(target: string, result: 'success' | 'error', at: number): void;
  /** The Orchestrator is gone: its series go with it. */
  forget(target: string): void;
}

export interface OrchestratorControllerOptions {
  kc: KubeConfig;
  store: AccessStore;
  events: Pick<EventRecorder, 'record'>;
  log: Logger;
  /** Calls in flight per target (default 8). */
  concurrency?: number;
  /** Client settings for tests (timeouts, attempts). */
  clientOptions?: Parameters<typeof newClient>[2];
  metrics?: TargetSyncMetrics;
}

interface TargetState {
  /** Store revision and spec generation of the last sync that left nothing to do. */
  converged?: { revision: number; generation: number };
  driftCorrected: number;
  failures: number;
  client?: { key: string; client: UiPathClient };
  pendingNoted?: string;
}

export class OrchestratorController {
  readonly informer: Informer<Obj>;
  readonly queue: WorkQueue;
  private readonly secrets = new Map<string, Informer<V1Secret & KubernetesObject>>();
  private readonly state = new Map<string, TargetState>();
  private readonly core: CoreV1Api;
  private stopWatch?: () => Promise<void>;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly opts: OrchestratorControllerOptions) {
    this.informer = new Informer<Obj>({ kc: opts.kc, path: resourcePath(orchestratorGvr()), name: 'Orchestrator', log: opts.log });
    this.core = opts.kc.makeApiClient(CoreV1Api);
    this.queue = new WorkQueue({ name: 'orchestrator', concurrency: 2, onError: (key, err) => opts.log.error({ key, err }, 'orchestrator worker failed') });
  }

  async start(signal: AbortSignal): Promise<boolean> {
    this.unsubscribe.push(
      this.informer.on((event, obj, old) => {
        if (event === 'update' && old && obj.metadata.generation === old.metadata.generation) return;
        this.queue.add(`${obj.metadata.namespace}/${obj.metadata.name}`);
      }),
    );
    this.informer.start();
    this.stopWatch = await this.opts.store.watch((tenant) => {
      for (const o of this.informer.list(tenant)) this.queue.add(`${tenant}/${o.metadata.name}`);
    });
    if (!(await this.informer.waitForSync({ signal })) || signal.aborted) return false;
    this.queue.start(reconcileWorker(this.queue, (key) => this.reconcile(key), {
      onResult: (key, _outcome, _s, err) => err && this.opts.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'orchestrator sync failed'),
    }));
    return true;
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    await this.stopWatch?.();
    await this.queue.shutDown();
    await this.informer.stop();
    await Promise.all([...this.secrets.values()].map((i) => i.stop()));
    this.secrets.clear();
  }

  /** Watches exactly the Secret a target names; its changes enqueue the targets naming it. */
  private watchSecret(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.secrets.has(key)) return;
    const informer = new Informer<V1Secret & KubernetesObject>({
      kc: this.opts.kc, path: `/api/v1/namespaces/${namespace}/secrets`, fieldSelector: `metadata.name=${name}`, name: `Secret ${key}`, log: this.opts.log,
    });
    informer.on(() => {
      for (const o of this.informer.list(namespace)) {
        if ((o.spec as { credentialsSecretRef?: { name?: string } })?.credentialsSecretRef?.name === name) this.queue.add(`${namespace}/${o.metadata.name}`);
      }
    });
    informer.start();
    this.secrets.set(key, informer);
  }

  private async readCredentials(namespace: string, name: string): Promise<{ clientId: string; clientSecret: string; version: string } | { problem: string; reason: string }> {
    let secret: V1Secret;
    try {
      secret = await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (errorCode(err) === 404) return { reason: 'SecretNotFound', problem: `Secret ${namespace}/${name} does not exist: create it with clientId and clientSecret of the UiPath external application` };
      if (errorCode(err) === 403) return { reason: 'SecretForbidden', problem: `the operator may not read Secret ${namespace}/${name} (RBAC: get secrets)` };
      throw err;
    }
    const data = secret.data ?? {};
    const read = (k: string) => (data[k] ? Buffer.from(data[k]!, 'base64').toString('utf8').trim() : secret.stringData?.[k]);
    const clientId = read('clientId');
    const clientSecret = read('clientSecret');
    if (!clientId || !clientSecret) return { reason: 'InvalidSecret', problem: `Secret ${namespace}/${name} must hold clientId and clientSecret` };
    return { clientId, clientSecret, version: secret.metadata?.resourceVersion ?? '' };
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const [namespace, name] = key.split('/') as [string, string];
    const obj = this.informer.get(namespace, name);
    if (!obj) {
      this.state.delete(key);
      this.opts.metrics?.forget(key);
      return;
    }
    let st = this.state.get(key);
    if (!st) this.state.set(key, (st = { driftCorrected: 0, failures: 0 }));
    const generation = obj.metadata.generation ?? 0;
    let config: TargetConfig;
    try {
      config = targetConfig(namespace, name, obj.spec);
    } catch (err) {
      if (!(err instanceof TargetSpecError)) throw err;
      await this.writeStatus(obj, st, { ready: ['False', 'InvalidSpec', err.message], synced: ['False', 'InvalidSpec', 'Nothing is synced until the spec is fixed.'] });
      this.count(key, 'error');
      return;
    }
    const secretName = (obj.spec as { credentialsSecretRef: { name: string } }).credentialsSecretRef.name;
    this.watchSecret(namespace, secretName);
    const creds = await this.readCredentials(namespace, secretName);
    if ('problem' in creds) {
      await this.writeStatus(obj, st, { ready: ['False', creds.reason, creds.problem], synced: ['False', creds.reason, 'Nothing is synced without credentials.'] });
      this.count(key, 'error');
      return this.retry(st);
    }
    const snapshot = await this.opts.store.loadTenant(namespace);
    if (!snapshot) {
      await this.writeStatus(obj, st, { ready: ['False', 'TenantNotFound', `Tenant ${namespace} is not in the access store yet: nothing is pushed (an empty store never takes access away in UiPath).`], synced: ['False', 'TenantNotFound', 'Waiting for the tenant.'] });
      this.count(key, 'error');
      return this.retry(st);
    }
    // One client per target and credentials: a rotated secret (new resourceVersion) gets a new one, and a new token.
    const clientKey = `${config.url} ${config.identityUrl} ${config.scopes} ${creds.version}`;
    if (st.client?.key !== clientKey) {
      st.client = { key: clientKey, client: newClient(config, { clientId: creds.clientId, clientSecret: creds.clientSecret }, { concurrency: this.opts.concurrency ?? 8, ...this.opts.clientOptions }) };
    }
    const client = st.client.client;
    client.rateLimited = false;
    // Drift: the tenant and the spec are what UiPath last held, yet something must change.
    const drift = st.converged !== undefined && st.converged.revision === snapshot.revision && st.converged.generation === generation;
    const changes: string[] = [];
    let result: SyncResult;
    try {
      result = await syncTenant({
        config, credentials: { clientId: creds.clientId, clientSecret: creds.clientSecret }, store: this.opts.store, state: snapshot.state, client, logger: this.opts.log,
        onStep: (s: PlannedStep) => {
          for (const e of s.entries) {
            changes.push(`${e.action} ${e.entry}`);
            this.opts.events.record(obj, 'Normal', drift ? 'DriftCorrected' : 'UiPathChanged', 'Sync', `${drift ? 'drift corrected: ' : ''}${e.action} ${e.entry} in ${config.url}`);
          }
          if (drift) st.driftCorrected += s.entries.length;
        },
      });
    } catch (err) {
      if (!(err instanceof UiPathError)) throw err;
      await this.failed(obj, st, err, client.rateLimited, snapshot.revision);
      this.count(key, 'error');
      return this.retry(st);
    }
    if (result.error) {
      const err = result.error instanceof UiPathError ? result.error : new UiPathError(result.error.message, 'ServerError', 'sync');
      await this.failed(obj, st, err, client.rateLimited, snapshot.revision, result);
      this.count(key, 'error');
      return this.retry(st);
    }
    st.failures = 0;
    const pending = !result.applied && hasChanges(result.plan);
    if (pending) {
      // Observe: report drift, write nothing. One Event per distinct set of pending changes.
      const s = result.summary;
      const text = [...s.created.map((e) => `create ${e}`), ...s.updated.map((e) => `update ${e}`), ...s.deleted.map((e) => `delete ${e}`)];
      const noted = text.join('\n');
      if (st.pendingNoted !== noted) {
        st.pendingNoted = noted;
        this.opts.events.record(obj, 'Warning', 'DriftDetected', 'Observe', `managementPolicy Observe: ${text.length} change(s) pending in UiPath, not applied: ${text.slice(0, 10).join('; ')}${text.length > 10 ? '; ...' : ''}`);
      }
      st.converged = undefined;
    } else {
      st.pendingNoted = undefined;
      st.converged = { revision: snapshot.revision, generation };
    }
    const conflicts = result.summary.conflicts;
    const synced: [string, string, string] = pending
      ? ['False', 'ChangesPending', `managementPolicy Observe: ${result.summary.created.length + result.summary.updated.length + result.summary.deleted.length} change(s) pending in UiPath, not applied (see Events).`]
      : conflicts.length > 0
        ? ['False', 'Conflict', `${conflicts.length} UiPath object(s) rpa-access did not create were left alone (see status.conflicts; adopt: true takes them over).`]
        : ['True', 'Synced', changes.length > 0 ? `${changes.length} change(s) made in UiPath (see Events).` : 'UiPath holds what the tenant says.'];
    await this.writeStatus(obj, st, {
      ready: ['True', 'Connected', `UiPath answers at ${config.url}.`],
      synced,
      result,
      revision: snapshot.revision,
    });
    this.count(key, 'success');
    const untilExpiry = result.nextExpiry !== undefined ? Math.max(1000, result.nextExpiry - Date.now() + 1000) : Infinity;
    return { requeueAfterMs: Math.min(config.syncPeriodMs, untilExpiry) };
  }

  private count(key: string, result: 'success' | 'error'): void {
    this.opts.metrics?.synced(key, result, Date.now());
  }

  private retry(st: TargetState): { requeueAfterMs: number } {
    st.failures++;
    return { requeueAfterMs: Math.min(1000 * 2 ** (st.failures - 1), MAX_BACKOFF_MS) };
  }

  private async failed(obj: Obj, st: TargetState, err: UiPathError, rateLimited: boolean, revision: number, result?: SyncResult): Promise<void> {
    const reason = rateLimited && err.reason !== 'Unauthorized' && err.reason !== 'Forbidden' ? 'RateLimited' : err.reason;
    const advice: Record<string, string> = {
      TargetUnreachable: 'retrying with backoff; nothing is lost, the sync starts over from what UiPath holds.',
      Unauthorized: 'check clientId and clientSecret in the Secret (a rotated secret is used at once).',
      Forbidden: 'grant the external application the scope (and assign it to the folder) named above.',
      RateLimited: 'UiPath rate-limits the tenant; retrying with backoff.',
      Conflict: 'UiPath refused a change that collides with what it holds; see the message.',
    };
    const message = `${err.message}${advice[reason] ? `: ${advice[reason]}` : ''}`;
    st.converged = undefined;
    const connected = reason !== 'TargetUnreachable' && reason !== 'Unauthorized';
    await this.writeStatus(obj, st, {
      ready: connected ? ['True', 'Connected', 'UiPath answers.'] : ['False', reason, message],
      synced: ['False', reason, result ? `${result.done.length} step(s) done, ${result.failedSteps} not: ${message}` : message],
      ...(result ? { result } : {}),
      revision: undefined,
    });
    void revision;
  }

  private async writeStatus(
    obj: Obj,
    st: TargetState,
    s: { ready: [string, string, string]; synced: [string, string, string]; result?: SyncResult; revision?: number },
  ): Promise<void> {
    const generation = obj.metadata.generation;
    const old = obj.status ?? {};
    let conditions: Condition[] = old.conditions ?? [];
    for (const [type, [status, reason, message]] of [['Ready', s.ready], ['Synced', s.synced]] as const) {
      conditions = setCondition(conditions, { type, status: status as Condition['status'], reason, message: message.slice(0, 1000), ...(generation !== undefined ? { observedGeneration: generation } : {}) });
    }
    const status: OrchestratorStatus = {
      ...old,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      conditions,
      driftCorrected: st.driftCorrected,
    };
    if (s.result) {
      status.lastSyncTime = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      status.counts = s.result.plan.counts;
      status.notRepresentable = s.result.summary.notRepresentable.slice(0, 200);
      status.conflicts = s.result.summary.conflicts.slice(0, 200);
      if (s.revision !== undefined) status.observedRevision = s.revision;
    }
    const { lastSyncTime: _a, ...cmpNew } = status;
    const { lastSyncTime: _b, ...cmpOld } = old;
    if (statusEqual(cmpNew, cmpOld) && !s.result) return;
    const ref = { ...orchestratorGvr(), namespace: obj.metadata.namespace, name: obj.metadata.name };
    try {
      await patchStatus(this.opts.kc, ref, status, { fieldManager: FIELD_MANAGER });
    } catch (err) {
      if (errorCode(err) !== 404) throw err;
    }
  }
}
