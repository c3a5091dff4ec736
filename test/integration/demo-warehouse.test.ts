// `npm start -- --warehouse URL` as a new user runs it (DESIGN 4): the launcher started with
// `serve --demo --warehouse URL` in an empty working directory, on free ports. On postgres://
// every DESIGN 5 case holds; on mysql:// the querier, no_access and globex cases, the copy
// (row counts and sums equal to the embedded warehouse's seed) and the accounts' grants. The
// databases and accounts each test makes are named after a random database name and dropped
// at the end.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { openSecret } from '../../src/secrets/envelope.ts';
import { keyFileProvider } from '../../src/secrets/keys.ts';
import { asUser, DEMO_RULES } from '../helpers/gatehouse.ts';
import { type GatehouseProcess, spawnGatehouse } from '../helpers/gatehouse-process.ts';
import { MARIADB, mariadbAdmin, mariadbRun } from '../helpers/mariadb.ts';
import { type ScramCluster, startScramCluster } from '../helpers/scram-cluster.ts';
import { deadPort, PG, psqlAdmin, psqlAdminFile, requirePostgres } from '../helpers/servers.ts';

const BIN = resolve(import.meta.dirname, '../../bin/gatehouse.js');
const suffix = () => Math.random().toString(36).slice(2, 8);

/** The databases and accounts the demo makes for a URL's database. */
function demoNames(db: string) {
  const dbs = [db, `${db}_globex`];
  return { dbs, accounts: dbs.flatMap((d) => [`${d}_querier`, `${d}_topics`]) };
}

function startDemo(url: string, cwd: string): Promise<GatehouseProcess> {
  return spawnGatehouse(process.execPath, [BIN, 'serve', '--demo', '--warehouse', url, '--port', '0', '--admin-port', '0'], { cwd, startTimeoutMs: 120_000 });
}

/** A start that must fail: its exit code and output. */
function failingStart(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, 'serve', ...args, '--port', '0', '--admin-port', '0'], { cwd, timeout: 120_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

/** The generated connection file of an org, and its passwords opened with the demo's master key. */
function generatedConnection(cwd: string, org: string): { yaml: Record<string, unknown>; text: string; password: string; topicsPassword: string } {
  const state = join(cwd, '.gatehouse');
  const dir = readdirSync(state).find((d) => d.startsWith('rules-'));
  if (!dir) throw new Error(`no generated rules in ${state}`);
  const text = readFileSync(join(state, dir, org, 'connections', 'warehouse.yaml'), 'utf8');
  const yaml = parseYaml(text) as Record<string, unknown>;
  const keys = keyFileProvider(join(state, 'master.key'));
  const open = (field: string) => openSecret({ ciphertext: yaml[field] as string, binding: { org, connection: 'warehouse', field } }, keys);
  return { yaml, text, password: open('password'), topicsPassword: open('topics_password') };
}

/** Every file under a directory, as text. */
function allText(dir: string): string {
  let out = '';
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, entry);
    if (statSync(p).isFile()) out += readFileSync(p, 'utf8');
  }
  return out;
}

const regions = async (gh: GatehouseProcess, user: string) => {
  const r = await asUser(gh, user, 'SELECT region, count(*)::int AS n FROM orders GROUP BY region ORDER BY region');
  if (!r.rows) throw new Error(`${user}: ${r.code} ${r.message}`);
  return Object.fromEntries(r.rows.map((row) => [row.region, Number(row.n)]));
};

