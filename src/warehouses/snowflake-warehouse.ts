// A snowflake connection's Warehouse: the connector interface (connector.ts) over the Snowflake
// session of snowflake.ts (the real snowflake-sdk), pooled and served to clients like mysql's
// (row-warehouse.ts, row-session.ts). What is Snowflake's own:
// - Sign-in with a password or a key pair (SNOWFLAKE_JWT), each stored encrypted and opened
//   here per sign-in (credentials.ts), never kept on the session.
// - QUERY_TAG `gatehouse:<email>` on every statement (a statement parameter, so a pooled
//   session never carries the previous person's tag): Snowflake's query history and cost
//   reports show the person.
// - Rows are pushed by the SDK's stream and pulled here at the client's pace: the SDK's stream
//   is paused whenever a batch waits unread (ResultStream's contract).
// - Least privilege at load: the account must sign in, and a querier role that administers the
//   account (ACCOUNTADMIN, SECURITYADMIN, SYSADMIN, ORGADMIN) is refused unless allowed. What a
//   role can read is Snowflake's to say (SHOW GRANTS), which the project's fake Snowflake does
//   not serve: that part is not checked yet (README, "Warehouses").
import type { Logger } from 'pino';
import type { Connection, SnowflakeConnection, Topic } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { KeyResolution } from '../secrets/resolve.ts';
import type { FieldDescription } from '../wire/sink.ts';
import type {
  Connector,
  ConnectorError,
  ConnectorParam,
  ConnectorSession,
  ConnectorSessionOptions,
  CredentialSource,
  Credentials,
  Description,
  ResultEvent,
  ResultStream,
} from './connector.ts';
import { credentialProblem, type PasswordSource, passwordSource } from './credentials.ts';
import { RowWarehouse, type SqlRenderer } from './row-warehouse.ts';
import type { EmittedSql } from './connector.ts';
import { connectSnowflake, type SnowflakeConnection as SdkSession, type SnowflakeCredentials } from './snowflake.ts';
import type { TxStatus } from './types.ts';
import { snowflakeIdent } from '../sql/dialects/snowflake.ts';
import { type GrantProblem, type SnowflakeGrant, parseGrantRows, querierGrantProblems, topicsGrantProblems } from './snowflake-accounts.ts';
import { numberedBinds } from '../sql/dialects/placeholders.ts';

/** Where a Snowflake account is, apart from who signs in. */
export interface SnowflakeTarget {
  connection: string;
  account: string;
  warehouse: string;
  database: string;
  schema: string;
  accessUrl?: string;
}

/** Rows per batch handed to the client side; the SDK's stream waits while a batch is unread. */
const BATCH_ROWS = 256;

/** The texts Gatehouse writes for transactions on Snowflake (row-statements.ts): their status rows are not the client's. */
const TRANSACTION_TEXT = /^(BEGIN TRANSACTION|COMMIT|ROLLBACK)$/;

export class SnowflakeConnector implements Connector {
  readonly kind = 'snowflake';
  constructor(readonly target: SnowflakeTarget) {}

  async connect(source: CredentialSource, _opts: ConnectorSessionOptions): Promise<SnowflakeSession> {
    const c = source();
    const creds: SnowflakeCredentials = {
      account: this.target.account,
      user: c.user,
      role: c.role,
      warehouse: this.target.warehouse,
      database: this.target.database,
      schema: this.target.schema,
      ...(c.privateKey !== undefined ? { privateKey: c.privateKey, privateKeyPassphrase: c.privateKeyPassphrase } : { password: c.password }),
      ...(this.target.accessUrl ? { accessUrl: this.target.accessUrl } : {}),
    };
    const connectionName = `"${this.target.connection}"`;
    const session = await connectSnowflake(creds, { connectionName });
    return new SnowflakeSession(session, connectionName);
  }

  async health(credentials: CredentialSource): Promise<{ ok: true; serverVersion?: string } | { ok: false; error: ConnectorError }> {
    try {
      const s = await this.connect(credentials, { readOnly: true, account: 'querier' });
      await s.close();
      return { ok: true };
    } catch (e) {
      const err = e instanceof GatehouseError ? e : new GatehouseError('08001', String(e));
      return { ok: false, error: { sqlstate: err.sqlstate, message: err.message, detail: err.detail } };
    }
  }
}

export class SnowflakeSession implements ConnectorSession {
  private status: TxStatus = 'I';
  private running = false;
  private dead = false;
  private queryTag: string | undefined;
  onDead?: () => void;

  constructor(
    private readonly sdk: SdkSession,
    /** The connection's name, quoted, for errors. */
    private readonly connectionName: string,
  ) {}

