// One connector per connection kind.
import type { Logger } from 'pino';
import type { Connection, Topic } from '../config/model.ts';
import { EmbeddedWarehouse } from './embedded.ts';
import { PostgresWarehouse } from './postgres.ts';
import type { Warehouse } from './types.ts';

export { EmbeddedWarehouse } from './embedded.ts';
export { PostgresWarehouse } from './postgres.ts';

/** A warehouse that can also report a relation's column types (both connectors here can). */
export interface DescribableWarehouse extends Warehouse {
  describeRelation(schema: string, table: string): Promise<Record<string, string>>;
}

/** `topics`: the connection's topics, which a postgres connection's topics account is checked against at start. */
export function createWarehouse(conn: Connection, orgDir: string, logger?: Logger, topics: Topic[] = []): DescribableWarehouse {
  switch (conn.target.kind) {
    case 'embedded':
      return new EmbeddedWarehouse(conn, orgDir, logger);
    case 'postgres':
      return new PostgresWarehouse(conn, logger, topics);
  }
}
