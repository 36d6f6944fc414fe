/**
 * The one migration set of both backends. Append only: a released migration never changes.
 * Where the backends differ (auto-increment keys), the difference is named here and nowhere else.
 */
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { StoreBackend } from './store.js';

/** The lower-case email of a User row's spec: as indexed by migration 0004 and as queried (the same expression, or the index is not used). */
export function userEmail(backend: StoreBackend) {
  return backend === 'postgres' ? sql<string>`lower(spec::jsonb ->> 'email')` : sql<string>`lower(json_extract(spec, '$.email'))`;
}

function migrations(backend: StoreBackend): Record<string, Migration> {
  // SQLite's rowid alias vs PostgreSQL's identity column: the only dialect difference in the schema.
  const id = (col: string) => (backend === 'postgres' ? sql`${sql.ref(col)} integer generated always as identity primary key` : sql`${sql.ref(col)} integer primary key autoincrement`);
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('tenants')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('objects')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('spec', 'text', (c) => c.notNull())
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('objects_pk', ['tenant', 'kind', 'name'])
          .execute();
        await sql`create table applies (${id('id')}, at text not null, actor text not null, source text not null, tenants text not null, summary text not null)`.execute(db);
        await sql`create table audit (${id('id')}, apply_id integer not null references applies(id), tenant text not null, kind text not null, name text not null, action text not null, before text, after text, at text not null)`.execute(db);
        await db.schema.createIndex('audit_tenant').on('audit').columns(['tenant', 'id']).execute();
        await db.schema.createIndex('audit_apply').on('audit').column('apply_id').execute();
      },
    },
    // Incremental reads (`loadTenantChanges`): each audit row records the tenant revision its
    // change made (null on rows written before this migration: a delta reaching back to them is
    // refused and the reader loads the whole tenant), and both tables are indexed by revision.
    '0002_change_revisions': {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('audit').addColumn('revision', 'integer').execute();
        await db.schema.createIndex('audit_tenant_revision').on('audit').columns(['tenant', 'revision']).execute();
        await db.schema.createIndex('objects_tenant_revision').on('objects').columns(['tenant', 'revision']).execute();
      },
    },
    // Orchestrator targets: the ids of what rpa-access created (or adopted) in an external
    // orchestrator, so that ownership is known by id, never guessed from a name. `scope` names
    // the id space (an Identity organization, an Orchestrator tenant URL); `target` the
    // Orchestrator object (`namespace/name`) that claims it: several targets may share an
    // organization, and an object is deleted only when no other target claims it.
    '0003_target_objects': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('target_objects')
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('external_id', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('target_objects_pk', ['scope', 'kind', 'external_id', 'target'])
          .execute();
        await db.schema.createIndex('target_objects_target').on('target_objects').column('target').execute();
      },
    },
    // Logins (contract section 7): one session per person (email in lower case) and tenant,
    // carrying the tenant revision its login made, as objects do, so the change feed and the
    // incremental read see it. Audit rows get the orchestrator-worded message of a login. Users
    // are found by email at each login: an index on the email inside the spec (JSON operators are
    // the second dialect difference).
    '0004_directory_sessions': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('sessions')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('email', 'text', (c) => c.notNull())
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('groups', 'text', (c) => c.notNull())
          .addColumn('started_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('provisioned_from', 'text')
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('sessions_pk', ['tenant', 'email'])
          .execute();
        await db.schema.createIndex('sessions_tenant_revision').on('sessions').columns(['tenant', 'revision']).execute();
        await db.schema.alterTable('audit').addColumn('message', 'text').execute();
        await sql`create index objects_user_email on objects (tenant, (${userEmail(backend)})) where kind = 'User'`.execute(db);
      },
    },
  };
}

/**
 * For readers that must not write (a read-only file, a replica, a SELECT-only role): what the
 * store's schema lacks of what this version reads. Reads kysely's bookkeeping table and nothing
 * else; throws when the store holds no rpa-access schema at all.
 */
export async function missingMigrations(db: Kysely<unknown>, backend: StoreBackend): Promise<string[]> {
  let applied: Set<string>;
  try {
    const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
    applied = new Set(rows.rows.map((r) => r.name));
  } catch (err) {
    if (/no such table|does not exist/i.test(err instanceof Error ? err.message : '')) {
      throw new Error('it holds no rpa-access store (no schema): give the path or URL of an existing store', { cause: err });
    }
    throw err;
  }
  return Object.keys(migrations(backend)).filter((name) => !applied.has(name));
}

/**
 * `schema`: the PostgreSQL schema the store lives in. Kysely must be told: its migrator looks for
 * its bookkeeping tables in every schema, and would find another store's.
 */
export async function migrate(db: Kysely<unknown>, backend: StoreBackend, options: { schema?: string; ownTransaction?: boolean } = {}): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(backend) };
  const migrator = new Migrator({
    db,
    provider,
    ...(options.schema ? { migrationTableSchema: options.schema } : {}),
    // false when the caller already holds the transaction (SQLite's cross-process write lock).
    disableTransactions: options.ownTransaction === false,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`store migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
