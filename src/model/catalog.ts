/**
 * The permission catalog (contract section 2) and the built-in objects every tenant has
 * (contract section 1). Pure data: the engine, the validator and the CRD descriptions all read it.
 */

export const API_GROUP = 'rpa-access.io';
export const API_VERSION = 'v1alpha1';
export const API_VERSION_FULL = `${API_GROUP}/${API_VERSION}`;

export const KINDS = ['User', 'Group', 'Role', 'RoleBinding'] as const;
/**
 * The kinds in the order their objects are best reconciled in bulk: what is referred to (Groups,
 * Roles) before what refers to it (Users name Groups, RoleBindings name Roles, Users and Groups),
 * so that a reference is found on the first pass instead of reported missing and written again.
 */
export const KINDS_REFERENCED_FIRST: readonly Kind[] = ['Group', 'Role', 'User', 'RoleBinding'];
export type Kind = (typeof KINDS)[number];

export const TENANT_RESOURCES = [
  'Users', 'Groups', 'Roles', 'Folders', 'Robots', 'Runners', 'Machines',
  'Licenses', 'Settings', 'Audit', 'Alerts', 'Webhooks', 'Packages', 'Billing',
] as const;
export const FOLDER_RESOURCES = [
  'Processes', 'Jobs', 'Triggers', 'Queues', 'Assets', 'Logs', 'ResultFiles',
  'Errors', 'Environments', 'Deployments',
] as const;
export const ACTIONS = ['View', 'Create', 'Edit', 'Delete'] as const;

export type TenantResource = (typeof TENANT_RESOURCES)[number];
export type FolderResource = (typeof FOLDER_RESOURCES)[number];
export type CatalogResource = TenantResource | FolderResource;
export type Action = (typeof ACTIONS)[number];
export type Scope = 'Tenant' | 'Folder';

/** Kinds of objects a RoleBinding can be narrowed to with `spec.resources`. */
export const OBJECT_KINDS = [
  'Process', 'Robot', 'Queue', 'Asset', 'Trigger', 'Machine', 'Package', 'Runner', 'Environment',
] as const;

const tenantSet: ReadonlySet<string> = new Set(TENANT_RESOURCES);
const folderSet: ReadonlySet<string> = new Set(FOLDER_RESOURCES);
const actionSet: ReadonlySet<string> = new Set(ACTIONS);

export function resourceScope(resource: string): Scope | undefined {
  if (tenantSet.has(resource)) return 'Tenant';
  if (folderSet.has(resource)) return 'Folder';
  return undefined;
}

function isAction(action: string): action is Action {
  return actionSet.has(action);
}

export interface ParsedPermission {
  resource: CatalogResource;
  action: Action;
  scope: Scope;
}

/** `Jobs.Create` -> parts, or undefined when it is not in the catalog. */
export function parsePermission(permission: string): ParsedPermission | undefined {
  const dot = permission.indexOf('.');
  if (dot <= 0 || dot !== permission.lastIndexOf('.')) return undefined;
  const resource = permission.slice(0, dot);
  const action = permission.slice(dot + 1);
  const scope = resourceScope(resource);
  if (!scope || !isAction(action)) return undefined;
  return { resource: resource as CatalogResource, action, scope };
}

/** Every permission of the catalog, tenant ones first, in catalog order. */
export const ALL_PERMISSIONS: readonly string[] = [...TENANT_RESOURCES, ...FOLDER_RESOURCES].flatMap((r) =>
  ACTIONS.map((a) => `${r}.${a}`),
);

// ---------------------------------------------------------------------------------------------
// Built-in roles. Names are reserved: nobody may create, change or delete a Role by these names.

export interface PermissionRule {
  resource: string;
  actions: Action[];
}

export interface BuiltInRole {
  name: string;
  scope: Scope;
  displayName: string;
  description: string;
  permissions: PermissionRule[];
}

const all = (resources: readonly string[]): PermissionRule[] =>
  resources.map((resource) => ({ resource, actions: [...ACTIONS] }));
const view = (resources: readonly string[]): PermissionRule[] =>
  resources.map((resource) => ({ resource, actions: ['View'] }));
const rule = (resource: string, ...actions: Action[]): PermissionRule => ({ resource, actions });

