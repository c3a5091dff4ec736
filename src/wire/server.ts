// The listening socket: one WireConnection per client, tracked for CancelRequest
// and for a graceful close (stop accepting, let running statements finish,
// then end every connection; destroy what is still open after a grace period).
import net from 'node:net';
import pino, { type Logger } from 'pino';
import { BackendKeys, WireConnection } from './connection.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from './decode.ts';
import type { ConnectionHandler } from './handler.ts';
import type { SignInThrottle } from '../limits/sign-in-throttle.ts';
import type { WireTls } from './tls.ts';

export interface WireServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  handler: ConnectionHandler;
  /** Largest frontend message accepted; default 16 MiB. */
  maxMessageBytes?: number;
  logger?: Logger;
  /** From connect to ReadyForQuery; default 60 s like PostgreSQL's authentication_timeout. */
  authTimeoutMs?: number;
  /** How long close() waits for running statements before ending their sessions (57P01); default 10 s. */
  closeGraceMs?: number;
  /** Idle timeouts of signed-in sessions (ms; 0 or absent: none): outside and inside a transaction. */
  idleSessionTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /** TLS for clients (loadWireTls): SSLRequest answered 'S'; absent: 'N'. */
  tls?: WireTls;
  /** Failed sign-ins throttled per user and address (src/limits/sign-in-throttle.ts); absent: none. */
  throttle?: SignInThrottle;
}

export interface WireServer {
  port: number;
  /** Number of open client connections. */
  readonly connections: number;
  /**
   * Graceful close: stop accepting, end idle sessions with 57P01 at once and busy ones after
   * their statement; at the grace period (or hurry()) cancel what still runs and end it too.
   */
  close(): Promise<void>;
  /** Ends close()'s grace period now (a second SIGTERM or SIGINT). */
  hurry(): void;
}

export async function startWireServer(opts: WireServerOptions): Promise<WireServer> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const keys = new BackendKeys();
  const live = new Set<WireConnection>();
  const ctx = {
    handler: opts.handler,
    keys,
    maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    logger,
    authTimeoutMs: opts.authTimeoutMs ?? 60_000,
    idleSessionTimeoutMs: opts.idleSessionTimeoutMs,
    idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs,
    tls: opts.tls,
    throttle: opts.throttle,
  };

  const server = net.createServer((socket) => {
    let conn: WireConnection;
    try {
      conn = new WireConnection(socket, ctx);
    } catch (err) {
      logger.error({ err }, 'could not set up a client connection');
      socket.destroy();
      return;
    }
    live.add(conn);
    void conn.finished.then(() => live.delete(conn));
  });
  server.on('error', (err) => logger.error({ err }, 'wire server error'));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  logger.info({ host: opts.host, port, tls: opts.tls?.mode ?? 'off' }, 'wire server listening');

  let closing: Promise<void> | undefined;
  let endGrace: (() => void) | undefined;
  let hurried = false;
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
  return {
    port,
    get connections() {
      return live.size;
    },
    hurry() {
      hurried = true;
      endGrace?.();
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((r) => server.close(() => r()));
        const all = Promise.all([...live].map((c) => c.shutdown()));
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<'grace'>((r) => {
          endGrace = () => r('grace');
          timer = setTimeout(endGrace, hurried ? 0 : (opts.closeGraceMs ?? 10_000));
        });
        const how = await Promise.race([all.then(() => 'clean' as const), grace]);
        clearTimeout(timer);
        if (how === 'grace' && live.size > 0) {
          logger.warn({ port, sessions: live.size }, 'shutdown: ending sessions whose statements are still running');
          for (const c of live) c.terminate();
          await Promise.race([all, sleep(2000)]);
          for (const c of live) c.destroy();
          await Promise.race([all, sleep(1000)]);
        }
        await stopped;
        logger.info({ port }, 'wire server closed');
      })();
      return closing;
    },
  };
}
