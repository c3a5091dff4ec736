import type { GatehouseError } from '../errors.ts';

/** A column as RowDescription describes it. */
export interface FieldDescription {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: 0 | 1;
}

/**
 * Where a statement's results go. The pipeline and the warehouses write to it;
 * only the wire layer turns it into bytes. `relay` takes backend messages that
 * are already framed (a warehouse relaying PostgreSQL's own bytes, never decoded).
 * A write returning false means the client is behind: await `drain()` before more.
 */
export interface ResultSink {
  relay(framedMessages: Buffer): boolean;
  rowDescription(fields: FieldDescription[]): boolean;
  dataRow(values: (string | null)[]): boolean;
  commandComplete(tag: string): boolean;
  emptyQuery(): boolean;
  copyOutResponse(columns: number): boolean;
  copyData(data: Buffer): boolean;
  copyDone(): boolean;
  notice(message: string, detail?: string): boolean;
  error(err: GatehouseError): boolean;
  drain(): Promise<void>;
  /**
   * The warehouse asks for COPY FROM STDIN data (its CopyInResponse, framed): relay it and pass
   * the client's CopyData, CopyDone or CopyFail to `upstream` until the copy ends. Absent: the
   * sink has no client to ask (the copy is refused).
   */
  copyIn?(response: Buffer, upstream: CopyInUpstream): void;
  /** True once the client has gone: stop producing. */
  readonly closed: boolean;
}

/** Where a client's COPY FROM STDIN messages go, framed as the client sent them. */
export interface CopyInUpstream {
  /** False: the warehouse is behind; await writable() before more. */
  write(framedMessages: Buffer): boolean;
  writable(): Promise<void>;
}

/**
 * A sink that takes every message and keeps none: for statements whose answer no client gets
 * (Gatehouse's own), with `overrides` for the messages the caller does read.
 */
export function discardingSink(overrides: Partial<ResultSink> = {}): ResultSink {
  return {
    relay: () => true,
    rowDescription: () => true,
    dataRow: () => true,
    commandComplete: () => true,
    emptyQuery: () => true,
    copyOutResponse: () => true,
    copyData: () => true,
    copyDone: () => true,
    notice: () => true,
    error: () => true,
    drain: async () => undefined,
    closed: false,
    ...overrides,
  };
}

/** Resolves once a socket that reported backpressure can take more, or has closed. */
export function whenWritable(socket: {
  writableNeedDrain: boolean;
  on(e: string, f: () => void): unknown;
  off(e: string, f: () => void): unknown;
}): Promise<void> {
  if (!socket.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
