// The mysql connector against the local MariaDB (127.0.0.1:3306, root without password for set-up).
// No skips: if the server is not there, beforeAll fails and every test with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, MysqlConnection } from '../../../src/config/model.ts';
import { GatehouseError } from '../../../src/errors.ts';
import { MYSQL_SQL_MODE, MysqlWarehouse } from '../../../src/warehouses/mysql.ts';
import { OID } from '../../../src/warehouses/mysql-types.ts';
import { messages } from '../../../src/warehouses/pg-framing.ts';
import type { RowSession } from '../../../src/warehouses/row-session.ts';
import type { WarehouseStatement } from '../../../src/warehouses/types.ts';
import type { Bind, ExtendedStep } from '../../../src/wire/messages.ts';
import { CollectingSink } from '../../helpers/collecting-sink.ts';
import { PG, deadPort, requirePostgres } from '../../helpers/servers.ts';
import pg from 'pg';
import { pgFloat } from '../../../src/warehouses/mysql-types.ts';
import { freshMariadbDatabase, mariadbRun } from '../../helpers/mariadb.ts';

const DB = 'gatehouse_mysql_conn_test';
const READER = 'gh_mc_reader';
const PASSWORD = 'gh-mc-secret-1';
process.env.GH_MC_PASSWORD = PASSWORD;

function connection(target: Partial<MysqlConnection> = {}, extra: Partial<Connection> = {}): Connection {
  return {
    name: 'mywh',
    org: 'acme',
    target: {
      kind: 'mysql',
      host: '127.0.0.1',
      port: 3306,
      database: DB,
      user: READER,
      password_env: 'GH_MC_PASSWORD',
      allow_superuser: false,
      allow_topics_privileges: false,
      ...target,
    },
    allow_writes: false,
    permissions: { default: 'no_access', groups: {}, users: {} },
    topics_schema: 'topics',
    ...extra,
  };
}

const stmt = (sql: string, returnsRows = true): WarehouseStatement => ({ sql, kind: returnsRows ? 'select' : 'other', returnsRows });

const warehouses: MysqlWarehouse[] = [];
async function open(opts: { readOnly?: boolean; user?: string; target?: Partial<MysqlConnection>; pool?: 'none' | 'session' } = {}) {
  const wh = new MysqlWarehouse(
    connection(opts.target ?? {}, opts.pool ? { pool: { mode: opts.pool, size: 5, idleTimeoutMs: 60_000, waitTimeoutMs: 1000 } } : {}),
  );
  warehouses.push(wh);
  const s = (await wh.openSession({ params: {}, readOnly: opts.readOnly ?? true, user: opts.user ?? 'carol@acme.example' })) as RowSession;
  return { wh, s };
}

async function query(s: RowSession, sql: string, sink = new CollectingSink()) {
  const outcome = await s.run([stmt(sql)], sink);
  return { outcome, sink };
}

beforeAll(async () => {
  await freshMariadbDatabase(
    DB,
    `SET SESSION sql_mode = '';
     CREATE TABLE types_t (
       id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, i INT, iu INT UNSIGNED,
       bi BIGINT, bu BIGINT UNSIGNED, dec2 DECIMAL(10,2), dec0 DECIMAL(20,0), f FLOAT, d DOUBLE,
       dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP NULL DEFAULT NULL, tm TIME(1), yr YEAR, flag TINYINT(1),
       vc VARCHAR(20), txt TEXT, ch CHAR(3), bl BLOB, vb VARBINARY(8), js JSON, bits BIT(10), en ENUM('red','green'), st SET('a','b','c'));
     INSERT INTO types_t VALUES
       (1, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
        -12345678.90, 12345678901234567890, 0.1, 0.1, '2024-02-29', '2024-01-02 03:04:05', '1999-12-31 23:59:59.123450', '2024-06-30 12:00:00',
        '-838:59:59', 2024, 1, 'hé "q" \\\\ ''x''', 'ünïcødé ✓ 日本', 'ab', X'00FF10', X'DEADBEEF', '{"k": [1, 2.5, "x"]}', b'1000000001', 'green', 'a,c'),
       (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.01, 0, -1.5e-7, 1e300, '0000-00-00', '0000-00-00 00:00:00', NULL, NULL, '12:30:00.5', 1901, 0,
        '', '', '', X'', X'', 'null', b'0', 'red', ''),
       (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
     CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40), born DATE, score DOUBLE);
     INSERT INTO people VALUES (1, 'ann', '1990-01-01', 1.5), (2, 'bob', '1985-05-05', 2.25), (3, 'cid', '2000-12-31', NULL), (4, 'dee', '1970-07-07', -3), (5, 'eve', '1999-09-09', 0);
     CREATE TABLE secret (x INT);`,
    { [READER]: PASSWORD },
  );
  await mariadbRun(`GRANT SELECT ON \`${DB}\`.* TO '${READER}'@'%'`);
});

