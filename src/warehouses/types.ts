import type { ExtendedStep } from '../wire/messages.ts';
import type { ResultSink } from '../wire/sink.ts';
import type { StatementKind } from '../policy/decision.ts';
import type { WarehouseAccount } from './accounts.ts';

/** PostgreSQL ReadyForQuery transaction status. */
export type TxStatus = 'I' | 'T' | 'E';

/** One statement the policy allowed, as it will be sent to the warehouse. */
export interface WarehouseStatement {
  sql: string;
  kind: StatementKind;
  /** A plain row-returning query (SELECT/VALUES/TABLE): may be read through a cursor. */
  returnsRows: boolean;
  /** For COPY (query) TO STDOUT: the inner query and the COPY options text, so a
   *  warehouse without COPY (MySQL, Snowflake: not built yet) can produce CopyData itself. */
  copyOut?: { query: string; format: 'text' | 'csv'; header: boolean; delimiter?: string };
}

/** Startup parameters that may reach a warehouse (DESIGN 3): never `options`, never search_path. */
export const FORWARDED_PARAMS = ['application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'extra_float_digits'] as const;
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

export interface WarehouseSessionOptions {
  /** Only the allowlisted startup parameters (application_name, client_encoding, DateStyle, TimeZone, extra_float_digits). */
  params: Record<string, string>;
  /** Raw SQL from this session must not write (sets default_transaction_read_only on the upstream). */
  readOnly: boolean;
  /** The warehouse account the session signs in as (accounts.ts accountFor); querier when absent. */
  account?: WarehouseAccount;
}

export interface WarehouseSession {
  /**
   * Run statements decided together (one simple Query) and write every result
   * message to the sink, except ReadyForQuery: the returned status is for that.
   * Upstream errors are relayed as ErrorResponse; a lost upstream rejects with a
   * GatehouseError (08006) after which the session is unusable.
   */
  run(statements: WarehouseStatement[], sink: ResultSink): Promise<TxStatus>;
  /**
   * One extended-query batch that policy allowed (every Parse carries the decided SQL, every
   * statement name was checked): sent with Sync, every response relayed byte for byte except
   * ReadyForQuery, whose status is returned. Absent: the warehouse has no extended protocol.
   */
  runExtended?(batch: ExtendedStep[], sink: ResultSink): Promise<TxStatus>;
  readonly txStatus: TxStatus;
  /** The warehouse's own server_version (its ParameterStatus), announced to the client. */
  readonly serverVersion?: string;
  /** Asks the warehouse to cancel the running statement (a client's CancelRequest); it then ends with 57014. */
  cancel?(): void | Promise<void>;
  close(): Promise<void>;
}

export interface Warehouse {
  readonly kind: string;
  /** Checks the account (least privilege) and reachability; throws GatehouseError. */
  start(): Promise<void>;
  openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession>;
  close(): Promise<void>;
}
