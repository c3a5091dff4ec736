// What planning one statement gives decide(): the statement as planned and the topics it read.
// Shared by the planning path (decide.ts) and the statements of warehouses that do not read
// PostgreSQL (row-statements.ts).
import type { DecisionContext, PlannedStatement } from './decision.ts';
import { refuse } from '../sql/refusal.ts';

export interface Planned {
  statement: PlannedStatement;
  topics: string[];
  /** The user's own text sent as written (a querier's raw SQL): the decision's rule is raw_sql. */
  raw?: boolean;
}

export function topicList(ctx: DecisionContext): string {
  return [...ctx.topics.keys()].sort().join(', ');
}

export function notForTopicUsers(ctx: DecisionContext, what: string): never {
  refuse(
    'query_topics.statement_kind',
    '42501',
    `${what} is not permitted for query_topics users on connection ${ctx.connection.name}; query a topic: ${topicList(ctx)}`,
  );
}
