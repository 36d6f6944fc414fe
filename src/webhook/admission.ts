/**
 * The admission.k8s.io AdmissionReview shapes the webhook reads and writes (v1; v1beta1 has the
 * same fields), and the parsing of an untrusted review body into them.
 */
import { isRecord } from '../model/json.js';

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionStatus {
  /** HTTP-ish: 403 a policy refusal, 422 an invalid object, 5xx the webhook could not judge. */
  code: number;
  /** A Kubernetes StatusReason: Forbidden, Invalid, ServiceUnavailable, InternalError. */
  reason: string;
  message: string;
  /** One cause per broken rule: `reason` is the rule name (e.g. SingleOwner). */
  details?: { causes: { reason: string; message: string; field?: string }[] };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  warnings?: string[];
  /** A mutating webhook's change: an RFC 6902 JSON Patch, base64-encoded. */
  patchType?: 'JSONPatch';
  patch?: string;
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

const ADMISSION_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;

/** The review's request, or why the body is not an AdmissionReview (the server answers 400). */
export function parseAdmissionReview(body: unknown): { apiVersion: string; request: AdmissionRequest } | { error: string } {
  if (!isRecord(body)) return { error: 'body must be a JSON AdmissionReview object' };
  if (typeof body.apiVersion !== 'string' || !(ADMISSION_VERSIONS as readonly string[]).includes(body.apiVersion)) {
    return { error: `apiVersion must be one of ${ADMISSION_VERSIONS.join(', ')}` };
  }
  if (body.kind !== 'AdmissionReview') return { error: 'kind must be AdmissionReview' };
  const r = body.request;
  if (!isRecord(r)) return { error: 'request is required' };
  if (typeof r.uid !== 'string' || r.uid === '') return { error: 'request.uid is required' };
  if (typeof r.operation !== 'string' || !['CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(r.operation)) {
    return { error: 'request.operation must be CREATE, UPDATE, DELETE or CONNECT' };
  }
  if (r.userInfo !== undefined && !isRecord(r.userInfo)) return { error: 'request.userInfo must be an object' };
  for (const key of ['kind', 'resource'] as const) {
    if (r[key] !== undefined && !isRecord(r[key])) return { error: `request.${key} must be an object` };
  }
  for (const key of ['name', 'namespace', 'subResource'] as const) {
    if (r[key] !== undefined && typeof r[key] !== 'string') return { error: `request.${key} must be a string` };
  }
  const userInfo = (r.userInfo ?? {}) as UserInfo;
  return { apiVersion: body.apiVersion, request: { ...(r as unknown as AdmissionRequest), userInfo } };
}

export function reviewResponse(apiVersion: string, response: AdmissionResponse): AdmissionReview {
  return { apiVersion, kind: 'AdmissionReview', response };
}
