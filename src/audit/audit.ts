// One audit record per statement, auth attempt and session event (DESIGN section 3).
// Never a credential: records carry SQL text and decisions, not passwords or proofs.
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
  fingerprint: string;
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
export type AuditEvent = 'auth_failed' | 'auth_throttled' | 'session_start' | 'session_end' | 'limit_reached';

/** Lines are written at most this long after the statement they record... */
const AUDIT_FLUSH_MS = 20;
/** ...or as soon as this many bytes are waiting. */
const AUDIT_FLUSH_BYTES = 256 * 1024;

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
  private waiting: string[] = [];
  private waitingBytes = 0;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private failed: Error | undefined;

  constructor(private readonly fd: number) {}

  statement(record: StatementRecord): void {
    this.append({ type: 'statement', ...record });
  }

  event(kind: AuditEvent, fields: Record<string, unknown>): void {
    this.append({ type: kind, ...fields });
  }

  failure(): GatehouseError | undefined {
    if (!this.failed) return undefined;
    return new GatehouseError('58030', 'the audit trail cannot be written, so Gatehouse runs no statements', {
      detail: this.failed.message,
      hint: 'an administrator must make the audit file writable again (disk space, permissions)',
    });
  }

  private append(entry: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`;
    this.waiting.push(line);
    this.waitingBytes += line.length;
    if (this.waitingBytes >= AUDIT_FLUSH_BYTES) this.writeSoon(0);
    else this.writeSoon(AUDIT_FLUSH_MS);
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

  private async write(): Promise<void> {
    if (this.writing || this.waiting.length === 0) return;
    this.writing = true;
    const lines = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    const buf = Buffer.from(lines.join(''));
    try {
      await writeAll(this.fd, buf);
      this.failed = undefined;
    } catch (e) {
      // Keep the lines (first, in order) and try again: nothing is dropped.
      this.failed = e as Error;
      this.waiting = [...lines, ...this.waiting];
      this.waitingBytes += buf.length;
    } finally {
      this.writing = false;
    }
    if (this.waiting.length > 0) this.writeSoon(this.failed ? 1000 : AUDIT_FLUSH_MS);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.length === 0) return;
    const buf = Buffer.from(this.waiting.join(''));
    this.waiting = [];
    this.waitingBytes = 0;
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
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
    statement: (record) => logger.info({ type: 'statement', ...record }, 'audit'),
    event: (kind, fields) => logger.info({ type: kind, ...fields }, 'audit'),
  };
}

/** Counts what the audit trail records, so metrics and audit never disagree. */
export function countedAudit(inner: AuditSink, metrics: Metrics): AuditSink {
  return {
    failure: () => inner.failure?.(),
    statement(record) {
      metrics.statements.inc({ org: record.org, decision: record.decision });
      metrics.statementSeconds.observe({ org: record.org }, record.duration_ms / 1000);
      inner.statement(record);
    },
    event(kind, fields) {
      if (kind === 'auth_failed') metrics.authFailures.inc();
      else if (kind === 'auth_throttled') metrics.limitRefusals.inc({ limit: String(fields.limit) });
      else if (kind === 'limit_reached') metrics.limitRefusals.inc({ limit: String(fields.limit) });
      else if (!fields.refused) metrics.sessions.inc({ org: String(fields.org) }, kind === 'session_start' ? 1 : -1);
      inner.event(kind, fields);
    },
  };
}
