/**
 * Which store a command uses (contract section 5): `--store URL`, else $RPA_ACCESS_STORE, else the
 * embedded store in ./.rpa-access/. Apart from open.ts so that a command resolves it (and
 * recognises a failure to open it) without loading the database drivers.
 */
const DEFAULT_STORE = './.rpa-access/';

export function resolveStoreUrl(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env.RPA_ACCESS_STORE || DEFAULT_STORE;
}

/** The store cannot be opened (unreachable, wrong path, failed migration): the user can fix it. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreOpenError';
  }
}
