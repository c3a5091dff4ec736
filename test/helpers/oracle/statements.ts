// Statements the differential oracle runs, as fast-check arbitraries over acme's demo
// topics (orders, customers). Three classes, each with its own verdict (oracle.test.ts):
//
//   answerable - what a query_topics user may legitimately write. Gatehouse must give
//                exactly the rows PostgreSQL gives the person's RLS role, or both refuse.
//                "Gatehouse refuses, direct answers" is a failure.
//   hostile    - reads something beyond the topics: a non-topic relation (employees), a
//                field that is not allowed (customers.email), a relation's row type
//                (NULL::employees), a reg* type, a denied function in any call form. Gatehouse
//                must refuse, whatever PostgreSQL answers directly (ts_stat works there).
//   gray       - harmless forms Gatehouse may refuse by design (column notation calling an
//                allowlisted function, whole-row values); if it answers, it must answer
//                exactly what PostgreSQL answers.
//
// Every statement is deterministic: LIMIT only after an ORDER BY ending in a unique key,
// ordered aggregates, no now()/random(). `*` and whole-row values never touch customers
// (the reference role has no grant on email, so PostgreSQL would refuse what Gatehouse
// rightly answers with the topic's four fields). For the same reason column notation on a
// customers row, `(c).name`, is gray: PostgreSQL reads it as a whole-row value of c, which
// needs the email grant; on orders (every column allowed) `(o).amount` is answerable.
import fc from 'fast-check';

export type OracleClass = 'answerable' | 'hostile' | 'gray';
export interface OracleStatement {
  cls: OracleClass;
  sql: string;
}

type Table = 'orders' | 'customers';
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);

// ----------------------------------------------------------------------------- expressions

function numExpr(t: Table, a: string): fc.Arbitrary<string> {
  if (t === 'orders') {
    return fc.oneof(
      pick(`${a}.amount`, `${a}.id`, `${a}.customer_id`, `(${a}).amount`, `(${a}.*).id`, `round(${a}.amount)`, `abs(${a}.amount - 500)`),
      pick(`${a}.amount * 2 + 1`, `CAST(${a}.id AS numeric)`, `${a}.id::text::int`, `EXTRACT(MONTH FROM ${a}.ordered_at)`, `EXTRACT(DOW FROM ${a}.ordered_at)`),
      pick(`POSITION('a' IN ${a}.status)`, `length(${a}.status)`, `COALESCE(${a}.amount, 0)`, `CASE WHEN ${a}.amount > 500 THEN 1 ELSE 0 END`),
      pick(
        `NULLIF(${a}.id % 3, 0)`,
        `GREATEST(${a}.amount, 100)`,
        `LEAST(${a}.id, 2500)`,
        `${a}.amount::int`,
        `floor(${a}.amount / 7)`,
        `date_part('day', ${a}.ordered_at)`,
      ),
    );
  }
  return fc.oneof(
    pick(`${a}.id`, `length(${a}.name)`, `EXTRACT(DAY FROM ${a}.created_at)`, `POSITION('1' IN ${a}.name)`, `${a}.id % 10`),
    pick(`CAST(${a}.id AS bigint) * 3`, `char_length(SUBSTRING(${a}.name FROM 3))`, `COALESCE(NULLIF(${a}.id % 4, 0), -1)`),
  );
}