export const BUILT_IN_ROLES: readonly BuiltInRole[] = [
  {
    name: 'owner',
    scope: 'Tenant',
    displayName: 'Owner',
    description: 'In charge of the tenant: everything, in the tenant and in every folder. At most one holder per tenant; transferable.',
    permissions: all([...TENANT_RESOURCES, ...FOLDER_RESOURCES]),
  },
  {
    name: 'administrator',
    scope: 'Tenant',
    displayName: 'Administrator',
    description: 'Everything, in the tenant and in every folder.',
    permissions: all([...TENANT_RESOURCES, ...FOLDER_RESOURCES]),
  },
  {
    name: 'developer',
    scope: 'Tenant',
    displayName: 'Developer',
    description:
      'Builds and ships automations: packages, processes, deployments, triggers, queues and assets in every folder; runs and follows jobs; reads logs, errors, result files, runners, robots and alerts.',
    permissions: [
      rule('Packages', 'View', 'Create', 'Edit', 'Delete'),
      rule('Robots', 'View'),
      rule('Runners', 'View'),
      rule('Machines', 'View'),
      rule('Alerts', 'View'),
      rule('Webhooks', 'View'),
      rule('Folders', 'View'),
      rule('Processes', 'View', 'Create', 'Edit', 'Delete'),
      rule('Deployments', 'View', 'Create', 'Edit', 'Delete'),
      rule('Triggers', 'View', 'Create', 'Edit', 'Delete'),
      rule('Queues', 'View', 'Create', 'Edit', 'Delete'),
      rule('Assets', 'View', 'Create', 'Edit', 'Delete'),
      rule('Jobs', 'View', 'Create', 'Edit'),
      rule('Logs', 'View'),
      rule('Errors', 'View'),
      rule('ResultFiles', 'View'),
      rule('Environments', 'View'),
    ],
  },
  {
    name: 'operator',
    scope: 'Tenant',
    displayName: 'Operator',
    description:
      'Runs and monitors automations in every folder: starts and stops jobs, works queues and triggers, acknowledges alerts; reads processes, logs, errors, result files, runners and robots. Cannot deploy or change packages.',
    permissions: [
      rule('Robots', 'View'),
      rule('Runners', 'View'),
      rule('Machines', 'View'),
      rule('Alerts', 'View', 'Edit'),
      rule('Folders', 'View'),
      rule('Packages', 'View'),
      rule('Processes', 'View'),
      rule('Deployments', 'View'),
      rule('Jobs', 'View', 'Create', 'Edit'),
      rule('Triggers', 'View', 'Edit'),
      rule('Queues', 'View', 'Create', 'Edit'),
      rule('Assets', 'View'),
      rule('Logs', 'View'),
      rule('Errors', 'View'),
      rule('ResultFiles', 'View'),
      rule('Environments', 'View'),
    ],
  },
  {
    name: 'analyst',
    scope: 'Tenant',
    displayName: 'Analyst',
    description: 'View on every resource, in the tenant and in every folder; nothing else.',
    permissions: view([...TENANT_RESOURCES, ...FOLDER_RESOURCES]),
  },
  {
    name: 'billing-contact',
    scope: 'Tenant',
    displayName: 'Billing Contact',
    description: 'The billing page only.',
    permissions: [rule('Billing', 'View', 'Create', 'Edit', 'Delete')],
  },
  {
    name: 'robot',
    scope: 'Tenant',
    displayName: 'Robot',
    description:
      'Held implicitly by every User of type Robot: what an unattended robot needs to run a job in any folder: read processes, packages, assets and its own robot and machine; update jobs; work queue items; write logs, errors and result files.',
    permissions: [
      rule('Robots', 'View'),
      rule('Machines', 'View'),
      rule('Packages', 'View'),
      rule('Settings', 'View'),
      rule('Processes', 'View'),
      rule('Jobs', 'View', 'Edit'),
      rule('Queues', 'View', 'Create', 'Edit'),
      rule('Assets', 'View'),
      rule('Logs', 'View', 'Create'),
      rule('Errors', 'Create'),
      rule('ResultFiles', 'View', 'Create'),
      rule('Triggers', 'View'),
      rule('Environments', 'View'),
    ],
  },
  {
    name: 'folder-administrator',
    scope: 'Folder',
    displayName: 'Folder Administrator',
    description: 'Every folder permission, in the bound folder and its subfolders.',
    permissions: all(FOLDER_RESOURCES),
  },
  {
    name: 'automation-user',
    scope: 'Folder',
    displayName: 'Automation User',
    description: 'Starts and follows jobs of the processes in the bound folder and its subfolders.',
    permissions: [
      rule('Processes', 'View'),
      rule('Jobs', 'View', 'Create'),
      rule('Queues', 'View'),
      rule('Assets', 'View'),
      rule('Logs', 'View'),
      rule('ResultFiles', 'View'),
      rule('Environments', 'View'),
    ],
  },
  {
    name: 'folder-viewer',
    scope: 'Folder',
    displayName: 'Folder Viewer',
    description: 'View on every folder resource, in the bound folder and its subfolders; nothing else.',
    permissions: view(FOLDER_RESOURCES),
  },
];

export const BUILT_IN_ROLE_NAMES: ReadonlySet<string> = new Set(BUILT_IN_ROLES.map((r) => r.name));

/**
 * Tenant roles whose grants of folder resources apply in every folder. Custom tenant roles
 * cannot name folder resources at all (the validator refuses it), so only these reach folders.
 */
export const OWNER_ROLE = 'owner';
export const ADMINISTRATOR_ROLE = 'administrator';
export const ROBOT_ROLE = 'robot';
/** Roles whose explicit holders cannot be deleted or deactivated (contract 4.4). */
export const PROTECTED_HOLDER_ROLES: ReadonlySet<string> = new Set([OWNER_ROLE, ADMINISTRATOR_ROLE]);

export const GLOBAL_GROUP = 'global';
export const GLOBAL_GROUP_SPEC = {
  displayName: 'GLOBAL',
  description: 'Every user of the tenant is a member. Protected: cannot be changed or deleted.',
} as const;

export function builtInRole(name: string): BuiltInRole | undefined {
  return BUILT_IN_ROLES.find((r) => r.name === name);
}

/** Labels and annotations the project uses on Kubernetes objects. */
export const LABEL_BUILT_IN = `${API_GROUP}/built-in`;
export const LABEL_TENANT = `${API_GROUP}/tenant`;
/** On a custom resource the operator mirrored from an object the store created (contract 4.7). */
export const LABEL_CREATED_BY = `${API_GROUP}/created-by`;
export const CREATED_BY_OWNERSHIP_TRANSFER = 'ownership-transfer';
export const ANNOTATION_PAUSED = `${API_GROUP}/paused`;
export const FINALIZER = `${API_GROUP}/store`;
