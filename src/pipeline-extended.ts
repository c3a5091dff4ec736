// The extended query protocol's path (55.2.3): a batch of Parse/Bind/Describe/Execute/Close
// up to Sync, decided whole with the same decide() as a simple Query (pipeline.ts), then
// relayed to the warehouse or the session's topic catalog.
import type { StatementRecord } from './audit/audit.ts';
import { GatehouseError } from './errors.ts';
import type { Decision } from './policy/decision.ts';
import { decide } from './policy/decide.ts';
import { checkParameterTypes } from './sql/allowlist.ts';
import { Refusal } from './sql/refusal.ts';
import {
  type StatementSession,
  abortedTransaction,
  auditRecord,
  catalogOf,
  endOfAbortedTransaction,
  failStatement,
  tooLarge,
} from './pipeline.ts';
import { messages } from './warehouses/pg-framing.ts';
import type { TxStatus } from './warehouses/types.ts';
import type { ExtendedStep } from './wire/messages.ts';
import type { ResultSink } from './wire/sink.ts';

/** A Parse that policy allowed: what went upstream for it. */
export interface PreparedStatement {
  sql: string;
  /** Parsed while Gatehouse held the transaction aborted: the ROLLBACK that ends it. */
  endsAbortedTransaction: boolean;
  /** Where it was prepared: its Binds, Describes and Close go there too. */
  target: ExtendedTarget;
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
      const { decision, sql, target } = await decideParse(s, m.query, m.paramTypes);
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
    failStatement(s, e, sink, records);
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
async function decideParse(s: StatementSession, text: string, paramTypes: readonly number[]): Promise<{ decision: Decision; sql: string; target: ExtendedTarget }> {
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
  // A declared parameter type is a cast the client writes outside the text (regclass looks names up).
  const badType = s.decision.level === 'query_topics' ? refusedParameterType(s, paramTypes) : undefined;
  if (badType) return { decision: badType, sql: '', target: 'warehouse' };
  return { decision, sql: st.sql, target: 'warehouse' };
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


