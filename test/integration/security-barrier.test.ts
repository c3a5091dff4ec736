// The topic's derived table is a security barrier (DESIGN 3), measured on real data:
// (a) a user's condition that would fail on hidden rows never runs on them;
// (b) the leakproof pushdown keeps index scans, and only leakproof comparisons with a
//     constant go inside the barrier.
// Governed answers come from PostgreSQL's own security_barrier views of bob's topics
// (schema bob_view), never hard-coded.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/policy/decide.ts';
import type { RunningGatehouse } from '../../src/serve.ts';
import type { Topic } from '../../src/config/model.ts';
import { DEMO_RULES, asUser, demoRulesWith, postgresWarehouseYaml, startGatehouse } from '../helpers/gatehouse.ts';
import { createAcmeWarehouse, psqlAdmin, requirePostgres } from '../helpers/servers.ts';
import { ctxFor, customers, orders } from '../unit/policy/demo-context.ts';

const DB = 'gatehouse_it_barrier';
const BOB = 'bob@acme.example';
const FIELDS = { orders: orders.fields.join(', '), customers: customers.fields.join(', ') };

/** Runs SQL as the superuser; returns output or the error text. */
function direct(sql: string): { out?: string; error?: string } {
  try {
    return { out: psqlAdmin(DB, sql).trim() };
  } catch (e) {
    return { error: String((e as { stderr?: string }).stderr ?? e) };
  }
}

/** bob's governed answer: the same SQL over PostgreSQL's own security_barrier views. */
function governed(sql: string): string {
  return psqlAdmin(DB, `SET search_path = bob_view;\n${sql};`).trim();
}

interface Condition {
  table: 'orders' | 'customers';
  where: string;
  /** The PostgreSQL 15 planner runs this condition before the access filter on a plain derived table. */
  plainLeaks?: boolean;
  /** Needs the hidden rows this suite adds (PostgreSQL only). */
  addedRows?: boolean;
}

// Hidden rows (AMER) whose values make conditions fail: a status and a name that are
// invalid regular expressions, amounts of 0 and 50. Existing AMER/APAC rows make the
// CASE conditions fail on every warehouse.
const conditions: Condition[] = [
  { table: 'orders', where: "1/(CASE WHEN region = 'AMER' THEN 0 ELSE 1 END) = 1" },
  { table: 'orders', where: "amount > 10 AND (CASE WHEN region <> 'EMEA' THEN (status || 'x')::int ELSE 1 END) = 1" },
  { table: 'orders', where: "'x' ~ CASE WHEN region = 'AMER' THEN '(' ELSE 'x' END" },
  { table: 'orders', where: "(CASE WHEN region = 'AMER' THEN 'x' ELSE '1' END)::int = 1" },
  { table: 'customers', where: "1/(CASE WHEN region = 'APAC' THEN 0 ELSE 1 END) = 1" },
  { table: 'orders', where: "id >= 900000 AND 'x' ~ status", plainLeaks: true, addedRows: true },
  { table: 'orders', where: "amount > 10 AND 'x' ~ status", addedRows: true },
  { table: 'orders', where: '1/amount > 0', addedRows: true },
  { table: 'customers', where: "id >= 900000 AND 'x' ~ name", plainLeaks: true, addedRows: true },
];

const countSql = (c: Condition) => `SELECT count(*) FROM ${c.table} WHERE ${c.where}`;

let ready: Promise<void> | undefined;
function setUp(): Promise<void> {
  ready ??= (async () => {
    await requirePostgres();
    createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
    psqlAdmin(
      DB,
      `INSERT INTO customers (id, name, email, region, created_at) VALUES (900001, '(', 'x@example.com', 'AMER', '2024-01-01');
       INSERT INTO orders (id, customer_id, region, amount, status, ordered_at) VALUES
         (900001, 900001, 'AMER', 0.00, '(', '2024-01-01'), (900002, 900001, 'AMER', 50.00, '(', '2024-01-02');
       CREATE SCHEMA bob_view;
       CREATE VIEW bob_view.orders WITH (security_barrier) AS SELECT ${FIELDS.orders} FROM public.orders WHERE region = 'EMEA';
       CREATE VIEW bob_view.customers WITH (security_barrier) AS SELECT ${FIELDS.customers} FROM public.customers WHERE region = 'EMEA';
       ANALYZE;`,
    );
  })();
  return ready;
}

const pgRules = () => demoRulesWith(postgresWarehouseYaml(DB));

describe('(a) conditions that would fail on hidden rows, on PostgreSQL', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    await setUp();
    gh = await startGatehouse(pgRules());
  });
  afterAll(async () => {
    await gh?.close();
  });

  for (const c of conditions) {
    it(`${c.table} WHERE ${c.where}`, async () => {
      // The data makes the condition fail on hidden rows...
      const onAllRows = direct(`SELECT count(*) FROM public.${c.table} WHERE ${c.where}`);
      expect(onAllRows.error, 'the hidden rows must make this condition fail').toMatch(/ERROR/);
      // ...and a plain (flattened) derived table runs it on them where the planner orders it first.
      const plain = direct(`SELECT count(*) FROM (SELECT ${FIELDS[c.table]} FROM public.${c.table} WHERE region = 'EMEA') AS ${c.table} WHERE ${c.where}`);
      if (c.plainLeaks) expect(plain.error, 'a plain derived table leaks this').toMatch(/ERROR/);
      // Through Gatehouse: no error, the governed count.
      const want = governed(countSql(c));
      const r = await asUser(gh, BOB, countSql(c));
      expect(r.message).toBeUndefined();
      expect(String(r.rows?.[0]?.count)).toBe(want);
    });
  }

  it('the CASE conditions give bob all his rows (the governed answers are not vacuous)', async () => {
    expect(governed(countSql(conditions[0]))).toBe('1667');
    expect(governed(countSql(conditions[2]))).toBe('1667');
    expect(Number(governed(countSql(conditions[1])))).toBeGreaterThan(1000);
  });
});

