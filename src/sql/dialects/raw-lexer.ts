// A small lexer for queriers' raw MySQL/MariaDB/Snowflake text, reading it the warehouse's
// way: where its strings, quoted names, comments and statement separators are. It is the one
// reader that decides what a querier's text is: the classifier (classify-raw.ts) parses the
// text with these comments removed and refuses whatever another reader (node-sql-parser,
// PostgreSQL's parser) could take for a comment where the warehouse reads code; the
// placeholder scans (placeholders.ts) look for binds only where this lexer finds code.

export type LexDialect = 'mysql' | 'snowflake';

export type TokenKind = 'string' | 'name' | 'dollar' | 'line' | 'block' | 'separator';

export interface Token {
  kind: TokenKind;
  /** [start, end) in the text; a line comment ends after its newline. */
  start: number;
  end: number;
}

export interface Lexed {
  /** Every quoted token, comment and separator, in order. */
  tokens: Token[];
  /** The tokens' kinds and extents as one string: two readings of a text agree when their shapes do. */
  shape: string;
  /** The statements' texts (between top-level `;`), comments and blanks removed from the count. */
  statements: number;
  /** A `/*!` or `/*M!` comment, which MySQL and MariaDB execute. */
  executableComment: boolean;
  /** A `/*+` comment, which MySQL (and MariaDB 12) read as optimizer hints (SET_VAR among them). */
  optimizerHint: boolean;
  /** A `/*` inside a block comment: PostgreSQL and node-sql-parser nest them, these warehouses do not. */
  nestedComment: boolean;
  /**
   * A line comment holding a line break other than its closing `\n` (a lone `\r`, `\v`, `\f`,
   * U+0085, U+2028, U+2029): readers end the comment at different places (PostgreSQL and
   * node-sql-parser at `\r`, MySQL at `\n` only, Snowflake's lexer unproven).
   */
  strayLineBreak: boolean;
  /**
   * A Snowflake line comment (`--`, `//`) with no space or control character after its mark:
   * a comment to Snowflake as documented, but not to MySQL's rule, and not provable here.
   */
  unspacedLineComment: boolean;
  /** A quote or comment left open at the end. */
  unterminated: boolean;
}

const SHAPE_LETTER: Record<TokenKind, string> = { string: 'q', name: 'q', dollar: 'd', line: 'l', block: 'b', separator: 's' };

/**
 * Whether `--` at `i` starts a comment. MySQL and MariaDB need a space or control character
 * after it (`1 --1` is `1 - -1`); only ASCII 0x00-0x20 and the end of the text are taken for
 * one, so a character the server might not count (DEL, U+00A0) leaves `--` as code, which
 * the classifier then refuses. Snowflake starts a comment at any `--`.
 */
function dashComment(text: string, i: number, dialect: LexDialect): boolean {
  if (text[i] !== '-' || text[i + 1] !== '-') return false;
  return dialect === 'snowflake' || i + 2 >= text.length || text.charCodeAt(i + 2) <= 0x20;
}

