/**
 * The access store: where the desired state of every tenant lives, durable, with an audit trail.
 * Two backends share one schema, one migration set and one code path (Kysely): the embedded
 * SQLite store (default, `./.rpa-access/`) and PostgreSQL (`postgres://...`).
 *
 * Every apply runs in one transaction that holds the tenants' write lock while it loads the
 * current state, plans and writes: concurrent applies serialize, and a refused apply writes
 * nothing at all.
 */
import type { TenantDelta } from '../model/engine.js';
import type { Violation } from '../model/invariants.js';
import type { DesiredState, TenantPlan } from '../model/plan.js';
import type { LoginRequest } from '../model/directory.js';
import type { AnyEntry, Entry, Session, TenantState } from '../model/types.js';

export type StoreBackend = 'sqlite' | 'postgres';

export interface ApplyOptions {
  /** Plan and check only; write nothing. */
  dryRun?: boolean;
  /** Who asked (recorded in the audit trail): a user name, `operator`, ... */
  actor?: string;
  /** Which door: `cli`, `operator`, `webhook`... */
  source?: string;
}

export interface ApplyResult {
  /** Audit id of this apply; null when nothing was written (dry run, refused, or no change). */
  applyId: number | null;
  plans: TenantPlan[];
  violations: Violation[];
  /** True when the plans were written (false for a dry run, a refusal, or nothing to do). */
  written: boolean;
  /** Revision of each tenant after the apply. */
  revisions: Map<string, number>;
}

export interface AuditRecord {
  id: number;
  applyId: number;
  tenant: string;
  kind: string;
  name: string;
  /** `login`: a login assigned the user to directory groups (see `message`). */
  action: 'created' | 'updated' | 'deleted' | 'login';
  before: AnyEntry | null;
  after: AnyEntry | null;
  at: string;
  actor: string;
  source: string;
  /** What a login did, worded as the orchestrator's audit log; absent otherwise. */
  message?: string;
}

export interface LoginOptions {
  /** Session length (default 1 hour). */
  ttlMs?: number;
  /** The time of the login (tests); default now. */
  now?: number;
  actor?: string;
  /** Which door: `api`, `cli`. */
  source?: string;
}

/** A login's outcome (contract section 7). A refusal wrote nothing. */
export type LoginResult =
  | { refused: string; unknownTenant?: boolean }
  | {
      refused?: undefined;
      user: Entry<'User'>;
      provisioned: boolean;
      session: Session;
      /** The tenant's revision after the login. */
      revision: number;
    };

export interface TenantSnapshot {
  state: TenantState;
  /** Increases with every committed change of the tenant. */
  revision: number;
}

/**
 * The audit `source` of the operator's writes (its drift pass writes `operator-drift`). A tenant
 * whose first write came from the operator is one the cluster holds: the CLI warns before
 * writing there, since the operator undoes what the cluster does not declare.
 */
export const OPERATOR_SOURCE = 'operator';

/** What changed in a tenant between two revisions (`loadTenantChanges`). */
export interface TenantChanges extends TenantDelta {
  /** The revision the changes were read from. */
  since: number;
  /** The tenant's current revision: `since` plus these changes is the state at `revision`. */
  revision: number;
}

export interface LoadChangesOptions {
  /**
   * Refuse (undefined) when more than this many object changes were recorded since `since`:
   * the caller is then better off loading the whole tenant.
   */
  limit?: number;
}

/**
 * An object an Orchestrator target created or adopted in the external orchestrator: `scope` is
 * the id space (e.g. an Identity organization or an Orchestrator tenant URL), `kind` what it is
 * (`Role`, `Folder`, `IdentityUser`...), `externalId` the orchestrator's id.
 */
export interface TargetObject {
  scope: string;
  kind: string;
  externalId: string;
  name: string;
}

export interface ClaimedTargetObject extends TargetObject {
  /** The target (`namespace/name`) that claims it. */
  target: string;
}

export interface AccessStore {
  readonly backend: StoreBackend;
  /** A description safe to log (no credentials). */
  readonly description: string;
  /** Plans and applies the desired states of several tenants in one transaction. */
  apply(desired: DesiredState[], options?: ApplyOptions): Promise<ApplyResult>;
  /** A tenant's current state, or undefined when the store has never seen it. */
  loadTenant(tenant: string): Promise<TenantSnapshot | undefined>;
  /**
   * The incremental read: objects created, updated or deleted in `tenant` after revision `since`,
   * read in one consistent snapshot, at a cost proportional to the changes. Undefined when it
   * cannot answer exactly (unknown tenant, `since` ahead of the store, history before the store
   * recorded revisions in its audit trail, or more changes than `options.limit`): load the whole
   * tenant instead. Optional: a store without it is always read whole.
   */
  loadTenantChanges?(tenant: string, since: number, options?: LoadChangesOptions): Promise<TenantChanges | undefined>;
  /**
   * When each object of the tenant was last written (`Kind/name` -> ISO time). The operator's
   * drift pass uses it to tell an object deleted from the cluster from one the cluster never had
   * (written before the CRDs were installed). Optional: without it every orphan counts as deleted.
   */
  objectTimes?(tenant: string): Promise<Map<string, string>>;
  /** Every tenant and its revision: cheap, used to notice changes. */
  revisions(): Promise<Map<string, number>>;
  audit(query?: { tenant?: string; applyId?: number; limit?: number }): Promise<AuditRecord[]>;
  /**
   * Records a login (contract section 7) in one write transaction: the session, the User it
   * provisions when it does, the audit rows; the tenant's revision moves, so every reader of the
   * change feed honours it. A refused login writes nothing.
   */
  login(tenant: string, request: LoginRequest, options?: LoginOptions): Promise<LoginResult>;
  /**
   * Calls `onChange` after changes committed by any process (PostgreSQL: LISTEN/NOTIFY sent in
   * the writing transaction; SQLite: a cheap change counter polled). Returns a stop function.
   */
  watch(onChange: (tenant: string, revision: number) => void): Promise<() => Promise<void>>;
  /** Every claim on objects of these scopes, by any target. */
  loadTargetObjects(scopes: string[]): Promise<ClaimedTargetObject[]>;
  /** Records (`add`) and drops (`remove`) `target`'s claims, in one transaction. */
  recordTargetObjects(target: string, changes: { add?: TargetObject[]; remove?: TargetObject[] }): Promise<void>;
  close(): Promise<void>;
}
