// The demo on a real PostgreSQL (`--warehouse postgres://ADMIN@HOST/DB`): each org's
// database created (or replaced), seeded with the org's seed files as the embedded warehouse
// is, locked down and given the same two least-privilege accounts the embedded warehouse
// makes (accounts.ts: the SQL is shared). The admin account is used here and nowhere else.
//
// Nothing else is touched: a database or role of the demo's names that exists without the
// demo's marker (its comment) is refused, not replaced, unless it is an empty database.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { GatehouseError } from '../errors.ts';
import { quoteIdent } from '../sql/deparse.ts';
import { createLoginRole, grantQuerier, grantTopics, lockDownDatabase } from '../warehouses/accounts.ts';
import { postgresTls } from '../warehouses/pg-tls.ts';
import { UpstreamConnection, sqlLiteral } from '../warehouses/postgres.ts';
import { PINNED_LEXING } from '../warehouses/types.ts';
import { DEMO_MARKER, type DemoLoad, type DemoPasswords, newPassword, scrub, setupError } from './types.ts';
import type { WarehouseUrl } from './warehouse-url.ts';

/** Opens a connection to one database of the server as the admin account. */
async function connect(url: WarehouseUrl, database: string): Promise<UpstreamConnection> {
  const password = url.password;
  return UpstreamConnection.open(
    // As the connector: TLS verified off loopback (pg-tls.ts).
    {
      connection: `--warehouse ${url.redacted}`,
      host: url.host,
      port: url.port,
      database,
      user: url.user,
      password: password === undefined ? undefined : () => password,
      tls: postgresTls(url.host),
    },
    [['user', url.user], ['database', database], ['application_name', 'gatehouse demo set-up'], ...PINNED_LEXING.map(([k, v]): [string, string] => [k, v])],
  );
}

/** The server's own database to work from: the demo's may not exist yet. */
async function connectMaintenance(url: WarehouseUrl): Promise<UpstreamConnection> {
  try {
    return await connect(url, 'postgres');
  } catch (first) {
    const why = first instanceof GatehouseError ? (first.detail ?? first.message) : String(first);
    // A server without a `postgres` database still has template1.
    if (/does not exist/.test(why)) {
      try {
        return await connect(url, 'template1');
      } catch {
        // report the first reason
      }
    }
    const refused = /password authentication failed|no pg_hba\.conf entry|authentication/i.test(why);
    throw setupError(url, refused ? 'the server refused the admin account' : `cannot reach PostgreSQL at ${url.host}:${url.port}`, {
      detail: why,
      sqlstate: refused ? '28000' : '08001',
      hint: refused ? 'check the user and password in the URL' : 'is the server running and listening there?',
    });
  }
}

async function rows(c: UpstreamConnection, sql: string): Promise<Record<string, string | null>[]> {
  const r = await c.rows(sql);
  return r.rows.map((row) => Object.fromEntries(r.fields.map((f, i) => [f, row[i]])));
}

/** Runs set-up SQL, turning a failure into a message that names the step. */
async function step(url: WarehouseUrl, c: UpstreamConnection, what: string, sql: string): Promise<void> {
  try {
    await c.rows(sql);
  } catch (e) {
    const message = (e as Error).message;
    const denied = /permission denied|must be (owner|superuser)|SQLSTATE 42501/.test(message);
    throw setupError(url, `${what} failed${denied ? ': the admin account lacks a privilege the demo needs' : ''}`, {
      detail: message,
      sqlstate: denied ? '42501' : '08001',
      ...(denied ? { hint: "the URL's account needs CREATEDB and CREATEROLE (or superuser)" } : {}),
    });
  }
}

/** The admin may create databases and roles. */
async function checkAdmin(url: WarehouseUrl, c: UpstreamConnection): Promise<void> {
  const [role] = await rows(c, 'SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user');
  if (role?.rolsuper === 't' || (role?.rolcreatedb === 't' && role?.rolcreaterole === 't')) return;
  const missing = [role?.rolcreatedb === 't' ? '' : 'CREATEDB', role?.rolcreaterole === 't' ? '' : 'CREATEROLE'].filter(Boolean).join(' and ');
  throw setupError(url, `the admin account "${url.user}" cannot set up the demo: it lacks ${missing}`, {
    sqlstate: '42501',
    hint: `ALTER ROLE ${quoteIdent(url.user)} CREATEDB CREATEROLE, or name a superuser in the URL (nothing was changed)`,
  });
}

