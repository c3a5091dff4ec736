// The embedded warehouse (zero-setup demo): PGlite in a worker thread, driven with
// raw protocol messages so results relay like the postgres connector's.
// PGlite is ONE backend for every session (DESIGN 3), so:
//  - a FIFO lock gives the backend to one session's transaction at a time;
//  - on hand-over the previous session's settings are saved (pg_settings, source
//    'session') and the next one's restored after RESET ALL: nothing leaks;
//  - read-only sessions run as role gatehouse_reader (SELECT only) with
//    default_transaction_read_only, re-asserted after every statement;
//  - row results are read through a cursor in batches, waiting for the client
//    between batches, so neither thread ever holds a whole large result.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Connection, EmbeddedConnection } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { ExtendedStep } from '../wire/messages.ts';
import type { ResultSink } from '../wire/sink.ts';
import type { WorkerReply, WorkerRequest } from './embedded-worker.ts';
import { commandTag, errorFields, extendedMessage, frame, MSG, queryMessage, readyStatus, rowDescriptionNames, syncMessage, visitMessages } from './pg-framing.ts';
import { sqlLiteral } from './postgres.ts';
import { type TxStatus, type Warehouse, type WarehouseSession, type WarehouseSessionOptions, type WarehouseStatement, forwardedParams } from './types.ts';

export const FETCH_ROWS = 1000;
const CURSOR = '__gatehouse_cursor';
export const READER_ROLE = 'gatehouse_reader';
const READ_ONLY_GUARD = `SET ROLE ${READER_ROLE}; SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`;

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** The worker thread and its request/reply bookkeeping. */
class PgliteWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: unknown) => void }>();
  private failure?: GatehouseError;

  constructor(private readonly connection: string) {
    // The worker is TypeScript: load it through tsx's API, resolved from this package, so it
    // starts the same under `tsx` and vitest whatever the working directory.
    // (require.resolve gives the CommonJS entry; the ESM one sits next to it.)
    const tsxApi = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    const workerUrl = new URL('./embedded-worker.ts', import.meta.url).href;
    const boot = `import(${JSON.stringify(tsxApi)}).then((api) => api.tsImport(${JSON.stringify(workerUrl)}, ${JSON.stringify(import.meta.url)}))`;
    this.worker = new Worker(boot, { eval: true, name: `gatehouse-embedded-${connection}` });
    this.worker.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.bytes ? Buffer.from(r.bytes) : Buffer.alloc(0));
      else p.reject(new Error(r.error));
    });
    this.worker.on('error', (e) => this.fail(e.message));
    this.worker.on('exit', (code) => this.fail(`worker exited with code ${code}`));
  }

  private fail(reason: string): void {
    this.failure ??= new GatehouseError('08006', `the embedded warehouse of connection "${this.connection}" stopped`, {
      detail: reason,
    });
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  call(req: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** One simple Query: the raw backend bytes up to and including ReadyForQuery. */
  exec(sql: string): Promise<Buffer> {
    return this.execMessage(queryMessage(sql));
  }

  /** Any frontend message (CopyFail). */
  execMessage(m: Buffer): Promise<Buffer> {
    const ab = m.buffer.slice(m.byteOffset, m.byteOffset + m.byteLength) as ArrayBuffer;
    return this.call({ op: 'exec', message: ab }, [ab]);
  }

  async terminate(): Promise<void> {
    try {
      if (!this.failure) await this.call({ op: 'close' });
    } catch {
      // closing anyway
    }
    this.failure ??= new GatehouseError('08006', `the embedded warehouse of connection "${this.connection}" is closed`);
    await this.worker.terminate();
  }
}

/** ReadyForQuery status at the end of an exec reply. */
function lastStatus(bytes: Buffer): TxStatus {
  // ReadyForQuery is always the last message: 'Z', length 5, status.
  return readyStatus(bytes.subarray(bytes.length - 1));
}

/** Simple rows of Gatehouse's own queries; throws on an ErrorResponse. */
function decodeRows(bytes: Buffer): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let error: Record<string, string> | undefined;
  visitMessages(bytes, {
    consumes: () => true,
    run: () => {},
    message: (type, body) => {
      if (type === MSG.DataRow) {
        const n = body.readInt16BE(0);
        const row: (string | null)[] = [];
        let off = 2;
        for (let i = 0; i < n; i++) {
          const len = body.readInt32BE(off);
          off += 4;
          row.push(len < 0 ? null : body.toString('utf8', off, off + len));
          if (len > 0) off += len;
        }
        rows.push(row);
      } else if (type === MSG.ErrorResponse) error ??= errorFields(body);
    },
  });
  if (error) throw new Error(`${error.M} (SQLSTATE ${error.C})`);
  return rows;
}

