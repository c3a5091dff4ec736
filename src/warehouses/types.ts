import type { GatehouseError } from '../errors.ts';
import type { ExtendedStep, Parse } from '../wire/messages.ts';
import type { EmittedColumn } from '../sql/dialects/types.ts';
import type { ResultSink } from '../wire/sink.ts';
import type { TxStatus } from '../wire/messages.ts';

/** PostgreSQL ReadyForQuery transaction status (defined with the wire messages, below this layer). */
export type { TxStatus } from '../wire/messages.ts';

/** What a statement is, as policy classified it (the warehouse and the audit use it too). */
export type StatementKind =
  | 'select' // SELECT, VALUES, TABLE, WITH ... SELECT
  | 'explain'
  | 'copy_out'
  | 'set'
  | 'show'
  | 'reset'
  | 'transaction' // BEGIN, COMMIT, ROLLBACK, SAVEPOINT...
  | 'discard'
  | 'write' // DML
  | 'ddl'
  | 'other';

/** The warehouse account a session runs as: queriers' raw SQL, or the topics account (least privilege). */
export type WarehouseAccount = 'querier' | 'topics';

/** One statement the policy allowed, as it will be sent to the warehouse. */
export interface WarehouseStatement {
  sql: string;
  kind: StatementKind;
  /** A plain row-returning query (SELECT/VALUES/TABLE): may be read through a cursor. */
  returnsRows: boolean;
  /** For COPY (query) TO STDOUT: the inner query and the COPY options text, so a
   *  warehouse without COPY (MySQL, Snowflake: not built yet) can produce CopyData itself. */
  copyOut?: { query: string; format: 'text' | 'csv' | 'binary'; header: boolean; delimiter?: string };
  /**
   * Written by a dialect emitter (src/sql/dialects): for each `?` placeholder of `sql`, in
   * order, the client's parameter ($n, 1-based) it stands for. Absent: `sql` is the client's
   * own text (a querier's raw SQL), its placeholders read as the warehouse reads them.
   */
  params?: number[];
  /** The emitter's result columns: a connector types a column PostgreSQL calls boolean as boolean (MySQL answers 1/0). */
  columns?: EmittedColumn[];
  /**
   * A PostgreSQL session statement a warehouse without PostgreSQL's settings answers itself
   * (row-session.ts on a mysql connection, pg-settings.ts): kept per session, never sent there.
   * `sql` is then the statement in PostgreSQL as Gatehouse wrote it (audit; the topic catalog).
   */
  emulated?: EmulatedSession;
}

/** A session statement Gatehouse answers for a warehouse that is not PostgreSQL. Names lower case. */
export type EmulatedSession =
  | { op: 'set'; name: string; value: string; local: boolean }
  | { op: 'reset'; name: string }
  | { op: 'reset_all' }
  | { op: 'show'; name: string }
  | { op: 'discard'; what: 'all' | 'plans' | 'sequences' | 'temp' };

/**
 * A Parse as passed to a warehouse: `query` is the decided text, `planned` the decided
 * statement (a connector warehouse needs its placeholder order, result columns or emulation).
 */
export type PlannedParse = Parse & { planned?: WarehouseStatement };

/**
 * Startup parameters that may reach a warehouse (DESIGN 3): never `options`, never search_path,
 * and nothing that changes how the warehouse reads SQL text (client_encoding,
 * standard_conforming_strings, backslash_quote): those are pinned to what Gatehouse
 * parses with (PINNED_LEXING below), whatever the client asked.
 */
export const FORWARDED_PARAMS = ['application_name', 'DateStyle', 'TimeZone', 'extra_float_digits'] as const;
const FORWARDED_BY_LOWER = new Map<string, string>(FORWARDED_PARAMS.map((p) => [p.toLowerCase(), p]));

/**
 * The allowlisted subset of a client's startup parameters, under their canonical
 * names: libpq sends `timezone` and `datestyle` in lower case (PGTZ, PGDATESTYLE).
 */
export function forwardedParams(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    const name = FORWARDED_BY_LOWER.get(k.toLowerCase());
    if (name && !v.includes('\0')) out[name] = v;
  }
  return out;
}

/**
 * The settings under which Gatehouse's parser (libpg_query) reads SQL: every upstream
 * session starts with them, so the warehouse splits and reads client text exactly as
 * Gatehouse did (a querier's raw SQL is forwarded as written: DESIGN 3). With
 * standard_conforming_strings off, 'x\', '...' is one literal to Gatehouse and an
 * escaped quote to the warehouse. backslash_quote is libpg_query's default (and the
 * same as `on` under UTF8); client_encoding UTF8 is the only encoding Gatehouse decodes.
 */
