/**
 * The `Orchestrator` kind (contract section 8) as Kubernetes holds it: names, the spec and status
 * types, the spec's defaults and the CustomResourceDefinition (a structural schema written here,
 * with the descriptions `kubectl explain` prints). Checking a spec and filling in its defaults
 * is src/targets/orchestrator.ts's (`targetConfig`).
 */
import { API_GROUP, API_VERSION } from '../../model/catalog.js';
import type { Condition } from '../../k8s/status.js';
import { CONDITIONS_LIST, conditionPath, customResourceDefinition, printerColumn as col } from './custom-resource-definition.js';

export const ORCHESTRATOR_KIND = 'Orchestrator';
const ORCHESTRATOR_PLURAL = 'orchestrators';
const ORCHESTRATOR_SHORT_NAMES = ['rpaorch'];

export const DEFAULT_SCOPES = 'OR.Users OR.Folders PM.User PM.Group PM.RobotAccount';
export const DEFAULT_SYNC_PERIOD = '10m';

export type ManagementPolicy = 'Enforce' | 'Observe';
export type DeletionPolicy = 'Retain' | 'Delete';

export interface OrchestratorSpec {
  type: 'UiPath';
  url: string;
  identityUrl?: string;
  credentialsSecretRef: { name: string };
  managementPolicy?: ManagementPolicy;
  deletionPolicy?: DeletionPolicy;
  adopt?: boolean;
  syncPeriod?: string;
  roleMap?: Record<string, string>;
  groupPrefix?: string;
  organizationId?: string;
  scopes?: string;
}

/** An Orchestrator as a file holds it (`rpa-access sync --target FILE`). */
export interface OrchestratorDocument {
  apiVersion: string;
  kind: typeof ORCHESTRATOR_KIND;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  spec: OrchestratorSpec;
}

export function orchestratorGvr(): { group: string; version: string; plural: string } {
  return { group: API_GROUP, version: API_VERSION, plural: ORCHESTRATOR_PLURAL };
}

export interface OrchestratorCounts {
  users: number;
  groups: number;
  roles: number;
  folders: number;
  assignments: number;
}

export interface OrchestratorStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastSyncTime?: string;
  /** The store revision of the tenant last pushed. */
  observedRevision?: number;
  counts?: OrchestratorCounts;
  /** Changes made in UiPath by someone else and undone, since the operator started. */
  driftCorrected?: number;
  notRepresentable?: string[];
  conflicts?: string[];
}

export interface OrchestratorResource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; generation?: number; uid?: string; resourceVersion?: string; deletionTimestamp?: string | Date };
  /** Not checked yet: targetConfig() turns it into a TargetConfig or says which field is wrong. */
  spec?: unknown;
  status?: OrchestratorStatus;
}

const str = (description: string, extra: Record<string, unknown> = {}) => ({ type: 'string', description, ...extra });
const int = (description: string) => ({ type: 'integer', format: 'int64', minimum: 0, description });
const list = (description: string) => ({ type: 'array', items: { type: 'string' }, description });

