/**
 * How rpa-access's permission catalog (contract section 2) and built-in roles (section 1) are
 * written in UiPath Orchestrator. Sources: UiPath's "About roles" and "Default roles" pages
 * (Orchestrator user guide: tenant permissions Alerts, Audit, License, Machines, Packages, Robots,
 * Roles, Settings, Units, Users, Webhooks...; folder permissions Assets, Environments, Jobs, Logs,
 * Processes, Queues, Schedules, SubFolders...) and the `PermissionDto.Name` values of the
 * Orchestrator API (`Resource.Action`, e.g. `Units.View`). docs/uipath.md shows this table.
 *
 * A permission UiPath has no counterpart for is left out (never replaced by a wider one) and
 * reported as not representable.
 */
import type { Action, CatalogResource } from '../../model/catalog.js';

/** rpa-access resource -> UiPath permission resource and the actions UiPath has for it. */
export interface PermissionMapping {
  uipath: string;
  actions: readonly Action[];
}

const ALL: readonly Action[] = ['View', 'Create', 'Edit', 'Delete'];

const PERMISSION_TABLE: Readonly<Record<CatalogResource, PermissionMapping | null>> = {
  // Tenant resources
  Users: { uipath: 'Users', actions: ALL },
  // UiPath groups live in the organization (Identity), managed under Users in Orchestrator: no permission of their own.
  Groups: null,
  Roles: { uipath: 'Roles', actions: ALL },
  Folders: { uipath: 'Units', actions: ALL },
  Robots: { uipath: 'Robots', actions: ALL },
  // Runners are not a UiPath concept (robots run on machines).
  Runners: null,
  Machines: { uipath: 'Machines', actions: ALL },
  Licenses: { uipath: 'License', actions: ['View', 'Edit'] },
  Settings: { uipath: 'Settings', actions: ALL },
  Audit: { uipath: 'Audit', actions: ['View'] },
  Alerts: { uipath: 'Alerts', actions: ['View', 'Create', 'Edit'] },
  Webhooks: { uipath: 'Webhooks', actions: ALL },
  Packages: { uipath: 'Packages', actions: ALL },
  // Billing is the organization's licensing portal, outside Orchestrator.
  Billing: null,
  // Folder resources
  Processes: { uipath: 'Processes', actions: ALL },
  Jobs: { uipath: 'Jobs', actions: ['View', 'Create', 'Edit'] },
  Triggers: { uipath: 'Schedules', actions: ALL },
  Queues: { uipath: 'Queues', actions: ALL },
  Assets: { uipath: 'Assets', actions: ALL },
  Logs: { uipath: 'Logs', actions: ['View', 'Create', 'Delete'] },
  // Result files and errors have no permission of their own in Orchestrator (errors are log
  // entries, files live in storage buckets whose permission covers far more).
  ResultFiles: null,
  Errors: null,
  Environments: { uipath: 'Environments', actions: ALL },
  // Deploying is Processes.Create plus feed access in UiPath: no narrower equivalent.
  Deployments: null,
};

/** In a folder role standing for tenant-wide folder grants, `Folders` is `SubFolders`. */
const FOLDER_ROLE_FOLDERS: PermissionMapping = { uipath: 'SubFolders', actions: ALL };

export interface MappedPermissions {
  /** UiPath permission names, sorted. */
  names: string[];
  /** rpa-access permissions with no UiPath counterpart (`Resource.Action`), in catalog order. */
  dropped: string[];
}

/**
 * Maps `{resource, actions}` rules to UiPath permission names. `asFolderRole`: the folder half
 * of a tenant-wide built-in (`Folders` becomes `SubFolders`).
 */
