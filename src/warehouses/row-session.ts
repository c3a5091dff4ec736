// A WarehouseSession over a connector session (connector.ts): PostgreSQL's protocols made from
// rows. The simple Query becomes RowDescription, DataRow, CommandComplete (or ErrorResponse);
// the extended protocol is emulated message by message: Parse stored, Describe answered from
// the warehouse's own prepare, Bind decoded (text and binary parameters of the common types),
// Execute with max-rows and PortalSuspended, Close, and Sync with ReadyForQuery's status.
// PostgreSQL's transaction rule holds on top of the warehouse's: an error inside a transaction
// fails it ('E') until ROLLBACK, so a client never commits around a failed statement.
import { GatehouseError, type SqlState } from '../errors.ts';
import { bindComplete, closeComplete, errorResponse, noData, parseComplete, rowDescription } from '../wire/encode.ts';
import type { Bind, ExtendedStep } from '../wire/messages.ts';
import type { FieldDescription, ResultSink } from '../wire/sink.ts';
import type { ConnectorError, ConnectorParam, ConnectorSession, EmittedSql, ResultEvent, ResultStream } from './connector.ts';
import { OID } from './mysql-types.ts';
import type { EmulatedSession, PlannedParse, ResultLimit, RunOutcome, TxStatus, UpstreamError, WarehouseSession, WarehouseStatement } from './types.ts';
import type { EmittedColumn } from '../sql/dialects/types.ts';
import { EmulatedSettings, showColumn } from './pg-settings.ts';
import { countPlaceholders } from '../sql/dialects/placeholders.ts';

export { countPlaceholders };

/** How long a drain wait checks whether its client has gone. */
const CLIENT_GONE_POLL_MS = 200;

/**
 * The default renderer. A statement the dialect emitter wrote (a Query Topics user's) carries
 * its placeholder order (`params`): sent as written, bound server-side (mysql2's execute, never
 * its client-side substitution, which would also replace a `?` inside a literal). Any other
 * text (a querier's MySQL) goes unchanged, its placeholders (`?` outside literals, quoted
 * identifiers and comments, read as MySQL reads them under the pinned sql_mode) standing for
 * the client's parameters in order.
 */
export function passthroughRender(statement: { sql: string; params?: number[] }): EmittedSql {
  if (statement.params) return { sql: statement.sql, params: statement.params };
  const n = countPlaceholders(statement.sql);
  return { sql: statement.sql, params: Array.from({ length: n }, (_, i) => i + 1) };
}

export interface RowSessionSettings {
  render: (statement: WarehouseStatement | { sql: string }) => EmittedSql;
  limit?: ResultLimit;
  user?: string;
  connection: string;
  /** PostgreSQL's settings answered by Gatehouse (pg-settings.ts): the session's read-only default and startup parameters. */
  emulation?: { readOnly: boolean; params?: Record<string, string>; isolation?: string };
}

interface Prepared {
  sql: string;
  /** For each placeholder, which client parameter ($n, 1-based) fills it. */
  map: number[];
  /** Client parameter types: the Parse's, 0 where it left one unspecified. */
  paramTypes: number[];
  fields?: FieldDescription[];
  /** The emitter's result columns (boolean ones are retyped). */
  columns?: EmittedColumn[];
  /** A session statement Gatehouse answers itself. */
  emulated?: EmulatedSession;
}

interface Portal {
  statement: Prepared;
  values: ConnectorParam[];
  /** Result formats per column (Bind's: none = text, one = all). */
  formats: number[];
  stream?: ResultStream;
  /** Rows read from the stream but not yet sent (max-rows ended an Execute mid-batch). */
  pending: (string | null)[][];
  fields?: FieldDescription[];
  done: boolean;
}

/** Gatehouse's own error inside a run, as the client gets it (an ErrorResponse built from a warehouse error). */
function warehouseError(e: ConnectorError): GatehouseError {
  return new GatehouseError(e.sqlstate as SqlState, e.message, e.detail === undefined ? {} : { detail: e.detail });
}

function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const portalSuspended = () => frame('s', Buffer.alloc(0));

function parameterDescription(oids: number[]): Buffer {
  const b = Buffer.alloc(2 + 4 * oids.length);
  b.writeInt16BE(oids.length, 0);
  oids.forEach((o, i) => {
    b.writeUInt32BE(o >>> 0, 2 + 4 * i);
  });
  return frame('t', b);
}

/** A DataRow whose values are text or already-encoded binary. */
function dataRowMixed(values: (string | Buffer | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0].writeInt16BE(values.length, 0);
  for (const v of values) {
    const len = Buffer.alloc(4);
    if (v === null) {
      len.writeInt32BE(-1, 0);
      parts.push(len);
      continue;
    }
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    len.writeInt32BE(bytes.length, 0);
    parts.push(len, bytes);
  }
  return frame('D', Buffer.concat(parts));
}

/** Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/** One column value as PostgreSQL's binary format for the type; undefined: no binary format here (the Bind is refused). */
function binaryValue(typeOid: number, text: string): Buffer | undefined {
  switch (typeOid) {
    case OID.bool:
      return Buffer.from([text === 't' ? 1 : 0]);
    case OID.int2: {
      const b = Buffer.alloc(2);
      b.writeInt16BE(Number(text));
      return b;
    }
    case OID.int4: {
      const b = Buffer.alloc(4);
      b.writeInt32BE(Number(text));
      return b;
    }
    case OID.int8: {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(BigInt(text));
      return b;
    }
    case OID.float4: {
      const b = Buffer.alloc(4);
      b.writeFloatBE(Number(text));
      return b;
    }
    case OID.float8: {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(Number(text));
      return b;
    }
    case OID.numeric:
      return numericBinary(text);
    case OID.bytea:
      return Buffer.from(text.slice(2), 'hex');
    case OID.text:
    case OID.varchar:
    case OID.json:
      return Buffer.from(text, 'utf8');
    case OID.date: {
      const b = Buffer.alloc(4);
      b.writeInt32BE(Math.round((Date.parse(`${text}T00:00:00Z`) - PG_EPOCH_MS) / 86_400_000));
      return b;
    }
    case OID.timestamp:
    case OID.timestamptz: {
      const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?/.exec(text);
      if (!m) return undefined;
      const micros = BigInt(Date.parse(`${m[1]}T${m[2]}Z`) - PG_EPOCH_MS) * 1000n + BigInt((m[3] ?? '').padEnd(6, '0').slice(0, 6) || '0');
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(micros);
      return b;
    }
    default:
      return undefined;
  }
}

/**
 * A numeric's text (digits, an optional sign and point, or NaN/Infinity) as PostgreSQL's binary
 * numeric: ndigits, weight, sign, dscale, then base-10000 digits. Snowflake's integers are
 * NUMBER(38,0), numeric here, so pgjdbc's server-prepared statements ask for this format.
 */
export function numericBinary(text: string): Buffer | undefined {
  const head = (ndigits: number, weight: number, sign: number, dscale: number) => {
    const b = Buffer.alloc(8 + ndigits * 2);
    b.writeInt16BE(ndigits, 0);
    b.writeInt16BE(weight, 2);
    b.writeUInt16BE(sign, 4);
    b.writeUInt16BE(dscale, 6);
    return b;
  };
  if (/^nan$/i.test(text)) return head(0, 0, 0xc000, 0);
  // dscale 32 for the infinities: what PostgreSQL's numeric_send writes (checked in numeric-binary.test.ts).
  if (/^\+?infinity$/i.test(text)) return head(0, 0, 0xd000, 32);
  if (/^-infinity$/i.test(text)) return head(0, 0, 0xf000, 32);
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m || (m[2] === '' && !m[3])) return undefined;
  const int = m[2].replace(/^0+/, '');
  const frac = m[3] ?? '';
  const dscale = frac.length;
  // Base-10000 groups aligned on the decimal point: the integer part padded on the left, the fraction on the right.
  const intPadded = int.padStart(Math.ceil(int.length / 4) * 4, '0');
  const fracPadded = frac.padEnd(Math.ceil(frac.length / 4) * 4, '0');
  const groups: number[] = [];
  for (let i = 0; i < intPadded.length; i += 4) groups.push(Number(intPadded.slice(i, i + 4)));
  for (let i = 0; i < fracPadded.length; i += 4) groups.push(Number(fracPadded.slice(i, i + 4)));
  let weight = intPadded.length / 4 - 1;
  let first = 0;
  while (first < groups.length && groups[first] === 0) {
    first++;
    weight--;
  }
  let last = groups.length;
  while (last > first && groups[last - 1] === 0) last--;
  const digits = groups.slice(first, last);
  if (digits.length === 0) return head(0, 0, 0, dscale);
  const b = head(digits.length, weight, m[1] === '-' ? 0x4000 : 0, dscale);
  for (const [i, d] of digits.entries()) b.writeInt16BE(d, 8 + i * 2);
  return b;
}

/** Types whose binary result format this session writes. */
const BINARY_RESULT_TYPES: ReadonlySet<number> = new Set([
  OID.bool,
  OID.numeric,
  OID.int2,
  OID.int4,
  OID.int8,
  OID.float4,
  OID.float8,
  OID.bytea,
  OID.text,
  OID.varchar,
  OID.json,
  OID.date,
  OID.timestamp,
  OID.timestamptz,
]);

