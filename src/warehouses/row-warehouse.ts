// A Warehouse made of a connector (connector.ts): its sessions pooled per (connection,
// account) as pool.ts pools PostgreSQL's, each served to a client through a RowSession
// (row-session.ts). The connector kinds (mysql.ts, snowflake-warehouse.ts) extend it with their
// least-privilege check (start) and the catalog's describeRelation.
import type { Logger } from 'pino';
import type { Connection, PoolSettings, Topic } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { WarehouseAccount } from './accounts.ts';
import type { Connector, ConnectorSession, CredentialSource, EmittedSql } from './connector.ts';
import { DEFAULT_POOL, type PoolStats, UpstreamPool } from './pool.ts';
import { RowSession, passthroughRender } from './row-session.ts';
import type { Warehouse, WarehouseSession, WarehouseSessionOptions, WarehouseStatement } from './types.ts';

/**
 * Turns a decided statement into the warehouse's SQL text and placeholder order. The
 * coordinator points it at the dialect emitter (src/sql/dialects/); the default passes a
 * querier's text through unchanged (queriers on a mysql connection write MySQL's dialect).
 */
export type SqlRenderer = (statement: Pick<WarehouseStatement, 'sql'> & Partial<WarehouseStatement>) => EmittedSql;

export interface RowWarehouseOptions {
  logger?: Logger;
  render?: SqlRenderer;
  /** The connection's topics (the topics account is checked against them). */
  topics?: Topic[];
  /** Pooling other than the connection's. */
  pool?: PoolSettings;
}

export abstract class RowWarehouse implements Warehouse {
  abstract readonly kind: string;
  protected readonly logger?: Logger;
  protected readonly topics: Topic[];
  private readonly render: SqlRenderer;
  private readonly pools = new Map<WarehouseAccount, UpstreamPool<ConnectorSession>>();
  private readonly poolSettings: PoolSettings;

  constructor(
    protected readonly conn: Connection,
    readonly connector: Connector,
    /** Each account's credentials, asked for at every sign-in and not kept here. */
    private readonly accounts: Partial<Record<WarehouseAccount, CredentialSource>> & { querier: CredentialSource },
    opts: RowWarehouseOptions = {},
  ) {
    this.logger = opts.logger;
    this.topics = opts.topics ?? [];
    this.render = opts.render ?? passthroughRender;
    this.poolSettings = opts.pool ?? conn.pool ?? DEFAULT_POOL;
  }

  abstract start(): Promise<void>;

  /** A session of Gatehouse's own (account checks, describeRelation): not pooled, read-only. */
  protected openChecked(account: WarehouseAccount): Promise<ConnectorSession> {
    return this.open(account, true);
  }

  private open(account: WarehouseAccount, readOnly: boolean): Promise<ConnectorSession> {
    const source = this.accounts[account];
    if (!source) {
      // The rules loader requires topics_user where query_topics is granted; never fall back to the querier account.
      return Promise.reject(new GatehouseError('42501', `connection "${this.conn.name}" has no topics account (topics_user) for query_topics sessions`));
    }
    return this.connector.connect(source, { readOnly, account });
  }

  /**
   * A client session's warehouse session. Pooling none: a new connection, closed at the end.
   * Otherwise session pooling (transaction pooling is not offered for connector warehouses:
   * a session keeps its connection), keyed by read-only: a parked connection was reset and set
   * up again (ConnectorSession.reset) before it was parked.
   */
  async openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession> {
    const account = opts.account ?? 'querier';
    const open = () => this.open(account, opts.readOnly);
    const settings = {
      render: this.render,
      limit: opts.resultLimit,
      user: opts.user,
      connection: this.conn.name,
      // PostgreSQL's settings (SET/SHOW/RESET) are answered per session by Gatehouse (pg-settings.ts).
      // SHOW transaction isolation level tells the warehouse's truth: Snowflake runs every transaction READ COMMITTED.
      emulation: { readOnly: opts.readOnly, params: opts.params, ...(this.connector.kind === 'snowflake' ? { isolation: 'read committed' } : {}) },
    };
    if (this.poolSettings.mode === 'none') {
      const session = await open();
      return new RowSession(session, settings, () => session.close());
    }
    const pool = this.poolFor(account);
    const key = JSON.stringify([opts.readOnly]);
    const { conn } = await pool.acquire(key, open);
    return new RowSession(conn, settings, async (c) => pool.release(c, key, await c.reset()));
  }

  private poolFor(account: WarehouseAccount): UpstreamPool<ConnectorSession> {
    let pool = this.pools.get(account);
    if (!pool) {
      // Session pooling whatever the file asks: a transaction-pooled connector session would need the statement state moved between connections.
      const settings: PoolSettings = { ...this.poolSettings, mode: 'session' };
      pool = new UpstreamPool<ConnectorSession>(settings, { org: this.conn.org, connection: this.conn.name, account });
      this.pools.set(account, pool);
    }
    return pool;
  }

  /** Whether the warehouse answers as the querier account (/healthz). */
  health() {
    return this.connector.health(this.accounts.querier);
  }

  poolStats(): PoolStats[] {
    return [...this.pools.values()].map((p) => p.stats());
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
  }
}
