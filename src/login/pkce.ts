// PKCE (RFC 7636) and the authorization request's state and nonce: fresh random values per
// sign-in, never written anywhere.
import { createHash, randomBytes } from 'node:crypto';

export interface Pkce {
  /** 43 characters of base64url (32 random bytes), within RFC 7636 4.1's 43 to 128. */
  verifier: string;
  challenge: string;
}

export function newPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: s256(verifier) };
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}
