// jest in ESM mode: @kubernetes/client-node 1.x is ESM-only, so the whole project is ESM.
// Run through `npm run test:jest`, which sets NODE_OPTIONS=--experimental-vm-modules.
const common = {
  preset: 'ts-jest/presets/default-esm',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...common, displayName: 'store', testMatch: ['<rootDir>/test/store/**/*.test.ts'] },
    { ...common, displayName: 'cli', testMatch: ['<rootDir>/test/cli/**/*.test.ts'] },
    { ...common, displayName: 'server', testMatch: ['<rootDir>/test/server/**/*.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
    // The permissions page in Debian's chromium (scripts/install-browser.sh installs it).
    { ...common, displayName: 'browser', testMatch: ['<rootDir>/test/browser/**/*.test.ts'] },
  ],
};
