// A minimal PostgreSQL client over a raw socket, for tests that need what no
// driver gives: reading a result slowly with manual flow control (pause the
// socket, read some bytes, sleep, resume), counting DataRows without keeping
// them, closing mid-result, or writing bytes no driver would send.
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { scramClient, SCRAM_MECHANISM } from '../../src/identity/scram.ts';
import {
  commandTag,
  cstring,
  dataRowValues,
  errorFields,
  frame,
  MSG,
  parameterStatus,
  queryMessage,
  rowDescriptionNames,
} from '../../src/warehouses/pg-framing.ts';

const PROTOCOL_3_0 = 196608;

export interface RawConnectOptions {
  port: number;
  host?: string;
  user: string;
  password: string;
  database?: string;
  params?: Record<string, string>;
  /** Sign in over TLS: after SSLRequest/'S' (postgres) or from the first byte (direct, ALPN "postgresql"). */
  tls?: RawTlsOptions;
}

export interface RawTlsOptions {
  negotiation: 'postgres' | 'direct';
  /** The CA to verify the server with (verify-full against host 127.0.0.1); absent: no verification. */
  ca?: Buffer;
  /** ALPN protocols to offer; default ['postgresql']. */
  alpn?: string[];
}

/** The SSLRequest packet (55.7): length 8, code 80877103. */
export function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(80877103, 4);
  return b;
}

