// The PostgreSQL dialect: today's faithful deparse (the text must parse back to the same tree).
// Parameters stay $n in PostgreSQL text, so `params` is empty: nothing is renumbered.
import { deparseFaithfully } from '../deparse.ts';
import { parseSqlSync, type AstNode } from '../parse.ts';
import type { EmittedSql, SqlDialect } from './types.ts';
import { GatehouseError } from '../../errors.ts';
import { postgresPushdownClass } from '../topic.ts';

function reparse(text: string): AstNode | undefined {
  try {
    return parseSqlSync(text).statements[0]?.stmt;
  } catch {
    return undefined;
  }
}

export const postgresDialect: SqlDialect = {
  name: 'postgres',
  emit(stmt: AstNode): EmittedSql {
    const sql = deparseFaithfully(stmt, reparse);
    if (sql === undefined) {
      throw new GatehouseError(
        '0A000',
        'Gatehouse cannot write this statement back exactly as it read it (a construct its SQL writer does not render faithfully); rewrite the query more plainly',
      );
    }
    return { sql, params: [] };
  },
  // The barrier is OFFSET 0 (sql/topic.ts), which PostgreSQL's planner neither flattens nor
  // pushes into; Gatehouse copies a condition inside only through a leakproof operator.
  pushdownClass: postgresPushdownClass,
};
