/**
 * The access store: where the desired state of every tenant lives, durable, with an audit trail.
 * Two backends share one schema, one migration set and one code path (Kysely): the embedded
 * SQLite store (default, `./.rpa-access/`) and PostgreSQL (`postgres://...`).
 *
 * Every apply runs in one transaction that holds the tenants' write lock while it loads the
 * current state, plans and writes: concurrent applies serialize, and a refused apply writes
 * nothing at all.
 */
import type { Violation } from '../model/invariants.js';
import type { DesiredState, TenantPlan } from '../model/plan.js';
import type { AnyEntry, TenantState } from '../model/types.js';

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
  action: 'created' | 'updated' | 'deleted';
  before: AnyEntry | null;
  after: AnyEntry | null;
  at: string;
  actor: string;
  source: string;
}

export interface TenantSnapshot {
  state: TenantState;
  /** Increases with every committed change of the tenant. */
  revision: number;
}

export interface AccessStore {
  readonly backend: StoreBackend;
  /** A description safe to log (no credentials). */
  readonly description: string;
  /** Plans and applies the desired states of several tenants in one transaction. */
  apply(desired: DesiredState[], options?: ApplyOptions): Promise<ApplyResult>;
  /** A tenant's current state, or undefined when the store has never seen it. */
  loadTenant(tenant: string): Promise<TenantSnapshot | undefined>;
  /** Every tenant and its revision: cheap, used to notice changes. */
  revisions(): Promise<Map<string, number>>;
  audit(query?: { tenant?: string; applyId?: number; limit?: number }): Promise<AuditRecord[]>;
  /**
   * Calls `onChange` after changes committed by any process (PostgreSQL: LISTEN/NOTIFY sent in
   * the writing transaction; SQLite: a cheap change counter polled). Returns a stop function.
   */
  watch(onChange: (tenant: string, revision: number) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