export function mapPermissions(rules: readonly { resource: string; actions: readonly string[] }[], asFolderRole = false): MappedPermissions {
  const names = new Set<string>();
  const dropped: string[] = [];
  for (const rule of rules) {
    const mapping = asFolderRole && rule.resource === 'Folders' ? FOLDER_ROLE_FOLDERS : PERMISSION_TABLE[rule.resource as CatalogResource];
    for (const action of rule.actions) {
      if (mapping && (mapping.actions as readonly string[]).includes(action)) names.add(`${mapping.uipath}.${action}`);
      else dropped.push(`${rule.resource}.${action}`);
    }
  }
  return { names: [...names].sort(), dropped };
}

/** UiPath permission name -> rpa-access `{resource, action}`; the inverse of the table, for import. */
export function unmapPermission(name: string): { resource: CatalogResource; action: Action } | undefined {
  const dot = name.lastIndexOf('.');
  const res = name.slice(0, dot);
  const action = name.slice(dot + 1) as Action;
  if (res === 'SubFolders') return ALL.includes(action) ? { resource: 'Folders', action } : undefined;
  for (const [resource, m] of Object.entries(PERMISSION_TABLE)) {
    if (m && m.uipath === res && m.actions.includes(action)) return { resource: resource as CatalogResource, action };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// UiPath's static roles (IsStatic: defined by the application, never edited or deleted by us).

export const UIPATH_ADMINISTRATOR = 'Administrator';
const UIPATH_ALLOW_FOLDER_ADMINISTRATOR = 'Allow to be Folder Administrator';
export const UIPATH_FOLDER_ADMINISTRATOR = 'Folder Administrator';
const UIPATH_ALLOW_AUTOMATION_USER = 'Allow to be Automation User';
export const UIPATH_AUTOMATION_USER = 'Automation User';
export const UIPATH_ROBOT = 'Robot';

/**
 * How each built-in role is written in UiPath. `static`: UiPath's own roles (tenant-level and
 * folder-level halves). `owned`: rpa-access creates and owns a tenant role `<name>` and, for
 * roles whose grants reach every folder, a folder role `<name>-folders` assigned on every root folder.
 */
export type BuiltInMapping =
  | { kind: 'static'; tenantRoles: string[]; folderRoles: string[] }
  | { kind: 'owned'; tenantRole?: string; folderRole?: string; everyFolder: boolean };

export const BUILT_IN_MAPPING: Readonly<Record<string, BuiltInMapping>> = {
  // UiPath's Administrator holds every tenant permission and reaches every folder: owner is an administrator there.
  owner: { kind: 'static', tenantRoles: [UIPATH_ADMINISTRATOR], folderRoles: [] },
  administrator: { kind: 'static', tenantRoles: [UIPATH_ADMINISTRATOR], folderRoles: [] },
  'folder-administrator': { kind: 'static', tenantRoles: [UIPATH_ALLOW_FOLDER_ADMINISTRATOR], folderRoles: [UIPATH_FOLDER_ADMINISTRATOR] },
  'automation-user': { kind: 'static', tenantRoles: [UIPATH_ALLOW_AUTOMATION_USER], folderRoles: [UIPATH_AUTOMATION_USER] },
  robot: { kind: 'static', tenantRoles: [UIPATH_ROBOT], folderRoles: [] },
  developer: { kind: 'owned', tenantRole: 'developer', folderRole: 'developer-folders', everyFolder: true },
  operator: { kind: 'owned', tenantRole: 'operator', folderRole: 'operator-folders', everyFolder: true },
  analyst: { kind: 'owned', tenantRole: 'analyst', folderRole: 'analyst-folders', everyFolder: true },
  'billing-contact': { kind: 'owned', tenantRole: 'billing-contact', everyFolder: false },
  'folder-viewer': { kind: 'owned', folderRole: 'folder-viewer', everyFolder: false },
};

export const STATIC_ROLE_NAMES: ReadonlySet<string> = new Set([
  UIPATH_ADMINISTRATOR, UIPATH_ALLOW_FOLDER_ADMINISTRATOR, UIPATH_FOLDER_ADMINISTRATOR,
  UIPATH_ALLOW_AUTOMATION_USER, UIPATH_AUTOMATION_USER, UIPATH_ROBOT,
]);
