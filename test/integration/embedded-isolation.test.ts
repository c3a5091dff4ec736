// Issue 12's findings on the first embedded warehouse (PGlite: one backend shared by every
// session), as tests through real psql and the pg driver against the demo's embedded
// warehouse, which is now a real PostgreSQL server where every session is its own backend.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { syncMessage, extendedMessage, MSG, errorFields } from '../../src/warehouses/pg-framing.ts';
import type { ExtendedStep } from '../../src/wire/messages.ts';
import { DEMO_PASSWORD, pgClient, psql, startGatehouse } from '../helpers/gatehouse.ts';
import { RawClient } from '../helpers/raw-client.ts';

let gh: RunningGatehouse;
const clients: pg.Client[] = [];
const raws: RawClient[] = [];

async function client(user: string): Promise<pg.Client> {
  const c = await pgClient(gh, user);
  c.on('error', () => {});
  clients.push(c);
  return c;
}
async function raw(user: string): Promise<RawClient> {
  const c = await RawClient.connect({ port: gh.port, user, password: DEMO_PASSWORD, database: 'warehouse' });
  raws.push(c);
  return c;
}
/** One extended batch and Sync on a raw connection: the message types received and the errors' SQLSTATEs. */
async function batch(c: RawClient, steps: ExtendedStep[]): Promise<{ types: string; codes: string[] }> {
  c.socket.write(Buffer.concat([...steps.map(extendedMessage), syncMessage()]));
  let types = '';
  const codes: string[] = [];
  for (;;) {
    const m = await c.next();
    types += String.fromCharCode(m.type);
    if (m.type === MSG.ErrorResponse) codes.push(errorFields(m.body).C);
    if (m.type === MSG.ReadyForQuery) return { types, codes };
  }
}
const errCode = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

beforeAll(async () => {
  gh = await startGatehouse();
}, 120_000);
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  for (const c of raws) await c.close().catch(() => {});
  await gh?.close();
});

