// The postgres connector against the local PostgreSQL (127.0.0.1:5432, trust auth).
// No skips: if the server is not there, beforeAll fails and every test with it.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Connection, PostgresConnection } from '../../../src/config/model.ts';
import { GatehouseError } from '../../../src/errors.ts';
import { messages } from '../../../src/warehouses/pg-framing.ts';
import { PostgresWarehouse, type PostgresSession } from '../../../src/warehouses/postgres.ts';
import type { WarehouseStatement } from '../../../src/warehouses/types.ts';
import { CollectingSink } from '../../helpers/collecting-sink.ts';

const DB = 'gatehouse_wh_test';
const admin = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

function connection(target: Partial<PostgresConnection>, name = 'wh'): Connection {
  return {
    name,
    org: 'acme',
    target: { kind: 'postgres', host: '127.0.0.1', port: 5432, database: DB, user: 'gatehouse_reader', allow_superuser: false, ...target },
    allow_writes: false,
    permissions: { default: 'no_access', groups: {}, users: {} },
    topics_schema: 'topics',
  };
}
const stmt = (sql: string, returnsRows = false): WarehouseStatement => ({ sql, kind: returnsRows ? 'select' : 'other', returnsRows });

const SAMPLE = `SELECT id, name, amount, created_at, tags, doc, raw, ok FROM sample ORDER BY id`;

beforeAll(async () => {
  const c = new pg.Client(admin);
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await c.query(`CREATE DATABASE ${DB}`);
  await c.query(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_reader') THEN CREATE ROLE gatehouse_reader LOGIN; END IF;
  END $$`);
  await c.query(`ALTER ROLE gatehouse_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS`);
  await c.end();
  const d = new pg.Client({ ...admin, database: DB });
  await d.connect();
  await d.query(`CREATE TABLE sample (id int PRIMARY KEY, name text, amount numeric(12,2), created_at timestamptz,
    tags text[], doc jsonb, raw bytea, ok boolean)`);
  await d.query(`INSERT INTO sample VALUES
    (1, 'plain', 12.50, '2024-01-02 03:04:05+00', '{a,b}', '{"k": [1, 2]}', '\\x00ff', true),
    (2, E'tab\\there, newline\\nand ''quote'' and "dq" and \\\\ backslash', -0.01, '1999-12-31 23:59:59.123456+00', '{}', 'null', '', false),
    (3, 'ünïcødé ✓ 日本', NULL, NULL, NULL, NULL, NULL, NULL)`);
  await d.query(`CREATE TABLE scratch (n int)`);
  await d.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO gatehouse_reader`);
  await d.end();
});

async function open(target: Partial<PostgresConnection> = {}, readOnly = false, params: Record<string, string> = { TimeZone: 'UTC' }) {
  const wh = new PostgresWarehouse(connection(target));
  const s = (await wh.openSession({ params, readOnly })) as PostgresSession;
  return { wh, s };
}

