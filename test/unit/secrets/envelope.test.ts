// The envelope of a stored credential: it opens only with its key and under its own binding
// (org, connection, field); any other key, byte or binding fails, and no failure names the
// secret or the ciphertext.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type SecretBinding, SecretError, openSecret, parseCiphertext, sealSecret } from '../../../src/secrets/envelope.ts';
import { type KeyProvider, memoryKeyProvider } from '../../../src/secrets/keys.ts';

const SECRET = 'c0rrect-h0rse-Battery-st@ple';
const binding: SecretBinding = { org: 'acme', connection: 'warehouse', field: 'password' };
const k1 = randomBytes(32);
const k2 = randomBytes(32);
const one = memoryKeyProvider('test keys', [['k1', k1]]);
const both = memoryKeyProvider('test keys', [
  ['k1', k1],
  ['k2', k2],
]);

/** The SecretError an open throws; fails the test if it opens. */
function failure(ciphertext: string, b: SecretBinding, keys: KeyProvider): SecretError {
  try {
    openSecret({ ciphertext, binding: b }, keys);
  } catch (e) {
    expect(e).toBeInstanceOf(SecretError);
    const err = e as SecretError;
    // The reason and the binding, never the secret nor the ciphertext.
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain(ciphertext.split(':')[2]);
    expect(err.message).toContain(`connection "${b.connection}"`);
    expect(err.message).toContain(`org ${b.org}`);
    return err;
  }
  throw new Error('the ciphertext opened but should not have');
}

describe('sealSecret / openSecret', () => {
  it('round trip: gh1:<key id>:<base64url>, a fresh IV each time, the secret back', () => {
    const ct = sealSecret(SECRET, binding, one);
    expect(ct).toMatch(/^gh1:k1:[A-Za-z0-9_-]+$/);
    expect(ct).not.toContain(SECRET);
    expect(sealSecret(SECRET, binding, one)).not.toBe(ct);
    expect(openSecret({ ciphertext: ct, binding }, one)).toBe(SECRET);
    // Unicode and the longest allowed secret survive too.
    const long = 'ä'.repeat(2048);
    expect(openSecret({ ciphertext: sealSecret(long, binding, one), binding }, one)).toBe(long);
  });

  it('refuses an empty, NUL-bearing or oversized secret', () => {
    for (const bad of ['', 'a\0b', 'x'.repeat(4097)]) {
      expect(() => sealSecret(bad, binding, one)).toThrow(SecretError);
    }
  });

  it('a wrong master key (same id) does not decrypt', () => {
    const ct = sealSecret(SECRET, binding, one);
    const wrong = memoryKeyProvider('other keys', [['k1', randomBytes(32)]]);
    expect(failure(ct, binding, wrong).reason).toBe('does_not_decrypt');
  });

  it('a key id the provider does not hold is named, with the active ids', () => {
    const ct = sealSecret(SECRET, binding, both); // k2, the current one
    const err = failure(ct, binding, one);
    expect(err.reason).toBe('unknown_key');
    expect(err.message).toMatch(/master key "k2", which test keys does not hold \(active: k1\)/);
  });

  it('a byte changed anywhere in iv, ciphertext or tag does not decrypt', () => {
    const ct = sealSecret(SECRET, binding, one);
    const { payload } = parseCiphertext(ct);
    for (let i = 0; i < payload.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const p = Buffer.from(payload);
        p[i] ^= bit;
        expect(failure(`gh1:k1:${p.toString('base64url')}`, binding, one).reason).toBe('does_not_decrypt');
      }
    }
  });

  it('a truncated, extended or re-encoded ciphertext is malformed or does not decrypt, never opened', () => {
    const ct = sealSecret(SECRET, binding, one);
    const body = ct.split(':')[2];
    for (const bad of [ct.slice(0, -1), `${ct}A`, `${ct}=`, `gh1:k1:${body.slice(0, 20)}`, `gh2:k1:${body}`, `gh1::${body}`, `gh1:k1`, SECRET]) {
      expect(['malformed', 'does_not_decrypt']).toContain(failure(bad, binding, one).reason);
    }
  });

  it('a ciphertext moved to another org, connection or field does not decrypt', () => {
    const ct = sealSecret(SECRET, binding, one);
    for (const moved of [
      { ...binding, org: 'globex' },
      { ...binding, connection: 'warehouse2' },
      { ...binding, field: 'topics_password' },
      // The encoding is unambiguous: shifting a character between parts is another binding.
      { org: 'acm', connection: 'ewarehouse', field: 'password' },
    ]) {
      expect(failure(ct, moved, one).reason).toBe('does_not_decrypt');
    }
  });

  it('the key id is bound too: relabelling a ciphertext to another active key does not decrypt', () => {
    const ct = sealSecret(SECRET, binding, both, 'k1');
    expect(failure(ct.replace('gh1:k1:', 'gh1:k2:'), binding, both).reason).toBe('does_not_decrypt');
  });

  it('rotation: with two keys active, ciphertexts of either open; new ones use the last (current) key', () => {
    const old = sealSecret(SECRET, binding, one);
    expect(both.currentId).toBe('k2');
    const fresh = sealSecret(SECRET, binding, both);
    expect(parseCiphertext(fresh).keyId).toBe('k2');
    expect(openSecret({ ciphertext: old, binding }, both)).toBe(SECRET);
    expect(openSecret({ ciphertext: fresh, binding }, both)).toBe(SECRET);
    // Once the old key is dropped, only the re-encrypted one opens.
    const onlyNew = memoryKeyProvider('new keys', [['k2', k2]]);
    expect(openSecret({ ciphertext: fresh, binding }, onlyNew)).toBe(SECRET);
    expect(failure(old, binding, onlyNew).reason).toBe('unknown_key');
  });
});
