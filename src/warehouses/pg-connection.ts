// One upstream PostgreSQL connection (start-up, sign-in, TLS, cancel) and the session over it:
// results relayed byte for byte (see pg-framing.ts), backpressure end to end. The pools
// (pool.ts, transaction-pool.ts) and the warehouse (postgres.ts) build on these; nothing here
// imports them, so the layers have no cycle.
import type net from 'node:net';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import { scramClient, SCRAM_MECHANISM, SCRAM_PLUS_MECHANISM } from '../identity/scram.ts';
import type { ExtendedStep } from '../wire/messages.ts';
import { type FieldDescription, type ResultSink, whenWritable } from '../wire/sink.ts';
import {
  BackendFramer,
  cstring,
  dataRowValues,
  errorFields,
  extendedMessage,
  frame,
  MSG,
  parameterStatus,
  queryMessage,
  readyStatus,
  syncMessage,
  visitMessages,
} from './pg-framing.ts';
import {
  PINNED_LEXING,
  type TxStatus,
  type ResultLimit,
  type RunOutcome,
  type UpstreamError,
  type WarehouseSession,
  type WarehouseSessionOptions,
  type WarehouseStatement,
  forwardedParams,
} from './types.ts';
import type { PasswordSource } from './credentials.ts';
import { type UpstreamTls, openUpstreamSocket } from './pg-tls.ts';

/** Client startup parameters that may reach the warehouse (DESIGN 3: never `options`). */

const PROTOCOL_3_0 = 196608;
const CANCEL_REQUEST_CODE = 80877102;
const CONNECT_TIMEOUT_MS = 10_000;
/** How often a running statement checks whether its client has gone while the upstream is silent. */
const CLIENT_GONE_POLL_MS = 200;

/** Where to connect and as whom; the password is produced per sign-in (credentials.ts) and never leaves this module. */
export interface UpstreamTarget {
  connection: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password?: PasswordSource;
  /** Settings this account's sessions start with (the topics account: its timeouts). */
  settings?: [string, string][];
  /** TLS to the warehouse (pg-tls.ts); absent: plaintext (the embedded warehouse's own server). */
  tls?: UpstreamTls;
}

/** The pinned lexing settings PostgreSQL reports in ParameterStatus (backslash_quote is not reported). */
const PINNED_REPORTED = new Map(PINNED_LEXING.filter(([k]) => k !== 'backslash_quote'));

/** application_name `gatehouse:<email>` (PostgreSQL keeps its first 63 bytes). */
export function personAppName(email: string): string {
  return `gatehouse:${email.replace(/\0/g, '')}`;
}

/** The startup parameters Gatehouse sends: the allowlisted client ones, plus read-only when asked. */
export function upstreamStartupParams(target: UpstreamTarget, opts: WarehouseSessionOptions): [string, string][] {
  const out: [string, string][] = [
    ['user', target.user],
    ['database', target.database],
  ];
  out.push(...Object.entries(forwardedParams(opts.params)));
  // Set by Gatehouse itself, never taken from a client. Startup parameters outrank the
  // warehouse's ALTER DATABASE / ALTER ROLE settings (PGC_S_CLIENT), so a database set to
  // standard_conforming_strings = off still reads SQL as Gatehouse does.
  out.push(...PINNED_LEXING.map(([k, v]): [string, string] => [k, v]), ...(target.settings ?? []));
  if (opts.readOnly) out.push(['options', '-c default_transaction_read_only=on']);
  return out;
}

