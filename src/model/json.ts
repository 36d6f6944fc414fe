/** Reading parsed JSON / YAML values of unknown shape. */

/** A plain object (not null, not an array): what a document, a spec or a request body must be. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A deep copy of parsed data that copies objects and arrays but shares strings (they are
 * immutable): `structuredClone` copies every string too, so a validated document kept in the
 * store's state beside the informer's object would hold a second copy of each name, email and
 * text. A value referenced twice (a YAML alias) is copied once and stays shared, as with
 * `structuredClone`; anything but plain objects and arrays (a YAML date) goes through it.
 */
export function copySharingStrings<T>(value: T): T {
  const copies = new Map<object, unknown>();
  const copy = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    const known = copies.get(v);
    if (known !== undefined) return known;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      copies.set(v, out);
      for (const item of v) out.push(copy(item));
      return out;
    }
    if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) {
      const out = structuredClone(v);
      copies.set(v, out);
      return out;
    }
    const out: Record<string, unknown> = {};
    copies.set(v, out);
    for (const [k, item] of Object.entries(v)) {
      // An own `__proto__` key (JSON.parse makes one) must stay a key, not become the prototype.
      if (k === '__proto__') Object.defineProperty(out, k, { value: copy(item), enumerable: true, writable: true, configurable: true });
      else out[k] = copy(item);
    }
    return out;
  };
  return copy(value) as T;
}

/**
 * Whether two parsed JSON values are equal: the same primitives, arrays element by element,
 * objects key by key in any order. Cheaper than comparing canonical texts, and blind to
 * prototypes (objects parsed in another realm, say a test's, compare equal).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
