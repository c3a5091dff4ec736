// DESIGN section 5 on MariaDB: the demo organizations with their `warehouse` connections of kind
// mysql (acme's and globex's own databases, least-privilege accounts), the demo data copied
// from a PostgreSQL database seeded with rules/<org>/data/*.sql, and every case through real
// clients: psql (simple protocol), node-postgres (extended protocol, parameters), pgjdbc and
// psycopg2. Also the topic catalog (psql \dt and \d), a hidden-row barrier case end to end,
// the audit record with the emitted MySQL text, queriers' MySQL-only syntax and refusals.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { DEMO_PASSWORD, DEMO_RULES, demoRulesWith, pgClient, psql } from '../helpers/gatehouse.ts';
import { MARIADB, freshMariadbDatabase, mariadbRun } from '../helpers/mariadb.ts';
import { PG } from '../helpers/servers.ts';

const TAG = `gh_mgov_${process.pid}`;
const SEED = { acme: `${TAG}_seed_acme`, globex: `${TAG}_seed_globex` };
const DB = { acme: `${TAG}_acme`, globex: `${TAG}_globex` };
// MariaDB user names: at most 80 characters, unique per run.
const ACCOUNTS = { acmeReader: `${TAG}_ar`, acmeTopics: `${TAG}_at`, globexReader: `${TAG}_gr`, globexTopics: `${TAG}_gt` };
const PW = `pw-${TAG}`;
process.env.GH_MGOV_PW = PW;

function connectionYaml(database: string, reader: string, topics: string, groups: Record<string, string>): string {
  return `kind: mysql
host: 127.0.0.1
port: 3306
database: ${database}
user: ${reader}
password_env: GH_MGOV_PW
topics_user: ${topics}
topics_password_env: GH_MGOV_PW
allow_writes: false
permissions:
  default: no_access
  groups:
${Object.entries(groups)
  .map(([g, l]) => `    ${g}: ${l}`)
  .join('\n')}
`;
}

/** MariaDB tables shaped like the demo's PostgreSQL ones (timestamptz as TIMESTAMP, read in UTC). */
const TABLES: Record<'acme' | 'globex', Record<string, { ddl: string; select: string }>> = {
  acme: {
    customers: {
      ddl: 'CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(100) NOT NULL, region VARCHAR(10) NOT NULL, created_at TIMESTAMP NOT NULL)',
      select: 'SELECT id, name, email, region, created_at FROM customers ORDER BY id',
    },
    orders: {
      ddl: 'CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, region VARCHAR(10) NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(20) NOT NULL, ordered_at TIMESTAMP NOT NULL)',
      select: 'SELECT id, customer_id, region, amount, status, ordered_at FROM orders ORDER BY id',
    },
    employees: {
      ddl: 'CREATE TABLE employees (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(100) NOT NULL, salary DECIMAL(10,2) NOT NULL, ssn VARCHAR(20) NOT NULL)',
      select: 'SELECT id, name, email, salary, ssn FROM employees ORDER BY id',
    },
  },
  globex: {
    orders: {
      ddl: 'CREATE TABLE orders (id INT PRIMARY KEY, region VARCHAR(10) NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(20) NOT NULL, ordered_at TIMESTAMP NOT NULL)',
      select: 'SELECT id, region, amount, status, ordered_at FROM orders ORDER BY id',
    },
    shipments: {
      ddl: 'CREATE TABLE shipments (id INT PRIMARY KEY, order_id INT NOT NULL, carrier VARCHAR(20) NOT NULL, shipped_at TIMESTAMP NOT NULL)',
      select: 'SELECT id, order_id, carrier, shipped_at FROM shipments ORDER BY id',
    },
  },
};

