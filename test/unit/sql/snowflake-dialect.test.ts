// The Snowflake dialect as fixtures (sqlglot's style): PostgreSQL in, Snowflake text out, and the
// constructs it refuses with 0A000 rather than change meaning.
import { beforeAll, describe, expect, it } from 'vitest';
import { emitSnowflake, plainDecimal, snowflakeIdent, snowflakeLiteral } from '../../../src/sql/dialects/snowflake.ts';
import { ensureParser, parseSqlSync } from '../../../src/sql/parse.ts';
import { GatehouseError } from '../../../src/errors.ts';

beforeAll(async () => {
  await ensureParser();
});

const emit = (sql: string) => emitSnowflake(parseSqlSync(sql).statements[0].stmt);

describe('snowflake dialect: written as', () => {
  const cases: Array<[string, string, number[]?]> = [
    // Identifiers: PostgreSQL-folded names become Snowflake's upper case, quoted; quoted names keep their case.
    ['SELECT id, "Mixed", "with space" FROM public.orders', 'SELECT "ID", "Mixed", "with space" FROM "PUBLIC"."ORDERS"'],
    ['SELECT o.id AS order_id FROM orders o', 'SELECT "O"."ID" AS "ORDER_ID" FROM "ORDERS" AS "O"'],
    ['SELECT "select" FROM t', 'SELECT "SELECT" FROM "T"'],
    // Literals.
    [`SELECT 'it''s', 'a\\b', 1.5, 1.5e3, 2.5E-3, -7, TRUE, FALSE, NULL`, `SELECT 'it''s', $$a\\b$$, 1.5, 1500, 0.0025, (-7), TRUE, FALSE, NULL`],
    // Operators, all parenthesised (precedence differs between the engines in places).
    [`SELECT a || '-' || b, a + 1, a - -1, -a FROM t`, `SELECT (("A" || '-') || "B"), ("A" + 1), ("A" - (-1)), (-"A") FROM "T"`],
    [`SELECT a::float8 / 2 FROM t`, 'SELECT (CAST("A" AS DOUBLE PRECISION) / 2) FROM "T"'],
    [`SELECT 1 FROM t WHERE a <> 1 AND b != 2 OR NOT c`, 'SELECT 1 FROM "T" WHERE ((("A" <> 1) AND ("B" <> 2)) OR (NOT "C"))'],
    [
      `SELECT 1 FROM t WHERE a LIKE 'x\\_%' AND b NOT ILIKE '%y'`,
      `SELECT 1 FROM "T" WHERE (("A" LIKE $$x\\_%$$ ESCAPE $$\\$$) AND ("B" NOT ILIKE '%y' ESCAPE $$\\$$))`,
    ],
    [
      `SELECT 1 FROM t WHERE a IN (1, 2) AND b NOT IN ('x') AND c BETWEEN 1 AND 3 AND d NOT BETWEEN 1 AND 3`,
      `SELECT 1 FROM "T" WHERE (("A" IN (1, 2)) AND ("B" NOT IN ('x')) AND ("C" BETWEEN 1 AND 3) AND ("D" NOT BETWEEN 1 AND 3))`,
    ],
    [
      `SELECT 1 FROM t WHERE a IS NULL AND b IS NOT NULL AND a IS DISTINCT FROM b`,
      `SELECT 1 FROM "T" WHERE (("A" IS NULL) AND ("B" IS NOT NULL) AND ("A" IS DISTINCT FROM "B"))`,
    ],
    [
      `SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END, CASE a WHEN 1 THEN 'one' END, COALESCE(a, b, 0), NULLIF(a, 0) FROM t`,
      `SELECT CASE WHEN ("A" > 1) THEN 'big' ELSE 'small' END, CASE "A" WHEN 1 THEN 'one' END, COALESCE("A", "B", 0), NULLIF("A", 0) FROM "T"`,
    ],
    // Casts to types with the same meaning.
    [
      `SELECT a::int, a::bigint, a::numeric(12,2), a::text, a::varchar(5), a::boolean, '2024-01-02'::date, '2024-01-02 03:04:05'::timestamp, '2024-01-02'::timestamptz FROM t`,
      `SELECT CAST("A" AS INTEGER), CAST("A" AS BIGINT), CAST("A" AS NUMERIC(12,2)), CAST("A" AS VARCHAR), CAST("A" AS VARCHAR(5)), CAST("A" AS BOOLEAN), CAST('2024-01-02' AS DATE), CAST('2024-01-02 03:04:05' AS TIMESTAMP_NTZ), CAST('2024-01-02' AS TIMESTAMP_LTZ) FROM "T"`,
    ],
    // Aggregates, grouping, NULL ordering written out.
    [
      `SELECT region, count(*), count(DISTINCT status), sum(amount), avg(amount), min(id), max(id) FROM t GROUP BY region HAVING count(*) > 1 ORDER BY 2 DESC, region`,
      `SELECT "REGION", COUNT(*), COUNT(DISTINCT "STATUS"), SUM("AMOUNT"), AVG("AMOUNT"), MIN("ID"), MAX("ID") FROM "T" GROUP BY "REGION" HAVING (COUNT(*) > 1) ORDER BY 2 DESC NULLS FIRST, "REGION" ASC NULLS LAST`,
    ],
    [`SELECT a FROM t ORDER BY a ASC NULLS FIRST, b DESC NULLS LAST`, 'SELECT "A" FROM "T" ORDER BY "A" ASC NULLS FIRST, "B" DESC NULLS LAST'],
    [
      `SELECT upper(a), lower(a), length(a), abs(b), round(b), round(b, 2) FROM t`,
      'SELECT UPPER("A"), LOWER("A"), LENGTH("A"), ABS("B"), ROUND("B"), ROUND("B", 2) FROM "T"',
    ],
    // LIMIT / OFFSET, parameters as ? with their $n.
    [`SELECT a FROM t LIMIT 10 OFFSET 5`, 'SELECT "A" FROM "T" LIMIT 10 OFFSET 5'],
    [`SELECT a FROM t OFFSET 5`, 'SELECT "A" FROM "T" LIMIT NULL OFFSET 5'],
    [`SELECT a FROM t WHERE b = $2 AND c = $1 LIMIT $2`, 'SELECT "A" FROM "T" WHERE (("B" = ?) AND ("C" = ?)) LIMIT ?', [2, 1, 2]],
    // Joins, subqueries, CTEs, set operations.
    [
      `SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c ON c.id = a.id CROSS JOIN d`,
      'SELECT * FROM "A" JOIN "B" ON ("A"."ID" = "B"."ID") LEFT JOIN "C" ON ("C"."ID" = "A"."ID") CROSS JOIN "D"',
    ],
    [
      `SELECT (SELECT max(x) FROM u) AS m FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id) AND t.id IN (SELECT id FROM v)`,
      'SELECT (SELECT MAX("X") FROM "U") AS "M" FROM "T" WHERE ((EXISTS (SELECT 1 FROM "U" WHERE ("U"."ID" = "T"."ID"))) AND ("T"."ID" IN (SELECT "ID" FROM "V")))',
    ],
    [
      `WITH big AS (SELECT id FROM t WHERE amount > 10) SELECT count(*) FROM big`,
      'WITH "BIG" AS (SELECT "ID" FROM "T" WHERE ("AMOUNT" > 10)) SELECT COUNT(*) FROM "BIG"',
    ],
    [
      `SELECT a FROM t UNION SELECT a FROM u EXCEPT SELECT a FROM v ORDER BY 1 LIMIT 3`,
      '(SELECT "A" FROM "T" UNION SELECT "A" FROM "U") EXCEPT SELECT "A" FROM "V" ORDER BY 1 ASC NULLS LAST LIMIT 3',
    ],
    [`SELECT DISTINCT a FROM t`, 'SELECT DISTINCT "A" FROM "T"'],
    // The topic's fence: OFFSET 0 means nothing on Snowflake and is dropped.
    [
      `SELECT id FROM (SELECT id, region FROM public.orders WHERE region = 'EMEA' OFFSET 0) AS orders WHERE id = 42`,
      `SELECT "ID" FROM (SELECT "ID", "REGION" FROM "PUBLIC"."ORDERS" WHERE ("REGION" = 'EMEA')) AS "ORDERS" WHERE ("ID" = 42)`,
    ],
  ];
  for (const [pg, sf, params] of cases) {
    it(pg, () => {
      const out = emit(pg);
      expect(out.sql).toBe(sf);
      expect(out.params).toEqual(params ?? []);
    });
  }

  it('gives the output column names PostgreSQL would, expanding * over derived tables', () => {
    expect(emit(`SELECT id, amount AS total, count(*), a::int, '2024-01-01'::date, CASE WHEN a THEN 1 END, 1 FROM t`).columnNames).toEqual([
      'id',
      'total',
      'count',
      'a',
      'date',
      'case',
      '?column?',
    ]);
    expect(
      emit(
        `SELECT * FROM (SELECT id, region FROM public.orders OFFSET 0) AS o JOIN (SELECT id AS cid, name FROM public.customers OFFSET 0) AS c ON o.id = c.cid`,
      ).columnNames,
    ).toEqual(['id', 'region', 'cid', 'name']);
    expect(emit(`SELECT c.* FROM (SELECT id AS cid, name FROM public.customers OFFSET 0) AS c`).columnNames).toEqual(['cid', 'name']);
    expect(emit(`WITH w AS (SELECT 1 AS one) SELECT * FROM w`).columnNames).toEqual(['one']);
    // A * over a table whose columns the emitter cannot see: Snowflake's names are reported.
    expect(emit(`SELECT * FROM public.orders`).columnNames).toBeUndefined();
  });

  it('quotes identifiers and literals as both engines read them', () => {
    expect(snowflakeIdent('orders')).toBe('"ORDERS"');
    expect(snowflakeIdent('Orders')).toBe('"Orders"');
    expect(snowflakeIdent('a"b')).toBe('"a""b"');
    expect(snowflakeIdent('straße')).toBe('"straße"');
    expect(snowflakeLiteral(`it's`)).toBe(`'it''s'`);
    expect(snowflakeLiteral('c:\\dir')).toBe('$$c:\\dir$$');
    expect(plainDecimal('1e-5')).toBe('0.00001');
    expect(plainDecimal('12.5e1')).toBe('125');
    expect(plainDecimal('1.25E+2')).toBe('125');
  });
});

