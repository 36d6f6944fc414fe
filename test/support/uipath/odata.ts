/**
 * The part of OData v4's query language a UiPath client needs: `$filter` with comparisons,
 * `and`/`or`/`not`, parentheses, `in`, and the string functions tolower/toupper/contains/
 * startswith/endswith; `$orderby`, `$select`, `$top`, `$skip`, `$count`. Anything else is refused
 * with a 400, never silently ignored: a filter the double did not understand must not return rows.
 *
 * String comparison ignores case, as Orchestrator's SQL Server collation does (a client filtering
 * on `EmailAddress eq 'John@x'` finds `john@x` in the real product too).
 */
import { ApiError } from './errors.js';

export type Row = Record<string, unknown>;

type Expr =
  | { kind: 'literal'; value: unknown }
  | { kind: 'path'; path: string[] }
  | { kind: 'call'; name: string; args: Expr[] }
  | { kind: 'binary'; op: string; left: Expr; right: Expr }
  | { kind: 'in'; left: Expr; list: Expr[] }
  | { kind: 'not'; operand: Expr };

const FUNCTIONS: Record<string, number> = { tolower: 1, toupper: 1, contains: 2, startswith: 2, endswith: 2 };
const COMPARISONS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);

function invalid(message: string): ApiError {
  return new ApiError(400, 1000, `Invalid OData query options. ${message}`);
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let j = i + 1;
      let s = "'";
      for (;;) {
        if (j >= text.length) throw invalid(`Unterminated string literal at position ${i} in '${text}'.`);
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            s += "''";
            j += 2;
            continue;
          }
          break;
        }
        s += text[j];
        j++;
      }
      tokens.push(s + "'");
      i = j + 1;
    } else if ('(),'.includes(c)) {
      tokens.push(c);
      i++;
    } else {
      const m = /^[^\s(),']+/.exec(text.slice(i));
      const word = m?.[0] ?? c;
      tokens.push(word);
      i += word.length;
    }
  }
  return tokens;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly tokens: string[],
    private readonly text: string,
  ) {}

  parse(): Expr {
    const e = this.or();
    if (this.pos < this.tokens.length) throw invalid(`Syntax error at '${this.tokens[this.pos]}' in '${this.text}'.`);
    return e;
  }

  private peek(): string | undefined {
    return this.tokens[this.pos];
  }

  private next(): string {
    const t = this.tokens[this.pos++];
    if (t === undefined) throw invalid(`Unexpected end of expression in '${this.text}'.`);
    return t;
  }

  private expect(t: string): void {
    const got = this.next();
    if (got !== t) throw invalid(`Expected '${t}' but found '${got}' in '${this.text}'.`);
  }

  private or(): Expr {
    let left = this.and();
    while (this.peek() === 'or') {
      this.pos++;
      left = { kind: 'binary', op: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): Expr {
    let left = this.unary();
    while (this.peek() === 'and') {
      this.pos++;
      left = { kind: 'binary', op: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): Expr {
    if (this.peek() === 'not') {
      this.pos++;
      return { kind: 'not', operand: this.unary() };
    }
    const left = this.operand();
    const op = this.peek();
    if (op !== undefined && COMPARISONS.has(op)) {
      this.pos++;
      return { kind: 'binary', op, left, right: this.operand() };
    }
    if (op === 'in') {
      this.pos++;
      this.expect('(');
      const list: Expr[] = [this.operand()];
      while (this.peek() === ',') {
        this.pos++;
        list.push(this.operand());
      }
      this.expect(')');
      return { kind: 'in', left, list };
    }
    return left;
  }

  private operand(): Expr {
    const t = this.next();
    if (t === '(') {
      const e = this.or();
      this.expect(')');
      return e;
    }
    if (t.startsWith("'")) return { kind: 'literal', value: t.slice(1, -1).replace(/''/g, "'") };
    if (t === 'true' || t === 'false') return { kind: 'literal', value: t === 'true' };
    if (t === 'null') return { kind: 'literal', value: null };
    if (/^-?\d+(\.\d+)?$/.test(t)) return { kind: 'literal', value: Number(t) };
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(t)) return { kind: 'literal', value: t.toLowerCase() };
    if (this.peek() === '(' && t in FUNCTIONS) {
      this.pos++;
      const args: Expr[] = [this.or()];
      while (this.peek() === ',') {
        this.pos++;
        args.push(this.or());
      }
      this.expect(')');
      if (args.length !== FUNCTIONS[t]) throw invalid(`Function '${t}' takes ${FUNCTIONS[t]} argument(s).`);
      return { kind: 'call', name: t, args };
    }
    if (/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)*$/.test(t)) return { kind: 'path', path: t.split('/') };
    throw invalid(`Syntax error at '${t}' in '${this.text}'.`);
  }
}

/** A JSON schema (as SchemaSet yields it) to check property paths against. */
export interface EntityType {
  name: string;
  /** Properties of the type; a property naming another EntityType can be followed with '/'. */
  properties: Record<string, EntityType | true>;
}

function checkPaths(e: Expr, type: EntityType): void {
  switch (e.kind) {
    case 'path': {
      let t: EntityType | true = type;
      for (const p of e.path) {
        if (t === true || !(p in t.properties)) {
          throw invalid(`Could not find a property named '${p}' on type 'UiPath.Server.Configuration.OData.${t === true ? 'Edm' : t.name}'.`);
        }
        t = t.properties[p] as EntityType | true;
      }
      return;
    }
    case 'call':
      e.args.forEach((a) => checkPaths(a, type));
      return;
    case 'binary':
      checkPaths(e.left, type);
      checkPaths(e.right, type);
      return;
    case 'in':
      checkPaths(e.left, type);
      e.list.forEach((a) => checkPaths(a, type));
      return;
    case 'not':
      checkPaths(e.operand, type);
      return;
    case 'literal':
      return;
  }
}

function fold(v: unknown): unknown {
  return typeof v === 'string' ? v.toLowerCase() : v;
}

function compare(a: unknown, b: unknown): number {
  const x = fold(a);
  const y = fold(b);
  if (x === y) return 0;
  if (x === null || x === undefined) return -1;
  if (y === null || y === undefined) return 1;
  return (x as number | string) < (y as number | string) ? -1 : 1;
}

function evaluate(e: Expr, row: Row): unknown {
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'path': {
      let v: unknown = row;
      for (const p of e.path) v = v === null || v === undefined ? undefined : (v as Row)[p];
      return v ?? null;
    }
    case 'not':
      return !evaluate(e.operand, row);
    case 'in': {
      const v = evaluate(e.left, row);
      return e.list.some((item) => compare(v, evaluate(item, row)) === 0);
    }
    case 'call': {
      const args = e.args.map((a) => evaluate(a, row));
      const [a, b] = args.map((x) => (typeof x === 'string' ? x.toLowerCase() : x));
      switch (e.name) {
        case 'tolower':
          return typeof args[0] === 'string' ? args[0].toLowerCase() : null;
        case 'toupper':
          return typeof args[0] === 'string' ? args[0].toUpperCase() : null;
        case 'contains':
          return typeof a === 'string' && typeof b === 'string' && a.includes(b);
        case 'startswith':
          return typeof a === 'string' && typeof b === 'string' && a.startsWith(b);
        case 'endswith':
          return typeof a === 'string' && typeof b === 'string' && a.endsWith(b);
      }
      return null;
    }
    case 'binary': {
      if (e.op === 'and') return Boolean(evaluate(e.left, row)) && Boolean(evaluate(e.right, row));
      if (e.op === 'or') return Boolean(evaluate(e.left, row)) || Boolean(evaluate(e.right, row));
      const c = compare(evaluate(e.left, row), evaluate(e.right, row));
      switch (e.op) {
        case 'eq':
          return c === 0;
        case 'ne':
          return c !== 0;
        case 'gt':
          return c > 0;
        case 'ge':
          return c >= 0;
        case 'lt':
          return c < 0;
        case 'le':
          return c <= 0;
      }
    }
  }
  return null;
}

