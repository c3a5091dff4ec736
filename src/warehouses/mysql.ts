// The mysql connector (MySQL and MariaDB) through mysql2: one physical connection per session,
// rows streamed under the client's backpressure (mysql2's pause/resume stops reading the
// socket), values read without loss and written as PostgreSQL text (mysql-types.ts), errors
// as SQLSTATE values, cancel by KILL QUERY on a second connection. Every session starts with
// the dialect's session (mysql-session.ts: what the emitter relies on) and every statement carries
// who is behind it as a leading comment, which the processlist and the general and slow
// logs keep.
import { readFileSync } from 'node:fs';
import mysql from 'mysql2';
import type { Logger } from 'pino';
import type { KeyResolution } from '../secrets/resolve.ts';
import { type PasswordSource, credentialProblem, passwordSource } from './credentials.ts';
import { type WarehouseTlsMode, isLoopback } from './warehouse-tls.ts';
import type { Connection, MysqlConnection, Topic } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
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
import { type Formatter, OID, mapColumn, mysqlError } from './mysql-types.ts';
import { type GrantProblem, grantProblems, parseGrants, topicsGrantProblems } from './mysql-accounts.ts';
import { RowWarehouse, type SqlRenderer } from './row-warehouse.ts';
import type { TxStatus } from './types.ts';
import {
  MYSQL_CHARSET,
  MYSQL_SQL_MODE as DIALECT_SQL_MODE,
  MYSQL_TIME_ZONE,
  type MysqlFlavor,
  TEXT_COLLATION,
  flavorOf,
  mysqlSessionStatements,
} from '../sql/dialects/mysql-session.ts';

/**
 * sql_mode of every session, from the one source the dialect emitter writes for
 * (src/sql/dialects/mysql-session.ts): how the warehouse reads SQL text, pinned so that what
 * Gatehouse's emitter writes (and a querier's text) means one thing.
 */
export const MYSQL_SQL_MODE: readonly string[] = DIALECT_SQL_MODE.split(',');

/**
 * The statements that put a new (or reset) connection in the dialect's session
 * (mysqlSessionStatements: sql_mode, character sets and PostgreSQL's collation, the barrier's
 * optimizer_switch, UTC, division scale), then autocommit and read-only sessions last.
 */
export function sessionSetup(readOnly: boolean, flavor: MysqlFlavor): string[] {
  return [
    ...mysqlSessionStatements(flavor),
    // Each statement commits unless the client opened a transaction (BEGIN), as on PostgreSQL.
    'SET SESSION autocommit = 1',
    // Queriers' raw SQL cannot write unless the connection allows it (the account's grants are the other half: mysql-accounts.ts).
    `SET SESSION TRANSACTION ${readOnly ? 'READ ONLY' : 'READ WRITE'}`,
  ];
}

/**
 * The comment that names the person behind a statement, put before its text. Emails are
 * checked at load (no white space, one @) but may hold '*' and '/': anything outside a plain
 * address's characters is percent-encoded, so the comment can never end early.
 */
