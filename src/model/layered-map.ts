/** A persistent map for indexes that change by small deltas (src/model/engine.ts). */

const GONE: unique symbol = Symbol('gone');

/**
 * An immutable map as a shared base plus a small overlay of changes (`GONE` marks a deleted base
 * key). Deriving a map with a few changes copies the overlay only, never the base; once the
 * overlay outgrows a few times the square root of the base, the derivation merges both into a new
 * base (so the amortized cost of a change stays small and lookups stay two hash probes at most).
 * The base is a caller's Map, adopted without copying: nothing here ever writes to it.
 */
export class LayeredMap<V> {
  private constructor(
    private readonly base: ReadonlyMap<string, V>,
    private readonly top: ReadonlyMap<string, V | typeof GONE>,
    readonly size: number,
  ) {}

  static of<V>(base: ReadonlyMap<string, V>): LayeredMap<V> {
    return new LayeredMap(base, new Map(), base.size);
  }

  get(key: string): V | undefined {
    if (this.top.size !== 0) {
      const t = this.top.get(key);
      if (t !== undefined) return t === GONE ? undefined : t;
    }
    return this.base.get(key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): IterableIterator<[string, V]> {
    if (this.top.size === 0) {
      yield* this.base.entries();
      return;
    }
    for (const e of this.base.entries()) if (!this.top.has(e[0])) yield e;
    for (const [k, v] of this.top) if (v !== GONE) yield [k, v];
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  /** This map with `changes` applied (undefined deletes); this one is left untouched. */
  with(changes: ReadonlyMap<string, V | undefined>): LayeredMap<V> {
    if (changes.size === 0) return this;
    let size = this.size;
    for (const [k, v] of changes) {
      const had = this.has(k);
      if (v === undefined) size -= had ? 1 : 0;
      else size += had ? 0 : 1;
    }
    if (this.top.size + changes.size > Math.max(256, 4 * Math.sqrt(this.base.size))) {
      const merged = new Map(this.entries());
      for (const [k, v] of changes) {
        if (v === undefined) merged.delete(k);
        else merged.set(k, v);
      }
      return new LayeredMap(merged, new Map(), merged.size);
    }
    const top = new Map(this.top);
    for (const [k, v] of changes) {
      if (v !== undefined) top.set(k, v);
      else if (this.base.has(k)) top.set(k, GONE);
      else top.delete(k);
    }
    return new LayeredMap(this.base, top, size);
  }

  toMap(): Map<string, V> {
    return new Map(this.entries());
  }
}
