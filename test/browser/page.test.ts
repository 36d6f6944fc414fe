/**
 * The permissions page (`serve --ui`) in a real browser: Debian's chromium, driven headless by
 * puppeteer-core (which never downloads a browser; scripts/install-browser.sh installs it), over
 * `rpa-access serve --ui` run as a child process on a store filled from examples/ by
 * `rpa-access apply`. Each step fails if it shows nothing or an error; screenshots of every step
 * go to $RPA_ACCESS_ARTIFACTS (default: a temp directory, printed), and with
 * RPA_ACCESS_UPDATE_SCREENSHOTS=1 the matrix is also written to docs/permissions-page.png.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'puppeteer-core';
import { openStore } from '../../src/store/open.js';
import { ROOT, rpa } from '../cli/helpers.js';
import { bind, user } from '../support/scenarios.js';

const CHROMIUM = process.env.RPA_ACCESS_CHROMIUM ?? '/usr/bin/chromium';
const haveBrowser = fs.existsSync(CHROMIUM);
/** Outside CI a developer may skip the suite, but only by saying so. */
const skipAsked = !process.env.CI && process.env.RPA_ACCESS_SKIP_BROWSER === '1';
const MISSING = `chromium not found at ${CHROMIUM}: run scripts/install-browser.sh (or, outside CI, set RPA_ACCESS_SKIP_BROWSER=1 to skip the browser tests)`;

const ADMIN_TOKEN = 'page-test-admin';
const HR_TOKEN = 'page-test-hr';
/** A folder name that is also markup: the page must show it as text and never run it. */
const HOSTILE_FOLDER = 'Lab/<img src=x onerror="window.__pwned=1">';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-browser-'));
const artifacts = process.env.RPA_ACCESS_ARTIFACTS ?? path.join(work, 'screenshots');

/** `rpa-access serve --ui` as a process; resolves with its URL once it logs that it listens. */
function serve(store: string, tokens: string): Promise<{ url: string; child: ChildProcess; log: () => string }> {
  const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(
    process.execPath,
    ['--import', tsx, path.join(ROOT, 'src/cli/main.ts'), 'serve', '--ui', '--store', store, '--token-file', tokens,
      '--port', '0', '--host', '127.0.0.1', '--log-format', 'json'],
    { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve --ui did not start within 30 s:\n${stderr}`)), 30_000);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const line = stderr.split('\n').find((l) => l.includes('"decision index loaded"'));
      const listening = stderr.split('\n').find((l) => l.includes('"decision API listening"'));
      if (line && listening) {
        clearTimeout(timer);
        resolve({ url: (JSON.parse(listening) as { url: string }).url, child, log: () => stderr });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve --ui exited (${code}) before listening:\n${stderr}`));
    });
  });
}

/**
 * Code run in the page is given as text: the project compiles without the DOM library (a
 * reference to it would change the types of the whole program), and these few lines need it.
 */
const inPage = <T>(page: Page, expression: string): Promise<T> => page.evaluate(expression) as Promise<T>;

/** What a result area shows: its text, and the visible errors of the page. */
function shown(page: Page, selector: string): Promise<{ text: string; errors: string[] }> {
  return inPage(page, `(() => {
    const visible = (e) => e.offsetParent !== null;
    return {
      text: (document.querySelector(${JSON.stringify(selector)})?.textContent ?? '').trim(),
      errors: [...document.querySelectorAll('.error, #message')].filter(visible).map((e) => (e.textContent ?? '').trim()).filter(Boolean),
    };
  })()`);
}

/** Waits until `area` holds `ready` (a child selector) or an error shows, then fails on any visible error. */
async function expectResult(page: Page, area: string, ready: string): Promise<string> {
  await page.waitForFunction(
    `document.querySelector(${JSON.stringify(`${area} ${ready}`)}) !== null || document.querySelector(${JSON.stringify(`${area} .error, #message:not([hidden])`)}) !== null`,
    { timeout: 15_000 },
  );
  const { text, errors } = await shown(page, area);
  expect(errors).toEqual([]);
  expect(text).not.toBe('');
  expect(text).not.toMatch(/\b(null|undefined|NaN|\[object Object\])\b/);
  return text;
}

async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) as `${string}.png`, fullPage: true });
}

async function enterToken(page: Page, url: string, token: string, hash = ''): Promise<void> {
  await page.goto(`${url}/${hash}`, { waitUntil: 'load' });
  await page.waitForSelector('#token-form:not([hidden])');
  await page.type('#token', token);
  await page.click('#token-form button[type=submit]');
}