/** Seeds a PostgreSQL database with the org's demo SQL and copies every table's rows into the MariaDB database. */
async function loadDemoData(org: 'acme' | 'globex'): Promise<void> {
  const admin = new pg.Client(PG);
  await admin.connect().catch((e) => {
    throw new Error(`this test needs PostgreSQL at ${PG.host}:${PG.port} to seed the demo data: ${(e as Error).message}`);
  });
  await admin.query(`DROP DATABASE IF EXISTS ${SEED[org]} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${SEED[org]}`);
  await admin.end();
  const seed = new pg.Client({ ...PG, database: SEED[org] });
  await seed.connect();
  const maria = await mysql.createConnection({ ...MARIADB, database: DB[org] });
  try {
    await seed.query("SET TimeZone = 'UTC'");
    await seed.query(readFileSync(join(DEMO_RULES, org, 'data', `${org}.sql`), 'utf8'));
    await maria.query("SET time_zone = '+00:00'");
    for (const [table, { select }] of Object.entries(TABLES[org])) {
      // Every value as text: timestamps as 'YYYY-MM-DD HH:MM:SS' in UTC, numerics exactly.
      const r = await seed.query({ text: select, rowMode: 'array', types: { getTypeParser: () => (v: string) => v.replace(/\+00$/, '') } });
      const rows = r.rows as string[][];
      for (let i = 0; i < rows.length; i += 1000) await maria.query(`INSERT INTO ${table} VALUES ?`, [rows.slice(i, i + 1000)]);
    }
  } finally {
    await seed.end();
    await maria.end();
    const drop = new pg.Client(PG);
    await drop.connect();
    await drop.query(`DROP DATABASE IF EXISTS ${SEED[org]} WITH (FORCE)`);
    await drop.end();
  }
}

let gh: RunningGatehouse;
let rulesDir: string;
let stateDir: string;
let auditPath: string;

beforeAll(async () => {
  await freshMariadbDatabase(
    DB.acme,
    Object.values(TABLES.acme)
      .map((t) => `${t.ddl};`)
      .join('\n'),
    { [ACCOUNTS.acmeReader]: PW, [ACCOUNTS.acmeTopics]: PW },
  );
  await freshMariadbDatabase(
    DB.globex,
    Object.values(TABLES.globex)
      .map((t) => `${t.ddl};`)
      .join('\n'),
    { [ACCOUNTS.globexReader]: PW, [ACCOUNTS.globexTopics]: PW },
  );
  await loadDemoData('acme');
  await loadDemoData('globex');
  // Least privilege: the querier accounts SELECT on their database, the topics accounts the topics' columns only.
  await mariadbRun(`GRANT SELECT ON \`${DB.acme}\`.* TO '${ACCOUNTS.acmeReader}'@'%';
    GRANT SELECT (id, customer_id, region, amount, status, ordered_at) ON \`${DB.acme}\`.orders TO '${ACCOUNTS.acmeTopics}'@'%';
    GRANT SELECT (id, name, region, created_at) ON \`${DB.acme}\`.customers TO '${ACCOUNTS.acmeTopics}'@'%';
    GRANT SELECT ON \`${DB.globex}\`.* TO '${ACCOUNTS.globexReader}'@'%';
    GRANT SELECT (id, region, amount, status, ordered_at) ON \`${DB.globex}\`.orders TO '${ACCOUNTS.globexTopics}'@'%';`);
  rulesDir = demoRulesWith(
    connectionYaml(DB.acme, ACCOUNTS.acmeReader, ACCOUNTS.acmeTopics, { 'sales-emea': 'query_topics', 'sales-leads': 'query_topics', analysts: 'querier' }),
  );
  writeFileSync(
    join(rulesDir, 'globex/connections/warehouse.yaml'),
    connectionYaml(DB.globex, ACCOUNTS.globexReader, ACCOUNTS.globexTopics, { ops: 'query_topics' }),
  );
  stateDir = mkdtempSync(join(tmpdir(), 'gatehouse-mgov-state-'));
  auditPath = join(stateDir, 'audit.jsonl');
  gh = await serve({
    rulesDir,
    host: '127.0.0.1',
    port: 0,
    adminPort: 0,
    stateDir,
    auditPath,
    logger: pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'silent' }),
  });
}, 180_000);

afterAll(async () => {
  await gh?.close();
  if (rulesDir) rmSync(rulesDir, { recursive: true, force: true });
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  await mariadbRun(`DROP DATABASE IF EXISTS \`${DB.acme}\`; DROP DATABASE IF EXISTS \`${DB.globex}\`;
    ${Object.values(ACCOUNTS)
      .map((u) => `DROP USER IF EXISTS '${u}'@'%';`)
      .join('\n')}`).catch(() => undefined);
});

const BOB = 'bob@acme.example';
const GRACE = 'grace@acme.example';
const ERIN = 'erin@acme.example';
const FRANK = 'frank@acme.example';
const CAROL = 'carol@acme.example';
const DAVE = 'dave@acme.example';
const HANK = 'hank@globex.example';

const REGIONS = 'SELECT region, count(*) FROM orders GROUP BY region ORDER BY region';
/** What each query_topics user sees of acme's orders by region (rules/acme/data/acme.sql). */
const SEES: Record<string, string[]> = {
  [BOB]: ['EMEA|1667'],
  [GRACE]: ['APAC|1667', 'EMEA|1667'],
  [ERIN]: ['AMER|1666', 'APAC|1667', 'EMEA|1667'],
};

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

