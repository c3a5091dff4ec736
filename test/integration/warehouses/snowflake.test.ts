// The snowflake connector and the real snowflake-sdk against the project's fake Snowflake
// (test/helpers/snowflake-server.ts) on the local PostgreSQL. No real Snowflake is reachable from
// here: what these tests prove is the SDK's protocol as the fake serves it, and the connector's
// mapping of what the SDK hands back (README: "Snowflake: what is tested").
import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors.ts';
import { connectSnowflake, loadSnowflakeSdk, type RowHandlers, type SnowflakeConnection } from '../../../src/warehouses/snowflake.ts';
import { type FakeSnowflake, SNOWFLAKE_DOMAINS_SQL, startFakeSnowflake } from '../../helpers/snowflake-server.ts';
import { PG, requirePostgres } from '../../helpers/servers.ts';

const DB = 'gatehouse_snowflake_conn';
const PASSWORD = 'sf-secret-Pa55';
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_KEY = keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const PUBLIC_KEY = keys.publicKey.export({ format: 'pem', type: 'spki' }).toString();
const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

let fake: FakeSnowflake;

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
  await db.query(`CREATE TABLE "PUBLIC"."TYPES" ("ID" int, "BIG" bigint, "AMOUNT" numeric(12,2), "WIDE" numeric(38,0), "RATIO" float8,
    "NAME" text, "CODE" varchar(8), "OK" boolean, "D" date, "T" time, "TS" timestamp, "TSL" timestamptz, "TSZ" "PUBLIC".timestamp_tz,
    "DOC" jsonb, "RAW" bytea, "U" uuid, "IV" interval)`);
  await db.query(`INSERT INTO "PUBLIC"."TYPES" VALUES
    (1, 9007199254740993, 12.50, 12345678901234567890123456789012345678, 0.25, 'plain', 'ab', true, '2024-02-29', '12:34:56.5',
     '2024-02-29 12:00:00.123456', '2024-02-29 12:00:00+00', '2024-02-29 12:00:00+00', '{"k": [1, 2]}', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day'),
    (2, -1, -0.01, 0, 1e300, 'it''s \\ "q" ünï ✓', '', false, '1969-12-31', '00:00:00', '1969-12-31 23:59:59.5', NULL, NULL, 'null', '', NULL, NULL),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
  await db.query(`CREATE TABLE "PUBLIC"."BIG" AS SELECT g AS "N", md5(g::text) AS "H" FROM generate_series(1, 60000) g`);
  await db.end();
  fake = await startFakeSnowflake({
    pg: { ...PG, database: DB },
    users: { gatehouse_svc: { password: PASSWORD }, keyed: { publicKeyPem: PUBLIC_KEY } },
    syncWaitMs: 400,
    inlineRows: 1000,
    chunkRows: 4000,
  });
});

afterAll(async () => {
  await fake?.close();
});

const creds = (extra: Record<string, unknown> = {}) => ({
  account: 'gh-test',
  user: 'gatehouse_svc',
  password: PASSWORD,
  accessUrl: fake.url,
  database: 'GH',
  schema: 'PUBLIC',
  warehouse: 'WH',
  role: 'READER',
  ...extra,
});

/** Collects everything a statement produced. */
function collect(pauseEvery = 0, pauseMs = 0) {
  const out = { fields: [] as { name: string; typeOid: number; typeModifier: number }[], rows: [] as (string | null)[][] };
  const handlers: RowHandlers = {
    onColumns: (f) => {
      out.fields = f;
    },
    onRow: (v) => {
      out.rows.push(v);
      return !(pauseEvery && out.rows.length % pauseEvery === 0);
    },
    resume: () => new Promise((r) => setTimeout(r, pauseMs)),
  };
  return { out, handlers };
}

/** The raw SDK, for tests of the fake server itself. */
async function sdkConnect(extra: Record<string, unknown> = {}) {
  const sdk = await loadSnowflakeSdk();
  const conn = sdk.createConnection({ account: 'gh-test', username: 'gatehouse_svc', password: PASSWORD, accessUrl: fake.url, schema: 'PUBLIC', ...extra });
  await new Promise<void>((resolve, reject) => conn.connect((err: unknown) => (err ? reject(err) : resolve())));
  return conn;
}
function sdkRun(conn: any, sqlText: string, binds: unknown[] = []): Promise<{ err?: any; rows?: unknown[][] }> {
  return new Promise((resolve) => {
    conn.execute({
      sqlText,
      binds,
      rowMode: 'array',
      fetchAsString: ['Number'],
      complete: (err: unknown, _s: unknown, rows: unknown[][]) => resolve({ err, rows }),
    });
  });
}

describe('the fake Snowflake, driven by the real snowflake-sdk', () => {
  it('signs in with a password and refuses a wrong one with 390100', async () => {
    const conn = await sdkConnect();
    expect(conn.isUp()).toBe(true);
    await new Promise((r) => conn.destroy(r));
    const sdk = await loadSnowflakeSdk();
    const bad = sdk.createConnection({ account: 'gh-test', username: 'gatehouse_svc', password: 'wrong', accessUrl: fake.url });
    const err = await new Promise<{ code?: string } | undefined>((resolve) => bad.connect((e: { code?: string } | undefined) => resolve(e)));
    expect(err?.code).toBe('390100');
    expect(fake.logins.slice(-2).map((l) => l.ok)).toEqual([true, false]);
  });

  it('runs a query with ? and :n binds as PostgreSQL $n parameters', async () => {
    const conn = await sdkConnect();
    const a = await sdkRun(conn, `SELECT "ID", '?' AS q FROM "PUBLIC"."TYPES" WHERE "ID" >= ? AND "NAME" <> ? ORDER BY "ID"`, [1, 'x']);
    expect(a.err).toBeFalsy();
    expect(a.rows).toEqual([
      ['1', '?'],
      ['2', '?'],
    ]);
    const b = await sdkRun(conn, `SELECT "ID" FROM "PUBLIC"."TYPES" WHERE "ID" = :2 OR "ID" = :1 ORDER BY 1`, [1, 2]);
    expect(b.rows).toEqual([['1'], ['2']]);
    expect(fake.queries.at(-2)?.pgSql).toBe(`SELECT "ID", '?' AS q FROM "PUBLIC"."TYPES" WHERE "ID" >= $1 AND "NAME" <> $2 ORDER BY "ID"`);
    await new Promise((r) => conn.destroy(r));
  });

  it('serves 12,000 rows as an inline part and result chunks, fetched in order', async () => {
    const conn = await sdkConnect();
    const before = fake.chunkFetches.length;
    const r = await sdkRun(conn, `SELECT "N" FROM "PUBLIC"."BIG" WHERE "N" <= 12000 ORDER BY "N"`);
    expect(r.err).toBeFalsy();
    expect(r.rows).toHaveLength(12000);
    expect(r.rows?.map((x) => Number(x[0]))).toEqual(Array.from({ length: 12000 }, (_, i) => i + 1));
    // 1,000 inline, then 4,000 per chunk.
    expect(fake.chunkFetches.slice(before).map((c) => c.index)).toEqual([0, 1, 2]);
    await new Promise((r) => conn.destroy(r));
  });

  it('long-polls a query that outlasts the synchronous wait (333333, then GET of its result)', async () => {
    const conn = await sdkConnect();
    const polls = fake.pendingAnswers;
    const t0 = Date.now();
    const r = await sdkRun(conn, `SELECT 42 AS "X" FROM pg_sleep(1.1)`);
    expect(r.err).toBeFalsy();
    expect(r.rows).toEqual([['42']]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(fake.pendingAnswers - polls).toBeGreaterThanOrEqual(2);
    await new Promise((r) => conn.destroy(r));
  });

  it('cancels a running query (abort-request -> pg_cancel_backend) with 000604 / 57014', async () => {
    const conn = await sdkConnect();
    const t0 = Date.now();
    const done = new Promise<{ code?: string; sqlState?: string }>((resolve) => {
      const st = conn.execute({ sqlText: 'SELECT pg_sleep(30)', complete: (err: { code?: string; sqlState?: string }) => resolve(err) });
      setTimeout(() => st.cancel(() => undefined), 300);
    });
    const err = await done;
    expect(err?.code).toBe('000604');
    expect(err?.sqlState).toBe('57014');
    expect(Date.now() - t0).toBeLessThan(5000);
    await new Promise((r) => conn.destroy(r));
  });

  it('renews an expired session token with the master token and replays the query', async () => {
    const conn = await sdkConnect();
    const renewals = fake.renewals;
    fake.expireSessionTokens();
    const r = await sdkRun(conn, 'SELECT 7 AS "S"');
    expect(r.err).toBeFalsy();
    expect(r.rows).toEqual([['7']]);
    expect(fake.renewals).toBe(renewals + 1);
    await new Promise((r) => conn.destroy(r));
  });
});

describe('snowflake connector', () => {
  let conn: SnowflakeConnection;
  beforeAll(async () => {
    conn = await connectSnowflake(creds(), { queryTag: 'gatehouse:session-owner@acme.test', connectionName: 'sf' });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('maps Snowflake types to PostgreSQL OIDs and text, keeping every digit; unmappable types arrive as text', async () => {
    const { out, handlers } = collect();
    const r = await conn.execute('SELECT * FROM "PUBLIC"."TYPES" ORDER BY "ID"', [], handlers);
    expect(r).toEqual({ rowCount: 3, command: 'SELECT' });
    expect(out.fields.map((f) => [f.name, f.typeOid, f.typeModifier])).toEqual([
      // Snowflake integers are NUMBER(38,0): numeric, as the fake reports int columns.
      ['ID', 1700, (38 << 16) + 4],
      ['BIG', 1700, (38 << 16) + 4],
      ['AMOUNT', 1700, ((12 << 16) | 2) + 4],
      ['WIDE', 1700, (38 << 16) + 4],
      ['RATIO', 701, -1],
      ['NAME', 25, -1],
      ['CODE', 25, -1],
      ['OK', 16, -1],
      ['D', 1082, -1],
      ['T', 1083, -1],
      ['TS', 1114, -1],
      ['TSL', 1184, -1],
      ['TSZ', 1184, -1],
      ['DOC', 3802, -1],
      ['RAW', 17, -1],
      ['U', 25, -1],
      ['IV', 25, -1],
    ]);
    expect(out.rows[0]).toEqual([
      '1',
      '9007199254740993',
      '12.50',
      '12345678901234567890123456789012345678',
      '0.25',
      'plain',
      'ab',
      't',
      '2024-02-29',
      '12:34:56.500000',
      '2024-02-29 12:00:00.123456',
      '2024-02-29 12:00:00+00',
      '2024-02-29 12:00:00+00',
      '{"k": [1, 2]}',
      '\\x00ff',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '1 day',
    ]);
    expect(out.rows[1]).toEqual([
      '2',
      '-1',
      '-0.01',
      '0',
      '1e+300',
      'it\'s \\ "q" ünï ✓',
      '',
      'f',
      '1969-12-31',
      '00:00:00.000000',
      '1969-12-31 23:59:59.5',
      null,
      null,
      'null',
      '\\x',
      null,
      null,
    ]);
    expect(out.rows[2]).toEqual(['3', ...Array(16).fill(null)]);
  });

  it('reports the names PostgreSQL would give when the dialect says so', async () => {
    const { out, handlers } = collect();
    await conn.execute('SELECT "ID", count(*) FROM "PUBLIC"."TYPES" GROUP BY "ID" ORDER BY "ID" LIMIT 1', [], handlers, { columnNames: ['id', 'count'] });
    expect(out.fields.map((f) => f.name)).toEqual(['id', 'count']);
    expect(out.rows).toEqual([['1', '1']]);
  });

  it('binds parameters as text', async () => {
    const { out, handlers } = collect();
    await conn.execute('SELECT "NAME" FROM "PUBLIC"."TYPES" WHERE "ID" = ? OR "NAME" = ?', ['1', null], handlers);
    expect(out.rows).toEqual([['plain']]);
  });

  it('maps warehouse errors to SQLSTATEs with the warehouse message', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['SELECT * FROM "PUBLIC"."MISSING"', '42P01', /MISSING/],
      ['SELECT "NOPE" FROM "PUBLIC"."TYPES"', '42703', /NOPE/],
      ['SELEKT 1', '42601', /syntax/],
      ['SELECT 1/0', '22012', /division by zero/],
      [`SELECT 'x'::int`, '22P02', /invalid input/],
    ];
    for (const [sql, state, msg] of cases) {
      const r = await conn.execute(sql, [], collect().handlers);
      expect(r, sql).toMatchObject({ error: { sqlstate: state } });
      if ('error' in r) expect(r.error.message).toMatch(msg);
    }
    // The session goes on after errors.
    const { out, handlers } = collect();
    await conn.execute('SELECT 1 AS "ONE"', [], handlers);
    expect(out.rows).toEqual([['1']]);
  });

  it('tags every statement with QUERY_TAG: the statement own tag, else the session tag', async () => {
    await conn.execute('SELECT 1 AS "A"', [], collect().handlers, { queryTag: 'gatehouse:ana@acme.test' });
    await conn.execute('SELECT 2 AS "B"', [], collect().handlers, { queryTag: 'gatehouse:bob@acme.test' });
    await conn.execute('SELECT 3 AS "C"', [], collect().handlers);
    const tags = fake.queries.slice(-3).map((q) => [q.sqlText, q.queryTag]);
    expect(tags).toEqual([
      ['SELECT 1 AS "A"', 'gatehouse:ana@acme.test'],
      ['SELECT 2 AS "B"', 'gatehouse:bob@acme.test'],
      ['SELECT 3 AS "C"', 'gatehouse:session-owner@acme.test'],
    ]);
  });

  it('streams at the reader pace: while the reader pauses, no more chunks are fetched', async () => {
    const before = fake.chunkFetches.length;
    let fetchedDuringPause = -1;
    let rows = 0;
    let last = 0;
    let inOrder = true;
    const handlers: RowHandlers = {
      onColumns: () => undefined,
      onRow: (v) => {
        rows++;
        const n = Number(v[0]);
        if (n !== last + 1) inOrder = false;
        last = n;
        return rows !== 2000;
      },
      resume: async () => {
        const at = fake.chunkFetches.length;
        await new Promise((r) => setTimeout(r, 700));
        fetchedDuringPause = fake.chunkFetches.length - at;
        // Never more than the SDK's prefetch (current chunk + 2) ahead of the reader.
        expect(fake.chunkFetches.length - before).toBeLessThanOrEqual(3);
      },
    };
    const heapBefore = process.memoryUsage().heapUsed;
    const r = await conn.execute('SELECT "N", "H" FROM "PUBLIC"."BIG" ORDER BY "N"', [], handlers);
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    expect(r).toEqual({ rowCount: 60000, command: 'SELECT' });
    expect(inOrder).toBe(true);
    expect(fetchedDuringPause).toBe(0);
    expect(fake.chunkFetches.length - before).toBe(15); // 59,000 rows after the inline 1,000, 4,000 per chunk
    // The fake holds the whole result (it materialises it); the connector only what it forwards.
    expect(heapGrowth).toBeLessThan(200 * 1024 * 1024);
  });

  it('cancels a running statement: 57014', async () => {
    const t0 = Date.now();
    const running = conn.execute('SELECT pg_sleep(30)', [], collect().handlers);
    await new Promise((r) => setTimeout(r, 300));
    await conn.cancel();
    const r = await running;
    expect(r).toMatchObject({ error: { sqlstate: '57014' } });
    expect(Date.now() - t0).toBeLessThan(5000);
    const { out, handlers } = collect();
    await conn.execute('SELECT 5 AS "F"', [], handlers);
    expect(out.rows).toEqual([['5']]);
  });

  it('is healthy while signed in, and logs out on close', async () => {
    const c = await connectSnowflake(creds());
    const sessions = fake.sessionCount();
    expect(await c.healthy()).toBe(true);
    await c.close();
    expect(fake.sessionCount()).toBe(sessions - 1);
    expect(await c.healthy()).toBe(false);
  });

  it('signs in with a key pair (SNOWFLAKE_JWT) and refuses a key that is not registered', async () => {
    const c = await connectSnowflake(creds({ user: 'keyed', password: undefined, privateKey: PRIVATE_KEY }));
    const { out, handlers } = collect();
    await c.execute('SELECT 1 AS "K"', [], handlers);
    expect(out.rows).toEqual([['1']]);
    await c.close();
    expect(fake.logins.at(-1)).toEqual({ user: 'keyed', authenticator: 'SNOWFLAKE_JWT', ok: true });
    const err = await connectSnowflake(creds({ user: 'keyed', password: undefined, privateKey: other }), { connectionName: 'sf_keyed' }).then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toContain('connection sf_keyed');
  });

  it('refuses a wrong password with 08001 naming the connection and never the password', async () => {
    const wrong = 'not-the-Pa55word';
    const err = await connectSnowflake(creds({ password: wrong }), { connectionName: 'sf_main' }).then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toMatch(/connection sf_main: Snowflake sign-in failed: Incorrect username or password/);
    expect(JSON.stringify({ m: err.message, d: err.detail, h: err.hint })).not.toContain(wrong);
    expect(JSON.stringify({ m: err.message, d: err.detail })).not.toContain(PASSWORD);
  });
});
