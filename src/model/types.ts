/** Shapes of the four custom resources and of a tenant's state as the store and engine see it. */
import type { Action, Kind, Scope } from './catalog.js';

export type NotificationEvent = 'All' | 'TaskCompletion' | 'NewResultFile' | 'NewBotRelease' | 'NewErrorEvent' | 'RunnerOffline';
export type NotificationChannel = 'Email' | 'Slack' | 'Teams';

export interface UserSpec {
  email: string;
  fullName?: string;
  type: 'Human' | 'Robot';
  active: boolean;
  groups?: string[];
  slackId?: string;
  teamsId?: string;
  language: string;
  notifications?: { events?: NotificationEvent[]; channels?: NotificationChannel[] };
  concurrentExecution: boolean;
}

/** A group of the organization's identity provider (contract section 7). */
export interface DirectoryRef {
  /** Which identity provider: `azure-ad`, `okta`, `ldap`, `uipath`... (free text, for people). */
  provider: string;
  /** What the provider's tokens carry in their groups claim: an object id, a DN or a name. */
  id: string;
}

export interface GroupSpec {
  displayName?: string;
  description?: string;
  /** Set: a directory group, whose members are the people whose login presents `id`. */
  directory?: DirectoryRef;
}

export interface RoleSpec {
  scope: Scope;
  displayName?: string;
  description?: string;
  permissions?: { resource: string; actions: Action[] }[];
}

export interface Subject {
  kind: 'User' | 'Group';
  name: string;
}

export interface ObjectRef {
  kind: string;
  name: string;
}

export interface RoleBindingSpec {
  roleRef: { name: string };
  subjects: Subject[];
  folder?: string;
  resources?: ObjectRef[];
  environment?: string;
  expiresAt?: string;
}

export interface SpecByKind {
  User: UserSpec;
  Group: GroupSpec;
  Role: RoleSpec;
  RoleBinding: RoleBindingSpec;
}

/**
 * Who wrote an object into the store. `user`: documents (GitOps, kubectl, the CLI).
 * `builtin`: the built-in roles and the global group. `system`: objects the store derived
 * itself, such as the administrator binding an ownership transfer leaves behind. `directory`: a
 * User auto-provisioned by a login (contract section 7); a User document with its email adopts it.
 */
export type Origin = 'user' | 'builtin' | 'system' | 'directory';

export interface Entry<K extends Kind = Kind> {
  kind: K;
  name: string;
  spec: SpecByKind[K];
  origin: Origin;
}

/**
 * A login (contract section 7): the directory groups of the tenant that matched the identity
 * token's groups, valid until `expiresAt`. One per person, keyed by the email in lower case (so
 * that a User document adopting an auto-provisioned user keeps the session).
 */
export interface Session {
  /** The email as logged in, in lower case. */
  email: string;
  /** The User's name at login. */
  user: string;
  /** The matched directory Groups: name and the directory id that matched. */
  groups: { name: string; id: string }[];
  startedAt: string;
  expiresAt: string;
  /** The groups a login provisioned the user from (kept by later logins), when one did. */
  provisionedFrom?: string[];
}

/** All objects of one tenant (namespace), by kind then name; and its login sessions. */
export interface TenantState {
  tenant: string;
  users: Map<string, Entry<'User'>>;
  groups: Map<string, Entry<'Group'>>;
  roles: Map<string, Entry<'Role'>>;
  bindings: Map<string, Entry<'RoleBinding'>>;
  /** Sessions by email in lower case; absent means none. Not objects: plans never change them. */
  sessions?: Map<string, Session>;
}

/** A document as written in YAML / stored by Kubernetes. */
export interface AccessDocument<K extends Kind = Kind> {
  apiVersion: string;
  kind: K;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  spec: SpecByKind[K];
}

export type AnyEntry = Entry<'User'> | Entry<'Group'> | Entry<'Role'> | Entry<'RoleBinding'>;
