// One connector per connection kind.
import type { Logger } from 'pino';
import type { Connection } from '../config/model.ts';
import type { KeyResolution } from '../secrets/resolve.ts';
import { type EmbeddedOptions, EmbeddedWarehouse } from './embedded.ts';
import { MysqlWarehouse } from './mysql.ts';
import { PostgresWarehouse } from './postgres.ts';
import { SnowflakeWarehouse } from './snowflake-warehouse.ts';
import type { Warehouse } from './types.ts';

export { EmbeddedWarehouse } from './embedded.ts';
export { PostgresWarehouse } from './postgres.ts';
export { MysqlWarehouse } from './mysql.ts';
export { SnowflakeWarehouse } from './snowflake-warehouse.ts';

/** A warehouse that can also report a relation's column types (both connectors here can). */
export interface DescribableWarehouse extends Warehouse {
  describeRelation(schema: string, table: string): Promise<Record<string, string>>;
}

export interface WarehouseOptions extends EmbeddedOptions {
  /** The master keys that open stored credentials (src/secrets); absent: none configured. */
  keys?: KeyResolution;
}

/** `opts.topics`: the connection's topics, which its topics account is checked against at start. */
export function createWarehouse(conn: Connection, orgDir: string, opts: WarehouseOptions, logger?: Logger): DescribableWarehouse {
  switch (conn.target.kind) {
    case 'embedded':
      return new EmbeddedWarehouse(conn, orgDir, opts, logger);
    case 'postgres':
      return new PostgresWarehouse(conn, logger, [...opts.topics.values()], undefined, undefined, opts.keys);
    case 'mysql':
      return new MysqlWarehouse(conn, logger, [...opts.topics.values()], undefined, opts.keys);
    case 'snowflake':
      return new SnowflakeWarehouse(conn, logger, [...opts.topics.values()], undefined, opts.keys);
  }
}
