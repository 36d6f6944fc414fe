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
