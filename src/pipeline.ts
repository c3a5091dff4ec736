// One statement's path, top to bottom: size check, parse + classify + decide
// (pure, in policy/decide), audit, then refuse, answer, or run on the warehouse
// and stream back. It never touches bytes: the wire layer encodes what it writes.
// The extended protocol's batches take the same path in pipeline-extended.ts.
import { createHash } from 'node:crypto';
import type { AuditSink, StatementRecord } from './audit/audit.ts';
import { GatehouseError, asClientError } from './errors.ts';
import type { Decision, DecisionContext, PlannedStatement } from './policy/decision.ts';
import { decide } from './policy/decide.ts';
import type { TxStatus, WarehouseSession, WarehouseStatement } from './warehouses/types.ts';
import type { ExtendedTarget, PreparedStatement } from './pipeline-extended.ts';
import type { ResultSink } from './wire/sink.ts';

export interface StatementSession {
  decision: DecisionContext;
  warehouse: WarehouseSession;
  /** The topic catalog's session (Query Topics users, src/catalog), opened on first use: where `catalog` statements run. */
  catalog?: () => Promise<WarehouseSession>;
  audit: AuditSink;
  policyVersion: string;
  maxStatementBytes: number;
  clientAddress: string;
  applicationName?: string;
  /** One log line per refusal (the audit record has the rest). */
  onRefusal?(rule: string, error: GatehouseError): void;
  /**
   * A statement Gatehouse refused inside a transaction aborts it, as an error would on
   * PostgreSQL: until ROLLBACK (or COMMIT, which then rolls back) nothing else runs, so a
   * refused write can never be half-committed with the statements around it.
   */
  abortedTransaction?: boolean;
  /**
   * Prepared statements of the extended protocol that Gatehouse allowed, by the client's name
   * ('' is the unnamed one): a Bind or Describe of any other name never reaches the warehouse.
   */
  prepared?: Map<string, PreparedStatement>;
  /** Portals of the extended protocol, by name: where they were bound (so where they execute). */
  portals?: Map<string, ExtendedTarget>;
}

export async function runQuery(s: StatementSession, sql: string, sink: ResultSink): Promise<TxStatus> {
  const started = performance.now();
  let decision: Decision =
    Buffer.byteLength(sql) > s.maxStatementBytes
      ? { outcome: 'refuse', rule: 'statement_size', error: tooLarge(s.maxStatementBytes) }
      : await decide(s.decision, sql);
  if (s.abortedTransaction && decision.outcome === 'run') decision = endOfAbortedTransaction(decision);

  const record = auditRecord(s, sql, decision);
  try {
    switch (decision.outcome) {
      case 'refuse':
        s.onRefusal?.(decision.rule, decision.error);
        sink.error(decision.error);
        break;
      case 'empty':
        sink.emptyQuery();
        break;
      case 'run':
        await execute(s, decision.statements, sink);
        if (decision.rule === 'aborted_transaction.end') s.abortedTransaction = false;
        break;
    }
    if (decision.outcome === 'refuse' && s.warehouse.txStatus !== 'I') s.abortedTransaction = true;
  } catch (e) {
    failStatement(s, e, sink, [record]);
  } finally {
    record.duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    s.audit.statement(record);
  }
  return s.abortedTransaction ? 'E' : s.warehouse.txStatus;
}

/**
 * A statement that failed while running (upstream lost, internal fault): the error goes to
 * the audit records and the client, and an open transaction is aborted. 08006 means the
 * warehouse session is gone for good: it ends the client's session with a FATAL (the wire
 * layer closes after it), as PostgreSQL does when its backend dies, so psql resets and pools
 * reconnect. Internal faults are rethrown for the server log after the client is answered.
 */
export function failStatement(s: StatementSession, e: unknown, sink: ResultSink, records: StatementRecord[]): void {
  const err = asClientError(e);
  for (const r of records) {
    r.upstream_error = err.message;
    r.sqlstate = err.sqlstate;
  }
  if (err.sqlstate === '08006') throw new GatehouseError('08006', err.message, { severity: 'FATAL', detail: err.detail, hint: err.hint });
  if (!sink.closed) sink.error(err);
  if (s.warehouse.txStatus !== 'I') s.abortedTransaction = true;
  if (!(e instanceof GatehouseError)) throw e;
}

