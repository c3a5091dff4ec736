// Upstream pooling (issue 17) end to end: real PostgreSQL (127.0.0.1:5432) behind a real
// Gatehouse on free ports, real pg clients. Session pooling (the default): a session's
// upstream is reset and reused by the next session, and nothing of the first session is
// visible in the next. Transaction pooling: many clients over few upstreams, statement names
// that collide between clients, session state refused, cancel routed, waits bounded.
import net from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import type { PoolStats } from '../../src/warehouses/pool.ts';
import { appendFileSync } from 'node:fs';
import { DEMO_RULES, demoRulesWith, pgClient, postgresWarehouseYaml, startGatehouse } from '../helpers/gatehouse.ts';
import { createAcmeWarehouse, psqlAdmin, requirePostgres } from '../helpers/servers.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { MSG, errorFields, extendedMessage, syncMessage } from '../../src/warehouses/pg-framing.ts';
import { upstreamStatementName } from '../../src/warehouses/transaction-pool.ts';

const DB = 'gatehouse_pool_test';
const CAROL = 'carol@acme.example'; // querier: raw SQL, read-only
const BOB = 'bob@acme.example'; // query_topics
const ALICE = 'alice@acme.example'; // org admin: the querier account too

function poolOf(gh: RunningGatehouse, account: string): PoolStats {
  const p = gh.gateway.poolStats().find((s) => s.account === account);
  if (!p) throw new Error(`no pool for account ${account}`);
  return p;
}

