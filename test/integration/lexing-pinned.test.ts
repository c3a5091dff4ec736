// Queriers' raw SQL is forwarded as written (DESIGN 3): safe only if the warehouse reads
// it exactly as Gatehouse's parser did. The warehouse here is set up the way an attacker
// would like it (ALTER DATABASE ... SET standard_conforming_strings = off, backslash_quote
// = on): Gatehouse must still get a session that lexes with standard_conforming_strings
// on and client_encoding UTF8, whatever the client asks at startup or later.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { DEMO_PASSWORD, DEMO_RULES, demoRulesWith, postgresWarehouseYaml, startGatehouse } from '../helpers/gatehouse.ts';
import { RawClient, ServerError } from '../helpers/raw-client.ts';
import { createAcmeWarehouse, psqlAdmin, requirePostgres } from '../helpers/servers.ts';

const DB = 'gatehouse_it_lexing';
const carol = (port: number, params: Record<string, string> = {}) => RawClient.connect({ port, user: 'carol@acme.example', password: DEMO_PASSWORD, params });
const bob = (port: number, params: Record<string, string> = {}) => RawClient.connect({ port, user: 'bob@acme.example', password: DEMO_PASSWORD, params });

function psqlAs(port: number, user: string, sql: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      'psql',
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${port} dbname=warehouse user=${user}`, '-c', sql],
      { env: { PATH: process.env.PATH ?? '', PGPASSWORD: DEMO_PASSWORD, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let gh: RunningGatehouse;
beforeAll(async () => {
  await requirePostgres();
  createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
  psqlAdmin('test', `ALTER DATABASE ${DB} SET standard_conforming_strings = off; ALTER DATABASE ${DB} SET backslash_quote = on;`);
  gh = await startGatehouse(demoRulesWith(postgresWarehouseYaml(DB)));
});
afterAll(async () => gh?.close());

// One literal each to Gatehouse (standard_conforming_strings on); with it off, the warehouse
// would end the first literal at the second quote and run what follows as statements.
const SMUGGLED = [
  String.raw`SELECT 'x\', '; SET default_transaction_read_only = off; COMMIT; --' AS b`,
  String.raw`SELECT 'a\' AS a, ' ; SELECT name, ssn FROM employees ; -- ' AS b`,
  String.raw`SELECT 'C:\' AS path, '; CREATE TEMP TABLE pwned (x int); --' AS b`,
  String.raw`SELECT length('\'), '; BEGIN READ WRITE; --'`,
];

describe("a querier's raw SQL is read upstream as Gatehouse read it", () => {
  for (const sql of SMUGGLED) {
    it(`one statement, one row: ${sql}`, async () => {
      const c = await carol(gh.port);
      try {
        const r = await c.query(sql, { keepRows: 5 });
        expect(r.errors).toEqual([]);
        expect(r.tags).toEqual(['SELECT 1']);
        expect(r.rows).toBe(1);
        expect(r.columns).toHaveLength(2);
        // The second literal comes back whole, semicolons and all.
        expect(r.firstRows[0][1]).toMatch(/^ ?; /);
        const s = await c.query(`SELECT current_setting('standard_conforming_strings'), current_setting('transaction_read_only')`, { keepRows: 1 });
        expect(s.firstRows[0]).toEqual(['on', 'on']);
      } finally {
        await c.close();
      }
    });
  }

  it('the same through the extended protocol (pg driver, a bound parameter)', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user: 'carol@acme.example', password: DEMO_PASSWORD, database: 'warehouse' });
    await c.connect();
    try {
      const r = await c.query(String.raw`SELECT 'x\' AS a, $1::text AS b`, ['; SELECT 1; --']);
      expect(r.rows).toEqual([{ a: 'x\\', b: '; SELECT 1; --' }]);
    } finally {
      await c.end();
    }
  });
});

