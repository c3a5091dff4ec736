// The protocol beyond one Query: Flush and row-limited Execute, a refusal in the middle of an
// extended exchange, a Query before Sync, LISTEN/NOTIFY, COPY FROM STDIN and binary COPY out,
// the audit of every refusal. Against the real PostgreSQL, as a querier on a connection that
// allows writes (and bob, query_topics, where policy differs).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { MSG, errorFields, extendedMessage, frame, queryMessage, syncMessage } from '../../src/warehouses/pg-framing.ts';
import { DEMO_PASSWORD, demoRulesWith, pgClient, postgresWarehouseYaml } from '../helpers/gatehouse.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { createAcmeWarehouse, psqlAdmin, requirePostgres } from '../helpers/servers.ts';
import { resolve } from 'node:path';

const DB = 'gatehouse_it_protocol_flow';
const CAROL = 'carol@acme.example';
const BOB = 'bob@acme.example';
let gh: RunningGatehouse;
let auditPath: string;

beforeAll(async () => {
  await requirePostgres();
  createAcmeWarehouse(DB, resolve(import.meta.dirname, '../../rules/acme/data/acme.sql'));
  psqlAdmin(DB, 'CREATE TABLE scratch (id int, note text); GRANT SELECT, INSERT, DELETE ON scratch TO gatehouse_reader;');
  const rules = demoRulesWith(`${postgresWarehouseYaml(DB)}allow_writes: true\n`);
  auditPath = join(mkdtempSync(join(tmpdir(), 'gatehouse-audit-')), 'audit.jsonl');
  gh = await serve({ rulesDir: rules, host: '127.0.0.1', port: 0, adminPort: 0, auditPath, logger: pino({ level: 'silent' }) });
}, 120_000);

afterAll(async () => {
  await gh?.close();
});

const raw = (user = CAROL) => RawClient.connect({ port: gh.port, user, password: DEMO_PASSWORD, database: 'warehouse' });
const P = (query: string, name = '') => extendedMessage({ type: 'Parse', name, query, paramTypes: [] });
const B = (portal = '', statement = '') => extendedMessage({ type: 'Bind', portal, statement, paramFormats: [], params: [], resultFormats: [] });
const E = (portal = '', maxRows = 0) => extendedMessage({ type: 'Execute', portal, maxRows });
const FLUSH = frame(0x48, Buffer.alloc(0));
const NAMES: Record<number, string> = {
  0x31: 'ParseComplete',
  0x32: 'BindComplete',
  0x33: 'CloseComplete',
  0x44: 'DataRow',
  0x73: 'PortalSuspended',
  0x43: 'CommandComplete',
  0x45: 'ErrorResponse',
  0x5a: 'ReadyForQuery',
  0x54: 'RowDescription',
  0x4e: 'Notice',
  0x6e: 'NoData',
};

/** The next n messages' names (and the error's SQLSTATE). */
async function take(c: RawClient, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = await c.next(15_000); // generous: the first statement opens the upstream on a loaded machine
    out.push(
      m.type === MSG.ErrorResponse
        ? `ErrorResponse ${errorFields(m.body).C}`
        : m.type === MSG.ReadyForQuery
          ? `ReadyForQuery ${String.fromCharCode(m.body[0])}`
          : (NAMES[m.type] ?? String.fromCharCode(m.type)),
    );
  }
  return out;
}

function auditLines(): Record<string, unknown>[] {
  return readFileSync(auditPath, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('Flush and row-limited Execute (asyncpg, pg-cursor, pg-query-stream)', () => {
  it('answers what was sent before Flush, suspends the portal at maxRows, resumes it, and ends at Sync', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([P('SELECT id FROM orders ORDER BY id'), B('C_1'), E('C_1', 2), FLUSH]));
    expect(await take(c, 5)).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'DataRow', 'PortalSuspended']);
    c.socket.write(Buffer.concat([E('C_1', 3), FLUSH]));
    expect(await take(c, 4)).toEqual(['DataRow', 'DataRow', 'DataRow', 'PortalSuspended']);
    c.socket.write(Buffer.concat([extendedMessage({ type: 'Close', kind: 'P', name: 'C_1' }), syncMessage()]));
    expect(await take(c, 2)).toEqual(['CloseComplete', 'ReadyForQuery I']);
    await c.close();
  });

  it('bob: the same cursor over a topic is governed (EMEA rows only)', async () => {
    const c = await raw(BOB);
    c.socket.write(Buffer.concat([P('SELECT region FROM orders'), B('C_1'), E('C_1', 50), FLUSH]));
    const rows: string[] = [];
    for (let i = 0; i < 52; i++) {
      const m = await c.next(15_000); // generous: the first statement opens the upstream on a loaded machine
      if (m.type === MSG.DataRow) rows.push(m.body.toString('utf8', 6));
    }
    expect(rows).toHaveLength(50);
    expect(new Set(rows)).toEqual(new Set(['EMEA']));
    c.socket.write(syncMessage());
    expect(await take(c, 2)).toEqual(['PortalSuspended', 'ReadyForQuery I']);
    await c.close();
  });
});

