// The snowflake warehouse: statements run through the real snowflake-sdk, rows streamed at the
// client's pace, Snowflake's column types mapped to PostgreSQL type OIDs and text formats, errors
// mapped to SQLSTATEs with the warehouse's own message, QUERY_TAG `gatehouse:<email>` on every
// statement so Snowflake's query history and cost reports show the person.
//
// This module is the SDK session (push-based: handlers per row); snowflake-warehouse.ts wraps it
// in the connector interface every row warehouse implements (warehouses/connector.ts: rows
// pulled at the client's pace) and serves it through row-warehouse.ts like mysql's.
//
// Loading the SDK has side effects this module controls:
// - SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true is set BEFORE the SDK is imported: at import it
//   otherwise probes cloud metadata addresses (169.254.169.254, metadata.google.internal) to
//   detect its platform (telemetry/platform_detection.js). Hence a dynamic import, never a static one.
// - Its logger is replaced by one that keeps nothing: the SDK's default writes ./snowflake.log at
//   INFO. Faults reach Gatehouse as error values (this module's outcomes), not as log lines.
import { GatehouseError } from '../errors.ts';
import type { FieldDescription } from '../wire/sink.ts';

// Typed loosely on purpose: the SDK's own .d.ts is loaded only with the module (dynamic import).
// biome-ignore lint/suspicious/noExplicitAny: the SDK's types load only with the module (dynamic import)
type Sdk = any;
// biome-ignore lint/suspicious/noExplicitAny: the SDK's types load only with the module (dynamic import)
type SdkConnection = any;
// biome-ignore lint/suspicious/noExplicitAny: the SDK's types load only with the module (dynamic import)
type SdkStatement = any;

export interface SnowflakeCredentials {
  /** Account identifier (orgname-account or locator.region): becomes https://<account>.snowflakecomputing.com. */
  account: string;
  user: string;
  role?: string;
  warehouse?: string;
  database?: string;
  schema?: string;
  /** Password sign-in; or privateKey (PEM, PKCS#8 or PKCS#1) for key-pair sign-in (SNOWFLAKE_JWT). */
  password?: string;
  privateKey?: string;
  privateKeyPassphrase?: string;
  /**
   * Advanced / test only: the URL every request goes to instead of the account's
   * https://<account>.snowflakecomputing.com (the SDK's accessUrl). The test suite points it at
   * its local fake Snowflake (test/helpers/snowflake-server.ts); an http:// URL has no TLS at all.
   */
  accessUrl?: string;
}

export interface SnowflakeConnectOptions {
  /** Set as the session's QUERY_TAG at sign-in (statements may name their own). */
  queryTag?: string;
  /** Names the connection in errors (never the credentials). */
  connectionName?: string;
}

/** Where one statement's results go. */
export interface RowHandlers {
  /** The result's columns, once, before any row. */
  onColumns(fields: FieldDescription[]): void;
  /** One row in PostgreSQL text format (null for NULL). False: pause until resume() resolves. */
  onRow(values: (string | null)[]): boolean;
  /** Resolves once the consumer can take rows again (after onRow returned false). */
  resume(): Promise<void>;
}

export interface ExecuteOptions {
  /** QUERY_TAG of this statement (`gatehouse:<email>`), shown in Snowflake's query history. */
  queryTag?: string;
  /**
   * Column names to report instead of Snowflake's: the names PostgreSQL would give the
   * statement Gatehouse decided (the dialect emitter's columnNames), since Snowflake upper-cases.
   */
  columnNames?: string[];
  /** Compile only (the SDK's describeOnly): the result's columns, no rows, nothing run. */
  describeOnly?: boolean;
}

export type ExecuteOutcome = { rowCount: number; command: string } | { error: { sqlstate: string; message: string; warehouseCode?: string } };

export interface SnowflakeConnection {
  execute(sql: string, params: (string | null)[], handlers: RowHandlers, opts?: ExecuteOptions): Promise<ExecuteOutcome>;
  /** Cancels the running statement (Snowflake abort-request); its execute() ends with 57014. */
  cancel(): Promise<void>;
  /** Logs the session out. */
  close(): Promise<void>;
  /** Whether the session still answers (a heartbeat). */
  healthy(): Promise<boolean>;
}

let loaded: Promise<Sdk> | undefined;

/** The snowflake-sdk module, loaded once with platform detection off and its logging kept quiet. */
export function loadSnowflakeSdk(): Promise<Sdk> {
  loaded ??= (async () => {
    process.env.SNOWFLAKE_DISABLE_PLATFORM_DETECTION = 'true';
    // One telemetry POST per sign-in otherwise (to the same account URL); nothing Gatehouse needs.
    process.env.SF_TELEMETRY_DISABLE_CONNECTION_SHAPE ??= 'true';
    const mod = await import('snowflake-sdk');
    const sdk = (mod as { default?: Sdk }).default ?? mod;
    const drop = () => undefined;
    sdk.configure({
      logLevel: 'ERROR',
      customLogger: { error: drop, warn: drop, info: drop, debug: drop, trace: drop },
    });
    return sdk;
  })();
  return loaded;
}