/** The last audit record that matches, waiting for the audit file's batched write. */
async function auditRecordWhere(pred: (r: Record<string, unknown>) => boolean): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 50; i++) {
    const text = readFileSync(auditPath, 'utf8').trim();
    const found = text
      ? text
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter(pred)
          .at(-1)
      : undefined;
    if (found) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

describe('DESIGN 5 on a mysql warehouse, through psql (simple protocol)', () => {
  for (const user of [BOB, GRACE, ERIN]) {
    it(`${user} sees ${SEES[user].map((r) => r.split('|')[0]).join(' and ')}`, async () => {
      const r = await psql(gh, user, REGIONS);
      expect(r.stderr).toBe('');
      expect(lines(r.stdout)).toEqual(SEES[user]);
    });
  }

  it('bob: customers without email, and email is not a field', async () => {
    const r = await psql(gh, BOB, 'SELECT count(*), min(name) FROM customers');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['100|Customer 102']);
    const e = await psql(gh, BOB, 'SELECT email FROM customers');
    expect(e.code).not.toBe(0);
    expect(e.stderr).toMatch(/email/);
  });

  it('bob: a join, an expression, ORDER BY and LIMIT on the topics', async () => {
    const r = await psql(
      gh,
      BOB,
      "SELECT o.id, c.name, o.amount * 2 AS twice, o.status || '!' AS s FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id LIMIT 2",
    );
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['2|Customer 75|326.76|refunded!', '5|Customer 186|801.90|open!']);
  });

  it('frank is refused naming region', async () => {
    const r = await psql(gh, FRANK, REGIONS);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/region/);
    expect(r.stderr).toMatch(/attribute/);
  });

  it('bob: raw SQL on a warehouse table is refused with 42501 naming the topics', async () => {
    const r = await psql(gh, BOB, 'SELECT * FROM employees');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/customers, orders/);
  });

  it("carol reads employees (MySQL's own SQL: backticks, LIMIT a,b) but cannot write", async () => {
    const r = await psql(gh, CAROL, 'SELECT `id`, name, ssn FROM employees ORDER BY id LIMIT 1, 2');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['2|Employee 2|102-12-0194', '3|Employee 3|103-13-0291']);
    expect((await psql(gh, CAROL, 'SELECT COUNT(*) FROM employees')).stdout.trim()).toBe('50');
    for (const sql of [
      'DELETE FROM employees',
      'UPDATE employees SET salary = 0',
      "SELECT * FROM employees INTO OUTFILE '/tmp/gh_mgov_out'",
      "SELECT LOAD_FILE('/etc/passwd')",
      'SELECT SLEEP(5)',
    ]) {
      const w = await psql(gh, CAROL, sql);
      expect(w.code, sql).not.toBe(0);
      expect(w.stderr, sql).toMatch(/permitted|refused|not allowed|denied/i);
    }
  });

  it('carol: a multi-statement Query with a transaction (BEGIN as START TRANSACTION READ ONLY)', async () => {
    const r = await psql(gh, CAROL, 'BEGIN; SELECT COUNT(*) FROM orders; COMMIT');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['5000']);
  });

  it('dave cannot connect (42501 naming the connection)', async () => {
    const r = await psql(gh, DAVE, 'SELECT 1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no access to connection "warehouse"/);
  });

  it("hank's warehouse is globex's: its orders, nothing of acme's", async () => {
    const r = await psql(gh, HANK, 'SELECT COUNT(*), MIN(region), MAX(region) FROM orders');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['1200|NORTH|SOUTH']);
    const acme = await psql(gh, HANK, 'SELECT COUNT(*) FROM customers');
    expect(acme.code).not.toBe(0);
    expect(acme.stderr).toMatch(/doesn't exist|does not exist/);
    const other = await psql(gh, HANK, `SELECT COUNT(*) FROM \`${DB.acme}\`.employees`);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/denied/i);
  });

  it('session statements clients send are answered for every level', async () => {
    for (const user of [BOB, CAROL]) {
      const r = await psql(
        gh,
        user,
        "SET extra_float_digits = 3; SET application_name = 'jdbc'; SHOW application_name; SHOW transaction isolation level; SHOW standard_conforming_strings; RESET ALL; SHOW application_name; DISCARD ALL",
      );
      expect(r.stderr, user).toBe('');
      expect(lines(r.stdout), user).toEqual(['jdbc', 'repeatable read', 'on', 'psql']);
    }
  });
});

