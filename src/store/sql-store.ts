/**
 * The store over Kysely: the same queries for SQLite and PostgreSQL. What differs between them
 * (how a writer takes the tenants' lock, how other processes learn of a commit) is the small
 * `Backend` strategy passed in by open.ts.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Kind } from '../model/catalog.js';
import { planTenant, type DesiredState, type TenantPlan } from '../model/plan.js';
import { DEFAULT_SESSION_TTL_MS, planLogin, provisionedUserName, type LoginRequest, type LoginView } from '../model/directory.js';
import { canonicalJson, tenantFromEntries } from '../model/tenant.js';
import type { AnyEntry, Entry, Session } from '../model/types.js';
import { userEmail } from './migrations.js';
import type { Database, SessionsTable } from './schema.js';
import type {
  AccessStore, ApplyOptions, ApplyResult, AuditRecord, ClaimedTargetObject, LoadChangesOptions, LoginOptions, LoginResult, StoreBackend, TargetObject,
  TenantChanges, TenantSnapshot,
} from './store.js';

/** A connection-bound query interface: a transaction or the connection holding one. */
export type Conn = Kysely<Database> | Transaction<Database>;

export interface Backend {
  readonly name: StoreBackend;
  /**
   * Runs `work` in one write transaction that holds the write lock of `tenants` from its first
   * statement, so the state it reads cannot change before it commits.
   */
  writeTransaction<T>(db: Kysely<Database>, tenants: string[], work: (conn: Conn) => Promise<T>): Promise<T>;
  /**
   * Runs the schema migrations (`work`, on the database or connection to migrate through, and told
   * whether to open its own transaction) so that two processes opening one new store never
   * migrate it at once.
   */
  migrating(db: Kysely<Database>, work: (db: Kysely<Database>, options: { ownTransaction: boolean }) => Promise<void>): Promise<void>;
  /** Tells other processes, inside the writing transaction, that a tenant changed. */
  notify(conn: Conn, tenant: string, revision: number): Promise<void>;
  watch(store: SqlStore, onChange: (tenant: string, revision: number) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const CHUNK = 200;

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

function parseEntry(row: { kind: string; name: string; spec: string; origin: string }): AnyEntry {
  return { kind: row.kind as Kind, name: row.name, spec: JSON.parse(row.spec), origin: row.origin } as AnyEntry;
}

function parseSession(row: Pick<SessionsTable, 'email' | 'user_name' | 'groups' | 'started_at' | 'expires_at' | 'provisioned_from'>): Session {
  return {
    email: row.email, user: row.user_name, groups: JSON.parse(row.groups) as Session['groups'],
    startedAt: row.started_at, expiresAt: row.expires_at,
    ...(row.provisioned_from === null ? {} : { provisionedFrom: JSON.parse(row.provisioned_from) as string[] }),
  };
}

const SESSION_COLUMNS = ['email', 'user_name', 'groups', 'started_at', 'expires_at', 'provisioned_from'] as const;

export class SqlStore implements AccessStore {
  /** Tenant states by revision: reused while the revision in the database is the same. */
  private readonly cache = new Map<string, TenantSnapshot>();

  constructor(
    readonly db: Kysely<Database>,
    private readonly backendImpl: Backend,
    readonly description: string,
  ) {}

  get backend(): StoreBackend {
    return this.backendImpl.name;
  }

  private async revisionOf(conn: Conn, tenant: string): Promise<number | undefined> {
    const row = await conn.selectFrom('tenants').select('revision').where('name', '=', tenant).executeTakeFirst();
    return row ? Number(row.revision) : undefined;
  }

  private async load(conn: Conn, tenant: string): Promise<TenantSnapshot | undefined> {
    const revision = await this.revisionOf(conn, tenant);
    if (revision === undefined) return undefined;
    const cached = this.cache.get(tenant);
    if (cached && cached.revision === revision) return cached;
    const rows = await conn.selectFrom('objects').select(['kind', 'name', 'spec', 'origin']).where('tenant', '=', tenant).execute();
    const state = tenantFromEntries(tenant, rows.map(parseEntry));
    const sessions = await conn.selectFrom('sessions').select(SESSION_COLUMNS).where('tenant', '=', tenant).execute();
    if (sessions.length > 0) state.sessions = new Map(sessions.map((r) => [r.email, parseSession(r)]));
    const snapshot = { state, revision };
    this.cache.set(tenant, snapshot);
    return snapshot;
  }

  /**
   * Runs reads in one snapshot, so that the revision and the rows read agree even while writers
   * commit: PostgreSQL `repeatable read` (a writer holds its tenant's advisory lock until it
   * commits, so a snapshot holds a prefix of each tenant's revisions, whole); SQLite a deferred
   * transaction (in WAL mode its snapshot is taken at the first read and kept to the end).
   */
  private read<T>(work: (conn: Transaction<Database>) => Promise<T>): Promise<T> {
    const tx = this.db.transaction();
    return (this.backend === 'postgres' ? tx.setIsolationLevel('repeatable read').setAccessMode('read only') : tx).execute(work);
  }

  async loadTenant(tenant: string): Promise<TenantSnapshot | undefined> {
    const cached = this.cache.get(tenant);
    if (cached && (await this.revisionOf(this.db, tenant)) === cached.revision) return cached;
    return this.read((conn) => this.load(conn, tenant));
  }

  async loadTenantChanges(tenant: string, since: number, options: LoadChangesOptions = {}): Promise<TenantChanges | undefined> {
    const changes = await this.read(async (conn): Promise<TenantChanges | undefined> => {
      const revision = await this.revisionOf(conn, tenant);
      if (revision === undefined || !Number.isInteger(since) || since < 0 || since > revision) return undefined;
      if (since === revision) return { since, revision, upserts: [], deletes: [] };
      // Every revision writes at least one audit row carrying it: all of them must be there,
      // else part of the history predates migration 0002 (or was removed) and deletes could be missed.
      const counts = await conn
        .selectFrom('audit')
        .select((eb) => [eb.fn.countAll().as('rows'), eb.fn.count('revision').distinct().as('revisions')])
        .where('tenant', '=', tenant)
        .where('revision', '>', since)
        .executeTakeFirstOrThrow();
      if (Number(counts.revisions) !== revision - since) return undefined;
      if (options.limit !== undefined && Number(counts.rows) > options.limit) return undefined;
      const rows = await conn
        .selectFrom('objects')
        .select(['kind', 'name', 'spec', 'origin'])
        .where('tenant', '=', tenant)
        .where('revision', '>', since)
        .execute();
      const upserts = rows.map(parseEntry);
      const present = new Set(upserts.map((e) => `${e.kind}/${e.name}`));
      const deleted = await conn
        .selectFrom('audit')
        .select(['kind', 'name'])
        .distinct()
        .where('tenant', '=', tenant)
        .where('revision', '>', since)
        .where('action', '=', 'deleted')
        .execute();
      // Deleted and created again since: the object's current row (in `upserts`) says it all.
      const deletes = deleted.filter((d) => !present.has(`${d.kind}/${d.name}`)).map((d) => ({ kind: d.kind as Kind, name: d.name }));
      const sessions = await conn.selectFrom('sessions').select(SESSION_COLUMNS).where('tenant', '=', tenant).where('revision', '>', since).execute();
      return { since, revision, upserts, deletes, ...(sessions.length > 0 ? { sessions: sessions.map(parseSession) } : {}) };
    });
    // A whole-tenant state cached at an older revision will not be reused by this reader: free it.
    const cached = this.cache.get(tenant);
    if (changes && cached && cached.revision < changes.revision) this.cache.delete(tenant);
    return changes;
  }

  async objectTimes(tenant: string): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('objects').select(['kind', 'name', 'updated_at']).where('tenant', '=', tenant).execute();
    return new Map(rows.map((r) => [`${r.kind}/${r.name}`, r.updated_at]));
  }

  async revisions(): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('tenants').select(['name', 'revision']).execute();
    return new Map(rows.map((r) => [r.name, Number(r.revision)]));
  }