function textExpr(t: Table, a: string): fc.Arbitrary<string> {
  if (t === 'orders') {
    return fc.oneof(
      pick(`${a}.status`, `${a}.region`, `upper(${a}.status)`, `SUBSTRING(${a}.status FROM 1 FOR 3)`, `TRIM(BOTH 'p' FROM ${a}.status)`),
      pick(`OVERLAY(${a}.status PLACING 'X' FROM 1 FOR 1)`, `${a}.region || '-' || ${a}.status`, `COALESCE(${a}.status, 'none')`, `${a}.amount::text`),
      pick(
        `to_char(${a}.ordered_at, 'YYYY-MM')`,
        `CASE WHEN ${a}.status = 'paid' THEN 'P' WHEN ${a}.status = 'open' THEN 'O' ELSE 'N' END`,
        `(${a}).status`,
        `lower(${a}.region)`,
      ),
      pick(
        `TRIM(${a}.status)`,
        `SUBSTRING(${a}.status, 2)`,
        `CAST(${a}.ordered_at AS date)::text`,
        `concat(${a}.region, ':', ${a}.id)`,
        `left(${a}.status, 2)`,
      ),
    );
  }
  return fc.oneof(
    pick(`${a}.name`, `${a}.region`, `upper(${a}.name)`, `SUBSTRING(${a}.name FROM 10)`, `TRIM(LEADING 'C' FROM ${a}.name)`),
    pick(
      `OVERLAY(${a}.name PLACING 'K' FROM 1 FOR 1)`,
      `${a}.name || '/' || ${a}.region`,
      `to_char(${a}.created_at, 'YYYY-MM-DD')`,
      `replace(${a}.name, 'Customer', 'C')`,
    ),
  );
}

function tsExpr(t: Table, a: string): fc.Arbitrary<string> {
  const col = t === 'orders' ? 'ordered_at' : 'created_at';
  return pick(`${a}.${col}`, `date_trunc('month', ${a}.${col})`, `${a}.${col} + interval '1 day'`, `CAST(${a}.${col} AS date)`);
}

const anyExpr = (t: Table, a: string) => fc.oneof(numExpr(t, a), textExpr(t, a), tsExpr(t, a));

function atomPred(t: Table, a: string): fc.Arbitrary<string> {
  if (t === 'orders') {
    return fc.oneof(
      fc.constantFrom(10, 100, 500, 900).map((n) => `${a}.amount > ${n}`),
      pick(`${a}.status = 'paid'`, `${a}.status IN ('open', 'refunded')`, `${a}.status LIKE 'p%'`, `${a}.region <> 'AMER'`, `${a}.region = 'APAC'`),
      pick(
        `EXTRACT(YEAR FROM ${a}.ordered_at) = 2024`,
        `${a}.id % 7 = 0`,
        `${a}.customer_id < 50`,
        `${a}.ordered_at < timestamptz '2024-03-01 00:00:00+00'`,
        `(${a}).amount < 100`,
      ),
      pick(`${a}.status IS NOT NULL`, `${a}.amount BETWEEN 100 AND 300`, `${a}.status ~ '^(paid|open)$'`, `${a}.amount::int % 2 = 0`),
    );
  }
  return fc.oneof(
    fc.constantFrom(30, 100, 250).map((n) => `${a}.id < ${n}`),
    pick(
      `${a}.name LIKE 'Customer 1%'`,
      `${a}.region IN ('EMEA', 'AMER')`,
      `${a}.created_at > '2024-02-01'::timestamptz`,
      `${a}.id % 5 = 1`,
      `${a}.region <> 'APAC'`,
    ),
  );
}

function boolPred(t: Table, a: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: atomPred(t, a) },
    { weight: 1, arbitrary: fc.tuple(atomPred(t, a), atomPred(t, a), pick('AND', 'OR')).map(([x, y, op]) => `(${x} ${op} ${y})`) },
    { weight: 1, arbitrary: atomPred(t, a).map((x) => `NOT (${x})`) },
  );
}

