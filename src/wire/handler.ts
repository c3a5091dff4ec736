import type { ScramVerifier } from '../identity/scram.ts';
import type { TxStatus } from '../warehouses/types.ts';
import type { ExtendedStep } from './messages.ts';
import type { ResultSink } from './sink.ts';

/** What the client said in its StartupMessage, after authentication succeeded. */
export interface StartupInfo {
  user: string;
  database: string;
  /** Every other startup parameter, as sent (the handler applies the allowlist). */
  params: Record<string, string>;
  remoteAddress: string;
}

/** A signed-in client's session, as the wire layer drives it. */
export interface ServerSession {
  /** ParameterStatus values to report after AuthenticationOk (server_version etc). */
  readonly parameterStatus: Record<string, string>;
  /** One simple Query message: every result goes to the sink; returns the ReadyForQuery status. */
  query(sql: string, sink: ResultSink): Promise<TxStatus>;
  /**
   * One extended-query batch (55.2.3): the Parse/Bind/Describe/Execute/Close messages a
   * client sent before Sync, in order. Every response goes to the sink except ReadyForQuery,
   * whose status is returned. A refusal answers ErrorResponse (the rest is skipped, as after
   * any error before Sync).
   */
  extended(batch: ExtendedStep[], sink: ResultSink): Promise<TxStatus>;
  /** CancelRequest for this session's backend key. */
  cancel(): void;
  close(): Promise<void>;
}

/** The rest of Gatehouse, as the wire layer sees it. */
export interface ConnectionHandler {
  /** The verifier to check the password against: unknown users get a mock one (same exchange, never succeeds). */
  verifierFor(user: string): { verifier: ScramVerifier; known: boolean };
  /** After authentication: open the session, or throw a GatehouseError (3D000, 42501, 08001) sent as FATAL. */
  openSession(startup: StartupInfo): Promise<ServerSession>;
  /** Structured log of connection-level events (auth failures, protocol errors). */
  log(event: 'auth_failed' | 'protocol_error' | 'session_start' | 'session_end', fields: Record<string, unknown>): void;
}
