// The audit trail holds every statement and who ran it: an attacker with a shell
// account on the host reads it if it is world- or group-readable. Whatever the umask
// and whatever an older run left behind, the file is 0600 in a 0700 directory.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileAudit } from '../../../src/audit/audit.ts';
import { statementRecord } from '../../helpers/audit-record.ts';

const mode = (p: string) => statSync(p).mode & 0o777;
const original = process.umask();
afterEach(() => void process.umask(original));

async function writeAndFlush(path: string, statement: string) {
  const audit = fileAudit(path);
  audit.statement(statementRecord(statement));
  audit.flush();
  await new Promise((r) => setTimeout(r, 50));
}

describe('files under .gatehouse/', () => {
  for (const umask of [0o022, 0o002, 0o000]) {
    it(`creates .gatehouse/ 0700 and audit.jsonl 0600 under umask ${umask.toString(8).padStart(3, '0')}`, async () => {
      process.umask(umask);
      const state = join(mkdtempSync(join(tmpdir(), 'gh-private-')), '.gatehouse');
      const path = join(state, 'audit.jsonl');
      await writeAndFlush(path, 'SELECT ssn FROM employees');
      expect(mode(state)).toBe(0o700);
      expect(mode(path)).toBe(0o600);
      expect(readFileSync(path, 'utf8')).toContain('SELECT ssn FROM employees');
    });
  }

  it('narrows a world-readable audit.jsonl and .gatehouse/ left by an older run, keeping what they hold', async () => {
    process.umask(0o022);
    const state = join(mkdtempSync(join(tmpdir(), 'gh-private-')), '.gatehouse');
    mkdirSync(state, { mode: 0o755 });
    chmodSync(state, 0o777);
    const path = join(state, 'audit.jsonl');
    writeFileSync(path, '{"old":"record"}\n');
    chmodSync(path, 0o666);
    await writeAndFlush(path, 'SELECT 2');
    expect(mode(state)).toBe(0o700);
    expect(mode(path)).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('{"old":"record"}\n')).toBe(true);
    expect(text).toContain('SELECT 2');
  });

  it('creates missing parent directories without leaving the state directory open', async () => {
    process.umask(0o000);
    const state = join(mkdtempSync(join(tmpdir(), 'gh-private-')), 'deep', '.gatehouse');
    const path = join(state, 'audit.jsonl');
    await writeAndFlush(path, 'SELECT 3');
    expect(mode(state)).toBe(0o700);
    expect(mode(path)).toBe(0o600);
  });

  it('refuses a shared directory (sticky bit, like /tmp) instead of narrowing it', () => {
    const shared = mkdtempSync(join(tmpdir(), 'gh-shared-'));
    chmodSync(shared, 0o1777);
    expect(() => fileAudit(join(shared, 'audit.jsonl'))).toThrow(/shared directory \(sticky bit/);
    expect(mode(shared)).toBe(0o777);
    expect(statSync(shared).mode & 0o1000).toBe(0o1000);
  });
});
