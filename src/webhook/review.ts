/**
 * The admission decision: one AdmissionRequest for a User, Group, Role or RoleBinding in, allowed
 * or refused (with the object and the rule named) out. Judging is the model's: validateDocument
 * (through toEntry) for each document, planTenant for every cross-object rule, on the tenant as
 * the caches hold it. Nothing here restates a rule; this file decides only what to ask the model
 * and who is exempt:
 *
 * - the operator's own requests pass (it creates and restores the built-ins);
 * - deletes in a terminating namespace pass (else the namespace could never go away);
 * - an UPDATE that leaves spec alone (finalizers, labels, annotations) is not re-judged, except
 *   that a built-in keeps its built-in label and cannot be paused;
 * - a reserved name cannot be taken by a CREATE from anyone but the operator;
 * - a violation already present before the request, on another object, is not blamed on it
 *   (the cluster may hold objects the store refused while the webhook was down);
 * - granting a guarded role needs `bind` on it (escalation.ts), asked last.
 */
import { ANNOTATION_PAUSED, API_GROUP, KINDS, LABEL_BUILT_IN, type Kind } from '../model/catalog.js';
import { readiness } from '../model/readiness.js';
import { formatViolation, type Violation } from '../model/invariants.js';
import { planTenant } from '../model/plan.js';
import { allEntries, builtInName, builtInRule, cloneTenant, collection, isReserved, putEntry, sameSpec } from '../model/tenant.js';
import type { AnyEntry, TenantState } from '../model/types.js';
import { MAX_DOCUMENT_DEPTH, nestedDeeperThan } from '../model/validate.js';
import { isDeleting, toEntry, type AccessResource } from '../api/v1alpha1/resource.js';
import type { AdmissionRequest, AdmissionResponse } from './admission.js';
import { DEFAULT_BIND_CHECK_ROLES, escalationMessage, roleToBind, type EscalationChecker } from './escalation.js';
import { entryOf, type TenantStateSource } from './state.js';
import { isRecord } from '../model/json.js';

export interface ReviewOptions {
  state: TenantStateSource;
  /** Usernames whose requests are not judged: the operator's own (built-ins, finalizers). */
  operatorUsernames: readonly string[];
  /** Without it, a request that needs the escalation check is refused (fail closed). */
  escalation?: EscalationChecker;
  /** Roles whose granting needs `bind`; `*` for every role; default owner and administrator. */
  bindCheckRoles?: readonly string[];
  /** Clock for readiness warnings (binding expiry). */
  now?: () => number;
}

/** At most this many warnings per answer: they are for humans at a terminal. */
const MAX_WARNINGS = 10;

