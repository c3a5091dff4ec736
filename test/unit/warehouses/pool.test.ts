// The upstream pool (issue 17) as data: checkouts, keys, the cap and its FIFO wait, eviction,
// idle timeout, dead connections; and what transaction pooling refuses as session state.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureParser } from '../../../src/sql/parse.ts';
import { UpstreamPool, poolKey } from '../../../src/warehouses/pool.ts';
import type { UpstreamConnection } from '../../../src/warehouses/postgres.ts';
import { sessionStateRefusal, upstreamStatementName } from '../../../src/warehouses/transaction-pool.ts';

class FakeConn {
  usable = true;
  closed = false;
  onDead?: () => void;
  parameters = new Map([['server_version', '16.0']]);
  get serverVersion() {
    return this.parameters.get('server_version');
  }
  constructor(readonly id: number) {}
  async close() {
    this.closed = true;
    this.usable = false;
    const f = this.onDead;
    this.onDead = undefined;
    f?.();
  }
}

function pool(mode: 'session' | 'transaction', size = 2, waitTimeoutMs = 200, idleTimeoutMs = 60_000) {
  let n = 0;
  const opened: FakeConn[] = [];
  const p = new UpstreamPool({ mode, size, idleTimeoutMs, waitTimeoutMs }, { org: 'acme', connection: 'warehouse', account: 'querier' });
  const open = async () => {
    const c = new FakeConn(++n);
    opened.push(c);
    return c as unknown as UpstreamConnection;
  };
  return { p, open, opened };
}

const K = poolKey(true, { TimeZone: 'UTC' });
const K2 = poolKey(true, { TimeZone: 'Europe/Paris' });

describe('UpstreamPool', () => {
  it('reuses a parked connection of the same key only, and counts opens and reuses', async () => {
    const { p, open } = pool('session');
    const a = await p.acquire(K, open);
    expect(a.reused).toBe(false);
    p.release(a.conn, K, true);
    const other = await p.acquire(K2, open);
    expect(other.conn).not.toBe(a.conn);
    const again = await p.acquire(K, open);
    expect(again).toEqual({ conn: a.conn, reused: true });
    expect(p.stats()).toMatchObject({ opened: 2, reused: 1, inUse: 2, idle: 0 });
    expect(p.serverVersion).toBe('16.0');
  });

  it('session pooling never waits; it keeps at most `size` idle, closing the oldest', async () => {
    const { p, open, opened } = pool('session', 2);
    const got = await Promise.all([1, 2, 3].map(() => p.acquire(K, open)));
    expect(p.stats().inUse).toBe(3);
    for (const g of got) p.release(g.conn, K, true);
    expect(p.stats().idle).toBe(2);
    expect(opened[0].closed).toBe(true);
  });

  it('a connection released as not reusable, or dead, is closed; a parked one the warehouse closes is forgotten', async () => {
    const { p, open } = pool('session');
    const a = await p.acquire(K, open);
    p.release(a.conn, K, false);
    expect((a.conn as unknown as FakeConn).closed).toBe(true);
    const b = await p.acquire(K, open);
    p.release(b.conn, K, true);
    expect(p.stats().idle).toBe(1);
    await (b.conn as unknown as FakeConn).close(); // the warehouse ended it: onDead
    expect(p.stats().idle).toBe(0);
    expect((await p.acquire(K, open)).reused).toBe(false);
  });

  it('transaction pooling caps connections: the next checkout waits (FIFO) and gets the first one released', async () => {
    const { p, open } = pool('transaction', 2, 1000);
    const a = await p.acquire(K, open);
    const b = await p.acquire(K, open);
    const order: number[] = [];
    const w1 = p.acquire(K, open).then((r) => (order.push(1), r));
    const w2 = p.acquire(K, open).then((r) => (order.push(2), r));
    expect(p.stats().waiting).toBe(2);
    p.release(a.conn, K, true);
    expect((await w1).conn).toBe(a.conn);
    p.release(b.conn, K, true);
    expect((await w2).conn).toBe(b.conn);
    expect(order).toEqual([1, 2]);
    expect(p.stats()).toMatchObject({ opened: 2, waits: 2, waiting: 0, inUse: 2 });
    expect(p.stats().waitSeconds).toBeGreaterThanOrEqual(0);
  });

  it('a waiter for another key gets room: an idle connection of another key is closed for it', async () => {
    const { p, open } = pool('transaction', 1, 1000);
    const a = await p.acquire(K, open);
    const w = p.acquire(K2, open);
    p.release(a.conn, K, true);
    const got = await w;
    expect(got.conn).not.toBe(a.conn);
    expect((a.conn as unknown as FakeConn).closed).toBe(true);
  });

  it('a wait longer than the wait timeout fails with 53300 and is counted', async () => {
    const { p, open } = pool('transaction', 1, 50);
    await p.acquire(K, open);
    await expect(p.acquire(K, open)).rejects.toMatchObject({ sqlstate: '53300' });
    expect(p.stats()).toMatchObject({ waitTimeouts: 1, waiting: 0 });
  });

  it('an idle connection is closed after the idle timeout; close() closes the idle and refuses waiters', async () => {
    const { p, open } = pool('transaction', 1, 5000, 30);
    const a = await p.acquire(K, open);
    p.release(a.conn, K, true);
    await new Promise((r) => setTimeout(r, 80));
    expect(p.stats().idle).toBe(0);
    expect((a.conn as unknown as FakeConn).closed).toBe(true);
    await p.acquire(K, open);
    const waiting = p.acquire(K, open);
    await p.close();
    await expect(waiting).rejects.toMatchObject({ sqlstate: '08006' });
  });
});

