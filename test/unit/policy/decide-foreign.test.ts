// decide() on a mysql connection (the one planning path of policy/decide.ts with the MySQL dialect; row-statements.ts): Query Topics users' PostgreSQL
// written by the MySQL emitter, queriers' MySQL classified and forwarded unchanged, session
// statements answered by Gatehouse or written as MySQL's transactions, the cache keyed by
// dialect, flavor and the topics' column types.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Topic } from '../../../src/config/model.ts';
import { clearDecisionCache, decide } from '../../../src/policy/decide.ts';
import type { Decision, DecisionContext, PlannedStatement } from '../../../src/policy/decision.ts';
import { ensureParser } from '../../../src/sql/parse.ts';
import { ctxFor, customers, orders } from './demo-context.ts';

const ORDERS_TYPES = {
  id: 'integer',
  customer_id: 'integer',
  region: 'character varying',
  amount: 'numeric',
  status: 'character varying',
  ordered_at: 'timestamp with time zone',
};
const CUSTOMERS_TYPES = {
  id: 'integer',
  name: 'character varying',
  email: 'character varying',
  region: 'character varying',
  created_at: 'timestamp with time zone',
};

function typed(): Map<string, Topic> {
  return new Map<string, Topic>([
    ['orders', { ...orders, columnTypes: ORDERS_TYPES }],
    ['customers', { ...customers, columnTypes: CUSTOMERS_TYPES }],
  ]);
}

function mysqlCtx(
  user: string,
  level: 'query_topics' | 'querier' | 'connection_admin',
  attrs: Record<string, string[]>,
  topics = typed(),
  flavor?: 'mariadb' | 'mysql',
): DecisionContext {
  const c = ctxFor(user, level, attrs, { topics });
  return { ...c, connection: { ...c.connection, dialect: 'mysql', ...(flavor ? { flavor } : {}) } };
}

const bob = mysqlCtx('bob@acme.example', 'query_topics', { region: ['EMEA'] });
const grace = mysqlCtx('grace@acme.example', 'query_topics', { region: ['EMEA', 'APAC'] });
const erin = mysqlCtx('erin@acme.example', 'query_topics', { region: ['ALL'] });
const frank = mysqlCtx('frank@acme.example', 'query_topics', {});
const carol = mysqlCtx('carol@acme.example', 'querier', {});