/** Refuses when a database or role of the demo's names exists and is not the demo's (nothing is changed then). */
async function checkOwnership(url: WarehouseUrl, c: UpstreamConnection, loads: DemoLoad[]): Promise<void> {
  const list = (names: string[]) => names.map(sqlLiteral).join(', ');
  const dbs = await rows(
    c,
    `SELECT datname, pg_catalog.shobj_description(oid, 'pg_database') AS marker FROM pg_catalog.pg_database WHERE datname IN (${list(loads.map((l) => l.database))})`,
  );
  for (const db of dbs) {
    if (db.marker === DEMO_MARKER) continue;
    const other = await connect(url, db.datname!).catch((e: unknown) => {
      throw setupError(url, `database "${db.datname}" exists and the admin account cannot inspect it`, { detail: (e as Error).message, sqlstate: '42501' });
    });
    try {
      const [{ n }] = await rows(
        other,
        `SELECT count(*) AS n FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
          WHERE s.nspname <> 'information_schema' AND s.nspname NOT LIKE 'pg\\_%'`,
      );
      if (n !== '0') {
        throw setupError(url, `database "${db.datname}" exists and was not made by the Gatehouse demo; it is left as it is`, {
          sqlstate: '42501',
          hint: 'name another database in the URL (the demo creates it), or drop that one yourself',
        });
      }
    } finally {
      await other.close();
    }
  }
  const names = loads.flatMap((l) => [l.querierAccount, l.topicsAccount]);
  const roles = await rows(
    c,
    `SELECT rolname, pg_catalog.shobj_description(oid, 'pg_authid') AS marker FROM pg_catalog.pg_roles WHERE rolname IN (${list(names)})`,
  );
  const foreign = roles.filter((r) => r.marker !== DEMO_MARKER).map((r) => r.rolname);
  if (foreign.length > 0) {
    throw setupError(url, `role ${foreign.join(', ')} exists and was not made by the Gatehouse demo; it is left as it is`, {
      sqlstate: '42501',
      hint: "name another database in the URL: the demo's accounts are named after it",
    });
  }
}

/**
 * Creates (or replaces) every org's database and accounts; returns the new accounts'
 * passwords per database, to be sealed into the generated rules.
 */
export async function loadPostgres(url: WarehouseUrl, loads: DemoLoad[], logger?: Logger): Promise<Map<string, DemoPasswords>> {
  const admin = await connectMaintenance(url);
  const out = new Map<string, DemoPasswords>();
  try {
    await checkAdmin(url, admin);
    await checkOwnership(url, admin, loads);
    // Databases first: a role is dropped only once nothing of it is left in them.
    for (const l of loads)
      await step(url, admin, `dropping the old demo database "${l.database}"`, `DROP DATABASE IF EXISTS ${quoteIdent(l.database)} WITH (FORCE)`);
    for (const l of loads) {
      await step(
        url,
        admin,
        `dropping the old demo accounts of "${l.database}"`,
        `DROP ROLE IF EXISTS ${quoteIdent(l.querierAccount)}; DROP ROLE IF EXISTS ${quoteIdent(l.topicsAccount)}`,
      );
    }
    for (const l of loads) {
      const t0 = performance.now();
      const pw = { querier: newPassword(), topics: newPassword() };
      await step(url, admin, `creating database "${l.database}"`, `CREATE DATABASE ${quoteIdent(l.database)}`);
      await step(
        url,
        admin,
        `creating the accounts of "${l.database}"`,
        `COMMENT ON DATABASE ${quoteIdent(l.database)} IS ${sqlLiteral(DEMO_MARKER)};
${createLoginRole(l.querierAccount, pw.querier, !l.allowWrites)}
COMMENT ON ROLE ${quoteIdent(l.querierAccount)} IS ${sqlLiteral(DEMO_MARKER)};
${createLoginRole(l.topicsAccount, pw.topics)}
COMMENT ON ROLE ${quoteIdent(l.topicsAccount)} IS ${sqlLiteral(DEMO_MARKER)};`,
      );
      const db = await connect(url, l.database);
      try {
        for (const file of l.seed) {
          const sql = await readFile(file, 'utf8');
          await step(url, db, `the seed ${path.basename(file)} of org ${l.org}`, sql);
        }
        await step(
          url,
          db,
          `the grants of "${l.database}"`,
          `${lockDownDatabase(l.database)}
${grantQuerier(l.database, l.allowWrites, l.querierAccount)}
GRANT CONNECT ON DATABASE ${quoteIdent(l.database)} TO ${quoteIdent(l.topicsAccount)};`,
        );
        for (const t of l.topics) {
          try {
            await db.rows(grantTopics(l.database, [t], l.topicsAccount));
          } catch (e) {
            // The connector's check at start refuses the topics account with the reason; say which topic here.
            logger?.warn({ org: l.org, topic: t.name, err: scrub((e as Error).message, url) }, 'topic base relation not readable by the topics account');
          }
        }
      } finally {
        await db.close();
      }
      logger?.info(
        { org: l.org, connection: l.connection, database: l.database, accounts: [l.querierAccount, l.topicsAccount], ms: Math.round(performance.now() - t0) },
        'demo database loaded',
      );
      out.set(l.database, pw);
    }
  } finally {
    await admin.close();
  }
  return out;
}
