/**
 * JSON Schemas of the four kinds' `spec`: the single source of truth for ajv (the CLI, the
 * operator and the webhook) and for the CRDs' openAPIV3Schema (scripts/gen-crds.ts derives
 * crds/ from these). Keep every field described: the descriptions are what `kubectl explain`
 * teaches.
 *
 * Only the subset of JSON Schema that Kubernetes structural schemas accept is used here, so the
 * CRD generator only has to drop `additionalProperties: false` (CRDs prune unknown fields
 * instead) and add the Kubernetes extensions.
 */
import { ACTIONS, FOLDER_RESOURCES, OBJECT_KINDS, TENANT_RESOURCES, type Kind } from './catalog.js';

export type JSONSchema = Record<string, unknown>;

/** DNS-1123 subdomain, as Kubernetes requires of object names. */
export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** DNS-1123 label, as Kubernetes requires of namespace names. */
const NAMESPACE_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/**
 * Characters no folder segment may hold: control (Cc: NUL, ESC, line breaks, DEL, C1), format
 * (Cf: zero-width and bidirectional marks), lone surrogates, and the line/paragraph separators.
 * Written so that both JavaScript (ajv, `u` flag) and Go's RE2 (the API server) read it alike.
 */
const FORBIDDEN = '\\p{Cc}\\p{Cf}\\p{Cs}\\p{Zl}\\p{Zp}';
/** A segment's edge: not blank, not `/`, not forbidden. */
const EDGE = `[^/\\s${FORBIDDEN}]`;
const EDGE_NOT_DOT = `[^/.\\s${FORBIDDEN}]`;
const INNER = `[^/${FORBIDDEN}]`;
/**
 * One segment: non-empty, no leading or trailing blank, not `.` nor `..` (a path normalised by a
 * gateway must name the folder the binding names), nothing forbidden. RE2 has no look-ahead, so
 * `.`/`..` are excluded by length: one character that is not a dot; two that are not both dots;
 * three or more.
 */
const SEGMENT = `(?:${EDGE_NOT_DOT}|${EDGE_NOT_DOT}${EDGE}|\\.${EDGE_NOT_DOT}|${EDGE}${INNER}+${EDGE})`;
export const MAX_FOLDER_DEPTH = 7;
/** A folder path: 1 to 7 segments separated by `/` (contract section 4.7). */
export const FOLDER_PATTERN = `^${SEGMENT}(?:/${SEGMENT}){0,${MAX_FOLDER_DEPTH - 1}}$`;
const LANGUAGE_PATTERN = '^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$';

const str = (description: string, extra: JSONSchema = {}): JSONSchema => ({ type: 'string', description, ...extra });

const userSpec: JSONSchema = {
  type: 'object',
  description: 'A person or a robot account of the orchestrator tenant (the namespace).',
  required: ['email'],
  additionalProperties: false,
  properties: {
    email: str("The person's identity: unique in the tenant, compared case-insensitively.", { format: 'email', maxLength: 254 }),
    fullName: str('Display name.', { maxLength: 256 }),
    type: str('`Human` (default) or `Robot` (a robot account; it holds the built-in `robot` role implicitly).', {
      enum: ['Human', 'Robot'],
      default: 'Human',
    }),
    active: {
      type: 'boolean',
      default: true,
      description: 'An inactive user is denied everything. Holders of `owner` or `administrator` through an explicit binding cannot be deactivated.',
    },
    groups: {
      type: 'array',
      description: 'Names of Groups of the same namespace this user is a member of. Every user is also a member of `global`.',
      maxItems: 256,
      items: str('A Group name.', { pattern: NAME_PATTERN, maxLength: 253 }),
    },
    slackId: str('Slack member ID for notifications.', { maxLength: 64 }),
    teamsId: str('Microsoft Teams user ID for notifications.', { maxLength: 256 }),
    language: str('User interface language, a BCP 47 tag such as `en` or `pt-BR`.', { pattern: LANGUAGE_PATTERN, default: 'en', maxLength: 35 }),
    notifications: {
      type: 'object',
      description: 'Which orchestrator events notify this user, and through which channels.',
      additionalProperties: false,
      properties: {
        events: {
          type: 'array',
          description: 'Events: `All`, `TaskCompletion`, `NewResultFile`, `NewBotRelease`, `NewErrorEvent`, `RunnerOffline`.',
          items: str('An event.', { enum: ['All', 'TaskCompletion', 'NewResultFile', 'NewBotRelease', 'NewErrorEvent', 'RunnerOffline'] }),
        },
        channels: {
          type: 'array',
          description: 'Channels: `Email` (default), `Slack`, `Teams`.',
          default: ['Email'],
          items: str('A channel.', { enum: ['Email', 'Slack', 'Teams'] }),
        },
      },
    },
    concurrentExecution: {
      type: 'boolean',
      default: true,
      description: '`false`: the user may run only one job at a time (for credentials that cannot be used twice at once).',
    },
  },
};