describe('the topic catalog on a mysql connection', () => {
  it('psql \\dt as bob lists the topics', async () => {
    const r = await psql(gh, BOB, '\\dt');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout).map((l) => l.split('|').slice(0, 3).join('|'))).toEqual(['public|customers|table', 'public|orders|table']);
  });

  it('psql \\d orders as bob shows the fields with their types', async () => {
    const r = await psql(gh, BOB, '\\d orders');
    expect(r.stderr).toBe('');
    const cols = lines(r.stdout).map((l) => l.split('|').slice(0, 2).join('|'));
    expect(cols).toEqual([
      'id|integer',
      'customer_id|integer',
      'region|character varying',
      'amount|numeric',
      'status|character varying',
      'ordered_at|timestamp with time zone',
    ]);
  });
});

describe('the barrier and the audit on a mysql connection', () => {
  // On a hidden (non-EMEA) row the CASE takes its ELSE, which overflows BIGINT: an error even in a SELECT.
  const HIDDEN_ROW_BOMB = "SELECT count(*) FROM orders WHERE CASE WHEN region = 'EMEA' THEN 1 ELSE id + 9223372036854775807 END = 1";

  it('without the fence MariaDB evaluates the condition on hidden rows (the case can fail)', async () => {
    const c = await mysql.createConnection({ ...MARIADB, database: DB.acme });
    try {
      await expect(
        c.query(
          `SELECT count(*) FROM (SELECT id, region FROM orders WHERE region = 'EMEA') AS o WHERE CASE WHEN region = 'EMEA' THEN 1 ELSE id + 9223372036854775807 END = 1`,
        ),
      ).rejects.toThrow(/BIGINT value is out of range/);
    } finally {
      await c.end();
    }
  });

  it("through Gatehouse bob's condition never runs on a hidden row", async () => {
    const r = await psql(gh, BOB, HIDDEN_ROW_BOMB);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1667');
  });

  it('EXPLAIN shows the MySQL text, and the audit record carries the emitted SQL', async () => {
    const ex = await psql(gh, BOB, 'EXPLAIN SELECT id FROM orders WHERE id = 42');
    expect(ex.stderr).toBe('');
    expect(ex.stdout).toContain('LIMIT 18446744073709551615 OFFSET 0');
    expect(ex.stdout).toContain('`orders`');
    await psql(gh, BOB, 'SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status');
    const rec = await auditRecordWhere((r) => r.user === BOB && r.statement === 'SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status');
    expect(rec).toBeDefined();
    expect(rec!.decision).toBe('rewritten');
    expect(rec!.topics).toEqual(['orders']);
    const sent = (rec!.sent_sql as string[])[0];
    expect(sent).toContain('FROM `orders` WHERE');
    expect(sent).toContain("= 'EMEA'");
    expect(sent).toContain('COUNT(*)');
  });
});

