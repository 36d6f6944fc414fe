/**
 * The admission webhook's HTTPS endpoints: `POST /validate` takes an AdmissionReview (v1, or
 * v1beta1) and answers one, judged by review.ts against the operator's informer caches;
 * `POST /mutate` answers one that adds the operator's finalizer to a created object
 * (finalizer.ts). Every replica serves both (leader or not).
 *
 * HTTP rules: a body over `maxBodyBytes` (1 MiB) is 413, a body that is not an AdmissionReview is
 * 400, a content type other than JSON 415, another path 404, another method 405, each with
 * `{"message": "one line"}`. Once a review is read, the answer is always a 200 AdmissionReview: if
 * judging fails unexpectedly, the request is refused with code 500 rather than left to the API
 * server's failurePolicy. Nothing a client sends can crash the process. The server is fastify,
 * set up as the other two (src/http/fastify.ts); a rotated certificate is served to new
 * connections without a restart (setCertificate, driven by certs.ts).
 */
import type { AdmissionOutcome } from './metrics.js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { ALL_METHODS, boundPort, createHttpApp, listen, serveCertificate, type ErrorReply } from '../http/fastify.js';
import { errorMessage } from '../k8s/client.js';
import { silentLogger, type Logger } from '../log.js';
import { parseAdmissionReview, reviewResponse, type AdmissionRequest, type AdmissionResponse, type AdmissionReview } from './admission.js';
import { DirectoryCertificates, SelfSignedCertificates, type CertificateSource, type ServingCertificate } from './certs.js';
import { DEFAULT_BIND_CHECK_ROLES, SubjectAccessReviewChecker, type EscalationChecker } from './escalation.js';
import { mutate } from './finalizer.js';
import { review } from './review.js';
import { whoAmI } from '../k8s/whoami.js';
import { cacheStateSource, type CacheLike, type TenantStateSource } from './state.js';

const WEBHOOK_PATH = '/validate';
const MUTATE_PATH = '/mutate';
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

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
  /** The MutatingWebhookConfiguration whose caBundle is kept (self-signed mode). */
  mutatingConfigurationName?: string;
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

type Judge = (request: AdmissionRequest) => Promise<AdmissionResponse>;

export interface WebhookServerOptions {
  certificate: ServingCertificate;
  judge: Judge;
  /** The mutating review (default: the finalizer at create, finalizer.ts). */
  mutate?: (request: AdmissionRequest) => AdmissionResponse;
  log?: Logger;
  /** Told each review's outcome (for /metrics). */
  onReview?: (outcome: AdmissionOutcome) => void;
  maxBodyBytes?: number;
  /** Whole-request deadline (headers and body); default 10 s. */
  requestTimeoutMs?: number;
}

/** The webhook's errors are `{"message": "..."}` (what it has always answered). */
const messageReply: ErrorReply = (reply, status, message) => reply.code(status).send({ message });

/** The HTTPS server alone (no Kubernetes): what the tests drive with crafted reviews. */
export class WebhookServer {
  private readonly app: FastifyInstance;
  private readonly log: Logger;

  constructor(private readonly opts: WebhookServerOptions) {
    this.log = opts.log ?? silentLogger;
    this.app = createHttpApp({
      https: opts.certificate,
      bodyLimit: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      log: this.log,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      // kube-apiserver keeps connections to webhooks open; idle ones go after a while.
      keepAliveTimeoutMs: 30_000,
      forceCloseConnections: true,
      // kube-apiserver sends application/json; another type is refused (415), none is taken as JSON.
      jsonOnly: true,
      errorReply: messageReply,
    });
    this.app.server.on('tlsClientError', (err: Error) => this.log.debug({ err: err.message }, 'webhook TLS handshake failed (caBundle not set yet?)'));
    this.app.get('/healthz', { exposeHeadRoute: false }, async () => ({ status: 'ok' }));
    // Only validation is counted in /metrics: the refusing-all alert is a share of its reviews,
    // and the mutation (always allowed) would dilute it.
    const judges: [string, Judge, boolean][] = [
      [WEBHOOK_PATH, opts.judge, true],
      [MUTATE_PATH, async (request) => (opts.mutate ?? mutate)(request), false],
    ];
    for (const [url, judge, counted] of judges) {
      this.app.post(url, async (request, reply) => {
        const parsed = parseAdmissionReview(request.body);
        if ('error' in parsed) return messageReply(reply, 400, `not an AdmissionReview: ${parsed.error}`);
        return this.admit(parsed, judge, counted);
      });
      this.app.route({
        method: ALL_METHODS.filter((m) => m !== 'POST'), url,
        handler: async (request, reply) => messageReply(reply.header('allow', 'POST'), 405, `${request.method} not allowed; use POST`),
      });
    }
    this.app.setNotFoundHandler((_request, reply) => messageReply(reply, 404, `not found; the webhook is POST ${WEBHOOK_PATH} (and POST ${MUTATE_PATH})`));
  }

  /** Serves a new certificate to new connections (rotation). */
  setCertificate(cert: ServingCertificate): void {
    serveCertificate(this.app, cert);
  }

  async listen(port: number, host?: string): Promise<number> {
    const bound = await listen(this.app, port, host);
    this.app.server.on('error', (err: Error) => this.log.error({ err: err.message }, 'webhook server error'));
    return bound;
  }

  get port(): number {
    return boundPort(this.app);
  }

  close(): Promise<void> {
    return this.app.close();
  }

  /**
   * One AdmissionReview judged: once it is read, the answer is always a 200 AdmissionReview (a
   * judging failure is a refusal with code 500, not left to the API server's failurePolicy).
   */
  private async admit(parsed: { apiVersion: string; request: AdmissionRequest }, judge: Judge, counted: boolean): Promise<AdmissionReview> {
    const { request } = parsed;
    let response: AdmissionResponse;
    let outcome: AdmissionOutcome | undefined;
    try {
      response = await judge(request);
    } catch (err) {
      outcome = 'error';
      this.log.error({ uid: request.uid, err: errorMessage(err) }, 'admission review failed');
      response = {
        uid: request.uid, allowed: false,
        status: { code: 500, reason: 'InternalError', message: `the rpa-access webhook could not judge the request: ${errorMessage(err)}` },
      };
    }
    const who = { uid: request.uid, operation: request.operation, kind: request.kind?.kind, namespace: request.namespace, name: request.name, user: request.userInfo.username };
    if (counted) this.opts.onReview?.(outcome ?? (response.allowed ? 'allowed' : 'denied'));
    if (response.allowed) this.log.debug({ ...who, warnings: response.warnings, patched: response.patch !== undefined }, 'admitted');
    else this.log.info({ ...who, code: response.status?.code, message: response.status?.message }, 'refused');
    return reviewResponse(parsed.apiVersion, response);
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
      mutatingConfigurationName: opts.mutatingConfigurationName,
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
    mutatingConfigurationName: 'rpa-access-mutating-webhook',
    operatorUsernames: [serviceAccountUsername(namespace, env.RPA_ACCESS_SERVICE_ACCOUNT || 'rpa-access-operator')],
    bindCheckRoles: roles && roles.length > 0 ? roles : [...DEFAULT_BIND_CHECK_ROLES],
  };
}
