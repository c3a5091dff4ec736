// One audit record per statement, auth attempt and session event (DESIGN section 3).
// Never a credential: records carry SQL text and decisions, not passwords or proofs.
import { hash } from 'node:crypto';
import { write, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { GatehouseError } from '../errors.ts';
import type { Metrics } from '../admin/metrics.ts';
import { openPrivateAppend, privateDir } from './private-files.ts';

export interface StatementRecord {
  org: string;
  user: string;
  connection: string;
  level: string;
  client_address: string;
  application_name?: string;
  statement: string;
  decision: 'allowed' | 'rewritten' | 'refused' | 'answered' | 'empty';
  rule: string;
  policy_version: string;
  topics: string[];
  sent_sql?: string[];
  sqlstate?: string;
  reason?: string;
  duration_ms: number;
  upstream_error?: string;
}

export interface AuditSink {
  statement(record: StatementRecord): void;
  /** Set while records cannot be written: the statement path refuses statements then. */
  failure?(): GatehouseError | undefined;
  event(kind: AuditEvent, fields: Record<string, unknown>): void;
}

/** A limit_reached record names the limit (`limit`, src/limits) and its `value`, beside who hit it. */
export type AuditEvent = 'auth_failed' | 'auth_throttled' | 'session_start' | 'session_end' | 'limit_reached' | 'statement_failed';

/** Lines are written at most this long after the statement they record... */
const AUDIT_FLUSH_MS = 20;
/** ...or as soon as this many records are waiting. */
const AUDIT_FLUSH_RECORDS = 2048;

/**
 * The statement's fingerprint in the trail: the first 16 hex digits of its text's SHA-256, so
 * one statement can be found across sessions without comparing texts. Computed when the
 * record is written, off the statement's path.
 */
export function statementFingerprint(statement: string): string {
  return hash('sha256', statement, 'hex').slice(0, 16);
}

/** A statement record's fields in the order its line gives them (the fingerprint follows the text). */
const STATEMENT_FIELDS = [
  'org',
  'user',
  'connection',
  'level',
  'client_address',
  'application_name',
  'decision',
  'rule',
  'policy_version',
  'topics',
  'sent_sql',
  'sqlstate',
  'reason',
  'duration_ms',
  'upstream_error',
] as const satisfies readonly (keyof StatementRecord)[];
/** Fails to compile when StatementRecord gains a field the line would leave out. */
type UnwrittenField = Exclude<keyof StatementRecord, (typeof STATEMENT_FIELDS)[number] | 'statement'>;
const everyFieldWritten: [UnwrittenField] extends [never] ? true : UnwrittenField = true;
void everyFieldWritten;

/** A record as one JSON line: its time, its type, then its fields (a statement's fingerprint after its text). */
function auditLine(r: Waiting): string {
  const time = new Date(r.time).toISOString();
  if (r.type !== 'statement') return `${JSON.stringify({ time, type: r.type, ...r.fields })}\n`;
  // Field by field, without copying the record into a new object first.
  const record = r.fields as StatementRecord;
  let line = `{"time":"${time}","type":"statement","statement":${JSON.stringify(record.statement)},"fingerprint":"${statementFingerprint(record.statement)}"`;
  for (const k of STATEMENT_FIELDS) {
    const v = record[k];
    if (v !== undefined) line += `,"${k}":${JSON.stringify(v)}`;
  }
  return `${line}}\n`;
}

/** A record waiting for its batch: the time it was made, kept as a number until the line is written. */
interface Waiting {
  time: number;
  type: 'statement' | AuditEvent;
  fields: Record<string, unknown> | StatementRecord;
}

/**
 * The audit trail as JSON lines: the file 0600 in a 0700 directory (private-files.ts).
 * Records are written in batches (one write for every record of the last few milliseconds,
 * not one thread-pool round trip per statement) and none is dropped: a write that fails
 * keeps its lines and is retried, and until one succeeds `failure()` says so, so the
 * statement path refuses new statements rather than run them unaudited. flush() writes
 * what is waiting synchronously (shutdown).
 */
export function fileAudit(path: string): AuditSink & { flush(): void } {
  privateDir(dirname(path));
  return new AuditFile(openPrivateAppend(path));
}

class AuditFile implements AuditSink {
  /** Records not yet turned into lines: serializing and hashing happen in the batch, not on the statement's path. */
  private waiting: Waiting[] = [];
  /** Lines of a write that failed, kept in order for the next try. */
  private unwritten: string[] = [];
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private failed: Error | undefined;

  constructor(private readonly fd: number) {}

  statement(record: StatementRecord): void {
    this.append({ time: Date.now(), type: 'statement', fields: record });
  }

  event(kind: AuditEvent, fields: Record<string, unknown>): void {
    this.append({ time: Date.now(), type: kind, fields });
  }

  failure(): GatehouseError | undefined {
    if (!this.failed) return undefined;
    return new GatehouseError('58030', 'the audit trail cannot be written, so Gatehouse runs no statements', {
      detail: this.failed.message,
      hint: 'an administrator must make the audit file writable again (disk space, permissions)',
    });
  }

  private append(record: Waiting): void {
    this.waiting.push(record);
    this.writeSoon(this.waiting.length >= AUDIT_FLUSH_RECORDS ? 0 : AUDIT_FLUSH_MS);
  }

  private writeSoon(ms: number): void {
    if (this.writing) return;
    if (ms === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.write();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.write();
      }, ms);
      this.timer.unref();
    }
  }

  /** Every waiting record as lines, after the lines of a write that failed: in the order they were made. */
  private takeLines(): string[] {
    const lines = this.unwritten;
    for (const r of this.waiting) lines.push(auditLine(r));
    this.unwritten = [];
    this.waiting = [];
    return lines;
  }

  private async write(): Promise<void> {
    if (this.writing || (this.waiting.length === 0 && this.unwritten.length === 0)) return;
    this.writing = true;
    const lines = this.takeLines();
    try {
      await writeAll(this.fd, Buffer.from(lines.join('')));
      this.failed = undefined;
    } catch (e) {
      // Keep the lines (first, in order) and try again: nothing is dropped.
      this.failed = e as Error;
      this.unwritten = lines;
    } finally {
      this.writing = false;
    }
    if (this.waiting.length > 0 || this.unwritten.length > 0) this.writeSoon(this.failed ? 1000 : AUDIT_FLUSH_MS);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const buf = Buffer.from(this.takeLines().join(''));
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      // The last chance to keep them (shutdown): what the file did not take goes to stderr,
      // whole lines after a marker, so an operator can append them to the trail by hand.
      process.stderr.write(`gatehouse: the audit file could not be written (${(e as Error).message}); its remaining records follow\n`);
      process.stderr.write(buf.subarray(off === 0 ? 0 : buf.lastIndexOf(10, off - 1) + 1));
      throw e;
    }
  }
}

