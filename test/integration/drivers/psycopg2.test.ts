// Driver matrix (issue 16): psycopg2 (simple query protocol), SQLAlchemy 1.4 over it and pandas,
// as bob (query_topics, EMEA only) and carol (querier), against the demo Gatehouse.
// Cases: python/psycopg2_matrix.py.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { startGatehouse } from '../../helpers/gatehouse.ts';
import { driverSuite, missingPython, type Outcomes, runPython, SEES, USERS, value } from './matrix.ts';

const missing = missingPython(['psycopg2', 'sqlalchemy', 'pandas'], ['python3-psycopg2', 'python3-sqlalchemy', 'python3-pandas']);

driverSuite('psycopg2 + SQLAlchemy + pandas', missing, () => {
  let gh: RunningGatehouse;
  const out: Record<string, Outcomes> = {};
  beforeAll(async () => {
    gh = await startGatehouse();
    await Promise.all(USERS.map(async (u) => (out[u] = await runPython('psycopg2_matrix.py', gh.port, u))));
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
    it(`${user}: parameters`, () => {
      expect(value(out[user], 'params')).toBe(see.paidUpTo1000);
    });
    it(`${user}: PREPARE / EXECUTE / DEALLOCATE`, () => {
      expect(value(out[user], 'prepare_execute')).toEqual([see.upTo[100][0], see.upTo[2000][0], '26000']);
    });
    it(`${user}: a named (server-side) cursor: DECLARE and FETCH FORWARD`, () => {
      expect(value(out[user], 'named_cursor')).toEqual({ count: see.ordersCount, first: see.firstIds, last: 5000, sum: see.idSum });
    });
    it(`${user}: copy_expert COPY (SELECT ...) TO STDOUT in CSV`, () => {
      expect(value(out[user], 'copy_csv')).toEqual({ lines: see.ordersCount + 1, head: ['id,region', ...see.copyHead] });
    });
    it(`${user}: copy_expert COPY (SELECT ...) TO STDOUT in binary`, () => {
      // PGCOPY\n\377\r\n\0, then flags, header extension, 2 rows of one int4, the trailer: 19 + 2 * 10 + 2 bytes.
      expect(value(out[user], 'copy_binary')).toEqual({ signature: '5047434f50590aff0d0a00', bytes: 41 });
    });
    it(`${user}: SQLAlchemy inspector`, () => {
      expect(value(out[user], 'sqlalchemy_inspect')).toEqual({
        tables: see.tables,
        orders_columns: [
          ['id', 'INTEGER'],
          ['customer_id', 'INTEGER'],
          ['region', 'TEXT'],
          ['amount', 'NUMERIC(12, 2)'],
          ['status', 'TEXT'],
          ['ordered_at', 'TIMESTAMP'],
        ],
        has_employees: see.tables.includes('employees'),
      });
    });
    it(`${user}: SQLAlchemy text() with bound parameters`, () => {
      expect(value(out[user], 'sqlalchemy_params')).toBe(see.paidUpTo1000);
    });
    it(`${user}: pandas.read_sql with parameters`, () => {
      expect(value(out[user], 'pandas_read_sql')).toEqual({ columns: ['region', 'n'], rows: see.regionsUpTo2000 });
    });
    it(`${user}: pandas.read_sql_table (reflection, then SELECT)`, () => {
      expect(value(out[user], 'pandas_read_sql_table')).toEqual({
        columns: see.customersColumns,
        rows: see.customersCount,
        regions: see.regions.map(([r]) => r),
      });
    });
  }
});
