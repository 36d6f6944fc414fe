/**
 * The permissions page of `serve --ui`: three static files (src/server/ui/, copied next to this
 * module in dist/ by the build) served by the decision API's own fastify app. The page holds no
 * data and no secret: it answers without a token, like /healthz, and everything it shows it asks
 * of the /v1 API with the token the user types in, under the same per-tenant authorization.
 *
 * The files are read once, at start: a missing file stops `serve --ui` with a clear error rather
 * than answering 404 later, and no request ever reaches the file system (no path to traverse).
 */
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ServeConfigError } from './options.js';

/** URL path -> file in ui/ and its content type. */
const FILES = {
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
} as const;

/** Where `/` and `/ui` send a browser: relative, so that it holds behind a proxy's path prefix too. */
const ENTRY = 'ui/';

/** The paths the page answers on, without a token. */
export const PAGE_PATHS: ReadonlySet<string> = new Set(['/', '/ui', ...Object.keys(FILES)]);

/**
 * Only this origin's files and API, no inline script or style, no framing, no referrer: names on
 * the page come from YAML, and even a rendering bug must not let them run or leak anything.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
} as const;

function loadFiles(dir: URL): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const url = new URL(file, dir);
    try {
      out.set(path, { body: fs.readFileSync(url), type });
    } catch (err) {
      throw new ServeConfigError(`--ui: cannot read the page's file ${url.pathname} (${(err as NodeJS.ErrnoException).code ?? String(err)}): is the package complete?`);
    }
  }
  return out;
}

/** Adds the page's routes to `app`. `dir` (tests) defaults to the ui/ directory beside this module. */
export function registerPage(app: FastifyInstance, dir: URL = new URL('./ui/', import.meta.url)): void {
  const files = loadFiles(dir);
  for (const [path, { body, type }] of files) {
    app.get(path, async (_request, reply) => reply.headers(SECURITY_HEADERS).type(type).send(body));
  }
  for (const path of ['/', '/ui']) app.get(path, async (_request, reply) => reply.redirect(ENTRY, 302));
}
