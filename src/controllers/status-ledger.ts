/**
 * Status is the operator's (issue 15): a status it did not write, hand-edited with
 * `kubectl patch --subresource=status` or left by an older version, must be put back at once,
 * not at the next drift pass. Status-only updates do not bump `generation`, so the event filter
 * needs another way to tell the operator's own writes (nothing to do) from anyone else's
 * (reconcile now): this ledger remembers a digest of the last status written to each object.
 *
 * A digest, not the status: the ledger holds one short string per object, whatever the size of
 * the messages. An object the ledger does not know (after a restart) counts as not ours; the
 * cost is one reconcile, which writes nothing when the status already says the right thing.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../model/tenant.js';

function digest(status: unknown): string {
  // Absent and undefined members are the same status once the API server has stored it, and
  // canonicalJson (JSON.stringify) already leaves undefined members out: no copy needed first.
  // 128 bits, read straight off the digest's bytes: a slice of the base64 text would be a V8
  // sliced string keeping the whole 44-character text alive beside it, per object.
  return createHash('sha256').update(canonicalJson(status ?? {})).digest().toString('base64', 0, 16);
}

export class StatusLedger {
  private readonly written = new Map<string, string>();

  /** Called just before the status is sent, so that its own watch event is never mistaken. */
  record(key: string, status: unknown): void {
    this.written.set(key, digest(status));
  }

  /** True when `status` is exactly what the operator last wrote to the object. */
  isOurs(key: string, status: unknown): boolean {
    return this.written.get(key) === digest(status);
  }

  forget(key: string): void {
    this.written.delete(key);
  }

  get size(): number {
    return this.written.size;
  }
}