describe('transaction pooling: session state', () => {
  beforeAll(() => ensureParser());
  const refused = (sql: string) => sessionStateRefusal('warehouse', sql)?.message;

  it.each([
    [`SET statement_timeout = '1s'`, 'SET statement_timeout'],
    [`SET SESSION DateStyle = 'ISO'`, 'SET datestyle'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'SET SESSION CHARACTERISTICS'],
    ['LISTEN chan', 'LISTEN'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'WITH HOLD'],
    ['PREPARE p AS SELECT 1', 'PREPARE'],
    ['EXECUTE p', 'EXECUTE'],
    ['DEALLOCATE ALL', 'DEALLOCATE'],
    ['CREATE TEMP TABLE t (n int)', 'temporary table'],
    ['CREATE TEMP TABLE t AS SELECT 1', 'temporary table'],
    ["SELECT 1; SET work_mem = '1MB'", 'SET work_mem'],
  ])('%s is refused (0A000, naming transaction pooling)', (sql, what) => {
    const e = sessionStateRefusal('warehouse', sql);
    expect(e?.sqlstate).toBe('0A000');
    expect(e?.message).toContain(what);
    expect(e?.message).toContain('transaction pooling');
  });

  it.each([
    `SET LOCAL statement_timeout = '1s'`,
    'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    'RESET ALL',
    'DECLARE c CURSOR FOR SELECT 1',
    'CREATE TEMP TABLE t (n int) ON COMMIT DROP',
    'SELECT 1',
    'BEGIN',
    'DISCARD ALL',
  ])('%s runs', (sql) => {
    expect(refused(sql)).toBeUndefined();
  });

  it('upstream statement names depend on text and parameter types only', () => {
    expect(upstreamStatementName('SELECT $1', [23])).toBe(upstreamStatementName('SELECT $1', [23]));
    expect(upstreamStatementName('SELECT $1', [23])).not.toBe(upstreamStatementName('SELECT $1', [25]));
    expect(upstreamStatementName('SELECT $1', [])).toMatch(/^gh_[0-9a-f]{24}$/);
  });
});
