// Property: identifiers and string literals the MySQL emitter writes read back on MariaDB as
// the same name and the same value: backquotes, quotes, backslashes, unicode; in the
// dialect's session and in sessions left with backslash escapes on and ANSI_QUOTES (the
// literals must not depend on sql_mode, or a misconfigured session could read two tokens
// where Gatehouse wrote one).
import fc from 'fast-check';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlDialect } from '../../../src/sql/dialects/mysql.ts';
import { mysqlSessionStatements } from '../../../src/sql/dialects/mysql-session.ts';
import type { AstNode } from '../../../src/sql/parse.ts';
import { MARIADB } from './dialect-fixture.ts';

const dialect = createMysqlDialect({ flavor: 'mariadb' });
const sessions: Array<[string, mysql.Connection]> = [];

beforeAll(async () => {
  const open = async (statements: string[]): Promise<mysql.Connection> => {
    let c: mysql.Connection;
    try {
      c = await mysql.createConnection({ ...MARIADB, rowsAsArray: true });
    } catch (e) {
      throw new Error(`these tests need MariaDB at ${MARIADB.host}:${MARIADB.port} (user root): ${(e as Error).message}`);
    }
    for (const s of statements) await c.query(s);
    return c;
  };
  sessions.push(['the dialect session', await open(mysqlSessionStatements('mariadb'))]);
  sessions.push(["MariaDB's default sql_mode (backslash escapes on)", await open(['SET NAMES utf8mb4'])]);
  sessions.push(['ANSI_QUOTES and PIPES_AS_CONCAT', await open(['SET NAMES utf8mb4', "SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT'"])]);
});

afterAll(async () => {
  for (const [, c] of sessions) await c.end().catch(() => undefined);
});

const str = (sval: string): AstNode => ({ String: { sval } });
const lit = (sval: string): AstNode => ({ A_Const: { sval: { sval } } });

/** SELECT s.<id> FROM (SELECT <value> AS <id>) AS s WHERE s.<id> = <value>, as a tree. */
function roundTrip(id: string, value: string): AstNode {
  const inner = { targetList: [{ ResTarget: { name: id, val: lit(value) } }], op: 'SETOP_NONE', limitOption: 'LIMIT_OPTION_DEFAULT' };
  const ref = { ColumnRef: { fields: [str('s'), str(id)] } };
  return {
    SelectStmt: {
      targetList: [{ ResTarget: { val: ref } }],
      fromClause: [{ RangeSubselect: { subquery: { SelectStmt: inner }, alias: { aliasname: 's' } } }],
      whereClause: { A_Expr: { kind: 'AEXPR_OP', name: [str('=')], lexpr: ref, rexpr: lit(value) } },
      op: 'SETOP_NONE',
      limitOption: 'LIMIT_OPTION_DEFAULT',
    },
  };
}

const tricky = fc.constantFrom(
  '`',
  '``',
  '"',
  "'",
  "''",
  '\\',
  "\\'",
  '\\\\',
  '%',
  '_',
  '?',
  '#',
  '-- ',
  '/*',
  '*/',
  ';',
  '\n',
  '\r',
  '\t',
  'é',
  'Ω',
  '€',
  '\u00a0',
  '\u2028',
  'ß',
);
// Any code point but NUL (PostgreSQL text cannot hold it), supplementary planes included.
const anyChar = fc
  .integer({ min: 1, max: 0x10ffff })
  .filter((c) => c < 0xd800 || c > 0xdfff)
  .map((c) => String.fromCodePoint(c));
const valueArb = fc.array(fc.oneof(tricky, anyChar, fc.constantFrom('a', 'B', ' ')), { maxLength: 20 }).map((a) => a.join(''));
// MySQL names: 1..64 characters of the Basic Multilingual Plane, no control characters, no
// leading or trailing space (the emitter refuses those: test/unit/sql/dialects/mysql-emit.test.ts).
const bmpChar = fc
  .integer({ min: 1, max: 0xffff })
  .filter((c) => c < 0xd800 || c > 0xdfff)
  .map((c) => String.fromCodePoint(c));
const idArb = fc
  .array(fc.oneof(tricky, bmpChar, fc.constantFrom('x', 'Y', '1')), { minLength: 1, maxLength: 20 })
  .map((a) => a.join(''))
  .filter((s) => s.length <= 64 && !/^\s|\s$/.test(s) && !/[\u0000-\u001f\u007f-\u009f]/.test(s));

describe('identifiers and literals round-trip on MariaDB', () => {
  it('the same name and value come back in every session, and the value compares equal to itself', async () => {
    await fc.assert(
      fc.asyncProperty(idArb, valueArb, async (id, value) => {
        const { sql } = dialect.emit(roundTrip(id, value));
        for (const [name, conn] of sessions) {
          const [rows, fields] = await conn.query({ sql, rowsAsArray: true });
          const r = rows as unknown[][];
          expect(r.length, `${name}: ${sql}`).toBe(1);
          expect(String(r[0]![0]), `${name}: ${sql}`).toBe(value);
          expect((fields as Array<{ name: string }>)[0]!.name, `${name}: ${sql}`).toBe(id);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("the premise of the raw classifier: NO_BACKSLASH_ESCAPES reads a second statement after \\'", async () => {
    const c = await mysql.createConnection({ ...MARIADB, multipleStatements: true, rowsAsArray: true });
    try {
      const text = "SELECT 'prefix\\'; SELECT 2; -- '";
      const [escaped] = await c.query(text);
      expect(escaped).toEqual([["prefix'; SELECT 2; -- "]]);
      await c.query("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'");
      const [plain] = await c.query(text);
      // Two SELECTs now (and the comment's empty statement): 'prefix\\', then 2.
      expect((plain as unknown[]).slice(0, 2)).toEqual([[['prefix\\']], [[2]]]);
    } finally {
      await c.end();
    }
  });

  it('a backslash before a quote cannot end the literal early in a backslash-escape session', async () => {
    const value = "\\'; SELECT 1; -- ";
    const { sql } = dialect.emit(roundTrip('v', value));
    for (const [, conn] of sessions) {
      const [rows] = await conn.query({ sql, rowsAsArray: true });
      expect((rows as unknown[][])[0]![0]).toBe(value);
    }
  });
});
