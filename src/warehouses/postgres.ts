// The postgres connector: a warehouse of pooled upstream connections (pg-connection.ts),
// checked for least privilege at start, and the sessions it opens (session or transaction pooling).
import type { Logger } from 'pino';
import type { Connection, PostgresConnection, Topic } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import {
  DEFAULT_TOPICS_IDLE_IN_TRANSACTION_TIMEOUT,
  DEFAULT_TOPICS_STATEMENT_TIMEOUT,
  TOPICS_RELATIONS_QUERY,
  TOPICS_ROLE_QUERY,
  roleAttributeProblems,
  topicsAccountProblems,
} from './postgres-accounts.ts';
import type { Warehouse, WarehouseSession, WarehouseSessionOptions } from './types.ts';
import type { WarehouseAccount, WarehouseAccounts } from './accounts.ts';
import type { PoolSettings } from '../config/model.ts';
import { DEFAULT_POOL, type PoolStats, UpstreamPool, poolKey } from './pool.ts';
import { TransactionSession } from './transaction-pool.ts';
import { credentialProblem, passwordSource } from './credentials.ts';
import type { KeyResolution } from '../secrets/resolve.ts';
import { postgresTls } from './pg-tls.ts';
import { PostgresSession, UpstreamConnection, type UpstreamTarget, personAppName, sqlLiteral, upstreamStartupParams } from './pg-connection.ts';

export { PostgresSession, UpstreamConnection, personAppName, sqlLiteral, upstreamStartupParams, type UpstreamTarget } from './pg-connection.ts';

/** How long the reset of a returning session's connection (DISCARD ALL) may take before the connection is closed instead. */
const RESET_TIMEOUT_MS = 5_000;

/** What start() found wrong with the warehouse account, as phrases for the refusal message. */
export function privilegeProblems(row: Record<string, string | null>): string[] {
  const out = roleAttributeProblems(row);
  for (const r of POWERFUL_ROLES) if (row[r] === 't') out.push(`is a member of ${r}`);
  return out;
}

/** Predefined roles that read or write files, run programs, signal other sessions or read every table. */
const POWERFUL_ROLES = [
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_execute_server_program',
  'pg_signal_backend',
  'pg_read_all_data',
  'pg_write_all_data',
];