export function parseFilter(text: string, type: EntityType): (row: Row) => boolean {
  const expr = new Parser(tokenize(text), text).parse();
  checkPaths(expr, type);
  return (row) => evaluate(expr, row) === true;
}

export interface CollectionQuery {
  $filter?: string;
  $orderby?: string;
  $select?: string;
  $expand?: string;
  $top?: number;
  $skip?: number;
  $count?: boolean;
}

export interface Page {
  rows: Row[];
  count?: number;
  /** Set when the server's page size cut the result short (OData server-driven paging). */
  nextSkip?: number;
}

/**
 * Filters, orders, pages and projects rows. `maxTop` is the largest `$top` accepted (UiPath: 1000);
 * `pageSize` the most rows one response holds (server-driven paging beyond it).
 */
export function applyQuery(all: Row[], q: CollectionQuery, type: EntityType, maxTop: number, pageSize: number): Page {
  let rows = all;
  if (q.$filter !== undefined) rows = rows.filter(parseFilter(q.$filter, type));
  if (q.$orderby !== undefined) {
    const keys = q.$orderby.split(',').map((part) => {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_/]*)(?:\s+(asc|desc))?\s*$/.exec(part);
      if (!m?.[1]) throw invalid(`Syntax error in $orderby '${q.$orderby}'.`);
      const path = parseFilter(`${m[1]} eq null`, type) && m[1].split('/');
      return { path, desc: m[2] === 'desc' };
    });
    if (keys.length > 5) throw invalid('The number of clauses in $orderby query option exceeded the maximum 5 allowed.');
    rows = [...rows].sort((a, b) => {
      for (const k of keys) {
        const get = (r: Row): unknown => k.path.reduce<unknown>((v, p) => (v as Row | undefined)?.[p], r);
        const c = compare(get(a), get(b));
        if (c !== 0) return k.desc ? -c : c;
      }
      return 0;
    });
  }
  const count = rows.length;
  if (q.$top !== undefined && q.$top < 0) throw invalid(`Invalid value '${q.$top}' for $top query option found.`);
  if (q.$skip !== undefined && q.$skip < 0) throw invalid(`Invalid value '${q.$skip}' for $skip query option found.`);
  if (q.$top !== undefined && q.$top > maxTop) {
    throw invalid(`The limit of '${maxTop}' for Top query has been exceeded. The value from the incoming request is '${q.$top}'.`);
  }
  const skip = q.$skip ?? 0;
  const wanted = q.$top ?? Infinity;
  const take = Math.min(wanted, pageSize);
  const page = rows.slice(skip, skip + take);
  const nextSkip = take < wanted && skip + take < rows.length ? skip + take : undefined;
  let projected = page;
  if (q.$select !== undefined) {
    const names = q.$select.split(',').map((s) => s.trim());
    for (const n of names) if (n !== '*') parseFilter(`${n} eq null`, type);
    if (!names.includes('*')) projected = page.map((r) => Object.fromEntries(names.filter((n) => n in r).map((n) => [n, r[n]])));
  }
  return { rows: projected, count: q.$count ? count : undefined, nextSkip };
}
