// The catalog a Query Topics user sees (DESIGN 1, 3 "Catalog"): real psql and pg through
// the real Gatehouse, on the embedded demo warehouse and on the local PostgreSQL. bob's
// catalog queries run on the topic catalog (src/catalog: empty tables shaped like the
// topics), so \dt, \d, information_schema and pg_class show customers and orders with
// their allowed fields and real types, and nothing else; carol's run on the warehouse.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRules } from '../../src/config/load.ts';
import { decideOffline } from '../../src/policy/offline.ts';
import type { RunningGatehouse } from '../../src/serve.ts';
import { asUser, demoWarehouses, pgClient, psql, startGatehouse } from '../helpers/gatehouse.ts';

const PG_DATABASE = 'gatehouse_it_catalog';
const BOB = 'bob@acme.example';
const CORPUS = '/work/shared/corpus/client-queries.json';
/** Anything of the warehouse that bob's catalog must never show. */
const HIDDEN = /\b(employees|email|ssn|salary)\b/;

const warehouses = demoWarehouses(PG_DATABASE);

const lines = (stdout: string) => stdout.trim().split('\n');

describe.each(warehouses)('the catalog bob sees, on %s', (name, rulesFor) => {
  let gh: RunningGatehouse;
  let rulesDir: string;
  beforeAll(async () => {
    rulesDir = await rulesFor();
    gh = await startGatehouse(rulesDir);
  });
  afterAll(async () => {
    await gh?.close();
  });

  it('starts the topic catalog on the first catalog query (\\dt lists exactly the topics)', async () => {
    const t0 = performance.now();
    const r = await psql(gh, BOB, '\\dt');
    const first = performance.now() - t0;
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['public|customers|table|postgres', 'public|orders|table|postgres']);
    const t1 = performance.now();
    await psql(gh, BOB, '\\dt');
    console.log(`topic catalog on ${name}: first \\dt ${Math.round(first)} ms (catalog start included), next ${Math.round(performance.now() - t1)} ms`);
  });

  it('\\d customers: the allowed fields with their types, no email', async () => {
    const r = await psql(gh, BOB, '\\d customers');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout).map((l) => l.split('|').slice(0, 2).join('|'))).toEqual([
      'id|integer',
      'name|text',
      'region|text',
      'created_at|timestamp with time zone',
    ]);
  });

  it('\\d+ orders, \\d, \\dn and \\df run on PostgreSQL 15 psql', async () => {
    const plus = await psql(gh, BOB, '\\d+ orders');
    expect(plus.stderr).toBe('');
    expect(lines(plus.stdout).map((l) => l.split('|').slice(0, 2).join('|'))).toEqual([
      'id|integer',
      'customer_id|integer',
      'region|text',
      'amount|numeric(12,2)',
      'status|text',
      'ordered_at|timestamp with time zone',
    ]);
    const d = await psql(gh, BOB, '\\d');
    expect(lines(d.stdout)).toEqual(['public|customers|table|postgres', 'public|orders|table|postgres']);
    expect((await psql(gh, BOB, '\\dn')).stdout).toMatch(/^public\|/);
    const df = await psql(gh, BOB, '\\df');
    expect(df.stderr).toBe('');
    expect(df.stdout).toBe('');
  });

  it('information_schema: tables and columns of the topics', async () => {
    const t = await asUser(gh, BOB, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
    expect(t.rows).toEqual([{ table_name: 'customers' }, { table_name: 'orders' }]);
    const c = await asUser(gh, BOB, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position");
    expect(c.rows).toEqual([
      { column_name: 'id', data_type: 'integer' },
      { column_name: 'customer_id', data_type: 'integer' },
      { column_name: 'region', data_type: 'text' },
      { column_name: 'amount', data_type: 'numeric' },
      { column_name: 'status', data_type: 'text' },
      { column_name: 'ordered_at', data_type: 'timestamp with time zone' },
    ]);
  });

  it('employees and email appear nowhere: pg_class, pg_attribute, information_schema', async () => {
    for (const sql of [
      'SELECT relname FROM pg_catalog.pg_class',
      'SELECT relname FROM pg_class',
      'SELECT attname FROM pg_catalog.pg_attribute',
      'SELECT table_name, column_name FROM information_schema.columns',
      "SELECT 'employees'::regclass",
    ]) {
      const r = await psql(gh, BOB, sql);
      expect(r.stdout, sql).not.toMatch(HIDDEN);
    }
    const r = await asUser(gh, BOB, "SELECT count(*)::int AS n FROM pg_catalog.pg_class WHERE relname IN ('employees', 'customers', 'orders')");
    expect(r.rows).toEqual([{ n: 2 }]);
  });

  it("current_user beside a catalog function is bob, not the catalog's role; privilege checks still run", async () => {
    const r = await asUser(gh, BOB, 'SELECT version() AS v, current_user, session_user, "current_user"() AS fn');
    expect(r.rows).toEqual([{ v: expect.stringMatching(/^PostgreSQL /), current_user: BOB, session_user: BOB, fn: BOB }]);
    const own = await asUser(gh, BOB, 'SELECT count(*)::int AS n FROM pg_roles WHERE rolname = current_user');
    expect(own.rows).toEqual([{ n: 0 }]);
    const priv = await asUser(
      gh,
      BOB,
      "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND has_table_privilege(current_user, oid, 'SELECT') ORDER BY 1",
    );
    expect(priv.rows).toEqual([{ relname: 'customers' }, { relname: 'orders' }]);
  });

  it('a statement joining catalog relations and topics is 0A000; pg_stats stays refused', async () => {
    const mix = await asUser(gh, BOB, 'SELECT c.relname, o.id FROM pg_catalog.pg_class c JOIN orders o ON true');
    expect(mix.code).toBe('0A000');
    expect(mix.message).toMatch(/catalog relations .* and topics/);
    const stats = await asUser(gh, BOB, "SELECT * FROM pg_stats WHERE tablename = 'orders'");
    expect(stats.code).toBe('42501');
    const deniedFn = await asUser(gh, BOB, "SELECT pg_read_file('/etc/passwd') FROM pg_class");
    expect(deniedFn.code).toBe('42501');
  });

  it('catalog queries over the extended protocol run on the topic catalog too, named statements included', async () => {
    const c = await pgClient(gh, BOB);
    try {
      const q = 'SELECT relname FROM pg_catalog.pg_class WHERE relname = $1';
      expect((await c.query({ text: q, values: ['employees'] })).rows).toEqual([]);
      expect((await c.query({ text: q, values: ['orders'] })).rows).toEqual([{ relname: 'orders' }]);
      const named = { name: 'cols', text: 'SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position' };
      expect((await c.query({ ...named, values: ['customers'] })).rows.map((r) => r.column_name)).toEqual(['id', 'name', 'region', 'created_at']);
      expect((await c.query({ text: 'SELECT count(*)::int AS n FROM orders WHERE region = $1', values: ['EMEA'] })).rows).toEqual([{ n: 1667 }]);
      expect((await c.query({ ...named, values: ['employees'] })).rows).toEqual([]);
      await expect(c.query({ text: 'SELECT * FROM pg_stats WHERE tablename = $1', values: ['orders'] })).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
  });

  it('topic queries still run on the warehouse in the same session as catalog queries', async () => {
    const c = await pgClient(gh, BOB);
    try {
      expect((await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'")).rows).toEqual([{ n: 2 }]);
      expect((await c.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1667 }]);
      const both = await c.query("SELECT count(*)::int AS n FROM orders; SELECT relname FROM pg_class WHERE relname = 'orders'");
      expect(Array.isArray(both) && both.map((r) => r.rows)).toEqual([[{ n: 1667 }], [{ relname: 'orders' }]]);
    } finally {
      await c.end();
    }
  });

  it("carol (querier) still sees the warehouse's catalog: employees in \\dt", async () => {
    const r = await psql(gh, 'carol@acme.example', '\\dt');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/\|employees\|table\|/);
  });

  it('replays the psql and SQLAlchemy catalog statements of the corpus as bob: answered or refused, never sent to the warehouse', async () => {
    const corpus = (JSON.parse(readFileSync(CORPUS, 'utf8')) as { source: string; sql: string }[]).filter(
      (e) => /^(psql|sqlalchemy)/.test(e.source) && /pg_catalog|information_schema|\bpg_[a-z]+|version\(|::reg/i.test(e.sql),
    );
    expect(corpus.length).toBeGreaterThan(40);
    const rules = loadRules(rulesDir);
    const tally = { answered: 0, refused: 0, byState: {} as Record<string, number> };
    const c = await pgClient(gh, BOB);
    try {
      for (const e of corpus) {
        const { decision } = await decideOffline(rules, BOB, 'warehouse', e.sql);
        if (decision.outcome === 'run') {
          const toWarehouse = decision.statements.filter((s) => s.action === 'forward' && s.kind === 'select');
          expect(toWarehouse, `${e.source}: ${e.sql}`).toEqual([]);
        }
        try {
          const r = await c.query(e.sql);
          for (const res of Array.isArray(r) ? r : [r]) expect(JSON.stringify(res.rows ?? []), e.sql).not.toMatch(HIDDEN);
          tally.answered++;
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          expect(code, `${e.source}: ${e.sql}: ${(err as Error).message}`).toMatch(/^(42501|0A000|42P01|42703|42883|22P02|42601)$/);
          tally.byState[code] = (tally.byState[code] ?? 0) + 1;
          tally.refused++;
          await c.query('ROLLBACK').catch(() => {});
        }
      }
    } finally {
      await c.end();
    }
    console.log(
      `corpus catalog statements on ${name}: ${corpus.length}, ${tally.answered} answered, ${tally.refused} refused ${JSON.stringify(tally.byState)}`,
    );
    expect(tally.answered).toBeGreaterThan(tally.refused);
  });
});
