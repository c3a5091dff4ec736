// Issue 16: the startup packet's `options` (PGOPTIONS) decided as the SETs they stand for,
// and the maintenance database names (postgres, template1) that tools connect to first.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRules } from '../../../src/config/load.ts';
import { GatehouseError } from '../../../src/errors.ts';
import { sessionPolicy } from '../../../src/policy/session.ts';
import { decideStartupOptions, parseStartupOptions, splitOptions, startupParameterSettings } from '../../../src/policy/startup-options.ts';
import { bob, carol } from './demo-context.ts';

async function fatalOf(p: Promise<unknown> | (() => unknown)): Promise<GatehouseError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof GatehouseError) return e;
    throw e;
  }
  throw new Error('expected a FATAL refusal');
}

describe('options: split as pg_split_opts does', () => {
  it('whitespace separates, a backslash takes the next character', () => {
    expect(splitOptions('-c statement_timeout=5000')).toEqual(['-c', 'statement_timeout=5000']);
    expect(splitOptions('  -c  a=b\t--c-d=e ')).toEqual(['-c', 'a=b', '--c-d=e']);
    expect(splitOptions('-c application_name=my\\ app\\\\x')).toEqual(['-c', 'application_name=my app\\x']);
    expect(splitOptions('')).toEqual([]);
  });
  it('-c name=value, -cname=value and --name=value are settings; dashes in names are underscores', () => {
    expect(parseStartupOptions('-c statement_timeout=5000 -cDateStyle=ISO --lock-timeout=10s')).toEqual([
      {
        name: 'statement_timeout',
        value: '5000',
        written: 'option -c statement_timeout=5000',
      },
      { name: 'datestyle', value: 'ISO', written: 'option -cDateStyle=ISO' },
      { name: 'lock_timeout', value: '10s', written: 'option --lock-timeout=10s' },
    ]);
  });
  it('any other switch refuses the startup, naming it', async () => {
    for (const [opts, name] of [
      ['-B 100', '-B'],
      ['-c a=b -e', '-e'],
      ['-d 5', '-d'],
      ['geqo=off', 'geqo=off'],
    ]) {
      const e = await fatalOf(() => parseStartupOptions(opts));
      expect(e.sqlstate, opts).toBe('0A000');
      expect(e.severity).toBe('FATAL');
      expect(e.message).toBe(`startup option ${name} is not supported through Gatehouse`);
      expect(e.hint).toMatch(/-c name=value or --name=value/);
    }
    expect((await fatalOf(() => parseStartupOptions('-c statement_timeout'))).sqlstate).toBe('42601');
    expect((await fatalOf(() => parseStartupOptions('-c'))).sqlstate).toBe('42601');
  });
});

describe('options: decided like the SET they stand for', () => {
  it('other startup parameters are settings too (node-postgres sends statement_timeout so), never dropped; replication is refused', async () => {
    expect(
      startupParameterSettings({
        application_name: 'x',
        DateStyle: 'ISO',
        options: '-c a=b',
        statement_timeout: '3000',
        Idle_In_Transaction_Session_Timeout: '3s',
      }),
    ).toEqual([
      { name: 'statement_timeout', value: '3000', written: 'parameter statement_timeout=3000' },
      { name: 'idle_in_transaction_session_timeout', value: '3s', written: 'parameter Idle_In_Transaction_Session_Timeout=3s' },
    ]);
    expect(() => startupParameterSettings({ replication: 'database' })).toThrow(/replication connections are not supported/);
    const sets = await decideStartupOptions(carol, undefined, { statement_timeout: '3000' });
    expect(sets.map((st) => (st.action === 'forward' ? st.sql : ''))).toEqual(["SET statement_timeout TO '3000'"]);
    await expect(decideStartupOptions(bob, undefined, { statement_timeout: '3000' })).rejects.toThrow(/^startup parameter statement_timeout=3000 refused/);
  });
  it("carol's allowed settings become SETs written by Gatehouse", async () => {
    const sets = await decideStartupOptions(carol, '-c statement_timeout=5000 -c application_name=my\\ app');
    expect(sets.map((s) => s.action === 'forward' && s.sql)).toEqual(["SET statement_timeout TO '5000'", "SET application_name TO 'my app'"]);
  });
  it('a value cannot close its literal', async () => {
    const [s] = await decideStartupOptions(carol, "-c application_name=x';DROP\\ TABLE\\ t;--");
    expect(s.action === 'forward' && s.sql).toBe("SET application_name TO 'x'';DROP TABLE t;--'");
  });
  it("bob's governed limit is refused with the SET's own message, as a FATAL", async () => {
    const e = await fatalOf(decideStartupOptions(bob, '-c statement_timeout=5000'));
    expect(e).toMatchObject({ sqlstate: '42501', severity: 'FATAL' });
    expect(e.message).toBe(
      'startup option -c statement_timeout=5000 refused: SET statement_timeout is not permitted for query_topics users on connection warehouse: the connection sets it for governed sessions',
    );
  });
  it('bob may set what he may SET; search_path and the read-only guard are refused at every level', async () => {
    const ok = await decideStartupOptions(bob, '-c DateStyle=ISO,\\ DMY --extra-float-digits=3');
    expect(ok.map((s) => s.action === 'forward' && s.sql)).toEqual(["SET datestyle TO 'ISO, DMY'", "SET extra_float_digits TO '3'"]);
    expect((await fatalOf(decideStartupOptions(bob, '-c search_path=hr'))).message).toMatch(
      /^startup option -c search_path=hr refused: SET search_path is not permitted/,
    );
    for (const ctx of [bob, carol]) {
      expect((await fatalOf(decideStartupOptions(ctx, '-c default_transaction_read_only=off'))).sqlstate).toBe('42501');
      expect((await fatalOf(decideStartupOptions(ctx, '-c standard_conforming_strings=off'))).message).toMatch(/standard_conforming_strings stays on/);
      expect((await fatalOf(decideStartupOptions(ctx, '-c client_encoding=LATIN1'))).message).toMatch(/client_encoding stays UTF8/);
      // Tightening is fine (what the psql read-only recipe sends).
      expect((await decideStartupOptions(ctx, '-c default_transaction_read_only=on')).length).toBe(1);
    }
  });
  it('no options, no statements', async () => {
    expect(await decideStartupOptions(bob, undefined)).toEqual([]);
    expect(await decideStartupOptions(bob, '   ')).toEqual([]);
  });
});

