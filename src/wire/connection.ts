// One client connection as a state machine (protocol v3, 55.2):
//
//   AwaitingStartup --SSLRequest, answered 'S'--> TlsHandshake --> AwaitingStartup (over TLS)
//   AwaitingStartup --TLS ClientHello (direct TLS)--> TlsHandshake --> AwaitingStartup (over TLS)
//   AwaitingStartup --StartupMessage--> Authenticating (an AuthFlow: SCRAM-SHA-256) --> Ready
//   Ready --Query--> InQuery --> Ready            (ReadyForQuery after each)
//   Ready --Parse/Bind/Describe/Execute/Close--> Extended (each decided and passed on)
//   Extended --Flush--> Extended (the warehouse answers what it has)
//   Extended --Sync--> Ready
//   Extended --refused, failed or malformed--> DiscardUntilSync --Sync--> Ready
//   any --Terminate / peer gone / FATAL--> Closed
//
// Messages are decoded one at a time by a single pump: while a query runs the
// next ones wait in the decoder (pipelining), in order.
import { randomInt, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { GatehouseError, asClientError, isGatehouseError } from '../errors.ts';
import { administratorShutdown, idleInTransactionTimeout, idleSessionTimeout } from '../limits/limits.ts';
import type { SignInAttempt, SignInThrottle, ThrottleRefusal } from '../limits/sign-in-throttle.ts';
import type { AuthFlow, AuthRequest, AuthResponse, AuthStep, Identity } from '../identity/flow.ts';
import type { TxStatus } from '../warehouses/types.ts';
import { FrontendDecoder, MAX_AUTH_MESSAGE_BYTES, decodeCleartextPassword, decodeSASLInitialResponse, decodeSASLResponse } from './decode.ts';
import * as enc from './encode.ts';
import type { ConnectionHandler, ServerSession, StartupInfo } from './handler.ts';
import type { FrontendMessage, StartupMessage } from './messages.ts';
import type { CopyInUpstream } from './sink.ts';
import { SocketSink } from './socket-sink.ts';
import { ALPN_POSTGRESQL, TLS_HANDSHAKE_RECORD, type WireTls, upgradeToTls } from './tls.ts';

/** Above this many undecoded input bytes while a message is being handled, stop reading the socket. */
const INPUT_HIGH_WATER = 1024 * 1024;

export type ConnectionState =
  | { kind: 'AwaitingStartup' }
  /** 'S' sent (or a ClientHello received): the TLS handshake runs; no protocol message is read until it ends. */
  | { kind: 'TlsHandshake' }
  | {
      kind: 'Authenticating';
      startup: StartupInfo;
      flow: AuthFlow;
      /** The request the client's next 'p' message answers: it says how to decode it. */
      awaiting: AuthRequest['type'];
    }
  | { kind: 'Ready' }
  | { kind: 'InQuery' }
  /** Extended query protocol (55.2.3): an exchange is open (messages since the last Sync). */
  | { kind: 'Extended' }
  /** After an error in an extended-protocol message: discard everything until Sync (55.2.3). */
  | { kind: 'DiscardUntilSync' }
  | { kind: 'Closed' };

/** Backend keys of live sessions, for CancelRequest (which arrives on a new connection). */
export class BackendKeys {
  private readonly live = new Map<number, { secretKey: number; cancel: () => void }>();

  allocate(cancel: () => void): { processId: number; secretKey: number } {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.live.has(processId));
    const secretKey = randomInt(-(2 ** 31), 2 ** 31 - 1);
    this.live.set(processId, { secretKey, cancel });
    return { processId, secretKey };
  }

  release(processId: number): void {
    this.live.delete(processId);
  }

  /** True when the key matched a live session (whose cancel() was called). */
  cancel(processId: number, secretKey: number): boolean {
    const entry = this.live.get(processId);
    if (!entry) return false;
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    a.writeInt32BE(entry.secretKey);
    b.writeInt32BE(secretKey | 0);
    if (!timingSafeEqual(a, b)) return false;
    entry.cancel();
    return true;
  }

  get size(): number {
    return this.live.size;
  }
}

export interface ConnectionContext {
  handler: ConnectionHandler;
  keys: BackendKeys;
  maxMessageBytes: number;
  logger: Logger;
  /** Time allowed from connect to ReadyForQuery (PostgreSQL's authentication_timeout). */
  authTimeoutMs: number;
  /** After ReadyForQuery, how long a session may wait for a command outside (idleSessionTimeoutMs) or inside a transaction; 0 or absent: forever. */
  idleSessionTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /** The server's certificate (rules/gatehouse.yaml server.tls): SSLRequest is answered 'S'; absent: 'N'. */
  tls?: WireTls;
  /** Failed sign-ins per user and address, and connections still signing in per address (src/limits/sign-in-throttle.ts). */
  throttle?: SignInThrottle;
}

