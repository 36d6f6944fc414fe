#!/usr/bin/env node
/**
 * `kubectl-rpa_access`: the same CLI as a kubectl plugin, so `kubectl rpa-access who -n finance
 * ...` works once the package's bin directory is on PATH (kubectl maps `rpa-access` to
 * `kubectl-rpa_access`). As a plugin, check / permissions / who / diff read the tenant from the
 * current kubeconfig context unless a store is named.
 */
import { runCli } from './program.js';

for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await runCli(process.argv.slice(2), undefined, { plugin: true });
