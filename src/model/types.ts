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

export interface GroupSpec {
  displayName?: string;
  description?: string;
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
 * itself, such as the administrator binding an ownership transfer leaves behind.
 */
export type Origin = 'user' | 'builtin' | 'system';

export interface Entry<K extends Kind = Kind> {
  kind: K;
  name: string;
  spec: SpecByKind[K];
  origin: Origin;
}

/** All objects of one tenant (namespace), by kind then name. */
export interface TenantState {
  tenant: string;
  users: Map<string, Entry<'User'>>;
  groups: Map<string, Entry<'Group'>>;
  roles: Map<string, Entry<'Role'>>;
  bindings: Map<string, Entry<'RoleBinding'>>;
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
