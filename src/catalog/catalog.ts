// The catalog a Query Topics user sees (DESIGN 1 and 3, "Catalog"): a database on an
// embedded PostgreSQL server holding one EMPTY table per topic of the connection, shaped
// like the topic: its allowed fields, in the topic's order, with the types the warehouse
// reported at start. psql's \d, pgjdbc's DatabaseMetaData and SQLAlchemy's inspector then
// run their own catalog queries on it for real, and see the topics and nothing else: the
// database holds nothing secret, and its account (gatehouse_catalog) can connect to it
// and to nothing else on the server.
//
// The server is the connection's own embedded warehouse server (kind embedded), or one
// started for the catalog on first need (kind postgres). One catalog per connection,
// shared by its sessions: the field allowlist is per topic, not per user, so every Query
// Topics user of a connection sees the same catalog.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Connection, Topic } from '../config/model.ts';
import { quoteIdent, quoteLiteral } from '../sql/deparse.ts';
import { createLoginRole, EMBEDDED_ROLES, lockDownDatabase } from '../warehouses/accounts.ts';
import { DEFAULT_TOPICS_IDLE_IN_TRANSACTION_TIMEOUT, DEFAULT_TOPICS_STATEMENT_TIMEOUT } from '../warehouses/postgres-accounts.ts';
import { CATALOG_DATABASE } from '../warehouses/embedded.ts';
import type { EmbeddedServer } from '../warehouses/embedded-server.ts';
import { DEFAULT_POOL } from '../warehouses/pool.ts';
import { PostgresWarehouse } from '../warehouses/postgres.ts';
import type { WarehouseSession, WarehouseSessionOptions } from '../warehouses/types.ts';

/** A type name as format_type prints it (`integer`, `numeric(12,2)`, `timestamp with time zone`, `text[]`). */
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_ ."]*(\(\d+(,\s*\d+)?\))?( with(out)? time zone)?(\[\])*$/;

/**
 * The seed of a connection's catalog: a table per topic. A column whose type the
 * warehouse did not report, or that the catalog server does not know (an enum, a domain,
 * an extension's type), stays `text` rather than failing the whole catalog.
 */
export function catalogSeed(topics: Iterable<Topic>): string {
  const out: string[] = [];
  for (const t of topics) {
    const table = `public.${quoteIdent(t.name)}`;
    out.push(`CREATE TABLE ${table} (${t.fields.map((f) => `${quoteIdent(f)} text`).join(', ')});`);
    for (const f of t.fields) {
      const type = t.columnTypes?.[f];
      if (!type || type === 'text' || !TYPE_NAME.test(type)) continue;
      out.push(
        `DO $catalog$ BEGIN ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(f)} TYPE ${type} USING NULL; EXCEPTION WHEN others THEN NULL; END $catalog$;`,
      );
    }
    out.push(`COMMENT ON TABLE ${table} IS ${quoteLiteral(`topic ${t.name}`)};`);
  }
  return out.join('\n');
}

export interface CatalogHost {
  server: EmbeddedServer;
  /** True: the catalog started this server and stops it on close (a postgres connection's). */
  owned: boolean;
}

export class TopicCatalog {
  private starting?: Promise<PostgresWarehouse>;
  /** Milliseconds the catalog took to start (0 until it has). */
  startupMs = 0;

  constructor(
    private readonly connection: Connection,
    private readonly topics: Map<string, Topic>,
    private readonly host: CatalogHost,
    private readonly logger?: Logger,
  ) {}

  async openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession> {
    const wh = await this.start();
    return wh.openSession({ ...opts, readOnly: true });
  }

  /** Starts once for all the sessions that ask at the same time; a failed start is retried by the next. */
  private start(): Promise<PostgresWarehouse> {
    this.starting ??= this.boot().catch((e) => {
      this.starting = undefined;
      throw e;
    });
    return this.starting;
  }

  private async boot(): Promise<PostgresWarehouse> {
    const t0 = performance.now();
    const { server } = this.host;
    if (this.host.owned && !server.running) await server.start();
    const db = CATALOG_DATABASE;
    const password = randomBytes(24).toString('base64url');
    await server.superuser('postgres', `DROP DATABASE IF EXISTS ${quoteIdent(db)}`);
    await server.superuser('postgres', `CREATE DATABASE ${quoteIdent(db)}`);
    await server.superuser('postgres', `DROP ROLE IF EXISTS ${quoteIdent(EMBEDDED_ROLES.catalog)};\n${createLoginRole(EMBEDDED_ROLES.catalog, password)}`);
    await server.superuser(
      db,
      `${catalogSeed(this.topics.values())}
${lockDownDatabase(db)}
GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(EMBEDDED_ROLES.catalog)};
-- The tables are empty; information_schema shows a role only what it holds a privilege on.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${quoteIdent(EMBEDDED_ROLES.catalog)};`,
    );
    // Catalog sessions are governed like topic sessions: the same timeouts, whatever account name they open under.
    const target = {
      ...server.target(this.connection.name, db, EMBEDDED_ROLES.catalog, password),
      settings: [
        ['statement_timeout', DEFAULT_TOPICS_STATEMENT_TIMEOUT],
        ['idle_in_transaction_session_timeout', DEFAULT_TOPICS_IDLE_IN_TRANSACTION_TIMEOUT],
      ] as [string, string][],
    };
    // Not pooled (issue 17 pools warehouse sessions): a catalog session opens on a Query Topics user's first catalog query.
    const wh = new PostgresWarehouse(this.connection, this.logger, [], { querier: target, topics: target }, { ...DEFAULT_POOL, mode: 'none' });
    this.startupMs = performance.now() - t0;
    this.logger?.info(
      { org: this.connection.org, connection: this.connection.name, ms: Math.round(this.startupMs), topics: this.topics.size },
      'topic catalog started',
    );
    return wh;
  }

  async close(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    await starting?.catch(() => undefined);
    if (this.host.owned) await this.host.server.stop();
  }
}
