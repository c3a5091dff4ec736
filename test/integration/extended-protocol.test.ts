// The extended query protocol (55.2.3) through Gatehouse, with the policy of a simple Query:
// node-postgres with parameters and pgjdbc, on the embedded warehouse and on PostgreSQL.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { DEMO_PASSWORD, demoWarehouses, pgClient, startGatehouse } from '../helpers/gatehouse.ts';

const PG_DATABASE = 'gatehouse_it_acme_ext';
const JDBC_JAR = '/usr/share/java/postgresql.jar';

const warehouses = demoWarehouses(PG_DATABASE);

function jdbc(port: number, user: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(
      'java',
      ['-cp', JDBC_JAR, resolve(import.meta.dirname, 'java/ExtendedJdbc.java'), String(port), user, DEMO_PASSWORD],
      { timeout: 60_000 },
      (err, stdout, stderr) => (err ? fail(Object.assign(err, { stdout, stderr })) : done({ stdout, stderr })),
    );
  });
}

describe.each(warehouses)('extended query protocol on %s', (_name, rulesFor) => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(await rulesFor());
  });
  afterAll(async () => {
    await gh?.close();
  });

  it('bob: a parameterized query over a topic sees EMEA only', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      const r = await c.query('SELECT region, count(*)::int AS n FROM orders WHERE amount > $1 GROUP BY 1', [10]);
      expect(r.rows.map((x) => x.region)).toEqual(['EMEA']);
      expect(r.rows[0].n).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  });

  it('bob: a refused Parse is 42501 and the connection keeps serving (Sync ends the skipping)', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      await expect(c.query('SELECT * FROM employees WHERE id = $1', [1])).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SELECT $1::int; SELECT 2', [1])).rejects.toMatchObject({ code: '42601' });
      await expect(c.query('EXPLAIN SELECT * FROM orders WHERE id = $1', [1])).rejects.toMatchObject({ code: '0A000' });
      expect((await c.query('SELECT count(*)::int AS n FROM orders WHERE id > $1', [0])).rows).toEqual([{ n: 1667 }]);
    } finally {
      await c.end();
    }
  });

  it('carol: a parameterized SELECT on employees works; a parameterized INSERT is 42501', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const r = await c.query('SELECT id, name FROM employees WHERE id = $1', [1]);
      expect(r.rows).toHaveLength(1);
      expect(r.rows[0].id).toBe(1);
      await expect(
        c.query('INSERT INTO employees(id, name, email, salary, ssn) VALUES ($1, $2, $3, $4, $5)', [999, 'x', 'x@x', 1, '000-00-0000']),
      ).rejects.toMatchObject({ code: '42501' });
      expect((await c.query('SELECT count(*)::int AS n FROM employees WHERE id > $1', [0])).rows).toEqual([{ n: 50 }]);
    } finally {
      await c.end();
    }
  });

  it('binary results are relayed as the warehouse encoded them', async () => {
    // binary: true makes pg ask for binary results (pg-protocol still hands the bytes over as a string).
    const config = { host: '127.0.0.1', port: gh.port, user: 'bob@acme.example', password: DEMO_PASSWORD, database: 'warehouse', binary: true };
    const c = new pg.Client(config as pg.ClientConfig);
    await c.connect();
    try {
      const raw = await c.query({
        text: 'SELECT 7::int4 AS seven, region FROM orders WHERE id > $1 LIMIT 1',
        values: [0],
        rowMode: 'array',
        types: { getTypeParser: () => (v: unknown) => v },
      });
      expect(raw.fields.map((f) => f.format)).toEqual(['binary', 'binary']);
      const [seven, region] = raw.rows[0] as [string, string];
      expect([...Buffer.from(seven, 'latin1')]).toEqual([0, 0, 0, 7]); // int4 in binary, not the text '7'
      expect(region).toBe('EMEA');
    } finally {
      await c.end();
    }
  });

  it('named prepared statements: parsed once, bound again by name', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      const q = { name: 'q1', text: 'SELECT count(*)::int AS n FROM orders WHERE id > $1' };
      expect((await c.query({ ...q, values: [0] })).rows).toEqual([{ n: 1667 }]);
      expect((await c.query({ ...q, values: [0] })).rows).toEqual([{ n: 1667 }]);
      // A refused named statement never names anything: binding it again is refused too.
      const bad = { name: 'q2', text: 'SELECT * FROM employees', values: [] };
      await expect(c.query(bad)).rejects.toMatchObject({ code: '42501' });
      await expect(c.query(bad)).rejects.toMatchObject({ code: expect.stringMatching(/^(42501|26000)$/) });
      expect((await c.query({ ...q, values: [0] })).rows).toEqual([{ n: 1667 }]);
    } finally {
      await c.end();
    }
  });

  it('two sessions using the same statement name each get their own statement', async () => {
    const bob = await pgClient(gh, 'bob@acme.example');
    const carol = await pgClient(gh, 'carol@acme.example');
    try {
      expect((await carol.query({ name: 's', text: 'SELECT count(*)::int AS n FROM employees WHERE id > $1', values: [0] })).rows).toEqual([{ n: 50 }]);
      expect((await bob.query({ name: 's', text: 'SELECT count(*)::int AS n FROM orders WHERE id > $1', values: [0] })).rows).toEqual([{ n: 1667 }]);
      expect((await carol.query({ name: 's', text: 'SELECT count(*)::int AS n FROM employees WHERE id > $1', values: [0] })).rows).toEqual([{ n: 50 }]);
    } finally {
      await Promise.all([bob.end(), carol.end()]);
    }
  });

  it('pgjdbc: PreparedStatement as bob sees EMEA only; SELECT * FROM employees is 42501', async () => {
    // Never a silent skip: without the driver this fails and says how to get it.
    if (!existsSync(JDBC_JAR)) {
      throw new Error(
        `the PostgreSQL JDBC driver is missing at ${JDBC_JAR}: apt-get update && apt-get install -y libpostgresql-jdbc-java (bash .ci/run does this)`,
      );
    }
    const { stdout } = await jdbc(gh.port, 'bob@acme.example');
    const lines = stdout.trim().split('\n');
    // The warehouse's own server_version (16 on the embedded server, 15 on the local PostgreSQL), as pgjdbc read it.
    expect(lines[0]).toMatch(/^version=1[56]\.\d+/);
    const regions = lines.filter((l) => l.startsWith('regions='));
    expect(regions).toHaveLength(7);
    for (const l of regions) expect(l).toMatch(/^regions=EMEA:\d+$/);
    expect(lines).toContain('employees=42501');
    expect(lines).toContain('after=1667');
  }, 90_000);
});
