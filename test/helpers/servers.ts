// Real servers for the integration tests. A server that cannot be reached is a
// loud failure, never a silent skip (under CI=true and everywhere else).
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';

export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

export async function requirePostgres(): Promise<void> {
  const c = new pg.Client(PG);
  try {
    await c.connect();
    await c.end();
  } catch (e) {
    throw new Error(
      `these tests need the local PostgreSQL at ${PG.host}:${PG.port} (user ${PG.user}, database ${PG.database}) and could not reach it: ${(e as Error).message}. ` +
        'Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    );
  }
}

/** Runs SQL as the local superuser against a database (psql, ON_ERROR_STOP). */
export function psqlAdmin(database: string, sql: string): string {
  return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', database], {
    input: sql,
    encoding: 'utf8',
  });
}

export function psqlAdminFile(database: string, file: string): void {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', database, '-f', file], {
    encoding: 'utf8',
  });
}

/** The topics account of the test set-ups: SELECT on acme's topics' fields and nothing else (docs/rules.md). */
export const TOPICS_ROLE = 'gatehouse_topics';

/** SQL (as the superuser, on the warehouse database) that makes TOPICS_ROLE the least-privilege account of acme's topics. */
export function topicsAccountSql(database: string, role = TOPICS_ROLE): string {
  return `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
         CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION;
       END IF;
     END $$;
     -- PUBLIC has TEMP on every database by default: a temporary table would be the account's own.
     REVOKE TEMP ON DATABASE ${database} FROM PUBLIC;
     REVOKE ALL ON DATABASE ${database} FROM ${role};
     GRANT CONNECT ON DATABASE ${database} TO ${role};
     GRANT USAGE ON SCHEMA public TO ${role};
     -- rules/acme/topics/*.yaml: orders exposes every column, customers all but email.
     GRANT SELECT (id, customer_id, region, amount, status, ordered_at) ON public.orders TO ${role};
     GRANT SELECT (id, name, region, created_at) ON public.customers TO ${role};`;
}

/** A fresh database on the local PostgreSQL with acme's demo data, a least-privilege reader role and the topics account. */
export function createAcmeWarehouse(database: string, seedFile: string): void {
  psqlAdmin('test', `DROP DATABASE IF EXISTS ${database} WITH (FORCE);\nCREATE DATABASE ${database};`);
  psqlAdminFile(database, seedFile);
  psqlAdmin(
    database,
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_reader') THEN
         CREATE ROLE gatehouse_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
       END IF;
     END $$;
     GRANT CONNECT ON DATABASE ${database} TO gatehouse_reader;
     GRANT USAGE ON SCHEMA public TO gatehouse_reader;
     GRANT SELECT ON ALL TABLES IN SCHEMA public TO gatehouse_reader;
     ${topicsAccountSql(database)}`,
  );
}

/** A port with nothing listening on it (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