describe('(a) conditions that would fail on hidden rows, on the embedded warehouse', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    await setUp();
    gh = await startGatehouse(DEMO_RULES);
  });
  afterAll(async () => {
    await gh?.close();
  });

  for (const c of conditions.filter((x) => !x.addedRows)) {
    it(`${c.table} WHERE ${c.where}`, async () => {
      const r = await asUser(gh, BOB, countSql(c));
      expect(r.message).toBeUndefined();
      expect(String(r.rows?.[0]?.count)).toBe(governed(countSql(c)));
    });
  }
});

describe('(b) leakproof pushdown keeps index scans, on PostgreSQL', () => {
  let typed: Map<string, Topic>;
  let bob: ReturnType<typeof ctxFor>;

  beforeAll(async () => {
    await setUp();
    // Column types as the server learns them (PostgresWarehouse.describeRelation: format_type).
    typed = new Map();
    for (const t of [orders, customers]) {
      const rows = psqlAdmin(
        DB,
        `SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
         WHERE a.attrelid = 'public.${t.base.table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      )
        .trim()
        .split('\n')
        .map((l) => l.split('|'));
      typed.set(t.name, { ...t, columnTypes: Object.fromEntries(rows) } as Topic);
    }
    bob = ctxFor(BOB, 'query_topics', { region: ['EMEA'] }, { topics: typed });
  });

  async function sent(sql: string): Promise<string> {
    const d = await decide(bob, sql);
    expect(d.outcome, JSON.stringify(d)).toBe('run');
    if (d.outcome !== 'run' || d.statements[0].action !== 'forward') throw new Error('not forwarded');
    return d.statements[0].sql;
  }
  const plan = (sql: string) => psqlAdmin(DB, `EXPLAIN ${sql};`);

  it('the column types are the ones the warehouse reports', () => {
    expect(typed.get('orders')!.columnTypes).toMatchObject({ id: 'integer', region: 'text', amount: 'numeric(12,2)', ordered_at: 'timestamp with time zone' });
  });

  it("bob's WHERE id = 42 is pushed inside the barrier and uses orders_pkey", async () => {
    const sql = await sent('SELECT * FROM orders WHERE id = 42');
    expect(sql).toMatch(/WHERE region = 'EMEA' AND id = 42 OFFSET 0\s*\)/);
    const p = plan(sql);
    expect(p).toMatch(/(Index Scan|Index Only Scan|Bitmap Index Scan) using orders_pkey/);
    expect(direct(sql).out).toBe(direct(`SET search_path = bob_view; SELECT * FROM orders WHERE id = 42`).out);
  });

  it('without the pushdown the same barrier could not use orders_pkey (the pushdown is what keeps it)', () => {
    const p = plan(`SELECT * FROM (SELECT ${FIELDS.orders} FROM public.orders WHERE region = 'EMEA' OFFSET 0) AS orders WHERE id = 42`);
    expect(p).not.toMatch(/orders_pkey/);
  });

  it('a numeric comparison (amount = 10) is not leakproof: nothing but the access filter inside', async () => {
    const sql = await sent('SELECT * FROM orders WHERE amount = 10');
    expect(sql).toMatch(/FROM public\.orders WHERE region = 'EMEA' OFFSET 0\s*\)/);
    const p = plan(sql);
    expect(p).toMatch(/Subquery Scan/);
    expect(p).toMatch(/Filter: \(orders\.amount = '?10'?(::numeric)?\)/);
    // 5.5 against an int column is a numeric comparison too.
    expect(await sent('SELECT * FROM orders WHERE id = 5.5')).toMatch(/WHERE region = 'EMEA' OFFSET 0\s*\)/);
  });

  it('pushed-down comparisons cannot fail on hidden rows: only leakproof operators with a constant', async () => {
    // The hidden row 900001 (AMER, status '(') is reached by each pushed comparison.
    const cases = [
      "SELECT count(*) FROM orders WHERE id = 900001 AND 'x' ~ status",
      "SELECT count(*) FROM orders WHERE status = '(' AND 'x' ~ status",
      "SELECT count(*) FROM orders WHERE id >= 900000 AND status <> 'paid' AND 'x' ~ status",
      "SELECT count(*) FROM orders WHERE ordered_at = '2024-01-01' AND 'x' ~ status",
      "SELECT count(*) FROM customers c WHERE c.id = 900001 AND 'x' ~ c.name",
    ];
    for (const q of cases) {
      const sql = await sent(q);
      // Only the comparison went inside; the regex stayed outside the barrier.
      const inner = sql.match(/\(\s*SELECT [\w, ]+ FROM public\.\w+ WHERE (.*?) OFFSET 0\s*\)/)?.[1] ?? '';
      expect(inner, sql).toMatch(/^region = 'EMEA' AND /);
      expect(inner, sql).not.toMatch(/~/);
      const got = direct(sql);
      expect(got.error, sql).toBeUndefined();
      expect(got.out, sql).toBe(governed(q));
    }
  });
});