export function whoComment(user: string | undefined): string {
  if (!user) return '/* gatehouse */ ';
  const safe = user.replace(/[^A-Za-z0-9@._+-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `/* gatehouse:${safe} */ `;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** Rows read ahead of the client at most; past this the socket is paused until the client takes them. */
const HIGH_WATER_ROWS = 1024;
/** Rows handed over per batch. */
const BATCH_ROWS = 256;
/** Prepared statements one connection keeps (mysql2's cache, closed on eviction): the warehouse's are shared. */
const MAX_PREPARED = 64;
const SERVER_STATUS_IN_TRANS = 0x0001;
/** Statements that may change a session setting (SET, SET NAMES, SET CHARACTER SET); MariaDB's SET STATEMENT ... FOR is one statement's. */
const SETS = /^SET\b(?!\s+STATEMENT\b)/i;
const LEADING_COMMENTS = /^(\s+|\/\*(?!!)[\s\S]*?\*\/|(--\s|#)[^\n]*\n?)*/;
const PINNED_CHECK =
  '/* gatehouse */ SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@SESSION.collation_connection, @@SESSION.character_set_client, @@SESSION.character_set_connection, @@SESSION.character_set_results';
/** MariaDB's ER_CONNECTION_KILLED (KILL CONNECTION) and MySQL's server-shutdown errors: the connection is gone. */
const CONNECTION_GONE_ERRNOS = new Set([1053, 1927, 2006, 2013]);

export type MysqlTlsMode = WarehouseTlsMode;

/** Where a mysql connection goes (not as whom: credentials come per connect). */
export interface MysqlTarget {
  connection: string;
  host: string;
  port: number;
  database: string;
  tls: { mode: MysqlTlsMode; caFile?: string };
}

/** The TLS mode a connection file's settings give: verify-full off loopback, none on it, unless the file says otherwise. */
export function tlsMode(host: string, configured?: MysqlTlsMode): MysqlTlsMode {
  return configured ?? (isLoopback(host) ? 'disable' : 'verify-full');
}

/** The mysql2 surface this module uses (its typings do not declare pause/resume or the packet hook). */
interface RawConnection {
  threadId: number | null;
  serverVersion?: string;
  _handshakePacket?: { serverVersion?: string };
  query(opts: object): RawCommand;
  execute(opts: object, values: unknown[]): RawCommand;
  prepare(sql: string, cb: (err: RawError | null, stmt?: { columns: unknown[]; parameters: unknown[] }) => void): void;
  unprepare(sql: string): void;
  reset(cb: (err: RawError | null) => void): void;
  pause(): void;
  resume(): void;
  end(cb?: (err?: unknown) => void): void;
  destroy(): void;
  on(event: string, f: (...a: never[]) => void): void;
  once(event: string, f: (...a: never[]) => void): void;
  handlePacket(packet: unknown): void;
}
interface RawCommand {
  on(event: 'fields', f: (fields: unknown[] | undefined, index?: number) => void): RawCommand;
  on(event: 'result', f: (row: unknown, index?: number) => void): RawCommand;
  on(event: 'error', f: (err: RawError) => void): RawCommand;
  on(event: 'end', f: () => void): RawCommand;
}
interface RawError extends Error {
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
  code?: string;
  fatal?: boolean;
}
interface RawPacket {
  isEOF(): boolean;
  eofStatusFlags(): number;
}

/** mysql2 options shared by every connection: values read as strings where a JS number would lose them. */
function connectionOptions(target: MysqlTarget, credentials: Credentials): object {
  const { mode, caFile } = target.tls;
  const ca = caFile ? readFileSync(caFile) : undefined;
  const ssl =
    mode === 'disable'
      ? undefined
      : mode === 'require'
        ? { rejectUnauthorized: false }
        : { ...(ca ? { ca } : {}), rejectUnauthorized: true, verifyIdentity: mode === 'verify-full' };
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: credentials.user,
    password: credentials.password ?? '',
    ...(ssl ? { ssl } : {}),
    charset: 'UTF8MB4_GENERAL_CI',
    connectTimeout: CONNECT_TIMEOUT_MS,
    // One statement per query (a ';' can never smuggle a second one), no LOAD DATA LOCAL.
    multipleStatements: false,
    flags: ['-MULTI_STATEMENTS', '-LOCAL_FILES'],
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    decimalNumbers: false,
    jsonStrings: true,
    rowsAsArray: true,
    maxPreparedStatements: MAX_PREPARED,
    // GEOMETRY as its bytes (WKB) rather than mysql2's parsed object.
    typeCast: (f: { type: string; buffer(): Buffer | null }, next: () => unknown) => (f.type === 'GEOMETRY' ? f.buffer() : next()),
    connectAttributes: { program_name: 'gatehouse' },
  };
}

/** A connect failure as 08001 naming the connection, the reason without the password. */
function connectError(target: MysqlTarget, e: unknown, password?: string): GatehouseError {
  let reason = e instanceof Error ? e.message : String(e);
  if (password) reason = reason.split(password).join('***');
  return new GatehouseError('08001', `could not connect to warehouse of connection "${target.connection}"`, { detail: reason });
}

function openRaw(target: MysqlTarget, credentials: Credentials): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    let raw: RawConnection;
    try {
      raw = mysql.createConnection(connectionOptions(target, credentials) as mysql.ConnectionOptions) as unknown as RawConnection;
    } catch (e) {
      reject(connectError(target, e, credentials.password));
      return;
    }
    const onError = (e: RawError) => reject(connectError(target, e, credentials.password));
    raw.once('error', onError);
    raw.once('connect', () => resolve(raw));
  });
}

/** A lost connection, as the client gets it (08006: its session ends; the next one opens afresh). */
function lostError(target: MysqlTarget, reason: string): GatehouseError {
  return new GatehouseError('08006', `lost the connection to warehouse of connection "${target.connection}"`, { detail: reason });
}

/** A client parameter as mysql2 binds it (server-side prepared statement: never interpolated into the text). */
function bindValue(p: ConnectorParam): unknown {
  const v = p.value;
  if (v === null || Buffer.isBuffer(v)) return v;
  switch (p.typeOid) {
    case OID.int2:
    case OID.int4:
    case OID.int8: {
      const n = Number(v);
      return Number.isSafeInteger(n) && /^\s*[-+]?\d+\s*$/.test(v) ? n : v;
    }
    case OID.float4:
    case OID.float8: {
      const n = Number(v);
      return Number.isFinite(n) ? n : v;
    }
    case OID.bool:
      return /^(t|true|y|yes|on|1)$/i.test(v.trim()) ? 1 : /^(f|false|n|no|off|0)$/i.test(v.trim()) ? 0 : v;
    default:
      return v;
  }
}

/** One running statement's results, read from mysql2's events at the consumer's pace. */
class MysqlResult implements ResultStream {
  private readonly events: ResultEvent[] = [];
  private rows: (string | null)[][] = [];
  /** Rows read but not handed over (in `rows` and in queued batches). */
  private buffered = 0;
  private formats: Formatter[] = [];
  private ended = false;
  private failure?: GatehouseError;
  private waiter?: () => void;
  private paused = false;
  /** The consumer stopped early (return()): the rest is read and dropped. */
  private discarding = false;
  private readonly finished: Promise<void>;
  private finish!: () => void;

  constructor(
    private readonly session: MysqlSession,
    command: RawCommand,
    /** The statement is a SET (or SET NAMES...): the pinned settings are checked after it. */
    private readonly setsSomething: boolean,
  ) {
    this.finished = new Promise((r) => (this.finish = r));
    command.on('fields', (fields) => this.onFields(fields));
    command.on('result', (row) => this.onRow(row));
    command.on('error', (err) => this.onError(err));
    command.on('end', () => this.onEnd());
  }

  private push(e: ResultEvent): void {
    if (this.discarding) return;
    this.events.push(e);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private flushRows(): void {
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    this.events.push({ type: 'rows', rows });
  }

  private onFields(fields: unknown[] | undefined): void {
    if (!fields) return; // an OK packet follows as a 'result' with no fields
    this.flushRows();
    const mapped = fields.map((f) => mapColumn(f as never));
    this.formats = mapped.map((m) => m.format);
    this.push({ type: 'columns', fields: mapped.map((m) => m.field) });
  }

  private onRow(row: unknown): void {
    if (!Array.isArray(row)) {
      // An OK packet: a statement without rows (its status says whether a transaction is open).
      const rs = row as { affectedRows?: number; serverStatus?: number };
      if (rs.serverStatus !== undefined) this.session.noteStatus(rs.serverStatus);
      this.flushRows();
      this.push({ type: 'complete', affectedRows: rs.affectedRows });
      this.completed = true;
      return;
    }
    if (this.discarding) return;
    const f = this.formats;
    const out = new Array<string | null>(row.length);
    for (let i = 0; i < row.length; i++) out[i] = f[i](row[i]);
    this.rows.push(out);
    this.buffered++;
    if (this.rows.length >= BATCH_ROWS) {
      this.flushRows();
      this.wake();
    }
    if (this.buffered >= HIGH_WATER_ROWS && !this.paused) {
      this.paused = true;
      this.session.raw.pause();
    }
  }

  private completed = false;

  private onError(err: RawError): void {
    if (err.fatal || (err.errno !== undefined && CONNECTION_GONE_ERRNOS.has(err.errno))) {
      this.failure = lostError(this.session.target, err.sqlMessage ?? err.message);
      this.session.lost(err.sqlMessage ?? err.message);
    } else {
      this.flushRows();
      this.push({ type: 'error', error: mysqlError(err) });
      this.completed = true;
    }
    this.end();
  }

  private onEnd(): void {
    if (!this.completed && !this.failure) {
      this.flushRows();
      this.push({ type: 'complete' });
      this.completed = true;
    }
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.resume();
    this.session.statementEnded(this);
    this.finish();
    this.wake();
  }

  /** The connection was lost under this statement. */
  fail(err: GatehouseError): void {
    if (this.ended) return;
    this.failure ??= err;
    this.end();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.session.raw.resume();
  }

  async next(): Promise<IteratorResult<ResultEvent>> {
    for (;;) {
      const e = this.events.shift();
      if (e) {
        if (e.type === 'rows') {
          this.buffered -= e.rows.length;
          if (this.buffered < HIGH_WATER_ROWS / 2) this.resume();
        }
        return { value: e, done: false };
      }
      if (this.rows.length > 0) {
        this.flushRows();
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) {
        await this.session.cancelled();
        if (this.setsSomething && !this.failure) {
          // A SET may have changed how the warehouse reads text: checked before anything else runs.
          const changed = await this.session.pinnedChanged();
          if (changed) {
            this.failure = lostError(this.session.target, changed);
            this.session.lost(changed);
            void this.session.close();
            throw this.failure;
          }
        }
        return { value: undefined, done: true };
      }
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Stops early: the statement is killed (KILL QUERY) and what it still sends is read and dropped. */
  async return(): Promise<IteratorResult<ResultEvent>> {
    if (!this.ended) {
      this.discarding = true;
      this.rows = [];
      this.events.length = 0;
      this.buffered = 0;
      this.resume();
      await this.session.cancel();
      await this.finished;
    }
    await this.session.cancelled();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export class MysqlSession implements ConnectorSession {
  private status: TxStatus = 'I';
  private running?: MysqlResult;
  private dead = false;
  private kill?: Promise<void>;
  /** Who is behind the statements (setUser): the leading comment. */
  private comment = whoComment(undefined);
  onDead?: () => void;

  constructor(
    readonly raw: RawConnection,
    readonly target: MysqlTarget,
    /** Signs in again for KILL QUERY (the credentials are asked for then, not kept). */
    private readonly credentials: CredentialSource,
    /** Re-applied after a reset (pooling). */
    private readonly readOnly: boolean,
  ) {
    raw.on('error', (e: RawError) => this.lost(e.message));
    raw.on('end', () => this.lost('the warehouse closed the connection'));
    // The transaction flag of the EOF that ends a result set (mysql2 reads it but does not report it).
    const handle = raw.handlePacket.bind(raw);
    raw.handlePacket = (packet: unknown) => {
      const p = packet as RawPacket | undefined;
      if (this.running && p?.isEOF()) this.noteStatus(p.eofStatusFlags());
      handle(packet);
    };
  }

  get txStatus(): TxStatus {
    return this.status;
  }

  get usable(): boolean {
    return !this.dead && !this.running;
  }

  get serverVersion(): string | undefined {
    return this.raw._handshakePacket?.serverVersion;
  }

  /** MariaDB or MySQL, from the handshake's version: which collation and optimizer switches the session takes. */
  get flavor(): MysqlFlavor {
    return flavorOf(this.serverVersion);
  }

  get threadId(): number | null {
    return this.raw.threadId;
  }

  setUser(user: string | undefined): void {
    this.comment = whoComment(user);
  }

  noteStatus(flags: number): void {
    this.status = flags & SERVER_STATUS_IN_TRANS ? 'T' : 'I';
  }

  /**
   * What a statement changed of the settings Gatehouse (and its emitter) read SQL with, or
   * undefined: sql_mode's quoting and escaping, the time zone, the character sets.
   */
  pinnedChanged(): Promise<string | undefined> {
    return new Promise((resolve) => {
      const rows: unknown[][] = [];
      const q = this.raw.query({ sql: PINNED_CHECK });
      q.on('result', (r) => {
        if (Array.isArray(r)) rows.push(r);
      });
      q.on('error', (e) => resolve(`the pinned settings could not be read back (${e.message})`));
      q.on('end', () => {
        const [mode, tz, collation, ...charsets] = (rows[0] ?? []).map(String);
        const modes = mode?.split(',') ?? [];
        const why = !modes.includes('NO_BACKSLASH_ESCAPES')
          ? 'sql_mode without NO_BACKSLASH_ESCAPES'
          : modes.some((m) => m === 'ANSI_QUOTES' || m === 'PIPES_AS_CONCAT' || m === 'ANSI')
            ? `sql_mode ${mode}`
            : tz !== MYSQL_TIME_ZONE
              ? `time_zone ${tz}`
              : charsets.some((c) => c !== MYSQL_CHARSET)
                ? `character sets ${charsets.join(', ')}`
                : collation !== TEXT_COLLATION[this.flavor]
                  ? `collation_connection ${collation}`
                  : undefined;
        resolve(
          why &&
            `a statement set ${why}; Gatehouse reads SQL only with ${MYSQL_CHARSET} (${TEXT_COLLATION[this.flavor]}), time_zone ${MYSQL_TIME_ZONE} and sql_mode ${DIALECT_SQL_MODE}, so it closed this warehouse connection`,
        );
      });
    });
  }

  /** Runs Gatehouse's own statements (session set-up) and throws on the first error. */
  async setUp(statements: string[]): Promise<void> {
    for (const sql of statements) {
      for await (const e of this.run(sql, [], false)) {
        if (e.type === 'error') throw new Error(`${e.error.message} (${sql})`);
      }
    }
    const changed = await this.pinnedChanged();
    if (changed) throw new Error(`the session did not take Gatehouse's settings: ${changed}`);
  }

  execute(sql: string, params: readonly ConnectorParam[]): ResultStream {
    return this.run(sql, params, true);
  }

  /** `check`: after a SET, the pinned settings are read back (not during set-up, which checks once at its end). */
  private run(sql: string, params: readonly ConnectorParam[], check: boolean): ResultStream {
    if (this.dead) return failedStream(lostError(this.target, 'the connection is closed'));
    if (this.running) return failedStream(new GatehouseError('08006', `warehouse connection of "${this.target.connection}" is busy`));
    const text = this.comment + sql;
    const command = params.length > 0 ? this.raw.execute({ sql: text }, params.map(bindValue)) : this.raw.query({ sql: text });
    const result = new MysqlResult(this, command, check && SETS.test(sql.replace(LEADING_COMMENTS, '')));
    this.running = result;
    return result;
  }

  statementEnded(r: MysqlResult): void {
    if (this.running === r) this.running = undefined;
  }

  describe(sql: string): Promise<Description | { error: ConnectorError }> {
    if (this.dead) return Promise.reject(lostError(this.target, 'the connection is closed'));
    const text = this.comment + sql;
    return new Promise((resolve, reject) => {
      this.raw.prepare(text, (err, stmt) => {
        if (err) {
          if (err.fatal) reject(lostError(this.target, err.message));
          else resolve({ error: mysqlError(err) });
          return;
        }
        const fields: FieldDescription[] = (stmt?.columns ?? []).map((c) => mapColumn(c as never).field);
        resolve({ paramTypes: (stmt?.parameters ?? []).map(() => 0), fields });
      });
    });
  }

  /**
   * KILL QUERY on a second connection of the same account (a user may kill its own threads).
   * The statement then ends with 1317 (57014). The result waits for the KILL to be done, so it
   * can never land on the session's next statement.
   */
  cancel(): Promise<void> {
    const id = this.raw.threadId;
    if (!this.running || id === null || this.dead) return Promise.resolve();
    const kill = (async () => {
      let c: RawConnection | undefined;
      try {
        c = await openRaw(this.target, this.credentials());
        await new Promise<void>((resolve) => {
          const q = c!.query({ sql: `KILL QUERY ${Number(id)}` });
          q.on('error', () => resolve());
          q.on('end', () => resolve());
        });
      } catch {
        // Nothing to do: the statement runs to its end.
      } finally {
        c?.destroy();
      }
    })();
    this.kill = kill;
    return kill;
  }

  /** Resolves once a KILL QUERY sent for this session is done. */
  async cancelled(): Promise<void> {
    const k = this.kill;
    this.kill = undefined;
    await k;
  }

  async reset(): Promise<boolean> {
    if (!this.usable || this.status !== 'I') return false;
    try {
      // COM_RESET_CONNECTION: user variables, temporary tables, prepared statements and session settings go.
      await new Promise<void>((resolve, reject) => this.raw.reset((err) => (err ? reject(err) : resolve())));
      this.comment = whoComment(undefined);
      await this.setUp(sessionSetup(this.readOnly, this.flavor));
      return this.usable && this.status === 'I';
    } catch {
      return false;
    }
  }

  lost(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.running?.fail(lostError(this.target, reason));
    const f = this.onDead;
    this.onDead = undefined;
    f?.();
  }

  async close(): Promise<void> {
    if (this.dead) {
      this.raw.destroy();
      return;
    }
    this.lost('closed by Gatehouse');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.raw.destroy();
        resolve();
      }, 1000);
      t.unref();
      this.raw.end(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

function failedStream(err: GatehouseError): ResultStream {
  const it: ResultStream = {
    next: () => Promise.reject(err),
    return: async () => ({ value: undefined, done: true }),
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}

export class MysqlConnector implements Connector {
  readonly kind = 'mysql';

  constructor(readonly target: MysqlTarget) {}

  /**
   * One session signed in as the credentials the source gives now (asked again only for a
   * KILL QUERY), set up with the dialect's session for the server's flavor (sessionSetup).
   */
  async connect(source: CredentialSource, opts: ConnectorSessionOptions): Promise<MysqlSession> {
    const raw = await openRaw(this.target, source());
    const session = new MysqlSession(raw, this.target, source, opts.readOnly);
    try {
      await session.setUp(sessionSetup(opts.readOnly, session.flavor));
    } catch (e) {
      await session.close();
      throw new GatehouseError('08001', `could not set up a session on the warehouse of connection "${this.target.connection}"`, {
        detail: e instanceof Error ? e.message : String(e),
      });
    }
    return session;
  }

  async health(credentials: CredentialSource): Promise<{ ok: true; serverVersion?: string } | { ok: false; error: ConnectorError }> {
    try {
      const s = await this.connect(credentials, { readOnly: true, account: 'querier' });
      const version = s.serverVersion;
      await s.close();
      return { ok: true, serverVersion: version };
    } catch (e) {
      const err = e instanceof GatehouseError ? e : new GatehouseError('08001', String(e));
      return { ok: false, error: { sqlstate: err.sqlstate, message: err.message, detail: err.detail } };
    }
  }
}

/** Runs one statement of Gatehouse's own and collects its rows (account checks); a warehouse error is thrown. */
export async function collectRows(session: ConnectorSession, sql: string): Promise<{ fields: string[]; rows: (string | null)[][] }> {
  const out: { fields: string[]; rows: (string | null)[][] } = { fields: [], rows: [] };
  for await (const e of session.execute(sql, [])) {
    if (e.type === 'columns') out.fields = e.fields.map((f) => f.name);
    else if (e.type === 'rows') out.rows.push(...e.rows);
    else if (e.type === 'error') throw new Error(`${e.error.message} (SQLSTATE ${e.error.sqlstate})`);
  }
  return out;
}

/** A mysql connection's Warehouse: pooled row sessions, its accounts checked for least privilege at start. */
export class MysqlWarehouse extends RowWarehouse {
  readonly kind = 'mysql';
  private readonly mysqlTarget: MysqlConnection;

  private readonly passwords: (PasswordSource | undefined)[];
  /** MariaDB or MySQL, learned at start from the server's version (the dialect writes collations by it). */
  private serverFlavor?: MysqlFlavor;

  /** Known once start() reached the warehouse; the decision context carries it (gateway.ts). */
  get flavor(): MysqlFlavor | undefined {
    return this.serverFlavor;
  }

  constructor(conn: Connection, logger?: Logger, topics: Topic[] = [], render?: SqlRenderer, keys?: KeyResolution) {
    const t = conn.target as MysqlConnection;
    if (t.kind !== 'mysql') throw new Error(`connection ${conn.name} is not a mysql connection`);
    const connector = new MysqlConnector({
      connection: conn.name,
      host: t.host,
      port: t.port,
      database: t.database,
      tls: { mode: tlsMode(t.host, t.tls?.mode), caFile: t.tls?.ca_file },
    });
    // Stored passwords are decrypted here, at each sign-in, and dropped after it (credentials.ts).
    const password = passwordSource(conn, { sealed: t.password, env: t.password_env }, keys);
    const topicsPassword = passwordSource(conn, { sealed: t.topics_password, env: t.topics_password_env }, keys);
    super(
      conn,
      connector,
      {
        querier: () => ({ user: t.user, password: password?.() }),
        ...(t.topics_user ? { topics: () => ({ user: t.topics_user!, password: topicsPassword?.() }) } : {}),
      },
      { logger, render, topics },
    );
    this.mysqlTarget = t;
    this.passwords = [password, topicsPassword];
  }

  /** A stored password that does not open refuses this connection alone (gateway.ts). */
  credentialProblem(): GatehouseError | undefined {
    for (const source of this.passwords) {
      const problem = credentialProblem(source);
      if (problem) return problem;
    }
    return undefined;
  }

  /** Least privilege (DESIGN 3): each account's SHOW GRANTS, refused at load with every reason. */
  async start(): Promise<void> {
    const t = this.mysqlTarget;
    await this.checkAccount('querier', (grants) => grantProblems(grants, { allowWrites: this.conn.allow_writes }));
    if (t.topics_user) await this.checkAccount('topics', (grants) => topicsGrantProblems(grants, this.topics, t.database));
  }

  private async checkAccount(account: 'querier' | 'topics', judge: (grants: ReturnType<typeof parseGrants>) => GrantProblem[]): Promise<void> {
    const t = this.mysqlTarget;
    const user = account === 'topics' ? t.topics_user! : t.user;
    const session = await this.openChecked(account);
    this.serverFlavor = flavorOf(session.serverVersion);
    let problems: GrantProblem[];
    try {
      const { rows } = await collectRows(session, 'SHOW GRANTS FOR CURRENT_USER()');
      problems = judge(parseGrants(rows.map((r) => r[0] ?? '')));
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('08001', `could not check the ${account} account of connection "${this.conn.name}"`, { detail: (e as Error).message });
    } finally {
      await session.close();
    }
    if (problems.length === 0) return;
    const what = `warehouse ${account === 'topics' ? 'topics account' : 'account'} "${user}" of connection "${this.conn.name}" ${problems.map((p) => p.phrase).join('; ')}`;
    const allowed = account === 'topics' ? t.allow_topics_privileges : t.allow_superuser;
    if (allowed) {
      this.logger?.warn(
        { connection: this.conn.name, org: this.conn.org, account, problems: problems.map((p) => p.phrase) },
        `${what}; allowed by the connection file`,
      );
      return;
    }
    throw new GatehouseError('42501', `${what}: Gatehouse refuses a warehouse account with more than it needs`, {
      detail:
        account === 'topics'
          ? 'query_topics sessions run as this account; if a statement ever slips past policy, the account must have nothing more to give'
          : 'a read-only session does not stop FILE (LOAD_FILE, INTO OUTFILE), SUPER or GRANT OPTION, and writes need allow_writes',
      hint:
        account === 'topics'
          ? `GRANT SELECT (<fields>) ON ${t.database}.<base> per topic and nothing else, or set allow_topics_privileges: true in the connection file`
          : `create an account with SELECT on the tables it serves (and INSERT, UPDATE, DELETE with allow_writes), or set allow_superuser: true in the connection file`,
    });
  }

  /** Column name -> PostgreSQL type name of a table (the topic catalog's types). */
  async describeRelation(schema: string, table: string): Promise<Record<string, string>> {
    const db = schema === 'public' ? this.mysqlTarget.database : schema;
    const session = await this.openChecked('querier');
    try {
      const desc = await session.describe(`SELECT * FROM \`${db.replace(/`/g, '``')}\`.\`${table.replace(/`/g, '``')}\``);
      if ('error' in desc) {
        throw new GatehouseError('42P01', `relation "${schema}.${table}" does not exist on the warehouse of connection "${this.conn.name}"`, {
          detail: desc.error.message,
        });
      }
      return Object.fromEntries(desc.fields.map((f) => [f.name, PG_TYPE_NAMES[f.typeOid] ?? 'text']));
    } finally {
      await session.close();
    }
  }
}

const PG_TYPE_NAMES: Record<number, string> = {
  [OID.bool]: 'boolean',
  [OID.bytea]: 'bytea',
  [OID.int2]: 'smallint',
  [OID.int4]: 'integer',
  [OID.int8]: 'bigint',
  [OID.text]: 'text',
  [OID.json]: 'json',
  [OID.float4]: 'real',
  [OID.float8]: 'double precision',
  [OID.varchar]: 'character varying',
  [OID.date]: 'date',
  [OID.time]: 'time without time zone',
  [OID.timestamp]: 'timestamp without time zone',
  [OID.timestamptz]: 'timestamp with time zone',
  [OID.bit]: 'bit',
  [OID.numeric]: 'numeric',
};
