// Generated queries over the topics, run as PostgreSQL on PostgreSQL and as emitted MySQL on
// MariaDB over the same data: the same rows, or a refusal (0A000) from the emitter. The
// generator stays inside the subset's documented meaning (no division by a possibly-zero
// value, no int4 overflow), so any difference is an emitter bug. DIALECT_RUNS and
// DIALECT_SEED tune it; a failure prints the seed and the shrunk query.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors.ts';
import { type Both, openBoth, runBoth } from './dialect-fixture.ts';

type Gen = fc.Arbitrary<string>;

const intCol = fc.constantFrom('qty', 'id', 'customer_id', 'big');
const numCol = fc.constantFrom('amount');
const textCol = fc.constantFrom('status', 'note', 'region');
const dateCol = fc.constantFrom('day');
const tsCol = fc.constantFrom('ordered_at');
const smallInt = fc.integer({ min: -5, max: 12 }).map(String);
const nonZero = fc.constantFrom('2', '3', '-2', '7');
const textLit = fc.constantFrom("'shipped'", "'Shipped'", "'shipped '", "'pending'", "'a'", "'S'", "'Ünïcödé'", "''", "'it''s'", "'EMEA'");
const likePat = fc.constantFrom("'ship%'", "'%e%'", "'S%'", "'_hipped'", "'%'", "'a\\_b%'", "'%d'", "'P%'");
const dateLit = fc.constantFrom("'2024-01-15'", "'2024-02-29'", "'2023-12-31'", "'2024-03-01'");

function intExpr(depth: number): Gen {
  if (depth <= 0) return fc.oneof(intCol, smallInt);
  const sub = intExpr(depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: fc.oneof(intCol, smallInt) },
    fc.tuple(sub, fc.constantFrom('+', '-'), sub).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(sub, fc.constantFrom('/', '%'), nonZero).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(sub, smallInt).map(([a, b]) => `(${a} * ${b})`),
    textExpr(depth - 1).map((t) => `length(${t})`),
    fc.tuple(textExpr(depth - 1), textLit).map(([t, l]) => `position(${l} in ${t})`),
    fc.tuple(sub, smallInt).map(([a, b]) => `coalesce(${a}, ${b})`),
    fc.tuple(fc.constantFrom('month', 'dow', 'isodow', 'week', 'doy', 'quarter'), dateCol).map(([f, d]) => `extract(${f} from ${d})::int`),
    fc.tuple(dateCol, dateLit).map(([d, l]) => `(${d} - date ${l})`),
  );
}

function numExpr(depth: number): Gen {
  const i = intExpr(depth - 1);
  return fc.oneof(
    numCol,
    fc.tuple(numCol, fc.constantFrom('+', '-', '*'), i).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(numCol, nonZero).map(([a, b]) => `round(${a} / ${b}, 2)`),
    numCol.map((a) => `coalesce(${a}, 0)`),
    numCol.map((a) => `abs(${a})`),
    i.map((a) => `${a}::numeric(12,2)`),
  );
}

function textExpr(depth: number): Gen {
  if (depth <= 0) return fc.oneof(textCol, textLit);
  const sub = textExpr(depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: fc.oneof(textCol, textLit) },
    sub.map((t) => `lower(${t})`),
    sub.map((t) => `upper(${t})`),
    fc.tuple(sub, sub).map(([a, b]) => `${a} || ${b}`),
    fc.tuple(sub, intExpr(0)).map(([a, b]) => `(${a} || '-' || ${b})`),
    fc.tuple(sub, fc.integer({ min: -1, max: 4 }), fc.integer({ min: 0, max: 4 })).map(([t, s, l]) => `substring(${t} from ${s} for ${l})`),
    sub.map((t) => `trim(${t})`),
    fc.tuple(sub, textLit, textLit).map(([t, a, b]) => `replace(${t}, ${a}, ${b})`),
    fc.tuple(sub, sub).map(([a, b]) => `coalesce(${a}, ${b})`),
    fc.tuple(boolExpr(depth - 1), sub, sub).map(([c, a, b]) => `CASE WHEN ${c} THEN ${a} ELSE ${b} END`),
    intExpr(depth - 1).map((i) => `${i}::text`),
    fc.tuple(sub, fc.integer({ min: 0, max: 5 })).map(([t, n]) => `left(${t}, ${n})`),
    fc.tuple(sub, intExpr(0)).map(([t, i]) => `concat(${t}, ${i}, NULL)`),
    sub.map((t) => `rtrim(${t})`),
  );
}

function boolExpr(depth: number): Gen {
  const leaf = fc.oneof(
    fc.tuple(intExpr(depth - 1), fc.constantFrom('=', '<>', '<', '>=', '<='), intExpr(depth - 1)).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.tuple(textExpr(depth - 1), fc.constantFrom('=', '<>', '<', '>'), textExpr(depth - 1)).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.tuple(textExpr(depth - 1), fc.constantFrom('LIKE', 'NOT LIKE'), likePat).map(([a, op, p]) => `${a} ${op} ${p}`),
    fc.tuple(fc.oneof(textCol, numCol, intCol, dateCol), fc.constantFrom('IS NULL', 'IS NOT NULL')).map(([a, t]) => `${a} ${t}`),
    fc.tuple(textCol, textLit, textLit).map(([a, x, y]) => `${a} IN (${x}, ${y})`),
    fc.tuple(intCol, smallInt, smallInt).map(([a, x, y]) => `${a} BETWEEN ${x} AND ${y}`),
    fc.tuple(dateCol, fc.constantFrom('<', '>=', '='), dateLit).map(([d, op, l]) => `${d} ${op} ${l}`),
    fc.tuple(tsCol, dateLit).map(([t, l]) => `${t} < ${l}::date + interval '1 day'`),
    fc.tuple(numExpr(1), fc.constantFrom('>', '<='), fc.constantFrom('0', '7', '50.5')).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.constantFrom('flag', 'NOT flag', 'flag IS NOT TRUE'),
    fc.tuple(textCol, textCol).map(([a, b]) => `${a} IS DISTINCT FROM ${b}`),
  );
  if (depth <= 0) return leaf;
  const sub = boolExpr(depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    fc.tuple(sub, fc.constantFrom('AND', 'OR'), sub).map(([a, op, b]) => `(${a} ${op} ${b})`),
    sub.map((b) => `NOT (${b})`),
  );
}