/** Subquery predicates: IN, EXISTS (correlated), scalar (correlated and not). */
function subqueryPred(t: Table, a: string): fc.Arbitrary<string> {
  if (t === 'orders') {
    return fc.oneof(
      atomPred('customers', 'c2').map((p) => `${a}.customer_id IN (SELECT c2.id FROM customers c2 WHERE ${p})`),
      atomPred('customers', 'c2').map((p) => `EXISTS (SELECT 1 FROM customers c2 WHERE c2.id = ${a}.customer_id AND ${p})`),
      atomPred('customers', 'c2').map((p) => `NOT EXISTS (SELECT 1 FROM customers c2 WHERE c2.id = ${a}.customer_id AND ${p})`),
      pick(
        `${a}.amount > (SELECT avg(o2.amount) FROM orders o2 WHERE o2.status = ${a}.status)`,
        `${a}.amount > (SELECT avg(o2.amount) FROM orders o2)`,
        `${a}.amount >= ALL (SELECT o2.amount FROM orders o2 WHERE o2.customer_id = ${a}.customer_id)`,
        `${a}.region = ANY (SELECT c2.region FROM customers c2 WHERE c2.id < 10)`,
      ),
    );
  }
  return fc.oneof(
    atomPred('orders', 'o2').map((p) => `${a}.id IN (SELECT o2.customer_id FROM orders o2 WHERE ${p})`),
    atomPred('orders', 'o2').map((p) => `EXISTS (SELECT 1 FROM orders o2 WHERE o2.customer_id = ${a}.id AND ${p})`),
    pick(`(SELECT count(*) FROM orders o2 WHERE o2.customer_id = ${a}.id) > 15`),
  );
}

/** A restriction that keeps answers small, and the row's own predicate. */
function where(t: Table, a: string): fc.Arbitrary<string> {
  const span = t === 'orders' ? fc.constantFrom(40, 300, 1500) : fc.constantFrom(20, 100, 300);
  const max = t === 'orders' ? 5000 : 300;
  return fc
    .tuple(fc.integer({ min: 1, max }), span, fc.option(fc.oneof(boolPred(t, a), subqueryPred(t, a)), { nil: undefined, freq: 4 }))
    .map(([lo, s, p]) => `${a}.id BETWEEN ${lo} AND ${lo + s}${p ? ` AND ${p}` : ''}`);
}

const tableAlias = fc.constantFrom<[Table, string]>(['orders', 'o'], ['orders', 'ord'], ['customers', 'c'], ['customers', 'cu']);
const fromRef = (t: Table, a: string) => pick(`${t} ${a}`, `${t} AS ${a}`, `public.${t} ${a}`);

// ------------------------------------------------------------------------------ statements

const simpleSelect = tableAlias.chain(([t, a]) =>
  fc
    .tuple(
      fc.array(anyExpr(t, a), { minLength: 1, maxLength: 4 }),
      fromRef(t, a),
      where(t, a),
      fc.option(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 5 }))),
    )
    .map(([es, from, w, lim]) => {
      const cols = es.map((e, i) => `${e} AS c${i}`).join(', ');
      return `SELECT ${cols} FROM ${from} WHERE ${w}${lim ? ` ORDER BY ${es[0]}, ${a}.id LIMIT ${lim[0]} OFFSET ${lim[1]}` : ''}`;
    }),
);

const joinSelect = fc
  .tuple(
    numExpr('orders', 'o'),
    textExpr('customers', 'c'),
    pick('JOIN', 'LEFT JOIN', 'INNER JOIN'),
    where('orders', 'o'),
    fc.option(atomPred('customers', 'c')),
  )
  .map(([e1, e2, j, w, p]) => `SELECT o.id, ${e1} AS x, ${e2} AS y FROM orders o ${j} customers c ON c.id = o.customer_id${p ? ` AND ${p}` : ''} WHERE ${w}`);

const commaJoin = fc
  .tuple(textExpr('orders', 'o'), where('customers', 'c'))
  .map(([e, w]) => `SELECT c.name, ${e} AS v FROM customers c, orders o WHERE c.id = o.customer_id AND ${w}`);

const aggregate = tableAlias.chain(([t, a]) =>
  fc.tuple(fc.oneof(textExpr(t, a), numExpr(t, a)), where(t, a), fc.constantFrom(0, 1, 3, 10), fc.boolean()).map(([g, w, h, ordinal]) => {
    const aggs =
      t === 'orders'
        ? `count(*) AS n, sum(${a}.amount) AS total, min(${a}.ordered_at) AS first, max(${a}.status) AS st, string_agg(DISTINCT ${a}.status, ',' ORDER BY ${a}.status) AS sts, avg(${a}.amount)::numeric(12,4) AS mean`
        : `count(*) AS n, min(${a}.name) AS lo, max(${a}.id) AS hi, array_agg(${a}.id ORDER BY ${a}.id) AS ids`;
    return `SELECT ${g} AS k, ${aggs} FROM ${t} ${a} WHERE ${w} GROUP BY ${ordinal ? '1' : g} HAVING count(*) > ${h}`;
  }),
);

