// Incremental framing and decoding of frontend messages (protocol v3, 55.7).
// Bytes arrive cut anywhere; push() them as they come and next() yields whole
// messages. A frame's length is checked from its header before the body is
// awaited, so a hostile length never makes us allocate or wait for it.
import { GatehouseError } from '../errors.ts';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  SSL_REQUEST_CODE,
  type FrontendMessage,
  type CleartextPassword,
  type SASLInitialResponse,
  type SASLResponse,
  type TypedFrontendMessage,
} from './messages.ts';

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH: startup packets are small, whatever maxMessageBytes says. */
export const MAX_STARTUP_PACKET_BYTES = 10_000;
/**
 * The largest message before sign-in (a password, a token, a SASL answer): PostgreSQL's
 * PG_MAX_AUTH_TOKEN_LENGTH, room for any identity provider's token.
 */
export const MAX_AUTH_MESSAGE_BYTES = 65_535;

const fatal = (message: string) => new GatehouseError('08P01', message, { severity: 'FATAL' });

/** Reads a message body; every failure is a GatehouseError 08P01 (the body, not the frame, is bad). */
export class BodyReader {
  private pos = 0;
  private static readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  byte(): string {
    this.need(1);
    return String.fromCharCode(this.buf[this.pos++]);
  }
  bytes(n: number): Buffer {
    if (n < 0) throw this.bad('negative length');
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw this.bad('string is not NUL-terminated');
    const raw = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    try {
      return BodyReader.utf8.decode(raw);
    } catch {
      throw this.bad('string is not valid UTF-8');
    }
  }
  /** Like PostgreSQL's pq_getmsgend: bytes left over mean the message was not what it claimed. */
  end(): void {
    if (this.pos !== this.buf.length) throw this.bad('unexpected bytes at the end of the message');
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw this.bad('message is shorter than its contents');
  }
  private bad(why: string): GatehouseError {
    return new GatehouseError('08P01', `invalid message format: ${why}`);
  }
}

export interface DecoderOptions {
  maxMessageBytes?: number;
}

export class FrontendDecoder {
  private chunks: Buffer[] = [];
  private total = 0;
  /** Startup packets carry no type byte; the first StartupMessage switches to typed messages. */
  private phase: 'startup' | 'typed' = 'startup';
  /** Set lower until sign-in (MAX_AUTH_MESSAGE_BYTES), then to the server's max_message_bytes. */
  maxMessageBytes: number;

