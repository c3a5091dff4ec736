// The MySQL emitter's text (golden fixtures, sqlglot-style pairs), its parameter mapping,
// and its refusals: every construct outside the subset is 0A000 naming the construct.
import { beforeAll, describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../../src/errors.ts';
import { createMysqlDialect } from '../../../../src/sql/dialects/mysql.ts';
import { mysqlSessionStatements } from '../../../../src/sql/dialects/mysql-session.ts';
import { quoteIdent, quoteString } from '../../../../src/sql/dialects/mysql-text.ts';
import { postgresDialect } from '../../../../src/sql/dialects/postgres.ts';
import { ensureParser, parseSqlSync } from '../../../../src/sql/parse.ts';

const TYPES: Record<string, Record<string, string>> = {
  orders: {
    id: 'integer',
    region: 'text',
    status: 'varchar(20)',
    amount: 'numeric(10,2)',
    qty: 'integer',
    day: 'date',
    at: 'timestamp',
    flag: 'boolean',
    tags: 'jsonb',
  },
};
const dialect = createMysqlDialect({ columnTypes: (_s, t) => TYPES[t] });
const mysqlOf = (sql: string) => dialect.emit(parseSqlSync(sql).statements[0]!.stmt);
const T = "(SELECT id, region, status, amount, qty, day, at, flag FROM orders WHERE region = 'EMEA' OFFSET 0)";

beforeAll(async () => {
  await ensureParser();
});

const GOLDEN: Array<[string, string]> = [
  [
    `SELECT o.id FROM ${T} AS o WHERE o.status = 'shipped'`,
    "SELECT `o`.`id` AS `id` FROM (SELECT `id` AS `id`, (CONVERT(`region` USING utf8mb4) COLLATE utf8mb4_nopad_bin) AS `region`, (CONVERT(`status` USING utf8mb4) COLLATE utf8mb4_nopad_bin) AS `status`, `amount` AS `amount`, `qty` AS `qty`, `day` AS `day`, `at` AS `at`, `flag` AS `flag` FROM `orders` WHERE ((CONVERT(`region` USING utf8mb4) COLLATE utf8mb4_nopad_bin) = 'EMEA') LIMIT 18446744073709551615 OFFSET 0) AS `o` WHERE (`o`.`status` = 'shipped')",
  ],
  [
    `SELECT qty / 2, amount / 2, status || '-' || qty FROM ${T} o`,
    "SELECT (`qty` DIV 2) AS `?column?`, (`amount` / 2) AS `?column?`, CONCAT(CONCAT(`status`, '-'), `qty`) AS `?column?` FROM",
  ],
  [
    `SELECT id FROM ${T} o ORDER BY amount DESC, 1 NULLS FIRST LIMIT 5 OFFSET 10`,
    'ORDER BY (`amount`) IS NULL DESC, `amount` DESC, (`id`) IS NULL DESC, `id` LIMIT 5 OFFSET 10',
  ],
  [
    `SELECT count(*), count(DISTINCT status) AS n FROM ${T} o GROUP BY region HAVING count(*) > 1`,
    'SELECT COUNT(*) AS `count`, COUNT(DISTINCT `status`) AS `n` FROM',
  ],
  [
    `SELECT id FROM ${T} o WHERE day >= '2024-01-01' AND at < day + interval '1 month'`,
    "WHERE ((`day` >= DATE'2024-01-01') AND (`at` < (CAST(`day` AS DATETIME) + INTERVAL 1 MONTH)))",
  ],
  [`SELECT id FROM ${T} o WHERE status LIKE 'a\\_%'`, "WHERE (`status` LIKE _utf8mb4 X'615C5F25' COLLATE utf8mb4_nopad_bin ESCAPE X'5C')"],
  [
    `SELECT amount::numeric(6,1), qty::text, extract(dow from day), date_trunc('month', at) FROM ${T} o`,
    "SELECT CAST(`amount` AS DECIMAL(6, 1)) AS `amount`, CAST(`qty` AS CHAR) AS `qty`, (DAYOFWEEK(`day`) - 1) AS `extract`, CAST(DATE_FORMAT(`at`, '%Y-%m-01 00:00:00') AS DATETIME) AS `date_trunc` FROM",
  ],
  [
    'SELECT 1 UNION ALL SELECT 2 ORDER BY 1 LIMIT 1',
    'SELECT * FROM (SELECT 1 AS `?column?` UNION ALL SELECT 2 AS `?column?`) AS `gh_set_1` ORDER BY (`gh_set_1`.`?column?`) IS NULL, `gh_set_1`.`?column?` LIMIT 1',
  ],
  // A constant output column sorts nothing: written out, MySQL would read 0 as a position.
  [`SELECT qty, 0 AS z FROM ${T} o ORDER BY 2, z, 1`, 'ORDER BY (`qty`) IS NULL, `qty`'],
  [
    "SELECT 'it''s', 'back\\slash', \"a`b\" FROM (SELECT 1 AS \"a`b\") s",
    "SELECT 'it''s' AS `?column?`, _utf8mb4 X'6261636B5C736C617368' COLLATE utf8mb4_nopad_bin AS `?column?`, `a``b` AS `a``b` FROM (SELECT 1 AS `a``b`) AS `s`",
  ],
];

describe('golden MySQL text', () => {
  for (const [pg, mysql] of GOLDEN) {
    it(pg, () => {
      expect(mysqlOf(pg).sql).toContain(mysql);
    });
  }
});

describe('parameters', () => {
  it('maps each ? to its $n in order, a $n used twice becoming two ?', () => {
    const e = mysqlOf(`SELECT id FROM ${T} o WHERE status = $2 OR region = $2 AND qty > $1 LIMIT $3`);
    expect(e.sql.match(/\?/g)?.length).toBe(4);
    expect(e.params).toEqual([2, 2, 1, 3]);
  });

  it('keeps the text order where MySQL writes arguments in another order than PostgreSQL', () => {
    // position(sub IN s) is position(s, sub) in the tree; LOCATE(sub, s) in MySQL.
    const e = mysqlOf(`SELECT position($1 in status || $2) FROM ${T} o`);
    expect(e.params).toEqual([1, 2]);
    expect(e.sql).toContain('LOCATE(?, CONCAT(`status`, ?))');
  });

  it('repeats a parameter where the NULL ordering repeats its key', () => {
    expect(mysqlOf(`SELECT id FROM ${T} o ORDER BY qty + $1`).params).toEqual([1, 1]);
  });
});

describe('result columns', () => {
  it("reports PostgreSQL's names and types so a connector can read 1/0 as a boolean", () => {
    const e = mysqlOf(`SELECT qty > 1, count(*), id AS "Key", sum(qty), avg(qty) FROM ${T} o GROUP BY 1, 3`);
    expect(e.columns).toEqual([
      { name: '?column?', type: 'bool' },
      { name: 'count', type: 'int8' },
      { name: 'Key', type: 'int' },
      { name: 'sum', type: 'int8' },
      { name: 'avg', type: 'numeric' },
    ]);
  });
});

// Each refused with 0A000 and a message naming the construct.
const UNSUPPORTED: Array<[string, string]> = [
  [`SELECT o.id FROM ${T} o FULL JOIN ${T} p ON o.id = p.id`, 'FULL JOIN'],
  [`SELECT o.id FROM ${T} o NATURAL JOIN ${T} p`, 'NATURAL JOIN'],
  [`SELECT id FROM ${T} o WHERE status ILIKE 'a%'`, 'ILIKE'],
  [`SELECT id FROM ${T} o WHERE status SIMILAR TO 'a%'`, 'SIMILAR TO'],
  [`SELECT id FROM ${T} o WHERE status ~ 'a'`, 'the operator ~'],
  [`SELECT greatest(qty, 1) FROM ${T} o`, 'GREATEST'],
  [`SELECT least(qty, 1) FROM ${T} o`, 'LEAST'],
  [`SELECT row_number() OVER () FROM ${T} o`, 'window functions'],
  [`SELECT string_agg(status, ',') FROM ${T} o`, 'the function string_agg'],
  [`SELECT to_char(day, 'YYYY') FROM ${T} o`, 'the function to_char'],
  [`SELECT count(*) FILTER (WHERE qty > 1) FROM ${T} o`, 'aggregate FILTER'],
  [`SELECT DISTINCT ON (region) id FROM ${T} o`, 'DISTINCT ON'],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r', 'WITH RECURSIVE'],
  [`SELECT id FROM ${T} o INTERSECT SELECT id FROM ${T} p`, 'INTERSECT'],
  [`SELECT id FROM ${T} o EXCEPT SELECT id FROM ${T} p`, 'EXCEPT'],
  ['SELECT id FROM orders', "reading the table orders outside a topic's derived table"],
  ['SELECT id FROM (SELECT id FROM secret WHERE true OFFSET 0) s', 'the table secret, whose column types Gatehouse does not know'],
  [`SELECT x.* FROM ${T} o, LATERAL (SELECT o.id) x`, 'LATERAL'],
  [`SELECT region, count(*) FROM ${T} o GROUP BY ROLLUP (region)`, 'GROUPING SETS, ROLLUP and CUBE'],
  [`SELECT id FROM ${T} o FOR UPDATE`, 'FOR UPDATE/FOR SHARE'],
  ['VALUES (1), (2)', 'VALUES lists'],
  [`SELECT id FROM ${T} o ORDER BY id FETCH FIRST 1 ROWS WITH TIES`, 'WITH TIES'],
  [`SELECT 1e3 FROM ${T} o`, 'exponent notation'],
  [`SELECT tags FROM (SELECT tags FROM orders OFFSET 0) o`, 'whose type Gatehouse does not know'],
  [`SELECT $1 / $2 FROM ${T} o`, 'unknown type'],
  [`SELECT id FROM ${T} o WHERE status = 5`, 'between text and int'],
  [`SELECT status || flag FROM ${T} o`, '|| on text and bool'],
  [`SELECT at - at FROM ${T} o`, 'the operator - on timestamp and timestamp'],
  [`SELECT ratio FROM ${T} o`, 'the column ratio, which no relation of the query has'],
  [`SELECT substring(status, qty, 2) FROM ${T} o`, 'substring with a start other than an integer constant'],
  [`SELECT substring(status, 1, -2) FROM ${T} o`, 'substring with a length other than a non-negative integer constant'],
  [`SELECT btrim(status, 'xy') FROM ${T} o`, 'btrim with characters other than one constant character'],
  [`SELECT extract(epoch from at) FROM ${T} o`, 'extract(epoch ...)'],
  [`SELECT extract(hour from day) FROM ${T} o`, 'extract(hour ...) of date'],
  [`SELECT date_trunc('decade', at) FROM ${T} o`, "date_trunc('decade', ...)"],
  [`SELECT status::int FROM ${T} o`, 'the cast from text to pg_catalog.int4'],
  [`SELECT amount::real FROM ${T} o`, 'the cast to pg_catalog.float4'],
  [`SELECT status::char(3) FROM ${T} o`, 'the cast to pg_catalog.bpchar'],
  [`SELECT id::json FROM ${T} o`, 'the cast to pg_catalog.json'],
  [`SELECT at::text FROM ${T} o`, 'the cast from timestamp to text'],
  [`SELECT '1 day 2 hours'::interval FROM ${T} o`, "the literal '1 day 2 hours' as interval"],
  [`SELECT id FROM ${T} o WHERE day = 'yesterday'`, "the literal 'yesterday' as date"],
  [`SELECT qty AS amount FROM ${T} o ORDER BY amount + 0`, "an ORDER BY expression using amount, which is also an output column's name"],
  [`SELECT current_user FROM ${T} o`, 'the function current_user'],
  [`SELECT id FROM ${T} o WHERE qty = ANY (ARRAY[1, 2])`, '= ANY/ALL over an array'],
  [`SELECT id FROM ${T} o WHERE qty > ALL (SELECT 1)`, '> ALL (subquery)'],
  [`SELECT id FROM ${T} o WHERE status COLLATE "C" = 'a'`, 'COLLATE'],
  [`SELECT round(qty::float8) FROM ${T} o`, 'round of double precision'],
  ['SELECT 1 AS "trailing "', 'the identifier "trailing "'],
  [`SELECT id FROM ${T} AS o`.replace('FROM orders', 'FROM db.public.orders'), 'a relation name with a database part'],
  [`WITH orders AS (SELECT 1 AS id) SELECT o.id FROM ${T} o`, 'a WITH query named orders, like the table a topic reads'],
  [`SELECT *, 1 FROM ${T} o ORDER BY 2`, 'ORDER BY position with * in the select list'],
  [`SELECT *, 1 FROM ${T} o GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`, 'GROUP BY position with * in the select list'],
  [`SELECT id FROM ${T} o ORDER BY 2`, 'ORDER BY position 2'],
  ['SHOW search_path', 'VariableShowStmt statements'],
  ['DELETE FROM orders', 'DeleteStmt statements'],
];

describe('Unsupported constructs', () => {
  for (const [sql, construct] of UNSUPPORTED) {
    it(`${construct}: ${sql.replace(T, 'orders')}`, () => {
      let error: unknown;
      try {
        mysqlOf(sql);
      } catch (e) {
        error = e;
      }
      expect(isGatehouseError(error), String(error)).toBe(true);
      const g = error as { sqlstate: string; message: string };
      expect(g.sqlstate).toBe('0A000');
      expect(g.message).toContain('MySQL connections do not support');
      expect(g.message).toContain(construct);
    });
  }
});

describe('tokens', () => {
  it('quotes identifiers with backquotes and refuses names MySQL cannot hold', () => {
    expect(quoteIdent('a`b')).toBe('`a``b`');
    expect(() => quoteIdent('x'.repeat(65))).toThrow();
    expect(() => quoteIdent('a\u0000')).toThrow();
    expect(() => quoteIdent('𝄞')).toThrow();
    expect(() => quoteIdent('\u0001x')).toThrow(); // MariaDB would drop it from an alias
    expect(() => quoteIdent(' x')).toThrow();
  });

  it("writes a string with a backslash as hex, readable in every sql_mode; others double '", () => {
    expect(quoteString("it's", 'mariadb')).toBe("'it''s'");
    expect(quoteString("\\'; DELETE FROM t; --", 'mariadb')).toBe("_utf8mb4 X'5C273B2044454C4554452046524F4D20743B202D2D' COLLATE utf8mb4_nopad_bin");
    expect(quoteString('\\', 'mysql')).toBe("_utf8mb4 X'5C' COLLATE utf8mb4_0900_bin");
  });

  it('the session statements set sql_mode, the collation and the barrier optimizer switches', () => {
    const s = mysqlSessionStatements('mariadb').join(';\n');
    expect(s).toContain(
      "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,ONLY_FULL_GROUP_BY,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    );
    expect(s).toContain("SET SESSION collation_connection = 'utf8mb4_nopad_bin'");
    expect(s).toContain('derived_merge=off,condition_pushdown_for_derived=off');
    expect(s).toContain('SET SESSION div_precision_increment = 16');
    expect(mysqlSessionStatements('mysql').join(';')).toContain('derived_condition_pushdown=off');
  });
});

describe('the PostgreSQL dialect', () => {
  it('is the faithful deparse, parameters left as $n', () => {
    const e = postgresDialect.emit(parseSqlSync('SELECT id FROM orders WHERE id = $1').statements[0]!.stmt);
    expect(e).toEqual({ sql: 'SELECT id FROM orders WHERE id = $1', params: [] });
    expect(postgresDialect.name).toBe('postgres');
  });
});
