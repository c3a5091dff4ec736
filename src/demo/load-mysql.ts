// The demo on a real MySQL or MariaDB (`--warehouse mysql://ADMIN@HOST/DB`). The seed files are
// PostgreSQL SQL (generate_series, arrays, casts), so they run where they are meant to: on a
// scratch embedded PostgreSQL server (the one the embedded warehouse uses, started under
// .gatehouse/embedded/.demo-seed and stopped at the end). Each table found there is created on
// MySQL with mapped column types (mysql-copy.ts) and its rows copied in batches through a
// cursor; the copy is checked by counting both sides. Then each org's database gets two
// least-privilege accounts: the querier account SELECT on the copied tables, the topics
// account SELECT on the topics' fields only, both of which the mysql connector checks with
// SHOW GRANTS at start. Generic over the seed: nothing here knows the demo's tables.
//
// Nothing else is touched: a database of the demo's names that holds tables but not the
// demo's marker table is refused, not replaced.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { GatehouseError } from '../errors.ts';
import { quoteIdent as pgQuote } from '../sql/deparse.ts';
import { quoteIdent } from '../sql/dialects/mysql-text.ts';
import { EmbeddedServer } from '../warehouses/embedded-server.ts';
import { tlsMode } from '../warehouses/mysql.ts';
import type { UpstreamConnection } from '../warehouses/postgres.ts';
import { type CopyPlan, PG_TABLES_QUERY, planTable, tablesFromRows } from './mysql-copy.ts';
import { DEMO_MARKER, type DemoLoad, type DemoPasswords, MYSQL_MARKER_TABLE, newPassword, setupError } from './types.ts';
import type { WarehouseUrl } from './warehouse-url.ts';

/** Rows per INSERT and per FETCH: a few hundred kB per statement for tables like the demo's. */
const BATCH_ROWS = 1000;

export interface MysqlLoaded extends DemoPasswords {
  /** Rows copied per table (checked against PostgreSQL's count). */
  rows: Record<string, number>;
}

interface MysqlError extends Error {
  code?: string;
  errno?: number;
  sqlMessage?: string;
}

/** Server error numbers that mean the admin account may not do something. */
const DENIED = new Set([1044, 1142, 1143, 1227, 1370, 1410, 1045]);

function mysqlFailure(url: WarehouseUrl, what: string, e: unknown): Error {
  const err = e as MysqlError;
  if (err.errno === 1045) {
    return setupError(url, 'the server refused the admin account', { detail: err.message, sqlstate: '28000', hint: 'check the user and password in the URL' });
  }
  if (err.errno !== undefined && DENIED.has(err.errno)) {
    return setupError(url, `${what} failed: the admin account lacks a privilege the demo needs`, {
      detail: err.message,
      sqlstate: '42501',
      hint: "the URL's account needs CREATE, DROP, SELECT, INSERT and GRANT OPTION on the demo databases, and CREATE USER (root has them)",
    });
  }
  // A socket error (ECONNREFUSED, ETIMEDOUT, ENOTFOUND...) rather than the server's ER_ one.
  if (err.code && !err.code.startsWith('ER_') && !(err as { sqlState?: string }).sqlState) {
    return setupError(url, `cannot reach MySQL at ${url.host}:${url.port}`, {
      detail: err.message || err.code,
      hint: 'is the server running and listening there?',
    });
  }
  return setupError(url, `${what} failed`, { detail: err.message });
}

async function adminConnection(url: WarehouseUrl): Promise<mysql.Connection> {
  const mode = tlsMode(url.host);
  try {
    const c = await mysql.createConnection({
      host: url.host,
      port: url.port,
      user: url.user,
      password: url.password ?? '',
      charset: 'UTF8MB4_GENERAL_CI',
      connectTimeout: 10_000,
      multipleStatements: false,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      // As the connector: TLS verified off loopback.
      ...(mode === 'disable' ? {} : { ssl: { rejectUnauthorized: true } }),
    });
    // mysql2 escapes values with backslashes: the session must read them so (no NO_BACKSLASH_ESCAPES),
    // strictly (a value that does not fit is an error, never truncated), with times in UTC.
    await c.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'");
    return c;
  } catch (e) {
    throw mysqlFailure(url, 'connecting', e);
  }
}

