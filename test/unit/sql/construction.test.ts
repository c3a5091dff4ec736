// Security by construction (issue 11), in decisions: what reaches the warehouse is what
// Gatehouse read, written by Gatehouse, and every call form is checked.
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/policy/decide.ts';
import type { Decision } from '../../../src/policy/decision.ts';
import { safeLiteral } from '../../../src/sql/session-statement.ts';
import { alice, bob, carol, ctxFor, erin } from '../policy/demo-context.ts';

function sent(d: Decision): string[] {
  expect(d.outcome, JSON.stringify(d)).toBe('run');
  if (d.outcome !== 'run') return [];
  return d.statements.map((s) => (s.action === 'forward' ? s.sql : s.action));
}
function refusedWith(d: Decision): { sqlstate: string; message: string } {
  expect(d.outcome, JSON.stringify(d)).toBe('refuse');
  if (d.outcome !== 'refuse') return { sqlstate: '', message: '' };
  return { sqlstate: d.error.sqlstate, message: d.error.message };
}

describe('lexing settings are pinned', () => {
  for (const q of [
    'SET standard_conforming_strings = off',
    'SET standard_conforming_strings TO false',
    "SET standard_conforming_strings = 'off'",
    'SET SESSION standard_conforming_strings = 0',
    'SET LOCAL standard_conforming_strings = no',
    'set STANDARD_CONFORMING_STRINGS=off',
    "SET client_encoding = 'SJIS'",
    "SET client_encoding TO 'BIG5'",
    'SET backslash_quote = on',
  ]) {
    for (const who of [bob, carol, alice]) {
      it(`${who.user}: ${q} is refused, saying why`, async () => {
        const r = refusedWith(await decide(who, q));
        expect(r.sqlstate).toBe('42501');
        expect(r.message).toMatch(/stays|cannot be turned on/);
      });
    }
  }
  it('turning them on, or to UTF8, is fine', async () => {
    expect(sent(await decide(bob, "SET standard_conforming_strings = on; SET client_encoding = 'UTF8'"))).toEqual([
      "SET standard_conforming_strings TO 'on'",
      "SET client_encoding TO 'UTF8'",
    ]);
  });
  it('a SET hiding a second statement behind a backslash is one SET, written safely', async () => {
    const q = "SET application_name TO 'x\\', ' ; SELECT name, ssn, salary FROM employees ; -- '";
    const [sql] = sent(await decide(bob, q));
    // Two values, as PostgreSQL reads them with standard_conforming_strings on; the backslash is escaped.
    expect(sql).toBe("SET application_name TO E'x\\\\', ' ; SELECT name, ssn, salary FROM employees ; -- '");
  });
  it('literals Gatehouse writes mean the same under either setting', () => {
    expect(safeLiteral("a'b")).toBe("'a''b'");
    expect(safeLiteral('a\\b')).toBe("E'a\\\\b'");
    expect(safeLiteral("\\'; DROP")).toBe("E'\\\\''; DROP'");
  });
  it('transaction statements and SHOW are rewritten from the AST', async () => {
    expect(sent(await decide(bob, 'begin isolation level serializable, read only; SAVEPOINT "a b"; ROLLBACK TO a; show TimeZone; RESET ALL; commit'))).toEqual([
      'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY',
      'SAVEPOINT "a b"',
      'ROLLBACK TO SAVEPOINT a',
      'SHOW timezone',
      'RESET ALL',
      'COMMIT',
    ]);
  });
  it('a COPY option value is written safely', async () => {
    const [sql] = sent(await decide(bob, "COPY (SELECT id FROM orders) TO STDOUT WITH (FORMAT csv, NULL 'x\\', QUOTE '\"')"));
    expect(sql).toContain("NULL E'x\\\\'");
  });
});

