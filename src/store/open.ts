/**
 * Store selection (contract section 5): `--store URL`, else $RPA_ACCESS_STORE, else the embedded
 * store in ./.rpa-access/. A postgres:// URL selects PostgreSQL; anything else is a path.
 */
import path from 'node:path';
import type { Kysely } from 'kysely';
import { migrate, missingMigrations } from './migrations.js';
import { openPostgres, redactUrl } from './postgres.js';
import type { Database } from './schema.js';
import { openSqlite } from './sqlite.js';
import { SqlStore } from './sql-store.js';
import type { AccessStore } from './store.js';
import { StoreOpenError, resolveStoreUrl } from './location.js';

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** A directory gets `store.db` inside it; a file path is used as it is. */
function sqliteFile(location: string): string {
  if (location === ':memory:') return location;
  const stripped = location.replace(/^sqlite:(\/\/)?/, '');
  return /\.(db|sqlite3?)$/.test(stripped) ? path.resolve(stripped) : path.resolve(stripped, 'store.db');
}

export function describeStore(url: string): string {
  return isPostgresUrl(url) ? redactUrl(url) : `sqlite:${sqliteFile(url)}`;
}

export interface OpenOptions {
  /**
   * For commands that only read (check, permissions, serve, apply --dry-run): the store must
   * exist; it is opened read-only (SQLite `readonly`; PostgreSQL: no schema created, no
   * migration, so a SELECT-only role will do) and a schema older than this version reads is an
   * error that says so, never migrated.
   */
  readOnly?: boolean;
  /**
   * `serve`: mostly a reader, so as readOnly (must exist, never migrated, an older schema is
   * said), but on a connection that may write where the process may (logins record sessions).
   */
  existing?: boolean;
}

/** Opens (and, unless read-only, migrates) the store at `url`. Errors name the store without its credentials. */
export async function openStore(url: string = resolveStoreUrl(), options: OpenOptions = {}): Promise<AccessStore> {
  const description = describeStore(url);
  let opened: { db: Kysely<Database>; backend: ConstructorParameters<typeof SqlStore>[1]; schema?: string } | undefined;
  try {
    const readOnly = Boolean(options.readOnly);
    const reader = readOnly || Boolean(options.existing);
    opened = isPostgresUrl(url) ? await openPostgres(url, { readOnly: reader }) : openSqlite(sqliteFile(url), { readOnly, mustExist: reader });
    if (reader) {
      const missing = await missingMigrations(opened.db as unknown as Kysely<unknown>, opened.backend.name);
      if (missing.length > 0) {
        throw new Error(
          `its schema is older than this version reads (missing migration${missing.length === 1 ? '' : 's'} ${missing.join(', ')}); ` +
            'a reader never migrates: run a write once with a role that may (rpa-access apply, or the operator), then retry',
        );
      }
    } else {
      const { backend, schema } = opened;
      await backend.migrating(opened.db, (db, { ownTransaction }) => migrate(db as unknown as Kysely<unknown>, backend.name, { schema, ownTransaction }));
    }
    return new SqlStore(opened.db, opened.backend, description);
  } catch (err) {
    await opened?.db.destroy().catch(() => undefined);
    const reason = err instanceof Error ? err.message : String(err);
    // pg error messages can echo the connection string: never let a password through.
    throw new StoreOpenError(`cannot open store ${description}: ${reason.replaceAll(url, description)}`);
  }
}
