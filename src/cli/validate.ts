/**
 * `rpa-access validate -f PATH...`: offline. Each document against its schema, duplicates across
 * the documents, and each tenant's documents against the cross-object invariants. Exit 0 valid,
 * 1 invalid, one line per problem on stderr: `PATH:LINE: Kind namespace/name: message`.
 */
import { CliError, EXIT_ERROR, EXIT_OK, type CliContext } from './context.js';
import { noDocumentsMessage, printProblems, printWarnings, readDocuments, type DocumentOptions } from './documents.js';

export async function validateCommand(ctx: CliContext, options: DocumentOptions): Promise<number> {
  const checked = readDocuments(ctx, options);
  if (checked.problems.length > 0) {
    printProblems(ctx, checked);
    return EXIT_ERROR;
  }
  if (checked.documentCount === 0) throw new CliError(noDocumentsMessage(options));
  printWarnings(ctx, checked, ' (checked against these documents and the built-ins only)');
  const files = checked.files.length;
  ctx.out(
    `valid: ${checked.documentCount} document${checked.documentCount === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}` +
      ` (tenant${checked.tenants.length === 1 ? '' : 's'} ${checked.tenants.join(', ')})`,
  );
  return EXIT_OK;
}