/** A session's upstream goes back after its client left (DISCARD ALL takes a round trip): wait until it is parked. */
async function parked(gh: RunningGatehouse, account: string, idle = 1): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const p = gh.gateway.poolStats().find((s) => s.account === account);
    if (p && p.idle >= idle && p.inUse === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the ${account} pool never parked ${idle} connection(s): ${JSON.stringify(gh.gateway.poolStats())}`);
}

async function one(c: pg.Client, sql: string): Promise<unknown> {
  const r = await c.query({ text: sql, rowMode: 'array' });
  return r.rows[0]?.[0];
}

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected an error');
}

/** A CancelRequest for a pg client's session, as libpq sends it (protocol 55.2.7). */
function cancel(gh: { port: number }, c: pg.Client): Promise<void> {
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  return new Promise((done) => {
    const s = net.connect({ host: '127.0.0.1', port: gh.port }, () => {
      const b = Buffer.alloc(16);
      b.writeInt32BE(16, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(processID, 8);
      b.writeInt32BE(secretKey, 12);
      s.end(b);
    });
    s.on('close', () => done());
    s.on('error', () => done());
  });
}

beforeAll(async () => {
  await requirePostgres();
  createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
});

describe('session pooling (the default)', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(demoRulesWith(postgresWarehouseYaml(DB)));
  });
  afterAll(async () => {
    await gh?.close();
  });

  it('the next session reuses the upstream of the last one (same backend), without a new start-up', async () => {
    const a = await pgClient(gh, CAROL);
    const pid = await one(a, 'SELECT pg_backend_pid()');
    await a.end();
    await parked(gh, 'querier');
    const opened = poolOf(gh, 'querier').opened;
    const b = await pgClient(gh, CAROL);
    expect(await one(b, 'SELECT pg_backend_pid()')).toBe(pid);
    await b.end();
    expect(poolOf(gh, 'querier').opened).toBe(opened);
    expect(poolOf(gh, 'querier').reused).toBeGreaterThan(0);
  });

  it('nothing of a session reaches the next: settings, prepared statements, cursors WITH HOLD, LISTEN; the pins and read-only hold', async () => {
    await parked(gh, 'querier');
    const a = await pgClient(gh, CAROL);
    const pid = await one(a, 'SELECT pg_backend_pid()');
    await a.query(`SET statement_timeout = '1234ms'`);
    await a.query(`SET DateStyle = 'German'`);
    await a.query('PREPARE leaked AS SELECT 1');
    await a.query({ name: 'leaked_ext', text: 'SELECT 2' });
    await a.query('DECLARE held CURSOR WITH HOLD FOR SELECT 1');
    await a.query('LISTEN leaked_channel');
    // Advisory locks are refused at every level (src/sql/functions.ts), so none can be left behind.
    expect((await errorOf(a.query('SELECT pg_advisory_lock(42)'))).code).toBe('42501');
    expect(await one(a, 'SELECT count(*)::int FROM pg_prepared_statements')).toBe(2);
    await a.end();
    await parked(gh, 'querier');

    const b = await pgClient(gh, CAROL);
    expect(await one(b, 'SELECT pg_backend_pid()')).toBe(pid);
    expect(await one(b, 'SHOW statement_timeout')).toBe('0');
    expect(await one(b, 'SHOW DateStyle')).toBe('ISO, MDY');
    expect(await one(b, 'SELECT count(*)::int FROM pg_prepared_statements')).toBe(0);
    expect(await one(b, 'SELECT count(*)::int FROM pg_cursors')).toBe(0);
    expect(await one(b, 'SELECT count(*)::int FROM pg_listening_channels()')).toBe(0);
    expect(await one(b, `SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory'`).catch(() => 0)).toBe(0);
    // The lexing pins and read-only are startup parameters: RESET ALL (in DISCARD ALL) goes back to them.
    expect(await one(b, 'SHOW standard_conforming_strings')).toBe('on');
    expect(await one(b, 'SHOW backslash_quote')).toBe('safe_encoding');
    expect(await one(b, 'SHOW client_encoding')).toBe('UTF8');
    expect(await one(b, 'SHOW default_transaction_read_only')).toBe('on');
    await b.end();
  });

  it('a temporary table of one session is gone in the next (a connection that allows writes)', async () => {
    psqlAdmin(DB, 'GRANT TEMP ON DATABASE gatehouse_pool_test TO gatehouse_reader');
    const writes = await startGatehouse(demoRulesWith(`${postgresWarehouseYaml(DB)}allow_writes: true\n`));
    try {
      const a = await pgClient(writes, CAROL);
      const pid = await one(a, 'SELECT pg_backend_pid()');
      await a.query('CREATE TEMP TABLE leaked_temp (n int)');
      await a.query('INSERT INTO leaked_temp VALUES (1)');
      await a.end();
      await parked(writes, 'querier');
      const b = await pgClient(writes, CAROL);
      expect(await one(b, 'SELECT pg_backend_pid()')).toBe(pid);
      expect(await one(b, `SELECT to_regclass('pg_temp.leaked_temp')::text`)).toBeNull();
      await b.end();
    } finally {
      await writes.close();
      psqlAdmin(DB, 'REVOKE TEMP ON DATABASE gatehouse_pool_test FROM gatehouse_reader');
    }
  });

  it("application_name is each session's own person on a reused upstream (gatehouse:<email>, whatever the client named)", async () => {
    await parked(gh, 'querier');
    const a = new pg.Client({
      host: '127.0.0.1',
      port: gh.port,
      user: CAROL,
      password: 'gatehouse-demo',
      database: 'warehouse',
      application_name: 'first-app',
    });
    await a.connect();
    const pid = await one(a, 'SELECT pg_backend_pid()');
    expect(await one(a, 'SHOW application_name')).toBe(`gatehouse:${CAROL}`);
    await a.end();
    await parked(gh, 'querier');
    const b = new pg.Client({
      host: '127.0.0.1',
      port: gh.port,
      user: ALICE,
      password: 'gatehouse-demo',
      database: 'warehouse',
      application_name: 'second-app',
    });
    await b.connect();
    expect(await one(b, 'SELECT pg_backend_pid()')).toBe(pid);
    expect(await one(b, 'SHOW application_name')).toBe(`gatehouse:${ALICE}`);
    expect(psqlAdmin(DB, `SELECT application_name FROM pg_stat_activity WHERE pid = ${pid}`).trim()).toBe(`gatehouse:${ALICE}`);
    await b.end();
  });

  it("the topics account's timeouts hold after reuse, and a session's SET is gone", async () => {
    const a = await pgClient(gh, BOB);
    const initial = await one(a, 'SHOW statement_timeout');
    expect(initial).not.toBe('0');
    // statement_timeout itself is the connection's for query_topics users (refused); DateStyle is theirs.
    await a.query(`SET DateStyle = 'German'`);
    await a.end();
    await parked(gh, 'topics');
    const reused = poolOf(gh, 'topics').reused;
    const b = await pgClient(gh, BOB);
    expect(await one(b, 'SHOW statement_timeout')).toBe(initial);
    expect(await one(b, 'SHOW DateStyle')).toBe('ISO, MDY');
    expect(poolOf(gh, 'topics').reused).toBe(reused + 1);
    await b.end();
  });

  it('a session that ends inside a transaction does not give its upstream back; one the warehouse closed is dropped', async () => {
    await parked(gh, 'querier');
    const a = await pgClient(gh, CAROL);
    const pid = await one(a, 'SELECT pg_backend_pid()');
    await a.query('BEGIN');
    await a.end();
    await new Promise((r) => setTimeout(r, 200));
    const b = await pgClient(gh, CAROL);
    const pidB = await one(b, 'SELECT pg_backend_pid()');
    expect(pidB).not.toBe(pid);
    await b.end();
    await parked(gh, 'querier');
    // The warehouse ends the parked backend: the pool notices and the next session gets a new one.
    psqlAdmin(DB, `SELECT pg_terminate_backend(${pidB})`);
    await new Promise((r) => setTimeout(r, 200));
    const c = await pgClient(gh, CAROL);
    const pidC = await one(c, 'SELECT pg_backend_pid()');
    expect(pidC).not.toBe(pidB);
    await c.end();
  });

  it('/metrics shows pool sizes, reuse and connections opened', async () => {
    const text = await (await fetch(`http://127.0.0.1:${gh.adminPort}/metrics`)).text();
    expect(text).toMatch(/gatehouse_pool_connections\{org="acme",connection="warehouse",account="querier",mode="session",state="idle"\} \d+/);
    expect(text).toMatch(/gatehouse_pool_reused_total\{org="acme",connection="warehouse",account="querier",mode="session"\} [1-9]/);
    expect(text).toMatch(/gatehouse_pool_opened_total\{org="acme",connection="warehouse",account="querier",mode="session"\} [1-9]/);
    expect(text).toContain('gatehouse_pool_wait_seconds_total');
  });
});