/** A client's binary parameter as a connector value, by the type it was declared or described as. */
function decodeBinaryParam(typeOid: number, b: Buffer): string | Buffer {
  const bad = () => new GatehouseError('22023', `binary parameter of type ${typeOid} has the wrong length (${b.length} bytes)`);
  switch (typeOid) {
    case OID.bool:
      if (b.length !== 1) throw bad();
      return b[0] ? 't' : 'f';
    case OID.int2:
      if (b.length !== 2) throw bad();
      return String(b.readInt16BE(0));
    case OID.int4:
      if (b.length !== 4) throw bad();
      return String(b.readInt32BE(0));
    case OID.int8:
      if (b.length !== 8) throw bad();
      return b.readBigInt64BE(0).toString();
    case OID.float4:
      if (b.length !== 4) throw bad();
      return String(b.readFloatBE(0));
    case OID.float8:
      if (b.length !== 8) throw bad();
      return String(b.readDoubleBE(0));
    case OID.bytea:
      return b;
    case 0:
    case OID.text:
    case OID.varchar:
    case OID.json:
      return b.toString('utf8');
    case OID.date: {
      if (b.length !== 4) throw bad();
      return new Date(PG_EPOCH_MS + b.readInt32BE(0) * 86_400_000).toISOString().slice(0, 10);
    }
    case OID.timestamp:
    case OID.timestamptz: {
      if (b.length !== 8) throw bad();
      const micros = b.readBigInt64BE(0);
      const ms = Number(micros / 1000n);
      const frac = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
      const iso = new Date(PG_EPOCH_MS + ms).toISOString();
      return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac.toString().padStart(6, '0')}`;
    }
    default:
      throw new GatehouseError('0A000', `binary parameters of type ${typeOid} are not supported on connection kinds without PostgreSQL's protocol`, {
        hint: 'bind this parameter in text format',
      });
  }
}

/** A text parameter of a type MySQL reads differently: booleans as 1/0, bytea's \x hex as bytes. */
function decodeTextParam(typeOid: number, s: string): string | Buffer {
  if (typeOid === OID.bytea && s.startsWith('\\x')) return Buffer.from(s.slice(2), 'hex');
  return s;
}

/** PostgreSQL's command tag for a statement without rows, from its leading keywords. */
export function commandTag(sql: string, affectedRows?: number): string {
  const words =
    stripLeadingComments(sql)
      .match(/^[A-Za-z_]+(\s+[A-Za-z_]+)?/)?.[0]
      .toUpperCase()
      .split(/\s+/) ?? [];
  const [first = '', second = ''] = words;
  const n = affectedRows ?? 0;
  switch (first) {
    case 'INSERT':
    case 'REPLACE':
      return `INSERT 0 ${n}`;
    case 'UPDATE':
    case 'DELETE':
      return `${first} ${n}`;
    case 'SELECT':
    case 'WITH':
    case 'VALUES':
    case 'TABLE':
      return `SELECT ${n}`;
    case 'START':
      return 'BEGIN';
    case 'CREATE':
    case 'DROP':
    case 'ALTER':
      return second ? `${first} ${second}` : first;
    case '':
      return 'OK';
    default:
      return first;
  }
}

function stripLeadingComments(sql: string): string {
  let s = sql;
  for (;;) {
    const t = s.replace(/^\s+/, '');
    if (t.startsWith('/*') && !t.startsWith('/*!')) {
      const end = t.indexOf('*/');
      s = end < 0 ? '' : t.slice(end + 2);
    } else if (t.startsWith('--') || t.startsWith('#')) {
      const end = t.indexOf('\n');
      s = end < 0 ? '' : t.slice(end + 1);
    } else return t;
  }
}

/** In a failed transaction, what may still run: its end. */
const ENDS_TRANSACTION = /^(ROLLBACK|COMMIT|END|ABORT)\b/i;
const ROLLBACK_TO = /^ROLLBACK\s+(WORK\s+)?TO\b/i;

/** What a run of one statement's results did. */
type Streamed = 'complete' | 'suspended' | 'error' | 'stopped';

/** The exchange since the last Sync (extended protocol). */
interface Exchange {
  sink: ResultSink;
  /** The exchange's first error: the rest up to Sync is skipped, as PostgreSQL skips it. */
  error?: UpstreamError;
  stopped?: boolean;
}

export class RowSession implements WarehouseSession {
  private failedTransaction = false;
  private readonly prepared = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  private exchange?: Exchange;
  /** A run's error replaced by Gatehouse's own (its statement timeout canceled the statement). */
  private cancelAs?: GatehouseError;
  private closed = false;

