// The constant scanner and the template lexer of shared decisions (sql/normalize.ts): texts
// normalised exactly as PostgreSQL's lexer reads them, or refused for sharing, and every
// constant found checked against PostgreSQL's own parser (its A_Const locations).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { fill, normalizeConstants, templateOf } from '../../../src/sql/normalize.ts';
import { ensureParser, parseSqlSync } from '../../../src/sql/parse.ts';
import { answerable, gray, hostile } from '../../helpers/oracle/statements.ts';

const MAX = 64 * 1024;
const norm = (sql: string) => normalizeConstants(sql, MAX);

beforeAll(() => ensureParser());

describe('normalizeConstants', () => {
  it.each([
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 12345;', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', ['12345'], ['int']],
    ["select * from t where a = 'it''s' and b > 2.50", 'select * from t where a = $1 and b > $2', ["'it''s'", '2.50'], ['string', 'numeric']],
    ['SELECT t1.a, x2 FROM t1 WHERE t1.b = 2', 'SELECT t1.a, x2 FROM t1 WHERE t1.b = $1', ['2'], ['int']],
    ["SELECT 1 -- it's a comment\n, 'x'", "SELECT $1 -- it's a comment\n, $2", ['1', "'x'"], ['int', 'string']],
    ["/* a /* nested 'b' */ still ' comment */ SELECT 'x'", "/* a /* nested 'b' */ still ' comment */ SELECT $1", ["'x'"], ['string']],
    ['SELECT "a""\'b" FROM t WHERE "c\'" = \'y\'', 'SELECT "a""\'b" FROM t WHERE "c\'" = $1', ["'y'"], ['string']],
    ['SELECT 2147483647, 2147483648, 007', 'SELECT $1, $2, $3', ['2147483647', '2147483648', '007'], ['int', 'numeric', 'int']],
    ['SELECT \'é\', "ñ" FROM t WHERE é = 5', 'SELECT $1, "ñ" FROM t WHERE é = $2', ["'é'", '5'], ['string', 'int']],
    ['(SELECT 1) UNION (SELECT 2)', '(SELECT $1) UNION (SELECT $2)', ['1', '2'], ['int', 'int']],
    [
      "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x WHERE a <> 'b'",
      'WITH x AS (SELECT $1) INSERT INTO t SELECT * FROM x WHERE a <> $2',
      ['1', "'b'"],
      ['int', 'string'],
    ],
    ['SELECT a-1, a*-2 FROM t', 'SELECT a-$1, a*-$2 FROM t', ['1', '2'], ['int', 'int']],
  ])('%s', (sql, text, constants, classes) => {
    expect(norm(sql)).toEqual({ text, constants, classes });
  });

  it.each([
    ["SELECT date '2024-01-01'", "SELECT date '2024-01-01'"],
    ["SELECT interval '1 day', x::text FROM t", "SELECT interval '1 day', x::text FROM t"],
    ["SELECT varchar(10) 'x'", "SELECT varchar($1) 'x'"],
    ['SELECT "int4" \'5\'', 'SELECT "int4" \'5\''],
  ])('keeps typed literals in the text: %s', (sql, text) => {
    expect(norm(sql)?.text).toBe(text);
  });

  it.each([
    ['exponent', 'SELECT 1e5'],
    ['hex', 'SELECT 0x1F'],
    ['underscore', 'SELECT 1_000'],
    ['leading dot', 'SELECT .5'],
    ['trailing dot', 'SELECT 5.'],
    ['two dots', 'SELECT 1.2.3'],
    ['string touching a word', "SELECT ''AS x"],
    ['number touching a word', 'SELECT 5abc'],
    ['number touching non-ASCII', 'SELECT 5é'],
    ['E string', "SELECT E'\\''"],
    ['a backslash in a plain string', "SELECT 'a\\' FROM t"],
    ['e string', "SELECT e'x'"],
    ['Unicode string', "SELECT U&'d\\0061t'"],
    ['bit string', "SELECT B'101'"],
    ['hex string', "SELECT X'1F'"],
    ['national string', "SELECT N'x'"],
    ['dollar quote', 'SELECT $$x$$'],
    ['tagged dollar quote', 'SELECT $a$x$a$'],
    ['parameter', 'SELECT * FROM t WHERE a = $1'],
    ['dollar inside a literal', "SELECT 'costs $1'"],
    ['dollar in an identifier', 'SELECT a$1 FROM t'],
    ['string continued on the next line', "SELECT 'a'\n'b'"],
    ['string continued after a comment', "SELECT 'a' -- c\n'b'"],
    ['unterminated string', "SELECT 'abc"],
    ['unterminated identifier', 'SELECT "abc'],
    ['unterminated comment', 'SELECT 1 /* x'],
    ['vertical tab', 'SELECT\u000b1'],
    ['NUL', 'SELECT 1\u0000'],
    ['SET', 'SET x = 5'],
    ['SHOW', 'SHOW x'],
    ['EXPLAIN', 'EXPLAIN SELECT 1'],
    ['COPY', 'COPY (SELECT 1) TO STDOUT'],
    ['DECLARE', 'DECLARE c CURSOR FOR SELECT 1'],
    ['PREPARE', 'PREPARE p AS SELECT 1'],
    ['a constant first', "'x' SELECT"],
    ['over the limit', `SELECT ${'1, '.repeat(MAX)}1`],
  ])('no sharing: %s', (_what, sql) => {
    expect(norm(sql)).toBeUndefined();
  });

  it('a text without constants has nothing to share', () => {
    expect(norm('SELECT * FROM t')?.constants).toEqual([]);
  });
});