  get txStatus(): TxStatus {
    return this.status;
  }

  get usable(): boolean {
    return !this.dead && !this.running;
  }

  readonly serverVersion = undefined;

  setUser(user: string | undefined): void {
    this.queryTag = user === undefined ? undefined : `gatehouse:${user}`;
  }

  execute(sql: string, params: readonly ConnectorParam[]): ResultStream {
    this.running = true;
    const values = params.map((p) => (p.value === null ? null : Buffer.isBuffer(p.value) ? p.value.toString('hex') : p.value));
    const transaction = TRANSACTION_TEXT.test(sql);
    const queue: ResultEvent[] = [];
    let batch: (string | null)[][] = [];
    let ended = false;
    let discard = false;
    // A lost session ends the client's too (the connector contract: next() rejects with 08006, which the client gets as FATAL).
    let failure: GatehouseError | undefined;
    let wakeConsumer: (() => void) | undefined;
    let wakeProducer: (() => void) | undefined;
    const push = (e: ResultEvent) => {
      queue.push(e);
      wakeConsumer?.();
      wakeConsumer = undefined;
    };
    const flush = () => {
      if (batch.length) push({ type: 'rows', rows: batch });
      batch = [];
    };
    const run = this.sdk
      .execute(
        sql,
        values,
        {
          onColumns: (fields: FieldDescription[]) => {
            if (!transaction && fields.length > 0) push({ type: 'columns', fields });
          },
          onRow: (row) => {
            if (discard || transaction) return true;
            batch.push(row);
            if (batch.length < BATCH_ROWS) return true;
            flush();
            return queue.length < 2;
          },
          resume: () =>
            new Promise<void>((resolve) => {
              if (discard || queue.length < 2) resolve();
              else wakeProducer = resolve;
            }),
        },
        { queryTag: this.queryTag },
      )
      .then((outcome) => {
        flush();
        if ('error' in outcome) {
          if (outcome.error.sqlstate.startsWith('08')) {
            this.lost();
            failure = this.lostError(`${outcome.error.message}${outcome.error.warehouseCode ? ` (Snowflake error ${outcome.error.warehouseCode})` : ''}`);
            return;
          }
          push({ type: 'error', error: { sqlstate: outcome.error.sqlstate, message: outcome.error.message } });
          return;
        }
        if (transaction) this.status = sql === 'BEGIN TRANSACTION' ? 'T' : 'I';
        push({ type: 'complete', ...(outcome.command !== 'SELECT' ? { affectedRows: outcome.rowCount } : {}) });
      })
      .catch((e: unknown) => {
        this.lost();
        failure = this.lostError((e as Error).message);
      })
      .finally(() => {
        ended = true;
        this.running = false;
        wakeConsumer?.();
      });
    const stream: ResultStream = {
      next: async () => {
        for (;;) {
          const e = queue.shift();
          if (e) {
            if (queue.length < 2) {
              wakeProducer?.();
              wakeProducer = undefined;
            }
            return { value: e, done: false };
          }
          if (failure) throw failure;
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => {
            wakeConsumer = resolve;
          });
        }
      },
      return: async () => {
        if (!ended) {
          discard = true;
          queue.length = 0;
          wakeProducer?.();
          await this.sdk.cancel().catch(() => undefined);
          await run;
        }
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => stream,
    };
    return stream;
  }

  /**
   * A statement compiled by Snowflake without running it (the SDK's describeOnly): its result
   * columns. Parameter types are left unknown (the client binds text; Snowflake converts).
   */
  async describe(sql: string): Promise<Description | { error: ConnectorError }> {
    // Gatehouse's own transaction texts return no rows to the client (execute() drops their status
    // row): described as such, as execute() will run them, without asking Snowflake.
    if (TRANSACTION_TEXT.test(sql)) return { paramTypes: [], fields: [] };
    const fields: FieldDescription[] = [];
    this.running = true;
    try {
      const out = await this.sdk.execute(
        sql,
        [],
        { onColumns: (f) => void fields.push(...f), onRow: () => true, resume: async () => undefined },
        { describeOnly: true, queryTag: this.queryTag },
      );
      if ('error' in out) {
        if (out.error.sqlstate.startsWith('08')) {
          this.lost();
          throw this.lostError(out.error.message);
        }
        return { error: { sqlstate: out.error.sqlstate, message: out.error.message } };
      }
      return { paramTypes: [], fields };
    } finally {
      this.running = false;
    }
  }

  async cancel(): Promise<void> {
    await this.sdk.cancel();
  }

  async reset(): Promise<boolean> {
    this.queryTag = undefined;
    return this.usable && this.status === 'I';
  }

