// The topic's derived table is a security barrier on MariaDB too (DESIGN 3). A hidden row
// (region AMER) holds the largest bigint, so the user's condition `big + 1 <> 0` raises
// "BIGINT value is out of range" (an error even in a SELECT on MariaDB, unlike division by
// zero) if it ever runs on that row. First proved: without a fence it does run there.
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlSessionStatements } from '../../../src/sql/dialects/mysql-session.ts';
import { BARRIER_LIMIT } from '../../../src/sql/dialects/mysql.ts';
import { parseSqlSync } from '../../../src/sql/parse.ts';
import { addCondition } from '../../../src/sql/topic.ts';
import { type Both, MARIADB, mysqlDialect, openBoth, rewriteTopics, runBoth } from './dialect-fixture.ts';

const OVERFLOW = /BIGINT value is out of range/;
const VISIBLE = ['1', '2', '3', '4', '5', '6', '7'];

let both: Both;
/** A session with MariaDB's defaults (derived_merge and condition pushdown on): only the emitted text fences. */
let bare: mysql.Connection;
/** A session with only the dialect's session settings. */
let settled: mysql.Connection;

beforeAll(async () => {
  both = await openBoth(`gh_dialect_barrier_${process.pid}`);
  bare = await mysql.createConnection({ ...MARIADB, database: both.dbName, rowsAsArray: true });
  await bare.query('SET NAMES utf8mb4');
  settled = await mysql.createConnection({ ...MARIADB, database: both.dbName, rowsAsArray: true });
  for (const s of mysqlSessionStatements('mariadb')) await settled.query(s);
});

afterAll(async () => {
  await bare?.end().catch(() => undefined);
  await settled?.end().catch(() => undefined);
  await both?.close();
});

function emit(sql: string): string {
  return mysqlDialect.emit(rewriteTopics(parseSqlSync(sql).statements[0]!.stmt, undefined)).sql;
}

/** The conditions MariaDB's plan evaluates on rows of the warehouse table `orders` itself. */
async function baseConditions(conn: mysql.Connection, sql: string): Promise<string[]> {
  const [rows] = await conn.query({ sql: `EXPLAIN FORMAT=JSON ${sql}`, rowsAsArray: true });
  const out: string[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === 'object') {
      const o = n as Record<string, unknown>;
      if (o.table_name === 'orders') out.push(String(o.attached_condition ?? ''));
      Object.values(o).forEach(walk);
    }
  };
  walk(JSON.parse(String((rows as unknown[][])[0]![0])));
  return out;
}

async function ids(conn: mysql.Connection, sql: string): Promise<string[]> {
  const [rows] = await conn.query({ sql, rowsAsArray: true });
  return (rows as unknown[][]).map((r) => String(r[0])).sort((a, b) => Number(a) - Number(b));
}

describe('without a fence MariaDB runs the user condition on hidden rows', () => {
  const plain = "SELECT id FROM (SELECT id, big FROM orders WHERE region IN ('EMEA', 'APAC')) AS o WHERE big + 1 <> 0";

  it('a plain derived table is merged and the condition raises on the hidden row', async () => {
    await expect(bare.query(plain)).rejects.toThrow(OVERFLOW);
  });

  it('with derived_merge=off alone the condition is still pushed into the derived table', async () => {
    const c = await mysql.createConnection({ ...MARIADB, database: both.dbName });
    try {
      await c.query("SET SESSION optimizer_switch = 'derived_merge=off'");
      // The pushed condition is ANDed after the filter here, so this data raises nothing;
      // the order of a conjunction is the optimizer's choice, not a barrier.
      expect(await baseConditions(c, plain)).toEqual([expect.stringContaining('big + 1 <> 0')]);
    } finally {
      await c.end();
    }
  });

  it('a case-insensitive, PAD SPACE filter lets hidden rows through', async () => {
    // 'emea' and 'EMEA ' pass MariaDB's default collation: the filter must be collated too.
    expect(await ids(bare, "SELECT id FROM orders WHERE region IN ('EMEA', 'APAC')")).toEqual([...VISIBLE, '9', '10']);
  });
});

