// Constants out, placeholders in (issue 17): statements that differ only in their constants
// share one decision (policy/decide.ts). Two small scanners, both reading text exactly as
// PostgreSQL's lexer does under the settings Gatehouse pins upstream
// (standard_conforming_strings on, session-statement.ts changesLexing):
//
// - normalizeConstants: a client's text with each plain '...' string and unsigned integer or
//   decimal replaced by $1..$n, every other character kept. Anything it does not positively
//   recognise means "no sharing" (undefined), never a guess: a `$` anywhere (parameters,
//   dollar quotes), E'' U&'' B'' X'' N'' strings, numbers with an exponent, a hex, octal or
//   binary prefix, underscores or a leading dot, a string holding a backslash (read
//   differently were standard_conforming_strings ever off), a literal touching a word, a string
//   followed by a string (PostgreSQL joins '...' newline '...' into one constant), an
//   unterminated string, identifier or comment, control characters PostgreSQL's versions
//   disagree about, and statements that do not start with SELECT, WITH, VALUES, TABLE,
//   INSERT, UPDATE or DELETE.
// - templateOf: a decided SQL text cut at its $n parameters, found by lexing (never a string
//   search: a topic's attribute value in an access filter may hold "$1"), so each statement's
//   own literal tokens go back in byte for byte.

/** The class of a constant, as PostgreSQL's lexer and grammar type it. */
export type ConstantClass =
  /** A plain '...' string: an A_Const sval (type unknown until it meets a column). */
  | 'string'
  /** An integer that fits int4: an A_Const ival (PostgreSQL's ICONST). */
  | 'int'
  /** A decimal, or an integer too large for int4 (PostgreSQL's FCONST): an A_Const fval. */
  | 'numeric';

export interface NormalizedText {
  /** The text with every constant replaced by its placeholder $1..$n. */
  text: string;
  /** The constants' own tokens, as written, in order: $1 is constants[0]. */
  constants: string[];
  classes: ConstantClass[];
}

/** Statement starts that may share a decision; everything else is decided on its exact text. */
const SHARED_STARTS: ReadonlySet<string> = new Set(['select', 'with', 'values', 'table', 'insert', 'update', 'delete']);

/**
 * Words after which a string is an operand for sure, never a typed literal (`date '...'`,
 * `interval '1 day'`, `foo '...'`): a string after any other word is kept in the text. Only
 * an optimisation: a typed literal's placeholder (`date $1`) does not parse, and a text whose
 * normalised form does not parse is decided exactly.
 */
const OPERAND_AFTER: ReadonlySet<string> = new Set([
  'select',
  'where',
  'and',
  'or',
  'not',
  'then',
  'else',
  'when',
  'case',
  'in',
  'having',
  'like',
  'ilike',
  'similar',
  'between',
  'symmetric',
  'escape',
  'limit',
  'offset',
  'by',
  'on',
  'from',
  'for',
  'zone',
  'values',
  'set',
  'return',
  'distinct',
  'all',
  'any',
  'some',
  'array',
  'returning',
  'placing',
  'both',
  'leading',
  'trailing',
]);

const INT4_MAX = 2147483647;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/** PostgreSQL's ident_start: letters, underscore, and every non-ASCII byte. */
const isIdentStart = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c >= 0x80;
/** PostgreSQL's ident_cont: ident_start, digits and `$`. */
const isIdentCont = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 0x24;
/** Whitespace every PostgreSQL version agrees on (\v is whitespace only from 16 on). */
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;

/**
 * End of a comment starting at i (`--` to the end of the line, or a nested block comment),
 * i when there is none there, -1 for an unterminated block comment.
 */
function commentEnd(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x2d && s.charCodeAt(i + 1) === 0x2d) {
    let j = i + 2;
    while (j < s.length && s.charCodeAt(j) !== 0x0a && s.charCodeAt(j) !== 0x0d) j++;
    return j;
  }
  if (c === 0x2f && s.charCodeAt(i + 1) === 0x2a) {
    let depth = 1;
    let j = i + 2;
    while (j < s.length && depth > 0) {
      if (s.charCodeAt(j) === 0x2f && s.charCodeAt(j + 1) === 0x2a) {
        depth++;
        j += 2;
      } else if (s.charCodeAt(j) === 0x2a && s.charCodeAt(j + 1) === 0x2f) {
        depth--;
        j += 2;
      } else j++;
    }
    return depth === 0 ? j : -1;
  }
  return i;
}

