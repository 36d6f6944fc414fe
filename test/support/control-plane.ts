// A real, throw-away Kubernetes control plane (etcd + kube-apiserver 1.20.2) for e2e tests, in the
// spirit of controller-runtime's envtest: no kubelet, no controller-manager, no scheduler.
// Binaries come from scripts/install-control-plane.sh (or KUBEBUILDER_ASSETS).
//
// Without kube-controller-manager, ownerReference garbage collection never happens and deleted
// namespaces stay Terminating forever: tests must not rely on either.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const K8S_VERSION = '1.20.2';

/** A user known to kube-apiserver through its static token file. */
export interface TestUser {
  name: string;
  token: string;
  groups: string[];
  /** A kubeconfig file that authenticates as this user. */
  kubeconfigPath: string;
}

export interface ControlPlane {
  /** Temp dir holding certs, tokens, kubeconfigs, etcd data and the logs (etcd.log, kube-apiserver.log). */
  readonly dir: string;
  /** Kubeconfig for the admin user (group system:masters). */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  readonly server: string;
  readonly adminToken: string;
  /** CA that signed the serving certificate; also the client CA. */
  readonly caFile: string;
  readonly etcdUrl: string;
  /** admin (system:masters), alice (no groups), bob (group rpa-access:testers), plus opts.users. */
  readonly users: Readonly<Record<string, TestUser>>;
  /** The user's token; throws for an unknown user. */
  tokenFor(user: string): string;
  /** The path of a kubeconfig authenticating as the user; throws for an unknown user. */
  kubeconfigFor(user: string): string;
  /** The process IDs of etcd and kube-apiserver while they run (benchmarks read their CPU time). */
  pids(): { etcd?: number; apiServer?: number };
  /** Stops kube-apiserver only (SIGKILL simulates a crash); etcd and its data stay. */
  stopApiServer(signal?: NodeJS.Signals): Promise<void>;
  /** Starts kube-apiserver again on the same port and waits until it is ready. */
  startApiServer(): Promise<void>;
  /** stopApiServer() then startApiServer(). */
  restartApiServer(): Promise<void>;
  /** Kills both processes and removes the temp dir (kept when opts.keepDir). Idempotent. */
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Directory holding etcd and kube-apiserver; defaults to assetsDir(). */
  assetsDir?: string;
  /** How long startup may take before failing, per process start. Default 90 s. */
  startTimeoutMs?: number;
  /** Extra static users (a token is generated for each). */
  users?: Array<{ name: string; groups?: string[] }>;
  /** Extra kube-apiserver flags, e.g. ['--feature-gates=...']. */
  extraApiServerArgs?: string[];
  /** Keep the temp dir after stop() for debugging (also RPA_ACCESS_KEEP_CONTROL_PLANE=1). */
  keepDir?: boolean;
}

const ADMIN = 'admin';
const DEFAULT_USERS: Array<{ name: string; groups: string[] }> = [
  { name: ADMIN, groups: ['system:masters'] },
  { name: 'alice', groups: [] },
  { name: 'bob', groups: ['rpa-access:testers'] },
];
const SA_ISSUER = 'https://kubernetes.default.svc';
const LOG_TAIL_LINES = 40;

const execFileAsync = promisify(execFile);

/**
 * The directory with both binaries: KUBEBUILDER_ASSETS if it has them, else the install script's
 * cache (${RPA_ACCESS_ASSETS:-~/.cache/rpa-access/k8s-1.20.2}/bin). Undefined when neither has them.
 */
export function assetsDir(): string | undefined {
  const cacheRoot = process.env.RPA_ACCESS_ASSETS ?? join(homedir(), '.cache', 'rpa-access', `k8s-${K8S_VERSION}`);
  const candidates = [process.env.KUBEBUILDER_ASSETS, join(cacheRoot, 'bin')];
  return candidates.find((dir): dir is string => dir !== undefined && dir !== '' && hasBinaries(dir));
}

