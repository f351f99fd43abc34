import { scimError } from './errors.js';

/**
 * RFC 7644 §3.4.2.2 filter grammar → a small AST.
 *
 * Why not `SCIMMY.Types.Filter`: it flattens every expression into OR-of-AND
 * branches and gets two common shapes wrong on this version (1.3.5):
 * `not (a or b)` becomes `(not a) or (not b)`, and `a and (b or not (c))`
 * fails to parse. Both are checked in test/unit/scim-filter.test.ts. The
 * grammar is small, so we parse it ourselves into a tree that keeps grouping and
 * negation exactly as written, then compile that tree into one SQL predicate.
 */
export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type FilterValue = string | number | boolean | null;

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; node: FilterNode }
  | { kind: 'compare'; path: string; op: CompareOp; value: FilterValue }
  | { kind: 'present'; path: string }
  /** `emails[type eq "work" and value co "@x"]`: some element of a multi-valued attribute matches `filter` */
  | { kind: 'has'; path: string; filter: FilterNode };

const COMPARE_OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const MAX_FILTER_LENGTH = 4096;
const MAX_DEPTH = 32;

type Token =
  | { t: 'word'; v: string }
  | { t: 'value'; v: FilterValue }
  | { t: '(' | ')' | '[' | ']' };

const invalid = (detail: string) => scimError(400, `Invalid filter: ${detail}`, 'invalidFilter');

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')' || ch === '[' || ch === ']') {
      tokens.push({ t: ch });
      i++;
    } else if (ch === '"') {
      // JSON string rules (RFC 7644 uses JSON values in filters)
      let j = i + 1;
      while (j < input.length && input[j] !== '"') j += input[j] === '\\' ? 2 : 1;
      if (j >= input.length) throw invalid('unterminated string');
      try {
        tokens.push({ t: 'value', v: JSON.parse(input.slice(i, j + 1)) as string });
      } catch {
        throw invalid('malformed string');
      }
      i = j + 1;
    } else {
      const m = /^[^\s()[\]"]+/.exec(input.slice(i))!;
      const word = m[0];
      i += word.length;
      // `emails[type eq "work"].value`: the sub-attribute after `]` is glued to the bracket
      const lower = word.toLowerCase();
      if (lower === 'true' || lower === 'false') tokens.push({ t: 'value', v: lower === 'true' });
      else if (lower === 'null') tokens.push({ t: 'value', v: null });
      else if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(word)) tokens.push({ t: 'value', v: Number(word) });
      else tokens.push({ t: 'word', v: word });
    }
  }
  return tokens;
}

const ATTR_PATH = /^(urn:[A-Za-z0-9:._-]+:)?[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)?$/;

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): FilterNode {
    const node = this.or(0);
    if (this.pos < this.tokens.length) throw invalid(`unexpected ${describe(this.tokens[this.pos]!)}`);
    return node;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private isKeyword(tok: Token | undefined, keyword: string): boolean {
    return tok?.t === 'word' && tok.v.toLowerCase() === keyword;
  }

  private or(depth: number): FilterNode {
    let left = this.and(depth);
    while (this.isKeyword(this.peek(), 'or')) {
      this.pos++;
      left = { kind: 'or', left, right: this.and(depth) };
    }
    return left;
  }

  private and(depth: number): FilterNode {
    let left = this.unary(depth);
    while (this.isKeyword(this.peek(), 'and')) {
      this.pos++;
      left = { kind: 'and', left, right: this.unary(depth) };
    }
    return left;
  }

  private unary(depth: number): FilterNode {
    if (depth > MAX_DEPTH) throw invalid('nested too deeply');
    const tok = this.peek();
    if (!tok) throw invalid('unexpected end of filter');
    if (this.isKeyword(tok, 'not')) {
      this.pos++;
      return { kind: 'not', node: this.unary(depth + 1) };
    }
    if (tok.t === '(') {
      this.pos++;
      const node = this.or(depth + 1);
      this.expect(')');
      return node;
    }
    if (tok.t !== 'word') throw invalid(`unexpected ${describe(tok)}`);
    this.pos++;
    const path = tok.v;
    if (this.peek()?.t === '[') return this.valuePath(path, depth);
    if (!ATTR_PATH.test(path)) throw invalid(`"${path}" is not an attribute path`);
    return this.comparison(path);
  }

  private valuePath(path: string, depth: number): FilterNode {
    if (!ATTR_PATH.test(path) || path.includes('.')) throw invalid(`"${path}" cannot take a value filter`);
    this.expect('[');
    const inner = this.or(depth + 1);
    this.expect(']');
    // `emails[type eq "work"].value eq "x"` (PATCH-path style) is accepted as well
    const next = this.peek();
    if (next?.t === 'word' && next.v.startsWith('.')) {
      this.pos++;
      const sub = next.v.slice(1);
      if (!/^[A-Za-z$][\w$-]*$/.test(sub)) throw invalid(`"${next.v}" is not a sub-attribute`);
      return { kind: 'has', path, filter: { kind: 'and', left: inner, right: this.comparison(sub) } };
    }
    return { kind: 'has', path, filter: inner };
  }

  private comparison(path: string): FilterNode {
    const opTok = this.peek();
    if (opTok?.t !== 'word') throw invalid(`missing operator after "${path}"`);
    const op = opTok.v.toLowerCase();
    this.pos++;
    if (op === 'pr') return { kind: 'present', path };
    if (!COMPARE_OPS.has(op)) throw invalid(`unknown operator "${opTok.v}"`);
    const valueTok = this.peek();
    // RFC 7644 quotes string values, but Microsoft's own examples and validator send bare
    // words (`externalId eq jyoung`, `userName sw O`): after an operator a bare word can
    // only be a value, so take it as a string rather than refuse the IdP's probe.
    if (valueTok?.t === 'word') {
      this.pos++;
      return { kind: 'compare', path, op: op as CompareOp, value: valueTok.v };
    }
    if (valueTok?.t !== 'value') throw invalid(`operator "${op}" needs a value (a quoted string, number, true, false or null)`);
    this.pos++;
    return { kind: 'compare', path, op: op as CompareOp, value: valueTok.v };
  }

  private expect(t: '(' | ')' | '[' | ']') {
    const tok = this.peek();
    if (tok?.t !== t) throw invalid(`expected "${t}" but found ${tok ? describe(tok) : 'the end'}`);
    this.pos++;
  }
}

function describe(tok: Token): string {
  if (tok.t === 'word') return `"${tok.v}"`;
  if (tok.t === 'value') return JSON.stringify(tok.v);
  return `"${tok.t}"`;
}

export function parseFilter(input: string): FilterNode {
  if (typeof input !== 'string' || !input.trim()) throw invalid('empty filter');
  if (input.length > MAX_FILTER_LENGTH) throw invalid(`longer than ${MAX_FILTER_LENGTH} characters`);
  return new Parser(tokenize(input)).parse();
}