  constructor(opts: DecoderOptions = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Bytes received and not yet decoded (for input flow control). */
  get bufferedBytes(): number {
    return this.total;
  }

  get inStartupPhase(): boolean {
    return this.phase === 'startup';
  }

  /**
   * The next whole message, or undefined until more bytes arrive.
   * Throws a FATAL GatehouseError (08P01) when the stream cannot be framed:
   * after that the connection must close.
   */
  next(): FrontendMessage | undefined {
    return this.phase === 'startup' ? this.nextStartup() : this.nextTyped();
  }

  private nextStartup(): FrontendMessage | undefined {
    if (this.total < 4) return undefined;
    const len = this.peekInt32(0);
    // 8 = length + version/request code; the limit keeps unauthenticated peers cheap.
    if (len < 8) throw fatal('invalid length of startup packet');
    if (len > Math.min(MAX_STARTUP_PACKET_BYTES, this.maxMessageBytes)) throw fatal('invalid length of startup packet');
    if (this.total < len) return undefined;
    const body = this.take(len).subarray(4);
    const r = new BodyReader(body);
    const code = r.int32();
    switch (code) {
      case SSL_REQUEST_CODE:
      case GSSENC_REQUEST_CODE:
        if (len !== 8) throw fatal('invalid length of startup packet');
        return { type: code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest' };
      case CANCEL_REQUEST_CODE: {
        if (len !== 16) throw fatal('invalid length of cancel request packet');
        return { type: 'CancelRequest', processId: r.int32(), secretKey: r.int32() };
      }
      default: {
        const params: Record<string, string> = {};
        try {
          // name\0value\0 ... \0 (55.7 StartupMessage)
          for (;;) {
            const name = r.cstring();
            if (name === '') break;
            params[name] = r.cstring();
          }
          r.end();
        } catch (e) {
          throw fatal(`invalid startup packet layout: ${(e as Error).message}`);
        }
        this.phase = 'typed';
        return { type: 'StartupMessage', protocolVersion: code, params };
      }
    }
  }

  private nextTyped(): TypedFrontendMessage | undefined {
    if (this.total < 5) return undefined;
    const typeByte = this.peekByte(0);
    const len = this.peekInt32(1);
    if (len < 4) throw fatal('invalid message length');
    if (len > this.maxMessageBytes) throw fatal('message too large');
    if (!KNOWN_TYPES.has(typeByte)) {
      const ch = typeByte >= 0x20 && typeByte < 0x7f ? `'${String.fromCharCode(typeByte)}' ` : '';
      throw fatal(`invalid frontend message type ${ch}(0x${typeByte.toString(16).padStart(2, '0')})`);
    }
    if (this.total < len + 1) return undefined;
    const frame = this.take(len + 1);
    return decodeTyped(String.fromCharCode(typeByte), frame.subarray(5), frame);
  }

  private peekByte(offset: number): number {
    let o = offset;
    for (const c of this.chunks) {
      if (o < c.length) return c[o];
      o -= c.length;
    }
    throw new Error('peek past end');
  }

  private peekInt32(offset: number): number {
    // Bitwise operators yield a signed int32, as the protocol's Int32 is.
    return (this.peekByte(offset) << 24) | (this.peekByte(offset + 1) << 16) | (this.peekByte(offset + 2) << 8) | this.peekByte(offset + 3);
  }

  /** Removes n bytes from the front; copies only when the bytes span chunks. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, k);
        filled += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.total -= n;
    return out;
  }
}

const KNOWN_TYPES = new Set([...'QXpPBDESHCdcfF'].map((c) => c.charCodeAt(0)));

/**
 * The frame each decoded Bind, Execute, Describe and Close arrived in, by the decoded
 * object's identity. The decoder read every byte of it (strict UTF-8 strings, no byte left
 * over), so encoding the message again gives these very bytes: the postgres connector relays
 * them as they came (pg-framing.ts extendedMessage) instead of encoding each message anew
 * (issue 17, the prepared path). Keyed by identity, so a message Gatehouse changed (a copy
 * with another name, a Parse with its decided text) has no frame and is encoded from its fields.
 */
const receivedFrames = new WeakMap<object, Buffer>();
const RELAYED_AS_RECEIVED = new Set(['B', 'E', 'D', 'C']);

/** The frame a decoded message arrived in, when it may be relayed as is (see receivedFrames). */
export function receivedFrame(m: object): Buffer | undefined {
  return receivedFrames.get(m);
}

function decodeTyped(code: string, body: Buffer, frame?: Buffer): TypedFrontendMessage {
  const r = new BodyReader(body);
  try {
    const msg = decodeBody(code, r, body);
    r.end();
    if (frame && RELAYED_AS_RECEIVED.has(code)) receivedFrames.set(msg, frame);
    return msg;
  } catch (e) {
    if (e instanceof GatehouseError) return { type: 'MalformedMessage', code, error: e };
    throw e;
  }
}

function decodeBody(code: string, r: BodyReader, body: Buffer): TypedFrontendMessage {
  switch (code) {
    case 'Q':
      return { type: 'Query', sql: r.cstring() };
    case 'X':
      return { type: 'Terminate' };
    case 'p':
      r.bytes(r.remaining);
      return { type: 'PasswordMessage', body };
    case 'P': {
      const name = r.cstring();
      const query = r.cstring();
      const n = r.int16();
      const paramTypes: number[] = [];
      for (let i = 0; i < n; i++) paramTypes.push(r.int32() >>> 0);
      return { type: 'Parse', name, query, paramTypes };
    }
    case 'B': {
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats = int16List(r);
      const n = r.int16();
      const params: (Buffer | null)[] = [];
      for (let i = 0; i < n; i++) {
        const len = r.int32();
        // Views into the frame, not copies: a Bind lives until its exchange is written upstream.
        params.push(len === -1 ? null : r.bytes(len));
      }
      const resultFormats = int16List(r);
      return { type: 'Bind', portal, statement, paramFormats, params, resultFormats };
    }
    case 'D':
      return { type: 'Describe', kind: statementOrPortal(r), name: r.cstring() };
    case 'E':
      return { type: 'Execute', portal: r.cstring(), maxRows: r.int32() };
    case 'S':
      return { type: 'Sync' };
    case 'H':
      return { type: 'Flush' };
    case 'C':
      return { type: 'Close', kind: statementOrPortal(r), name: r.cstring() };
    case 'd':
      // Copy the bytes out: the frame may be a view into a larger socket chunk.
      return { type: 'CopyData', data: Buffer.from(r.bytes(r.remaining)) };
    case 'c':
      return { type: 'CopyDone' };
    case 'f':
      return { type: 'CopyFail', message: r.cstring() };
    case 'F':
      r.bytes(r.remaining);
      return { type: 'FunctionCall' };
    default:
      throw new Error(`unreachable message type ${code}`);
  }
}

function int16List(r: BodyReader): number[] {
  const n = r.int16();
  if (n < 0) throw new GatehouseError('08P01', 'invalid message format: negative count');
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.int16());
  return out;
}

function statementOrPortal(r: BodyReader): 'S' | 'P' {
  const k = r.byte();
  if (k !== 'S' && k !== 'P') {
    throw new GatehouseError('08P01', `invalid message format: expected 'S' or 'P', got '${k}'`);
  }
  return k;
}

/** The body of a 'p' message sent in answer to AuthenticationSASL (55.7 SASLInitialResponse). */
export function decodeSASLInitialResponse(body: Buffer): SASLInitialResponse {
  const r = new BodyReader(body);
  const mechanism = r.cstring();
  const len = r.int32();
  const data = len === -1 ? undefined : Buffer.from(r.bytes(len));
  r.end();
  return { type: 'SASLInitialResponse', mechanism, data };
}

/** The body of a 'p' message sent in answer to AuthenticationSASLContinue. */
export function decodeSASLResponse(body: Buffer): SASLResponse {
  return { type: 'SASLResponse', data: Buffer.from(body) };
}

/** The body of a 'p' message sent in answer to AuthenticationCleartextPassword (55.7 PasswordMessage). */
export function decodeCleartextPassword(body: Buffer): CleartextPassword {
  const r = new BodyReader(body);
  const password = r.cstring();
  r.end();
  return { type: 'CleartextPassword', password };
}