describe('DESIGN 5 on a mysql warehouse, through node-postgres (extended protocol, parameters)', () => {
  const byRegion = 'SELECT region, count(*) AS n FROM orders WHERE id <= $1 GROUP BY region ORDER BY region';
  const want: Record<string, { region: string; n: string }[]> = {
    [BOB]: [{ region: 'EMEA', n: '333' }],
    [GRACE]: [
      { region: 'APAC', n: '334' },
      { region: 'EMEA', n: '333' },
    ],
    [ERIN]: [
      { region: 'AMER', n: '333' },
      { region: 'APAC', n: '334' },
      { region: 'EMEA', n: '333' },
    ],
  };

  for (const user of [BOB, GRACE, ERIN]) {
    it(`${user}: a parameter, twice through a named statement`, async () => {
      const c = await pgClient(gh, user);
      try {
        for (let i = 0; i < 2; i++) {
          const r = await c.query({ name: 'by_region', text: byRegion, values: [1000] });
          expect(r.rows).toEqual(want[user]);
          expect(r.fields.map((f) => f.dataTypeID)).toEqual([1043, 20]);
        }
      } finally {
        await c.end();
      }
    });
  }

  it('bob: a boolean expression is a PostgreSQL boolean; text parameters compare as PostgreSQL does', async () => {
    const c = await pgClient(gh, BOB);
    try {
      const r = await c.query('SELECT id, amount > $1 AS big FROM orders WHERE status = $2 AND id < $3 ORDER BY id', ['100', 'paid', 20]);
      expect(r.fields.map((f) => f.dataTypeID)).toEqual([23, 16]);
      expect(r.rows).toEqual([{ id: 8, big: true }]);
      // PostgreSQL's collation: 'EMEA ' and 'emea' are not EMEA.
      expect((await c.query('SELECT count(*) AS n FROM orders WHERE region = $1', ['emea'])).rows).toEqual([{ n: '0' }]);
    } finally {
      await c.end();
    }
  });

  it('frank is refused naming region; bob may not read employees', async () => {
    const f = await pgClient(gh, FRANK);
    try {
      const e = await f.query('SELECT id FROM orders WHERE id = $1', [1]).catch((x) => x);
      expect(e.code).toBe('42501');
      expect(e.message).toMatch(/region/);
    } finally {
      await f.end();
    }
    const b = await pgClient(gh, BOB);
    try {
      expect((await b.query('SELECT * FROM employees WHERE id = $1', [1]).catch((x) => x)).code).toBe('42501');
    } finally {
      await b.end();
    }
  });

  it("carol: MySQL's ? placeholders with parameters; a write refused with 42501", async () => {
    const c = await pgClient(gh, CAROL);
    try {
      expect((await c.query('SELECT name FROM employees WHERE id = ?', [7])).rows).toEqual([{ name: 'Employee 7' }]);
      const e = await c.query('DELETE FROM employees WHERE id = ?', [7]).catch((x) => x);
      expect(e.code).toBe('42501');
      // MySQL-only syntax works; writes, INTO OUTFILE, LOAD_FILE and SLEEP are 42501, and the session goes on.
      expect((await c.query('SELECT `name` FROM employees ORDER BY id LIMIT 3, 1')).rows).toEqual([{ name: 'Employee 4' }]);
      for (const sql of [
        'UPDATE employees SET salary = 0',
        "SELECT name FROM employees INTO OUTFILE '/tmp/gh_mgov_out2'",
        "SELECT LOAD_FILE('/etc/hostname') AS f",
        'SELECT SLEEP(3) AS s',
        'TRUNCATE employees',
      ]) {
        const w = await c.query(sql).catch((x) => x);
        expect(w.code, sql).toBe('42501');
      }
      expect((await c.query('SELECT COUNT(*) AS n FROM employees')).rows).toEqual([{ n: '50' }]);
    } finally {
      await c.end();
    }
  });

  it("session statements over the extended protocol: SET and SHOW answered by Gatehouse, BEGIN/COMMIT as MySQL's", async () => {
    for (const user of [BOB, CAROL]) {
      const c = await pgClient(gh, user);
      try {
        await c.query({ name: 'set_app', text: "SET application_name = 'extended'" });
        const show = await c.query({ name: 'show_app', text: 'SHOW application_name' });
        expect(show.fields.map((f) => [f.name, f.dataTypeID])).toEqual([['application_name', 25]]);
        expect(show.rows).toEqual([{ application_name: 'extended' }]);
        await c.query({ name: 'begin', text: 'BEGIN' });
        await c.query({ name: 'set_local', text: "SET LOCAL application_name = 'local'" });
        expect((await c.query({ name: 'show_app2', text: 'SHOW application_name' })).rows).toEqual([{ application_name: 'local' }]);
        await c.query({ name: 'commit', text: 'COMMIT' });
        expect((await c.query({ name: 'show_app3', text: 'SHOW application_name' })).rows).toEqual([{ application_name: 'extended' }]);
        const iso = await c.query({ name: 'iso', text: 'SHOW transaction isolation level' });
        expect(iso.rows).toEqual([{ transaction_isolation: 'repeatable read' }]);
      } finally {
        await c.end();
      }
    }
  });

  it('a SET is audited as answered: nothing was sent to the warehouse', async () => {
    await psql(gh, CAROL, 'SET extra_float_digits = 2');
    const rec = await auditRecordWhere((r) => r.user === CAROL && r.statement === 'SET extra_float_digits = 2');
    expect(rec).toMatchObject({ decision: 'answered', sent_sql: [] });
  });

  it('dave cannot connect', async () => {
    await expect(pgClient(gh, DAVE)).rejects.toMatchObject({ code: '42501' });
  });

  it('hank: globex only, with a parameter', async () => {
    const c = await pgClient(gh, HANK);
    try {
      expect((await c.query('SELECT COUNT(*) AS n FROM orders WHERE id <= ?', [100])).rows).toEqual([{ n: '100' }]);
    } finally {
      await c.end();
    }
  });
});

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const JDBC_JAR = '/usr/share/java/postgresql.jar';

