// The extended protocol's path in messages and decisions: what reaches the warehouse for an
// exchange (the messages up to Sync), and what never does.
import { describe, expect, it } from 'vitest';
import type { AuditSink, StatementRecord } from '../../src/audit/audit.ts';
import { extendedMessage, extendedSync } from '../../src/statements/extended.ts';
import { type StatementSession, newStatementState } from '../../src/statements/session.ts';
import type { RunOutcome, TxStatus, WarehouseSession } from '../../src/warehouses/types.ts';
import type { ExtendedStep } from '../../src/wire/messages.ts';
import { frame } from '../../src/warehouses/pg-framing.ts';
import type { ResultSink } from '../../src/wire/sink.ts';
import { CollectingSink } from '../helpers/collecting-sink.ts';
import { bob, carol, typedTopics } from './policy/demo-context.ts';

/** An upstream that records each exchange: the messages up to its Sync, and how it ended. */
class FakeWarehouse implements WarehouseSession {
  txStatus: TxStatus = 'I';
  batches: ExtendedStep[][] = [];
  ends: ('sync' | 'abort')[] = [];
  private current: ExtendedStep[] = [];
  /** Answer the next exchanges with an ErrorResponse, as an upstream whose statement failed. */
  failing = false;
  async run(): Promise<RunOutcome> {
    return { status: this.txStatus, aborted: false };
  }
  async sendExtended(steps: ExtendedStep[]): Promise<void> {
    this.current.push(...steps);
  }
  async syncExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    return this.end(steps, sink, 'sync');
  }
  async abortExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    return this.end(steps, sink, 'abort');
  }
  private end(steps: ExtendedStep[], sink: ResultSink, how: 'sync' | 'abort'): RunOutcome {
    this.batches.push([...this.current, ...steps]);
    this.ends.push(how);
    this.current = [];
    if (this.failing) {
      sink.relay(frame(0x45, Buffer.from('SERROR\0C42P01\0Mrelation does not exist\0\0')));
      return { status: this.txStatus, error: { sqlstate: '42P01', message: 'relation does not exist' }, aborted: false };
    }
    return { status: this.txStatus, aborted: how === 'abort' };
  }
  async close(): Promise<void> {}
}

/** A client's messages up to Sync, as the wire layer drives them: after a false, skip to Sync. */
async function runExtended(s: StatementSession, batch: ExtendedStep[], sink: ResultSink): Promise<TxStatus> {
  for (const m of batch) if (!(await extendedMessage(s, m, sink))) break;
  return (await extendedSync(s, sink)).status;
}

function session(decision = bob) {
  const warehouse = new FakeWarehouse();
  const catalog = new FakeWarehouse();
  let catalogOpens = 0;
  const records: StatementRecord[] = [];
  const audit = { statement: (r: StatementRecord) => records.push(r), event: () => {} } as unknown as AuditSink;
  const s: StatementSession = {
    decision,
    warehouse,
    audit,
    policyVersion: 'v',
    maxStatementBytes: 1 << 20,
    clientAddress: '127.0.0.1',
    state: newStatementState(),
    catalog: async () => {
      catalogOpens++;
      return catalog;
    },
  };
  return { s, warehouse, catalog, records, catalogOpens: () => catalogOpens };
}

/** Every SQL text a fake upstream was asked to prepare. */
const parsed = (w: FakeWarehouse) => w.batches.flat().flatMap((m) => (m.type === 'Parse' ? [m.query] : []));

const parse = (query: string, name = ''): ExtendedStep => ({ type: 'Parse', name, query, paramTypes: [] });
const bind = (statement = '', values: string[] = []): ExtendedStep => ({
  type: 'Bind',
  portal: '',
  statement,
  paramFormats: [],
  params: values.map((v) => Buffer.from(v)),
  resultFormats: [],
});
const bindPortal = (portal: string, statement: string): ExtendedStep => ({ ...(bind(statement) as Extract<ExtendedStep, { type: 'Bind' }>), portal });
const describeS = (name: string): ExtendedStep => ({ type: 'Describe', kind: 'S', name });
const closeS = (name: string): ExtendedStep => ({ type: 'Close', kind: 'S', name });
const describeP: ExtendedStep = { type: 'Describe', kind: 'P', name: '' };
const execute: ExtendedStep = { type: 'Execute', portal: '', maxRows: 0 };