describe('templateOf', () => {
  it('cuts at parameters found by lexing, never inside strings, names or comments', () => {
    const sql = "SELECT $1, '$1', E'\\'$2', \"$1\", x$1 /* $1 */ FROM t WHERE a = $2 -- $1\n AND b = 'it''s $1' AND c = $1";
    const t = templateOf(sql, 2)!;
    expect(t.slots).toEqual([0, 1, 0]);
    expect(fill(t, ['10', "'v'"])).toBe("SELECT 10, '$1', E'\\'$2', \"$1\", x$1 /* $1 */ FROM t WHERE a = 'v' -- $1\n AND b = 'it''s $1' AND c = 10");
  });
  it.each([
    ['a dollar quote', 'SELECT $$x$$'],
    ['$0', 'SELECT $0'],
    ['a parameter beyond the constants', 'SELECT $3'],
    ['a parameter with junk after it', 'SELECT $1a'],
    ['an unterminated string', "SELECT 'x"],
  ])('refuses %s', (_what, sql) => {
    expect(templateOf(sql, 2)).toBeUndefined();
  });
});

/** Character offsets of every A_Const of the text, as PostgreSQL's parser reports them. */
function constLocations(sql: string): Set<number> | undefined {
  let parsed;
  try {
    parsed = parseSqlSync(sql);
  } catch {
    return undefined;
  }
  const bytes = parsed.bytes;
  const out = new Set<number>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    for (const [k, v] of Object.entries(n)) {
      if (k === 'A_Const' && typeof (v as { location?: number }).location === 'number') {
        out.add(bytes.subarray(0, (v as { location: number }).location).toString('utf8').length);
      }
      walk(v);
    }
  };
  for (const st of parsed.statements) walk(st.stmt);
  return out;
}

/** Every constant the scanner replaced is one PostgreSQL's parser read as a constant, and the text comes back byte for byte. */
function checkAgainstParser(sql: string): void {
  const n = norm(sql);
  if (!n) return;
  expect(fill(templateOf(n.text, n.constants.length)!, n.constants)).toBe(sql);
  const locs = constLocations(sql);
  if (!locs) return; // not SQL: the exact path refuses it
  let at = 0;
  let shift = 0;
  for (let k = 0; k < n.constants.length; k++) {
    const placeholder = `$${k + 1}`;
    const inNormalized = n.text.indexOf(placeholder, at);
    const original = inNormalized + shift;
    expect(sql.slice(original, original + n.constants[k].length)).toBe(n.constants[k]);
    // A negative number's A_Const starts at its minus sign.
    const minus = sql.slice(0, original).match(/-\s*$/);
    expect(locs.has(original) || (minus !== null && locs.has(original - minus[0].length)), `${sql}: constant ${n.constants[k]} at ${original}`).toBe(true);
    shift += n.constants[k].length - placeholder.length;
    at = inNormalized + placeholder.length;
  }
}

describe("the scanner against PostgreSQL's parser", () => {
  it('the client corpus (psql, pgjdbc, SQLAlchemy, BI tools)', () => {
    const corpus = JSON.parse(readFileSync(resolve(process.env.CORPUS_DIR ?? '/work/shared/corpus', 'client-queries.json'), 'utf8')) as { sql: string }[];
    let shared = 0;
    for (const { sql } of corpus) {
      checkAgainstParser(sql);
      if (norm(sql)?.constants.length) shared++;
    }
    expect(shared).toBeGreaterThan(20);
  });
  it('generated statements, with constants of every shape spliced in', () => {
    const constant = fc.oneof(
      fc.nat().map(String),
      fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
      fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}.${b}`),
      fc.string({ unit: fc.constantFrom('a', "'", '\\', '"', '-', '/', '*', '$', 'é', '\n', ' ', '1') }).map((s) => `'${s.replace(/'/g, "''")}'`),
      fc.constantFrom('1e5', '.5', "E'\\''", '0x1F', '1_000', "U&'x'", "B'1'", '$1', '$$x$$'),
    );
    const spaced = fc.constantFrom(' ', '\n', ' -- c\n', " /* ' */ ", '');
    fc.assert(
      fc.property(fc.oneof(answerable, gray, hostile), fc.array(fc.tuple(constant, spaced), { maxLength: 3 }), ({ sql }, extra) => {
        checkAgainstParser(sql);
        const more = extra.map(([c, s], i) => `${c}${s}AS k${i}`).join(', ');
        checkAgainstParser(more ? sql.replace(/^SELECT /i, `SELECT ${more}, `) : sql);
      }),
      { numRuns: Number(process.env.NORMALIZE_RUNS ?? 400), seed: process.env.NORMALIZE_SEED ? Number(process.env.NORMALIZE_SEED) : undefined },
    );
  });
});