/** An ErrorResponse with its position moved back by the length of text Gatehouse put before the statement. */
function shiftErrorPosition(body: Buffer, by: number): Buffer {
  const f = errorFields(body);
  if (!f.P || by === 0) return frame(MSG.ErrorResponse, body);
  const pos = Number(f.P) - by;
  if (pos > 0) f.P = String(pos);
  else delete f.P;
  const parts = Object.entries(f).map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8'));
  return frame(MSG.ErrorResponse, Buffer.concat([...parts, Buffer.from([0])]));
}

// ---- COPY TO STDOUT, produced from rows (PGlite's raw protocol does not stream COPY) ----

export interface CopyFormat {
  format: 'text' | 'csv';
  header: boolean;
  delimiter?: string;
}

const TEXT_ESCAPES: Record<number, number> = { 0x5c: 0x5c, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74, 0x08: 0x62, 0x0c: 0x66, 0x0b: 0x76 };

/** One field in COPY text format (PostgreSQL's CopyAttributeOutText). */
function textField(src: Buffer, start: number, end: number, delim: number, out: number[]): void {
  for (let i = start; i < end; i++) {
    const b = src[i];
    const esc = TEXT_ESCAPES[b];
    if (esc !== undefined) out.push(0x5c, esc);
    else if (b === delim) out.push(0x5c, b);
    else out.push(b);
  }
}

/** One field in COPY CSV format (CopyAttributeOutCSV): quoted when needed, quotes doubled. */
function csvField(src: Buffer, start: number, end: number, delim: number, out: number[]): void {
  let quote = start === end || (end - start === 2 && src[start] === 0x5c && src[start + 1] === 0x2e); // "" and \.
  for (let i = start; i < end && !quote; i++) {
    const b = src[i];
    if (b === delim || b === 0x22 || b === 0x0a || b === 0x0d) quote = true;
  }
  if (!quote) {
    for (let i = start; i < end; i++) out.push(src[i]);
    return;
  }
  out.push(0x22);
  for (let i = start; i < end; i++) {
    if (src[i] === 0x22) out.push(0x22);
    out.push(src[i]);
  }
  out.push(0x22);
}

/** A DataRow body as one line of COPY output. */
export function copyLine(dataRowBody: Buffer, f: CopyFormat): Buffer {
  const csv = f.format === 'csv';
  const delim = (f.delimiter ?? (csv ? ',' : '\t')).charCodeAt(0);
  const n = dataRowBody.readInt16BE(0);
  const out: number[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    if (i > 0) out.push(delim);
    const len = dataRowBody.readInt32BE(off);
    off += 4;
    if (len < 0) {
      if (!csv) out.push(0x5c, 0x4e); // \N; CSV NULL is an empty unquoted field
      continue;
    }
    (csv ? csvField : textField)(dataRowBody, off, off + len, delim, out);
    off += len;
  }
  out.push(0x0a);
  return Buffer.from(out);
}

/** The header line of COPY ... HEADER: column names, encoded like values. */
export function copyHeader(names: string[], f: CopyFormat): Buffer {
  const parts: Buffer[] = [Buffer.from([0, names.length])];
  for (const name of names) {
    const b = Buffer.from(name, 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32BE(b.length);
    parts.push(len, b);
  }
  const body = Buffer.concat(parts);
  body.writeInt16BE(names.length, 0);
  return copyLine(body, f);
}

// ---- the backend lock ----

/** How long a statement waits for another session's transaction before it is refused (55P03). */
const LOCK_WAIT_MS = Number(process.env.GATEHOUSE_EMBEDDED_LOCK_WAIT_MS ?? 30_000);

type Owner = object;

class BackendLock {
  private owner?: Owner;
  private readonly waiters: { owner: Owner; resolve: () => void }[] = [];

  holder(): Owner | undefined {
    return this.owner;
  }

  /** Rejects after timeoutMs of waiting: one idle open transaction must not hang everyone for ever. */
  acquire(owner: Owner, timeoutMs = Number.POSITIVE_INFINITY, onTimeout?: () => Error): Promise<void> {
    if (this.owner === owner) return Promise.resolve();
    if (!this.owner) {
      this.owner = owner;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = { owner, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            reject(onTimeout?.() ?? new Error('lock wait timed out'));
          }, timeoutMs)
        : undefined;
      this.waiters.push(waiter);
    });
  }

  release(owner: Owner): void {
    if (this.owner !== owner) return;
    const next = this.waiters.shift();
    this.owner = next?.owner;
    next?.resolve();
  }
}