afterAll(async () => {
  await Promise.allSettled(warehouses.map((w) => w.close()));
});

describe('mysql connector: types as PostgreSQL types and text', () => {
  it('maps every column type to a PostgreSQL type OID and prints values as PostgreSQL would', async () => {
    const { s } = await open();
    const { outcome, sink } = await query(s, 'SELECT * FROM types_t ORDER BY id');
    expect(outcome.error).toBeUndefined();
    const [t] = sink.of('T');
    const types = Object.fromEntries(t.fields!.map((f) => [f.name, f.typeOid]));
    expect(types).toEqual({
      id: OID.int4,
      ti: OID.int2,
      tu: OID.int2,
      si: OID.int2,
      su: OID.int4,
      mi: OID.int4,
      i: OID.int4,
      iu: OID.int8,
      bi: OID.int8,
      bu: OID.numeric,
      dec2: OID.numeric,
      dec0: OID.numeric,
      f: OID.float4,
      d: OID.float8,
      dt: OID.date,
      dtm: OID.timestamp,
      dtm6: OID.timestamp,
      ts: OID.timestamptz,
      tm: OID.time,
      yr: OID.int2,
      flag: OID.bool,
      vc: OID.varchar,
      txt: OID.text,
      ch: OID.varchar,
      bl: OID.bytea,
      vb: OID.bytea,
      js: OID.json,
      bits: OID.bit,
      en: OID.text,
      st: OID.text,
    });
    const typmod = Object.fromEntries(t.fields!.map((f) => [f.name, f.typeModifier]));
    expect(typmod.dec2).toBe(((10 << 16) | 2) + 4);
    expect(typmod.dec0).toBe(((20 << 16) | 0) + 4);
    expect(typmod.bits).toBe(10);
    const [r1, r2, r3] = sink.rows();
    const row = (r: (string | null)[]) => Object.fromEntries(t.names.map((n, i) => [n, r[i]]));
    expect(row(r1)).toEqual({
      id: '1',
      ti: '-128',
      tu: '255',
      si: '-32768',
      su: '65535',
      mi: '-8388608',
      i: '-2147483648',
      iu: '4294967295',
      bi: '-9223372036854775808',
      bu: '18446744073709551615',
      dec2: '-12345678.90',
      dec0: '12345678901234567890',
      f: '0.1',
      d: '0.1',
      dt: '2024-02-29',
      dtm: '2024-01-02 03:04:05',
      dtm6: '1999-12-31 23:59:59.12345',
      ts: '2024-06-30 12:00:00+00',
      tm: '-838:59:59',
      yr: '2024',
      flag: 't',
      vc: `hé "q" \\ 'x'`,
      txt: 'ünïcødé ✓ 日本',
      ch: 'ab',
      bl: '\\x00ff10',
      vb: '\\xdeadbeef',
      js: '{"k": [1, 2.5, "x"]}',
      bits: '1000000001',
      en: 'green',
      st: 'a,c',
    });
    // Zero dates have no PostgreSQL value: NULL. Floats in PostgreSQL's shortest form.
    expect(row(r2)).toMatchObject({
      dec2: '-0.01',
      f: '-1.5e-07',
      d: '1e+300',
      dt: null,
      dtm: null,
      tm: '12:30:00.5',
      yr: '1901',
      flag: 'f',
      vc: '',
      bl: '\\x',
      js: 'null',
      bits: '0000000000',
    });
    expect(r3.slice(1).every((v) => v === null)).toBe(true);
    expect(sink.tags()).toEqual(['SELECT 3']);
    await s.close();
  });

  it('an expression type Gatehouse does not map is sent as text, never dropped', async () => {
    const { s } = await open();
    const { sink } = await query(s, "SELECT NULL AS n, POINT(1, 2) AS geo, 'x' AS lit, 7 DIV 2 AS q, 7 / 2 AS r");
    const [t] = sink.of('T');
    expect(t.fields!.map((f) => f.typeOid)).toEqual([OID.text, OID.bytea, OID.varchar, OID.int4, OID.numeric]);
    const [row] = sink.rows();
    expect(row[0]).toBeNull();
    expect(row[1]).toMatch(/^\\x[0-9a-f]+$/);
    // div_precision_increment 16: the dialect's session (mysql-session.ts), near PostgreSQL's numeric division scale.
    expect(row.slice(2)).toEqual(['x', '3', '3.5000000000000000']);
    await s.close();
  });
});

