// One audit record per statement, auth attempt and session event (DESIGN section 3).
// Never a credential: records carry SQL text and decisions, not passwords or proofs.
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
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
  event(kind: 'auth_failed' | 'session_start' | 'session_end', fields: Record<string, unknown>): void;
}

/** The audit trail as JSON lines: the file 0600 in a 0700 directory (private-files.ts). */
export function fileAudit(path: string): AuditSink & { flush(): void } {
  privateDir(dirname(path));
  const fd = openPrivateAppend(path);
  const out: Logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd, sync: false }));
  return {
    statement: (record) => out.info({ type: 'statement', ...record }),
    event: (kind, fields) => out.info({ type: kind, ...fields }),
    flush: () => out.flush(),
  };
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
    statement(record) {
      metrics.statements.inc({ org: record.org, decision: record.decision });
      metrics.statementSeconds.observe({ org: record.org }, record.duration_ms / 1000);
      inner.statement(record);
    },
    event(kind, fields) {
      if (kind === 'auth_failed') metrics.authFailures.inc();
      else if (!fields.refused) metrics.sessions.inc({ org: String(fields.org) }, kind === 'session_start' ? 1 : -1);
      inner.event(kind, fields);
    },
  };
}
