// Each emitted construct, run two ways over the same rows: the PostgreSQL statement on PostgreSQL
// (lower-case tables, as PostgreSQL folds), and its Snowflake text through the snowflake connector
// and the fake Snowflake (quoted upper-case tables, as Snowflake folds). Same rows, same order
// where ordered. What this proves: the emitter's quoting, parameters, NULL ordering, LIMIT and
// fence handling resolve and mean the same. What it cannot prove: Snowflake's own reading of the
// text (the fake runs it on PostgreSQL), e.g. its numeric scales or its optimizer's pushdown.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emitSnowflake } from '../../../src/sql/dialects/snowflake.ts';
import { ensureParser, parseSqlSync } from '../../../src/sql/parse.ts';
import { connectSnowflake, type SnowflakeConnection } from '../../../src/warehouses/snowflake.ts';
import { type FakeSnowflake, SNOWFLAKE_DOMAINS_SQL, startFakeSnowflake } from '../../helpers/snowflake-server.ts';
import { PG, requirePostgres } from '../../helpers/servers.ts';

const DB = 'gatehouse_snowflake_dialect';
let fake: FakeSnowflake;
let sf: SnowflakeConnection;
let db: pg.Client;

beforeAll(async () => {
  await requirePostgres();
  await ensureParser();
  const admin = new pg.Client(PG);
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  db = new pg.Client({ ...PG, database: DB, types: { getTypeParser: () => (v: string) => v } });
  await db.connect();
  await db.query(SNOWFLAKE_DOMAINS_SQL);
  await db.query(`
    CREATE TABLE public.customers (id int PRIMARY KEY, name text, region text);
    CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int, region text, amount numeric(12,2), status text, ordered_at timestamp);
    INSERT INTO public.customers VALUES (1, 'Ada', 'EMEA'), (2, 'Bo', 'AMER'), (3, 'Cy', 'EMEA'), (4, 'Di_x', 'APAC');
    INSERT INTO public.orders VALUES
      (1, 1, 'EMEA', 10.50, 'shipped', '2024-01-05 10:00'),
      (2, 1, 'EMEA', NULL, 'open', '2024-02-01 09:30'),
      (3, 2, 'AMER', 99.99, 'shipped', '2024-01-20 12:00'),
      (4, 3, 'EMEA', 5.00, NULL, NULL),
      (5, 3, 'EMEA', 42.00, 'open', '2024-03-03 08:00'),
      (6, 4, 'APAC', 7.25, 'x_y', '2023-12-31 23:59:59.5'),
      (7, 2, 'AMER', NULL, 'open', '2024-02-14 14:14');
    -- The same rows as Snowflake would hold them after an unquoted CREATE: upper-case names.
    CREATE TABLE "PUBLIC"."CUSTOMERS" AS SELECT id AS "ID", name AS "NAME", region AS "REGION" FROM public.customers;
    CREATE TABLE "PUBLIC"."ORDERS" AS SELECT id AS "ID", customer_id AS "CUSTOMER_ID", region AS "REGION", amount AS "AMOUNT",
      status AS "STATUS", ordered_at AS "ORDERED_AT" FROM public.orders;`);
  fake = await startFakeSnowflake({ pg: { ...PG, database: DB }, users: { svc: { password: 'dialect-pw' } } });
  sf = await connectSnowflake({
    account: 'gh-test',
    user: 'svc',
    password: 'dialect-pw',
    accessUrl: fake.url,
    database: 'GH',
    schema: 'PUBLIC',
    warehouse: 'WH',
  });
});

afterAll(async () => {
  await sf?.close();
  await fake?.close();
  await db?.end();
});

// What the topic rewrite makes of `orders` and `customers` for a user whose region is EMEA.
const ORDERS = `(SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders WHERE region = 'EMEA' OFFSET 0) AS orders`;
const ALL_ORDERS = `(SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders OFFSET 0) AS orders`;
const CUSTOMERS = `(SELECT id, name, region FROM public.customers WHERE region IN ('EMEA', 'APAC') OFFSET 0) AS customers`;