function hasBinaries(dir: string): boolean {
  return existsSync(join(dir, 'etcd')) && existsSync(join(dir, 'kube-apiserver'));
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = opts.assetsDir ?? assetsDir();
  if (bin === undefined || !hasBinaries(bin)) {
    throw new Error('etcd/kube-apiserver not found: run scripts/install-control-plane.sh or set KUBEBUILDER_ASSETS');
  }
  const keepDir = opts.keepDir ?? process.env.RPA_ACCESS_KEEP_CONTROL_PLANE === '1';
  // tmpfs when available: etcd fsyncs every write, which dominates API latency on a VM disk.
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rpa-access-cp-'));
  const cp = new LocalControlPlane(bin, dir, opts.startTimeoutMs ?? 90_000, keepDir);
  try {
    await cp.start(opts);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  return cp;
}

class LocalControlPlane implements ControlPlane {
  kubeconfigPath = '';
  server = '';
  adminToken = '';
  caFile = '';
  etcdUrl = '';
  users: Record<string, TestUser> = {};

  private etcd: ChildProcess | undefined;
  private apiServer: ChildProcess | undefined;
  private apiServerArgs: string[] = [];
  private caPem: Buffer | undefined;
  private stopped = false;
  // Children must not outlive the test process, even when a test forgets stop().
  private readonly onExit = (): void => this.killSync();

  constructor(
    private readonly bin: string,
    readonly dir: string,
    private readonly timeoutMs: number,
    private readonly keepDir: boolean,
  ) {
    process.on('exit', this.onExit);
  }

  async start(opts: ControlPlaneOptions): Promise<void> {
    const [etcdClientPort, etcdPeerPort, apiPort] = await freePorts(3);
    this.etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    this.server = `https://127.0.0.1:${apiPort}`;
    const pki = await generatePki(this.dir);
    this.caFile = pki.caFile;
    this.users = await this.writeUsers([...DEFAULT_USERS, ...(opts.users ?? [])]);
    this.adminToken = this.tokenFor(ADMIN);
    this.kubeconfigPath = this.kubeconfigFor(ADMIN);

    this.etcd = this.spawnLogged('etcd', etcdArgs(this.dir, etcdClientPort!, etcdPeerPort!));
    await this.waitFor(this.etcd, 'etcd', () => httpGetOk(`${this.etcdUrl}/health`));

    this.apiServerArgs = [...apiServerArgs(this.dir, apiPort!, this.etcdUrl, pki), ...(opts.extraApiServerArgs ?? [])];
    await this.startApiServer();
  }

  tokenFor(user: string): string {
    return this.user(user).token;
  }

  kubeconfigFor(user: string): string {
    return this.user(user).kubeconfigPath;
  }

  pids(): { etcd?: number; apiServer?: number } {
    return { etcd: this.etcd?.pid, apiServer: this.apiServer?.pid };
  }

  async startApiServer(): Promise<void> {
    if (this.apiServer !== undefined) throw new Error('kube-apiserver is already running');
    this.apiServer = this.spawnLogged('kube-apiserver', this.apiServerArgs);
    try {
      await this.waitFor(this.apiServer, 'kube-apiserver', () => this.isApiServerReady());
    } catch (err) {
      // Leave no half-started server behind, so a later startApiServer() can try again.
      await this.stopApiServer('SIGKILL');
      throw err;
    }
  }

  async stopApiServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await terminate(this.apiServer, signal);
    this.apiServer = undefined;
  }

  async restartApiServer(): Promise<void> {
    await this.stopApiServer();
    await this.startApiServer();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // kube-apiserver first, so it does not spend its shutdown retrying a dead etcd.
    await terminate(this.apiServer, 'SIGTERM');
    await terminate(this.etcd, 'SIGTERM');
    this.apiServer = this.etcd = undefined;
    process.off('exit', this.onExit);
    if (!this.keepDir) await rm(this.dir, { recursive: true, force: true });
  }

  private user(name: string): TestUser {
    const user = this.users[name];
    if (user === undefined) throw new Error(`unknown test user ${name}; known: ${Object.keys(this.users).join(', ')}`);
    return user;
  }

  /** Writes the static token file kube-apiserver reads, and one kubeconfig per user. */
  private async writeUsers(specs: Array<{ name: string; groups?: string[] }>): Promise<Record<string, TestUser>> {
    const users: Record<string, TestUser> = {};
    for (const { name, groups = [] } of specs) {
      const token = randomBytes(24).toString('hex');
      const kubeconfigPath = join(this.dir, name === ADMIN ? 'kubeconfig' : `kubeconfig-${name}`);
      await writeFile(kubeconfigPath, kubeconfig(this.server, this.caFile, name, token), { mode: 0o600 });
      users[name] = { name, token, groups, kubeconfigPath };
    }
    // Format: token,user,uid,"group1,group2"
    const csv = Object.values(users).map((u) => `${u.token},${u.name},${u.name},"${u.groups.join(',')}"`);
    await writeFile(join(this.dir, 'tokens.csv'), csv.join('\n') + '\n', { mode: 0o600 });
    return users;
  }

  /** Spawns a binary with stdout+stderr appended to <dir>/<name>.log. */
  private spawnLogged(name: string, args: string[]): ChildProcess {
    const fd = openSync(this.logFile(name), 'a');
    try {
      const child = spawn(join(this.bin, name), args, { stdio: ['ignore', fd, fd], env: childEnv() });
      // Unreferenced so a test that forgets stop() does not hang jest; 'exit' still kills it.
      child.unref();
      return child;
    } finally {
      closeSync(fd);
    }
  }

  private logFile(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  /** Polls until ready() holds; fails early, with the log tail, if the process dies or time runs out. */
  private async waitFor(child: ChildProcess, name: string, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
    child.once('error', (err) => (exited = `failed to start: ${err.message}`));
    while (exited === undefined && Date.now() < deadline) {
      if (await ready()) return;
      await sleep(200);
    }
    const why = exited ?? `not ready after ${this.timeoutMs} ms`;
    throw new Error(`${name} ${why}; last lines of ${name}.log:\n${await tail(this.logFile(name))}`);
  }

  private async isApiServerReady(): Promise<boolean> {
    this.caPem ??= await readFile(this.caFile);
    return httpGetOk(`${this.server}/readyz`, { ca: this.caPem, token: this.adminToken });
  }

  private killSync(): void {
    for (const child of [this.apiServer, this.etcd]) {
      if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (!this.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function etcdArgs(dir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    '--name=test',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

interface Pki {
  caFile: string;
  servingCert: string;
  servingKey: string;
  saPublicKey: string;
  saPrivateKey: string;
}

function apiServerArgs(dir: string, port: number, etcdUrl: string, pki: Pki): string[] {
  return [
    '--advertise-address=127.0.0.1',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    // 1.20 still has the unauthenticated HTTP port; keep it closed.
    '--insecure-port=0',
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caFile}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    `--service-account-key-file=${pki.saPublicKey}`,
    `--service-account-signing-key-file=${pki.saPrivateKey}`,
    `--service-account-issuer=${SA_ISSUER}`,
    `--api-audiences=${SA_ISSUER}`,
    `--etcd-servers=${etcdUrl}`,
    '--allow-privileged=true',
    // 1.20 warns and guesses without it.
    '--service-cluster-ip-range=10.0.0.0/24',
    // As envtest: the ServiceAccount admission plugin wants each namespace's "default" service
    // account, which only kube-controller-manager creates, so pod creation would always fail.
    '--disable-admission-plugins=ServiceAccount',
    // The "kubernetes" Service's endpoints would be 127.0.0.1, which validation rejects as
    // loopback (an error logged every 10 s); nothing here routes to them anyway.
    '--endpoint-reconciler-type=none',
  ];
}

/** A CA, a serving cert for 127.0.0.1/localhost signed by it, and the service-account key pair. */
async function generatePki(dir: string): Promise<Pki> {
  const p = (name: string): string => join(dir, name);
  await writeFile(p('openssl.cnf'), OPENSSL_CONFIG);
  const ossl = (...args: string[]): Promise<unknown> => execFileAsync('openssl', args, { cwd: dir });
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=rpa-access-e2e-ca',
    '-config', 'openssl.cnf', '-extensions', 'ca_ext', '-keyout', 'ca.key', '-out', 'ca.crt');
  await ossl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kube-apiserver',
    '-config', 'openssl.cnf', '-keyout', 'serving.key', '-out', 'serving.csr');
  await ossl('x509', '-req', '-in', 'serving.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '3650',
    '-extfile', 'openssl.cnf', '-extensions', 'serving_ext', '-out', 'serving.crt');
  await ossl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key');
  await ossl('pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
  return {
    caFile: p('ca.crt'),
    servingCert: p('serving.crt'),
    servingKey: p('serving.key'),
    saPublicKey: p('sa.pub'),
    saPrivateKey: p('sa.key'),
  };
}

// Explicit extensions: Go rejects serving certs without SANs, and a CA without CA:TRUE.
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[serving_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
authorityKeyIdentifier = keyid
`;

/** Kubeconfig as JSON, which is valid YAML for kubectl and client-node alike. */
function kubeconfig(server: string, caFile: string, user: string, token: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'rpa-access-e2e', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'rpa-access-e2e', user } }],
      'current-context': user,
    },
    null,
    2,
  );
}

/** Reserves distinct free loopback ports (a tiny race remains until the child binds them). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve(srv));
      }),
    ),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  return ports;
}

/** True when GET url answers 200; false on any error (not up yet). */
function httpGetOk(url: string, auth?: { ca: Buffer; token: string }): Promise<boolean> {
  const headers = auth ? { Authorization: `Bearer ${auth.token}` } : undefined;
  const get = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = get(url, { method: 'GET', ca: auth?.ca, headers, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Signals the child and waits for its exit, escalating to SIGKILL after 10 s. */
async function terminate(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  // The timer also keeps the event loop alive while waiting for an unreferenced child.
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Drops ETCD_* variables from the environment, which etcd would read as flags. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD_')));
}

async function tail(file: string): Promise<string> {
  try {
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
