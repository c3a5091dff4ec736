// A signed-in session's statement state and the one decision every statement gets,
// whichever protocol carried it: size check, decide() (pure, in policy/), and
// PostgreSQL's aborted-transaction rule for statements Gatehouse refused. The simple
// protocol's path is simple.ts, the extended protocol's extended.ts; both start here.
import type { AuditSink, StatementRecord } from '../audit/audit.ts';
import { GatehouseError, asClientError } from '../errors.ts';
import type { Decision, DecisionContext, PlannedStatement } from '../policy/decision.ts';
import { decide } from '../policy/decide.ts';
import { isDiscardAll } from '../sql/session-statement.ts';
import type { RunOutcome, TxStatus, WarehouseSession } from '../warehouses/types.ts';
import type { ResultSink } from '../wire/sink.ts';

/** Where a statement, prepared statement or portal lives: the warehouse, or the session's topic catalog. */
export type Target = 'warehouse' | 'catalog';

/** A prepared statement policy allowed (Parse or PREPARE): where it lives, and whether it ends an aborted transaction. */
export interface PreparedStatement {
  target: Target;
  /** Parsed while Gatehouse held the transaction aborted: the ROLLBACK that ends it. */
  endsAbortedTransaction: boolean;
  /** The text's length, for the session's bound on prepared statements (extended.ts). */
  bytes?: number;
}

/**
 * What a session's statements change as they run. PostgreSQL keeps one namespace for
 * prepared statements (Parse and SQL PREPARE) and one for portals (Bind and DECLARE):
 * so does Gatehouse, to route each later use to the upstream that holds the name.
 */
export interface StatementState {
  /**
   * A statement Gatehouse refused inside a transaction aborts it, as an error would on
   * PostgreSQL: until ROLLBACK (or COMMIT, which then rolls back) nothing else runs, so a
   * refused write can never be half-committed with the statements around it.
   */
  abortedTransaction: boolean;
  prepared: Map<string, PreparedStatement>;
  portals: Map<string, Target>;
  /** The topic catalog's session was opened: CLOSE ALL, DEALLOCATE ALL and DISCARD ALL run there too. */
  catalogOpened: boolean;
}

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
  state: StatementState;
  /**
   * Transaction pooling (issue 17, warehouses/transaction-pool.ts sessionStateRefusal): why a
   * forwarded statement would leave session state on a shared upstream connection, or undefined.
   */
  sessionStateRefusal?(sql: string): GatehouseError | undefined;
}

export function newStatementState(): StatementState {
  return { abortedTransaction: false, prepared: new Map(), portals: new Map(), catalogOpened: false };
}

/** The decision for one statement text, from either protocol. */
export async function decideStatement(s: StatementSession, sql: string): Promise<Decision> {
  // Nothing runs unaudited: while the audit trail cannot be written, every statement is refused.
  const unaudited = s.audit.failure?.();
  if (unaudited) return { outcome: 'refuse', rule: 'audit_unavailable', error: unaudited };
  const decision: Decision =
    Buffer.byteLength(sql) > s.maxStatementBytes
      ? { outcome: 'refuse', rule: 'statement_size', error: tooLarge(s.maxStatementBytes) }
      : await decide(s.decision, sql);
  // Transaction pooling: a statement that leaves session state behind is refused, as policy refuses.
  if (decision.outcome === 'run' && s.sessionStateRefusal) {
    for (const st of decision.statements) {
      const error = st.action === 'forward' ? s.sessionStateRefusal(st.sql) : undefined;
      if (error) return { outcome: 'refuse', rule: 'transaction_pooling.session_state', error };
    }
  }
  return s.state.abortedTransaction && decision.outcome === 'run' ? endOfAbortedTransaction(decision) : decision;
}

/** ReadyForQuery's status as the client must see it: 'E' while Gatehouse holds the transaction aborted. */
export function txStatus(s: StatementSession): TxStatus {
  return s.state.abortedTransaction ? 'E' : s.warehouse.txStatus;
}

/** After a refusal (or a failure) inside a transaction: nothing but its end runs. */
export function noteFailure(s: StatementSession): void {
  if (s.warehouse.txStatus !== 'I') s.state.abortedTransaction = true;
}

export async function upstreamOf(s: StatementSession, target: Target): Promise<WarehouseSession> {
  if (target === 'warehouse') return s.warehouse;
  if (!s.catalog) throw new GatehouseError('0A000', `this session has no topic catalog on connection ${s.decision.connection.name}`);
  s.state.catalogOpened = true;
  return s.catalog();
}