describe('session identity is the person, not the warehouse account', () => {
  it('current_user, session_user, user, current_role, current_database() and current_catalog', async () => {
    const [sql] = sent(
      await decide(bob, 'SELECT current_user, session_user, user, current_role, current_database(), current_catalog, pg_catalog.current_user()'),
    );
    expect(sql).not.toMatch(/current_user\b(?!")|session_user\b(?!")|current_database\(/);
    expect(sql).toContain('CAST(\'bob@acme.example\' AS pg_catalog.name) AS "current_user"');
    expect(sql).toContain("CAST('warehouse' AS pg_catalog.name) AS current_database");
  });
  it('inside expressions too', async () => {
    const [sql] = sent(await decide(bob, "SELECT count(*) FROM orders WHERE status <> current_user || '-' || current_database()"));
    expect(sql).toContain("CAST('bob@acme.example' AS pg_catalog.name)");
  });
});

describe('column notation and field selection are calls', () => {
  const attempts = [
    "SELECT ('SELECT ssn FROM employees'::text).ts_stat",
    "SELECT (('x')::text).ts_stat",
    'SELECT (o.status).upper FROM orders o',
    'SELECT o.status.upper FROM orders o',
    "SELECT s.t.ts_stat FROM (SELECT 'x'::text AS t) s",
    'SELECT (ROW(1, 2)).f1',
    "SELECT (ARRAY['x'])[1].ts_stat",
    "SELECT ((SELECT 'x'::text)).ts_stat",
    'SELECT (c.*).email FROM customers c',
    'SELECT c.ts_stat FROM customers c',
  ];
  for (const q of attempts) {
    it(`refused for bob: ${q}`, async () => {
      const r = refusedWith(await decide(bob, q));
      expect(['42501', '0A000']).toContain(r.sqlstate);
    });
  }
  it('denied functions in column notation are refused for queriers too', async () => {
    for (const q of [
      "SELECT ('SELECT 1'::text).ts_stat",
      "SELECT ('/etc/passwd'::text).pg_read_file",
      'SELECT (8::int4).pg_cancel_backend',
      'SELECT x.pg_terminate_backend FROM (SELECT 1 AS x) s',
      "SELECT ('x'::text).lo_import",
    ]) {
      expect(refusedWith(await decide(carol, q)).sqlstate, q).toBe('42501');
    }
  });
  it('a field of a FROM item is fine', async () => {
    for (const q of [
      'SELECT (o).amount, (o).id FROM orders o',
      'SELECT (c).* FROM customers c',
      'SELECT x.n FROM (SELECT 1 AS n) x',
      'SELECT t.x FROM unnest(ARRAY[1]) AS t(x)',
    ]) {
      expect((await decide(bob, q)).outcome, q).toBe('run');
    }
  });
});

describe('types and parameter types name built-in scalar types only', () => {
  for (const q of [
    'SELECT (NULL::employees).*',
    'SELECT NULL::public.customers',
    "SELECT 'x'::xml",
    "SELECT '1'::regtype::text FROM orders",
    'SELECT NULL::orders',
    'SELECT CAST(id AS customers) FROM orders',
    'SELECT NULL::pg_catalog.pg_class',
  ]) {
    it(`refused: ${q}`, async () => {
      expect(refusedWith(await decide(bob, q)).sqlstate).toBe('42501');
    });
  }
  it('built-in casts are fine', async () => {
    expect(
      (await decide(bob, "SELECT id::text, amount::float8, ordered_at::date, '1 day'::interval, status::varchar(10), ARRAY[1]::int[] FROM orders")).outcome,
    ).toBe('run');
  });
});

describe('what is forwarded parses back to the tree that was decided', () => {
  it("a deparser slip (EXTRACT('a.b' FROM x) written as EXTRACT(A.B FROM x)) is refused, not forwarded", async () => {
    const d = await decide(erin, "SELECT id FROM orders WHERE EXTRACT('public.employees' FROM ordered_at) = 2024");
    expect(refusedWith(d).sqlstate).toBe('0A000');
  });
  it('a qualified type the writer would unqualify is refused rather than resolved anew', async () => {
    expect(refusedWith(await decide(bob, "SELECT 'x'::pg_catalog.text")).sqlstate).toBe('0A000');
    expect((await decide(bob, "SELECT 'x'::text, 1::int, now()::timestamptz")).outcome).toBe('run');
  });
});

describe('governed limits', () => {
  it('bob cannot lift the timeouts the connection sets; RESET and SHOW are fine', async () => {
    for (const q of ['SET statement_timeout = 0', 'SET idle_in_transaction_session_timeout TO 0', 'SET LOCAL statement_timeout = 999999']) {
      expect(refusedWith(await decide(bob, q)).sqlstate, q).toBe('42501');
    }
    expect(sent(await decide(bob, 'RESET statement_timeout; SHOW statement_timeout'))).toEqual(['RESET statement_timeout', 'SHOW statement_timeout']);
  });
});

describe("the second outside review's findings", () => {
  const tsRewrite = "SELECT ts_rewrite('a'::tsquery, $$SELECT 'a'::tsquery, set_config('default_transaction_read_only', 'off', false)::tsquery$$)";
  it('ts_rewrite, which runs its second argument as SQL, is refused at every level and on the catalog path', async () => {
    for (const who of [bob, carol, alice]) {
      for (const q of [tsRewrite, `${tsRewrite}, version()`, "SELECT ('a'::tsquery).ts_rewrite", 'SELECT pg_catalog.ts_rewrite(NULL::tsquery, NULL::text)']) {
        expect(refusedWith(await decide(who, q)).sqlstate, `${who.user}: ${q}`).toBe('42501');
      }
    }
  });
  it("other sessions' activity and advisory locks are refused for queriers", async () => {
    for (const q of [
      'SELECT * FROM pg_stat_activity',
      'SELECT * FROM pg_catalog.pg_locks',
      'SELECT pg_stat_get_activity(NULL)',
      'SELECT pg_blocking_pids(1)',
      'SELECT pg_try_advisory_xact_lock(1)',
      'SELECT pg_advisory_lock_shared(1)',
    ]) {
      expect(refusedWith(await decide(carol, q)).sqlstate, q).toBe('42501');
    }
  });
  it('column names the walker cannot be sure of are unknown, so t.fn stays a refusal', async () => {
    for (const q of [
      'SELECT t.pg_typeof, t.hash_record FROM (SELECT (pg_typeof).arr[1], (hash_record).arr[1] FROM (SELECT ARRAY[1] AS arr) AS pg_typeof, (SELECT ARRAY[2] AS arr) AS hash_record) AS t',
      'SELECT t.pg_column_size FROM (SELECT (x).* FROM (SELECT 1 AS pg_column_size) AS x) AS t',
      "SELECT u.hash_record FROM unnest(ARRAY[1], ARRAY['a']) AS u",
      "SELECT u.unnest FROM unnest('a b'::tsvector) AS u",
    ]) {
      expect(refusedWith(await decide(bob, q)).sqlstate, q).toBe('42501');
    }
    // The same shapes naming real columns still run.
    expect((await decide(bob, 'SELECT t.arr FROM (SELECT (x).arr[1] FROM (SELECT ARRAY[1] AS arr) AS x) AS t')).outcome).toBe('run');
  });
  it("the warehouse account's name is not SHOWn, and SQL_ASCII is refused as a SET", async () => {
    expect(refusedWith(await decide(bob, 'SHOW session_authorization')).sqlstate).toBe('42501');
    expect(refusedWith(await decide(bob, "SELECT current_setting('session_authorization')")).sqlstate).toBe('42501');
    expect(refusedWith(await decide(carol, "SET client_encoding = 'SQL_ASCII'")).sqlstate).toBe('42501');
  });
});

describe("the second attack round's findings", () => {
  const writable = ctxFor('carol@acme.example', 'querier', {}, { allowWrites: true });
  it("writes to PostgreSQL's catalog are refused even where writes are allowed (UPDATE pg_settings is set_config)", async () => {
    for (const q of [
      "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
      "UPDATE pg_catalog.pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
      "WITH u AS (UPDATE pg_settings SET setting = 'off' WHERE name = 'x' RETURNING *) SELECT * FROM u",
      "INSERT INTO information_schema.sql_features VALUES ('x')",
      'COPY pg_catalog.pg_settings FROM STDIN',
    ]) {
      expect(refusedWith(await decide(writable, q)).message, q).toMatch(/catalog/);
    }
    expect((await decide(writable, "UPDATE orders SET status = 'x' WHERE id = 1")).outcome).toBe('run');
    // A table of the warehouse's own whose name only starts with pg_ is not the catalog (node-postgres's pg_cursor_test).
    expect((await decide(writable, 'INSERT INTO pg_cursor_test VALUES (1)')).outcome).toBe('run');
    expect((await decide(writable, 'DELETE FROM pg_authid')).outcome).toBe('refuse');
  });
  it('NOTIFY and pg_notify agree: refused on a read-only connection, allowed where writes are, never for query_topics', async () => {
    for (const q of ["NOTIFY ch, 'x'", "SELECT pg_notify('ch', 'x')", "SELECT pg_catalog.pg_notify('ch', 'x')"]) {
      expect(refusedWith(await decide(carol, q)).message, q).toMatch(/^writes are not permitted on connection warehouse/);
      expect((await decide(writable, q)).outcome, q).toBe('run');
      expect((await decide(bob, q)).outcome, q).toBe('refuse');
    }
  });
  it('statistics and activity are refused at every level, on the catalog path too', async () => {
    for (const who of [bob, carol]) {
      for (const q of [
        "SELECT tup_fetched FROM pg_stat_database WHERE datname = 'warehouse'",
        'SELECT * FROM pg_catalog.pg_stat_user_tables',
        'SELECT * FROM pg_statio_user_tables',
        'SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s',
        'SELECT * FROM pg_lock_status()',
        'SELECT pg_stat_get_db_tuples_fetched(1)',
      ]) {
        expect(refusedWith(await decide(who, q)).sqlstate, `${who.user}: ${q}`).toBe('42501');
      }
    }
  });
  it('column names follow PostgreSQL: nested casts, CASE, scalar subqueries, later CTEs of WITH RECURSIVE', async () => {
    for (const q of [
      'SELECT x.int4 FROM (SELECT 1::int4::text) x',
      'SELECT x.upper FROM (SELECT CASE WHEN true THEN 1 ELSE length(status) END FROM orders) x',
      "WITH RECURSIVE a AS (SELECT o.id FROM orders o), orders AS (SELECT 'zz' AS q) SELECT * FROM a",
    ]) {
      expect(refusedWith(await decide(bob, q)).sqlstate, q).toBe('42501');
    }
    for (const q of [
      'SELECT x.case FROM (SELECT CASE WHEN true THEN 1 ELSE 2 END) x',
      'SELECT x.text FROM (SELECT 1::int4::text) x',
      'SELECT x.length FROM (SELECT CASE WHEN true THEN 1 ELSE length(status) END FROM orders) x',
      'SELECT x.n FROM (SELECT (SELECT count(*) AS n FROM orders)) x',
      'SELECT x.count FROM (SELECT (SELECT count(*) FROM orders)) x',
    ]) {
      expect((await decide(bob, q)).outcome, q).toBe('run');
    }
  });
});