describe('the emitted barrier', () => {
  const cases = [
    'SELECT id FROM orders WHERE big + 1 <> 0',
    'SELECT DISTINCT o.id FROM orders o JOIN customers c ON c.id = o.customer_id AND o.big + 1 <> 0 OR o.customer_id IS NULL',
    'SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM orders i WHERE i.id = o.id AND i.big + 1 <> 0)',
    'WITH t AS (SELECT * FROM orders) SELECT id FROM t WHERE big + 1 <> 0',
    'SELECT id FROM (SELECT * FROM orders) x WHERE big + 1 <> 0',
    'SELECT id FROM orders WHERE id IN (SELECT id FROM orders WHERE big + 1 <> 0)',
  ];

  for (const sql of cases) {
    it(`holds with MariaDB's default optimizer switches: ${sql}`, async () => {
      const text = emit(sql);
      expect(text).toContain(`LIMIT ${BARRIER_LIMIT}`);
      expect(await ids(bare, text)).toEqual(VISIBLE);
      // Nothing of the user's condition is evaluated on the table's own rows.
      const conds = await baseConditions(bare, text);
      expect(conds.length).toBeGreaterThan(0);
      for (const c of conds) expect(c).not.toContain('big');
    });

    it(`holds with the session settings alone (the LIMIT removed): ${sql}`, async () => {
      const unfenced = emit(sql).replaceAll(` LIMIT ${BARRIER_LIMIT} OFFSET 0`, '');
      expect(unfenced).not.toContain(BARRIER_LIMIT);
      expect(await ids(settled, unfenced)).toEqual(VISIBLE);
      for (const c of await baseConditions(settled, unfenced)) expect(c).not.toContain('big');
    });

    it(`gives PostgreSQL's rows: ${sql}`, async () => {
      const r = await runBoth(both, sql);
      const sorted = (rows: (string | null)[][]) => rows.map((x) => String(x[0])).sort((a, b) => Number(a) - Number(b));
      expect(sorted(r.pgRows)).toEqual(VISIBLE);
      expect(sorted(r.mysqlRows)).toEqual(VISIBLE);
    });
  }

  it('the session settings matter: without them the unfenced text raises', async () => {
    const unfenced = emit(cases[0]!).replaceAll(` LIMIT ${BARRIER_LIMIT} OFFSET 0`, '');
    await expect(bare.query(unfenced)).rejects.toThrow(OVERFLOW);
  });

  it("the topic's filter compares as PostgreSQL does: 'emea' and 'EMEA ' stay hidden", async () => {
    expect(await ids(bare, emit('SELECT id FROM orders'))).toEqual(VISIBLE);
    expect(await ids(bare, emit('SELECT id FROM customers'))).toEqual(['10', '11', '12', '13']);
  });

  it('a condition copied inside the barrier (pushableCopy) is collated like the filter', async () => {
    const stmt = rewriteTopics(parseSqlSync("SELECT id FROM orders WHERE status = 'shipped'").statements[0]!.stmt, undefined);
    const inner = stmt.SelectStmt.fromClause[0].RangeSubselect.subquery.SelectStmt;
    addCondition(inner, parseSqlSync("SELECT 1 WHERE status = 'shipped'").statements[0]!.stmt.SelectStmt.whereClause);
    const text = mysqlDialect.emit(stmt).sql;
    expect(text).toMatch(/WHERE \(\(\(CONVERT\(`region` USING utf8mb4\) COLLATE utf8mb4_nopad_bin\) IN \('EMEA', 'APAC'\)\) AND \(\(CONVERT\(`status`/);
    expect(await ids(bare, text)).toEqual(['1']);
  });
});
