// jest globalTeardown: stops the PostgreSQL container global-setup.mjs started, if it started one.
export default async function globalTeardown() {
  const container = globalThis.__rpaAccessPostgres;
  if (!container) return;
  globalThis.__rpaAccessPostgres = undefined;
  await container.stop();
}
