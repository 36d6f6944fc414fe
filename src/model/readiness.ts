/**
 * Readiness of each object, derived from the tenant's state: a reference to something that does
 * not exist is not refused, it grants nothing and the object says what is missing (contract,
 * "Status"). The operator writes these into status; the CLI prints them as warnings.
 */
import type { Kind } from './catalog.js';
import { directoryGroupUsage } from './directory.js';
import { expiryMs } from './time.js';
import { getEntry } from './tenant.js';
import type { TenantState } from './types.js';

export interface Readiness {
  ready: boolean;
  reason: string;
  message: string;
}

const READY: Readiness = { ready: true, reason: 'Applied', message: 'In the access store and effective.' };

function missingList(names: string[]): string {
  return names.map((n) => JSON.stringify(n)).join(', ');
}

export function readiness(state: TenantState, kind: Kind, name: string, now: number = Date.now()): Readiness {
  const entry = getEntry(state, kind, name);
  if (!entry) return { ready: false, reason: 'NotInStore', message: `${kind} ${state.tenant}/${name} is not in the access store.` };
  if (entry.kind === 'User') {
    const missing = (entry.spec.groups ?? []).filter((g) => !state.groups.has(g));
    if (missing.length > 0) {
      return { ready: false, reason: 'GroupNotFound', message: `Group ${missingList(missing)} does not exist in tenant ${state.tenant}; membership grants nothing until it does.` };
    }
    if (!entry.spec.active) return { ready: true, reason: 'Inactive', message: 'In the access store; inactive, so denied everything.' };
  }
  if (entry.kind === 'Group' && entry.spec.directory) {
    const { provider, id } = entry.spec.directory;
    const { activeSessions, provisionedUsers } = directoryGroupUsage(state, name, now);
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    return {
      ready: true, reason: 'Applied',
      message: `In the access store and effective. Directory group ${provider} ${JSON.stringify(id)}: ${plural(activeSessions, 'active session')}, ${plural(provisionedUsers, 'auto-provisioned user')} refer to it.`,
    };
  }
  if (entry.kind === 'RoleBinding') {
    const spec = entry.spec;
    if (!state.roles.has(spec.roleRef.name)) {
      return { ready: false, reason: 'RoleNotFound', message: `Role ${JSON.stringify(spec.roleRef.name)} does not exist in tenant ${state.tenant}; the binding grants nothing until it does.` };
    }
    const missing = spec.subjects
      .filter((s) => (s.kind === 'User' ? !state.users.has(s.name) : !state.groups.has(s.name)))
      .map((s) => `${s.kind} ${JSON.stringify(s.name)}`);
    if (missing.length > 0) {
      return { ready: false, reason: 'SubjectNotFound', message: `${missing.join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist in tenant ${state.tenant}; nothing is granted to ${missing.length > 1 ? 'them' : 'it'} until ${missing.length > 1 ? 'they appear' : 'it appears'}.` };
    }
    if (spec.expiresAt && expiryMs(spec.expiresAt) < now) {
      return { ready: false, reason: 'Expired', message: `Expired at ${spec.expiresAt}; the binding grants nothing.` };
    }
  }
  return READY;
}
