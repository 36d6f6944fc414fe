/**
 * The kubectl plugin against the real kube-apiserver: the examples are applied with kubectl as
 * custom resources (no operator, no store), `kubectl-rpa_access` is put on PATH, and the real
 * kubectl runs `kubectl rpa-access who -n finance ...`, which reads the four kinds from the
 * current kubeconfig context and answers with the engine. The answer must be the one the store
 * gives for the same documents.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assetsDir, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { installCrds, kubectl } from '../support/kube.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const assets = assetsDir();
if (assets === undefined) console.warn('SKIPPING kubectl plugin e2e tests: no etcd/kube-apiserver found (scripts/install-control-plane.sh or KUBEBUILDER_ASSETS).');
const describeWithControlPlane = assets === undefined ? describe.skip : describe;

interface Run { code: number; stdout: string; stderr: string }

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { env, cwd: ROOT, timeout: 90_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describeWithControlPlane('kubectl rpa-access (the plugin) on a real kube-apiserver', () => {
  let cp: ControlPlane;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    cp = await startControlPlane({ assetsDir: assets });
    await installCrds(cp, path.join(ROOT, 'crds'));
    for (const ns of ['finance', 'hr']) expect((await kubectl(cp.kubeconfigPath, ['create', 'namespace', ns])).code).toBe(0);
    const applied = await kubectl(cp.kubeconfigPath, ['apply', '--validate=false', '-R', '-f', path.join(ROOT, 'examples/finance'), '-f', path.join(ROOT, 'examples/hr')]);
    expect(applied.stderr.replace(/^Warning: .*\n/gm, '')).toBe('');
    expect(applied.code).toBe(0);

    // The plugin on PATH, as npm's bin link would put it (run from source: no build needed).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpa-access-plugin-'));
    const plugin = path.join(dir, 'kubectl-rpa_access');
    fs.writeFileSync(plugin, `#!/bin/sh\nexec "${process.execPath}" --import "${TSX}" "${path.join(ROOT, 'src/cli/kubectl-plugin.ts')}" "$@"\n`, { mode: 0o755 });
    env = { ...process.env, PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}`, KUBECONFIG: cp.kubeconfigPath, HOME: dir };
    delete env.NODE_OPTIONS;
    delete env.RPA_ACCESS_STORE;
  }, 180_000);

  afterAll(async () => {
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test('kubectl finds the plugin', async () => {
    const r = await run('kubectl', ['plugin', 'list'], env);
    expect(r.stdout).toContain(path.join(dir, 'kubectl-rpa_access'));
  }, 60_000);

  test('who -n finance --permission Jobs.Create --folder Finance/Payments: from the cluster, the answer the store gives', async () => {
    const args = ['who', '-n', 'finance', '--permission', 'Jobs.Create', '--folder', 'Finance/Payments', '-o', 'json'];
    const r = await run('kubectl', ['rpa-access', ...args], env);
    expect(r.stderr.replace(/^Warning: .*\n/gm, '')).toBe('');
    expect(r.code).toBe(0);
    const fromCluster = JSON.parse(r.stdout) as { users: { user: string; grants: { role: string; binding: string | null; via: string }[] }[] };
    const users = fromCluster.users.map((u) => u.user);
    // Automation Users members through their group, the owner and the administrator tenant-wide;
    // not the inactive former clerk, not the read-only auditor.
    expect(users).toEqual(expect.arrayContaining(['john-smith', 'priya-nair', 'maria-garcia', 'olivia-chen']));
    expect(users).not.toContain('former-clerk');
    expect(users).not.toContain('ext-auditor');
    expect(fromCluster.users.find((u) => u.user === 'priya-nair')!.grants).toEqual([
      { role: 'automation-user', binding: 'automation-users-payments', via: 'group:automation-users', folder: 'Finance/Payments' },
    ]);

    // The same documents in a store, asked by the ordinary CLI: the same answer.
    const store = path.join(dir, 'store.db');
    const cli = (a: string[]) => run(process.execPath, ['--import', TSX, path.join(ROOT, 'src/cli/main.ts'), '--store', store, ...a], env);
    expect((await cli(['apply', '-f', path.join(ROOT, 'examples/finance')])).code).toBe(0);
    const fromStore = await cli(args);
    expect(fromStore.code).toBe(0);
    expect(JSON.parse(fromStore.stdout)).toEqual(fromCluster);

    // Text for people, and an unknown namespace is an error naming the cluster.
    const text = await run('kubectl', ['rpa-access', 'who', '-n', 'finance', '--permission', 'Jobs.Create', '--folder', 'Finance/Payments'], env);
    expect(text.stdout).toMatch(/^\d+ users may Jobs\.Create in Finance\/Payments:\n/);
    expect(text.stdout).toContain('  priya-nair (priya.nair@example.com): role automation-user via group:automation-users, binding automation-users-payments, folder Finance/Payments');
    const unknown = await run('kubectl', ['rpa-access', 'who', '-n', 'nowhere', '--permission', 'Jobs.Create', '--folder', 'A'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^kubectl rpa-access: error: tenant nowhere does not exist in the cluster /m);
  }, 120_000);

  test('check, permissions and diff through kubectl read the cluster too', async () => {
    const allowed = await run('kubectl', ['rpa-access', 'check', '-n', 'finance', '--user', 'john.smith@example.com', '--permission', 'Jobs.Create', '--folder', 'Finance/Invoices'], env);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^allowed: Jobs\.Create in Finance\/Invoices for john-smith/);
    const denied = await run('kubectl', ['rpa-access', 'check', '-n', 'hr', '--user', 'john-smith', '--permission', 'Billing.View'], env);
    expect(denied.code).toBe(3);
    const perms = await run('kubectl', ['rpa-access', 'permissions', '-n', 'finance', '--user', 'priya-nair', '-o', 'json'], env);
    expect(perms.code).toBe(0);
    expect((JSON.parse(perms.stdout) as { permissions: { folder: string | null }[] }).permissions.some((p) => p.folder === 'Finance/Payments')).toBe(true);

    // diff against the cluster: the documents it holds are no change; one binding moved is.
    const same = await run('kubectl', ['rpa-access', 'diff', '-f', path.join(ROOT, 'examples/finance')], env);
    expect(same.stderr).toBe('');
    expect(same.code).toBe(0);
    const changed = path.join(dir, 'changed');
    fs.cpSync(path.join(ROOT, 'examples/finance'), changed, { recursive: true });
    const file = path.join(changed, 'bindings/automation-users.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('folder: Finance/Payments', 'folder: Finance/Receivables'));
    const moved = await run('kubectl', ['rpa-access', 'diff', '-f', changed, '-o', 'json'], env);
    expect(moved.code).toBe(2);
    const json = JSON.parse(moved.stdout) as { against: string; summary: { usersGaining: number; usersLosing: number } };
    expect(json.against).toMatch(/^cluster /);
    expect(json.summary).toMatchObject({ usersGaining: 2, usersLosing: 2 });
  }, 120_000);
});
