// Least privilege per level (issue 11): a query_topics session runs as the connection's
// topics account, and start() refuses a topics account that can do anything but SELECT
// the topics' fields. Each case is what an operator (or an attacker who got a GRANT in)
// could leave behind; every one must stop the connection with the check and the object.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RulesError, loadRules, topicsOf } from '../../../src/config/load.ts';
import type { Connection, PostgresConnection, Topic } from '../../../src/config/model.ts';
import { GatehouseError } from '../../../src/errors.ts';
import { PostgresWarehouse } from '../../../src/warehouses/postgres.ts';
import type { RunningGatehouse } from '../../../src/serve.ts';
import { DEMO_PASSWORD, DEMO_RULES, asUser, demoRulesWith, postgresWarehouseYaml, startGatehouse } from '../../helpers/gatehouse.ts';
import { RawClient } from '../../helpers/raw-client.ts';
import { createAcmeWarehouse, psqlAdmin, requirePostgres, topicsAccountSql } from '../../helpers/servers.ts';

const DB = 'gatehouse_it_topics_account';
// Roles of this file only: roles are cluster-wide, and these get broken on purpose.
const TOPICS = 'gh_lp_topics';
const READER = 'gh_lp_reader';

const demoTopics = (): Topic[] => [...topicsOf(loadRules(DEMO_RULES).orgs.get('acme')!, 'warehouse').values()];

function connection(target: Partial<PostgresConnection> = {}): Connection {
  return {
    name: 'warehouse',
    org: 'acme',
    target: { kind: 'postgres', host: '127.0.0.1', port: 5432, database: DB, user: READER, topics_user: TOPICS, allow_superuser: false, ...target },
    allow_writes: false,
    permissions: { default: 'no_access', groups: {}, users: {} },
    topics_schema: 'topics',
  };
}

async function startError(conn = connection()): Promise<GatehouseError | undefined> {
  return new PostgresWarehouse(conn, undefined, demoTopics()).start().then(
    () => undefined,
    (e) => e,
  );
}