  /** PostgreSQL's settings of this session (SET/SHOW/RESET answered by Gatehouse: policy/row-statements.ts). */
  private readonly pgSettings: EmulatedSettings;

  constructor(
    private readonly conn: ConnectorSession,
    private readonly settings: RowSessionSettings,
    private readonly release: (conn: ConnectorSession) => Promise<void>,
  ) {
    conn.setUser(settings.user);
    this.pgSettings = new EmulatedSettings(settings.emulation ?? { readOnly: true });
  }

  get txStatus(): TxStatus {
    return this.failedTransaction ? 'E' : this.conn.txStatus;
  }

  /**
   * No serverVersion: the client is told Gatehouse's PostgreSQL version, as the protocol it
   * speaks is PostgreSQL's (drivers pick features by it); the warehouse's own is this.
   */
  get warehouseVersion(): string | undefined {
    return this.conn.serverVersion;
  }

  get inExtended(): boolean {
    return this.exchange !== undefined;
  }

  // ------------------------------------------------------------------ simple Query

  /** The statements one by one (a connector runs one statement per call); after an error the rest is skipped, as PostgreSQL skips the rest of a Query. */
  async run(statements: WarehouseStatement[], sink: ResultSink): Promise<RunOutcome> {
    const x: Exchange = { sink };
    try {
      return await this.runAll(statements, x);
    } finally {
      this.cancelAs = undefined;
      this.noteTransactionEnd();
    }
  }

  /** Outside a transaction, SET LOCAL values are gone (as PostgreSQL's are at COMMIT or ROLLBACK). */
  private noteTransactionEnd(): void {
    if (this.conn.txStatus === 'I' && !this.failedTransaction) this.pgSettings.endTransaction();
  }

  /**
   * A PostgreSQL session statement answered here (SET, SHOW, RESET, DISCARD): nothing reaches the
   * warehouse. In a failed transaction it is 25P02, as everything but its end is on PostgreSQL.
   */
  private answer(op: EmulatedSession, x: Exchange, describe: boolean): Streamed {
    if (this.failedTransaction) {
      this.fail(
        x,
        new GatehouseError('25P02', 'current transaction is aborted, commands ignored until end of transaction block', {
          hint: 'end the transaction with ROLLBACK',
        }),
      );
      return 'error';
    }
    const r = this.pgSettings.apply(op);
    if (op.op === 'discard' && op.what === 'all') {
      // DISCARD ALL deallocates the session's prepared statements (the unnamed one runs now).
      for (const name of [...this.prepared.keys()]) if (name !== '') this.prepared.delete(name);
    }
    if (r.show) {
      if (describe) x.sink.rowDescription([textField(r.show.column)]);
      x.sink.dataRow([r.show.value]);
    }
    x.sink.commandComplete(r.tag);
    return 'complete';
  }

  private async runAll(statements: WarehouseStatement[], x: Exchange): Promise<RunOutcome> {
    const sink = x.sink;
    for (const st of statements) {
      if (sink.closed) break;
      const refused = this.refusedHere(st);
      if (refused) {
        this.fail(x, refused);
        break;
      }
      if (st.emulated) {
        if (this.answer(st.emulated, x, true) !== 'complete') break;
        continue;
      }
      const { sql, params } = this.settings.render(st);
      if (params.length > 0) {
        this.fail(
          x,
          new GatehouseError('08P01', 'a simple Query cannot carry parameters', { detail: 'the statement as rendered for the warehouse has placeholders' }),
        );
        break;
      }
      const result = await this.runStatement(sql, [], x, { describe: true, maxRows: 0, formats: [], columns: st.columns });
      if (result !== 'complete') break;
    }
    return this.outcome(x);
  }

  /** What this session cannot run at all, or runs only to end a failed transaction. */
  private refusedHere(st: { sql: string; kind?: string; copyOut?: unknown }): GatehouseError | undefined {
    if (st.kind === 'copy_out' || st.copyOut) {
      return new GatehouseError('0A000', `COPY is not supported on connection ${this.settings.connection} (its warehouse is not PostgreSQL)`, {
        hint: 'run the query with SELECT instead',
      });
    }
    return undefined;
  }

