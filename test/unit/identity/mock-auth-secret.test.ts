// Unknown names' mock salts must not change with the process: an outside review told unknown
// names from known ones by restarting (or by asking a second instance) and comparing salts.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRules } from '../../../src/config/load.ts';
import { Directory } from '../../../src/identity/directory.ts';
import { mockAuthSecret } from '../../../src/identity/mock-auth-secret.ts';
import { DEMO_RULES } from '../../helpers/gatehouse.ts';

const saltOf = (d: Directory, name: string) => d.verifierFor(name).verifier.salt.toString('base64');

describe('mockAuthSecret', () => {
  it('is made once in the state directory (0600) and read back by the next process', () => {
    const state = mkdtempSync(join(tmpdir(), 'gh-state-'));
    const first = mockAuthSecret(state, {});
    expect(first).toHaveLength(32);
    expect(statSync(join(state, 'mock-auth.key')).mode & 0o777).toBe(0o600);
    expect(mockAuthSecret(state, {}).equals(first)).toBe(true);
    // An unknown name gets the same salt from a "restarted" server; a known user keeps theirs.
    const rules = loadRules(DEMO_RULES);
    const before = new Directory(rules, first);
    const after = new Directory(rules, mockAuthSecret(state, {}));
    expect(saltOf(after, 'nobody@acme.example')).toBe(saltOf(before, 'nobody@acme.example'));
    expect(saltOf(after, 'bob@acme.example')).toBe(saltOf(before, 'bob@acme.example'));
    expect(before.verifierFor('nobody@acme.example').known).toBe(false);
  });

  it('GATEHOUSE_MOCK_AUTH_KEY gives every instance the same secret; a malformed one is refused', () => {
    const key = 'ab'.repeat(32);
    const a = mockAuthSecret(mkdtempSync(join(tmpdir(), 'gh-state-')), { GATEHOUSE_MOCK_AUTH_KEY: key });
    const b = mockAuthSecret(mkdtempSync(join(tmpdir(), 'gh-state-')), { GATEHOUSE_MOCK_AUTH_KEY: key });
    expect(a.equals(b)).toBe(true);
    expect(() => mockAuthSecret(mkdtempSync(join(tmpdir(), 'gh-state-')), { GATEHOUSE_MOCK_AUTH_KEY: 'short' })).toThrow(/64 hex digits/);
  });

  it('two state directories without the variable differ (so instances must share the key)', () => {
    const a = mockAuthSecret(mkdtempSync(join(tmpdir(), 'gh-state-')), {});
    const b = mockAuthSecret(mkdtempSync(join(tmpdir(), 'gh-state-')), {});
    expect(a.equals(b)).toBe(false);
  });
});
