// Operating under load (issue 17), each limit with real clients on a real Gatehouse (embedded
// warehouses, free ports): session counts (53300), the statement timeout a client cannot lift
// (57014), result rows and bytes (54000, the session stays usable), idle and idle-in-transaction
// timeouts (FATAL 57P05, 25P03), the authentication timeout; each audited and on /metrics.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { DEMO_PASSWORD, DEMO_RULES, psql } from '../helpers/gatehouse.ts';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** The demo rules with gatehouse.yaml replaced, acme's org limits and acme's connection's extra lines. */
function rulesWith(opts: { server: string; acmeLimits?: string; acmeConnection?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-limits-'));
  temps.push(dir);
  cpSync(DEMO_RULES, dir, { recursive: true });
  writeFileSync(join(dir, 'gatehouse.yaml'), `server:\n${opts.server}`);
  if (opts.acmeLimits) {
    const org = readFileSync(join(dir, 'acme/org.yaml'), 'utf8');
    writeFileSync(join(dir, 'acme/org.yaml'), org.replace(/^name: acme\n/m, `name: acme\nlimits:\n${opts.acmeLimits}`));
  }
  if (opts.acmeConnection) {
    const file = join(dir, 'acme/connections/warehouse.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n${opts.acmeConnection}\n`);
  }
  return dir;
}

async function start(rulesDir: string): Promise<{ gh: RunningGatehouse; auditPath: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-limits-audit-'));
  temps.push(dir);
  const auditPath = join(dir, 'audit.jsonl');
  const gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, auditPath, logger: pino({ level: 'silent' }) });
  return { gh, auditPath };
}

const auditRecords = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function client(gh: { port: number }, user: string): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user, password: DEMO_PASSWORD, database: 'warehouse' });
  c.on('error', () => {});
  return c;
}

async function connectError(
  gh: { port: number },
  user: string,
): Promise<{ code?: string; message: string; detail?: string; hint?: string; severity?: string }> {
  const c = client(gh, user);
  try {
    await c.connect();
  } catch (e) {
    return e as { code?: string; message: string };
  } finally {
    await c.end().catch(() => {});
  }
  throw new Error(`${user} connected`);
}

