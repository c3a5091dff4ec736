// Whom a session signs in to the warehouse as (DESIGN 3, "Security by construction":
// each level reaches the warehouse through its own least-privilege account, so the next
// classifier bug finds nothing beyond the topics' columns to read). The one place that
// maps a level to an account; both the postgres and the embedded connector take
// {querier, topics} targets and open each session as the account named here.
import type { Level, Topic } from '../config/model.ts';
import { quoteIdent } from '../sql/deparse.ts';
import type { UpstreamTarget } from './pg-connection.ts';
import type { WarehouseAccount } from './types.ts';

export type { WarehouseAccount } from './types.ts';

export type WarehouseAccounts = Record<WarehouseAccount, UpstreamTarget>;

/** query_topics sessions read through the topics account; queriers and connection admins through the querier account. */
export function accountFor(level: Level): WarehouseAccount {
  return level === 'query_topics' ? 'topics' : 'querier';
}

/** Role names on the embedded server. */
export const EMBEDDED_ROLES = { querier: 'gatehouse_querier', topics: 'gatehouse_topics', catalog: 'gatehouse_catalog' } as const;

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A login role with nothing: no superuser, no role membership, read-only transactions by default. */
export function createLoginRole(role: string, password: string, readOnly = true): string {
  const create = `CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD ${lit(password)};`;
  return readOnly ? `${create}\nALTER ROLE ${quoteIdent(role)} SET default_transaction_read_only = on;` : create;
}

/**
 * Run as the superuser in a database just seeded: what every account of that database may
 * not do (connect unless granted, create temp tables, read other sessions' activity).
 */
export function lockDownDatabase(database: string): string {
  const db = quoteIdent(database);
  return `REVOKE ALL ON DATABASE ${db} FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;`;
}

/**
 * The querier account: SELECT on every table and view the seed made, in every schema it
 * made (and INSERT, UPDATE, DELETE when the connection sets allow_writes).
 */
export function grantQuerier(database: string, writes = false, role: string = EMBEDDED_ROLES.querier): string {
  const privileges = writes ? 'SELECT, INSERT, UPDATE, DELETE' : 'SELECT';
  return `GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(role)};
DO $grant$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, ${lit(role)});
    EXECUTE format('GRANT ${privileges} ON ALL TABLES IN SCHEMA %I TO %I', s, ${lit(role)});
  END LOOP;
END $grant$;`;
}

/**
 * The topics account: SELECT only on the topics' base relations and only their allowed
 * fields and the fields their access filters read (column privileges).
 */
export function grantTopics(database: string, topics: Iterable<Topic>, role: string = EMBEDDED_ROLES.topics): string {
  const out = [`GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(role)};`];
  for (const t of topics) {
    const cols = [...new Set([...t.fields, ...t.access_filters.map((f) => f.field)])];
    out.push(`GRANT USAGE ON SCHEMA ${quoteIdent(t.base.schema)} TO ${quoteIdent(role)};`);
    out.push(`GRANT SELECT (${cols.map(quoteIdent).join(', ')}) ON ${quoteIdent(t.base.schema)}.${quoteIdent(t.base.table)} TO ${quoteIdent(role)};`);
  }
  return out.join('\n');
}
