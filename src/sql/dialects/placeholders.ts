// Where a warehouse's own text has its placeholders, read as that warehouse reads the text:
// MySQL's `?` and Snowflake's numbered binds `:n`, never inside literals, quoted names or
// comments. The connectors bind the client's parameters to them; policy checks with them that
// a querier's PostgreSQL-style `$n` it rewrote landed where the warehouse will read them.

/** `?` placeholders of MySQL text (NO_BACKSLASH_ESCAPES, no ANSI_QUOTES: '...' and "..." are strings, `...` names). */
export function countPlaceholders(sql: string): number {
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      // A quote doubled inside is one quote character.
      for (i++; i < sql.length; i++) {
        if (sql[i] === c) {
          if (sql[i + 1] === c) i++;
          else break;
        }
      }
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && (i + 2 >= sql.length || sql.charCodeAt(i + 2) <= 0x20))) {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*' && sql[i + 2] !== '!' && !(sql[i + 2] === 'M' && sql[i + 3] === '!')) {
      // An executable comment (/*! ... */, /*M! ... */) is code to the server: read on into it.
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '?') n++;
  }
  return n;
}

/** The numbers of the `:n` binds of Snowflake text, in order, outside string literals ('...', $$...$$), quoted names and comments. */
export function numberedBinds(sql: string): number[] {
  const found: number[] = [];
  let i = 0;
  const skipTo = (end: string, from: number) => {
    const j = sql.indexOf(end, from);
    return j < 0 ? sql.length : j + end.length;
  };
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'") {
      // Snowflake's strings read backslash escapes and '' as a quote.
      i++;
      while (i < sql.length && sql[i] !== "'") i += sql[i] === '\\' ? 2 : 1;
      i++;
      if (sql[i] === "'") continue;
    } else if (c === '"') i = skipTo('"', i + 1);
    else if (c === '$' && sql[i + 1] === '$') i = skipTo('$$', i + 2);
    else if (c === '-' && sql[i + 1] === '-') i = skipTo('\n', i + 2);
    else if (c === '/' && sql[i + 1] === '/') i = skipTo('\n', i + 2);
    else if (c === '/' && sql[i + 1] === '*') i = skipTo('*/', i + 2);
    else if (c === ':' && sql[i + 1] === ':') i += 2;
    else if (c === ':' && /[0-9]/.test(sql[i + 1] ?? '')) {
      const m = /^[0-9]+/.exec(sql.slice(i + 1))!;
      found.push(Number(m[0]));
      i += 1 + m[0].length;
    } else i++;
  }
  return found;
}
