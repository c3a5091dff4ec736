// One small dataset loaded into a PostgreSQL and a MariaDB database (unique names per test
// file), the topic rewrite applied as decide() applies it (src/sql/topic.ts derivedSelect),
// and runners that return every value as comparable text.
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Topic } from '../../../src/config/model.ts';
import { createMysqlDialect } from '../../../src/sql/dialects/mysql.ts';
import { mysqlSessionStatements } from '../../../src/sql/dialects/mysql-session.ts';
import { postgresDialect } from '../../../src/sql/dialects/postgres.ts';
import type { EmittedColumn, SqlType } from '../../../src/sql/dialects/types.ts';
import { type AstNode, ensureParser, parseSqlSync } from '../../../src/sql/parse.ts';
import { derivedSelect } from '../../../src/sql/topic.ts';
import { PG } from '../../helpers/servers.ts';

export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root' };

export const COLUMN_TYPES: Record<string, Record<string, string>> = {
  orders: {
    id: 'integer',
    region: 'character varying(10)',
    status: 'character varying(20)',
    customer_id: 'integer',
    amount: 'numeric(10,2)',
    qty: 'integer',
    big: 'bigint',
    ratio: 'double precision',
    ordered_at: 'timestamp without time zone',
    day: 'date',
    note: 'text',
    flag: 'boolean',
  },
  customers: { id: 'integer', name: 'character varying(30)', region: 'character varying(10)' },
};

// Visible rows are region EMEA or APAC exactly; 8-11 are hidden ('emea' and 'EMEA ' would
// pass a case-insensitive or PAD SPACE filter, 8 holds the largest bigint).
const ORDERS = [
  [1, "'EMEA'", "'shipped'", 10, '100.50', 3, 5, '0.5', "'2024-01-15 10:30:00'", "'2024-01-15'", "'First order'", 'TRUE'],
  [2, "'EMEA'", "'Shipped'", 11, '-20.25', -1, -7, 'NULL', "'2024-02-29 23:59:59'", "'2024-02-29'", "'mixed Case'", 'FALSE'],
  [3, "'APAC'", "'pending'", 'NULL', 'NULL', 0, 0, '1.25', 'NULL', 'NULL', 'NULL', 'NULL'],
  [4, "'APAC'", "'PENDING'", 12, '7.00', 7, 2, '-3.5', "'2023-12-31 00:00:00'", "'2023-12-31'", "'it''s'", 'TRUE'],
  [5, "'EMEA'", "'shipped '", 10, '0.01', 2, 9, '2', "'2024-03-10 08:00:00'", "'2024-03-10'", 'BACKSLASH', 'FALSE'],
  [6, "'APAC'", "'Ünïcödé'", 13, '999.99', 10, 100, '0.1', "'2024-06-30 12:00:00'", "'2024-06-30'", "'naïve'", 'TRUE'],
  [7, "'EMEA'", "'a_b%c'", 11, '50.00', 5, -100, 'NULL', "'2024-01-01 00:00:00'", "'2024-01-01'", "''", 'NULL'],
  [8, "'AMER'", "'shipped'", 10, '1000.00', 1, '9223372036854775807', '0', "'2024-01-20 00:00:00'", "'2024-01-20'", "'x'", 'TRUE'],
  [9, "'emea'", "'shipped'", 10, '1.00', 1, 1, '1', "'2024-01-21 00:00:00'", "'2024-01-21'", "'y'", 'TRUE'],
  [10, "'EMEA '", "'shipped'", 10, '2.00', 1, 1, '1', "'2024-01-22 00:00:00'", "'2024-01-22'", "'z'", 'TRUE'],
  [11, 'NULL', "'shipped'", 10, '3.00', 1, 1, '1', "'2024-01-23 00:00:00'", "'2024-01-23'", "'w'", 'TRUE'],
];
const CUSTOMERS = [
  [10, "'alice'", "'EMEA'"],
  [11, "'Bob'", "'EMEA'"],
  [12, "'carol'", "'APAC'"],
  [13, "'Dave'", "'APAC'"],
  [14, "'eve'", "'AMER'"],
  [15, "'Zed'", "'emea'"],
];

