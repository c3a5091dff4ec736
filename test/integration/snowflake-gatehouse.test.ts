// End to end on a snowflake connection: Gatehouse (in process, free ports) in front of the
// project's fake Snowflake (test/helpers/snowflake-server.ts: the real snowflake-sdk's REST
// protocol, SQL run on the local PostgreSQL), acme's `warehouse` connection of kind snowflake
// with sealed credentials (the querier's password, the topics account's key pair), real clients
// (psql, node-postgres) as bob (query_topics: the topic rewrite written by the Snowflake emitter)
// and carol (querier: raw Snowflake SQL classified read-only and passed through unchanged).
// What the fake cannot prove (Snowflake's own optimizer, its privileges, its identifier folding
// of raw SQL) is listed in README, "Warehouses".
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { sealSecret } from '../../src/secrets/envelope.ts';
import { memoryKeyProvider } from '../../src/secrets/keys.ts';
import { DEMO_RULES, pgClient, psql } from '../helpers/gatehouse.ts';
import { type FakeSnowflake, SNOWFLAKE_DOMAINS_SQL, startFakeSnowflake } from '../helpers/snowflake-server.ts';
import { PG, requirePostgres } from '../helpers/servers.ts';

const DB = 'gatehouse_snowflake_e2e';
const READER_PW = `sf-${randomBytes(9).toString('base64url')}`;
const topicsKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const TOPICS_KEY = topicsKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const MASTER = randomBytes(32);
const keys = memoryKeyProvider('test', [['k1', MASTER]]);
const env = { GATEHOUSE_MASTER_KEYS: `k1:${MASTER.toString('base64')}` };

let fake: FakeSnowflake;
const usage = [
  { privilege: 'USAGE', granted_on: 'WAREHOUSE', name: 'WH' },
  { privilege: 'USAGE', granted_on: 'DATABASE', name: 'GH' },
  { privilege: 'USAGE', granted_on: 'SCHEMA', name: 'GH.PUBLIC' },
];
let gh: RunningGatehouse;
let rulesDir = '';
let stateDir = '';
const logs: string[] = [];

function connectionYaml(name: string, password: string, topicsKey?: string, roles = { querier: 'READER', topics: 'TOPICS' }): string {
  return `# ${name}
kind: snowflake
account: gh-test
user: GH_READER
role: ${roles.querier}
warehouse: WH
database: GH
schema: PUBLIC
password: ${password}
${topicsKey ? `topics_user: GH_TOPICS\ntopics_role: ${roles.topics}\ntopics_private_key: ${topicsKey}\n` : ''}access_url: ${fake.url}
permissions:
  default: no_access
  groups:
${topicsKey ? '    sales-emea: query_topics\n    sales-leads: query_topics\n' : ''}    analysts: querier
`;
}

