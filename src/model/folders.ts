/** Folder paths: `Finance/Invoices`. A binding on a folder applies to it and to every subfolder. */
import { FOLDER_PATTERN } from './schemas.js';

const folderRe = new RegExp(FOLDER_PATTERN);

export function isFolderPath(path: string): boolean {
  return path.length <= 1024 && folderRe.test(path);
}

/** True when `folder` is `scope` or lies below it (`Finance` covers `Finance/Invoices`, not `FinanceOld`). */
export function folderCovers(scope: string, folder: string): boolean {
  return folder === scope || (folder.length > scope.length && folder.startsWith(scope) && folder.charCodeAt(scope.length) === 47 /* / */);
}

/** `A/B/C` -> [`A`, `A/B`, `A/B/C`]: the folders whose bindings reach `A/B/C`. */
export function folderAncestry(folder: string): string[] {
  const out: string[] = [];
  let i = folder.indexOf('/');
  while (i !== -1) {
    out.push(folder.slice(0, i));
    i = folder.indexOf('/', i + 1);
  }
  out.push(folder);
  return out;
}