const PRIVILEGE_QUERY = `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
${POWERFUL_ROLES.map(
  (g) => `  CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${g}') THEN pg_has_role(current_user, '${g}', 'MEMBER') ELSE false END AS ${g}`,
).join(',\n')}
FROM pg_roles r WHERE r.rolname = current_user`;

export class PostgresWarehouse implements Warehouse {
  readonly kind = 'postgres';
  private readonly target: UpstreamTarget;
  /** The account of query_topics sessions (least privilege: the topics' fields only). */
  private readonly topicsTarget?: UpstreamTarget;
  private readonly allowSuperuser: boolean;
  /** Upstream pools by warehouse account (pool.ts), made on first use. */
  private readonly pools = new Map<WarehouseAccount, UpstreamPool>();
  private readonly poolSettings: PoolSettings;

  constructor(
    private readonly conn: Connection,
    private readonly logger?: Logger,
    /** The connection's topics: what the topics account must be able to read, and all it may. */
    private readonly topics: Topic[] = [],
    /** The embedded warehouse's own accounts; a postgres connection's come from its file. */
    accounts?: WarehouseAccounts,
    /** Pooling other than the connection's (the topic catalog's sessions are not pooled). */
    pool?: PoolSettings,
    /** The master keys that open the connection's stored passwords (src/secrets). */
    keys?: KeyResolution,
  ) {
    this.poolSettings = pool ?? conn.pool ?? DEFAULT_POOL;
    const t = conn.target as PostgresConnection;
    if (t.kind !== 'postgres' && !accounts) throw new Error(`connection ${conn.name} is not a postgres connection`);
    this.allowSuperuser = t.kind === 'postgres' && t.allow_superuser;
    this.target = accounts?.querier ?? {
      connection: conn.name,
      host: t.host,
      port: t.port,
      database: t.database,
      user: t.user,
      password: passwordSource(conn, { sealed: t.password, env: t.password_env }, keys),
      tls: postgresTls(t.host, t.tls),
    };
    const topicsTarget: UpstreamTarget | undefined =
      accounts?.topics ??
      (t.kind === 'postgres' && t.topics_user
        ? { ...this.target, user: t.topics_user, password: passwordSource(conn, { sealed: t.topics_password, env: t.topics_password_env }, keys) }
        : undefined);
    // Governed sessions carry the connection's timeouts (the embedded kind has the defaults).
    if (topicsTarget) {
      const pg = t.kind === 'postgres' ? t : undefined;
      this.topicsTarget = {
        ...topicsTarget,
        settings: [
          ['statement_timeout', pg?.topics_statement_timeout ?? DEFAULT_TOPICS_STATEMENT_TIMEOUT],
          ['idle_in_transaction_session_timeout', pg?.topics_idle_in_transaction_session_timeout ?? DEFAULT_TOPICS_IDLE_IN_TRANSACTION_TIMEOUT],
        ],
      };
    }
  }

  private open(opts: WarehouseSessionOptions): Promise<UpstreamConnection> {
    const target = opts.account === 'topics' ? this.topicsTarget : this.target;
    if (!target) {
      // The rules loader requires topics_user where query_topics is granted; never fall back to the querier account.
      return Promise.reject(new GatehouseError('42501', `connection "${this.conn.name}" has no topics account (topics_user) for query_topics sessions`));
    }
    return UpstreamConnection.open(target, upstreamStartupParams(target, opts));
  }

  /**
   * Whether the stored credentials open with the master keys Gatehouse has (each decrypted
   * once and dropped; no network). A connection that fails here is refused, alone, at start.
   */
  credentialProblem(): GatehouseError | undefined {
    return credentialProblem(this.target.password) ?? credentialProblem(this.topicsTarget?.password);
  }

  async start(): Promise<void> {
    await this.checkQuerierAccount();
    if (this.topicsTarget) await this.checkTopicsAccount();
  }

  private async checkQuerierAccount(): Promise<void> {
    const c = await this.open({ params: { application_name: 'gatehouse' }, readOnly: true, account: 'querier' });
    try {
      const { fields, rows } = await c.rows(PRIVILEGE_QUERY);
      if (rows.length !== 1) throw new Error('the warehouse account was not found in pg_roles');
      const row = Object.fromEntries(fields.map((f, i) => [f, rows[0][i]]));
      const problems = privilegeProblems(row);
      if (problems.length > 0) {
        const what = `warehouse account "${this.target.user}" of connection "${this.conn.name}" ${problems.join(', ')}`;
        if (!this.allowSuperuser) {
          throw new GatehouseError('42501', `${what}: Gatehouse refuses accounts with more than read privileges`, {
            detail: 'a read-only transaction does not stop COPY TO PROGRAM, pg_read_file or SET TRANSACTION READ WRITE for such an account',
            hint: 'create a read-only role for Gatehouse (LOGIN, SELECT on the tables it serves), or set allow_superuser: true in the connection file',
          });
        }
        this.logger?.warn({ connection: this.conn.name, org: this.conn.org, problems }, `${what}; allowed by allow_superuser`);
      }
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('08001', `could not check the warehouse account of connection "${this.conn.name}"`, {
        detail: (e as Error).message,
      });
    } finally {
      await c.close();
    }
  }

  /** The topics account reads the topics' fields and nothing else (postgres-accounts.ts); refused with every reason otherwise. */
  private async checkTopicsAccount(): Promise<void> {
    const c = await this.open({ params: { application_name: 'gatehouse' }, readOnly: true, account: 'topics' });
    try {
      const role = await c.rows(TOPICS_ROLE_QUERY);
      const relations = await c.rows(TOPICS_RELATIONS_QUERY);
      const asRows = (r: { fields: string[]; rows: (string | null)[][] }) => r.rows.map((row) => Object.fromEntries(r.fields.map((f, i) => [f, row[i]])));
      const problems = topicsAccountProblems(asRows(role)[0], asRows(relations), this.topics);
      if (problems.length > 0) {
        throw new GatehouseError(
          '42501',
          `topics account "${this.topicsTarget!.user}" of connection "${this.conn.name}" ${problems.join('; ')}: Gatehouse refuses a topics account that can do more than read the topics' fields`,
          {
            detail: 'query_topics sessions run as this account; if a statement ever slips past policy, the account must have nothing more to give',
            hint: "GRANT SELECT (<fields>) ON <base> per topic, REVOKE TEMP ON DATABASE <db> FROM PUBLIC, and no role memberships (docs/rules.md, 'The topics account')",
          },
        );
      }
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('08001', `could not check the topics account of connection "${this.conn.name}"`, { detail: (e as Error).message });
    } finally {
      await c.close();
    }
  }

  /**
   * A session's upstream. Without pooling, a new connection closed with the session. Session
   * pooling: a parked connection of the same account and startup parameters when there is one
   * (pool.ts), its application_name SET to the client's, and back to the pool at the end
   * (checkin). Transaction pooling: nothing is held; each transaction borrows one (transaction-pool.ts).
   */
  async openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession> {
    const mode = this.poolSettings.mode;
    // The warehouse's own views (pg_stat_activity, log_line_prefix %a) name the person behind
    // the session. Not under transaction pooling, where one upstream serves many people in turn.
    if (opts.user !== undefined && mode !== 'transaction') opts = { ...opts, params: { ...opts.params, application_name: personAppName(opts.user) } };
    if (mode === 'none') return new PostgresSession(await this.open(opts), undefined, opts.resultLimit);
    const pool = this.poolFor(opts.account ?? 'querier');
    const key = poolKey(opts.readOnly, opts.params);
    const open = () => this.open(opts);
    if (mode === 'transaction') {
      if (pool.serverVersion === undefined) {
        // The version announced at sign-in comes from the warehouse: learn it once.
        const { conn } = await pool.acquire(key, open);
        pool.release(conn, key, conn.txStatus === 'I');
      }
      return new TransactionSession(pool, key, open, opts.resultLimit);
    }
    const { conn, reused } = await pool.acquire(key, open);
    try {
      const appName = opts.params.application_name ?? '';
      if (reused && conn.parameters.get('application_name') !== appName) await conn.rows(`SET application_name = ${sqlLiteral(appName)}`);
    } catch (e) {
      pool.release(conn, key, false);
      throw e;
    }
    return new PostgresSession(conn, (c) => this.checkin(pool, key, c), opts.resultLimit);
  }

  private poolFor(account: WarehouseAccount): UpstreamPool {
    let pool = this.pools.get(account);
    if (!pool) {
      pool = new UpstreamPool(this.poolSettings, { org: this.conn.org, connection: this.conn.name, account });
      this.pools.set(account, pool);
    }
    return pool;
  }

  /**
   * Session pooling: a session's connection back to the pool, as a new session would find it.
   * Only a connection at rest (ReadyForQuery 'I': no transaction, no COPY, no extended exchange
   * in flight) is reset; DISCARD ALL is RESET ALL (settings back to their startup values, which
   * are the pinned lexing settings, the account's timeouts and read-only: all startup
   * parameters), and it closes cursors (WITH HOLD too), deallocates prepared statements, drops
   * temporary tables, UNLISTENs and releases advisory locks. Anything else is closed.
   */
  private async checkin(pool: UpstreamPool, key: string, conn: UpstreamConnection): Promise<void> {
    conn.onNotification = undefined;
    let reusable = conn.usable && conn.txStatus === 'I';
    if (reusable) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          conn.rows('DISCARD ALL'),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('DISCARD ALL timed out')), RESET_TIMEOUT_MS);
          }),
        ]);
        reusable = conn.txStatus === 'I';
      } catch (e) {
        this.logger?.warn({ connection: this.conn.name, org: this.conn.org, err: (e as Error).message }, 'upstream reset failed; connection closed');
        reusable = false;
      } finally {
        clearTimeout(timer);
      }
    }
    pool.release(conn, key, reusable);
  }

  /** Pool sizes and counters for /metrics. */
  poolStats(): PoolStats[] {
    return [...this.pools.values()].map((p) => p.stats());
  }

  /** Column name -> type (format_type) of a relation; 42P01 when it does not exist. */
  async describeRelation(schema: string, table: string): Promise<Record<string, string>> {
    const c = await this.open({ params: { application_name: 'gatehouse' }, readOnly: true });
    try {
      const { rows } = await c.rows(`SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ${sqlLiteral(schema)} AND c.relname = ${sqlLiteral(table)} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`);
      if (rows.length === 0)
        throw new GatehouseError('42P01', `relation "${schema}.${table}" does not exist on the warehouse of connection "${this.conn.name}"`);
      return Object.fromEntries(rows.map((r) => [r[0] as string, r[1] as string]));
    } finally {
      await c.close();
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
  }
}