const CASES: Array<{ name: string; sql: string; params?: (string | null)[]; ordered?: boolean }> = [
  { name: 'topic fence with a user condition', sql: `SELECT id, amount FROM ${ORDERS} WHERE amount > 6 ORDER BY id`, ordered: true },
  { name: 'NULL ordering, ascending and descending', sql: `SELECT id, amount FROM ${ALL_ORDERS} ORDER BY amount, id`, ordered: true },
  { name: 'NULLs first when descending', sql: `SELECT id, status FROM ${ALL_ORDERS} ORDER BY status DESC, id`, ordered: true },
  { name: 'explicit NULLS FIRST', sql: `SELECT id, ordered_at FROM ${ALL_ORDERS} ORDER BY ordered_at ASC NULLS FIRST, id`, ordered: true },
  {
    name: 'aggregates, GROUP BY, HAVING',
    sql: `SELECT region, count(*), count(amount), count(DISTINCT status), sum(amount), min(amount), max(ordered_at) FROM ${ALL_ORDERS} GROUP BY region HAVING count(*) > 1 ORDER BY region`,
    ordered: true,
  },
  { name: 'avg', sql: `SELECT region, avg(amount) FROM ${ALL_ORDERS} GROUP BY region ORDER BY 1`, ordered: true },
  {
    name: 'join of two topics',
    sql: `SELECT o.id, c.name FROM ${ORDERS.replace('AS orders', 'AS o')} JOIN ${CUSTOMERS.replace('AS customers', 'AS c')} ON o.customer_id = c.id ORDER BY o.id`,
    ordered: true,
  },
  {
    name: 'left join keeps unmatched rows',
    sql: `SELECT c.name, o.id FROM ${CUSTOMERS.replace('AS customers', 'AS c')} LEFT JOIN ${ORDERS.replace('AS orders', 'AS o')} ON o.customer_id = c.id ORDER BY c.name, o.id`,
    ordered: true,
  },
  {
    name: 'CTE, IN and EXISTS subqueries',
    sql: `WITH big AS (SELECT id, customer_id FROM ${ALL_ORDERS} WHERE amount > 20) SELECT c.name FROM ${CUSTOMERS.replace('AS customers', 'AS c')} WHERE c.id IN (SELECT customer_id FROM big) OR EXISTS (SELECT 1 FROM big WHERE big.id = c.id) ORDER BY 1`,
    ordered: true,
  },
  { name: 'scalar subquery', sql: `SELECT id, (SELECT max(amount) FROM ${ALL_ORDERS}) AS top FROM ${ORDERS} ORDER BY id`, ordered: true },
  {
    name: 'CASE, COALESCE, NULLIF, concatenation',
    sql: `SELECT id, CASE WHEN amount > 20 THEN 'big' WHEN amount IS NULL THEN 'none' ELSE 'small' END, COALESCE(status, '?') || '/' || region, NULLIF(status, 'open') FROM ${ALL_ORDERS} ORDER BY id`,
    ordered: true,
  },
  {
    name: 'LIKE with the default backslash escape',
    sql: `SELECT id FROM ${ALL_ORDERS} WHERE status LIKE 'x\\_%' OR status ILIKE 'SHIP%' ORDER BY id`,
    ordered: true,
  },
  {
    name: 'IN, NOT IN, BETWEEN, IS DISTINCT FROM',
    sql: `SELECT id FROM ${ALL_ORDERS} WHERE id IN (1, 2, 3, 4, 5) AND status NOT IN ('x') AND customer_id BETWEEN 1 AND 3 AND status IS DISTINCT FROM 'shipped' ORDER BY id`,
    ordered: true,
  },
  { name: 'LIMIT and OFFSET as parameters', sql: `SELECT id FROM ${ALL_ORDERS} ORDER BY id LIMIT $1 OFFSET $2`, params: ['3', '2'], ordered: true },
  { name: 'OFFSET without LIMIT', sql: `SELECT id FROM ${ALL_ORDERS} ORDER BY id OFFSET 5`, ordered: true },
  {
    name: 'parameters in conditions, reused',
    sql: `SELECT id FROM ${ALL_ORDERS} WHERE region = $1 OR customer_id = $2 OR id = $2 ORDER BY id`,
    params: ['APAC', '2'],
    ordered: true,
  },
  {
    name: 'casts of constants and parameters',
    sql: `SELECT id FROM ${ALL_ORDERS} WHERE ordered_at >= '2024-01-15'::timestamp AND ordered_at < $1::date ORDER BY id`,
    params: ['2024-03-01'],
    ordered: true,
  },
  {
    name: 'casts outside a fence',
    sql: `SELECT id::text, amount::float8 / 4, amount::numeric(10,1), (id > 3)::text FROM public.orders ORDER BY id`,
    ordered: true,
  },
  {
    name: 'UNION, INTERSECT, EXCEPT',
    sql: `SELECT region FROM ${ALL_ORDERS} UNION SELECT region FROM ${CUSTOMERS} EXCEPT SELECT 'AMER' ORDER BY 1`,
    ordered: true,
  },
  { name: 'UNION ALL keeps duplicates', sql: `SELECT region FROM ${ORDERS} UNION ALL SELECT region FROM ${CUSTOMERS}` },
  { name: 'DISTINCT and scalar functions', sql: `SELECT DISTINCT upper(status), length(region), abs(-customer_id), round(amount, 1) FROM ${ALL_ORDERS}` },
  { name: 'exponent literal stays numeric', sql: `SELECT id FROM ${ALL_ORDERS} WHERE amount > 1e1 ORDER BY id`, ordered: true },
  { name: 'a string literal with a backslash', sql: `SELECT 'a\\b' AS s, 'it''s' AS t` },
];

