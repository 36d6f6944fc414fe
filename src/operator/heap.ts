/**
 * V8 settings for the operator's process. The operator keeps a cache of many small, long-lived
 * objects (every User, Group, Role and RoleBinding, and the store's state of each tenant) that
 * are replaced one at a time, each on its own watch event. V8's full GCs compact only pages that
 * are mostly empty, so after a cold start of 10,000 objects each old-generation page stays about
 * three quarters full and the rest, some 14 MiB (1.4 KiB per object), stays reserved for good:
 * the idle memory reducer leaves it too. Compacting at every full GC keeps the heap dense
 * (1.4 KiB per object less RSS). The price is longer full GCs: in cold starts of 10,000
 * objects, 3 to 9 full GCs took 0.2-1.1 s in all and paused the process 96-191 ms at most,
 * against 9, 0.11 s and 21 ms with V8's defaults (bench/operator-scale.ts prints them). A pause
 * grows with the heap; the clients waiting on this process (the API server calling the
 * admission webhook, the lease's renewals) wait seconds.
 */
import v8 from 'node:v8';

const OPERATOR_V8_FLAGS = ['--compact-on-every-full-gc'];

/**
 * Sets OPERATOR_V8_FLAGS in this process. They are read at each GC, so setting them once the
 * process runs takes effect at the next full GC (NODE_OPTIONS does not accept them).
 */
export function tuneHeapForOperator(): void {
  for (const flag of OPERATOR_V8_FLAGS) v8.setFlagsFromString(flag);
}
