// Gatehouse under test: the real server on port 0 and real clients (psql, pg).
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { createAcmeWarehouse, requirePostgres } from './servers.ts';

export const DEMO_RULES = resolve(import.meta.dirname, '../../rules');
export const DEMO_PASSWORD = 'gatehouse-demo';

export async function startGatehouse(rulesDir = DEMO_RULES): Promise<RunningGatehouse> {
  return serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, logger: pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'silent' }) });
}

/** The demo rules copied to a temp dir, with acme's warehouse replaced by the given connection YAML. */
export function demoRulesWith(acmeWarehouseYaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rules-'));
  cpSync(DEMO_RULES, dir, { recursive: true });
  writeFileSync(join(dir, 'acme/connections/warehouse.yaml'), acmeWarehouseYaml);
  return dir;
}

/** acme's `warehouse` connection on a database of the local PostgreSQL: queriers through gatehouse_reader, query_topics through gatehouse_topics. */
export function postgresWarehouseYaml(database: string): string {
  return `kind: postgres
host: 127.0.0.1
port: 5432
database: ${database}
user: gatehouse_reader
topics_user: gatehouse_topics
permissions:
  default: no_access
  groups:
    sales-emea: query_topics
    sales-leads: query_topics
    analysts: querier
`;
}

/** The demo rules with acme's warehouse on the local PostgreSQL `database`, filled with acme's data first. */
export async function demoRulesOnPostgres(database: string): Promise<string> {
  await requirePostgres();
  createAcmeWarehouse(database, resolve(DEMO_RULES, 'acme/data/acme.sql'));
  return demoRulesWith(postgresWarehouseYaml(database));
}

/** The two warehouses the end-to-end suites run on (for describe.each): the embedded demo, and acme's data on PostgreSQL. */
export function demoWarehouses(database: string): [string, () => Promise<string>][] {
  return [
    ['embedded (PostgreSQL server)', async () => DEMO_RULES],
    ['postgres (local server, least-privilege account)', () => demoRulesOnPostgres(database)],
  ];
}

export interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Real psql through Gatehouse: -A -t output, ON_ERROR_STOP, no psqlrc. */
export function psql(gh: { port: number }, user: string, sql: string, opts: { password?: string; database?: string } = {}): Promise<PsqlResult> {
  return new Promise((done) => {
    execFile(
      'psql',
      [
        '-X',
        '-q',
        '-A',
        '-t',
        '-v',
        'ON_ERROR_STOP=1',
        `host=127.0.0.1 port=${gh.port} dbname=${opts.database ?? 'warehouse'} user=${user} connect_timeout=10`,
        '-c',
        sql,
      ],
      { env: { ...process.env, PGPASSWORD: opts.password ?? DEMO_PASSWORD, PGSSLMODE: 'prefer' }, timeout: 30_000 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export async function pgClient(gh: { port: number }, user: string, opts: { password?: string; database?: string } = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user, password: opts.password ?? DEMO_PASSWORD, database: opts.database ?? 'warehouse' });
  await c.connect();
  return c;
}

/** Runs one statement as a user with the pg driver; returns rows or the error's SQLSTATE and message. */
export async function asUser(gh: { port: number }, user: string, sql: string): Promise<{ rows?: Record<string, unknown>[]; code?: string; message?: string }> {
  let c: pg.Client | undefined;
  try {
    c = await pgClient(gh, user);
    const r = await c.query(sql);
    return { rows: Array.isArray(r) ? r.at(-1)?.rows : r.rows };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: err.code, message: err.message };
  } finally {
    await c?.end().catch(() => {});
  }
}
