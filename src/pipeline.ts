// One statement's path, top to bottom: size check, parse + classify + decide
// (pure, in policy/decide), audit, then refuse, answer, or run on the warehouse
// and stream back. It never touches bytes: the wire layer encodes what it writes.
import { createHash } from 'node:crypto';
import type { AuditSink, StatementRecord } from './audit/audit.ts';
import { GatehouseError, asClientError } from './errors.ts';
import type { Decision, DecisionContext, PlannedStatement } from './policy/decision.ts';
import { decide } from './policy/decide.ts';
import type { TxStatus, WarehouseSession, WarehouseStatement } from './warehouses/types.ts';
import { messages } from './warehouses/pg-framing.ts';
import type { ExtendedStep } from './wire/messages.ts';
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

/** A Parse that policy allowed: what went upstream for it. */
export interface PreparedStatement {
  sql: string;
  /** Parsed while Gatehouse held the transaction aborted: the ROLLBACK that ends it. */
  endsAbortedTransaction: boolean;
  /** Where it was prepared: its Binds, Describes and Close go there too. */
  target: ExtendedTarget;
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
    const err = asClientError(e);
    record.upstream_error = err.message;
    record.sqlstate = err.sqlstate;
    // 08006: the warehouse session is gone for good. End the client's session with a FATAL
    // (the wire layer closes after it), as PostgreSQL does when its backend dies, so psql
    // resets and pools reconnect instead of getting 08006 for every later statement.
    if (err.sqlstate === '08006') throw new GatehouseError('08006', err.message, { severity: 'FATAL', detail: err.detail, hint: err.hint });
    if (!sink.closed) sink.error(err);
    if (s.warehouse.txStatus !== 'I') s.abortedTransaction = true;
    if (!(e instanceof GatehouseError)) throw e;
  } finally {
    record.duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    s.audit.statement(record);
  }
  return s.abortedTransaction ? 'E' : s.warehouse.txStatus;
}

/** Where an extended-protocol message runs: the warehouse, or the session's topic catalog. */
export type ExtendedTarget = 'warehouse' | 'catalog';

/**
 * One extended-query batch (the messages before Sync, 55.2.3), decided whole before any of it
 * runs, as a multi-statement Query is: every Parse is decided on its text (audited), every
 * statement name checked against what this session prepared. Any refusal answers one
 * ErrorResponse and nothing of the batch runs; otherwise each Parse carries the decided SQL
 * and every response is relayed.
 *
 * Each message has one target. A Parse runs where its decision says (a Query Topics user's
 * catalog query on the topic catalog, anything else on the warehouse); a Bind, a Describe or
 * Close of a statement where that statement was prepared; an Execute, Describe or Close of a
 * portal where it was bound (a portal never bound here: the warehouse, which knows it no more
 * than Gatehouse does). A batch whose messages have two targets (pgjdbc with autocommit off
 * sends BEGIN with a metadata query; it sends the Close of an earlier statement with the next
 * Parse) is split where the target changes: each run of messages goes with its own Sync, in
 * order, and after one that answered an error the rest is skipped, as PostgreSQL skips to Sync.
 * What the split loses is one implicit transaction over the whole batch: nothing, as catalog
 * statements belong to Query Topics users, who cannot write.
 */
