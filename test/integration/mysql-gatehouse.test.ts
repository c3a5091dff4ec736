// End to end on a mysql connection: Gatehouse (in process, free ports) in front of the local
// MariaDB, acme's `warehouse` connection of kind mysql in a temporary rules dir, real clients
// (psql, node-postgres with prepared statements and pg-cursor) as carol (querier) and bob
// (query_topics: the topic rewrite written by the MySQL emitter). DESIGN 5 in full on MariaDB:
// mysql-governed.test.ts. SLEEP is refused for queriers (classifyRawSql), so long statements
// here are cross joins of MariaDB's sequence tables.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { DEMO_PASSWORD, demoRulesWith, pgClient, psql, startGatehouse } from '../helpers/gatehouse.ts';
import { freshMariadbDatabase, mariadbRun } from '../helpers/mariadb.ts';

const DB = 'gatehouse_mysql_e2e';
const READER = 'gh_e2e_reader';
const TOPICS = 'gh_e2e_topics';
const PW = 'gh-e2e-pw-3';
process.env.GH_E2E_PW = PW;

const MYSQL_WAREHOUSE = `kind: mysql
host: 127.0.0.1
port: 3306
database: ${DB}
user: ${READER}
password_env: GH_E2E_PW
topics_user: ${TOPICS}
topics_password_env: GH_E2E_PW
statement_timeout: 4s
permissions:
  default: no_access
  groups:
    sales-emea: query_topics
    sales-leads: query_topics
    analysts: querier
`;

let gh: RunningGatehouse;

beforeAll(async () => {
  await freshMariadbDatabase(
    DB,
    `CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, email VARCHAR(80) NOT NULL, region VARCHAR(10) NOT NULL, created_at TIMESTAMP NOT NULL);
     CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, region VARCHAR(10) NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(20) NOT NULL, ordered_at TIMESTAMP NOT NULL);
     CREATE TABLE employees (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, salary DECIMAL(10,2) NOT NULL, active TINYINT(1) NOT NULL);
     INSERT INTO customers SELECT seq, CONCAT('Customer ', seq), CONCAT('c', seq, '@example.com'), ELT(1 + seq % 3, 'EMEA', 'APAC', 'AMER'), '2024-01-01 00:00:00' + INTERVAL seq DAY FROM seq_1_to_30;
     INSERT INTO orders SELECT seq, 1 + seq % 30, ELT(1 + seq % 3, 'EMEA', 'APAC', 'AMER'), seq * 10.5, 'paid', '2024-03-01 12:00:00' + INTERVAL seq HOUR FROM seq_1_to_100;
     INSERT INTO employees SELECT seq, CONCAT('Employee ', seq), 1000 + seq * 100.25, seq % 2 FROM seq_1_to_10;`,
    { [READER]: PW, [TOPICS]: PW },
  );
  await mariadbRun(`GRANT SELECT ON \`${DB}\`.* TO '${READER}'@'%';
    GRANT SELECT (id, customer_id, region, amount, status, ordered_at) ON \`${DB}\`.orders TO '${TOPICS}'@'%';
    GRANT SELECT (id, name, region, created_at) ON \`${DB}\`.customers TO '${TOPICS}'@'%';`);
  const rules = demoRulesWith(MYSQL_WAREHOUSE);
  // globex's embedded warehouse would be a second server started for nothing.
  rmSync(join(rules, 'globex'), { recursive: true, force: true });
  gh = await startGatehouse(rules);
});

afterAll(async () => {
  await gh?.close();
});