function startupMessage(params: [string, string][]): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  const body = Buffer.concat([head, ...params.flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
  body.writeInt32BE(body.length, 0);
  return body;
}

const FLUSH = frame(0x48, Buffer.alloc(0));
/** ParseComplete ('1') and CloseComplete ('3'): consumed only under transaction pooling. */
const PARSE_COMPLETE = 0x31;
const CLOSE_COMPLETE = 0x33;

/** A Bind that fails (26000): its statement name carries 64 random bits, so no client's statement has it. */
function abortBind(statement: string): Buffer {
  return frame(0x42, Buffer.concat([cstring(''), cstring(statement), Buffer.from([0, 0, 0, 0, 0, 0])]));
}

const md5hex = (s: string | Buffer) => createHash('md5').update(s).digest('hex');

/** An E'' literal: correct whatever standard_conforming_strings says. */
export function sqlLiteral(s: string): string {
  if (s.includes('\0')) throw new GatehouseError('22023', 'a name cannot contain a NUL byte');
  return `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

interface RunState {
  sink: ResultSink;
  resolve: (o: RunOutcome) => void;
  reject: (e: unknown) => void;
  done: boolean;
  draining: boolean;
  waiting?: boolean;
  finished?: TxStatus;
  timer?: NodeJS.Timeout;
  /** The first ErrorResponse of the run (relayed to the client), as a value. */
  error?: UpstreamError;
  /** The name in Gatehouse's own failing Bind (abortExtended): its error is swallowed, not relayed. */
  abortToken?: string;
  /** Gatehouse's own failing Bind was answered: no earlier message of the run failed. */
  aborted?: boolean;
  /** The org's result limits, and the current result's rows and bytes so far (reset at CommandComplete). */
  limit?: ResultLimit;
  rows: number;
  bytes: number;
  /** A result passed a limit: this error replaces the rest of the run (sent once), then only ReadyForQuery is relayed. */
  stopped?: GatehouseError;
  stopSent?: boolean;
  /** Gatehouse canceled the run for a limit (statement timeout): the warehouse's 57014 is replaced by this. */
  cancelAs?: GatehouseError;
  /** Gatehouse's own CancelRequest for this run (a limit, its timeout): delivered before the run ends. */
  cancelling?: Promise<void>;
}

type Message = { type: number; body: Buffer };

/**
 * One upstream connection. Modes: startup (messages queued for the async sign-in),
 * idle (only ParameterStatus and asynchronous notices expected), run (relaying one
 * simple Query's results to a sink until ReadyForQuery).
 */
export class UpstreamConnection {
  private socket!: net.Socket;
  private readonly framer = new BackendFramer();
  private mode: 'startup' | 'idle' | 'run' | 'dead' = 'startup';
  private queue: Message[] = [];
  private waiter?: { resolve: (m: Message) => void; reject: (e: unknown) => void };
  private running?: RunState;
  private backendKey?: { pid: number; secret: Buffer };
  private failure?: GatehouseError;
  txStatus: TxStatus = 'I';
  readonly parameters = new Map<string, string>();
  /** Where NotificationResponses that arrive between statements go (the client's session). */
  onNotification?: (framed: Buffer) => void;
  /** Called once when the connection dies (the warehouse closed it, or close()): a pool drops it. */
  onDead?: () => void;
  /**
   * Transaction pooling (transaction-pool.ts): upstream names of the statements prepared on this
   * connection, and who parsed its unnamed statement last. Unused in the other modes.
   */
  readonly prepared = new Set<string>();
  unnamedOwner?: object;
  /**
   * Transaction pooling: for each Parse and Close written in the running exchange, in order,
   * whether Gatehouse added it (a client statement prepared again on this connection): the
   * ParseComplete or CloseComplete answering one Gatehouse added is swallowed, not relayed.
   * Undefined (the other modes): every response is relayed untouched.
   */
  injected?: { parse: boolean[]; close: boolean[] };

  /** The session runs over TLS (pg-tls.ts). */
  encrypted = false;
  /** The sign-in used SCRAM-SHA-256-PLUS: the password proof is bound to the warehouse's certificate. */
  channelBound = false;
  /** tls-server-end-point of the warehouse's certificate, for SCRAM-SHA-256-PLUS. */
  private tlsServerEndPoint?: Buffer;

  private constructor(private readonly target: UpstreamTarget) {}

  /**
   * Connects and signs in; throws GatehouseError 08001 (network reason in detail, never the
   * password). The password is asked for only if the warehouse asks, used for this sign-in,
   * and dropped: nothing of it stays on the connection.
   */
  static async open(target: UpstreamTarget, params: [string, string][]): Promise<UpstreamConnection> {
    const c = new UpstreamConnection(target);
    const signIn: { password?: string } = {};
    try {
      await c.connect();
      c.socket.write(startupMessage(params));
      await c.authenticate(signIn);
      c.mode = 'idle';
      return c;
    } catch (e) {
      c.socket?.destroy();
      c.mode = 'dead';
      throw c.connectError(e, signIn.password);
    } finally {
      signIn.password = undefined;
    }
  }

  private connectError(e: unknown, pw: string | undefined): GatehouseError {
    if (e instanceof GatehouseError && e.sqlstate !== '08006') return e;
    let reason = e instanceof Error ? e.message : String(e);
    if (e instanceof GatehouseError && e.detail) reason = e.detail;
    if (pw) reason = reason.split(pw).join('***');
    return new GatehouseError('08001', `could not connect to warehouse of connection "${this.target.connection}"`, {
      detail: reason,
    });
  }

  /** TCP, and TLS as the target says (pg-tls.ts); then the socket feeds the framer. */
  private async connect(): Promise<void> {
    const { socket: s, tlsServerEndPoint, encrypted } = await openUpstreamSocket(this.target, CONNECT_TIMEOUT_MS);
    this.socket = s;
    this.encrypted = encrypted;
    this.tlsServerEndPoint = tlsServerEndPoint;
    s.on('error', (err) => this.lost(err.message));
    s.on('close', () => this.lost('the warehouse closed the connection'));
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.resume();
  }

  private next(): Promise<Message> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private send(buf: Buffer): void {
    if (this.mode !== 'dead') this.socket.write(buf);
  }

  private async authenticate(signIn: { password?: string }): Promise<void> {
    const needPassword = () => {
      // Decrypted (or read) now, on the warehouse's request, once per sign-in.
      signIn.password ??= this.target.password?.();
      if (signIn.password === undefined) throw new Error('the warehouse asked for a password, but none is configured (password or password_env)');
      return signIn.password;
    };
    let scram: { expected?: string; client?: ReturnType<typeof scramClient> } = {};
    for (;;) {
      const { type, body } = await this.next();
      if (type === MSG.Authentication) {
        const code = body.readInt32BE(0);
        if (code === 0) continue; // AuthenticationOk
        if (code === 3) this.send(frame(0x70, cstring(needPassword())));
        else if (code === 5) {
          const salt = body.subarray(4, 8);
          const inner = md5hex(needPassword() + this.target.user);
          this.send(frame(0x70, cstring(`md5${md5hex(Buffer.concat([Buffer.from(inner), salt]))}`)));
        } else if (code === 10) {
          const mechanisms = body.subarray(4).toString('utf8').split('\0').filter(Boolean);
          // Over TLS, channel binding when offered: the proof then holds only on a channel that ends at the certificate seen.
          const plus = this.tlsServerEndPoint !== undefined && mechanisms.includes(SCRAM_PLUS_MECHANISM);
          if (!plus && !mechanisms.includes(SCRAM_MECHANISM)) throw new Error(`the warehouse offers only SASL mechanisms ${mechanisms.join(', ')}`);
          const unoffered = this.encrypted && !mechanisms.includes(SCRAM_PLUS_MECHANISM);
          scram.client = scramClient(needPassword(), plus ? { tlsServerEndPoint: this.tlsServerEndPoint! } : unoffered ? 'not offered' : undefined);
          this.channelBound = plus;
          const data = Buffer.from(scram.client.clientFirst);
          const len = Buffer.alloc(4);
          len.writeInt32BE(data.length);
          this.send(frame(0x70, Buffer.concat([cstring(plus ? SCRAM_PLUS_MECHANISM : SCRAM_MECHANISM), len, data])));
        } else if (code === 11) {
          if (!scram.client) throw new Error('unexpected SASLContinue');
          const r = scram.client.respond(body.subarray(4).toString('utf8'));
          scram.expected = r.expectedServerFinal;
          this.send(frame(0x70, Buffer.from(r.clientFinal)));
        } else if (code === 12) {
          const got = Buffer.from(body.subarray(4).toString('utf8').trim());
          const want = Buffer.from(scram.expected ?? '');
          if (!scram.expected || got.length !== want.length || !timingSafeEqual(got, want))
            throw new Error('the warehouse SCRAM server signature did not verify');
          scram = { expected: 'verified' };
        } else throw new Error(`the warehouse asked for an unsupported authentication method (${code})`);
      } else if (type === MSG.ErrorResponse) {
        const f = errorFields(body);
        throw new Error(`${f.S ?? 'FATAL'}: ${f.M ?? 'unknown error'}${f.C ? ` (SQLSTATE ${f.C})` : ''}`);
      } else if (type === MSG.BackendKeyData) {
        this.backendKey = { pid: body.readInt32BE(0), secret: Buffer.from(body.subarray(4)) };
      } else if (type === MSG.ParameterStatus) {
        const [k, v] = parameterStatus(body);
        this.parameters.set(k, v);
      } else if (type === MSG.ReadyForQuery) {
        if (scram.client && scram.expected !== 'verified') throw new Error('the warehouse skipped SCRAM server verification');
        for (const [k, v] of PINNED_REPORTED) {
          if (this.parameters.get(k) !== v)
            throw new Error(`the warehouse session did not start with ${k}=${v} (it reports ${this.parameters.get(k) ?? 'nothing'})`);
        }
        this.txStatus = readyStatus(body);
        return;
      }
      // NoticeResponse, NegotiateProtocolVersion: nothing to do at startup.
    }
  }

  private onData(chunk: Buffer): void {
    let buf: Buffer;
    try {
      buf = this.framer.feed(chunk);
    } catch (e) {
      this.lost((e as Error).message);
      this.socket.destroy();
      return;
    }
    if (buf.length === 0) return;
    if (this.mode === 'startup') {
      visitMessages(buf, {
        consumes: () => true,
        run: () => {},
        message: (type, body) => {
          const m = { type, body: Buffer.from(body) };
          if (this.waiter) {
            const w = this.waiter;
            this.waiter = undefined;
            w.resolve(m);
          } else this.queue.push(m);
        },
      });
      return;
    }
    const st = this.running;
    if (this.mode === 'run' && st && !st.done) {
      if (st.sink.closed) return this.clientGone(st);
      visitMessages(buf, {
        consumes: (t, length) =>
          st.done ||
          st.stopped !== undefined ||
          t === MSG.ReadyForQuery ||
          t === MSG.ParameterStatus ||
          t === MSG.CopyInResponse ||
          t === MSG.CopyBothResponse ||
          t === MSG.BackendKeyData ||
          t === MSG.ErrorResponse ||
          (st.limit !== undefined && this.overLimit(st, t, length)) ||
          (this.injected !== undefined && (t === PARSE_COMPLETE || t === CLOSE_COMPLETE)),
        run: (msgs) => {
          if (!st.sink.relay(msgs)) st.draining = true;
        },
        message: (type, body) => this.consumed(type, body, st),
      });
      if (st.draining && !st.done) this.waitForDrain(st);
      return;
    }
    // Idle: ParameterStatus after a SET, a notification (LISTEN), or a FATAL (administrator shutdown) before close.
    visitMessages(buf, { consumes: () => true, run: () => {}, message: (type, body) => this.consumed(type, body) });
  }

  /**
   * Counts a result's rows and bytes (only the type and length, from the framing already read);
   * true when this row passes a limit: it is dropped, the statement is canceled upstream, and the
   * run is stopped (consumed() sends the error in the row's place, in order).
   */
  private overLimit(st: RunState, type: number, length: number): boolean {
    if (type === MSG.CommandComplete) {
      st.rows = 0;
      st.bytes = 0;
      return false;
    }
    if (type !== MSG.DataRow && type !== MSG.CopyData) return false;
    st.rows++;
    st.bytes += length;
    const { rows, bytes } = st.limit!;
    const which = rows > 0 && st.rows > rows ? 'rows' : bytes > 0 && st.bytes > bytes ? 'bytes' : undefined;
    if (!which) return false;
    st.stopped = st.limit!.exceeded(which);
    st.cancelling = this.cancel();
    return true;
  }

  private consumed(type: number, body: Buffer, st?: RunState): void {
    if (st?.stopped && !st.done && type !== MSG.ReadyForQuery && type !== MSG.ParameterStatus) {
      // The rest of the run after a result limit: the error once, in the place of the first row
      // over it; nothing else (the warehouse's 57014 for the cancel, later rows, CommandComplete)
      // until ReadyForQuery. A COPY FROM STDIN that still starts is refused so the run can end.
      if (!st.stopSent) {
        st.stopSent = true;
        st.error = { sqlstate: st.stopped.sqlstate, message: st.stopped.message, severity: 'ERROR' };
        if (!st.sink.error(st.stopped)) st.draining = true;
      }
      if (type === MSG.CopyInResponse || type === MSG.CopyBothResponse) this.send(frame(0x66, cstring('the result limit was reached')));
      return;
    }
    if (type === MSG.ErrorResponse && st && !st.done) {
      const f = errorFields(body);
      if (st.cancelAs && f.C === '57014') {
        st.error ??= { sqlstate: st.cancelAs.sqlstate, message: st.cancelAs.message, severity: 'ERROR' };
        if (!st.sink.error(st.cancelAs)) st.draining = true;
        return;
      }
      if (st.abortToken && f.C === '26000' && f.M?.includes(st.abortToken)) {
        st.aborted = true;
        return;
      }
      st.error ??= { sqlstate: f.C ?? 'XX000', message: f.M ?? '', severity: f.S };
      if (!st.sink.relay(frame(MSG.ErrorResponse, body))) st.draining = true;
      return;
    }
    if ((type === PARSE_COMPLETE || type === CLOSE_COMPLETE) && st && !st.done) {
      // Only consumed under transaction pooling: drop the answers to Gatehouse's own messages.
      const added = (type === PARSE_COMPLETE ? this.injected?.parse : this.injected?.close)?.shift();
      if (!added && !st.sink.relay(frame(type, body))) st.draining = true;
      return;
    }
    if (type === MSG.NotificationResponse && !st) {
      // LISTEN's notifications arrive between statements: straight to the client.
      this.onNotification?.(frame(type, body));
      return;
    }
    if (type === MSG.ParameterStatus) {
      const [k, v] = parameterStatus(body);
      this.parameters.set(k, v);
      if (PINNED_REPORTED.has(k) && PINNED_REPORTED.get(k) !== v) this.pinnedChanged(k, v);
    } else if (type === MSG.ReadyForQuery && st && !st.done) {
      this.txStatus = readyStatus(body);
      // After an error the rest up to Sync was skipped: no answers left to drop.
      if (this.injected) this.injected = { parse: [], close: [] };
      st.finished = this.txStatus;
      if (!st.draining) this.finish(st);
    } else if (type === MSG.CopyInResponse && st && st.sink.copyIn) {
      // COPY FROM STDIN that policy allowed (a level and connection that may write): the
      // client's CopyData goes upstream as it comes, until its CopyDone or CopyFail.
      st.sink.copyIn(frame(type, body), { write: (m) => this.write(m), writable: () => this.writable() });
    } else if ((type === MSG.CopyInResponse || type === MSG.CopyBothResponse) && st) {
      // A sink that cannot feed COPY FROM STDIN (Gatehouse's own queries), or replication's
      // COPY BOTH: refuse it (protocol "COPY Operations": CopyFail ends the copy with an error, relayed).
      this.send(frame(0x66, cstring('COPY FROM STDIN is not supported here through Gatehouse')));
    } else if (type === MSG.ErrorResponse && !st) {
      const f = errorFields(body);
      if (f.S === 'FATAL' || f.S === 'PANIC') this.lost(`${f.S}: ${f.M}`);
    }
  }

  private waitForDrain(st: RunState): void {
    if (st.waiting) return;
    st.waiting = true;
    this.socket.pause();
    const wait = st.sink.drain();
    const poll = new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (st.sink.closed || st.done) {
          clearInterval(t);
          resolve();
        }
      }, CLIENT_GONE_POLL_MS);
      wait.finally(() => clearInterval(t));
    });
    void Promise.race([wait, poll]).then(() => {
      if (st.done) return;
      if (st.sink.closed) return this.clientGone(st);
      st.draining = false;
      st.waiting = false;
      if (st.finished !== undefined) return this.finish(st);
      if (this.mode === 'run') this.socket.resume();
    });
  }

  private finish(st: RunState): void {
    if (st.cancelling && !st.done) {
      // The warehouse closes the cancel connection once it has signalled the backend: until
      // then the signal could still land on the session's next statement, so the run (and
      // with it the session) waits for it. PostgreSQL ignores a cancel that finds it idle.
      const cancelling = st.cancelling;
      st.cancelling = undefined;
      void cancelling.then(() => this.finish(st));
      return;
    }
    st.done = true;
    clearInterval(st.timer);
    this.running = undefined;
    if (this.mode === 'run') this.mode = 'idle';
    this.socket.resume();
    st.resolve({ status: st.finished ?? this.txStatus, error: st.error, aborted: st.aborted === true, ...(st.stopped ? { stopped: true } : {}) });
  }

  /** The client went away mid-statement: stop the upstream work and end the run. */
  private clientGone(st: RunState): void {
    if (st.done) return;
    void this.cancel();
    st.finished = this.txStatus;
    this.failure = new GatehouseError('08006', `the client went away; connection to warehouse of connection "${this.target.connection}" closed`);
    this.mode = 'dead';
    this.died();
    this.socket.destroy();
    this.finish(st);
  }

  /**
   * A statement changed a setting the warehouse lexes SQL with (SET standard_conforming_strings
   * = off slipped through policy): the next message would be read differently from how
   * Gatehouse read it, so the connection ends now, before it reads another message. The
   * open transaction (the implicit one of an extended batch included) is rolled back.
   */
  private pinnedChanged(name: string, value: string): void {
    this.lost(
      `a statement set ${name} to ${value}; Gatehouse reads SQL only with ${[...PINNED_REPORTED].map(([k, v]) => `${k}=${v}`).join(', ')}, so it closed this warehouse connection`,
    );
    this.socket.destroy();
  }

  private lost(reason: string): void {
    if (this.mode === 'dead' && this.failure) return;
    const err = new GatehouseError('08006', `lost the connection to warehouse of connection "${this.target.connection}"`, {
      detail: reason,
    });
    this.failure = err;
    const wasStartup = this.mode === 'startup';
    this.mode = 'dead';
    this.died();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(wasStartup ? new Error(reason) : err);
    }
    const st = this.running;
    if (st && !st.done) {
      st.done = true;
      clearInterval(st.timer);
      this.running = undefined;
      st.reject(err);
    }
  }

  get usable(): boolean {
    return this.mode === 'idle' && !this.socket.destroyed;
  }

  /** The warehouse's server_version, from its ParameterStatus at sign-in (pool.ts). */
  get serverVersion(): string | undefined {
    return this.parameters.get('server_version');
  }

  /** The warehouse backend's process id (BackendKeyData): logs and tests. */
  get backendPid(): number | undefined {
    return this.backendKey?.pid;
  }

  private died(): void {
    const f = this.onDead;
    this.onDead = undefined;
    f?.();
  }

  /** Sends one simple Query and relays every result message to the sink; resolves at ReadyForQuery. */
  query(sql: string, sink: ResultSink, limit?: ResultLimit): Promise<RunOutcome> {
    return this.exchange(queryMessage(sql), sink, limit);
  }

  /**
   * Sends frontend messages that end in a Query or a Sync and relays every response to the
   * sink until ReadyForQuery (whose status it resolves with, beside the run's first error).
   */
  exchange(messages: Buffer, sink: ResultSink, limit?: ResultLimit): Promise<RunOutcome> {
    const outcome = this.startRun(sink, limit);
    this.write(messages);
    return outcome;
  }

  /**
   * Starts relaying responses to the sink without sending anything: the extended protocol's
   * messages are written as the client sends them (write), Flush and all, until a Sync ends
   * the run at ReadyForQuery.
   */
  startRun(sink: ResultSink, limit?: ResultLimit): Promise<RunOutcome> {
    if (this.mode !== 'idle') {
      return Promise.reject(this.failure ?? new GatehouseError('08006', `warehouse connection of "${this.target.connection}" is busy`));
    }
    return new Promise<RunOutcome>((resolve, reject) => {
      const active = limit && (limit.rows > 0 || limit.bytes > 0) ? limit : undefined;
      const st: RunState = { sink, resolve, reject, done: false, draining: false, limit: active, rows: 0, bytes: 0 };
      this.running = st;
      this.mode = 'run';
      st.timer = setInterval(() => {
        if (sink.closed && !st.done) this.clientGone(st);
      }, CLIENT_GONE_POLL_MS);
      st.timer.unref();
    });
  }

  /** Frontend messages for the running exchange; false: the socket is behind (await writable()). */
  write(messages: Buffer): boolean {
    if (this.mode !== 'run') return true;
    return this.socket.write(messages);
  }

  /** Resolves when the upstream socket has room again (or is gone). */
  writable(): Promise<void> {
    return this.mode === 'dead' ? Promise.resolve() : whenWritable(this.socket);
  }

  /**
   * Ends the running exchange as if its next message had failed: a Bind of a statement that
   * cannot exist, then Sync. PostgreSQL answers it with 26000 (swallowed here) unless an earlier
   * message already failed, skips to Sync and rolls the implicit transaction back (an explicit
   * one is left failed): so a message Gatehouse refused in the middle of an extended exchange
   * leaves the warehouse as a failing message would. `aborted` in the outcome says whether it
   * was Gatehouse's Bind that failed (no earlier error reached the client). The run's promise
   * (startRun) resolves at the ReadyForQuery.
   */
  abort(messages: Buffer): void {
    const st = this.running;
    if (!st) return;
    st.abortToken = `gatehouse_refused_${randomBytes(8).toString('hex')}`;
    this.write(Buffer.concat([messages, abortBind(st.abortToken), syncMessage()]));
  }

  /** Runs Gatehouse's own query and returns its rows as text; an upstream error becomes a thrown Error. */
  async rows(sql: string): Promise<{ fields: string[]; rows: (string | null)[][] }> {
    const sink = new RowsSink();
    const { error } = await this.query(sql, sink);
    if (error) throw new Error(`${error.message} (SQLSTATE ${error.sqlstate})`);
    return { fields: sink.fields, rows: sink.rows };
  }

  /**
   * CancelRequest on a separate connection (protocol "Canceling Requests in Progress"). With a
   * reason (Gatehouse's statement timeout), the run's 57014 reaches the client as that error.
   */
  cancel(reason?: GatehouseError): Promise<void> {
    const key = this.backendKey;
    if (!key) return Promise.resolve();
    const body = Buffer.alloc(12 + key.secret.length);
    body.writeInt32BE(body.length, 0);
    body.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    body.writeInt32BE(key.pid, 8);
    key.secret.copy(body, 12);
    // Over TLS like the session (the backend key is a credential to cancel with); a failure is a cancel that did not happen.
    const sent = openUpstreamSocket(this.target, CONNECT_TIMEOUT_MS).then(
      ({ socket: s }) =>
        new Promise<void>((resolve) => {
          s.once('error', () => resolve());
          s.once('close', () => resolve());
          s.setTimeout(CONNECT_TIMEOUT_MS, () => s.destroy());
          s.resume();
          s.end(body);
        }),
      () => undefined,
    );
    if (reason && this.running && !this.running.done) {
      this.running.cancelAs = reason;
      this.running.cancelling = sent;
    }
    return sent;
  }

  async close(): Promise<void> {
    if (this.mode === 'dead') return;
    this.mode = 'dead';
    this.failure = new GatehouseError('08006', `warehouse connection of "${this.target.connection}" is closed`);
    // A run still relaying (the session ended under it: shutdown) ends with that failure, so its statement is audited.
    const st = this.running;
    if (st && !st.done) {
      st.done = true;
      clearInterval(st.timer);
      this.running = undefined;
      st.reject(this.failure);
    }
    this.died();
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end(frame(0x58, Buffer.alloc(0))); // Terminate
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}

/** Collects the rows of Gatehouse's own queries (catalog checks), decoded as text. */
class RowsSink implements ResultSink {
  fields: string[] = [];
  rows: (string | null)[][] = [];
  closed = false;
  relay(buf: Buffer): boolean {
    visitMessages(buf, {
      consumes: () => true,
      run: () => {},
      message: (type, body) => {
        if (type === MSG.RowDescription) {
          const n = body.readInt16BE(0);
          let off = 2;
          this.fields = [];
          for (let i = 0; i < n; i++) {
            const end = body.indexOf(0, off);
            this.fields.push(body.toString('utf8', off, end));
            off = end + 19;
          }
        } else if (type === MSG.DataRow) this.rows.push(dataRowValues(body));
      },
    });
    return true;
  }
  rowDescription(_f: FieldDescription[]) {
    return true;
  }
  dataRow(_v: (string | null)[]) {
    return true;
  }
  commandComplete(_t: string) {
    return true;
  }
  emptyQuery() {
    return true;
  }
  copyOutResponse(_c: number) {
    return true;
  }
  copyData(_d: Buffer) {
    return true;
  }
  copyDone() {
    return true;
  }
  notice(_m: string) {
    return true;
  }
  error(_e: GatehouseError) {
    return true;
  }
  drain() {
    return Promise.resolve();
  }
}

export class PostgresSession implements WarehouseSession {
  constructor(
    private readonly conn: UpstreamConnection,
    /** Session pooling: where the connection goes at close (PostgresWarehouse.checkin) instead of being closed. */
    private readonly checkin?: (conn: UpstreamConnection) => Promise<void>,
    /** The org's result limits, counted on every run of this session. */
    private readonly limit?: ResultLimit,
  ) {}

  /** The warehouse backend's process id (tests, logs). */
  get backendPid(): number | undefined {
    return this.conn.backendPid;
  }

  /** The warehouse's own server_version, from its ParameterStatus at sign-in. */
  get serverVersion(): string | undefined {
    return this.conn.parameters.get('server_version');
  }

  get txStatus(): TxStatus {
    return this.conn.txStatus;
  }

  /** One simple Query of the statements joined: PostgreSQL's implicit transaction for a multi-statement Query holds. */
  run(statements: WarehouseStatement[], sink: ResultSink): Promise<RunOutcome> {
    return this.conn.query(statements.map((s) => s.sql).join(';\n'), sink, this.limit);
  }

  /** The extended exchange running since the first message after the last Sync. */
  private exchange?: Promise<RunOutcome>;

  get inExtended(): boolean {
    return this.exchange !== undefined;
  }

  /**
   * Extended-protocol messages (policy decided each), written now: one upstream connection per
   * session, so statement and portal names are the client's own. Every response is relayed byte
   * for byte as it arrives (binary formats included, PortalSuspended after a row-limited Execute:
   * nothing is decoded). With `flush`, a Flush follows, so the warehouse answers what it has.
   * Resolves once the upstream socket can take more.
   */
  async sendExtended(steps: ExtendedStep[], sink: ResultSink, flush: boolean): Promise<void> {
    const started = this.begin(sink);
    const bytes = [...steps.map(extendedMessage)];
    if (flush) bytes.push(FLUSH);
    if (!this.conn.write(Buffer.concat(bytes))) await Promise.race([this.conn.writable(), started]);
  }

  /** The rest of the exchange, then Sync: resolves at ReadyForQuery. */
  syncExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    const outcome = this.begin(sink);
    this.exchange = undefined;
    this.conn.write(Buffer.concat([...steps.map(extendedMessage), syncMessage()]));
    return outcome;
  }

  /** The rest of the exchange, then a message that fails and Sync (UpstreamConnection.abort). */
  abortExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    const outcome = this.begin(sink);
    this.exchange = undefined;
    this.conn.abort(Buffer.concat(steps.map(extendedMessage)));
    return outcome;
  }

  private begin(sink: ResultSink): Promise<RunOutcome> {
    if (!this.exchange) {
      this.exchange = this.conn.startRun(sink, this.limit);
      // Awaited at Sync; a lost upstream before then must not be an unhandled rejection.
      this.exchange.catch(() => {});
    }
    return this.exchange;
  }

  /** LISTEN: notifications the warehouse sends between statements go to the client. */
  onNotification(relay: (framed: Buffer) => void): void {
    this.conn.onNotification = relay;
  }

  /** Forwards a client's CancelRequest: the running statement ends with 57014, relayed. */
  cancel(reason?: GatehouseError): Promise<void> {
    return this.conn.cancel(reason);
  }

  close(): Promise<void> {
    return this.checkin ? this.checkin(this.conn) : this.conn.close();
  }
}
