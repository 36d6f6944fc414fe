// jest globalSetup: a PostgreSQL for the suites that need one, once per run.
//
// DATABASE_URL set (CI, a developer's server): used as it is, nothing started. Unset, and a
// Docker engine answers: a PostgreSQL container is started through testcontainers and its URL
// becomes DATABASE_URL for every test (test/support/stores.ts reads it, as everything else);
// global-teardown.mjs stops it. Unset and no Docker: the PostgreSQL suites skip, and this says
// why in one line. Plain JavaScript, so that it needs no transform.

import { randomBytes } from 'node:crypto';

const IMAGE = 'postgres:15-alpine';

// jest.config.js names it in the projects that open PostgreSQL stores: it runs only when a test
// of one of them is selected, once per run.
export default async function globalSetup() {
  // The schemas of this run's PostgreSQL stores (test/support/stores.ts): a prefix of its own, so
  // that global-teardown.mjs drops them and nothing of another run on the same server.
  process.env.RPA_ACCESS_TEST_SCHEMA_PREFIX ??= `t_${randomBytes(3).toString('hex')}_`;
  if (process.env.DATABASE_URL) return;
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch (err) {
    if (process.env.CI) throw new Error(`DATABASE_URL is not set and no Docker engine answers (${err.message}): CI must run the PostgreSQL tests`, { cause: err });
    console.warn('PostgreSQL tests skipped: DATABASE_URL is not set and no Docker engine answers (set DATABASE_URL, or start Docker for a throw-away PostgreSQL container).');
    return;
  }
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const started = Date.now();
  const container = await new PostgreSqlContainer(IMAGE).withDatabase('test').start();
  process.env.DATABASE_URL = container.getConnectionUri();
  globalThis.__rpaAccessPostgres = container;
  console.warn(`PostgreSQL tests use a ${IMAGE} container started by testcontainers in ${((Date.now() - started) / 1000).toFixed(1)} s (DATABASE_URL is not set).`);
}
