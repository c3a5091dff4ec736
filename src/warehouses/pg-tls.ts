// How the postgres connector's socket to a warehouse is made: TCP, then, unless the
// connection's TLS mode is `disable`, an SSLRequest and a TLS handshake on the same socket
// (protocol 55.2.10, "SSL Session Encryption"), with the certificate verified as libpq's
// sslmode=verify-full does by default off loopback. Fail closed: a server that answers 'N'
// (or anything else), a certificate that does not verify, or bytes sent in clear after the
// 'S' (CVE-2021-23222) end the attempt with 08001; there is no fallback to plaintext.
// Only connection set-up lives here: the statements run on the socket this returns.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { GatehouseError } from '../errors.ts';
import { type WarehouseTlsMode, isLoopback } from './warehouse-tls.ts';
import { ALPN_POSTGRESQL, tlsServerEndPoint } from '../wire/tls.ts';

const SSL_REQUEST_CODE = 80877103;

/** TLS settings of one upstream target; `caFile`: the CA (PEM) that signed the warehouse's certificate. */
export interface UpstreamTls {
  mode: WarehouseTlsMode;
  caFile?: string;
}

/** Where the socket goes, and for which connection (named in errors). */
export interface SocketTarget {
  connection: string;
  host: string;
  port: number;
  /** Absent: no TLS (the embedded warehouse's own server, the demo's set-up on loopback). */
  tls?: UpstreamTls;
}

/** The socket a sign-in runs on, and what TLS gave it. */
export interface UpstreamSocket {
  socket: net.Socket;
  /** tls-server-end-point of the warehouse's certificate (SCRAM-SHA-256-PLUS); undefined without TLS or for an unknown signature hash. */
  tlsServerEndPoint?: Buffer;
  encrypted: boolean;
}

/** The TLS mode of a postgres connection: verify-full off loopback and none on it, unless the connection file says. */
export function postgresTls(host: string, configured?: { mode?: WarehouseTlsMode; ca_file?: string }): UpstreamTls {
  const mode = configured?.mode ?? (isLoopback(host) ? 'disable' : 'verify-full');
  return configured?.ca_file ? { mode, caFile: configured.ca_file } : { mode };
}

function refused(target: SocketTarget, message: string, detail: string, hint: string): GatehouseError {
  return new GatehouseError('08001', `could not connect to warehouse of connection "${target.connection}": ${message}`, { detail, hint });
}

