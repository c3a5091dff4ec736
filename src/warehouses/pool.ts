// Upstream pooling (issue 17): one pool per (connection, warehouse account). An upstream
// connection is opened with startup parameters (pinned lexing settings, the account's
// timeouts, read-only, DateStyle/TimeZone/extra_float_digits from the client), so the pool
// is keyed by the ones that vary between sessions of one account: a parked connection only
// goes to a session that would have opened it with the same parameters. application_name
// is not in the key: it changes nothing about results, so it is SET at checkout instead
// (postgres.ts), which keeps psql, pgbench and an application's sessions on one pool.
//
// Modes (PgBouncer's): session pooling parks a session's upstream at its end, after
// DISCARD ALL (postgres.ts checkin); transaction pooling lends one per transaction
// (transaction-pool.ts). In transaction pooling `size` caps the account's upstream
// connections and a statement waits (FIFO) for one to come free, up to `waitTimeoutMs`,
// then 53300; in session pooling nothing waits (a session always gets its own upstream,
// as before pooling) and `size` caps what is kept idle.
import type { PoolSettings } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { UpstreamConnection } from './pg-connection.ts';

/** What the pool needs of a connection: a postgres UpstreamConnection or a connector session (connector.ts). */
export interface PooledConnection {
  readonly usable: boolean;
  close(): Promise<void>;
  onDead?: () => void;
  readonly serverVersion?: string;
}

export const DEFAULT_POOL: PoolSettings = { mode: 'session', size: 20, idleTimeoutMs: 60_000, waitTimeoutMs: 30_000 };

/** What /metrics shows of one pool (admin/metrics.ts). */
export interface PoolStats {
  org: string;
  connection: string;
  account: string;
  mode: PoolSettings['mode'];
  idle: number;
  inUse: number;
  waiting: number;
  /** Upstream connections opened (each a start-up and sign-in on the warehouse). */
  opened: number;
  /** Checkouts served by a parked connection. */
  reused: number;
  /** Checkouts that had to wait for a free connection, their total wait, and those that gave up (53300). */
  waits: number;
  waitSeconds: number;
  waitTimeouts: number;
}

interface Parked<C> {
  conn: C;
  key: string;
  timer: NodeJS.Timeout;
}

interface Waiter<C> {
  key: string;
  open: () => Promise<C>;
  since: number;
  timer: NodeJS.Timeout;
  resolve: (c: C) => void;
  reject: (e: unknown) => void;
}

export class UpstreamPool<C extends PooledConnection = UpstreamConnection> {
  /** Oldest first: a checkout takes the newest of its key (warm), eviction the oldest. */
  private idle: Parked<C>[] = [];
  private inUse = 0;
  private opening = 0;
  private waiters: Waiter<C>[] = [];
  private closed = false;
  private readonly counters = { opened: 0, reused: 0, waits: 0, waitMs: 0, waitTimeouts: 0 };
  /** The warehouse's server_version, from the first connection: announced to transaction-pooled sessions that hold none. */
  serverVersion?: string;

  constructor(
    readonly settings: PoolSettings,
    private readonly labels: { org: string; connection: string; account: string },
  ) {}

  private get capped(): boolean {
    return this.settings.mode === 'transaction';
  }

  private get total(): number {
    return this.inUse + this.idle.length + this.opening;
  }