  /** Runs one statement and streams its result: RowDescription when asked, rows up to maxRows, then its end. */
  private async runStatement(
    sql: string,
    values: ConnectorParam[],
    x: Exchange,
    opts: { describe: boolean; maxRows: number; formats: number[]; portal?: Portal; columns?: EmittedColumn[] },
  ): Promise<Streamed> {
    if (this.failedTransaction) {
      const text = stripLeadingComments(sql);
      if (!ENDS_TRANSACTION.test(text)) {
        this.fail(
          x,
          new GatehouseError('25P02', 'current transaction is aborted, commands ignored until end of transaction block', {
            hint: 'end the transaction with ROLLBACK',
          }),
        );
        return 'error';
      }
      // COMMIT of a failed transaction rolls it back, as on PostgreSQL.
      const rollback = ROLLBACK_TO.test(text) ? sql : 'ROLLBACK';
      const stream = this.conn.execute(rollback, []);
      const r = await this.stream(stream, x, { ...opts, tagSql: 'ROLLBACK' });
      if (r === 'complete') this.failedTransaction = false;
      return r;
    }
    return this.stream(opts.portal?.stream ?? retyped(this.conn.execute(sql, values), opts.columns), x, { ...opts, tagSql: sql });
  }

  /**
   * Moves one statement's results to the sink at the client's pace: the next batch is pulled
   * only once the sink has room. A portal keeps what an Execute's max-rows left over.
   */
  private async stream(
    stream: ResultStream,
    x: Exchange,
    opts: { describe: boolean; maxRows: number; formats: number[]; portal?: Portal; tagSql: string },
  ): Promise<Streamed> {
    const { sink, portal } = { sink: x.sink, portal: opts.portal };
    const limit = this.settings.limit && (this.settings.limit.rows > 0 || this.settings.limit.bytes > 0) ? this.settings.limit : undefined;
    let fields: FieldDescription[] | undefined = portal?.fields;
    let sent = 0;
    let bytes = 0;
    let pending = portal?.pending ?? [];
    if (portal) portal.pending = [];
    const sendRows = async (rows: (string | null)[][]): Promise<Streamed | undefined> => {
      for (let i = 0; i < rows.length; i++) {
        if (opts.maxRows > 0 && sent >= opts.maxRows) {
          portal!.pending = rows.slice(i);
          return 'suspended';
        }
        const row = rows[i];
        if (limit) {
          for (const v of row) bytes += v === null ? 4 : 4 + Buffer.byteLength(v);
          const which = limit.rows > 0 && sent + 1 > limit.rows ? 'rows' : limit.bytes > 0 && bytes > limit.bytes ? 'bytes' : undefined;
          if (which) {
            await stream.return?.();
            if (portal) portal.done = true;
            this.fail(x, limit.exceeded(which));
            x.stopped = true;
            return 'stopped';
          }
        }
        // Binary values as the client was told the column is typed (Describe), else as it came.
        const ok = opts.formats.some((f) => f === 1)
          ? sink.relay(this.encodeRow(row, portal?.statement.fields ?? fields ?? [], opts.formats))
          : sink.dataRow(row);
        sent++;
        if (!ok) await this.waitForClient(sink);
        if (sink.closed) {
          await stream.return?.();
          if (portal) portal.done = true;
          return 'stopped';
        }
      }
      return undefined;
    };
    try {
      if (pending.length > 0) {
        const r = await sendRows(pending);
        if (r) return r === 'suspended' ? this.suspend(sink) : r;
        pending = [];
      }
      for (;;) {
        if (opts.maxRows > 0 && sent >= opts.maxRows) {
          // PostgreSQL suspends once max-rows rows went, whether or not more follow.
          return this.suspend(sink);
        }
        const next = await stream.next();
        if (next.done) {
          this.finishPortal(portal);
          return 'complete';
        }
        const e: ResultEvent = next.value;
        if (e.type === 'columns') {
          fields = e.fields;
          if (portal) portal.fields = fields;
          if (opts.describe) sink.rowDescription(fields);
        } else if (e.type === 'rows') {
          const r = await sendRows(e.rows);
          if (r) return r === 'suspended' ? this.suspend(sink) : r;
        } else if (e.type === 'complete') {
          sink.commandComplete(fields ? `SELECT ${sent}` : commandTag(opts.tagSql, e.affectedRows));
        } else {
          const replaced = this.cancelAs && e.error.sqlstate === '57014' ? this.cancelAs : warehouseError(e.error);
          this.fail(x, replaced);
          this.finishPortal(portal);
          // Drain the stream's end (it has none left after an error, but the connector settles its state).
          await stream.return?.();
          return 'error';
        }
      }
    } finally {
      // Only the statement Gatehouse canceled gets its error in place of the warehouse's.
      if (!portal) this.cancelAs = undefined;
    }
  }

  private suspend(sink: ResultSink): Streamed {
    sink.relay(portalSuspended());
    return 'suspended';
  }

  private finishPortal(portal: Portal | undefined): void {
    if (!portal) return;
    portal.done = true;
    portal.stream = undefined;
    portal.pending = [];
  }

