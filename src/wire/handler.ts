import type { GatehouseError } from '../errors.ts';
import type { AuthFlow, Identity, SignInRequest } from '../identity/flow.ts';
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
  /** Whether the session runs over TLS (audited with the session). */
  tls: boolean;
}

/** A signed-in client's session, as the wire layer drives it. */
export interface ServerSession {
  /** ParameterStatus values to report after AuthenticationOk (server_version etc). */
  readonly parameterStatus: Record<string, string>;
  /** One simple Query message: every result goes to the sink; returns the ReadyForQuery status. */
  query(sql: string, sink: ResultSink): Promise<TxStatus>;
  /**
   * One extended-protocol message (Parse, Bind, Describe, Execute, Close), decided and passed
   * on; its responses go to the sink in order. False: it was refused or the exchange failed
   * (an ErrorResponse went to the sink): skip to Sync, as PostgreSQL does (55.2.3).
   */
  extended(msg: ExtendedStep, sink: ResultSink): Promise<boolean>;
  /** Flush: everything sent so far is answered now. */
  flush(sink: ResultSink): Promise<void>;
  /** Sync: ends the exchange; ReadyForQuery's status, and whether the exchange failed. */
  sync(sink: ResultSink): Promise<{ status: TxStatus; failed: boolean }>;
  /**
   * An error the wire layer answers itself after sign-in (a malformed message, the function
   * call protocol): audited; inside an extended exchange it ends the exchange as a failing
   * message would (the wire layer then skips to Sync).
   */
  protocolError(what: string, rule: string, error: GatehouseError, sink: ResultSink, inExchange: boolean): Promise<void>;
  /** Where the warehouse's asynchronous NotificationResponses (LISTEN) go: the client. */
  relayNotifications(sink: ResultSink): void;
  /** CancelRequest for this session's backend key. */
  cancel(): void;
  close(): Promise<void>;
}

/** The rest of Gatehouse, as the wire layer sees it. */
export interface ConnectionHandler {
  /**
   * The sign-in flow for a StartupMessage (SCRAM-SHA-256 today). Unknown users get a flow that
   * looks the same to the client and never succeeds.
   */
  signIn(request: SignInRequest): AuthFlow;
  /** After authentication, as the identity the flow established: open the session, or throw a GatehouseError (3D000, 42501, 08001) sent as FATAL. */
  openSession(startup: StartupInfo, identity: Identity): Promise<ServerSession>;
  /** Structured log of connection-level events (auth failures, protocol errors, a timeout that ended the connection: `limit`). */
  log(event: 'auth_failed' | 'auth_throttled' | 'protocol_error' | 'session_start' | 'session_end' | 'limit_reached', fields: Record<string, unknown>): void;
}
