// Framing of a PostgreSQL backend message stream (protocol v3, "Message Formats"):
// every message is a 1-byte type, an int32 length that counts itself but not the
// type, then the body. Relaying needs only this header: DataRow is never decoded,
// so a row reaches the client exactly as the warehouse encoded it.
import type { ExtendedStep } from '../wire/messages.ts';
import { receivedFrame } from '../wire/decode.ts';

/** Backend message type bytes Gatehouse looks at (the rest are relayed unread). */
export const MSG = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  ParameterStatus: 0x53, // S
  ReadyForQuery: 0x5a, // Z
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  RowDescription: 0x54, // T
  DataRow: 0x44, // D
  CommandComplete: 0x43, // C
  EmptyQueryResponse: 0x49, // I
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  NegotiateProtocolVersion: 0x76, // v
} as const;

/** A message longer than this is taken as a corrupt stream (PostgreSQL's own limit for a field is 1 GB). */
export const MAX_BACKEND_MESSAGE = 1 << 30;

export class FramingError extends Error {}

/**
 * Accumulates chunks as TCP delivers them and hands back only whole messages.
 * `feed` returns a buffer that starts at a message boundary and ends at one (possibly
 * empty); a partial message at the end is kept for the next chunk.
 */
export class BackendFramer {
  private rest: Buffer | undefined;

  feed(chunk: Buffer): Buffer {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const end = wholeMessagesEnd(buf);
    this.rest = end < buf.length ? buf.subarray(end) : undefined;
    // Copy the tail when it is small so a 64 KB chunk is not kept alive for a few bytes.
    if (this.rest && this.rest.length < 4096 && this.rest.buffer.byteLength > 65536) this.rest = Buffer.from(this.rest);
    return end === buf.length ? buf : buf.subarray(0, end);
  }

  /** Bytes held back waiting for the rest of a message. */
  get pending(): number {
    return this.rest?.length ?? 0;
  }
}

/** Offset just past the last whole message in buf. Throws FramingError on an impossible length. */
export function wholeMessagesEnd(buf: Buffer): number {
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readInt32BE(off + 1);
    if (len < 4 || len > MAX_BACKEND_MESSAGE) throw new FramingError(`invalid backend message length ${len}`);
    if (off + 1 + len > buf.length) break;
    off += 1 + len;
  }
  return off;
}

export interface MessageVisitor {
  /** Whether this message type is handled by `message` instead of being relayed; `length` is the whole message's, header included. */
  consumes(type: number, length: number): boolean;
  /** A run of consecutive whole messages to relay unchanged. */
  run(messages: Buffer): void;
  /** One consumed message: its type and body (without the 5-byte header). */
  message(type: number, body: Buffer): void;
}

/**
 * Walks a buffer of whole messages (as BackendFramer.feed returns), batching
 * consecutive relayed messages into one slice per run so a chunk of a thousand
 * DataRows is one relay call.
 */
export function visitMessages(buf: Buffer, v: MessageVisitor): void {
  let off = 0;
  let runStart = 0;
  while (off < buf.length) {
    const type = buf[off];
    const end = off + 1 + buf.readInt32BE(off + 1);
    if (v.consumes(type, end - off)) {
      if (off > runStart) v.run(buf.subarray(runStart, off));
      v.message(type, buf.subarray(off + 5, end));
      runStart = end;
    }
    off = end;
  }
  if (off > runStart) v.run(buf.subarray(runStart, off));
}

/** Each message of a buffer of whole messages, for code that is not on the hot path. */
export function* messages(buf: Buffer): Generator<{ type: number; body: Buffer; frame: Buffer }> {
  let off = 0;
  while (off + 5 <= buf.length) {
    const end = off + 1 + buf.readInt32BE(off + 1);
    yield { type: buf[off], body: buf.subarray(off + 5, end), frame: buf.subarray(off, end) };
    off = end;
  }
}

// ---- small encoders/decoders for the few messages Gatehouse itself reads or writes upstream ----

/** One frontend or backend message with a type byte. */
export function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

export function cstring(s: string): Buffer {
  if (s.includes('\0')) throw new FramingError('a protocol string cannot contain a NUL byte');
  return Buffer.from(`${s}\0`, 'utf8');
}

