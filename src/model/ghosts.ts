/**
 * Ghosts: objects the access store holds for a tenant that the cluster does not show. In a tenant
 * the operator manages, the cluster is the desired state, so each one is either on its way out
 * (the drift pass removes it) or kept because the store refuses to delete it (it still grants).
 * The operator's drift pass and `rpa-access ghosts` both ask these questions, here, once.
 */
import type { Kind } from './catalog.js';
import { formatViolation } from './invariants.js';
import { planTenant } from './plan.js';
import { allEntries } from './tenant.js';
import type { AnyEntry, TenantState } from './types.js';

/** Declared objects of the store (origin `user`) that `inCluster` does not know. */
export function storeOnly(state: TenantState, inCluster: (kind: Kind, name: string) => boolean): AnyEntry[] {
  return allEntries(state).filter((e) => e.origin === 'user' && !inCluster(e.kind, e.name));
}

/** Why deleting the object alone would be refused (the refusal names what would unblock it), or undefined. */
export function deleteRefusal(state: TenantState, kind: Kind, name: string): string | undefined {
  const plan = planTenant(state, { tenant: state.tenant, upserts: [], deletes: [{ kind, name }] });
  return plan.violations.length > 0 ? plan.violations.map(formatViolation).join('; ') : undefined;
}