describe('the upstream session starts with the lexing settings pinned', () => {
  const settings = `SELECT current_setting('standard_conforming_strings') AS scs, current_setting('client_encoding') AS enc, current_setting('backslash_quote') AS bq`;
  const cases: [string, Record<string, string>][] = [
    ['nothing asked', {}],
    ['startup client_encoding=SQL_ASCII', { client_encoding: 'SQL_ASCII' }],
  ];
  for (const [name, params] of cases) {
    it(`querier, ${name}`, async () => {
      const c = await carol(gh.port, params);
      try {
        const r = await c.query(settings, { keepRows: 1 });
        expect(r.errors).toEqual([]);
        expect(r.firstRows[0]).toEqual(['on', 'UTF8', 'safe_encoding']);
        expect(c.parameters.get('standard_conforming_strings')).toBe('on');
      } finally {
        await c.close();
      }
    });
  }

  it('a startup parameter standard_conforming_strings=off refuses the startup, as the option does (nothing is dropped silently)', async () => {
    for (const params of [{ standard_conforming_strings: 'off' }, { Standard_Conforming_Strings: 'off', backslash_quote: 'on' }] as Record<string, string>[]) {
      const e = await carol(gh.port, params).then(
        async (c) => {
          await c.close();
          return undefined;
        },
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ServerError);
      expect((e as ServerError).fields).toMatchObject({ C: '42501', S: 'FATAL' });
      expect((e as ServerError).fields.M).toMatch(
        /^startup parameter Standard_Conforming_Strings=off refused: standard_conforming_strings stays on|^startup parameter standard_conforming_strings=off refused: standard_conforming_strings stays on/,
      );
    }
  });

  it('startup options -c standard_conforming_strings=off refuse the startup (issue 16: nothing of options is dropped silently)', async () => {
    for (const connect of [carol, bob]) {
      const e = await connect(gh.port, { options: '-c standard_conforming_strings=off -c backslash_quote=on' }).then(
        async (c) => {
          await c.close();
          return undefined;
        },
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ServerError);
      expect((e as ServerError).fields.C).toBe('42501');
      expect((e as ServerError).fields.S).toBe('FATAL');
      expect((e as ServerError).fields.M).toMatch(/^startup option -c standard_conforming_strings=off refused: standard_conforming_strings stays on/);
    }
  });

  for (const reset of ['RESET ALL', 'DISCARD ALL', 'RESET standard_conforming_strings', 'SET standard_conforming_strings TO DEFAULT']) {
    it(`querier, after ${reset} (back to the session default: the startup value, not the database's off)`, async () => {
      const c = await carol(gh.port);
      try {
        await c.query(reset);
        const r = await c.query(settings, { keepRows: 1 });
        expect(r.firstRows[0]).toEqual(['on', 'UTF8', 'safe_encoding']);
        const s = await c.query(`SELECT 'x', '; SELECT 42 AS pwned; --' AS b`, { keepRows: 1 });
        expect(s.columns).toEqual(['?column?', 'b']);
      } finally {
        await c.close();
      }
    });
  }

  it('psql with PGOPTIONS=-c standard_conforming_strings=off is refused at startup, naming the option', async () => {
    const r = await psqlAs(gh.port, 'carol@acme.example', `SELECT current_setting('standard_conforming_strings')`, {
      PGOPTIONS: '-c standard_conforming_strings=off',
    });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('FATAL:  startup option -c standard_conforming_strings=off refused: standard_conforming_strings stays on');
  });

  // psql sends client_encoding=auto (resolved from the locale: SQL_ASCII under LANG=C) only on a
  // terminal; the raw-client cases above send SQL_ASCII themselves.
  it('psql under LANG=C connects; the upstream stays UTF8 and UTF8 text passes unchanged', async () => {
    const r = await psqlAs(gh.port, 'carol@acme.example', `SELECT current_setting('client_encoding') || ' ' || 'ünïcødé ✓'`, { LANG: 'C', LC_ALL: 'C' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('UTF8 ünïcødé ✓');
  });
});

describe('a session that turns a lexing setting off is ended before it sends another statement', () => {
  const attempts: [string, string[]][] = [
    ['SET', ['SET standard_conforming_strings = off']],
    ['SET in a transaction', ['BEGIN', 'SET LOCAL standard_conforming_strings TO off']],
    ['SET and the payload in one Query', ['SET standard_conforming_strings = off; SELECT 1']],
    ['SET client_encoding', ["SET client_encoding = 'SJIS'"]],
  ];
  for (const [name, setup] of attempts) {
    for (const who of ['carol', 'bob'] as const) {
      it(`${who}: ${name}`, async () => {
        const c = await (who === 'carol' ? carol : bob)(gh.port);
        try {
          const setResults = [];
          for (const sql of setup) setResults.push(await c.query(sql));
          const last = setResults[setResults.length - 1];
          // The SET itself is refused (42501, decide() reads it) or the session is ended (the guard behind it).
          expect(last.closedEarly || last.errors.some((e) => e.C === '42501')).toBe(true);
          const r = await c.query(String.raw`SELECT 'x\', '; SELECT 42 AS pwned; --' AS b`, { keepRows: 5 });
          // Never the warehouse running the smuggled statement: at most the one SELECT of two literals.
          expect(r.columns).not.toContain('pwned');
          expect(r.tags.length).toBeLessThanOrEqual(1);
        } finally {
          await c.close();
        }
      });
    }
  }
});

describe('client_encoding at startup: UTF8 (or SQL_ASCII) only', () => {
  for (const enc of ['LATIN1', 'SJIS', 'WIN1252', 'BIG5', 'GBK', 'EUC_JP', 'latin-1', 'auto']) {
    it(`refuses ${enc} with 0A000`, async () => {
      const err = await carol(gh.port, { client_encoding: enc }).then(
        async (c) => {
          await c.close();
          return undefined;
        },
        (e) => e,
      );
      expect(err).toBeInstanceOf(ServerError);
      expect(err.code).toBe('0A000');
      expect(err.fields.M).toContain('Gatehouse speaks UTF8 only');
      expect(err.fields.H).toContain('PGCLIENTENCODING');
    });
  }
  for (const enc of ['UTF8', 'utf8', 'UTF-8', 'Unicode', 'SQL_ASCII', 'sql_ascii']) {
    it(`accepts ${enc}, upstream UTF8`, async () => {
      const c = await bob(gh.port, { client_encoding: enc });
      await c.close();
      const q = await carol(gh.port, { client_encoding: enc });
      try {
        const r = await q.query(`SELECT current_setting('client_encoding')`, { keepRows: 1 });
        expect(r.firstRows[0]).toEqual(['UTF8']);
      } finally {
        await q.close();
      }
    });
  }

  it('psql with PGCLIENTENCODING=LATIN1 is told why', async () => {
    const r = await psqlAs(gh.port, 'carol@acme.example', 'SELECT 1', { PGCLIENTENCODING: 'LATIN1' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Gatehouse speaks UTF8 only');
  });
});
