// Driver matrix (issue 16): asyncpg (extended protocol only: Parse and Describe followed by
// Flush, binary results, a statement cache that Closes what it evicts, cursors read with
// row-limited Execute inside a transaction, COPY out, type introspection), as bob and carol
// against the demo Gatehouse. Cases: python/asyncpg_matrix.py.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { startGatehouse } from '../../helpers/gatehouse.ts';
import { cacheRounds, driverSuite, missingPython, type Outcomes, runPython, SEES, USERS, value } from './matrix.ts';

const missing = missingPython(['asyncpg'], ['python3-asyncpg']);

driverSuite('asyncpg', missing, () => {
  let gh: RunningGatehouse;
  const out: Record<string, Outcomes> = {};
  beforeAll(async () => {
    gh = await startGatehouse();
    await Promise.all(USERS.map(async (u) => (out[u] = await runPython('asyncpg_matrix.py', gh.port, u))));
  });
  afterAll(async () => {
    await gh?.close();
  });

  for (const user of USERS) {
    const see = SEES[user];
    it(`${user}: connect`, () => {
      expect(value(out[user], 'connect')).toEqual({ database: 'warehouse', user: see.sessionUser, server_version: 16 });
    });
    it(`${user}: fetch a governed query`, () => {
      expect(value(out[user], 'governed')).toEqual({ regions: see.regions, first_ids: see.firstIds });
    });
    it(`${user}: refused with 42501`, () => {
      expect(value(out[user], 'refused')).toBe(see.refused);
    });
    it(`${user}: parameters`, () => {
      expect(value(out[user], 'params')).toBe(see.paidUpTo1000);
    });
    it(`${user}: a prepared statement: its types, fetch and fetchval`, () => {
      expect(value(out[user], 'prepared')).toEqual({
        params: ['int4'],
        attributes: [
          ['id', 'int4'],
          ['amount', 'numeric'],
          ['ordered_at', 'timestamptz'],
        ],
        rows: see.upTo[100][0],
        first: [see.firstOrder.id, see.firstOrder.amount, see.firstOrder.orderedAt],
        fetchval: see.firstOrder.id,
      });
    });
    it(`${user}: statement cache eviction (statement_cache_size=2)`, () => {
      expect(value(out[user], 'statement_cache')).toEqual(cacheRounds(user));
    });
    it(`${user}: cursors inside a transaction (prefetch, fetch, forward)`, () => {
      // bob's ids are 2, 5, 8, ...: after 3 rows and forward(10) the next is the 14th, 41; carol's 14.
      expect(value(out[user], 'cursor')).toEqual({
        count: see.ordersCount,
        first: see.firstIds,
        last: 5000,
        sum: see.idSum,
        head: see.firstIds,
        after_forward: user.startsWith('bob') ? 41 : 14,
      });
    });
    it(`${user}: copy_from_query with a parameter, CSV`, () => {
      expect(value(out[user], 'copy')).toEqual({ lines: see.upTo[100][0], head: see.copyHead });
    });
    it(`${user}: type introspection (set_type_codec on numeric), arrays`, () => {
      expect(value(out[user], 'introspection')).toEqual({ amount: `N${see.firstOrder.amount}`, array: see.firstIds });
    });
  }
});
