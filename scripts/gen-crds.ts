/**
 * `npm run gen:crds`: writes the CRDs derived from src/model/schemas.ts (see src/api/v1alpha1/crds.ts) to
 * crds/, config/crd/bases/ and charts/rpa-access/crds/ (the same bytes in all three), removing
 * any other *.yaml there: those directories hold generated files only.
 *
 * `npm run gen:crds -- --check`: writes nothing; exits 1 listing every stale, missing or extra
 * file, 0 when all are up to date.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_OUTPUT_DIRS, renderCrdFiles } from '../src/api/v1alpha1/crds.js';

export interface CrdDrift {
  path: string;
  problem: 'stale' | 'missing' | 'extra';
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Differences between the generated CRDs and what `root` holds. */
export function crdDrift(root: string = REPO_ROOT): CrdDrift[] {
  const files = renderCrdFiles();
  const expected = new Set(files.map((f) => f.file));
  const drift: CrdDrift[] = [];
  for (const dir of CRD_OUTPUT_DIRS) {
    const abs = join(root, dir);
    for (const { file, content } of files) {
      const path = join(abs, file);
      if (!existsSync(path)) drift.push({ path: join(dir, file), problem: 'missing' });
      else if (readFileSync(path, 'utf8') !== content) drift.push({ path: join(dir, file), problem: 'stale' });
    }
    if (existsSync(abs)) {
      for (const name of readdirSync(abs).sort()) {
        if (/\.ya?ml$/.test(name) && !expected.has(name)) drift.push({ path: join(dir, name), problem: 'extra' });
      }
    }
  }
  return drift;
}

/** Writes every generated file and removes extra ones; returns the paths it changed. */
export function writeCrds(root: string = REPO_ROOT): string[] {
  const changed: string[] = [];
  const files = renderCrdFiles();
  for (const d of crdDrift(root)) {
    if (d.problem === 'extra') {
      rmSync(join(root, d.path));
      changed.push(`${d.path} (removed)`);
    }
  }
  for (const dir of CRD_OUTPUT_DIRS) {
    mkdirSync(join(root, dir), { recursive: true });
    for (const { file, content } of files) {
      const path = join(root, dir, file);
      if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
      writeFileSync(path, content);
      changed.push(relative(root, path));
    }
  }
  return changed;
}

function main(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('usage: tsx scripts/gen-crds.ts [--check]\n  writes crds/, config/crd/bases/ and charts/rpa-access/crds/ from src/model/schemas.ts');
    return 0;
  }
  if (argv.includes('--check')) {
    const drift = crdDrift();
    for (const d of drift) console.error(`${d.path}: ${d.problem}`);
    if (drift.length > 0) {
      console.error('CRDs are out of date: run `npm run gen:crds`');
      return 1;
    }
    console.log('CRDs are up to date');
    return 0;
  }
  const changed = writeCrds();
  for (const path of changed) console.log(`wrote ${path}`);
  if (changed.length === 0) console.log('CRDs are up to date');
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
