/**
 * Small builders for the model's unit tests (and any other test that wants them): documents,
 * validated entries (schema defaults applied, as the CLI and the operator hand them to the
 * store), and tenant states built through the planner so the built-ins are always there.
 */
import { API_VERSION_FULL, type Action, type Kind } from '../../src/model/catalog.js';
import { TenantIndex } from '../../src/model/engine.js';
import { formatViolation } from '../../src/model/invariants.js';
import { planTenant, type DesiredState, type ObjectRefKey, type TenantPlan } from '../../src/model/plan.js';
import { validateDocument } from '../../src/model/validate.js';
import type { AnyEntry, Entry, Subject, TenantState } from '../../src/model/types.js';

/** The tenant (namespace) the fixtures live in. */
export const T = 'finance';

/** A fixed "now" for decisions that depend on time: 2026-06-01T12:00:00Z. */
export const NOW = Date.parse('2026-06-01T12:00:00Z');

/** A raw document as it would be read from YAML. */
export function doc(kind: string, name: string, spec: unknown, namespace: string = T): Record<string, unknown> {
  return { apiVersion: API_VERSION_FULL, kind, metadata: { name, namespace }, spec };
}

/** A validated entry of origin `user`; throws when the fixture itself is invalid. */
export function entry<K extends Kind>(kind: K, name: string, spec: Record<string, unknown>): Entry<K> {
  const r = validateDocument(doc(kind, name, spec));
  if (!r.document) throw new Error(`invalid fixture ${kind}/${name}: ${r.problems.join('; ')}`);
  return { kind, name, spec: r.document.spec, origin: 'user' } as Entry<K>;
}

/** A User named `name` with email `name@example.com` unless `spec` says otherwise. */
export const user = (name: string, spec: Record<string, unknown> = {}): Entry<'User'> =>
  entry('User', name, { email: `${name}@example.com`, ...spec });

/** A User of type Robot. */
export const robot = (name: string, spec: Record<string, unknown> = {}): Entry<'User'> => user(name, { type: 'Robot', ...spec });

export const group = (name: string, spec: Record<string, unknown> = {}): Entry<'Group'> => entry('Group', name, spec);

/**
 * A custom Role. `permissions` in catalog notation, e.g. `['Jobs.View', 'Jobs.Create']`; they
 * are grouped by resource in order of first appearance.
 */
export function role(name: string, scope: 'Tenant' | 'Folder', permissions: string[], spec: Record<string, unknown> = {}): Entry<'Role'> {
  const byResource = new Map<string, Action[]>();
  for (const p of permissions) {
    const [resource, action] = p.split('.') as [string, Action];
    byResource.set(resource, [...(byResource.get(resource) ?? []), action]);
  }
  return entry('Role', name, { scope, permissions: [...byResource].map(([resource, actions]) => ({ resource, actions })), ...spec });
}

/** `'ann'` or `'user:ann'` is a User subject, `'group:ops'` a Group subject. */
export type SubjectRef = string | Subject;

export function subject(ref: SubjectRef): Subject {
  if (typeof ref !== 'string') return ref;
  if (ref.startsWith('group:')) return { kind: 'Group', name: ref.slice('group:'.length) };
  if (ref.startsWith('user:')) return { kind: 'User', name: ref.slice('user:'.length) };
  return { kind: 'User', name: ref };
}

/** A RoleBinding of `roleName` to `subjects`; `extra` adds folder, resources, environment, expiresAt. */
export function binding(name: string, roleName: string, subjects: SubjectRef[], extra: Record<string, unknown> = {}): Entry<'RoleBinding'> {
  return entry('RoleBinding', name, { roleRef: { name: roleName }, subjects: subjects.map(subject), ...extra });
}

/** Plans `upserts` (plus deletes / prune) on `current`, in tenant T. */
export function plan(
  current: TenantState | undefined,
  upserts: AnyEntry[],
  options: { deletes?: ObjectRefKey[]; prune?: boolean } = {},
): TenantPlan {
  const desired: DesiredState = { tenant: T, upserts, ...options };
  return planTenant(current, desired);
}

/** Like plan(), but the plan must be accepted: returns the next state. */
export function apply(current: TenantState | undefined, upserts: AnyEntry[], options: { deletes?: ObjectRefKey[]; prune?: boolean } = {}): TenantState {
  const p = plan(current, upserts, options);
  if (p.violations.length > 0) throw new Error(`fixture plan refused: ${p.violations.map(formatViolation).join('; ')}`);
  return p.next;
}

/** A new tenant T holding the built-ins and `entries`. */
export function tenantWith(...entries: AnyEntry[]): TenantState {
  return apply(undefined, entries);
}

/** The decision index of a new tenant T holding the built-ins and `entries`. */
export function indexWith(...entries: AnyEntry[]): TenantIndex {
  return new TenantIndex(tenantWith(...entries));
}

/** A deep, order-independent snapshot of a state, to prove that something did not change it. */
export function snapshot(state: TenantState): string {
  const kinds = [state.users, state.groups, state.roles, state.bindings] as Map<string, AnyEntry>[];
  return JSON.stringify([state.tenant, ...kinds.map((m) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)))]);
}