describe('embedded warehouse: every session its own backend (issue 12)', () => {
  it("another session's cursor (portal) is unreachable: 34000, and no employees rows", async () => {
    const carol = await client('carol@acme.example');
    await carol.query('BEGIN');
    await carol.query('DECLARE c CURSOR WITH HOLD FOR SELECT name, ssn FROM employees');
    await carol.query('COMMIT');
    expect((await carol.query('FETCH 1 FROM c')).rows).toHaveLength(1);
    // alice (connection admin, raw SQL) names carol's cursor: it does not exist in her session.
    const alice = await client('alice@acme.example');
    expect(await errCode(alice.query('FETCH ALL FROM c'))).toBe('34000');
    // bob sends Describe and Execute of portal "c", which his session never bound.
    const bob = await raw('bob@acme.example');
    const r = await batch(bob, [
      { type: 'Describe', kind: 'P', name: 'c' },
      { type: 'Execute', portal: 'c', maxRows: 0 },
    ]);
    expect(r.types).not.toContain('D');
    expect(r.codes.length).toBeGreaterThan(0);
    expect(['34000', '26000']).toContain(r.codes[0]);
  });

  it("another session's prepared statement is unreachable: 26000, and pg_prepared_statements shows only one's own", async () => {
    const bob = await client('bob@acme.example');
    await bob.query({ name: 'bobs', text: 'SELECT id, region FROM orders WHERE id = $1', values: [1] });
    const carol = await client('carol@acme.example');
    expect((await carol.query('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows[0].n).toBe(0);
    expect(await errCode(carol.query('DEALLOCATE bobs'))).toBe('26000');
    // carol Binds bob's statement name: unknown in her session.
    const carolRaw = await raw('carol@acme.example');
    const r = await batch(carolRaw, [
      { type: 'Bind', portal: '', statement: 'bobs', paramFormats: [], params: [Buffer.from('1')], resultFormats: [] },
      { type: 'Execute', portal: '', maxRows: 0 },
    ]);
    expect(r.codes[0]).toBe('26000');
    // bob's statement still runs his SQL.
    const again = await bob.query({ name: 'bobs', text: 'SELECT id, region FROM orders WHERE id = $1', values: [1] });
    expect(again.fields.map((f) => f.name)).toEqual(['id', 'region']);
  });

  it("DISCARD ALL touches only the session's own state", async () => {
    const grace = await client('grace@acme.example');
    await grace.query({ name: 'graces', text: 'SELECT count(*)::int AS n FROM orders WHERE id < $1', values: [100] });
    const bob = await client('bob@acme.example');
    await bob.query('DISCARD ALL');
    const again = await grace.query({ name: 'graces', text: 'SELECT count(*)::int AS n FROM orders WHERE id < $1', values: [100] });
    expect(again.rows[0].n).toBeGreaterThan(0);
    // psql's DISCARD ALL as well.
    const p = await psql(gh, 'bob@acme.example', 'DISCARD ALL');
    expect(p.code).toBe(0);
    expect((await grace.query({ name: 'graces', text: 'SELECT count(*)::int AS n FROM orders WHERE id < $1', values: [100] })).rows[0].n).toBeGreaterThan(0);
  });

  it("an idle open transaction of carol does not delay bob's query", async () => {
    const carol = await client('carol@acme.example');
    await carol.query('BEGIN');
    await carol.query('SELECT count(*) FROM employees');
    const t0 = performance.now();
    const r = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders');
    const ms = performance.now() - t0;
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThan(0);
    expect(ms).toBeLessThan(5000);
    await carol.query('ROLLBACK');
  });

  const LONG = 'SELECT count(*) FROM generate_series(1, 20000) a CROSS JOIN generate_series(1, 20000) b';

  it('statement_timeout cancels a long query with 57014', async () => {
    const carol = await client('carol@acme.example');
    await carol.query('SET statement_timeout = 200');
    const t0 = performance.now();
    expect(await errCode(carol.query(LONG))).toBe('57014');
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect((await carol.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    // The same through psql.
    const p = await psql(gh, 'carol@acme.example', `SET statement_timeout = 200; ${LONG}`);
    expect(p.code).not.toBe(0);
    expect(p.stderr).toMatch(/canceling statement due to statement timeout/);
  });

  it("a CancelRequest (pg's client cancel) stops a running query with 57014", async () => {
    const carol = await client('carol@acme.example');
    const running = errCode(carol.query(LONG));
    await new Promise((r) => setTimeout(r, 500));
    // node-postgres cancels by opening a second connection with the backend key data.
    const canceller = new pg.Client({ host: '127.0.0.1', port: gh.port, user: 'carol@acme.example', password: DEMO_PASSWORD, database: 'warehouse' });
    (canceller as any).cancel(carol, (carol as any).activeQuery);
    const t0 = performance.now();
    expect(await running).toBe('57014');
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('psql stops a running query on SIGINT (Ctrl-C) with 57014', async () => {
    const child = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${gh.port} dbname=warehouse user=carol@acme.example`, '-c', LONG], {
      env: { ...process.env, PGPASSWORD: DEMO_PASSWORD },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000))]);
      expect(code).not.toBe('timeout');
      expect(stderr).toMatch(/canceling statement due to user request/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it("announces the warehouse's own server_version, and psql 15's \\l works", async () => {
    const carol = await client('carol@acme.example');
    const v = (await carol.query('SHOW server_version')).rows[0].server_version as string;
    expect(v).toMatch(/^16\./);
    expect((carol as any).connectionParameters !== undefined).toBe(true);
    const raw1 = await raw('carol@acme.example');
    expect(raw1.parameters.get('server_version')).toBe(v);
    const l = await psql(gh, 'carol@acme.example', '\\l');
    expect(l.code).toBe(0);
    expect(l.stdout).toContain('warehouse');
  });
});