describe('maintenance database names (postgres, template1)', () => {
  const DEMO = resolve(import.meta.dirname, '../../../rules');
  const rules = loadRules(DEMO);
  const present = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('missing from the demo rules');
    return x;
  };
  const acme = present(rules.orgs.get('acme'));
  const user = (email: string) => present(rules.users.get(email));

  it('stand for the connection when the person can use exactly one', () => {
    for (const db of ['postgres', 'template1']) {
      const p = sessionPolicy(acme, user('carol@acme.example'), db);
      expect(p.connection.name).toBe('warehouse');
      expect(p.requested).toBe(db);
      expect(p.context.connection.name).toBe('warehouse');
      expect(p.context.level).toBe('querier');
      expect(sessionPolicy(acme, user('bob@acme.example'), db).context.level).toBe('query_topics');
    }
    expect(sessionPolicy(acme, user('carol@acme.example'), 'warehouse').requested).toBeUndefined();
  });
  it('other unknown names stay 3D000 with the connections listed', () => {
    let e: GatehouseError | undefined;
    try {
      sessionPolicy(acme, user('carol@acme.example'), 'warehouse2');
    } catch (x) {
      e = x as GatehouseError;
    }
    expect(e).toMatchObject({
      sqlstate: '3D000',
      severity: 'FATAL',
      message: 'connection "warehouse2" does not exist in organization acme',
    });
    expect(e?.hint).toBe('connections you can use: warehouse (the database name is the connection)');
  });
  it('someone with no connection gets 3D000 for postgres too', () => {
    expect(() => sessionPolicy(acme, user('dave@acme.example'), 'postgres')).toThrow(/connection "postgres" does not exist/);
  });
  it('with two usable connections postgres is ambiguous: 3D000 naming both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-rules-'));
    cpSync(DEMO, dir, { recursive: true });
    const wh = readFileSync(join(dir, 'acme/connections/warehouse.yaml'), 'utf8');
    writeFileSync(join(dir, 'acme/connections/finance.yaml'), wh);
    const two = loadRules(dir);
    const org = present(two.orgs.get('acme'));
    let e: GatehouseError | undefined;
    try {
      sessionPolicy(org, present(two.users.get('carol@acme.example')), 'postgres');
    } catch (x) {
      e = x as GatehouseError;
    }
    expect(e?.sqlstate).toBe('3D000');
    expect(e?.hint).toBe(
      'connections you can use: finance, warehouse (the database name is the connection); "postgres" stands for your connection only when you can use exactly one',
    );
  });
  it('a connection really named postgres is that connection', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-rules-'));
    cpSync(DEMO, dir, { recursive: true });
    const wh = readFileSync(join(dir, 'acme/connections/warehouse.yaml'), 'utf8');
    writeFileSync(join(dir, 'acme/connections/postgres.yaml'), wh);
    const two = loadRules(dir);
    const p = sessionPolicy(present(two.orgs.get('acme')), present(two.users.get('carol@acme.example')), 'postgres');
    expect(p.connection.name).toBe('postgres');
    expect(p.requested).toBeUndefined();
  });
});
