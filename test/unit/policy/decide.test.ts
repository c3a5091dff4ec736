import { describe, expect, it } from 'vitest';
import type { Decision, PlannedStatement } from '../../../src/policy/decision.ts';
import { decide } from '../../../src/policy/decide.ts';
import { alice, bob, carol, ctxFor, erin, frank, grace, typedTopics } from './demo-context.ts';

function refused(d: Decision): { sqlstate: string; message: string; rule: string; position?: number } {
  if (d.outcome !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(d)}`);
  return { sqlstate: d.error.sqlstate, message: d.error.message, rule: d.rule, position: d.error.position };
}
function ran(d: Decision): PlannedStatement[] {
  if (d.outcome !== 'run') throw new Error(`expected run, got ${JSON.stringify(d)}`);
  return d.statements;
}
function sqlOf(d: Decision, i = 0): string {
  const s = ran(d)[i];
  if (s.action !== 'forward') throw new Error('not forwarded');
  return s.sql;
}

describe('query_topics: topic rewrite', () => {
  it("puts bob's filter inside an OFFSET 0 barrier, keeping his alias and columns", async () => {
    const d = await decide(bob, 'SELECT o.id, o.amount FROM orders o WHERE o.amount > 10');
    expect(d.outcome === 'run' && d.rule).toBe('topic_rewrite');
    expect(d.outcome === 'run' && d.topics).toEqual(['orders']);
    expect(sqlOf(d)).toMatch(
      /^SELECT o\.id, o\.amount FROM \( SELECT id, customer_id, region, amount, status, ordered_at FROM public\.orders WHERE region = 'EMEA' OFFSET 0 \) AS o WHERE o\.amount > 10$/,
    );
    const s = ran(d)[0];
    expect(s.action === 'forward' && s.returnsRows && s.kind).toBe('select');
  });
  it('uses IN for several values and no filter for ALL', async () => {
    expect(sqlOf(await decide(grace, 'SELECT * FROM orders'))).toContain("WHERE region IN ('EMEA', 'APAC') OFFSET 0");
    const e = sqlOf(await decide(erin, 'SELECT * FROM orders'));
    expect(e).toContain('FROM public.orders OFFSET 0');
    expect(e).not.toContain('WHERE');
  });
  it('refuses a user without the attribute, naming it', async () => {
    const r = refused(await decide(frank, 'SELECT * FROM orders'));
    expect(r).toMatchObject({ sqlstate: '42501', rule: 'topic.missing_attribute' });
    expect(r.message).toBe('topic orders needs user attribute "region", which frank@acme.example does not have; ask an org admin to set it');
  });
  it('keeps attribute values as literals, quotes escaped', async () => {
    const odd = ctxFor('x@acme.example', 'query_topics', { region: ["EM'EA"] });
    expect(sqlOf(await decide(odd, 'SELECT 1 FROM orders'))).toContain("region = 'EM''EA'");
  });
  it('public.orders, "orders" and topics.orders name the topic', async () => {
    for (const q of ['SELECT * FROM public.orders', 'SELECT * FROM "orders"', 'SELECT * FROM topics.orders', 'TABLE orders']) {
      expect(sqlOf(await decide(bob, q)), q).toContain("FROM public.orders WHERE region = 'EMEA' OFFSET 0 ) AS orders");
    }
  });
  it('drops the schema of schema.table.column references', async () => {
    expect(sqlOf(await decide(bob, 'SELECT public.orders.id FROM public.orders'))).toMatch(/^SELECT orders\.id FROM/);
  });
  it('CTE named like a topic shadows it; a topic inside a CTE is rewritten', async () => {
    const s = sqlOf(await decide(bob, 'WITH customers AS (SELECT * FROM orders) SELECT * FROM customers'));
    expect(s).toContain("FROM public.orders WHERE region = 'EMEA'");
    expect(s).not.toContain('public.customers');
  });
  it('refuses non-topics naming the relation and the topics, sorted', async () => {
    const r = refused(await decide(bob, 'SELECT * FROM employees'));
    expect(r).toMatchObject({ sqlstate: '42501', rule: 'query_topics.non_topic_relation' });
    expect(r.message).toBe('relation "employees" is not a topic on connection warehouse; query_topics users may only read topics: customers, orders');
    expect(refused(await decide(bob, 'SELECT * FROM hr.pg_class')).message).toContain('relation "hr.pg_class"');
  });
  it('refuses a column that is not a field, naming the topic and its fields', async () => {
    const r = refused(await decide(bob, 'SELECT id, email FROM customers'));
    expect(r.rule).toBe('query_topics.non_topic_field');
    expect(r.message).toBe('column "email" is not a field of topic customers; its fields are: id, name, region, created_at');
  });
  it('does not mistake output aliases or outer columns for fields', async () => {
    expect((await decide(bob, 'SELECT amount * 2 AS doubled FROM orders ORDER BY doubled')).outcome).toBe('run');
    expect((await decide(bob, 'SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = customer_id)')).outcome).toBe('run');
  });
  it('one refusal refuses the whole text', async () => {
    expect(refused(await decide(bob, 'SELECT * FROM orders; SELECT * FROM employees')).rule).toBe('query_topics.non_topic_relation');
  });
});

describe('query_topics: statement kinds, functions, settings', () => {
  it.each([
    ['INSERT INTO orders VALUES (1)', 'INSERT'],
    ['DELETE FROM orders', 'DELETE'],
    ['LISTEN x', 'LISTEN'],
    ["NOTIFY x, 'y'", 'NOTIFY'],
    ['CALL p()', 'CALL'],
    ['CREATE TABLE t (a int)', 'CREATE TABLE'],
    ['SELECT * INTO t FROM orders', 'SELECT INTO'],
    ['SELECT * FROM orders FOR SHARE', 'SELECT FOR UPDATE/SHARE'],
    ['COPY orders FROM STDIN', 'COPY FROM'],
    ['BEGIN READ WRITE', 'BEGIN READ WRITE'],
  ])('refuses %s naming %s', async (sql, name) => {
    const r = refused(await decide(bob, sql));
    expect(r.sqlstate).toBe('42501');
    expect(r.message.startsWith(`${name} is not permitted for query_topics users on connection warehouse; query a topic: customers, orders`)).toBe(true);
  });
  it('refuses DO and CREATE FUNCTION', async () => {
    expect(refused(await decide(bob, 'DO $$ BEGIN END $$')).sqlstate).toBe('42501');
    expect(refused(await decide(bob, "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql")).sqlstate).toBe('42501');
  });
  it('allows listed functions, pg_catalog-qualified too, and refuses others', async () => {
    expect((await decide(bob, "SELECT date_trunc('month', ordered_at), pg_catalog.sum(amount) FROM orders GROUP BY 1")).outcome).toBe('run');
    expect(refused(await decide(bob, 'SELECT lower(version()) FROM orders')).rule).toBe('query_topics.function_not_allowed');
    expect(refused(await decide(bob, 'SELECT hr.lower(status) FROM orders')).rule).toBe('query_topics.function_not_allowed');
    expect(refused(await decide(bob, "SELECT * FROM ts_stat('x')"))).toMatchObject({ rule: 'denied_function', sqlstate: '42501' });
  });
  it('current_setting only of allowlisted settings', async () => {
    expect((await decide(bob, "SELECT current_setting('TimeZone')")).outcome).toBe('run');
    expect(refused(await decide(bob, "SELECT current_setting('data_directory')")).rule).toBe('query_topics.setting_not_allowed');
  });
  it('session statements are sent as Gatehouse writes them from the AST', async () => {
    const d = await decide(bob, "BEGIN; SET TimeZone = 'UTC'; SHOW DateStyle; RESET statement_timeout; SELECT 1; COMMIT; DISCARD ALL");
    const st = ran(d);
    expect(st.map((s) => s.kind)).toEqual(['transaction', 'set', 'show', 'reset', 'select', 'transaction', 'discard']);
    expect(st.map((s) => (s.action === 'forward' ? s.sql : ''))).toEqual([
      'BEGIN',
      "SET timezone TO 'UTC'",
      'SHOW datestyle',
      'RESET statement_timeout',
      'SELECT 1',
      'COMMIT',
      'DISCARD ALL',
    ]);
  });
  it('refuses SET search_path, role and read-only settings', async () => {
    for (const q of [
      'SET search_path = public',
      'SET ROLE admin',
      'SET default_transaction_read_only = off',
      'RESET transaction_read_only',
      'SET SESSION AUTHORIZATION x',
    ]) {
      expect(refused(await decide(bob, q)).rule, q).toBe('query_topics.setting_not_allowed');
    }
    expect(refused(await decide(bob, 'SET search_path = hr')).message).toContain('search_path is fixed by Gatehouse');
  });
  it('EXPLAIN (ANALYZE too) is answered with the rewritten SQL', async () => {
    const st = ran(await decide(bob, 'EXPLAIN ANALYZE SELECT * FROM orders'))[0];
    expect(st.action).toBe('answer');
    if (st.action !== 'answer') return;
    expect(st).toMatchObject({ column: 'QUERY PLAN', tag: 'EXPLAIN', kind: 'explain' });
    expect(st.rows.join('\n')).toContain("region = 'EMEA'");
    expect(st.rows.join('\n')).toContain('OFFSET 0');
  });
  it('COPY (query) TO STDOUT and COPY topic TO STDOUT export governed rows', async () => {
    const st = ran(await decide(bob, "COPY (SELECT id, amount FROM orders) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';')"))[0];
    expect(st.action === 'forward' && st.copyOut).toMatchObject({ format: 'csv', header: true, delimiter: ';' });
    if (st.action !== 'forward') return;
    expect(st.kind).toBe('copy_out');
    expect(st.copyOut!.query).toContain("region = 'EMEA'");
    expect(st.sql).toMatch(/^COPY \(SELECT id, amount FROM .*\) TO STDOUT WITH \(FORMAT csv, HEADER true, DELIMITER ';'\)$/);
    expect(sqlOf(await decide(bob, 'COPY customers (id, name) TO STDOUT'))).toMatch(
      /^COPY \(SELECT id, name FROM \( SELECT id, name, region, created_at FROM public\.customers WHERE region = 'EMEA'/,
    );
    // Binary COPY of the rewritten query: the format is only the encoding of the governed rows.
    expect(sqlOf(await decide(bob, 'COPY (SELECT id FROM orders) TO STDOUT (FORMAT binary)'))).toMatch(
      /^COPY \(SELECT id FROM \( SELECT .* WHERE region = 'EMEA' OFFSET 0 \) AS orders\) TO STDOUT WITH \(FORMAT binary\)$/,
    );
    expect(refused(await decide(bob, 'COPY (SELECT 1) TO STDOUT (FORMAT parquet)')).sqlstate).toBe('0A000');
  });
});

describe('leakproof pushdown', () => {
  const typed = ctxFor('bob@acme.example', 'query_topics', { region: ['EMEA'] }, { topics: typedTopics });
  it('copies int/text comparisons with literals inside the barrier, never numeric ones', async () => {
    const s = sqlOf(await decide(typed, "SELECT * FROM orders o WHERE o.id = 5 AND amount > 10 AND 'x' = o.status AND o.id > 2.5"));
    const inner = s.slice(s.indexOf('FROM public.orders'), s.indexOf('OFFSET 0'));
    expect(inner).toContain('id = 5');
    expect(inner).toContain("'x' = status");
    expect(inner).not.toContain('amount');
    expect(inner).not.toContain('2.5');
    // Still outside as written.
    expect(s.slice(s.indexOf('OFFSET 0'))).toContain('o.id = 5 AND amount > 10');
  });
  it('never pushes without column types, nor under OR', async () => {
    expect(sqlOf(await decide(bob, 'SELECT * FROM orders WHERE id = 5'))).toContain("WHERE region = 'EMEA' OFFSET 0");
    expect(sqlOf(await decide(typed, "SELECT * FROM orders WHERE id = 5 OR status ~ 'x'"))).toContain("WHERE region = 'EMEA' OFFSET 0");
  });
});

describe('queriers and connection admins', () => {
  it('forward their own text, comments and all', async () => {
    const d = await decide(carol, 'select * from EMPLOYEES /* raw */ where salary > 0;  select 1');
    expect(d.outcome === 'run' && d.rule).toBe('raw_sql');
    expect(sqlOf(d, 0)).toBe('select * from EMPLOYEES /* raw */ where salary > 0');
    expect(sqlOf(d, 1)).toBe('select 1');
  });
  it.each([
    ['INSERT INTO employees VALUES (1)', 'INSERT'],
    ['UPDATE employees SET salary = 0', 'UPDATE'],
    ['CREATE TABLE t (a int)', 'CREATE TABLE'],
    ['SELECT * INTO t FROM employees', 'SELECT INTO'],
    ['CREATE TABLE t AS SELECT 1', 'CREATE TABLE AS'],
    ['COPY employees FROM STDIN', 'COPY FROM'],
    ['GRANT SELECT ON employees TO public', 'GRANT'],
    ['VACUUM employees', 'VACUUM'],
    ['SET TRANSACTION READ WRITE', 'SET TRANSACTION READ WRITE'],
    ['BEGIN READ WRITE', 'BEGIN READ WRITE'],
    ['SET default_transaction_read_only = off', 'SET default_transaction_read_only'],
    ['RESET transaction_read_only', 'RESET transaction_read_only'],
    ['SET ROLE postgres', 'SET role'],
    ['EXPLAIN ANALYZE DELETE FROM employees', 'EXPLAIN ANALYZE DELETE'],
    ['WITH d AS (DELETE FROM employees RETURNING *) SELECT * FROM d', 'SELECT'],
  ])('refuse writes: %s', async (sql, name) => {
    const r = refused(await decide(carol, sql));
    expect(r).toMatchObject({ sqlstate: '42501', rule: 'read_only' });
    expect(r.message).toBe(`writes are not permitted on connection warehouse (it does not set allow_writes): ${name} refused`);
  });
  it('allow writes where the connection does', async () => {
    const w = ctxFor('carol@acme.example', 'querier', {}, { allowWrites: true });
    const s = ran(await decide(w, 'INSERT INTO employees VALUES (1)'))[0];
    expect(s.kind).toBe('write');
    expect(s.action === 'forward' && s.returnsRows).toBe(false);
  });
  it('permit reads, EXPLAIN, DISCARD ALL, SET search_path', async () => {
    for (const q of ['EXPLAIN SELECT * FROM employees', 'EXPLAIN ANALYZE SELECT 1', 'DISCARD ALL', 'SET search_path = hr', 'SHOW ALL', 'BEGIN READ ONLY']) {
      expect((await decide(carol, q)).outcome, q).toBe('run');
    }
  });
  it('refuse the denylist at every level', async () => {
    for (const ctx of [carol, alice, ctxFor('x', 'connection_admin', {}, { allowWrites: true })]) {
      for (const q of [
        "SELECT query_to_xml('select 1', true, true, '')",
        "SELECT public.dblink('x', 'y')",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT set_config('a.b', 'c', false)",
        'SELECT pg_terminate_backend(1)',
        'SELECT pg_cancel_backend(1)',
      ]) {
        expect(refused(await decide(ctx, q)), q).toMatchObject({ rule: 'denied_function', sqlstate: '42501' });
      }
      for (const q of [
        'DO $$ BEGIN END $$',
        "COPY employees TO PROGRAM 'x'",
        "COPY employees TO '/tmp/x'",
        "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
      ]) {
        expect(refused(await decide(ctx, q)), q).toMatchObject({ rule: 'denied_statement', sqlstate: '42501' });
      }
      expect(refused(await decide(ctx, 'SELECT * FROM pg_stats')).rule).toBe('denied_relation');
      expect(refused(await decide(ctx, 'SELECT * FROM pg_catalog.pg_statistic')).rule).toBe('denied_relation');
    }
  });
  it('read topics under the topics schema, governed by their own attributes', async () => {
    expect(refused(await decide(alice, 'SELECT * FROM topics.orders')).message).toContain('needs user attribute "region", which alice@acme.example');
    const c = ctxFor('carol@acme.example', 'querier', { region: ['APAC'] });
    const d = await decide(c, 'SELECT o.id, e.name FROM topics . "orders" o JOIN employees e ON e.id = o.id');
    expect(d.outcome === 'run' && d.topics).toEqual(['orders']);
    expect(sqlOf(d)).toBe(
      "SELECT o.id, e.name FROM (SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders WHERE region = 'APAC' OFFSET 0) o JOIN employees e ON e.id = o.id",
    );
    expect(sqlOf(await decide(c, 'select * from topics.customers'))).toBe(
      "select * from (SELECT id, name, region, created_at FROM public.customers WHERE region = 'APAC' OFFSET 0) AS customers",
    );
    expect(refused(await decide(c, 'SELECT email FROM topics.customers')).rule).toBe('query_topics.non_topic_field');
    expect(refused(await decide(c, 'SELECT * FROM topics.nope')).rule).toBe('topics_schema.unknown_topic');
  });
  it('COPY out carries its options', async () => {
    const s = ran(await decide(carol, "COPY employees TO STDOUT WITH (FORMAT csv, HEADER false, DELIMITER '|', FORCE_QUOTE *)"))[0];
    expect(s.action === 'forward' && s.copyOut).toEqual({ query: 'SELECT * FROM employees', format: 'csv', header: false, delimiter: '|' });
  });
});

describe('parse, empty, levels', () => {
  it('parse errors are 42601 with the 1-based position', async () => {
    const r = refused(await decide(bob, "SELECT * FROM orders WHERE status = 'x"));
    expect(r).toMatchObject({ sqlstate: '42601', rule: 'parse_error', position: 37 });
    expect(r.message).toContain('unterminated quoted string');
    expect(refused(await decide(carol, 'SELEC 1')).position).toBe(1);
  });
  it('empty text and comments only are empty', async () => {
    expect(await decide(bob, '')).toEqual({ outcome: 'empty' });
    expect(await decide(carol, ' -- nothing\n/* at all */ ')).toEqual({ outcome: 'empty' });
  });
  it('no_access never gets through', async () => {
    expect(refused(await decide(ctxFor('dave@acme.example', 'no_access', {}), 'SELECT 1')).sqlstate).toBe('42501');
  });
});