export const PINNED_LEXING: readonly (readonly [string, string])[] = [
  ['client_encoding', 'UTF8'],
  ['standard_conforming_strings', 'on'],
  ['backslash_quote', 'safe_encoding'],
];

/**
 * Client encodings Gatehouse accepts at startup (names compared as PostgreSQL does: case
 * and punctuation ignored). UTF8 is what it decodes; SQL_ASCII does no conversion
 * against a UTF8 server, so its bytes are UTF8 bytes too (psql sends it under LANG=C).
 */
const ACCEPTED_CLIENT_ENCODINGS = new Set(['utf8', 'unicode', 'sqlascii']);

/** Whether a client's startup client_encoding is one Gatehouse reads as it does (absent: yes). */
export function acceptedClientEncoding(value: string | undefined): boolean {
  return value === undefined || ACCEPTED_CLIENT_ENCODINGS.has(value.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

export interface WarehouseSessionOptions {
  /** Only the allowlisted startup parameters (application_name, DateStyle, TimeZone, extra_float_digits). */
  params: Record<string, string>;
  /** Raw SQL from this session must not write (sets default_transaction_read_only on the upstream). */
  readOnly: boolean;
  /**
   * Which warehouse account serves the session (accounts.ts accountFor): 'topics' for
   * query_topics sessions (least privilege, with the governed timeouts), else the querier account.
   */
  account?: WarehouseAccount;
  /** The org's limits on one result (src/limits): past one the statement is canceled and the result ends with its error. */
  resultLimit?: ResultLimit;
  /** Who the session is for (the email): connector warehouses name them on every statement (a comment, a query tag). */
  user?: string;
}

/** Limits on one result's rows (DataRow, or CopyData of COPY TO STDOUT) and their bytes as sent; 0: none. */
export interface ResultLimit {
  rows: number;
  bytes: number;
  /** The error the client gets instead of the rest of the result (and the moment to record the limit). */
  exceeded(which: 'rows' | 'bytes'): GatehouseError;
}

/** An ErrorResponse the warehouse sent (and the client received), as a value. */
export interface UpstreamError {
  sqlstate: string;
  message: string;
  severity?: string;
}

/** How one exchange with the warehouse ended: ReadyForQuery's status and its first error. */
export interface RunOutcome {
  status: TxStatus;
  error?: UpstreamError;
  /** The exchange ended with Gatehouse's own failing message (abortExtended) and no earlier error. */
  aborted: boolean;
  /**
   * Gatehouse ended the run itself (a result limit): the client got Gatehouse's error, which the
   * warehouse's transaction may not reflect (the statement may have completed there), so the
   * statement path holds an open transaction aborted, as the client was told.
   */
  stopped?: boolean;
}

export interface WarehouseSession {
  /**
   * Run statements decided together (one simple Query) and write every result
   * message to the sink, except ReadyForQuery. Upstream errors are relayed as
   * ErrorResponse and returned in the outcome; a lost upstream rejects with a
   * GatehouseError (08006) after which the session is unusable.
   */
  run(statements: WarehouseStatement[], sink: ResultSink): Promise<RunOutcome>;
  /**
   * The extended query protocol, message by message as the client sends them (every Parse
   * carries the decided SQL, every name was checked): sendExtended writes them now (with a
   * Flush when asked) and relays every response as it arrives; syncExtended adds Sync and
   * resolves at ReadyForQuery; abortExtended ends the exchange as a failed message would.
   * Absent: the warehouse has no extended protocol.
   */
  sendExtended?(steps: ExtendedStep[], sink: ResultSink, flush: boolean): Promise<void>;
  syncExtended?(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome>;
  abortExtended?(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome>;
  /** An extended exchange was started (sendExtended) and not yet ended by Sync. */
  readonly inExtended?: boolean;
  /** Where asynchronous NotificationResponses (LISTEN) go. */
  onNotification?(relay: (framed: Buffer) => void): void;
  readonly txStatus: TxStatus;
  /** The warehouse's own server_version (its ParameterStatus), announced to the client. */
  readonly serverVersion?: string;
  /**
   * Asks the warehouse to cancel the running statement (a client's CancelRequest); it then ends
   * with 57014. With `reason` (Gatehouse's own statement timeout), the client gets that error
   * in place of the warehouse's 57014.
   */
  cancel?(reason?: GatehouseError): void | Promise<void>;
  close(): Promise<void>;
}

export interface Warehouse {
  readonly kind: string;
  /**
   * Whether the connection's stored credentials open with the master keys Gatehouse has
   * (decrypted once and dropped, no network): a connection with a problem is refused, alone.
   */
  credentialProblem?(): GatehouseError | undefined;
  /** Checks the account (least privilege) and reachability; throws GatehouseError. */
  start(): Promise<void>;
  openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession>;
  close(): Promise<void>;
}
