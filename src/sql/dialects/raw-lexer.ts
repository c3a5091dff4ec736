// A small lexer for queriers' raw MySQL/MariaDB/Snowflake text: where its strings, comments
// and statement separators are. The classifier uses it to refuse text that a server could
// read two ways (a backslash before a quote reads differently with NO_BACKSLASH_ESCAPES, the
// DESIGN 3 case where node-sql-parser missed what followed `\'`), executable comments
// (`/*! ... */` runs on MySQL), and to check that node-sql-parser found as many statements
// as the server will.

export type LexDialect = 'mysql' | 'snowflake';

export interface Lexed {
  /** [start, end) of every quoted token, comment and separator: the text's shape. */
  shape: string[];
  /** The statements' texts (between top-level `;`), comments and blanks removed from the count. */
  statements: number;
  /** A `/*!` or `/*M!` comment, which MySQL and MariaDB execute. */
  executableComment: boolean;
  /** A quote or comment left open at the end. */
  unterminated: boolean;
}

export function lexRaw(text: string, dialect: LexDialect, backslashEscapes: boolean): Lexed {
  const shape: string[] = [];
  let statements = 0;
  let pendingCode = false;
  let executableComment = false;
  let unterminated = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "'" || c === '"' || c === '`') {
      // Backquoted names never take backslash escapes; in Snowflake "..." is a name too.
      const escapes = backslashEscapes && c !== '`' && !(dialect === 'snowflake' && c === '"');
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
      shape.push(`q${start}-${i}`);
      pendingCode = true;
      continue;
    }
    if (dialect === 'snowflake' && c === '$' && next === '$') {
      const end = text.indexOf('$$', i + 2);
      if (end < 0) unterminated = true;
      const stop = end < 0 ? n : end + 2;
      shape.push(`d${i}-${stop}`);
      i = stop;
      pendingCode = true;
      continue;
    }
    const dashComment = c === '-' && next === '-' && (dialect === 'snowflake' || i + 2 >= n || /[\s\x00-\x1f]/.test(text[i + 2]!));
    if (dashComment || (c === '#' && dialect === 'mysql') || (dialect === 'snowflake' && c === '/' && next === '/')) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? n : end + 1;
      shape.push(`l${i}-${stop}`);
      i = stop;
      continue;
    }
    if (c === '/' && next === '*') {
      if (dialect === 'mysql' && (text[i + 2] === '!' || (text[i + 2] === 'M' && text[i + 3] === '!'))) executableComment = true;
      const end = text.indexOf('*/', i + 2);
      if (end < 0) unterminated = true;
      const stop = end < 0 ? n : end + 2;
      shape.push(`b${i}-${stop}`);
      i = stop;
      continue;
    }
    if (c === ';') {
      shape.push(`s${i}`);
      if (pendingCode) statements++;
      pendingCode = false;
      i++;
      continue;
    }
    if (!/\s/.test(c)) pendingCode = true;
    i++;
  }
  if (pendingCode) statements++;
  return { shape, statements, executableComment, unterminated };
}