describe('snowflake dialect: refused with 0A000 naming the construct', () => {
  const refused: Array<[string, RegExp]> = [
    ['SELECT a / b FROM t', /division without a double precision operand/],
    ['SELECT a % 2 FROM t', /% operator/],
    [`SELECT id / 2 FROM (SELECT id FROM public.orders WHERE region = 'EMEA' OFFSET 0) AS orders`, /division in a query over topics/],
    [`SELECT id FROM (SELECT id, note FROM public.orders OFFSET 0) AS orders WHERE note::int > 3`, /cast of a column to int/],
    ['SELECT a::numeric FROM t', /numeric without precision and scale/],
    ['SELECT a::real FROM t', /cast to float4/],
    [`SELECT 'Jan 2 2024'::date`, /date literal 'Jan 2 2024'/],
    ['SELECT greatest(a, b) FROM t', /GREATEST\/LEAST/],
    ['SELECT row_number() OVER () FROM t', /window function row_number/],
    ['SELECT DISTINCT ON (a) a FROM t', /DISTINCT ON/],
    ['SELECT * FROM a JOIN b USING (id)', /JOIN \.\.\. USING/],
    ['SELECT * FROM a NATURAL JOIN b', /NATURAL JOIN/],
    ['SELECT * FROM t, LATERAL (SELECT 1) x', /LATERAL/],
    ['WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r', /WITH RECURSIVE/],
    ['SELECT a FROM t INTERSECT ALL SELECT a FROM u', /INTERSECT ALL/],
    ['SELECT md5(a) FROM t', /function md5/],
    ['SELECT a FROM t FOR UPDATE', /FOR UPDATE/],
    ['VALUES (1)', /VALUES/],
    ['INSERT INTO t VALUES (1)', /statement InsertStmt/],
    [`SELECT 'a\\b$$'`, /backslash and \$\$/],
    ['SELECT a FROM t WHERE a ~ b', /operator ~/],
    ['SELECT count(*) FILTER (WHERE a) FROM t', /FILTER/],
    ['SELECT a = ANY (SELECT b FROM u) FROM t', /op ANY/],
    ['SELECT a IS TRUE FROM t', /BooleanTest/],
    ['SELECT ARRAY[1]', /A_ArrayExpr/],
  ];
  for (const [pg, msg] of refused) {
    it(pg, () => {
      let err: unknown;
      try {
        emit(pg);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GatehouseError);
      expect((err as GatehouseError).sqlstate).toBe('0A000');
      expect((err as GatehouseError).message).toMatch(msg);
      expect((err as GatehouseError).message).toMatch(/not supported on Snowflake connections/);
    });
  }
});