describe('a refusal in the middle of an extended exchange', () => {
  it('runs what came before, refuses, rolls the implicit transaction back and skips to Sync, as a failing message would', async () => {
    psqlAdmin(DB, 'DELETE FROM scratch');
    const c = await raw();
    c.socket.write(Buffer.concat([P("INSERT INTO scratch VALUES (1, 'before')"), B(), E(), P('DO $$ BEGIN END $$'), B(), E(), syncMessage()]));
    expect(await take(c, 5)).toEqual(['ParseComplete', 'BindComplete', 'CommandComplete', 'ErrorResponse 42501', 'ReadyForQuery I']);
    expect(psqlAdmin(DB, 'SELECT count(*) FROM scratch').trim()).toBe('0');
    // Inside an explicit transaction the refusal fails it, as on PostgreSQL.
    c.socket.write(Buffer.concat([queryMessage('BEGIN')]));
    expect(await take(c, 2)).toEqual(['CommandComplete', 'ReadyForQuery T']);
    c.socket.write(Buffer.concat([P("INSERT INTO scratch VALUES (2, 'in tx')"), B(), E(), P('SELECT pg_terminate_backend(1)'), B(), E(), syncMessage()]));
    expect(await take(c, 5)).toEqual(['ParseComplete', 'BindComplete', 'CommandComplete', 'ErrorResponse 42501', 'ReadyForQuery E']);
    c.socket.write(queryMessage('COMMIT'));
    expect(await take(c, 2)).toEqual(['CommandComplete', 'ReadyForQuery I']);
    expect(psqlAdmin(DB, 'SELECT count(*) FROM scratch').trim()).toBe('0');
    await c.close();
  });

  it('an earlier warehouse error is the only one the client gets (PostgreSQL skipped the refused message)', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([P('SELECT 1 / (id - id) FROM orders'), B(), E(), FLUSH]));
    expect(await take(c, 3)).toEqual(['ParseComplete', 'BindComplete', 'ErrorResponse 22012']);
    c.socket.write(Buffer.concat([P('DO $$ BEGIN END $$'), B(), E(), syncMessage(), queryMessage('SELECT 1')]));
    expect(await take(c, 5)).toEqual(['ReadyForQuery I', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery I']);
    await c.close();
  });

  it('a Query before Sync ends the exchange and runs (pg-cursor closes that way)', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([P('SELECT 1'), B('C_2'), E('C_2', 1), FLUSH]));
    expect(await take(c, 4)).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'PortalSuspended']);
    c.socket.write(Buffer.concat([extendedMessage({ type: 'Close', kind: 'P', name: 'C_2' }), queryMessage('SELECT 2')]));
    expect(await take(c, 5)).toEqual(['CloseComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery I']);
    await c.close();
  });

  it('rows read after Flush are audited even when the client never sends Sync and leaves', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([P('SELECT id FROM orders WHERE id < 3 /* audit-after-flush */'), B(), E(), FLUSH]));
    expect(await take(c, 5)).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'DataRow', 'CommandComplete']);
    c.socket.destroy();
    await vi.waitFor(() => {
      expect(auditLines().filter((r) => String(r.statement).includes('audit-after-flush'))).toMatchObject([{ decision: 'allowed', user: CAROL }]);
    });
  });

  it('a statement audited at Flush that the warehouse then fails gets a statement_failed record (an outside review found it recorded as a success)', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([P('SELECT 1 / (id - id) FROM orders /* late-failure */'), B(), E(), FLUSH]));
    expect(await take(c, 3)).toEqual(['ParseComplete', 'BindComplete', 'ErrorResponse 22012']);
    c.socket.write(syncMessage());
    expect(await take(c, 1)).toEqual(['ReadyForQuery I']);
    await c.close();
    await vi.waitFor(() => {
      const lines = auditLines().filter((r) => String(r.statement).includes('late-failure'));
      expect(lines).toMatchObject([
        { type: 'statement', decision: 'allowed', user: CAROL },
        { type: 'statement_failed', user: CAROL, sqlstate: '22012', upstream_error: 'division by zero' },
      ]);
    });
  });

  it('an exchange without Sync keeps the newest 1024 written records to name in statement_failed, counting the rest (a pipelining client grew a session by 270 MB)', async () => {
    const c = await raw();
    const n = 3000;
    const ok = Buffer.concat([P('SELECT 1 /* kept-written */'), B(), E()]);
    c.socket.write(Buffer.concat([...Array.from({ length: n }, () => ok), P('SELECT 1 / (id - id) FROM orders /* kept-written */'), B(), E(), FLUSH]));
    const replies = await take(c, 4 * n + 3); // ParseComplete, BindComplete, DataRow, CommandComplete each
    expect(replies.at(-1)).toBe('ErrorResponse 22012');
    c.socket.write(syncMessage());
    expect(await take(c, 1)).toEqual(['ReadyForQuery I']);
    await c.close();
    await vi.waitFor(() => {
      const failed = auditLines().filter((r) => r.type === 'statement_failed' && String(r.statement).includes('kept-written'));
      expect(failed).toHaveLength(1024);
      expect(failed.at(-1)).toMatchObject({
        statement: 'SELECT 1 / (id - id) FROM orders /* kept-written */',
        sqlstate: '22012',
        earlier_statements_not_named: n + 1 - 1024,
      });
    });
  });

  it('every refusal is audited, whichever path refused it', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([B('', 'never_prepared'), syncMessage()]));
    expect(await take(c, 2)).toEqual(['ErrorResponse 26000', 'ReadyForQuery I']);
    // The function call protocol (F): refused, audited.
    c.socket.write(frame(0x46, Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])));
    expect(await take(c, 2)).toEqual(['ErrorResponse 0A000', 'ReadyForQuery I']);
    await c.close();
    await vi.waitFor(() => {
      const refused = auditLines().filter((r) => r.decision === 'refused' && r.user === CAROL);
      expect(refused.map((r) => r.rule)).toEqual(expect.arrayContaining(['extended.unknown_statement', 'protocol.function_call', 'denied_statement']));
    });
  });
});