describe('the extended protocol path', () => {
  it("sends bob's Parse with the rewritten SQL, $1 kept outside the barrier, and the rest as received", async () => {
    const { s, warehouse, records } = session({ ...bob, topics: typedTopics });
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT id FROM orders WHERE id = $1 AND amount > $2'), bind('', ['1', '2']), describeP, execute], sink);
    const [sent] = warehouse.batches;
    expect(sent).toHaveLength(4);
    const p = sent[0] as Extract<ExtendedStep, { type: 'Parse' }>;
    // A constant on a leakproof column may move inside the barrier; a parameter never does.
    expect(p.query).toMatch(/FROM \( SELECT [^$]* FROM public\.orders WHERE region = 'EMEA' OFFSET 0 \) AS orders WHERE id = \$1 AND amount > \$2$/);
    expect(sent.slice(1)).toEqual([bind('', ['1', '2']), describeP, execute]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ decision: 'rewritten', statement: 'SELECT id FROM orders WHERE id = $1 AND amount > $2' });
    expect(sink.messages).toEqual([]);
  });

  it('a refused Parse: what came before runs and the exchange is aborted upstream (as a failing message would), one ErrorResponse, the rest skipped, audited', async () => {
    const { s, warehouse, records } = session();
    const sink = new CollectingSink();
    await runExtended(
      s,
      [parse('SELECT count(*) FROM orders'), bind(), execute, parse('SELECT * FROM employees WHERE id = $1'), bind('', ['1']), execute],
      sink,
    );
    expect(warehouse.batches).toHaveLength(1);
    expect(warehouse.batches[0].map((m) => m.type)).toEqual(['Parse', 'Bind', 'Execute']);
    expect(warehouse.ends).toEqual(['abort']);
    expect(sink.errors()).toMatchObject([{ C: '42501' }]);
    expect(records.map((r) => r.decision)).toEqual(['rewritten', 'refused']);
  });

  it('a refused first message reaches no upstream; an earlier upstream error means the refusal is not sent (PostgreSQL skipped it)', async () => {
    const { s, warehouse } = session();
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT * FROM employees')], sink);
    expect(warehouse.batches).toEqual([]);
    expect(sink.errors()).toMatchObject([{ C: '42501' }]);
    warehouse.failing = true;
    await runExtended(s, [parse('SELECT count(*) FROM orders'), bind(), execute, parse('SELECT * FROM employees')], sink);
    expect(warehouse.ends).toEqual(['abort']);
    expect(sink.errors().map((e) => e.C)).toEqual(['42501', '42P01']);
  });

  it('a Bind or Describe of a statement this session never prepared is 26000, audited, and never reaches upstream', async () => {
    const { s, warehouse, records } = session();
    const sink = new CollectingSink();
    await runExtended(s, [bind('q1')], sink);
    await runExtended(s, [{ type: 'Describe', kind: 'S', name: 'q1' }], sink);
    expect(sink.errors()).toMatchObject([{ C: '26000', M: 'prepared statement "q1" does not exist' }, { C: '26000' }]);
    expect(warehouse.batches).toEqual([]);
    // A refused named Parse does not name a statement either.
    await runExtended(s, [parse('SELECT * FROM employees', 'q1')], sink);
    await runExtended(s, [bind('q1')], sink);
    expect(sink.errors().map((e) => e.C)).toEqual(['26000', '26000', '42501', '26000']);
    expect(warehouse.batches).toEqual([]);
    expect(records.map((r) => [r.decision, r.rule === 'extended.unknown_statement', r.sqlstate])).toEqual([
      ['refused', true, '26000'],
      ['refused', true, '26000'],
      ['refused', false, '42501'],
      ['refused', true, '26000'],
    ]);
  });

  it('named statements: prepared once, bound in later batches; Close forgets them', async () => {
    const { s, warehouse } = session();
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT count(*) FROM orders WHERE id > $1', 'q1'), bind('q1', ['0']), execute], sink);
    await runExtended(s, [bind('q1', ['5']), execute], sink);
    await runExtended(s, [{ type: 'Close', kind: 'S', name: 'q1' }], sink);
    await runExtended(s, [bind('q1', ['5']), execute], sink);
    expect(warehouse.batches).toHaveLength(3);
    expect(sink.errors()).toMatchObject([{ C: '26000' }]);
  });

  it('a session holds at most 10,000 named prepared statements: the next Parse is 54000, audited; re-preparing a held name is fine', async () => {
    const { s, records } = session(carol);
    for (let i = 0; i < 10_000; i++) s.state.prepared.set(`p${i}`, { target: 'warehouse', endsAbortedTransaction: false, bytes: 10 });
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT 1', 'one_more')], sink);
    expect(sink.errors()).toMatchObject([{ C: '54000' }]);
    expect(records.at(-1)).toMatchObject({ decision: 'refused', rule: 'prepared_statements.limit', statement: 'SELECT 1' });
    await runExtended(s, [parse('SELECT 2', 'p1'), parse('SELECT 3')], sink);
    expect(sink.errors()).toHaveLength(1);
  });

  it('mirrors PostgreSQL for several statements in one Parse (42601) and refuses EXPLAIN for topic users (0A000)', async () => {
    const { s, warehouse } = session();
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT 1; SELECT 2')], sink);
    await runExtended(s, [parse('EXPLAIN SELECT * FROM orders')], sink);
    expect(sink.errors()).toMatchObject([
      { C: '42601', M: 'cannot insert multiple commands into a prepared statement' },
      { C: '0A000', M: 'use the simple query protocol for EXPLAIN' },
    ]);
    expect(warehouse.batches).toEqual([]);
  });

  it("carol's raw SQL keeps her text and parameters; her INSERT is refused", async () => {
    const { s, warehouse } = session(carol);
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT name FROM employees WHERE id = $1'), bind('', ['1']), execute], sink);
    expect((warehouse.batches[0][0] as { query: string }).query).toBe('SELECT name FROM employees WHERE id = $1');
    await runExtended(s, [parse('INSERT INTO employees(id) VALUES ($1)'), bind('', ['1']), execute], sink);
    expect(sink.errors()).toMatchObject([{ C: '42501' }]);
    expect(warehouse.batches).toHaveLength(1);
  });

  it('a refusal inside a transaction aborts it: only a ROLLBACK parsed after it runs, not earlier statements or portals', async () => {
    const { s, warehouse } = session(carol);
    const sink = new CollectingSink();
    await runExtended(s, [parse('COMMIT', 'c'), bind('c')], sink);
    warehouse.txStatus = 'T';
    expect(await runExtended(s, [parse('DELETE FROM employees'), bind(), execute], sink)).toBe('E');
    expect(await runExtended(s, [bind('c'), execute], sink)).toBe('E');
    expect(await runExtended(s, [execute], sink)).toBe('E');
    expect(await runExtended(s, [parse('SELECT 1'), bind(), execute], sink)).toBe('E');
    expect(sink.errors().map((e) => e.C)).toEqual(['42501', '25P02', '25P02', '25P02']);
    const before = warehouse.batches.length;
    warehouse.txStatus = 'I';
    expect(await runExtended(s, [parse('COMMIT'), bind(), execute], sink)).toBe('I');
    expect((warehouse.batches[before][0] as { query: string }).query).toBe('ROLLBACK');
  });

  describe("bob's catalog queries run on the topic catalog", () => {
    const PG_CLASS = 'SELECT relname FROM pg_catalog.pg_class WHERE relname = $1';
    const TABLES = 'SELECT table_name FROM information_schema.tables WHERE table_schema = $1';

    it('a batch of catalog statements goes to the catalog, as the client wrote it, and nothing to the warehouse', async () => {
      const { s, warehouse, catalog, records } = session();
      const sink = new CollectingSink();
      const b = [parse(PG_CLASS), bind('', ['employees']), describeP, execute];
      expect(await runExtended(s, b, sink)).toBe('I');
      expect(catalog.batches).toEqual([b]);
      expect(warehouse.batches).toEqual([]);
      expect(sink.errors()).toEqual([]);
      expect(records).toMatchObject([{ decision: 'answered', statement: PG_CLASS }]);
    });

    it('never sends a catalog statement to the warehouse, nor a topic statement to the catalog, across batches and names', async () => {
      const { s, warehouse, catalog } = session();
      const sink = new CollectingSink();
      await runExtended(s, [parse(PG_CLASS, 'cat'), bind('cat', ['orders']), execute], sink);
      await runExtended(s, [parse('SELECT count(*) FROM orders WHERE id > $1', 'top'), bind('top', ['0']), execute], sink);
      // Later batches bind each name where it was prepared; portals execute where they were bound.
      await runExtended(s, [bind('cat', ['customers']), describeS('cat'), execute], sink);
      await runExtended(s, [bind('top', ['5']), describeS('top'), execute], sink);
      await runExtended(s, [bindPortal('p1', 'cat'), bindPortal('p2', 'top')], sink);
      await runExtended(
        s,
        [
          { type: 'Execute', portal: 'p1', maxRows: 0 },
          { type: 'Execute', portal: 'p2', maxRows: 0 },
        ],
        sink,
      );
      expect(sink.errors()).toEqual([]);
      expect(parsed(catalog)).toEqual([PG_CLASS]);
      expect(parsed(warehouse)).toHaveLength(1);
      expect(parsed(warehouse)[0]).toMatch(/FROM public\.orders WHERE region = 'EMEA' OFFSET 0/);
      const names = (w: FakeWarehouse) =>
        w.batches
          .flat()
          .map((m) =>
            m.type === 'Bind' ? `B:${m.statement}>${m.portal}` : m.type === 'Execute' ? `E:${m.portal}` : m.type === 'Describe' ? `D:${m.name}` : `P:${m.name}`,
          );
      expect(names(catalog)).toEqual(['P:cat', 'B:cat>', 'E:', 'B:cat>', 'D:cat', 'E:', 'B:cat>p1', 'E:p1']);
      expect(names(warehouse)).toEqual(['P:top', 'B:top>', 'E:', 'B:top>', 'D:top', 'E:', 'B:top>p2', 'E:p2']);
      // Closed on the catalog, the name is gone: binding it again is 26000 and reaches neither.
      await runExtended(s, [closeS('cat')], sink);
      expect(catalog.batches.at(-1)).toEqual([closeS('cat')]);
      const before = [catalog.batches.length, warehouse.batches.length];
      await runExtended(s, [bind('cat', ['x']), execute], sink);
      expect(sink.errors()).toMatchObject([{ C: '26000' }]);
      expect([catalog.batches.length, warehouse.batches.length]).toEqual(before);
    });

    it("the unnamed statement follows the last Parse: a topic query after a catalog query is the warehouse's", async () => {
      const { s, warehouse, catalog } = session();
      const sink = new CollectingSink();
      await runExtended(s, [parse(TABLES), bind('', ['public']), execute], sink);
      await runExtended(s, [parse('SELECT region FROM orders WHERE id = $1'), bind('', ['1']), execute], sink);
      await runExtended(s, [bind('', ['2']), execute], sink);
      expect(catalog.batches).toHaveLength(1);
      expect(warehouse.batches).toHaveLength(2);
      expect(warehouse.batches[1]).toEqual([bind('', ['2']), execute]);
    });

    it('a batch mixing targets is split where the target changes, in order (BEGIN with a metadata query; a Close with the next Parse)', async () => {
      const { s, warehouse, catalog } = session();
      const sink = new CollectingSink();
      await runExtended(s, [parse('SELECT id FROM orders WHERE id = $1', 'S_1'), bind('S_1', ['1']), execute], sink);
      warehouse.batches.length = 0;
      const begin = [parse('BEGIN'), bind(), execute];
      const meta = [parse(TABLES, 'S_2'), bind('S_2', ['public']), describeP, execute];
      await runExtended(s, [closeS('S_1'), ...begin, ...meta, parse('COMMIT'), bind(), execute], sink);
      expect(warehouse.batches).toEqual([
        [closeS('S_1'), ...begin],
        [parse('COMMIT'), bind(), execute],
      ]);
      expect(catalog.batches).toEqual([meta]);
      expect(sink.errors()).toEqual([]);
    });

    it('after a part that answered an error, the rest of a split batch is skipped, as PostgreSQL skips to Sync', async () => {
      const { s, warehouse, catalog } = session();
      const sink = new CollectingSink();
      catalog.failing = true;
      await runExtended(s, [parse(PG_CLASS), bind('', ['x']), execute, parse('SELECT count(*) FROM orders'), bind(), execute], sink);
      expect(catalog.batches).toHaveLength(1);
      expect(warehouse.batches).toEqual([]);
      expect(sink.errors()).toMatchObject([{ C: '42P01' }]);
      catalog.failing = false;
      warehouse.failing = true;
      await runExtended(s, [parse('SELECT count(*) FROM orders'), bind(), execute, parse(PG_CLASS), bind('', ['x']), execute], sink);
      expect(warehouse.batches).toHaveLength(1);
      expect(catalog.batches).toHaveLength(1);
    });

    it('a refused catalog Parse (pg_stats) or a catalog query mixed with a topic reaches neither upstream', async () => {
      const { s, warehouse, catalog, catalogOpens } = session();
      const sink = new CollectingSink();
      await runExtended(s, [parse('SELECT * FROM pg_stats WHERE tablename = $1'), bind('', ['orders']), execute], sink);
      await runExtended(s, [parse('SELECT c.relname, o.id FROM pg_catalog.pg_class c JOIN orders o ON o.id = $1')], sink);
      expect(sink.errors()).toMatchObject([{ C: '42501' }, { C: '0A000' }]);
      expect(catalog.batches).toEqual([]);
      expect(warehouse.batches).toEqual([]);
      expect(catalogOpens()).toBe(0);
      // After an allowed catalog query, the refusal aborts that exchange on the catalog: pg_stats never goes.
      await runExtended(
        s,
        [parse(PG_CLASS), bind('', ['x']), execute, parse('SELECT * FROM pg_stats WHERE tablename = $1'), bind('', ['orders']), execute],
        sink,
      );
      expect(catalog.ends).toEqual(['abort']);
      expect(parsed(catalog)).toEqual([PG_CLASS]);
      expect(warehouse.batches).toEqual([]);
    });

    it("carol's catalog queries are raw SQL: they go to the warehouse and never open a catalog", async () => {
      const { s, warehouse, catalog, catalogOpens } = session(carol);
      const sink = new CollectingSink();
      await runExtended(s, [parse(PG_CLASS), bind('', ['employees']), execute], sink);
      expect(parsed(warehouse)).toEqual([PG_CLASS]);
      expect(catalog.batches).toEqual([]);
      expect(catalogOpens()).toBe(0);
    });

    it('a session without a topic catalog answers 0A000 and aborts the exchange', async () => {
      const { s, warehouse } = session();
      delete s.catalog;
      const sink = new CollectingSink();
      await runExtended(s, [parse('BEGIN'), bind(), execute, parse(PG_CLASS), bind('', ['x']), execute], sink);
      expect(sink.errors()).toMatchObject([{ C: '0A000' }]);
      expect(warehouse.ends).toEqual(['abort']);
    });
  });
});
