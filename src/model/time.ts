/** Time as the model reads it from documents. */

/**
 * Milliseconds of a binding's RFC 3339 `expiresAt`. A leap second (`23:59:60`), valid RFC 3339
 * that Date.parse cannot read, is the instant after `23:59:59`. Anything still unreadable counts
 * as already expired: a time the engine cannot read must never make a binding grant forever.
 */
export function expiryMs(expiresAt: string): number {
  const ms = Date.parse(expiresAt);
  if (!Number.isNaN(ms)) return ms;
  const leap = /^(.*[Tt ]\d\d:\d\d:)60(.*)$/.exec(expiresAt);
  const before = leap ? Date.parse(`${leap[1]}59${leap[2]}`) : Number.NaN;
  return Number.isNaN(before) ? Number.NEGATIVE_INFINITY : before + 1000;
}
