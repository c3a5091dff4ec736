// Every smuggling case (test/fixtures/smuggling.ts) replayed end to end: real psql as
// bob through the real Gatehouse, on the embedded warehouse and on the local PostgreSQL.
//
// "The governed answer" is established differentially, never hard-coded: in a test
// database on the local PostgreSQL, schema `bob_view` holds `orders` and `customers` as
// security_barrier views of exactly bob's topics (the topic's fields, region = 'EMEA'),
// readable by a role that can read nothing else. The same SQL run there with
// search_path=bob_view is what bob is entitled to see. For every case:
//   - the attempt is refused (psql fails, ERROR with SQLSTATE 42501/42601/0A000, no
//     output) or, for 'governed', succeeds with exactly the governed answer;
//   - the twin succeeds with exactly the governed answer.
// A classifier that refuses everything fails on the twins; one that lets a non-topic
// through fails on the attempts.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { smugglingCases } from '../fixtures/smuggling.ts';
import { DEMO_PASSWORD, DEMO_RULES, demoRulesWith, postgresWarehouseYaml, startGatehouse } from '../helpers/gatehouse.ts';
import { PG, createAcmeWarehouse, psqlAdmin, requirePostgres } from '../helpers/servers.ts';

const DB = 'gatehouse_it_smuggle';
const REF_ROLE = 'gatehouse_smuggle_bob';
const BOB = 'bob@acme.example';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// Both sides run the same psql with the same session settings, so formatting agrees.
const sessionEnv = { PGTZ: 'UTC', PGDATESTYLE: 'ISO, MDY', PGCLIENTENCODING: 'UTF8' };

