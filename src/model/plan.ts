/**
 * The planner: from a tenant's current state and what documents ask for, the next state, the
 * list of changes and any violation. Pure; the store applies a plan only when it has no
 * violation, in one transaction, so nothing is ever partially applied.
 */
import { ADMINISTRATOR_ROLE, KINDS, OWNER_ROLE, type Kind } from './catalog.js';
import { checkInvariants, type Violation } from './invariants.js';
import { allEntries, builtInEntries, builtInEntry, builtInName, builtInRule, cloneTenant, collection, emptyTenant, getEntry, putEntry, sameEntry, sameSpec } from './tenant.js';
import type { AnyEntry, Entry, TenantState } from './types.js';

export interface ObjectRefKey {
  kind: Kind;
  name: string;
}

export interface DesiredState {
  tenant: string;
  /** Objects that must exist with these specs (from documents: origin `user`). */
  upserts: AnyEntry[];
  /** Objects to delete (the operator's finalizer path). */
  deletes?: ObjectRefKey[];
  /** Delete every `user` object of the tenant that `upserts` does not name. */
  prune?: boolean;
  /**
   * With `prune`: refuse a prune that deletes more than half of the tenant's declared objects,
   * or more than MASS_DELETE_LIMIT (one document applied from the wrong directory must not
   * empty a tenant). `apply --prune` sets it unless `--prune-allow-mass-delete`.
   */
  pruneBrake?: boolean;
}

export type ChangeAction = 'created' | 'updated' | 'deleted';

export interface ObjectChange {
  tenant: string;
  kind: Kind;
  name: string;
  action: ChangeAction;
  before?: AnyEntry;
  after?: AnyEntry;
}

export interface TenantPlan {
  tenant: string;
  current: TenantState;
  next: TenantState;
  changes: ObjectChange[];
  /** Objects the documents named that are already as asked. */
  unchanged: ObjectRefKey[];
  violations: Violation[];
}

/** Puts back any built-in that is missing or altered (e.g. a hand-edited database). */
function ensureBuiltIns(state: TenantState): void {
  for (const b of builtInEntries()) {
    const have = getEntry(state, b.kind, b.name);
    if (!have || !sameEntry(have, b)) putEntry(state, b);
  }
}

function protectedViolation(tenant: string, kind: Kind, name: string, verb: 'changed' | 'deleted'): Violation {
  return {
    tenant, kind, name, rule: builtInRule(kind),
    message: `${builtInName(kind, name)} cannot be ${verb}${kind === 'Role' && verb === 'changed' ? ` (the name ${name} is reserved)` : ''}`,
  };
}

/** The prefix of the administrator bindings an ownership transfer leaves (contract 4.3, 4.7). */
const FORMER_OWNER_PREFIX = 'former-owner-';

/** The name of the binding a transfer leaves `user`: reserved, store-created. */
function formerOwnerBindingName(user: string): string {
  return `${FORMER_OWNER_PREFIX}${user}`.slice(0, 253);
}

/** The binding a transfer leaves `user`, exactly: administrator, the single subject User `user`, nothing else. */
function formerOwnerBinding(user: string, origin: Entry['origin'] = 'system'): Entry<'RoleBinding'> {
  return {
    kind: 'RoleBinding', name: formerOwnerBindingName(user), origin,
    spec: { roleRef: { name: ADMINISTRATOR_ROLE }, subjects: [{ kind: 'User', name: user }] },
  };
}

/** True when `b` is exactly what the store creates under its name (so a document may adopt it). */
function isFormerOwnerBinding(b: Entry<'RoleBinding'>): boolean {
  const only = b.spec.subjects.length === 1 ? b.spec.subjects[0]! : undefined;
  return only?.kind === 'User' && b.name === formerOwnerBindingName(only.name) && sameSpec(b.spec, formerOwnerBinding(only.name).spec);
}

/**
 * Contract 4.7: `former-owner-*` names are the store's. A document may state one only exactly as
 * the store creates it, which adopts it (it becomes an ordinary binding, which deleting or
 * pruning then removes: how a former owner is offboarded). Anything else would squat the name
 * and leave the next former owner with nothing.
 */
function reservedNameViolation(tenant: string, doc: AnyEntry): Violation | undefined {
  if (doc.kind !== 'RoleBinding' || !doc.name.startsWith(FORMER_OWNER_PREFIX) || isFormerOwnerBinding(doc as Entry<'RoleBinding'>)) return undefined;
  const who = doc.name.slice(FORMER_OWNER_PREFIX.length);
  return {
    tenant, kind: 'RoleBinding', name: doc.name, rule: 'ReservedName',
    message: `the name ${doc.name} is reserved for the administrator binding an ownership transfer leaves User ${who}: ` +
      `a document may only state it exactly (roleRef ${ADMINISTRATOR_ROLE}, the single subject User ${who}, nothing else), which adopts it; choose another name`,
  };
}

/** Contract 4.3: the former owner of a transferred tenant keeps `administrator`. */
function transferOwnership(current: TenantState, next: TenantState): Violation | undefined {
  const ownerOf = (s: TenantState) =>
    [...s.bindings.values()].filter((b) => b.spec.roleRef.name === OWNER_ROLE).flatMap((b) => b.spec.subjects.filter((x) => x.kind === 'User').map((x) => x.name));
  const before = ownerOf(current);
  const after = ownerOf(next);
  if (before.length !== 1 || after.length === 0) return undefined;
  const former = before[0]!;
  // A former owner deleted or deactivated in the same plan is leaving: nothing to keep.
  if (after.includes(former) || !next.users.get(former)?.spec.active) return undefined;
  const kept = formerOwnerBinding(former);
  const there = next.bindings.get(kept.name);
  if (!there) {
    next.bindings.set(kept.name, kept);
    return undefined;
  }
  if (isFormerOwnerBinding(there)) return undefined; // stated by a document (adopted) or left by an earlier transfer
  // Only a store written before names were reserved can hold something else there.
  return {
    tenant: next.tenant, kind: 'RoleBinding', name: kept.name, rule: 'ReservedName',
    message: `ownership transfer refused: it must leave User ${former} administrator through RoleBinding ${next.tenant}/${kept.name}, ` +
      `but a binding of that name grants ${there.spec.roleRef.name} to something else; rename or delete it first`,
  };
}

