/**
 * The validating admission webhook's HTTPS endpoint: `POST /validate` takes an AdmissionReview
 * (v1, or v1beta1) and answers one, judged by review.ts against the operator's informer caches.
 * Every replica serves it (leader or not).
 *
 * HTTP rules: a body over `maxBodyBytes` (1 MiB) is 413, a body that is not an AdmissionReview is
 * 400, another path 404, another method 405. Once a review is read, the answer is always a 200
 * AdmissionReview: if judging fails unexpectedly, the request is refused with code 500 rather
 * than left to the API server's failurePolicy. Nothing a client sends can crash the process.
 */
import type { AdmissionOutcome } from './metrics.js';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { errorMessage, silentLogger, type Logger } from '../k8s/client.js';
import { parseAdmissionReview, reviewResponse, type AdmissionRequest, type AdmissionResponse } from './admission.js';
import { DirectoryCertificates, SelfSignedCertificates, type CertificateSource, type ServingCertificate } from './certs.js';
import { DEFAULT_BIND_CHECK_ROLES, SubjectAccessReviewChecker, type EscalationChecker } from './escalation.js';
import { review } from './review.js';
import { whoAmI } from '../k8s/whoami.js';
import { cacheStateSource, type CacheLike, type TenantStateSource } from './state.js';

export const WEBHOOK_PATH = '/validate';
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** What the operator is told about its webhook (startOperator's `webhook` option). */
export interface WebhookOptions {
  /** Told each review's outcome (for /metrics). */
  onReview?: (outcome: AdmissionOutcome) => void;
  /** HTTPS port; 0 picks a free one (see WebhookHandle.port). */
  port: number;
  /** Default: all interfaces. */
  host?: string;
  /** cert-manager mode: a directory with tls.crt and tls.key. Without it: self-signed mode. */
  certDir?: string;
  /** The operator's namespace: the webhook Service and the certificate Secret live there. */
  namespace: string;
  /** The ValidatingWebhookConfiguration whose caBundle is kept (self-signed mode). */
  configurationName?: string;
  serviceName?: string;
  secretName?: string;
  /**
   * Requests from these users are not judged: the operator's own identities. The identity the
   * operator really runs as (learnt from the API server at start, see k8s/whoami.ts) is added.
   */
  operatorUsernames: string[];
  /** Roles whose granting needs `bind` (escalation check); `*` for every role. Default owner, administrator. */
  bindCheckRoles?: string[];
  /** More names or IPs for the self-signed serving certificate. */
  extraHosts?: string[];
  /** Self-signed mode: how often the Secret and caBundle are checked (default 60 s). Directory mode: file poll period (default 10 s). */
  certSyncPeriodMs?: number;
  maxBodyBytes?: number;
}

export interface WebhookHandle {
  readonly port: number;
  close(): Promise<void>;
}

export interface WebhookServerOptions {
  certificate: ServingCertificate;
  judge: (request: AdmissionRequest) => Promise<AdmissionResponse>;
  log?: Logger;
  /** Told each review's outcome (for /metrics). */
  onReview?: (outcome: AdmissionOutcome) => void;
  maxBodyBytes?: number;
  /** Whole-request deadline (headers and body); default 10 s. */
  requestTimeoutMs?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `request body over ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new HttpError(413, `request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => !failed && resolve(Buffer.concat(chunks)));
    req.on('error', (err) => !failed && reject(err));
  });
}

/** The HTTPS server alone (no Kubernetes): what the tests drive with crafted reviews. */
export class WebhookServer {
  private readonly server: Server;
  private readonly log: Logger;
  private readonly maxBodyBytes: number;

  constructor(private readonly opts: WebhookServerOptions) {
    this.log = opts.log ?? silentLogger;
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.server = createServer({ cert: opts.certificate.cert, key: opts.certificate.key, minVersion: 'TLSv1.2' }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err: errorMessage(err) }, 'webhook request failed');
        this.send(res, 500, { message: 'internal error' });
      });
    });
    this.server.requestTimeout = opts.requestTimeoutMs ?? 10_000;
    this.server.headersTimeout = Math.min(this.server.requestTimeout, 5_000);
    // kube-apiserver keeps connections to webhooks open; idle ones go after a while.
    this.server.keepAliveTimeout = 30_000;
    this.server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'webhook TLS handshake failed (caBundle not set yet?)'));
    this.server.on('clientError', (err, socket) => {
      this.log.debug({ err: err.message }, 'webhook client error');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Serves a new certificate to new connections (rotation). */
  setCertificate(cert: ServingCertificate): void {
    this.server.setSecureContext({ cert: cert.cert, key: cert.key, minVersion: 'TLSv1.2' });
  }

  listen(port: number, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.log.error({ err: err.message }, 'webhook server error'));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') {
      this.send(res, 200, { status: 'ok' });
      return;
    }
    if (path !== WEBHOOK_PATH) {
      this.send(res, 404, { message: `not found; the webhook is POST ${WEBHOOK_PATH}` });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      this.send(res, 405, { message: `${req.method} not allowed; use POST` });
      return;
    }
    const type = req.headers['content-type'];
    if (type && !/^application\/json\b/i.test(type)) {
      this.send(res, 415, { message: 'Content-Type must be application/json' });
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, this.maxBodyBytes);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      res.setHeader('Connection', 'close');
      this.send(res, status, { message: errorMessage(err) });
      if (status === 413) req.resume();
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      this.send(res, 400, { message: 'body is not JSON' });
      return;
    }
    const parsed = parseAdmissionReview(body);
    if ('error' in parsed) {
      this.send(res, 400, { message: `not an AdmissionReview: ${parsed.error}` });
      return;
    }
    const { request } = parsed;
    let response: AdmissionResponse;
    let outcome: AdmissionOutcome | undefined;
    try {
      response = await this.opts.judge(request);
    } catch (err) {
      outcome = 'error';
      this.log.error({ uid: request.uid, err: errorMessage(err) }, 'admission review failed');
      response = {
        uid: request.uid, allowed: false,
        status: { code: 500, reason: 'InternalError', message: `the rpa-access webhook could not judge the request: ${errorMessage(err)}` },
      };
    }
    const who = { uid: request.uid, operation: request.operation, kind: request.kind?.kind, namespace: request.namespace, name: request.name, user: request.userInfo.username };
    this.opts.onReview?.(outcome ?? (response.allowed ? 'allowed' : 'denied'));
    if (response.allowed) this.log.debug({ ...who, warnings: response.warnings }, 'admitted');
    else this.log.info({ ...who, code: response.status?.code, message: response.status?.message }, 'refused');
    this.send(res, 200, reviewResponse(parsed.apiVersion, response));
  }
}

