/**
 * The same tenant policy loaded into node-casbin, for comparison with the rpa-access engine.
 * Two models of the contract's semantics (section 3), both RBAC with domains (domain = tenant):
 *
 * `casbin-roles` (the fair baseline, used for the headline ratio)
 *   p = role, tenant, resource, action            one row per permission of each Role (≈ 650 rows,
 *                                                  not N-proportional)
 *   g = user, group, tenant                        group membership (`global` included)
 *   g = subject, role@scope, tenant                one link per binding subject; scope is the
 *                                                  binding's folder, `*` for a tenant-wide binding
 *   The matcher asks g() for `role@*` and for `role@<each ancestor of the request's folder>`
 *   (custom function `folderAncestor(r.fld, n)`): folder inheritance and group inheritance are
 *   both done by casbin's own role manager. Binding narrowing (resources, environment) is NOT
 *   modelled: those bindings are left out, and the checks compared must name neither.
 *   Expiry is applied when loading (bindings expired at `now` are left out).
 *
 * `casbin-expanded` (the textbook "everything in p rows" model; models every rule)
 *   p = instance, tenant, folder, resource, action, object, environment, expiresAt
 *   g = user, group, tenant; g = subject, instance, tenant
 *   An instance is one distinct binding shape (role, folder, environment, objects, expiry); it
 *   gets one p row per permission of its role (and per object). Folder inheritance is a custom
 *   keyMatch-like function (`folderCovers(p.fld, r.fld)`), narrowing and expiry are matcher terms.
 *   Correct, but casbin scans p rows linearly, so its cost grows with N.
 *
 * Both: inactive users get no links (denied everything); a binding whose role does not exist,
 * a subject that does not exist, and membership of a missing group are left out (grant nothing);
 * every User of type Robot is linked to the `robot` role tenant-wide.
 */
import { createRequire } from 'node:module';
import type * as Casbin from 'casbin';
import { GLOBAL_GROUP, ROBOT_ROLE } from '../../src/model/catalog.js';
import type { CheckRequest } from '../../src/model/engine.js';
import type { TenantState } from '../../src/model/types.js';

// node-casbin's CommonJS build, on purpose: its ESM build (lib/esm/index.mjs) is down-levelled
// by its bundler so that the per-policy-row `{...parameters, ...functions}` becomes a
// defineProperty loop, which makes every enforce call several times slower than the CJS build's
// Object.assign. The fair comparison uses the faster one.
const { newEnforcer, newModelFromString } = createRequire(import.meta.url)('casbin') as typeof Casbin;
type Enforcer = Casbin.Enforcer;

export interface CasbinEngine {
  name: string;
  enforcer: Enforcer;
  /** p rows loaded. */
  policies: number;
  /** g rows loaded. */
  links: number;
  /** Bindings not loaded (narrowed, expired, dangling...), by reason. */
  skipped: Record<string, number>;
  check(req: CheckRequest): boolean;
}

const MAX_DEPTH = 7;

const ROLES_MODEL = `
[request_definition]
r = sub, dom, fld, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && r.act == p.act && r.dom == p.dom && (g(r.sub, p.sub + "@*", r.dom) || (r.fld != "" && (${Array.from(
  { length: MAX_DEPTH },
  (_, i) => `g(r.sub, p.sub + "@" + folderAncestor(r.fld, ${i + 1}), r.dom)`,
).join(' || ')})))
`;

const EXPANDED_MODEL = `
[request_definition]
r = sub, dom, fld, obj, act, res, env, now

[policy_definition]
p = sub, dom, fld, obj, act, res, env, exp

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && r.act == p.act && r.dom == p.dom && folderCovers(p.fld, r.fld) && (p.res == "" || p.res == r.res) && (p.env == "" || p.env == r.env) && (p.exp == "" || r.now <= p.exp) && g(r.sub, p.sub, r.dom)
`;

/** The first `depth` segments of `folder` (`A/B/C`, 2 -> `A/B`), or `-` when it has fewer. */
export function folderAncestorFn(folder: string, depth: number): string {
  let i = -1;
  for (let d = 0; d < depth; d++) {
    i = folder.indexOf('/', i + 1);
    if (i === -1) return d === depth - 1 ? folder : '-';
  }
  return folder.slice(0, i);
}

/** keyMatch-like folder scope: `*` covers everything, `A/B` covers `A/B` and `A/B/...`. */
export function folderCoversFn(scope: string, folder: string): boolean {
  return scope === '*' || folder === scope || (folder.length > scope.length && folder.startsWith(scope) && folder.charCodeAt(scope.length) === 47);
}

const userKey = (name: string) => `u:${name}`;
const subjectKey = (kind: string, name: string) => (kind === 'User' ? `u:${name}` : `g:${name}`);

function splitPermission(permission: string): [string, string] {
  const dot = permission.indexOf('.');
  return [permission.slice(0, dot), permission.slice(dot + 1)];
}

/** Links shared by both models: membership, and which subjects exist / are active. */
function membership(state: TenantState): { links: string[][]; subjectOk: (kind: string, name: string) => boolean } {
  const dom = state.tenant;
  const links: string[][] = [];
  for (const u of state.users.values()) {
    if (!u.spec.active) continue;
    for (const g of new Set([GLOBAL_GROUP, ...(u.spec.groups ?? [])])) {
      if (state.groups.has(g)) links.push([userKey(u.name), subjectKey('Group', g), dom]);
    }
  }
  const subjectOk = (kind: string, name: string) =>
    kind === 'User' ? state.users.get(name)?.spec.active === true : kind === 'Group' && state.groups.has(name);
  return { links, subjectOk };
}