async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await new Promise<{ bytesWritten: number }>((resolve, reject) =>
      write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve({ bytesWritten: n }))),
    );
    off += bytesWritten;
  }
}

export function loggerAudit(logger: Logger): AuditSink {
  return {
    statement: (record) => logger.info({ type: 'statement', ...record, fingerprint: statementFingerprint(record.statement) }, 'audit'),
    event: (kind, fields) => logger.info({ type: kind, ...fields }, 'audit'),
  };
}

/** Counts what the audit trail records, so metrics and audit never disagree. */
export function countedAudit(inner: AuditSink, metrics: Metrics): AuditSink {
  return {
    failure: () => inner.failure?.(),
    statement(record) {
      metrics.countStatement(record.org, record.decision, record.duration_ms / 1000);
      inner.statement(record);
    },
    event(kind, fields) {
      if (kind === 'auth_failed') metrics.authFailures.inc();
      else if (kind === 'auth_throttled') metrics.limitRefusals.inc({ limit: String(fields.limit) });
      else if (kind === 'limit_reached') metrics.limitRefusals.inc({ limit: String(fields.limit) });
      else if (kind === 'statement_failed') {
        // Counted with its statement already; the trail says how it ended.
      } else if (!fields.refused) metrics.sessions.inc({ org: String(fields.org) }, kind === 'session_start' ? 1 : -1);
      inner.event(kind, fields);
    },
  };
}
