// The product's spine, end to end: real psql and pg through Gatehouse to the
// embedded demo warehouse and to the local PostgreSQL, as each demo user.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { asUser, demoWarehouses, pgClient, psql, startGatehouse } from '../helpers/gatehouse.ts';

const PG_DATABASE = 'gatehouse_it_acme';

const warehouses = demoWarehouses(PG_DATABASE);

describe.each(warehouses)('governed path on %s', (_name, rulesFor) => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(await rulesFor());
  });
  afterAll(async () => {
    await gh?.close();
  });

  const byRegion = 'SELECT region, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1';

  it('bob sees EMEA orders only (psql)', async () => {
    const r = await psql(gh, 'bob@acme.example', byRegion);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['EMEA|1667']);
  });

  it('grace sees EMEA and APAC; erin all three (pg driver)', async () => {
    expect((await asUser(gh, 'grace@acme.example', byRegion)).rows).toEqual([
      { region: 'APAC', n: '1667' },
      { region: 'EMEA', n: '1667' },
    ]);
    expect((await asUser(gh, 'erin@acme.example', byRegion)).rows?.map((r) => r.region)).toEqual(['AMER', 'APAC', 'EMEA']);
  });

  it('frank is refused, naming the region attribute', async () => {
    const r = await asUser(gh, 'frank@acme.example', byRegion);
    expect(r.code).toBe('42501');
    expect(r.message).toMatch(/region/);
  });

  it("bob's SELECT * FROM employees is 42501, naming the topics he may use", async () => {
    const r = await asUser(gh, 'bob@acme.example', 'SELECT * FROM employees');
    expect(r.code).toBe('42501');
    expect(r.message).toMatch(/employees/);
    expect(r.message).toMatch(/customers, orders/);
  });

  it('bob cannot read customer emails through the topic', async () => {
    const r = await asUser(gh, 'bob@acme.example', 'SELECT email FROM customers');
    expect(r.code).toBe('42501');
    expect(r.message).toMatch(/email/);
  });

  it('bob keeps the column names and types he asked for', async () => {
    const r = await asUser(gh, 'bob@acme.example', 'SELECT id, amount, ordered_at FROM orders ORDER BY id LIMIT 1');
    expect(Object.keys(r.rows![0])).toEqual(['id', 'amount', 'ordered_at']);
    expect(typeof r.rows![0].id).toBe('number'); // int4 arrives typed, not as text
    expect(r.rows![0].ordered_at).toBeInstanceOf(Date);
  });

  it('carol reads employees but her INSERT is refused', async () => {
    expect((await asUser(gh, 'carol@acme.example', 'SELECT count(*)::int AS n FROM employees')).rows).toEqual([{ n: 50 }]);
    const r = await asUser(gh, 'carol@acme.example', "INSERT INTO employees(id, name, email, salary, ssn) VALUES (999, 'x', 'x@x', 1, '000-00-0000')");
    expect(r.code).toBe('42501');
    expect(r.message).toMatch(/allow_writes/);
    expect((await asUser(gh, 'carol@acme.example', 'SELECT count(*)::int AS n FROM employees')).rows).toEqual([{ n: 50 }]);
  });

  it('dave cannot connect: 42501 naming the connection, after authentication', async () => {
    const r = await psql(gh, 'dave@acme.example', 'SELECT 1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no access to connection "warehouse"/);
    const wrong = await psql(gh, 'dave@acme.example', 'SELECT 1', { password: 'wrong' });
    expect(wrong.stderr).toMatch(/password authentication failed/);
    expect(wrong.stderr).not.toMatch(/warehouse/);
  });

  it("hank's warehouse is globex's, with nothing of acme's", async () => {
    const r = await asUser(gh, 'hank@globex.example', "SELECT count(*)::int AS n, string_agg(DISTINCT region, ',' ORDER BY region) AS regions FROM orders");
    expect(r.rows).toEqual([{ n: 1200, regions: 'NORTH,SOUTH' }]);
    const e = await asUser(gh, 'hank@globex.example', 'SELECT * FROM employees');
    expect(e.code).toBe('42P01');
  });

  it('wrong password and unknown user get the same 28P01', async () => {
    const a = await psql(gh, 'bob@acme.example', 'SELECT 1', { password: 'nope' });
    const b = await psql(gh, 'nobody@acme.example', 'SELECT 1', { password: 'nope' });
    expect(a.stderr).toMatch(/password authentication failed for user "bob@acme.example"/);
    expect(b.stderr).toMatch(/password authentication failed for user "nobody@acme.example"/);
    expect(a.stderr.replace('bob@acme.example', 'U')).toBe(b.stderr.replace('nobody@acme.example', 'U'));
  });

  it('an unknown connection is 3D000 naming the ones the user has', async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT 1', { database: 'nope' });
    expect(r.stderr).toMatch(/connection "nope" does not exist/);
    expect(r.stderr).toMatch(/warehouse/);
  });

  it('unparseable SQL is 42601 with a position; the session keeps serving', async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT region FROM orders WHER region = 1');
    expect(r.stderr).toMatch(/syntax error/);
    expect(r.stderr).toMatch(/LINE 1:/); // psql prints the position it received
    expect((await asUser(gh, 'bob@acme.example', 'SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1667 }]);
  });

  it('multi-statement: decided whole before any of it runs', async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT 1; SELECT * FROM employees');
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/employees/);
    const ok = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders; SELECT count(*) FROM customers');
    expect(ok.stdout.trim().split('\n')).toEqual(['1667', '100']);
  });

  it('a statement over the size limit is 54000', async () => {
    const r = await asUser(gh, 'bob@acme.example', `SELECT '${'x'.repeat(1_100_000)}'`);
    expect(r.code).toBe('54000');
  });

  it('EXPLAIN for a query_topics user is answered by Gatehouse with the rewritten SQL', async () => {
    const r = await psql(gh, 'bob@acme.example', 'EXPLAIN SELECT * FROM orders WHERE id = 42');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/EMEA/);
    expect(r.stdout).not.toMatch(/rows=/);
  });

  it('COPY of a topic query streams governed rows', async () => {
    const r = await psql(gh, 'bob@acme.example', 'COPY (SELECT id, region FROM orders ORDER BY id LIMIT 3) TO STDOUT');
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(/^\d+\tEMEA$/);
  });

  it('a transaction with SET/SHOW works for a query_topics user', async () => {
    const r = await psql(gh, 'bob@acme.example', "BEGIN; SET TimeZone = 'UTC'; SHOW TimeZone; SELECT count(*) FROM orders; COMMIT");
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['UTC', '1667']);
  });

  it('a refusal inside a transaction aborts it, as an error would: 25P02 until ROLLBACK; COMMIT answers ROLLBACK', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      await c.query('BEGIN');
      expect((await c.query('SELECT count(*)::int AS n FROM employees')).rows).toEqual([{ n: 50 }]);
      await expect(c.query('DELETE FROM employees WHERE id = 1')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      const end = await c.query('COMMIT');
      expect(end.command).toBe('ROLLBACK');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    const b = await pgClient(gh, 'bob@acme.example');
    try {
      await b.query('BEGIN');
      await expect(b.query('SELECT * FROM employees')).rejects.toMatchObject({ code: '42501' });
      await expect(b.query('SELECT count(*) FROM orders')).rejects.toMatchObject({ code: '25P02' });
      await b.query('ROLLBACK');
      expect((await b.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1667 }]);
    } finally {
      await b.end();
    }
  });

  it('health and metrics are served on the admin port, counting decisions', async () => {
    const health = await (await fetch(`http://127.0.0.1:${gh.adminPort}/healthz`)).json();
    expect(health).toMatchObject({ status: 'ok' });
    const metrics = await (await fetch(`http://127.0.0.1:${gh.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_statements_total\{org="acme",decision="refused"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_statements_total\{org="acme",decision="rewritten"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_auth_failures_total [1-9]/);
    expect(metrics).not.toMatch(/bob@acme/);
  });
});
