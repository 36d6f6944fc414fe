/**
 * Store selection (contract section 5): `--store URL`, else $RPA_ACCESS_STORE, else the embedded
 * store in ./.rpa-access/. A postgres:// URL selects PostgreSQL; anything else is a path.
 */
import path from 'node:path';
import type { Kysely } from 'kysely';
import { migrate } from './migrations.js';
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

/** Opens (and migrates) the store at `url`. Errors name the store without its credentials. */
export async function openStore(url: string = resolveStoreUrl()): Promise<AccessStore> {
  const description = describeStore(url);
  let opened: { db: Kysely<Database>; backend: ConstructorParameters<typeof SqlStore>[1]; schema?: string } | undefined;
  try {
    opened = isPostgresUrl(url) ? await openPostgres(url) : openSqlite(sqliteFile(url));
    await migrate(opened.db as unknown as Kysely<unknown>, opened.backend.name, opened.schema);
    return new SqlStore(opened.db, opened.backend, description);
  } catch (err) {
    await opened?.db.destroy().catch(() => undefined);
    const reason = err instanceof Error ? err.message : String(err);
    // pg error messages can echo the connection string: never let a password through.
    throw new StoreOpenError(`cannot open store ${description}: ${reason.replaceAll(url, description)}`);
  }
}