  private async planAll(conn: Conn, desired: DesiredState[]): Promise<{ plans: TenantPlan[]; revisions: Map<string, number> }> {
    const plans: TenantPlan[] = [];
    const revisions = new Map<string, number>();
    for (const d of desired) {
      const snapshot = await this.load(conn, d.tenant);
      revisions.set(d.tenant, snapshot?.revision ?? 0);
      plans.push(planTenant(snapshot?.state, d));
    }
    return { plans, revisions };
  }

  async apply(desired: DesiredState[], options: ApplyOptions = {}): Promise<ApplyResult> {
    const merged = mergeByTenant(desired);
    const tenants = merged.map((d) => d.tenant);
    if (options.dryRun) {
      const { plans, revisions } = await this.planAll(this.db, merged);
      return { applyId: null, plans, violations: plans.flatMap((p) => p.violations), written: false, revisions };
    }
    const committed: { tenant: string; revision: number; plan: TenantPlan }[] = [];
    const result = await this.backendImpl.writeTransaction(this.db, tenants, async (conn): Promise<ApplyResult> => {
      const { plans, revisions } = await this.planAll(conn, merged);
      const violations = plans.flatMap((p) => p.violations);
      const changed = plans.filter((p) => p.changes.length > 0);
      if (violations.length > 0 || changed.length === 0) {
        return { applyId: null, plans, violations, written: false, revisions };
      }
      const at = new Date().toISOString();
      const summary = { created: 0, updated: 0, deleted: 0 };
      for (const p of changed) for (const c of p.changes) summary[c.action]++;
      const applyRow = await conn
        .insertInto('applies')
        .values({ at, actor: options.actor ?? 'unknown', source: options.source ?? 'api', tenants: changed.map((p) => p.tenant).join(','), summary: JSON.stringify(summary) })
        .returning('id')
        .executeTakeFirstOrThrow();
      const applyId = Number(applyRow.id);
      for (const plan of changed) {
        const revision = await this.bumpRevision(conn, plan.tenant, at);
        revisions.set(plan.tenant, revision);
        await this.writeChanges(conn, plan, revision, at, applyId);
        await this.backendImpl.notify(conn, plan.tenant, revision);
        committed.push({ tenant: plan.tenant, revision, plan });
      }
      return { applyId, plans, violations, written: true, revisions };
    });
    // Only after the commit: the cache must never hold a state the database does not.
    for (const c of committed) this.cache.set(c.tenant, { state: c.plan.next, revision: c.revision });
    return result;
  }

