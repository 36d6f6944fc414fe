/**
 * The webhook's serving certificate, in one of two modes.
 *
 * - Directory (`--webhook-cert-dir`): tls.crt and tls.key as cert-manager mounts them from its
 *   Secret. The files are polled, so a renewed certificate (cert-manager rotates the Secret, the
 *   kubelet swaps the mounted files) is served without a restart. cert-manager's CA injector owns
 *   the caBundle; the operator does not touch the webhook configuration.
 * - Self-signed (default): the operator keeps a CA and a serving certificate in the Secret
 *   `rpa-access-webhook-cert` of its namespace (keys tls.crt, tls.key, ca.crt as cert-manager
 *   writes them, plus ca.key so that renewing the serving certificate keeps the CA). The first
 *   replica to start creates it; the others reuse it, so every replica serves a certificate of one
 *   CA. It patches that CA into `caBundle` of every webhook of its Validating- and
 *   MutatingWebhookConfiguration,
 *   and keeps checking both (a sync loop): a serving certificate near its end is renewed, a
 *   caBundle reset by someone is put back, a Secret renewed by another replica is picked up.
 *
 * Keys are ECDSA P-256 (what Go's TLS, hence kube-apiserver, verifies fastest); generation uses
 * @peculiar/x509 over Node's WebCrypto (its tsyringe dependency demands a Reflect metadata
 * polyfill at import time: the `reflect-metadata` package, imported first), checking uses node:crypto's X509Certificate.
 */
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import 'reflect-metadata';
import type { KubeConfig } from '@kubernetes/client-node';
import { errorCode, errorMessage, rawRequest } from '../k8s/client.js';
import { silentLogger, type Logger } from '../log.js';

type X509 = typeof import('@peculiar/x509');
let x509Module: Promise<X509> | undefined;

/**
 * @peculiar/x509, loaded on first use: tsyringe (under it) throws at load time unless Reflect
 * metadata exists, and a static import of a CommonJS package may be evaluated before the
 * polyfill module (jest's ESM linker does so). A dynamic import runs after it, everywhere.
 */
function loadX509(): Promise<X509> {
  x509Module ??= import('@peculiar/x509').then((m) => {
    const x509 = ((m as unknown as { default?: X509 }).default ?? m) as X509;
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<X509['cryptoProvider']['set']>[0]);
    return x509;
  });
  return x509Module;
}

export interface ServingCertificate {
  /** PEM of the serving certificate (the chain the server presents). */
  cert: string;
  /** PEM (PKCS#8) of its private key. */
  key: string;
  /** PEM of the CA that signed it, when known. */
  ca?: string;
}