/** Opens one Snowflake session. Sign-in failures are 08001 naming the connection, with Snowflake's reason. */
export async function connectSnowflake(creds: SnowflakeCredentials, opts: SnowflakeConnectOptions = {}): Promise<SnowflakeConnection> {
  const sdk = await loadSnowflakeSdk();
  const name = opts.connectionName ?? 'snowflake';
  const options: Record<string, unknown> = {
    account: creds.account,
    username: creds.user,
    role: creds.role,
    warehouse: creds.warehouse,
    database: creds.database,
    schema: creds.schema,
    application: 'Gatehouse',
    // Rows are pulled at the client's pace: few buffered in the SDK's stream.
    rowStreamHighWaterMark: 10,
    // Otherwise a NULL fetched as string arrives as the text 'NULL' (a module-wide SDK setting).
    representNullAsStringNull: false,
  };
  if (creds.accessUrl) options.accessUrl = creds.accessUrl;
  if (creds.privateKey) {
    options.authenticator = 'SNOWFLAKE_JWT';
    options.privateKey = creds.privateKey;
    if (creds.privateKeyPassphrase) options.privateKeyPass = creds.privateKeyPassphrase;
  } else if (creds.password !== undefined) {
    options.password = creds.password;
  } else {
    throw new GatehouseError('08001', `connection ${name}: no password or private key configured for the Snowflake user`);
  }
  for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
  let conn: SdkConnection;
  try {
    conn = sdk.createConnection(options);
    // connect(), not connectAsync(): the latter resolves on some sign-in failures and reports them
    // only to its optional callback (connection.js); connect() routes every failure to the callback.
    await new Promise<void>((resolve, reject) => conn.connect((err: unknown) => (err ? reject(err) : resolve())));
  } catch (e) {
    const err = e as { message?: string; code?: string };
    throw new GatehouseError('08001', `connection ${name}: Snowflake sign-in failed: ${err.message ?? 'unknown error'}`, {
      detail: err.code ? `Snowflake error ${err.code}` : undefined,
    });
  }
  const session = new Session(conn, name);
  // TIME values reach the driver as text in TIME_OUTPUT_FORMAT: ask for microseconds (PostgreSQL's
  // precision) instead of the default whole seconds.
  const setup = [`ALTER SESSION SET TIME_OUTPUT_FORMAT = 'HH24:MI:SS.FF6'`];
  if (opts.queryTag !== undefined) setup.push(`ALTER SESSION SET QUERY_TAG = ${snowflakeString(opts.queryTag)}`);
  for (const sql of setup) {
    const out = await session.execute(sql, [], discardRows);
    if ('error' in out) {
      await session.close();
      throw new GatehouseError('08001', `connection ${name}: Snowflake session setup failed: ${out.error.message}`);
    }
  }
  return session;
}

const discardRows: RowHandlers = { onColumns: () => undefined, onRow: () => true, resume: async () => undefined };

/** A Snowflake single-quoted string: backslash is an escape character there, so it doubles too. */
export function snowflakeString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

class Session implements SnowflakeConnection {
  private current: SdkStatement | undefined;
  private canceled = false;
  constructor(
    private readonly conn: SdkConnection,
    private readonly name: string,
  ) {}

