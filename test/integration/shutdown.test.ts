// Graceful shutdown of `gatehouse serve` (issue 17), as a real process: SIGTERM closes the
// listener, an idle pg client and an idle psql get FATAL 57P01 at once, a client mid-statement
// gets its result and then 57P01, the audit file holds every record, the process exits 0 and no
// embedded PostgreSQL is left behind.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { DEMO_PASSWORD, DEMO_RULES } from '../helpers/gatehouse.ts';
import { spawnGatehouse } from '../helpers/gatehouse-process.ts';

const BIN = resolve(import.meta.dirname, '../../bin/gatehouse.js');
const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const ADMIN_SHUTDOWN = { code: '57P01', message: 'terminating connection due to administrator command' };

/** Processes whose command line names this directory (the embedded servers' data dirs are under it). */
function processesUnder(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(dir) && !l.includes('ps -eo'));
}

it('SIGTERM: idle sessions get 57P01 at once, a running statement finishes first, the audit is written, exit 0, nothing left behind', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-'));
  temps.push(cwd);
  const rules = join(cwd, 'rules');
  cpSync(DEMO_RULES, rules, { recursive: true });
  writeFileSync(join(rules, 'gatehouse.yaml'), 'server:\n  shutdown_timeout: 60s\n');
  const gh = await spawnGatehouse(process.execPath, [BIN, 'serve', '--rules', rules, '--port', '0', '--admin-port', '0'], { cwd });
  const clients: pg.Client[] = [];
  let psqlProc: ChildProcess | undefined;
  try {
    const connect = async (user: string) => {
      const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user, password: DEMO_PASSWORD, database: 'warehouse' });
      const errors: { code?: string; message: string }[] = [];
      c.on('error', (e) => errors.push(e as { code?: string; message: string }));
      await c.connect();
      clients.push(c);
      return { c, errors, ended: new Promise<void>((r) => c.once('end', () => r())) };
    };
    const idle = await connect('bob@acme.example');
    const inTransaction = await connect('erin@acme.example');
    await inTransaction.c.query('BEGIN');
    const busy = await connect('carol@acme.example');
    // psql, idle at its prompt after a first statement.
    psqlProc = spawn('psql', ['-X', '-A', '-t', `host=127.0.0.1 port=${gh.port} dbname=warehouse user=alice@acme.example`], {
      env: { ...process.env, PGPASSWORD: DEMO_PASSWORD },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let psqlOut = '';
    psqlProc.stdout!.on('data', (d) => (psqlOut += d));
    psqlProc.stderr!.on('data', (d) => (psqlOut += d));
    const psqlExit = new Promise<number | null>((r) => psqlProc!.once('exit', (code) => r(code)));
    psqlProc.stdin!.write('SELECT 40 + 2;\n');
    await expect.poll(() => psqlOut, { timeout: 10_000 }).toContain('42');

    // A statement that takes a few seconds on the embedded warehouse, running when the signal comes.
    const t0 = Date.now();
    const running = busy.c.query('SELECT count(*)::int AS n FROM generate_series(1, 20000000)');
    running.catch(() => {}); // awaited below; a failure before then must not be unhandled
    let finished = false;
    void running.then(
      () => (finished = true),
      () => {},
    );
    await new Promise((r) => setTimeout(r, 500));
    const exited = new Promise<number | null>((r) => gh.proc.once('exit', (code) => r(code)));
    process.kill(gh.pid, 'SIGTERM');

    // Idle sessions end at once, in a transaction or not.
    await idle.ended;
    await inTransaction.ended;
    expect(finished).toBe(false); // they did not wait for the statement
    // (node-postgres then reports the closed socket too, as after PostgreSQL's own 57P01.)
    expect(idle.errors[0]).toMatchObject(ADMIN_SHUTDOWN);
    expect(inTransaction.errors[0]).toMatchObject(ADMIN_SHUTDOWN);
    // The listener is closed: a new connection is refused while the statement still runs.
    const refused = await new Promise<string>((r) => {
      const s = net.connect({ host: '127.0.0.1', port: gh.port });
      s.once('connect', () => {
        s.destroy();
        r('connected');
      });
      s.once('error', (e) => r((e as NodeJS.ErrnoException).code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    // The health check says so while the statement finishes: a load balancer stops sending clients.
    const health = await fetch(`http://127.0.0.1:${gh.adminPort}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'shutting_down' });

    // The running statement gets its result, then 57P01.
    expect((await running).rows).toEqual([{ n: 20000000 }]);
    await busy.ended;
    expect(busy.errors[0]).toMatchObject(ADMIN_SHUTDOWN);

    // psql learns it at its next command.
    psqlProc.stdin!.end('SELECT 1;\n');
    await psqlExit;
    expect(psqlOut).toContain('FATAL:  terminating connection due to administrator command');

    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(gh.output()).toContain('gatehouse stopped');

    // Every record is in the audit file: the statement that ran through the shutdown and each session's end.
    const audit = readFileSync(join(cwd, '.gatehouse/audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toContainEqual(
      expect.objectContaining({
        type: 'statement',
        user: 'carol@acme.example',
        statement: expect.stringContaining('generate_series(1, 20000000)'),
        decision: 'allowed',
      }),
    );
    const ends = audit.filter((r) => r.type === 'session_end').map((r) => r.user);
    expect(ends.sort()).toEqual(['alice@acme.example', 'bob@acme.example', 'carol@acme.example', 'erin@acme.example']);

    // No embedded PostgreSQL (or anything else started under this directory) outlives Gatehouse.
    await expect.poll(() => processesUnder(cwd), { timeout: 5000 }).toEqual([]);
  } finally {
    psqlProc?.kill();
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await gh.stop();
  }
}, 180_000);

it('at shutdown_timeout a statement still running is canceled and its session ends with 57P01; exit 0, nothing left behind', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-'));
  temps.push(cwd);
  const rules = join(cwd, 'rules');
  cpSync(DEMO_RULES, rules, { recursive: true });
  writeFileSync(join(rules, 'gatehouse.yaml'), 'server:\n  shutdown_timeout: 1s\n');
  const gh = await spawnGatehouse(process.execPath, [BIN, 'serve', '--rules', rules, '--port', '0', '--admin-port', '0'], { cwd });
  const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user: 'carol@acme.example', password: DEMO_PASSWORD, database: 'warehouse' });
  const errors: { code?: string; message: string }[] = [];
  c.on('error', (e) => errors.push(e as { code?: string; message: string }));
  try {
    await c.connect();
    const endless = c.query('SELECT count(*) FROM generate_series(1, 3000000000)');
    const outcome = endless.then(
      () => 'finished',
      (e: { code?: string; message: string }) => e,
    );
    await new Promise((r) => setTimeout(r, 500));
    const exited = new Promise<number | null>((r) => gh.proc.once('exit', (code) => r(code)));
    const t0 = Date.now();
    process.kill(gh.pid, 'SIGTERM');
    expect(await outcome).toMatchObject(ADMIN_SHUTDOWN);
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const audit = readFileSync(join(cwd, '.gatehouse/audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toContainEqual(expect.objectContaining({ type: 'statement', user: 'carol@acme.example', sqlstate: '08006' }));
    expect(audit).toContainEqual(expect.objectContaining({ type: 'session_end', user: 'carol@acme.example' }));
    await expect.poll(() => processesUnder(cwd), { timeout: 5000 }).toEqual([]);
  } finally {
    await c.end().catch(() => {});
    await gh.stop();
  }
}, 180_000);
