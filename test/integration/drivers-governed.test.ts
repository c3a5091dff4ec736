// Issue 16, "Every driver works, governed", end to end with real psql (and the drivers'
// own texts) against the demo: SQL cursors and prepared statements for bob (query_topics,
// EMEA), transaction characteristics that only tighten, startup options (PGOPTIONS), the
// maintenance database name, pg_sleep for queriers.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { DEMO_PASSWORD, psql, startGatehouse } from '../helpers/gatehouse.ts';
import { RawClient } from '../helpers/raw-client.ts';

const BOB = 'bob@acme.example';
const CAROL = 'carol@acme.example';

/** psql with PGOPTIONS (and any other environment) set. */
function psqlWith(
  gh: { port: number },
  user: string,
  sql: string,
  env: Record<string, string>,
  database = 'warehouse',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      'psql',
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${gh.port} dbname=${database} user=${user} connect_timeout=10`, '-c', sql],
      {
        env: {
          ...process.env,
          PGPASSWORD: DEMO_PASSWORD,
          PGSSLMODE: 'prefer',
          ...env,
        },
        timeout: 30_000,
      },
      (err, stdout, stderr) =>
        done({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

const JDBC_JAR = '/usr/share/java/postgresql.jar';
const PYTHON = '/usr/bin/python3';

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { timeout: 90_000 }, (err, stdout, stderr) => (err ? fail(new Error(`${cmd} failed: ${stderr || err.message}`)) : done(stdout)));
  });
}

describe('issue 16: every driver works, governed', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse();
  }, 120_000);
  afterAll(async () => {
    await gh?.close();
  });

  describe('SQL cursors', () => {
    it('bob reads a topic through DECLARE/FETCH/MOVE/CLOSE in a transaction: EMEA rows only', async () => {
      const r = await psql(
        gh,
        BOB,
        'BEGIN; DECLARE "c_1" CURSOR WITHOUT HOLD FOR SELECT region FROM orders ORDER BY id; FETCH FORWARD 3 FROM "c_1"; MOVE FORWARD 1 FROM "c_1"; FETCH ALL FROM "c_1"; CLOSE "c_1"; COMMIT',
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const regions = lines(r.stdout);
      expect(regions.length).toBeGreaterThan(2);
      expect(new Set(regions)).toEqual(new Set(['EMEA']));
    });
    it('psqlODBC UseDeclareFetch texts: a held cursor outside a transaction, fetch in, close', async () => {
      const r = await psql(
        gh,
        BOB,
        'declare "SQL_CUR0x55d5c0a8e2b0" cursor with hold for select region from customers; fetch 100 in "SQL_CUR0x55d5c0a8e2b0"; close "SQL_CUR0x55d5c0a8e2b0"',
      );
      expect(r.stderr).toBe('');
      expect(new Set(lines(r.stdout))).toEqual(new Set(['EMEA']));
    });
    it('a cursor over a non-topic is refused like the SELECT', async () => {
      const select = await psql(gh, BOB, 'SELECT * FROM employees');
      const cursor = await psql(gh, BOB, 'BEGIN; DECLARE c CURSOR FOR SELECT * FROM employees');
      expect(cursor.code).not.toBe(0);
      expect(cursor.stderr).toContain('relation "employees" is not a topic on connection warehouse');
      expect(cursor.stderr).toBe(select.stderr);
    });
    it('a cursor over a catalog query is declared on the topic catalog', async () => {
      const r = await psql(gh, BOB, "DECLARE c CURSOR FOR SELECT relname FROM pg_catalog.pg_class WHERE relname = 'orders'");
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
    it('FETCH and CLOSE of a catalog cursor run on the topic catalog; CLOSE ALL closes on both upstreams', async () => {
      const r = await psql(
        gh,
        BOB,
        "BEGIN; DECLARE t CURSOR FOR SELECT region FROM orders; DECLARE c CURSOR FOR SELECT relname FROM pg_catalog.pg_class WHERE relname IN ('orders', 'customers') ORDER BY relname; " +
          'FETCH 1 FROM c; FETCH 1 FROM t; FETCH ALL FROM c; CLOSE c; CLOSE ALL; COMMIT',
      );
      expect(r.stderr).toBe('');
      expect(lines(r.stdout)).toEqual(['customers', 'EMEA', 'orders']);
      // Closed: a FETCH of either is the warehouse's 34000.
      const closed = await psql(gh, BOB, 'BEGIN; DECLARE c CURSOR FOR SELECT relname FROM pg_catalog.pg_class; CLOSE ALL; FETCH 1 FROM c');
      expect(closed.stderr).toContain('cursor "c" does not exist');
    });
    it('carol keeps her raw cursors', async () => {
      const r = await psql(
        gh,
        CAROL,
        'BEGIN; DECLARE c SCROLL CURSOR FOR SELECT name FROM employees ORDER BY name; FETCH LAST FROM c; FETCH PRIOR FROM c; CLOSE ALL; COMMIT',
      );
      expect(r.stderr).toBe('');
      expect(lines(r.stdout)).toHaveLength(2);
    });
  });

  describe('real drivers', () => {
    it("psycopg 3 named cursors and SQLAlchemy stream_results (psycopg2) read bob's rows, and refuse non-topics", async () => {
      const out = JSON.parse(await run(PYTHON, [resolve(import.meta.dirname, 'python/named_cursors.py'), String(gh.port), BOB, DEMO_PASSWORD]));
      expect(out).toEqual({ psycopg3: ['EMEA'], psycopg3_employees: '42501', sqlalchemy_stream: ['EMEA'] });
    });
    it('pgjdbc readOnly=true&readOnlyMode=always with autocommit off', async () => {
      for (const user of [BOB, CAROL]) {
        const out = await run('java', ['-cp', JDBC_JAR, resolve(import.meta.dirname, 'java/ReadOnlyJdbc.java'), String(gh.port), user, DEMO_PASSWORD]);
        expect(out, user).toContain('ok=true');
        expect(out).toContain('transaction_read_only=on');
        expect(out).toContain('default_transaction_read_only=on');
      }
    }, 120_000);
  });

  describe('SQL prepared statements', () => {
    it('bob: PREPARE decided like the SELECT, EXECUTE with constants, DEALLOCATE', async () => {
      const r = await psql(
        gh,
        BOB,
        "PREPARE by_region (text) AS SELECT count(*) FROM orders WHERE region = $1; EXECUTE by_region('AMER'); EXECUTE by_region ('EMEA'); DEALLOCATE PREPARE by_region",
      );
      expect(r.stderr).toBe('');
      const [amer, emea] = lines(r.stdout).map(Number);
      expect(amer).toBe(0);
      expect(emea).toBeGreaterThan(0);
    });
    it('bob: a PREPARE over a non-topic, or a denied EXECUTE argument, is refused', async () => {
      expect((await psql(gh, BOB, 'PREPARE p AS SELECT * FROM employees')).stderr).toContain('relation "employees" is not a topic');
      expect((await psql(gh, BOB, "PREPARE p (text) AS SELECT $1; EXECUTE p (pg_read_file('/etc/passwd'))")).stderr).toContain('pg_read_file is not permitted');
    });
    it('psqlODBC quoted names work at every level, DEALLOCATE ALL too', async () => {
      for (const user of [BOB, CAROL]) {
        const r = await psql(
          gh,
          user,
          'PREPARE "_PLAN0x55d5c0a8e2b0" AS SELECT count(*) FROM orders; EXECUTE "_PLAN0x55d5c0a8e2b0"; DEALLOCATE "_PLAN0x55d5c0a8e2b0"; PREPARE x AS SELECT 1; DEALLOCATE ALL',
        );
        expect(r.stderr, user).toBe('');
        expect(Number(lines(r.stdout)[0])).toBeGreaterThan(0);
      }
    });
  });

  describe('transaction characteristics (the texts pgjdbc sends)', () => {
    for (const user of [BOB, CAROL]) {
      it(`${user}: READ ONLY, isolation levels, DEFERRABLE pass; session READ WRITE stays read only`, async () => {
        const r = await psql(
          gh,
          user,
          'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE; ' +
            'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; BEGIN READ ONLY; SELECT count(*) > 0 FROM orders; COMMIT; ' +
            'START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY DEFERRABLE; SHOW transaction_isolation; COMMIT; SHOW default_transaction_read_only',
        );
        // READ WRITE is written READ ONLY, and the client is told so.
        expect(r.stderr.trim()).toMatch(
          /^NOTICE: {2}connection warehouse is read only for .*: the session's transactions stay READ ONLY \(Gatehouse sent SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY\)$/,
        );
        expect(lines(r.stdout)).toEqual(['t', 'repeatable read', 'on']);
      });
      it(`${user}: a transaction's READ WRITE is refused`, async () => {
        const r = await psql(gh, user, 'BEGIN READ WRITE');
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/BEGIN READ WRITE/);
      });
    }
  });

  describe('startup options (PGOPTIONS)', () => {
    it('carol: -c statement_timeout=5000 is applied as SET', async () => {
      const r = await psqlWith(gh, CAROL, 'SHOW statement_timeout', {
        PGOPTIONS: '-c statement_timeout=5000',
      });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('5s');
      const two = await psqlWith(gh, CAROL, 'SHOW lock_timeout; SHOW geqo', {
        PGOPTIONS: '--lock-timeout=7s -cgeqo=off',
      });
      expect(lines(two.stdout)).toEqual(['7s', 'off']);
    });
    it('bob: the governed statement_timeout refuses the startup with a FATAL naming it', async () => {
      const r = await psqlWith(gh, BOB, 'SELECT 1', {
        PGOPTIONS: '-c statement_timeout=5000',
      });
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(
        'FATAL:  startup option -c statement_timeout=5000 refused: SET statement_timeout is not permitted for query_topics users on connection warehouse',
      );
    });
    it('a reported setting comes back in ParameterStatus', async () => {
      const c = await RawClient.connect({
        port: gh.port,
        user: CAROL,
        password: DEMO_PASSWORD,
        params: { options: '-c DateStyle=ISO,\\ DMY -c application_name=from\\ options' },
      });
      try {
        expect(c.parameters.get('DateStyle')).toBe('ISO, DMY');
        expect(c.parameters.get('application_name')).toBe('from options');
      } finally {
        await c.close();
      }
    });
    it('bob: an allowed setting is applied and reported, on the topic catalog too', async () => {
      const r = await psqlWith(gh, BOB, 'SHOW DateStyle', { PGOPTIONS: '-c DateStyle=ISO,\\ DMY' });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('ISO, DMY');
      // A catalog query (version() is answered by the topic catalog) sees the same setting.
      const cat = await psqlWith(gh, BOB, "SELECT version() IS NOT NULL, current_setting('DateStyle')", { PGOPTIONS: '-c DateStyle=ISO,\\ DMY' });
      expect(cat.stderr).toBe('');
      expect(cat.stdout.trim()).toBe('t|ISO, DMY');
    });
    it('any other switch, and a setting the warehouse rejects, refuse the startup', async () => {
      const b = await psqlWith(gh, CAROL, 'SELECT 1', { PGOPTIONS: '-B 100' });
      expect(b.stderr).toContain('FATAL:  startup option -B is not supported through Gatehouse');
      const bad = await psqlWith(gh, CAROL, 'SELECT 1', {
        PGOPTIONS: '-c statement_timeout=soon',
      });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/FATAL: {2}startup options refused by the warehouse: invalid value for parameter "statement_timeout"/);
      const guard = await psqlWith(gh, CAROL, 'SELECT 1', {
        PGOPTIONS: '-c default_transaction_read_only=off',
      });
      expect(guard.stderr).toMatch(/FATAL: {2}startup option -c default_transaction_read_only=off refused: writes are not permitted/);
    });
  });

  describe('database postgres', () => {
    for (const user of [BOB, CAROL]) {
      it(`${user}: postgres and template1 stand for the one connection; psql -l works`, async () => {
        for (const db of ['postgres', 'template1']) {
          const r = await psql(gh, user, 'SELECT current_database()', {
            database: db,
          });
          expect(r.stderr, db).toBe('');
          expect(r.stdout.trim()).toBe('warehouse');
        }
        const list = await new Promise<{ code: number; stderr: string }>((done) =>
          execFile(
            'psql',
            ['-X', '-l', `host=127.0.0.1 port=${gh.port} dbname=postgres user=${user}`],
            {
              env: { ...process.env, PGPASSWORD: DEMO_PASSWORD },
              timeout: 30_000,
            },
            (err, _o, stderr) => done({ code: err ? 1 : 0, stderr }),
          ),
        );
        expect(list.stderr).toBe('');
        expect(list.code).toBe(0);
      });
    }
    it('another unknown name is still 3D000 with the connections listed', async () => {
      const r = await psql(gh, CAROL, 'SELECT 1', { database: 'nope' });
      expect(r.stderr).toContain('connection "nope" does not exist in organization acme');
      expect(r.stderr).toContain('connections you can use: warehouse');
    });
  });

  describe('pg_sleep', () => {
    it('carol may sleep on her own backend; bob may not', async () => {
      expect((await psql(gh, CAROL, 'SELECT pg_sleep(0.05)')).stderr).toBe('');
      const r = await psql(gh, BOB, 'SELECT pg_sleep(0.05)');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('pg_sleep');
    });
    it('pg_terminate_backend and DO stay refused for carol', async () => {
      expect((await psql(gh, CAROL, 'SELECT pg_terminate_backend(pg_backend_pid())')).stderr).toContain('not permitted through Gatehouse');
      expect((await psql(gh, CAROL, 'DO $$ BEGIN END $$')).stderr).toContain('DO is not permitted through Gatehouse');
    });
  });
});