/** Longest directory group id: a long LDAP DN fits; a 10 KB "id" is not one. */
export const MAX_DIRECTORY_ID_LENGTH = 1024;
/** Printable characters only: no control characters (C0, DEL, C1) in an id. */
export const DIRECTORY_ID_PATTERN = '^[^\\x00-\\x1f\\x7f-\\x9f]+$';
const DIRECTORY_PROVIDER_PATTERN = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';

const groupSpec: JSONSchema = {
  type: 'object',
  description:
    'A group of users. Members are listed on each User (`spec.groups`), except for a directory group (`spec.directory`), whose members are the people whose login presents it. The group `global` is protected and holds every user.',
  additionalProperties: false,
  properties: {
    displayName: str('Display name.', { maxLength: 256 }),
    description: str('What the group is for.', { maxLength: 2048 }),
    directory: {
      type: 'object',
      description:
        "Makes this a directory group: a reference to a group of the organization's identity provider. It has no members in Git (a User may not list it in spec.groups): " +
        'whoever logs in presenting its id is a member for the length of the session (default 1 hour), and is provisioned as a User on first login. Deleting the Group ends those rights at once.',
      required: ['provider', 'id'],
      additionalProperties: false,
      properties: {
        provider: str('The identity provider, for people: e.g. `azure-ad`, `okta`, `ldap`, `uipath`.', { pattern: DIRECTORY_PROVIDER_PATTERN, maxLength: 63 }),
        id: str(
          "What the provider's tokens carry in their groups claim: an object id, a distinguished name or a group name. Compared case-insensitively; unique in the tenant.",
          { minLength: 1, maxLength: MAX_DIRECTORY_ID_LENGTH, pattern: DIRECTORY_ID_PATTERN },
        ),
      },
    },
  },
};

const roleSpec: JSONSchema = {
  type: 'object',
  description: 'A named set of permissions, granted through RoleBindings.',
  required: ['scope'],
  additionalProperties: false,
  properties: {
    scope: str('`Tenant`: tenant resources, bound without a folder. `Folder`: folder resources, bound to a folder.', {
      enum: ['Tenant', 'Folder'],
    }),
    displayName: str('Display name.', { maxLength: 256 }),
    description: str('What the role is for.', { maxLength: 2048 }),
    permissions: {
      type: 'array',
      description: 'What the role allows: resources with actions.',
      maxItems: 64,
      items: {
        type: 'object',
        description: 'One resource and the actions allowed on it.',
        required: ['resource', 'actions'],
        additionalProperties: false,
        properties: {
          resource: str(
            `Tenant resources: ${TENANT_RESOURCES.join(', ')}. Folder resources: ${FOLDER_RESOURCES.join(', ')}.`,
            { enum: [...TENANT_RESOURCES, ...FOLDER_RESOURCES] },
          ),
          actions: {
            type: 'array',
            description: `Actions: ${ACTIONS.join(', ')}.`,
            minItems: 1,
            items: str('An action.', { enum: [...ACTIONS] }),
          },
        },
      },
    },
  },
};