/** The seed's tables as copy plans, read from the scratch PostgreSQL database it ran in. */
async function planDatabase(url: WarehouseUrl, pg: UpstreamConnection, load: DemoLoad): Promise<CopyPlan[]> {
  const r = await pg.rows(PG_TABLES_QUERY);
  const { tables, problems } = tablesFromRows(r.rows.map((row) => Object.fromEntries(r.fields.map((f, i) => [f, row[i]]))));
  const plans: CopyPlan[] = [];
  for (const t of tables) {
    if (t.name === MYSQL_MARKER_TABLE) problems.push(`table ${t.name} has the name of the demo's marker table`);
    const p = planTable(t);
    if ('problems' in p) problems.push(...p.problems);
    else plans.push(p);
  }
  for (const t of load.topics) {
    if (t.base.schema !== 'public') problems.push(`topic ${t.name}'s base ${t.base.schema}.${t.base.table} is outside schema public`);
  }
  if (problems.length > 0) {
    throw setupError(url, `the seed of org ${load.org} cannot be copied to MySQL`, { detail: problems.join('; '), sqlstate: '0A000' });
  }
  return plans;
}

/** Refuses when a database of the demo's names exists, holds tables, and is not the demo's. */
async function checkOwnership(url: WarehouseUrl, c: mysql.Connection, loads: DemoLoad[]): Promise<void> {
  const names = loads.map((l) => l.database);
  const [rows] = await c.query('SELECT table_schema AS db, table_name AS t FROM information_schema.tables WHERE table_schema IN (?)', [names]);
  const byDb = new Map<string, string[]>();
  for (const r of rows as { db: string; t: string }[]) byDb.set(r.db, [...(byDb.get(r.db) ?? []), r.t]);
  for (const [db, tables] of byDb) {
    if (!tables.includes(MYSQL_MARKER_TABLE)) {
      throw setupError(url, `database "${db}" exists and was not made by the Gatehouse demo; it is left as it is`, {
        sqlstate: '42501',
        hint: 'name another database in the URL (the demo creates it), or drop that one yourself',
      });
    }
  }
}

async function copyTable(url: WarehouseUrl, pg: UpstreamConnection, my: mysql.Connection, plan: CopyPlan): Promise<number> {
  const insert = `INSERT INTO ${quoteIdent(plan.table)} (${plan.columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES ?`;
  let copied = 0;
  await pg.rows('BEGIN');
  try {
    await pg.rows(`DECLARE gatehouse_copy NO SCROLL CURSOR FOR ${plan.selectSql}`);
    for (;;) {
      const batch = await pg.rows(`FETCH ${BATCH_ROWS} FROM gatehouse_copy`);
      if (batch.rows.length === 0) break;
      try {
        await my.query(insert, [batch.rows]);
      } catch (e) {
        throw mysqlFailure(url, `copying the rows of ${plan.table}`, e);
      }
      copied += batch.rows.length;
    }
  } finally {
    await pg.rows('COMMIT');
  }
  return copied;
}

