// PostgreSQL protocol v3 messages as data, named as in the PostgreSQL docs
// (protocol-message-formats.html). decode.ts produces FrontendMessage values,
// encode.ts turns BackendMessage values into bytes; nothing else touches bytes.
import type { GatehouseError } from '../errors.ts';
import type { FieldDescription } from './sink.ts';

/** ReadyForQuery's transaction status: idle, in a transaction, in a failed transaction. */
export type TxStatus = 'I' | 'T' | 'E';

// ---- frontend: the untyped packets of the startup phase (no type byte) ----

/** Protocol version codes carried in the first packet's version field (55.7). */
export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export interface StartupMessage {
  type: 'StartupMessage';
  /** major << 16 | minor; anything but 3.x is refused by the connection. */
  protocolVersion: number;
  params: Record<string, string>;
}
export interface SSLRequest {
  type: 'SSLRequest';
}
export interface GSSENCRequest {
  type: 'GSSENCRequest';
}
export interface CancelRequest {
  type: 'CancelRequest';
  processId: number;
  secretKey: number;
}
export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

// ---- frontend: typed messages ----

export interface Query {
  type: 'Query';
  sql: string;
}
export interface Terminate {
  type: 'Terminate';
}
/**
 * 'p' is PasswordMessage, SASLInitialResponse or SASLResponse depending on the
 * authentication step, which only the connection knows: the decoder hands the
 * body over and decodeSASLInitialResponse / decodeSASLResponse read it.
 */
export interface PasswordMessage {
  type: 'PasswordMessage';
  body: Buffer;
}
export interface SASLInitialResponse {
  type: 'SASLInitialResponse';
  mechanism: string;
  /** undefined when the client sent length -1 (no initial response). */
  data: Buffer | undefined;
}
export interface SASLResponse {
  type: 'SASLResponse';
  data: Buffer;
}
/** A PasswordMessage answering AuthenticationCleartextPassword: the password (or token) as sent. */
export interface CleartextPassword {
  type: 'CleartextPassword';
  password: string;
}
export interface Parse {
  type: 'Parse';
  name: string;
  query: string;
  paramTypes: number[];
}
export interface Bind {
  type: 'Bind';
  portal: string;
  statement: string;
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
}
export interface Describe {
  type: 'Describe';
  kind: 'S' | 'P';
  name: string;
}
export interface Execute {
  type: 'Execute';
  portal: string;
  maxRows: number;
}
export interface Sync {
  type: 'Sync';
}
export interface Flush {
  type: 'Flush';
}
export interface Close {
  type: 'Close';
  kind: 'S' | 'P';
  name: string;
}
export interface CopyData {
  type: 'CopyData';
  data: Buffer;
}
export interface CopyDone {
  type: 'CopyDone';
}
export interface CopyFail {
  type: 'CopyFail';
  message: string;
}
/** 'F': recognised so it can be refused politely (0A000), never run. */
export interface FunctionCall {
  type: 'FunctionCall';
}
/**
 * A message whose frame was sound (so the stream stays in step) but whose body
 * was not: a missing NUL, bytes left over, invalid UTF-8. The connection answers
 * it with an ERROR 08P01, as PostgreSQL does for pq_getmsg* failures.
 */
export interface MalformedMessage {
  type: 'MalformedMessage';
  /** The type byte as a character ('Q', 'P', ...). */
  code: string;
  error: GatehouseError;
}

export type ExtendedQueryMessage = Parse | Bind | Describe | Execute | Close | Sync | Flush;
/** The messages of one extended-query batch (55.2.3): collected by the connection and run at Sync. */
export type ExtendedStep = Parse | Bind | Describe | Execute | Close;

export type TypedFrontendMessage =
  | Query
  | Terminate
  | PasswordMessage
  | ExtendedQueryMessage
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | MalformedMessage;

export type FrontendMessage = StartupPacket | TypedFrontendMessage;

// ---- backend ----

export type BackendMessage =
  | { type: 'AuthenticationOk' }
  | { type: 'AuthenticationCleartextPassword' }
  | { type: 'AuthenticationSASL'; mechanisms: string[] }
  | { type: 'AuthenticationSASLContinue'; data: string }
  | { type: 'AuthenticationSASLFinal'; data: string }
  | { type: 'ParameterStatus'; name: string; value: string }
  | { type: 'BackendKeyData'; processId: number; secretKey: number }
  | { type: 'NegotiateProtocolVersion'; newestMinor: number; unrecognizedOptions: string[] }
  | { type: 'ReadyForQuery'; status: TxStatus }
  | { type: 'RowDescription'; fields: FieldDescription[] }
  | { type: 'DataRow'; values: (string | null)[] }
  | { type: 'CommandComplete'; tag: string }
  | { type: 'EmptyQueryResponse' }
  | { type: 'ErrorResponse'; error: GatehouseError }
  | { type: 'NoticeResponse'; message: string; detail?: string; hint?: string }
  | { type: 'CopyOutResponse'; columns: number; format: 0 | 1 }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyDone' }
  | { type: 'ParseComplete' }
  | { type: 'BindComplete' }
  | { type: 'CloseComplete' }
  | { type: 'NoData' };

export type BackendMessageType = BackendMessage['type'];
