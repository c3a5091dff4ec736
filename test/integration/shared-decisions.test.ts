// Shared decisions on the real PostgreSQL (issue 17): two texts that share one cached decision
// are the same statement to the server. For each shape, several constants: the shared path's
// SQL (the decision of the shape, this text's constants put back) and the exact path's SQL
// (this text decided on its own) run directly on PostgreSQL, and the text itself runs through
// Gatehouse as the user (simple protocol): the same rows all three ways, or the same refusal.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision, DecisionContext } from '../../src/policy/decision.ts';
import { decide, decideExactly, sharing } from '../../src/policy/decide.ts';
import type { RunningGatehouse } from '../../src/serve.ts';
import { asUser, demoRulesOnPostgres, startGatehouse } from '../helpers/gatehouse.ts';
import { PG } from '../helpers/servers.ts';
import { carol, ctxFor, typedTopics } from '../unit/policy/demo-context.ts';

const DB = 'gatehouse_it_shared_decisions';
const bob = ctxFor('bob@acme.example', 'query_topics', { region: ['EMEA'] }, { topics: typedTopics });
const carolTyped: DecisionContext = { ...carol, topics: typedTopics };

interface Shape {
  user: string;
  ctx: DecisionContext;
  texts: string[];
}

const shapes: Shape[] = [
  { user: 'bob@acme.example', ctx: bob, texts: [1, 2, 4, 40, 299].map((n) => `SELECT id, amount, status FROM orders WHERE id = ${n}`) },
  {
    user: 'bob@acme.example',
    ctx: bob,
    texts: ["'paid'", "'open'", "'it''s'", "'x y'"].map((s) => `SELECT id, region FROM orders o WHERE o.status = ${s} AND o.id < 60 ORDER BY 1`),
  },
  { user: 'bob@acme.example', ctx: bob, texts: ["'AMER'", "'EMEA'", "'APAC'"].map((r) => `SELECT count(*) FROM orders WHERE region = ${r}`) },
  {
    user: 'bob@acme.example',
    ctx: bob,
    texts: [
      ['10.50', '3'],
      ['500.25', '7'],
      ['0.5', '1'],
    ].map(([a, l]) => `SELECT id FROM orders WHERE amount > ${a} ORDER BY id LIMIT ${l}`),
  },
  {
    user: 'bob@acme.example',
    ctx: bob,
    texts: [
      ["'Customer 1'", '3'],
      ["'Customer 4'", '9'],
      ["'nobody'", '20'],
    ].map(
      ([n, i]) =>
        `SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.name = ${n} OR c.id < ${i} GROUP BY 1 ORDER BY 1`,
    ),
  },
  { user: 'carol@acme.example', ctx: carolTyped, texts: [1, 2, 3].map((n) => `SELECT id, name, salary FROM employees WHERE id = ${n};`) },
  {
    user: 'carol@acme.example',
    ctx: carolTyped,
    texts: [
      ["'paid'", '5'],
      ["'open'", '2'],
    ].map(([s, l]) => `select id, amount from orders where status = ${s} /* it's */ order by id limit ${l}`),
  },
];

function forwarded(d: Decision): string {
  if (d.outcome !== 'run' || d.statements.length !== 1 || d.statements[0].action !== 'forward')
    throw new Error(`expected one forwarded statement: ${JSON.stringify(d)}`);
  return d.statements[0].sql;
}

let gh: RunningGatehouse;
let direct: pg.Client;

beforeAll(async () => {
  const rules = await demoRulesOnPostgres(DB);
  gh = await startGatehouse(rules);
  direct = new pg.Client({ ...PG, database: DB });
  await direct.connect();
}, 120_000);

afterAll(async () => {
  await direct?.end().catch(() => {});
  await gh?.close();
});

/** Rows as the directly connected superuser reads them, each row as JSON, in order. */
async function rowsDirect(sql: string): Promise<string[]> {
  return (await direct.query(sql)).rows.map((r) => JSON.stringify(r));
}

describe('shared decisions on PostgreSQL', () => {
  it.each(shapes.map((s, i) => [i, s.user, s.texts[0], s] as const))('shape %i (%s): %s', async (_i, user, _first, shape) => {
    await decide(shape.ctx, shape.texts[0]);
    for (const text of shape.texts) {
      expect(sharing(shape.ctx, text), text).toBe('shared');
      const sharedSql = forwarded(await decide(shape.ctx, text));
      const exactSql = forwarded(await decideExactly(shape.ctx, text));
      const viaShared = await rowsDirect(sharedSql);
      expect(await rowsDirect(exactSql), `${text}\n  shared: ${sharedSql}\n  exact: ${exactSql}`).toEqual(viaShared);
      const through = await asUser(gh, user, text);
      expect(through.code, `${text}: ${through.message}`).toBeUndefined();
      expect(
        through.rows!.map((r) => JSON.stringify(r)),
        text,
      ).toEqual(viaShared);
    }
  });

  it('the shapes return rows, and bob sees only EMEA', async () => {
    expect((await asUser(gh, 'bob@acme.example', 'SELECT id, amount, status FROM orders WHERE id = 1')).rows!.length).toBe(0);
    expect((await asUser(gh, 'bob@acme.example', 'SELECT id, amount, status FROM orders WHERE id = 2')).rows!.length).toBe(1);
    expect((await asUser(gh, 'bob@acme.example', "SELECT count(*) FROM orders WHERE region = 'AMER'")).rows).toEqual([{ count: '0' }]);
    expect((await asUser(gh, 'carol@acme.example', 'SELECT id, name, salary FROM employees WHERE id = 3;')).rows!.length).toBe(1);
  });

  it('refusals stay refusals through Gatehouse, whatever shape ran before', async () => {
    for (const [user, ok, bad, code] of [
      ['bob@acme.example', "SELECT current_setting('TimeZone')", "SELECT current_setting('data_directory')", '42501'],
      ['bob@acme.example', 'SELECT name FROM customers WHERE id = 1', 'SELECT email FROM customers WHERE id = 1', '42501'],
      ['bob@acme.example', "SELECT 'orders'::regclass", "SELECT 'pg_authid'::regclass::oid FROM orders", '42501'],
      ['carol@acme.example', 'SELECT id FROM employees WHERE id = 1', 'DELETE FROM employees WHERE id = 1', '42501'],
      ['carol@acme.example', "SELECT set_config('application_name', 'x', false)", "SELECT set_config('search_path', 'x', false)", '42501'],
    ] as const) {
      await asUser(gh, user, ok);
      const r = await asUser(gh, user, bad);
      expect(r.code, `${bad}: ${r.message}`).toBe(code);
    }
  });
});
