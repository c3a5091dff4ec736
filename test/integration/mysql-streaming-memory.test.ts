// DESIGN: "a 1,000,000-row result is never held in memory". The same proof as
// streaming-memory.test.ts, on a mysql connection: Gatehouse as its own process with a
// 64 MB heap (node --max-old-space-size=64), carol reading 1,000,000 rows from MariaDB
// slowly (the client's pace is the pace: mysql2's socket is paused while she is behind),
// RSS sampled from /proc.
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoRulesWith, psql } from '../helpers/gatehouse.ts';
import { type GatehouseProcess, spawnGatehouse } from '../helpers/gatehouse-process.ts';
import { freshMariadbDatabase, mariadbRun } from '../helpers/mariadb.ts';
import { RawClient } from '../helpers/raw-client.ts';

const REPO = resolve(import.meta.dirname, '../..');
const HEAP_MB = 64;
const DB = 'gatehouse_mysql_streaming';
const READER = 'gh_stream_reader';
const PW = 'gh-stream-pw-5';
const ROWS = 1_000_000;
const BIG_QUERY = `SELECT seq AS g, REPEAT('x', 200) AS pad FROM seq_1_to_${ROWS}`;
const THROTTLE = { bytesPerPause: 1 << 20, pauseMs: 25 };

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

describe('a 1,000,000-row result from MariaDB through a Gatehouse with a 64 MB heap, read slowly', () => {
  let gh: GatehouseProcess;
  beforeAll(async () => {
    await freshMariadbDatabase(DB, 'CREATE TABLE t (id INT);', { [READER]: PW });
    await mariadbRun(`GRANT SELECT ON \`${DB}\`.* TO '${READER}'@'%'`);
    const rules = demoRulesWith(`kind: mysql
host: 127.0.0.1
database: ${DB}
user: ${READER}
password_env: GH_STREAM_PW
permissions:
  default: no_access
  groups:
    analysts: querier
`);
    // Only acme, and no topics on this connection (no topics account to check).
    rmSync(join(rules, 'globex'), { recursive: true, force: true });
    rmSync(join(rules, 'acme/topics'), { recursive: true, force: true });
    rmSync(join(rules, 'acme/tests'), { recursive: true, force: true });
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    gh = await spawnGatehouse(
      process.execPath,
      [
        `--max-old-space-size=${HEAP_MB}`,
        '--import',
        tsx,
        join(REPO, 'src/cli.ts'),
        'serve',
        '--rules',
        rules,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--admin-port',
        '0',
      ],
      { env: { GH_STREAM_PW: PW } },
    );
  });
  afterAll(async () => {
    await gh?.stop();
  });

  it('carol reads 1,000,000 rows (>200 MB) slowly; RSS stays far below the result; Gatehouse keeps serving', async () => {
    const before = rssMb(gh.pid);
    const samples: number[] = [];
    const timer = setInterval(() => {
      try {
        samples.push(rssMb(gh.pid));
      } catch {
        // gone: the liveness assertion says so
      }
    }, 50);
    const carol = await RawClient.connect({ port: gh.port, user: 'carol@acme.example', password: 'gatehouse-demo' });
    const meanwhile = new Promise<Awaited<ReturnType<typeof psql>>>((done) =>
      setTimeout(() => void psql(gh, 'carol@acme.example', 'SELECT 41 + 1').then(done), 1000),
    );
    const r = await carol.query(BIG_QUERY, { throttle: THROTTLE, keepRows: 1 });
    clearInterval(timer);
    await carol.close();
    const max = Math.max(...samples);
    console.log(
      `mysql: ${r.rows} rows, ${(r.dataRowBytes / 1e6).toFixed(1)} MB of DataRows in ${(r.ms / 1000).toFixed(1)} s; Gatehouse RSS ${before.toFixed(0)} MB before, max ${max.toFixed(0)} MB during (heap cap ${HEAP_MB} MB)`,
    );
    expect(r.errors).toEqual([]);
    expect(r.columns).toEqual(['g', 'pad']);
    expect(r.firstRows[0]).toEqual(['1', 'x'.repeat(200)]);
    expect(r.rows).toBe(ROWS);
    expect(r.tags).toEqual([`SELECT ${ROWS}`]);
    expect(r.dataRowBytes).toBeGreaterThan(200e6);
    expect(max).toBeLessThan(200);
    expect(max - before).toBeLessThan(100);
    expect(gh.proc.exitCode).toBeNull();
    const m = await meanwhile;
    expect(m.stderr).toBe('');
    expect(m.stdout.trim()).toBe('42');
  });
});