  async execute(sql: string, params: (string | null)[], handlers: RowHandlers, opts: ExecuteOptions = {}): Promise<ExecuteOutcome> {
    this.canceled = false;
    let stmt: SdkStatement;
    try {
      stmt = await new Promise<SdkStatement>((resolve, reject) => {
        const s = this.conn.execute({
          sqlText: sql,
          binds: params,
          streamResult: true,
          rowMode: 'array',
          // Numbers as Snowflake's own digits (NUMBER(38,s) does not fit a JS number), booleans,
          // JSON and binary as text; dates and timestamps come as dates with their nanoseconds.
          fetchAsString: ['Number', 'Boolean', 'JSON', 'Buffer'],
          parameters: opts.queryTag !== undefined ? { QUERY_TAG: opts.queryTag } : undefined,
          ...(opts.describeOnly ? { describeOnly: true } : {}),
          complete: (err: unknown, done: SdkStatement) => (err ? reject(err) : resolve(done)),
        });
        this.current = s;
      });
    } catch (e) {
      this.current = undefined;
      return { error: this.mapError(e) };
    }
    try {
      const updated = stmt.getNumUpdatedRows?.();
      const columns = (stmt.getColumns?.() ?? []) as SdkColumn[];
      if (typeof updated === 'number' && isDml(sql)) return { rowCount: updated, command: firstKeyword(sql) };
      const mapped = columns.map(mapColumn);
      handlers.onColumns(
        mapped.map((m, i) => ({
          name: opts.columnNames?.[i] ?? columns[i].getName(),
          tableOid: 0,
          columnAttr: 0,
          typeOid: m.typeOid,
          typeSize: m.typeSize,
          typeModifier: m.typeModifier,
          format: 0 as const,
        })),
      );
      if (opts.describeOnly) return { rowCount: 0, command: 'DESCRIBE' };
      let rowCount = 0;
      const stream = stmt.streamRows();
      // for await pulls one row at a time: while we wait on resume(), the SDK's stream fills to its
      // high-water mark and stops fetching result chunks, so the client's reading pace is the pace.
      for await (const row of stream as AsyncIterable<unknown[]>) {
        rowCount++;
        const values = row.map((v, i) => (v === null || v === undefined ? null : mapped[i].text(v)));
        if (!handlers.onRow(values)) await handlers.resume();
      }
      if (this.canceled) return { error: { sqlstate: '57014', message: 'canceling statement due to user request' } };
      return { rowCount, command: isDml(sql) ? firstKeyword(sql) : 'SELECT' };
    } catch (e) {
      return { error: this.mapError(e) };
    } finally {
      this.current = undefined;
    }
  }

