// Tenants (issue 14): two orgs with the same connection name (`warehouse`), the same topic
// name (`orders`) and users with the same local part (bob@acme.example, bob@globex.example).
// The identity decides the org, and nothing of one org is reachable from the other:
// connections, topics, the catalog, the words of any error a globex user can provoke, the
// audit, and session state (prepared statements, cursors, cancel keys).
//
// The rules are a temp copy of the demo's with, for globex, bob@globex.example (query_topics,
// region NORTH) and a topic globex alone has (`shipments`); for acme, names globex must never
// see in an error: a connection `ledger`, an attribute `sales_territory` on `customers`.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RulesError, loadRules } from '../../../src/config/load.ts';
import { type RunningGatehouse, serve } from '../../../src/serve.ts';
import { DEMO_PASSWORD, DEMO_RULES } from '../../helpers/gatehouse.ts';
import { RawClient } from '../../helpers/raw-client.ts';
import { deadPort } from '../../helpers/servers.ts';

const ACME_BOB = 'bob@acme.example';
const GLOBEX_BOB = 'bob@globex.example';
const CAROL = 'carol@acme.example';
const HANK = 'hank@globex.example';

/** What of acme's a globex user must never read in an error (unless they typed it themselves). */
const ACME_NAMES = [
  'acme',
  'ledger',
  'customers',
  'employees',
  'sales_territory',
  'sales-emea',
  'analysts',
  'alice',
  'carol',
  'grace',
  'erin',
  'frank',
  'dave',
  'EMEA',
  'AMER',
  'APAC',
  'customer_id',
];

function tenantRules(ledgerPort: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tenants-rules-'));
  cpSync(DEMO_RULES, dir, { recursive: true });
  const globexOrg = join(dir, 'globex/org.yaml');
  const hankVerifier = /scram: (\S+)/.exec(readFileSync(globexOrg, 'utf8'))![1];
  writeFileSync(
    globexOrg,
    `${readFileSync(globexOrg, 'utf8').trimEnd()}\n  - email: ${GLOBEX_BOB}\n    groups: [ops]\n    attributes: { region: NORTH }\n    scram: ${hankVerifier}\n`,
  );
  writeFileSync(join(dir, 'globex/topics/shipments.yaml'), 'connection: warehouse\nbase: public.shipments\nfields: [id, order_id, carrier, shipped_at]\n');
  // acme: a connection globex lacks (a postgres server nobody listens for: left unverified, it starts nothing)...
  writeFileSync(
    join(dir, 'acme/connections/ledger.yaml'),
    `kind: postgres\nhost: 127.0.0.1\nport: ${ledgerPort}\ndatabase: ledger\nuser: ledger_reader\npermissions:\n  default: no_access\n  users:\n    alice@acme.example: querier\n`,
  );
  // ...and an attribute name of its own.
  const customers = join(dir, 'acme/topics/customers.yaml');
  writeFileSync(customers, readFileSync(customers, 'utf8').replace('attribute: region', 'attribute: sales_territory'));
  const acmeOrg = join(dir, 'acme/org.yaml');
  writeFileSync(acmeOrg, readFileSync(acmeOrg, 'utf8').replace('attributes: { region: EMEA }', 'attributes: { region: EMEA, sales_territory: EMEA }'));
  return dir;
}

let gh: RunningGatehouse;
let auditPath: string;
let rulesDir: string;

beforeAll(async () => {
  rulesDir = tenantRules(await deadPort());
  auditPath = join(mkdtempSync(join(tmpdir(), 'gatehouse-tenants-audit-')), 'audit.jsonl');
  gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, auditPath, logger: pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'silent' }) });
}, 180_000);
afterAll(async () => gh?.close());

interface Outcome {
  rows?: Record<string, unknown>[];
  error?: { code?: string; message: string; detail?: string; hint?: string };
}

async function connect(user: string, database = 'warehouse'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user, password: DEMO_PASSWORD, database });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function run(c: pg.Client, sql: string, values?: unknown[]): Promise<Outcome> {
  try {
    const r = await c.query(sql, values);
    return { rows: r.rows };
  } catch (e) {
    const err = e as { code?: string; message: string; detail?: string; hint?: string };
    return { error: { code: err.code, message: err.message, detail: err.detail, hint: err.hint } };
  }
}