/** Simple Query ('Q'). */
export function queryMessage(sql: string): Buffer {
  return frame(0x51, cstring(sql));
}

/**
 * Frontend extended-query messages (55.7 Parse, Bind, Describe, Execute, Close, Sync), encoded
 * as received: a message exactly as the client sent it goes on in the frame it came in.
 */
export function extendedMessage(m: ExtendedStep): Buffer {
  const received = m.type === 'Parse' ? undefined : receivedFrame(m);
  if (received) return received;
  switch (m.type) {
    case 'Parse': {
      const types = Buffer.alloc(2 + 4 * m.paramTypes.length);
      types.writeInt16BE(m.paramTypes.length, 0);
      for (const [i, oid] of m.paramTypes.entries()) types.writeUInt32BE(oid >>> 0, 2 + 4 * i);
      return frame(0x50, Buffer.concat([cstring(m.name), cstring(m.query), types]));
    }
    case 'Bind': {
      const parts = [cstring(m.portal), cstring(m.statement), int16List(m.paramFormats)];
      const n = Buffer.alloc(2);
      n.writeInt16BE(m.params.length);
      parts.push(n);
      for (const v of m.params) {
        const len = Buffer.alloc(4);
        len.writeInt32BE(v === null ? -1 : v.length);
        parts.push(len);
        if (v !== null) parts.push(v);
      }
      parts.push(int16List(m.resultFormats));
      return frame(0x42, Buffer.concat(parts));
    }
    case 'Describe':
      return frame(0x44, Buffer.concat([Buffer.from(m.kind), cstring(m.name)]));
    case 'Execute': {
      const rows = Buffer.alloc(4);
      rows.writeInt32BE(m.maxRows | 0);
      return frame(0x45, Buffer.concat([cstring(m.portal), rows]));
    }
    case 'Close':
      return frame(0x43, Buffer.concat([Buffer.from(m.kind), cstring(m.name)]));
  }
}

/** Sync: one frame for every exchange (sockets copy what they are given; nothing writes into it). */
const SYNC = frame(0x53, Buffer.alloc(0));
export const syncMessage = (): Buffer => SYNC;

function int16List(values: number[]): Buffer {
  const b = Buffer.alloc(2 + 2 * values.length);
  b.writeInt16BE(values.length, 0);
  for (const [i, v] of values.entries()) b.writeInt16BE(v, 2 + 2 * i);
  return b;
}

/** The status byte of a ReadyForQuery body. */
export function readyStatus(body: Buffer): 'I' | 'T' | 'E' {
  const s = String.fromCharCode(body[0]);
  if (s !== 'I' && s !== 'T' && s !== 'E') throw new FramingError(`invalid ReadyForQuery status ${JSON.stringify(s)}`);
  return s;
}

/** ParameterStatus body: name and value. */
export function parameterStatus(body: Buffer): [string, string] {
  const a = body.indexOf(0);
  const b = body.indexOf(0, a + 1);
  return [body.toString('utf8', 0, a), body.toString('utf8', a + 1, b)];
}

/** ErrorResponse / NoticeResponse fields by their one-letter code (S, V, C, M, D, H, P, ...). */
export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < body.length && body[off] !== 0) {
    const code = String.fromCharCode(body[off]);
    const end = body.indexOf(0, off + 1);
    if (end < 0) break;
    out[code] = body.toString('utf8', off + 1, end);
    off = end + 1;
  }
  return out;
}

/** DataRow values as text (null for SQL NULL). For Gatehouse's own small queries, not for relaying. */
export function dataRowValues(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const out: (string | null)[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(off);
    off += 4;
    if (len < 0) out.push(null);
    else {
      out.push(body.toString('utf8', off, off + len));
      off += len;
    }
  }
  return out;
}

/** Column names of a RowDescription body. */
export function rowDescriptionNames(body: Buffer): string[] {
  const n = body.readInt16BE(0);
  const out: string[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const end = body.indexOf(0, off);
    out.push(body.toString('utf8', off, end));
    off = end + 1 + 18; // table oid 4, attnum 2, type oid 4, typlen 2, typmod 4, format 2
  }
  return out;
}

/** The command tag of a CommandComplete body. */
export function commandTag(body: Buffer): string {
  return body.toString('utf8', 0, body.length - 1);
}