function rowsSql(rows: unknown[][], backslash: string): string {
  return rows.map((r) => `(${r.map((v) => (v === 'BACKSLASH' ? backslash : String(v))).join(', ')})`).join(',\n');
}

export function topics(): Topic[] {
  const filter = [{ field: 'region', attribute: 'region', values_for_unfiltered: ['ALL'] }];
  const topic = (name: string): Topic => ({
    name,
    org: 'test',
    connection: 'warehouse',
    base: { schema: '', table: name },
    fields: Object.keys(COLUMN_TYPES[name]!),
    access_filters: filter,
    columnTypes: COLUMN_TYPES[name],
  });
  return [topic('orders'), topic('customers')];
}

export const ATTRIBUTES = { region: ['EMEA', 'APAC'] };

/** decide()'s topic rewrite: every reference to a topic becomes its barrier derived table. */
export function rewriteTopics(stmt: AstNode, schema: string | undefined): AstNode {
  const byName = new Map(topics().map((t) => [t.name, t]));
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const n = node as AstNode;
    if (n.RangeVar && byName.has(n.RangeVar.relname)) {
      const t = byName.get(n.RangeVar.relname)!;
      const inner = derivedSelect({ ...t, base: { schema: schema ?? '', table: t.name } }, ATTRIBUTES, 'test@example');
      if (!schema) delete inner.fromClause[0].RangeVar.schemaname;
      const alias: AstNode = { aliasname: n.RangeVar.alias?.aliasname ?? n.RangeVar.relname };
      if (n.RangeVar.alias?.colnames) alias.colnames = n.RangeVar.alias.colnames;
      delete n.RangeVar;
      n.RangeSubselect = { subquery: { SelectStmt: inner }, alias };
      return;
    }
    for (const v of Object.values(n)) walk(v);
  };
  const copy = structuredClone(stmt);
  walk(copy);
  return copy;
}

export const mysqlDialect = createMysqlDialect({
  flavor: 'mariadb',
  columnTypes: (_schema, table) => COLUMN_TYPES[table],
});

export interface Both {
  dbName: string;
  pg: pg.Client;
  maria: mysql.Connection;
  close(): Promise<void>;
}

const rawText = { getTypeParser: () => (v: string) => v };

export async function openBoth(dbName: string): Promise<Both> {
  await ensureParser();
  const admin = new pg.Client(PG);
  try {
    await admin.connect();
  } catch (e) {
    throw new Error(`these tests need PostgreSQL at ${PG.host}:${PG.port}: ${(e as Error).message}`);
  }
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  // C.UTF-8: code-point order with Unicode case mapping, which the MySQL dialect matches.
  await admin.query(`CREATE DATABASE ${dbName} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'`);
  await admin.end();
  const client = new pg.Client({ ...PG, database: dbName });
  await client.connect();
  await client.query(`SET TimeZone = 'UTC'`);
  await client.query(`
    CREATE TABLE orders (id integer PRIMARY KEY, region varchar(10), status varchar(20), customer_id integer,
      amount numeric(10,2), qty integer NOT NULL, big bigint NOT NULL, ratio double precision, ordered_at timestamp,
      day date, note text, flag boolean);
    CREATE TABLE customers (id integer PRIMARY KEY, name varchar(30), region varchar(10));
    INSERT INTO orders VALUES ${rowsSql(ORDERS, "'back\\slash'")};
    INSERT INTO customers VALUES ${rowsSql(CUSTOMERS, '')};`);

  let maria: mysql.Connection;
  try {
    maria = await mysql.createConnection({ ...MARIADB, multipleStatements: true });
  } catch (e) {
    await client.end();
    throw new Error(`these tests need MariaDB at ${MARIADB.host}:${MARIADB.port} (user root): ${(e as Error).message}`);
  }
  // The tables keep MariaDB's default case-insensitive PAD SPACE collation, and `note` is
  // latin1: the dialect must give PostgreSQL's answers anyway.
  await maria.query(`DROP DATABASE IF EXISTS ${dbName}; CREATE DATABASE ${dbName} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci; USE ${dbName};
    SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';
    CREATE TABLE orders (id int PRIMARY KEY, region varchar(10), status varchar(20), customer_id int,
      amount decimal(10,2), qty int NOT NULL, big bigint NOT NULL, ratio double, ordered_at datetime,
      day date, note text CHARACTER SET latin1, flag boolean);
    CREATE TABLE customers (id int PRIMARY KEY, name varchar(30), region varchar(10));
    INSERT INTO orders VALUES ${rowsSql(ORDERS, "'back\\slash'")};
    INSERT INTO customers VALUES ${rowsSql(CUSTOMERS, '')};`);
  await maria.end();
  const session = await mysql.createConnection({
    ...MARIADB,
    database: dbName,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
  });
  const both: Both = {
    dbName,
    pg: client,
    maria: session,
    async close() {
      await client.end().catch(() => undefined);
      await session.query(`DROP DATABASE IF EXISTS ${dbName}`).catch(() => undefined);
      await session.end().catch(() => undefined);
      const a = new pg.Client(PG);
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
    },
  };
  try {
    for (const s of mysqlSessionStatements('mariadb')) await session.query(s);
  } catch (e) {
    await both.close();
    throw e;
  }
  return both;
}