beforeAll(async () => {
  await requirePostgres();
  createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
  psqlAdmin(
    DB,
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${READER}') THEN CREATE ROLE ${READER} LOGIN; END IF;
     END $$;
     ALTER ROLE ${READER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
     GRANT CONNECT ON DATABASE ${DB} TO ${READER};
     GRANT USAGE ON SCHEMA public TO ${READER};
     GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${READER};
     CREATE SEQUENCE public.invoice_no;
     CREATE SCHEMA hr;
     CREATE VIEW hr.salaries AS SELECT name, salary FROM public.employees;
     ${topicsAccountSql(DB, TOPICS)}
     ALTER ROLE ${TOPICS} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION;`,
  );
});

describe('the topics account, checked at start', () => {
  it("accepts an account with SELECT on exactly the topics' fields, no TEMP and no memberships", async () => {
    expect(await startError()).toBeUndefined();
  });

  const cases: { name: string; grant: string; revoke: string; reason: RegExp }[] = [
    {
      name: 'SELECT on the whole customers table (email too)',
      grant: `GRANT SELECT ON public.customers TO ${TOPICS}`,
      revoke: `REVOKE SELECT ON public.customers FROM ${TOPICS}; GRANT SELECT (id, name, region, created_at) ON public.customers TO ${TOPICS}`,
      reason: /columns email of table public\.customers/,
    },
    {
      name: 'SELECT on customers.email alone',
      grant: `GRANT SELECT (email) ON public.customers TO ${TOPICS}`,
      revoke: `REVOKE SELECT (email) ON public.customers FROM ${TOPICS}`,
      reason: /columns email of table public\.customers/,
    },
    {
      name: 'SELECT on employees',
      grant: `GRANT SELECT ON public.employees TO ${TOPICS}`,
      revoke: `REVOKE SELECT ON public.employees FROM ${TOPICS}`,
      reason: /can SELECT table public\.employees, which is no topic's base relation/,
    },
    {
      name: 'SELECT on one column of employees',
      grant: `GRANT SELECT (name) ON public.employees TO ${TOPICS}`,
      revoke: `REVOKE SELECT (name) ON public.employees FROM ${TOPICS}`,
      reason: /table public\.employees/,
    },
    {
      name: 'SELECT on employees through PUBLIC',
      grant: `GRANT SELECT ON public.employees TO PUBLIC`,
      revoke: `REVOKE SELECT ON public.employees FROM PUBLIC`,
      reason: /table public\.employees/,
    },
    {
      name: 'a view over employees in another schema',
      grant: `GRANT USAGE ON SCHEMA hr TO ${TOPICS}; GRANT SELECT ON hr.salaries TO ${TOPICS}`,
      revoke: `REVOKE SELECT ON hr.salaries FROM ${TOPICS}; REVOKE USAGE ON SCHEMA hr FROM ${TOPICS}`,
      reason: /view hr\.salaries/,
    },
    {
      name: 'a sequence',
      grant: `GRANT USAGE ON SEQUENCE public.invoice_no TO ${TOPICS}`,
      revoke: `REVOKE USAGE ON SEQUENCE public.invoice_no FROM ${TOPICS}`,
      reason: /sequence public\.invoice_no/,
    },
    {
      name: 'UPDATE on a topic column',
      grant: `GRANT UPDATE (status) ON public.orders TO ${TOPICS}`,
      revoke: `REVOKE UPDATE (status) ON public.orders FROM ${TOPICS}`,
      reason: /INSERT, UPDATE or REFERENCES columns status of table public\.orders/,
    },
    {
      name: 'INSERT on a topic base',
      grant: `GRANT INSERT ON public.orders TO ${TOPICS}`,
      revoke: `REVOKE INSERT ON public.orders FROM ${TOPICS}`,
      reason: /other than SELECT on table public\.orders/,
    },
    {
      name: 'TRUNCATE on a topic base',
      grant: `GRANT TRUNCATE ON public.orders TO ${TOPICS}`,
      revoke: `REVOKE TRUNCATE ON public.orders FROM ${TOPICS}`,
      reason: /other than SELECT on table public\.orders/,
    },
    {
      name: 'TEMP through PUBLIC (the default)',
      grant: `GRANT TEMP ON DATABASE ${DB} TO PUBLIC`,
      revoke: `REVOKE TEMP ON DATABASE ${DB} FROM PUBLIC`,
      reason: /temporary tables/,
    },
    {
      name: 'TEMP granted to the account',
      grant: `GRANT TEMP ON DATABASE ${DB} TO ${TOPICS}`,
      revoke: `REVOKE TEMP ON DATABASE ${DB} FROM ${TOPICS}`,
      reason: /temporary tables/,
    },
    {
      name: 'CREATE on the database',
      grant: `GRANT CREATE ON DATABASE ${DB} TO ${TOPICS}`,
      revoke: `REVOKE CREATE ON DATABASE ${DB} FROM ${TOPICS}`,
      reason: /create schemas/,
    },
    {
      name: 'CREATE on schema public',
      grant: `GRANT CREATE ON SCHEMA public TO ${TOPICS}`,
      revoke: `REVOKE CREATE ON SCHEMA public FROM ${TOPICS}`,
      reason: /create objects in schema public/,
    },
    ...[
      'pg_read_server_files',
      'pg_signal_backend',
      'pg_read_all_data',
      'pg_monitor',
      'pg_read_all_stats',
      'pg_write_server_files',
      'pg_execute_server_program',
    ].map((r) => ({
      name: `membership of ${r}`,
      grant: `GRANT ${r} TO ${TOPICS}`,
      revoke: `REVOKE ${r} FROM ${TOPICS}`,
      reason: new RegExp(`member of ${r}`),
    })),
    {
      name: 'membership of an ordinary role',
      grant: `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gh_lp_friends') THEN CREATE ROLE gh_lp_friends; END IF; END $$; GRANT gh_lp_friends TO ${TOPICS}`,
      revoke: `REVOKE gh_lp_friends FROM ${TOPICS}`,
      reason: /member of gh_lp_friends/,
    },
    {
      name: 'EXECUTE on a SECURITY DEFINER function (PUBLIC has EXECUTE by default)',
      grant: `CREATE FUNCTION public.salary_of(text) RETURNS numeric LANGUAGE sql SECURITY DEFINER AS 'SELECT salary FROM public.employees WHERE name = $1'`,
      revoke: `DROP FUNCTION public.salary_of(text)`,
      reason: /SECURITY DEFINER functions public\.salary_of/,
    },
    { name: 'SUPERUSER', grant: `ALTER ROLE ${TOPICS} SUPERUSER`, revoke: `ALTER ROLE ${TOPICS} NOSUPERUSER`, reason: /is a superuser/ },
    { name: 'CREATEROLE', grant: `ALTER ROLE ${TOPICS} CREATEROLE`, revoke: `ALTER ROLE ${TOPICS} NOCREATEROLE`, reason: /CREATEROLE/ },
    { name: 'CREATEDB', grant: `ALTER ROLE ${TOPICS} CREATEDB`, revoke: `ALTER ROLE ${TOPICS} NOCREATEDB`, reason: /CREATEDB/ },
    { name: 'BYPASSRLS', grant: `ALTER ROLE ${TOPICS} BYPASSRLS`, revoke: `ALTER ROLE ${TOPICS} NOBYPASSRLS`, reason: /BYPASSRLS/ },
    { name: 'REPLICATION', grant: `ALTER ROLE ${TOPICS} REPLICATION`, revoke: `ALTER ROLE ${TOPICS} NOREPLICATION`, reason: /REPLICATION/ },
    {
      name: 'a topic field it cannot read',
      grant: `REVOKE SELECT (amount) ON public.orders FROM ${TOPICS}`,
      revoke: `GRANT SELECT (amount) ON public.orders TO ${TOPICS}`,
      reason: /cannot SELECT columns amount of table public\.orders/,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, async () => {
      psqlAdmin(DB, c.grant);
      try {
        const err = await startError();
        expect(err, 'start() must refuse').toBeInstanceOf(GatehouseError);
        expect(err!.sqlstate).toBe('42501');
        expect(err!.message).toContain(`topics account "${TOPICS}" of connection "warehouse"`);
        expect(err!.message).toMatch(c.reason);
      } finally {
        psqlAdmin(DB, c.revoke);
      }
      expect(await startError()).toBeUndefined();
    });
  }

  it('refuses a topic whose base relation does not exist', async () => {
    const topics = [
      ...demoTopics(),
      { name: 'ghost', org: 'acme', connection: 'warehouse', base: { schema: 'public', table: 'ghost' }, fields: ['id'], access_filters: [] },
    ];
    const err = await new PostgresWarehouse(connection(), undefined, topics).start().then(
      () => undefined,
      (e) => e,
    );
    expect(err?.message).toMatch(/cannot see public\.ghost, the base relation of topic ghost/);
  });

  it('a query_topics session connects as the topics account, never the querier account', async () => {
    const wh = new PostgresWarehouse(connection(), undefined, demoTopics());
    const s = await wh.openSession({ params: { application_name: 'gh-lp-probe' }, readOnly: true, account: 'topics' });
    try {
      const who = psqlAdmin(DB, `SELECT usename FROM pg_stat_activity WHERE application_name = 'gh-lp-probe'`).trim();
      expect(who).toBe(TOPICS);
    } finally {
      await s.close();
    }
    const none = new PostgresWarehouse(connection({ topics_user: undefined }), undefined, demoTopics());
    await expect(none.openSession({ params: {}, readOnly: true, account: 'topics' })).rejects.toMatchObject({ sqlstate: '42501' });
  });
});

