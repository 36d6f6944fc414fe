/** Reading parsed JSON / YAML values of unknown shape. */

/** A plain object (not null, not an array): what a document, a spec or a request body must be. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