function run(d: Decision): PlannedStatement[] {
  if (d.outcome !== 'run') throw new Error(`expected run, got ${JSON.stringify(d)}`);
  return d.statements;
}
function forwarded(d: Decision): Extract<PlannedStatement, { action: 'forward' }> {
  const [st] = run(d);
  if (st.action !== 'forward') throw new Error(`expected forward, got ${st.action}`);
  return st;
}
function refused(d: Decision): { sqlstate: string; message: string; rule: string } {
  if (d.outcome !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(d)}`);
  return { sqlstate: d.error.sqlstate, message: d.error.message, rule: d.rule };
}

beforeAll(async () => {
  await ensureParser();
  clearDecisionCache();
});

describe('query_topics on a mysql connection: the topic rewrite written by the MySQL emitter', () => {
  it('bob: EMEA only, the barrier fenced by LIMIT, backticks, the collation', async () => {
    const st = forwarded(await decide(bob, 'SELECT region, count(*) FROM orders GROUP BY 1'));
    expect(st.sql).toContain('FROM `orders` WHERE');
    expect(st.sql).toContain("= 'EMEA')");
    expect(st.sql).toContain('LIMIT 18446744073709551615 OFFSET 0');
    expect(st.sql).toContain('utf8mb4_nopad_bin');
    expect(st.sql).not.toContain('public');
    expect(st.params).toEqual([]);
    expect(st.topics).toEqual(['orders']);
  });

  it('grace: an IN list; erin: no filter; frank: refused naming region', async () => {
    expect(forwarded(await decide(grace, 'SELECT id FROM orders')).sql).toMatch(/IN \('EMEA', 'APAC'\)/);
    expect(forwarded(await decide(erin, 'SELECT id FROM orders')).sql).not.toContain('WHERE');
    const f = refused(await decide(frank, 'SELECT id FROM orders'));
    expect(f.sqlstate).toBe('42501');
    expect(f.message).toContain('"region"');
  });

  it('parameters: $n become ? in order, with the map; boolean columns known', async () => {
    const st = forwarded(await decide(bob, 'SELECT id, amount > $2 AS big FROM orders WHERE id = $1 AND status = $1::text'));
    expect(st.sql.match(/\?/g)?.length).toBe(3);
    expect(st.params).toEqual([2, 1, 1]);
    expect(st.columns).toEqual([
      { name: 'id', type: 'int' },
      { name: 'big', type: 'bool' },
    ]);
  });

  it('the flavor picks the collation, and is part of the cache key', async () => {
    const mysqlBob = mysqlCtx('bob@acme.example', 'query_topics', { region: ['EMEA'] }, bob.topics, 'mysql');
    expect(forwarded(await decide(mysqlBob, 'SELECT status FROM orders')).sql).toContain('utf8mb4_0900_bin');
    expect(forwarded(await decide(bob, 'SELECT status FROM orders')).sql).toContain('utf8mb4_nopad_bin');
  });

  it('column types unknown: refused 0A000; learned later (replaced whole), the same text is decided again', async () => {
    const topics = new Map<string, Topic>([
      ['orders', { ...orders }],
      ['customers', { ...customers }],
    ]);
    const ctx = mysqlCtx('bob@acme.example', 'query_topics', { region: ['EMEA'] }, topics);
    const before = refused(await decide(ctx, 'SELECT id FROM orders'));
    expect(before.sqlstate).toBe('0A000');
    expect(before.message).toMatch(/column types/);
    topics.get('orders')!.columnTypes = ORDERS_TYPES;
    expect(forwarded(await decide(ctx, 'SELECT id FROM orders')).sql).toContain('`orders`');
  });

  it('EXPLAIN is answered by Gatehouse with the MySQL text', async () => {
    const [st] = run(await decide(bob, 'EXPLAIN SELECT * FROM orders WHERE id = 42'));
    expect(st.action).toBe('answer');
    if (st.action !== 'answer') return;
    expect(st.rows.join('\n')).toContain('LIMIT 18446744073709551615');
    expect(st.rows.join('\n')).toContain('`orders`');
  });

  it('raw SQL, catalog queries, COPY, cursors and PREPARE', async () => {
    expect(refused(await decide(bob, 'SELECT * FROM employees')).message).toMatch(/query a topic: customers, orders|not a topic/);
    const [cat] = run(await decide(bob, "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname = 'orders'"));
    expect(cat.action).toBe('catalog');
    expect(run(await decide(bob, 'SELECT version()'))[0].action).toBe('catalog');
    for (const sql of ['COPY (SELECT id FROM orders) TO STDOUT', 'DECLARE c CURSOR FOR SELECT id FROM orders', 'PREPARE p AS SELECT id FROM orders']) {
      const r = refused(await decide(bob, sql));
      expect(r.sqlstate).toBe('0A000');
      expect(r.message).toMatch(/COPY|cursors|PREPARE/);
    }
    expect(refused(await decide(bob, 'SELECT `id` FROM orders')).sqlstate).toBe('42601');
  });

  it('an expression the emitter cannot write the same way: 0A000 naming it', async () => {
    const r = refused(await decide(bob, 'SELECT id, row_number() OVER () FROM orders'));
    expect(r.sqlstate).toBe('0A000');
    expect(r.message).toMatch(/window functions/);
  });
});

describe('session statements on a mysql connection (every level)', () => {
  for (const ctx of [bob, carol]) {
    it(`${ctx.user}: SET/SHOW/RESET of allowlisted settings are answered by Gatehouse`, async () => {
      const set = forwarded(await decide(ctx, 'SET extra_float_digits = 3'));
      expect(set.emulated).toEqual({ op: 'set', name: 'extra_float_digits', value: '3', local: false });
      expect(forwarded(await decide(ctx, "SET application_name = 'jdbc'")).emulated).toMatchObject({ op: 'set', value: 'jdbc' });
      expect(forwarded(await decide(ctx, 'SHOW transaction isolation level')).emulated).toEqual({ op: 'show', name: 'transaction_isolation' });
      expect(forwarded(await decide(ctx, 'show standard_conforming_strings')).emulated).toEqual({ op: 'show', name: 'standard_conforming_strings' });
      expect(forwarded(await decide(ctx, 'RESET ALL')).emulated).toEqual({ op: 'reset_all' });
      expect(forwarded(await decide(ctx, 'DISCARD ALL')).emulated).toEqual({ op: 'discard', what: 'all' });
      expect(forwarded(await decide(ctx, "SET TIME ZONE 'UTC'")).emulated).toMatchObject({ name: 'timezone', value: 'UTC' });
      expect(refused(await decide(ctx, "SET TIME ZONE 'Europe/Paris'")).sqlstate).toBe('0A000');
      expect(refused(await decide(ctx, 'SET standard_conforming_strings = off')).sqlstate).toBe('42501');
    });

    it(`${ctx.user}: transactions written as MySQL's, READ ONLY`, async () => {
      expect(forwarded(await decide(ctx, 'BEGIN')).sql).toBe('START TRANSACTION READ ONLY');
      expect(forwarded(await decide(ctx, 'START TRANSACTION READ ONLY')).sql).toBe('START TRANSACTION READ ONLY');
      expect(forwarded(await decide(ctx, 'COMMIT')).sql).toBe('COMMIT');
      expect(forwarded(await decide(ctx, 'END')).sql).toBe('COMMIT');
      expect(forwarded(await decide(ctx, 'ABORT')).sql).toBe('ROLLBACK');
      expect(forwarded(await decide(ctx, 'SAVEPOINT "s 1"')).sql).toBe('SAVEPOINT `s 1`');
      expect(forwarded(await decide(ctx, 'ROLLBACK TO SAVEPOINT s1')).sql).toBe('ROLLBACK TO SAVEPOINT `s1`');
      expect(forwarded(await decide(ctx, 'RELEASE s1')).sql).toBe('RELEASE SAVEPOINT `s1`');
      expect(refused(await decide(ctx, 'BEGIN READ WRITE')).sqlstate).toBe('42501');
      const chars = forwarded(await decide(ctx, 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'));
      expect(chars.sql).toBe('SET SESSION TRANSACTION READ ONLY');
      expect(chars.notice).toMatch(/read only/);
    });
  }

  it('query_topics: settings off the allowlist and the governed limits are refused', async () => {
    expect(refused(await decide(bob, 'SET search_path = x')).message).toMatch(/search_path is fixed/);
    expect(refused(await decide(bob, "SET statement_timeout = '1h'")).sqlstate).toBe('42501');
    expect(forwarded(await decide(bob, 'RESET statement_timeout')).emulated).toEqual({ op: 'reset', name: 'statement_timeout' });
  });
});