  async cancel(): Promise<void> {
    const s = this.current;
    if (!s) return;
    this.canceled = true;
    await new Promise<void>((resolve) => s.cancel(() => resolve()));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      try {
        this.conn.destroy(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  async healthy(): Promise<boolean> {
    try {
      return this.conn.isUp() && (await this.conn.isValidAsync());
    } catch {
      return false;
    }
  }

  private mapError(e: unknown): { sqlstate: string; message: string; warehouseCode?: string } {
    const err = e as { message?: string; code?: string | number; sqlState?: string };
    const code = err.code === undefined ? undefined : String(err.code);
    if (this.canceled) return { sqlstate: '57014', message: 'canceling statement due to user request', warehouseCode: code };
    return { sqlstate: sqlstateFor(code, err.sqlState), message: err.message ?? `Snowflake error on connection ${this.name}`, warehouseCode: code };
  }
}

// Snowflake error codes (data.code / err.code) with a PostgreSQL meaning.
const BY_CODE: Record<string, string> = {
  '000604': '57014', // SQL execution canceled
  '001003': '42601', // SQL compilation error: syntax error
  '002003': '42P01', // object does not exist or not authorized
  '000904': '42703', // invalid identifier
  '002140': '42883', // unknown function
  '002002': '42P07', // object already exists
  '100051': '22012', // division by zero
  '100038': '22P02', // numeric value is not recognized
  '100039': '22003', // numeric value out of range
  '100072': '23502', // NULL result in a non-nullable column
  '003001': '42501', // insufficient privileges
  '390112': '08006', // session expired and could not be renewed
  '390104': '08006', // session gone: sign in again
  '390114': '08006',
};
// Snowflake SQLSTATEs (ANSI/ODBC) that PostgreSQL spells differently.
const BY_SQLSTATE: Record<string, string> = {
  '42S02': '42P01',
  '42S22': '42703',
  '22018': '22P02',
  '42000': '42601',
};

/** The SQLSTATE a PostgreSQL client gets for a Snowflake error (err.code, err.sqlState). */
export function sqlstateFor(code: string | undefined, sqlState: string | undefined): string {
  if (code && BY_CODE[code]) return BY_CODE[code];
  if (sqlState && BY_SQLSTATE[sqlState]) return BY_SQLSTATE[sqlState];
  if (sqlState && /^[0-9A-Z]{5}$/.test(sqlState)) return sqlState;
  // The SDK's own faults (network, 4xxxxx codes): the warehouse was lost during the statement.
  if (code && /^4\d{5}$/.test(code)) return '08006';
  return 'XX000';
}

function firstKeyword(sql: string): string {
  return (/^\s*([A-Za-z]+)/.exec(sql)?.[1] ?? 'SELECT').toUpperCase();
}

function isDml(sql: string): boolean {
  return /^(INSERT|UPDATE|DELETE|MERGE)$/.test(firstKeyword(sql));
}

interface SdkColumn {
  getName(): string;
  getType(): string;
  getScale(): number;
  getPrecision(): number;
}

interface MappedColumn {
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  /** The SDK's value for this column as PostgreSQL text. */
  text(v: unknown): string;
}

const asString = (v: unknown) => String(v);

/**
 * A Snowflake column as a PostgreSQL type (shared/reference/snowflake-sdk.md section 5). A type
 * with no PostgreSQL counterpart (geography, geometry, vector, anything new) is sent as text,
 * never dropped.
 */
export function mapColumn(c: SdkColumn): MappedColumn {
  const type = String(c.getType()).toLowerCase();
  switch (type) {
    case 'fixed': {
      const p = c.getPrecision() ?? 38;
      const s = c.getScale() ?? 0;
      if (s === 0 && p > 0 && p <= 18) return { typeOid: 20, typeSize: 8, typeModifier: -1, text: asString };
      return { typeOid: 1700, typeSize: -1, typeModifier: ((p << 16) | s) + 4, text: asString };
    }
    case 'real':
      return { typeOid: 701, typeSize: 8, typeModifier: -1, text: floatText };
    case 'text':
      return { typeOid: 25, typeSize: -1, typeModifier: -1, text: asString };
    case 'boolean':
      return { typeOid: 16, typeSize: 1, typeModifier: -1, text: (v) => (String(v).toUpperCase() === 'TRUE' || v === true || v === '1' ? 't' : 'f') };
    case 'date':
      return { typeOid: 1082, typeSize: 4, typeModifier: -1, text: (v) => dateText(v) };
    case 'time':
      return { typeOid: 1083, typeSize: 8, typeModifier: -1, text: asString };
    case 'timestamp_ntz':
      return { typeOid: 1114, typeSize: 8, typeModifier: -1, text: (v) => timestampText(v, false) };
    case 'timestamp_ltz':
    case 'timestamp_tz':
      return { typeOid: 1184, typeSize: 8, typeModifier: -1, text: (v) => timestampText(v, true) };
    case 'binary':
      return { typeOid: 17, typeSize: -1, typeModifier: -1, text: (v) => `\\x${(Buffer.isBuffer(v) ? v.toString('hex') : String(v)).toLowerCase()}` };
    case 'variant':
    case 'object':
    case 'array':
    case 'map':
      return { typeOid: 3802, typeSize: -1, typeModifier: -1, text: (v) => (typeof v === 'string' ? v : JSON.stringify(v)) };
    default:
      return { typeOid: 25, typeSize: -1, typeModifier: -1, text: (v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v))) };
  }
}

/** Snowflake prints infinities as inf; PostgreSQL reads Infinity. */
function floatText(v: unknown): string {
  const s = String(v);
  if (/^inf$/i.test(s)) return 'Infinity';
  if (/^-inf$/i.test(s)) return '-Infinity';
  if (/^nan$/i.test(s)) return 'NaN';
  return s;
}

interface SfDate {
  getEpochSeconds?(): number;
  getNanoSeconds?(): number;
  getTimezone?(): unknown;
}

/** The SDK's date (UTC midnight) as PostgreSQL's YYYY-MM-DD. */
function dateText(v: unknown): string {
  const d = v as Date & SfDate;
  if (!(d instanceof Date)) return String(v);
  const secs = d.getEpochSeconds ? d.getEpochSeconds() : Math.floor(d.getTime() / 1000);
  return ymd(Math.floor(secs / 86400));
}

/**
 * The SDK's timestamp (epoch seconds + nanoseconds, exactly as Snowflake sent them) as PostgreSQL
 * text, in UTC for the zoned kinds. PostgreSQL keeps microseconds: the last three digits of a
 * nanosecond value are cut.
 */
function timestampText(v: unknown, zoned: boolean): string {
  const d = v as Date & SfDate;
  if (!(d instanceof Date)) return String(v);
  let secs = d.getEpochSeconds ? d.getEpochSeconds() : Math.floor(d.getTime() / 1000);
  const nanos = d.getNanoSeconds ? d.getNanoSeconds() : (d.getTime() % 1000) * 1e6;
  // The SDK may split a negative value as (floor seconds, positive nanos) or (trunc seconds, negative nanos).
  let micros = Math.floor(nanos / 1000);
  if (micros < 0) {
    secs -= 1;
    micros += 1_000_000;
  }
  const day = Math.floor(secs / 86400);
  const sod = secs - day * 86400;
  const hh = String(Math.floor(sod / 3600)).padStart(2, '0');
  const mm = String(Math.floor((sod % 3600) / 60)).padStart(2, '0');
  const ss = String(sod % 60).padStart(2, '0');
  const frac = micros ? `.${String(micros).padStart(6, '0').replace(/0+$/, '')}` : '';
  return `${ymd(day)} ${hh}:${mm}:${ss}${frac}${zoned ? '+00' : ''}`;
}

function ymd(daysSinceEpoch: number): string {
  const d = new Date(daysSinceEpoch * 86_400_000);
  const y = d.getUTCFullYear();
  const year = y > 0 ? String(y).padStart(4, '0') : String(1 - y).padStart(4, '0');
  const s = `${year}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
  return y > 0 ? s : `${s} BC`;
}
