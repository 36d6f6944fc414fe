/** `--name 123` from the command line, or `fallback`; for the operator benchmarks' few flags. */
export function numberFlag(name: string, fallback: number, argv: string[] = process.argv): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} expects a positive number, got ${JSON.stringify(argv[i + 1])}`);
  return value;
}