describe('pgjdbc and psycopg2 on a mysql warehouse', () => {
  async function jdbc(user: string, query: string, prepared: string, refused: string): Promise<Record<string, string[]>> {
    const r = await run('java', [
      '-cp',
      JDBC_JAR,
      resolve(import.meta.dirname, 'java/MysqlGovernedJdbc.java'),
      String(gh.port),
      user,
      DEMO_PASSWORD,
      query,
      prepared,
      refused,
    ]);
    if (r.code !== 0) throw new Error(`pgjdbc (java, ${JDBC_JAR}: Debian's libpostgresql-jdbc-java) failed: ${r.stderr}`);
    return Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t'))
        .map(([name, ...rest]) => [name, rest]),
    );
  }

  async function psycopg2(user: string, query: string, withParam: string, refused: string): Promise<Record<string, { rows?: string[][]; sqlstate?: string }>> {
    const r = await run('/usr/bin/python3', [
      resolve(import.meta.dirname, 'python/mysql_governed.py'),
      String(gh.port),
      user,
      DEMO_PASSWORD,
      query,
      withParam,
      refused,
    ]);
    if (r.code !== 0) throw new Error(`psycopg2 (/usr/bin/python3, Debian's python3-psycopg2) failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}');
  }

  it('pgjdbc as bob: EMEA only (autocommit off: BEGIN, COMMIT), a PreparedStatement, employees refused', async () => {
    const out = await jdbc(BOB, REGIONS, 'SELECT count(*) FROM orders WHERE id <= ?', 'SELECT * FROM employees');
    expect(out.query).toEqual(['OK', 'EMEA:1667']);
    expect(out.prepared).toEqual(['OK', '333;333']);
    expect(out.refused?.slice(0, 2)).toEqual(['ERR', '42501']);
  });

  it("pgjdbc's DatabaseMetaData as bob (catalog and topic statements in one session, server-prepared, autocommit off)", async () => {
    const r = await run('java', ['-cp', JDBC_JAR, resolve(import.meta.dirname, 'java/MetadataJdbc.java'), String(gh.port), BOB, DEMO_PASSWORD]);
    if (r.code !== 0) throw new Error(`pgjdbc (java, ${JDBC_JAR}) failed: ${r.stderr}`);
    const md = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(md.tables).toBe('customers,orders');
    expect(md['columns.customers']).toBe('id:INTEGER:int4,name:VARCHAR:varchar,region:VARCHAR:varchar,created_at:TIMESTAMP:timestamptz');
    expect(md['columns.orders']).toContain('amount:NUMERIC:numeric');
    expect(md['columns.employees']).toBe('');
    expect(Object.values(md).join('\n')).not.toMatch(/\b(employees|email|ssn|salary)\b/);
    expect(md.regions).toBe('EMEA');
    expect(md.tables_in_transaction).toBe('customers,orders');
    expect(md.orders_in_transaction).toBe('1667');
  }, 120_000);

  it('pgjdbc as carol: the warehouse, a write refused', async () => {
    const out = await jdbc(CAROL, 'SELECT region, COUNT(*) FROM orders GROUP BY region ORDER BY region', '-', 'DELETE FROM employees');
    expect(out.query).toEqual(['OK', 'AMER:1666,APAC:1667,EMEA:1667']);
    expect(out.refused?.slice(0, 2)).toEqual(['ERR', '42501']);
  });

  it('psycopg2 as bob: EMEA only, a client-side parameter, employees refused', async () => {
    const out = await psycopg2(BOB, REGIONS, 'SELECT count(*) FROM orders WHERE id <= %s', 'SELECT * FROM employees');
    expect(out.query).toEqual({ rows: [['EMEA', '1667']] });
    expect(out.param).toEqual({ rows: [['333']] });
    expect(out.refused?.sqlstate).toBe('42501');
    expect(out.isolation).toEqual({ rows: [['repeatable read']] });
  });

  it('psycopg2 as carol: employees read, a write refused', async () => {
    const out = await psycopg2(
      CAROL,
      'SELECT COUNT(*) FROM employees',
      'SELECT COUNT(*) FROM orders WHERE id <= %s',
      'INSERT INTO employees (id) VALUES (999)',
    );
    expect(out.query).toEqual({ rows: [['50']] });
    expect(out.param).toEqual({ rows: [['1000']] });
    expect(out.refused?.sqlstate).toBe('42501');
  });
});