describe('npm start -- --warehouse postgres://...', () => {
  const db = `ghdw_${suffix()}`;
  const names = demoNames(db);
  let cwd: string;
  let gh: GatehouseProcess;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-demo-pg-'));
    await requirePostgres();
    gh = await startDemo(`postgres://${PG.user}@${PG.host}:${PG.port}/${db}`, cwd);
  }, 180_000);

  afterAll(async () => {
    await gh?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
    psqlAdmin('test', `${names.dbs.map((d) => `DROP DATABASE IF EXISTS ${d} WITH (FORCE);`).join('\n')}\nDROP ROLE IF EXISTS ${names.accounts.join(', ')};`);
  });

  it('bob sees only EMEA, grace EMEA and APAC, erin every region', async () => {
    expect(await regions(gh, 'bob@acme.example')).toEqual({ EMEA: 1667 });
    expect(await regions(gh, 'grace@acme.example')).toEqual({ APAC: 1667, EMEA: 1667 });
    expect(await regions(gh, 'erin@acme.example')).toEqual({ AMER: 1666, APAC: 1667, EMEA: 1667 });
    const email = await asUser(gh, 'bob@acme.example', 'SELECT email FROM customers');
    expect(email.code).toBe('42501');
  });

  it('frank is refused, naming region', async () => {
    const r = await asUser(gh, 'frank@acme.example', 'SELECT count(*) FROM orders');
    expect(r.code).toBe('42501');
    expect(r.message).toContain('region');
  });

  it('carol reads employees and cannot write', async () => {
    expect((await asUser(gh, 'carol@acme.example', 'SELECT count(*)::int AS n FROM employees')).rows).toEqual([{ n: 50 }]);
    const write = await asUser(gh, 'carol@acme.example', 'UPDATE employees SET salary = 0 WHERE id = 1');
    expect(write.code).toBe('42501');
    expect(Number(psqlAdmin(db, 'SELECT salary FROM employees WHERE id = 1').trim())).toBeGreaterThan(0);
  });

  it('dave cannot connect', async () => {
    const r = await asUser(gh, 'dave@acme.example', 'SELECT 1');
    expect(r.code).toBe('42501');
    expect(r.message).toContain('warehouse');
  });

  it("hank's warehouse is globex's and nothing of acme's", async () => {
    expect((await asUser(gh, 'hank@globex.example', 'SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1200 }]);
    expect((await asUser(gh, 'hank@globex.example', 'SELECT count(*)::int AS n FROM shipments')).rows).toEqual([{ n: 900 }]);
    expect((await asUser(gh, 'hank@globex.example', 'SELECT count(*) FROM customers')).code).toBe('42P01');
  });

  it("each org's accounts can connect to their own database only", async () => {
    const connectAs = async (user: string, database: string) => {
      const c = new pg.Client({ host: PG.host, port: PG.port, user, database });
      try {
        await c.connect();
        return 'connected';
      } catch (e) {
        return (e as Error).message;
      } finally {
        await c.end().catch(() => {});
      }
    };
    expect(await connectAs(`${db}_querier`, db)).toBe('connected');
    expect(await connectAs(`${db}_querier`, `${db}_globex`)).toMatch(/permission denied for database/);
    expect(await connectAs(`${db}_topics`, `${db}_globex`)).toMatch(/permission denied for database/);
    expect(await connectAs(`${db}_globex_querier`, db)).toMatch(/permission denied for database/);
    expect(await connectAs(`${db}_globex_topics`, db)).toMatch(/permission denied for database/);
  });

  it("the accounts are least privilege: no superuser, read-only querier, topics account on the topics' fields only", () => {
    const roles = psqlAdmin('test', `SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolconfig FROM pg_roles WHERE rolname LIKE '${db}\\_%' ORDER BY 1`)
      .trim()
      .split('\n');
    expect(roles).toEqual([
      `${db}_globex_querier|f|f|f|{default_transaction_read_only=on}`,
      `${db}_globex_topics|f|f|f|{default_transaction_read_only=on}`,
      `${db}_querier|f|f|f|{default_transaction_read_only=on}`,
      `${db}_topics|f|f|f|{default_transaction_read_only=on}`,
    ]);
    const cols = psqlAdmin(
      db,
      `SELECT table_name || '.' || string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.column_privileges WHERE grantee = '${db}_topics' GROUP BY table_name ORDER BY 1`,
    )
      .trim()
      .split('\n');
    expect(cols).toEqual(['customers.created_at,id,name,region', 'orders.amount,customer_id,id,ordered_at,region,status']);
    expect(
      psqlAdmin(
        db,
        `SELECT has_table_privilege('${db}_topics', 'employees', 'SELECT'), has_table_privilege('${db}_querier', 'employees', 'SELECT'), has_table_privilege('${db}_querier', 'employees', 'UPDATE')`,
      ).trim(),
    ).toBe('f|t|f');
  });

  it('stores the accounts as ciphertexts only, never the admin account, with the master key 0600', () => {
    const acme = generatedConnection(cwd, 'acme');
    expect(acme.yaml).toMatchObject({ kind: 'postgres', host: PG.host, port: PG.port, database: db, user: `${db}_querier`, topics_user: `${db}_topics` });
    expect(acme.yaml.password).toMatch(/^gh1:/);
    const globex = generatedConnection(cwd, 'globex');
    expect(globex.yaml).toMatchObject({ database: `${db}_globex`, user: `${db}_globex_querier` });
    const state = join(cwd, '.gatehouse');
    const everything = allText(join(state, readdirSync(state).find((d) => d.startsWith('rules-'))!));
    for (const secret of [acme.password, acme.topicsPassword, globex.password, globex.topicsPassword]) {
      expect(secret.length).toBeGreaterThan(20);
      expect(everything).not.toContain(secret);
      expect(readFileSync(join(state, 'audit.jsonl'), 'utf8')).not.toContain(secret);
      expect(gh.output()).not.toContain(secret);
    }
    expect(everything).not.toMatch(/^user: postgres$/m);
    expect(statSync(join(state, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('a second start replaces the databases and accounts (new passwords), and serves the same', async () => {
    const before = generatedConnection(cwd, 'acme').password;
    await gh.stop();
    gh = await startDemo(`postgres://${PG.user}@${PG.host}:${PG.port}/${db}`, cwd);
    expect(generatedConnection(cwd, 'acme').password).not.toBe(before);
    expect(await regions(gh, 'bob@acme.example')).toEqual({ EMEA: 1667 });
    expect(psqlAdmin('test', `SELECT count(*) FROM pg_database WHERE datname LIKE '${db}%'`).trim()).toBe('2');
  }, 180_000);
});

describe('npm start -- --warehouse postgres://... on a server that checks passwords', () => {
  let cluster: ScramCluster;
  let gh: GatehouseProcess | undefined;
  let cwd: string;
  const adminPassword = `adm-${suffix()}-pw`;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-demo-scram-'));
    cluster = await startScramCluster();
    cluster.psql('postgres', `ALTER ROLE postgres PASSWORD '${adminPassword}'`);
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
    cluster?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it("signs in with the URL's password to set up, then with the sealed passwords of the new accounts", async () => {
    const wrong = await failingStart(['--demo', '--warehouse', `postgres://postgres:not-${adminPassword}@127.0.0.1:${cluster.port}/ghdw_scram`], cwd);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain('the server refused the admin account');
    expect(wrong.out).not.toContain(adminPassword);
    gh = await startDemo(`postgres://postgres:${adminPassword}@127.0.0.1:${cluster.port}/ghdw_scram`, cwd);
    expect(gh.output()).toContain('postgres://postgres:***@127.0.0.1');
    expect(gh.output()).not.toContain(adminPassword);
    expect((await asUser(gh, 'carol@acme.example', 'SELECT count(*)::int AS n FROM employees')).rows).toEqual([{ n: 50 }]);
    expect(await regions(gh, 'bob@acme.example')).toEqual({ EMEA: 1667 });
    expect((await asUser(gh, 'hank@globex.example', 'SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1200 }]);
  }, 180_000);
});

describe('npm start -- --warehouse mysql://...', () => {
  const db = `ghdw_${suffix()}`;
  const names = demoNames(db);
  let cwd: string;
  const refDbs = [`${db}_ref_acme`, `${db}_ref_globex`];
  let gh: GatehouseProcess;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-demo-my-'));
    await (await mariadbAdmin()).end();
    await requirePostgres();
    gh = await startDemo(`mysql://${MARIADB.user}@${MARIADB.host}:${MARIADB.port}/${db}`, cwd);
  }, 180_000);

  afterAll(async () => {
    await gh?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
    await mariadbRun(
      `${names.dbs.map((d) => `DROP DATABASE IF EXISTS \`${d}\`;`).join('\n')}\n${names.accounts.map((a) => `DROP USER IF EXISTS '${a}'@'%';`).join('\n')}`,
    );
    psqlAdmin('test', refDbs.map((d) => `DROP DATABASE IF EXISTS ${d} WITH (FORCE);`).join('\n'));
  });

  it('carol reads employees and cannot write', async () => {
    expect((await asUser(gh, 'carol@acme.example', 'SELECT count(*) AS n FROM employees')).rows).toEqual([{ n: '50' }]);
    const write = await asUser(gh, 'carol@acme.example', 'DELETE FROM employees');
    expect(write.code).toBe('42501');
    expect(await mariadbRun(`SELECT COUNT(*) AS n FROM \`${db}\`.employees`)).toEqual([{ n: '50' }]);
  });

  it('dave cannot connect', async () => {
    const r = await asUser(gh, 'dave@acme.example', 'SELECT 1');
    expect(r.code).toBe('42501');
  });

  it("hank's warehouse is globex's, and acme's database is refused to it", async () => {
    expect((await asUser(gh, 'hank@globex.example', 'SELECT count(*) AS n FROM orders')).rows).toEqual([{ n: '1200' }]);
    const acme = await asUser(gh, 'hank@globex.example', `SELECT count(*) FROM ${db}.customers`);
    expect(acme.code).toBe('42501');
    expect(acme.message).toMatch(/denied/);
    const globex = await asUser(gh, 'carol@acme.example', `SELECT count(*) FROM ${db}_globex.orders`);
    expect(globex.code).toBe('42501');
  });

  it('copies every table with the row counts and values of the embedded warehouse', async () => {
    // The embedded warehouse's data: the same seed files on PostgreSQL.
    const seeds = [join(DEMO_RULES, 'acme/data/acme.sql'), join(DEMO_RULES, 'globex/data/globex.sql')];
    const my = await mariadbAdmin();
    try {
      for (const [i, ref] of refDbs.entries()) {
        psqlAdmin('test', `DROP DATABASE IF EXISTS ${ref} WITH (FORCE); CREATE DATABASE ${ref};`);
        psqlAdminFile(ref, seeds[i]);
        const tables = psqlAdmin(ref, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").trim().split('\n');
        const [onMysql] = (await my.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY 1', [
          names.dbs[i],
        ])) as unknown as [{ t: string }[]];
        expect(onMysql.map((r) => r.t).sort()).toEqual(['_gatehouse_demo', ...tables].sort());
        for (const t of tables) {
          const expected = Number(psqlAdmin(ref, `SELECT count(*) FROM ${t}`).trim());
          const [[{ n }]] = (await my.query(`SELECT COUNT(*) AS n FROM \`${names.dbs[i]}\`.\`${t}\``)) as unknown as [{ n: number }[]];
          expect(Number(n), `${names.dbs[i]}.${t}`).toBe(expected);
          expect(expected).toBeGreaterThan(0);
        }
      }
      // Values, not only counts: sums of numerics, timestamps in UTC, text.
      const pgOrders = psqlAdmin(
        refDbs[0],
        "SELECT sum(amount), count(DISTINCT status), to_char(min(ordered_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), to_char(max(ordered_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM orders",
      ).trim();
      const [[o]] = (await my.query(
        `SELECT SUM(amount) AS s, COUNT(DISTINCT status) AS d, DATE_FORMAT(MIN(ordered_at), '%Y-%m-%d %H:%i:%s') AS lo, DATE_FORMAT(MAX(ordered_at), '%Y-%m-%d %H:%i:%s') AS hi FROM \`${db}\`.orders`,
      )) as unknown as [Record<string, unknown>[]];
      expect([o.s, o.d, o.lo, o.hi].map(String).join('|')).toBe(pgOrders);
      const pgSsn = psqlAdmin(refDbs[0], 'SELECT ssn FROM employees WHERE id = 7').trim();
      const [[e]] = (await my.query(`SELECT ssn FROM \`${db}\`.employees WHERE id = 7`)) as unknown as [{ ssn: string }[]];
      expect(e.ssn).toBe(pgSsn);
      // Governed reads go through Gatehouse too: carol's view of the copy.
      expect((await asUser(gh, 'carol@acme.example', "SELECT sum(amount) AS s FROM orders WHERE region = 'EMEA'")).rows?.[0].s).toBe(
        psqlAdmin(refDbs[0], "SELECT sum(amount) FROM orders WHERE region = 'EMEA'").trim(),
      );
    } finally {
      await my.end();
    }
  }, 120_000);

  it("grants the querier account SELECT on the copied tables and the topics account the topics' fields, nothing else", async () => {
    const grants = async (account: string) => {
      const rows = (await mariadbRun(`SHOW GRANTS FOR '${account}'@'%'`)) as Record<string, string>[];
      return rows.map((r) => Object.values(r)[0].replace(/ IDENTIFIED BY PASSWORD '[^']*'/, '')).sort();
    };
    expect(await grants(`${db}_querier`)).toEqual(
      [
        `GRANT SELECT ON \`${db}\`.\`customers\` TO \`${db}_querier\`@\`%\``,
        `GRANT SELECT ON \`${db}\`.\`employees\` TO \`${db}_querier\`@\`%\``,
        `GRANT SELECT ON \`${db}\`.\`orders\` TO \`${db}_querier\`@\`%\``,
        `GRANT USAGE ON *.* TO \`${db}_querier\`@\`%\``,
      ].sort(),
    );
    const topics = await grants(`${db}_topics`);
    expect(topics).toHaveLength(3);
    expect(topics.find((g) => g.includes('`customers`'))).toMatch(/^GRANT SELECT \((`[a-z_]+`(, )?){4}\) ON/);
    expect(topics.find((g) => g.includes('`customers`'))).not.toContain('email');
    expect(topics.find((g) => g.includes('`orders`'))).toMatch(/^GRANT SELECT \((`[a-z_]+`(, )?){6}\) ON/);
    expect(topics.join('\n')).not.toContain('employees');
    expect(await grants(`${db}_globex_querier`)).toEqual(
      [
        `GRANT SELECT ON \`${db}_globex\`.\`orders\` TO \`${db}_globex_querier\`@\`%\``,
        `GRANT SELECT ON \`${db}_globex\`.\`shipments\` TO \`${db}_globex_querier\`@\`%\``,
        `GRANT USAGE ON *.* TO \`${db}_globex_querier\`@\`%\``,
      ].sort(),
    );
  });

  it("the sealed passwords sign in, and each org's accounts read nothing of the other's", async () => {
    const acme = generatedConnection(cwd, 'acme');
    const globex = generatedConnection(cwd, 'globex');
    expect(acme.yaml).toMatchObject({ kind: 'mysql', database: db, user: `${db}_querier`, topics_user: `${db}_topics` });
    const as = async (user: string, password: string, sql: string) => {
      const c = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user, password });
      try {
        const [rows] = await c.query(sql);
        return rows as Record<string, unknown>[];
      } catch (e) {
        return (e as Error).message;
      } finally {
        await c.end();
      }
    };
    expect(await as(`${db}_querier`, acme.password, `SELECT COUNT(*) AS n FROM \`${db}\`.customers`)).toEqual([{ n: 300 }]);
    expect(await as(`${db}_querier`, acme.password, `SELECT COUNT(*) FROM \`${db}_globex\`.orders`)).toMatch(/denied/);
    expect(await as(`${db}_topics`, acme.topicsPassword, `SELECT COUNT(*) FROM \`${db}_globex\`.orders`)).toMatch(/denied/);
    expect(await as(`${db}_topics`, acme.topicsPassword, `SELECT email FROM \`${db}\`.customers`)).toMatch(/denied/);
    expect(await as(`${db}_globex_querier`, globex.password, `SELECT COUNT(*) FROM \`${db}\`.customers`)).toMatch(/denied/);
    expect(await as(`${db}_querier`, acme.password, `SELECT * FROM \`${db}\`._gatehouse_demo`)).toMatch(/denied/);
    await expect(mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: `${db}_querier`, password: 'not-the-password' })).rejects.toThrow(
      /Access denied/,
    );
  });

  // query_topics users read through the MySQL dialect emitter (src/sql/dialects/mysql.ts).
  it('bob sees only EMEA, grace EMEA and APAC, erin every region, frank is refused naming region', async () => {
    expect(await regions(gh, 'bob@acme.example')).toEqual({ EMEA: 1667 });
    expect(await regions(gh, 'grace@acme.example')).toEqual({ APAC: 1667, EMEA: 1667 });
    expect(await regions(gh, 'erin@acme.example')).toEqual({ AMER: 1666, APAC: 1667, EMEA: 1667 });
    const frank = await asUser(gh, 'frank@acme.example', 'SELECT count(*) FROM orders');
    expect(frank.code).toBe('42501');
    expect(frank.message).toContain('region');
  });
});