describe('transaction pooling (pooling: transaction)', () => {
  let gh: RunningGatehouse;
  const SIZE = 5;
  beforeAll(async () => {
    const rules = demoRulesWith(`${postgresWarehouseYaml(DB)}pooling: transaction\npool_size: ${SIZE}\npool_wait_timeout: 1500\n`);
    // 150 sessions of one person: above the default per-user and per-org session limits.
    appendFileSync(join(rules, 'gatehouse.yaml'), '  max_sessions_per_user: 200\n  max_sessions_per_org: 400\n');
    gh = await startGatehouse(rules);
  });
  afterAll(async () => {
    await gh?.close();
  });

  it('a client holds no upstream between transactions; a transaction keeps one to its end', async () => {
    const a = await pgClient(gh, CAROL);
    const b = await pgClient(gh, CAROL);
    await a.query('BEGIN');
    const pid = await one(a, 'SELECT pg_backend_pid()');
    // b runs meanwhile on another upstream; a's transaction keeps its own.
    expect(await one(b, 'SELECT pg_backend_pid()')).not.toBe(pid);
    expect(await one(a, 'SELECT pg_backend_pid()')).toBe(pid);
    await a.query('COMMIT');
    expect(poolOf(gh, 'querier').inUse).toBe(0);
    await a.end();
    await b.end();
  });

  it('session state is refused with 0A000 naming transaction pooling; SET LOCAL in a transaction runs', async () => {
    const c = await pgClient(gh, CAROL);
    for (const sql of [
      `SET statement_timeout = '1s'`,
      'LISTEN chan',
      'DECLARE h CURSOR WITH HOLD FOR SELECT 1',
      'PREPARE p AS SELECT 1',
      'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    ]) {
      const e = await errorOf(c.query(sql));
      expect(e.code, sql).toBe('0A000');
      expect(e.message, sql).toContain('transaction pooling');
    }
    await c.query('BEGIN');
    await c.query(`SET LOCAL statement_timeout = '1s'`);
    expect(await one(c, 'SHOW statement_timeout')).toBe('1s');
    await c.query('DECLARE plain CURSOR FOR SELECT 1');
    await c.query('COMMIT');
    expect(await one(c, 'SHOW statement_timeout')).toBe('0');
    await c.end();
  });

  it('two clients use the same statement names for different statements, concurrently', async () => {
    const a = await pgClient(gh, CAROL);
    const b = await pgClient(gh, CAROL);
    const runA = async (i: number) => (await a.query({ name: 's1', text: 'SELECT $1::int + 1 AS n', values: [i], rowMode: 'array' })).rows[0][0];
    const runB = async (i: number) => (await b.query({ name: 's1', text: `SELECT 'b' || $1::text AS s`, values: [i], rowMode: 'array' })).rows[0][0];
    for (let round = 0; round < 20; round++) {
      const [x, y] = await Promise.all([runA(round), runB(round)]);
      expect(x).toBe(round + 1);
      expect(y).toBe(`b${round}`);
    }
    await a.end();
    await b.end();
  });

  it(`150 clients over ${SIZE} upstream connections: every statement answered, prepared ones included`, async () => {
    const clients = await Promise.all(Array.from({ length: 150 }, () => pgClient(gh, CAROL)));
    const before = poolOf(gh, 'querier').opened;
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < 4; k++) {
          expect(await one(c, `SELECT ${i * 10 + k}`)).toBe(i * 10 + k);
          const r = await c.query({ name: 'add', text: 'SELECT $1::int * 2', values: [i + k], rowMode: 'array' });
          expect(r.rows[0][0]).toBe((i + k) * 2);
        }
        await c.query('BEGIN');
        const pid = await one(c, 'SELECT pg_backend_pid()');
        expect(await one(c, 'SELECT pg_backend_pid()')).toBe(pid);
        await c.query('COMMIT');
      }),
    );
    const p = poolOf(gh, 'querier');
    expect(p.opened - before + p.idle).toBeLessThanOrEqual(SIZE * 2);
    expect(p.idle + p.inUse).toBeLessThanOrEqual(SIZE);
    expect(p.waits).toBeGreaterThan(0);
    expect(p.reused).toBeGreaterThan(150);
    await Promise.all(clients.map((c) => c.end()));
  }, 60_000);

  it('a statement that finds no upstream free within pool_wait_timeout gets 53300; the client carries on', async () => {
    const holders = await Promise.all(Array.from({ length: SIZE }, () => pgClient(gh, CAROL)));
    for (const h of holders) {
      await h.query('BEGIN');
      await h.query('SELECT 1');
    }
    const late = await pgClient(gh, CAROL);
    const e = await errorOf(late.query('SELECT 1'));
    expect(e.code).toBe('53300');
    expect(e.message).toContain('came free');
    await holders[0].query('COMMIT');
    expect(await one(late, 'SELECT 7')).toBe(7);
    for (const h of holders.slice(1)) await h.query('COMMIT');
    await Promise.all([...holders, late].map((c) => c.end()));
    expect(poolOf(gh, 'querier').waitTimeouts).toBeGreaterThan(0);
  });

  it("a cancel reaches the client's own statement, not another client's", async () => {
    const slow = await pgClient(gh, CAROL);
    const other = await pgClient(gh, CAROL);
    const long = slow.query('SELECT count(*) FROM generate_series(1, 400000000)');
    const otherLong = other.query('SELECT count(*) FROM generate_series(1, 20000000)');
    await new Promise((r) => setTimeout(r, 300));
    await cancel(gh, slow);
    expect((await errorOf(long)).code).toBe('57014');
    expect((await otherLong).rows[0].count).toBe('20000000');
    expect(await one(slow, 'SELECT 1')).toBe(1);
    await slow.end();
    await other.end();
  }, 30_000);

  it('query_topics sessions are transaction-pooled on the topics account', async () => {
    const clients = await Promise.all(Array.from({ length: 12 }, () => pgClient(gh, BOB)));
    const counts = await Promise.all(clients.map((c) => c.query('SELECT count(*)::int AS n FROM orders').then((r) => r.rows[0].n)));
    expect(new Set(counts).size).toBe(1);
    const p = poolOf(gh, 'topics');
    expect(p.idle + p.inUse).toBeLessThanOrEqual(SIZE);
    await Promise.all(clients.map((c) => c.end()));
  });
});