function runPsql(conninfo: string, sql: string, env: Record<string, string>): Promise<Run> {
  return new Promise((done) => {
    execFile(
      'psql',
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', conninfo, '-c', sql],
      { env: { ...process.env, ...sessionEnv, ...env }, timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** bob through Gatehouse. */
function asBob(gh: { port: number }, sql: string): Promise<Run> {
  return runPsql(`host=127.0.0.1 port=${gh.port} dbname=warehouse user=${BOB} connect_timeout=10`, sql, {
    PGPASSWORD: DEMO_PASSWORD,
    PGSSLMODE: 'prefer',
  });
}

/**
 * The same SQL straight on PostgreSQL over bob's security_barrier views. Names that
 * Gatehouse resolves to topics through a qualification (`public.orders`,
 * `warehouse.public.orders`) name the views here; `COPY <topic> TO` becomes
 * `COPY (SELECT * FROM <topic>) TO` since PostgreSQL cannot COPY a view.
 */
function referenceSql(sql: string): string {
  return sql
    .replace(/\bwarehouse\.public\.(orders|customers)\b/gi, `${DB}.bob_view.$1`)
    .replace(/\bpublic\.(orders|customers)\b/gi, 'bob_view.$1')
    .replace(/^\s*COPY\s+(orders|customers)\s+TO\b/i, 'COPY (SELECT * FROM $1) TO');
}

function reference(sql: string): Promise<Run> {
  return runPsql(`host=${PG.host} port=${PG.port} dbname=${DB} user=${REF_ROLE} connect_timeout=10`, referenceSql(sql), {
    PGOPTIONS: '-c search_path=bob_view',
  });
}

/** psql -A -t lines; sorted unless the statement ends in a top-level ORDER BY we can trust. */
function answerLines(sql: string, stdout: string): string[] {
  const lines = stdout.split('\n');
  while (lines.length && lines.at(-1) === '') lines.pop();
  const orderedAtTop = /\bORDER BY\b[^()]*$/i.test(sql.trim());
  return orderedAtTop ? lines : [...lines].sort();
}

function setUpReference(): void {
  createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
  psqlAdmin(
    DB,
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${REF_ROLE}') THEN
         CREATE ROLE ${REF_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
       END IF;
     END $$;
     REVOKE ALL ON SCHEMA public FROM PUBLIC;
     CREATE SCHEMA bob_view;
     CREATE VIEW bob_view.orders WITH (security_barrier) AS
       SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders WHERE region = 'EMEA';
     CREATE VIEW bob_view.customers WITH (security_barrier) AS
       SELECT id, name, region, created_at FROM public.customers WHERE region = 'EMEA';
     GRANT CONNECT ON DATABASE ${DB} TO ${REF_ROLE};
     GRANT USAGE ON SCHEMA bob_view TO ${REF_ROLE};
     GRANT SELECT ON bob_view.orders, bob_view.customers TO ${REF_ROLE};`,
  );
}

const warehouses: [string, () => Promise<string>][] = [
  ['embedded (PostgreSQL server)', async () => DEMO_RULES],
  ['postgres (local server, least-privilege account)', async () => demoRulesWith(postgresWarehouseYaml(DB))],
];

// The reference database doubles as the PostgreSQL warehouse: bob_view is invisible to
// Gatehouse's account (no USAGE), and acme's tables are as createAcmeWarehouse leaves them.
let referenceReady: Promise<void> | undefined;
function ensureReference(): Promise<void> {
  referenceReady ??= (async () => {
    await requirePostgres();
    setUpReference();
  })();
  return referenceReady;
}

describe('the reference (bob_view on PostgreSQL) is itself sound', () => {
  beforeAll(ensureReference);

  it('sees EMEA only and cannot read non-topics', async () => {
    const r = await reference('SELECT region, count(*) FROM orders GROUP BY 1');
    expect(r.stdout.trim()).toBe('EMEA|1667');
    const e = await reference('SELECT * FROM public.employees');
    expect(e.code).not.toBe(0);
    expect(e.stderr).toMatch(/ERROR: {2}42501: permission denied/);
  });
});

const SQLSTATE_OF_REFUSAL = /^ERROR: {2}(42501|42601|0A000): /m;

describe.each(warehouses)('smuggling attempts by bob through Gatehouse on %s', (name, rulesFor) => {
  let gh: RunningGatehouse;
  const tally = { cases: 0, refused: 0, governed: 0, catalog: 0, twins: 0 };

  beforeAll(async () => {
    await ensureReference();
    gh = await startGatehouse(await rulesFor());
  });
  afterAll(async () => {
    await gh?.close();
    console.log(
      `smuggling on ${name}: ${tally.cases} cases, ${tally.refused} refused, ${tally.governed} governed, ${tally.catalog} answered by the topic catalog, ${tally.twins} twins passed`,
    );
  });

  async function expectGovernedAnswer(sql: string, got: Run): Promise<void> {
    const ref = await reference(sql);
    expect(ref.code, `reference run failed for ${referenceSql(sql)}: ${ref.stderr}`).toBe(0);
    expect(got.stderr, `through Gatehouse: ${sql}`).toBe('');
    expect(got.code).toBe(0);
    expect(answerLines(sql, got.stdout), sql).toEqual(answerLines(sql, ref.stdout));
  }

  for (const c of smugglingCases) {
    it(`${c.expect}: ${c.name}`, async () => {
      const r = await asBob(gh, c.sql);
      if (c.expect === 'refused') {
        expect(r.code, `${c.sql} ran: ${r.stdout.slice(0, 300)}`).not.toBe(0);
        expect(r.stderr, c.sql).toMatch(SQLSTATE_OF_REFUSAL);
        expect(r.stdout, 'nothing of a refused statement runs').toBe('');
        tally.refused++;
      } else if (c.expect === 'catalog') {
        // The topic catalog answers (or errors: `'employees'::regclass` is 42P01 there): nothing of the warehouse's catalog.
        expect(r.stdout, c.sql).not.toMatch(/\b(employees|email|ssn|salary)\b/);
        if (r.code === 0) expect(r.stdout, c.sql).not.toBe('');
        else expect(r.stderr, c.sql).toMatch(/^ERROR: {2}(42P01|42501|0A000): /m);
        tally.catalog++;
      } else {
        await expectGovernedAnswer(c.sql, r);
        tally.governed++;
      }
      tally.cases++;
    });

    it(`twin allowed with the governed answer: ${c.name}`, async () => {
      const r = await asBob(gh, c.twin);
      if (/^\s*EXPLAIN\b/i.test(c.twin)) {
        // Gatehouse answers EXPLAIN itself with the rewritten SQL: that SQL, run as
        // the warehouse account would, must give the governed answer of the query.
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const rewritten = r.stdout.trim();
        expect(rewritten).toMatch(/region = 'EMEA'/);
        const inner = c.twin.replace(/^\s*EXPLAIN\s+/i, '');
        const direct = psqlAdmin(DB, `SET TimeZone = 'UTC';\n${rewritten};`);
        const ref = await reference(inner);
        expect(ref.code, ref.stderr).toBe(0);
        expect(answerLines(inner, direct)).toEqual(answerLines(inner, ref.stdout));
      } else {
        await expectGovernedAnswer(c.twin, r);
      }
      tally.twins++;
    });
  }
});
