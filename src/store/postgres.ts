/**
 * The PostgreSQL backend. Writers serialize per tenant with transaction-scoped advisory locks
 * (taken in name order, so two multi-tenant applies cannot deadlock); every commit sends a
 * NOTIFY inside its transaction, so listeners hear of it exactly when it becomes visible.
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import type { Backend, Conn, SqlStore } from './sql-store.js';

const CHANNEL = 'rpa_access_changes';

export interface PostgresTarget {
  /** Connection string without our own `schema` parameter. */
  connectionString: string;
  schema: string | undefined;
}

/** Splits our `?schema=NAME` parameter off a postgres:// URL. */
function parsePostgresUrl(url: string): PostgresTarget {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`invalid schema name ${JSON.stringify(schema)} in the store URL: lowercase letters, digits and _`);
  }
  return { connectionString: u.toString(), schema };
}

/** The URL with its password removed: safe for logs, status and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}

function clientConfig(target: PostgresTarget): pg.ClientConfig {
  return {
    connectionString: target.connectionString,
    ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}),
    connectionTimeoutMillis: 10_000,
  };
}

export async function openPostgres(url: string, options: { readOnly?: boolean } = {}): Promise<{ db: Kysely<Database>; backend: Backend; schema: string }> {
  const target = parsePostgresUrl(url);
  // A reader creates nothing: a SELECT-only role may read a store it could not create.
  if (target.schema && !options.readOnly) {
    const admin = new pg.Client({ connectionString: target.connectionString, connectionTimeoutMillis: 10_000 });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${target.schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({ ...clientConfig(target), max: 10 });
  // A client losing its server must not crash the process. The pool handles idle clients;
  // a client checked out for a transaction has no listener while our code runs between two
  // queries, so give every client one. The next query on it fails and the pool drops it.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const listeners = new Set<() => Promise<void>>();
  const scope = target.schema ?? 'public';

  const backend: Backend = {
    name: 'postgres',
    async writeTransaction<T>(kdb: Kysely<Database>, tenants: string[], work: (conn: Conn) => Promise<T>): Promise<T> {
      return kdb.connection().execute(async (conn) => {
        await sql`begin`.execute(conn);
        try {
          for (const t of [...tenants].sort()) {
            await sql`select pg_advisory_xact_lock(hashtext(${`rpa-access/${scope}/${t}`}))`.execute(conn);
          }
          const result = await work(conn);
          await sql`commit`.execute(conn);
          return result;
        } catch (err) {
          await sql`rollback`.execute(conn).catch(() => undefined);
          throw err;
        }
      });
    },
    // kysely's migrator holds a PostgreSQL advisory lock in its own transaction: enough.
    async migrating(db: Kysely<Database>, work: (db: Kysely<Database>, options: { ownTransaction: boolean }) => Promise<void>) {
      await work(db, { ownTransaction: true });
    },
    async notify(conn: Conn, tenant: string, revision: number) {
      await sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ schema: scope, tenant, revision })})`.execute(conn);
    },
    async watch(store: SqlStore, onChange: (tenant: string, revision: number) => void) {
      let stopped = false;
      let client: pg.Client | undefined;
      const known = await store.revisions();
      let retryMs = 100;
      const emit = (tenant: string, revision: number) => {
        if ((known.get(tenant) ?? 0) >= revision) return;
        known.set(tenant, revision);
        onChange(tenant, revision);
      };
      // After a (re)connect, notifications sent while we were away are lost: compare revisions.
      const catchUp = async () => {
        for (const [tenant, revision] of await store.revisions()) emit(tenant, revision);
      };
      const connect = async (): Promise<void> => {
        if (stopped) return;
        const c = new pg.Client(clientConfig(target));
        c.on('notification', (msg) => {
          try {
            const p = JSON.parse(msg.payload ?? '') as { schema: string; tenant: string; revision: number };
            if (p.schema === scope) emit(p.tenant, p.revision);
          } catch {
            /* not ours */
          }
        });
        const reconnect = () => {
          if (stopped || client !== c) return;
          client = undefined;
          c.end().catch(() => undefined);
          setTimeout(() => void connect(), retryMs).unref();
          retryMs = Math.min(retryMs * 2, 5_000);
        };
        c.on('error', reconnect);
        c.on('end', reconnect);
        client = c;
        try {
          await c.connect();
          await c.query(`listen ${CHANNEL}`);
          retryMs = 100;
          await catchUp();
        } catch {
          reconnect();
        }
      };
      await connect();
      const stop = async () => {
        stopped = true;
        listeners.delete(stop);
        const c = client;
        client = undefined;
        await c?.end().catch(() => undefined);
      };
      listeners.add(stop);
      return stop;
    },
    async close() {
      for (const stop of [...listeners]) await stop();
    },
  };
  return { db, backend, schema: scope };
}
