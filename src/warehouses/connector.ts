// The connector interface every warehouse that does not speak PostgreSQL implements (MySQL
// and MariaDB: mysql.ts; Snowflake: snowflake-warehouse.ts). Plain data in and out: SQL text and parameter values
// in; column types (as PostgreSQL FieldDescriptions), rows as PostgreSQL text values and
// errors as values with a SQLSTATE out. row-session.ts turns a connector session into a
// WarehouseSession (PostgreSQL's simple and extended protocols); row-warehouse.ts pools
// connector sessions per (connection, account) and serves them as a Warehouse.
import type { FieldDescription } from '../wire/sink.ts';
import type { WarehouseAccount } from './accounts.ts';
import type { TxStatus } from './types.ts';

/**
 * One account's sign-in. Handed to connect() each time a physical connection opens (today read
 * from password_env, later decrypted by the secrets module) and not kept by the connector
 * after the sign-in: only the pool's live connections hold a signed-in session.
 */
export interface Credentials {
  user: string;
  password?: string;
  /** Snowflake: the role the session takes, and key-pair sign-in (a PEM private key, its passphrase if encrypted). */
  role?: string;
  privateKey?: string;
  privateKeyPassphrase?: string;
}

/**
 * Where a connector gets an account's credentials: called each time it signs in (a session,
 * a cancel connection), the result used for that sign-in and dropped.
 */
export type CredentialSource = () => Credentials;

/** A warehouse error as a value: what the client gets in its ErrorResponse. */
export interface ConnectorError {
  sqlstate: string;
  message: string;
  detail?: string;
}

/**
 * A statement parameter: a string is a text value, a Buffer raw bytes (bytea), null SQL NULL.
 * Typed by the PostgreSQL type the client bound it as (0: unknown), so the connector can
 * write a number as a number and a date as a date.
 */
export interface ConnectorParam {
  value: string | Buffer | null;
  typeOid: number;
}

/** What a statement gives back, in order: a row description (if it returns rows), rows in batches, then its end or its error. */
export type ResultEvent =
  | { type: 'columns'; fields: FieldDescription[] }
  | { type: 'rows'; rows: (string | null)[][] }
  /** The statement ended: `affectedRows` for statements without rows (INSERT, UPDATE, DELETE). */
  | { type: 'complete'; affectedRows?: number }
  | { type: 'error'; error: ConnectorError };

/**
 * A running statement's results. Pull-based: the warehouse is read only as fast as next() is
 * called (the client's reading pace is the pace; a connector buffers at most a bounded batch).
 * return() ends it early: the rest is discarded and the warehouse asked to stop. A lost
 * connection rejects next() with a GatehouseError 08006.
 */
export type ResultStream = AsyncIterableIterator<ResultEvent>;

/** A statement described without running it (PostgreSQL's Describe of a prepared statement). */
export interface Description {
  /** PostgreSQL type OIDs of its parameters (0: unknown; the client binds text). */
  paramTypes: number[];
  /** Its row description; empty: it returns no rows (NoData). */
  fields: FieldDescription[];
}

export interface ConnectorSessionOptions {
  /** The session must not write (the warehouse session is made read-only). */
  readOnly: boolean;
  account: WarehouseAccount;
}

/** One signed-in warehouse session (a physical connection). */
export interface ConnectorSession {
  /** I: no transaction; T: in a transaction. From the warehouse's own status flags, never guessed from SQL text. */
  readonly txStatus: TxStatus;
  /** Connected, signed in and idle (a pool may hand it out). */
  readonly usable: boolean;
  readonly serverVersion?: string;
  /** Called once when the connection dies (the warehouse closed it, or close()). */
  onDead?: () => void;
  /**
   * Who is behind the statements from now on (a pooled session serves one person at a time):
   * the warehouse's query history shows them (a leading comment on MySQL, QUERY_TAG on Snowflake).
   */
  setUser(user: string | undefined): void;
  /** Runs one statement (never several: the connector refuses multi-statement text). `params` fill its placeholders in order. */
  execute(sql: string, params: readonly ConnectorParam[]): ResultStream;
  /** Parameter and column types of a statement, without running it; an error as a value. */
  describe(sql: string): Promise<Description | { error: ConnectorError }>;
  /** Asks the warehouse to stop the running statement (it then ends with 57014). */
  cancel(): Promise<void>;
  /** Back to the state of a new session, its settings applied again (pooling); false: it could not be, close it. */
  reset(): Promise<boolean>;
  close(): Promise<void>;
}

export interface Connector {
  readonly kind: string;
  /** Opens and signs in one session; rejects with a GatehouseError 08001 naming the connection (never the password). */
  connect(credentials: CredentialSource, opts: ConnectorSessionOptions): Promise<ConnectorSession>;
  /** Whether the warehouse answers, signed in as these credentials (health checks, /healthz). */
  health(credentials: CredentialSource): Promise<{ ok: true; serverVersion?: string } | { ok: false; error: ConnectorError }>;
}

/** The hook that turns a decided statement into the warehouse's SQL (the dialect emitter; passthrough today). */
export interface EmittedSql {
  sql: string;
  /** For each placeholder of `sql`, in order, which client parameter ($n, 1-based) it stands for. */
  params: number[];
}
