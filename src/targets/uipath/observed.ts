/**
 * What a UiPath organization (Identity) and Orchestrator tenant hold, as the client reads it:
 * only the fields the sync compares. Identity ids are GUIDs, Orchestrator ids are numbers.
 */
export interface ObservedIdentityUser {
  id: string;
  email: string;
  userName: string;
  displayName: string;
  active: boolean;
  groupIds: string[];
}

export interface ObservedRobotAccount {
  id: string;
  name: string;
  displayName: string;
  groupIds: string[];
}

export interface ObservedGroup {
  id: string;
  name: string;
  builtIn: boolean;
}

/** An entry of Orchestrator's /odata/Users: a human, robot account or group given access to the tenant. */
export interface ObservedTenantPrincipal {
  id: number;
  userName: string;
  email?: string;
  type: string;
  /** The Identity id it stands for. */
  directoryId?: string;
  roleIds: number[];
}

export interface ObservedRole {
  id: number;
  name: string;
  type: string;
  isStatic: boolean;
  isEditable: boolean;
  /** Granted permission names, sorted. */
  permissions: string[];
}

export interface ObservedFolder {
  id: number;
  path: string;
  displayName: string;
  parentId?: number;
}

export interface ObservedUiPath {
  organizationId: string;
  users: ObservedIdentityUser[];
  robots: ObservedRobotAccount[];
  groups: ObservedGroup[];
  principals: ObservedTenantPrincipal[];
  roles: ObservedRole[];
  folders: ObservedFolder[];
  /** Folder id -> tenant principal id -> role ids assigned directly in that folder. */
  assignments: Map<number, Map<number, number[]>>;
}

/** Ledger kinds: what rpa-access records having created (or adopted) in UiPath. */
export type OwnedKind = 'IdentityUser' | 'RobotAccount' | 'IdentityGroup' | 'TenantPrincipal' | 'Role' | 'Folder';

export interface Ownership {
  /** `${kind}:${externalId}` of everything any target of this store created or adopted. */
  owned: Set<string>;
  /** The subset that no other target also claims (only those are deleted under deletionPolicy Delete). */
  exclusive: Set<string>;
}

export const ownedKey = (kind: OwnedKind, id: string | number): string => `${kind}:${id}`;