describe('the permissions page in chromium', () => {
  if (!haveBrowser) {
    if (skipAsked) {
      console.warn(`browser tests skipped (RPA_ACCESS_SKIP_BROWSER=1): chromium not found at ${CHROMIUM}; scripts/install-browser.sh installs it`);
      it.skip('needs chromium', () => undefined);
    } else {
      it('needs chromium', () => {
        throw new Error(MISSING);
      });
    }
    return;
  }

  let server: Awaited<ReturnType<typeof serve>>;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const store = path.join(work, 'store');
    const applied = await rpa(['apply', '-f', 'examples/', '--store', store]);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const s = await openStore(store);
    try {
      const r = await s.apply([{ tenant: 'lab', upserts: [user('ann'), bind('ann-lab', 'folder-viewer', ['u:ann'], { folder: HOSTILE_FOLDER })] }], { actor: 'test', source: 'test' });
      expect(r.violations).toEqual([]);
    } finally {
      await s.close();
    }
    const tokens = path.join(work, 'tokens');
    fs.writeFileSync(tokens, `${ADMIN_TOKEN}\n${HR_TOKEN} hr\n`);
    server = await serve(store, tokens);
    const puppeteer = (await import('puppeteer-core')).default;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true,
      // As root (CI, these machines) chromium's sandbox cannot start; /dev/shm may be small in containers.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
    console.log(`browser test screenshots: ${artifacts}`);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    server?.child.kill('SIGTERM');
    fs.rmSync(path.join(work, 'store'), { recursive: true, force: true });
  });

  it('enters the token and shows a user\'s permissions grouped by folder, with provenance', async () => {
    await enterToken(page, server.url, ADMIN_TOKEN, '#tenant=finance&view=permissions&user=john.smith%40example.com');
    const text = await expectResult(page, '#permissions-result', 'section.folder table');
    expect(await inPage(page, "document.getElementById('token').value")).toBe('');
    expect(await inPage(page, "getComputedStyle(document.getElementById('token-form')).display")).toBe('none');
    const folders = await page.$$eval('#permissions-result section.folder', (s) => s.map((e) => e.getAttribute('data-folder')));
    expect(folders.length).toBeGreaterThan(0);
    expect(text).toMatch(/explicit|via group/);
    // The token lives in memory only.
    const stored = await inPage(page, '({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie, url: location.href })');
    expect(stored).toEqual({ local: 0, session: 0, cookie: '', url: expect.not.stringContaining(ADMIN_TOKEN) });
    await screenshot(page, '1-user-permissions');
  }, 60_000);

  it('answers a who-can search', async () => {
    await page.click('#tab-who');
    await page.select('#who-permission', 'Jobs.Create');
    await page.type('#who-folder', 'Finance/Payments');
    await page.click('#who-form button[type=submit]');
    const text = await expectResult(page, '#who-result', 'table tbody tr');
    expect(text).toContain('Jobs.Create');
    expect(await page.$$eval('#who-result tbody tr', (rows) => rows.length)).toBeGreaterThan(0);
    await screenshot(page, '2-who-can');
  }, 60_000);

  it('shows the tenant access matrix, coloured by the strongest role', async () => {
    await page.click('#tab-matrix');
    await expectResult(page, '#matrix-result', 'table.matrix tbody tr');
    const cells = await page.$$eval('#matrix-result td.cell:not(.none)', (tds) => tds.map((td) => ({ role: td.getAttribute('data-role'), cls: td.className })));
    expect(cells.length).toBeGreaterThan(0);
    for (const c of cells) expect(c.cls).toMatch(/\br[0-7]\b/);
    const headers = await page.$$eval('#matrix-result thead th', (th) => th.map((e) => e.textContent));
    expect(headers).toEqual(expect.arrayContaining(['Finance', 'Finance/Payments']));
    expect(await inPage(page, "document.getElementById('matrix-paging').textContent")).toMatch(/users 1–\d+ of \d+.*folders 1–\d+ of \d+/);
    await screenshot(page, '3-matrix');
    if (process.env.RPA_ACCESS_UPDATE_SCREENSHOTS === '1') {
      await page.screenshot({ path: path.join(ROOT, 'docs/permissions-page.png'), fullPage: false });
    }
  }, 60_000);

  it('narrows the matrix to a folder subtree', async () => {
    await page.type('#matrix-folder', 'Finance/Payments');
    await page.click('#matrix-form button[type=submit]');
    await page.waitForFunction("document.querySelectorAll('#matrix-result thead th').length === 2", { timeout: 15_000 });
    await expectResult(page, '#matrix-result', 'table.matrix tbody tr');
    const headers = await page.$$eval('#matrix-result thead th', (th) => th.map((e) => e.textContent));
    expect(headers).toEqual(['User', 'Finance/Payments']);
    expect(await inPage(page, "document.getElementById('matrix-paging').textContent")).toContain('folders 1–1 of 1');
  }, 60_000);

  it('shows names that look like markup as text, and runs none of it', async () => {
    // A new page load: the token is gone with the old one, as promised.
    await page.goto('about:blank');
    await enterToken(page, server.url, ADMIN_TOKEN, '#tenant=lab&view=matrix');
    await expectResult(page, '#matrix-result', 'table.matrix');
    const headers = await page.$$eval('#matrix-result thead th', (th) => th.map((e) => e.textContent));
    expect(headers).toContain(HOSTILE_FOLDER);
    expect(await inPage(page, 'window.__pwned')).toBeUndefined();
    expect(await page.$$('#matrix-result img')).toHaveLength(0);
  }, 60_000);

  it('tells a token without rights to a tenant that it is forbidden (403)', async () => {
    await page.goto('about:blank');
    await enterToken(page, server.url, HR_TOKEN, '#tenant=finance&view=permissions');
    await page.waitForSelector('#message:not([hidden])', { timeout: 15_000 });
    const message = await page.$eval('#message', (e) => e.textContent ?? '');
    expect(message).toContain('Forbidden (403)');
    expect(message).toContain('finance');
    // The tenants it may see are offered: hr only.
    expect(await inPage(page, "[...document.querySelectorAll('#tenant option')].map((o) => o.value)")).toEqual(['hr', 'finance']);
    await screenshot(page, '4-forbidden');
  }, 60_000);

  it('sends a refused token back to the token form with a clear message', async () => {
    await page.goto('about:blank');
    await enterToken(page, server.url, 'not-a-token');
    await page.waitForSelector('#message:not([hidden])', { timeout: 15_000 });
    expect(await page.$eval('#message', (e) => e.textContent ?? '')).toContain('refused this token (401)');
    expect(await inPage(page, "document.getElementById('main').hidden")).toBe(true);
  }, 60_000);

  it('raised no script error in the page', () => {
    expect(pageErrors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
  });
});