export class EmbeddedWarehouse implements Warehouse {
  readonly kind = 'embedded';
  private worker?: PgliteWorker;
  private readonly lock = new BackendLock();
  /** The session whose settings are on the backend now. */
  private settingsOf?: EmbeddedSession;
  /** How long a statement waits for another session's transaction before 55P03. */
  lockWaitMs = LOCK_WAIT_MS;
  /** Milliseconds start() took (worker, PGlite, seed): reported by tests and logs. */
  startupMs = 0;

  constructor(
    private readonly conn: Connection,
    private readonly orgDir: string,
    private readonly logger?: Logger,
  ) {
    if (conn.target.kind !== 'embedded') throw new Error(`connection ${conn.name} is not an embedded connection`);
  }

  private get target(): EmbeddedConnection {
    return this.conn.target as EmbeddedConnection;
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    const w = new PgliteWorker(this.conn.name);
    this.worker = w;
    try {
      await w.call({ op: 'init' });
      for (const file of this.target.seed) {
        const sql = await readFile(path.resolve(this.orgDir, file), 'utf8');
        try {
          await w.call({ op: 'script', sql });
        } catch (e) {
          throw new GatehouseError('08001', `the seed ${file} of embedded connection "${this.conn.name}" failed`, {
            detail: (e as Error).message,
          });
        }
      }
      // The role read-only sessions run as: SELECT on what the seed created, nothing else.
      await w.call({
        op: 'script',
        sql: `DO $$ DECLARE s text; BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${READER_ROLE}') THEN CREATE ROLE ${READER_ROLE} NOLOGIN; END IF;
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO ${READER_ROLE}', s);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO ${READER_ROLE}', s);
  END LOOP;
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$`,
      });
    } catch (e) {
      await w.terminate();
      this.worker = undefined;
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('08001', `could not start the embedded warehouse of connection "${this.conn.name}"`, {
        detail: (e as Error).message,
      });
    }
    this.startupMs = performance.now() - t0;
    this.logger?.info({ connection: this.conn.name, org: this.conn.org, ms: Math.round(this.startupMs) }, 'embedded warehouse started');
  }

  /** The worker, or 08001 when start() has not succeeded. */
  backend(): PgliteWorker {
    if (!this.worker) throw new GatehouseError('08001', `the embedded warehouse of connection "${this.conn.name}" is not started`);
    return this.worker;
  }

  get connectionName(): string {
    return this.conn.name;
  }

  async openSession(opts: WarehouseSessionOptions): Promise<EmbeddedSession> {
    this.backend();
    return new EmbeddedSession(this, opts);
  }

  /**
   * Gives the backend to a session (waiting for another's transaction to end) and makes
   * the backend's settings that session's own.
   */
  async acquire(s: EmbeddedSession): Promise<void> {
    await this.lock.acquire(s, this.lockWaitMs, () =>
      new GatehouseError('55P03', `the embedded warehouse of connection "${this.conn.name}" is busy: another session has held a transaction open for over ${this.lockWaitMs / 1000} s`, {
        hint: 'the embedded warehouse runs one transaction at a time; retry when the other session commits, or use a postgres warehouse',
      }),
    );
    if (this.settingsOf === s) return;
    try {
      await this.handOver(s);
    } catch (e) {
      this.settingsOf = undefined;
      this.lock.release(s);
      throw e;
    }
  }

