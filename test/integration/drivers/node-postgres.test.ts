// Driver matrix (issue 16): node-postgres (pg: simple protocol without parameters, extended
// with them, named prepared statements), pg-cursor (a portal read with row-limited Execute and
// Flush) and pg-query-stream (pg-cursor under a Readable), as bob and carol against the demo Gatehouse.
import type pg from 'pg';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { pgClient, startGatehouse } from '../../helpers/gatehouse.ts';
import { SEES, USERS } from './matrix.ts';

describe('node-postgres + pg-cursor + pg-query-stream', () => {
  let gh: RunningGatehouse;
  const open: pg.Client[] = [];
  const client = async (user: string) => {
    const c = await pgClient(gh, user);
    c.on('error', () => {}); // a dead socket is the test's failure, not an unhandled event
    open.push(c);
    return c;
  };
  beforeAll(async () => {
    gh = await startGatehouse();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.end().catch(() => {})));
  });
  afterAll(async () => {
    await gh?.close();
  });

  const n = (rows: { n: string | number }[]) => rows.map((r) => Number(r.n));

  for (const user of USERS) {
    const see = SEES[user];
    it(`${user}: connect`, async () => {
      const c = await client(user);
      expect((await c.query('SELECT current_database() AS db, current_user AS who')).rows).toEqual([{ db: 'warehouse', who: see.sessionUser }]);
    });
    it(`${user}: a governed query`, async () => {
      const c = await client(user);
      const r = await c.query('SELECT region, count(*)::int AS n FROM orders GROUP BY 1 ORDER BY 1');
      expect(r.rows.map((x) => [x.region, x.n])).toEqual(see.regions);
    });
    it(`${user}: refused with 42501`, async () => {
      const c = await client(user);
      const sql = user.startsWith('bob') ? 'SELECT * FROM employees' : "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000')";
      await expect(c.query(sql)).rejects.toMatchObject({ code: see.refused });
    });
    it(`${user}: parameters`, async () => {
      const c = await client(user);
      expect(n((await c.query('SELECT count(*) AS n FROM orders WHERE id <= $1 AND status = $2', [1000, 'paid'])).rows)).toEqual([see.paidUpTo1000]);
    });
    it(`${user}: named prepared statements, each bound again by name`, async () => {
      const c = await client(user);
      const out: number[] = [];
      for (const limit of [100, 1000, 2000, 100]) {
        out.push(...n((await c.query({ name: 'orders_upto', text: 'SELECT count(*) AS n FROM orders WHERE id <= $1', values: [limit] })).rows));
        out.push(...n((await c.query({ name: 'customers_upto', text: 'SELECT count(*) AS n FROM customers WHERE id <= $1', values: [limit] })).rows));
      }
      const [o100, c100] = see.upTo[100];
      expect(out).toEqual([o100, c100, see.upTo[1000][0], see.upTo[1000][1], see.upTo[2000][0], see.upTo[2000][1], o100, c100]);
    });
    it(`${user}: pg-cursor reads 100 rows at a time`, async () => {
      const c = await client(user);
      const cursor = c.query(new Cursor('SELECT id FROM orders WHERE id > $1 ORDER BY id', [0]));
      const ids: number[] = [];
      let batches = 0;
      for (;;) {
        const rows = await cursor.read(100);
        if (rows.length === 0) break;
        batches++;
        expect(rows.length).toBeLessThanOrEqual(100);
        ids.push(...rows.map((r: { id: number }) => r.id));
      }
      await cursor.close();
      expect(batches).toBe(Math.ceil(see.ordersCount / 100));
      expect(ids.slice(0, 3)).toEqual(see.firstIds);
      expect(ids.reduce((a, b) => a + b, 0)).toBe(see.idSum);
      // The session keeps serving after the cursor.
      expect(n((await c.query('SELECT count(*) AS n FROM customers')).rows)).toEqual([see.customersCount]);
    });
    it(`${user}: pg-query-stream streams every row`, async () => {
      const c = await client(user);
      const stream = c.query(new QueryStream('SELECT id, region FROM orders ORDER BY id', [], { batchSize: 250 }));
      const ids: number[] = [];
      const regions = new Set<string>();
      for await (const row of stream) {
        ids.push(row.id);
        regions.add(row.region);
      }
      expect(ids).toHaveLength(see.ordersCount);
      expect(ids.slice(0, 3)).toEqual(see.firstIds);
      expect([...regions].sort()).toEqual(see.regions.map(([r]) => r));
    });
    it(`${user}: catalog (information_schema with a parameter)`, async () => {
      const c = await client(user);
      const r = await c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', ['public']);
      expect(r.rows.map((x) => x.table_name)).toEqual(see.tables);
    });
  }
});
