/** A tenant's state: construction, copying, the built-ins every tenant has, and comparison. */
import { BUILT_IN_ROLES, GLOBAL_GROUP, GLOBAL_GROUP_SPEC, KINDS, type Kind } from './catalog.js';
import type { AnyEntry, Entry, TenantState } from './types.js';

export function emptyTenant(tenant: string): TenantState {
  return { tenant, users: new Map(), groups: new Map(), roles: new Map(), bindings: new Map() };
}

export function collection<K extends Kind>(state: TenantState, kind: K): Map<string, Entry<K>> {
  const byKind = { User: state.users, Group: state.groups, Role: state.roles, RoleBinding: state.bindings };
  return byKind[kind] as unknown as Map<string, Entry<K>>;
}

export function getEntry(state: TenantState, kind: Kind, name: string): AnyEntry | undefined {
  return collection(state, kind).get(name) as AnyEntry | undefined;
}

export function putEntry(state: TenantState, entry: AnyEntry): void {
  (collection(state, entry.kind) as Map<string, AnyEntry>).set(entry.name, entry);
}

/** Every entry, in kind order then name order: a deterministic order for plans and audits. */
export function allEntries(state: TenantState): AnyEntry[] {
  return KINDS.flatMap((k) => [...collection(state, k).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) as AnyEntry[]);
}

export function cloneTenant(state: TenantState): TenantState {
  // Entries are treated as immutable values, so copying the maps is enough.
  return {
    tenant: state.tenant,
    users: new Map(state.users),
    groups: new Map(state.groups),
    roles: new Map(state.roles),
    bindings: new Map(state.bindings),
    ...(state.sessions ? { sessions: state.sessions } : {}),
  };
}

export function tenantFromEntries(tenant: string, entries: Iterable<AnyEntry>): TenantState {
  const state = emptyTenant(tenant);
  for (const e of entries) putEntry(state, e);
  return state;
}

/** The built-in roles and the global group, as store entries. */
export function builtInEntries(): AnyEntry[] {
  const roles: AnyEntry[] = BUILT_IN_ROLES.map((r) => ({
    kind: 'Role',
    name: r.name,
    origin: 'builtin',
    spec: {
      scope: r.scope,
      displayName: r.displayName,
      description: r.description,
      permissions: r.permissions.map((p) => ({ resource: p.resource, actions: [...p.actions] })),
    },
  }));
  return [...roles, { kind: 'Group', name: GLOBAL_GROUP, origin: 'builtin', spec: { ...GLOBAL_GROUP_SPEC } }];
}

const BUILT_INS = builtInEntries();
const builtInByKey = new Map(BUILT_INS.map((e) => [`${e.kind}/${e.name}`, e]));

export function builtInEntry(kind: Kind, name: string): AnyEntry | undefined {
  return builtInByKey.get(`${kind}/${name}`);
}

/** How messages name a built-in: `the global group` or `built-in role NAME` (capitalized at a sentence start). */
export function builtInName(kind: Kind, name: string, capitalized = false): string {
  const what = kind === 'Group' ? 'the global group' : `built-in role ${name}`;
  return capitalized ? what[0]!.toUpperCase() + what.slice(1) : what;
}

/** The invariant a change to a built-in breaks (contract section 4, rules 1 and 2). */
export function builtInRule(kind: Kind): 'ProtectedGlobalGroup' | 'BuiltInRole' {
  return kind === 'Group' ? 'ProtectedGlobalGroup' : 'BuiltInRole';
}

export function isReserved(kind: Kind, name: string): boolean {
  return builtInByKey.has(`${kind}/${name}`);
}

/** JSON with sorted object keys, so equal specs compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function sameSpec(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

export function sameEntry(a: AnyEntry, b: AnyEntry): boolean {
  // Entries are immutable values: an untouched entry is the very same object, no JSON needed.
  return a === b || (a.origin === b.origin && sameSpec(a.spec, b.spec));
}
