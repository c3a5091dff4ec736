// Driver matrix (issue 16): pgcli (Debian's pgcli, over psycopg 3), as bob and carol against the
// demo Gatehouse. pgcli is interactive, but it runs non-interactively two ways: `pgcli -l` lists
// the databases and exits (it always connects to database `postgres` for that), and a script on
// stdin is read line by line as if typed (TERM=dumb keeps prompt_toolkit from drawing; csv output;
// --row-limit 0 so no "continue?" prompt eats the next line). pgcli's own catalog commands (\dt,
// \d, \l) and its completion refresher run the catalog queries it sends.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { DEMO_PASSWORD, startGatehouse } from '../../helpers/gatehouse.ts';
import { BOB, driverSuite, missingCommand, SEES, type User, USERS } from './matrix.ts';

interface Pgcli {
  code: number;
  stdout: string;
  stderr: string;
  /** pgcli's log file: each failed statement is logged with psycopg's exception class (InsufficientPrivilege is 42501). */
  log: string;
}

/** The pgclirc every run uses: no pager, no keyring, csv tables, no timing or toolbar, files in `dir`. */
function pgclirc(dir: string): string {
  const file = join(dir, 'pgclirc');
  writeFileSync(
    file,
    [
      '[main]',
      'table_format = csv',
      'timing = False',
      'show_bottom_toolbar = False',
      'less_chatty = True',
      'enable_pager = False',
      'keyring = False',
      'destructive_warning = off',
      `log_file = ${join(dir, 'log')}`,
      `history_file = ${join(dir, 'history')}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** pgcli as `user` with PGPASSWORD, its own HOME and pgclirc, `script` on stdin. */
function pgcli(port: number, user: string, args: string[], script = ''): Promise<Pgcli> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pgcli-'));
  const rc = pgclirc(dir);
  return new Promise((done) => {
    const child = execFile(
      'pgcli',
      ['--pgclirc', rc, '--row-limit', '0', '-h', '127.0.0.1', '-p', String(port), '-U', user, ...args],
      {
        env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: join(dir, '.config'), PGPASSWORD: DEMO_PASSWORD, PGSSLMODE: 'prefer', TERM: 'dumb', PAGER: 'cat' },
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        let log = '';
        try {
          log = readFileSync(join(dir, 'log'), 'utf8');
        } catch {
          // no log written
        }
        rmSync(dir, { recursive: true, force: true });
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, log });
      },
    );
    child.stdin?.end(script);
  });
}

/** stdout of a scripted session cut at pgcli's prompts: each statement typed, with the lines it printed. */
function blocks(r: Pgcli, database = 'warehouse'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of r.stdout.replace(/\r/g, '').split('\n')) {
    if (line.startsWith(`${database}> `)) {
      current = [];
      out.set(line.slice(database.length + 2), current);
    } else if (current && line !== '') {
      current.push(line);
    }
  }
  return out;
}

/** The unquoted fields of pgcli's csv output (no field here holds a comma or a quote). */
const csv = (lines: string[]) => lines.map((l) => l.split(',').map((f) => f.replace(/^"(.*)"$/, '$1')));

const STATEMENTS = {
  connect: 'SELECT current_database(), current_user;',
  governed: 'SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1;',
  allRows: 'SELECT count(*), sum(id) FROM (SELECT id FROM orders) s;',
  manyRows: 'SELECT id FROM orders ORDER BY id;',
  refused: {
    [BOB]: 'SELECT * FROM employees;',
    'carol@acme.example': "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000');",
  } as Record<User, string>,
  dt: '\\dt',
  d: '\\d customers',
  terminate: 'SELECT pg_terminate_backend(pg_backend_pid());',
  searchPath: 'SET search_path TO public;',
  after: 'SELECT 1 AS still_here;',
};

driverSuite('pgcli', missingCommand('pgcli', 'pgcli'), () => {
  let gh: RunningGatehouse;
  const session: Record<string, Pgcli> = {};
  const list: Record<string, Pgcli> = {};
  const postgres: Record<string, Pgcli> = {};
  beforeAll(async () => {
    gh = await startGatehouse();
    await Promise.all(
      USERS.flatMap((u) => {
        const script = [
          STATEMENTS.connect,
          STATEMENTS.governed,
          STATEMENTS.allRows,
          STATEMENTS.manyRows,
          STATEMENTS.refused[u],
          STATEMENTS.dt,
          STATEMENTS.d,
          STATEMENTS.terminate,
          STATEMENTS.searchPath,
          STATEMENTS.after,
          '',
        ].join('\n');
        return [
          pgcli(gh.port, u, ['-d', 'warehouse'], script).then((r) => (session[u] = r)),
          pgcli(gh.port, u, ['-l']).then((r) => (list[u] = r)),
          pgcli(gh.port, u, ['-d', 'postgres'], `${STATEMENTS.connect}\n`).then((r) => (postgres[u] = r)),
        ];
      }),
    );
  }, 120_000);
  afterAll(async () => {
    await gh?.close();
  });

  for (const user of USERS) {
    const see = SEES[user];
    const bob = user === BOB;
    const block = (sql: string) => {
      const r = session[user];
      const b = blocks(r).get(sql);
      if (!b) throw new Error(`pgcli did not run ${sql} (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
      return b;
    };

    it(`${user}: pgcli -l lists the databases (pgcli connects to database postgres for it)`, () => {
      const r = list[user];
      expect(r.stderr).not.toMatch(/FATAL|error/i);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe('List of databases');
      // The embedded demo server's databases, from pg_database (psql -l shows the same).
      const [header, ...names] = lines.filter((l) => /^\| \S/.test(l)).map((l) => l.split('|')[1].trim());
      expect(header).toBe('Name');
      expect(lines.at(-1)).toBe(`SELECT ${names.length}`);
      // gatehouse_catalog (the topic catalog's database) exists once a query_topics user's first
      // catalog query made it: listed or not depending on which session ran first.
      expect(names.filter((n) => n !== 'gatehouse_catalog')).toEqual(['postgres', 'template0', 'template1', 'warehouse']);
    });
    it(`${user}: pgcli -d postgres is the one connection, warehouse`, () => {
      const r = postgres[user];
      expect(r.code).toBe(0);
      expect(csv(blocks(r, 'postgres').get(STATEMENTS.connect) ?? [])).toEqual([
        ['current_database', 'current_user'],
        ['warehouse', see.sessionUser],
        ['SELECT 1'],
      ]);
    });
    it(`${user}: connect, a script on stdin`, () => {
      expect(session[user].code).toBe(0);
      expect(csv(block(STATEMENTS.connect))).toEqual([['current_database', 'current_user'], ['warehouse', see.sessionUser], ['SELECT 1']]);
    });
    it(`${user}: a governed query`, () => {
      expect(csv(block(STATEMENTS.governed))).toEqual([['region', 'count'], ...see.regions.map(([r, n]) => [r, String(n)]), [`SELECT ${see.regions.length}`]]);
    });
    it(`${user}: every row (--row-limit 0)`, () => {
      expect(csv(block(STATEMENTS.allRows))).toEqual([['count', 'sum'], [String(see.ordersCount), String(see.idSum)], ['SELECT 1']]);
      const rows = block(STATEMENTS.manyRows);
      expect(rows[0]).toBe('"id"');
      expect(rows.at(-1)).toBe(`SELECT ${see.ordersCount}`);
      expect(csv(rows.slice(1, 4)).map((r) => Number(r[0]))).toEqual(see.firstIds);
    });
    it(`${user}: refused with 42501`, () => {
      const message = bob
        ? 'relation "employees" is not a topic on connection warehouse; query_topics users may only read topics: customers, orders'
        : 'writes are not permitted on connection warehouse (it does not set allow_writes): INSERT refused';
      expect(block(STATEMENTS.refused[user])).toEqual([message]);
      // pgcli logs the statement's exception: psycopg's class for SQLSTATE 42501.
      expect(session[user].log).toContain(`error: InsufficientPrivilege('${message}')`);
    });
    it(`${user}: \\dt and \\d customers (pgcli's own catalog queries)`, () => {
      expect(csv(block(STATEMENTS.dt))).toEqual([
        ['Schema', 'Name', 'Type', 'Owner'],
        ...see.tables.map((t) => ['public', t, 'table', 'postgres']),
        [`SELECT ${see.tables.length}`],
      ]);
      const d = csv(block(STATEMENTS.d));
      expect(d[0]).toEqual(['Column', 'Type', 'Modifiers']);
      expect(d.slice(1, 1 + see.customersColumns.length).map((c) => c[0])).toEqual(see.customersColumns);
    });
    it(`${user}: pg_terminate_backend is refused at every level`, () => {
      expect(block(STATEMENTS.terminate)).toEqual(['function pg_terminate_backend is not permitted through Gatehouse']);
    });
    it(`${user}: SET search_path ${bob ? 'is refused (fixed for query_topics users)' : 'is allowed (a querier)'}`, () => {
      expect(block(STATEMENTS.searchPath)).toEqual([
        bob ? 'SET search_path is not permitted for query_topics users on connection warehouse (search_path is fixed by Gatehouse)' : 'SET',
      ]);
    });
    it(`${user}: the session keeps serving after the refusals`, () => {
      expect(csv(block(STATEMENTS.after))).toEqual([['still_here'], ['1'], ['SELECT 1']]);
    });
  }
});
