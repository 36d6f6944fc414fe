// jest in ESM mode: @kubernetes/client-node 1.x is ESM-only, so the whole project is ESM.
// Run through `npm run test:jest`, which sets NODE_OPTIONS=--experimental-vm-modules.
const common = {
  preset: 'ts-jest/presets/default-esm',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node',
};

/**
 * The projects whose tests open PostgreSQL stores: DATABASE_URL as given, else a testcontainers
 * PostgreSQL when Docker answers, else one line saying why their PostgreSQL tests skip
 * (test/support/global-setup.mjs). jest runs a global setup once per run, and only when a test of
 * a project naming it is selected: `npm run test:unit` starts nothing.
 */
const withPostgres = {
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...common, ...withPostgres, displayName: 'store', testMatch: ['<rootDir>/test/store/**/*.test.ts'] },
    { ...common, ...withPostgres, displayName: 'cli', testMatch: ['<rootDir>/test/cli/**/*.test.ts'] },
    { ...common, ...withPostgres, displayName: 'server', testMatch: ['<rootDir>/test/server/**/*.test.ts'] },
    { ...common, ...withPostgres, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
    // The permissions page in Debian's chromium (scripts/install-browser.sh installs it).
    { ...common, displayName: 'browser', testMatch: ['<rootDir>/test/browser/**/*.test.ts'] },
  ],
};
