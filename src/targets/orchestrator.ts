/**
 * An `Orchestrator` (contract section 8) as a target: its spec checked, the defaults filled in,
 * and the values derived from it (Identity URL, group prefix, sync period, scopes). Shared by
 * the CLI (`sync`, `import`) and the operator's Orchestrator controller. The kind itself (names,
 * spec type, defaults, CRD) is src/api/v1alpha1/orchestrator.ts's.
 */
import {
  DEFAULT_SCOPES,
  DEFAULT_SYNC_PERIOD,
  ORCHESTRATOR_KIND,
  type DeletionPolicy,
  type ManagementPolicy,
  type OrchestratorDocument,
} from '../api/v1alpha1/orchestrator.js';
import { API_VERSION_FULL } from '../model/catalog.js';

/** A target with every default filled in: what the sync works from. */
export interface TargetConfig {
  /** `<namespace>/<name>` of the Orchestrator object. */
  id: string;
  tenant: string;
  url: string;
  identityUrl: string;
  managementPolicy: ManagementPolicy;
  deletionPolicy: DeletionPolicy;
  adopt: boolean;
  syncPeriodMs: number;
  roleMap: Record<string, string>;
  groupPrefix: string;
  organizationId?: string;
  scopes: string;
}

export class TargetSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetSpecError';
  }
}

/** `10m`, `30s`, `1h`, `500ms`, `1h30m` -> milliseconds. */
function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(re)) total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return total > 0 ? total : undefined;
}

/** Automation Cloud: `https://cloud.uipath.com/identity_`; elsewhere `<scheme>://<host>/identity`. */
function defaultIdentityUrl(url: string): string {
  const u = new URL(url);
  if (/(^|\.)uipath\.com$/.test(u.hostname)) return `${u.protocol}//${u.host}/identity_`;
  return `${u.protocol}//${u.host}/identity`;
}

function httpUrl(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new TargetSpecError(`spec.${field} is required: the ${field === 'url' ? 'Orchestrator base URL' : 'Identity base URL'}`);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new TargetSpecError(`spec.${field} ${JSON.stringify(value)} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TargetSpecError(`spec.${field} must be an http(s) URL`);
  if (u.username || u.password) throw new TargetSpecError(`spec.${field} must not carry credentials: use credentialsSecretRef`);
  return value.replace(/\/+$/, '');
}

const KNOWN_FIELDS = new Set(['type', 'url', 'identityUrl', 'credentialsSecretRef', 'managementPolicy', 'deletionPolicy', 'adopt', 'syncPeriod', 'roleMap', 'groupPrefix', 'organizationId', 'scopes']);

/** Checks a spec and fills in the defaults; errors name the field. */
export function targetConfig(namespace: string, name: string, spec: unknown): TargetConfig {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new TargetSpecError('spec is required');
  const s = spec as Record<string, unknown>;
  for (const key of Object.keys(s)) if (!KNOWN_FIELDS.has(key)) throw new TargetSpecError(`spec.${key} is not a field of Orchestrator`);
  if (s.type !== 'UiPath') throw new TargetSpecError(`spec.type must be UiPath (got ${JSON.stringify(s.type)})`);
  const url = httpUrl(s.url, 'url');
  const identityUrl = s.identityUrl === undefined ? defaultIdentityUrl(url) : httpUrl(s.identityUrl, 'identityUrl');
  const ref = s.credentialsSecretRef as { name?: unknown } | undefined;
  if (!ref || typeof ref !== 'object' || typeof ref.name !== 'string' || ref.name === '') throw new TargetSpecError('spec.credentialsSecretRef.name is required: a Secret with clientId and clientSecret');
  const managementPolicy = (s.managementPolicy ?? 'Enforce') as ManagementPolicy;
  if (managementPolicy !== 'Enforce' && managementPolicy !== 'Observe') throw new TargetSpecError('spec.managementPolicy must be Enforce or Observe');
  const deletionPolicy = (s.deletionPolicy ?? 'Retain') as DeletionPolicy;
  if (deletionPolicy !== 'Retain' && deletionPolicy !== 'Delete') throw new TargetSpecError('spec.deletionPolicy must be Retain or Delete');
  if (s.adopt !== undefined && typeof s.adopt !== 'boolean') throw new TargetSpecError('spec.adopt must be true or false');
  const period = (s.syncPeriod ?? DEFAULT_SYNC_PERIOD) as string;
  const syncPeriodMs = typeof period === 'string' ? parseDuration(period) : undefined;
  if (syncPeriodMs === undefined) throw new TargetSpecError(`spec.syncPeriod ${JSON.stringify(period)} is not a duration such as 10m, 30s or 1h`);
  const roleMap = (s.roleMap ?? {}) as Record<string, unknown>;
  if (typeof roleMap !== 'object' || Array.isArray(roleMap) || Object.values(roleMap).some((v) => typeof v !== 'string' || v === '')) {
    throw new TargetSpecError('spec.roleMap must map role names to UiPath role names');
  }
  if (s.groupPrefix !== undefined && typeof s.groupPrefix !== 'string') throw new TargetSpecError('spec.groupPrefix must be a string');
  if (s.organizationId !== undefined && (typeof s.organizationId !== 'string' || !/^[0-9a-f-]{36}$/i.test(s.organizationId))) {
    throw new TargetSpecError('spec.organizationId must be the organization id (a GUID)');
  }
  if (s.scopes !== undefined && (typeof s.scopes !== 'string' || s.scopes.trim() === '')) throw new TargetSpecError('spec.scopes must be a space-separated list of scopes');
  return {
    id: `${namespace}/${name}`,
    tenant: namespace,
    url,
    identityUrl,
    managementPolicy,
    deletionPolicy,
    adopt: s.adopt === true,
    syncPeriodMs,
    roleMap: roleMap as Record<string, string>,
    groupPrefix: (s.groupPrefix as string | undefined) ?? `${namespace}-`,
    ...(s.organizationId ? { organizationId: (s.organizationId as string).toLowerCase() } : {}),
    scopes: (s.scopes as string | undefined)?.trim() ?? DEFAULT_SCOPES,
  };
}

/** Reads an Orchestrator document (from a file given to the CLI). */
export function parseOrchestratorDocument(doc: unknown, tenantFlag?: string): { document: OrchestratorDocument; config: TargetConfig } {
  if (!doc || typeof doc !== 'object') throw new TargetSpecError('the target file must hold an Orchestrator document');
  const d = doc as Partial<OrchestratorDocument>;
  if (d.kind !== ORCHESTRATOR_KIND) throw new TargetSpecError(`the target file must hold a document of kind Orchestrator (got ${JSON.stringify(d.kind)})`);
  if (d.apiVersion !== API_VERSION_FULL) throw new TargetSpecError(`apiVersion must be ${API_VERSION_FULL}`);
  const name = d.metadata?.name;
  if (typeof name !== 'string' || name === '') throw new TargetSpecError('metadata.name is required');
  const namespace = (d.metadata?.namespace as string | undefined) ?? tenantFlag;
  if (!namespace) throw new TargetSpecError('metadata.namespace or --tenant is required');
  if (tenantFlag && namespace !== tenantFlag) throw new TargetSpecError(`the Orchestrator is in namespace ${namespace}, not --tenant ${tenantFlag}: a target serves the tenant of its namespace`);
  return { document: d as OrchestratorDocument, config: targetConfig(namespace, name, d.spec) };
}