describe('a querier on a mysql connection', () => {
  it('psql (simple protocol): rows of MySQL tables with MySQL functions, tags, NULLs', async () => {
    const r = await psql(gh, 'carol@acme.example', "SELECT id, CONCAT(name, '!') AS n, salary, active FROM employees WHERE id <= 3 ORDER BY id");
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1|Employee 1!|1100.25|t', '2|Employee 2!|1200.50|f', '3|Employee 3!|1300.75|t']);
  });

  it('writes are refused by policy on a connection without allow_writes', async () => {
    const r = await psql(gh, 'carol@acme.example', 'DELETE FROM employees');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/DELETE is not permitted: raw SQL on MariaDB connections through Gatehouse is read-only/);
  });

  it('a warehouse error reaches the client with its SQLSTATE and MySQL message', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const err = await c.query('SELECT nope FROM employees').catch((e) => e);
      expect(err.code).toBe('42703');
      expect(err.message).toMatch(/Unknown column 'nope'/);
      // The session goes on.
      expect((await c.query('SELECT COUNT(*) AS n FROM employees')).rows).toEqual([{ n: '10' }]);
    } finally {
      await c.end();
    }
  });

  it('node-postgres: named prepared statements (extended protocol), types parsed as from PostgreSQL', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      for (let i = 0; i < 2; i++) {
        const r = await c.query({ name: 'orders_page', text: 'SELECT id, amount, ordered_at, region FROM orders WHERE id <= 2 ORDER BY id' });
        expect(r.fields.map((f) => f.dataTypeID)).toEqual([23, 1700, 1184, 1043]);
        expect(r.rows).toEqual([
          { id: 1, amount: '10.50', ordered_at: new Date('2024-03-01T13:00:00Z'), region: 'APAC' },
          { id: 2, amount: '21.00', ordered_at: new Date('2024-03-01T14:00:00Z'), region: 'AMER' },
        ]);
      }
    } finally {
      await c.end();
    }
  });

  it('pg-cursor: rows in pages (Execute with max-rows, PortalSuspended) inside a transaction', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      await c.query('BEGIN');
      const cursor = c.query(new Cursor('SELECT id FROM orders ORDER BY id'));
      const pages: number[] = [];
      let total = 0;
      for (;;) {
        const rows = await cursor.read(40);
        if (rows.length === 0) break;
        pages.push(rows.length);
        total += rows.reduce((a, r) => a + (r as { id: number }).id, 0);
      }
      await cursor.close();
      expect(pages).toEqual([40, 40, 20]);
      expect(total).toBe(5050);
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });

  it('pg-cursor outside a transaction block: the portal lives until the cursor closes (no Sync between pages)', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const cursor = c.query(new Cursor('SELECT id FROM orders WHERE id <= 25 ORDER BY id'));
      expect((await cursor.read(10)).length).toBe(10);
      expect((await cursor.read(10)).length).toBe(10);
      expect((await cursor.read(10)).map((r) => (r as { id: number }).id)).toEqual([21, 22, 23, 24, 25]);
      await cursor.close();
      expect((await c.query('SELECT COUNT(*) AS n FROM orders')).rows).toEqual([{ n: '100' }]);
    } finally {
      await c.end();
    }
  });

  it('a FROM-less call of a function PostgreSQL also has (JSON_OBJECT) runs on MySQL, not on the topic catalog', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const r = await c.query("SELECT JSON_OBJECT('a', 1) AS j");
      expect(JSON.parse(String(r.rows[0].j))).toEqual({ a: 1 });
    } finally {
      await c.end();
    }
  });

  it('parameters written $n (what PostgreSQL drivers send) are bound as MySQL placeholders', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      expect((await c.query('SELECT name FROM employees WHERE id = $1 OR id = $2 ORDER BY id', [2, '3'])).rows).toEqual([
        { name: 'Employee 2' },
        { name: 'Employee 3' },
      ]);
      // A value is a value: quotes and SQL in it change nothing.
      expect((await c.query('SELECT name FROM employees WHERE name = $1', ["x' OR '1'='1"])).rows).toEqual([]);
      const err = await c.query('SELECT 1 #$1', [2]).catch((e) => e);
      expect(err.code).toBe('0A000');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('text MariaDB lexes differently from the classifier is refused, over both protocols (`--1` is `- -1` to MariaDB)', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      // The reviewer's repros: each hid a denied call after what the classifier took for a comment.
      const simple = [
        'SELECT 1 --1, USER() AS u',
        'SELECT 1 --1 INTO @x',
        "SELECT 1 --1, GET_LOCK('gatehouse-rawlex', 0) AS got",
        'SELECT 1 AS a /* /* */ , USER() AS u -- */',
      ];
      for (const sql of simple) {
        const err = await c.query(sql).catch((e) => e);
        expect(err.code, sql).toBe('42501');
        expect(err.message, sql).toMatch(/`--` outside a string is not a comment mark to MariaDB|nested comments are not allowed on MariaDB/);
      }
      expect(await mariadbRun("SELECT IS_FREE_LOCK('gatehouse-rawlex') AS free")).toEqual([{ free: 1 }]);
      const extended: Array<[string, unknown[]]> = [
        ['SELECT $1 --1, USER()', ['x']],
        ['SELECT name FROM employees WHERE name = $2 --1 OR 1=1\n', ['x', 'y']],
        ['SELECT (SELECT COUNT(*) FROM employees WHERE salary > $1) --1, @@hostname\n', [1]],
        ['SELECT 1 --$1\n, $1 AS b', ['x']],
      ];
      for (const [sql, params] of extended) {
        const err = await c.query(sql, params).catch((e) => e);
        expect(err.code, sql).toMatch(/^(42501|0A000)$/);
        expect(err.message, sql).not.toMatch(/^(Employee|gh_)/);
      }
      // What every reader reads alike still runs: `-- ` with a space, /* */, and `- -1` written apart.
      expect((await c.query('SELECT 1 - -1 AS a -- a comment\n')).rows).toEqual([{ a: 2 }]);
      expect((await c.query('SELECT /* a comment */ $1 AS a -- another\n', ['x'])).rows).toEqual([{ a: 'x' }]);
      expect((await c.query('SELECT COUNT(*) AS n FROM employees # a MySQL comment')).rows.map((r) => Number(r.n))).toEqual([10]);
    } finally {
      await c.end();
    }
  });

  it("SHOW's WHERE, an expression MariaDB evaluates, is refused; SHOW ... LIKE runs (an outside review took a server-wide lock through it)", async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      for (const sql of [
        "SHOW DATABASES WHERE GET_LOCK('gatehouse-show', 0) = 1",
        'SHOW COLLATION WHERE SLEEP(1) = 0',
        "SHOW CHARACTER SET WHERE USER() LIKE 'x%'",
      ]) {
        const err = await c.query(sql).catch((e) => e);
        expect(err.code, sql).toBe('42501');
        expect(err.message, sql).toMatch(/\.\.\. WHERE is not permitted in MariaDB raw SQL through Gatehouse/);
      }
      expect(await mariadbRun("SELECT IS_FREE_LOCK('gatehouse-show') AS free")).toEqual([{ free: 1 }]);
      expect((await c.query("SHOW COLLATION LIKE 'utf8mb4_bin'")).rows.map((r) => r.Collation)).toEqual(['utf8mb4_bin']);
    } finally {
      await c.end();
    }
  });

  it("a CancelRequest (pg's cancel) stops a running statement with 57014 (KILL QUERY on the warehouse)", async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const started = performance.now();
      const running = c.query('SELECT COUNT(*) FROM seq_1_to_300000 a, seq_1_to_300000 b').catch((e) => e);
      await new Promise((r) => setTimeout(r, 500));
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      await new Promise<void>((done) => {
        const s = net.connect({ host: '127.0.0.1', port: gh.port }, () => {
          const b = Buffer.alloc(16);
          b.writeInt32BE(16, 0);
          b.writeInt32BE(80877102, 4);
          b.writeInt32BE(processID, 8);
          b.writeInt32BE(secretKey, 12);
          s.end(b);
        });
        s.on('close', () => done());
        s.on('error', () => done());
      });
      const err = await running;
      expect(err.code).toBe('57014');
      expect(performance.now() - started).toBeLessThan(3500);
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it("the connection's statement_timeout cancels a long statement with Gatehouse's own 57014", async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const err = await c.query('SELECT COUNT(*) FROM seq_1_to_300000 a, seq_1_to_300000 b').catch((e) => e);
      expect(err.code).toBe('57014');
      expect(err.message).toMatch(/statement timeout/);
    } finally {
      await c.end();
    }
  });

  it('a warehouse connection killed mid-statement: the client gets 08006, the next session works', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    c.on('error', () => undefined); // the FATAL ends the client's connection
    const running = c.query('SELECT COUNT(*) FROM seq_1_to_10000 a, seq_1_to_3001 b').catch((e) => e);
    let rows: { ID: number }[] = [];
    for (let i = 0; i < 40 && rows.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rows = (await mariadbRun(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '${READER}' AND INFO LIKE '%seq_1_to_3001%'`)) as { ID: number }[];
    }
    expect(rows).toHaveLength(1);
    await mariadbRun(`KILL CONNECTION ${rows[0].ID}`);
    const err = await running;
    expect(err.code).toBe('08006');
    expect(err.message).toMatch(/lost the connection to warehouse of connection "warehouse"/);
    await c.end().catch(() => undefined);
    const next = await pgClient(gh, 'carol@acme.example');
    try {
      expect((await next.query('SELECT COUNT(*) AS n FROM employees')).rows).toEqual([{ n: '10' }]);
    } finally {
      await next.end();
    }
  });

  it('the warehouse sees who is behind each statement', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      // Long enough to be seen (the connection's 4s statement_timeout may end it: its result does not matter here).
      const running = c.query('SELECT COUNT(*) AS s FROM seq_1_to_10000 a, seq_1_to_3002 b').catch(() => undefined);
      let rows: { INFO: string }[] = [];
      for (let i = 0; i < 40 && rows.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        rows = (await mariadbRun(`SELECT INFO FROM information_schema.PROCESSLIST WHERE USER = '${READER}' AND INFO LIKE '%seq_1_to_3002%'`)) as {
          INFO: string;
        }[];
      }
      await running;
      expect(rows.map((r) => r.INFO)).toEqual(['/* gatehouse:carol@acme.example */ SELECT COUNT(*) AS s FROM seq_1_to_10000 a, seq_1_to_3002 b']);
    } finally {
      await c.end();
    }
  });
});

describe('a query_topics user on a mysql connection', () => {
  it('gets the topic rewrite in MySQL: EMEA only, over both protocols', async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT region, count(*) FROM orders GROUP BY 1');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('EMEA|33');
    const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user: 'bob@acme.example', password: DEMO_PASSWORD, database: 'warehouse' });
    await c.connect();
    try {
      expect((await c.query({ text: 'SELECT id FROM orders WHERE id = $1', values: [3] })).rows).toEqual([{ id: 3 }]);
      expect((await c.query({ text: 'SELECT id FROM orders WHERE id = $1', values: [1] })).rows).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('count(*)::int is int4 as on PostgreSQL (MySQL answers BIGINT), over both protocols; count(*) stays int8', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      for (const r of [
        await c.query('SELECT count(*)::int AS n, count(*) AS m FROM orders'),
        await c.query({ text: 'SELECT count(*)::int AS n, count(*) AS m FROM orders WHERE id > $1', values: [0] }),
      ]) {
        expect(r.fields.map((f) => f.dataTypeID)).toEqual([23, 20]);
        expect(r.rows).toEqual([{ n: 33, m: '33' }]);
      }
    } finally {
      await c.end();
    }
  });
});

describe('a multi-statement simple Query on a mysql connection', () => {
  it('runs each statement on its own (one per call: a ; can never smuggle a second into the warehouse) with a result each', async () => {
    const r = await psql(gh, 'carol@acme.example', 'SELECT 1 AS a; SELECT COUNT(*) FROM employees;');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1', '10']);
  });
});