/** The webhook of a running operator: certificates, escalation checker, server. */
export async function startWebhook(
  opts: WebhookOptions & { kc: KubeConfig; cache: CacheLike; log?: Logger; escalation?: EscalationChecker; state?: TenantStateSource },
): Promise<WebhookHandle> {
  const log = opts.log ?? silentLogger;
  const certificates: CertificateSource = opts.certDir
    ? new DirectoryCertificates(opts.certDir, { pollMs: opts.certSyncPeriodMs, log })
    : new SelfSignedCertificates({
      kc: opts.kc,
      namespace: opts.namespace,
      secretName: opts.secretName,
      configurationName: opts.configurationName,
      serviceName: opts.serviceName,
      extraHosts: opts.extraHosts,
      syncPeriodMs: opts.certSyncPeriodMs,
      log,
    });
  const certificate = await certificates.start();
  // Out of cluster (`rpa-access operator` with a person's kubeconfig) the operator is not its
  // ServiceAccount: without its real name here, its own bootstrap would be refused as anyone's.
  const self = await whoAmI(opts.kc, log);
  const operatorUsernames = [...new Set([...opts.operatorUsernames, ...(self ? [self.username] : [])])];
  if (self) log.info({ username: self.username, via: self.via }, 'the operator runs as this user; its requests pass its own webhook');
  else log.warn({ operatorUsernames }, 'cannot tell which user the operator runs as (no SelfSubjectReview, TokenReview or client certificate): only these are exempt from the webhook');
  const state = opts.state ?? cacheStateSource(opts.cache);
  const escalation = opts.escalation ?? new SubjectAccessReviewChecker(opts.kc);
  const reviewOptions = {
    state,
    escalation,
    operatorUsernames,
    bindCheckRoles: opts.bindCheckRoles ?? DEFAULT_BIND_CHECK_ROLES,
  };
  const server = new WebhookServer({ certificate, judge: (request) => review(request, reviewOptions), log, maxBodyBytes: opts.maxBodyBytes, ...(opts.onReview ? { onReview: opts.onReview } : {}) });
  certificates.onChange((c) => server.setCertificate(c));
  let port: number;
  try {
    port = await server.listen(opts.port, opts.host);
  } catch (err) {
    certificates.stop();
    throw new Error(`webhook: cannot listen on ${opts.host ?? '*'}:${opts.port}: ${errorMessage(err)}`, { cause: err });
  }
  log.info({ port, mode: opts.certDir ? 'cert-dir' : 'self-signed', operatorUsernames, bindCheckRoles: reviewOptions.bindCheckRoles }, 'admission webhook serving');
  return {
    port,
    async close() {
      certificates.stop();
      await server.close();
    },
  };
}

/** The operator's service account username: `system:serviceaccount:<namespace>:<name>`. */
export function serviceAccountUsername(namespace: string, name = 'rpa-access-operator'): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * The webhook options of `rpa-access operator --webhook-port N [--webhook-cert-dir D]` in a pod:
 * namespace from POD_NAMESPACE (the Deployment's downward API), the operator's identity its
 * service account, escalation guard on owner and administrator (RPA_ACCESS_BIND_CHECK_ROLES,
 * comma-separated, or `*`, overrides it).
 */
export function webhookOptionsFromEnv(port: number, certDir: string | undefined, env: NodeJS.ProcessEnv = process.env): WebhookOptions {
  const namespace = env.POD_NAMESPACE || 'rpa-access-system';
  const roles = env.RPA_ACCESS_BIND_CHECK_ROLES?.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    port,
    certDir,
    namespace,
    configurationName: 'rpa-access-validating-webhook',
    operatorUsernames: [serviceAccountUsername(namespace, env.RPA_ACCESS_SERVICE_ACCOUNT || 'rpa-access-operator')],
    bindCheckRoles: roles && roles.length > 0 ? roles : [...DEFAULT_BIND_CHECK_ROLES],
  };
}