/** TCP to the target within `timeoutMs`; errors are plain Errors (the caller names the connection). */
function tcp(target: SocketTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: target.host, port: target.port });
    s.setNoDelay(true);
    s.setKeepAlive(true, 30_000);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms connecting to ${target.host}:${target.port}`));
    }, timeoutMs);
    const failed = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    s.once('error', failed);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', failed);
      resolve(s);
    });
  });
}

/** Sends SSLRequest and reads the one-byte answer; refuses anything but a lone 'S'. */
function sslRequest(s: net.Socket, target: SocketTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      s.off('data', onData);
      s.off('error', done);
      s.off('close', onClose);
      s.pause();
      if (err) reject(err);
      else resolve();
    };
    const onClose = () => done(new Error('the warehouse closed the connection after the SSLRequest'));
    const onData = (chunk: Buffer) => {
      if (chunk[0] === 0x53 /* S */) {
        // Nothing may follow 'S' before the handshake: bytes there were sent in clear by
        // someone, and would be read as if they came over TLS (CVE-2021-23222).
        if (chunk.length > 1)
          done(
            refused(
              target,
              'the server sent unencrypted data after accepting TLS',
              `${chunk.length - 1} bytes after 'S'`,
              'something between Gatehouse and the warehouse is tampering with the connection',
            ),
          );
        else done();
      } else if (chunk[0] === 0x4e /* N */) {
        done(
          refused(
            target,
            'the server does not accept TLS',
            'the warehouse answered the SSLRequest with N (ssl is off there)',
            'turn on ssl on the warehouse, or set tls: {mode: disable} in the connection file if the network to it is trusted',
          ),
        );
      } else {
        done(
          refused(
            target,
            'the server did not answer the SSLRequest',
            `it answered with byte 0x${chunk[0].toString(16).padStart(2, '0')}`,
            'is this a PostgreSQL server of version 7.2 or later?',
          ),
        );
      }
    };
    s.on('data', onData);
    s.once('error', done);
    s.once('close', onClose);
    const req = Buffer.alloc(8);
    req.writeInt32BE(8, 0);
    req.writeInt32BE(SSL_REQUEST_CODE, 4);
    s.write(req);
  });
}

function readCa(target: SocketTarget, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw refused(
      target,
      `cannot read its tls.ca_file ${file}`,
      (e as NodeJS.ErrnoException).code ?? (e as Error).message,
      "tls.ca_file must name a readable PEM file holding the CA that signed the warehouse's certificate",
    );
  }
}

/** The TLS handshake on a socket whose SSLRequest was accepted, verified as the mode says. */
function handshake(raw: net.Socket, target: SocketTarget, settings: UpstreamTls): Promise<tls.TLSSocket> {
  const verify = settings.mode === 'verify-ca' || settings.mode === 'verify-full';
  const ca = verify && settings.caFile ? readCa(target, settings.caFile) : undefined;
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      socket: raw,
      host: target.host,
      // SNI names a host, never an address (RFC 6066 section 3); Node checks the name against
      // `servername || host`, so an address is checked against the certificate's IP entries.
      ...(net.isIP(target.host) ? {} : { servername: target.host }),
      ...(ca ? { ca } : {}),
      rejectUnauthorized: verify,
      // verify-ca: the chain, not the name (libpq's meaning).
      ...(settings.mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
      minVersion: 'TLSv1.2',
      ALPNProtocols: [ALPN_POSTGRESQL],
    });
    const failed = (err: Error & { code?: string }) => {
      s.destroy();
      const certificate = /CERT|SIGNATURE|ALTNAME|HOSTNAME|SELF_SIGNED|ISSUER|VERIFY/i.test(err.code ?? '') || /certificate|altnames/i.test(err.message);
      reject(
        certificate
          ? refused(
              target,
              'its TLS certificate did not verify',
              err.message,
              `set tls.ca_file to the CA that signed the warehouse's certificate and name the host as the certificate does${settings.mode === 'verify-full' ? ' (or tls.mode: verify-ca to check the chain only)' : ''}`,
            )
          : refused(target, 'the TLS handshake failed', err.message, 'does the warehouse accept TLS 1.2 or later?'),
      );
    };
    s.once('error', failed);
    const closed = () => failed(new Error('the warehouse closed the connection during the TLS handshake'));
    s.once('close', closed);
    s.once('secureConnect', () => {
      s.off('error', failed);
      s.off('close', closed);
      resolve(s);
    });
  });
}

/**
 * Opens the socket to a warehouse: TCP, then TLS as the target's settings say. Throws a
 * GatehouseError 08001 for a TLS refusal; a plain Error for a network fault (the caller
 * wraps it with the connection's name).
 */
export async function openUpstreamSocket(target: SocketTarget, timeoutMs: number): Promise<UpstreamSocket> {
  const raw = await tcp(target, timeoutMs);
  const settings = target.tls;
  if (!settings || settings.mode === 'disable') return { socket: raw, encrypted: false };
  // One deadline for the SSLRequest's answer and the handshake: destroying the socket ends either.
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    raw.destroy();
  }, timeoutMs);
  try {
    await sslRequest(raw, target);
    const s = await handshake(raw, target, settings);
    clearTimeout(timer);
    const cert = s.getPeerX509Certificate();
    return { socket: s, encrypted: true, tlsServerEndPoint: cert ? tlsServerEndPoint(cert.raw) : undefined };
  } catch (e) {
    clearTimeout(timer);
    raw.destroy();
    if (late) throw new Error(`timed out after ${timeoutMs} ms negotiating TLS with ${target.host}:${target.port}`);
    throw e;
  }
}
