// The extended query protocol's path (55.2.3), message by message as the client sends them.
// Each Parse gets the same decision as a simple Query of its text (session.ts), each name is
// routed to the upstream that holds it, and what policy allowed is passed on as it comes:
// held until the client's Flush or Sync (or a bound on what is held), so a client that
// reads rows after Flush (asyncpg, pg-cursor, pg-query-stream) gets them, and a row-limited
// Execute's PortalSuspended reaches it. A refusal ends the exchange as a failing message
// does on PostgreSQL: the messages before it run, the implicit transaction is rolled back
// (the warehouse sees a message that fails: UpstreamConnection.abort), one ErrorResponse,
// and the rest up to Sync is skipped by the wire layer.
import type { StatementRecord } from '../audit/audit.ts';
import { GatehouseError } from '../errors.ts';
import type { Decision } from '../policy/decision.ts';
import { checkParameterTypes } from '../sql/allowlist.ts';
import { Refusal } from '../sql/refusal.ts';
import type { PlannedParse, RunOutcome, TxStatus, WarehouseSession, WarehouseStatement } from '../warehouses/types.ts';
import type { ExtendedStep } from '../wire/messages.ts';
import type { ResultSink } from '../wire/sink.ts';
import {
  type StatementSession,
  type Target,
  abortedTransaction,
  auditRecord,
  auditRefusal,
  decideStatement,
  elapsedMs,
  failStatement,
  noteFailure,
  noteUpstreamError,
  routeNames,
  txStatus,
  upstreamOf,
} from './session.ts';

/** Messages held before they are written upstream without a Flush or Sync. */
const MAX_HELD_MESSAGES = 256;

/**
 * Records written before their statements ran that an exchange keeps, the newest, to name in
 * statement_failed records if the warehouse then fails the exchange. Bounded: a client that
 * pipelines without Sync and never reads grew a session by 270 MB of kept records (an outside
 * review); what is dropped was audited already and is counted in the failure's records.
 */
const MAX_WRITTEN_KEPT = 1024;

/**
 * Named prepared statements one session may hold, and their text in all: each one holds
 * memory in a warehouse backend (an outside review grew one to 195 MB with 60 statements of
 * 1 MB), and the warehouse is shared.
 */
export const MAX_PREPARED_STATEMENTS = 10_000;
export const MAX_PREPARED_BYTES = 64 * 1024 * 1024;

/** Messages since the last Sync that went, or will go, to one upstream. */
interface Segment {
  target: Target;
  upstream: WarehouseSession;
  held: ExtendedStep[];
  /** Something of this segment was written upstream (its exchange is running there). */
  sent: boolean;
}

/** One extended exchange: the messages since the last Sync. */
interface Exchange {
  started: number;
  /** One per Parse, written at the end of the exchange with its duration and the warehouse's error. */
  records: StatementRecord[];
  /**
   * Records written before their statements ran (at Flush: a client may read its rows and
   * never Sync). An error the warehouse reports for them later is audited as a
   * statement_failed record naming the same statement.
   */
  written: StatementRecord[];
  /** Written records dropped from `written` (the oldest), past MAX_WRITTEN_KEPT. */
  writtenDropped: number;
  segment?: Segment;
  /** Portals bound in this exchange to the ROLLBACK that ends an aborted transaction. */
  endingPortals: Set<string>;
  endsAborted: boolean;
}

const exchanges = new WeakMap<StatementSession, Exchange>();

function exchangeOf(s: StatementSession): Exchange {
  let x = exchanges.get(s);
  if (!x) {
    x = { started: performance.now(), records: [], written: [], writtenDropped: 0, endingPortals: new Set(), endsAborted: false };
    exchanges.set(s, x);
  }
  return x;
}

/**
 * One Parse, Bind, Describe, Execute or Close. True: passed on (answered by the warehouse in
 * order). False: it was refused or the exchange failed before it; an ErrorResponse reached the
 * client and the wire layer skips to Sync.
 */
