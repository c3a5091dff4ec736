// runExtended in messages and decisions: what reaches the warehouse for a batch, and what never does.
import { describe, expect, it } from 'vitest';
import type { AuditSink, StatementRecord } from '../../src/audit/audit.ts';
import { runExtended, type StatementSession } from '../../src/pipeline.ts';
import type { TxStatus, WarehouseSession } from '../../src/warehouses/types.ts';
import type { ExtendedStep } from '../../src/wire/messages.ts';
import { CollectingSink } from '../helpers/collecting-sink.ts';
import { bob, carol, typedTopics } from './policy/demo-context.ts';

class FakeWarehouse implements WarehouseSession {
  txStatus: TxStatus = 'I';
  batches: ExtendedStep[][] = [];
  async run(): Promise<TxStatus> {
    return this.txStatus;
  }
  async runExtended(batch: ExtendedStep[]): Promise<TxStatus> {
    this.batches.push(batch);
    return this.txStatus;
  }
  async close(): Promise<void> {}
}

function session(decision = bob) {
  const warehouse = new FakeWarehouse();
  const records: StatementRecord[] = [];
  const audit = { statement: (r: StatementRecord) => records.push(r), event: () => {} } as unknown as AuditSink;
  const s: StatementSession = { decision, warehouse, audit, policyVersion: 'v', maxStatementBytes: 1 << 20, clientAddress: '127.0.0.1' };
  return { s, warehouse, records };
}

const parse = (query: string, name = ''): ExtendedStep => ({ type: 'Parse', name, query, paramTypes: [] });
const bind = (statement = '', values: string[] = []): ExtendedStep => ({
  type: 'Bind', portal: '', statement, paramFormats: [], params: values.map((v) => Buffer.from(v)), resultFormats: [],
});
const describeP: ExtendedStep = { type: 'Describe', kind: 'P', name: '' };
const execute: ExtendedStep = { type: 'Execute', portal: '', maxRows: 0 };

describe('runExtended', () => {
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

  it('a refused Parse anywhere in the batch: one ErrorResponse, nothing sent upstream, audited', async () => {
    const { s, warehouse, records } = session();
    const sink = new CollectingSink();
    await runExtended(s, [parse('SELECT count(*) FROM orders'), bind(), execute, parse('SELECT * FROM employees WHERE id = $1'), bind('', ['1']), execute], sink);
    expect(warehouse.batches).toEqual([]);
    expect(sink.errors()).toMatchObject([{ C: '42501' }]);
    expect(records.map((r) => r.decision)).toEqual(['rewritten', 'refused']);
  });

  it('a Bind or Describe of a statement this session never prepared is 26000 and never reaches upstream', async () => {
    const { s, warehouse } = session();
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
});
