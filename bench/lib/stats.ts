/** Shared benchmark helpers: timing, percentiles, heap measurement, markdown tables, machine line. */
import os from 'node:os';

/** Nanoseconds since an arbitrary origin, as a float (hrtime.bigint, converted once). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Percentiles (nearest rank) of samples, in the samples' unit. Sorts `samples` in place. */
export function percentiles(samples: Float64Array | number[]): Percentiles {
  const s = samples instanceof Float64Array ? samples : Float64Array.from(samples);
  s.sort();
  const n = s.length;
  if (n === 0) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  const at = (q: number) => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  return { count: n, mean: sum / n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s[n - 1]! };
}

/** Runs a full GC when node runs with --expose-gc; false otherwise. */
export function fullGc(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  gc();
  gc();
  return true;
}

export function gcAvailable(): boolean {
  return typeof (globalThis as { gc?: unknown }).gc === 'function';
}

/** Heap used after a full GC (bytes), or NaN without --expose-gc. */
export function settledHeap(): number {
  return fullGc() ? process.memoryUsage().heapUsed : NaN;
}

/** `1234567` -> `1.23 M`, `12345` -> `12.3 k`. */
export function fmtCount(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  if (n >= 100) return n.toFixed(0);
  return n.toFixed(1);
}

/** Nanoseconds as µs (or ms when large). */
export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns >= 1e7) return `${(ns / 1e6).toFixed(0)} ms`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e5) return `${(ns / 1e3).toFixed(0)} µs`;
  return `${(ns / 1e3).toFixed(2)} µs`;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return 'n/a';
  const mb = b / (1024 * 1024);
  return mb >= 100 ? `${mb.toFixed(0)} MB` : `${mb.toFixed(1)} MB`;
}

export function fmtPct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(x === 1 ? 0 : 2)}%` : 'n/a';
}

/** A markdown table with padded columns; columns whose header starts with a space-free `>` are right-aligned. */
export function markdownTable(headers: string[], rows: string[][]): string {
  const right = headers.map((h) => h.startsWith('>'));
  const names = headers.map((h) => (h.startsWith('>') ? h.slice(1) : h));
  const widths = names.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number) => (right[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const line = (cells: string[]) => `| ${cells.map((c, i) => cell(c, i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(names), rule, ...rows.map((r) => line(names.map((_, i) => r[i] ?? '')))].join('\n');
}

export interface MachineInfo {
  cpu: string;
  cpus: number;
  node: string;
  platform: string;
  memoryGb: number;
  loadAvg: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export function machineLine(m: MachineInfo = machineInfo()): string {
  return `${m.cpu} × ${m.cpus}, ${m.memoryGb} GB, ${m.platform}, node ${m.node}, load average ${m.loadAvg.join(' ')}`;
}