export async function extendedMessage(s: StatementSession, m: ExtendedStep, sink: ResultSink): Promise<boolean> {
  const x = exchangeOf(s);
  try {
    const admitted = await admit(s, x, m, sink);
    if ('refusal' in admitted) {
      await refuse(s, x, admitted.refusal, sink);
      return false;
    }
    if (x.segment?.target !== admitted.target) {
      let upstream: WarehouseSession;
      try {
        upstream = await extendedUpstream(s, admitted.target);
      } catch (e) {
        if (!(e instanceof GatehouseError) || e.severity === 'FATAL' || e.sqlstate === '08006') throw e;
        await refuse(s, x, e, sink);
        return false;
      }
      if (x.segment) {
        // pgjdbc sends BEGIN with a metadata query, or the Close of an earlier statement with the
        // next Parse: each upstream's part ends with its own Sync, in order. What the split loses
        // is one implicit transaction over both: nothing, as catalog statements belong to Query
        // Topics users, who cannot write.
        const outcome = await endSegment(s, x, sink);
        if (outcome.error) return false; // PostgreSQL would skip the rest up to Sync
      }
      x.segment = { target: admitted.target, upstream, held: [], sent: false };
    }
    x.segment!.held.push(admitted.step);
    if (x.segment!.held.length >= MAX_HELD_MESSAGES) await send(s, x, x.segment!, sink, false);
    return true;
  } catch (e) {
    exchanges.delete(s);
    failStatement(s, e, sink, x.records);
    return false;
  } finally {
    if (!exchanges.has(s)) writeRecords(s, x);
  }
}

/** Flush: what the client sent so far is answered now. */
export async function extendedFlush(s: StatementSession, sink: ResultSink): Promise<void> {
  const x = exchanges.get(s);
  if (x?.segment) await send(s, x, x.segment, sink, true).catch((e) => failStatement(s, e, sink, x.records));
}

/** Sync: the exchange ends (its implicit transaction commits); returns ReadyForQuery's status and whether it failed. */
export async function extendedSync(s: StatementSession, sink: ResultSink): Promise<{ status: TxStatus; failed: boolean }> {
  const x = exchanges.get(s);
  exchanges.delete(s);
  if (!x) return { status: txStatus(s), failed: false };
  let failed = false;
  try {
    if (x.segment) {
      const outcome = await endSegment(s, x, sink);
      failed = outcome.error !== undefined;
      if (failed) noteFailure(s);
    }
    if (x.endsAborted && s.warehouse.txStatus === 'I') s.state.abortedTransaction = false;
  } catch (e) {
    failStatement(s, e, sink, x.records);
    failed = true;
  } finally {
    writeRecords(s, x);
  }
  return { status: txStatus(s), failed };
}

/**
 * An error the wire layer answered inside an exchange (a malformed message, the function call
 * protocol, a Query before Sync): the exchange ends as a failing message ends it, audited.
 */
export async function extendedProtocolError(s: StatementSession, what: string, rule: string, error: GatehouseError, sink: ResultSink): Promise<void> {
  auditRefusal(s, what, rule, error);
  const x = exchangeOf(s);
  try {
    await refuse(s, x, error, sink);
  } catch (e) {
    failStatement(s, e, sink, x.records);
  } finally {
    writeRecords(s, x);
  }
}

/** The session ends inside an exchange (no Sync came): what was decided is audited all the same. */
export function extendedAbandoned(s: StatementSession): void {
  const x = exchanges.get(s);
  exchanges.delete(s);
  if (!x) return;
  for (const r of x.records) r.upstream_error ??= 'the session ended before Sync';
  writeRecords(s, x);
}

async function extendedUpstream(s: StatementSession, target: Target): Promise<WarehouseSession> {
  const upstream = await upstreamOf(s, target);
  if (!upstream.sendExtended) {
    throw new GatehouseError('0A000', 'the extended query protocol is not supported on this warehouse', {
      hint: 'use the simple query protocol (pg without parameters, or preferQueryMode=simple in pgjdbc)',
    });
  }
  return upstream;
}

async function send(s: StatementSession, x: Exchange, seg: Segment, sink: ResultSink, flush: boolean): Promise<void> {
  const held = seg.held;
  seg.held = [];
  seg.sent = true;
  // Audited before it runs: a client that reads its rows after Flush and never sends Sync
  // (or closes) must leave the same records as one that does (an outside review read rows so).
  x.written.push(...x.records);
  if (x.written.length > MAX_WRITTEN_KEPT) x.writtenDropped += x.written.splice(0, x.written.length - MAX_WRITTEN_KEPT).length;
  writeRecords(s, x);
  await seg.upstream.sendExtended!(held, sink, flush);
}

