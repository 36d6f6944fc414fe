/**
 * The embedded backend: one SQLite file (WAL) through better-sqlite3. A writer takes the
 * database write lock with BEGIN IMMEDIATE, so concurrent applies from several processes
 * serialize (waiting up to the busy timeout) instead of failing half-way.
 */
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database } from './schema.js';
import type { Backend, Conn, SqlStore } from './sql-store.js';

/**
 * better-sqlite3 is synchronous: a busy wait inside SQLite would block the whole event loop. So
 * SQLite itself waits only briefly; longer waits for another process's write lock happen here,
 * asynchronously, and writers within this process queue on a per-file lock first.
 */
const BUSY_TIMEOUT_MS = 20;
/** The SQLite page cache per connection, in KiB (see openSqlite). */
const PAGE_CACHE_KIB = 2000;
const WRITE_LOCK_WAIT_MS = 30_000;
const POLL_MS = 100;

const processLocks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier writer of `file` in this process has finished. */
async function withProcessLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const previous = processLocks.get(file) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => undefined);
  processLocks.set(file, tail);
  try {
    return await run;
  } finally {
    if (processLocks.get(file) === tail) processLocks.delete(file);
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** BEGIN IMMEDIATE, retried asynchronously while another process holds the write lock. */
async function beginImmediate(conn: Conn): Promise<void> {
  const deadline = Date.now() + WRITE_LOCK_WAIT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    try {
      await sql`begin immediate`.execute(conn);
      return;
    } catch (err) {
      if (!isBusy(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * A WAL-mode store in a directory this process may not write (a read-only volume, another
 * user's files) cannot be opened in place when no writer is at work: SQLite must create the
 * `-shm` index next to it. With no `-wal` file, everything is in the main file: read a copy into
 * memory (marked as a rollback-journal database, which it then is) and read that. Anything else
 * is the original error.
 */
function readOnlySnapshot(file: string, err: unknown, options: { readOnly?: boolean; mustExist?: boolean }): BetterSqlite3.Database {
  const code = (err as { code?: string }).code ?? '';
  const readOnlyPlace = code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN';
  if (!(options.readOnly || options.mustExist) || !readOnlyPlace || file === ':memory:' || fs.existsSync(`${file}-wal`)) throw err;
  const bytes = fs.readFileSync(file);
  if (bytes.length >= 20) {
    bytes[18] = 1; // file format write version: legacy (no WAL)
    bytes[19] = 1; // read version
  }
  return new BetterSqlite3(bytes, { readonly: true });
}

export function openSqlite(file: string, options: { readOnly?: boolean; mustExist?: boolean } = {}): { db: Kysely<Database>; backend: Backend } {
  if (options.readOnly || options.mustExist) {
    // Reading only: the file must exist, and nothing is written, not even a pragma (a mounted
    // volume, a replica, an auditor's copy may be read-only).
    if (file !== ':memory:' && !fs.existsSync(file)) throw new Error('it does not exist (a command that only reads never creates a store: check --store or $RPA_ACCESS_STORE)');
  } else if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  let database: BetterSqlite3.Database;
  let snapshot = false;
  try {
    database = new BetterSqlite3(file, {
      timeout: BUSY_TIMEOUT_MS,
      ...(options.readOnly ? { readonly: true } : {}),
      ...(options.readOnly || options.mustExist ? { fileMustExist: true } : {}),
    });
    // Opening is lazy about the WAL index: read once, so a directory we may not write fails here.
    if (options.readOnly || options.mustExist) database.prepare('select count(*) from sqlite_master').get();
  } catch (err) {
    database = readOnlySnapshot(file, err, options);
    snapshot = true;
  }
  if (!options.readOnly && !snapshot) {
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
  }
  // SQLite's own page cache size (2 MiB), not the 16 MiB better-sqlite3 is built with: the store
  // keeps each tenant's state in memory already, so a larger cache would be a second copy of the
  // database in the operator's memory (7 MiB at 10,000 objects), and pages it drops are read again
  // from the OS's file cache. A connection setting: nothing is written to the file.
  if (!snapshot) database.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  let localCommits = 0;
  const timers = new Set<NodeJS.Timeout>();

  const backend: Backend = {
    name: 'sqlite',
    async writeTransaction<T>(kdb: Kysely<Database>, _tenants: string[], work: (conn: Conn) => Promise<T>): Promise<T> {
      return withProcessLock(file, () =>
        kdb.connection().execute(async (conn) => {
          await beginImmediate(conn);
          try {
            const result = await work(conn);
            await sql`commit`.execute(conn);
            localCommits++;
            return result;
          } catch (err) {
            await sql`rollback`.execute(conn).catch(() => undefined);
            throw err;
          }
        }),
      );
    },
    // kysely's migration lock is per connection, nothing between processes: two processes creating
    // one store would both read "nothing applied" and the second to commit would fail. So the
    // whole migration runs in one write transaction (BEGIN IMMEDIATE): the second waits, then
    // finds it all applied.
    async migrating(kdb: Kysely<Database>, work: (db: Kysely<Database>, options: { ownTransaction: boolean }) => Promise<void>): Promise<void> {
      await backend.writeTransaction(kdb, [], (conn) => work(conn, { ownTransaction: false }));
    },
    async notify() {
      // Other processes see commits through PRAGMA data_version; nothing to send.
    },
    async watch(store: SqlStore, onChange: (tenant: string, revision: number) => void) {
      // data_version changes when another connection commits; localCommits when this one does.
      // Only then is the tenants table read: a cheap change counter, polled.
      const dataVersion = () => Number(database.pragma('data_version', { simple: true }));
      let seenVersion = dataVersion();
      let seenLocal = localCommits;
      let known = await store.revisions();
      let busy = false;
      const timer = setInterval(() => {
        if (busy) return;
        const version = dataVersion();
        if (version === seenVersion && localCommits === seenLocal) return;
        seenVersion = version;
        seenLocal = localCommits;
        busy = true;
        store
          .revisions()
          .then((now) => {
            for (const [tenant, revision] of now) if (known.get(tenant) !== revision) onChange(tenant, revision);
            known = now;
          })
          .catch(() => undefined)
          .finally(() => (busy = false));
      }, POLL_MS);
      timer.unref();
      timers.add(timer);
      return async () => {
        clearInterval(timer);
        timers.delete(timer);
      };
    },
    async close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
    },
  };
  return { db, backend };
}
