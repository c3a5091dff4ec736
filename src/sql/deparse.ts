// Output of rewritten ASTs with pgsql-deparser. Only Gatehouse-built or topic-rewritten
// trees are deparsed: raw SQL of queriers is forwarded as the client wrote it
// (DESIGN 3: never let a deparse change what a name resolves to).
import { deparseSync } from 'pgsql-deparser';
import type { AstNode } from './parse.ts';

/** One line of SQL for a wrapped node (`{ SelectStmt: {...} }`). */
export function deparseOneLine(node: AstNode): string {
  return deparseSync(node as never, { pretty: false }).trim();
}

/** Readable multi-line SQL, for EXPLAIN answers. */
export function deparsePretty(node: AstNode): string {
  return deparseSync(node as never, { pretty: true }).trim();
}

/** A PostgreSQL identifier, quoted only when it must be. */
export function quoteIdent(name: string): string {
  if (/^[a-z_][a-z0-9_$]*$/.test(name) && !RESERVED.has(name)) return name;
  return `"${name.replace(/"/g, '""')}"`;
}

/** A PostgreSQL string literal (standard_conforming_strings on: only ' doubles). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

// Reserved words that cannot be bare column or table names (a conservative subset: quoting more is harmless).
const RESERVED = new Set([
  'all',
  'analyse',
  'analyze',
  'and',
  'any',
  'array',
  'as',
  'asc',
  'asymmetric',
  'both',
  'case',
  'cast',
  'check',
  'collate',
  'column',
  'constraint',
  'create',
  'current_catalog',
  'current_date',
  'current_role',
  'current_time',
  'current_timestamp',
  'current_user',
  'default',
  'deferrable',
  'desc',
  'distinct',
  'do',
  'else',
  'end',
  'except',
  'false',
  'fetch',
  'for',
  'foreign',
  'from',
  'grant',
  'group',
  'having',
  'in',
  'initially',
  'intersect',
  'into',
  'lateral',
  'leading',
  'limit',
  'localtime',
  'localtimestamp',
  'not',
  'null',
  'offset',
  'on',
  'only',
  'or',
  'order',
  'placing',
  'primary',
  'references',
  'returning',
  'select',
  'session_user',
  'some',
  'symmetric',
  'system_user',
  'table',
  'then',
  'to',
  'trailing',
  'true',
  'union',
  'unique',
  'user',
  'using',
  'variadic',
  'when',
  'where',
  'window',
  'with',
  'authorization',
  'binary',
  'collation',
  'concurrently',
  'cross',
  'current_schema',
  'freeze',
  'full',
  'ilike',
  'inner',
  'is',
  'isnull',
  'join',
  'left',
  'like',
  'natural',
  'notnull',
  'outer',
  'overlaps',
  'right',
  'similar',
  'tablesample',
  'verbose',
]);

/** The tree as canonical text without source positions (keys sorted): what two readings of the same SQL share. */
function canonical(node: unknown): string {
  if (Array.isArray(node)) return `[${node.map(canonical).join(',')}]`;
  if (node && typeof node === 'object') {
    const keys = Object.keys(node as object)
      .filter((k) => k !== 'location')
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((node as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(node) ?? 'null';
}

/** Whether two trees are the same statement (source positions aside). */
export function sameTree(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/**
 * Deparse a rewritten statement and prove the text reads back as the same tree: a deparser
 * bug (it writes EXTRACT('a.b' FROM x) as EXTRACT(A.B FROM x)) must never send the warehouse
 * a different statement from the one Gatehouse decided. Undefined when the text differs.
 */
export function deparseFaithfully(node: AstNode, reparse: (sql: string) => AstNode | undefined): string | undefined {
  const sql = deparseOneLine(node);
  const again = reparse(sql);
  if (!again) return undefined;
  return canonical(again) === canonical(node) ? sql : undefined;
}