export async function loadMysql(url: WarehouseUrl, loads: DemoLoad[], stateDir: string, logger?: Logger): Promise<Map<string, MysqlLoaded>> {
  const seedServer = new EmbeddedServer({ dir: path.join(stateDir, 'embedded', '.demo-seed', 'postgres'), name: 'the demo seed server', logger });
  const out = new Map<string, MysqlLoaded>();
  let my: mysql.Connection | undefined;
  try {
    // Reach MySQL first: a wrong URL fails before the seed server starts.
    my = await adminConnection(url);
    await checkOwnership(url, my, loads).catch((e) => {
      throw e instanceof GatehouseError ? e : mysqlFailure(url, 'reading information_schema', e);
    });
    await seedServer.start();
    // Every seed runs and maps before anything on MySQL changes.
    const plans = new Map<string, CopyPlan[]>();
    for (const l of loads) {
      await seedServer.superuser('postgres', `CREATE DATABASE ${pgQuote(l.database)}`);
      for (const file of l.seed) {
        try {
          await seedServer.superuser(l.database, await readFile(file, 'utf8'));
        } catch (e) {
          throw setupError(url, `the seed ${path.basename(file)} of org ${l.org} failed on PostgreSQL`, { detail: (e as Error).message });
        }
      }
      const pg = await seedServer.openSuperuser(l.database);
      try {
        plans.set(l.database, await planDatabase(url, pg, l));
      } finally {
        await pg.close();
      }
    }
    for (const l of loads) {
      const t0 = performance.now();
      const db = quoteIdent(l.database);
      const run = async (what: string, sql: string, values?: unknown[]) => {
        try {
          await my!.query(sql, values);
        } catch (e) {
          throw mysqlFailure(url, what, e);
        }
      };
      const pw = { querier: newPassword(), topics: newPassword() };
      await run(`dropping the old demo database "${l.database}"`, `DROP DATABASE IF EXISTS ${db}`);
      for (const account of [l.querierAccount, l.topicsAccount]) {
        await run(`dropping the old demo account "${account}"`, "DROP USER IF EXISTS ?@'%'", [account]);
      }
      await run(`creating the account "${l.querierAccount}"`, "CREATE USER ?@'%' IDENTIFIED BY ?", [l.querierAccount, pw.querier]);
      await run(`creating the account "${l.topicsAccount}"`, "CREATE USER ?@'%' IDENTIFIED BY ?", [l.topicsAccount, pw.topics]);
      // Binary collation: text compares as PostgreSQL's does (case and trailing spaces count), and stays indexable.
      await run(`creating database "${l.database}"`, `CREATE DATABASE ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      await run('selecting the database', `USE ${db}`);
      await run('creating the marker table', `CREATE TABLE ${quoteIdent(MYSQL_MARKER_TABLE)} (made_at DATETIME(6) NOT NULL, note VARCHAR(255) NOT NULL)`);
      await run('filling the marker table', `INSERT INTO ${quoteIdent(MYSQL_MARKER_TABLE)} VALUES (UTC_TIMESTAMP(6), ?)`, [DEMO_MARKER]);
      const rows: Record<string, number> = {};
      const pg = await seedServer.openSuperuser(l.database);
      try {
        for (const plan of plans.get(l.database)!) {
          await run(`creating table ${plan.table}`, plan.createSql);
          const copied = await copyTable(url, pg, my, plan);
          const [[{ n }]] = (await my.query(`SELECT COUNT(*) AS n FROM ${quoteIdent(plan.table)}`)) as unknown as [{ n: string }[]];
          if (Number(n) !== copied) throw setupError(url, `table ${plan.table} of org ${l.org}: ${copied} rows read on PostgreSQL, ${n} on MySQL`);
          rows[plan.table] = copied;
          const privileges = l.allowWrites ? 'SELECT, INSERT, UPDATE, DELETE' : 'SELECT';
          // Per table, not db.*: the marker table stays unreadable to the demo's accounts.
          await run(`granting ${l.querierAccount} table ${plan.table}`, `GRANT ${privileges} ON ${db}.${quoteIdent(plan.table)} TO ?@'%'`, [l.querierAccount]);
        }
      } finally {
        await pg.close();
      }
      // The topics account: each topic's fields and the fields its access filters read (column grants).
      const columns = new Map<string, Set<string>>();
      for (const t of l.topics) {
        const set = columns.get(t.base.table) ?? new Set<string>();
        for (const f of [...t.fields, ...t.access_filters.map((a) => a.field)]) set.add(f);
        columns.set(t.base.table, set);
      }
      for (const [table, cols] of columns) {
        if (!(table in rows)) {
          logger?.warn({ org: l.org, table }, 'topic base relation not in the seed: not granted to the topics account');
          continue;
        }
        await run(
          `granting ${l.topicsAccount} the topics' fields of ${table}`,
          `GRANT SELECT (${[...cols].map(quoteIdent).join(', ')}) ON ${db}.${quoteIdent(table)} TO ?@'%'`,
          [l.topicsAccount],
        );
      }
      logger?.info(
        {
          org: l.org,
          connection: l.connection,
          database: l.database,
          accounts: [l.querierAccount, l.topicsAccount],
          rows,
          ms: Math.round(performance.now() - t0),
        },
        'demo database loaded',
      );
      out.set(l.database, { ...pw, rows });
    }
  } finally {
    await my?.end().catch(() => {});
    await seedServer.stop();
  }
  return out;
}
