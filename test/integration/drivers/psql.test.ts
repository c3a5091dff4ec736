// Driver matrix (issue 16): psql (libpq, the simple query protocol), as bob and carol against the
// demo Gatehouse: a governed query, psql variables, PREPARE/EXECUTE/DEALLOCATE, DECLARE/FETCH/CLOSE
// and FETCH_COUNT (psql's own cursor), \copy, \dt and \d, PGOPTIONS.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { DEMO_PASSWORD, startGatehouse } from '../../helpers/gatehouse.ts';
import { driverSuite, missingCommand, SEES, USERS } from './matrix.ts';

interface Psql {
  code: number;
  stdout: string;
  stderr: string;
}

/** psql -X -A -t with ON_ERROR_STOP, the script on stdin (so meta-commands and \copy work). */
function psql(port: number, user: string, script: string, env: Record<string, string> = {}): Promise<Psql> {
  return new Promise((done) => {
    const child = execFile(
      'psql',
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${port} dbname=warehouse user=${user} connect_timeout=10`],
      { env: { ...process.env, PGPASSWORD: DEMO_PASSWORD, PGSSLMODE: 'prefer', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(script);
  });
}

/** stdout's lines when psql succeeded; otherwise the failure with psql's stderr (the SQLSTATE is in its text). */
function lines(r: Psql): string[] {
  if (r.code !== 0 || r.stderr !== '') throw new Error(`psql exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim().split('\n');
}

driverSuite('psql', missingCommand('psql', 'postgresql-client'), () => {
  let gh: RunningGatehouse;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-psql-'));
  beforeAll(async () => {
    gh = await startGatehouse();
  });
  afterAll(async () => {
    await gh?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const user of USERS) {
    const see = SEES[user];
    it(`${user}: connect`, async () => {
      expect(lines(await psql(gh.port, user, 'SELECT current_database(), current_user;'))).toEqual([`warehouse|${see.sessionUser}`]);
    });
    it(`${user}: a governed query`, async () => {
      expect(lines(await psql(gh.port, user, 'SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1;'))).toEqual(see.regions.map((r) => r.join('|')));
    });
    it(`${user}: refused with 42501`, async () => {
      const sql = user.startsWith('bob') ? 'SELECT * FROM employees;' : "INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000');";
      const r = await psql(gh.port, user, `\\set VERBOSITY verbose\n${sql}`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ERROR: {2}42501:/);
    });
    it(`${user}: psql variables as parameters`, async () => {
      const r = await psql(gh.port, user, "\\set max_id 1000\n\\set status paid\nSELECT count(*) FROM orders WHERE id <= :max_id AND status = :'status';");
      expect(lines(r)).toEqual([String(see.paidUpTo1000)]);
    });
    it(`${user}: PREPARE / EXECUTE / DEALLOCATE`, async () => {
      const r = await psql(
        gh.port,
        user,
        'PREPARE by_id(int) AS SELECT count(*) FROM orders WHERE id <= $1;\nEXECUTE by_id(100);\nEXECUTE by_id(2000);\nDEALLOCATE by_id;\nDEALLOCATE ALL;',
      );
      expect(lines(r)).toEqual([String(see.upTo[100][0]), String(see.upTo[2000][0])]);
    });
    it(`${user}: DECLARE / FETCH / MOVE / CLOSE in a transaction`, async () => {
      const r = await psql(
        gh.port,
        user,
        'BEGIN;\nDECLARE c CURSOR FOR SELECT id FROM orders ORDER BY id;\nFETCH 3 FROM c;\nMOVE FORWARD 10 IN c;\nFETCH NEXT FROM c;\nCLOSE c;\nCOMMIT;',
      );
      expect(lines(r)).toEqual([...see.firstIds.map(String), user.startsWith('bob') ? '41' : '14']);
    });
    it(`${user}: FETCH_COUNT (psql reads through its own cursor, 100 rows at a time)`, async () => {
      const r = await psql(gh.port, user, '\\set FETCH_COUNT 100\nSELECT id FROM orders ORDER BY id;');
      const ids = lines(r).map(Number);
      expect(ids).toHaveLength(see.ordersCount);
      expect(ids.slice(0, 3)).toEqual(see.firstIds);
      expect(ids.reduce((a, b) => a + b, 0)).toBe(see.idSum);
    });
    it(`${user}: \\copy (SELECT ...) TO a file, CSV`, async () => {
      const file = join(dir, `${user}.csv`);
      const r = await psql(gh.port, user, `\\copy (SELECT id, region FROM orders ORDER BY id) TO '${file}' WITH (FORMAT csv)`);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const csv = readFileSync(file, 'utf8').trim().split('\n');
      expect(csv).toHaveLength(see.ordersCount);
      expect(csv.slice(0, 2)).toEqual(see.copyHead);
    });
    it(`${user}: \\dt and \\d customers`, async () => {
      const dt = lines(await psql(gh.port, user, '\\dt'));
      expect(dt.map((l) => l.split('|')[1])).toEqual(see.tables);
      const d = lines(await psql(gh.port, user, '\\d customers'));
      expect(d.map((l) => l.split('|')[0])).toEqual(see.customersColumns);
    });
    it(`${user}: PGOPTIONS='-c TimeZone=Europe/Paris' is applied`, async () => {
      expect(lines(await psql(gh.port, user, 'SHOW TimeZone;', { PGOPTIONS: '-c TimeZone=Europe/Paris' }))).toEqual(['Europe/Paris']);
    });
  }
});
