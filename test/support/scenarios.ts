/**
 * The contract's rules (sections 3 and 4) as data: each scenario applies documents in steps and
 * states what must be allowed, denied or refused. The same table runs against the pure model
 * and against each store backend, so every rule is proven on SQLite and on PostgreSQL alike.
 */
import type { Kind } from '../../src/model/catalog.js';
import { validateDocument } from '../../src/model/validate.js';
import type { AnyEntry } from '../../src/model/types.js';

export const T = 'finance';

/** A validated entry (defaults applied), as the CLI and the operator hand them to the store. */
export function entry(kind: Kind, name: string, spec: Record<string, unknown>): AnyEntry {
  const r = validateDocument({ apiVersion: 'rpa-access.io/v1alpha1', kind, metadata: { name, namespace: T }, spec });
  if (!r.document) throw new Error(`bad fixture ${kind}/${name}: ${r.problems.join('; ')}`);
  return { kind, name, spec: r.document.spec, origin: 'user' } as AnyEntry;
}

export const user = (name: string, extra: Record<string, unknown> = {}) => entry('User', name, { email: `${name}@example.com`, ...extra });
export const group = (name: string, extra: Record<string, unknown> = {}) => entry('Group', name, extra);
export const role = (name: string, scope: 'Tenant' | 'Folder', permissions: [string, string[]][]) =>
  entry('Role', name, { scope, permissions: permissions.map(([resource, actions]) => ({ resource, actions })) });
export const bind = (name: string, roleName: string, subjects: string[], extra: Record<string, unknown> = {}) =>
  entry('RoleBinding', name, {
    roleRef: { name: roleName },
    subjects: subjects.map((s) => {
      const [kind, n] = s.split(':') as [string, string];
      return { kind: kind === 'g' ? 'Group' : 'User', name: n };
    }),
    ...extra,
  });

export interface Expect {
  user: string;
  permission: string;
  folder?: string;
  resource?: string;
  environment?: string;
  allowed: boolean;
  /** When allowed: the `via` of every grant, sorted. */
  via?: string[];
  reason?: string;
}

export interface Step {
  upserts?: AnyEntry[];
  deletes?: { kind: Kind; name: string }[];
  prune?: boolean;
  /** Rule name of the violation that must refuse this step (the store must stay as it was). */
  refused?: string;
  expect?: Expect[];
}

export interface Scenario {
  rule: string;
  steps: Step[];
}

const base = [user('ann'), user('bob', { groups: ['ops'] }), group('ops')];