async function connectError(user: string, database: string): Promise<Outcome['error']> {
  try {
    const c = await connect(user, database);
    await c.end();
    return undefined;
  } catch (e) {
    const err = e as { code?: string; message: string; detail?: string; hint?: string };
    return { code: err.code, message: err.message, detail: err.detail, hint: err.hint };
  }
}

/** The error's words, with no acme name in them but those the statement itself typed. */
function expectNoAcmeNames(error: Outcome['error'], typed: string): void {
  expect(error, `an error for: ${typed}`).toBeDefined();
  const words = [error!.message, error!.detail ?? '', error!.hint ?? ''].join(' | ');
  for (const name of ACME_NAMES) {
    if (typed.toLowerCase().includes(name.toLowerCase())) continue;
    expect(words.toLowerCase(), `"${typed}" answered: ${words}`).not.toContain(name.toLowerCase());
  }
}

/** The same error but for the name typed: nothing says one name is known elsewhere. */
const sameBut = (a: Outcome['error'], aName: string, b: Outcome['error'], bName: string) => {
  const strip = (e: Outcome['error'], n: string) => JSON.stringify(e).replaceAll(n, '<name>');
  expect(strip(a, aName)).toBe(strip(b, bName));
};

describe('identity decides the org', () => {
  it("dbname=warehouse is each person's own org's: bob@globex.example reads globex's orders only, bob@acme.example acme's", async () => {
    const g = await connect(GLOBEX_BOB);
    const a = await connect(ACME_BOB);
    try {
      const gRows = (await run(g, "SELECT count(*)::int AS n, string_agg(DISTINCT region, ',') AS regions, max(amount) < 502 AS globex_amounts FROM orders"))
        .rows;
      expect(gRows).toEqual([{ n: 600, regions: 'NORTH', globex_amounts: true }]);
      expect((await run(a, "SELECT string_agg(DISTINCT region, ',') AS regions FROM orders")).rows).toEqual([{ regions: 'EMEA' }]);
      // globex's orders have no customer_id; acme's do.
      const noColumn = (await run(g, 'SELECT customer_id FROM orders LIMIT 1')).error;
      expect(noColumn?.code).toMatch(/^(42501|42703)$/);
      expectNoAcmeNames(noColumn, 'customer_id');
      expect((await run(a, 'SELECT customer_id FROM orders LIMIT 1')).rows).toHaveLength(1);
      expect((await run(g, 'SELECT current_user AS u, session_user AS s, current_database() AS d')).rows).toEqual([
        { u: GLOBEX_BOB, s: GLOBEX_BOB, d: 'warehouse' },
      ]);
      // A topic only globex has.
      expect((await run(g, 'SELECT count(*)::int AS n FROM shipments')).rows).toEqual([{ n: 900 }]);
    } finally {
      await g.end();
      await a.end();
    }
    // Spellings of the email find the same person; hank (globex's admin) sees all of globex's.
    const spelled = await connect('BOB@Globex.Example ');
    expect((await run(spelled, 'SELECT current_user AS u')).rows).toEqual([{ u: GLOBEX_BOB }]);
    await spelled.end();
    const h = await connect(HANK);
    expect((await run(h, 'SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1200 }]);
    expectNoAcmeNames((await run(h, 'SELECT * FROM customers')).error, 'SELECT * FROM customers');
    await h.end();
  });

  it("unknown databases: acme's `ledger` is as unknown to globex as a name nobody has; dbname=postgres is globex's warehouse", async () => {
    const ledger = await connectError(GLOBEX_BOB, 'ledger');
    const nothing = await connectError(GLOBEX_BOB, 'nosuchdb');
    expect(ledger?.code).toBe('3D000');
    sameBut(ledger, 'ledger', nothing, 'nosuchdb');
    expectNoAcmeNames(ledger, 'ledger');
    expect(ledger?.hint).toMatch(/connections you can use: warehouse\b/);
    for (const db of ['acme', 'acme/warehouse', 'acme.warehouse', 'warehouse@acme']) expectNoAcmeNames(await connectError(GLOBEX_BOB, db), db);
    const p = await connect(GLOBEX_BOB, 'postgres');
    expect((await run(p, "SELECT string_agg(DISTINCT region, ',') AS r FROM orders")).rows).toEqual([{ r: 'NORTH' }]);
    await p.end();
  });
});

describe("nothing of acme's in what globex's bob can provoke", () => {
  let g: pg.Client;
  beforeAll(async () => {
    g = await connect(GLOBEX_BOB);
  });
  afterAll(async () => g?.end());

  it("acme's topic and table names are unknown relations, worded exactly as names nobody has", async () => {
    for (const [acmeName, nobody] of [
      ['customers', 'nosuchthing'],
      ['employees', 'nosuchtable'],
      ['public.customers', 'public.nosuchthing'],
      ['topics.customers', 'topics.nosuchthing'],
    ]) {
      const a = (await run(g, `SELECT * FROM ${acmeName}`)).error;
      const b = (await run(g, `SELECT * FROM ${nobody}`)).error;
      expect(a?.code, acmeName).toMatch(/^(42P01|42501)$/);
      sameBut(a, acmeName.split('.').at(-1)!, b, nobody.split('.').at(-1)!);
      expectNoAcmeNames(a, acmeName);
      // The extended protocol (a parameter makes pg send Parse/Bind) says the same.
      const ext = (await run(g, `SELECT * FROM ${acmeName} WHERE id = $1`, [1])).error;
      const extNobody = (await run(g, `SELECT * FROM ${nobody} WHERE id = $1`, [1])).error;
      sameBut(ext, acmeName.split('.').at(-1)!, extNobody, nobody.split('.').at(-1)!);
    }
  });

  it('every error globex can provoke is free of acme names (relations, columns, settings, roles, functions, names of statements)', async () => {
    const probes = [
      'SELECT * FROM acme.orders',
      'SELECT * FROM "acme"."orders"',
      'SELECT nosuchcolumn FROM orders',
      'SELECT * FROM orders JOIN customers USING (id)',
      'SELECT * FROM pg_catalog.pg_class JOIN orders ON true',
      'SET ROLE "bob@acme.example"',
      "SET SESSION AUTHORIZATION 'bob@acme.example'",
      'SET search_path TO acme',
      "SELECT current_setting('gatehouse.org')",
      "SELECT * FROM orders WHERE region = current_setting('application_name')",
      'EXECUTE nosuchstmt',
      'FETCH 1 FROM nosuchcursor',
      'CLOSE nosuchcursor',
      'DEALLOCATE nosuchstmt',
      'SELECT pg_sleep(0)',
      "SELECT * FROM dblink('dbname=warehouse', 'SELECT 1') AS t(x int)",
      'COPY customers TO STDOUT',
      'SELECT 1/0 FROM orders',
      'EXPLAIN SELECT * FROM customers',
      'TABLE customers',
      'SELECT * FROM warehouse.public.orders',
      'SELECT * FROM ledger.public.orders',
    ];
    for (const sql of probes) {
      const out = await run(g, sql);
      if (out.error) expectNoAcmeNames(out.error, sql);
      else expect(JSON.stringify(out.rows), sql).not.toMatch(/acme|EMEA|AMER|APAC/i);
    }
    // SET application_name to another org's name changes nothing but the name.
    await run(g, "SET application_name TO 'acme'");
    expect((await run(g, 'SHOW application_name')).rows).toEqual([{ application_name: 'acme' }]);
    expect((await run(g, "SELECT current_user AS u, string_agg(DISTINCT region, ',') AS r FROM orders")).rows).toEqual([{ u: GLOBEX_BOB, r: 'NORTH' }]);
    await run(g, 'RESET application_name');
  });

  it("the catalog (information_schema, pg_catalog, psql's \\dt and \\d) lists globex's topics only", async () => {
    expect(
      (await run(g, "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")).rows,
    ).toEqual([{ table_name: 'orders' }, { table_name: 'shipments' }]);
    expect(
      (
        await run(
          g,
          "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','v','m','p','f') AND n.nspname NOT IN ('pg_catalog','information_schema','pg_toast') ORDER BY 1",
        )
      ).rows,
    ).toEqual([{ relname: 'orders' }, { relname: 'shipments' }]);
    const cols = (await run(g, "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position")).rows?.map(
      (r) => r.column_name,
    );
    expect(cols).toEqual(['id', 'region', 'amount', 'status', 'ordered_at']);
    expectNoAcmeNames((await run(g, "SELECT 'customers'::regclass")).error, "'customers'::regclass");
    const psql = (cmd: string) =>
      new Promise<{ stdout: string; stderr: string }>((done) =>
        execFile(
          'psql',
          ['-X', '-A', '-t', '-c', cmd, `host=127.0.0.1 port=${gh.port} dbname=warehouse user=${GLOBEX_BOB} sslmode=disable connect_timeout=10`],
          { env: { ...process.env, PGPASSWORD: DEMO_PASSWORD }, timeout: 30_000 },
          (_err, stdout, stderr) => done({ stdout, stderr }),
        ),
      );
    const dt = await psql('\\dt');
    expect(dt.stderr).toBe('');
    expect(
      dt.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('|')[1]),
    ).toEqual(['orders', 'shipments']);
    const d = await psql('\\d customers');
    expect(d.stderr).toMatch(/Did not find any relation named "customers"/);
    const l = await psql('\\l');
    expect(l.stdout + l.stderr).not.toMatch(/acme|ledger/i);
  });
});

describe('session state of one org is out of reach of the other', () => {
  it("acme's prepared statements, SQL cursors and protocol-level statements are unknown to globex's session, worded as names nobody made", async () => {
    const a = await connect(ACME_BOB);
    await run(a, 'BEGIN');
    expect((await run(a, 'PREPARE acme_stmt AS SELECT region FROM orders')).error).toBeUndefined();
    expect((await run(a, 'DECLARE acme_cur CURSOR WITH HOLD FOR SELECT region FROM orders')).error).toBeUndefined();
    await run(a, 'COMMIT');
    // A named protocol-level statement (Parse 'acme_proto'), kept by acme's session.
    expect((await a.query({ name: 'acme_proto', text: 'SELECT count(*) FROM orders' })).rows).toHaveLength(1);
    const g = await connect(GLOBEX_BOB);
    try {
      for (const [theirs, nobody] of [
        ['EXECUTE acme_stmt', 'EXECUTE nosuch_stmt'],
        ['FETCH 1 FROM acme_cur', 'FETCH 1 FROM nosuch_cur'],
        ['MOVE 1 IN acme_cur', 'MOVE 1 IN nosuch_cur'],
        ['CLOSE acme_cur', 'CLOSE nosuch_cur'],
        ['DEALLOCATE acme_stmt', 'DEALLOCATE nosuch_stmt'],
      ]) {
        const x = (await run(g, theirs)).error;
        const y = (await run(g, nobody)).error;
        expect(x?.code, theirs).toMatch(/^(26000|34000)$/);
        sameBut(x, theirs.split(' ').at(-1)!, y, nobody.split(' ').at(-1)!);
      }
      // A Bind of acme's protocol-level statement from globex's session: 26000, as for any name.
      const raw = await RawClient.connect({ port: gh.port, user: GLOBEX_BOB, password: DEMO_PASSWORD });
      const bound = await raw.query(Buffer.concat([serialize.bind({ statement: 'acme_proto' }), serialize.execute({}), serialize.sync()]));
      expect(bound.errors).toHaveLength(1);
      expect(bound.errors[0].C).toBe('26000');
      expect(JSON.stringify(bound.errors[0])).not.toMatch(/acme_proto.*exists elsewhere|acme\.example|organization acme/);
      expect(bound.rows).toBe(0);
      await raw.close();
      // acme's session still has all three.
      expect((await run(a, 'FETCH 1 FROM acme_cur')).rows).toEqual([{ region: 'EMEA' }]);
      expect((await run(a, 'EXECUTE acme_stmt')).rows?.length).toBeGreaterThan(0);
      expect((await a.query({ name: 'acme_proto', text: 'SELECT count(*) FROM orders' })).rows).toHaveLength(1);
    } finally {
      await g.end();
      await a.end();
    }
  });

  it("a CancelRequest from globex with acme's process id does nothing; acme's own key cancels", async () => {
    const carol = await connect(CAROL);
    const g = await RawClient.connect({ port: gh.port, user: GLOBEX_BOB, password: DEMO_PASSWORD });
    const key = carol as unknown as { processID: number; secretKey: number };
    const sendCancel = async (pid: number, secret: number) => {
      const s = await RawClient.socket(gh.port);
      s.on('error', () => {});
      s.end(serialize.cancel(pid, secret));
      await new Promise<void>((r) => s.once('close', () => r()));
    };
    try {
      const slow = run(carol, 'SELECT pg_sleep(1.5) AS slept');
      await new Promise((r) => setTimeout(r, 300));
      // globex's own secret with carol's process id, and carol's pid with a secret one off.
      await sendCancel(key.processID, g.backendKey!.secret);
      await sendCancel(key.processID, (key.secretKey ^ 1) | 0);
      await sendCancel(g.backendKey!.pid, key.secretKey);
      expect((await slow).rows).toEqual([{ slept: '' }]);
      // The same query with carol's own key is canceled: the test above could fail.
      const again = run(carol, 'SELECT pg_sleep(5) AS slept');
      await new Promise((r) => setTimeout(r, 300));
      await sendCancel(key.processID, key.secretKey);
      expect((await again).error?.code).toBe('57014');
      // globex's session was not canceled either.
      expect((await g.query('SELECT count(*) FROM orders', { keepRows: 1 })).firstRows).toEqual([['600']]);
    } finally {
      await g.close();
      await carol.end();
    }
  });
});

describe('audit', () => {
  it('every record carries the org of the person it is about', async () => {
    // A failed sign-in of each bob, so auth records are in the trail too.
    expect(await connectError(`${GLOBEX_BOB}`, 'warehouse')).toBeUndefined();
    const fail = async (user: string) => {
      const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user, password: 'wrong', database: 'warehouse' });
      c.on('error', () => {});
      await c.connect().catch(() => {});
    };
    await fail(GLOBEX_BOB);
    await fail(ACME_BOB);
    await new Promise((r) => setTimeout(r, 200));
    const records = readFileSync(auditPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const about = (r: Record<string, unknown>) =>
      String(r.user ?? '')
        .trim()
        .toLowerCase();
    const globex = records.filter((r) => about(r).endsWith('@globex.example'));
    const acme = records.filter((r) => about(r).endsWith('@acme.example'));
    expect(globex.length).toBeGreaterThan(20);
    expect(acme.length).toBeGreaterThan(10);
    for (const r of globex) expect(r.org, JSON.stringify(r)).toBe('globex');
    for (const r of acme) expect(r.org, JSON.stringify(r)).toBe('acme');
    expect(globex.some((r) => r.type === 'auth_failed')).toBe(true);
    expect(globex.filter((r) => r.type === 'statement').length).toBeGreaterThan(10);
    // The SQL Gatehouse sent for globex names no acme relation or column the person did not type.
    for (const r of globex.filter((x) => Array.isArray(x.sent_sql))) {
      for (const name of ['customers', 'employees', 'customer_id', 'sales_territory', 'EMEA']) {
        if (!String(r.statement).includes(name)) expect(JSON.stringify(r.sent_sql), String(r.statement)).not.toContain(name);
      }
    }
    expect(existsSync(auditPath)).toBe(true);
  });
});

describe('one email in two orgs', () => {
  it('is refused at load: the identity must decide the org', () => {
    for (const spelling of [ACME_BOB, 'BOB@Acme.Example']) {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tenants-dup-'));
      cpSync(DEMO_RULES, dir, { recursive: true });
      const org = join(dir, 'globex/org.yaml');
      writeFileSync(org, `${readFileSync(org, 'utf8').trimEnd()}\n  - email: ${spelling}\n    groups: [ops]\n`);
      let err: unknown;
      try {
        loadRules(dir);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RulesError);
      expect((err as RulesError).problems).toEqual([
        { file: 'globex/org.yaml', path: 'users.1.email', reason: 'user bob@acme.example already exists (in org acme)' },
      ]);
    }
  });
});