/** Skip whitespace and comments; -1 for an unterminated comment. */
function skipSpace(s: string, i: number): number {
  for (;;) {
    if (i < s.length && isSpace(s.charCodeAt(i))) {
      i++;
      continue;
    }
    const e = commentEnd(s, i);
    if (e === i || e < 0) return e;
    i = e;
  }
}

/** End of a '...' (or "...") token starting at i with `q` doubled inside; -1 if unterminated. */
function quotedEnd(s: string, i: number, q: number): number {
  let j = i + 1;
  for (;;) {
    if (j >= s.length) return -1;
    if (s.charCodeAt(j) === q) {
      if (s.charCodeAt(j + 1) === q) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
}

/**
 * The text with its constants replaced by placeholders, or undefined when it may not share a
 * decision. `maxLength` bounds the work (texts over the decision cache's limit are not cached).
 */
export function normalizeConstants(sql: string, maxLength: number): NormalizedText | undefined {
  if (sql.length > maxLength || sql.includes('$')) return undefined;
  const out: string[] = [];
  const constants: string[] = [];
  const classes: ConstantClass[] = [];
  let copied = 0;
  /** The previous significant token: 'word' (with its lower-cased text), 'string', or another kind. */
  let prevKind: 'none' | 'word' | 'string' | 'other' = 'none';
  let prevWord = '';
  let first: string | undefined;
  let i = 0;
  const replace = (start: number, end: number, cls: ConstantClass): void => {
    out.push(sql.slice(copied, start));
    constants.push(sql.slice(start, end));
    classes.push(cls);
    out.push(`$${constants.length}`);
    copied = end;
  };
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const ce = commentEnd(sql, i);
    if (ce < 0) return undefined;
    if (ce > i) {
      i = ce;
      continue;
    }
    if (c < 0x20 || c === 0x7f) return undefined;
    // Only a word or an opening parenthesis may start the text: the statement's keyword.
    if (first === undefined && c !== 0x28 && !isIdentStart(c)) return undefined;
    if (c === 0x27) {
      // A plain string: not right after an identifier character (E'', B'', X'', N'', a typed
      // literal written without a space) nor after U& (a Unicode string).
      const before = i > 0 ? sql.charCodeAt(i - 1) : 0;
      if (isIdentCont(before) || before === 0x27) return undefined;
      if (before === 0x26 && i > 1 && (sql.charCodeAt(i - 2) | 0x20) === 0x75) return undefined;
      const end = quotedEnd(sql, i, 0x27);
      if (end < 0) return undefined;
      // A backslash means one thing with standard_conforming_strings on and another with it
      // off: the exact path writes such a value as E'...' (the same under either), while a
      // shared decision would put the client's own token back. Not shared.
      for (let k = i + 1; k < end; k++) if (sql.charCodeAt(k) === 0x5c) return undefined;
      // 'x'AS reads as a string and a word; $1AS would be a parameter with junk after it.
      if (isIdentCont(sql.charCodeAt(end))) return undefined;
      // PostgreSQL joins a string and the next one across a newline: never share that.
      const next = skipSpace(sql, end);
      if (next < 0 || sql.charCodeAt(next) === 0x27) return undefined;
      if (prevKind !== 'word' || OPERAND_AFTER.has(prevWord)) replace(i, end, 'string');
      prevKind = 'string';
      i = end;
      continue;
    }
    if (c === 0x22) {
      const end = quotedEnd(sql, i, 0x22);
      if (end < 0) return undefined;
      // A quoted name may be a type: `"int4" '5'` is a typed literal.
      prevKind = 'word';
      prevWord = '"';
      i = end;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < sql.length && isIdentCont(sql.charCodeAt(j))) j++;
      prevWord = sql.slice(i, j).toLowerCase();
      first ??= prevWord;
      prevKind = 'word';
      i = j;
      continue;
    }
    if (isDigit(c)) {
      let j = i;
      while (j < sql.length && isDigit(sql.charCodeAt(j))) j++;
      let cls: ConstantClass = 'int';
      if (sql.charCodeAt(j) === 0x2e) {
        // 5. and 5.x are other forms: only digits.digits is shared.
        if (!isDigit(sql.charCodeAt(j + 1))) return undefined;
        j++;
        while (j < sql.length && isDigit(sql.charCodeAt(j))) j++;
        cls = 'numeric';
      }
      const after = sql.charCodeAt(j);
      // 1e5, 0x1F, 1_000, 5abc, 1.2.3: another kind of number, or junk PostgreSQL's versions read differently.
      if (isIdentCont(after) || after === 0x2e) return undefined;
      if (cls === 'int' && Number(sql.slice(i, j)) > INT4_MAX) cls = 'numeric';
      replace(i, j, cls);
      prevKind = 'other';
      i = j;
      continue;
    }
    // A leading-dot number (.5) is a constant PostgreSQL reads whole: not shared.
    if (c === 0x2e && isDigit(sql.charCodeAt(i + 1))) return undefined;
    if (c === 0x29) {
      // `varchar(10) '...'` and `interval(3) '...'` are typed literals too.
      prevKind = 'word';
      prevWord = ')';
    } else {
      prevKind = 'other';
    }
    i++;
  }
  if (first === undefined || !SHARED_STARTS.has(first)) return undefined;
  out.push(sql.slice(copied));
  return { text: out.join(''), constants, classes };
}