const windowed = fc
  .tuple(textExpr('orders', 'o'), where('orders', 'o'), fc.boolean())
  .map(([g, w, named]) =>
    named
      ? `SELECT o.id, row_number() OVER w AS rn, sum(o.amount) OVER w AS running, first_value(o.status) OVER w AS fv FROM orders o WHERE ${w} WINDOW w AS (PARTITION BY ${g} ORDER BY o.id)`
      : `SELECT o.id, row_number() OVER (PARTITION BY ${g} ORDER BY o.id) AS rn, sum(o.amount) OVER (PARTITION BY o.region) AS reg_total, lag(o.status) OVER (ORDER BY o.id) AS prev, rank() OVER (ORDER BY o.amount, o.id) AS rk, ntile(4) OVER (ORDER BY o.id) AS q FROM orders o WHERE ${w}`,
  );

const cte = fc.oneof(
  fc
    .tuple(textExpr('orders', 'a'), where('orders', 'a'))
    .map(([e, w]) => `WITH t AS (SELECT a.id, ${e} AS v FROM orders a WHERE ${w}) SELECT t.v, count(*) AS n FROM t GROUP BY t.v`),
  // A CTE named like a topic: inside its own body `orders` is still the topic.
  where('orders', 'orders').map(
    (w) => `WITH orders AS (SELECT id, amount, status FROM orders WHERE ${w}) SELECT status, sum(amount) AS total, count(*) AS n FROM orders GROUP BY status`,
  ),
  // ...and a CTE named like a topic that is not the topic.
  pick(`WITH customers AS (SELECT 1 AS id, 'x'::text AS name) SELECT * FROM customers`, `WITH orders AS (SELECT 7 AS id) SELECT o.id FROM orders o`),
  fc
    .tuple(where('customers', 'c'), where('orders', 'o'))
    .map(
      ([wc, wo]) =>
        `WITH cs AS (SELECT c.id, c.name FROM customers c WHERE ${wc}), os AS MATERIALIZED (SELECT o.customer_id, o.amount FROM orders o WHERE ${wo}) SELECT cs.name, count(os.amount) AS n, sum(os.amount) AS total FROM cs LEFT JOIN os ON os.customer_id = cs.id GROUP BY cs.name`,
    ),
  where('orders', 'o').map(
    (w) =>
      `WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < 4) SELECT r.n, count(o.id) AS k FROM r LEFT JOIN orders o ON o.id % 5 = r.n AND ${w} GROUP BY r.n`,
  ),
);

const setOp = fc
  .tuple(
    textExpr('orders', 'o'),
    where('orders', 'o'),
    textExpr('customers', 'c'),
    where('customers', 'c'),
    pick('UNION', 'UNION ALL', 'INTERSECT', 'INTERSECT ALL', 'EXCEPT', 'EXCEPT ALL'),
    fc.boolean(),
  )
  .map(([e1, w1, e2, w2, op, flip]) => {
    const l = `SELECT ${e1} AS v FROM orders o WHERE ${w1}`;
    const r = `SELECT ${e2} FROM customers c WHERE ${w2}`;
    return flip ? `${r} ${op} ${l}` : `${l} ${op} ${r}`;
  });

const regionSetOp = fc
  .tuple(pick('UNION', 'INTERSECT', 'EXCEPT', 'UNION ALL', 'EXCEPT ALL'), where('orders', 'o'), where('customers', 'c'))
  .map(([op, w1, w2]) => `(SELECT o.region FROM orders o WHERE ${w1}) ${op} (SELECT c.region FROM customers c WHERE ${w2})`);