export async function runExtended(s: StatementSession, batch: ExtendedStep[], sink: ResultSink): Promise<TxStatus> {
  const started = performance.now();
  const prepared = new Map(s.prepared);
  const portals = new Map(s.portals);
  const records: StatementRecord[] = [];
  const segments: { target: ExtendedTarget; steps: ExtendedStep[] }[] = [];
  const route = (target: ExtendedTarget, step: ExtendedStep) => {
    const last = segments[segments.length - 1];
    if (last?.target === target) last.steps.push(step);
    else segments.push({ target, steps: [step] });
  };
  /** Portals bound in this batch to the ROLLBACK that ends an aborted transaction. */
  const endingPortals = new Set<string>();
  let refusal: GatehouseError | undefined;
  let endsAborted = false;
  for (const m of batch) {
    if (m.type === 'Parse') {
      const { decision, sql, target } = await decideParse(s, m.query);
      records.push(auditRecord(s, m.query, decision));
      if (decision.outcome === 'refuse') {
        s.onRefusal?.(decision.rule, decision.error);
        refusal = decision.error;
        break;
      }
      const ends = decision.outcome === 'run' && decision.rule === 'aborted_transaction.end';
      endsAborted ||= ends;
      prepared.set(m.name, { sql, endsAbortedTransaction: ends, target });
      route(target, { ...m, query: sql });
      continue;
    }
    if ((m.type === 'Bind' || (m.type === 'Describe' && m.kind === 'S')) && !prepared.has(m.type === 'Bind' ? m.statement : m.name)) {
      refusal = unknownStatement(m.type === 'Bind' ? m.statement : m.name);
      break;
    }
    if (s.abortedTransaction && m.type === 'Bind' && !prepared.get(m.statement)?.endsAbortedTransaction) {
      refusal = abortedTransaction();
      break;
    }
    if (s.abortedTransaction && m.type === 'Execute' && !endingPortals.has(m.portal)) {
      refusal = abortedTransaction();
      break;
    }
    if (m.type === 'Bind' && prepared.get(m.statement)?.endsAbortedTransaction) endingPortals.add(m.portal);
    let target: ExtendedTarget;
    if (m.type === 'Bind') {
      target = prepared.get(m.statement)!.target;
      portals.set(m.portal, target);
    } else if ((m.type === 'Describe' || m.type === 'Close') && m.kind === 'S') {
      // Close of a statement never prepared: the warehouse answers CloseComplete, as PostgreSQL does.
      target = prepared.get(m.name)?.target ?? 'warehouse';
      if (m.type === 'Close') prepared.delete(m.name);
    } else {
      const portal = m.type === 'Execute' ? m.portal : m.name;
      target = portals.get(portal) ?? 'warehouse';
      if (m.type === 'Close') portals.delete(portal);
    }
    route(target, m);
  }

  try {
    if (refusal) {
      sink.error(refusal);
      if (s.warehouse.txStatus !== 'I') s.abortedTransaction = true;
    } else {
      // Every upstream this batch needs, before any of it runs.
      const warehouse = s.warehouse;
      if (!warehouse.runExtended && segments.some((g) => g.target === 'warehouse')) {
        throw new GatehouseError('0A000', 'the extended query protocol is not supported on this warehouse', {
          hint: 'use the simple query protocol (pg without parameters, or preferQueryMode=simple in pgjdbc)',
        });
      }
      const catalog = segments.some((g) => g.target === 'catalog') ? await catalogOf(s) : undefined;
      const watched = errorWatch(sink);
      for (const g of segments) {
        const upstream = g.target === 'catalog' ? catalog! : warehouse;
        await upstream.runExtended!(g.steps, watched.sink);
        if (watched.failed() || sink.closed) break;
      }
      s.prepared = prepared;
      s.portals = portals;
      if (endsAborted) s.abortedTransaction = false;
    }
  } catch (e) {
    const err = asClientError(e);
    for (const r of records) {
      r.upstream_error = err.message;
      r.sqlstate = err.sqlstate;
    }
    if (err.sqlstate === '08006') throw new GatehouseError('08006', err.message, { severity: 'FATAL', detail: err.detail, hint: err.hint });
    if (!sink.closed) sink.error(err);
    if (s.warehouse.txStatus !== 'I') s.abortedTransaction = true;
    if (!(e instanceof GatehouseError)) throw e;
  } finally {
    const ms = Math.round((performance.now() - started) * 1000) / 1000;
    for (const r of records) {
      r.duration_ms = ms;
      s.audit.statement(r);
    }
  }
  return s.abortedTransaction ? 'E' : s.warehouse.txStatus;
}

