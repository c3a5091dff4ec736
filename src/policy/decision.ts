import type { GatehouseError } from '../errors.ts';
import type { Attributes, Level } from '../config/model.ts';
import type { WarehouseStatement } from '../warehouses/types.ts';

export type StatementKind =
  | 'select' // SELECT, VALUES, TABLE, WITH ... SELECT
  | 'explain'
  | 'copy_out'
  | 'set'
  | 'show'
  | 'reset'
  | 'transaction' // BEGIN, COMMIT, ROLLBACK, SAVEPOINT...
  | 'discard'
  | 'write' // DML
  | 'ddl'
  | 'other';

/** What policy needs to know of the session: plain data, no sockets. */
export interface DecisionContext {
  org: string;
  user: string;
  level: Level;
  attributes: Attributes;
  connection: { name: string; allowWrites: boolean; topicsSchema: string };
  /** Topics of this connection, by name. */
  topics: Map<string, import('../config/model.ts').Topic>;
}

export type PlannedStatement =
  | ({ action: 'forward'; topics: string[] } & WarehouseStatement)
  /**
   * A Query Topics user's catalog query (policy/catalog.ts): runs on the topic catalog
   * (src/catalog), never on the warehouse. Its own action, and no `sql` at the top, so a
   * path that does not know the catalog cannot forward it by mistake.
   */
  | { action: 'catalog'; kind: StatementKind; statement: WarehouseStatement }
  /** Gatehouse answers itself (EXPLAIN of a topic query): one text column, like EXPLAIN's "QUERY PLAN". */
  | { action: 'answer'; kind: StatementKind; column: string; rows: string[]; tag: string };

export type Decision =
  | { outcome: 'refuse'; error: GatehouseError; rule: string }
  | { outcome: 'empty' }
  | { outcome: 'run'; statements: PlannedStatement[]; rule: string; topics: string[] };