describe('npm start -- --warehouse with a URL it cannot use', () => {
  let cwd: string;
  const secret = `pw-${suffix()}-secret`;
  const db = `ghdw_${suffix()}`;
  beforeAll(() => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-demo-bad-'));
  });
  afterAll(async () => {
    if (!cwd) return;
    rmSync(cwd, { recursive: true, force: true });
    await mariadbRun(`DROP USER IF EXISTS '${db}_weak'@'%'; DROP DATABASE IF EXISTS \`${db}\`;`);
    psqlAdmin('test', `DROP DATABASE IF EXISTS ${db} WITH (FORCE); DROP ROLE IF EXISTS ${db}_weak;`);
  });

  it('a server that cannot be reached fails the start, naming it without the password', async () => {
    const port = await deadPort();
    for (const scheme of ['postgres', 'mysql']) {
      const r = await failingStart(['--demo', '--warehouse', `${scheme}://admin:${secret}@127.0.0.1:${port}/${db}`], cwd);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain(`cannot reach ${scheme === 'postgres' ? 'PostgreSQL' : 'MySQL'} at 127.0.0.1:${port}`);
      expect(r.out).toContain(`${scheme}://admin:***@127.0.0.1:${port}/${db}`);
      expect(r.out).not.toContain(secret);
    }
  }, 60_000);

  it('an admin account without the privileges fails the start and changes nothing', async () => {
    psqlAdmin('test', `CREATE ROLE ${db}_weak LOGIN PASSWORD '${secret}';`);
    const p = await failingStart(['--demo', '--warehouse', `postgres://${db}_weak:${secret}@${PG.host}:${PG.port}/${db}`], cwd);
    expect(p.code, p.out).toBe(1);
    expect(p.out).toContain(`the admin account "${db}_weak" cannot set up the demo: it lacks CREATEDB and CREATEROLE`);
    expect(p.out).not.toContain(secret);
    await mariadbRun(`CREATE USER '${db}_weak'@'%' IDENTIFIED BY '${secret}';`);
    const m = await failingStart(['--demo', '--warehouse', `mysql://${db}_weak:${secret}@${MARIADB.host}:${MARIADB.port}/${db}`], cwd);
    expect(m.code, m.out).toBe(1);
    expect(m.out).toContain('the admin account lacks a privilege the demo needs');
    expect(m.out).not.toContain(secret);
    expect(psqlAdmin('test', `SELECT count(*) FROM pg_database WHERE datname LIKE '${db}%'`).trim()).toBe('0');
  }, 120_000);

  it('a database of that name that the demo did not make is left alone', async () => {
    psqlAdmin('test', `CREATE DATABASE ${db};`);
    psqlAdmin(db, 'CREATE TABLE precious (id int); INSERT INTO precious VALUES (1);');
    const p = await failingStart(['--demo', '--warehouse', `postgres://${PG.user}@${PG.host}:${PG.port}/${db}`], cwd);
    expect(p.code, p.out).toBe(1);
    expect(p.out).toContain(`database "${db}" exists and was not made by the Gatehouse demo`);
    expect(psqlAdmin(db, 'SELECT count(*) FROM precious').trim()).toBe('1');
    await mariadbRun(`CREATE DATABASE \`${db}\`; CREATE TABLE \`${db}\`.precious (id int); INSERT INTO \`${db}\`.precious VALUES (1);`);
    const m = await failingStart(['--demo', '--warehouse', `mysql://${MARIADB.user}@${MARIADB.host}:${MARIADB.port}/${db}`], cwd);
    expect(m.code, m.out).toBe(1);
    expect(m.out).toContain(`database "${db}" exists and was not made by the Gatehouse demo`);
    expect(await mariadbRun(`SELECT COUNT(*) AS n FROM \`${db}\`.precious`)).toEqual([{ n: '1' }]);
  }, 120_000);

  it('--warehouse needs --demo, and a URL it cannot read is refused before anything starts', async () => {
    const noDemo = await failingStart(['--warehouse', 'mysql://root@127.0.0.1/x'], cwd);
    expect(noDemo.code).toBe(1);
    expect(noDemo.out).toContain('--warehouse loads the demo into a warehouse: use it with --demo');
    const bad = await failingStart(['--demo', '--warehouse', `oracle://a:${secret}@h/x`], cwd);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('--warehouse must be a postgres:// or mysql:// URL');
    expect(bad.out).not.toContain(secret);
  }, 60_000);
});
