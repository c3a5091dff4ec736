// ResultSink over a client socket. Bytes are gathered until ReadyForQuery (or the end of
// the event-loop turn, or 64 KiB) and leave in one write of one buffer: a statement's
// answer and its ReadyForQuery are one system call, without the stream's cork/writev
// machinery. A write returns whether the socket can take more, so producers stop at the
// socket's high-water mark.
import type { Socket } from 'node:net';
import type { GatehouseError } from '../errors.ts';
import * as enc from './encode.ts';
import { type CopyInUpstream, type FieldDescription, type ResultSink, whenWritable } from './sink.ts';

/** Gathered bytes are written once they reach this size, so a long result streams in 64 KiB writes. */
const GATHER_BYTES = 64 * 1024;

export class SocketSink implements ResultSink {
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  /** A flush at the end of this event-loop turn is scheduled. */
  private flushScheduled = false;
  private gone = false;

  constructor(
    private readonly socket: Socket,
    /** The connection feeds the client's COPY FROM STDIN messages to the warehouse. */
    private readonly onCopyIn?: (upstream: CopyInUpstream) => void,
  ) {
    socket.once('close', () => {
      this.gone = true;
    });
  }

  /** The client is not reading: the socket holds more than its high-water mark (or gathered bytes wait). */
  get behind(): boolean {
    return this.socket.writableNeedDrain || this.gatheredBytes >= GATHER_BYTES;
  }

  /** True once the client has gone (closed, errored or destroyed): stop producing. */
  get closed(): boolean {
    return this.gone || this.socket.destroyed || !this.socket.writable;
  }

  /**
   * Gathers framed backend bytes (the caller must not change them afterwards); false means
   * "behind: await drain()" (or closed).
   */
  send(bytes: Buffer): boolean {
    if (this.closed) return false;
    this.gathered.push(bytes);
    this.gatheredBytes += bytes.length;
    if (this.gatheredBytes >= GATHER_BYTES) return this.uncork();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After this turn's I/O callbacks and promise jobs: a statement's rows, its
      // CommandComplete and the ReadyForQuery the connection writes after awaiting it leave
      // in one write (the connection also flushes at ReadyForQuery, as PostgreSQL does).
      setImmediate(this.flushLater);
    }
    return !this.socket.writableNeedDrain;
  }

  private readonly flushLater = () => {
    this.flushScheduled = false;
    this.uncork();
  };

  /** Writes whatever is gathered now, as one buffer; false means the socket is behind. */
  uncork(): boolean {
    if (this.gathered.length === 0) return !this.socket.writableNeedDrain;
    const bytes = this.gathered.length === 1 ? this.gathered[0] : Buffer.concat(this.gathered, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    if (this.closed) return false;
    return this.socket.write(bytes);
  }

  relay(framedMessages: Buffer): boolean {
    return this.send(framedMessages);
  }
  rowDescription(fields: FieldDescription[]): boolean {
    return this.send(enc.rowDescription(fields));
  }
  dataRow(values: (string | null)[]): boolean {
    return this.send(enc.dataRow(values));
  }
  commandComplete(tag: string): boolean {
    return this.send(enc.commandComplete(tag));
  }
  emptyQuery(): boolean {
    return this.send(enc.emptyQueryResponse());
  }
  copyOutResponse(columns: number): boolean {
    return this.send(enc.copyOutResponse(columns));
  }
  copyData(data: Buffer): boolean {
    return this.send(enc.copyData(data));
  }
  copyDone(): boolean {
    return this.send(enc.copyDone());
  }
  notice(message: string, detail?: string): boolean {
    return this.send(enc.noticeResponse(message, detail));
  }
  error(err: GatehouseError): boolean {
    return this.send(enc.errorResponse(err));
  }

  copyIn(response: Buffer, upstream: CopyInUpstream): void {
    if (!this.onCopyIn) {
      upstream.write(enc.copyFail('COPY FROM STDIN is not supported on this connection'));
      return;
    }
    // The response first: the client starts sending CopyData only after it.
    this.onCopyIn(upstream);
    this.send(response);
    this.uncork();
  }

  /** Resolves when the socket can take more, or at once if it already can or the client has gone. */
  drain(): Promise<void> {
    // Gathered bytes never drain: write them before waiting.
    this.uncork();
    return this.closed ? Promise.resolve() : whenWritable(this.socket);
  }
}