/** The sink as is, noting whether an ErrorResponse went through it (relayed or Gatehouse's own). */
function errorWatch(sink: ResultSink): { sink: ResultSink; failed: () => boolean } {
  let failed = false;
  const watched: ResultSink = {
    relay(buf) {
      // Warehouses relay whole messages (split by their 5-byte headers).
      if (!failed) for (const m of messages(buf)) if (m.type === 0x45 /* E */) failed = true;
      return sink.relay(buf);
    },
    rowDescription: (f) => sink.rowDescription(f),
    dataRow: (v) => sink.dataRow(v),
    commandComplete: (t) => sink.commandComplete(t),
    emptyQuery: () => sink.emptyQuery(),
    copyOutResponse: (c) => sink.copyOutResponse(c),
    copyData: (d) => sink.copyData(d),
    copyDone: () => sink.copyDone(),
    notice: (m, d) => sink.notice(m, d),
    error(err) {
      failed = true;
      return sink.error(err);
    },
    drain: () => sink.drain(),
    get closed() {
      return sink.closed;
    },
  };
  return { sink: watched, failed: () => failed };
}

/** The decision for one Parse: what a simple Query of its text would get, narrowed to one statement. */
async function decideParse(s: StatementSession, text: string): Promise<{ decision: Decision; sql: string; target: ExtendedTarget }> {
  let decision: Decision =
    Buffer.byteLength(text) > s.maxStatementBytes
      ? { outcome: 'refuse', rule: 'statement_size', error: tooLarge(s.maxStatementBytes) }
      : await decide(s.decision, text);
  if (s.abortedTransaction && decision.outcome === 'run') decision = endOfAbortedTransaction(decision);
  if (decision.outcome === 'empty') return { decision, sql: '', target: 'warehouse' };
  if (decision.outcome === 'refuse') return { decision, sql: '', target: 'warehouse' };
  if (decision.statements.length > 1) {
    // PostgreSQL's own answer to a Parse of several statements (exec_parse_message).
    const error = new GatehouseError('42601', 'cannot insert multiple commands into a prepared statement');
    return { decision: { outcome: 'refuse', rule: 'extended.multiple_statements', error }, sql: '', target: 'warehouse' };
  }
  const [st] = decision.statements;
  if (st.action === 'answer') {
    const error = new GatehouseError('0A000', `use the simple query protocol for ${st.tag}`, {
      detail: 'Gatehouse answers EXPLAIN itself for query_topics users, over the simple query protocol only',
    });
    return { decision: { outcome: 'refuse', rule: 'extended.answered_statement', error }, sql: '', target: 'warehouse' };
  }
  // Catalog queries of Query Topics users run on the topic catalog, never the warehouse.
  if (st.action === 'catalog') return { decision, sql: st.statement.sql, target: 'catalog' };
  return { decision, sql: st.sql, target: 'warehouse' };
}

function unknownStatement(name: string): GatehouseError {
  return new GatehouseError('26000', name === '' ? 'unnamed prepared statement does not exist' : `prepared statement "${name}" does not exist`);
}

function abortedTransaction(): GatehouseError {
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
function endOfAbortedTransaction(d: Extract<Decision, { outcome: 'run' }>): Decision {
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

function catalogOf(s: StatementSession): Promise<WarehouseSession> {
  if (!s.catalog) throw new GatehouseError('0A000', `this session has no topic catalog on connection ${s.decision.connection.name}`);
  return s.catalog();
}

function tooLarge(limit: number): GatehouseError {
  return new GatehouseError('54000', `statement is larger than the limit of ${limit} bytes`, {
    hint: 'split the statement, or raise server.max_statement_bytes in rules/gatehouse.yaml',
  });
}

function auditRecord(s: StatementSession, sql: string, d: Decision): StatementRecord {
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