describe('postgres warehouse: relay', () => {
  it('relays RowDescription, DataRow and CommandComplete byte for byte as the server sent them to a pg client', async () => {
    // What the pg driver received, captured off its socket.
    const c = new pg.Client({ ...admin, database: DB, user: 'gatehouse_reader', options: '-c TimeZone=UTC' });
    await c.connect();
    const captured: Buffer[] = [];
    const stream = (c as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream;
    stream.on('data', (b: Buffer) => captured.push(Buffer.from(b)));
    const viaDriver = await c.query({ text: SAMPLE, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
    await c.end();
    const driverBytes = Buffer.concat([...messages(Buffer.concat(captured))].filter((m) => 'TDC'.includes(String.fromCharCode(m.type))).map((m) => m.frame));

    const { s } = await open();
    const sink = new CollectingSink();
    expect((await s.run([stmt(SAMPLE, true)], sink)).status).toBe('I');
    await s.close();
    expect(Buffer.concat(sink.relayed).equals(driverBytes)).toBe(true);
    expect(sink.rows()).toEqual(viaDriver.rows);
    expect(sink.types()).toBe('T D D D C');
    expect(sink.tags()).toEqual(['SELECT 3']);
  });

  it('runs several statements as one Query with the implicit transaction of a multi-statement Query', async () => {
    const { s } = await open({ user: 'postgres', allow_superuser: true });
    const sink = new CollectingSink();
    await s.run([stmt('SELECT 1 AS a', true), stmt(`SELECT 'two' AS b`, true)], sink);
    expect(sink.types()).toBe('T D C T D C');
    expect(sink.rows()).toEqual([['1'], ['two']]);
    // An error in the second statement rolls back the first (implicit transaction).
    const sink2 = new CollectingSink();
    expect((await s.run([stmt('INSERT INTO scratch VALUES (1)'), stmt('SELECT 1/0', true)], sink2)).status).toBe('I');
    expect(sink2.tags()).toEqual(['INSERT 0 1']);
    expect(sink2.errors()[0].C).toBe('22012');
    const sink3 = new CollectingSink();
    await s.run([stmt('SELECT count(*) FROM scratch', true)], sink3);
    expect(sink3.rows()).toEqual([['0']]);
    await s.close();
  });

  it('relays an upstream error as ErrorResponse and the session stays usable', async () => {
    const { s } = await open();
    const sink = new CollectingSink();
    expect((await s.run([stmt('SELECT no_such_column FROM sample', true)], sink)).status).toBe('I');
    expect(sink.types()).toBe('E');
    expect(sink.errors()[0].C).toBe('42703');
    const again = new CollectingSink();
    await s.run([stmt('SELECT count(*) FROM sample', true)], again);
    expect(again.rows()).toEqual([['3']]);
    // Inside a transaction the status byte comes back as the server says.
    expect((await s.run([stmt('BEGIN')], new CollectingSink())).status).toBe('T');
    expect((await s.run([stmt('SELECT 1/0', true)], new CollectingSink())).status).toBe('E');
    expect(s.txStatus).toBe('E');
    expect((await s.run([stmt('ROLLBACK')], new CollectingSink())).status).toBe('I');
    await s.close();
  });

  it('a read-only session refuses INSERT with the warehouse own 25006', async () => {
    const { s } = await open({ user: 'postgres', allow_superuser: true }, true);
    const sink = new CollectingSink();
    await s.run([stmt('INSERT INTO scratch VALUES (2)')], sink);
    expect(sink.errors()[0].C).toBe('25006');
    await s.close();
  });

  it('forwards only allowlisted startup parameters; never a client options', async () => {
    const { s } = await open({}, false, {
      application_name: 'psql-test',
      TimeZone: 'Asia/Tokyo',
      options: '-c default_transaction_read_only=off -c search_path=evil',
      search_path: 'evil',
    });
    const sink = new CollectingSink();
    await s.run([stmt(`SELECT current_setting('application_name'), current_setting('TimeZone'), current_setting('search_path')`, true)], sink);
    expect(sink.rows()).toEqual([['psql-test', 'Asia/Tokyo', '"$user", public']]);
    // ParameterStatus is consumed, not relayed.
    const set = new CollectingSink();
    await s.run([stmt(`SET TimeZone = 'UTC'`)], set);
    expect(set.types()).toBe('C');
    await s.close();
  });

  it('relays COPY (query) TO STDOUT', async () => {
    const { s } = await open();
    const sink = new CollectingSink();
    await s.run([stmt(`COPY (SELECT id, name FROM sample WHERE id IN (1, 3) ORDER BY id) TO STDOUT`)], sink);
    expect(sink.types()).toBe('H d d c C');
    expect(sink.copyText()).toBe('1\tplain\n3\tünïcødé ✓ 日本\n');
    expect(sink.tags()).toEqual(['COPY 2']);
    await s.close();
  });

  it("a sink that cannot feed COPY FROM STDIN (Gatehouse's own queries) answers CopyFail and carries on", async () => {
    const { s } = await open({ user: 'postgres', allow_superuser: true });
    const sink = new CollectingSink();
    expect((await s.run([stmt('COPY scratch FROM STDIN')], sink)).status).toBe('I');
    expect(sink.types()).toBe('E');
    expect(sink.errors()[0].M).toContain('COPY FROM STDIN is not supported here through Gatehouse');
    const again = new CollectingSink();
    await s.run([stmt('SELECT 1', true)], again);
    expect(again.rows()).toEqual([['1']]);
    await s.close();
  });

  it('forwards a cancel: the running statement ends with 57014', async () => {
    const { s } = await open();
    const sink = new CollectingSink();
    const running = s.run([stmt('SELECT pg_sleep(30)', true)], sink);
    await new Promise((r) => setTimeout(r, 300));
    await s.cancel();
    expect((await running).status).toBe('I');
    expect(sink.errors()[0].C).toBe('57014');
    await s.close();
  });
});

describe('postgres warehouse: streaming and backpressure', () => {
  it('streams 1,000,000 rows through a slow sink without holding them', async () => {
    const { s } = await open();
    const sink = new CollectingSink({ countOnly: true, highWaterMessages: 2000, drainDelayMs: 1 });
    const t0 = performance.now();
    const heap0 = process.memoryUsage().heapUsed;
    let heapMax = heap0;
    const probe = setInterval(() => (heapMax = Math.max(heapMax, process.memoryUsage().heapUsed)), 20);
    await s.run([stmt(`SELECT g, md5(g::text) FROM generate_series(1, 1000000) g`, true)], sink);
    clearInterval(probe);
    const ms = performance.now() - t0;
    expect(sink.dataRows).toBe(1_000_000);
    // One TCP chunk at most beyond the high-water mark: never the result.
    expect(sink.maxSinceDrain).toBeLessThan(10_000);
    expect(sink.drains).toBeGreaterThan(50);
    expect(heapMax - heap0).toBeLessThan(100 * 1024 * 1024);
    console.log(
      `postgres: 1M rows relayed in ${ms.toFixed(0)} ms, ${sink.relayCalls} relay calls, ${sink.drains} drains, max ${sink.maxSinceDrain} messages between drains`,
    );
    await s.close();
  });

  it('when the client goes mid-result, the upstream statement is stopped and run resolves', async () => {
    const { s } = await open({}, false, { application_name: 'gh-client-gone' });
    const sink = new CollectingSink({ countOnly: true, highWaterMessages: 1000, drainDelayMs: 5 });
    const running = s.run([stmt(`SELECT g, pg_sleep(0) FROM generate_series(1, 5000000) g`, true)], sink);
    await new Promise((r) => setTimeout(r, 300));
    sink.closed = true;
    await running;
    expect(sink.dataRows).toBeLessThan(5_000_000);
    const c = new pg.Client(admin);
    await c.connect();
    let left = 1;
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = Number((await c.query(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gh-client-gone'`)).rows[0].count);
    }
    await c.end();
    expect(left).toBe(0);
    await expect(s.run([stmt('SELECT 1', true)], new CollectingSink())).rejects.toMatchObject({ sqlstate: '08006' });
  });
});

describe('postgres warehouse: start() and connecting', () => {
  it('refuses a superuser account unless allow_superuser, naming the connection and what is wrong', async () => {
    const wh = new PostgresWarehouse(connection({ user: 'postgres' }, 'warehouse'));
    const err = await wh.start().then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('42501');
    expect(err.message).toContain('"warehouse"');
    expect(err.message).toContain('superuser');
    expect(err.hint).toContain('allow_superuser: true');
    await new PostgresWarehouse(connection({ user: 'postgres', allow_superuser: true })).start();
  });

  it('accepts the least-privilege gatehouse_reader', async () => {
    await new PostgresWarehouse(connection({})).start();
  });

  it('connection refused is 08001 with the network reason, never the password', async () => {
    const secret = 'Sup3r-S3cret-P4ssw0rd!';
    process.env.GH_TEST_WH_PASSWORD = secret;
    const wh = new PostgresWarehouse(connection({ port: 1, password_env: 'GH_TEST_WH_PASSWORD' }, 'warehouse'));
    const err = await wh.start().then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toBe('could not connect to warehouse of connection "warehouse"');
    expect(err.detail).toContain('ECONNREFUSED');
    const all = JSON.stringify({ m: err.message, d: err.detail, h: err.hint, s: String(err.stack) });
    expect(all).not.toContain(secret);
    await expect(wh.openSession({ params: {}, readOnly: true })).rejects.toMatchObject({ sqlstate: '08001' });
  });

  it('an unknown database is 08001 with the server reason', async () => {
    const wh = new PostgresWarehouse(connection({ database: 'gatehouse_no_such_db' }));
    await expect(wh.start()).rejects.toMatchObject({ sqlstate: '08001', detail: expect.stringContaining('does not exist') });
  });

  it('describeRelation gives column types', async () => {
    const wh = new PostgresWarehouse(connection({}));
    expect(await wh.describeRelation('public', 'sample')).toEqual({
      id: 'integer',
      name: 'text',
      amount: 'numeric(12,2)',
      created_at: 'timestamp with time zone',
      tags: 'text[]',
      doc: 'jsonb',
      raw: 'bytea',
      ok: 'boolean',
    });
    await expect(wh.describeRelation('public', "no'such")).rejects.toMatchObject({ sqlstate: '42P01' });
  });
});
