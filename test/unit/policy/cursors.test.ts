// Issue 16: SQL cursors (DECLARE/FETCH/MOVE/CLOSE) and SQL prepared statements
// (PREPARE/EXECUTE/DEALLOCATE) for Query Topics users, decided like the same SELECT and
// written from the AST, with the name facts the pipeline routes by. The texts are the ones
// drivers send: psycopg 3 named cursors, SQLAlchemy stream_results on psycopg2, psqlODBC
// UseDeclareFetch.
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/policy/decide.ts';
import type { Decision, PlannedStatement } from '../../../src/policy/decision.ts';
import { alice, bob, carol } from './demo-context.ts';

function refused(d: Decision): {
  sqlstate: string;
  message: string;
  rule: string;
} {
  if (d.outcome !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(d)}`);
  return { sqlstate: d.error.sqlstate, message: d.error.message, rule: d.rule };
}
function only(d: Decision): PlannedStatement {
  if (d.outcome !== 'run' || d.statements.length !== 1) throw new Error(`expected one statement, got ${JSON.stringify(d)}`);
  return d.statements[0];
}
function forwarded(d: Decision): Extract<PlannedStatement, { action: 'forward' }> {
  const s = only(d);
  if (s.action !== 'forward') throw new Error(`expected forward, got ${JSON.stringify(s)}`);
  return s;
}

const BOB_ORDERS = "( SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders WHERE region = 'EMEA' OFFSET 0 ) AS orders";
const BOB_CUSTOMERS = "( SELECT id, name, region, created_at FROM public.customers WHERE region = 'EMEA' OFFSET 0 ) AS customers";

describe('DECLARE CURSOR for query_topics users', () => {
  it.each([
    // psycopg 3.1 (ServerCursor._make_declare_statement), newer psycopg 3 and SQLAlchemy on psycopg2
    [
      'DECLARE "my_cursor" CURSOR FOR SELECT id, amount FROM orders WHERE amount > 10',
      `DECLARE my_cursor CURSOR FOR SELECT id, amount FROM ${BOB_ORDERS} WHERE amount > 10`,
      'my_cursor',
    ],
    ['DECLARE "c_7f2a_1" CURSOR WITHOUT HOLD FOR SELECT * FROM orders', `DECLARE c_7f2a_1 CURSOR FOR SELECT * FROM ${BOB_ORDERS}`, 'c_7f2a_1'],
    [
      'DECLARE "named" SCROLL CURSOR WITH HOLD FOR SELECT name FROM customers',
      `DECLARE named SCROLL CURSOR WITH HOLD FOR SELECT name FROM ${BOB_CUSTOMERS}`,
      'named',
    ],
    ['DECLARE "named" NO SCROLL CURSOR FOR SELECT name FROM customers', `DECLARE named NO SCROLL CURSOR FOR SELECT name FROM ${BOB_CUSTOMERS}`, 'named'],
    // psqlODBC UseDeclareFetch
    [
      'declare "SQL_CUR0x55d5c0a8e2b0" cursor with hold for select * from customers',
      `DECLARE "SQL_CUR0x55d5c0a8e2b0" CURSOR WITH HOLD FOR SELECT * FROM ${BOB_CUSTOMERS}`,
      'SQL_CUR0x55d5c0a8e2b0',
    ],
    ['DECLARE c BINARY INSENSITIVE CURSOR FOR SELECT count(*) FROM orders', `DECLARE c BINARY INSENSITIVE CURSOR FOR SELECT count(*) FROM ${BOB_ORDERS}`, 'c'],
  ])('%s: the query rewritten like the SELECT, written from the AST', async (sql, written, name) => {
    const s = forwarded(await decide(bob, sql));
    expect(s.sql).toBe(written);
    expect(s.topics.length).toBeGreaterThan(0);
    expect(s.names).toEqual({ space: 'cursor', creates: name });
  });
  it('a cursor over a non-topic is refused like the SELECT, with the same message', async () => {
    const select = refused(await decide(bob, 'SELECT * FROM employees'));
    const cursor = refused(await decide(bob, 'DECLARE "c_1" CURSOR WITHOUT HOLD FOR SELECT * FROM employees'));
    expect(cursor).toEqual(select);
    expect(cursor.sqlstate).toBe('42501');
    expect(refused(await decide(bob, 'DECLARE c CURSOR FOR SELECT ssn FROM orders')).message).toBe(
      refused(await decide(bob, 'SELECT ssn FROM orders')).message,
    );
  });
  it('a cursor over a catalog query runs on the topic catalog, held (the catalog has no client transaction)', async () => {
    const s = only(await decide(bob, 'declare "SQL_CUR0x1" cursor for SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind = \'r\''));
    expect(s).toEqual({
      action: 'catalog',
      kind: 'other',
      statement: {
        sql: 'DECLARE "SQL_CUR0x1" CURSOR WITH HOLD FOR SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind = \'r\'',
        kind: 'other',
        returnsRows: false,
      },
      names: { space: 'cursor', creates: 'SQL_CUR0x1' },
    });
  });
  it('finds the query after the right FOR (a FOR in the name or a comment cannot mislead it)', async () => {
    const s = only(await decide(bob, 'DECLARE "for" CURSOR /* for x */ FOR SELECT relname FROM pg_class WHERE relname = \'for\''));
    expect(s.action === 'catalog' && s.statement.sql).toBe('DECLARE "for" CURSOR WITH HOLD FOR SELECT relname FROM pg_class WHERE relname = \'for\'');
  });
  it('looks at a few FORs only: a name full of them is refused, not parsed over and over', async () => {
    const r = refused(await decide(bob, `DECLARE "${'for '.repeat(20)}" CURSOR FOR SELECT relname FROM pg_class`));
    expect(r).toMatchObject({ sqlstate: '0A000', rule: 'unsupported' });
  });
  it('a catalog cursor still honours the denylists', async () => {
    expect(refused(await decide(bob, 'DECLARE c CURSOR FOR SELECT * FROM pg_stats')).rule).toBe('denied_relation');
    expect(refused(await decide(bob, "DECLARE c CURSOR FOR SELECT pg_read_file('/etc/passwd')")).rule).toBe('denied_function');
  });
  it('a cursor mixing catalog and topics is refused as the SELECT is', async () => {
    expect(refused(await decide(bob, 'DECLARE c CURSOR FOR SELECT * FROM orders, pg_class')).sqlstate).toBe('0A000');
  });
  it('refuses FOR UPDATE cursors; VALUES is a SELECT', async () => {
    expect(refused(await decide(bob, 'DECLARE c CURSOR FOR SELECT * FROM orders FOR UPDATE')).message).toMatch(/^SELECT FOR UPDATE\/SHARE is not permitted/);
    expect(forwarded(await decide(bob, 'DECLARE c CURSOR FOR VALUES (1)')).sql).toBe('DECLARE c CURSOR FOR VALUES (1)');
  });
});

describe('FETCH, MOVE, CLOSE for query_topics users', () => {
  it.each([
    // SQLAlchemy stream_results (psycopg2) and psycopg 3
    ['FETCH FORWARD 1000 FROM "c_7f2a_1"', 'FETCH FORWARD 1000 FROM c_7f2a_1', { space: 'cursor', uses: 'c_7f2a_1' }],
    ['FETCH FORWARD ALL FROM "my_cursor"', 'FETCH FORWARD ALL FROM my_cursor', { space: 'cursor', uses: 'my_cursor' }],
    ['MOVE ABSOLUTE 10 FROM "my_cursor"', 'MOVE ABSOLUTE 10 FROM my_cursor', { space: 'cursor', uses: 'my_cursor' }],
    ['MOVE -2 FROM "my_cursor"', 'MOVE FORWARD -2 FROM my_cursor', { space: 'cursor', uses: 'my_cursor' }],
    ['CLOSE "my_cursor"', 'CLOSE my_cursor', { space: 'cursor', uses: 'my_cursor', drops: 'my_cursor' }],
    // psqlODBC
    ['fetch 100 in "SQL_CUR0x55d5c0a8e2b0"', 'FETCH FORWARD 100 FROM "SQL_CUR0x55d5c0a8e2b0"', { space: 'cursor', uses: 'SQL_CUR0x55d5c0a8e2b0' }],
    [
      'close "SQL_CUR0x55d5c0a8e2b0"',
      'CLOSE "SQL_CUR0x55d5c0a8e2b0"',
      {
        space: 'cursor',
        uses: 'SQL_CUR0x55d5c0a8e2b0',
        drops: 'SQL_CUR0x55d5c0a8e2b0',
      },
    ],
    // every direction
    ['FETCH c', 'FETCH FORWARD 1 FROM c', { space: 'cursor', uses: 'c' }],
    ['FETCH ALL c', 'FETCH FORWARD ALL FROM c', { space: 'cursor', uses: 'c' }],
    ['FETCH PRIOR FROM c', 'FETCH BACKWARD 1 FROM c', { space: 'cursor', uses: 'c' }],
    ['FETCH BACKWARD ALL FROM c', 'FETCH BACKWARD ALL FROM c', { space: 'cursor', uses: 'c' }],
    ['FETCH LAST FROM c', 'FETCH ABSOLUTE -1 FROM c', { space: 'cursor', uses: 'c' }],
    ['FETCH RELATIVE -3 IN c', 'FETCH RELATIVE -3 FROM c', { space: 'cursor', uses: 'c' }],
    ['CLOSE ALL', 'CLOSE ALL', { space: 'cursor', drops: { all: true } }],
    ['CLOSE "ALL"', 'CLOSE "ALL"', { space: 'cursor', uses: 'ALL', drops: 'ALL' }],
  ])('%s is written %s', async (sql, written, names) => {
    const s = forwarded(await decide(bob, sql));
    expect(s.sql).toBe(written);
    expect(s.names).toEqual(names);
    expect(s.topics).toEqual([]);
  });
});

describe('PREPARE, EXECUTE, DEALLOCATE for query_topics users', () => {
  it('PREPARE decides its query like the SELECT and keeps built-in parameter types', async () => {
    const s = forwarded(await decide(bob, 'PREPARE by_status (text, int) AS SELECT id FROM orders WHERE status = $1 AND id > $2'));
    expect(s.sql).toBe(`PREPARE by_status (text, int) AS SELECT id FROM ${BOB_ORDERS} WHERE status = $1 AND id > $2`);
    expect(s.topics).toEqual(['orders']);
    expect(s.names).toEqual({ space: 'statement', creates: 'by_status' });
  });
  it('psqlODBC names ("_PLAN0x...") keep their quotes at every step', async () => {
    expect(forwarded(await decide(bob, 'PREPARE "_PLAN0x55d5c0a8e2b0" AS SELECT count(*) FROM orders')).sql).toBe(
      `PREPARE "_PLAN0x55d5c0a8e2b0" AS SELECT count(*) FROM ${BOB_ORDERS}`,
    );
    const s = forwarded(await decide(bob, 'DEALLOCATE "_PLAN0x55d5c0a8e2b0"'));
    expect(s.sql).toBe('DEALLOCATE "_PLAN0x55d5c0a8e2b0"');
    expect(s.names).toEqual({
      space: 'statement',
      uses: '_PLAN0x55d5c0a8e2b0',
      drops: '_PLAN0x55d5c0a8e2b0',
    });
    expect(forwarded(await decide(bob, 'DEALLOCATE PREPARE "_PLAN0x55d5c0a8e2b0"')).sql).toBe('DEALLOCATE "_PLAN0x55d5c0a8e2b0"');
    expect(forwarded(await decide(bob, 'DEALLOCATE ALL')).names).toEqual({
      space: 'statement',
      drops: { all: true },
    });
    for (const ctx of [carol, alice]) {
      const raw = forwarded(await decide(ctx, 'DEALLOCATE "_PLAN0x55d5c0a8e2b0"'));
      expect(raw.sql).toBe('DEALLOCATE "_PLAN0x55d5c0a8e2b0"');
      expect(raw.names).toEqual({
        space: 'statement',
        uses: '_PLAN0x55d5c0a8e2b0',
        drops: '_PLAN0x55d5c0a8e2b0',
      });
    }
  });
  it('PREPARE refuses types that are not built-in scalars, and non-topics like the SELECT', async () => {
    expect(refused(await decide(bob, 'PREPARE p (regclass) AS SELECT * FROM orders WHERE id = $1')).rule).toBe('query_topics.type_not_allowed');
    expect(refused(await decide(bob, 'PREPARE p (public.employees) AS SELECT 1')).rule).toBe('query_topics.type_not_allowed');
    expect(refused(await decide(bob, 'PREPARE p AS SELECT * FROM employees')).message).toBe(refused(await decide(bob, 'SELECT * FROM employees')).message);
    expect(refused(await decide(bob, 'PREPARE p AS DELETE FROM orders')).sqlstate).toBe('42501');
  });
  it('PREPARE of a catalog query goes to the topic catalog', async () => {
    const s = only(await decide(bob, 'PREPARE tables AS SELECT relname FROM pg_class'));
    expect(s).toMatchObject({
      action: 'catalog',
      statement: { sql: 'PREPARE tables AS SELECT relname FROM pg_class' },
      names: { space: 'statement', creates: 'tables' },
    });
  });
  it('EXECUTE arguments are constants and simple expressions on the topic allowlist', async () => {
    const s = forwarded(await decide(bob, "EXECUTE by_status ('paid', 10)"));
    expect(s.sql).toBe("EXECUTE by_status ('paid', 10)");
    expect(s.names).toEqual({ space: 'statement', uses: 'by_status' });
    expect(forwarded(await decide(bob, 'EXECUTE by_status')).sql).toBe('EXECUTE by_status');
    expect(forwarded(await decide(bob, "EXECUTE by_status (lower('PAID'), 1 + 2)")).sql).toBe("EXECUTE by_status (lower('PAID'), 1 + 2)");
    // current_user is answered by Gatehouse, as in a SELECT.
    expect(forwarded(await decide(bob, 'EXECUTE p (current_user)')).sql).toBe("EXECUTE p (CAST('bob@acme.example' AS pg_catalog.name))");
    expect(refused(await decide(bob, "EXECUTE p (pg_read_file('/etc/passwd'))")).rule).toBe('denied_function');
    expect(refused(await decide(bob, 'EXECUTE p (version())')).rule).toBe('query_topics.function_not_allowed');
    expect(refused(await decide(bob, "EXECUTE p ('x'::regclass)")).rule).toBe('query_topics.type_not_allowed');
  });
});

describe('queriers: the same statements pass as raw SQL, with the same name facts', () => {
  it.each([
    ['DECLARE "c_1" CURSOR WITHOUT HOLD FOR SELECT * FROM employees', { space: 'cursor', creates: 'c_1' }],
    ['FETCH FORWARD 10 FROM "c_1"', { space: 'cursor', uses: 'c_1' }],
    ['CLOSE ALL', { space: 'cursor', drops: { all: true } }],
    ['PREPARE p (int) AS SELECT * FROM employees WHERE id = $1', { space: 'statement', creates: 'p' }],
    ['EXECUTE p (1)', { space: 'statement', uses: 'p' }],
  ])('%s', async (sql, names) => {
    const s = forwarded(await decide(carol, sql));
    expect(s.sql).toBe(sql);
    expect(s.names).toEqual(names);
  });
  it('a plain SELECT has no name facts', async () => {
    expect(forwarded(await decide(carol, 'SELECT 1')).names).toBeUndefined();
    expect(forwarded(await decide(bob, 'SELECT 1')).names).toBeUndefined();
  });
});
