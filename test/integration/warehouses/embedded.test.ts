// The embedded warehouse: real PGlite in a worker thread, seeded from SQL files.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../../src/config/model.ts';
import { EmbeddedWarehouse, FETCH_ROWS, type EmbeddedSession } from '../../../src/warehouses/embedded.ts';
import { createWarehouse } from '../../../src/warehouses/index.ts';
import type { WarehouseStatement } from '../../../src/warehouses/types.ts';
import { CollectingSink } from '../../helpers/collecting-sink.ts';

const SEED = `
CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
INSERT INTO customers VALUES (1, 'Ada', 'EMEA'), (2, 'Bo', 'AMER'), (3, E'tab\\there "q", comma', NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(12,2), ordered_at timestamptz);
INSERT INTO orders SELECT g, 1 + g % 3, g * 1.5, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 20) g;
CREATE TABLE scratch (n int);
`;

const stmt = (sql: string, returnsRows = false, kind: WarehouseStatement['kind'] = returnsRows ? 'select' : 'other'): WarehouseStatement =>
  ({ sql, kind, returnsRows });
const copy = (query: string, format: 'text' | 'csv', header = false): WarehouseStatement => ({
  sql: `COPY (${query}) TO STDOUT`, kind: 'copy_out', returnsRows: false, copyOut: { query, format, header },
});

let wh: EmbeddedWarehouse;
const sessions: EmbeddedSession[] = [];
async function session(readOnly = false, params: Record<string, string> = {}) {
  const s = await wh.openSession({ params, readOnly });
  sessions.push(s);
  return s;
}
async function run(s: EmbeddedSession, ...st: WarehouseStatement[]) {
  const sink = new CollectingSink();
  const status = await s.run(st, sink);
  return { sink, status };
}

beforeAll(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-embedded-'));
  await writeFile(path.join(dir, 'seed.sql'), SEED);
  const conn: Connection = {
    name: 'warehouse', org: 'acme', target: { kind: 'embedded', seed: ['seed.sql'] }, allow_writes: false,
    permissions: { default: 'no_access', groups: {}, users: {} }, topics_schema: 'topics',
  };
  wh = createWarehouse(conn, dir) as EmbeddedWarehouse;
  await wh.start();
  console.log(`embedded: worker + PGlite + seed started in ${wh.startupMs.toFixed(0)} ms`);
});
afterAll(async () => {
  for (const s of sessions) await s.close();
  await wh?.close();
});