  private async handOver(s: EmbeddedSession): Promise<void> {
    const w = this.backend();
    const prev = this.settingsOf;
    if (prev && !prev.closed) {
      prev.savedSettings = decodeRows(
        await w.exec(`RESET ROLE; SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'session'`),
      ).map((r) => [r[0] as string, r[1] as string]);
    }
    await w.exec('RESET ALL; RESET ROLE');
    const settings = s.savedSettings ?? s.startupSettings();
    if (settings.length > 0) {
      const values = settings.map(([k, v]) => `(${sqlLiteral(k)}, ${sqlLiteral(v)})`).join(', ');
      decodeRows(await w.exec(`SELECT pg_catalog.set_config(name, value, false) FROM (VALUES ${values}) AS v(name, value)`));
    }
    if (s.readOnly) await w.exec(READ_ONLY_GUARD);
    this.settingsOf = s;
  }

  release(s: EmbeddedSession): void {
    this.lock.release(s);
  }

  holds(s: EmbeddedSession): boolean {
    return this.lock.holder() === s;
  }

  /** Gatehouse's own statement on the backend, between sessions' turns (results dropped). */
  async runInternal(sql: string): Promise<void> {
    const owner = {};
    await this.lock.acquire(owner, this.lockWaitMs);
    try {
      await this.backend().exec(sql);
    } finally {
      this.lock.release(owner);
    }
  }