  async close(): Promise<void> {
    this.lost();
    await this.sdk.close();
  }

  /** The session is gone: the client's session ends with 08006 naming the connection, Snowflake's reason in the detail. */
  private lostError(reason: string): GatehouseError {
    return new GatehouseError('08006', `lost the connection to warehouse of connection ${this.connectionName}`, { detail: reason });
  }

  private lost(): void {
    if (this.dead) return;
    this.dead = true;
    this.onDead?.();
  }
}

/** Roles that administer a Snowflake account: never a querier's role unless the connection allows it. */
const ADMIN_ROLES = new Set(['ACCOUNTADMIN', 'SECURITYADMIN', 'SYSADMIN', 'USERADMIN', 'ORGADMIN']);

/** An account's sign-in: a password or a private key (with its passphrase), each opened per sign-in. */
interface SecretSources {
  password?: PasswordSource;
  privateKey?: PasswordSource;
  passphrase?: PasswordSource;
}

/** A snowflake connection's Warehouse: pooled connector sessions, its accounts checked at start. */
export class SnowflakeWarehouse extends RowWarehouse {
  readonly kind = 'snowflake';
  private readonly target: SnowflakeConnection;
  private readonly secrets: (PasswordSource | undefined)[];

  constructor(conn: Connection, logger?: Logger, topics: Topic[] = [], render?: SqlRenderer, keys?: KeyResolution) {
    const t = conn.target as SnowflakeConnection;
    if (t.kind !== 'snowflake') throw new Error(`connection ${conn.name} is not a snowflake connection`);
    const connector = new SnowflakeConnector({
      connection: conn.name,
      account: t.account,
      warehouse: t.warehouse,
      database: t.database,
      schema: t.schema,
      ...(t.access_url ? { accessUrl: t.access_url } : {}),
    });
    // Stored secrets are decrypted here, at each sign-in, and dropped after it (credentials.ts).
    const querier: SecretSources = {
      password: passwordSource(conn, { sealed: t.password, env: t.password_env }, keys),
      privateKey: passwordSource(conn, { sealed: t.private_key, env: t.private_key_env }, keys),
      passphrase: passwordSource(conn, { sealed: t.private_key_passphrase, env: t.private_key_passphrase_env }, keys),
    };
    const topicsAccount: SecretSources = {
      password: passwordSource(conn, { sealed: t.topics_password, env: t.topics_password_env }, keys),
      privateKey: passwordSource(conn, { sealed: t.topics_private_key, env: t.topics_private_key_env }, keys),
      passphrase: passwordSource(conn, { sealed: t.topics_private_key_passphrase, env: t.topics_private_key_passphrase_env }, keys),
    };
    const signIn = (user: string, role: string | undefined, s: SecretSources) => (): Credentials => {
      const base = { user, ...(role ? { role } : {}) };
      if (s.privateKey) return { ...base, privateKey: s.privateKey(), ...(s.passphrase ? { privateKeyPassphrase: s.passphrase() } : {}) };
      return { ...base, password: s.password?.() };
    };
    super(
      conn,
      connector,
      {
        querier: signIn(t.user, t.role, querier),
        ...(t.topics_user ? { topics: signIn(t.topics_user, t.topics_role, topicsAccount) } : {}),
      },
      { logger, render: render ?? snowflakeRender, topics },
    );
    this.target = t;
    this.secrets = [...Object.values(querier), ...Object.values(topicsAccount)];
  }

  /** A stored secret that does not open refuses this connection alone (gateway.ts). */
  credentialProblem(): GatehouseError | undefined {
    for (const source of this.secrets) {
      const problem = credentialProblem(source);
      if (problem) return problem;
    }
    return undefined;
  }

  /**
   * Least privilege (DESIGN 3): each account signs in, and its role's grants (SHOW GRANTS TO
   * ROLE, granted roles followed) are judged by snowflake-accounts.ts; a role that administers
   * the account is refused by name. Refused at load with every reason unless the connection
   * file allows it (allow_superuser, allow_topics_privileges).
   */
  async start(): Promise<void> {
    const t = this.target;
    await this.checkAccount('querier', t.role, (grants) => querierGrantProblems(grants, { allowWrites: this.conn.allow_writes }));
    if (t.topics_user) await this.checkAccount('topics', t.topics_role!, (grants) => topicsGrantProblems(grants, this.topics, t.database));
  }