async function metric(gh: RunningGatehouse, name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${gh.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string; detail?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('succeeded');
}

describe('sessions, statement timeout and result size', () => {
  let gh: RunningGatehouse;
  let auditPath: string;
  beforeAll(async () => {
    ({ gh, auditPath } = await start(
      rulesWith({
        server: '  max_sessions: 7\n  max_sessions_per_user: 3\n',
        acmeLimits: '  max_sessions: 5\n  max_result_rows: 1000\n  max_result_bytes: 300000\n',
        acmeConnection: 'statement_timeout: 1s',
      }),
    ));
  }, 120_000);
  afterAll(async () => {
    await gh?.close();
  });

  it("refuses a user's fourth session, an org's sixth and the server's eighth with FATAL 53300 naming the limit and how to raise it", async () => {
    const open: pg.Client[] = [];
    try {
      for (const user of ['bob', 'bob', 'bob']) {
        const c = client(gh, `${user}@acme.example`);
        await c.connect();
        open.push(c);
      }
      const perUser = await connectError(gh, 'bob@acme.example');
      expect(perUser).toMatchObject({
        code: '53300',
        severity: 'FATAL',
        message: 'too many connections for user "bob@acme.example": the limit is 3 sessions per user',
      });
      expect(perUser.detail).toBe('set by server.max_sessions_per_user in rules/gatehouse.yaml');
      expect(perUser.hint).toContain('raise server.max_sessions_per_user in rules/gatehouse.yaml');
      // psql shows the same to a person.
      const r = await psql(gh, 'bob@acme.example', 'SELECT 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('FATAL:  too many connections for user "bob@acme.example": the limit is 3 sessions per user');

      // Others are served meanwhile: erin fills acme up to its own limit of 5...
      for (const user of ['erin', 'erin']) {
        const c = client(gh, `${user}@acme.example`);
        await c.connect();
        open.push(c);
      }
      expect(await metric(gh, 'gatehouse_sessions', 'org="acme"')).toBe(5);
      const perOrg = await connectError(gh, 'carol@acme.example');
      expect(perOrg).toMatchObject({ code: '53300', message: 'too many connections for organization acme: the limit is 5 sessions' });
      expect(perOrg.detail).toBe('set by limits.max_sessions in rules/acme/org.yaml');

      // ...globex is not acme: hank signs in until the server's 7 are taken.
      for (const user of ['hank', 'hank']) {
        const c = client(gh, `${user}@globex.example`);
        await c.connect();
        open.push(c);
      }
      const all = await connectError(gh, 'hank@globex.example');
      expect(all).toMatchObject({ code: '53300', message: 'sorry, too many clients already: Gatehouse serves at most 7 sessions' });

      // A session that ends gives its slot back.
      await open.shift()!.end();
      await new Promise((r) => setTimeout(r, 200));
      const again = client(gh, 'bob@acme.example');
      await again.connect();
      open.push(again);
      expect((await again.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all(open.map((c) => c.end().catch(() => {})));
    }
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="max_sessions_per_user"')).toBe(2);
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="max_sessions_per_org"')).toBe(1);
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="max_sessions"')).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await metric(gh, 'gatehouse_sessions', 'org="acme"')).toBe(0);
    await vi.waitFor(() => {
      const limited = auditRecords(auditPath).filter((r) => r.type === 'limit_reached');
      expect(limited).toContainEqual(expect.objectContaining({ org: 'acme', user: 'carol@acme.example', limit: 'max_sessions_per_org', value: 5 }));
      expect(auditRecords(auditPath)).toContainEqual(
        expect.objectContaining({ type: 'session_start', user: 'bob@acme.example', refused: true, sqlstate: '53300' }),
      );
    });
  });

  it("ends a statement past the connection's statement_timeout with 57014, which SET statement_timeout cannot lift; the session stays usable", async () => {
    const c = client(gh, 'carol@acme.example');
    await c.connect();
    try {
      const t0 = Date.now();
      const e = await failure(c.query('SELECT count(*) FROM generate_series(1, 3000000000)'));
      expect(e).toMatchObject({ code: '57014', message: 'canceling statement due to statement timeout' });
      expect(e.detail).toContain('after 1s (statement_timeout in rules/acme/connections/warehouse.yaml)');
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);

      // The warehouse's own setting is the querier's to change; Gatehouse's deadline is not.
      await c.query("SET statement_timeout = '1h'");
      expect(await failure(c.query('SELECT count(*) FROM generate_series(1, 3000000000)'))).toMatchObject({ code: '57014' });
      // Over the extended protocol too.
      const ext = await failure(c.query({ text: 'SELECT count(*) FROM generate_series(1, $1::bigint)', values: ['3000000000'] }));
      expect(ext).toMatchObject({ code: '57014', message: 'canceling statement due to statement timeout' });
      // A statement under the deadline is untouched.
      expect((await c.query('SELECT count(*)::int AS n FROM generate_series(1, 100000)')).rows).toEqual([{ n: 100000 }]);
    } finally {
      await c.end();
    }
    // The audit writes its batch up to 20 ms after the statement: wait for the last record.
    await vi.waitFor(() => {
      const statements = auditRecords(auditPath).filter((r) => r.type === 'statement' && r.user === 'carol@acme.example' && r.sqlstate === '57014');
      expect(statements.length).toBeGreaterThanOrEqual(3);
    });
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="statement_timeout"')).toBeGreaterThanOrEqual(3);
  });

  it("ends a result past the org's row limit with 54000, never a shortened result, and the session goes on", async () => {
    const c = client(gh, 'erin@acme.example');
    await c.connect();
    try {
      const e = await failure(c.query('SELECT * FROM orders'));
      expect(e).toMatchObject({ code: '54000', message: 'result exceeds the limit of 1000 rows set for organization acme' });
      expect(e.detail).toContain('limits.max_result_rows in rules/acme/org.yaml');
      // Exactly the limit is a result.
      expect((await c.query('SELECT id FROM orders ORDER BY id LIMIT 1000')).rows).toHaveLength(1000);
      // The extended protocol (a parameter), and row-limited Executes add up (node-postgres fetches 300 at a time, as a cursor does).
      expect(await failure(c.query({ text: 'SELECT * FROM orders WHERE amount > $1', values: [-1] }))).toMatchObject({ code: '54000' });
      const fetched: unknown[] = [];
      const byFetch = await failure(
        new Promise((resolve, reject) => {
          const q = c.query(new pg.Query({ text: 'SELECT id FROM orders WHERE amount > $1', values: [-1], rows: 300 } as pg.QueryConfig));
          q.on('row', (row: unknown) => fetched.push(row));
          // As pg-cursor does: after an error in a row-limited exchange the client sends the Sync (node-postgres's Query does not).
          q.on('error', (e) => {
            (c as unknown as { connection: { sync(): void } }).connection.sync();
            reject(e);
          });
          q.on('end', resolve);
        }),
      );
      expect(byFetch).toMatchObject({ code: '54000' });
      expect(fetched.length).toBeLessThanOrEqual(1000);
      expect((await c.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 5000 }]);
      // Inside a transaction, the transaction is failed, as by any error.
      await c.query('BEGIN');
      expect(await failure(c.query('SELECT * FROM orders'))).toMatchObject({ code: '54000' });
      expect(await failure(c.query('SELECT 1'))).toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      expect((await c.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    } finally {
      await c.end();
    }
    // psql: the error, and none of the rows.
    const r = await psql(gh, 'erin@acme.example', 'SELECT id FROM orders');
    expect(r.stderr).toContain('ERROR:  result exceeds the limit of 1000 rows set for organization acme');
    expect(r.stdout).toBe('');
    // COPY TO STDOUT counts its rows too.
    const copy = await psql(gh, 'erin@acme.example', 'COPY (SELECT * FROM orders) TO STDOUT');
    expect(copy.stderr).toContain('result exceeds the limit of 1000 rows');
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="max_result_rows"')).toBeGreaterThanOrEqual(5);
  });

  it("ends a result past the org's byte limit with 54000", async () => {
    const c = client(gh, 'carol@acme.example');
    await c.connect();
    try {
      const e = await failure(c.query("SELECT repeat('x', 100000) FROM generate_series(1, 5)"));
      expect(e).toMatchObject({ code: '54000', message: 'result exceeds the limit of 300000 bytes set for organization acme' });
      expect((await c.query("SELECT repeat('x', 100000) AS x FROM generate_series(1, 2)")).rows).toHaveLength(2);
    } finally {
      await c.end();
    }
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="max_result_bytes"')).toBe(1);
  });
});

describe('idle, idle-in-transaction and authentication timeouts', () => {
  let gh: RunningGatehouse;
  let auditPath: string;
  beforeAll(async () => {
    ({ gh, auditPath } = await start(
      rulesWith({ server: '  idle_session_timeout: 1s\n  idle_in_transaction_session_timeout: 1500ms\n  authentication_timeout: 1s\n' }),
    ));
  }, 120_000);
  afterAll(async () => {
    await gh?.close();
  });

  const ended = (c: pg.Client) => new Promise<{ code?: string; message: string }>((r) => c.once('error', (e) => r(e as { code?: string; message: string })));

  it('closes an idle session with FATAL 57P05 and one idle in a transaction with FATAL 25P03; a busy one stays', async () => {
    const idle = client(gh, 'bob@acme.example');
    const inTx = client(gh, 'carol@acme.example');
    const busy = client(gh, 'erin@acme.example');
    await Promise.all([idle.connect(), inTx.connect(), busy.connect()]);
    try {
      const idleEnded = ended(idle);
      const inTxEnded = ended(inTx);
      await inTx.query('BEGIN');
      await inTx.query('SELECT 1');
      const t0 = Date.now();
      // A session that keeps talking is never idle for 1s.
      for (let i = 0; i < 6; i++) {
        await busy.query('SELECT 1');
        await new Promise((r) => setTimeout(r, 400));
      }
      expect(await idleEnded).toMatchObject({ code: '57P05', message: 'terminating connection due to idle-session timeout' });
      expect(await inTxEnded).toMatchObject({ code: '25P03', message: 'terminating connection due to idle-in-transaction timeout' });
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await busy.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    } finally {
      await Promise.all([idle, inTx, busy].map((c) => c.end().catch(() => {})));
    }
    await new Promise((r) => setTimeout(r, 200));
    await vi.waitFor(() => {
      const limited = auditRecords(auditPath).filter((r) => r.type === 'limit_reached');
      expect(limited).toContainEqual(expect.objectContaining({ org: 'acme', user: 'bob@acme.example', limit: 'idle_session_timeout', value: 1000 }));
      expect(limited).toContainEqual(expect.objectContaining({ user: 'carol@acme.example', limit: 'idle_in_transaction_session_timeout', value: 1500 }));
    });
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="idle_session_timeout"')).toBeGreaterThanOrEqual(1);
  });

  it('ends a connection that does not sign in within authentication_timeout with FATAL 57014', async () => {
    const s = net.connect({ host: '127.0.0.1', port: gh.port });
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    const t0 = Date.now();
    await new Promise((r) => s.once('close', r));
    const got = Buffer.concat(chunks).toString('latin1');
    expect(got[0]).toBe('E');
    expect(got).toContain('C57014');
    expect(got).toContain('canceling authentication due to timeout');
    expect(Date.now() - t0).toBeGreaterThan(800);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await metric(gh, 'gatehouse_limit_refusals_total', 'limit="authentication_timeout"')).toBe(1);
  });
});
