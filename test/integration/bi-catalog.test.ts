// BI-style catalog discovery with the real clients, on the embedded demo warehouse and on the
// local PostgreSQL: pgjdbc's DatabaseMetaData (DBeaver, Tableau, Metabase; extended protocol)
// and SQLAlchemy's inspector (psycopg2; simple protocol). bob (query_topics) discovers exactly
// the topics and their allowed fields, answered by the topic catalog; carol (querier) the
// warehouse. Neither client may be missing: the tests fail naming the package, never skip.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { DEMO_PASSWORD, demoWarehouses, startGatehouse } from '../helpers/gatehouse.ts';

const PG_DATABASE = 'gatehouse_it_bi_catalog';
const JDBC_JAR = '/usr/share/java/postgresql.jar';
const PYTHON = '/usr/bin/python3';
const BOB = 'bob@acme.example';
const CAROL = 'carol@acme.example';

const warehouses = demoWarehouses(PG_DATABASE);

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { timeout: 90_000 }, (err, stdout, stderr) =>
      err ? fail(Object.assign(new Error(`${cmd} failed: ${err.message}\n${stderr}`), { stdout, stderr })) : done(stdout),
    );
  });
}

/** MetadataJdbc.java's key=value lines. */
async function jdbcMetadata(port: number, user: string): Promise<Record<string, string>> {
  if (!existsSync(JDBC_JAR)) {
    throw new Error(
      `the PostgreSQL JDBC driver is missing at ${JDBC_JAR}: apt-get update && apt-get install -y libpostgresql-jdbc-java (bash .ci/run does this)`,
    );
  }
  const out = await run('java', ['-cp', JDBC_JAR, resolve(import.meta.dirname, 'java/MetadataJdbc.java'), String(port), user, DEMO_PASSWORD]);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

interface Inspected {
  tables: string[];
  columns: Record<string, { name: string; type: string }[]>;
  has_employees: boolean;
  regions: Record<string, number>;
  employees: string;
}

async function sqlalchemyInspect(port: number, user: string): Promise<Inspected> {
  try {
    await run(PYTHON, ['-c', 'import sqlalchemy, psycopg2']);
  } catch {
    throw new Error(
      `SQLAlchemy and psycopg2 are missing under ${PYTHON}: apt-get update && apt-get install -y python3-sqlalchemy python3-psycopg2 (bash .ci/run does this)`,
    );
  }
  const out = await run(PYTHON, [resolve(import.meta.dirname, 'python/inspect_topics.py'), String(port), user, DEMO_PASSWORD]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as Inspected;
}

const names = (cols: string) => cols.split(',').map((c) => c.split(':')[0]);

describe.each(warehouses)('BI catalog discovery on %s', (name, rulesFor) => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(await rulesFor());
  });
  afterAll(async () => {
    await gh?.close();
  });

  // First in the file: its first getTables starts the topic catalog.
  it('pgjdbc DatabaseMetaData as bob: the topics and their allowed fields, from the topic catalog', async () => {
    const md = await jdbcMetadata(gh.port, BOB);
    expect(md.tables).toBe('customers,orders');
    expect(md['columns.customers']).toBe('id:INTEGER:int4,name:VARCHAR:text,region:VARCHAR:text,created_at:TIMESTAMP:timestamptz');
    expect(names(md['columns.orders'])).toEqual(['id', 'customer_id', 'region', 'amount', 'status', 'ordered_at']);
    expect(md['columns.orders']).toContain('amount:NUMERIC:numeric');
    expect(md['columns.employees']).toBe('');
    expect(md.schemas.split(',')).toContain('public');
    // The catalog's tables are shapes, without the warehouse's constraints.
    expect(md['pk.orders']).toBe('');
    expect(Object.values(md).join('\n')).not.toMatch(/\b(employees|email|ssn|salary)\b/);
    // Topic queries in the same session still reach the warehouse, governed; with autocommit off too.
    expect(md.regions).toBe('EMEA');
    expect(md.tables_in_transaction).toBe('customers,orders');
    expect(md.orders_in_transaction).toBe('1667');
    console.log(
      `pgjdbc as bob on ${name}: tables ${md.tables}; customers ${md['columns.customers']}; first getTables ${md.first_get_tables_ms} ms (topic catalog start included), next ${md.next_get_tables_ms} ms`,
    );
  }, 120_000);

  it('pgjdbc DatabaseMetaData as carol (querier): the warehouse, employees included', async () => {
    const md = await jdbcMetadata(gh.port, CAROL);
    expect(md.tables).toBe('customers,employees,orders');
    expect(names(md['columns.customers'])).toEqual(['id', 'name', 'email', 'region', 'created_at']);
    expect(md['pk.orders']).toBe('id');
    expect(md.regions).toBe('AMER APAC EMEA');
    console.log(`pgjdbc as carol on ${name}: tables ${md.tables}; employees ${md['columns.employees']}`);
  }, 120_000);

  it('SQLAlchemy inspector as bob: customers and orders, allowed fields, no employees; a GROUP BY sees EMEA only', async () => {
    const r = await sqlalchemyInspect(gh.port, BOB);
    expect(r.tables).toEqual(['customers', 'orders']);
    expect(r.columns.customers).toEqual([
      { name: 'id', type: 'INTEGER' },
      { name: 'name', type: 'TEXT' },
      { name: 'region', type: 'TEXT' },
      { name: 'created_at', type: 'TIMESTAMP' },
    ]);
    expect(r.columns.orders.map((c) => c.name)).toEqual(['id', 'customer_id', 'region', 'amount', 'status', 'ordered_at']);
    expect(r.has_employees).toBe(false);
    expect(Object.keys(r.regions)).toEqual(['EMEA']);
    expect(r.regions.EMEA).toBe(1667);
    expect(r.employees).toBe('42501');
    console.log(
      `SQLAlchemy as bob on ${name}: tables ${r.tables.join(',')}; customers ${r.columns.customers.map((c) => `${c.name}:${c.type}`).join(',')}; regions ${JSON.stringify(r.regions)}`,
    );
  }, 120_000);

  it('SQLAlchemy inspector as carol (querier): employees is there', async () => {
    const r = await sqlalchemyInspect(gh.port, CAROL);
    expect(r.tables).toEqual(['customers', 'employees', 'orders']);
    expect(r.has_employees).toBe(true);
    expect(Object.keys(r.regions).sort()).toEqual(['AMER', 'APAC', 'EMEA']);
  }, 120_000);
});
