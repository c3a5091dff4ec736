// DESIGN: "a 1,000,000-row result is never held in memory, proved by a test that
// reads it slowly through a Gatehouse whose heap is capped well below the
// result's size." Gatehouse runs here as its own process (node
// --max-old-space-size=64, the CLI's `serve`), so its RSS can be sampled from
// /proc and an out-of-memory crash shows as a dead process, not a dead test runner.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_RULES, demoRulesWith, postgresWarehouseYaml, psql } from '../helpers/gatehouse.ts';
import { type GatehouseProcess, spawnGatehouse } from '../helpers/gatehouse-process.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { createAcmeWarehouse, requirePostgres } from '../helpers/servers.ts';

const REPO = resolve(import.meta.dirname, '../..');
const HEAP_MB = 64;
const PG_DATABASE = 'gatehouse_it_streaming';
const ROWS = 1_000_000;
const BIG_QUERY = `SELECT g, repeat('x', 200) AS pad FROM generate_series(1, ${ROWS}) g`;
/** A slow reader: this many bytes, then the socket is paused for PAUSE_MS. */
const THROTTLE = { bytesPerPause: 1 << 20, pauseMs: 25 };

/** `node --max-old-space-size=64 --import tsx src/cli.ts serve --rules DIR`, on free ports; resolves once it listens. */
function spawnCappedGatehouse(rulesDir: string): Promise<GatehouseProcess> {
  // `--import tsx` resolves from the working directory (a temporary one): give the loader's absolute URL.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return spawnGatehouse(process.execPath, [
    `--max-old-space-size=${HEAP_MB}`,
    '--import',
    tsx,
    join(REPO, 'src/cli.ts'),
    'serve',
    '--rules',
    rulesDir,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--admin-port',
    '0',
  ]);
}

/** VmRSS of a process in MB (from /proc/<pid>/status). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

function sampleRss(pid: number, everyMs = 50) {
  const samples: number[] = [];
  const t = setInterval(() => {
    try {
      samples.push(rssMb(pid));
    } catch {
      // the process is gone: the assertions on liveness say so
    }
  }, everyMs);
  return {
    stop: () => {
      clearInterval(t);
      return { max: Math.max(...samples), samples: samples.length };
    },
  };
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** Only acme: globex's embedded warehouse would be a second server started for nothing. */
function acmeOnly(dir: string): string {
  rmSync(join(dir, 'globex'), { recursive: true, force: true });
  return dir;
}

describe('a 1,000,000-row result through a Gatehouse with a 64 MB heap, read slowly', () => {
  describe('postgres warehouse', () => {
    let gh: GatehouseProcess;
    beforeAll(async () => {
      await requirePostgres();
      createAcmeWarehouse(PG_DATABASE, resolve(DEMO_RULES, 'acme/data/acme.sql'));
      const rules = acmeOnly(demoRulesWith(postgresWarehouseYaml(PG_DATABASE)));
      gh = await spawnCappedGatehouse(rules);
    });
    afterAll(async () => {
      await gh?.stop();
    });

    it('the heap cap reaches the Gatehouse process', () => {
      const argv = readFileSync(`/proc/${gh.pid}/cmdline`, 'utf8').split('\0');
      expect(argv).toContain(`--max-old-space-size=${HEAP_MB}`);
      expect(argv).toContain(join(REPO, 'src/cli.ts'));
    });

    it('carol reads 1,000,000 rows (>200 MB) slowly; RSS stays far below the result; Gatehouse keeps serving', async () => {
      const before = rssMb(gh.pid);
      const rss = sampleRss(gh.pid);
      const carol = await RawClient.connect({ port: gh.port, user: 'carol@acme.example', password: 'gatehouse-demo' });
      // Another session is answered while the big result is streaming.
      const meanwhile = new Promise<Awaited<ReturnType<typeof psql>>>((done) =>
        setTimeout(() => void psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders').then(done), 1000),
      );
      const r = await carol.query(BIG_QUERY, { throttle: THROTTLE, keepRows: 1 });
      const { max } = rss.stop();
      await carol.close();
      const mb = (r.dataRowBytes / 1e6).toFixed(1);
      console.log(
        `postgres: ${r.rows} rows, ${mb} MB of DataRows in ${(r.ms / 1000).toFixed(1)} s; Gatehouse RSS ${before.toFixed(0)} MB before, max ${max.toFixed(0)} MB during (heap cap ${HEAP_MB} MB)`,
      );
      expect(r.errors).toEqual([]);
      expect(r.columns).toEqual(['g', 'pad']);
      expect(r.firstRows[0]).toEqual(['1', 'x'.repeat(200)]);
      expect(r.rows).toBe(ROWS);
      expect(r.tags).toEqual([`SELECT ${ROWS}`]);
      expect(r.status).toBe('I');
      expect(r.dataRowBytes).toBeGreaterThan(200e6);
      expect(max).toBeLessThan(200);
      expect(max - before).toBeLessThan(100);
      expect(alive(gh.proc)).toBe(true);
      const m = await meanwhile;
      expect(m.stderr).toBe('');
      expect(m.stdout.trim()).toBe('1667');
      const after = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders');
      expect(after.stderr).toBe('');
      expect(after.stdout.trim()).toBe('1667');
    });
  });

  describe('embedded warehouse (a PostgreSQL server Gatehouse starts)', () => {
    let gh: GatehouseProcess;
    beforeAll(async () => {
      gh = await spawnCappedGatehouse(acmeOnly(demoRulesWith(readFileSync(join(DEMO_RULES, 'acme/connections/warehouse.yaml'), 'utf8'))));
    });
    afterAll(async () => {
      await gh?.stop();
    });

    // The embedded server is its own process now: Gatehouse's RSS is bounded as with postgres.
    it('carol reads 1,000,000 rows slowly; RSS grows far less than the result; Gatehouse keeps serving', async () => {
      const before = rssMb(gh.pid);
      const rss = sampleRss(gh.pid);
      const carol = await RawClient.connect({ port: gh.port, user: 'carol@acme.example', password: 'gatehouse-demo' });
      const r = await carol.query(BIG_QUERY, { throttle: THROTTLE, keepRows: 1 });
      const { max } = rss.stop();
      await carol.close();
      console.log(
        `embedded: ${r.rows} rows, ${(r.dataRowBytes / 1e6).toFixed(1)} MB of DataRows in ${(r.ms / 1000).toFixed(1)} s; Gatehouse RSS ${before.toFixed(0)} MB before, max ${max.toFixed(0)} MB during (heap cap ${HEAP_MB} MB; the server's own process not included)`,
      );
      expect(r.errors).toEqual([]);
      expect(r.rows).toBe(ROWS);
      expect(r.firstRows[0]).toEqual(['1', 'x'.repeat(200)]);
      expect(r.dataRowBytes).toBeGreaterThan(200e6);
      expect(max).toBeLessThan(200);
      expect(max - before).toBeLessThan(100);
      expect(alive(gh.proc)).toBe(true);
      const after = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders');
      expect(after.stderr).toBe('');
      expect(after.stdout.trim()).toBe('1667');
    });
  });
});
