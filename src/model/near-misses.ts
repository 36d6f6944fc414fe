/**
 * Why nothing granted a denied question, when something nearly did: bindings that hold the
 * permission but are narrowed elsewhere (another folder, other objects, another environment,
 * tenant-wide where a folder was asked) or have expired. The CLI's `check` prints them and the
 * decision API returns them (`nearMisses`), from this one place.
 */
import { BUILT_IN_ROLE_NAMES } from './catalog.js';
import type { ParsedRequest, TenantIndex } from './engine.js';
import { folderCovers } from './folders.js';

export type NearMissReason = 'OtherFolder' | 'OtherResources' | 'OtherEnvironment' | 'TenantWide' | 'Expired' | 'SessionEnded';

export interface NearMiss {
  /** The binding (or, for the implicit robot role, the role) that nearly granted. */
  binding: string;
  reason: NearMissReason;
  /** For people, e.g. `binding ops-auto grants it only in folder Finance`. */
  message: string;
}

/** At most this many, the first found: enough to point at the cause. */
const MAX_NEAR_MISSES = 5;

/** Near misses of a question `userRef` was denied with reason NoGrant (empty when none). */
export function nearMisses(index: TenantIndex, userRef: string, req: ParsedRequest, now: number = Date.now()): NearMiss[] {
  const found = new Map<string, NearMiss>();
  const add = (binding: string, reason: NearMissReason, message: string) => {
    if (!found.has(message)) found.set(message, { binding, reason, message });
  };
  for (const row of index.permissions(userRef, now, req.directoryGroups ?? undefined) ?? []) {
    if (row.permission !== req.permission) continue;
    const name = row.binding ?? row.role;
    if (row.folder !== null && req.folder !== null && !folderCovers(row.folder, req.folder)) {
      add(name, 'OtherFolder', `binding ${name} grants it only in folder ${row.folder}`);
    } else if (row.resources && !row.resources.some((r) => `${r.kind}/${r.name}` === req.resource)) {
      add(name, 'OtherResources', `binding ${name} grants it only for ${row.resources.map((r) => `${r.kind}/${r.name}`).join(', ')}`);
    } else if (row.environment !== undefined && row.environment !== req.environment) {
      add(name, 'OtherEnvironment', `binding ${name} grants it only in environment ${row.environment}`);
    } else if (row.folder === null && !BUILT_IN_ROLE_NAMES.has(row.role) && req.folder !== null) {
      add(name, 'TenantWide', `binding ${name} is tenant-wide`);
    }
  }
  // Bindings that would grant it, had they not expired: ask again as if it were long ago.
  for (const g of index.checkParsed(userRef, req, 0).grants) {
    if (!g.binding) continue;
    // Through a directory group of a login session that has ended since (contract section 7).
    if (g.sessionExpiresAt !== undefined && Date.parse(g.sessionExpiresAt) < now) {
      add(g.binding, 'SessionEnded', `binding ${g.binding} grants it ${g.via.replace(':', ' group ')} through a login session that ended at ${g.sessionExpiresAt}`);
    } else add(g.binding, 'Expired', `binding ${g.binding} has expired`);
  }
  return [...found.values()].slice(0, MAX_NEAR_MISSES);
}
