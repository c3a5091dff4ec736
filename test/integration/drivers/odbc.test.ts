// Driver matrix (issue 16): psqlODBC (Debian's odbc-postgresql, "PostgreSQL Unicode") through
// unixODBC and pyodbc, DSN-less, as Power BI, Excel and Tableau connect on Windows; in three
// set-ups: UseServerSidePrepare=1 (the default: extended protocol, _PLAN0x... statements),
// UseServerSidePrepare=0 (simple protocol), UseDeclareFetch=1 (DECLARE / FETCH 100).
// As bob and carol against the demo Gatehouse. Cases: python/odbc_matrix.py.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { startGatehouse } from '../../helpers/gatehouse.ts';
import { driverSuite, missingPython, type Outcomes, runPython, SEES, USERS, value } from './matrix.ts';

const VARIANTS = {
  ssp1: 'UseServerSidePrepare=1',
  ssp0: 'UseServerSidePrepare=0',
  declare: 'UseDeclareFetch=1',
} as const;

function missingOdbc(): string | undefined {
  const py = missingPython(['pyodbc'], ['python3-pyodbc', 'unixodbc', 'odbc-postgresql']);
  if (py) return py;
  try {
    // The driver must be registered under the name the connection string uses.
    if (!/^\[PostgreSQL Unicode\]/m.test(readFileSync('/etc/odbcinst.ini', 'utf8'))) throw new Error('not registered');
    return undefined;
  } catch {
    return '/etc/odbcinst.ini registers no "PostgreSQL Unicode" driver: apt-get update && apt-get install -y odbc-postgresql unixodbc (bash .ci/run does this)';
  }
}

driverSuite('psqlODBC via pyodbc', missingOdbc(), () => {
  let gh: RunningGatehouse;
  const out: Record<string, Outcomes> = {};
  beforeAll(async () => {
    gh = await startGatehouse();
    const runs = USERS.flatMap((u) => Object.keys(VARIANTS).map((v) => [u, v] as const));
    await Promise.all(runs.map(async ([u, v]) => (out[`${u} ${v}`] = await runPython('odbc_matrix.py', gh.port, u, v))));
  });
  afterAll(async () => {
    await gh?.close();
  });

  for (const user of USERS) {
    const see = SEES[user];
    for (const [variant, label] of Object.entries(VARIANTS)) {
      const o = () => out[`${user} ${variant}`];
      it(`${user}, ${label}: connect`, () => {
        expect(value(o(), 'connect')).toEqual({ database: 'warehouse', user: see.sessionUser, dbms: 'PostgreSQL' });
      });
      it(`${user}, ${label}: a governed query`, () => {
        expect(value(o(), 'governed')).toEqual({ regions: see.regions, first_ids: see.firstIds });
      });
      it(`${user}, ${label}: refused with 42501`, () => {
        expect(value(o(), 'refused')).toBe(see.refused);
      });
      it(`${user}, ${label}: ? parameters`, () => {
        expect(value(o(), 'params')).toBe(see.paidUpTo1000);
      });
      it(`${user}, ${label}: a statement prepared once and executed again, then freed`, () => {
        const [o100, c100] = see.upTo[100];
        const [o1000, c1000] = see.upTo[1000];
        const [o2000, c2000] = see.upTo[2000];
        expect(value(o(), 'prepared_reuse')).toEqual([o100, o100, c100, o1000, o1000, c1000, o2000, o2000, c2000, o100, c100]);
      });
      it(`${user}, ${label}: every row of a 5000-row query, fetched in batches`, () => {
        expect(value(o(), 'fetch_all_rows')).toEqual({ count: see.ordersCount, first: see.firstIds, last: 5000, sum: see.idSum });
      });
      it(`${user}, ${label}: cursor.tables()`, () => {
        expect(value(o(), 'catalog_tables')).toEqual(see.tables);
      });
      it(`${user}, ${label}: cursor.columns()`, () => {
        const cols = value<[string, string][]>(o(), 'catalog_columns');
        expect(cols.map((c) => c[0])).toEqual(see.customersColumns);
        expect(cols.find((c) => c[0] === 'created_at')?.[1]).toBe('timestamptz');
      });
    }
  }
});