const roleBindingSpec: JSONSchema = {
  type: 'object',
  description: 'Grants a Role to Users and Groups, in the tenant or in a folder, optionally narrowed to objects, an environment, a time.',
  required: ['roleRef', 'subjects'],
  additionalProperties: false,
  properties: {
    roleRef: {
      type: 'object',
      description: 'The Role granted, in the same namespace. Immutable: delete and recreate the binding to change it.',
      required: ['name'],
      additionalProperties: false,
      properties: { name: str('Role name.', { pattern: NAME_PATTERN, maxLength: 253 }) },
    },
    subjects: {
      type: 'array',
      description: 'Who is granted the role: Users (explicit rights) and Groups (inherited rights).',
      minItems: 1,
      maxItems: 1024,
      items: {
        type: 'object',
        description: 'A User or Group of the same namespace.',
        required: ['kind', 'name'],
        additionalProperties: false,
        properties: {
          kind: str('`User` or `Group`.', { enum: ['User', 'Group'] }),
          name: str('Object name.', { pattern: NAME_PATTERN, maxLength: 253 }),
        },
      },
    },
    folder: str(
      'Folder path such as `Finance/Invoices`: required for Folder roles, forbidden for Tenant roles. The binding also applies in every subfolder. At most 7 levels.',
      { pattern: FOLDER_PATTERN, maxLength: 1024 },
    ),
    resources: {
      type: 'array',
      description: 'When set, the binding grants only checks that name one of these objects.',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        description: 'An orchestrator object, such as `{kind: Process, name: invoice-bot}`.',
        required: ['kind', 'name'],
        additionalProperties: false,
        properties: {
          kind: str(`Object kind: ${OBJECT_KINDS.join(', ')}.`, { enum: [...OBJECT_KINDS] }),
          name: str('Object name in the orchestrator.', { minLength: 1, maxLength: 256 }),
        },
      },
    },
    environment: str('When set, the binding grants only checks in this environment (e.g. `staging`).', {
      minLength: 1,
      maxLength: 128,
      pattern: '^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$',
    }),
    expiresAt: str('RFC 3339 time after which the binding grants nothing.', { format: 'date-time' }),
  },
};

export const SPEC_SCHEMAS: Record<Kind, JSONSchema> = {
  User: userSpec,
  Group: groupSpec,
  Role: roleSpec,
  RoleBinding: roleBindingSpec,
};

/** The status every kind reports (written by the operator). */
export const STATUS_SCHEMA: JSONSchema = {
  type: 'object',
  description: 'What the operator observed and did.',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64', description: 'The generation this status describes.' },
    appliedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The generation whose spec the access store holds (what grants). Behind `generation` while the object is paused or its change was refused.',
    },
    conditions: {
      type: 'array',
      description: 'Conditions; `Ready` tells whether the object is in the access store and fully effective.',
      items: {
        type: 'object',
        required: ['type', 'status'],
        properties: {
          type: str('Condition type, e.g. `Ready`.'),
          status: str('`True`, `False` or `Unknown`.', { enum: ['True', 'False', 'Unknown'] }),
          reason: str('CamelCase reason, for filtering.'),
          message: str('What a person should know or do.'),
          observedGeneration: { type: 'integer', format: 'int64', description: 'Generation this condition was set for.' },
          lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
        },
      },
    },
  },
};

/** Full document schema (apiVersion, kind, metadata, spec) used by ajv for one kind. */
export function documentSchema(kind: Kind): JSONSchema {
  return {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'rpa-access.io/v1alpha1' },
      kind: { const: kind },
      metadata: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: NAME_PATTERN, maxLength: 253 },
          namespace: { type: 'string', pattern: NAMESPACE_PATTERN, maxLength: 63 },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          annotations: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
      spec: SPEC_SCHEMAS[kind],
      status: { type: 'object' },
    },
    additionalProperties: false,
  };
}