/**
 * A decided SQL text cut at its $n parameters: parts[0] slot[0] parts[1] ... parts[k], where
 * slot[i] is the 0-based constant index. Undefined when the text holds anything the lexer
 * does not recognise (a dollar quote, an unterminated token) or a parameter beyond `count`.
 */
export interface Template {
  parts: string[];
  slots: number[];
}

export function templateOf(sql: string, count: number): Template | undefined {
  const parts: string[] = [];
  const slots: number[] = [];
  let copied = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const ce = commentEnd(sql, i);
    if (ce < 0) return undefined;
    if (ce > i) {
      i = ce;
      continue;
    }
    if (c === 0x27) {
      // E'...' (the deparser writes values with backslashes so): backslash escapes inside.
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      const extended = (prev | 0x20) === 0x65 && !(i > 1 && isIdentCont(sql.charCodeAt(i - 2)));
      const end = extended ? extendedEnd(sql, i) : quotedEnd(sql, i, 0x27);
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    if (c === 0x22) {
      const end = quotedEnd(sql, i, 0x22);
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < sql.length && isIdentCont(sql.charCodeAt(j))) j++;
      i = j;
      continue;
    }
    if (c === 0x24) {
      let j = i + 1;
      while (j < sql.length && isDigit(sql.charCodeAt(j))) j++;
      const n = j > i + 1 ? Number(sql.slice(i + 1, j)) : 0;
      // A `$` that is not a parameter (a dollar quote), $0, a parameter no constant stands
      // for, or a parameter with junk after it: no template.
      if (n < 1 || n > count || isIdentCont(sql.charCodeAt(j))) return undefined;
      parts.push(sql.slice(copied, i));
      slots.push(n - 1);
      copied = j;
      i = j;
      continue;
    }
    i++;
  }
  parts.push(sql.slice(copied));
  return { parts, slots };
}

/** End of an E'...' string starting at its quote (backslash escapes, '' doubling); -1 if unterminated. */
function extendedEnd(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    if (j >= s.length) return -1;
    const c = s.charCodeAt(j);
    if (c === 0x5c) {
      j += 2;
      continue;
    }
    if (c === 0x27) {
      if (s.charCodeAt(j + 1) === 0x27) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
}

/** The template with each slot filled by its constant's own token. */
export function fill(t: Template, constants: readonly string[]): string {
  let s = t.parts[0];
  for (let k = 0; k < t.slots.length; k++) s += constants[t.slots[k]] + t.parts[k + 1];
  return s;
}