const scalarSubquerySelect = fc
  .tuple(where('customers', 'c'), atomPred('orders', 'o'))
  .map(
    ([w, p]) =>
      `SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id AND ${p}) AS top FROM customers c WHERE ${w}`,
  );

const derived = fc.oneof(
  fc
    .tuple(textExpr('orders', 'a'), where('orders', 'a'))
    .map(([e, w]) => `SELECT x.k, count(*) AS n, sum(x.v) AS total FROM (SELECT ${e} AS k, a.amount AS v FROM orders a WHERE ${w}) x GROUP BY x.k`),
  where('customers', 'c').map(
    (w) =>
      `SELECT c.id, l.n, l.total FROM customers c CROSS JOIN LATERAL (SELECT count(*) AS n, sum(o.amount) AS total FROM orders o WHERE o.customer_id = c.id) l WHERE ${w}`,
  ),
  where('orders', 'a').map(
    (w) => `SELECT v.s, count(a.id) AS n FROM (VALUES ('paid'), ('open'), ('nope')) AS v(s) LEFT JOIN orders a ON a.status = v.s AND ${w} GROUP BY v.s`,
  ),
);

const stars = fc.oneof(
  where('orders', 'a').map((w) => `SELECT * FROM orders a WHERE ${w}`),
  where('orders', 'a').map((w) => `SELECT a.*, a.amount * 2 AS dbl FROM orders a WHERE ${w}`),
  fc.integer({ min: 1, max: 9 }).map((n) => `TABLE orders ORDER BY id LIMIT ${n}`),
  where('orders', 'a').map((w) => `SELECT DISTINCT ON (a.status) a.status, a.id, a.amount FROM orders a WHERE ${w} ORDER BY a.status, a.id`),
  where('customers', 'c').map((w) => `SELECT DISTINCT c.region FROM customers c WHERE ${w}`),
  where('orders', 'o').map(
    (w) => `SELECT count(*) AS n, count(DISTINCT o.customer_id) AS nc, sum(o.amount) FILTER (WHERE o.status = 'paid') AS paid FROM orders o WHERE ${w}`,
  ),
);

const moreForms = fc.oneof(
  // grouping sets, ordered-set aggregates, frames, FETCH ... WITH TIES
  where('orders', 'o').map(
    (w) => `SELECT o.region, o.status, count(*) AS n, GROUPING(o.region, o.status) AS g FROM orders o WHERE ${w} GROUP BY ROLLUP (o.region, o.status)`,
  ),
  where('orders', 'o').map((w) => `SELECT o.status, count(*) AS n FROM orders o WHERE ${w} GROUP BY CUBE (o.status)`),
  where('orders', 'o').map(
    (w) => `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY o.amount) AS med, mode() WITHIN GROUP (ORDER BY o.status) AS top FROM orders o WHERE ${w}`,
  ),
  where('orders', 'o').map(
    (w) =>
      `SELECT o.id, sum(o.amount) OVER (ORDER BY o.id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s3, dense_rank() OVER (PARTITION BY o.region ORDER BY o.status) AS dr FROM orders o WHERE ${w}`,
  ),
  where('orders', 'o').map((w) => `SELECT o.status, o.id FROM orders o WHERE ${w} ORDER BY o.status FETCH FIRST 2 ROWS WITH TIES`),
  // joins by USING and NATURAL, counted (the common columns are id and region)
  where('orders', 'o').map(
    (w) =>
      `SELECT count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c USING (region) WHERE ${w.replace(/^o\.id BETWEEN (\d+) AND \d+/, 'o.id BETWEEN $1 AND $1 + 5')}`,
  ),
  where('orders', 'o').map((w) => `SELECT count(*) AS n FROM orders o NATURAL JOIN customers c WHERE ${w}`),
  // arrays, json, generate_series, IS DISTINCT FROM, BETWEEN SYMMETRIC
  where('orders', 'o').map(
    (w) =>
      `SELECT ARRAY[o.id, o.customer_id] AS ids, json_build_object('id', o.id, 'st', o.status)::text AS j FROM orders o WHERE ${w} AND o.status = ANY (ARRAY['paid', 'open'])`,
  ),
  where('orders', 'o').map((w) => `SELECT g, count(o.id) AS n FROM generate_series(1, 5) AS g LEFT JOIN orders o ON o.id % 5 = g - 1 AND ${w} GROUP BY g`),
  where('orders', 'o').map((w) => `SELECT o.id FROM orders o WHERE ${w} AND o.region IS DISTINCT FROM 'AMER' AND o.amount BETWEEN SYMMETRIC 900 AND 100`),
  where('orders', 'o').map((w) => `SELECT o.id FROM orders o WHERE ${w} AND o.status IN (VALUES ('paid'), ('shipped'))`),
  // quoting, comments and string escapes (standard_conforming_strings on)
  where('orders', 'o').map((w) => `SELECT "o"."id", "o"."status" /* a comment */ FROM "orders" AS "o" -- trailing\nWHERE ${w}`),
  where('orders', 'o').map(
    (w) => `SELECT o.id, E'it\\'s' AS e, 'back\\' AS b, U&'\\0041' AS u, $$dollar 'q'$$ AS d FROM orders o WHERE ${w} AND o.status <> 'x\\'`,
  ),
  where('orders', 'orders').map((w) => `SELECT (orders).amount, (orders.*).status FROM orders WHERE ${w}`),
  where('customers', 'c').map(
    (w) => `SELECT c.id, DATE '2024-02-01' - CAST(c.created_at AS date) AS days, c.created_at AT TIME ZONE 'UTC' AS utc FROM customers c WHERE ${w}`,
  ),
);

