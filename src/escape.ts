/**
 * Text from documents and callers, made safe to print: control characters (ESC sequences that
 * recolour or rewrite a terminal, line breaks that forge extra lines, NUL, DEL, C1), format
 * characters (bidirectional overrides that reorder what is shown, zero-width characters) and the
 * line and paragraph separators are written as visible escapes (`\e`-style `\u001b`, `\n`), so
 * what is printed is what is stored, one line each. Used by every text output of the CLI and by
 * the HTTP API's error lines; JSON output needs none (JSON.stringify already escapes controls).
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;
const UNSAFE_TEST = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function escapeControl(text: string): string {
  if (!UNSAFE_TEST.test(text)) return text;
  return text.replace(UNSAFE, (ch) => SHORT[ch] ?? `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}

/** One line for an error body or a log message: escaped, and cut at `max` characters. */
export function oneLine(text: string, max = 300): string {
  const safe = escapeControl(text);
  return safe.length > max ? `${safe.slice(0, max)}...` : safe;
}

/**
 * JSON text with the characters JSON.stringify leaves raw but a terminal acts on (DEL, C1
 * controls, format characters, line and paragraph separators) written as `\uXXXX` escapes. They
 * can only occur inside strings, where the escape means the very same character: the JSON stays
 * exact for any parser.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(/[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu, (ch) => `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}
