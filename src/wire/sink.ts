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