export function abortedTransaction(): GatehouseError {
  return new GatehouseError('25P02', 'current transaction is aborted, commands ignored until end of transaction block', {
    detail: 'Gatehouse refused an earlier statement of this transaction',
    hint: 'end the transaction with ROLLBACK',
  });
}

const ROLLBACK_TO = /^\s*ROLLBACK\s+((WORK|TRANSACTION)\s+)?TO\b/i;
const ENDS_TRANSACTION = /^\s*(ROLLBACK|ABORT|COMMIT|END)\b/i;

/**
 * In a transaction Gatehouse aborted, only its end runs (PostgreSQL, 25P02): ROLLBACK TO a
 * savepoint as written; ROLLBACK, ABORT, COMMIT and END as ROLLBACK (PostgreSQL answers a
 * COMMIT of a failed transaction with ROLLBACK too).
 */
export function endOfAbortedTransaction(d: Extract<Decision, { outcome: 'run' }>): Decision {
  const [only] = d.statements;
  if (d.statements.length === 1 && only.action === 'forward' && only.kind === 'transaction' && ENDS_TRANSACTION.test(only.sql)) {
    const sql = ROLLBACK_TO.test(only.sql) ? only.sql : 'ROLLBACK';
    return { ...d, rule: 'aborted_transaction.end', statements: [{ ...only, sql }] };
  }
  return { outcome: 'refuse', rule: 'aborted_transaction', error: abortedTransaction() };
}

/**
 * Consecutive statements for the same upstream go as one batch (one upstream Query):
 * forwarded ones to the warehouse, catalog queries to the session's topic catalog.
 */
async function execute(s: StatementSession, statements: PlannedStatement[], sink: ResultSink): Promise<void> {
  let batch: WarehouseStatement[] = [];
  let onCatalog = false;
  const flush = async () => {
    if (batch.length) await (onCatalog ? await catalogOf(s) : s.warehouse).run(batch, sink);
    batch = [];
  };
  for (const st of statements) {
    if (st.action === 'forward' || st.action === 'catalog') {
      if ((st.action === 'catalog') !== onCatalog) {
        await flush();
        onCatalog = st.action === 'catalog';
      }
      batch.push(st.action === 'catalog' ? st.statement : st);
      continue;
    }
    await flush();
    sink.rowDescription([{ name: st.column, tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]);
    for (const row of st.rows) sink.dataRow([row]);
    sink.commandComplete(st.tag);
    await sink.drain();
  }
  await flush();
}

export function catalogOf(s: StatementSession): Promise<WarehouseSession> {
  if (!s.catalog) throw new GatehouseError('0A000', `this session has no topic catalog on connection ${s.decision.connection.name}`);
  return s.catalog();
}

export function tooLarge(limit: number): GatehouseError {
  return new GatehouseError('54000', `statement is larger than the limit of ${limit} bytes`, {
    hint: 'split the statement, or raise server.max_statement_bytes in rules/gatehouse.yaml',
  });
}

export function auditRecord(s: StatementSession, sql: string, d: Decision): StatementRecord {
  const ctx = s.decision;
  const base = {
    org: ctx.org,
    user: ctx.user,
    connection: ctx.connection.name,
    level: ctx.level,
    client_address: s.clientAddress,
    application_name: s.applicationName,
    statement: sql,
    fingerprint: createHash('sha256').update(sql).digest('hex').slice(0, 16),
    policy_version: s.policyVersion,
    duration_ms: 0,
  };
  if (d.outcome === 'refuse') {
    return { ...base, decision: 'refused', rule: d.rule, topics: [], sqlstate: d.error.sqlstate, reason: d.error.message };
  }
  if (d.outcome === 'empty') return { ...base, decision: 'empty', rule: 'empty', topics: [] };
  const forwarded = d.statements.filter((st) => st.action === 'forward');
  const answered = forwarded.length < d.statements.length;
  return {
    ...base,
    decision: d.topics.length ? 'rewritten' : answered ? 'answered' : 'allowed',
    rule: d.rule,
    topics: d.topics,
    sent_sql: forwarded.map((st) => st.sql),
  };
}