const SPEC_SCHEMA = {
  type: 'object',
  description: 'Which UiPath Orchestrator tenant the tenant of this namespace is pushed into, with which credentials and policies.',
  required: ['type', 'url', 'credentialsSecretRef'],
  properties: {
    type: str('The kind of orchestrator: `UiPath` (Automation Cloud, Automation Suite and standalone Orchestrator share one API).', { enum: ['UiPath'] }),
    url: str('The Orchestrator base URL, e.g. https://cloud.uipath.com/acme/finance/orchestrator_', { pattern: '^https?://[^\\s]+$' }),
    identityUrl: str('The Identity (token) base URL. Default: https://cloud.uipath.com/identity_ for Automation Cloud URLs, <scheme>://<host>/identity otherwise.', { pattern: '^https?://[^\\s]+$' }),
    credentialsSecretRef: {
      type: 'object',
      description: 'A Secret in this namespace holding `clientId` and `clientSecret` of a UiPath external application (client credentials). A rotated secret is used at once.',
      required: ['name'],
      properties: { name: str('Name of the Secret.', { minLength: 1 }) },
    },
    managementPolicy: str('`Enforce` (default): write the changes and correct drift. `Observe`: read and report drift, write nothing.', { enum: ['Enforce', 'Observe'], default: 'Enforce' }),
    deletionPolicy: str('`Retain` (default): what leaves Git loses the roles and folder assignments rpa-access gave it, and stays. `Delete`: it is deleted (folders only when empty, bottom-up).', { enum: ['Retain', 'Delete'], default: 'Retain' }),
    adopt: { type: 'boolean', default: false, description: 'Take over UiPath objects rpa-access did not create (same user email, robot, group or role name). Default false: they are left alone and reported as conflicts.' },
    syncPeriod: str(`Drift check period, e.g. 10m, 30s, 1h (default ${DEFAULT_SYNC_PERIOD}).`, { pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$', default: DEFAULT_SYNC_PERIOD }),
    roleMap: { type: 'object', additionalProperties: { type: 'string' }, description: 'Overrides: rpa-access role name -> UiPath role name (a built-in mapped here uses that existing UiPath role).' },
    groupPrefix: str('Prefix of the UiPath group names of this tenant\'s Groups (UiPath groups belong to the whole organization). Default: `<namespace>-`.'),
    organizationId: str('The UiPath organization id (Identity partition). Default: the `prt_id` claim of the token.', { pattern: '^[0-9a-fA-F-]{36}$' }),
    scopes: str(`Scopes requested with the token, space separated. Default: ${DEFAULT_SCOPES}.`),
  },
};

const CONDITION_SCHEMA = {
  type: 'object',
  required: ['type', 'status'],
  properties: {
    type: str('`Ready`: UiPath answers with these credentials. `Synced`: UiPath holds what the tenant says.'),
    status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    reason: str('CamelCase reason: Synced, ChangesPending, TargetUnreachable, Unauthorized, Forbidden, Conflict, RateLimited, SecretNotFound, InvalidSpec, TenantNotFound...'),
    message: str('What happened and what to do.'),
    lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
    observedGeneration: int('The generation the condition is about.'),
  },
};

const STATUS_SCHEMA = {
  type: 'object',
  description: 'What the last sync found and did.',
  properties: {
    observedGeneration: int('The generation of the spec last synced.'),
    conditions: { type: 'array', items: CONDITION_SCHEMA, ...CONDITIONS_LIST, description: '`Ready` and `Synced`.' },
    lastSyncTime: str('When the last sync finished.', { format: 'date-time' }),
    observedRevision: int('The store revision of the tenant last pushed.'),
    counts: {
      type: 'object',
      description: 'What the tenant maps to in UiPath.',
      properties: {
        users: int('Users and robot accounts.'), groups: int('Groups.'), roles: int('Roles rpa-access owns.'), folders: int('Folders bindings name.'), assignments: int('Folder assignments (principal, folder).'),
      },
    },
    driftCorrected: int('Changes made in UiPath by someone else that were undone, since the operator started.'),
    notRepresentable: list('Bindings and permissions UiPath cannot express: left out, never pushed in a wider form.'),
    conflicts: list('UiPath objects rpa-access did not create, left alone (set adopt to take them over), and folders it could not delete.'),
  },
};

const READY = conditionPath('Ready');
const SYNCED = conditionPath('Synced');

export function buildOrchestratorCrd(): object {
  return customResourceDefinition({
    kind: ORCHESTRATOR_KIND,
    plural: ORCHESTRATOR_PLURAL,
    shortNames: ORCHESTRATOR_SHORT_NAMES,
    description:
      'Connects the tenant of this namespace to one tenant of an external orchestrator (UiPath Orchestrator): the operator pushes the tenant\'s effective access into it (users, groups, roles, folders, assignments) and keeps it there.',
    printerColumns: [
      col('Type', '.spec.type', 'The kind of orchestrator.'),
      col('URL', '.spec.url', 'The Orchestrator base URL.', 'string', 1),
      col('Policy', '.spec.managementPolicy', 'Enforce or Observe.'),
      col('Ready', `${READY}.status`, 'UiPath answers with these credentials.'),
      col('Synced', `${SYNCED}.status`, 'UiPath holds what the tenant says.'),
      col('Reason', `${SYNCED}.reason`, 'Why (not) synced.'),
      col('Last Sync', '.status.lastSyncTime', 'When the last sync finished.', 'date'),
      col('Age', '.metadata.creationTimestamp', 'Time since creation.', 'date'),
    ],
    spec: SPEC_SCHEMA,
    status: STATUS_SCHEMA,
    typeMeta: {
      apiVersion: 'APIVersion defines the versioned schema of this representation of an object.',
      kind: 'Kind is a string value representing the REST resource this object represents.',
    },
  });
}