describe('float text against PostgreSQL itself', () => {
  it('pgFloat prints 6,000 random doubles and floats exactly as PostgreSQL 15 does', async () => {
    await requirePostgres();
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const doubles = Array.from({ length: 3000 }, () => (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20));
    const floats = doubles.map((d) => Math.fround(d * 3.7));
    const c = new pg.Client(PG);
    await c.connect();
    try {
      const d = await c.query('SELECT x::text AS t FROM unnest($1::float8[]) WITH ORDINALITY AS u(x, i) ORDER BY i', [doubles.map((x) => x.toExponential())]);
      const f = await c.query('SELECT x::text AS t FROM unnest($1::float4[]) WITH ORDINALITY AS u(x, i) ORDER BY i', [floats.map((x) => x.toExponential())]);
      expect(doubles.map((x) => pgFloat(x))).toEqual(d.rows.map((r) => r.t));
      expect(floats.map((x) => pgFloat(x, true))).toEqual(f.rows.map((r) => r.t));
    } finally {
      await c.end();
    }
  });
});

describe('mysql connector: session settings and who is behind a statement', () => {
  it('every session runs the pinned sql_mode, UTC and utf8mb4; a backslash in a literal is a character', async () => {
    const { s } = await open();
    const { sink } = await query(
      s,
      "SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@character_set_client, @@character_set_results, 'a\\b' AS lit, \"dq\" AS dq, 'a' || 'b' AS pipes",
    );
    const [[mode, tz, cs, cr, lit, dq, pipes]] = sink.rows();
    for (const m of MYSQL_SQL_MODE) expect(mode!.split(',')).toContain(m);
    expect(mode).not.toMatch(/ANSI_QUOTES|PIPES_AS_CONCAT/);
    expect([tz, cs, cr]).toEqual(['+00:00', 'utf8mb4', 'utf8mb4']);
    expect(lit).toBe('a\\b');
    expect(dq).toBe('dq');
    expect(pipes).toBe('0'); // || is OR: neither 'a' nor 'b' is true
    await s.close();
  });

  it('a read-only session cannot write (25006), even where the account could', async () => {
    await mariadbRun(`USE ${DB}; CREATE TABLE IF NOT EXISTS scratch_rw (n INT)`);
    const { s } = await open({ target: { user: 'root', password_env: undefined, allow_superuser: true } });
    const { outcome, sink } = await query(s, 'INSERT INTO scratch_rw VALUES (1)');
    expect(outcome.error?.sqlstate).toBe('25006');
    expect(sink.errors()[0].C).toBe('25006');
    await s.close();
  });

  it("each statement carries a leading comment naming the person, shown in the warehouse's processlist", async () => {
    const { s } = await open({ user: 'carol*/evil@acme.example' });
    const running = query(s, 'SELECT SLEEP(1.5)');
    await new Promise((r) => setTimeout(r, 500));
    const rows = (await mariadbRun(`SELECT INFO FROM information_schema.PROCESSLIST WHERE USER = '${READER}' AND INFO LIKE '%SLEEP(1.5)%'`)) as {
      INFO: string;
    }[];
    await running;
    expect(rows.map((r) => r.INFO)).toEqual(['/* gatehouse:carol%2a%2fevil@acme.example */ SELECT SLEEP(1.5)']);
    await s.close();
  });
});