function resource(obj: unknown): AccessResource | undefined {
  return isRecord(obj) && isRecord(obj.metadata) ? (obj as unknown as AccessResource) : undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** A name as a message shows it: one line, and not longer than a valid name (the request may be hostile). */
function shown(s: string): string {
  const line = [...s].some((c) => c < ' ') ? JSON.stringify(s) : s;
  return line.length > 253 ? `${line.slice(0, 64)}... (${s.length} characters)` : line;
}

const allow = (uid: string, warnings: string[] = []): AdmissionResponse =>
  warnings.length > 0 ? { uid, allowed: true, warnings: warnings.slice(0, MAX_WARNINGS) } : { uid, allowed: true };

function deny(uid: string, code: number, reason: string, message: string, causes: { reason: string; message: string }[] = []): AdmissionResponse {
  return { uid, allowed: false, status: { code, reason, message, ...(causes.length > 0 ? { details: { causes } } : {}) } };
}

function refuse(uid: string, violations: Violation[]): AdmissionResponse {
  return deny(
    uid, 403, 'Forbidden',
    violations.map(formatViolation).join('; '),
    violations.map((v) => ({ reason: v.rule, message: formatViolation(v) })),
  );
}

const violationKey = (v: Violation): string => `${v.rule}|${v.kind}|${v.name}`;

/** The violations the request is answerable for: any on its own object, and new ones elsewhere. */
function blame(violations: Violation[], before: Violation[], kind: Kind, name: string): Violation[] {
  const existing = new Set(before.map(violationKey));
  return violations.filter((v) => (v.kind === kind && v.name === name) || !existing.has(violationKey(v)));
}

/**
 * The tenant as the cache holds it, with the request's object as the API server holds it (the
 * oldObject is authoritative; the cache may lag). An invalid old RoleBinding still carries its
 * roleRef, so that immutability is judged by the planner too.
 */
function currentState(base: TenantState, kind: Kind, name: string, old: AccessResource | undefined, next: AnyEntry | undefined): TenantState {
  if (!old || isReserved(kind, name)) return base;
  const state = cloneTenant(base);
  const before = entryOf(kind, old);
  if (before) {
    putEntry(state, before);
  } else {
    collection(state, kind).delete(name);
    const oldRole = (old.spec as { roleRef?: { name?: unknown } } | undefined)?.roleRef?.name;
    if (next?.kind === 'RoleBinding' && typeof oldRole === 'string') {
      putEntry(state, { ...next, spec: { ...next.spec, roleRef: { name: oldRole } } });
    }
  }
  return state;
}

/** Readiness problems the change introduces: the object's own, and those of objects it leaves dangling. */
function warnings(current: TenantState, next: TenantState, kind: Kind, name: string, now: number): string[] {
  const out: string[] = [];
  const self = collection(next, kind).get(name);
  if (self) {
    const r = readiness(next, kind, name, now);
    if (!r.ready) out.push(`${kind} ${next.tenant}/${name}: ${r.message}`);
  }
  for (const e of allEntries(next)) {
    if (e.origin !== 'user' || (e.kind === kind && e.name === name)) continue;
    const after = readiness(next, e.kind, e.name, now);
    if (after.ready || !readiness(current, e.kind, e.name, now).ready) continue;
    out.push(`${e.kind} ${next.tenant}/${e.name}: ${after.message}`);
    if (out.length >= MAX_WARNINGS) break;
  }
  return out;
}

/** Metadata a built-in must keep: its label (the operator's mark) and no pause (which would stop its restoration). */
function builtInMetadataViolations(namespace: string, kind: Kind, name: string, obj: AccessResource, old: AccessResource | undefined): Violation[] {
  const out: Violation[] = [];
  const v = (message: string): Violation => ({ tenant: namespace, kind, name, rule: builtInRule(kind), message });
  if (old?.metadata.labels?.[LABEL_BUILT_IN] === 'true' && obj.metadata.labels?.[LABEL_BUILT_IN] !== 'true') {
    out.push(v(`${builtInName(kind, name)} cannot be changed: the label ${LABEL_BUILT_IN} must stay "true"`));
  }
  if (obj.metadata.annotations?.[ANNOTATION_PAUSED] === 'true' && old?.metadata.annotations?.[ANNOTATION_PAUSED] !== 'true') {
    out.push(v(`${builtInName(kind, name)} cannot be paused: the operator keeps it as defined`));
  }
  return out;
}

/** Judges one AdmissionRequest. Never throws for a malformed object: it refuses it. */
export async function review(request: AdmissionRequest, opts: ReviewOptions): Promise<AdmissionResponse> {
  const { uid, operation } = request;
  const group = request.kind?.group ?? request.resource?.group;
  const kindName = request.kind?.kind;
  // Not ours (a misconfigured webhook rule), a subresource (status), or CONNECT: nothing to judge.
  if (group !== API_GROUP || !kindName || !(KINDS as readonly string[]).includes(kindName) || request.subResource || operation === 'CONNECT') {
    return allow(uid);
  }
  const kind = kindName as Kind;
  if (request.userInfo.username !== undefined && opts.operatorUsernames.includes(request.userInfo.username)) return allow(uid);

  const obj = resource(request.object);
  const old = resource(request.oldObject);
  // The request's name and namespace are the API server's; the objects' are read only when they are strings.
  const name = request.name || text(obj?.metadata.name) || text(old?.metadata.name);
  const namespace = request.namespace || text(obj?.metadata.namespace) || text(old?.metadata.namespace);
  if (!name || !namespace) return deny(uid, 422, 'Invalid', `${kind}: metadata.name and metadata.namespace are required (a namespace is a tenant)`);
  const id = `${kind} ${shown(namespace)}/${shown(name)}`;
  if (!opts.state.synced()) {
    return deny(uid, 503, 'ServiceUnavailable', `${id}: the rpa-access webhook is starting (its caches are not synced yet); try again shortly`);
  }
  const now = opts.now?.() ?? Date.now();

  if (operation === 'DELETE') {
    // A terminating namespace takes everything with it; an object already deleting is on its way.
    if (opts.state.terminating(namespace) || (old && isDeleting(old))) return allow(uid);
    const base = opts.state.state(namespace);
    const current = currentState(base, kind, name, old, undefined);
    const plan = planTenant(current, { tenant: namespace, upserts: [], deletes: [{ kind, name }] });
    const violations = blame(plan.violations, planTenant(current, { tenant: namespace, upserts: [] }).violations, kind, name);
    if (violations.length > 0) return refuse(uid, violations);
    return allow(uid, warnings(current, plan.next, kind, name, now));
  }

  if (!obj) return deny(uid, 422, 'Invalid', `${id}: the request carries no object`);
  const reserved = isReserved(kind, name);
  if (operation === 'CREATE' && reserved) {
    return refuse(uid, [{
      tenant: namespace, kind, name, rule: builtInRule(kind),
      message: `the name ${name} is reserved for ${builtInName(kind, name)}, which only the operator creates`,
    }]);
  }
  // Refused before anything walks it: deeper than the call stack would hold, or than any valid spec.
  if (nestedDeeperThan(obj.spec ?? null)) {
    return deny(uid, 422, 'Invalid', `${id}: spec nests deeper than ${MAX_DOCUMENT_DEPTH} levels: no valid object does`);
  }
  const specUnchanged = operation === 'UPDATE' && old !== undefined && !nestedDeeperThan(old.spec ?? null) && sameSpec(old.spec ?? {}, obj.spec ?? {});
  if (reserved) {
    const violations = builtInMetadataViolations(namespace, kind, name, obj, old);
    if (!specUnchanged) {
      // The planner compares a re-stated built-in with its definition; it never stores it.
      const restated = { kind, name, origin: 'user', spec: obj.spec ?? {} } as AnyEntry;
      violations.push(...planTenant(opts.state.state(namespace), { tenant: namespace, upserts: [restated] }).violations);
    }
    return violations.length > 0 ? refuse(uid, violations) : allow(uid);
  }
  // Finalizers, labels, annotations: nothing the rules look at.
  if (specUnchanged) return allow(uid);

  const { entry: next, problems } = toEntry({ ...obj, kind, metadata: { ...obj.metadata, name, namespace } });
  if (!next) {
    return deny(uid, 422, 'Invalid', `${id}: ${problems.join('; ')}`, problems.map((p) => ({ reason: 'Invalid', message: p })));
  }
  const current = currentState(opts.state.state(namespace), kind, name, old, next);
  const plan = planTenant(current, { tenant: namespace, upserts: [next] });
  const violations = blame(plan.violations, planTenant(current, { tenant: namespace, upserts: [] }).violations, kind, name);
  if (violations.length > 0) return refuse(uid, violations);

  const role = kind === 'RoleBinding' ? roleToBind(operation, obj, old, opts.bindCheckRoles ?? DEFAULT_BIND_CHECK_ROLES) : undefined;
  if (role) {
    if (!opts.escalation) return deny(uid, 500, 'InternalError', `${id}: no escalation checker is configured; binding role ${role} is refused`);
    let decision;
    try {
      decision = await opts.escalation.canBind({ user: request.userInfo, namespace, role });
    } catch (err) {
      return deny(uid, 500, 'InternalError', `${id}: the escalation check could not be made (${err instanceof Error ? err.message : String(err)}); binding role ${role} is refused`);
    }
    if (!decision.allowed) {
      const message = escalationMessage(namespace, name, role);
      return deny(uid, 403, 'Forbidden', message, [{ reason: 'Escalation', message }]);
    }
  }
  return allow(uid, warnings(current, plan.next, kind, name, now));
}