const noTopic = pick(
  `SELECT 1 + 1 AS two`,
  `SELECT EXTRACT(YEAR FROM DATE '2024-05-01') AS y, SUBSTRING('abcdef' FROM 2 FOR 3) AS s, POSITION('c' IN 'abc') AS p`,
  `SELECT TRIM(BOTH 'x' FROM 'xxaxx') AS t, OVERLAY('abcdef' PLACING 'ZZ' FROM 2 FOR 2) AS o, upper('a') AS u`,
  `VALUES (1, 'a'), (2, 'b')`,
  `SELECT CAST('12.5' AS numeric) * 2 AS n, '2024-01-01'::date + 3 AS d, COALESCE(NULL, 'z') AS z`,
);

export const answerable: fc.Arbitrary<OracleStatement> = fc
  .oneof(
    { weight: 3, arbitrary: simpleSelect },
    { weight: 2, arbitrary: joinSelect },
    { weight: 1, arbitrary: commaJoin },
    { weight: 3, arbitrary: aggregate },
    { weight: 2, arbitrary: windowed },
    { weight: 2, arbitrary: cte },
    { weight: 2, arbitrary: setOp },
    { weight: 1, arbitrary: regionSetOp },
    { weight: 1, arbitrary: scalarSubquerySelect },
    { weight: 2, arbitrary: derived },
    { weight: 2, arbitrary: stars },
    { weight: 3, arbitrary: moreForms },
    { weight: 1, arbitrary: noTopic },
  )
  .map((sql) => ({ cls: 'answerable' as const, sql }));

// --------------------------------------------------------------------------------- gray

export const gray: fc.Arbitrary<OracleStatement> = fc
  .oneof(
    where('orders', 'o').map((w) => `SELECT o.id, (o.status).upper AS s FROM orders o WHERE ${w}`),
    where('orders', 'o').map((w) => `SELECT o FROM orders o WHERE ${w}`),
    where('orders', 'o').map((w) => `SELECT (o.*)::text AS r FROM orders o WHERE ${w}`),
    where('orders', 'o').map((w) => `SELECT (o.amount).abs AS a FROM orders o WHERE ${w}`),
    where('customers', 'c').map((w) => `SELECT c.id, ROW(c.id, c.name)::text AS r FROM customers c WHERE ${w}`),
    where('customers', 'c').map((w) => `SELECT (c).id, (c).name FROM customers c WHERE ${w}`),
    // TABLESAMPLE reads a base relation's blocks: Gatehouse may refuse it on a topic.
    where('orders', 'o').map((w) => `SELECT count(*) FROM orders o TABLESAMPLE SYSTEM (50) REPEATABLE (7) WHERE ${w}`),
    where('orders', 'o').map((w) => `SELECT o.id, o.status::varchar(3) AS s, o.amount::float8 AS f FROM orders o WHERE ${w}`),
  )
  .map((sql) => ({ cls: 'gray' as const, sql }));