export type Row = (string | null)[];

export interface Ran {
  pgSql: string;
  mysqlSql: string;
  columns: EmittedColumn[] | undefined;
  pgRows: Row[];
  mysqlRows: Row[];
}

/** The statement rewritten for topics, run as PostgreSQL text on PostgreSQL and as emitted text on MariaDB. */
export async function runBoth(both: Both, sql: string, values: unknown[] = []): Promise<Ran> {
  const stmt = rewriteTopics(parseSqlSync(sql).statements[0]!.stmt, undefined);
  const pgSql = postgresDialect.emit(stmt).sql;
  const emitted = mysqlDialect.emit(stmt);
  const pgRes = await both.pg.query({ text: pgSql, values, rowMode: 'array', types: rawText });
  const [rows] = await both.maria.execute({ sql: emitted.sql, rowsAsArray: true }, emitted.params.map((n) => values[n - 1]) as never);
  const types = emitted.columns?.map((c) => c.type);
  return {
    pgSql,
    mysqlSql: emitted.sql,
    columns: emitted.columns,
    pgRows: (pgRes.rows as unknown[][]).map((r) => normaliseRow(r, types)),
    mysqlRows: (rows as unknown[][]).map((r) => normaliseRow(r, types)),
  };
}

/** Both engines' text for one value of a known type, in one format (documented in each case). */
function normalise(v: unknown, type: SqlType | undefined): string | null {
  if (v === null || v === undefined) return null;
  let s = v instanceof Buffer ? v.toString('utf8') : String(v);
  switch (type) {
    case 'bool':
      // PostgreSQL t/f, MySQL 1/0.
      return s === 't' || s === '1' || s === 'true' ? 'true' : s === 'f' || s === '0' || s === 'false' ? 'false' : `?${s}`;
    case 'numeric':
    case 'float':
    case 'int':
    case 'int8': {
      // Decimal scale differs (PostgreSQL 2.5000000000000000, MySQL 2.5000): compare the value,
      // to 12 significant digits for the divisions whose last digits the engines round differently.
      const n = Number(s);
      return Number.isFinite(n) ? String(Number(n.toPrecision(12))) : s;
    }
    case 'timestamp':
    case 'timestamptz':
      // PostgreSQL's timestamptz in UTC ends in +00; MySQL's DATETIME(6) has six fraction digits.
      s = s.replace(/\+00$/, '');
      return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
    default:
      return s;
  }
}

function normaliseRow(r: unknown[], types: (SqlType | undefined)[] | undefined): Row {
  return r.map((v, i) => normalise(v, types?.[i]));
}
