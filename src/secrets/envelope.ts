// Stored credentials at rest (DESIGN 3, "Stored credentials"): an AES-256-GCM envelope of one
// secret. The text form names its format version and the master key it was made with:
//
//   gh1:<keyId>:<base64url(iv | ciphertext | tag)>
//
// The associated data binds the format, the key id, the org, the connection and the field
// (password, topics_password...), so a ciphertext copied into another connection, field or
// org does not decrypt: the tag fails exactly as it does for a wrong key or a flipped byte.
// Errors name the reason and never the secret or the ciphertext.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KEY_ID, type KeyProvider } from './keys.ts';

export const CIPHERTEXT_VERSION = 'gh1';
/** The whole text form, for validation at load (the payload holds at least iv, one byte and the tag). */
export const CIPHERTEXT = /^gh1:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{39,}$/;

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** A warehouse password longer than this is a mistake (a file pasted in), not a password. */
export const MAX_SECRET_BYTES = 4096;

/** Where a secret belongs: the associated data of its envelope. */
export interface SecretBinding {
  org: string;
  connection: string;
  /** The connection file's key: password, topics_password... */
  field: string;
}

/**
 * A stored secret as the loaded rules hold it: the ciphertext and what it is bound to, never
 * the plaintext. Only a connector opens it (openSecret), when it signs in upstream.
 */
export interface SealedSecret {
  ciphertext: string;
  binding: SecretBinding;
}

export type SecretFailure = 'malformed' | 'unknown_key' | 'does_not_decrypt' | 'invalid_plaintext';

/** A secret that cannot be made or opened. The message names the binding and the reason, never the secret. */
export class SecretError extends Error {
  constructor(
    readonly reason: SecretFailure,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

/** The parts of a ciphertext's text form, or a SecretError('malformed'). */
export function parseCiphertext(text: string): { version: string; keyId: string; payload: Buffer } {
  const m = /^(gh1):([^:]*):([^:]*)$/.exec(text);
  if (!m || !KEY_ID.test(m[2]) || !/^[A-Za-z0-9_-]+$/.test(m[3])) {
    throw new SecretError('malformed', `not a Gatehouse ciphertext (expected ${CIPHERTEXT_VERSION}:<key id>:<base64url>)`);
  }
  const payload = Buffer.from(m[3], 'base64url');
  if (payload.length < IV_BYTES + 1 + TAG_BYTES || payload.toString('base64url') !== m[3]) {
    throw new SecretError('malformed', 'the ciphertext is truncated or not base64url');
  }
  return { version: m[1], keyId: m[2], payload };
}

/** True when the text has the ciphertext form (it may still fail to decrypt). */
export function isCiphertext(text: string): boolean {
  return CIPHERTEXT.test(text);
}

const describe = (b: SecretBinding) => `${b.field} of connection "${b.connection}" of org ${b.org}`;

/** The associated data: an unambiguous encoding of the format, key id and binding. */
function associatedData(keyId: string, b: SecretBinding): Buffer {
  return Buffer.from(JSON.stringify([CIPHERTEXT_VERSION, keyId, b.org, b.connection, b.field]), 'utf8');
}

/** Encrypts a secret for one binding with the provider's current key. */
export function sealSecret(plaintext: string, binding: SecretBinding, keys: KeyProvider, keyId = keys.currentId): string {
  const bytes = Buffer.from(plaintext, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_SECRET_BYTES || plaintext.includes('\0')) {
    throw new SecretError('invalid_plaintext', `the secret for ${describe(binding)} must be 1 to ${MAX_SECRET_BYTES} bytes without NUL`);
  }
  const key = keys.key(keyId);
  if (!key) throw new SecretError('unknown_key', `no master key with id "${keyId}" in ${keys.source}`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(keyId, binding));
  const body = Buffer.concat([cipher.update(bytes), cipher.final()]);
  return `${CIPHERTEXT_VERSION}:${keyId}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
}

/**
 * Decrypts a sealed secret. The caller uses the plaintext at once and keeps no reference
 * (a connector: one sign-in). Throws SecretError naming the binding and the reason.
 */
export function openSecret(sealed: SealedSecret, keys: KeyProvider): string {
  const b = sealed.binding;
  let parts: ReturnType<typeof parseCiphertext>;
  try {
    parts = parseCiphertext(sealed.ciphertext);
  } catch (e) {
    throw new SecretError('malformed', `the ${describe(b)}: ${(e as Error).message}`);
  }
  const key = keys.key(parts.keyId);
  if (!key) {
    throw new SecretError(
      'unknown_key',
      `the ${describe(b)} was encrypted with master key "${parts.keyId}", which ${keys.source} does not hold (active: ${keys.ids().join(', ')})`,
    );
  }
  const { payload } = parts;
  const decipher = createDecipheriv('aes-256-gcm', key, payload.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData(parts.keyId, b));
  decipher.setAuthTag(payload.subarray(payload.length - TAG_BYTES));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(payload.subarray(IV_BYTES, payload.length - TAG_BYTES)), decipher.final()]);
  } catch {
    // GCM tells no more than this: the key, a byte, or the binding is not the one it was made with.
    throw new SecretError(
      'does_not_decrypt',
      `the ${describe(b)} does not decrypt with master key "${parts.keyId}": a wrong master key, an altered ciphertext, or one made for another org, connection or field`,
    );
  }
  const text = plain.toString('utf8');
  plain.fill(0);
  return text;
}