export function lexRaw(text: string, dialect: LexDialect, backslashEscapes: boolean): Lexed {
  const tokens: Token[] = [];
  let statements = 0;
  let pendingCode = false;
  let executableComment = false;
  let optimizerHint = false;
  let nestedComment = false;
  let strayLineBreak = false;
  let unspacedLineComment = false;
  let unterminated = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "'" || c === '"' || c === '`') {
      // Backquoted names never take backslash escapes; in Snowflake "..." is a name too.
      const name = c === '`' || (dialect === 'snowflake' && c === '"');
      const escapes = backslashEscapes && !name;
      const start = i;
      i++;
      let closed = false;
      while (i < n) {
        const d = text[i]!;
        if (escapes && d === '\\') {
          i += 2;
          continue;
        }
        if (d === c) {
          if (text[i + 1] === c) {
            i += 2;
            continue;
          }
          i++;
          closed = true;
          break;
        }
        i++;
      }
      if (!closed) unterminated = true;
      tokens.push({ kind: name ? 'name' : 'string', start, end: Math.min(i, n) });
      pendingCode = true;
      continue;
    }
    if (dialect === 'snowflake' && c === '$' && next === '$') {
      const end = text.indexOf('$$', i + 2);
      if (end < 0) unterminated = true;
      const stop = end < 0 ? n : end + 2;
      tokens.push({ kind: 'dollar', start: i, end: stop });
      i = stop;
      pendingCode = true;
      continue;
    }
    if (dashComment(text, i, dialect) || (c === '#' && dialect === 'mysql') || (dialect === 'snowflake' && c === '/' && next === '/')) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? n : end + 1;
      const body = text.slice(i, end < 0 ? n : end);
      // A `\r` just before the closing `\n` is a Windows line end; anywhere else, a second reading.
      if (/[\v\f\u0085\u2028\u2029]|\r(?!$)/.test(body) || (end < 0 && body.endsWith('\r'))) strayLineBreak = true;
      if (c !== '#' && i + 2 < n && text.charCodeAt(i + 2) > 0x20) unspacedLineComment = true;
      tokens.push({ kind: 'line', start: i, end: stop });
      i = stop;
      continue;
    }
    if (c === '/' && next === '*') {
      if (dialect === 'mysql' && (text[i + 2] === '!' || (text[i + 2] === 'M' && text[i + 3] === '!'))) executableComment = true;
      if (dialect === 'mysql' && text[i + 2] === '+') optimizerHint = true;
      const end = text.indexOf('*/', i + 2);
      if (end < 0) unterminated = true;
      const stop = end < 0 ? n : end + 2;
      // Up to the closing `*`: in `/* a /*/` the `/*/` ends the comment here and nests for PostgreSQL.
      if (text.slice(i + 2, end < 0 ? n : end + 1).includes('/*')) nestedComment = true;
      tokens.push({ kind: 'block', start: i, end: stop });
      i = stop;
      continue;
    }
    if (c === ';') {
      tokens.push({ kind: 'separator', start: i, end: i + 1 });
      if (pendingCode) statements++;
      pendingCode = false;
      i++;
      continue;
    }
    if (!/\s/.test(c)) pendingCode = true;
    i++;
  }
  if (pendingCode) statements++;
  const shape = tokens.map((t) => `${SHAPE_LETTER[t.kind]}${t.start}-${t.end}`).join();
  return { tokens, shape, statements, executableComment, optimizerHint, nestedComment, strayLineBreak, unspacedLineComment, unterminated };
}

/** The stretches of the text the lexer read as code: everything outside quotes and comments. */
export function codeSegments(text: string, lexed: Lexed): { start: number; text: string }[] {
  const out: { start: number; text: string }[] = [];
  let at = 0;
  for (const t of lexed.tokens) {
    if (t.kind === 'separator') continue;
    if (t.start > at) out.push({ start: at, text: text.slice(at, t.start) });
    at = t.end;
  }
  if (at < text.length) out.push({ start: at, text: text.slice(at) });
  return out;
}

/**
 * The text with every comment the warehouse reads blanked out (spaces, newlines kept): what the
 * warehouse runs, in a form where no other reader has a comment left to read differently.
 */
export function blankComments(text: string, lexed: Lexed): string {
  let out = '';
  let at = 0;
  for (const t of lexed.tokens) {
    if (t.kind !== 'line' && t.kind !== 'block') continue;
    out += text.slice(at, t.start) + text.slice(t.start, t.end).replace(/[^\n]/g, ' ');
    at = t.end;
  }
  return out + text.slice(at);
}

/**
 * What some reader takes for the start or end of a comment. Left in the warehouse's code it is
 * code to the warehouse (MySQL's `--1`, Snowflake's `#`), so another reader may skip it. `//`
 * is Snowflake's line comment; node-sql-parser's MySQL grammar is not trusted either way.
 */
const COMMENT_MARK = /--|\/\*|\*\/|\/\/|#/;

/**
 * The first sequence left in the warehouse's code that another reader could take for a comment
 * (node-sql-parser and PostgreSQL read `--1` as a comment, MySQL as `- -1`), or undefined when
 * there is none.
 */
export function commentMarkInCode(text: string, lexed: Lexed): string | undefined {
  for (const s of codeSegments(text, lexed)) {
    const m = COMMENT_MARK.exec(s.text);
    if (m) return m[0];
  }
  return undefined;
}