  private encodeRow(row: (string | null)[], fields: FieldDescription[], formats: number[]): Buffer {
    return dataRowMixed(
      row.map((v, i) => {
        const f = formats.length === 1 ? formats[0] : (formats[i] ?? 0);
        if (v === null || f !== 1) return v;
        return binaryValue(fields[i]?.typeOid ?? OID.text, v) ?? v;
      }),
    );
  }

  private async waitForClient(sink: ResultSink): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const gone = new Promise<void>((resolve) => {
      timer = setInterval(() => {
        if (sink.closed) resolve();
      }, CLIENT_GONE_POLL_MS);
    });
    try {
      await Promise.race([sink.drain(), gone]);
    } finally {
      clearInterval(timer);
    }
  }

  /** An error of the run: to the client (once per exchange), and a transaction open around it fails. */
  private fail(x: Exchange, err: GatehouseError): void {
    if (!x.error) {
      x.error = { sqlstate: err.sqlstate, message: err.message, severity: 'ERROR' };
      if (!x.sink.closed) x.sink.relay(errorResponse(err));
    }
    if (this.conn.txStatus === 'T') this.failedTransaction = true;
  }

  private outcome(x: Exchange): RunOutcome {
    return { status: this.txStatus, ...(x.error ? { error: x.error } : {}), aborted: false, ...(x.stopped ? { stopped: true } : {}) };
  }

  // ------------------------------------------------------------------ extended protocol

  async sendExtended(steps: ExtendedStep[], sink: ResultSink, _flush: boolean): Promise<void> {
    this.exchange ??= { sink };
    this.exchange.sink = sink;
    for (const m of steps) await this.step(m, this.exchange);
  }

  async syncExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    await this.sendExtended(steps, sink, false);
    return this.sync();
  }

  /** The rest, then the exchange ends as if a message had failed: its transaction fails, and the caller's refusal is the client's error unless one came before. */
  async abortExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    await this.sendExtended(steps, sink, false);
    const x = this.exchange!;
    const aborted = x.error === undefined;
    if (this.conn.txStatus === 'T') this.failedTransaction = true;
    const outcome = await this.sync();
    return { ...outcome, aborted };
  }

  private async sync(): Promise<RunOutcome> {
    const x = this.exchange ?? { sink: undefined as never };
    this.exchange = undefined;
    this.cancelAs = undefined;
    // Outside a transaction block, Sync ends the implicit transaction: its portals go.
    if (this.conn.txStatus === 'I' && !this.failedTransaction) await this.closePortals();
    this.noteTransactionEnd();
    return { status: this.txStatus, ...(x.error ? { error: x.error } : {}), aborted: false, ...(x.stopped ? { stopped: true } : {}) };
  }

  private async closePortals(): Promise<void> {
    for (const [name, p] of this.portals) {
      this.portals.delete(name);
      await p.stream?.return?.();
    }
  }

  private async step(m: ExtendedStep, x: Exchange): Promise<void> {
    if (x.error) return; // PostgreSQL skips to Sync after an error
    try {
      switch (m.type) {
        case 'Parse':
          return this.parse(m, x);
        case 'Bind':
          return await this.bind(m, x);
        case 'Describe':
          return await this.describe(m.kind, m.name, x);
        case 'Execute':
          return await this.execute(m.portal, m.maxRows, x);
        case 'Close':
          return await this.close_(m.kind, m.name, x);
      }
    } catch (e) {
      if (e instanceof GatehouseError && e.sqlstate !== '08006') this.fail(x, e);
      else throw e;
    }
  }

  private parse(m: PlannedParse, x: Exchange): void {
    if (m.name !== '' && this.prepared.has(m.name)) throw new GatehouseError('42P05' as SqlState, `prepared statement "${m.name}" already exists`);
    // The decided statement, where the statement path passed it on (its placeholder order, result columns, emulation).
    const planned = m.planned;
    const refused = this.refusedHere(planned ?? { sql: m.query });
    if (refused) throw refused;
    const { sql, params } = planned?.emulated ? { sql: planned.sql, params: [] } : this.settings.render(planned ?? { sql: m.query });
    const count = params.reduce((a, b) => Math.max(a, b), 0);
    const paramTypes = Array.from({ length: Math.max(count, m.paramTypes.length) }, (_, i) => m.paramTypes[i] ?? 0);
    this.prepared.set(m.name, {
      sql,
      map: params,
      paramTypes,
      ...(planned?.columns ? { columns: planned.columns } : {}),
      ...(planned?.emulated ? { emulated: planned.emulated } : {}),
    });
    x.sink.relay(parseComplete());
  }

  private async bind(m: Bind, x: Exchange): Promise<void> {
    const st = this.prepared.get(m.statement);
    if (!st)
      throw new GatehouseError(
        '26000',
        m.statement === '' ? 'unnamed prepared statement does not exist' : `prepared statement "${m.statement}" does not exist`,
      );
    if (m.portal !== '' && this.portals.has(m.portal)) throw new GatehouseError('42P03' as SqlState, `portal "${m.portal}" already exists`);
    if (m.params.length !== st.paramTypes.length) {
      // PostgreSQL drivers write $1, $2 (pgjdbc rewrites JDBC's ? so): the warehouse's placeholders are its own.
      const dollars = /\$\d/.test(st.sql) && st.map.length === 0;
      throw new GatehouseError(
        '08P01',
        `bind message supplies ${m.params.length} parameters, but prepared statement "${m.statement}" requires ${st.paramTypes.length}`,
        {
          ...(dollars
            ? {
                hint: `on connection ${this.settings.connection} statements are passed to the warehouse as written: write its placeholders (? on MySQL), not $n`,
              }
            : {}),
        },
      );
    }
    const formatOf = (i: number) => (m.paramFormats.length === 0 ? 0 : m.paramFormats.length === 1 ? m.paramFormats[0] : (m.paramFormats[i] ?? 0));
    const decoded = m.params.map((p, i) => {
      const typeOid = st.paramTypes[i];
      if (p === null) return { value: null, typeOid };
      return { value: formatOf(i) === 1 ? decodeBinaryParam(typeOid, p) : decodeTextParam(typeOid, p.toString('utf8')), typeOid };
    });
    if (m.resultFormats.some((f) => f === 1)) {
      const fields = st.fields ?? (await this.describeStatement(st, x));
      if (!fields) return;
      fields.forEach((f, i) => {
        const fmt = m.resultFormats.length === 1 ? m.resultFormats[0] : (m.resultFormats[i] ?? 0);
        if (fmt === 1 && !BINARY_RESULT_TYPES.has(f.typeOid)) {
          throw new GatehouseError(
            '0A000',
            `binary result format for column "${f.name}" (type ${f.typeOid}) is not supported on connection ${this.settings.connection}`,
            { hint: 'ask for text results' },
          );
        }
      });
    }
    // An unnamed portal is replaced by the next Bind to it.
    const old = this.portals.get(m.portal);
    if (old) await old.stream?.return?.();
    this.portals.set(m.portal, { statement: st, values: st.map.map((n) => decoded[n - 1]), formats: m.resultFormats, pending: [], done: false });
    x.sink.relay(bindComplete());
  }

  /** The warehouse's description of a statement (its prepare): cached on the statement. */
  private async describeStatement(st: Prepared, x: Exchange): Promise<FieldDescription[] | undefined> {
    if (st.fields) return st.fields;
    if (st.emulated) {
      st.fields = st.emulated.op === 'show' ? [textField(showColumn(st.emulated.name))] : [];
      return st.fields;
    }
    this.requireIdle();
    const d = await this.conn.describe(st.sql);
    if ('error' in d) {
      this.fail(x, warehouseError(d.error));
      return undefined;
    }
    st.fields = retypeFields(d.fields, st.columns).fields;
    return st.fields;
  }

  /** One statement streams at a time on a connector session: a suspended portal holds it. */
  private requireIdle(except?: Portal): void {
    for (const [name, p] of this.portals) {
      if (p !== except && p.stream && !p.done) {
        throw new GatehouseError(
          '0A000',
          `portal "${name}" is suspended; on connection ${this.settings.connection} it must be read to its end or closed before another statement runs`,
          {
            hint: 'fetch the rest of the cursor or close it first',
          },
        );
      }
    }
  }

  private async describe(kind: 'S' | 'P', name: string, x: Exchange): Promise<void> {
    if (kind === 'S') {
      const st = this.prepared.get(name);
      if (!st) throw new GatehouseError('26000', name === '' ? 'unnamed prepared statement does not exist' : `prepared statement "${name}" does not exist`);
      const fields = await this.describeStatement(st, x);
      if (!fields) return;
      x.sink.relay(parameterDescription(st.paramTypes.map((t) => t || OID.text)));
      x.sink.relay(fields.length ? rowDescription(fields) : noData());
      return;
    }
    const p = this.portals.get(name);
    if (!p) throw new GatehouseError('34000' as SqlState, name === '' ? 'portal "" does not exist' : `portal "${name}" does not exist`);
    const fields = p.fields ?? (await this.describeStatement(p.statement, x));
    if (!fields) return;
    const withFormats = fields.map(
      (f, i) => ({ ...f, format: ((p.formats.length === 1 ? p.formats[0] : p.formats[i]) ?? 0) === 1 ? 1 : 0 }) as FieldDescription,
    );
    x.sink.relay(withFormats.length ? rowDescription(withFormats) : noData());
  }

  private async execute(name: string, maxRows: number, x: Exchange): Promise<void> {
    const p = this.portals.get(name);
    if (!p) throw new GatehouseError('34000' as SqlState, name === '' ? 'portal "" does not exist' : `portal "${name}" does not exist`);
    if (p.done) {
      // A portal run to its end answers again with no rows, as PostgreSQL's does.
      x.sink.commandComplete(p.fields ? 'SELECT 0' : commandTag(p.statement.sql));
      return;
    }
    if (p.statement.emulated) {
      this.answer(p.statement.emulated, x, false);
      p.done = true;
      return;
    }
    if (!p.stream) {
      this.requireIdle(p);
      if (this.failedTransaction) {
        await this.runStatement(p.statement.sql, p.values, x, { describe: false, maxRows: 0, formats: p.formats, columns: p.statement.columns });
        p.done = true;
        return;
      }
      p.stream = retyped(this.conn.execute(p.statement.sql, p.values), p.statement.columns);
    }
    await this.stream(p.stream, x, { describe: false, maxRows, formats: p.formats, portal: p, tagSql: p.statement.sql });
  }

  private async close_(kind: 'S' | 'P', name: string, x: Exchange): Promise<void> {
    if (kind === 'S') this.prepared.delete(name);
    else {
      const p = this.portals.get(name);
      this.portals.delete(name);
      await p?.stream?.return?.();
    }
    x.sink.relay(closeComplete());
  }

  // ------------------------------------------------------------------ the rest

  /** The client's CancelRequest (or Gatehouse's statement timeout, `reason`): the warehouse stops the statement. */
  cancel(reason?: GatehouseError): Promise<void> {
    if (reason) this.cancelAs = reason;
    return this.conn.cancel();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.closePortals();
    } catch {
      // The connection is gone: release closes it.
    }
    await this.release(this.conn);
  }
}

