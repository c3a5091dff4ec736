// Driver matrix (issue 16): pgjdbc (Debian's libpostgresql-jdbc-java: DBeaver, Metabase,
// Tableau's JDBC path), as bob and carol against the demo Gatehouse: PreparedStatement,
// server-prepared statements with cache eviction, fetchSize portals, CopyManager,
// DatabaseMetaData, readOnlyMode=always, startup options. Cases: java/DriverMatrix.java.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { startGatehouse } from '../../helpers/gatehouse.ts';
import { cacheRounds, driverSuite, missingCommand, missingJdbc, type Outcomes, runJava, SEES, USERS, value } from './matrix.ts';

driverSuite('pgjdbc', missingJdbc() ?? missingCommand('java', 'default-jdk-headless'), () => {
  let gh: RunningGatehouse;
  const out: Record<string, Outcomes> = {};
  beforeAll(async () => {
    gh = await startGatehouse();
    await Promise.all(USERS.map(async (u) => (out[u] = await runJava(gh.port, u))));
  });
  afterAll(async () => {
    await gh?.close();
  });

  for (const user of USERS) {
    const see = SEES[user];
    const csv = (rows: [string, number][]) => rows.map((r) => r.join(':')).join(',');
    it(`${user}: connect`, () => {
      expect(value(out[user], 'connect')).toBe(`warehouse:${see.sessionUser};16`);
    });
    it(`${user}: a governed query`, () => {
      expect(value(out[user], 'governed')).toBe(`${csv(see.regions)};${see.firstIds.join(',')}`);
    });
    it(`${user}: refused with 42501`, () => {
      expect(value(out[user], 'refused')).toBe(see.refused);
    });
    it(`${user}: PreparedStatement parameters`, () => {
      expect(value(out[user], 'params')).toBe(String(see.paidUpTo1000));
    });
    it(`${user}: server-prepared statements (prepareThreshold=1) with cache eviction (preparedStatementCacheQueries=2)`, () => {
      expect(value(out[user], 'prepared_cache')).toBe(cacheRounds(user).join(','));
    });
    it(`${user}: fetchSize=100 with autocommit off (a portal read 100 rows at a time)`, () => {
      expect(value(out[user], 'fetch_size')).toBe(`${see.ordersCount};${see.firstIds.join(':')};5000;${see.idSum}`);
    });
    it(`${user}: CopyManager.copyOut`, () => {
      expect(value(out[user], 'copy_out')).toBe(`${see.ordersCount};${see.copyHead.join(';')}`);
    });
    it(`${user}: DatabaseMetaData getTables and getColumns`, () => {
      const [tables, cols] = value<string>(out[user], 'metadata').split(';');
      expect(tables).toBe(see.tables.join(','));
      expect(cols.split(',').map((c) => c.split(':')[0])).toEqual(see.customersColumns);
      expect(cols).toContain('created_at:timestamptz');
    });
    it(`${user}: readOnly=true with readOnlyMode=always, autocommit on and off`, () => {
      expect(value(out[user], 'read_only_always')).toBe(`${see.upTo[100][0]};${see.upTo[100][1]}:on`);
    });
    it(`${user}: startup options (options=-c TimeZone=Europe/Paris)`, () => {
      expect(value(out[user], 'startup_options')).toBe('Europe/Paris');
    });
  }
});