/**
 * Contract 7: a User document with the email of an auto-provisioned user adopts it. Under the
 * same name the document simply replaces it (now declared); under another name the provisioned
 * entry goes, and the declared one takes its place (sessions follow the email, so a session in
 * progress carries over).
 */
function adoptProvisionedUsers(next: TenantState, upserts: readonly AnyEntry[]): void {
  const declared = new Map<string, string>();
  for (const doc of upserts) if (doc.kind === 'User') declared.set(doc.spec.email.toLowerCase(), doc.name);
  if (declared.size === 0) return;
  for (const u of [...next.users.values()]) {
    if (u.origin !== 'directory') continue;
    const name = declared.get(u.spec.email.toLowerCase());
    if (name !== undefined && name !== u.name) next.users.delete(u.name);
  }
}

/** More deletions than this in one prune need `--prune-allow-mass-delete`, whatever the tenant's size. */
const MASS_DELETE_LIMIT = 100;

/** The prune brake: more than half of the declared objects (or more than the limit) is refused. */
function massDeletion(current: TenantState, pruned: AnyEntry[]): Violation | undefined {
  if (pruned.length === 0) return undefined;
  const declared = allEntries(current).filter((e) => e.origin === 'user').length;
  if (pruned.length <= MASS_DELETE_LIMIT && pruned.length * 2 <= declared) return undefined;
  const first = pruned[0]!;
  const listed = pruned.slice(0, 20).map((e) => `${e.kind}/${e.name}`).join(', ');
  return {
    tenant: current.tenant, kind: first.kind, name: first.name, rule: 'MassDeletion',
    message: `--prune would delete ${pruned.length} of the tenant's ${declared} declared objects (${pruned.length > MASS_DELETE_LIMIT ? `more than ${MASS_DELETE_LIMIT}` : 'more than half'}): ` +
      `${listed}${pruned.length > 20 ? `, and ${pruned.length - 20} more` : ''}; are these the tenant's whole documents? Add --prune-allow-mass-delete if this is meant`,
  };
}

function diff(current: TenantState, next: TenantState): ObjectChange[] {
  const changes: ObjectChange[] = [];
  for (const kind of KINDS) {
    const before = collection(current, kind) as Map<string, AnyEntry>;
    const after = collection(next, kind) as Map<string, AnyEntry>;
    const names = [...new Set([...before.keys(), ...after.keys()])].sort();
    for (const name of names) {
      const b = before.get(name);
      const a = after.get(name);
      if (!b && a) changes.push({ tenant: next.tenant, kind, name, action: 'created', after: a });
      else if (b && !a) changes.push({ tenant: next.tenant, kind, name, action: 'deleted', before: b });
      else if (b && a && !sameEntry(b, a)) changes.push({ tenant: next.tenant, kind, name, action: 'updated', before: b, after: a });
    }
  }
  return changes;
}

/**
 * Plans one tenant. `current` undefined means the tenant is new: it starts with its built-ins.
 */
export function planTenant(current: TenantState | undefined, desired: DesiredState): TenantPlan {
  const tenant = desired.tenant;
  const base = current ?? emptyTenant(tenant);
  const next = cloneTenant(base);
  ensureBuiltIns(next);
  const violations: Violation[] = [];
  const named = new Set<string>();

  for (const doc of desired.upserts) {
    named.add(`${doc.kind}/${doc.name}`);
    const builtIn = builtInEntry(doc.kind, doc.name);
    if (builtIn) {
      // Re-stating a built-in exactly as it is, is fine (GitOps repos may carry them); anything else is not.
      if (!sameSpec(builtIn.spec, doc.spec)) violations.push(protectedViolation(tenant, doc.kind, doc.name, 'changed'));
      continue;
    }
    const reserved = reservedNameViolation(tenant, doc);
    if (reserved) {
      violations.push(reserved);
      continue;
    }
    putEntry(next, { ...doc, origin: 'user' } as AnyEntry);
  }

  adoptProvisionedUsers(next, desired.upserts);

  for (const ref of desired.deletes ?? []) {
    if (builtInEntry(ref.kind, ref.name)) {
      violations.push(protectedViolation(tenant, ref.kind, ref.name, 'deleted'));
      continue;
    }
    collection(next, ref.kind).delete(ref.name);
  }

  if (desired.prune) {
    const pruned: AnyEntry[] = [];
    for (const e of allEntries(next)) {
      if (e.origin === 'user' && !named.has(`${e.kind}/${e.name}`)) {
        collection(next, e.kind).delete(e.name);
        pruned.push(e);
      }
    }
    const brake = desired.pruneBrake ? massDeletion(base, pruned) : undefined;
    if (brake) violations.push(brake);
  }

  const transfer = transferOwnership(base, next);
  if (transfer) violations.push(transfer);
  violations.push(...checkInvariants(base, next));

  const changes = diff(base, next);
  const changedKeys = new Set(changes.map((c) => `${c.kind}/${c.name}`));
  const unchanged = desired.upserts
    .filter((d) => !changedKeys.has(`${d.kind}/${d.name}`))
    .map((d) => ({ kind: d.kind, name: d.name }));
  return { tenant, current: base, next, changes, unchanged, violations };
}
