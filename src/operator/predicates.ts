/**
 * Which informer events are worth a reconcile, and which objects the controllers leave alone:
 * controller-runtime's predicates, for our kinds.
 */
import { ANNOTATION_PAUSED, FINALIZER } from '../model/catalog.js';
import type { CachedResource } from './cluster.js';

/** Like controller-runtime's GenerationChangedPredicate, plus what our reconcile reads from metadata. */
export function worthReconciling(obj: CachedResource, old: CachedResource | undefined): boolean {
  if (!old) return true;
  const a = obj.metadata;
  const b = old.metadata;
  return (
    a.generation !== b.generation ||
    Boolean(a.deletionTimestamp) !== Boolean(b.deletionTimestamp) ||
    // Our finalizer being added is our own write: nothing to do. Being removed by someone else is.
    (Boolean(b.finalizers?.includes(FINALIZER)) && !a.finalizers?.includes(FINALIZER)) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    a.annotations?.[ANNOTATION_PAUSED] !== b.annotations?.[ANNOTATION_PAUSED]
  );
}