beforeAll(async () => {
  await requirePostgres();
  const admin = new pg.Client(PG);
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  const db = new pg.Client({ ...PG, database: DB });
  await db.connect();
  await db.query(SNOWFLAKE_DOMAINS_SQL);
  // Quoted upper-case names: what an unquoted CREATE TABLE makes on Snowflake.
  await db.query(`CREATE TABLE "PUBLIC"."ORDERS" ("ID" int, "CUSTOMER_ID" int, "REGION" text, "AMOUNT" numeric(12,2), "STATUS" text, "ORDERED_AT" timestamp);
    INSERT INTO "PUBLIC"."ORDERS" SELECT g, 1 + g % 30, (ARRAY['EMEA','APAC','AMER'])[1 + g % 3], g * 10.5, CASE WHEN g % 4 = 0 THEN 'open' ELSE 'paid' END, '2024-03-01 12:00'::timestamp + g * interval '1 hour' FROM generate_series(1, 90) g;
    CREATE TABLE "PUBLIC"."CUSTOMERS" ("ID" int, "NAME" text, "EMAIL" text, "REGION" text, "CREATED_AT" timestamp);
    INSERT INTO "PUBLIC"."CUSTOMERS" SELECT g, 'Customer ' || g, 'c' || g || '@example.com', (ARRAY['EMEA','APAC','AMER'])[1 + g % 3], '2024-01-01'::timestamp + g * interval '1 day' FROM generate_series(1, 30) g;
    CREATE TABLE "PUBLIC"."EMPLOYEES" ("ID" int, "NAME" text, "SALARY" numeric(10,2));
    INSERT INTO "PUBLIC"."EMPLOYEES" SELECT g, 'Employee ' || g, 1000 + g * 100.25 FROM generate_series(1, 10) g;`);
  await db.end();
  fake = await startFakeSnowflake({
    pg: { ...PG, database: DB },
    users: {
      gh_reader: { password: READER_PW },
      gh_topics: { publicKeyPem: topicsKeys.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
    },
    // What each role holds (the fake reports them to SHOW GRANTS; it does not enforce them).
    grants: {
      READER: [...usage, ...['ORDERS', 'CUSTOMERS', 'EMPLOYEES'].map((t) => ({ privilege: 'SELECT', granted_on: 'TABLE', name: `GH.PUBLIC.${t}` }))],
      TOPICS: [...usage, ...['ORDERS', 'CUSTOMERS'].map((t) => ({ privilege: 'SELECT', granted_on: 'TABLE', name: `GH.PUBLIC.${t}` }))],
      POWER: [
        ...usage,
        { privilege: 'INSERT', granted_on: 'TABLE', name: 'GH.PUBLIC.EMPLOYEES' },
        { privilege: 'USAGE', granted_on: 'ROLE', name: 'SYSADMIN' },
      ],
      SYSADMIN: [{ privilege: 'CREATE DATABASE', granted_on: 'ACCOUNT', name: 'GH_TEST' }],
      WIDE: [
        ...usage,
        { privilege: 'SELECT', granted_on: 'TABLE', name: 'GH.PUBLIC.ORDERS' },
        { privilege: 'SELECT', granted_on: 'TABLE', name: 'GH.PUBLIC.EMPLOYEES' },
      ],
    },
  });

  const bind = (connection: string, field: string) => ({ org: 'acme', connection, field });
  const password = sealSecret(READER_PW, bind('warehouse', 'password'), keys);
  const topicsKey = sealSecret(TOPICS_KEY, bind('warehouse', 'topics_private_key'), keys);
  rulesDir = mkdtempSync(join(tmpdir(), 'gatehouse-snowflake-rules-'));
  cpSync(DEMO_RULES, rulesDir, { recursive: true });
  rmSync(join(rulesDir, 'globex'), { recursive: true, force: true });
  writeFileSync(join(rulesDir, 'acme/connections/warehouse.yaml'), connectionYaml('warehouse', password, topicsKey));
  // warehouse's ciphertext copied to another connection: bound to "warehouse", it does not open here.
  writeFileSync(join(rulesDir, 'acme/connections/moved.yaml'), connectionYaml('moved', password));
  stateDir = mkdtempSync(join(tmpdir(), 'gatehouse-snowflake-state-'));
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, logger, auditPath: join(stateDir, 'audit.jsonl'), stateDir, env });
}, 120_000);

afterAll(async () => {
  await gh?.close();
  await fake?.close();
  for (const d of [rulesDir, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
});

/** The expected rows of a topic query, read from PostgreSQL directly. */
async function direct(sql: string): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ ...PG, database: DB });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('bob (query_topics) on a snowflake connection', () => {
  it('gets the topic rows of his region only, with PostgreSQL column names, through node-postgres', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      const r = await c.query('SELECT id, region, amount FROM orders WHERE amount > 100 ORDER BY id');
      expect(r.fields.map((f) => f.name)).toEqual(['id', 'region', 'amount']);
      const expected = await direct(
        `SELECT "ID" AS id, "REGION" AS region, "AMOUNT"::text AS amount FROM "PUBLIC"."ORDERS" WHERE "REGION" = 'EMEA' AND "AMOUNT" > 100 ORDER BY "ID"`,
      );
      expect(expected.length).toBeGreaterThan(5);
      expect(r.rows.map((row) => ({ id: Number(row.id), region: row.region, amount: String(row.amount) }))).toEqual(
        expected.map((e) => ({ ...e, id: Number(e.id) })),
      );
    } finally {
      await c.end();
    }
    // What Snowflake got: the Snowflake emitter's text (quoted upper-case names, the row filter inside), tagged with bob.
    const sent = fake.queries.filter((q) => q.queryTag === 'gatehouse:bob@acme.example' && q.sqlText.includes('"ORDERS"'));
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.at(-1)!.sqlText).toMatch(/FROM \(SELECT .* FROM "PUBLIC"\."ORDERS" WHERE \("REGION" = 'EMEA'\)\) AS "ORDERS"/);
    expect(sent.at(-1)!.user.toLowerCase()).toBe('gh_topics');
  });

  it('counts through psql, and a field outside the topic is refused by policy (42501) before Snowflake sees it', async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM customers');
    expect(r.stderr).toBe('');
    const [{ n }] = await direct(`SELECT count(*)::int AS n FROM "PUBLIC"."CUSTOMERS" WHERE "REGION" = 'EMEA'`);
    expect(Number(r.stdout.trim())).toBe(n);
    const before = fake.queries.length;
    const refused = await psql(gh, 'bob@acme.example', 'SELECT email FROM customers');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/column "email" is not a field of topic customers/);
    expect(fake.queries.slice(before).some((q) => /EMAIL/.test(q.sqlText))).toBe(false);
  });

  it('binds node-postgres parameters ($1 written as ? for Snowflake), and a hidden row stays hidden whatever the parameter', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      for (let i = 0; i < 2; i++) {
        const r = await c.query({ name: 'by_id', text: 'SELECT id, status FROM orders WHERE id = $1' }, [3]);
        expect(r.fields.map((f) => f.name)).toEqual(['id', 'status']);
        expect(r.rows.map((row) => Number(row.id))).toEqual([3]);
      }
      // Order 4 is APAC: not bob's.
      expect((await c.query('SELECT id FROM orders WHERE id = $1', [4])).rows).toEqual([]);
    } finally {
      await c.end();
    }
    const sent = fake.queries.filter((q) => q.queryTag === 'gatehouse:bob@acme.example' && q.bindings.length === 1);
    expect(sent.map((q) => q.bindings[0])).toEqual(expect.arrayContaining(['3', '4']));
    expect(sent.every((q) => /"ID" = \?/.test(q.sqlText))).toBe(true);
  });

  it("psql's \\d lists the topic with its fields and the types read from Snowflake (the topic catalog)", async () => {
    const r = await psql(gh, 'bob@acme.example', '\\d orders');
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('|')[0])).toEqual(['id', 'customer_id', 'region', 'amount', 'status', 'ordered_at']);
    expect(lines.find((l) => l.startsWith('amount|'))).toMatch(/^amount\|numeric/);
  });

  it('a construct the Snowflake emitter cannot write with the same meaning is refused with 0A000', async () => {
    const c = await pgClient(gh, 'bob@acme.example');
    try {
      const err = await c.query('SELECT id / 2 FROM orders').catch((e) => e);
      expect(err.code).toBe('0A000');
      expect(err.message).toMatch(/Snowflake/);
    } finally {
      await c.end();
    }
  });
});