describe('LISTEN / NOTIFY', () => {
  it("relays the warehouse's notifications to a listening client", async () => {
    const a = await pgClient(gh, CAROL);
    const b = await pgClient(gh, CAROL);
    const got = new Promise<pg.Notification>((r) => a.on('notification', r));
    await a.query('LISTEN gatehouse_test');
    await b.query("NOTIFY gatehouse_test, 'hello'");
    const n = await Promise.race([got, new Promise<never>((_, j) => setTimeout(() => j(new Error('no notification')), 5000))]);
    expect([n.channel, n.payload]).toEqual(['gatehouse_test', 'hello']);
    await a.end();
    await b.end();
  });
});

describe('COPY', () => {
  // Asynchronous: Gatehouse runs in this process.
  const psqlAs = (user: string, args: string[]) =>
    new Promise<Buffer>((done, fail) =>
      execFile(
        'psql',
        ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${gh.port} dbname=warehouse user=${user}`, ...args],
        { env: { ...process.env, PGPASSWORD: DEMO_PASSWORD }, timeout: 30_000, encoding: 'buffer' },
        (err, stdout, stderr) => (err ? fail(new Error(stderr.toString())) : done(stdout)),
      ),
    );

  it('COPY FROM STDIN where the connection allows writes and the level may write', async () => {
    psqlAdmin(DB, 'DELETE FROM scratch');
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-copy-'));
    const file = join(dir, 'rows.csv');
    writeFileSync(file, Array.from({ length: 1000 }, (_, i) => `${i},row ${i}`).join('\n'));
    await psqlAs(CAROL, ['-c', `\\copy scratch FROM '${file}' WITH (FORMAT csv)`]);
    expect(psqlAdmin(DB, 'SELECT count(*), sum(id) FROM scratch').trim()).toBe('1000|499500');
    // bob (query_topics) may not write: refused before the warehouse asks for data.
    await expect(psqlAs(BOB, ['-c', `\\copy orders FROM '${file}' WITH (FORMAT csv)`])).rejects.toThrow(/COPY FROM is not permitted/);
  });

  it("binary COPY TO STDOUT: PostgreSQL's own binary format, governed for bob", async () => {
    const carol = await psqlAs(CAROL, ['-c', 'COPY (SELECT id FROM orders ORDER BY id LIMIT 3) TO STDOUT (FORMAT binary)']);
    expect(carol.subarray(0, 11)).toEqual(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'));
    const bob = await psqlAs(BOB, ['-c', 'COPY (SELECT region FROM orders) TO STDOUT (FORMAT binary)']);
    expect(bob.subarray(0, 11)).toEqual(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'));
    expect(bob.includes(Buffer.from('EMEA'))).toBe(true);
    expect(bob.includes(Buffer.from('AMER'))).toBe(false);
  });
});