/** A StartupMessage for protocol 3.0 (55.7). */
export function startupMessage(params: Record<string, string>): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  const msg = Buffer.concat([head, ...Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
  msg.writeInt32BE(msg.length, 0);
  return msg;
}

/** Reads exactly one byte from a fresh socket (the answer to SSLRequest); rejects when it closes first. */
export function readByte(s: net.Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error('no answer to SSLRequest')), timeoutMs);
    const onData = (c: Buffer) => {
      if (c.length !== 1) return done(new Error(`expected one byte, got ${c.length}: ${c.toString('latin1')}`));
      done(undefined, String.fromCharCode(c[0]));
    };
    const onClose = () => done(new Error('closed before answering SSLRequest'));
    const done = (err?: Error, v?: string) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(v!);
    };
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/** A TLS socket to Gatehouse, negotiated either way, handshake done. */
export async function tlsSocket(port: number, opts: RawTlsOptions, host = '127.0.0.1'): Promise<tls.TLSSocket> {
  const verify = opts.ca ? { ca: opts.ca, rejectUnauthorized: true } : { rejectUnauthorized: false };
  const common = { ...verify, ALPNProtocols: opts.alpn ?? ['postgresql'], host };
  let socket: tls.TLSSocket;
  if (opts.negotiation === 'direct') socket = tls.connect({ ...common, port });
  else {
    const plain = await RawClient.socket(port, host);
    plain.write(sslRequest());
    const answer = await readByte(plain);
    if (answer !== 'S') {
      plain.destroy();
      throw new Error(`SSLRequest answered '${answer}'`);
    }
    socket = tls.connect({ ...common, socket: plain });
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

/** An ErrorResponse received from the server, as an Error with its fields. */
export class ServerError extends Error {
  constructor(readonly fields: Record<string, string>) {
    super(`${fields.S ?? 'ERROR'}: ${fields.M ?? '?'} (SQLSTATE ${fields.C ?? '?'})`);
  }
  get code(): string | undefined {
    return this.fields.C;
  }
  get severity(): string | undefined {
    return this.fields.S;
  }
}

export interface Throttle {
  /** Read this many bytes, then pause the socket... */
  bytesPerPause: number;
  /** ...for this long before resuming. */
  pauseMs: number;
}

export interface QueryOptions {
  throttle?: Throttle;
  /** Keep the first N DataRow values (decoded as text); the rest are only counted. */
  keepRows?: number;
  /** Called for every DataRow with the running count; returning true closes the socket (a client that goes away). */
  onRow?: (count: number) => boolean | void;
}

export interface QueryResult {
  rows: number;
  /** Bytes of DataRow messages, headers included. */
  dataRowBytes: number;
  /** Every byte received for this query. */
  totalBytes: number;
  firstRows: (string | null)[][];
  columns: string[];
  tags: string[];
  errors: Record<string, string>[];
  notices: Record<string, string>[];
  /** ReadyForQuery status; undefined when the connection ended first. */
  status?: string;
  /** Set when the connection closed before ReadyForQuery (by the server, or by onRow). */
  closedEarly?: boolean;
  ms: number;
}

type Handler = (type: number, body: Buffer) => void;

export class RawClient {
  readonly parameters = new Map<string, string>();
  backendKey?: { pid: number; secret: number };
  private rest?: Buffer;
  private handler?: Handler;
  private onBytes?: (n: number) => void;
  private closedWith?: Error;
  private onClose?: (e: Error) => void;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    this.closed = new Promise((resolve) => {
      const done = (err?: Error) => {
        this.closedWith ??= err ?? new Error('the server closed the connection');
        this.onClose?.(this.closedWith);
        resolve();
      };
      socket.on('error', (e) => done(e));
      socket.on('close', () => done());
    });
  }

  /** A connected socket, nothing sent yet. */
  static async socket(port: number, host = '127.0.0.1'): Promise<net.Socket> {
    const s = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    return s;
  }

  /** Connects, signs in with SCRAM-SHA-256 (or cleartext) and waits for ReadyForQuery. Throws ServerError on an ErrorResponse. */
  static async connect(opts: RawConnectOptions): Promise<RawClient> {
    const c = new RawClient(opts.tls ? await tlsSocket(opts.port, opts.tls, opts.host) : await RawClient.socket(opts.port, opts.host));
    try {
      await c.startup(opts);
    } catch (e) {
      c.socket.destroy();
      throw e;
    }
    return c;
  }

  private feed(chunk: Buffer): void {
    this.onBytes?.(chunk.length);
    let buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let off = 0;
    while (off + 5 <= buf.length) {
      const len = buf.readInt32BE(off + 1);
      if (len < 4) {
        this.socket.destroy(new Error(`invalid message length ${len} from the server`));
        return;
      }
      if (off + 1 + len > buf.length) break;
      const type = buf[off];
      const body = buf.subarray(off + 5, off + 1 + len);
      off += 1 + len;
      this.dispatch(type, body);
      if (this.socket.destroyed) return;
    }
    buf = buf.subarray(off);
    // Keep only the partial message (copied when small, so a big chunk is not kept alive).
    this.rest = buf.length === 0 ? undefined : buf.length < 65536 ? Buffer.from(buf) : buf;
  }

  private queue: { type: number; body: Buffer }[] = [];
  private waiter?: (m: { type: number; body: Buffer }) => void;

  private dispatch(type: number, body: Buffer): void {
    if (this.handler) return this.handler(type, body);
    const m = { type, body: Buffer.from(body) };
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(m);
    } else this.queue.push(m);
  }

  /** The next message (outside a query()); rejects when the connection closes first. */
  next(timeoutMs = 10_000): Promise<{ type: number; body: Buffer }> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no message from the server within ${timeoutMs} ms`)), timeoutMs);
      this.waiter = (msg) => {
        clearTimeout(t);
        resolve(msg);
      };
      this.onClose = (e) => {
        clearTimeout(t);
        reject(e);
      };
    });
  }

  private async startup(opts: RawConnectOptions): Promise<void> {
    const params: [string, string][] = [['user', opts.user], ['database', opts.database ?? 'warehouse'], ...Object.entries(opts.params ?? {})];
    const head = Buffer.alloc(8);
    head.writeInt32BE(PROTOCOL_3_0, 4);
    const msg = Buffer.concat([head, ...params.flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
    msg.writeInt32BE(msg.length, 0);
    this.socket.write(msg);

    let scram: ReturnType<typeof scramClient> | undefined;
    let expected: string | undefined;
    for (;;) {
      const { type, body } = await this.next();
      if (type === MSG.ErrorResponse) throw new ServerError(errorFields(body));
      if (type === MSG.Authentication) {
        const code = body.readInt32BE(0);
        if (code === 0) continue;
        if (code === 3) this.socket.write(frame(0x70, cstring(opts.password)));
        else if (code === 10) {
          scram = scramClient(opts.password);
          const data = Buffer.from(scram.clientFirst);
          const len = Buffer.alloc(4);
          len.writeInt32BE(data.length);
          this.socket.write(frame(0x70, Buffer.concat([cstring(SCRAM_MECHANISM), len, data])));
        } else if (code === 11) {
          if (!scram) throw new Error('SASLContinue before SASL');
          const r = scram.respond(body.subarray(4).toString('utf8'));
          expected = r.expectedServerFinal;
          this.socket.write(frame(0x70, Buffer.from(r.clientFinal)));
        } else if (code === 12) {
          if (body.subarray(4).toString('utf8') !== expected) throw new Error('the server signature did not verify');
        } else throw new Error(`unsupported authentication request ${code}`);
      } else if (type === MSG.ParameterStatus) {
        const [k, v] = parameterStatus(body);
        this.parameters.set(k, v);
      } else if (type === MSG.BackendKeyData) {
        this.backendKey = { pid: body.readInt32BE(0), secret: body.readInt32BE(4) };
      } else if (type === MSG.ReadyForQuery) return;
    }
  }

  /**
   * Sends one simple Query (or the given frontend messages, e.g. an extended batch ending
   * in Sync) and reads its result up to ReadyForQuery, counting
   * DataRows without keeping them. With a throttle the socket is paused after
   * every `bytesPerPause` bytes for `pauseMs`: a slow reader, so the server must
   * hold back (TCP flow control) rather than buffer the result.
   */
  query(sql: string | Buffer, opts: QueryOptions = {}): Promise<QueryResult> {
    const started = performance.now();
    const r: QueryResult = { rows: 0, dataRowBytes: 0, totalBytes: 0, firstRows: [], columns: [], tags: [], errors: [], notices: [], ms: 0 };
    return new Promise<QueryResult>((resolve) => {
      let settled = false;
      const end = () => {
        if (settled) return;
        settled = true;
        this.handler = undefined;
        this.onBytes = undefined;
        this.onClose = undefined;
        r.ms = performance.now() - started;
        resolve(r);
      };
      let sincePause = 0;
      this.onBytes = (n) => {
        r.totalBytes += n;
        const t = opts.throttle;
        if (!t) return;
        sincePause += n;
        if (sincePause >= t.bytesPerPause) {
          sincePause = 0;
          this.socket.pause();
          void sleep(t.pauseMs).then(() => {
            if (!this.socket.destroyed) this.socket.resume();
          });
        }
      };
      this.handler = (type, body) => {
        switch (type) {
          case MSG.DataRow: {
            r.rows++;
            r.dataRowBytes += body.length + 5;
            if (r.firstRows.length < (opts.keepRows ?? 0)) r.firstRows.push(dataRowValues(body));
            if (opts.onRow?.(r.rows)) {
              r.closedEarly = true;
              this.socket.destroy();
              end();
            }
            break;
          }
          case MSG.RowDescription:
            r.columns = rowDescriptionNames(body);
            break;
          case MSG.CommandComplete:
            r.tags.push(commandTag(body));
            break;
          case MSG.ErrorResponse:
            r.errors.push(errorFields(body));
            break;
          case MSG.NoticeResponse:
            r.notices.push(errorFields(body));
            break;
          case MSG.ReadyForQuery:
            r.status = String.fromCharCode(body[0]);
            end();
            break;
          default:
            break;
        }
      };
      this.onClose = () => {
        r.closedEarly = true;
        end();
      };
      if (this.closedWith) {
        r.closedEarly = true;
        end();
        return;
      }
      this.socket.write(typeof sql === 'string' ? queryMessage(sql) : sql);
    });
  }

  /** Terminate and close. */
  async close(): Promise<void> {
    if (!this.socket.destroyed) this.socket.end(frame(0x58, Buffer.alloc(0)));
    await Promise.race([this.closed, sleep(2000).then(() => this.socket.destroy())]);
  }
}

/**
 * Writes bytes on a fresh socket and collects everything the server sends back
 * until it closes the connection (or the timeout): for garbage and malformed input.
 */
export async function sendRaw(
  port: number,
  bytes: Buffer,
  timeoutMs = 10_000,
): Promise<{ received: Buffer; errors: Record<string, string>[]; closed: boolean }> {
  const s = await RawClient.socket(port);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const closed = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    s.on('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    s.on('error', () => {});
    s.write(bytes);
  });
  s.destroy();
  const received = Buffer.concat(chunks);
  const errors: Record<string, string>[] = [];
  let off = 0;
  while (off + 5 <= received.length) {
    const len = received.readInt32BE(off + 1);
    if (len < 4 || off + 1 + len > received.length) break;
    if (received[off] === MSG.ErrorResponse) errors.push(errorFields(received.subarray(off + 5, off + 1 + len)));
    off += 1 + len;
  }
  return { received, errors, closed };
}
