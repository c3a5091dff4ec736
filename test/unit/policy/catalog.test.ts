// Routing of a Query Topics user's catalog queries to the topic catalog (policy/catalog.ts),
// and the catalog's seed (catalog/catalog.ts).
import { describe, expect, it } from 'vitest';
import { catalogSeed } from '../../../src/catalog/catalog.ts';
import type { Topic } from '../../../src/config/model.ts';
import type { Decision } from '../../../src/policy/decision.ts';
import { decide } from '../../../src/policy/decide.ts';
import { bob, carol, customers, orders } from './demo-context.ts';

/** Where each statement goes: 'catalog', 'warehouse' or 'answer'; or the refusal's SQLSTATE and rule. */
function route(d: Decision): string[] | { sqlstate: string; rule: string; message: string } {
  if (d.outcome === 'refuse') return { sqlstate: d.error.sqlstate, rule: d.rule, message: d.error.message };
  if (d.outcome === 'empty') return [];
  return d.statements.map((s) => (s.action === 'forward' ? 'warehouse' : s.action));
}

describe('query_topics: catalog queries go to the topic catalog', () => {
  it.each([
    ['pg_catalog-qualified', 'SELECT relname FROM pg_catalog.pg_class'],
    ['unqualified pg_* relations', 'SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace'],
    ['information_schema', "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"],
    [
      'catalog functions',
      'SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.col_description(a.attrelid, a.attnum) FROM pg_catalog.pg_attribute a',
    ],
    ['a CTE over the catalog', 'WITH t AS (SELECT oid, relname FROM pg_class) SELECT relname FROM t'],
    ['a subquery in the catalog', "SELECT relname FROM pg_class WHERE relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname = 'public')"],
    ['no relation, a catalog function', 'SELECT pg_catalog.version()'],
    ['no relation, current_schemas', 'SELECT current_schemas(false)'],
    ['no relation, a regclass cast', "SELECT 'orders'::regclass::oid"],
  ])('%s', async (_name, sql) => {
    const d = await decide(bob, sql);
    expect(route(d)).toEqual(['catalog']);
    expect(d.outcome === 'run' && d.rule).toBe('query_topics.catalog');
    expect(d.outcome === 'run' && d.topics).toEqual([]);
  });

  it("runs the client's own text, not a deparse", async () => {
    const sql = "SELECT 'x'::pg_catalog.text FROM pg_catalog.pg_class LIMIT 1";
    const d = await decide(bob, sql);
    expect(d.outcome === 'run' && d.statements[0].action === 'catalog' && d.statements[0].statement).toEqual({ sql, kind: 'select', returnsRows: true });
  });

  it('topic queries and relation-free queries of allowlisted functions stay on the warehouse', async () => {
    expect(route(await decide(bob, 'SELECT count(*) FROM orders'))).toEqual(['warehouse']);
    expect(route(await decide(bob, 'SELECT 1'))).toEqual(['warehouse']);
    expect(route(await decide(bob, "SELECT date_trunc('day', now())"))).toEqual(['warehouse']);
    expect(route(await decide(bob, 'VALUES (1), (2)'))).toEqual(['warehouse']);
  });

  it('a multi-statement Query keeps each statement on its own target, decided whole', async () => {
    expect(route(await decide(bob, 'SELECT count(*) FROM orders; SELECT relname FROM pg_class; SHOW TimeZone'))).toEqual(['warehouse', 'catalog', 'warehouse']);
    const r = route(await decide(bob, 'SELECT relname FROM pg_class; SELECT * FROM employees'));
    expect(r).toMatchObject({ sqlstate: '42501', rule: 'query_topics.non_topic_relation' });
  });

  it('catalog relations mixed with topics are 0A000', async () => {
    for (const sql of [
      'SELECT c.relname, o.id FROM pg_catalog.pg_class c JOIN orders o ON true',
      'SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM pg_class)',
      'SELECT relname FROM pg_class UNION ALL SELECT status FROM orders',
      'SELECT * FROM information_schema.tables, employees',
    ]) {
      const r = route(await decide(bob, sql));
      expect(r, sql).toMatchObject({ sqlstate: '0A000', rule: 'query_topics.catalog_mix' });
      if (!Array.isArray(r)) expect(r.message).toMatch(/catalog relations \(.+\) and topics \(.+\)/);
    }
  });

  it('the denylists still hold on the catalog: pg_stats, pg_statistic, dangerous functions, nested writes', async () => {
    expect(route(await decide(bob, "SELECT * FROM pg_stats WHERE tablename = 'orders'"))).toMatchObject({ sqlstate: '42501', rule: 'denied_relation' });
    expect(route(await decide(bob, 'SELECT * FROM pg_catalog.pg_statistic'))).toMatchObject({ sqlstate: '42501', rule: 'denied_relation' });
    expect(route(await decide(bob, "SELECT pg_read_file('/etc/passwd') FROM pg_class"))).toMatchObject({ sqlstate: '42501', rule: 'denied_function' });
    expect(route(await decide(bob, "SELECT query_to_xml('select 1', true, true, '')"))).toMatchObject({ sqlstate: '42501', rule: 'denied_function' });
    expect(route(await decide(bob, "SELECT set_config('search_path', 'x', false)"))).toMatchObject({ sqlstate: '42501', rule: 'denied_function' });
    expect(route(await decide(bob, 'SELECT pg_sleep(10)'))).toMatchObject({ sqlstate: '42501', rule: 'denied_function' });
    expect(route(await decide(bob, 'WITH d AS (DELETE FROM pg_class RETURNING 1) SELECT * FROM d'))).toMatchObject({ sqlstate: '42501' });
    expect(route(await decide(bob, 'SELECT relname INTO x FROM pg_class'))).toMatchObject({ sqlstate: '42501' });
  });

  it('other schemas are not the catalog: hr.pg_class is a non-topic', async () => {
    expect(route(await decide(bob, 'SELECT * FROM hr.pg_class'))).toMatchObject({ sqlstate: '42501', rule: 'query_topics.non_topic_relation' });
    expect(route(await decide(bob, 'SELECT * FROM pg_toast.pg_toast_1'))).toMatchObject({ sqlstate: '42501' });
  });

  it("who is asking, in a catalog query, is the person, not the catalog's role (current_user and its kin)", async () => {
    const sqlOf = (d: Decision) => (d.outcome === 'run' && d.statements[0].action === 'catalog' ? d.statements[0].statement.sql : JSON.stringify(d));
    const mixed = await decide(bob, 'SELECT version(), current_user, session_user, user, current_role');
    expect(route(mixed)).toEqual(['catalog']);
    const sql = sqlOf(mixed);
    // Each becomes the email as a name constant, under the column name PostgreSQL would give it.
    const email = "CAST('bob@acme.example' AS pg_catalog.name)";
    for (const col of ['current_user', 'session_user', 'user', 'current_role']) expect(sql).toContain(`${email} AS "${col}"`);
    expect(sql.replace(/"[^"]*"/g, '')).not.toMatch(/current_user|session_user|current_role|\buser\b/);
    expect(sqlOf(await decide(bob, 'SELECT relname, "current_user"(), pg_catalog.getpgusername() FROM pg_class'))).toContain(
      `${email} AS "current_user", ${email} AS getpgusername`,
    );
    expect(sqlOf(await decide(bob, 'SELECT rolname FROM pg_roles WHERE rolname = current_user'))).toContain(`rolname = ${email}`);
    // A privilege function's role argument stays: it names the role whose privileges the catalog shows.
    const priv = sqlOf(await decide(bob, "SELECT relname FROM pg_class WHERE has_table_privilege(current_user, oid, 'SELECT')"));
    expect(priv).toMatch(/has_table_privilege\(current_user, oid, 'SELECT'\)/);
    expect(priv).not.toContain('bob@acme.example');
    // Texts of one shape keep their own constants (decisions shared by shape never carry a catalog statement).
    for (const rel of ['orders', 'customers']) {
      expect(sqlOf(await decide(bob, `SELECT relname, current_user FROM pg_class WHERE relname = '${rel}'`))).toBe(
        `SELECT relname, ${email} AS "current_user" FROM pg_class WHERE relname = '${rel}'`,
      );
    }
    // Without such a call the client's text runs as written.
    expect(sqlOf(await decide(bob, 'SELECT  version()'))).toBe('SELECT  version()');
  });

  it('a cursor or prepared statement over a catalog query that asks for current_user is refused (0A000)', async () => {
    for (const sql of ['BEGIN; DECLARE c CURSOR FOR SELECT version(), current_user; COMMIT', 'PREPARE p AS SELECT relname, current_user FROM pg_class']) {
      expect(route(await decide(bob, sql)), sql).toMatchObject({ sqlstate: '0A000', rule: 'query_topics.catalog_identity' });
    }
    expect(route(await decide(bob, 'PREPARE p AS SELECT relname FROM pg_class'))).toEqual(['catalog']);
  });

  it('queriers keep running catalog queries on the warehouse', async () => {
    expect(route(await decide(carol, 'SELECT relname FROM pg_catalog.pg_class'))).toEqual(['warehouse']);
    expect(route(await decide(carol, 'SELECT version()'))).toEqual(['warehouse']);
  });
});

describe('the topic catalog seed', () => {
  const typed = (t: Topic, columnTypes: Record<string, string>): Topic => ({ ...t, columnTypes });

  it('one empty table per topic: the allowed fields, typed as the warehouse reported', () => {
    const seed = catalogSeed([
      typed(orders, { id: 'integer', customer_id: 'integer', region: 'text', amount: 'numeric(12,2)', status: 'text', ordered_at: 'timestamp with time zone' }),
      customers,
    ]);
    expect(seed).toContain('CREATE TABLE public.orders (id text, customer_id text, region text, amount text, status text, ordered_at text);');
    expect(seed).toContain('ALTER COLUMN amount TYPE numeric(12,2) USING NULL');
    expect(seed).toContain('ALTER COLUMN ordered_at TYPE timestamp with time zone USING NULL');
    expect(seed).not.toContain('ALTER COLUMN region');
    expect(seed).toContain('CREATE TABLE public.customers (id text, name text, region text, created_at text);');
    expect(seed).not.toMatch(/email|INSERT/);
  });

  it('a type that is not a plain type name is left as text, never spliced', () => {
    const seed = catalogSeed([typed(customers, { id: 'integer); DROP TABLE x; --', name: 'character varying(100)' })]);
    expect(seed).not.toContain('DROP');
    expect(seed).toContain('ALTER COLUMN name TYPE character varying(100) USING NULL');
  });
});