describe('embedded warehouse', () => {
  it('answers queries on the seeded schema with PostgreSQL messages', async () => {
    const s = await session(true);
    const { sink, status } = await run(s, stmt('SELECT id, name, region FROM customers ORDER BY id', true));
    expect(status).toBe('I');
    expect(sink.types()).toBe('T D D D C');
    expect(sink.of('T')[0]).toMatchObject({ names: ['id', 'name', 'region'] });
    expect(sink.rows()).toEqual([['1', 'Ada', 'EMEA'], ['2', 'Bo', 'AMER'], ['3', 'tab\there "q", comma', null]]);
    expect(sink.tags()).toEqual(['SELECT 3']);
    expect((await run(s, stmt(`SELECT current_setting('server_version_num')::int >= 180000`, true))).sink.rows()).toEqual([['t']]);
  });

  it('runs several statements; an error stops the rest, is relayed with the position in the statement, and the session goes on', async () => {
    const s = await session(false);
    const { sink } = await run(s, stmt('SELECT 1 AS a', true), stmt('SELECT nosuch FROM customers', true), stmt('SELECT 3', true));
    expect(sink.types()).toBe('T D C E');
    const e = sink.errors()[0];
    expect(e.C).toBe('42703');
    expect(e.P).toBe('8'); // "SELECT nosuch ..." : position within the statement, not Gatehouse's DECLARE
    // Implicit transaction: an error rolls back the earlier statements of the same Query.
    await run(s, stmt('INSERT INTO scratch VALUES (1)'), stmt('SELECT 1/0', true));
    expect((await run(s, stmt('SELECT count(*) FROM scratch', true))).sink.rows()).toEqual([['0']]);
    // Explicit transactions keep PostgreSQL's status bytes.
    expect((await run(s, stmt('BEGIN', false, 'transaction'))).status).toBe('T');
    expect((await run(s, stmt('SELECT 1/0', true))).status).toBe('E');
    const aborted = await run(s, stmt('SELECT 1', true));
    expect(aborted.sink.errors()[0].C).toBe('25P02');
    expect((await run(s, stmt('ROLLBACK', false, 'transaction'))).status).toBe('I');
    expect((await run(s, stmt('SELECT 2', true))).sink.rows()).toEqual([['2']]);
  });

  it('streams 200,000 rows through cursors, honouring a slow client', async () => {
    const s = await session(true);
    const sink = new CollectingSink({ countOnly: true, highWaterMessages: 500, drainDelayMs: 1 });
    const t0 = performance.now();
    await s.run([stmt(`SELECT g, md5(g::text) FROM generate_series(1, 200000) g`, true)], sink);
    const ms = performance.now() - t0;
    expect(sink.dataRows).toBe(200_000);
    // At most one FETCH batch (plus its RowDescription) reaches the sink before it drains.
    expect(sink.maxSinceDrain).toBeLessThanOrEqual(FETCH_ROWS + 1);
    expect(sink.drains).toBeGreaterThanOrEqual(199);
    console.log(`embedded: 200k rows streamed in ${ms.toFixed(0)} ms (${sink.drains} drains)`);
    // While it streamed, the main thread stayed free: a timer fired on time (checked below via a second run).
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const sink2 = new CollectingSink({ countOnly: true });
    const t1 = performance.now();
    await s.run([stmt(`SELECT g FROM generate_series(1, 200000) g`, true)], sink2);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(((performance.now() - t1) / 10) * 0.3);
  });

  it('produces COPY TO STDOUT in text format', async () => {
    const s = await session(true);
    const { sink } = await run(s, copy(`SELECT id, name, region FROM customers ORDER BY id`, 'text'));
    expect(sink.types()).toBe('H d d d c C');
    expect(sink.of('H')[0]).toMatchObject({ columns: 3 });
    expect(sink.copyText()).toBe('1\tAda\tEMEA\n2\tBo\tAMER\n3\ttab\\there "q", comma\t\\N\n');
    expect(sink.tags()).toEqual(['COPY 3']);
    const esc = await run(s, copy(`SELECT E'back\\\\slash', E'nl\\ncr\\r', '', NULL::text`, 'text', true));
    expect(esc.sink.copyText()).toBe('?column?\t?column?\t?column?\ttext\nback\\\\slash\tnl\\ncr\\r\t\t\\N\n');
  });

  it('produces COPY TO STDOUT in CSV with a header', async () => {
    const s = await session(true);
    const { sink } = await run(s, copy(`SELECT id, name, region FROM customers ORDER BY id`, 'csv', true));
    expect(sink.copyText()).toBe('id,name,region\n1,Ada,EMEA\n2,Bo,AMER\n3,"tab\there ""q"", comma",\n');
    const empty = await run(s, copy(`SELECT '' AS e, NULL::text AS n, E'a\\nb' AS l`, 'csv'));
    expect(empty.sink.copyText()).toBe('"",,"a\nb"\n');
    // 5,000 rows: one CopyData per row, count in the tag.
    const big = await run(s, copy(`SELECT g FROM generate_series(1, 5000) g`, 'csv'));
    expect(big.sink.of('d').length).toBe(5000);
    expect(big.sink.tags()).toEqual(['COPY 5000']);
  });

  it("produces the same COPY bytes as PostgreSQL's own COPY in PGlite", async () => {
    const s = await session(true);
    const q = `SELECT id, name, region, E'x\\y\tz' AS esc, '' AS empty, NULL::int AS n, 1.5::numeric AS num FROM customers ORDER BY id`;
    for (const [opts, format, header] of [['', 'text', false], ['WITH (FORMAT csv, HEADER)', 'csv', true], ['WITH (FORMAT text, HEADER)', 'text', true]] as const) {
      const ours = await run(s, copy(q, format, header));
      const theirs = await run(s, stmt(`COPY (${q}) TO STDOUT ${opts}`));
      expect(theirs.sink.types()).toBe(ours.sink.types());
      expect(ours.sink.copyText()).toBe(theirs.sink.copyText());
    }
  });

  it("one session's open transaction holds the backend until it commits", async () => {
    const a = await session(false);
    const b = await session(true);
    await run(a, stmt('BEGIN', false, 'transaction'));
    await run(a, stmt('INSERT INTO scratch VALUES (42)'));
    let bDone = false;
    const bRun = run(b, stmt('SELECT count(*) FROM scratch WHERE n = 42', true)).then((r) => {
      bDone = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(bDone).toBe(false); // b never sees a's uncommitted row: it waits
    expect((await run(a, stmt('COMMIT', false, 'transaction'))).status).toBe('I');
    expect((await bRun).sink.rows()).toEqual([['1']]);
  });

  it('a session waiting too long on another\'s idle transaction is refused with 55P03, then served', async () => {
    const a = await session(false);
    const b = await session(true);
    await run(a, stmt('BEGIN', false, 'transaction'));
    const before = wh.lockWaitMs;
    wh.lockWaitMs = 200;
    try {
      await expect(run(b, stmt('SELECT 1', true))).rejects.toMatchObject({ sqlstate: '55P03', message: expect.stringMatching(/busy/) });
    } finally {
      wh.lockWaitMs = before;
    }
    await run(a, stmt('COMMIT', false, 'transaction'));
    expect((await run(b, stmt('SELECT 2', true))).sink.rows()).toEqual([['2']]);
  });

  it("one session's settings do not leak into another, and come back to it", async () => {
    const a = await session(true, { TimeZone: 'UTC' });
    const b = await session(true, { TimeZone: 'Europe/Paris' });
    await run(a, stmt(`SET TimeZone = 'Asia/Tokyo'`, false, 'set'));
    await run(a, stmt(`SET extra_float_digits = 1`, false, 'set'));
    const tz = `SELECT current_setting('TimeZone'), current_setting('extra_float_digits')`;
    expect((await run(b, stmt(tz, true))).sink.rows()).toEqual([['Europe/Paris', '1']]);
    expect((await run(a, stmt(tz, true))).sink.rows()).toEqual([['Asia/Tokyo', '1']]);
    const c = await session(true, {});
    expect((await run(c, stmt(tz, true))).sink.rows()).toEqual([['UTC', '1']]); // PGlite's defaults
    await run(b, stmt(`SET extra_float_digits = 3`, false, 'set'));
    expect((await run(a, stmt(tz, true))).sink.rows()).toEqual([['Asia/Tokyo', '1']]);
    expect((await run(b, stmt(tz, true))).sink.rows()).toEqual([['Europe/Paris', '3']]);
  });

  it('read-only sessions cannot write, even after SET TRANSACTION READ WRITE or DISCARD ALL; others can', async () => {
    const r = await session(true);
    expect((await run(r, stmt('INSERT INTO scratch VALUES (7)'))).sink.errors()[0].C).toBe('25006');
    await run(r, stmt('BEGIN', false, 'transaction'));
    await run(r, stmt('SET TRANSACTION READ WRITE', false, 'set'));
    expect((await run(r, stmt('INSERT INTO scratch VALUES (7)'))).sink.errors()[0].C).toBe('42501');
    await run(r, stmt('ROLLBACK', false, 'transaction'));
    await run(r, stmt('DISCARD ALL', false, 'discard'));
    expect((await run(r, stmt('INSERT INTO scratch VALUES (7)'))).sink.errors()[0].C).toBe('25006');
    expect((await run(r, stmt('CREATE TEMP TABLE t (a int)'))).sink.errors().length).toBe(1);
    const w = await session(false);
    const ins = await run(w, stmt('INSERT INTO scratch VALUES (8)'));
    expect(ins.sink.tags()).toEqual(['INSERT 0 1']);
  });

  it('when the client goes mid-result, the run ends and the backend is free', async () => {
    const s = await session(true);
    const sink = new CollectingSink({ countOnly: true, highWaterMessages: 100, drainDelayMs: 1 });
    const origDrain = sink.drain.bind(sink);
    sink.drain = () => {
      if (sink.dataRows >= 3000) sink.closed = true;
      return origDrain();
    };
    expect(await s.run([stmt('SELECT g FROM generate_series(1, 1000000) g', true)], sink)).toBe('I');
    expect(sink.dataRows).toBeLessThan(10_000);
    const other = await session(true);
    expect((await run(other, stmt('SELECT 1', true))).sink.rows()).toEqual([['1']]);
  });

  it('describeRelation gives column types', async () => {
    expect(await wh.describeRelation('public', 'orders')).toEqual({
      id: 'integer', customer_id: 'integer', amount: 'numeric(12,2)', ordered_at: 'timestamp with time zone',
    });
    await expect(wh.describeRelation('public', 'nope')).rejects.toMatchObject({ sqlstate: '42P01' });
  });
});
