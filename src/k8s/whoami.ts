/**
 * Who the API server takes this process for: the username its requests carry, which is what an
 * admission webhook sees in `userInfo.username`. Asked once at start, in the order that works on
 * most servers (as `kubectl auth whoami` does, with fallbacks for servers older than 1.26):
 *
 * 1. SelfSubjectReview (authentication.k8s.io v1 since 1.28, v1beta1 1.27, v1alpha1 1.26);
 * 2. a TokenReview of the process's own bearer token (any server; needs `create` on tokenreviews);
 * 3. the CN of its client certificate (the API server's x509 authenticator takes CN as the user).
 *
 * Undefined when none answers (an exec plugin without a token, say): the caller keeps its default.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { errorCode, errorMessage, rawRequest } from './client.js';
import type { Logger } from '../log.js';

export interface Identity {
  username: string;
  groups: string[];
  /** How it was learnt. */
  via: 'SelfSubjectReview' | 'TokenReview' | 'ClientCertificate';
}

interface UserInfo {
  username?: string;
  groups?: string[];
}

const SELF_SUBJECT_REVIEW_VERSIONS = ['v1', 'v1beta1', 'v1alpha1'];
const TIMEOUT_MS = 10_000;

async function selfSubjectReview(kc: KubeConfig): Promise<Identity | undefined> {
  for (const version of SELF_SUBJECT_REVIEW_VERSIONS) {
    try {
      const review = await rawRequest<{ status?: { userInfo?: UserInfo } }>(kc, {
        method: 'POST',
        path: `/apis/authentication.k8s.io/${version}/selfsubjectreviews`,
        body: { apiVersion: `authentication.k8s.io/${version}`, kind: 'SelfSubjectReview' },
        timeoutMs: TIMEOUT_MS,
      });
      const user = review.status?.userInfo;
      if (user?.username) return { username: user.username, groups: user.groups ?? [], via: 'SelfSubjectReview' };
    } catch (err) {
      // 404: this server does not have that version (1.20 has none). Anything else: try the next way.
      if (errorCode(err) !== 404) return undefined;
    }
  }
  return undefined;
}

/** The bearer token the client would send (static, file, or from an auth provider / exec plugin). */
async function bearerToken(kc: KubeConfig): Promise<string | undefined> {
  const options: RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(options);
  const header = (options.headers as Record<string, string | undefined>).Authorization ?? (options.headers as Record<string, string | undefined>).authorization;
  const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  return m?.[1];
}

async function tokenReview(kc: KubeConfig, token: string): Promise<Identity | undefined> {
  const review = await rawRequest<{ status?: { authenticated?: boolean; user?: UserInfo } }>(kc, {
    method: 'POST',
    path: '/apis/authentication.k8s.io/v1/tokenreviews',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
    timeoutMs: TIMEOUT_MS,
  });
  const user = review.status?.user;
  return review.status?.authenticated && user?.username ? { username: user.username, groups: user.groups ?? [], via: 'TokenReview' } : undefined;
}

function clientCertificate(kc: KubeConfig): Identity | undefined {
  const user = kc.getCurrentUser();
  const pem = user?.certData ? Buffer.from(user.certData, 'base64') : user?.certFile ? fs.readFileSync(user.certFile) : undefined;
  if (!pem) return undefined;
  const subject = new X509Certificate(pem).subject.split('\n');
  const cn = subject.find((part) => part.startsWith('CN='))?.slice(3);
  const groups = subject.filter((part) => part.startsWith('O=')).map((part) => part.slice(2));
  return cn ? { username: cn, groups, via: 'ClientCertificate' } : undefined;
}

export async function whoAmI(kc: KubeConfig, log?: Logger): Promise<Identity | undefined> {
  const reviewed = await selfSubjectReview(kc);
  if (reviewed) return reviewed;
  try {
    const token = await bearerToken(kc);
    if (token) {
      const identity = await tokenReview(kc, token);
      if (identity) return identity;
    }
  } catch (err) {
    log?.warn({ err: errorMessage(err) }, 'TokenReview of the operator\'s own token failed');
  }
  try {
    return clientCertificate(kc);
  } catch (err) {
    log?.warn({ err: errorMessage(err) }, 'cannot read the client certificate of the kubeconfig');
    return undefined;
  }
}
