// Limits as rules/ sets them (issue 17): parsed with their defaults, refused when malformed,
// and the session counter and statement deadline that enforce them.
import { cpSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { RulesError, loadRules } from '../../../src/config/load.ts';
import { SessionCounter, formatMs, statementLimits } from '../../../src/limits/limits.ts';
import { withStatementDeadline } from '../../../src/limits/statement-deadline.ts';
import type { ServerSession } from '../../../src/wire/handler.ts';
import type { ResultSink } from '../../../src/wire/sink.ts';

const DEMO = resolve(import.meta.dirname, '../../../rules');

function demoWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-limits-'));
  cpSync(DEMO, dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

function problemsOf(dir: string) {
  try {
    loadRules(dir);
  } catch (e) {
    if (e instanceof RulesError) return e.problems;
    throw e;
  }
  throw new Error('rules loaded but should have been refused');
}

const orgYaml = (limits: string) => readFileSync(join(DEMO, 'acme/org.yaml'), 'utf8').replace(/^name: acme\n/m, `name: acme\nlimits:\n${limits}`);

describe('limits in rules/', () => {
  it('have defaults when gatehouse.yaml says nothing of them', () => {
    const { server } = loadRules(DEMO);
    expect(server).toMatchObject({
      max_sessions: 1000,
      max_sessions_per_org: 200,
      max_sessions_per_user: 20,
      authentication_timeout: 60_000,
      idle_session_timeout: 0,
      idle_in_transaction_session_timeout: 3_600_000,
      statement_timeout: 0,
      max_result_rows: 0,
      max_result_bytes: 0,
      shutdown_timeout: 30_000,
    });
    expect(loadRules(DEMO).orgs.get('acme')!.limits).toEqual({});
  });

  it('read durations as milliseconds or digits and a unit, and 0 as off', () => {
    const dir = demoWith({
      'gatehouse.yaml':
        'server:\n  max_sessions_per_user: 3\n  authentication_timeout: 5s\n  idle_session_timeout: 10min\n  idle_in_transaction_session_timeout: 0\n  statement_timeout: 1500\n  max_result_rows: 100\n  shutdown_timeout: 2h\n',
    });
    const { server } = loadRules(dir);
    expect(server).toMatchObject({
      port: 6432,
      max_sessions_per_user: 3,
      authentication_timeout: 5000,
      idle_session_timeout: 600_000,
      idle_in_transaction_session_timeout: 0,
      statement_timeout: 1500,
      max_result_rows: 100,
      shutdown_timeout: 7_200_000,
    });
  });

  it('refuse malformed values and unknown keys, naming file and path', () => {
    expect(problemsOf(demoWith({ 'gatehouse.yaml': 'server:\n  statement_timeout: 5 seconds\n' }))).toEqual([
      expect.objectContaining({ file: 'gatehouse.yaml', path: 'server.statement_timeout' }),
    ]);
    expect(problemsOf(demoWith({ 'gatehouse.yaml': 'server:\n  max_sessions_per_user: 0\n' }))[0]).toMatchObject({ path: 'server.max_sessions_per_user' });
    expect(problemsOf(demoWith({ 'gatehouse.yaml': 'server:\n  authentication_timeout: 0\n' }))[0]).toMatchObject({ path: 'server.authentication_timeout' });
    expect(problemsOf(demoWith({ 'gatehouse.yaml': 'server:\n  max_session: 5\n' }))[0]).toMatchObject({ file: 'gatehouse.yaml' });
    expect(problemsOf(demoWith({ 'acme/org.yaml': orgYaml('  max_rows: 5\n') }))[0]).toMatchObject({ file: 'acme/org.yaml', path: 'limits' });
    expect(problemsOf(demoWith({ 'acme/org.yaml': orgYaml('  max_result_rows: -1\n') }))[0]).toMatchObject({ path: 'limits.max_result_rows' });
  });

  it("take an org's limits from org.yaml and a connection's statement_timeout from its file", () => {
    const conn = readFileSync(join(DEMO, 'acme/connections/warehouse.yaml'), 'utf8');
    const rules = loadRules(
      demoWith({
        'acme/org.yaml': orgYaml(
          '  max_sessions: 50\n  max_sessions_per_user: 5\n  statement_timeout: 1min\n  max_result_rows: 1000\n  max_result_bytes: 65536\n',
        ),
        'acme/connections/warehouse.yaml': `${conn}\nstatement_timeout: 2s\n`,
      }),
    );
    const acme = rules.orgs.get('acme')!;
    expect(acme.limits).toEqual({ max_sessions: 50, max_sessions_per_user: 5, statement_timeout: 60_000, max_result_rows: 1000, max_result_bytes: 65536 });
    expect(acme.connections.get('warehouse')!.statement_timeout).toBe(2000);
    expect(rules.orgs.get('globex')!.limits).toEqual({});
  });
});

describe('statementLimits', () => {
  it("takes the connection's statement timeout, else the org's, else the server's, and names where it is set", () => {
    const rules = loadRules(demoWith({ 'gatehouse.yaml': 'server:\n  statement_timeout: 10min\n  max_result_rows: 10\n' }));
    const acme = rules.orgs.get('acme')!;
    const conn = acme.connections.get('warehouse')!;
    const server = statementLimits(rules.server, acme, conn);
    expect(server.statementTimeout).toBe(600_000);
    expect(server.timeoutError()).toMatchObject({ sqlstate: '57014', message: 'canceling statement due to statement timeout' });
    expect(server.timeoutError().detail).toContain('after 10min (server.statement_timeout in rules/gatehouse.yaml)');
    expect(server.resultError('rows')).toMatchObject({ sqlstate: '54000', message: 'result exceeds the limit of 10 rows set for organization acme' });
    expect(server.resultError('rows').detail).toContain('server.max_result_rows in rules/gatehouse.yaml');

    const orgLevel = statementLimits(rules.server, { ...acme, limits: { statement_timeout: 60_000, max_result_bytes: 99 } }, conn);
    expect(orgLevel.statementTimeout).toBe(60_000);
    expect(orgLevel.timeoutError().detail).toContain('limits.statement_timeout in rules/acme/org.yaml');
    expect(orgLevel.resultError('bytes').message).toBe('result exceeds the limit of 99 bytes set for organization acme');
    expect(orgLevel.maxResultRows).toBe(10);

    const connLevel = statementLimits(rules.server, { ...acme, limits: { statement_timeout: 60_000 } }, { ...conn, statement_timeout: 0 });
    expect(connLevel.statementTimeout).toBe(0);
  });

  it('formats durations as the rules write them', () => {
    expect([formatMs(1500), formatMs(2000), formatMs(120_000), formatMs(3_600_000), formatMs(90_000)]).toEqual(['1500ms', '2s', '2min', '1h', '90s']);
  });
});

describe('SessionCounter', () => {
  const rules = loadRules(demoWith({ 'gatehouse.yaml': 'server:\n  max_sessions: 5\n  max_sessions_per_org: 4\n  max_sessions_per_user: 2\n' }));

  it("refuses the session past a user's limit with 53300 naming the limit, its value and how to raise it; a release frees the slot", () => {
    const c = new SessionCounter(rules.server, rules.orgs);
    const a = c.admit('acme', 'bob@acme.example');
    const b = c.admit('acme', 'bob@acme.example');
    expect('release' in a && 'release' in b).toBe(true);
    const third = c.admit('acme', 'bob@acme.example');
    expect(third).toMatchObject({ limit: 'max_sessions_per_user', value: 2 });
    if (!('error' in third)) throw new Error('admitted');
    expect(third.error).toMatchObject({
      sqlstate: '53300',
      severity: 'FATAL',
      message: 'too many connections for user "bob@acme.example": the limit is 2 sessions per user',
    });
    expect(third.error.hint).toContain('server.max_sessions_per_user in rules/gatehouse.yaml');
    // Another user is not affected.
    expect('release' in c.admit('acme', 'carol@acme.example')).toBe(true);
    if ('release' in a) {
      a.release();
      a.release(); // twice is once
    }
    expect('release' in c.admit('acme', 'bob@acme.example')).toBe(true);
    expect(c.counts()).toEqual({ total: 3, byOrg: { acme: 3 } });
  });

  it("refuses past the org's limit and the server's, the most specific one named", () => {
    const c = new SessionCounter(rules.server, rules.orgs);
    for (const u of ['a', 'a', 'b', 'b']) expect('release' in c.admit('acme', `${u}@acme.example`)).toBe(true);
    expect(c.admit('acme', 'c@acme.example')).toMatchObject({
      limit: 'max_sessions_per_org',
      value: 4,
      error: { message: 'too many connections for organization acme: the limit is 4 sessions' },
    });
    // The user limit is named first when both are reached.
    expect(c.admit('acme', 'a@acme.example')).toMatchObject({ limit: 'max_sessions_per_user' });
    expect('release' in c.admit('globex', 'hank@globex.example')).toBe(true);
    expect(c.admit('globex', 'x@globex.example')).toMatchObject({ limit: 'max_sessions', value: 5, error: { sqlstate: '53300' } });
  });

  it("uses an org's own limits from org.yaml", () => {
    const own = loadRules(demoWith({ 'acme/org.yaml': orgYaml('  max_sessions: 1\n  max_sessions_per_user: 7\n') }));
    const c = new SessionCounter(own.server, own.orgs);
    expect('release' in c.admit('acme', 'bob@acme.example')).toBe(true);
    const refused = c.admit('acme', 'erin@acme.example');
    expect(refused).toMatchObject({ limit: 'max_sessions_per_org', value: 1 });
    if ('error' in refused) expect(refused.error.hint).toContain('limits.max_sessions in rules/acme/org.yaml');
    expect('release' in c.admit('globex', 'hank@globex.example')).toBe(true);
  });
});

describe('withStatementDeadline', () => {
  const sink = {} as ResultSink;
  function fakeSession(delays: { query?: number; sync?: number }): ServerSession {
    const wait = (ms = 0) => new Promise<void>((r) => setTimeout(r, ms));
    return {
      parameterStatus: {},
      query: async () => {
        await wait(delays.query);
        return 'I';
      },
      extended: async () => true,
      flush: async () => {},
      sync: async () => {
        await wait(delays.sync);
        return { status: 'I', failed: false };
      },
      protocolError: async () => {},
      relayNotifications: () => {},
      cancel: () => {},
      close: async () => {},
    };
  }

  it('expires a Query that runs past the deadline, once, and not one that ends before it', async () => {
    vi.useFakeTimers();
    try {
      const expire = vi.fn();
      const s = withStatementDeadline(fakeSession({ query: 1000 }), 500, expire);
      const slow = s.query('SELECT 1', sink);
      await vi.advanceTimersByTimeAsync(1000);
      await slow;
      expect(expire).toHaveBeenCalledTimes(1);
      const quick = withStatementDeadline(fakeSession({ query: 100 }), 500, expire);
      const q = quick.query('SELECT 1', sink);
      await vi.advanceTimersByTimeAsync(1000);
      await q;
      expect(expire).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('spans an extended exchange from its first message to Sync', async () => {
    vi.useFakeTimers();
    try {
      const expire = vi.fn();
      const s = withStatementDeadline(fakeSession({ sync: 300 }), 500, expire);
      await s.extended({ type: 'Parse', name: '', query: 'SELECT 1', paramTypes: [] } as never, sink);
      await vi.advanceTimersByTimeAsync(300); // the client takes its time before Sync
      const synced = s.sync(sink);
      await vi.advanceTimersByTimeAsync(300);
      await synced;
      expect(expire).toHaveBeenCalledTimes(1);
      // After Sync, the next exchange has a fresh deadline.
      await s.extended({ type: 'Parse', name: '', query: 'SELECT 1', paramTypes: [] } as never, sink);
      await vi.advanceTimersByTimeAsync(100);
      const again = s.sync(sink);
      await vi.advanceTimersByTimeAsync(300);
      await again;
      expect(expire).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('is the session itself when the timeout is off', () => {
    const s = fakeSession({});
    expect(withStatementDeadline(s, 0, () => {})).toBe(s);
  });
});