/** The segment's held messages and Sync: resolves at the upstream's ReadyForQuery. */
async function endSegment(s: StatementSession, x: Exchange, sink: ResultSink): Promise<RunOutcome> {
  const seg = x.segment!;
  x.segment = undefined;
  const outcome = await seg.upstream.syncExtended!(seg.held, sink);
  noteUpstreamError(x.records, outcome);
  auditLateFailure(s, x, outcome);
  return outcome;
}

/**
 * Refuses inside an exchange. What was sent or held before the refused message runs (it was
 * decided and comes first, as on PostgreSQL), then the warehouse fails a message of
 * Gatehouse's own and rolls the implicit transaction back. The refusal reaches the client
 * unless an earlier message already failed there (PostgreSQL would have skipped this one).
 */
async function refuse(s: StatementSession, x: Exchange, refusal: GatehouseError, sink: ResultSink): Promise<void> {
  const seg = x.segment;
  x.segment = undefined;
  exchanges.delete(s);
  let answered = true;
  if (seg && (seg.sent || seg.held.length > 0)) {
    const outcome = await seg.upstream.abortExtended!(seg.held, sink);
    noteUpstreamError(x.records, outcome);
    auditLateFailure(s, x, outcome);
    answered = outcome.aborted;
  }
  if (answered) sink.error(refusal);
  noteFailure(s);
}

type Admitted = { target: Target; step: ExtendedStep } | { refusal: GatehouseError };

/** Decides one message: where it goes and what is sent for it, or why it is refused (audited). */
async function admit(s: StatementSession, x: Exchange, m: ExtendedStep, sink: ResultSink): Promise<Admitted> {
  const { prepared, portals } = s.state;
  switch (m.type) {
    case 'Parse': {
      const decided = await decideParse(s, m.query, m.paramTypes, sink);
      const { sql, target, planned } = decided;
      const tooMany = decided.decision.outcome === 'run' && m.name !== '' && !prepared.has(m.name) ? preparedLimit(s, sql.length) : undefined;
      const decision: Decision = tooMany ? { outcome: 'refuse', rule: 'prepared_statements.limit', error: tooMany } : decided.decision;
      x.records.push(auditRecord(s, m.query, decision));
      if (decision.outcome === 'refuse') {
        s.onRefusal?.(decision.rule, decision.error);
        return { refusal: decision.error };
      }
      const ends = decision.outcome === 'run' && decision.rule === 'aborted_transaction.end';
      x.endsAborted ||= ends;
      prepared.set(m.name, { endsAbortedTransaction: ends, target, bytes: m.name === '' ? 0 : sql.length });
      // The decided statement rides along: a connector warehouse needs its placeholder order, result columns or emulation.
      const step: PlannedParse = { ...m, query: sql, ...(planned && (planned.params || planned.columns || planned.emulated) ? { planned } : {}) };
      return { target, step };
    }
    case 'Bind': {
      const statement = prepared.get(m.statement);
      // Only statements Gatehouse decided ever reach a Bind: any other name is PostgreSQL's 26000 here.
      if (!statement) return refused(s, `Bind of statement "${m.statement}"`, 'extended.unknown_statement', unknownStatement(m.statement));
      if (s.state.abortedTransaction && !statement.endsAbortedTransaction) {
        return refused(s, `Bind of statement "${m.statement}"`, 'aborted_transaction', abortedTransaction());
      }
      if (statement.endsAbortedTransaction) x.endingPortals.add(m.portal);
      portals.set(m.portal, statement.target);
      return { target: statement.target, step: m };
    }
    case 'Execute':
      if (s.state.abortedTransaction && !x.endingPortals.has(m.portal)) {
        return refused(s, `Execute of portal "${m.portal}"`, 'aborted_transaction', abortedTransaction());
      }
      // A portal never bound here: the warehouse, which knows it no more than Gatehouse (34000).
      return { target: portals.get(m.portal) ?? 'warehouse', step: m };
    case 'Describe':
    case 'Close': {
      if (m.kind === 'S') {
        const statement = prepared.get(m.name);
        if (!statement && m.type === 'Describe') return refused(s, `Describe of statement "${m.name}"`, 'extended.unknown_statement', unknownStatement(m.name));
        // Close of a statement never prepared: the warehouse answers CloseComplete, as PostgreSQL does.
        if (m.type === 'Close') prepared.delete(m.name);
        return { target: statement?.target ?? 'warehouse', step: m };
      }
      const target = portals.get(m.name) ?? 'warehouse';
      if (m.type === 'Close') portals.delete(m.name);
      return { target, step: m };
    }
  }
}

