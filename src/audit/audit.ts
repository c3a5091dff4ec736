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
  /**
   * The bytes a failed write did not get into the file, in order, for the next try. A short
   * write (a full disk, a file size limit) can end mid-line: the retry writes exactly the
   * rest, so the file gets every line once and whole, never a line's start twice.
   */
  private unwritten: Buffer = NOTHING;
  /** The start of unwritten's first line that the file already holds (a write ended mid-line). */
  private lineStarted: Buffer = NOTHING;
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

  /** What a failed write left, then every waiting record as a line: in the order they were made. */
  private takeBytes(): Buffer {
    const lines = this.waiting.map(auditLine).join('');
    this.waiting = [];
    const bytes = this.unwritten.length === 0 ? Buffer.from(lines) : Buffer.concat([this.unwritten, Buffer.from(lines)]);
    this.unwritten = NOTHING;
    return bytes;
  }

  /** A write of `bytes` got `written` of them into the file and failed: keep the rest, exactly. */
  private keepUnwritten(bytes: Buffer, written: number): void {
    this.unwritten = bytes.subarray(written);
    if (written === 0) return;
    const lineStart = bytes.lastIndexOf(10, written - 1) + 1;
    this.lineStarted = lineStart === 0 ? Buffer.concat([this.lineStarted, bytes.subarray(0, written)]) : bytes.subarray(lineStart, written);
  }

  private async write(): Promise<void> {
    if (this.writing || (this.waiting.length === 0 && this.unwritten.length === 0)) return;
    this.writing = true;
    const bytes = this.takeBytes();
    const { written, error } = await writeAll(this.fd, bytes);
    this.writing = false;
    if (error) {
      // Keep what the file did not take (first, in order) and try again: nothing is dropped.
      this.failed = error;
      this.keepUnwritten(bytes, written);
    } else {
      this.failed = undefined;
      this.lineStarted = NOTHING;
    }
    if (this.waiting.length > 0 || this.unwritten.length > 0) this.writeSoon(this.failed ? 1000 : AUDIT_FLUSH_MS);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const bytes = this.takeBytes();
    let off = 0;
    try {
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    } catch (e) {
      // The last chance to keep them (shutdown): what the file did not take goes to stderr,
      // whole lines after a marker (a line the file holds the start of, whole again), so an
      // operator can append them to the trail by hand.
      this.keepUnwritten(bytes, off);
      process.stderr.write(`gatehouse: the audit file could not be written (${(e as Error).message}); its remaining records follow\n`);
      process.stderr.write(Buffer.concat([this.lineStarted, this.unwritten]));
      throw e;
    }
  }
}

const NOTHING = Buffer.alloc(0);

/** Writes all of `bytes`, or says how many got in before the write failed. */
async function writeAll(fd: number, bytes: Buffer): Promise<{ written: number; error?: Error }> {
  let written = 0;
  while (written < bytes.length) {
    try {
      written += await new Promise<number>((resolve, reject) =>
        write(fd, bytes, written, bytes.length - written, null, (err, n) => (err ? reject(err) : resolve(n))),
      );
    } catch (e) {
      return { written, error: e as Error };
    }
  }
  return { written };
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
