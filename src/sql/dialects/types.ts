// The SQL dialect at the warehouse edge (DESIGN 3, "Other dialects"): decide() rewrites a
// statement on PostgreSQL's AST; a dialect writes that tree as one engine's text, owns the
// engine's barrier and pushdown rules, and refuses (0A000) what it cannot write with the
// same meaning. It never guesses.
import { GatehouseError } from '../../errors.ts';
import type { AstNode } from '../parse.ts';

export type DialectName = 'postgres' | 'mysql' | 'snowflake';

/**
 * The scalar types the emitters reason about (PostgreSQL's, grouped). `untyped` is
 * PostgreSQL's "unknown": a quoted literal, a parameter or NULL, whose type comes from
 * where it stands.
 */
export type SqlType =
  | 'int' // int2, int4
  | 'int8'
  | 'numeric'
  | 'float'
  | 'text'
  | 'bool'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'untyped';

export interface EmittedColumn {
  /** The name PostgreSQL gives the column (its alias, or FigureColname's choice). */
  name: string;
  /** The column's PostgreSQL type where the emitter knows it: a connector uses it to type 1/0 as a boolean. */
  type?: SqlType;
  /**
   * The PostgreSQL type OID the client must see where the SQL type group is not enough: a
   * select-list cast to int4 (21: int2) is int4 on PostgreSQL, while MySQL answers BIGINT.
   */
  oid?: number;
}

export interface EmittedSql {
  sql: string;
  /** For each `?` placeholder, in order, the PostgreSQL parameter number ($n) it stands for. */
  params: number[];
  /** The result's columns, where the dialect works them out (`*` leaves it undefined). */
  columns?: EmittedColumn[];
}

/**
 * How a comparison of a topic column of some type with a constant may be copied inside the
 * topic's barrier (DESIGN 3: only where the engine cannot raise an error from a hidden value):
 * the class decides which constants qualify (sql/topic.ts pushableCopy).
 */
export type PushdownClass = 'int' | 'text' | 'bool' | 'other';

export interface SqlDialect {
  name: DialectName;
  /**
   * What distinguishes two dialects of the same name in a decision cache key (the MySQL
   * emitter writes collations by the server's flavor); absent: the name says it all.
   */
  variant?: string;
  /** Writes a RawStmt's stmt (`{ SelectStmt: ... }`); throws an Unsupported GatehouseError (0A000). */
  emit(stmt: AstNode): EmittedSql;
  /**
   * The barrier's pushdown rule: the class of a column type (a PostgreSQL type name, as the
   * warehouse's catalog reported it) whose comparisons with a constant may run inside the
   * barrier, or undefined: never pushed.
   */
  pushdownClass(columnType: string): PushdownClass | undefined;
}

const ENGINE: Record<DialectName, string> = { postgres: 'PostgreSQL', mysql: 'MySQL', snowflake: 'Snowflake' };

/** The refusal of a construct a dialect cannot write with the same meaning. */
export function unsupported(dialect: DialectName, construct: string): GatehouseError {
  return new GatehouseError('0A000', `${ENGINE[dialect]} connections do not support ${construct} in topic queries`, {
    hint: 'rewrite the query without it, or ask a connection admin to run it as raw SQL',
  });
}
