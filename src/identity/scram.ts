// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it: both sides of the
// exchange as pure functions, so the wire server (verifying people) and the
// postgres connector (signing in upstream) share one implementation.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const hmac = (key: Buffer, text: string | Buffer) => createHmac('sha256', key).update(text).digest();
function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

function keysFromSalted(salted: Buffer) {
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

// PostgreSQL applies SASLprep to the password; for ASCII passwords that is the identity.
function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
}

export function makeVerifier(password: string, iterations = 4096, salt = randomBytes(16)): ScramVerifier {
  const { storedKey, serverKey } = keysFromSalted(saltedPassword(password, salt, iterations));
  return { iterations, salt, storedKey, serverKey };
}

/**
 * A password typed in clear (a PasswordMessage over TLS) checked against a SCRAM verifier:
 * the same derivation the client does in SCRAM, so org.yaml keeps verifiers, never passwords,
 * and a mock verifier costs the same PBKDF2 as a real one.
 */
export function passwordMatches(password: string, v: ScramVerifier): boolean {
  const { storedKey } = keysFromSalted(saltedPassword(password, v.salt, v.iterations));
  return storedKey.length === v.storedKey.length && timingSafeEqual(storedKey, v.storedKey);
}

/** The RFC 5803 text form PostgreSQL stores in pg_authid and rules/ stores in org.yaml. */
export function formatVerifier(v: ScramVerifier): string {
  return `${SCRAM_MECHANISM}$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

export function parseVerifier(text: string): ScramVerifier | undefined {
  const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) return undefined;
  const v = {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2], 'base64'),
    storedKey: Buffer.from(m[3], 'base64'),
    serverKey: Buffer.from(m[4], 'base64'),
  };
  return v.storedKey.length === 32 && v.serverKey.length === 32 && v.iterations > 0 ? v : undefined;
}

/**
 * A verifier for a user who does not exist, stable per name, so an unknown
 * user goes through the same exchange (and salt) every time as a known one.
 * `user` must already be normalised the way known users are looked up
 * (directory.ts normalizeUserName), and the shape (iteration count, salt length)
 * is the known verifiers' own: otherwise `NOBODY@x` and `nobody@x`, or `i=4096`
 * next to the known users' `i=8192`, tell who exists.
 */
export function mockVerifier(
  user: string,
  secret: Buffer,
  shape: { iterations: number; saltBytes: number } = { iterations: 4096, saltBytes: 16 },
): ScramVerifier {
  const salt = hmac(secret, `salt:${user}`).subarray(0, Math.min(32, shape.saltBytes));
  return { iterations: shape.iterations, salt, storedKey: hmac(secret, `sk:${user}`), serverKey: hmac(secret, `svk:${user}`) };
}

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

// ---- server side ----

export const SCRAM_PLUS_MECHANISM = 'SCRAM-SHA-256-PLUS';
/** The one channel binding type PostgreSQL (and Gatehouse) offers (RFC 5929 section 4). */
export const TLS_SERVER_END_POINT = 'tls-server-end-point';

export interface ScramServerFirst {
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  /** What the client's final `c=` must be: base64 of its gs2 header, plus the channel binding data under -PLUS. */
  expectedChannelBinding: string;
}

/**
 * The channel binding the server side knows of when the SASLInitialResponse arrives: the
 * mechanism the client selected, and the tls-server-end-point data when the server offered
 * SCRAM-SHA-256-PLUS (over TLS, with a certificate whose hash is known).
 */
export interface ScramBinding {
  mechanism: typeof SCRAM_MECHANISM | typeof SCRAM_PLUS_MECHANISM;
  tlsServerEndPoint?: Buffer;
}

/**
 * Handles SASLInitialResponse data: the server-first message, or why the message is refused
 * (PostgreSQL's read_client_first_message, auth-scram.c, for the channel binding rules).
 */
export function serverFirstMessage(
  clientFirst: string,
  v: ScramVerifier,
  binding: ScramBinding = { mechanism: SCRAM_MECHANISM },
): ScramServerFirst | { error: string } {
  // gs2 header: channel binding flag, authzid; PostgreSQL ignores the authzid and the SCRAM user name.
  const m = /^(n|y|p=[^,]*),([^,]*),(.*)$/.exec(clientFirst);
  if (!m) return { error: 'malformed SCRAM message' };
  const [, flag, authzid, clientFirstBare] = m;
  const plus = binding.mechanism === SCRAM_PLUS_MECHANISM;
  let cbindData: Buffer = Buffer.alloc(0);
  if (flag.startsWith('p=')) {
    if (!plus)
      return {
        error: 'malformed SCRAM message: the client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data',
      };
    if (flag.slice(2) !== TLS_SERVER_END_POINT) return { error: `unsupported SCRAM channel-binding type "${flag.slice(2)}"` };
    if (!binding.tlsServerEndPoint) return { error: 'channel binding is not available on this connection' };
    cbindData = binding.tlsServerEndPoint;
  } else if (plus) {
    return { error: 'malformed SCRAM message: the client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data' };
  } else if (flag === 'y' && binding.tlsServerEndPoint) {
    // RFC 5802 section 6: 'y' says "I support channel binding but you did not offer it". This
    // server did offer it, so someone removed it from the offer on the way: a downgrade.
    return {
      error:
        'SCRAM channel binding negotiation error: the client supports SCRAM channel binding but thinks the server does not; this server does support channel binding',
    };
  }
  const clientNonce = parseAttributes(clientFirstBare).get('r');
  if (!clientNonce || /[^\x21-\x7e]|,/.test(clientNonce)) return { error: 'malformed SCRAM message' };
  const nonce = clientNonce + randomBytes(18).toString('base64');
  const serverFirst = `r=${nonce},s=${v.salt.toString('base64')},i=${v.iterations}`;
  const gs2Header = Buffer.from(`${flag},${authzid},`);
  const expectedChannelBinding = Buffer.concat([gs2Header, cbindData]).toString('base64');
  return { clientFirstBare, serverFirst, nonce, expectedChannelBinding };
}

/** Verifies the client's proof (and its channel binding); returns the server-final message or undefined when either is wrong. */
export function verifyClientFinal(clientFinal: string, first: ScramServerFirst, v: ScramVerifier): string | undefined {
  const attrs = parseAttributes(clientFinal);
  const proofB64 = attrs.get('p');
  if (attrs.get('r') !== first.nonce || !proofB64) return undefined;
  // c= binds the exchange to the gs2 header (and, under -PLUS, to Gatehouse's certificate):
  // a proof computed over another channel does not verify here.
  const cb = Buffer.from(attrs.get('c') ?? '');
  const expected = Buffer.from(first.expectedChannelBinding);
  if (cb.length !== expected.length || !timingSafeEqual(cb, expected)) return undefined;
  const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
  const authMessage = `${first.clientFirstBare},${first.serverFirst},${withoutProof}`;
  const proof = Buffer.from(proofB64, 'base64');
  if (proof.length !== 32) return undefined;
  const clientKey = xor(proof, hmac(v.storedKey, authMessage));
  if (!timingSafeEqual(sha256(clientKey), v.storedKey)) return undefined;
  return `v=${hmac(v.serverKey, authMessage).toString('base64')}`;
}

// ---- client side (Gatehouse signing in to an upstream PostgreSQL) ----

export interface ScramClient {
  clientFirst: string;
  /** Given the server-first message, the client-final message and the expected server signature. */
  respond(serverFirst: string): { clientFinal: string; expectedServerFinal: string };
}

/**
 * The client side. With `tlsServerEndPoint` it runs SCRAM-SHA-256-PLUS, binding the exchange to
 * the certificate it saw (Gatehouse signing in upstream over TLS, the tests' raw clients).
 */
export function scramClient(password: string, binding?: { tlsServerEndPoint: Buffer } | 'not offered'): ScramClient {
  const clientNonce = randomBytes(18).toString('base64');
  const clientFirstBare = `n=*,r=${clientNonce}`;
  // 'not offered': over TLS, but the server's offer had no -PLUS. 'y' tells a server that does
  // support channel binding that its offer was cut on the way (RFC 5802 section 6).
  const endPoint = binding === 'not offered' ? undefined : binding?.tlsServerEndPoint;
  const gs2Header = binding === 'not offered' ? 'y,,' : endPoint ? `p=${TLS_SERVER_END_POINT},,` : 'n,,';
  const channelBinding = Buffer.concat([Buffer.from(gs2Header), endPoint ?? Buffer.alloc(0)]).toString('base64');
  return {
    clientFirst: `${gs2Header}${clientFirstBare}`,
    respond(serverFirst: string) {
      const a = parseAttributes(serverFirst);
      const nonce = a.get('r');
      const salt = a.get('s');
      const iterations = Number(a.get('i'));
      if (!nonce?.startsWith(clientNonce) || !salt || !(iterations > 0)) {
        throw new Error('upstream sent a malformed SCRAM server-first message');
      }
      const salted = saltedPassword(password, Buffer.from(salt, 'base64'), iterations);
      const { clientKey, storedKey, serverKey } = keysFromSalted(salted);
      const withoutProof = `c=${channelBinding},r=${nonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const proof = xor(clientKey, hmac(storedKey, authMessage));
      return {
        clientFinal: `${withoutProof},p=${proof.toString('base64')}`,
        expectedServerFinal: `v=${hmac(serverKey, authMessage).toString('base64')}`,
      };
    },
  };
}
