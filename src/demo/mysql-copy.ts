// The demo's tables copied from PostgreSQL (where the seed SQL ran) to MySQL/MariaDB: each
// column's PostgreSQL type mapped to a MySQL type that holds the same values, and the
// PostgreSQL expression that reads a value as text MySQL takes as is. An allowlist: a type
// not listed is refused naming the column, never guessed. Pure: no I/O.
import { quoteIdent as quoteMysqlIdent } from '../sql/dialects/mysql-text.ts';

/** One column as PostgreSQL describes it (format_type's text). */
export interface PgColumn {
  name: string;
  type: string;
  notNull: boolean;
}

export interface PgTable {
  schema: string;
  name: string;
  columns: PgColumn[];
  /** Primary key columns, in key order (empty: none). */
  primaryKey: string[];
}

export interface CopiedColumn {
  name: string;
  mysqlType: string;
  /** Reads the value on PostgreSQL as the text MySQL stores unchanged (NULL stays NULL). */
  select: string;
}

export interface CopyPlan {
  table: string;
  columns: CopiedColumn[];
  primaryKey: string[];
  createSql: string;
  /** The PostgreSQL SELECT that reads the rows, in primary key order when there is one. */
  selectSql: string;
}

const pgIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** The MySQL type and read expression for one column, or why it cannot be copied. */
export function mapColumn(c: PgColumn, inKey: boolean): { mysqlType: string; select: string } | { problem: string } {
  const col = pgIdent(c.name);
  const text = `${col}::text`;
  const t = c.type;
  let m: RegExpExecArray | null;
  switch (t) {
    case 'smallint':
      return { mysqlType: 'SMALLINT', select: text };
    case 'integer':
      return { mysqlType: 'INT', select: text };
    case 'bigint':
      return { mysqlType: 'BIGINT', select: text };
    case 'real':
      return { mysqlType: 'FLOAT', select: text };
    case 'double precision':
      return { mysqlType: 'DOUBLE', select: text };
    case 'boolean':
      // MySQL's BOOLEAN is tinyint(1), which the mysql connector reads back as boolean.
      return { mysqlType: 'BOOLEAN', select: `${col}::int::text` };
    case 'text':
    case 'character varying':
      // A key column needs a length (MySQL indexes no TEXT without one).
      return { mysqlType: inKey ? 'VARCHAR(255)' : 'TEXT', select: text };
    case 'date':
      return { mysqlType: 'DATE', select: `to_char(${col}, 'YYYY-MM-DD')` };
    case 'uuid':
      return { mysqlType: 'CHAR(36)', select: text };
    case 'json':
    case 'jsonb':
      return { mysqlType: 'JSON', select: text };
  }
  if ((m = /^numeric\((\d+),(\d+)\)$/.exec(t))) {
    const [p, s] = [Number(m[1]), Number(m[2])];
    if (p <= 65 && s <= 30) return { mysqlType: `DECIMAL(${p},${s})`, select: text };
    return { problem: `${t} is wider than MySQL's DECIMAL (precision 65, scale 30)` };
  }
  if ((m = /^character varying\((\d+)\)$/.exec(t))) return { mysqlType: `VARCHAR(${m[1]})`, select: text };
  if ((m = /^character\((\d+)\)$/.exec(t))) return { mysqlType: `CHAR(${m[1]})`, select: text };
  // MySQL keeps microseconds at most, as PostgreSQL does.
  if (/^timestamp(\(\d\))? with time zone$/.test(t)) {
    // DATETIME holds no zone: the instant is stored as its UTC time (the connector's sessions run at +00:00).
    return { mysqlType: 'DATETIME(6)', select: `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')` };
  }
  if (/^timestamp(\(\d\))? without time zone$/.test(t)) return { mysqlType: 'DATETIME(6)', select: `to_char(${col}, 'YYYY-MM-DD HH24:MI:SS.US')` };
  if (/^time(\(\d\))? without time zone$/.test(t)) return { mysqlType: 'TIME(6)', select: `to_char(${col}, 'HH24:MI:SS.US')` };
  if (t === 'numeric') return { problem: 'numeric without a precision and scale has no MySQL type that holds every value: declare numeric(p,s) in the seed' };
  return { problem: `type ${t} is not among the types the demo copies to MySQL` };
}

/** The plan for one table, or the problems that stop it (each naming the column). */
export function planTable(table: PgTable): CopyPlan | { problems: string[] } {
  const problems: string[] = [];
  if (table.schema !== 'public') problems.push(`table ${table.schema}.${table.name} is outside schema public (a MySQL database has one namespace)`);
  const columns: CopiedColumn[] = [];
  for (const c of table.columns) {
    const m = mapColumn(c, table.primaryKey.includes(c.name));
    if ('problem' in m) problems.push(`column ${table.name}.${c.name}: ${m.problem}`);
    else columns.push({ name: c.name, ...m });
  }
  if (problems.length > 0) return { problems };
  const defs = [
    ...columns.map((c, i) => `${quoteMysqlIdent(c.name)} ${c.mysqlType}${table.columns[i].notNull ? ' NOT NULL' : ''}`),
    ...(table.primaryKey.length ? [`PRIMARY KEY (${table.primaryKey.map(quoteMysqlIdent).join(', ')})`] : []),
  ];
  const order = table.primaryKey.length ? ` ORDER BY ${table.primaryKey.map(pgIdent).join(', ')}` : '';
  return {
    table: table.name,
    columns,
    primaryKey: table.primaryKey,
    createSql: `CREATE TABLE ${quoteMysqlIdent(table.name)} (\n  ${defs.join(',\n  ')}\n)`,
    selectSql: `SELECT ${columns.map((c) => c.select).join(', ')} FROM ${pgIdent(table.schema)}.${pgIdent(table.name)}${order}`,
  };
}

/** The tables and columns of the seeded PostgreSQL database (every relation outside PostgreSQL's own schemas). */
export const PG_TABLES_QUERY = `SELECT n.nspname AS schema, c.relname AS table, c.relkind AS kind, a.attname AS column,
  pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
  (SELECT array_position(k.conkey, a.attnum) FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS key_position
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname, a.attnum`;

/** PG_TABLES_QUERY's rows as tables; views and foreign tables are problems (only tables are copied). */
export function tablesFromRows(rows: Record<string, string | null>[]): { tables: PgTable[]; problems: string[] } {
  const tables = new Map<string, PgTable & { keyPositions: Map<string, number> }>();
  const problems: string[] = [];
  for (const r of rows) {
    const key = `${r.schema}.${r.table}`;
    if (r.kind !== 'r' && r.kind !== 'p') {
      if (!problems.some((p) => p.includes(key))) problems.push(`${key} is a ${r.kind === 'f' ? 'foreign table' : 'view'}: the demo copies tables only`);
      continue;
    }
    const t = tables.get(key) ?? {
      schema: r.schema!,
      name: r.table!,
      columns: [] as PgColumn[],
      primaryKey: [] as string[],
      keyPositions: new Map<string, number>(),
    };
    tables.set(key, t);
    if (r.column === null) continue;
    t.columns.push({ name: r.column!, type: r.type!, notNull: r.not_null === 't' });
    if (r.key_position !== null) t.keyPositions.set(r.column!, Number(r.key_position));
  }
  return {
    tables: [...tables.values()].map(({ keyPositions, ...t }) => ({
      ...t,
      primaryKey: [...keyPositions.entries()].sort((a, b) => a[1] - b[1]).map(([c]) => c),
    })),
    problems,
  };
}