describe('the querier account, checked at start', () => {
  for (const r of [
    'pg_read_server_files',
    'pg_write_server_files',
    'pg_execute_server_program',
    'pg_signal_backend',
    'pg_read_all_data',
    'pg_write_all_data',
  ]) {
    it(`refuses membership of ${r} unless allow_superuser`, async () => {
      psqlAdmin(DB, `GRANT ${r} TO ${READER}`);
      try {
        const err = await startError();
        expect(err?.sqlstate).toBe('42501');
        expect(err?.message).toContain(`warehouse account "${READER}"`);
        expect(err?.message).toContain(`member of ${r}`);
        expect(await startError(connection({ allow_superuser: true }))).toBeUndefined();
      } finally {
        psqlAdmin(DB, `REVOKE ${r} FROM ${READER}`);
      }
    });
  }
});

describe('rules: a postgres connection with topics needs a topics account', () => {
  const without = (extra = '') => postgresWarehouseYaml(DB).replace(/^topics_user: .*\n/m, extra);
  it('refuses the connection at load, saying to add topics_user', () => {
    const err = (() => {
      try {
        loadRules(demoRulesWith(without()));
      } catch (e) {
        return e;
      }
    })() as RulesError;
    expect(err).toBeInstanceOf(RulesError);
    expect(err.problems).toContainEqual(
      expect.objectContaining({ file: 'acme/connections/warehouse.yaml', path: 'topics_user', reason: expect.stringMatching(/add topics_user/) }),
    );
  });

  it('refuses timeouts that are not durations (they become upstream settings)', () => {
    for (const bad of ["'30s -c role=postgres'", "'1 s'", "'-1'", "'30 parsecs'", 'true']) {
      expect(() => loadRules(demoRulesWith(`${postgresWarehouseYaml(DB)}topics_statement_timeout: ${bad}\n`)), bad).toThrow(RulesError);
    }
    const ok = loadRules(demoRulesWith(`${postgresWarehouseYaml(DB)}topics_statement_timeout: 5min\ntopics_idle_in_transaction_session_timeout: 2500\n`));
    const t = ok.orgs.get('acme')!.connections.get('warehouse')!.target as PostgresConnection;
    expect([t.topics_statement_timeout, t.topics_idle_in_transaction_session_timeout]).toEqual(['5min', '2500ms']);
  });
});