describe('mysql connector: errors as SQLSTATEs', () => {
  it.each([
    ['SELECT * FROM nowhere', '42P01', /nowhere/],
    ['SELECT nope FROM people', '42703', /nope/],
    ['SELEC 1', '42601', /syntax/],
    ['SELECT * FROM mysql.user', '42501', /denied/],
  ])('%s -> %s with the warehouse message', async (sql, sqlstate, message) => {
    const { s } = await open();
    const { outcome, sink } = await query(s, sql);
    expect(outcome.error?.sqlstate).toBe(sqlstate);
    expect(sink.errors()[0].C).toBe(sqlstate);
    expect(sink.errors()[0].M).toMatch(message);
    // The session is still usable after a statement error.
    const again = await query(s, 'SELECT 1');
    expect(again.sink.rows()).toEqual([['1']]);
    await s.close();
  });

  it('after an error the rest of a multi-statement Query is skipped', async () => {
    const { s } = await open();
    const sink = new CollectingSink();
    const outcome = await s.run([stmt('SELECT 1'), stmt('SELECT nope'), stmt('SELECT 3')], sink);
    expect(outcome.error?.sqlstate).toBe('42703');
    expect(sink.types()).toBe('T D C E');
    await s.close();
  });
});

describe('mysql connector: transaction status from the server, PostgreSQL rules on top', () => {
  it('BEGIN -> T; an error fails the transaction (E, 25P02 for anything else); COMMIT of it rolls back -> I', async () => {
    const { s } = await open();
    expect(s.txStatus).toBe('I');
    expect((await query(s, 'BEGIN')).outcome.status).toBe('T');
    expect((await query(s, 'SELECT 1')).outcome.status).toBe('T');
    expect((await query(s, 'SELECT nope')).outcome.status).toBe('E');
    const refused = await query(s, 'SELECT 1');
    expect(refused.outcome.error?.sqlstate).toBe('25P02');
    expect(refused.outcome.status).toBe('E');
    const commit = await query(s, 'COMMIT');
    expect(commit.sink.tags()).toEqual(['ROLLBACK']);
    expect(commit.outcome.status).toBe('I');
    // START TRANSACTION and ROLLBACK, status from the server's flags.
    expect((await query(s, 'START TRANSACTION READ ONLY')).outcome.status).toBe('T');
    expect((await query(s, 'ROLLBACK')).outcome.status).toBe('I');
    await s.close();
  });
});

