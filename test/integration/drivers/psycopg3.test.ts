// Driver matrix (issue 16): psycopg 3 (extended protocol with server-side parameters, its
// prepared-statement cache with eviction, named server-side cursors, single-row streaming,
// COPY in text and binary), as bob and carol against the demo Gatehouse. Cases: python/psycopg3_matrix.py.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { startGatehouse } from '../../helpers/gatehouse.ts';
import { cacheRounds, driverSuite, missingPython, type Outcomes, runPython, SEES, USERS, value } from './matrix.ts';

const missing = missingPython(['psycopg'], ['python3-psycopg']);

driverSuite('psycopg 3', missing, () => {
  let gh: RunningGatehouse;
  const out: Record<string, Outcomes> = {};
  beforeAll(async () => {
    gh = await startGatehouse();
    await Promise.all(USERS.map(async (u) => (out[u] = await runPython('psycopg3_matrix.py', gh.port, u))));
  });
  afterAll(async () => {
    await gh?.close();
  });

  for (const user of USERS) {
    const see = SEES[user];
    it(`${user}: connect`, () => {
      expect(value(out[user], 'connect')).toEqual({ database: 'warehouse', user: see.sessionUser, server_version: expect.any(Number) });
    });
    it(`${user}: a governed query`, () => {
      expect(value(out[user], 'governed')).toEqual({ regions: see.regions, first_ids: see.firstIds });
    });
    it(`${user}: refused with 42501`, () => {
      expect(value(out[user], 'refused')).toBe(see.refused);
    });
    it(`${user}: server-side parameters`, () => {
      expect(value(out[user], 'params')).toBe(see.paidUpTo1000);
    });
    it(`${user}: prepared-statement cache (prepare_threshold=0, prepared_max=2: eviction DEALLOCATEs _pg3_N)`, () => {
      expect(value(out[user], 'prepared_cache')).toEqual(cacheRounds(user));
    });
    it(`${user}: prepare=True`, () => {
      expect(value(out[user], 'prepared_explicit')).toEqual([see.upTo[100][0], see.upTo[2000][0]]);
    });
    it(`${user}: a named server-side cursor with parameters (fetchmany, then iteration)`, () => {
      expect(value(out[user], 'server_cursor')).toEqual({ head: see.firstIds, rest: see.ordersCount - 3, last: 5000 });
    });
    it(`${user}: a named server-side cursor read by itersize`, () => {
      expect(value(out[user], 'server_cursor_iter')).toEqual({ count: see.ordersCount, first: see.firstIds, last: 5000, sum: see.idSum });
    });
    it(`${user}: Cursor.stream (single-row mode)`, () => {
      expect(value(out[user], 'stream')).toEqual({ count: see.upTo[2000][0], first: see.firstIds });
    });
    it(`${user}: COPY TO STDOUT in text, read as rows`, () => {
      expect(value(out[user], 'copy_text')).toEqual({ count: see.ordersCount, head: see.copyHead.map((l) => l.split(',')) });
    });
    it(`${user}: COPY TO STDOUT in binary, read as typed rows`, () => {
      const rows = value<[number, string][]>(out[user], 'copy_binary');
      expect(rows).toHaveLength(3);
      expect(rows[0]).toEqual([see.firstOrder.id, see.firstOrder.amount]);
      expect(rows.map((r) => r[0])).toEqual(see.firstIds);
    });
    it(`${user}: catalog (information_schema, TypeInfo.fetch)`, () => {
      const cat = value<{ tables: string[]; customers_columns: [string, string][]; numeric_oid: number }>(out[user], 'catalog');
      expect(cat.tables).toEqual(see.tables);
      expect(cat.customers_columns.map((c) => c[0])).toEqual(see.customersColumns);
      expect(cat.customers_columns.find((c) => c[0] === 'created_at')?.[1]).toBe('timestamp with time zone');
      expect(cat.numeric_oid).toBe(1700);
    });
  }
});