export const SCENARIOS: Scenario[] = [
  {
    rule: '3.1 explicit and inherited grants are united; global reaches everyone',
    steps: [{
      upserts: [...base, user('cy', { groups: ['ops'] }),
        bind('ops-auto', 'automation-user', ['g:ops'], { folder: 'A' }),
        bind('bob-admin', 'folder-administrator', ['u:bob'], { folder: 'A' }),
        bind('all-view', 'folder-viewer', ['g:global'], { folder: 'Shared' })],
      expect: [
        { user: 'bob', permission: 'Jobs.Create', folder: 'A', allowed: true, via: ['group:ops', 'user'] },
        { user: 'bob', permission: 'Assets.Delete', folder: 'A', allowed: true, via: ['user'] },
        { user: 'cy', permission: 'Jobs.Create', folder: 'A', allowed: true, via: ['group:ops'] },
        { user: 'cy', permission: 'Assets.Delete', folder: 'A', allowed: false },
        { user: 'ann', permission: 'Logs.View', folder: 'Shared/x', allowed: true, via: ['group:global'] },
        { user: 'ann', permission: 'Jobs.Create', folder: 'A', allowed: false, reason: 'NoGrant' },
      ],
    }],
  },
  {
    rule: '3.2 a folder binding covers its subtree, never a sibling, a parent or a prefix',
    steps: [{
      upserts: [...base, bind('b', 'automation-user', ['u:ann'], { folder: 'Finance/Invoices' })],
      expect: [
        { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/Invoices', allowed: true },
        { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/Invoices/2026/Q1', allowed: true },
        { user: 'ann', permission: 'Jobs.Create', folder: 'Finance', allowed: false },
        { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/Payroll', allowed: false },
        { user: 'ann', permission: 'Jobs.Create', folder: 'Finance/InvoicesOld', allowed: false },
      ],
    }],
  },
  {
    rule: '3.2 built-in tenant roles reach every folder; tenant resources need no folder',
    steps: [{
      upserts: [...base, role('user-admin', 'Tenant', [['Users', ['View', 'Edit']]]),
        bind('dev', 'developer', ['u:ann']), bind('ua', 'user-admin', ['u:bob'])],
      expect: [
        { user: 'ann', permission: 'Deployments.Create', folder: 'Any/Where', allowed: true },
        { user: 'ann', permission: 'Packages.Create', allowed: true },
        { user: 'ann', permission: 'Users.Edit', allowed: false },
        { user: 'bob', permission: 'Users.Edit', allowed: true },
        { user: 'bob', permission: 'Jobs.View', folder: 'A', allowed: false },
      ],
    }],
  },
  {
    rule: '3.3 resources and environment narrow a binding',
    steps: [{
      upserts: [...base,
        bind('one-process', 'automation-user', ['u:ann'], { folder: 'HR', resources: [{ kind: 'Process', name: 'payroll' }] }),
        bind('one-robot', 'automation-user', ['u:bob'], { folder: 'HR', resources: [{ kind: 'Robot', name: 'hr-01' }] }),
        bind('staging', 'folder-administrator', ['u:ann'], { folder: 'Apps', environment: 'staging' })],
      expect: [
        { user: 'ann', permission: 'Jobs.Create', folder: 'HR', resource: 'Process/payroll', allowed: true },
        { user: 'ann', permission: 'Jobs.Create', folder: 'HR', resource: 'Process/other', allowed: false },
        { user: 'ann', permission: 'Jobs.Create', folder: 'HR', allowed: false },
        { user: 'bob', permission: 'Jobs.Create', folder: 'HR', resource: 'Robot/hr-01', allowed: true },
        { user: 'bob', permission: 'Jobs.Create', folder: 'HR', resource: 'Robot/hr-02', allowed: false },
        { user: 'ann', permission: 'Deployments.Create', folder: 'Apps', environment: 'staging', allowed: true },
        { user: 'ann', permission: 'Deployments.Create', folder: 'Apps', environment: 'production', allowed: false },
        { user: 'ann', permission: 'Deployments.Create', folder: 'Apps', allowed: false },
      ],
    }],
  },
  {
    rule: '3.4 denied: unknown user, inactive user, expired binding, missing role, no role',
    steps: [{
      upserts: [...base, user('old', { active: false }), user('none'),
        bind('a', 'folder-viewer', ['u:old', 'u:ann'], { folder: 'A' }),
        bind('gone', 'folder-viewer', ['u:bob'], { folder: 'A', expiresAt: '2020-01-01T00:00:00Z' }),
        bind('later', 'folder-viewer', ['u:bob'], { folder: 'B', expiresAt: '2999-01-01T00:00:00Z' }),
        bind('dangling', 'no-such-role', ['u:none'])],
      expect: [
        { user: 'ghost', permission: 'Jobs.View', folder: 'A', allowed: false, reason: 'UserNotFound' },
        { user: 'old', permission: 'Jobs.View', folder: 'A', allowed: false, reason: 'UserInactive' },
        { user: 'ann', permission: 'Jobs.View', folder: 'A', allowed: true },
        { user: 'bob', permission: 'Jobs.View', folder: 'A', allowed: false },
        { user: 'bob', permission: 'Jobs.View', folder: 'B', allowed: true },
        { user: 'none', permission: 'Users.View', allowed: false },
      ],
    }],
  },
  {
    rule: '3.4 robot accounts hold the robot role implicitly; users are found by email',
    steps: [{
      upserts: [...base, user('hr-01', { type: 'Robot', email: 'HR-01@Robots.Example.com' })],
      expect: [
        { user: 'hr-01@robots.example.com', permission: 'Logs.Create', folder: 'Any', allowed: true, via: ['user'] },
        { user: 'hr-01', permission: 'Users.Edit', allowed: false },
        { user: 'ANN@example.com', permission: 'Users.View', allowed: false },
      ],
    }],
  },
  {
    rule: '4.1 the global group cannot be deleted or changed',
    steps: [
      { upserts: base },
      { deletes: [{ kind: 'Group', name: 'global' }], refused: 'ProtectedGlobalGroup' },
      { upserts: [group('global', { displayName: 'Everyone' })], refused: 'ProtectedGlobalGroup' },
      { upserts: [group('global', { displayName: 'GLOBAL', description: 'Every user of the tenant is a member. Protected: cannot be changed or deleted.' })] },
    ],
  },
  {
    rule: '4.2 built-in roles cannot be deleted or changed; reserved names cannot be taken',
    steps: [
      { upserts: base },
      { deletes: [{ kind: 'Role', name: 'administrator' }], refused: 'BuiltInRole' },
      { upserts: [role('analyst', 'Tenant', [['Users', ['View']]])], refused: 'BuiltInRole' },
      { upserts: [role('automation-user', 'Folder', [['Jobs', ['View', 'Create', 'Delete']]])], refused: 'BuiltInRole' },
    ],
  },
  {
    rule: '4.3 one owner, one User subject; transfer leaves the former owner administrator',
    steps: [
      { upserts: [...base, bind('owner', 'owner', ['u:ann'])], expect: [{ user: 'ann', permission: 'Billing.Edit', allowed: true }] },
      { upserts: [bind('owner-2', 'owner', ['u:bob'])], refused: 'SingleOwner' },
      { upserts: [bind('owner', 'owner', ['u:ann', 'u:bob'])], refused: 'SingleOwner' },
      { upserts: [bind('owner', 'owner', ['g:ops'])], refused: 'SingleOwner' },
      {
        upserts: [bind('owner', 'owner', ['u:bob'])],
        expect: [
          { user: 'bob', permission: 'Settings.Edit', allowed: true, via: ['user'] },
          { user: 'ann', permission: 'Settings.Edit', allowed: true, via: ['user'] },
        ],
      },
      // The transfer's administrator binding is the store's own: prune keeps it.
      { upserts: [...base, bind('owner', 'owner', ['u:bob'])], prune: true, expect: [{ user: 'ann', permission: 'Users.Delete', allowed: true }] },
    ],
  },
  {
    rule: '4.4 an explicit owner or administrator cannot be deleted or deactivated',
    steps: [
      { upserts: [...base, bind('admins', 'administrator', ['u:ann'])] },
      { deletes: [{ kind: 'User', name: 'ann' }], refused: 'ProtectedHolder' },
      { upserts: [user('ann', { active: false })], refused: 'ProtectedHolder' },
      { deletes: [{ kind: 'RoleBinding', name: 'admins' }, { kind: 'User', name: 'ann' }], expect: [{ user: 'ann', permission: 'Users.View', allowed: false, reason: 'UserNotFound' }] },
    ],
  },
  {
    rule: '4.5 roleRef never changes; scope rules hold; folders at most 7 levels',
    steps: [
      { upserts: [...base, bind('b', 'folder-viewer', ['u:ann'], { folder: 'A' })] },
      { upserts: [bind('b', 'automation-user', ['u:ann'], { folder: 'A' })], refused: 'ImmutableRoleRef' },
      { upserts: [bind('c', 'folder-viewer', ['u:ann'])], refused: 'BindingScope' },
      { upserts: [bind('d', 'analyst', ['u:ann'], { folder: 'A' })], refused: 'BindingScope' },
      { upserts: [role('r', 'Folder', [['Jobs', ['View']]]), bind('e', 'r', ['u:bob'], { folder: 'A/B/C/D/E/F/G' })], expect: [{ user: 'bob', permission: 'Jobs.View', folder: 'A/B/C/D/E/F/G', allowed: true }] },
      { upserts: [role('r', 'Tenant', [['Users', ['View']]])], refused: 'BindingScope' },
    ],
  },
  {
    rule: '4 emails are unique in a tenant, case-insensitively',
    steps: [
      { upserts: base },
      { upserts: [user('ann2', { email: 'ANN@example.com' })], refused: 'UniqueEmail' },
    ],
  },
];
