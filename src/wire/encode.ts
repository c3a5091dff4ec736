// Backend messages to bytes (protocol v3, 55.7). One small function per
// message and encode() switching on the message value. pg-protocol's
// serializer writes frontend messages only, so this is our own.
import type { GatehouseError } from '../errors.ts';
import type { TxStatus } from '../warehouses/types.ts';
import type { BackendMessage } from './messages.ts';
import type { FieldDescription } from './sink.ts';

/** Grows one buffer, then frames it with the type byte and Int32 length. */
class Writer {
  private buf: Buffer;
  private pos = 5;
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(size + 5, 64));
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }
  byte(ch: string): this {
    this.ensure(1);
    this.buf[this.pos++] = ch.charCodeAt(0);
    return this;
  }
  /** A string as UTF-8 with its NUL terminator. */
  cstring(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n + 1);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }
  bytes(b: Buffer | string): this {
    const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    this.ensure(buf.length);
    buf.copy(this.buf, this.pos);
    this.pos += buf.length;
    return this;
  }
  frame(type: string): Buffer {
    this.buf[0] = type.charCodeAt(0);
    this.buf.writeInt32BE(this.pos - 1, 1);
    return this.buf.subarray(0, this.pos);
  }
}

const empty = (type: string): Buffer => {
  const b = Buffer.alloc(5);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4, 1);
  return b;
};

// Authentication request codes (55.7 Authentication*).
const AUTH_OK = 0;
const AUTH_CLEARTEXT_PASSWORD = 3;
const AUTH_SASL = 10;
const AUTH_SASL_CONTINUE = 11;
const AUTH_SASL_FINAL = 12;

export const authenticationOk = (): Buffer => new Writer(4).int32(AUTH_OK).frame('R');
export const authenticationCleartextPassword = (): Buffer => new Writer(4).int32(AUTH_CLEARTEXT_PASSWORD).frame('R');

export function authenticationSASL(mechanisms: string[]): Buffer {
  const w = new Writer().int32(AUTH_SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.byte('\0').frame('R');
}
export const authenticationSASLContinue = (data: string): Buffer => new Writer().int32(AUTH_SASL_CONTINUE).bytes(data).frame('R');
export const authenticationSASLFinal = (data: string): Buffer => new Writer().int32(AUTH_SASL_FINAL).bytes(data).frame('R');

export const parameterStatus = (name: string, value: string): Buffer => new Writer().cstring(name).cstring(value).frame('S');

export const backendKeyData = (processId: number, secretKey: number): Buffer => new Writer(8).int32(processId).int32(secretKey).frame('K');

/** Sent when the client asks for protocol 3.x with x > 0 or for _pq_ options we do not know. */
export function negotiateProtocolVersion(newestMinor: number, unrecognizedOptions: string[]): Buffer {
  const w = new Writer().int32((3 << 16) | newestMinor).int32(unrecognizedOptions.length);
  for (const o of unrecognizedOptions) w.cstring(o);
  return w.frame('v');
}

export const readyForQuery = (status: TxStatus): Buffer => new Writer(1).byte(status).frame('Z');

export function rowDescription(fields: FieldDescription[]): Buffer {
  const w = new Writer(fields.length * 32).int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name).int32(f.tableOid).int16(f.columnAttr).int32(f.typeOid).int16(f.typeSize).int32(f.typeModifier).int16(f.format);
  }
  return w.frame('T');
}

export function dataRow(values: (string | null)[]): Buffer {
  // Sizes first, so the row is written into one exact allocation.
  let size = 7 + values.length * 4;
  const lens = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    lens[i] = v === null ? -1 : Buffer.byteLength(v, 'utf8');
    if (lens[i] > 0) size += lens[i];
  }
  const b = Buffer.allocUnsafe(size);
  b[0] = 0x44; // 'D'
  b.writeInt32BE(size - 1, 1);
  b.writeInt16BE(values.length, 5);
  let pos = 7;
  for (let i = 0; i < values.length; i++) {
    b.writeInt32BE(lens[i], pos);
    pos += 4;
    const v = values[i];
    if (v !== null && lens[i] > 0) pos += b.write(v, pos, 'utf8');
  }
  return b;
}

export const commandComplete = (tag: string): Buffer => new Writer().cstring(tag).frame('C');
export const emptyQueryResponse = (): Buffer => empty('I');

