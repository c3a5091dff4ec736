import type { GatehouseError } from '../errors.ts';
import type { Attributes, Level } from '../config/model.ts';
import type { StatementKind, WarehouseStatement } from '../warehouses/types.ts';

export type { StatementKind } from '../warehouses/types.ts';

/**
 * What policy needs to know of the session: plain data, no sockets. Never changed once made
 * (new rules make new contexts): decide() keys its caches by it, its key made once per object.
 */
export interface DecisionContext {
  org: string;
  user: string;
  level: Level;
  attributes: Attributes;
  /**
   * `dialect`: the SQL the warehouse reads (absent: postgres): the SqlDialect that writes a
   * Query Topics user's plan, and what queriers write (policy/row-statements.ts). `flavor`: MariaDB or MySQL, from the server's version once the
   * warehouse answered (absent: mariadb); the emitter writes collations by it.
   */
  connection: { name: string; allowWrites: boolean; topicsSchema: string; dialect?: 'postgres' | 'mysql' | 'snowflake'; flavor?: 'mariadb' | 'mysql' };
  /** Topics of this connection, by name. */
  topics: Map<string, import('../config/model.ts').Topic>;
}

/**
 * The session-scoped names a statement creates, uses or drops: SQL cursors (DECLARE, FETCH,
 * MOVE, CLOSE) and SQL prepared statements (PREPARE, EXECUTE, DEALLOCATE). Plain facts for
 * the pipeline, which keeps one table per space (name -> upstream: 'warehouse' | 'catalog'),
 * because a Query Topics user's cursor over a catalog query lives on the topic catalog and
 * its FETCH must go there too, while the decision of `FETCH 10 FROM c` cannot know where c
 * was declared (decisions are cached by text, pure, and know no session state).
 *
 * What the pipeline does with them (docs/security.md, "Cursors and prepared statements"):
 * - `creates`: after the statement succeeded, record name -> the upstream it ran on (its
 *   action: 'forward' = warehouse, 'catalog' = topic catalog), replacing an older entry.
 * - `uses`: send the statement to the upstream recorded for the name, overriding its action;
 *   a name not in the table goes to the warehouse (which answers 34000/26000 if it does not
 *   know it either). The extended protocol's Describe/Execute of a portal named like a SQL
 *   cursor (psycopg 3 describes its named cursor that way) routes by the cursor table too.
 * - `drops`: after it ran, forget the name; `{ all: true }` (CLOSE ALL, DEALLOCATE ALL) runs
 *   on every upstream the session has opened (the catalog only if opened) and clears the
 *   space; the client gets one CommandComplete. DISCARD ALL clears both spaces likewise.
 */
export interface SessionNames {
  space: 'cursor' | 'statement';
  /** DECLARE, PREPARE: the name this statement creates on the upstream it runs on. */
  creates?: string;
  /** FETCH, MOVE, CLOSE name, EXECUTE, DEALLOCATE name: runs where this name was created. */
  uses?: string;
  /** CLOSE, DEALLOCATE: the name dropped, or every name of the space. */
  drops?: string | { all: true };
}

export type PlannedStatement =
  | ({
      action: 'forward';
      topics: string[];
      names?: SessionNames;
      /**
       * A NOTICE the pipeline sends before the statement's result: what Gatehouse changed in
       * a statement it wrote tighter than asked (SET SESSION CHARACTERISTICS ... READ WRITE
       * on a read-only connection is written READ ONLY).
       */
      notice?: string;
    } & WarehouseStatement)
  /**
   * A Query Topics user's catalog query (policy/catalog.ts): runs on the topic catalog
   * (src/catalog), never on the warehouse. Its own action, and no `sql` at the top, so a
   * path that does not know the catalog cannot forward it by mistake.
   */
  | { action: 'catalog'; kind: StatementKind; statement: WarehouseStatement; names?: SessionNames }
  /** Gatehouse answers itself (EXPLAIN of a topic query): one text column, like EXPLAIN's "QUERY PLAN". */
  | { action: 'answer'; kind: StatementKind; column: string; rows: string[]; tag: string };

export type Decision =
  | { outcome: 'refuse'; error: GatehouseError; rule: string }
  | { outcome: 'empty' }
  | { outcome: 'run'; statements: PlannedStatement[]; rule: string; topics: string[] };