const timeExpr: Gen = fc.oneof(
  fc.tuple(fc.constantFrom('year', 'quarter', 'month', 'week', 'day', 'hour'), fc.oneof(tsCol, dateCol)).map(([u, c]) => `date_trunc('${u}', ${c})`),
  fc.tuple(tsCol, fc.constantFrom("'1 day'", "'-2 hours'", "'1 month'", "'3 weeks'")).map(([c, i]) => `${c} + interval ${i}`),
  fc.tuple(dateCol, smallInt).map(([c, n]) => `${c} + ${n}`),
  tsCol.map((c) => `${c}::date`),
);
const anyExpr: Gen = fc.oneof(intExpr(2), numExpr(2), textExpr(2), boolExpr(1), timeExpr);
const direction = fc.constantFrom('', ' DESC', ' NULLS FIRST', ' DESC NULLS LAST');

const query: Gen = fc.oneof(
  // Row queries: ordered by the generated expressions, ties broken by id.
  fc
    .tuple(anyExpr, anyExpr, boolExpr(2), direction, direction)
    .map(([a, b, w, d1, d2]) => `SELECT ${a} AS x, ${b} AS y FROM orders WHERE ${w} ORDER BY 1${d1}, 2${d2}, id`),
  // Groups: one grouping expression, aggregates over the rest.
  fc
    .tuple(
      fc.oneof(textExpr(1), intExpr(1)),
      boolExpr(1),
      fc.constantFrom('count(*)', 'sum(qty)', 'max(status)', 'min(note)', 'count(DISTINCT status)', 'sum(amount)', 'avg(qty)'),
    )
    .map(([g, w, agg]) => `SELECT ${g} AS g, ${agg} AS a FROM orders WHERE ${w} GROUP BY 1 ORDER BY 1`),
  // Joins and subqueries.
  fc
    .tuple(boolExpr(1), textExpr(1))
    .map(
      ([w, t]) =>
        `SELECT o.id, c.name, ${t.replace(/\b(status|note|region)\b/g, 'o.$1')} FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE ${w.replace(/\b(status|note|region|qty|id|customer_id|big|amount|day|ordered_at|flag)\b/g, 'o.$1')} ORDER BY o.id`,
    ),
  fc.tuple(boolExpr(1)).map(([w]) => `SELECT DISTINCT status FROM orders WHERE status IN (SELECT status FROM orders WHERE ${w}) ORDER BY status`),
  fc
    .tuple(textExpr(1), boolExpr(1), fc.constantFrom('UNION', 'UNION ALL'), direction)
    .map(([t, w, op, d]) => `SELECT ${t} AS v FROM orders WHERE ${w} ${op} SELECT name FROM customers ORDER BY 1${d}`),
  fc
    .tuple(textExpr(1), intExpr(1))
    .map(([g, h]) => `SELECT ${g} AS g, count(*) AS n, sum(${h}) AS s FROM orders GROUP BY 1 HAVING count(*) >= 1 ORDER BY 3 DESC NULLS LAST, 1`),
);

let both: Both;

beforeAll(async () => {
  both = await openBoth(`gh_dialect_diff_${process.pid}`);
});

afterAll(async () => {
  await both?.close();
});

it('generated queries give the same rows on PostgreSQL and, emitted, on MariaDB', async () => {
  const seed = Number(process.env.DIALECT_SEED ?? Date.now() % 1_000_000);
  const runs = Number(process.env.DIALECT_RUNS ?? 300);
  const tally = { same: 0, refused: 0, pgError: 0 };
  const property = fc.asyncProperty(query, async (sql) => {
    let r;
    try {
      r = await runBoth(both, sql);
    } catch (e) {
      if (isGatehouseError(e) && e.sqlstate === '0A000') {
        tally.refused++;
        return;
      }
      // PostgreSQL refusing the generated query (a type it does not resolve) is not a dialect fault.
      if ((e as { code?: string }).code && /^[0-9A-Z]{5}$/.test((e as { code: string }).code) && !(e as { sqlState?: string }).sqlState) {
        tally.pgError++;
        return;
      }
      throw e;
    }
    expect(r.mysqlRows, `seed ${seed}\n${sql}\nPostgreSQL: ${r.pgSql}\nMySQL: ${r.mysqlSql}`).toEqual(r.pgRows);
    tally.same++;
  });
  await fc.assert(property, { numRuns: runs, seed });
  // Most generated queries must be inside the subset, or this test proves little.
  expect(tally.same, JSON.stringify(tally)).toBeGreaterThan(runs * 0.6);
}, 300_000);