/** Why one more named statement of `bytes` would be too many for the session, or undefined. */
function preparedLimit(s: StatementSession, bytes: number): GatehouseError | undefined {
  let total = bytes;
  for (const p of s.state.prepared.values()) total += p.bytes ?? 0;
  if (s.state.prepared.size < MAX_PREPARED_STATEMENTS && total <= MAX_PREPARED_BYTES) return undefined;
  return new GatehouseError(
    '54000',
    `this session holds too many prepared statements (at most ${MAX_PREPARED_STATEMENTS}, ${MAX_PREPARED_BYTES / 1024 / 1024} MB of text)`,
    {
      hint: 'close statements the client no longer uses (Close, DEALLOCATE)',
    },
  );
}

function refused(s: StatementSession, what: string, rule: string, error: GatehouseError): Admitted {
  auditRefusal(s, what, rule, error);
  return { refusal: error };
}

/** The decision for one Parse: what a simple Query of its text would get, narrowed to one statement. */
async function decideParse(
  s: StatementSession,
  text: string,
  paramTypes: readonly number[],
  sink: ResultSink,
): Promise<{ decision: Decision; sql: string; target: Target; planned?: WarehouseStatement }> {
  const decision = await decideStatement(s, text);
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
  // FETCH/CLOSE/EXECUTE/DEALLOCATE of a name run where it was created; catalog queries of
  // Query Topics users on the topic catalog, never the warehouse.
  const target = routeNames(s, st);
  if (st.action === 'forward' && st.notice) sink.notice(st.notice);
  if (st.action === 'catalog') return { decision, sql: st.statement.sql, target };
  // A declared parameter type is a cast the client writes outside the text (regclass looks names up).
  const badType = s.decision.level === 'query_topics' ? refusedParameterType(s, paramTypes) : undefined;
  if (badType) return { decision: badType, sql: '', target: 'warehouse' };
  return { decision, sql: st.sql, target, planned: st };
}

function refusedParameterType(s: StatementSession, paramTypes: readonly number[]): Decision | undefined {
  try {
    checkParameterTypes({ connection: s.decision.connection.name, topicsSchema: s.decision.connection.topicsSchema, topics: s.decision.topics }, paramTypes);
    return undefined;
  } catch (e) {
    if (e instanceof Refusal) return { outcome: 'refuse', rule: e.rule, error: e.error };
    throw e;
  }
}

function unknownStatement(name: string): GatehouseError {
  return new GatehouseError('26000', name === '' ? 'unnamed prepared statement does not exist' : `prepared statement "${name}" does not exist`);
}

/** The warehouse failed statements whose records were already written (at Flush): say so in the trail. */
function auditLateFailure(s: StatementSession, x: Exchange, outcome: RunOutcome): void {
  const written = x.written;
  const dropped = x.writtenDropped;
  x.written = [];
  x.writtenDropped = 0;
  if (!outcome.error) return;
  for (const r of written) {
    s.audit.event('statement_failed', {
      org: r.org,
      user: r.user,
      connection: r.connection,
      statement: r.statement,
      sqlstate: outcome.error.sqlstate,
      upstream_error: outcome.error.message,
      // The exchange's earlier statements, audited when written but not kept to name here.
      ...(dropped > 0 ? { earlier_statements_not_named: dropped } : {}),
    });
  }
}

function writeRecords(s: StatementSession, x: Exchange): void {
  const ms = elapsedMs(x.started);
  for (const r of x.records) {
    r.duration_ms = ms;
    s.audit.statement(r);
  }
  x.records = [];
}
