/**
 * The CustomResourceDefinitions of the four access kinds (the Orchestrator's comes from
 * orchestrator.ts), derived from the JSON Schemas of src/model/schemas.ts (the single source of
 * truth: ajv validates with the same objects). Pure: `buildCrds()` returns
 * plain objects; `renderCrdFiles()` gives the exact bytes scripts/gen-crds.ts writes to crds/,
 * config/crd/bases/ and charts/rpa-access/crds/, and test/unit/crds.test.ts compares them.
 *
 * Conversion to a Kubernetes structural schema (src/k8s/structural-schema.ts), plus:
 * - RoleBinding `spec.roleRef` gets a CEL transition rule (`self == oldSelf`): honoured by
 *   Kubernetes 1.25+, dropped by older servers; the webhook and the operator enforce it as well;
 * - RoleBinding `spec` gets CEL rules for the built-in roles' scope (folder required for folder
 *   roles, forbidden for tenant roles), likewise a first line before the webhook's full check;
 * - `status.conditions` becomes an atomic list (CONDITIONS_LIST says why it is not a map list).
 */
import yaml from 'js-yaml';
import { BUILT_IN_ROLES, KINDS, type Kind } from '../../model/catalog.js';
import { SPEC_SCHEMAS, STATUS_SCHEMA, type JSONSchema } from '../../model/schemas.js';
import { toStructuralSchema } from '../../k8s/structural-schema.js';
import { CONDITIONS_LIST, conditionPath, customResourceDefinition, printerColumn as col, type PrinterColumn } from './custom-resource-definition.js';
import { buildOrchestratorCrd } from './orchestrator.js';
import { PLURALS, SHORT_NAMES } from './resource.js';

/** What `kubectl explain <kind>` prints first. */
const KIND_DESCRIPTIONS: Record<Kind, string> = {
  User:
    'A User of an RPA orchestrator tenant (the namespace): a person or a robot account. Its rights come from the RoleBindings that name it or one of its Groups.',
  Group: 'A Group of Users of a tenant. Bindings to a Group grant its members (inherited rights). Every tenant has the protected group `global`, which holds every user.',
  Role: 'A named set of permissions (`Resource.Action`) of a tenant, with scope `Tenant` or `Folder`. Built-in roles are created by the operator and cannot be changed.',
  RoleBinding:
    'Grants a Role to Users and Groups of the same tenant: tenant-wide for Tenant roles, in a folder and its subfolders for Folder roles; optionally narrowed to objects, an environment, a time.',
};

const READY = conditionPath('Ready');

const KIND_COLUMNS: Record<Kind, PrinterColumn[]> = {
  User: [
    col('Email', '.spec.email', 'The user identity.'),
    col('Type', '.spec.type', '`Human` or `Robot`.'),
    col('Active', '.spec.active', 'An inactive user is denied everything.', 'boolean'),
  ],
  Group: [
    col('Display Name', '.spec.displayName', 'Display name.'),
    col('Directory', '.spec.directory.id', "A directory group: the identity provider's group id whose logins make members."),
    col('Provider', '.spec.directory.provider', 'The identity provider of a directory group.', 'string', 1),
  ],
  Role: [col('Scope', '.spec.scope', '`Tenant` or `Folder`.'), col('Display Name', '.spec.displayName', 'Display name.')],
  RoleBinding: [
    col('Role', '.spec.roleRef.name', 'The Role granted.'),
    col('Folder', '.spec.folder', 'The folder (and its subfolders) of a Folder role binding.'),
    col('Subjects', '.spec.subjects[*].name', 'Users and Groups granted the role.'),
  ],
};

function printerColumns(kind: Kind): PrinterColumn[] {
  return [
    ...KIND_COLUMNS[kind],
    col('Ready', `${READY}.status`, 'Whether the object is in the access store and fully effective.'),
    col('Reason', `${READY}.reason`, 'Why the object is (not) ready.', 'string', 1),
    col('Age', '.metadata.creationTimestamp', 'Time since creation.', 'date'),
  ];
}

function specSchema(kind: Kind): JSONSchema {
  const spec = toStructuralSchema(SPEC_SCHEMAS[kind], `${kind}.spec`);
  if (kind === 'RoleBinding') {
    const props = spec.properties as Record<string, JSONSchema>;
    const roleRef = props.roleRef;
    if (!roleRef) throw new Error('RoleBinding.spec: roleRef missing from the schema');
    props.roleRef = {
      ...roleRef,
      'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'roleRef is immutable' }],
    };
    // What the API server can judge alone: the scope of the built-in roles (a custom Role's
    // scope lives in another object, which only the webhook and the operator can read).
    const names = (scope: 'Tenant' | 'Folder') => `[${BUILT_IN_ROLES.filter((r) => r.scope === scope).map((r) => `'${r.name}'`).join(', ')}]`;
    spec['x-kubernetes-validations'] = [
      { rule: `!(self.roleRef.name in ${names('Folder')}) || has(self.folder)`, message: 'spec.folder is required for a folder role' },
      { rule: `!(self.roleRef.name in ${names('Tenant')}) || !has(self.folder)`, message: 'spec.folder is forbidden for a tenant role' },
    ];
  }
  return spec;
}

function statusSchema(): JSONSchema {
  const status = toStructuralSchema(STATUS_SCHEMA, 'status');
  const props = status.properties as Record<string, JSONSchema>;
  const conditions = props.conditions;
  if (conditions) {
    props.conditions = { ...conditions, ...CONDITIONS_LIST };
  }
  return status;
}

/** One apiextensions.k8s.io/v1 CustomResourceDefinition per kind, in KINDS order, then Orchestrator. */
export function buildCrds(): object[] {
  return [...KINDS.map(accessCrd), buildOrchestratorCrd()];
}

function accessCrd(kind: Kind): object {
  return customResourceDefinition({
    kind,
    plural: PLURALS[kind],
    shortNames: SHORT_NAMES[kind],
    description: KIND_DESCRIPTIONS[kind],
    printerColumns: printerColumns(kind),
    spec: specSchema(kind),
    status: statusSchema(),
  });
}

export const CRD_HEADER = '# generated by npm run gen:crds from src/model/schemas.ts; do not edit\n';

/** Directories (relative to the repository root) that hold the same generated CRD files. */
export const CRD_OUTPUT_DIRS = ['crds', 'config/crd/bases', 'charts/rpa-access/crds'] as const;

function renderCrd(crd: object): string {
  return CRD_HEADER + yaml.dump(crd, { noRefs: true, lineWidth: -1, sortKeys: false, quotingType: "'" });
}

/** File name and content of every CRD, e.g. `users.rpa-access.io.yaml`. */
export function renderCrdFiles(): { file: string; content: string }[] {
  return buildCrds().map((crd) => ({
    file: `${(crd as { metadata: { name: string } }).metadata.name}.yaml`,
    content: renderCrd(crd),
  }));
}
