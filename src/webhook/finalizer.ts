/**
 * The mutating half of the webhook: our finalizer put on each object as it is created, so the
 * operator does not spend an API write per new object adding it afterwards. (It cannot help a
 * first start onto objects created before it was installed.) Nothing else is ever changed.
 *
 * It is an optimisation, never a guard: the configuration's failurePolicy is Ignore, and the
 * operator still adds the finalizer to any object that arrives without it (webhook not
 * installed, not reachable, or created before it was). Nothing here can refuse a request.
 */
import { API_GROUP, FINALIZER } from '../model/catalog.js';
import { isRecord } from '../model/json.js';
import type { AdmissionRequest, AdmissionResponse } from './admission.js';

/** The JSON Patch that adds our finalizer to a created object, or nothing to change. */
export function finalizerPatch(request: AdmissionRequest): unknown[] | undefined {
  if (request.operation !== 'CREATE' || (request.kind?.group !== undefined && request.kind.group !== API_GROUP)) return undefined;
  const object = request.object;
  if (!isRecord(object) || !isRecord(object.metadata)) return undefined;
  const finalizers = object.metadata.finalizers;
  if (finalizers === undefined || finalizers === null) return [{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }];
  if (!Array.isArray(finalizers) || finalizers.includes(FINALIZER)) return undefined;
  return [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }];
}

/** The mutating review's answer: always allowed, with the finalizer's patch when one is needed. */
export function mutate(request: AdmissionRequest): AdmissionResponse {
  const patch = finalizerPatch(request);
  if (!patch) return { uid: request.uid, allowed: true };
  return { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
}