describe('carol (querier) on a snowflake connection', () => {
  it('runs raw Snowflake SQL, passed through unchanged and tagged with her', async () => {
    const sql = 'SELECT "ID", "NAME", "SALARY" FROM "PUBLIC"."EMPLOYEES" WHERE "ID" <= 3 ORDER BY "ID"';
    const r = await psql(gh, 'carol@acme.example', sql);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1|Employee 1|1100.25', '2|Employee 2|1200.50', '3|Employee 3|1300.75']);
    const sent = fake.queries.filter((q) => q.sqlText === sql);
    expect(sent.length).toBe(1);
    expect(sent[0].queryTag).toBe('gatehouse:carol@acme.example');
    expect(sent[0].user.toLowerCase()).toBe('gh_reader');
  });

  it("binds node-postgres parameters to Snowflake's own numbered binds (:1) in raw SQL, and $n written as :n", async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const r = await c.query('SELECT "NAME" AS "name" FROM "PUBLIC"."EMPLOYEES" WHERE "ID" = :1 AND "NAME" <> \':2\'', [2]);
      expect(r.rows).toEqual([{ name: 'Employee 2' }]);
      // PostgreSQL's $n (what pgjdbc and node-postgres write) is written as Snowflake's :n.
      const p = await c.query('SELECT "NAME" AS "name" FROM "PUBLIC"."EMPLOYEES" WHERE "ID" = $1 OR "ID" = $2 ORDER BY "ID"', [3, 4]);
      expect(p.rows).toEqual([{ name: 'Employee 3' }, { name: 'Employee 4' }]);
      expect(fake.queries.some((q) => q.sqlText === 'SELECT "NAME" AS "name" FROM "PUBLIC"."EMPLOYEES" WHERE "ID" = :1 OR "ID" = :2 ORDER BY "ID"')).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('writes are refused by policy (42501) and never reach Snowflake', async () => {
    const before = fake.queries.length;
    for (const sql of ['DELETE FROM "PUBLIC"."EMPLOYEES"', 'INSERT INTO "PUBLIC"."EMPLOYEES" VALUES (99, \'x\', 1)', 'DROP TABLE "PUBLIC"."EMPLOYEES"']) {
      const c = await pgClient(gh, 'carol@acme.example');
      try {
        const err = await c.query(sql).catch((e) => e);
        expect(err.code, sql).toBe('42501');
      } finally {
        await c.end();
      }
    }
    expect(fake.queries.slice(before).some((q) => /DELETE|INSERT|DROP/i.test(q.sqlText))).toBe(false);
    expect(await direct('SELECT count(*)::int AS n FROM "PUBLIC"."EMPLOYEES"')).toEqual([{ n: 10 }]);
  });

  it('text Snowflake lexes differently from the classifier is refused and never reaches Snowflake (comments do not nest there)', async () => {
    const before = fake.queries.length;
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const cases: Array<[string, unknown[], RegExp]> = [
        ['SELECT 1 AS a /* /* */ , CURRENT_USER() AS u -- */', [], /nested comments are not allowed on Snowflake/],
        ['SELECT 1 AS a /* /* */ , CURRENT_USER() AS u /* */ */', [], /nested comments are not allowed on Snowflake/],
        ['SELECT $1 AS a /* /* */ , CURRENT_USER() AS u -- */', ['x'], /nested comments are not allowed on Snowflake/],
        ['SELECT 1 AS a # , CURRENT_USER() AS u', [], /`#` outside a string is not a comment mark to Snowflake/],
        ["SELECT 'a\\' -- ', CURRENT_USER() AS u", [], /a backslash before a quote/],
        ['SELECT $$ -- $$ AS a, CURRENT_USER() AS u', [], /\$\$ strings are not supported/],
      ];
      for (const [sql, params, message] of cases) {
        const err = await c.query(sql, params).catch((e) => e);
        expect(err.code, sql).toMatch(/^(42501|0A000)$/);
        expect(err.message, sql).toMatch(message);
      }
      // A comment every reader ends at the same place still runs.
      expect((await c.query('SELECT 1 AS "a" /* a comment */ -- another')).rows.map((r) => Number(r.a))).toEqual([1]);
    } finally {
      await c.end();
    }
    expect(fake.queries.slice(before).filter((q) => /CURRENT_USER/i.test(q.sqlText))).toEqual([]);
  });

  it('a Snowflake error reaches the client with a SQLSTATE, and the session goes on', async () => {
    const c = await pgClient(gh, 'carol@acme.example');
    try {
      const err = await c.query('SELECT "NOPE" FROM "PUBLIC"."EMPLOYEES"').catch((e) => e);
      expect(err.code).toMatch(/^42/);
      expect((await c.query('SELECT COUNT(*) AS "n" FROM "PUBLIC"."EMPLOYEES"')).rows.map((r) => Number(r.n))).toEqual([10]);
    } finally {
      await c.end();
    }
  });
});

