// Shared decisions (issue 17; policy/decide.ts, sql/normalize.ts): texts that differ only in
// their constants share one decision, and the shared path never decides differently from
// deciding the exact text: same refusals, same SQL (as a tree), same pushdown.
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Decision, DecisionContext } from '../../../src/policy/decision.ts';
import { clearDecisionCache, decide, decideExactly, sharing } from '../../../src/policy/decide.ts';
import { sameTree } from '../../../src/sql/deparse.ts';
import { type ConstantClass, normalizeConstants } from '../../../src/sql/normalize.ts';
import { parseSqlSync } from '../../../src/sql/parse.ts';
import { answerable, gray, hostile } from '../../helpers/oracle/statements.ts';
import { carol, ctxFor, typedTopics } from './demo-context.ts';

const bob = ctxFor('bob@acme.example', 'query_topics', { region: ['EMEA'] }, { topics: typedTopics });
const grace = ctxFor('grace@acme.example', 'query_topics', { region: ['EMEA', 'APAC'] }, { topics: typedTopics });
const odd = ctxFor('odd@acme.example', 'query_topics', { region: ["x$1'y", 'a\\$2'] }, { topics: typedTopics });
const writer = ctxFor('wanda@acme.example', 'querier', {}, { allowWrites: true, topics: typedTopics });
const carolTyped: DecisionContext = { ...carol, topics: typedTopics };
/** A querier with a region: raw SQL naming topics.orders gets the barrier spliced in, with pushdown. */
const quinn = ctxFor('quinn@acme.example', 'querier', { region: ['EMEA'] }, { topics: typedTopics });
const CONTEXTS: [string, DecisionContext][] = [
  ['bob', bob],
  ['carol', carolTyped],
  ['grace', grace],
  ['odd', odd],
  ['writer', writer],
  ['quinn', quinn],
];

beforeEach(() => clearDecisionCache());

function sqlOf(d: Decision): string[] {
  if (d.outcome !== 'run') throw new Error(`expected run, got ${JSON.stringify(d)}`);
  return d.statements.map((s) => (s.action === 'forward' ? s.sql : `<${s.action}>`));
}

const tree = (sql: string) => parseSqlSync(sql).statements.map((s) => s.stmt);

/** The shared path's decision of `sql` is the exact decision of `sql`: same outcome, same SQL as a tree. */
function expectSame(got: Decision, exact: Decision, what: string): void {
  expect(got.outcome, what).toBe(exact.outcome);
  if (exact.outcome === 'refuse' && got.outcome === 'refuse') {
    expect([got.error.sqlstate, got.rule], what).toEqual([exact.error.sqlstate, exact.rule]);
  }
  if (exact.outcome !== 'run' || got.outcome !== 'run') return;
  expect([got.rule, got.topics], what).toEqual([exact.rule, exact.topics]);
  expect(got.statements.length, what).toBe(exact.statements.length);
  got.statements.forEach((g, i) => {
    const e = exact.statements[i];
    expect([g.action, g.kind], what).toEqual([e.action, e.kind]);
    if (g.action === 'forward' && e.action === 'forward') {
      if (g.sql !== e.sql) expect(sameTree(tree(g.sql), tree(e.sql)), `${what}\n  shared: ${g.sql}\n  exact:  ${e.sql}`).toBe(true);
    }
  });
}

/** The normalised text with other constants of the same classes. */
function sibling(text: string, values: string[]): string {
  return text.replace(/\$(\d+)/g, (_m, n: string) => values[Number(n) - 1]);
}

