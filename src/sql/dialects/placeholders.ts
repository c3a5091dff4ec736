// Where a warehouse's own text has its placeholders, read as that warehouse reads the text:
// MySQL's `?` and Snowflake's numbered binds `:n`, never inside literals, quoted names or
// comments. The connectors bind the client's parameters to them; policy checks with them that
// a querier's PostgreSQL-style `$n` it rewrote landed where the warehouse will read them. The
// reading is raw-lexer.ts's, the one the classifier trusts: one lexer decides where code is.
import { codeSegments, lexRaw } from './raw-lexer.ts';

/** `?` placeholders of MySQL text (NO_BACKSLASH_ESCAPES, no ANSI_QUOTES: '...' and "..." are strings, `...` names). */
export function countPlaceholders(sql: string): number {
  const lexed = lexRaw(sql, 'mysql', false);
  let n = 0;
  for (const s of codeSegments(sql, lexed)) n += s.text.split('?').length - 1;
  for (const t of lexed.tokens) {
    // An executable comment (/*! ... */, /*M! ... */) is code to the server: count into it.
    if (t.kind !== 'block') continue;
    const body = /^\/\*M?!/.exec(sql.slice(t.start, t.end));
    if (body) n += countPlaceholders(sql.slice(t.start + body[0].length, sql.endsWith('*/', t.end) ? t.end - 2 : t.end));
  }
  return n;
}

/** The numbers of the `:n` binds of Snowflake text, in order, outside string literals ('...', $$...$$), quoted names and comments. */
export function numberedBinds(sql: string): number[] {
  const found: number[] = [];
  for (const s of codeSegments(sql, lexRaw(sql, 'snowflake', true))) {
    // `::` is a cast; `:n` a bind.
    for (const m of s.text.matchAll(/::|:([0-9]+)/g)) if (m[1] !== undefined) found.push(Number(m[1]));
  }
  return found;
}