  private async bumpRevision(conn: Conn, tenant: string, at: string): Promise<number> {
    const row = await conn
      .insertInto('tenants')
      .values({ name: tenant, revision: 1, updated_at: at })
      .onConflict((oc) => oc.column('name').doUpdateSet({ revision: sql<number>`tenants.revision + 1`, updated_at: at }))
      .returning('revision')
      .executeTakeFirstOrThrow();
    return Number(row.revision);
  }

  private async writeChanges(conn: Conn, plan: TenantPlan, revision: number, at: string, applyId: number): Promise<void> {
    const upserts = plan.changes.filter((c) => c.after).map((c) => c.after!);
    const deletes = plan.changes.filter((c) => c.action === 'deleted');
    for (const part of chunks(upserts)) {
      await conn
        .insertInto('objects')
        .values(part.map((e) => ({ tenant: plan.tenant, kind: e.kind, name: e.name, spec: canonicalJson(e.spec), origin: e.origin, revision, updated_at: at })))
        .onConflict((oc) =>
          oc.columns(['tenant', 'kind', 'name']).doUpdateSet((eb) => ({
            spec: eb.ref('excluded.spec'),
            origin: eb.ref('excluded.origin'),
            revision: eb.ref('excluded.revision'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
    for (const c of deletes) {
      await conn.deleteFrom('objects').where('tenant', '=', plan.tenant).where('kind', '=', c.kind).where('name', '=', c.name).execute();
    }
    for (const part of chunks(plan.changes)) {
      await conn
        .insertInto('audit')
        .values(part.map((c) => ({
          apply_id: applyId, tenant: plan.tenant, kind: c.kind, name: c.name, action: c.action,
          before: c.before ? canonicalJson(c.before) : null,
          after: c.after ? canonicalJson(c.after) : null,
          at,
          revision,
        })))
        .execute();
    }
  }

  async login(tenant: string, request: LoginRequest, options: LoginOptions = {}): Promise<LoginResult> {
    return this.backendImpl.writeTransaction(this.db, [tenant], async (conn): Promise<LoginResult> => {
      if ((await this.revisionOf(conn, tenant)) === undefined) return { refused: `unknown tenant ${JSON.stringify(tenant)}`, unknownTenant: true };
      const plan = planLogin(await this.loginView(conn, tenant, request), request, options.now ?? Date.now(), options.ttlMs ?? DEFAULT_SESSION_TTL_MS);
      if (plan.refused !== undefined) return { refused: plan.refused };
      const { user, session } = plan;
      const at = session.startedAt;
      const applyRow = await conn
        .insertInto('applies')
        .values({
          at, actor: options.actor ?? 'unknown', source: options.source ?? 'login', tenants: tenant,
          summary: JSON.stringify({ created: plan.provisioned ? 1 : 0, updated: 0, deleted: 0, logins: 1 }),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const applyId = Number(applyRow.id);
      const revision = await this.bumpRevision(conn, tenant, at);
      if (plan.provisioned) {
        await conn
          .insertInto('objects')
          .values({ tenant, kind: 'User', name: user.name, spec: canonicalJson(user.spec), origin: user.origin, revision, updated_at: at })
          .execute();
      }
      const row = {
        user_name: session.user, groups: JSON.stringify(session.groups), started_at: session.startedAt, expires_at: session.expiresAt,
        provisioned_from: session.provisionedFrom ? JSON.stringify(session.provisionedFrom) : null, revision,
      };
      await conn
        .insertInto('sessions')
        .values({ tenant, email: session.email, ...row })
        .onConflict((oc) => oc.columns(['tenant', 'email']).doUpdateSet(row))
        .execute();
      const audit = plan.messages.map((message, i) => ({
        apply_id: applyId, tenant, kind: 'User', name: user.name, at, revision, message,
        ...(plan.provisioned && i === 0 ? { action: 'created', before: null, after: canonicalJson(user) } : { action: 'login', before: null, after: null }),
      }));
      await conn.insertInto('audit').values(audit).execute();
      await this.backendImpl.notify(conn, tenant, revision);
      return { user, provisioned: plan.provisioned, session, revision };
    });
  }

  /** What a login reads of a tenant: a few indexed rows, never the whole tenant. */
  private async loginView(conn: Conn, tenant: string, request: LoginRequest): Promise<LoginView> {
    const email = request.email.toLowerCase();
    const userRow = await conn
      .selectFrom('objects')
      .select(['kind', 'name', 'spec', 'origin'])
      .where('tenant', '=', tenant)
      .where('kind', '=', 'User')
      .where(userEmail(this.backend), '=', email)
      .executeTakeFirst();
    const groups = await conn
      .selectFrom('objects')
      .select(['kind', 'name', 'spec', 'origin'])
      .where('tenant', '=', tenant)
      .where('kind', '=', 'Group')
      .where('spec', 'like', '%"directory":{%')
      .execute();
    const directoryGroups = new Map<string, Entry<'Group'>>();
    for (const g of groups.map(parseEntry) as Entry<'Group'>[]) if (g.spec.directory) directoryGroups.set(g.spec.directory.id.toLowerCase(), g);
    const sessionRow = await conn.selectFrom('sessions').select(SESSION_COLUMNS).where('tenant', '=', tenant).where('email', '=', email).executeTakeFirst();
    // Names a provisioned user might take (only asked when nobody has the email): the derived
    // name and its first suffixed forms, by primary key; all taken (rare), every suffixed form.
    const taken = new Set<string>();
    if (!userRow) {
      const base = provisionedUserName(email, () => false);
      const candidates = [base, ...Array.from({ length: 31 }, (_, i) => `${base}-${i + 2}`)];
      const users = conn.selectFrom('objects').select('name').where('tenant', '=', tenant).where('kind', '=', 'User');
      for (const r of await users.where('name', 'in', candidates).execute()) taken.add(r.name);
      if (taken.size === candidates.length) {
        for (const r of await users.where('name', 'like', `${base}-%`).execute()) taken.add(r.name);
      }
    }
    return {
      tenant,
      userByEmail: () => (userRow ? (parseEntry(userRow) as Entry<'User'>) : undefined),
      userExists: (name) => taken.has(name),
      directoryGroups,
      session: () => (sessionRow ? parseSession(sessionRow) : undefined),
    };
  }

  async audit(query: { tenant?: string; applyId?: number; limit?: number } = {}): Promise<AuditRecord[]> {
    let q = this.db
      .selectFrom('audit')
      .innerJoin('applies', 'applies.id', 'audit.apply_id')
      .select(['audit.id', 'audit.apply_id', 'audit.tenant', 'audit.kind', 'audit.name', 'audit.action', 'audit.before', 'audit.after', 'audit.at', 'audit.message', 'applies.actor', 'applies.source'])
      .orderBy('audit.id', 'asc');
    if (query.tenant !== undefined) q = q.where('audit.tenant', '=', query.tenant);
    if (query.applyId !== undefined) q = q.where('audit.apply_id', '=', query.applyId);
    if (query.limit !== undefined) q = q.limit(query.limit);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: Number(r.id), applyId: Number(r.apply_id), tenant: r.tenant, kind: r.kind, name: r.name,
      action: r.action as AuditRecord['action'],
      before: r.before === null ? null : (JSON.parse(r.before) as AnyEntry),
      after: r.after === null ? null : (JSON.parse(r.after) as AnyEntry),
      at: r.at, actor: r.actor, source: r.source,
      ...(r.message === null ? {} : { message: r.message }),
    }));
  }

  watch(onChange: (tenant: string, revision: number) => void): Promise<() => Promise<void>> {
    return this.backendImpl.watch(this, onChange);
  }

  async loadTargetObjects(scopes: string[]): Promise<ClaimedTargetObject[]> {
    if (scopes.length === 0) return [];
    const rows = await this.db.selectFrom('target_objects').select(['scope', 'kind', 'external_id', 'target', 'name']).where('scope', 'in', scopes).execute();
    return rows.map((r) => ({ scope: r.scope, kind: r.kind, externalId: r.external_id, target: r.target, name: r.name }));
  }

  async recordTargetObjects(target: string, changes: { add?: TargetObject[]; remove?: TargetObject[] }): Promise<void> {
    const add = changes.add ?? [];
    const remove = changes.remove ?? [];
    if (add.length === 0 && remove.length === 0) return;
    const at = new Date().toISOString();
    await this.db.transaction().execute(async (tx) => {
      for (const part of chunks(add)) {
        await tx
          .insertInto('target_objects')
          .values(part.map((o) => ({ scope: o.scope, kind: o.kind, external_id: o.externalId, target, name: o.name, created_at: at })))
          .onConflict((oc) => oc.columns(['scope', 'kind', 'external_id', 'target']).doUpdateSet((eb) => ({ name: eb.ref('excluded.name') })))
          .execute();
      }
      for (const o of remove) {
        await tx.deleteFrom('target_objects').where('scope', '=', o.scope).where('kind', '=', o.kind).where('external_id', '=', o.externalId).where('target', '=', target).execute();
      }
    });
  }

  async close(): Promise<void> {
    await this.backendImpl.close();
    await this.db.destroy();
  }
}

/** Several documents sets naming the same tenant become one desired state (one plan per tenant). */
function mergeByTenant(desired: DesiredState[]): DesiredState[] {
  const byTenant = new Map<string, DesiredState>();
  for (const d of desired) {
    const have = byTenant.get(d.tenant);
    if (!have) byTenant.set(d.tenant, { ...d, upserts: [...d.upserts], deletes: [...(d.deletes ?? [])] });
    else {
      have.upserts.push(...d.upserts);
      have.deletes!.push(...(d.deletes ?? []));
      have.prune = Boolean(have.prune || d.prune);
    }
  }
  return [...byTenant.values()].sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
}
