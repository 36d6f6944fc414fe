/** Reading and checking the documents named by `-f`: shared by `validate` and `apply`. */
import { checkDocuments, formatProblem, type CheckedDocuments } from '../documents/check.js';
import { loadDocuments } from '../documents/load.js';
import type { CliContext } from './context.js';

export interface DocumentOptions {
  filename: string[];
  namespace?: string;
}

/** Loads and checks the documents; prints nothing. */
export function readDocuments(ctx: CliContext, options: DocumentOptions): CheckedDocuments {
  const started = Date.now();
  const loaded = loadDocuments(options.filename, ctx.io.readStdin ? { readStdin: ctx.io.readStdin } : {});
  const checked = checkDocuments(loaded, options.namespace ? { defaultNamespace: options.namespace } : {});
  ctx.logger.debug(
    { files: loaded.files.length, documents: checked.documentCount, problems: checked.problems.length, ms: Date.now() - started },
    'documents checked',
  );
  return checked;
}

export function printProblems(ctx: CliContext, checked: CheckedDocuments): void {
  for (const p of checked.problems) ctx.err(formatProblem(p));
}

export function printWarnings(ctx: CliContext, checked: CheckedDocuments, note = ''): void {
  for (const w of checked.warnings) ctx.warn(`${formatProblem(w)}${note}`);
}

/** No document at all is an error: most likely a wrong path. */
export function noDocumentsMessage(options: DocumentOptions): string {
  return `no documents found in ${options.filename.join(', ')} (*.yaml, *.yml and *.json files are read)`;
}