/** Where the webhook server gets its certificate from, and hears about a new one. */
export interface CertificateSource {
  /** Loads (or creates) the certificate; rejects when none can be had. */
  start(): Promise<ServingCertificate>;
  /** Called with each certificate that replaces the current one. */
  onChange(listener: (cert: ServingCertificate) => void): void;
  stop(): void;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const EC_KEY: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/** The names a serving certificate for the webhook Service must carry, plus loopback (tests, port-forward). */
export function webhookHosts(serviceName: string, namespace: string, extra: readonly string[] = []): string[] {
  return [...new Set([
    `${serviceName}.${namespace}.svc`,
    `${serviceName}.${namespace}.svc.cluster.local`,
    `${serviceName}.${namespace}`,
    serviceName,
    'localhost',
    '127.0.0.1',
    ...extra,
  ])];
}

/** A CA and a serving certificate it signed, all PEM. */
export interface CertificateBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const x509 = await loadX509();
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<webcrypto.CryptoKey> {
  const x509 = await loadX509();
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block in the CA key');
  return webcrypto.subtle.importKey('pkcs8', der, EC_KEY, true, ['sign']);
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

function serial(): string {
  // Positive 128-bit serial (first bit clear).
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

export interface GenerateOptions {
  hosts: readonly string[];
  /** Default 10 years. */
  caValidityMs?: number;
  /** Default 1 year. */
  validityMs?: number;
  now?: number;
}

/** Issues a serving certificate for `hosts` from an existing CA. */
export async function issueServingCertificate(ca: { caCert: string; caKey: string }, opts: GenerateOptions): Promise<CertificateBundle> {
  const x509 = await loadX509();
  const now = opts.now ?? Date.now();
  const caCert = new x509.X509Certificate(ca.caCert);
  const caKey = await importKey(ca.caKey);
  const keys = await generateKeys();
  const dns = opts.hosts.filter((h) => !isIP(h));
  const ips = opts.hosts.filter((h) => isIP(h));
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${dns[0] ?? ips[0] ?? 'rpa-access-webhook'}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 60 * 60 * 1000), // an hour of clock skew
    notAfter: new Date(now + (opts.validityMs ?? 365 * DAY_MS)),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: EC_KEY,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dns.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { caCert: ca.caCert, caKey: ca.caKey, cert: leaf.toString('pem'), key: await exportKey(keys.privateKey) };
}

/** A new CA and a serving certificate for `hosts` signed by it. */
export async function generateCertificates(opts: GenerateOptions): Promise<CertificateBundle> {
  const x509 = await loadX509();
  const now = opts.now ?? Date.now();
  const keys = await generateKeys();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=rpa-access-webhook-ca-${serial().slice(0, 8)}`,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + (opts.caValidityMs ?? 10 * 365 * DAY_MS)),
    keys,
    signingAlgorithm: EC_KEY,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return issueServingCertificate({ caCert: ca.toString('pem'), caKey: await exportKey(keys.privateKey) }, opts);
}

/** The names a certificate is valid for, from node's `DNS:a, IP Address:1.2.3.4` form. */
function subjectAltNames(cert: X509Certificate): Set<string> {
  return new Set(
    (cert.subjectAltName ?? '')
      .split(',')
      .map((s) => s.trim())
      .map((s) => s.replace(/^DNS:/, '').replace(/^IP Address:/, '')),
  );
}

export type BundleVerdict =
  | { ok: true }
  | { ok: false; keepCa: boolean; why: string };

/**
 * Whether a stored bundle can be served: a CA certificate with its key, valid for longer than
 * `renewBeforeMs`; a serving certificate it issued, for every host, with its key, valid as long.
 * `keepCa` says whether only the serving certificate needs renewing.
 */
export function checkBundle(b: Partial<CertificateBundle>, hosts: readonly string[], renewBeforeMs: number, now = Date.now()): BundleVerdict {
  let ca: X509Certificate;
  try {
    if (!b.caCert || !b.caKey) return { ok: false, keepCa: false, why: 'no CA' };
    ca = new X509Certificate(b.caCert);
    if (!ca.ca) return { ok: false, keepCa: false, why: 'ca.crt is not a CA certificate' };
    if (!ca.checkPrivateKey(createPrivateKey(b.caKey))) return { ok: false, keepCa: false, why: 'ca.key does not match ca.crt' };
    if (Date.parse(ca.validTo) - now < renewBeforeMs) return { ok: false, keepCa: false, why: `the CA expires ${ca.validTo}` };
  } catch (err) {
    return { ok: false, keepCa: false, why: `unreadable CA: ${errorMessage(err)}` };
  }
  try {
    if (!b.cert || !b.key) return { ok: false, keepCa: true, why: 'no serving certificate' };
    const leaf = new X509Certificate(b.cert);
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return { ok: false, keepCa: true, why: 'the serving certificate is not signed by the CA' };
    if (!leaf.checkPrivateKey(createPrivateKey(b.key))) return { ok: false, keepCa: true, why: 'tls.key does not match tls.crt' };
    if (Date.parse(leaf.validTo) - now < renewBeforeMs) return { ok: false, keepCa: true, why: `the serving certificate expires ${leaf.validTo}` };
    if (Date.parse(leaf.validFrom) > now + 60 * 60 * 1000) return { ok: false, keepCa: true, why: `the serving certificate is not valid before ${leaf.validFrom}` };
    const names = subjectAltNames(leaf);
    const missing = hosts.filter((h) => !names.has(h));
    if (missing.length > 0) return { ok: false, keepCa: true, why: `the serving certificate does not name ${missing.join(', ')}` };
  } catch (err) {
    return { ok: false, keepCa: true, why: `unreadable serving certificate: ${errorMessage(err)}` };
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------
// Directory mode

export interface DirectoryOptions {
  /** How often the files are compared with what is served; default 10 s. */
  pollMs?: number;
  log?: Logger;
}

/** tls.crt / tls.key (and ca.crt if present) of a directory, polled for rotation. */
export class DirectoryCertificates implements CertificateSource {
  private listeners: ((c: ServingCertificate) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private current: ServingCertificate | undefined;
  private readonly log: Logger;

  constructor(private readonly dir: string, private readonly opts: DirectoryOptions = {}) {
    this.log = opts.log ?? silentLogger;
  }

  private async read(): Promise<ServingCertificate> {
    const [cert, key] = await Promise.all([readFile(join(this.dir, 'tls.crt'), 'utf8'), readFile(join(this.dir, 'tls.key'), 'utf8')]);
    const ca = await readFile(join(this.dir, 'ca.crt'), 'utf8').catch(() => undefined);
    // A half-rotated pair (new cert, old key) would break TLS: accept only a matching one.
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) throw new Error(`${this.dir}: tls.key does not match tls.crt`);
    return { cert, key, ...(ca ? { ca } : {}) };
  }

  async start(): Promise<ServingCertificate> {
    try {
      this.current = await this.read();
    } catch (err) {
      throw new Error(`webhook certificate directory ${this.dir}: ${errorMessage(err)} (expected tls.crt and tls.key)`, { cause: err });
    }
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs ?? 10_000);
    this.timer.unref();
    return this.current;
  }

  private async poll(): Promise<void> {
    try {
      const next = await this.read();
      if (next.cert === this.current?.cert && next.key === this.current?.key) return;
      this.current = next;
      this.log.info({ dir: this.dir }, 'webhook certificate changed on disk; serving the new one');
      for (const l of this.listeners) l(next);
    } catch (err) {
      // Mid-rotation, or gone: keep serving what we have.
      this.log.warn({ dir: this.dir, err: errorMessage(err) }, 'cannot read the webhook certificate; keeping the current one');
    }
  }

  onChange(listener: (cert: ServingCertificate) => void): void {
    this.listeners.push(listener);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Self-signed mode

export interface SelfSignedOptions {
  kc: KubeConfig;
  /** The operator's namespace: where the Secret and the Service live. */
  namespace: string;
  /** Default rpa-access-webhook-cert. */
  secretName?: string;
  /** Default rpa-access-validating-webhook; empty string: do not patch it. */
  configurationName?: string;
  /** Default rpa-access-mutating-webhook; empty string: do not patch it. */
  mutatingConfigurationName?: string;
  /** Default rpa-access-webhook. */
  serviceName?: string;
  /** More names or IPs for the serving certificate. */
  extraHosts?: readonly string[];
  /** How often the Secret and the caBundle are checked; default 60 s. */
  syncPeriodMs?: number;
  /** A certificate with less validity left is renewed; default 30 days. */
  renewBeforeMs?: number;
  log?: Logger;
}

interface SecretObject {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

interface WebhookConfiguration {
  metadata?: { resourceVersion?: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string; [k: string]: unknown }; [k: string]: unknown }[];
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string | undefined => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));

export class SelfSignedCertificates implements CertificateSource {
  private listeners: ((c: ServingCertificate) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private current: CertificateBundle | undefined;
  private syncing: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly hosts: string[];
  private readonly secretName: string;
  /** The webhook configurations whose caBundle is kept: API path (plural) and name. */
  private readonly configurations: { resource: string; name: string }[];
  private readonly renewBeforeMs: number;
  private readonly caBundleWarned = new Set<string>();
  private stopped = false;

  constructor(private readonly opts: SelfSignedOptions) {
    this.log = opts.log ?? silentLogger;
    this.hosts = webhookHosts(opts.serviceName ?? 'rpa-access-webhook', opts.namespace, opts.extraHosts);
    this.secretName = opts.secretName ?? 'rpa-access-webhook-cert';
    this.configurations = [
      { resource: 'validatingwebhookconfigurations', name: opts.configurationName ?? 'rpa-access-validating-webhook' },
      { resource: 'mutatingwebhookconfigurations', name: opts.mutatingConfigurationName ?? 'rpa-access-mutating-webhook' },
    ].filter((c) => c.name !== '');
    this.renewBeforeMs = opts.renewBeforeMs ?? 30 * DAY_MS;
  }

  private get secretPath(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.opts.namespace)}/secrets`;
  }

  /** The Secret's bundle, made or renewed if needed; shared by the replicas through optimistic writes. */
  async ensureSecret(): Promise<CertificateBundle> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let secret: SecretObject | undefined;
      try {
        secret = await rawRequest<SecretObject>(this.opts.kc, { path: `${this.secretPath}/${encodeURIComponent(this.secretName)}`, timeoutMs: 10_000 });
      } catch (err) {
        if (errorCode(err) !== 404) throw new Error(`reading Secret ${this.opts.namespace}/${this.secretName}: ${errorMessage(err)}`, { cause: err });
      }
      const d = secret?.data ?? {};
      const stored: Partial<CertificateBundle> = { caCert: unb64(d['ca.crt']), caKey: unb64(d['ca.key']), cert: unb64(d['tls.crt']), key: unb64(d['tls.key']) };
      const verdict = checkBundle(stored, this.hosts, this.renewBeforeMs);
      if (verdict.ok) return stored as CertificateBundle;

      const bundle = verdict.keepCa
        ? await issueServingCertificate(stored as { caCert: string; caKey: string }, { hosts: this.hosts })
        : await generateCertificates({ hosts: this.hosts });
      const body = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: {
          name: this.secretName,
          namespace: this.opts.namespace,
          labels: { 'app.kubernetes.io/name': 'rpa-access', 'app.kubernetes.io/component': 'webhook', 'app.kubernetes.io/managed-by': 'rpa-access-operator' },
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        data: { 'tls.crt': b64(bundle.cert), 'tls.key': b64(bundle.key), 'ca.crt': b64(bundle.caCert), 'ca.key': b64(bundle.caKey) },
      };
      try {
        if (secret) {
          await rawRequest(this.opts.kc, { method: 'PUT', path: `${this.secretPath}/${encodeURIComponent(this.secretName)}`, body, timeoutMs: 10_000 });
        } else {
          await rawRequest(this.opts.kc, { method: 'POST', path: this.secretPath, body, timeoutMs: 10_000 });
        }
        this.log.info({ secret: `${this.opts.namespace}/${this.secretName}`, reason: verdict.why, newCa: !verdict.keepCa }, secret ? 'webhook certificate renewed' : 'webhook certificate created');
        return bundle;
      } catch (err) {
        // Another replica wrote it first (409 on update, 409 AlreadyExists on create): use theirs.
        if (errorCode(err) === 409) continue;
        throw new Error(`writing Secret ${this.opts.namespace}/${this.secretName}: ${errorMessage(err)}`, { cause: err });
      }
    }
    throw new Error(`Secret ${this.opts.namespace}/${this.secretName}: gave up after repeated write conflicts`);
  }

  /** Puts the CA into every webhook of both configurations; true when it was already there or now is. */
  async ensureCaBundle(caCert: string): Promise<boolean> {
    const done = await Promise.all(this.configurations.map((c) => this.ensureCaBundleOf(c, caCert)));
    return done.every(Boolean);
  }

  private async ensureCaBundleOf(configuration: { resource: string; name: string }, caCert: string): Promise<boolean> {
    const path = `/apis/admissionregistration.k8s.io/v1/${configuration.resource}/${encodeURIComponent(configuration.name)}`;
    const caBundle = b64(caCert);
    const warnOnce = (err: unknown, message: string) => {
      if (this.caBundleWarned.has(configuration.resource)) return;
      this.caBundleWarned.add(configuration.resource);
      this.log.warn({ configuration: configuration.name, err: errorMessage(err) }, message);
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      let config: WebhookConfiguration;
      try {
        config = await rawRequest<WebhookConfiguration>(this.opts.kc, { path, timeoutMs: 10_000 });
      } catch (err) {
        warnOnce(err, 'cannot read the webhook configuration to set its caBundle; will retry');
        return false;
      }
      const webhooks = config.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig?.caBundle === caBundle)) return true;
      const body = { ...config, webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle } })) };
      try {
        await rawRequest(this.opts.kc, { method: 'PUT', path, body, timeoutMs: 10_000 });
        this.caBundleWarned.delete(configuration.resource);
        this.log.info({ configuration: configuration.name, webhooks: webhooks.map((w) => w.name) }, 'caBundle of the webhook configuration set');
        return true;
      } catch (err) {
        if (errorCode(err) === 409) continue;
        warnOnce(err, 'cannot update the caBundle of the webhook configuration; will retry');
        return false;
      }
    }
    return false;
  }

  async start(): Promise<ServingCertificate> {
    this.current = await this.ensureSecret();
    await this.ensureCaBundle(this.current.caCert);
    this.timer = setInterval(() => void this.sync(), this.opts.syncPeriodMs ?? 60_000);
    this.timer.unref();
    return { cert: this.current.cert, key: this.current.key, ca: this.current.caCert };
  }

  /** One round of the sync loop (also callable directly, e.g. by tests). */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    try {
      const bundle = await this.ensureSecret();
      if (this.stopped) return;
      if (bundle.cert !== this.current?.cert || bundle.key !== this.current?.key) {
        this.current = bundle;
        this.log.info({ secret: `${this.opts.namespace}/${this.secretName}` }, 'serving the webhook certificate now in the Secret');
        for (const l of this.listeners) l({ cert: bundle.cert, key: bundle.key, ca: bundle.caCert });
      }
      await this.ensureCaBundle(bundle.caCert);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'webhook certificate sync failed; keeping the current certificate');
    }
  }

  onChange(listener: (cert: ServingCertificate) => void): void {
    this.listeners.push(listener);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