async function viaSnowflake(sql: string, params: (string | null)[]) {
  const out = emitSnowflake(parseSqlSync(sql).statements[0].stmt);
  const rows: (string | null)[][] = [];
  let names: string[] = [];
  const r = await sf.execute(
    out.sql,
    out.params.map((n) => params[n - 1]),
    { onColumns: (f) => (names = f.map((x) => x.name)), onRow: (v) => rows.push(v) > 0, resume: async () => undefined },
    { columnNames: out.columnNames },
  );
  if ('error' in r) throw new Error(`${r.error.sqlstate} ${r.error.message}\n${out.sql}`);
  return { rows, names, text: out.sql };
}

const sortRows = (rows: (string | null)[][]) => [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('snowflake dialect: emitted SQL gives the rows the PostgreSQL statement gives', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const expected = await db.query({ text: c.sql, values: c.params ?? [], rowMode: 'array' });
      const got = await viaSnowflake(c.sql, c.params ?? []);
      const want = expected.rows as unknown as (string | null)[][];
      expect(want.length, 'the case must return rows to compare').toBeGreaterThan(0);
      expect(got.names).toEqual(expected.fields.map((f) => f.name));
      expect(c.ordered ? got.rows : sortRows(got.rows), got.text).toEqual(c.ordered ? want : sortRows(want));
    });
  }

  it('the topic fence keeps hidden rows out whatever the user condition says', async () => {
    const got = await viaSnowflake(`SELECT id, region FROM ${ORDERS} WHERE region <> 'EMEA' OR id > 0 ORDER BY id`, []);
    expect(got.rows.map((r) => r[1])).toEqual(['EMEA', 'EMEA', 'EMEA', 'EMEA']);
    // And the text sent names Snowflake's objects, quoted as Snowflake stores unquoted names.
    expect(fake.queries.at(-1)?.sqlText).toContain(`FROM "PUBLIC"."ORDERS" WHERE ("REGION" = 'EMEA')`);
    expect(fake.queries.at(-1)?.sqlText).not.toMatch(/OFFSET/);
  });
});