// ------------------------------------------------------------------------------ hostile

const READS_EMPLOYEES = 'SELECT array_to_tsvector(array_agg(ssn)) FROM employees';

/** Hostile expressions usable in a select list or a comparison, with alias `c` of customers in scope where noted. */
export const hostileScalars: string[] = [
  `('${READS_EMPLOYEES}'::text).ts_stat`,
  `(('${READS_EMPLOYEES}')::text).ts_stat`,
  `ts_stat('${READS_EMPLOYEES}')`,
  `pg_catalog.ts_stat('${READS_EMPLOYEES}')`,
  `"ts_stat"('${READS_EMPLOYEES}')`,
  `query_to_xml('SELECT name, ssn FROM employees', true, true, '')`,
  `(NULL::employees).ssn`,
  `(NULL::public.employees).name`,
  `(NULL::customers).email`,
  `(NULL::public.customers).email`,
  `ROW(1, 'n', 'e', 1.0, 's')::employees`,
  `'employees'::regclass`,
  `'public.employees'::regclass::oid`,
  `'customers'::regclass::text`,
  `'ts_stat'::regproc`,
  `'employees'::regtype`,
  `CAST('employees' AS regclass)`,
  `regclass 'employees'`,
  `to_regclass('employees')`,
  `('employees'::text).to_regclass`,
  `(SELECT max(salary) FROM employees)`,
  `(SELECT e.ssn FROM public.employees e LIMIT 1)`,
  `(SELECT max(c9.email) FROM customers c9)`,
  `pg_read_file('/etc/hostname')`,
  `('/etc/hostname'::text).pg_read_file`,
  `pg_ls_dir('.')`,
  `('.'::text).pg_ls_dir`,
  `current_setting('data_directory')`,
  `set_config('application_name', 'x', false)`,
  `pg_sleep(0)`,
  `(0::float8).pg_sleep`,
  `version()`,
  `pg_backend_pid()`,
  `inet_server_addr()`,
  `pg_cancel_backend(-1)`,
  `lo_import('/etc/hostname')`,
  `txid_current()`,
  `has_table_privilege('employees', 'SELECT')`,
  `pg_relation_size('employees')`,
];

const hostileWithCustomers: string[] = [`c.email`, `(c).email`, `(c.*).email`, `upper(c.email)`, `c.email::text`, `COALESCE(c.email, '')`];