async function load(modelText: string, policies: string[][], links: string[][], fns: Record<string, (...a: string[]) => boolean | string> = {}): Promise<Enforcer> {
  const e = await newEnforcer(newModelFromString(modelText));
  for (const [name, fn] of Object.entries(fns)) await e.addFunction(name, fn);
  // One batch each: casbin checks every added rule for duplicates against what it holds, so
  // batches on an empty enforcer stay linear (rules are de-duplicated here).
  if (policies.length > 0) await e.addPolicies(policies);
  if (links.length > 0) await e.addGroupingPolicies(links);
  return e;
}

function dedupe(rows: string[][]): string[][] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = r.join('\u0000');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export async function buildCasbinRoles(state: TenantState, now: number): Promise<CasbinEngine> {
  const dom = state.tenant;
  const policies: string[][] = [];
  for (const r of state.roles.values()) {
    for (const p of r.spec.permissions ?? []) for (const a of p.actions) policies.push([r.name, dom, p.resource, a]);
  }
  const { links, subjectOk } = membership(state);
  const skipped: Record<string, number> = {};
  const skip = (why: string) => (skipped[why] = (skipped[why] ?? 0) + 1);
  for (const b of state.bindings.values()) {
    const s = b.spec;
    if (!state.roles.has(s.roleRef.name)) { skip('danglingRole'); continue; }
    if (s.resources || s.environment) { skip('narrowed'); continue; }
    if (s.expiresAt && now > Date.parse(s.expiresAt)) { skip('expired'); continue; }
    const instance = `${s.roleRef.name}@${s.folder ?? '*'}`;
    for (const sub of s.subjects) if (subjectOk(sub.kind, sub.name)) links.push([subjectKey(sub.kind, sub.name), instance, dom]);
  }
  for (const u of state.users.values()) if (u.spec.active && u.spec.type === 'Robot') links.push([userKey(u.name), `${ROBOT_ROLE}@*`, dom]);
  const p = dedupe(policies);
  const g = dedupe(links);
  const enforcer = await load(ROLES_MODEL, p, g, { folderAncestor: (f, d) => folderAncestorFn(f!, Number(d)) });
  return {
    name: 'casbin-roles', enforcer, policies: p.length, links: g.length, skipped,
    check(req: CheckRequest): boolean {
      const [obj, act] = splitPermission(req.permission);
      return enforcer.enforceSync(userKey(req.user), dom, req.folder ?? '', obj, act);
    },
  };
}

export async function buildCasbinExpanded(state: TenantState, now: number): Promise<CasbinEngine> {
  const dom = state.tenant;
  const nowIso = new Date(now).toISOString();
  const permsOf = new Map<string, [string, string][]>();
  for (const r of state.roles.values()) {
    permsOf.set(r.name, (r.spec.permissions ?? []).flatMap((p) => p.actions.map((a): [string, string] => [p.resource, a])));
  }
  const policies: string[][] = [];
  const instances = new Set<string>();
  const { links, subjectOk } = membership(state);
  const skipped: Record<string, number> = {};
  const addInstance = (role: string, folder: string, env: string, objects: string[], exp: string): string => {
    const key = `${role}@${folder}|${env}|${objects.join(',')}|${exp}`;
    if (!instances.has(key)) {
      instances.add(key);
      for (const [obj, act] of permsOf.get(role)!) for (const res of objects.length > 0 ? objects : ['']) policies.push([key, dom, folder, obj, act, res, env, exp]);
    }
    return key;
  };
  for (const b of state.bindings.values()) {
    const s = b.spec;
    if (!permsOf.has(s.roleRef.name)) { skipped.danglingRole = (skipped.danglingRole ?? 0) + 1; continue; }
    const objects = (s.resources ?? []).map((r) => `${r.kind}/${r.name}`).sort();
    const exp = s.expiresAt ? new Date(Date.parse(s.expiresAt)).toISOString() : '';
    const instance = addInstance(s.roleRef.name, s.folder ?? '*', s.environment ?? '', objects, exp);
    for (const sub of s.subjects) if (subjectOk(sub.kind, sub.name)) links.push([subjectKey(sub.kind, sub.name), instance, dom]);
  }
  const robot = addInstance(ROBOT_ROLE, '*', '', [], '');
  for (const u of state.users.values()) if (u.spec.active && u.spec.type === 'Robot') links.push([userKey(u.name), robot, dom]);
  const g = dedupe(links);
  const enforcer = await load(EXPANDED_MODEL, policies, g, { folderCovers: (s, f) => folderCoversFn(s!, f!) });
  return {
    name: 'casbin-expanded', enforcer, policies: policies.length, links: g.length, skipped,
    check(req: CheckRequest): boolean {
      const [obj, act] = splitPermission(req.permission);
      return enforcer.enforceSync(userKey(req.user), dom, req.folder ?? '', obj, act, req.resource ?? '', req.environment ?? '', nowIso);
    },
  };
}