describe('queriers on a mysql connection: MySQL SQL classified and forwarded unchanged', () => {
  it("a FROM-less call of a function PostgreSQL's grammar qualifies itself (JSON_OBJECT) goes to MySQL, not the topic catalog", async () => {
    const st = forwarded(await decide(carol, "SELECT JSON_OBJECT('a', 1) AS j"));
    expect(st.sql).toBe("SELECT JSON_OBJECT('a', 1) AS j");
    // Written by its author, pg_catalog is PostgreSQL's catalog.
    expect(run(await decide(carol, "SELECT pg_catalog.json_object('{a,1}')"))[0].action).toBe('catalog');
  });

  it("binds PostgreSQL's $n (pgjdbc, node-postgres) as MySQL's ?, in the order MySQL reads them", async () => {
    const st = forwarded(await decide(carol, "  SELECT name, '$1' AS s FROM employees WHERE id = $2 OR salary > $1 -- $3\n"));
    expect(st.sql).toBe("SELECT name, '$1' AS s FROM employees WHERE id = ? OR salary > ? -- $3");
    expect(st.params).toEqual([2, 1]);
  });

  it('refuses $n where MySQL reads the text differently from PostgreSQL, or next to a ? of its own (0A000)', async () => {
    // `#` starts a comment in MySQL and is an operator in PostgreSQL: the $1 would vanish.
    for (const sql of ['SELECT 1 #$1', 'SELECT ?, $1']) {
      const r = refused(await decide(carol, sql));
      expect(r.sqlstate, sql).toMatch(/^(0A000|42601|42501)$/);
    }
    const r = refused(await decide(carol, 'SELECT 1 #$1'));
    expect(r.message).toMatch(/PostgreSQL parameters \(\$1\) where the warehouse reads this text differently/);
  });

  it('MySQL-only syntax (backticks, LIMIT a,b) passes through as written', async () => {
    const text = 'SELECT `id`, name FROM employees ORDER BY id LIMIT 5, 10';
    const st = forwarded(await decide(carol, text));
    expect(st.sql).toBe(text);
    expect(st.params).toBeUndefined();
    expect(st.kind).toBe('select');
  });

  it('a text PostgreSQL also reads goes as written too, statement by statement', async () => {
    const statements = run(await decide(carol, 'SELECT 1 AS a; BEGIN; SELECT name FROM employees; COMMIT'));
    expect(statements.map((s) => (s.action === 'forward' ? s.sql : s.action))).toEqual([
      'SELECT 1 AS a',
      'START TRANSACTION READ ONLY',
      'SELECT name FROM employees',
      'COMMIT',
    ]);
  });

  it('writes, INTO OUTFILE, LOAD_FILE and SLEEP are refused with 42501', async () => {
    for (const sql of [
      'DELETE FROM employees',
      'INSERT INTO employees (id) VALUES (1)',
      "SELECT * FROM employees INTO OUTFILE '/tmp/x'",
      "SELECT LOAD_FILE('/etc/passwd')",
      'SELECT SLEEP(10)',
      'UPDATE `employees` SET salary = 0',
    ]) {
      const r = refused(await decide(carol, sql));
      expect(r.sqlstate, sql).toBe('42501');
    }
  });

  it("pg_catalog queries go to the topic catalog; information_schema is MySQL's", async () => {
    expect(run(await decide(carol, 'SELECT relname FROM pg_catalog.pg_class'))[0].action).toBe('catalog');
    expect(run(await decide(carol, 'SELECT pg_catalog.version()'))[0].action).toBe('catalog');
    expect(forwarded(await decide(carol, 'SELECT table_name FROM information_schema.tables')).sql).toContain('information_schema');
  });

  it('topics.<topic> is 0A000 on a mysql connection', async () => {
    const r = refused(await decide(carol, 'SELECT * FROM topics.orders'));
    expect(r.sqlstate).toBe('0A000');
    expect(r.message).toMatch(/topics\.orders/);
  });

  it('MySQL SET and SHOW forms go to MySQL (its own classifier)', async () => {
    expect(forwarded(await decide(carol, 'SHOW TABLES')).sql).toBe('SHOW TABLES');
    expect(forwarded(await decide(carol, 'SET @@SESSION.group_concat_max_len = 4096')).kind).toBe('set');
    expect(refused(await decide(carol, "SET sql_mode = ''")).sqlstate).toMatch(/42501|0A000/);
  });
});
