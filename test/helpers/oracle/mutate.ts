// Mutations of SQL text for fuzzing the classifier: a small lexer (PostgreSQL's token
// classes, standard_conforming_strings on) and token-level edits an attacker would try.
import fc from 'fast-check';

export type TokenKind = 'space' | 'comment' | 'string' | 'qident' | 'word' | 'number' | 'param' | 'op' | 'punct';
export interface Token {
  kind: TokenKind;
  text: string;
}

/** Splits SQL into tokens; anything it does not understand becomes a one-character op. */
export function lex(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    out.push({ kind, text: sql.slice(i, end) });
    i = end;
  };
  while (i < sql.length) {
    const rest = sql.slice(i);
    let m: RegExpMatchArray | null;
    if ((m = rest.match(/^\s+/))) push('space', i + m[0].length);
    else if ((m = rest.match(/^--[^\n]*/))) push('comment', i + m[0].length);
    else if (rest.startsWith('/*')) {
      let depth = 0;
      let j = i;
      while (j < sql.length) {
        if (sql.startsWith('/*', j)) {
          depth++;
          j += 2;
        } else if (sql.startsWith('*/', j)) {
          depth--;
          j += 2;
          if (depth === 0) break;
        } else j++;
      }
      push('comment', j);
    } else if ((m = rest.match(/^[eE]'(?:\\.|''|[^'\\])*'/s))) push('string', i + m[0].length);
    else if ((m = rest.match(/^(?:[uU]&|[bBxXnN])?'(?:''|[^'])*'/s))) push('string', i + m[0].length);
    else if ((m = rest.match(/^\$([A-Za-z_][A-Za-z0-9_]*)?\$/))) {
      const tag = m[0];
      const end = sql.indexOf(tag, i + tag.length);
      push('string', end < 0 ? sql.length : end + tag.length);
    } else if ((m = rest.match(/^\$\d+/))) push('param', i + m[0].length);
    else if ((m = rest.match(/^(?:[uU]&)?"(?:""|[^"])*"/s))) push('qident', i + m[0].length);
    else if ((m = rest.match(/^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/))) push('word', i + m[0].length);
    else if ((m = rest.match(/^(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/))) push('number', i + m[0].length);
    else if ((m = rest.match(/^[(),;[\]]/))) push('punct', i + 1);
    else if ((m = rest.match(/^::|^[+\-*/<>=~!@#%^&|`?.:]+/))) push('op', i + m[0].length);
    else push('op', i + 1);
  }
  return out;
}

export const join = (ts: Token[]) => ts.map((t) => t.text).join('');

const DANGEROUS_NAMES = [
  'employees',
  'public.employees',
  'pg_stats',
  'pg_statistic',
  'pg_authid',
  'pg_shadow',
  'pg_stat_activity',
  'secret',
  'public.secret',
  'pg_catalog.pg_class',
  'information_schema.columns',
  'email',
  'ssn',
  'salary',
  'public.customers',
  'warehouse.public.orders',
  'orders',
  'customers',
  'public.orders',
  '"orders"',
  '"Orders"',
  'ctid',
  'xmin',
  'tableoid',
];
const CASTS = [
  '::employees',
  '::public.employees',
  '::customers',
  '::public.customers',
  '::orders',
  '::regclass',
  '::regproc',
  '::regtype',
  '::regnamespace',
  '::regrole',
  '::oid',
  '::text',
  '::int',
  '::numeric',
  '::float8',
  '::text[]',
  '::record',
  '::pg_catalog.text',
  '::"employees"',
  '::tsvector',
  '::xml',
  '::json',
];
const QUALIFIERS = ['pg_catalog.', 'public.', 'warehouse.public.', '"public".', 'information_schema.', 'pg_temp.', 'topics.', 'acme.'];
const COMMENTS = ['/**/', '/* ; SELECT * FROM employees */', '-- x\n', '/* /* nested */ SELECT ssn FROM employees */', '--\n', '/*\n*/'];
const STRINGS = [
  "E'\\''",
  "'a\\'",
  "U&'\\0041'",
  '$$x$$',
  "$q$'$q$",
  "E'\\\\'",
  "'it''s'",
  "'SELECT ssn FROM employees'",
  "E'\\x27; SELECT 1; --'",
  "'employees'",
  "'public.employees'",
  "'/etc/passwd'",
  "''",
  "B'101'",
  "X'ff'",
  "N'x'",
];
const SUFFIXES = [
  '; SELECT * FROM employees',
  ' UNION ALL SELECT ssn FROM employees',
  ' UNION SELECT email FROM customers',
  '; SET standard_conforming_strings = off',
  '; SET search_path = pg_catalog',
  ' FOR UPDATE',
  ' INTO x',
  '; COMMIT',
];

export interface MutationPools {
  /** Function names from pg_proc (the warehouse's own). */
  functions: string[];
}

type Edit = (ts: Token[], pick: (n: number) => number, pools: MutationPools) => Token[];

const w = (text: string): Token => ({ kind: 'word', text });
const indexesOf = (ts: Token[], kinds: TokenKind[]) => ts.map((t, i) => (kinds.includes(t.kind) ? i : -1)).filter((i) => i >= 0);

function at(ts: Token[], kinds: TokenKind[], pick: (n: number) => number): number | undefined {
  const xs = indexesOf(ts, kinds);
  return xs.length ? xs[pick(xs.length)] : undefined;
}

const EDITS: Record<string, Edit> = {
  swapTokens(ts, pick) {
    const xs = indexesOf(ts, ['word', 'qident', 'string', 'number', 'op', 'punct']);
    if (xs.length < 2) return ts;
    const [a, b] = [xs[pick(xs.length)], xs[pick(xs.length)]];
    const out = [...ts];
    [out[a], out[b]] = [out[b], out[a]];
    return out;
  },
  replaceName(ts, pick, pools) {
    const i = at(ts, ['word', 'qident'], pick);
    if (i === undefined) return ts;
    const pool = pick(2) ? DANGEROUS_NAMES : pools.functions;
    return [...ts.slice(0, i), w(pool[pick(pool.length)]), ...ts.slice(i + 1)];
  },
  columnNotation(ts, pick, pools) {
    const i = at(ts, ['word', 'qident', 'string', 'number'], pick);
    if (i === undefined) return ts;
    const fn = pick(3)
      ? pools.functions[pick(pools.functions.length)]
      : ['ts_stat', 'pg_read_file', 'pg_ls_dir', 'pg_sleep', 'to_regclass', 'query_to_xml', 'email'][pick(7)];
    return [...ts.slice(0, i), w(`(${ts[i].text}).${fn}`), ...ts.slice(i + 1)];
  },
  wrapCall(ts, pick, pools) {
    const i = at(ts, ['word', 'qident', 'string', 'number'], pick);
    if (i === undefined) return ts;
    const fn = pools.functions[pick(pools.functions.length)];
    return [...ts.slice(0, i), w(`${fn}(${ts[i].text})`), ...ts.slice(i + 1)];
  },
  cast(ts, pick) {
    const i = at(ts, ['word', 'qident', 'string', 'number', 'punct'], pick);
    if (i === undefined) return ts;
    return [...ts.slice(0, i + 1), { kind: 'op', text: CASTS[pick(CASTS.length)] }, ...ts.slice(i + 1)];
  },
  qualify(ts, pick) {
    const i = at(ts, ['word', 'qident'], pick);
    if (i === undefined) return ts;
    return [...ts.slice(0, i), w(QUALIFIERS[pick(QUALIFIERS.length)] + ts[i].text), ...ts.slice(i + 1)];
  },
  comment(ts, pick) {
    const i = pick(ts.length + 1);
    return [...ts.slice(0, i), { kind: 'comment', text: COMMENTS[pick(COMMENTS.length)] }, ...ts.slice(i)];
  },
  stringEscape(ts, pick) {
    const i = at(ts, ['string', 'number', 'word'], pick);
    if (i === undefined) return ts;
    return [...ts.slice(0, i), { kind: 'string', text: STRINGS[pick(STRINGS.length)] }, ...ts.slice(i + 1)];
  },
  deleteToken(ts, pick) {
    const i = at(ts, ['word', 'qident', 'string', 'number', 'op', 'punct'], pick);
    return i === undefined ? ts : [...ts.slice(0, i), ...ts.slice(i + 1)];
  },
  duplicateToken(ts, pick) {
    const i = at(ts, ['word', 'qident', 'string', 'number', 'op', 'punct'], pick);
    return i === undefined ? ts : [...ts.slice(0, i + 1), { kind: 'space', text: ' ' }, ts[i], ...ts.slice(i + 1)];
  },
  quoteIdent(ts, pick) {
    const i = at(ts, ['word'], pick);
    if (i === undefined) return ts;
    const t = ts[i].text;
    return [...ts.slice(0, i), { kind: 'qident', text: pick(2) ? `"${t}"` : `"${t.toLowerCase()}"` }, ...ts.slice(i + 1)];
  },
  suffix(ts, pick) {
    let end = ts.length;
    while (end > 0 && (ts[end - 1].kind === 'space' || ts[end - 1].text === ';')) end--;
    return [...ts.slice(0, end), w(SUFFIXES[pick(SUFFIXES.length)])];
  },
};

export const EDIT_NAMES = Object.keys(EDITS);

export interface Mutation {
  base: number;
  edits: { name: string; choices: number[] }[];
}

/** A base statement index and 1-4 edits, each with the random choices it consumes. */
export function mutationArb(bases: number): fc.Arbitrary<Mutation> {
  return fc.record({
    base: fc.nat({ max: bases - 1 }),
    edits: fc.array(fc.record({ name: fc.constantFrom(...EDIT_NAMES), choices: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }) }), {
      minLength: 1,
      maxLength: 4,
    }),
  });
}

export function applyMutation(sql: string, m: Mutation, pools: MutationPools): string {
  let ts = lex(sql);
  for (const e of m.edits) {
    let k = 0;
    const pick = (n: number) => (n <= 0 ? 0 : e.choices[k++ % e.choices.length] % n);
    ts = EDITS[e.name](ts, pick, pools);
  }
  return join(ts);
}
