// Security by construction (issue 11), end to end through real psql and the pg driver on
// both warehouses: the warehouse reads exactly what Gatehouse read, the session's identity
// is the person's, and a declared parameter type cannot look a name up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { serialize } from 'pg-protocol';
import { DEMO_PASSWORD, asUser, demoWarehouses, psql, startGatehouse } from '../helpers/gatehouse.ts';
import { RawClient } from '../helpers/raw-client.ts';

const PG_DATABASE = 'gatehouse_it_construction';

describe.each(demoWarehouses(PG_DATABASE))('security by construction on %s', (_name, rulesFor) => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse(await rulesFor());
  });
  afterAll(async () => {
    await gh?.close();
  });

  const injection = "SET application_name TO 'x\\', ' ; SELECT name, ssn, salary FROM employees ; -- '";

  for (const user of ['bob@acme.example', 'carol@acme.example']) {
    it(`${user}: SET standard_conforming_strings = off is refused, and the backslash SET stays one SET`, async () => {
      const off = await psql(gh, user, 'SET standard_conforming_strings = off');
      expect(off.code).not.toBe(0);
      expect(off.stderr).toMatch(/standard_conforming_strings stays on/);
      // Even if a client tries every spelling, the upstream session reads strings as Gatehouse does.
      for (const q of ['SET standard_conforming_strings TO false', "SET LOCAL standard_conforming_strings = 'off'", 'SET standard_conforming_strings = 0']) {
        expect((await psql(gh, user, q)).code, q).not.toBe(0);
      }
      const r = await psql(gh, user, `${injection}; SHOW application_name; SHOW standard_conforming_strings`);
      expect(r.stderr).not.toMatch(/ssn|salary/);
      expect(r.stdout).not.toMatch(/\d{3}-\d{2}-\d{4}/);
    });
  }

  it("carol's string literal cannot carry statements out of her read-only transaction", async () => {
    // Two literals with standard_conforming_strings on (as Gatehouse and the pinned warehouse
    // read it); with it off, the same text would be a SELECT, a SET, a COMMIT and a CREATE.
    const tail = '; SET default_transaction_read_only = off; COMMIT; CREATE TABLE pwned(i int); --';
    const r = await asUser(gh, 'carol@acme.example', `SELECT 'a\\' AS a, '${tail}' AS b`);
    expect(r.code, r.message).toBeUndefined();
    expect(r.rows).toEqual([{ a: 'a\\', b: tail }]);
    const t = await asUser(gh, 'carol@acme.example', "SELECT count(*) AS n FROM pg_class WHERE relname = 'pwned'");
    expect(t.rows).toEqual([{ n: '0' }]);
  });

  it('the warehouse session keeps standard_conforming_strings on, whatever the client sends', async () => {
    for (const user of ['bob@acme.example', 'carol@acme.example']) {
      const r = await asUser(gh, user, "SELECT 'a\\b' AS s, current_setting('standard_conforming_strings') AS scs");
      expect(r.rows, user).toEqual([{ s: 'a\\b', scs: 'on' }]);
    }
  });

  it("bob's session identity is his email and the connection's name", async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT current_user, session_user, current_database(), user, current_catalog');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('bob@acme.example|bob@acme.example|warehouse|bob@acme.example|warehouse');
  });

  it('column notation and row types are refused through the server too', async () => {
    for (const q of [
      "SELECT ('SELECT array_to_tsvector(array_agg(ssn)) FROM employees'::text).ts_stat",
      'SELECT (8::float8).pg_sleep',
      'SELECT (NULL::employees).*',
      'SELECT (NULL::public.customers).*',
    ]) {
      const r = await asUser(gh, 'bob@acme.example', q);
      expect(r.code, q).toMatch(/^(42501|0A000)$/);
      expect(r.rows).toBeUndefined();
    }
  });

  it("no function that runs SQL text lifts carol's read-only or bob's catalog session", async () => {
    const lift = "SELECT ts_rewrite('a'::tsquery, $$SELECT 'a'::tsquery, set_config('default_transaction_read_only', 'off', false)::tsquery$$)";
    for (const [user, q] of [
      ['carol@acme.example', lift],
      ['bob@acme.example', `${lift}, version()`],
    ]) {
      const r = await asUser(gh, user, q);
      expect(r.code, `${user}: ${r.message}`).toBe('42501');
    }
    const ro = await asUser(gh, 'carol@acme.example', 'SHOW default_transaction_read_only');
    expect(ro.rows).toEqual([{ default_transaction_read_only: 'on' }]);
  });

  it('a Parse declaring a regclass parameter is refused for bob, before anything looks the name up', async () => {
    const c = await RawClient.connect({ port: gh.port, user: 'bob@acme.example', password: DEMO_PASSWORD, database: 'warehouse' });
    try {
      const batch = (types: number[], value: string) =>
        Buffer.concat([
          serialize.parse({ name: '', text: 'SELECT $1::text AS t', types }),
          serialize.bind({ values: [value] }),
          serialize.describe({ type: 'P', name: '' }),
          serialize.execute({}),
          serialize.sync(),
        ]);
      // Either name gets the same answer: a refusal, not 'employees' for one and 42P01 for the other.
      for (const name of ['employees', 'no_such_table']) {
        const r = await c.query(batch([2205], name), { keepRows: 1 });
        expect(
          r.errors.map((e) => e.C),
          name,
        ).toEqual(['42501']);
        expect(r.rows).toBe(0);
      }
      // regtype, regproc, oid-typed lookups too; a text parameter is fine.
      for (const oid of [2206, 24, 4089, 26]) {
        expect(
          (await c.query(batch([oid], 'employees'))).errors.map((e) => e.C),
          String(oid),
        ).toEqual(['42501']);
      }
      const ok = await c.query(batch([25], 'employees'), { keepRows: 1 });
      expect(ok.errors).toEqual([]);
      expect(ok.firstRows).toEqual([['employees']]);
    } finally {
      await c.close();
    }
  });
});