describe('stored credentials on a snowflake connection', () => {
  it('a ciphertext moved to another connection refuses that connection alone (08001), naming it and not the secret', async () => {
    const r = await psql(gh, 'carol@acme.example', 'SELECT 1', { database: 'moved' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/connection "moved" of org acme is refused: its stored password cannot be decrypted/);
    const ok = await psql(gh, 'carol@acme.example', 'SELECT COUNT(*) FROM "PUBLIC"."EMPLOYEES"');
    expect(ok.stdout.trim()).toBe('10');
    // Neither secret was ever written anywhere Gatehouse writes.
    const all = logs.join('\n') + r.stderr;
    expect(all).not.toContain(READER_PW);
    expect(all).not.toContain(TOPICS_KEY.split('\n')[1]);
  });
});

describe('least privilege on a snowflake connection, checked at load', () => {
  async function startWith(roles: { querier: string; topics: string }): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-snowflake-rules-'));
    try {
      cpSync(DEMO_RULES, dir, { recursive: true });
      rmSync(join(dir, 'globex'), { recursive: true, force: true });
      const bind = (field: string) => ({ org: 'acme', connection: 'warehouse', field });
      writeFileSync(
        join(dir, 'acme/connections/warehouse.yaml'),
        connectionYaml('warehouse', sealSecret(READER_PW, bind('password'), keys), sealSecret(TOPICS_KEY, bind('topics_private_key'), keys), roles),
      );
      const other = await serve({ rulesDir: dir, host: '127.0.0.1', port: 0, adminPort: 0, logger: pino({ level: 'silent' }), stateDir, env });
      await other.close();
      return 'started';
    } catch (e) {
      return (e as Error).message;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('the roles of the running connection hold only what their levels need (it started above); the grants were read', () => {
    expect(fake.queries.filter((q) => /^SHOW GRANTS TO ROLE/.test(q.sqlText)).map((q) => q.sqlText)).toEqual(
      expect.arrayContaining(['SHOW GRANTS TO ROLE "READER"', 'SHOW GRANTS TO ROLE "TOPICS"']),
    );
  });

  it('a querier role that can write, or holds an administering role, refuses the start with every reason', async () => {
    const message = await startWith({ querier: 'POWER', topics: 'TOPICS' });
    expect(message).toMatch(/warehouse account "GH_READER" \(role POWER\) of connection "warehouse" holds INSERT on table GH\.PUBLIC\.EMPLOYEES/);
    expect(message).toMatch(/has the role SYSADMIN, which administers the account/);
    expect(message).toMatch(/holds CREATE DATABASE on account GH_TEST/);
  });

  it("a topics role that reads more than the topics' tables refuses the start", async () => {
    const message = await startWith({ querier: 'READER', topics: 'WIDE' });
    expect(message).toMatch(/topics account "GH_TOPICS" \(role WIDE\) of connection "warehouse" holds SELECT on table GH\.PUBLIC\.EMPLOYEES/);
  });
});
