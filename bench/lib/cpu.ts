/** CPU time of processes and of the whole machine, from /proc (Linux), for benchmarks that share two cores. */
import fs from 'node:fs';

// /proc reports CPU times in USER_HZ ticks, 100 per second on every architecture Node runs on.
const CLOCK_TICKS = 100;

/** CPU seconds a process has used so far (user + system), or NaN once it is gone. */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    // Fields 14 and 15 (utime, stime) after the command name, which may hold spaces: count from its ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (every core; idle and iowait left out). */
export function machineCpuSeconds(): number {
  const [, ...ticks] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS;
}
