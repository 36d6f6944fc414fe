// jest globalTeardown: drops the PostgreSQL schemas this run's stores created (their prefix is
// set by global-setup.mjs), then stops the PostgreSQL container global-setup.mjs started, if any.
export default async function globalTeardown() {
  await dropTestSchemas();
  const container = globalThis.__rpaAccessPostgres;
  if (!container) return;
  globalThis.__rpaAccessPostgres = undefined;
  await container.stop();
}

/**
 * A developer's or CI's server keeps running after the suite: without this, every run would
 * leave dozens of store schemas behind (the store suite alone had 37 at once). A failure to drop
 * is said, not fatal: the tests have passed or failed already.
 */
async function dropTestSchemas() {
  const prefix = process.env.RPA_ACCESS_TEST_SCHEMA_PREFIX;
  if (!process.env.DATABASE_URL || !prefix) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  try {
    await client.connect();
    const pattern = `${prefix.replace(/[\\_%]/g, '\\$&')}%`;
    const { rows } = await client.query('select schema_name from information_schema.schemata where schema_name like $1', [pattern]);
    for (const { schema_name: name } of rows) await client.query(`drop schema "${name.replace(/"/g, '""')}" cascade`);
  } catch (err) {
    console.warn(`the test stores' PostgreSQL schemas (${prefix}*) were not all dropped: ${err.message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
