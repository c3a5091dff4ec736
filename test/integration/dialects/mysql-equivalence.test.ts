// The MySQL dialect's equivalence fixtures (sqlglot's per-dialect tests, run for real): each
// PostgreSQL query over topics is rewritten as decide() rewrites it, run as PostgreSQL text on
// PostgreSQL and as emitted MySQL text on MariaDB over the same data, and must give the same
// rows (values normalised only where the engines spell one value differently: t/1, scales).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Both, openBoth, runBoth } from './dialect-fixture.ts';

interface Case {
  sql: string;
  params?: unknown[];
  /** Rows in the query's own order (it has ORDER BY over distinct keys); else compared as sets. */
  ordered?: boolean;
  /** At least this many rows (so a case cannot pass on two empty answers). */
  min?: number;
}

const CASES: Record<string, Case[]> = {
  'identifiers and literals': [
    { sql: 'SELECT id, region, status FROM orders ORDER BY id', ordered: true, min: 7 },
    { sql: 'SELECT * FROM orders ORDER BY id', ordered: true, min: 7 },
    { sql: 'SELECT id AS "Weird`Name", status AS "sel""ect", note AS "Ünï" FROM orders ORDER BY 1', ordered: true, min: 7 },
    { sql: "SELECT 'it''s', 'back\\slash', 'ä€𝄞', '' , 'a' = 'A', 'a' = 'a ', 'B' < 'a'", min: 1 },
    { sql: "SELECT id FROM orders WHERE note = 'back\\slash' OR note = 'it''s' ORDER BY id", ordered: true, min: 2 },
  ],
  'text comparison (PostgreSQL collation C: case and trailing spaces count)': [
    { sql: "SELECT id FROM orders WHERE status = 'shipped' ORDER BY id", ordered: true, min: 1 },
    { sql: "SELECT id FROM orders WHERE status <> 'shipped' ORDER BY id", ordered: true, min: 5 },
    { sql: "SELECT id FROM orders WHERE status > 'S' ORDER BY id", ordered: true, min: 3 },
    { sql: "SELECT id FROM orders WHERE status IN ('pending', 'Shipped') ORDER BY id", ordered: true, min: 2 },
    { sql: "SELECT id FROM orders WHERE status BETWEEN 'a' AND 'q' ORDER BY id", ordered: true, min: 2 },
    { sql: 'SELECT DISTINCT status FROM orders ORDER BY status', ordered: true, min: 7 },
    { sql: 'SELECT status, count(*) FROM orders GROUP BY status ORDER BY status', ordered: true, min: 7 },
    { sql: 'SELECT count(DISTINCT status), min(status), max(status) FROM orders', min: 1 },
    { sql: 'SELECT status FROM orders ORDER BY status DESC', ordered: true, min: 7 },
    { sql: 'SELECT o.id, c.name FROM orders o JOIN customers c ON c.name > o.status ORDER BY o.id, c.name', ordered: true, min: 3 },
  ],
  LIKE: [
    { sql: "SELECT id FROM orders WHERE status LIKE 'ship%' ORDER BY id", ordered: true, min: 2 },
    { sql: "SELECT id FROM orders WHERE status LIKE 'S%' ORDER BY id", ordered: true, min: 1 },
    { sql: "SELECT id FROM orders WHERE status LIKE 'a\\_b\\%c' ORDER BY id", ordered: true, min: 1 },
    { sql: "SELECT id FROM orders WHERE status LIKE '_hipped' ORDER BY id", ordered: true, min: 2 },
    { sql: "SELECT id FROM orders WHERE status NOT LIKE '%e%' ORDER BY id", ordered: true, min: 1 },
    { sql: "SELECT id FROM orders WHERE note LIKE '%\\\\%' ORDER BY id", ordered: true, min: 1 },
  ],
  'string concatenation': [
    { sql: "SELECT id, status || '/' || region FROM orders ORDER BY id", ordered: true, min: 7 },
    { sql: "SELECT id, note || '!' FROM orders ORDER BY id", ordered: true, min: 7 },
    { sql: "SELECT id, 'n=' || qty, amount || '' FROM orders ORDER BY id", ordered: true, min: 7 },
    { sql: "SELECT id, concat(note, '-', qty, '-', day) FROM orders ORDER BY id", ordered: true, min: 7 },
  ],
  'integer and numeric division': [
    { sql: 'SELECT id, qty / 2, qty % 3, -qty / 2, qty / -2 FROM orders WHERE qty <> 0 ORDER BY id', ordered: true, min: 6 },
    { sql: 'SELECT id, amount / 4, amount / 3 FROM orders ORDER BY id', ordered: true, min: 7 },
    { sql: 'SELECT id, ratio / 2, qty * 1.5 FROM orders ORDER BY id', ordered: true, min: 7 },
    { sql: 'SELECT sum(qty) / count(*), sum(big) / 3, avg(qty), avg(amount), sum(amount), sum(big) FROM orders', min: 1 },
    { sql: 'SELECT big / 7, big % 7 FROM orders ORDER BY id', ordered: true, min: 7 },
  ],
  booleans: [
    { sql: 'SELECT id, flag, qty > 2, NOT (qty > 2) FROM orders ORDER BY id', ordered: true, min: 7 },
    { sql: 'SELECT id FROM orders WHERE flag ORDER BY id', ordered: true, min: 3 },
    { sql: 'SELECT id FROM orders WHERE NOT flag ORDER BY id', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE flag IS NOT TRUE ORDER BY id', ordered: true, min: 3 },
    { sql: 'SELECT id FROM orders WHERE flag IS UNKNOWN ORDER BY id', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE flag = true AND qty > 0 OR id = 3 ORDER BY id', ordered: true, min: 3 },
  ],
  'NULL ordering': [
    { sql: 'SELECT id, amount FROM orders ORDER BY amount, id', ordered: true, min: 7 },
    { sql: 'SELECT id, amount FROM orders ORDER BY amount DESC, id', ordered: true, min: 7 },
    { sql: 'SELECT id, amount FROM orders ORDER BY amount NULLS FIRST, id', ordered: true, min: 7 },
    { sql: 'SELECT id, amount FROM orders ORDER BY amount DESC NULLS LAST, id', ordered: true, min: 7 },
    { sql: 'SELECT id, ratio AS r FROM orders ORDER BY r, 1', ordered: true, min: 7 },
    { sql: 'SELECT note, id FROM orders ORDER BY 1 DESC, 2', ordered: true, min: 7 },
    { sql: 'SELECT customer_id, count(*) FROM orders GROUP BY customer_id ORDER BY customer_id', ordered: true, min: 4 },
  ],
  'LIMIT and OFFSET': [
    { sql: 'SELECT id FROM orders ORDER BY id LIMIT 3 OFFSET 2', ordered: true, min: 3 },
    { sql: 'SELECT id FROM orders ORDER BY id OFFSET 5', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders ORDER BY id LIMIT ALL', ordered: true, min: 7 },
    { sql: 'SELECT id FROM orders ORDER BY id FETCH FIRST 2 ROWS ONLY', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders ORDER BY id LIMIT $1 OFFSET $2', params: [2, 1], ordered: true, min: 2 },
  ],
  'CASE, COALESCE, NULLIF': [
    { sql: "SELECT id, CASE WHEN qty > 5 THEN 'big' WHEN qty > 0 THEN 'small' ELSE 'none' END FROM orders ORDER BY id", ordered: true, min: 7 },
    { sql: "SELECT id, CASE status WHEN 'shipped' THEN 1 WHEN 'pending' THEN 2 END FROM orders ORDER BY id", ordered: true, min: 7 },
    { sql: 'SELECT id, CASE WHEN flag THEN amount ELSE 0 END FROM orders ORDER BY id', ordered: true, min: 7 },
    {
      sql: "SELECT id, coalesce(amount, 0), coalesce(note, status, 'x'), nullif(qty, 0), nullif(status, 'shipped') FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
  ],
  aggregates: [
    { sql: 'SELECT count(*), count(amount), count(DISTINCT customer_id), sum(qty), min(amount), max(day), min(ordered_at) FROM orders', min: 1 },
    { sql: 'SELECT region, count(*), sum(amount), avg(qty), max(status) FROM orders GROUP BY region ORDER BY region', ordered: true, min: 2 },
    { sql: 'SELECT region, count(*) FROM orders GROUP BY 1 HAVING count(*) > 3 ORDER BY 1', ordered: true, min: 1 },
    { sql: 'SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id HAVING sum(amount) > 0 ORDER BY total DESC', ordered: true, min: 3 },
    { sql: 'SELECT count(*) FROM orders WHERE qty > 100', min: 1 },
    { sql: 'SELECT sum(DISTINCT qty), avg(DISTINCT customer_id) FROM orders', min: 1 },
  ],
  'date and time': [
    {
      sql: "SELECT id, extract(year from day), extract(month from ordered_at), extract(day from day), extract(dow from day), extract(isodow from day), extract(doy from day), extract(week from day), extract(quarter from day), extract(hour from ordered_at), extract(minute from ordered_at), extract(second from ordered_at), date_part('year', ordered_at), extract(isoyear from day) FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
    {
      sql: "SELECT id, date_trunc('month', ordered_at), date_trunc('year', ordered_at), date_trunc('week', ordered_at), date_trunc('quarter', ordered_at), date_trunc('day', ordered_at), date_trunc('hour', ordered_at), date_trunc('minute', ordered_at), date_trunc('month', day) FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
    {
      sql: "SELECT id, day + 1, day - 7, 3 + day, day - date '2024-01-01', ordered_at + interval '1 month', ordered_at - interval '2 hours', day + interval '1 day', ordered_at + '3 days'::interval FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
    { sql: "SELECT id FROM orders WHERE day >= '2024-01-01' ORDER BY id", ordered: true, min: 5 },
    { sql: "SELECT id FROM orders WHERE ordered_at < '2024-02-01 00:00:00' ORDER BY id", ordered: true, min: 3 },
    { sql: "SELECT id FROM orders WHERE day BETWEEN '2024-01-01' AND '2024-03-31' ORDER BY id", ordered: true, min: 4 },
    { sql: 'SELECT id FROM orders WHERE ordered_at > day ORDER BY id', ordered: true, min: 3 },
    { sql: "SELECT count(*) FROM orders WHERE current_date > '2020-01-01' AND now() > '2020-01-01' AND day < current_date", min: 1 },
    { sql: "SELECT date_trunc('month', ordered_at) AS m, count(*) FROM orders GROUP BY 1 ORDER BY 1", ordered: true, min: 4 },
  ],
  'string functions': [
    { sql: 'SELECT id, lower(status), upper(status), length(status), char_length(note), octet_length(note) FROM orders ORDER BY id', ordered: true, min: 7 },
    {
      sql: 'SELECT id, substring(status from 2 for 3), substring(status, 0, 3), substr(status, 2), substring(status from -1 for 4), substr(status, 3, 0) FROM orders ORDER BY id',
      ordered: true,
      min: 7,
    },
    {
      sql: "SELECT id, '[' || trim(status) || ']', trim(both 's' from status), ltrim(status, 's'), rtrim(status), trim(leading from '  x  '), rtrim(status, ' ') FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
    {
      sql: "SELECT id, replace(status, 'p', 'P'), position('p' in status), strpos(status, 'e'), position('P' in status), left(status, 3), right(status, 2) FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
    { sql: "SELECT id FROM orders WHERE lower(status) = 'shipped' ORDER BY id", ordered: true, min: 2 },
  ],
  casts: [
    { sql: 'SELECT id, qty::text, amount::int, amount::numeric(10,1), qty::numeric, big::text, day::text FROM orders ORDER BY id', ordered: true, min: 7 },
    {
      sql: "SELECT id, '42'::int, day::timestamp, ordered_at::date, status::varchar(3), qty::float8, CAST(amount AS numeric(6,3)), '2.5'::numeric FROM orders ORDER BY id",
      ordered: true,
      min: 7,
    },
    { sql: 'SELECT id FROM orders WHERE qty::numeric / 4 > 1 ORDER BY id', ordered: true, min: 2 },
  ],
  joins: [
    { sql: 'SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id', ordered: true, min: 6 },
    { sql: 'SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id ORDER BY o.id', ordered: true, min: 7 },
    { sql: 'SELECT o.id, c.name FROM orders o RIGHT JOIN customers c ON c.id = o.customer_id AND o.qty > 4 ORDER BY c.name, o.id', ordered: true, min: 4 },
    { sql: 'SELECT count(*) FROM orders CROSS JOIN customers', min: 1 },
    { sql: 'SELECT count(*), min(name) FROM orders JOIN customers USING (region)', min: 1 },
    { sql: "SELECT o.id, c.name FROM orders o, customers c WHERE c.id = o.customer_id AND c.name <> 'Bob' ORDER BY o.id", ordered: true, min: 4 },
  ],
  subqueries: [
    { sql: 'SELECT id, (SELECT name FROM customers c WHERE c.id = o.customer_id) FROM orders o ORDER BY id', ordered: true, min: 7 },
    { sql: "SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE name <> 'Bob') ORDER BY id", ordered: true, min: 3 },
    { sql: "SELECT id FROM orders WHERE customer_id NOT IN (SELECT id FROM customers WHERE region = 'APAC') ORDER BY id", ordered: true, min: 4 },
    {
      sql: 'SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.region = o.region) ORDER BY id',
      ordered: true,
      min: 5,
    },
    { sql: 'SELECT r, n FROM (SELECT region AS r, count(*) AS n FROM orders GROUP BY region) s ORDER BY r', ordered: true, min: 2 },
    { sql: 'SELECT s.r, s.n FROM (SELECT region, count(*) FROM orders GROUP BY region) AS s(r, n) ORDER BY 1', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE amount > (SELECT avg(amount) FROM orders) ORDER BY id', ordered: true, min: 1 },
    { sql: 'SELECT x.id FROM (SELECT id, qty FROM orders WHERE qty > 0 ORDER BY qty DESC LIMIT 3) x ORDER BY x.id', ordered: true, min: 3 },
  ],
  'common table expressions': [
    { sql: 'WITH t AS (SELECT region, sum(amount) AS total FROM orders GROUP BY region) SELECT * FROM t ORDER BY region', ordered: true, min: 2 },
    { sql: 'WITH a AS (SELECT id, qty FROM orders), b AS (SELECT * FROM a WHERE qty > 2) SELECT count(*), sum(qty) FROM b', min: 1 },
    {
      sql: 'WITH c(n, r) AS (SELECT name, region FROM customers) SELECT o.id, c.n FROM orders o JOIN c ON c.r = o.region WHERE o.id < 3 ORDER BY 1, 2',
      ordered: true,
      min: 4,
    },
  ],
  'UNION and UNION ALL': [
    { sql: 'SELECT status FROM orders UNION SELECT name FROM customers ORDER BY 1', ordered: true, min: 10 },
    { sql: 'SELECT region FROM orders UNION ALL SELECT region FROM customers ORDER BY region', ordered: true, min: 11 },
    { sql: 'SELECT id, status FROM orders UNION ALL SELECT id, name FROM customers ORDER BY id DESC, status LIMIT 4', ordered: true, min: 4 },
    { sql: 'SELECT region FROM orders UNION ALL SELECT region FROM customers UNION SELECT status FROM orders', min: 9 },
    { sql: "SELECT 'x' UNION ALL SELECT 'X' UNION SELECT 'x'", min: 2 },
    { sql: 'SELECT 1 UNION (SELECT 2 UNION ALL SELECT 2)', min: 2 },
    { sql: '(SELECT id FROM orders ORDER BY id LIMIT 2) UNION ALL (SELECT id FROM customers ORDER BY id DESC LIMIT 1)', min: 3 },
    { sql: 'WITH t AS (SELECT region FROM orders) SELECT region FROM t UNION SELECT name FROM customers ORDER BY 1 DESC', ordered: true, min: 5 },
  ],
  'IN lists and IS DISTINCT FROM': [
    { sql: 'SELECT id FROM orders WHERE qty IN (1, 2, 3) ORDER BY id', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE qty NOT IN (0, 7) ORDER BY id', ordered: true, min: 5 },
    { sql: 'SELECT id FROM orders WHERE amount IN (7, 100.5) ORDER BY id', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE amount IS DISTINCT FROM 7 ORDER BY id', ordered: true, min: 6 },
    { sql: 'SELECT id FROM orders WHERE note IS NOT DISTINCT FROM NULL ORDER BY id', ordered: true, min: 1 },
    { sql: "SELECT id FROM orders WHERE day IN ('2024-01-15', '2024-06-30') ORDER BY id", ordered: true, min: 2 },
  ],
  'more shapes': [
    { sql: 'SELECT o.id, p.id FROM orders o JOIN orders p ON p.customer_id = o.customer_id AND p.id > o.id ORDER BY 1, 2', ordered: true, min: 2 },
    { sql: 'SELECT status FROM orders ORDER BY lower(status), status', ordered: true, min: 7 },
    { sql: 'SELECT id FROM orders ORDER BY note DESC NULLS LAST, amount', ordered: true, min: 7 },
    { sql: 'SELECT id FROM orders WHERE NOT (qty > 0 AND flag) OR note IS NULL ORDER BY id', ordered: true, min: 3 },
    { sql: 'SELECT -7 / 2, 7 % -3, -7 % 3, 7 / 2 * 2, 2 + 3 * 4', min: 1 },
    { sql: 'SELECT coalesce(qty, amount), coalesce(amount, qty) FROM orders ORDER BY id', ordered: true, min: 7 },
    { sql: 'SELECT id FROM orders o WHERE qty > (SELECT count(*) FROM customers c WHERE c.region = o.region) ORDER BY id', ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE status LIKE $1 ORDER BY id', params: ['%ed'], ordered: true, min: 1 },
    { sql: 'SELECT id FROM orders WHERE qty BETWEEN $1 AND $2 ORDER BY id', params: [1, 5], ordered: true, min: 3 },
    { sql: 'SELECT DISTINCT region, status FROM orders ORDER BY region, status', ordered: true, min: 7 },
    { sql: 'SELECT region, status FROM orders GROUP BY region, status ORDER BY 2 DESC, 1', ordered: true, min: 7 },
    { sql: "SELECT count(*) FROM orders WHERE note IS NULL OR note = ''", min: 1 },
    { sql: "SELECT id, upper(note) = 'NAÏVE', lower('ÄÖÜ') FROM orders ORDER BY id", ordered: true, min: 7 },
  ],
  'numbers and parameters': [
    {
      sql: 'SELECT id, -qty, abs(qty), qty * -2, qty - -1, round(amount, 1), round(amount), ceil(amount), floor(amount), abs(amount) FROM orders ORDER BY id',
      ordered: true,
      min: 7,
    },
    { sql: 'SELECT id FROM orders WHERE status = $1 AND qty > $2 ORDER BY id', params: ['shipped', 0], ordered: true, min: 1 },
    { sql: 'SELECT id FROM orders WHERE id = $1 OR customer_id = $1 ORDER BY id', params: [11], ordered: true, min: 2 },
    { sql: 'SELECT id FROM orders WHERE day = $1 ORDER BY id', params: ['2024-01-15'], ordered: true, min: 1 },
    { sql: 'SELECT id, 99999999999999999999.5 FROM orders WHERE amount > 1.5 ORDER BY id', ordered: true, min: 4 },
  ],
};

let both: Both;

beforeAll(async () => {
  both = await openBoth(`gh_dialect_eq_${process.pid}`);
});

afterAll(async () => {
  await both?.close();
});

for (const [group, cases] of Object.entries(CASES)) {
  describe(group, () => {
    for (const c of cases) {
      it(c.sql, async () => {
        const r = await runBoth(both, c.sql, c.params);
        const show = `PostgreSQL: ${r.pgSql}\nMySQL: ${r.mysqlSql}`;
        const sorted = (rows: unknown[]) => (c.ordered ? rows : [...rows].map((x) => JSON.stringify(x)).sort());
        expect(sorted(r.mysqlRows), show).toEqual(sorted(r.pgRows));
        expect(r.pgRows.length, show).toBeGreaterThanOrEqual(c.min ?? 1);
      });
    }
  });
}
