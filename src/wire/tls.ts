// TLS for client connections (protocol 55.2.10, "SSL Session Encryption"): the server's
// certificate and key from rules/gatehouse.yaml `server.tls`, loaded once at start, and the
// server-side upgrade of an accepted socket, after an SSLRequest answered 'S' or directly
// (PostgreSQL 17's sslnegotiation=direct: the client starts with a TLS ClientHello).
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import tls from 'node:tls';

export type TlsMode = 'optional' | 'required';

/** rules/gatehouse.yaml `server.tls`, paths already resolved against the rules directory. */
export interface TlsSettings {
  cert_file: string;
  key_file: string;
  /** Issuer certificates sent with the certificate (intermediates), so clients can build the chain. */
  ca_file?: string;
  /** required: plaintext sessions are refused (28000). */
  mode: TlsMode;
}

/** What the wire server needs to serve TLS. */
export interface WireTls {
  mode: TlsMode;
  context: tls.SecureContext;
  /** tls-server-end-point data for SCRAM-SHA-256-PLUS; undefined when the certificate's signature hash is not one we know. */
  tlsServerEndPoint: Buffer | undefined;
}

/** The ALPN protocol PostgreSQL 17 registered; required for direct TLS, as PostgreSQL requires it. */
export const ALPN_POSTGRESQL = 'postgresql';

/** A TLS record of type handshake (0x16) opens every ClientHello: a startup packet starts with its length, whose first byte is 0. */
export const TLS_HANDSHAKE_RECORD = 0x16;

export class TlsConfigError extends Error {}

/**
 * Reads and checks the certificate and key: the key file must not be readable by others
 * (PostgreSQL refuses a key file with group or world access; 0640 is allowed for a group such
 * as ssl-cert), and the key must match the certificate (Node checks when making the context).
 */
export function loadWireTls(settings: TlsSettings): WireTls {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new TlsConfigError(`server.tls.${what}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const cert = read('cert_file', settings.cert_file);
  const key = read('key_file', settings.key_file);
  const mode = statSync(settings.key_file).mode & 0o777;
  if ((mode & 0o037) !== 0) {
    throw new TlsConfigError(
      `server.tls.key_file: ${settings.key_file} has mode ${mode.toString(8).padStart(4, '0')}: a private key must not be readable by others (chmod 600 ${settings.key_file})`,
    );
  }
  const ca = settings.ca_file ? read('ca_file', settings.ca_file) : undefined;
  let context: tls.SecureContext;
  try {
    // TLS 1.2 at least, as PostgreSQL's ssl_min_protocol_version defaults to; Node's default ciphers.
    context = tls.createSecureContext({ cert: ca ? Buffer.concat([cert, Buffer.from('\n'), ca]) : cert, key, minVersion: 'TLSv1.2' });
  } catch (e) {
    throw new TlsConfigError(`server.tls: the certificate and key cannot be used: ${(e as Error).message}`);
  }
  const der = firstCertificateDer(cert);
  if (!der) throw new TlsConfigError(`server.tls.cert_file: ${settings.cert_file} holds no PEM certificate`);
  // OpenSSL keeps an RSA and an EC key in different slots and accepts the pair; the handshake
  // would then fail for every client. Checked here, at start.
  if (!new X509Certificate(der).checkPrivateKey(createPrivateKey(key))) {
    throw new TlsConfigError(`server.tls: the key in ${settings.key_file} is not the key of the certificate in ${settings.cert_file}`);
  }
  return { mode: settings.mode, context, tlsServerEndPoint: tlsServerEndPoint(der) };
}

function firstCertificateDer(pem: Buffer): Buffer | undefined {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem.toString('latin1'));
  return m ? Buffer.from(m[1].replace(/\s+/g, ''), 'base64') : undefined;
}

/**
 * RFC 5929 section 4.1: the hash of the certificate with its signature's hash function, MD5
 * and SHA-1 replaced by SHA-256. Undefined for a signature whose hash is not named by its
 * algorithm identifier (RSASSA-PSS, EdDSA): PostgreSQL offers no channel binding there either,
 * and a guess would make every -PLUS sign-in fail.
 */
export function tlsServerEndPoint(certDer: Buffer): Buffer | undefined {
  const oid = signatureAlgorithmOid(certDer);
  const hash = oid ? SIGNATURE_HASH.get(oid) : undefined;
  return hash ? createHash(hash).update(certDer).digest() : undefined;
}

const SIGNATURE_HASH = new Map([
  ['1.2.840.113549.1.1.4', 'sha256'], // md5WithRSAEncryption: SHA-256 per RFC 5929
  ['1.2.840.113549.1.1.5', 'sha256'], // sha1WithRSAEncryption: SHA-256 per RFC 5929
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.1', 'sha256'], // ecdsa-with-SHA1
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
]);

/** Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, ... }, signature }: the OID, or undefined. */
export function signatureAlgorithmOid(der: Buffer): string | undefined {
  let pos = 0;
  const header = (tag: number): number | undefined => {
    if (der[pos] !== tag) return undefined;
    pos++;
    let len = der[pos++];
    if (len === undefined) return undefined;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4) return undefined;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[pos++];
    }
    return pos + len <= der.length ? len : undefined;
  };
  if (header(0x30) === undefined) return undefined;
  const tbs = header(0x30);
  if (tbs === undefined) return undefined;
  pos += tbs;
  if (header(0x30) === undefined) return undefined;
  const oidLen = header(0x06);
  if (oidLen === undefined || oidLen < 1) return undefined;
  const bytes = der.subarray(pos, pos + oidLen);
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40];
  let value = 0;
  for (const b of bytes.subarray(1)) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * Wraps an accepted socket in a server-side TLSSocket. `initial` holds bytes already read from
 * the socket that belong to the handshake (direct TLS): they are put back in the socket's
 * readable buffer, which TLSSocket reads first. The caller has stopped reading the socket.
 */
export function upgradeToTls(socket: Socket, wire: WireTls, initial?: Buffer): tls.TLSSocket {
  if (initial && initial.length > 0) {
    // Paused first: unshift() on a flowing stream emits the bytes again as 'data' (to no one).
    socket.pause();
    socket.unshift(initial);
  }
  return new tls.TLSSocket(socket, {
    isServer: true,
    secureContext: wire.context,
    requestCert: false,
    ALPNProtocols: [ALPN_POSTGRESQL],
  });
}