const asFatal = (e: GatehouseError): GatehouseError =>
  e.severity === 'FATAL' ? e : new GatehouseError(e.sqlstate, e.message, { severity: 'FATAL', detail: e.detail, hint: e.hint });

export class WireConnection {
  state: ConnectionState = { kind: 'AwaitingStartup' };
  private readonly decoder: FrontendDecoder;
  /** Replaced once, with the socket, when the session upgrades to TLS. */
  private sink: SocketSink;
  private socket: Socket;
  /** The TLS socket once the handshake completed (the session is encrypted). */
  private secure: TLSSocket | undefined;
  private readonly dataListener = (chunk: Buffer) => this.onData(chunk);
  private session: ServerSession | undefined;
  private startup: StartupInfo | undefined;
  private tx: TxStatus = 'I';
  private key: { processId: number; secretKey: number } | undefined;
  private busy = false;
  /** While the warehouse reads a COPY FROM STDIN: where the client's copy messages go (beside the busy pump). */
  private copyIn: CopyInUpstream | undefined;
  private peerGone = false;
  private closeRequested = false;
  private authTimer: NodeJS.Timeout | undefined;
  /** Armed while the session waits for a command after ReadyForQuery (idle timeouts). */
  private idleTimer: NodeJS.Timeout | undefined;
  private teardownPromise: Promise<void> | undefined;
  private readonly remoteAddress: string;
  /** This connection's place among its address's connections still signing in (the throttle). */
  private unfinished: { release: () => void } | undefined;
  /** The sign-in under way, counted by the throttle until it ends one way or another. */
  private attempt: SignInAttempt | undefined;
  /** Resolves once the connection is fully closed (socket and session). */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    socket: Socket,
    private readonly ctx: ConnectionContext,
  ) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    // Until signed in, messages are small (PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH): an unauthenticated
    // peer cannot make Gatehouse hold megabytes; raised to maxMessageBytes at sign-in.
    this.decoder = new FrontendDecoder({ maxMessageBytes: Math.min(ctx.maxMessageBytes, MAX_AUTH_MESSAGE_BYTES) });
    this.sink = this.sinkOn(socket);
    this.finished = new Promise((r) => (this.resolveFinished = r));
    socket.setNoDelay(true);
    if (ctx.tls) {
      // Direct TLS is told apart by the first byte only: the first chunk goes through
      // `first`, every later one straight to onData (no per-message check).
      const first = (chunk: Buffer) => {
        socket.off('data', first);
        if (chunk.length > 0 && chunk[0] === TLS_HANDSHAKE_RECORD && this.state.kind === 'AwaitingStartup') this.startTls(chunk);
        else {
          socket.on('data', this.dataListener);
          this.onData(chunk);
        }
      };
      socket.on('data', first);
    } else socket.on('data', this.dataListener);
    socket.on('error', (err) => ctx.logger.debug({ err, remoteAddress: this.remoteAddress }, 'client socket error'));
    socket.on('close', () => this.onPeerGone());
    this.authTimer = setTimeout(() => {
      if (this.state.kind !== 'AwaitingStartup' && this.state.kind !== 'Authenticating' && this.state.kind !== 'TlsHandshake') return;
      this.guard('authentication timeout', () => {
        this.ctx.handler.log('protocol_error', { remoteAddress: this.remoteAddress, reason: 'authentication timeout' });
        const user = this.state.kind === 'Authenticating' ? this.state.startup.user : undefined;
        this.ctx.handler.log('limit_reached', { user, remoteAddress: this.remoteAddress, limit: 'authentication_timeout', value: ctx.authTimeoutMs });
      });
      this.fatal(new GatehouseError('57014', 'canceling authentication due to timeout', { severity: 'FATAL' }));
    }, ctx.authTimeoutMs);
    this.authTimer.unref();
    const admitted = ctx.throttle?.connected(this.remoteAddress);
    if (admitted && 'refusal' in admitted) {
      // At once, before reading a byte, as PostgreSQL answers when it cannot start a backend:
      // the flood's sockets are closed rather than held until authentication_timeout.
      this.throttled(admitted.refusal, undefined);
      return;
    }
    this.unfinished = admitted;
  }

  /** The throttle refused this connection or its sign-in: audited (user as typed, address, counts), then FATAL. */
  private throttled(refusal: ThrottleRefusal, user: string | undefined): void {
    const { error, ...counts } = refusal;
    this.guard('throttle log', () => this.ctx.handler.log('auth_throttled', { user, remoteAddress: this.remoteAddress, ...counts }));
    this.fatal(error);
  }

  private sinkOn(socket: Socket): SocketSink {
    return new SocketSink(socket, (upstream) => {
      this.copyIn = upstream;
      queueMicrotask(() => this.feedCopyIn());
    });
  }

  /**
   * Graceful shutdown: FATAL 57P01 now when the session waits for a command (or has not signed
   * in yet); otherwise once the running Query or the open extended exchange reaches its
   * ReadyForQuery (the client gets its result first).
   */
  shutdown(): Promise<void> {
    this.closeRequested = true;
    if (!this.busy && this.atRest()) this.fatal(administratorShutdown());
    return this.finished;
  }

  /** The shutdown deadline: a running statement is canceled on the warehouse, and the session ends with 57P01 now. */
  terminate(): void {
    if (this.state.kind === 'InQuery') this.guard('cancel at shutdown', () => this.session?.cancel());
    this.fatal(administratorShutdown());
  }

  /** Ends the connection at once (after terminate(), for a client that does not read). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Between statements: nothing runs and no extended exchange is open. */
  private atRest(): boolean {
    const k = this.state.kind;
    return k === 'Ready' || k === 'AwaitingStartup' || k === 'Authenticating' || k === 'TlsHandshake';
  }

  /**
   * PostgreSQL's idle_session_timeout and idle_in_transaction_session_timeout: armed when the
   * session waits for a command after ReadyForQuery (never inside an extended exchange, as on
   * PostgreSQL), disarmed by any byte from the client.
   */
  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    const inTransaction = this.tx !== 'I';
    const ms = (inTransaction ? this.ctx.idleInTransactionTimeoutMs : this.ctx.idleSessionTimeoutMs) ?? 0;
    if (ms <= 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.state.kind !== 'Ready' || this.busy) return;
      const limit = inTransaction ? 'idle_in_transaction_session_timeout' : 'idle_session_timeout';
      this.guard('idle timeout', () =>
        this.ctx.handler.log('limit_reached', {
          user: this.startup?.user,
          database: this.startup?.database,
          remoteAddress: this.remoteAddress,
          processId: this.key?.processId,
          limit,
          value: ms,
        }),
      );
      this.fatal(inTransaction ? idleInTransactionTimeout(ms) : idleSessionTimeout(ms));
    }, ms);
    this.idleTimer.unref();
  }

  /** Runs a callback into other modules from an event handler: a throw there must not reach the process. */
  private guard(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.ctx.logger.error({ err, remoteAddress: this.remoteAddress }, `${what} failed`);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state.kind === 'Closed') return;
    clearTimeout(this.idleTimer);
    this.decoder.push(chunk);
    if (this.copyIn) this.feedCopyIn();
    if (this.busy && this.decoder.bufferedBytes > INPUT_HIGH_WATER) this.socket.pause();
    void this.pump();
  }

  /**
   * COPY FROM STDIN (55.2.6): the statement that asked for it is still running (the pump waits
   * on it), so the client's CopyData, CopyDone and CopyFail are taken from the decoder here and
   * passed to the warehouse as they come, pausing the client while the warehouse is behind.
   * Flush and Sync are ignored, as PostgreSQL ignores them during COPY; any other message ends
   * the copy with an error (08P01 on PostgreSQL).
   */
  private feedCopyIn(): void {
    const upstream = this.copyIn;
    while (upstream && this.copyIn === upstream) {
      let msg: FrontendMessage | undefined;
      try {
        msg = this.decoder.next();
      } catch (e) {
        upstream.write(enc.copyFail(`the client's COPY data could not be read: ${asClientError(e).message}`));
        this.copyIn = undefined;
        this.fatal(asClientError(e));
        return;
      }
      if (!msg) return;
      switch (msg.type) {
        case 'CopyData':
          if (!upstream.write(enc.copyData(msg.data))) {
            this.socket.pause();
            void upstream.writable().then(() => {
              if (this.state.kind !== 'Closed') this.socket.resume();
              this.feedCopyIn();
            });
            return;
          }
          continue;
        case 'CopyDone':
          upstream.write(enc.copyDoneFrontend());
          this.copyIn = undefined;
          return;
        case 'CopyFail':
          upstream.write(enc.copyFail(msg.message));
          this.copyIn = undefined;
          return;
        case 'Flush':
        case 'Sync':
          continue;
        default:
          upstream.write(enc.copyFail(`unexpected message type ${msg.type} during COPY from stdin`));
          this.copyIn = undefined;
          return;
      }
    }
  }

  private onPeerGone(): void {
    this.peerGone = true;
    if (this.state.kind === 'InQuery') {
      // The results have nowhere to go: stop the statement upstream too.
      this.guard('cancel on disconnect', () => this.session?.cancel());
    }
    if (!this.busy) this.close();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.state.kind !== 'Closed' && !this.peerGone && !(this.closeRequested && this.atRest())) {
        let msg: FrontendMessage | undefined;
        try {
          msg = this.decoder.next();
        } catch (e) {
          // The stream can no longer be framed: 08P01 FATAL (message too large, bad length, unknown type).
          const err = asClientError(e);
          this.ctx.handler.log('protocol_error', { remoteAddress: this.remoteAddress, reason: err.message });
          // Before a startup packet PostgreSQL only logs a bad length (COMMERROR) and closes:
          // a Terminate sent before startup (node-postgres ending early) gets no FATAL to choke on.
          if (this.state.kind === 'AwaitingStartup' && err.message.startsWith('invalid length of startup packet')) this.close();
          else this.fatal(err);
          break;
        }
        if (!msg) break;
        await this.handle(msg);
        // A client that does not read its answers is not read either, as PostgreSQL blocks on
        // its send: answers Gatehouse writes itself (refusals, SET/SHOW, the catalog's) would
        // otherwise pile up in memory for as long as the client keeps sending.
        if (this.sink.behind) {
          this.socket.pause();
          await this.sink.drain();
        }
      }
    } catch (e) {
      // Never let client bytes (or a bug they trigger) take down more than this connection.
      this.ctx.logger.error({ err: e, remoteAddress: this.remoteAddress, state: this.state.kind }, 'connection failed');
      this.fatal(asClientError(e));
    } finally {
      this.busy = false;
      if (this.peerGone) this.close();
      else if (this.closeRequested && this.atRest()) this.fatal(administratorShutdown());
      else if (this.state.kind !== 'Closed') {
        this.socket.resume();
        if (this.state.kind === 'Ready') this.armIdleTimer();
      }
    }
  }

  private async handle(msg: FrontendMessage): Promise<void> {
    switch (this.state.kind) {
      case 'AwaitingStartup':
        return this.onStartupPacket(msg);
      case 'Authenticating':
        return this.onAuthMessage(msg);
      case 'Ready':
        return this.onReadyMessage(msg);
      case 'Extended':
        return this.onExtendedMessage(msg);
      case 'DiscardUntilSync':
        return this.onDiscarding(msg);
      case 'InQuery':
      case 'Closed':
      case 'TlsHandshake':
        // The pump handles one message at a time, so these never see a message (nor is
        // anything read during the handshake).
        return;
    }
  }

  // ---- startup ----

  private onStartupPacket(msg: FrontendMessage): void {
    switch (msg.type) {
      case 'SSLRequest':
        return this.onSSLRequest();
      case 'GSSENCRequest':
        if (this.secure) return this.negotiationAfterTls('GSSENCRequest');
        // GSS encryption is not offered: 'N', then libpq goes on with an SSLRequest or a StartupMessage.
        this.sink.send(enc.sslRefused());
        return;
      case 'CancelRequest':
        // 55.2.7: the cancel connection gets no reply either way. Taken in clear even when TLS
        // is required: libpq before 17 sends every CancelRequest unencrypted, as PostgreSQL allows.
        this.ctx.keys.cancel(msg.processId, msg.secretKey);
        this.close();
        return;
      case 'StartupMessage':
        return this.onStartupMessage(msg);
      default:
        this.fatal(new GatehouseError('08P01', `expected a startup packet, got ${msg.type}`, { severity: 'FATAL' }));
    }
  }

  /** 55.2.10: 'S' and the handshake when a certificate is configured; otherwise 'N' and the client goes on in clear (or gives up). */
  private onSSLRequest(): void {
    if (this.secure) return this.negotiationAfterTls('SSLRequest');
    if (!this.ctx.tls) {
      this.sink.send(enc.sslRefused());
      return;
    }
    if (this.decoder.bufferedBytes > 0 || this.socket.readableLength > 0) {
      // CVE-2021-23214: bytes sent after the SSLRequest, before the handshake, were written by
      // whoever could write to the plaintext stream; read after the upgrade they would pass as
      // the client's own. PostgreSQL refuses them the same way.
      this.ctx.handler.log('protocol_error', { remoteAddress: this.remoteAddress, reason: 'unencrypted data after SSLRequest' });
      this.fatal(new GatehouseError('08P01', 'received unencrypted data after SSL request', { severity: 'FATAL' }));
      return;
    }
    this.startTls();
  }

  /** A second SSLRequest or a GSSENCRequest inside TLS: PostgreSQL takes one negotiation per connection. */
  private negotiationAfterTls(what: string): void {
    this.ctx.handler.log('protocol_error', { remoteAddress: this.remoteAddress, reason: `${what} after the TLS handshake` });
    this.fatal(new GatehouseError('08P01', `${what} received on a connection that is already encrypted`, { severity: 'FATAL' }));
  }

  /**
   * Upgrades the socket to TLS: after 'S' (SSLRequest), or at once with the ClientHello bytes
   * already read (direct TLS). Plaintext sessions never pass here, so they pay nothing for TLS.
   */
  private startTls(clientHello?: Buffer): void {
    const tlsConfig = this.ctx.tls;
    if (!tlsConfig) return;
    const direct = clientHello !== undefined;
    const raw = this.socket;
    raw.off('data', this.dataListener);
    this.sink.uncork();
    if (!direct) raw.write(enc.sslAccepted());
    let secure: TLSSocket;
    try {
      secure = upgradeToTls(raw, tlsConfig, clientHello);
    } catch (err) {
      this.ctx.logger.error({ err, remoteAddress: this.remoteAddress }, 'TLS upgrade failed');
      this.close();
      return;
    }
    this.state = { kind: 'TlsHandshake' };
    this.socket = secure;
    this.sink = this.sinkOn(secure);
    secure.on('error', (err: NodeJS.ErrnoException) => {
      // A failed handshake (garbage, a client that does not trust the certificate): this
      // connection ends, nothing else is touched.
      if (this.state.kind === 'TlsHandshake') {
        this.guard('TLS log', () =>
          this.ctx.handler.log('protocol_error', { remoteAddress: this.remoteAddress, reason: `TLS handshake failed: ${err.code ?? err.message}` }),
        );
      } else this.ctx.logger.debug({ err, remoteAddress: this.remoteAddress }, 'client TLS socket error');
    });
    secure.on('close', () => this.onPeerGone());
    // Listening from the start, so no byte is emitted to nobody: what arrives before 'secure'
    // (a client writing its StartupMessage with its last handshake flight) waits in the decoder.
    secure.on('data', (chunk: Buffer) => {
      if (this.state.kind === 'TlsHandshake') this.decoder.push(chunk);
      else this.onData(chunk);
    });
    secure.once('secure', () => {
      if (this.state.kind !== 'TlsHandshake') return;
      // PostgreSQL 17 requires the ALPN protocol on direct TLS, so a TLS connection meant for
      // another service (an HTTPS client pointed at this port) is not read as PostgreSQL.
      if (direct && secure.alpnProtocol !== ALPN_POSTGRESQL) {
        this.ctx.handler.log('protocol_error', { remoteAddress: this.remoteAddress, reason: 'direct TLS without ALPN "postgresql"' });
        this.fatal(new GatehouseError('08P01', `direct TLS connection without the ALPN protocol "${ALPN_POSTGRESQL}"`, { severity: 'FATAL' }));
        return;
      }
      this.secure = secure;
      this.state = { kind: 'AwaitingStartup' };
      if (this.decoder.bufferedBytes > 0) void this.pump();
    });
  }

  private onStartupMessage(msg: StartupMessage): void {
    const major = msg.protocolVersion >>> 16;
    const minor = msg.protocolVersion & 0xffff;
    if (major !== 3) {
      this.fatal(
        new GatehouseError('0A000', `unsupported frontend protocol ${major}.${minor}: server supports 3.0`, {
          severity: 'FATAL',
        }),
      );
      return;
    }
    const { user, database, ...rest } = msg.params;
    if (!user) {
      this.fatal(new GatehouseError('28000', 'no user name specified in startup packet', { severity: 'FATAL' }));
      return;
    }
    const params: Record<string, string> = {};
    const unrecognized: string[] = [];
    for (const [k, v] of Object.entries(rest)) {
      // _pq_.* are protocol options (55.2.1); we know none of them.
      if (k.startsWith('_pq_.')) unrecognized.push(k);
      else params[k] = v;
    }
    const tls = this.secure !== undefined;
    const startup: StartupInfo = { user, database: database || user, params, remoteAddress: this.remoteAddress, tls };
    if (!tls && this.ctx.tls?.mode === 'required') {
      // Before any sign-in step: no password or token travels in clear to be refused afterwards.
      this.authFailed(
        startup,
        'TLS required',
        '28000',
        'Gatehouse requires an encrypted connection (TLS)',
        "connect with sslmode=require (or verify-ca / verify-full with the server's CA)",
      );
      return;
    }
    const begun = this.ctx.throttle?.begin(user, this.remoteAddress);
    if (begun && 'refusal' in begun) {
      // Before the flow, so no password is asked for; the same for a name that exists or not.
      this.throttled(begun.refusal, user);
      return;
    }
    this.attempt = begun?.attempt;
    if (minor > 0 || unrecognized.length > 0) this.sink.send(enc.negotiateProtocolVersion(0, unrecognized));
    const flow = this.ctx.handler.signIn({
      user,
      database: startup.database,
      channel: { tls, tlsServerEndPoint: tls ? this.ctx.tls?.tlsServerEndPoint : undefined, remoteAddress: this.remoteAddress },
    });
    const first = flow.start();
    this.state = { kind: 'Authenticating', startup, flow, awaiting: first.type };
    this.sink.send(enc.encode(first));
  }

  // ---- authentication: the flow decides; the connection decodes, sends and ends ----

  private async onAuthMessage(msg: FrontendMessage): Promise<void> {
    const st = this.state;
    if (st.kind !== 'Authenticating') return;
    if (msg.type === 'Terminate') {
      // psql does this when it learns a password is needed and goes to prompt for one.
      this.close();
      return;
    }
    if (msg.type !== 'PasswordMessage') {
      this.authFailed(st.startup, 'unexpected message', '08P01', `expected an authentication response, got ${msg.type}`);
      return;
    }
    let response: AuthResponse;
    try {
      response = decodeAuthResponse(st.awaiting, msg.body);
    } catch {
      // Also what a client answering a SASL request with a cleartext/MD5 password looks like.
      const expected = AUTH_ANSWERS[st.awaiting];
      this.authFailed(st.startup, `malformed ${expected}`, '08P01', `malformed authentication message: expected ${expected}`);
      return;
    }
    const step: AuthStep = await st.flow.onMessage(response);
    if (this.state !== st) return; // closed meanwhile (timeout, peer gone)
    switch (step.kind) {
      case 'continue':
        st.awaiting = step.send.type;
        this.sink.send(enc.encode(step.send));
        return;
      case 'fail':
        this.authFailed(st.startup, step.reason, step.error.sqlstate, step.error.message, step.error.hint);
        return;
      case 'done':
        if (step.final) this.sink.send(enc.encode(step.final));
        // Authenticated: from here the handler's own timeouts (upstream connect) apply.
        clearTimeout(this.authTimer);
        this.attempt?.succeeded();
        this.unfinished?.release();
        this.decoder.maxMessageBytes = this.ctx.maxMessageBytes;
        await this.openSession(st.startup, step.identity);
        return;
    }
  }

  private authFailed(startup: StartupInfo, reason: string, sqlstate: GatehouseError['sqlstate'], message: string, hint?: string): void {
    // Every refusal of a begun attempt counts (a malformed answer too); a refusal before it (TLS required) has none.
    this.attempt?.failed();
    // Never the password, the proof, the token or the SCRAM messages.
    this.ctx.handler.log('auth_failed', {
      user: startup.user,
      database: startup.database,
      remoteAddress: this.remoteAddress,
      tls: startup.tls,
      reason,
    });
    this.fatal(new GatehouseError(sqlstate, message, { severity: 'FATAL', hint }));
  }

  private async openSession(startup: StartupInfo, identity: Identity): Promise<void> {
    let session: ServerSession;
    try {
      session = await this.ctx.handler.openSession(startup, identity);
    } catch (e) {
      if (!isGatehouseError(e)) this.ctx.logger.error({ err: e, user: startup.user }, 'openSession failed');
      this.fatal(asFatal(asClientError(e)));
      return;
    }
    if (this.state.kind === 'Closed') {
      await session.close().catch((e) => this.ctx.logger.error({ err: e }, 'session close failed'));
      return;
    }
    this.session = session;
    this.startup = startup;
    if (this.peerGone) return; // the pump closes (and so closes the session)
    this.key = this.ctx.keys.allocate(() => session.cancel());
    this.sink.send(enc.authenticationOk());
    for (const [name, value] of Object.entries(session.parameterStatus)) {
      this.sink.send(enc.parameterStatus(name, value));
    }
    this.sink.send(enc.backendKeyData(this.key.processId, this.key.secretKey));
    session.relayNotifications(this.sink);
    this.ctx.handler.log('session_start', {
      user: startup.user,
      database: startup.database,
      remoteAddress: this.remoteAddress,
      processId: this.key.processId,
    });
    this.readyForQuery();
  }

  // ---- signed in ----

  private async onReadyMessage(msg: FrontendMessage): Promise<void> {
    switch (msg.type) {
      case 'Query':
        return this.runQuery(msg.sql);
      case 'Terminate':
        this.close();
        return;
      case 'Parse':
      case 'Bind':
      case 'Describe':
      case 'Execute':
      case 'Close':
        this.state = { kind: 'Extended' };
        return this.onExtendedMessage(msg);
      case 'Sync':
        // A Sync with nothing before it is harmless: just the ReadyForQuery it asks for.
        this.readyForQuery();
        return;
      case 'Flush':
        this.sink.uncork();
        return;
      case 'CopyData':
      case 'CopyDone':
      case 'CopyFail':
        // 55.2.6: outside COPY FROM these are ignored (a client still sending after a failed COPY).
        return;
      case 'FunctionCall':
        await this.protocolError('FunctionCall', 'protocol.function_call', functionCallRefused(), false);
        this.readyForQuery();
        return;
      case 'MalformedMessage':
        await this.protocolError(`malformed ${msg.code} message`, 'protocol.malformed', msg.error, false);
        // Extended-protocol messages fail into the discard state, like any extended error.
        if ('PBDECSH'.includes(msg.code)) this.state = { kind: 'DiscardUntilSync' };
        else this.readyForQuery();
        return;
      default:
        this.fatal(new GatehouseError('08P01', `unexpected ${msg.type} message after authentication`, { severity: 'FATAL' }));
    }
  }

  private async onExtendedMessage(msg: FrontendMessage): Promise<void> {
    const session = this.session;
    if (this.state.kind !== 'Extended' || !session) return;
    switch (msg.type) {
      case 'Parse':
      case 'Bind':
      case 'Describe':
      case 'Execute':
      case 'Close': {
        const passed = await this.inStatement(() => session.extended(msg, this.sink));
        if (this.closedNow()) return;
        this.state = passed ? { kind: 'Extended' } : { kind: 'DiscardUntilSync' };
        return;
      }
      case 'Flush':
        await this.inStatement(() => session.flush(this.sink));
        if (this.closedNow()) return;
        this.state = { kind: 'Extended' };
        this.sink.uncork();
        return;
      case 'Sync':
        return this.endExchange();
      case 'Terminate':
        this.close();
        return;
      case 'Query': {
        // PostgreSQL runs a Query that arrives before Sync (pg-cursor closes that way): the
        // exchange ends first (its ReadyForQuery is not the client's), unless it failed, when
        // PostgreSQL is skipping to Sync and ignores the Query too.
        const ended = await this.inStatement(() => session.sync(this.sink));
        if (this.closedNow()) return;
        if (ended?.failed) {
          this.state = { kind: 'DiscardUntilSync' };
          return;
        }
        this.tx = ended?.status ?? this.tx;
        return this.runQuery(msg.sql);
      }
      case 'MalformedMessage':
        await this.protocolError(`malformed ${msg.code} message`, 'protocol.malformed', msg.error, true);
        return;
      case 'FunctionCall':
        await this.protocolError('FunctionCall', 'protocol.function_call', functionCallRefused(), true);
        return;
      case 'CopyData':
      case 'CopyDone':
      case 'CopyFail':
        return;
      default:
        this.fatal(new GatehouseError('08P01', `unexpected ${msg.type} message after authentication`, { severity: 'FATAL' }));
    }
  }

  /** Read after an await: the connection may have closed meanwhile. */
  private closedNow(): boolean {
    return this.state.kind === 'Closed';
  }

  /** An error the wire layer answers itself: audited by the session; inside an exchange, skip to Sync. */
  private async protocolError(what: string, rule: string, err: GatehouseError, inExchange: boolean): Promise<void> {
    const session = this.session;
    if (!session) return;
    await this.inStatement(() => session.protocolError(what, rule, err, this.sink, inExchange));
    if (inExchange && this.state.kind !== 'Closed') this.state = { kind: 'DiscardUntilSync' };
  }

  /** Sync: the exchange ends, then ReadyForQuery. */
  private async endExchange(): Promise<void> {
    const session = this.session;
    if (!session) throw new Error('Sync without a session');
    const ended = await this.inStatement(() => session.sync(this.sink));
    if (this.state.kind === 'Closed' || this.peerGone) return;
    if (ended) this.tx = ended.status;
    this.readyForQuery();
  }

  /**
   * Runs one step of a statement (InQuery while it runs, so a client that goes away cancels
   * it). A FATAL (the warehouse session is gone) closes the connection; any other error was
   * already answered by the session and is logged if it is not Gatehouse's own.
   */
  private async inStatement<T>(run: () => Promise<T>): Promise<T | undefined> {
    const before = this.state;
    this.state = { kind: 'InQuery' };
    try {
      const out = await run();
      if (this.state.kind === 'InQuery') this.state = before;
      return out;
    } catch (e) {
      if (!isGatehouseError(e)) this.ctx.logger.error({ err: e }, 'statement failed inside Gatehouse');
      const err = asClientError(e);
      if (err.severity === 'FATAL') this.fatal(err);
      else if (this.state.kind === 'InQuery') this.state = { kind: 'DiscardUntilSync' };
      return undefined;
    } finally {
      // A COPY FROM STDIN that ended early (an error): its remaining messages are the pump's to ignore.
      this.copyIn = undefined;
    }
  }

  private onDiscarding(msg: FrontendMessage): Promise<void> | void {
    // Like PostgreSQL's SocketBackend: only Sync and Terminate end the skipping.
    if (msg.type === 'Sync' || (msg.type === 'MalformedMessage' && msg.code === 'S')) return this.endExchange();
    if (msg.type === 'Terminate') this.close();
  }

  private async runQuery(sql: string): Promise<void> {
    const session = this.session;
    if (!session) throw new Error('Ready without a session');
    this.state = { kind: 'InQuery' };
    await this.runStatement(() => session.query(sql, this.sink));
  }

  /** A Query or an extended batch: its results went to the sink; then ReadyForQuery. */
  private async runStatement(run: () => Promise<TxStatus>): Promise<void> {
    try {
      this.tx = await run();
    } catch (e) {
      if (!isGatehouseError(e)) this.ctx.logger.error({ err: e }, 'query failed inside Gatehouse');
      const err = asClientError(e);
      if (err.severity === 'FATAL') {
        this.fatal(err);
        return;
      }
      this.sink.error(err);
      // Unknown outcome: an open transaction can only be failed now.
      if (this.tx === 'T') this.tx = 'E';
    }
    // A COPY FROM STDIN that ended early (an error): its remaining messages are the pump's to ignore.
    this.copyIn = undefined;
    if (this.peerGone) return;
    this.readyForQuery();
  }

  private readyForQuery(): void {
    this.state = { kind: 'Ready' };
    this.sink.send(enc.readyForQuery(this.tx));
    this.sink.uncork();
  }

  // ---- closing ----

  /** FATAL ErrorResponse, then close (55.2.7: the server closes after a FATAL). */
  private fatal(err: GatehouseError): void {
    if (this.state.kind === 'Closed') return;
    this.sink.send(enc.errorResponse(asFatal(err)));
    this.close();
  }

  /** Idempotent: ends the socket after what was written, closes the session once. */
  private close(): void {
    if (this.teardownPromise) return;
    this.state = { kind: 'Closed' };
    clearTimeout(this.authTimer);
    // A sign-in that ended without a verdict (the client left, the timeout) counts as no failure.
    this.attempt?.abandoned();
    this.unfinished?.release();
    clearTimeout(this.idleTimer);
    this.sink.uncork();
    this.socket.end();
    // A peer that never reads must not keep the socket (and its buffers) alive.
    setTimeout(() => this.socket.destroy(), 5000).unref();
    this.teardownPromise = this.teardown();
  }

  private async teardown(): Promise<void> {
    try {
      if (this.key) this.ctx.keys.release(this.key.processId);
      const session = this.session;
      if (!session) return;
      try {
        await session.close();
      } catch (err) {
        this.ctx.logger.error({ err }, 'session close failed');
      }
      this.guard('session_end log', () =>
        this.ctx.handler.log('session_end', {
          user: this.startup?.user,
          database: this.startup?.database,
          remoteAddress: this.remoteAddress,
          processId: this.key?.processId,
        }),
      );
    } finally {
      this.resolveFinished();
    }
  }
}

/** What the client's 'p' message answers, by the request it answers (55.7: the body is told apart only by that). */
const AUTH_ANSWERS: Record<AuthRequest['type'], string> = {
  AuthenticationSASL: 'SASLInitialResponse',
  AuthenticationSASLContinue: 'SASLResponse',
  AuthenticationCleartextPassword: 'PasswordMessage',
};

function decodeAuthResponse(awaiting: AuthRequest['type'], body: Buffer): AuthResponse {
  switch (awaiting) {
    case 'AuthenticationSASL':
      return decodeSASLInitialResponse(body);
    case 'AuthenticationSASLContinue':
      return decodeSASLResponse(body);
    case 'AuthenticationCleartextPassword':
      return decodeCleartextPassword(body);
  }
}

function functionCallRefused(): GatehouseError {
  return new GatehouseError('0A000', 'the function call protocol is not supported by Gatehouse', {
    hint: 'call the function in a SELECT',
  });
}