/** Fields of ErrorResponse/NoticeResponse (55.8): S, V, C, M, D, H, P when present. */
function fields(type: 'E' | 'N', f: { severity: string; sqlstate: string; message: string; detail?: string; hint?: string; position?: number }): Buffer {
  const w = new Writer();
  w.byte('S').cstring(f.severity);
  w.byte('V').cstring(f.severity);
  w.byte('C').cstring(f.sqlstate);
  w.byte('M').cstring(f.message);
  if (f.detail !== undefined) w.byte('D').cstring(f.detail);
  if (f.hint !== undefined) w.byte('H').cstring(f.hint);
  if (f.position !== undefined) w.byte('P').cstring(String(f.position));
  return w.byte('\0').frame(type);
}

/** Encodes the error as given: callers pass asClientError(e) for anything that is not already a client error. */
export const errorResponse = (err: GatehouseError): Buffer =>
  fields('E', {
    severity: err.severity,
    sqlstate: err.sqlstate,
    message: err.message,
    detail: err.detail,
    hint: err.hint,
    position: err.position,
  });

export const noticeResponse = (message: string, detail?: string, hint?: string): Buffer =>
  fields('N', { severity: 'NOTICE', sqlstate: '00000', message, detail, hint });

export function copyOutResponse(columns: number, format: 0 | 1 = 0): Buffer {
  const w = new Writer(3 + columns * 2).byte(format === 0 ? '\0' : '\x01').int16(columns);
  for (let i = 0; i < columns; i++) w.int16(format);
  return w.frame('H');
}
export function copyData(data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + data.length);
  b[0] = 0x64; // 'd'
  b.writeInt32BE(4 + data.length, 1);
  data.copy(b, 5);
  return b;
}
export const copyDone = (): Buffer => empty('c');
/** Frontend CopyDone: the same bytes as the backend's. */
export const copyDoneFrontend = (): Buffer => empty('c');
/** Frontend CopyFail ('f'), for ending a client's COPY FROM STDIN upstream. */
export const copyFail = (message: string): Buffer => new Writer(message.length + 1).cstring(message).frame('f');
export const parseComplete = (): Buffer => empty('1');
export const bindComplete = (): Buffer => empty('2');
export const closeComplete = (): Buffer => empty('3');
export const noData = (): Buffer => empty('n');

/** The single answer to SSLRequest / GSSENCRequest: one unframed byte. */
export const sslRefused = (): Buffer => Buffer.from('N');
/** SSLRequest accepted: the TLS handshake follows on the same socket. */
export const sslAccepted = (): Buffer => Buffer.from('S');

export function encode(msg: BackendMessage): Buffer {
  switch (msg.type) {
    case 'AuthenticationOk':
      return authenticationOk();
    case 'AuthenticationCleartextPassword':
      return authenticationCleartextPassword();
    case 'AuthenticationSASL':
      return authenticationSASL(msg.mechanisms);
    case 'AuthenticationSASLContinue':
      return authenticationSASLContinue(msg.data);
    case 'AuthenticationSASLFinal':
      return authenticationSASLFinal(msg.data);
    case 'ParameterStatus':
      return parameterStatus(msg.name, msg.value);
    case 'BackendKeyData':
      return backendKeyData(msg.processId, msg.secretKey);
    case 'NegotiateProtocolVersion':
      return negotiateProtocolVersion(msg.newestMinor, msg.unrecognizedOptions);
    case 'ReadyForQuery':
      return readyForQuery(msg.status);
    case 'RowDescription':
      return rowDescription(msg.fields);
    case 'DataRow':
      return dataRow(msg.values);
    case 'CommandComplete':
      return commandComplete(msg.tag);
    case 'EmptyQueryResponse':
      return emptyQueryResponse();
    case 'ErrorResponse':
      return errorResponse(msg.error);
    case 'NoticeResponse':
      return noticeResponse(msg.message, msg.detail, msg.hint);
    case 'CopyOutResponse':
      return copyOutResponse(msg.columns, msg.format);
    case 'CopyData':
      return copyData(msg.data);
    case 'CopyDone':
      return copyDone();
    case 'ParseComplete':
      return parseComplete();
    case 'BindComplete':
      return bindComplete();
    case 'CloseComplete':
      return closeComplete();
    case 'NoData':
      return noData();
  }
}