/**
 * Where a planned statement runs, and what it does to the session's names (SQL cursors share
 * the portal namespace, SQL prepared statements the statement namespace, as on PostgreSQL).
 * FETCH, MOVE, CLOSE, EXECUTE and DEALLOCATE of a name run where the name was created (a
 * Query Topics user's cursor over a catalog query lives on the topic catalog); a name never
 * created here goes to the warehouse, which answers 34000 or 26000 as PostgreSQL does.
 * Creating and dropping is recorded before the statement runs: the tables only route, every
 * statement was decided on its own text, so a stale entry can only earn the warehouse's error.
 */
export function routeNames(s: StatementSession, st: PlannedStatement): Target {
  const own: Target = st.action === 'catalog' ? 'catalog' : 'warehouse';
  const names = st.action === 'answer' ? undefined : st.names;
  if (!names) {
    if (st.action === 'forward' && st.kind === 'discard' && isDiscardAll(st.sql)) forgetAll(s);
    return own;
  }
  const table = names.space === 'cursor' ? s.state.portals : s.state.prepared;
  const target =
    names.uses !== undefined ? ((names.space === 'cursor' ? s.state.portals.get(names.uses) : s.state.prepared.get(names.uses)?.target) ?? 'warehouse') : own;
  if (names.creates !== undefined) {
    if (names.space === 'cursor') s.state.portals.set(names.creates, target);
    else s.state.prepared.set(names.creates, { target, endsAbortedTransaction: false });
  }
  if (typeof names.drops === 'string') table.delete(names.drops);
  else if (names.drops) table.clear();
  return target;
}

function forgetAll(s: StatementSession): void {
  s.state.portals.clear();
  s.state.prepared.clear();
}

/** CLOSE ALL, DEALLOCATE ALL and DISCARD ALL clear every upstream the session uses, not only the one that answers. */
export function dropsEverywhere(st: PlannedStatement): boolean {
  if (st.action === 'answer') return false;
  if (st.names?.drops && typeof st.names.drops !== 'string') return true;
  return st.action === 'forward' && st.kind === 'discard' && isDiscardAll(st.sql);
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
  noteFailure(s);
  if (!(e instanceof GatehouseError)) throw e;
}

/** The warehouse's own error, as the audit records of the statements it answered keep it. */
export function noteUpstreamError(records: StatementRecord[], outcome: RunOutcome): void {
  if (!outcome.error) return;
  for (const r of records) {
    r.upstream_error ??= outcome.error.message;
    r.sqlstate ??= outcome.error.sqlstate;
  }
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

export function tooLarge(limit: number): GatehouseError {
  return new GatehouseError('54000', `statement is larger than the limit of ${limit} bytes`, {
    hint: 'split the statement, or raise server.max_statement_bytes in rules/gatehouse.yaml',
  });
}

/**
 * The audit record and log line of a refusal that is not a statement's decision: a protocol
 * message Gatehouse answered with an error (a Bind of an unknown statement, a malformed
 * message, the function call protocol). `what` names the message, as the record's statement.
 */
export function auditRefusal(s: StatementSession, what: string, rule: string, error: GatehouseError): void {
  s.onRefusal?.(rule, error);
  s.audit.statement(auditRecord(s, what, { outcome: 'refuse', rule, error }));
}

export function auditRecord(s: StatementSession, sql: string, d: Decision): StatementRecord {
  const ctx = s.decision;
  // Built whole in one literal (no spreads): this runs for every statement.
  const record: StatementRecord = {
    org: ctx.org,
    user: ctx.user,
    connection: ctx.connection.name,
    level: ctx.level,
    client_address: s.clientAddress,
    application_name: s.applicationName,
    statement: sql,
    decision: 'refused',
    rule: d.outcome === 'empty' ? 'empty' : d.rule,
    policy_version: s.policyVersion,
    topics: [],
    duration_ms: 0,
  };
  if (d.outcome === 'refuse') {
    record.sqlstate = d.error.sqlstate;
    record.reason = d.error.message;
  } else if (d.outcome === 'empty') {
    record.decision = 'empty';
  } else {
    // A session statement Gatehouse answered itself (a mysql connection's SET/SHOW) was never sent.
    const sent: string[] = [];
    for (const st of d.statements) if (st.action === 'forward' && !st.emulated) sent.push(st.sql);
    record.decision = d.topics.length ? 'rewritten' : sent.length < d.statements.length ? 'answered' : 'allowed';
    record.topics = d.topics;
    record.sent_sql = sent;
  }
  return record;
}

export const elapsedMs = (started: number): number => Math.round((performance.now() - started) * 1000) / 1000;