const quoted = (s: string) => `'${s.replace(/'/g, "''")}'`;
const constantOf = (cls: ConstantClass): fc.Arbitrary<string> => {
  switch (cls) {
    case 'string':
      return fc.oneof(
        fc.string({ unit: fc.constantFrom('a', 'Z', "'", '\\', '"', '-', '/', '*', ' ', 'é', '1', ';', '\n') }).map(quoted),
        fc.constantFrom("'EMEA'", "'AMER'", "'pg_authid'", "'employees'", "'search_path'", "'TimeZone'", "'1 day'", "'2024-01-01'", "'--'", "'/*'", "''''"),
      );
    case 'int':
      return fc.oneof(fc.integer({ min: 0, max: 2147483647 }).map(String), fc.constantFrom('0', '1', '2', '007', '2147483647'));
    case 'numeric':
      return fc.oneof(
        fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}.${b}`),
        fc.bigInt({ min: 2147483648n, max: 10n ** 18n }).map(String),
      );
  }
};

// Statements with constants where decisions could hang on them: pushdown, LIMIT, positions,
// settings, reg* names, catalog routing, typed literals, writes, denied functions.
const withConstants = fc.oneof(
  fc.constantFrom(
    "SELECT id, amount FROM orders o WHERE o.id = 5 AND o.status = 'paid' ORDER BY 1 LIMIT 10 OFFSET 2",
    'SELECT * FROM orders WHERE id IN (1, 2, 3) AND amount > 10.5',
    'SELECT * FROM orders WHERE id = 3000000000',
    'SELECT * FROM orders WHERE 5 = customer_id AND id <> 7 AND id >= 1',
    "SELECT count(*) FROM orders WHERE region = 'AMER'",
    "SELECT CASE WHEN status = 'paid' THEN 'P' ELSE 'N' END AS s, id + 1 AS n FROM orders WHERE id < 100",
    "SELECT c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.name = 'x' AND o.id > 3",
    "SELECT * FROM orders WHERE ordered_at > date '2024-01-01' AND id = 1",
    "SELECT * FROM orders WHERE ordered_at > '2024-01-01' AND ordered_at < now() - interval '1 day'",
    "SELECT current_setting('TimeZone'), id FROM orders WHERE id = 1",
    "SELECT current_setting('search_path')",
    "SELECT set_config('search_path', 'x', false)",
    "SELECT 'pg_authid'::regclass",
    "SELECT 'orders'::regclass, 1",
    'SELECT 5::regclass',
    "SELECT * FROM pg_catalog.pg_class WHERE relname = 'orders' LIMIT 1",
    "SELECT has_table_privilege('employees', 'select'), 1 FROM orders WHERE id = 1",
    "SELECT to_regclass('employees')",
    "SELECT nextval('seq')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT query_to_xml('select 1', true, true, '')",
    'SELECT * FROM employees WHERE id = 1',
    'SELECT * FROM topics.orders o WHERE o.id = 5',
    "SELECT * FROM topics.customers c WHERE c.name = 'x' AND c.id = 2",
    'INSERT INTO orders VALUES (1, 2)',
    "UPDATE employees SET salary = 100 WHERE name = 'x'",
    'DELETE FROM orders WHERE id = 1',
    'SELECT -5, id FROM orders WHERE id = -5',
    'SELECT id FROM orders WHERE id = 5; SELECT 2',
    'SELECT 1; SET statement_timeout = 5',
    "SELECT 1; SET standard_conforming_strings = 'off'",
    'SELECT amount::numeric(10, 2) FROM orders WHERE id = 1',
    'SELECT status::varchar(3) FROM orders WHERE id = 1',
    "SELECT EXTRACT('epoch' FROM ordered_at) FROM orders WHERE id = 1",
    "SELECT EXTRACT(epoch FROM ordered_at), status::text, 't'::bool, 'x'::text, '1'::int, 'a'::varchar, '5'::numeric FROM orders WHERE id = 1",
    "SELECT overlay(status placing 'x' from 1 for 2), position('a' in status), status collate \"C\" FROM orders",
    "SELECT ordered_at AT TIME ZONE 'UTC', normalize(status), status IS NORMALIZED FROM orders",
    "SELECT CAST('x' AS text), CAST(1 AS bigint), CAST('1' AS int), 1::text FROM orders",
    "SELECT id FROM orders WHERE status SIMILAR TO 'a%' AND status NOT LIKE 'b' AND status ~ 'c' AND id BETWEEN 1 AND 10",
    "SELECT id, ARRAY[1, 2], ROW(1, 'a'), coalesce(status, 'none'), nullif(id, 0), greatest(id, 1) FROM orders",
    "SELECT id, 'x' || status, id % 3, amount / 2.5 FROM orders ORDER BY amount DESC NULLS LAST LIMIT 5",
    "SELECT * FROM orders WHERE status LIKE 'p%' ESCAPE '!'",
    "SELECT substring(status FROM 1 FOR 2), trim(both 'x' from status) FROM orders",
    'SELECT id FROM orders GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 DESC',
    'SELECT DISTINCT ON (1) id FROM orders',
    'SELECT id FROM orders FETCH FIRST 5 ROWS ONLY',
    "SELECT id FROM orders WHERE status = 'x' FOR UPDATE",
    'SELECT id INTO t FROM orders WHERE id = 1',
    "VALUES (1, 'a'), (2, 'b')",
    'WITH x AS (SELECT id FROM orders WHERE id > 10) SELECT * FROM x WHERE id < 20',
    "SELECT '$1', id FROM orders WHERE id = 1",
    "SELECT id FROM orders WHERE status = '$1' AND id = 1",
    "SELECT id FROM orders /* it's */ WHERE status = 'x' -- it's\n AND id = 2",
    'SELECT "weird""name" FROM orders WHERE id = 1',
    "SELECT xmlelement(name x, 'v'), 1",
    'SELECT pg_sleep(1)',
  ),
  fc.oneof(answerable, gray, hostile).map((s) => s.sql),
);

describe('shared decisions', () => {
  it('two texts differing in their constants share one decision, each with its own constants', async () => {
    const a = await decide(carol, 'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;');
    expect(sharing(carol, 'SELECT abalance FROM pgbench_accounts WHERE aid = 99;')).toBe('shared');
    const b = await decide(carol, 'SELECT abalance FROM pgbench_accounts WHERE aid = 99;');
    expect(sqlOf(a)).toEqual(['SELECT abalance FROM pgbench_accounts WHERE aid = 12345']);
    expect(sqlOf(b)).toEqual(['SELECT abalance FROM pgbench_accounts WHERE aid = 99']);
  });

  it('pushes a placeholder down exactly as the literal it stands for', async () => {
    const q = (id: string, status: string) => `SELECT amount FROM orders o WHERE o.id = ${id} AND o.status = ${status}`;
    await decide(bob, q('1', "'a'"));
    expect(sharing(bob, q('2', "'b'"))).toBe('shared');
    const [sql] = sqlOf(await decide(bob, q('42', "'it''s'")));
    expect(sql).toContain("WHERE region = 'EMEA' AND id = 42 AND status = 'it''s' OFFSET 0");
    expect(sql.endsWith("WHERE o.id = 42 AND o.status = 'it''s'")).toBe(true);
    // numeric constants and integers beyond int4 are not leakproof comparisons: never pushed.
    for (const v of ['2.5', '3000000000']) {
      await decide(bob, `SELECT amount FROM orders WHERE id = ${v}`);
      const [s] = sqlOf(await decide(bob, `SELECT amount FROM orders WHERE id = ${v.replace(/\d$/, '7')}`));
      expect(s, v).toContain("WHERE region = 'EMEA' OFFSET 0");
    }
  });

  it("a querier's topic reference is spliced with the placeholder pushed down, filled at both places", async () => {
    await decide(quinn, 'SELECT o.id FROM topics.orders o WHERE o.id = 1 /* raw */');
    expect(sharing(quinn, 'SELECT o.id FROM topics.orders o WHERE o.id = 77 /* raw */')).toBe('shared');
    const [s] = sqlOf(await decide(quinn, 'SELECT o.id FROM topics.orders o WHERE o.id = 77 /* raw */'));
    expect(s).toBe(
      "SELECT o.id FROM (SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders WHERE region = 'EMEA' AND id = 77 OFFSET 0) o WHERE o.id = 77 /* raw */",
    );
  });

  it("an extended-protocol parameter stays unpushed (its type is the client's)", async () => {
    const [s] = sqlOf(await decide(bob, 'SELECT amount FROM orders WHERE id = $1'));
    expect(s).toContain("WHERE region = 'EMEA' OFFSET 0");
  });

  it('finds placeholders by lexing: attribute values holding "$1" stay literal', async () => {
    await decide(odd, 'SELECT id FROM orders WHERE id = 1');
    expect(sharing(odd, 'SELECT id FROM orders WHERE id = 2')).toBe('shared');
    const [s] = sqlOf(await decide(odd, 'SELECT id FROM orders WHERE id = 2'));
    expect(s).toContain("region IN ('x$1''y', E'a\\\\$2')");
    expect(s).toContain('id = 2 OFFSET 0');
  });

  it.each([
    ['a statement refused with a parameter but allowed with a constant', bob, "SELECT current_setting('TimeZone')", "SELECT current_setting('DateStyle')"],
    ['a catalog query', bob, "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'a'", "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'b'"],
    ['a reg* cast (catalog)', bob, "SELECT 'orders'::regclass", "SELECT 'pg_authid'::regclass"],
    [
      'a field of EXTRACT (the deparser writes it by value)',
      bob,
      "SELECT EXTRACT('epoch' FROM ordered_at) FROM orders",
      "SELECT EXTRACT('*' FROM ordered_at) FROM orders",
    ],
    ['a SQL-syntax call', bob, 'SELECT substring(status FROM 1 FOR 2) FROM orders', 'SELECT substring(status FROM 2 FOR 3) FROM orders'],
    ['a typmod', bob, 'SELECT amount::numeric(10, 2) FROM orders', 'SELECT amount::numeric(12, 2) FROM orders'],
    ['a negative constant (the parser folds the sign)', bob, 'SELECT id FROM orders WHERE id = -5', 'SELECT id FROM orders WHERE id = -6'],
    ['a session statement after a SELECT', carol, 'SELECT 1; SET statement_timeout = 5', 'SELECT 2; SET statement_timeout = 6'],
  ])('decides text by text: %s', async (_what, ctx, first, second) => {
    await decide(ctx, first);
    expect(sharing(ctx, second)).toBe('exact');
    expectSame(await decide(ctx, second), await decideExactly(ctx, second), second);
  });

  it('keeps a typed literal in the shape (date $1 is no statement): only the other constants are shared', async () => {
    await decide(bob, "SELECT date '2024-01-01', id FROM orders WHERE id = 1");
    expect(sharing(bob, "SELECT date '2024-01-01', id FROM orders WHERE id = 2")).toBe('shared');
    expect(sharing(bob, "SELECT date '2024-01-02', id FROM orders WHERE id = 2")).toBe('unknown');
  });

  it('never on a mysql connection (its warehouse lexes text by other rules)', async () => {
    const mysqlCarol: DecisionContext = { ...carol, connection: { ...carol.connection, dialect: 'mysql' } };
    await decide(mysqlCarol, 'SELECT id FROM employees WHERE id = 1');
    expect(sharing(mysqlCarol, 'SELECT id FROM employees WHERE id = 2')).toBe('exact');
    expect(sqlOf(await decide(mysqlCarol, 'SELECT id FROM employees WHERE id = 2'))).toEqual(['SELECT id FROM employees WHERE id = 2']);
  });

  it.each([
    ['SET x = 5', carol],
    ["SELECT 'costs $1' FROM orders", bob],
    ['SELECT $$x$$', carol],
    ['EXPLAIN SELECT * FROM orders WHERE id = 5', bob],
  ])('never normalises %s', async (sql, ctx) => {
    expect(sharing(ctx, sql)).toBe('exact');
    expectSame(await decide(ctx, sql), await decideExactly(ctx, sql), sql);
  });

  // (d) Attackers: every refusal of the exact text is a refusal of the shared path too, whatever
  // shape was decided first.
  const attacks: [string, DecisionContext, string, string][] = [
    ['a constant that looks like a placeholder', bob, "SELECT id FROM orders WHERE status = 'a'", "SELECT id FROM orders WHERE status = '$1'"],
    ['a literal holding $1 in an allowed shape', carol, "SELECT 'a' FROM employees", "SELECT '$1; DROP TABLE x' FROM employees"],
    ['comment quotes', bob, "SELECT id FROM orders WHERE id = 1 -- '\n", "SELECT id FROM orders WHERE id = 1 -- ' FROM employees\n"],
    ['a setting name', bob, "SELECT current_setting('TimeZone')", "SELECT current_setting('search_path')"],
    ['a denied setting via set_config', carol, "SELECT set_config('application_name', 'x', false)", "SELECT set_config('search_path', 'x', false)"],
    ['regclass by number', bob, 'SELECT 1::regclass', 'SELECT 1259::regclass'],
    ['regclass by name', bob, "SELECT 'orders'::regclass", "SELECT 'pg_authid'::regclass"],
    ['a typed interval', bob, "SELECT interval '1 day'", "SELECT interval '1 day' FROM employees"],
    ['a typed date', bob, "SELECT date '2024-01-01' FROM orders", "SELECT date '2024-01-01' FROM employees"],
    ['SET through a second statement', bob, 'SELECT 1; SET search_path = 5', "SELECT 1; SET search_path = 'public'"],
    ['lexing settings', carol, "SELECT 1; SET standard_conforming_strings = 'on'", "SELECT 1; SET standard_conforming_strings = 'off'"],
    ['writes on a read-only connection', carol, 'SELECT * FROM employees WHERE id = 1', 'INSERT INTO employees VALUES (1)'],
    ['a topic field that is not allowed', bob, 'SELECT name FROM customers WHERE id = 1', 'SELECT email FROM customers WHERE id = 1'],
    ['LIMIT values', bob, 'SELECT id FROM orders LIMIT 1', 'SELECT id FROM orders LIMIT 2147483647'],
    ['a hidden region by value', bob, "SELECT count(*) FROM orders WHERE region = 'EMEA'", "SELECT count(*) FROM orders WHERE region = 'AMER'"],
  ];
  it.each(attacks)('attack: %s', async (_what, ctx, first, second) => {
    await decide(ctx, first);
    const got = await decide(ctx, second);
    const exact = await decideExactly(ctx, second);
    expectSame(got, exact, second);
  });

  it('property: the shared path decides every sibling text as its exact text (bob, carol, grace, odd attributes, a writer, a querier with a region)', async () => {
    let shared = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(withConstants, fc.constantFrom(...CONTEXTS), fc.infiniteStream(fc.nat()), fc.context(), async (sql, [, ctx], seeds, log) => {
        runs++;
        const n = normalizeConstants(sql, 64 * 1024);
        expectSame(await decide(ctx, sql), await decideExactly(ctx, sql), sql);
        if (!n || n.constants.length === 0) return;
        // Another text of the same shape: the same classes, other constants.
        const it = seeds[Symbol.iterator]();
        const values = n.classes.map((cls) => fc.sample(constantOf(cls), { numRuns: 1, seed: it.next().value as number })[0]);
        const other = sibling(n.text, values);
        log.log(other);
        if (sharing(ctx, other) === 'shared') shared++;
        expectSame(await decide(ctx, other), await decideExactly(ctx, other), other);
      }),
      { numRuns: Number(process.env.SHARED_RUNS ?? 300), seed: process.env.SHARED_SEED ? Number(process.env.SHARED_SEED) : undefined },
    );
    // The property exercised the shared path, not only the exact one.
    expect(shared).toBeGreaterThan(runs / 5);
  }, 120_000);
});
