// The embedded warehouse (zero-setup demo): a real PostgreSQL server per connection
// (embedded-server.ts), seeded from the connection's seed files, with least-privilege
// accounts (accounts.ts), served by the postgres connector: every Gatehouse session is
// its own backend, so prepared statements, portals, cursors, DISCARD ALL, transactions,
// statement_timeout, cancel, COPY and binary results behave as on PostgreSQL.
//
// One server per embedded connection (not one for all): a connection is one org's, and
// a shared server's pg_database and pg_roles would name every org's databases and
// accounts to every querier. The connection's topic catalog (src/catalog) is a second
// database on the same server.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Connection, Topic } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import { quoteIdent } from '../sql/deparse.ts';
import { createLoginRole, EMBEDDED_ROLES, grantQuerier, grantTopics, lockDownDatabase, type WarehouseAccounts } from './accounts.ts';
import { EmbeddedServer } from './embedded-server.ts';
import type { PoolStats } from './pool.ts';
import { PostgresWarehouse } from './postgres.ts';
import type { Warehouse, WarehouseSession, WarehouseSessionOptions } from './types.ts';

export interface EmbeddedOptions {
  /** Gatehouse's state dir (.gatehouse): the server lives in <state>/embedded/<org>/<connection>. */
  stateDir: string;
  /** The connection's topics: the topics account may read their fields and nothing else. */
  topics: Map<string, Topic>;
}

/** The database a connection's data lives in on its server: named as the connection, as clients see it. */
export function embeddedDatabase(conn: Connection): string {
  return ['postgres', 'template0', 'template1', CATALOG_DATABASE].includes(conn.name) ? `${conn.name}_data` : conn.name;
}
export const CATALOG_DATABASE = 'gatehouse_catalog';

export class EmbeddedWarehouse implements Warehouse {
  readonly kind = 'embedded';
  readonly server: EmbeddedServer;
  private relay?: PostgresWarehouse;
  /** Milliseconds start() took (server, seed, accounts): reported by tests and logs. */
  startupMs = 0;

  constructor(
    private readonly conn: Connection,
    private readonly orgDir: string,
    private readonly opts: EmbeddedOptions,
    private readonly logger?: Logger,
  ) {
    if (conn.target.kind !== 'embedded') throw new Error(`connection ${conn.name} is not an embedded connection`);
    this.server = new EmbeddedServer({
      dir: path.join(opts.stateDir, 'embedded', conn.org, conn.name),
      name: `connection "${conn.name}" of ${conn.org}`,
      logger,
    });
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    const db = embeddedDatabase(this.conn);
    const target = this.conn.target;
    if (target.kind !== 'embedded') return;
    try {
      await this.server.start();
      await this.server.superuser('postgres', `CREATE DATABASE ${quoteIdent(db)}`);
      for (const file of target.seed) {
        const sql = await readFile(path.resolve(this.orgDir, file), 'utf8');
        try {
          await this.server.superuser(db, sql);
        } catch (e) {
          throw new GatehouseError('08001', `the seed ${file} of embedded connection "${this.conn.name}" failed`, { detail: (e as Error).message });
        }
      }
      const pw = { querier: randomBytes(24).toString('base64url'), topics: randomBytes(24).toString('base64url') };
      await this.server.superuser(
        'postgres',
        `${createLoginRole(EMBEDDED_ROLES.querier, pw.querier, !this.conn.allow_writes)}
${createLoginRole(EMBEDDED_ROLES.topics, pw.topics)}
${lockDownDatabase('postgres')}
REVOKE ALL ON DATABASE template1 FROM PUBLIC;`,
      );
      await this.server.superuser(
        db,
        `${lockDownDatabase(db)}
${grantQuerier(db, this.conn.allow_writes)}
GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(EMBEDDED_ROLES.topics)};`,
      );
      for (const t of this.opts.topics.values()) {
        try {
          await this.server.superuser(db, grantTopics(db, [t]));
        } catch (e) {
          this.logger?.warn(
            { org: this.conn.org, connection: this.conn.name, topic: t.name, err: (e as Error).message },
            'topic base relation not readable by the topics account',
          );
        }
      }
      const accounts: WarehouseAccounts = {
        querier: this.server.target(this.conn.name, db, EMBEDDED_ROLES.querier, pw.querier),
        topics: this.server.target(this.conn.name, db, EMBEDDED_ROLES.topics, pw.topics),
      };
      this.relay = new PostgresWarehouse(this.conn, this.logger, [...this.opts.topics.values()], accounts);
      await this.relay.start();
    } catch (e) {
      await this.server.stop();
      if (e instanceof GatehouseError) throw e;
      throw new GatehouseError('08001', `could not start the embedded warehouse of connection "${this.conn.name}"`, { detail: (e as Error).message });
    }
    this.startupMs = performance.now() - t0;
    this.logger?.info({ connection: this.conn.name, org: this.conn.org, port: this.server.port, ms: Math.round(this.startupMs) }, 'embedded warehouse started');
  }

  private started(): PostgresWarehouse {
    if (!this.relay || !this.server.running) throw new GatehouseError('08001', `the embedded warehouse of connection "${this.conn.name}" is not started`);
    return this.relay;
  }

  openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession> {
    return this.started().openSession(opts);
  }

  poolStats(): PoolStats[] {
    return this.relay?.poolStats() ?? [];
  }

  describeRelation(schema: string, table: string): Promise<Record<string, string>> {
    return this.started().describeRelation(schema, table);
  }

  async close(): Promise<void> {
    await this.relay?.close();
    this.relay = undefined;
    await this.server.stop();
  }
}