// An outside review (2026-12-03) reached other clients through a transaction pool: it ran
// another client's prepared statement by its upstream name after a DISCARD ALL that was
// parsed and never run, left other clients' Parses failing with 42P05, set other clients'
// TimeZone from PGOPTIONS, and cancelled other clients' statements by cancelling its own as
// they ended. One upstream connection, so every client shares it.
describe('transaction pooling: one client cannot reach another (pool of one)', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(demoRulesWith(`${postgresWarehouseYaml(DB)}pooling: transaction\npool_size: 1\n`));
  });
  afterAll(async () => {
    await gh?.close();
  });

  const raw = () => RawClient.connect({ port: gh.port, user: CAROL, password: 'gatehouse-demo', database: 'warehouse' });
  const P = (name: string, query: string) => extendedMessage({ type: 'Parse', name, query, paramTypes: [] });
  const B = (statement: string) => extendedMessage({ type: 'Bind', portal: '', statement, paramFormats: [], params: [], resultFormats: [] });
  const E = () => extendedMessage({ type: 'Execute', portal: '', maxRows: 0 });
  /** Messages up to ReadyForQuery: DataRow values as text, errors as their SQLSTATE. */
  async function untilReady(c: RawClient): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const m = await c.next(10_000);
      if (m.type === MSG.ReadyForQuery) return out;
      if (m.type === MSG.DataRow) out.push(`row ${m.body.toString('utf8', 6)}`);
      if (m.type === MSG.ErrorResponse) out.push(`error ${errorFields(m.body).C}`);
    }
  }

  it("a name parsed after a DISCARD ALL that never ran is the client's own statement, never another client's upstream one; nobody gets 42P05", async () => {
    const victim = await pgClient(gh, CAROL);
    await victim.query({ name: 'S_1', text: 'SELECT 42 AS secret', rowMode: 'array' });
    const stolen = upstreamStatementName('SELECT 42 AS secret', []);
    const attacker = await raw();
    attacker.socket.write(Buffer.concat([P('D', 'DISCARD ALL'), P(stolen, 'SELECT 1 AS mine'), syncMessage()]));
    expect(await untilReady(attacker)).toEqual([]);
    attacker.socket.write(Buffer.concat([B(stolen), E(), syncMessage()]));
    expect(await untilReady(attacker)).toEqual(['row 1']);
    await attacker.close();
    // The victim's statement still runs, and a new client preparing the same text is not told it exists.
    expect((await victim.query({ name: 'S_1', text: 'SELECT 42 AS secret', rowMode: 'array' })).rows).toEqual([[42]]);
    const other = await pgClient(gh, CAROL);
    expect((await other.query({ name: 'S_1', text: 'SELECT 42 AS secret', rowMode: 'array' })).rows).toEqual([[42]]);
    await Promise.all([victim.end(), other.end()]);
  });

  it('a Bind, Describe or Close of a name the client never prepared never reaches the upstream by that name', async () => {
    const victim = await pgClient(gh, CAROL);
    await victim.query({ name: 'S_2', text: 'SELECT 43 AS secret', rowMode: 'array' });
    const c = await raw();
    const name = upstreamStatementName('SELECT 43 AS secret', []);
    c.socket.write(Buffer.concat([extendedMessage({ type: 'Close', kind: 'S', name }), syncMessage()]));
    expect(await untilReady(c)).toEqual([]);
    c.socket.write(Buffer.concat([B(name), E(), syncMessage()]));
    expect(await untilReady(c)).toEqual(['error 26000']);
    await c.close();
    expect((await victim.query({ name: 'S_2', text: 'SELECT 43 AS secret', rowMode: 'array' })).rows).toEqual([[43]]);
    await victim.end();
  });

  it('startup settings (PGOPTIONS or parameters) are refused with 0A000: they would stay on the shared upstream', async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gh.port,
      user: CAROL,
      password: 'gatehouse-demo',
      database: 'warehouse',
      options: '-c TimeZone=Pacific/Kiritimati',
    });
    const e = await errorOf(c.connect());
    expect(e.code).toBe('0A000');
    expect(e.message).toMatch(
      /startup settings \(timezone, from options or parameters\) are not supported on connection "warehouse": it uses transaction pooling/,
    );
    const d = await pgClient(gh, CAROL);
    expect(await one(d, 'SHOW TimeZone')).not.toBe('Pacific/Kiritimati');
    await d.end();
  });
});