describe('mysql connector: cancel, a warehouse down, a connection dropped', () => {
  it('cancel (KILL QUERY on a second connection) ends a running statement with 57014 and the session goes on', async () => {
    const { s } = await open();
    const started = performance.now();
    const running = query(s, 'SELECT SLEEP(20)');
    await new Promise((r) => setTimeout(r, 300));
    await s.cancel();
    const { outcome, sink } = await running;
    // MariaDB answers a killed SLEEP with the row 1 (interrupted) or 1317; both end well before 20 s.
    expect(performance.now() - started).toBeLessThan(5000);
    if (outcome.error) expect(outcome.error.sqlstate).toBe('57014');
    else expect(sink.rows()).toEqual([['1']]);
    const { sink: after } = await query(s, 'SELECT 2');
    expect(after.rows()).toEqual([['2']]);
    await s.close();
  });

  it('cancel of a long scan reports 57014', async () => {
    const { s } = await open();
    const running = query(s, 'SELECT COUNT(*) FROM seq_1_to_300000 a, seq_1_to_300000 b');
    await new Promise((r) => setTimeout(r, 300));
    await s.cancel();
    const { outcome } = await running;
    expect(outcome.error?.sqlstate).toBe('57014');
    await s.close();
  });

  it('a warehouse that is down: 08001 naming the connection, never the password', async () => {
    const port = await deadPort();
    const err = await open({ target: { port } }).catch((e) => e);
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toContain('"mywh"');
    expect(`${err.message} ${err.detail}`).not.toContain(PASSWORD);
  });

  it('TLS asked for (verify-full, the default off loopback) and a server without it: 08001, never a plain connection', async () => {
    const err = await open({ target: { tls: { mode: 'verify-full' } } }).catch((e) => e);
    expect(err.sqlstate).toBe('08001');
    expect(err.detail).toMatch(/secure connection|SSL|TLS/i);
  });

  it('a wrong password: 08001 naming the connection, never the password', async () => {
    process.env.GH_MC_WRONG = 'not-the-password-xyz';
    const err = await open({ target: { password_env: 'GH_MC_WRONG' } }).catch((e) => e);
    expect(err.sqlstate).toBe('08001');
    expect(err.detail).toMatch(/Access denied/);
    expect(`${err.message} ${err.detail}`).not.toContain('not-the-password-xyz');
  });

  it('a connection killed mid-result: the run fails with 08006 and the next session works', async () => {
    const { wh, s } = await open({ pool: 'session' });
    const sink = new CollectingSink({ countOnly: true, highWaterMessages: 100, drainDelayMs: 5 });
    const running = s.run([stmt("SELECT seq, REPEAT('x', 100) FROM seq_1_to_300000")], sink).catch((e) => e);
    await new Promise((r) => setTimeout(r, 300));
    const rows = (await mariadbRun(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '${READER}' AND INFO LIKE '%seq_1_to_300000%'`)) as {
      ID: number;
    }[];
    expect(rows).toHaveLength(1);
    await mariadbRun(`KILL CONNECTION ${rows[0].ID}`);
    const err = await running;
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('08006');
    expect(sink.dataRows).toBeGreaterThan(0);
    expect(sink.dataRows).toBeLessThan(300_000);
    await s.close();
    const next = (await wh.openSession({ params: {}, readOnly: true })) as RowSession;
    const { sink: after } = await query(next, 'SELECT COUNT(*) FROM people');
    expect(after.rows()).toEqual([['5']]);
    await next.close();
  });
});

describe('mysql connector: the extended protocol emulated', () => {
  const int4 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const bind = (params: (Buffer | null)[], paramFormats: number[], resultFormats: number[] = [], statement = 'q', portal = ''): Bind => ({
    type: 'Bind',
    portal,
    statement,
    paramFormats,
    params,
    resultFormats,
  });
  const framesOf = (sink: CollectingSink) =>
    sink.relayed.flatMap((b) => [...messages(b)].map((m) => ({ type: String.fromCharCode(m.type), body: Buffer.from(m.body) })));

  it('Parse, Describe (ParameterDescription, RowDescription), Bind text and binary, Execute with max-rows and PortalSuspended, Close, Sync', async () => {
    const { s } = await open();
    const sink = new CollectingSink();
    const steps: ExtendedStep[] = [
      { type: 'Parse', name: 'q', query: 'SELECT id, name, score FROM people WHERE id >= ? AND name <> ? ORDER BY id', paramTypes: [23, 25] },
      { type: 'Describe', kind: 'S', name: 'q' },
      bind([int4(2), Buffer.from('dee')], [1, 0]),
      { type: 'Execute', portal: '', maxRows: 2 },
    ];
    await s.sendExtended!(steps, sink, true);
    expect(sink.types()).toBe('1 t T 2 D D s');
    const frames = framesOf(sink);
    const paramDesc = frames[1].body;
    expect([paramDesc.readInt16BE(0), paramDesc.readInt32BE(2), paramDesc.readInt32BE(6)]).toEqual([2, 23, 25]);
    expect(sink.rows()).toEqual([
      ['2', 'bob', '2.25'],
      ['3', 'cid', null],
    ]);
    expect(s.inExtended).toBe(true);
    sink.clear();
    const outcome = await s.syncExtended!(
      [
        { type: 'Execute', portal: '', maxRows: 0 },
        { type: 'Close', kind: 'S', name: 'q' },
      ],
      sink,
    );
    expect(sink.types()).toBe('D C 3');
    expect(sink.rows()).toEqual([['5', 'eve', '0']]);
    expect(sink.tags()).toEqual(['SELECT 1']);
    expect(outcome).toMatchObject({ status: 'I', aborted: false });
    expect(outcome.error).toBeUndefined();
    await s.close();
  });

  it('binary result formats for the common types, and the text ones as asked', async () => {
    const { s } = await open();
    const sink = new CollectingSink();
    await s.syncExtended!(
      [
        { type: 'Parse', name: 'b', query: 'SELECT id, name, score, born FROM people WHERE id = ?', paramTypes: [] },
        bind([Buffer.from('2')], [], [1, 0, 1, 1], 'b'),
        { type: 'Describe', kind: 'P', name: '' },
        { type: 'Execute', portal: '', maxRows: 0 },
      ],
      sink,
    );
    expect(sink.types()).toBe('1 2 T D C');
    const row = framesOf(sink).find((f) => f.type === 'D')!.body;
    // id int4 binary, name text, score float8 binary, born date binary (days since 2000-01-01)
    let off = 2;
    const col = () => {
      const len = row.readInt32BE(off);
      const v = row.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      return v;
    };
    expect(col().readInt32BE(0)).toBe(2);
    expect(col().toString()).toBe('bob');
    expect(col().readDoubleBE(0)).toBe(2.25);
    expect(col().readInt32BE(0)).toBe(Math.round((Date.UTC(1985, 4, 5) - Date.UTC(2000, 0, 1)) / 86_400_000));
    await s.close();
  });

  it('an error skips the rest up to Sync; a wrong parameter count is 08P01; an unknown statement 26000', async () => {
    const { s } = await open();
    let sink = new CollectingSink();
    let outcome = await s.syncExtended!(
      [
        { type: 'Parse', name: '', query: 'SELECT nope FROM people WHERE id = ?', paramTypes: [] },
        bind([Buffer.from('1')], [], [], ''),
        { type: 'Execute', portal: '', maxRows: 0 },
        { type: 'Parse', name: 'never', query: 'SELECT 1', paramTypes: [] },
      ],
      sink,
    );
    expect(outcome.error?.sqlstate).toBe('42703');
    expect(sink.types()).toBe('1 2 E');
    sink = new CollectingSink();
    outcome = await s.syncExtended!([{ type: 'Parse', name: 'two', query: 'SELECT ? + ?', paramTypes: [] }, bind([Buffer.from('1')], [], [], 'two')], sink);
    expect(outcome.error?.sqlstate).toBe('08P01');
    sink = new CollectingSink();
    outcome = await s.syncExtended!([bind([], [], [], 'never')], sink);
    expect(outcome.error?.sqlstate).toBe('26000');
    await s.close();
  });

  it('abortExtended: what came before runs, the refusal is the client error (aborted), a transaction around it fails', async () => {
    const { s } = await open();
    await query(s, 'BEGIN');
    const sink = new CollectingSink();
    const outcome = await s.abortExtended!([{ type: 'Parse', name: '', query: 'SELECT 1', paramTypes: [] }], sink);
    expect(outcome).toMatchObject({ aborted: true, status: 'E' });
    expect((await query(s, 'ROLLBACK')).outcome.status).toBe('I');
    await s.close();
  });
});

describe('mysql connector: result limits', () => {
  it('past max_result_rows the statement is stopped (KILL QUERY), the limit error replaces the rest, the session goes on', async () => {
    const wh = new MysqlWarehouse(connection());
    warehouses.push(wh);
    let recorded: string | undefined;
    const resultLimit = {
      rows: 5,
      bytes: 0,
      exceeded: (which: 'rows' | 'bytes') => {
        recorded = which;
        return new GatehouseError('54000', `result exceeds max_result_${which}`);
      },
    };
    const s = (await wh.openSession({ params: {}, readOnly: true, resultLimit })) as RowSession;
    const started = performance.now();
    const { outcome, sink } = await query(s, 'SELECT seq FROM seq_1_to_300000 a');
    expect(performance.now() - started).toBeLessThan(3000);
    expect(recorded).toBe('rows');
    expect(outcome).toMatchObject({ stopped: true, error: { sqlstate: '54000' } });
    expect(sink.rows()).toHaveLength(5);
    expect(sink.types()).toBe('T D D D D D E');
    expect((await query(s, 'SELECT 7')).sink.rows()).toEqual([['7']]);
    await s.close();
  });
});

describe('mysql connector: the pinned settings hold', () => {
  it.each([
    ["SET SESSION sql_mode = 'ANSI_QUOTES'", /sql_mode without NO_BACKSLASH_ESCAPES/],
    ["/* x */ SET sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')", /sql_mode .*PIPES_AS_CONCAT/],
    ["SET time_zone = '+02:00'", /time_zone \+02:00/],
    ['SET NAMES latin1', /character sets latin1/],
  ])('%s closes the warehouse connection (08006) before anything else runs on it; the next session is fine', async (sql, why) => {
    const { wh, s } = await open({ pool: 'session' });
    const err = await s.run([stmt(sql, false)], new CollectingSink()).catch((e) => e);
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.sqlstate).toBe('08006');
    expect(err.detail).toMatch(why);
    await s.close();
    const s2 = (await wh.openSession({ params: {}, readOnly: true })) as RowSession;
    expect((await query(s2, "SELECT 'a\\b'")).sink.rows()).toEqual([['a\\b']]);
    await s2.close();
  });

  it('a SET that keeps them is fine, and so is a SET for one statement', async () => {
    const { s } = await open();
    expect((await query(s, 'SET @x = 5')).outcome.error).toBeUndefined();
    expect((await query(s, "SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT @x")).sink.rows()).toEqual([['5']]);
    expect((await query(s, 'SELECT @x')).sink.rows()).toEqual([['5']]);
    await s.close();
  });
});

describe('mysql connector: pooling', () => {
  it('a parked connection is reset: the next session finds the pinned settings, not what the last one set', async () => {
    const { wh, s } = await open({ pool: 'session' });
    const id1 = (await query(s, 'SELECT CONNECTION_ID()')).sink.rows()[0][0];
    await query(s, "SET @leak = 'x'");
    await query(s, 'SET SESSION div_precision_increment = 9');
    await query(s, 'CREATE TEMPORARY TABLE tmp_leak (x INT)').catch(() => undefined);
    await s.close();
    const s2 = (await wh.openSession({ params: {}, readOnly: true, user: 'dave@acme.example' })) as RowSession;
    const { sink } = await query(s2, 'SELECT CONNECTION_ID(), @leak, @@SESSION.div_precision_increment, @@SESSION.sql_mode');
    const [[id2, leak, precision, mode]] = sink.rows();
    expect(id2).toBe(id1);
    expect(leak).toBeNull();
    expect(precision).toBe('16');
    expect(mode).toContain('NO_BACKSLASH_ESCAPES');
    expect(wh.poolStats()[0]).toMatchObject({ opened: 1, reused: 1 });
    await s2.close();
  });
});