  /** An upstream for `key`: a parked one, a new one, or (transaction pooling at `size`) the next one freed. */
  async acquire(key: string, open: () => Promise<C>): Promise<{ conn: C; reused: boolean }> {
    if (this.closed) throw new GatehouseError('08006', `the warehouse of connection "${this.labels.connection}" is closing`);
    const parked = this.take(key);
    if (parked) {
      this.inUse++;
      this.counters.reused++;
      return { conn: parked, reused: true };
    }
    if (!this.capped || this.total < this.settings.size || this.evictOldest()) return { conn: await this.openCounted(open), reused: false };
    this.counters.waits++;
    const conn = await new Promise<C>((resolve, reject) => {
      const w: Waiter<C> = {
        key,
        open,
        since: performance.now(),
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          this.counters.waitTimeouts++;
          this.counters.waitMs += performance.now() - w.since;
          reject(this.waitTimeout());
        }, this.settings.waitTimeoutMs),
      };
      this.waiters.push(w);
    });
    return { conn, reused: true };
  }

  /**
   * A connection back from its session (or transaction). `reusable`: the caller left it as a new
   * session would find it (session pooling: after DISCARD ALL); else it is closed. A waiter for
   * the same key gets it at once; the pool then serves the other waiters as room allows.
   */
  release(conn: C, key: string, reusable: boolean): void {
    this.inUse--;
    if (!reusable || !conn.usable || this.closed) {
      void conn.close();
    } else {
      const i = this.waiters.findIndex((w) => w.key === key);
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        this.hand(w, conn);
        return;
      }
      this.park(conn, key);
    }
    this.dispatch();
  }

  /** Closes what is idle and refuses whoever waits; connections in use close with their sessions. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new GatehouseError('08006', `the warehouse of connection "${this.labels.connection}" is closing`));
    }
    const idle = this.idle.splice(0);
    await Promise.allSettled(
      idle.map((p) => {
        clearTimeout(p.timer);
        return p.conn.close();
      }),
    );
  }

  stats(): PoolStats {
    const c = this.counters;
    return {
      ...this.labels,
      mode: this.settings.mode,
      idle: this.idle.length,
      inUse: this.inUse,
      waiting: this.waiters.length,
      opened: c.opened,
      reused: c.reused,
      waits: c.waits,
      waitSeconds: c.waitMs / 1000,
      waitTimeouts: c.waitTimeouts,
    };
  }

  private async openCounted(open: () => Promise<C>): Promise<C> {
    this.opening++;
    try {
      const conn = await open();
      this.counters.opened++;
      this.inUse++;
      this.serverVersion ??= conn.serverVersion;
      return conn;
    } finally {
      this.opening--;
      // A failed open freed its slot for whoever waits.
      if (this.waiters.length > 0) queueMicrotask(() => this.dispatch());
    }
  }

  /** The newest parked connection of `key` that is still alive; dead ones found on the way are dropped. */
  private take(key: string): C | undefined {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const p = this.idle[i];
      if (p.key !== key && p.conn.usable) continue;
      this.idle.splice(i, 1);
      clearTimeout(p.timer);
      p.conn.onDead = undefined;
      if (p.conn.usable) return p.conn;
    }
    return undefined;
  }

  private park(conn: C, key: string): void {
    const p: Parked<C> = {
      conn,
      key,
      // Idle too long: closed (the warehouse's connection slots are not Gatehouse's to hoard).
      timer: setTimeout(() => this.drop(p), this.settings.idleTimeoutMs),
    };
    p.timer.unref();
    // The warehouse closed it while parked (restart, pg_terminate_backend, idle_session_timeout): forget it now.
    conn.onDead = () => this.drop(p);
    this.idle.push(p);
    if (this.idle.length > this.settings.size) this.evictOldest();
  }

  private drop(p: Parked<C>): void {
    const i = this.idle.indexOf(p);
    if (i < 0) return;
    this.idle.splice(i, 1);
    clearTimeout(p.timer);
    p.conn.onDead = undefined;
    void p.conn.close();
    this.dispatch();
  }

  /** Closes the oldest parked connection (of another key than the one wanted): true if there was one. */
  private evictOldest(): boolean {
    const p = this.idle.shift();
    if (!p) return false;
    clearTimeout(p.timer);
    p.conn.onDead = undefined;
    void p.conn.close();
    return true;
  }

  private hand(w: Waiter<C>, conn: C): void {
    clearTimeout(w.timer);
    this.inUse++;
    this.counters.reused++;
    this.counters.waitMs += performance.now() - w.since;
    w.resolve(conn);
  }

  /** Serves waiters in order while there is a parked connection of their key or room to open one. */
  private dispatch(): void {
    while (this.waiters.length > 0 && !this.closed) {
      const w = this.waiters[0];
      const parked = this.take(w.key);
      if (parked) {
        this.waiters.shift();
        this.hand(w, parked);
        continue;
      }
      if (this.total >= this.settings.size && !this.evictOldest()) return;
      this.waiters.shift();
      clearTimeout(w.timer);
      const since = w.since;
      this.openCounted(w.open).then(
        (conn) => {
          this.counters.waitMs += performance.now() - since;
          w.resolve(conn);
        },
        (e) => w.reject(e),
      );
    }
  }

  private waitTimeout(): GatehouseError {
    const { connection } = this.labels;
    const { size, waitTimeoutMs } = this.settings;
    return new GatehouseError('53300', `no warehouse connection of connection "${connection}" came free within ${waitTimeoutMs} ms`, {
      detail: `connection "${connection}" uses transaction pooling with pool_size ${size}: every upstream connection of this account was in a transaction`,
      hint: 'retry; or raise pool_size (if the warehouse has connection slots) or pool_wait_timeout in the connection file',
    });
  }
}

/** The pool key: the startup parameters that differ between sessions of one account (application_name is SET at checkout). */
export function poolKey(readOnly: boolean, params: Record<string, string>): string {
  return JSON.stringify([readOnly, params.DateStyle ?? null, params.TimeZone ?? null, params.extra_float_digits ?? null]);
}
