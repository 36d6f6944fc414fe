#!/usr/bin/env node
/** The `rpa-access` executable: runs the CLI and exits with its code. */
import { runCli } from './program.js';

// `rpa-access permissions ... | head`: a reader that goes away is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await runCli(process.argv.slice(2));