describe('through Gatehouse: query_topics sessions on the topics account', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(
      demoRulesWith(
        `${postgresWarehouseYaml(DB).replace('gatehouse_topics', TOPICS).replace('gatehouse_reader', READER)}topics_statement_timeout: 300ms\ntopics_idle_in_transaction_session_timeout: 700ms\n`,
      ),
    );
  });
  afterAll(async () => gh?.close());

  it('bob reads topics as the topics account, and carol reads as the querier account', async () => {
    const bob = await asUser(gh, 'bob@acme.example', 'SELECT count(*) AS n FROM orders');
    expect(bob.rows?.[0].n).toBeDefined();
    const carol = await asUser(gh, 'carol@acme.example', 'SELECT count(*) AS n FROM employees');
    expect(carol.rows?.[0].n).toBeDefined();
  });

  it('a governed statement that runs longer than topics_statement_timeout is cancelled', async () => {
    const r = await asUser(gh, 'bob@acme.example', 'SELECT count(*) FROM orders a, orders b, orders c');
    expect(r.code).toBe('57014');
    expect(r.message).toMatch(/statement timeout/);
    // Queriers are not governed by it.
    const carol = await asUser(gh, 'carol@acme.example', 'SELECT count(*) AS n FROM (SELECT 1 FROM orders a, orders b LIMIT 3000000) x');
    expect(carol.rows?.[0].n).toBe('3000000');
  });

  it('a governed session left idle in a transaction longer than topics_idle_in_transaction_session_timeout loses it', async () => {
    const c = await RawClient.connect({ port: gh.port, user: 'bob@acme.example', password: DEMO_PASSWORD });
    try {
      await c.query('BEGIN');
      expect((await c.query('SELECT count(*) FROM orders')).errors).toEqual([]);
      await new Promise((r) => setTimeout(r, 2000));
      const r = await c.query('SELECT count(*) FROM orders');
      expect(r.closedEarly || r.errors.length > 0).toBe(true);
    } finally {
      await c.close();
    }
    // A querier idling as long keeps its transaction.
    const q = await RawClient.connect({ port: gh.port, user: 'carol@acme.example', password: DEMO_PASSWORD });
    try {
      await q.query('BEGIN');
      await new Promise((r) => setTimeout(r, 2000));
      const r = await q.query('SELECT 1');
      expect(r.errors).toEqual([]);
      expect(r.status).toBe('T');
    } finally {
      await q.close();
    }
  });
});
