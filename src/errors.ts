// Every refusal and fault is a value with a SQLSTATE until the wire layer encodes it.
// The SQLSTATEs Gatehouse emits, as one literal union (docs/errors.md lists them; a test keeps both in step).
export const SQLSTATES = {
  '08001': 'upstream connection could not be established',
  '08006': 'upstream connection failure during a statement',
  '08P01': 'protocol violation from the client',
  '0A000': 'feature not supported by Gatehouse',
  '22023': 'invalid parameter value',
  '25006': 'read-only transaction (write refused)',
  '25P02': 'transaction aborted by an earlier refusal',
  '25P03': 'idle-in-transaction session timeout (FATAL)',
  '26000': 'unknown prepared statement name (extended query protocol)',
  '28000': 'invalid authorization specification',
  '28P01': 'invalid password or unknown user',
  '3D000': 'unknown connection (database name)',
  '42501': 'refused by policy',
  '42601': 'syntax error',
  '42P01': 'unknown relation',
  '53300': 'too many connections',
  '54000': 'statement or result larger than its limit',
  '57014': 'statement canceled (a CancelRequest, the statement timeout, the authentication timeout)',
  '57P01': 'terminated by administrator command (shutdown)',
  '57P05': 'idle session timeout (FATAL)',
  '58030': 'the audit trail cannot be written',
  XX000: 'internal error',
} as const;
export type SqlState = keyof typeof SQLSTATES;

export type Severity = 'ERROR' | 'FATAL';

export class GatehouseError extends Error {
  readonly sqlstate: SqlState;
  readonly severity: Severity;
  readonly detail?: string;
  readonly hint?: string;
  /** 1-based character position in the statement text, as ErrorResponse 'P' wants. */
  readonly position?: number;
  constructor(sqlstate: SqlState, message: string, opts: { severity?: Severity; detail?: string; hint?: string; position?: number } = {}) {
    super(message);
    this.name = 'GatehouseError';
    this.sqlstate = sqlstate;
    this.severity = opts.severity ?? 'ERROR';
    this.detail = opts.detail;
    this.hint = opts.hint;
    this.position = opts.position;
  }
}

export function isGatehouseError(e: unknown): e is GatehouseError {
  return e instanceof GatehouseError;
}

/** Internal faults never reach the client with their text: it may hold upstream details. */
export function asClientError(e: unknown): GatehouseError {
  if (isGatehouseError(e)) return e;
  return new GatehouseError('XX000', 'internal error in Gatehouse; the statement was not run', {
    hint: 'the server log has the details',
  });
}
