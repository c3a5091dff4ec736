// A simple Query's path, top to bottom: decide (session.ts), audit, then refuse, answer,
// or run on the warehouse or the topic catalog and stream back. It never touches bytes:
// the wire layer encodes what it writes.
import type { PlannedStatement } from '../policy/decision.ts';
import type { WarehouseStatement } from '../warehouses/types.ts';
import { type ResultSink, discardingSink } from '../wire/sink.ts';
import {
  type StatementSession,
  type Target,
  auditRecord,
  decideStatement,
  dropsEverywhere,
  elapsedMs,
  failStatement,
  noteFailure,
  noteUpstreamError,
  routeNames,
  txStatus,
  upstreamOf,
} from './session.ts';
import type { StatementRecord } from '../audit/audit.ts';
import type { TxStatus } from '../warehouses/types.ts';

export async function runQuery(s: StatementSession, sql: string, sink: ResultSink): Promise<TxStatus> {
  const started = performance.now();
  const decision = await decideStatement(s, sql);
  const record = auditRecord(s, sql, decision);
  try {
    switch (decision.outcome) {
      case 'refuse':
        s.onRefusal?.(decision.rule, decision.error);
        sink.error(decision.error);
        noteFailure(s);
        break;
      case 'empty':
        sink.emptyQuery();
        break;
      case 'run':
        await execute(s, decision.statements, sink, record);
        if (decision.rule === 'aborted_transaction.end') s.state.abortedTransaction = false;
        break;
    }
  } catch (e) {
    failStatement(s, e, sink, [record]);
  } finally {
    record.duration_ms = elapsedMs(started);
    s.audit.statement(record);
  }
  return txStatus(s);
}

/**
 * Consecutive statements for the same upstream go as one batch (one upstream Query):
 * forwarded ones to the warehouse, catalog queries to the session's topic catalog.
 * After a batch the warehouse answered with an error, the rest is skipped, as PostgreSQL
 * skips the rest of a multi-statement Query.
 */
async function execute(s: StatementSession, statements: PlannedStatement[], sink: ResultSink, record: StatementRecord): Promise<void> {
  let batch: WarehouseStatement[] = [];
  let target: Target = 'warehouse';
  let failed = false;
  const flush = async () => {
    if (batch.length && !failed) {
      const outcome = await (await upstreamOf(s, target)).run(batch, sink);
      noteUpstreamError([record], outcome);
      failed = outcome.error !== undefined;
      // A result limit stopped it: inside a transaction, the transaction is failed as the client was told.
      if (outcome.stopped) noteFailure(s);
    }
    batch = [];
  };
  for (const st of statements) {
    if (st.action === 'forward' || st.action === 'catalog') {
      const next = routeNames(s, st);
      const statement = st.action === 'catalog' ? st.statement : st;
      if (next !== target) {
        await flush();
        target = next;
      }
      if (st.action === 'forward' && st.notice) {
        await flush();
        sink.notice(st.notice);
      }
      if (dropsEverywhere(st) && s.state.catalogOpened) {
        // The catalog's names go too; the client gets the warehouse's one CommandComplete.
        await flush();
        if (failed) return;
        await (await upstreamOf(s, 'catalog')).run([statement], SILENT);
        target = 'warehouse';
      }
      batch.push(statement);
      continue;
    }
    await flush();
    if (failed) return;
    sink.rowDescription([{ name: st.column, tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]);
    for (const row of st.rows) sink.dataRow([row]);
    sink.commandComplete(st.tag);
    await sink.drain();
  }
  await flush();
}

/** A sink for a statement whose answer the client does not get (the catalog's copy of DEALLOCATE ALL). */
const SILENT: ResultSink = discardingSink();
