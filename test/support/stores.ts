/** Stores for tests: a fresh SQLite file per call, and a fresh PostgreSQL schema when DATABASE_URL is set (see storeFactories). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../../src/store/open.js';
import type { AccessStore } from '../../src/store/store.js';

export interface StoreFactory {
  name: 'sqlite' | 'postgres';
  /** A URL for a new, empty store (the same URL opened twice shares the data). */
  newUrl(): string;
  open(url?: string): Promise<AccessStore>;
}

let counter = 0;
const unique = () => `${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`;

/**
 * The prefix of the PostgreSQL schemas this run creates: jest's global setup gives each run its
 * own (test/support/global-setup.mjs) and its teardown drops them, so the shared server keeps
 * nothing of a finished run and two runs on one server never drop each other's schemas.
 */
const schemaPrefix = () => process.env.RPA_ACCESS_TEST_SCHEMA_PREFIX ?? 't_';

export const sqliteFactory: StoreFactory = {
  name: 'sqlite',
  newUrl: () => fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-test-')),
  open(url) {
    return openStore(url ?? this.newUrl());
  },
};

export const postgresFactory: StoreFactory | undefined = process.env.DATABASE_URL
  ? {
      name: 'postgres',
      newUrl: () => {
        const u = new URL(process.env.DATABASE_URL!);
        u.searchParams.set('schema', `${schemaPrefix()}${unique()}`);
        return u.toString();
      },
      open(url) {
        return openStore(url ?? this.newUrl());
      },
    }
  : undefined;

/**
 * Both backends where PostgreSQL is configured; SQLite alone otherwise. DATABASE_URL is the one
 * switch: given by CI or a developer, or set by jest's global setup (test/support/global-setup.mjs)
 * to a testcontainers PostgreSQL when Docker answers; that setup also says, once per run, why the
 * PostgreSQL suites skip when neither is there.
 */
export const storeFactories: StoreFactory[] = postgresFactory ? [sqliteFactory, postgresFactory] : [sqliteFactory];
// CI must prove both backends: a missing DATABASE_URL there is a configuration error, not a skip.
if (!postgresFactory && process.env.CI) throw new Error('DATABASE_URL must be set in CI: the store tests run on PostgreSQL too');