/** Fixed hostile statements: each must be refused for every person, whatever the sample. */
export const fixedHostile: string[] = [
  `SELECT ('SELECT 1'::text).ts_stat`,
  `SELECT (NULL::employees).*`,
  `SELECT (NULL::public.customers).*`,
  `SELECT (NULL::customers).*`,
  `SELECT * FROM employees`,
  `SELECT name, ssn, salary FROM public.employees`,
  `SELECT email FROM customers`,
  `SELECT c.email FROM customers c`,
  `SELECT (c).email FROM customers c`,
  `SELECT id FROM customers WHERE email LIKE 'customer1%'`,
  `SELECT id FROM customers c ORDER BY c.email LIMIT 3`,
  `SELECT 'employees'::regclass`,
  `SELECT 'public.employees'::regclass::oid`,
  `SELECT ('${READS_EMPLOYEES}'::text).ts_stat`,
  `SELECT * FROM ts_stat('${READS_EMPLOYEES}')`,
  `SELECT query_to_xml('SELECT * FROM employees', true, true, '')`,
  `SELECT (0::float8).pg_sleep`,
  `SELECT ('.'::text).pg_ls_dir`,
  `WITH orders AS (SELECT id, salary AS amount FROM employees) SELECT sum(amount) FROM orders`,
  `SELECT o.id FROM orders o WHERE o.customer_id IN (SELECT id FROM employees)`,
  `SELECT o.id FROM orders o JOIN employees e ON e.id = o.id`,
  `SELECT status FROM orders UNION ALL SELECT ssn FROM employees`,
  `SELECT name FROM customers UNION SELECT email FROM customers`,
  `SELECT x.email FROM (SELECT email FROM customers) x`,
  `SELECT count(*) FROM customers c WHERE c.email IS NOT NULL`,
  `SELECT ROW(1, 'n', 'e', 1.0, 's')::employees`,
  `SELECT NULL::employees`,
  `SELECT CAST(NULL AS public.employees)`,
  `SELECT (NULL::orders).*, 1 FROM orders LIMIT 1`,
  `TABLE employees`,
  `SELECT * FROM orders o, LATERAL ts_stat('${READS_EMPLOYEES}') t LIMIT 1`,
];

const hostileGenerated = fc.oneof(
  // in the select list of a topic query
  fc
    .tuple(fc.constantFrom(...hostileScalars), tableAlias)
    .chain(([h, [t, a]]) => where(t, a).map((w) => `SELECT ${a}.id, ${h} AS h FROM ${t} ${a} WHERE ${w}`)),
  // in a WHERE
  fc.tuple(fc.constantFrom(...hostileScalars), where('orders', 'o')).map(([h, w]) => `SELECT o.id FROM orders o WHERE ${w} AND (${h})::text IS NOT NULL`),
  // customers' hidden field, in every clause
  fc.tuple(fc.constantFrom(...hostileWithCustomers), where('customers', 'c'), pick('select', 'where', 'order', 'group', 'having', 'join')).map(([h, w, at]) => {
    switch (at) {
      case 'select':
        return `SELECT c.id, ${h} AS h FROM customers c WHERE ${w}`;
      case 'where':
        return `SELECT c.id FROM customers c WHERE ${w} AND ${h} LIKE '%1%'`;
      case 'order':
        return `SELECT c.id FROM customers c WHERE ${w} ORDER BY ${h}, c.id LIMIT 5`;
      case 'group':
        return `SELECT count(*) FROM customers c WHERE ${w} GROUP BY ${h}`;
      case 'having':
        return `SELECT c.region FROM customers c WHERE ${w} GROUP BY c.region HAVING max(${h}) > ''`;
      default:
        return `SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id AND ${h} <> '' WHERE o.id < 50`;
    }
  }),
  // non-topic relations in every position
  fc
    .tuple(where('orders', 'o'), pick('employees', 'public.employees', '"employees"', 'public."employees"'))
    .chain(([w, rel]) =>
      pick(
        `SELECT o.id FROM orders o WHERE ${w} AND o.id IN (SELECT id FROM ${rel})`,
        `SELECT o.id, e.ssn FROM orders o JOIN ${rel} e ON e.id = o.id WHERE ${w}`,
        `WITH x AS (SELECT ssn FROM ${rel}) SELECT o.id, x.ssn FROM orders o, x WHERE ${w}`,
        `SELECT o.status FROM orders o WHERE ${w} UNION SELECT e.ssn FROM ${rel} e`,
        `SELECT o.id FROM orders o WHERE ${w} AND EXISTS (SELECT 1 FROM ${rel} e WHERE e.id = o.id)`,
        `SELECT o.id, (SELECT e.salary FROM ${rel} e WHERE e.id = o.id) AS s FROM orders o WHERE ${w}`,
        `WITH orders AS (SELECT id, salary AS amount FROM ${rel}) SELECT sum(amount) FROM orders`,
      ),
    ),
);

export const hostile: fc.Arbitrary<OracleStatement> = hostileGenerated.map((sql) => ({ cls: 'hostile' as const, sql }));
