/** Tables of the access store, as Kysely sees them. Times are ISO-8601 text on both backends. */
import type { Generated } from 'kysely';

export interface TenantsTable {
  name: string;
  /** Bumped by every committed change of the tenant: the cheap change counter. */
  revision: number;
  updated_at: string;
}

export interface ObjectsTable {
  tenant: string;
  kind: string;
  name: string;
  /** The spec as canonical JSON. */
  spec: string;
  origin: string;
  /** Tenant revision of the last change to this object. */
  revision: number;
  updated_at: string;
}

export interface AppliesTable {
  id: Generated<number>;
  at: string;
  actor: string;
  source: string;
  tenants: string;
  summary: string;
}

export interface AuditTable {
  id: Generated<number>;
  apply_id: number;
  tenant: string;
  kind: string;
  name: string;
  action: string;
  before: string | null;
  after: string | null;
  at: string;
  /** Tenant revision this change made; null on rows older than migration 0002. */
  revision: number | null;
  /** What a login did, worded as the orchestrator's audit log (migration 0004); null otherwise. */
  message: string | null;
}

/** Login sessions (contract section 7), one per person and tenant. */
export interface SessionsTable {
  tenant: string;
  /** Email in lower case. */
  email: string;
  user_name: string;
  /** JSON `[{name, id}]`: the directory Groups matched. */
  groups: string;
  started_at: string;
  expires_at: string;
  /** JSON list of group names the user was provisioned from, or null. */
  provisioned_from: string | null;
  revision: number;
}

/** What an Orchestrator target created (or adopted) in the external orchestrator, by id. */
export interface TargetObjectsTable {
  scope: string;
  kind: string;
  external_id: string;
  target: string;
  name: string;
  created_at: string;
}

export interface Database {
  target_objects: TargetObjectsTable;
  tenants: TenantsTable;
  objects: ObjectsTable;
  applies: AppliesTable;
  audit: AuditTable;
  sessions: SessionsTable;
}