  private async checkAccount(account: 'querier' | 'topics', role: string, judge: (grants: SnowflakeGrant[]) => GrantProblem[]): Promise<void> {
    const t = this.target;
    const user = account === 'topics' ? t.topics_user! : t.user;
    const session = await this.openChecked(account);
    const problems: GrantProblem[] = [];
    try {
      const seen = new Set<string>();
      const pending = [role.startsWith('"') ? role.slice(1, -1) : role.toUpperCase()];
      while (pending.length > 0 && seen.size < 64) {
        const r = pending.shift()!;
        if (seen.has(r)) continue;
        seen.add(r);
        if (ADMIN_ROLES.has(r)) problems.push({ phrase: `has the role ${r}, which administers the account` });
        const { fields, rows } = await collect(session, `SHOW GRANTS TO ROLE ${snowflakeIdent(r)}`);
        const parsed = parseGrantRows(fields, rows);
        problems.push(...judge(parsed.grants));
        pending.push(...parsed.roles);
      }
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('08001', `could not check the ${account} account of connection "${this.conn.name}"`, { detail: (e as Error).message });
    } finally {
      await session.close();
    }
    if (problems.length === 0) return;
    const what = `warehouse ${account === 'topics' ? 'topics account' : 'account'} "${user}" (role ${role}) of connection "${this.conn.name}" ${problems.map((p) => p.phrase).join('; ')}`;
    const allowed = account === 'topics' ? t.allow_topics_privileges : t.allow_superuser;
    if (allowed) {
      this.logger?.warn(
        { connection: this.conn.name, org: this.conn.org, account, problems: problems.map((p) => p.phrase) },
        `${what}; allowed by the connection file`,
      );
      return;
    }
    throw new GatehouseError('42501', `${what}: Gatehouse refuses a warehouse account with more than it needs`, {
      hint:
        account === 'topics'
          ? "grant the topics role USAGE on the warehouse, database and schema and SELECT on the topics' tables (or views of their fields) only, or set allow_topics_privileges: true in the connection file"
          : 'give the role USAGE on the warehouse, database and schema and SELECT on the tables it serves (INSERT, UPDATE, DELETE, TRUNCATE with allow_writes), or set allow_superuser: true in the connection file',
    });
  }

  /** Column name (as the rules name it: Snowflake's upper case folded) -> PostgreSQL type name of a table. */
  async describeRelation(schema: string, table: string): Promise<Record<string, string>> {
    const session = await this.openChecked('querier');
    try {
      const fields: FieldDescription[] = [];
      let error: { message: string } | undefined;
      for await (const e of session.execute(`SELECT * FROM ${snowflakeIdent(schema)}.${snowflakeIdent(table)} LIMIT 0`, [])) {
        if (e.type === 'columns') fields.push(...e.fields);
        else if (e.type === 'error') error = e.error;
      }
      if (error) {
        throw new GatehouseError('42P01', `relation "${schema}.${table}" does not exist on the warehouse of connection "${this.conn.name}"`, {
          detail: error.message,
        });
      }
      return Object.fromEntries(fields.map((f) => [/^[A-Z_][A-Z0-9_$]*$/.test(f.name) ? f.name.toLowerCase() : f.name, PG_TYPE_NAMES[f.typeOid] ?? 'text']));
    } finally {
      await session.close();
    }
  }
}

const PG_TYPE_NAMES: Record<number, string> = {
  16: 'boolean',
  17: 'bytea',
  20: 'bigint',
  25: 'text',
  701: 'double precision',
  1082: 'date',
  1083: 'time without time zone',
  1114: 'timestamp without time zone',
  1184: 'timestamp with time zone',
  1700: 'numeric',
  3802: 'jsonb',
};

/**
 * A decided statement as Snowflake gets it. The emitter's text carries its `?` order; a
 * querier's own text is sent unchanged, its numbered binds (`:1`, `:2`: the form Snowflake's
 * classifier reads) standing for the client's parameters $1, $2... by number.
 */
export function snowflakeRender(statement: { sql: string; params?: number[] }): EmittedSql {
  if (statement.params) return { sql: statement.sql, params: statement.params };
  const n = Math.max(0, ...numberedBinds(statement.sql));
  return { sql: statement.sql, params: Array.from({ length: n }, (_, i) => i + 1) };
}

/** Runs one statement of Gatehouse's own and collects its rows; a warehouse error is thrown. */
async function collect(session: ConnectorSession, sql: string): Promise<{ fields: string[]; rows: (string | null)[][] }> {
  const out: { fields: string[]; rows: (string | null)[][] } = { fields: [], rows: [] };
  for await (const e of session.execute(sql, [])) {
    if (e.type === 'columns') out.fields = e.fields.map((f) => f.name.toLowerCase());
    else if (e.type === 'rows') out.rows.push(...e.rows);
    else if (e.type === 'error') throw new Error(`${e.error.message} (SQLSTATE ${e.error.sqlstate})`);
  }
  return out;
}
