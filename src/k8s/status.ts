/**
 * Status conditions the Kubernetes way (metav1.Condition): lastTransitionTime moves only when
 * `status` flips, and a status is written only when something other than timestamps changed.
 * Writing an unchanged status would bump resourceVersion, wake every watcher (our own informer
 * included) and loop the controller.
 */

/** The condition every object reports (controller-runtime and kstatus convention). */
export const READY = 'Ready';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  /** CamelCase, machine-readable. */
  reason: string;
  /** For humans. */
  message: string;
  observedGeneration?: number;
  /** RFC 3339, seconds precision (metav1.Time). */
  lastTransitionTime?: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** metav1.Time is serialized with whole seconds; a millisecond part would be dropped anyway. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * Returns a new list with `cond` set: lastTransitionTime is kept when a condition of that type
 * already had the same status, and set to `now` otherwise. The input is not modified.
 */
export function setCondition(conditions: readonly Condition[] | undefined, cond: ConditionInput, now: Date = new Date()): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === cond.type);
  const before = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    before && before.status === cond.status && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(now);
  const next: Condition = { ...cond, lastTransitionTime };
  if (next.observedGeneration === undefined) delete next.observedGeneration;
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * True when both statuses say the same thing: lastTransitionTime and the order of conditions
 * are ignored, and so are absent vs undefined fields and a missing vs empty condition list.
 */
export function statusEqual(a: unknown, b: unknown): boolean {
  return canonical(normalizeStatus(a)) === canonical(normalizeStatus(b));
}

function normalizeStatus(status: unknown): unknown {
  if (status === undefined || status === null) return {};
  if (typeof status !== 'object' || Array.isArray(status)) return status;
  const out: Record<string, unknown> = { ...(status as Record<string, unknown>) };
  if (Array.isArray(out.conditions)) {
    const conditions = (out.conditions as Array<Record<string, unknown>>)
      .map((c) => {
        const { lastTransitionTime: _ignored, ...rest } = c;
        return rest;
      })
      .sort((x, y) => String(x.type).localeCompare(String(y.type)));
    if (conditions.length === 0) delete out.conditions;
    else out.conditions = conditions;
  }
  return out;
}

/** JSON with sorted keys and undefined members dropped, for order-insensitive comparison. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort()) {
        const member = (v as Record<string, unknown>)[k];
        if (member !== undefined) sorted[k] = member;
      }
      return sorted;
    }
    return v;
  });
}
