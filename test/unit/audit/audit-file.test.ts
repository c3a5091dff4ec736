// The audit file writes records in batches and never drops one: in order, all of them,
// and when the file cannot be written it says so (58030) and keeps what waits.
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { type StatementRecord, fileAudit } from '../../../src/audit/audit.ts';
import { statementRecord } from '../../helpers/audit-record.ts';

const record = (n: number) => statementRecord(`SELECT ${n}`);

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('fileAudit', () => {
  it('writes every record, in order, within milliseconds, as JSON lines with their time', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gh-audit-')), 'audit.jsonl');
    const audit = fileAudit(path);
    for (let i = 0; i < 20_000; i++) audit.statement(record(i));
    audit.event('session_end', { org: 'acme' });
    await vi.waitFor(() => expect(lines(path)).toHaveLength(20_001), { timeout: 5000 });
    const all = lines(path);
    expect(all.slice(0, 20_000).map((l) => l.statement)).toEqual(Array.from({ length: 20_000 }, (_, i) => `SELECT ${i}`));
    expect(all[0]).toMatchObject({ type: 'statement', user: 'bob@acme.example', level: 'query_topics' });
    // The fingerprint is made when the line is written: the text's SHA-256, first 16 hex digits.
    expect(all[0].fingerprint).toBe(createHash('sha256').update('SELECT 0').digest('hex').slice(0, 16));
    expect(all[1].fingerprint).not.toBe(all[0].fingerprint);
    expect(Date.parse(all[0].time)).not.toBeNaN();
    expect(all[20_000]).toMatchObject({ type: 'session_end', org: 'acme' });
    expect(audit.failure?.()).toBeUndefined();
  });

  it('flush() writes what is waiting at once (shutdown)', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gh-audit-')), 'audit.jsonl');
    const audit = fileAudit(path);
    audit.statement(record(1));
    audit.flush();
    expect(lines(path).map((l) => l.statement)).toEqual(['SELECT 1']);
  });

  it('a write that fails reports 58030 and keeps its records', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gh-audit-')), 'audit.jsonl');
    const audit = fileAudit(path);
    // The descriptor closed under it: every write fails (EBADF), as on a lost disk.
    closeSync((audit as unknown as { fd: number }).fd);
    audit.statement(record(1));
    await vi.waitFor(() => expect(audit.failure?.()?.sqlstate).toBe('58030'));
    expect(audit.failure?.()?.message).toBe('the audit trail cannot be written, so Gatehouse runs no statements');
    // Its one line, kept to write again.
    expect(String((audit as unknown as { unwritten: Buffer }).unwritten)).toMatch(/^\{[^\n]*"statement":"SELECT 1"[^\n]*\}\n$/);
    // Its retries must not land in a later test's file, which may reuse the closed descriptor's number.
    (audit as unknown as { fd: number }).fd = 1_000_000;
  });

  it('a failed write is retried with the records made meanwhile, in order, none twice', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gh-audit-')), 'audit.jsonl');
    const audit = fileAudit(path) as unknown as { fd: number; statement(r: StatementRecord): void; failure(): unknown };
    const fd = audit.fd;
    // Swap in a closed descriptor so the first write fails, then give the real one back.
    audit.fd = 1_000_000;
    audit.statement(record(1));
    await vi.waitFor(() => expect(audit.failure()).toBeDefined());
    audit.statement(record(2));
    audit.fd = fd;
    await vi.waitFor(() => expect(lines(path).map((l) => l.statement)).toEqual(['SELECT 1', 'SELECT 2']), { timeout: 5000 });
    expect(audit.failure()).toBeUndefined();
  });

  it('flush() that cannot write (shutdown) hands the waiting records to stderr whole, then throws', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gh-audit-')), 'audit.jsonl');
    const audit = fileAudit(path);
    (audit as unknown as { fd: number }).fd = 1_000_000;
    audit.statement(record(7));
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      expect(() => audit.flush()).toThrow();
    } finally {
      spy.mockRestore();
    }
    expect(written[0]).toMatch(/^gatehouse: the audit file could not be written/);
    expect(JSON.parse(written[1])).toMatchObject({ type: 'statement', statement: 'SELECT 7' });
  });
});