/** A text column of Gatehouse's own answer (SHOW). */
function textField(name: string): FieldDescription {
  return { name, tableOid: 0, columnAttr: 0, typeOid: OID.text, typeSize: -1, typeModifier: -1, format: 0 };
}

/**
 * The warehouse's columns as PostgreSQL types them: a column the emitter knows is boolean and
 * MySQL answers as a number (a comparison, `flag AND x`) becomes bool, its 1/0 't'/'f'.
 * `convert`: the indexes whose values change.
 */
export function retypeFields(fields: FieldDescription[], columns: EmittedColumn[] | undefined): { fields: FieldDescription[]; convert: number[] } {
  if (!columns || columns.length !== fields.length) return { fields, convert: [] };
  const convert: number[] = [];
  const out = fields.map((f, i) => {
    // The name PostgreSQL gives the column: Snowflake upper-cases the names it was sent quoted in upper case.
    const named = columns[i].name === f.name ? f : { ...f, name: columns[i].name };
    const oid = columns[i].oid;
    if (oid !== undefined && oid !== f.typeOid && (f.typeOid === OID.int8 || f.typeOid === OID.int4 || f.typeOid === OID.int2)) {
      // A cast to int4 or int2 (count(*)::int): PostgreSQL's type, the warehouse's digits.
      return { ...named, typeOid: oid, typeSize: oid === OID.int2 ? 2 : 4, typeModifier: -1 };
    }
    if (columns[i]?.type !== 'bool' || f.typeOid === OID.bool) return named;
    convert.push(i);
    return { ...named, typeOid: OID.bool, typeSize: 1, typeModifier: -1 };
  });
  return { fields: out, convert };
}

/** A connector's results with the emitter's column names and boolean columns (retypeFields); unchanged without emitter columns. */
function retyped(stream: ResultStream, columns: EmittedColumn[] | undefined): ResultStream {
  if (!columns?.length) return stream;
  let convert: number[] = [];
  const it: ResultStream = {
    async next() {
      const r = await stream.next();
      if (r.done) return r;
      const e = r.value;
      if (e.type === 'columns') {
        const t = retypeFields(e.fields, columns);
        convert = t.convert;
        return { value: { type: 'columns', fields: t.fields }, done: false };
      }
      if (e.type === 'rows' && convert.length > 0) {
        for (const row of e.rows) for (const i of convert) if (row[i] !== null) row[i] = row[i] === '0' ? 'f' : 't';
      }
      return r;
    },
    return: async () => (await stream.return?.()) ?? { value: undefined, done: true },
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}
