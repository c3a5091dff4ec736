// Small facts the MySQL emitter's modules share (kept apart so they import no cycle).
import type { AstNode } from '../parse.ts';
import type { SqlType } from './types.ts';

/** An emitted expression and its PostgreSQL type (undefined: not known). */
export interface Expr {
  sql: string;
  type: SqlType | undefined;
}

const NUMERIC: ReadonlySet<SqlType> = new Set(['int', 'int8', 'numeric', 'float']);
export const DATETIME: ReadonlySet<SqlType> = new Set(['date', 'timestamp', 'timestamptz']);
export const isNumeric = (t: SqlType | undefined): boolean => t !== undefined && NUMERIC.has(t);
export const isInt = (t: SqlType | undefined): boolean => t === 'int' || t === 'int8';

/** The family PostgreSQL compares within (numbers with numbers, dates with timestamps...). */
export function category(t: SqlType): string {
  if (NUMERIC.has(t)) return 'number';
  if (DATETIME.has(t)) return 'datetime';
  return t;
}

/** An integer constant (PostgreSQL writes 0 as `ival: {}`), or undefined. */
export function intConst(n: AstNode | undefined): number | undefined {
  const c = n?.A_Const;
  if (!c?.ival) return undefined;
  return Number(c.ival.ival ?? 0);
}

/** What the function writer needs from the expression writer. */
export interface ExprWriter {
  fail(construct: string): never;
  string(value: string): string;
  coerce(node: AstNode, scope: unknown, want: SqlType | undefined): Expr;
}