  /** Column name -> type (format_type) of a relation; 42P01 when it does not exist. */
  async describeRelation(schema: string, table: string): Promise<Record<string, string>> {
    const owner = {};
    await this.lock.acquire(owner);
    try {
      const rows = decodeRows(
        await this.backend().exec(`SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ${sqlLiteral(schema)} AND c.relname = ${sqlLiteral(table)} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`),
      );
      if (rows.length === 0)
        throw new GatehouseError('42P01', `relation "${schema}.${table}" does not exist on the warehouse of connection "${this.conn.name}"`);
      return Object.fromEntries(rows.map((r) => [r[0] as string, r[1] as string]));
    } finally {
      this.lock.release(owner);
    }
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

/** How one cursor batch's messages are handled: relayed rows, or rows turned into COPY data. */
interface RowTarget {
  /** RowDescription of the first batch. */
  describe(frameBytes: Buffer, body: Buffer): boolean;
  /** A run of DataRow messages (whole frames). False: backpressure. */
  rows(frames: Buffer): boolean;
  /** After the last batch: the CommandComplete and anything after. */
  complete(count: number): void;
}

let nextSessionId = 1;

export class EmbeddedSession implements WarehouseSession {
  txStatus: TxStatus = 'I';
  closed = false;
  readonly readOnly: boolean;
  savedSettings?: [string, string][];
  /**
   * PGlite is one backend for every session: named prepared statements go upstream under a
   * per-session prefix so two clients' "S_1" never meet and no session can bind another's.
   * (The unnamed statement needs none: the simple Query of every hand-over drops it, as
   * exec_simple_query does, so it never outlives its session's turn on the backend.)
   */
  private readonly statementPrefix = `gh${nextSessionId++}_`;
  private readonly namedStatements = new Set<string>();

  constructor(
    private readonly wh: EmbeddedWarehouse,
    private readonly opts: WarehouseSessionOptions,
  ) {
    this.readOnly = opts.readOnly;
  }

  /** The allowlisted startup parameters, as settings for a session's first turn on the backend. */
  startupSettings(): [string, string][] {
    return Object.entries(forwardedParams(this.opts.params));
  }

  async run(statements: WarehouseStatement[], sink: ResultSink): Promise<TxStatus> {
    if (this.closed) throw new GatehouseError('08006', `the session on the embedded warehouse of connection "${this.wh.connectionName}" is closed`);
    await this.wh.acquire(this);
    try {
      if (statements.length === 0) {
        sink.emptyQuery();
        return this.txStatus;
      }
      // A multi-statement Query is one implicit transaction in PostgreSQL; statements run
      // one by one here (cursors), so make that transaction explicit unless they manage their own.
      const wrap =
        statements.length > 1 && this.txStatus === 'I' && statements.every((s) => s.kind !== 'transaction' && s.kind !== 'discard');
      if (wrap) await this.internal('BEGIN');
      for (const st of statements) {
        if (sink.closed) break;
        const ok = st.copyOut
          ? await this.cursor(st.copyOut.query, sink, this.copyTarget(sink, st.copyOut))
          : st.returnsRows
            ? await this.cursor(st.sql, sink, this.relayTarget(sink))
            : await this.plain(st.sql, sink);
        if (this.readOnly && this.txStatus !== 'E') await this.internal(READ_ONLY_GUARD);
        if (!ok) break; // PostgreSQL skips the rest of a Query after an error
      }
      // A client gone mid-Query rolls the implicit transaction back, as a backend losing its client does.
      if (wrap) await this.internal(this.txStatus === 'T' && !sink.closed ? 'COMMIT' : 'ROLLBACK', sink);
      return this.txStatus;
    } finally {
      if (this.txStatus === 'I') this.wh.release(this);
    }
  }

  /**
   * An extended-query batch and Sync in one exec: PGlite's backend runs Parse/Bind/Describe/
   * Execute/Close like PostgreSQL's, and every response is relayed. Not streamed: an Execute
   * without a row limit holds its whole result in memory once (the simple-Query path reads
   * through a cursor instead).
   */
  async runExtended(batch: ExtendedStep[], sink: ResultSink): Promise<TxStatus> {
    if (this.closed) throw new GatehouseError('08006', `the session on the embedded warehouse of connection "${this.wh.connectionName}" is closed`);
    await this.wh.acquire(this);
    try {
      const named = (name: string) => (name === '' ? '' : this.statementPrefix + name);
      const upstream = batch.map((m): ExtendedStep => {
        switch (m.type) {
          case 'Parse':
            if (m.name) this.namedStatements.add(named(m.name));
            return { ...m, name: named(m.name) };
          case 'Bind':
            return { ...m, statement: named(m.statement) };
          case 'Describe':
          case 'Close':
            if (m.type === 'Close' && m.kind === 'S') this.namedStatements.delete(named(m.name));
            return m.kind === 'S' ? { ...m, name: named(m.name) } : m;
          default:
            return m;
        }
      });
      const bytes = await this.wh.backend().execMessage(Buffer.concat([...upstream.map(extendedMessage), syncMessage()]));
      const r = this.relayAll(bytes, sink);
      if (this.readOnly && this.txStatus !== 'E') await this.internal(READ_ONLY_GUARD);
      if (r.pressure && !sink.closed) await sink.drain();
      return this.txStatus;
    } finally {
      if (this.txStatus === 'I') this.wh.release(this);
    }
  }

  /** Gatehouse's own statement: results dropped, except an error, which goes to the sink if given. */
  private async internal(sql: string, sink?: ResultSink): Promise<void> {
    const bytes = await this.wh.backend().exec(sql);
    this.txStatus = lastStatus(bytes);
    if (!sink) return;
    visitMessages(bytes, {
      consumes: () => true,
      run: () => {},
      message: (type, body) => {
        if (type === MSG.ErrorResponse) sink.relay(frame(type, body));
      },
    });
  }

  /** A statement as is; every result message relayed except ParameterStatus and ReadyForQuery. Returns false on error. */
  private async plain(sql: string, sink: ResultSink): Promise<boolean> {
    const w = this.wh.backend();
    let r = this.relayAll(await w.exec(sql), sink);
    if (r.copyIn) {
      // Policy never lets COPY FROM STDIN through; refuse it as the postgres connector does.
      r = this.relayAll(await w.execMessage(frame(0x66, Buffer.from('COPY FROM STDIN is not supported through Gatehouse\0'))), sink);
    }
    if (r.pressure && !sink.closed) await sink.drain();
    return r.ok;
  }

  private relayAll(bytes: Buffer, sink: ResultSink): { ok: boolean; copyIn: boolean; pressure: boolean } {
    const r = { ok: true, copyIn: false, pressure: false };
    visitMessages(bytes, {
      consumes: (t) =>
        t === MSG.ReadyForQuery || t === MSG.ParameterStatus || t === MSG.CopyInResponse || t === MSG.NotificationResponse || t === MSG.ErrorResponse,
      run: (msgs) => {
        if (!sink.relay(msgs)) r.pressure = true;
      },
      message: (type, body) => {
        if (type === MSG.CopyInResponse) r.copyIn = true;
        else if (type === MSG.ReadyForQuery) this.txStatus = readyStatus(body);
        else if (type === MSG.ErrorResponse) {
          r.ok = false;
          if (!sink.relay(frame(type, body))) r.pressure = true;
        }
      },
    });
    return r;
  }

  /**
   * A row-returning statement through a cursor, FETCH_ROWS at a time, waiting for the
   * client between batches. Returns false on error (relayed).
   */
  private async cursor(sql: string, sink: ResultSink, target: RowTarget): Promise<boolean> {
    if (this.txStatus === 'E') return this.plain(sql, sink); // "current transaction is aborted", relayed
    const w = this.wh.backend();
    const began = this.txStatus === 'I';
    const prefix = `${began ? 'BEGIN;' : ''}DECLARE ${CURSOR} NO SCROLL CURSOR FOR `;
    let q = `${prefix}${sql}\n;FETCH ${FETCH_ROWS} FROM ${CURSOR}`;
    let described = false;
    let count = 0;
    let failed = false;
    for (;;) {
      const bytes = await w.exec(q);
      this.txStatus = lastStatus(bytes);
      let fetched = 0;
      let pressure = false;
      const relay = (b: Buffer) => {
        if (!sink.relay(b)) pressure = true;
      };
      visitMessages(bytes, {
        consumes: (t) => t !== MSG.DataRow,
        run: (frames) => {
          if (!target.rows(frames)) pressure = true;
        },
        message: (type, body) => {
          if (type === MSG.DataRow) return;
          if (type === MSG.RowDescription && !described) {
            described = true;
            if (!target.describe(frame(type, body), body)) pressure = true;
          } else if (type === MSG.CommandComplete) {
            const tag = commandTag(body);
            if (tag.startsWith('FETCH ')) fetched = Number(tag.slice(6));
          } else if (type === MSG.ErrorResponse) {
            failed = true;
            relay(shiftErrorPosition(body, count === 0 && !described ? prefix.length : 0));
          } else if (type === MSG.NoticeResponse) relay(frame(type, body));
        },
      });
      count += fetched;
      if (failed) break;
      if (fetched < FETCH_ROWS || sink.closed) break;
      // Backpressure: the next batch is fetched only once the client has taken this one.
      if (pressure) await sink.drain();
      if (sink.closed) break;
      q = `FETCH ${FETCH_ROWS} FROM ${CURSOR}`;
    }
    if (failed) {
      if (began) await this.internal('ROLLBACK');
      return false;
    }
    await this.internal(began ? (sink.closed ? 'ROLLBACK' : `CLOSE ${CURSOR}; COMMIT`) : `CLOSE ${CURSOR}`);
    if (!sink.closed) target.complete(count);
    return true;
  }

  private relayTarget(sink: ResultSink): RowTarget {
    return {
      describe: (f) => sink.relay(f),
      rows: (frames) => sink.relay(frames),
      complete: (n) => sink.commandComplete(`SELECT ${n}`),
    };
  }

  private copyTarget(sink: ResultSink, f: CopyFormat): RowTarget {
    return {
      describe: (_f, body) => {
        const names = rowDescriptionNames(body);
        const ok = sink.copyOutResponse(names.length);
        return f.header ? sink.relay(frame(MSG.CopyData, copyHeader(names, f))) && ok : ok;
      },
      rows: (frames) => {
        // One CopyData per row, as PostgreSQL sends it (some clients parse a row per message).
        const out: Buffer[] = [];
        visitMessages(frames, {
          consumes: () => true,
          run: () => {},
          message: (_t, body) => out.push(frame(MSG.CopyData, copyLine(body, f))),
        });
        return sink.relay(Buffer.concat(out));
      },
      complete: (n) => {
        sink.copyDone();
        sink.commandComplete(`COPY ${n}`);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.wh.holds(this)) {
      try {
        if (this.txStatus !== 'I') await this.internal('ROLLBACK');
      } finally {
        this.wh.release(this);
      }
    }
    if (this.namedStatements.size === 0) return;
    // Its prepared statements would otherwise stay on the shared backend for ever.
    const sql = [...this.namedStatements].map((n) => `DEALLOCATE "${n.replace(/"/g, '""')}"`).join('; ');
    this.namedStatements.clear();
    try {
      await this.wh.runInternal(sql);
    } catch {
      // closing anyway (the backend stopped, or another session held it too long)
    }
  }
}