describe('transaction pooling: cancels that cross the end of their statement (pool of two)', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(demoRulesWith(`${postgresWarehouseYaml(DB)}pooling: transaction\npool_size: 2\n`));
  });
  afterAll(async () => {
    await gh?.close();
  });

  it("one client's cancels, sent as its statements end, never cancel another client's statement on the upstream it gave back", async () => {
    const canceller = await pgClient(gh, CAROL);
    const victim = await pgClient(gh, CAROL);
    const until = Date.now() + 6000;
    let victimRuns = 0;
    const victimErrors: string[] = [];
    const victimLoop = (async () => {
      while (Date.now() < until) {
        try {
          await victim.query('SELECT count(*) FROM generate_series(1, 100000)');
          victimRuns++;
        } catch (e) {
          victimErrors.push((e as { code?: string }).code ?? String(e));
        }
      }
    })();
    const cancelIn = (ms: number) => new Promise((r) => setTimeout(r, ms)).then(() => cancel(gh, canceller));
    while (Date.now() < until) {
      // A short statement and cancels crossing its end, as the reviewer sent them (without the
      // fix, about 3% of the victim's statements were cancelled).
      const q = canceller.query('SELECT 1').catch(() => undefined);
      await Promise.all([cancelIn(0), cancelIn(0.5), cancelIn(1), cancelIn(2), q]);
    }
    await victimLoop;
    expect(victimRuns).toBeGreaterThan(10);
    expect(victimErrors).toEqual([]);
    await Promise.all([canceller.end(), victim.end()]);
  }, 30_000);
});
