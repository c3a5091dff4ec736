// ResultSink over a client socket. Writes are corked until the end of the event-loop
// turn (or ReadyForQuery) so a burst of small messages (DataRow per row, then the
// statement's end) leaves in one syscall; a write returns socket.write's answer so
// producers stop at the socket's high-water mark.
import type { Socket } from 'node:net';
import type { GatehouseError } from '../errors.ts';
import * as enc from './encode.ts';
import { type CopyInUpstream, type FieldDescription, type ResultSink, whenWritable } from './sink.ts';

export class SocketSink implements ResultSink {
  private corked = false;
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

  /** True once the client has gone (closed, errored or destroyed): stop producing. */
  get closed(): boolean {
    return this.gone || this.socket.destroyed || !this.socket.writable;
  }

  /** Writes framed backend bytes; false means "behind: await drain()" (or closed). */
  send(bytes: Buffer): boolean {
    if (this.closed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      // After this turn's I/O callbacks and promise jobs: a statement's rows, its
      // CommandComplete and the ReadyForQuery the connection writes after awaiting it leave
      // in one write (the connection also flushes at ReadyForQuery, as PostgreSQL does).
      setImmediate(this.uncorkLater);
    }
    return this.socket.write(bytes);
  }

  private readonly uncorkLater = () => this.uncork();

  /** Flushes whatever is corked now. */
  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
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
    // Corked bytes never drain: flush them before waiting.
    this.uncork();
    return this.closed ? Promise.resolve() : whenWritable(this.socket);
  }
}
