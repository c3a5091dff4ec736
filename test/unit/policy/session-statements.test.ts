// Issue 16: transaction characteristics that only tighten pass at every level (the texts
// pgjdbc sends), READ WRITE stays refused where writes are not allowed; pg_sleep is the
// caller's own business for queriers and up, never for query_topics users.
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/policy/decide.ts';
import type { Decision, PlannedStatement } from '../../../src/policy/decision.ts';
import { alice, bob, carol, ctxFor } from './demo-context.ts';

function refused(d: Decision): {
  sqlstate: string;
  message: string;
  rule: string;
} {
  if (d.outcome !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(d)}`);
  return { sqlstate: d.error.sqlstate, message: d.error.message, rule: d.rule };
}
function forwarded(d: Decision): Extract<PlannedStatement, { action: 'forward' }> {
  if (d.outcome !== 'run' || d.statements.length !== 1 || d.statements[0].action !== 'forward')
    throw new Error(`expected one forward, got ${JSON.stringify(d)}`);
  return d.statements[0];
}

const writer = ctxFor('carol@acme.example', 'querier', {}, { allowWrites: true });

describe('transaction characteristics that only tighten, at every level', () => {
  // pgjdbc: setReadOnly(true) with readOnlyMode=always; BEGIN READ ONLY for each transaction
  // when autocommit is off and the connection is read only; setTransactionIsolation.
  it.each([
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY'],
    ['BEGIN READ ONLY', 'BEGIN READ ONLY'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED', 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION DEFERRABLE', 'SET SESSION CHARACTERISTICS AS TRANSACTION DEFERRABLE'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION NOT DEFERRABLE', 'SET SESSION CHARACTERISTICS AS TRANSACTION NOT DEFERRABLE'],
    ['SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ'],
    ['SET TRANSACTION READ ONLY', 'SET TRANSACTION READ ONLY'],
    ['BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE', 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE'],
    ['START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', 'START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY'],
    ['SET default_transaction_read_only = on', "SET default_transaction_read_only TO 'on'"],
    ['SET transaction_read_only TO true', "SET transaction_read_only TO 'true'"],
  ])('%s', async (sql, bobs) => {
    expect(forwarded(await decide(bob, sql)).sql).toBe(bobs);
    for (const ctx of [carol, alice, writer]) expect(forwarded(await decide(ctx, sql)).sql, ctx.user).toBe(sql);
  });

  it('pgjdbc readOnlyMode=always turning autocommit off: session READ WRITE is written READ ONLY, with a notice', async () => {
    for (const ctx of [bob, carol, alice]) {
      const s = forwarded(await decide(ctx, 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'));
      expect(s.sql).toBe('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY');
      expect(s.kind).toBe('set');
      expect(s.notice).toMatch(/^connection warehouse is read only for .*: the session's transactions stay READ ONLY/);
    }
    const mixed = forwarded(await decide(carol, 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE'));
    expect(mixed.sql).toBe('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY');
  });
  it('where the connection allows writes, a querier asks for READ WRITE as written', async () => {
    const s = forwarded(await decide(writer, 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'));
    expect(s.sql).toBe('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE');
    expect(s.notice).toBeUndefined();
  });
  it('a transaction asking to write now stays refused where writes are not allowed', async () => {
    for (const sql of [
      'BEGIN READ WRITE',
      'START TRANSACTION READ WRITE',
      'SET TRANSACTION READ WRITE',
      'SET default_transaction_read_only = off',
      'SET transaction_read_only = false',
    ]) {
      expect(refused(await decide(bob, sql)).sqlstate, sql).toBe('42501');
      expect(refused(await decide(carol, sql)), sql).toMatchObject({
        sqlstate: '42501',
        rule: 'read_only',
      });
    }
  });
});

describe('pg_sleep, pg_cancel_backend, pg_terminate_backend, DO', () => {
  it('pg_sleep is allowed for queriers and connection admins: only their own backend waits', async () => {
    for (const ctx of [carol, alice]) {
      for (const sql of [
        'SELECT pg_sleep(0.1)',
        "SELECT pg_sleep_for('10 ms')",
        "SELECT pg_sleep_until(now() + interval '10 ms')",
        'SELECT (0::float8).pg_sleep',
      ]) {
        expect(forwarded(await decide(ctx, sql)).sql, sql).toBe(sql);
      }
    }
  });
  it('pg_sleep stays refused for query_topics users, on the topic path and the catalog path', async () => {
    for (const sql of [
      'SELECT pg_sleep(1)',
      'SELECT pg_catalog.pg_sleep(1)',
      "SELECT pg_sleep_for('1 s')",
      'SELECT (1::float8).pg_sleep',
      'SELECT pg_sleep(1) FROM orders',
      'SELECT relname, pg_sleep(1) FROM pg_class',
    ]) {
      expect(refused(await decide(bob, sql)), sql).toMatchObject({
        sqlstate: '42501',
      });
    }
  });
  it('pg_cancel_backend, pg_terminate_backend and DO stay refused at every level', async () => {
    for (const ctx of [bob, carol, alice, writer]) {
      for (const sql of ['SELECT pg_cancel_backend(1)', 'SELECT pg_terminate_backend(1)', 'SELECT (1).pg_terminate_backend']) {
        const r = refused(await decide(ctx, sql));
        expect(r.sqlstate, `${ctx.user} ${sql}`).toBe('42501');
        if (ctx !== bob) expect(r.rule, `${ctx.user} ${sql}`).toBe('denied_function');
      }
      expect(refused(await decide(ctx, 'DO $$ BEGIN PERFORM 1; END $$')).sqlstate).toBe('42501');
    }
  });
});

// An outside review (2026-12-03) seeded the random generator, disconnected, and read the next
// person's random() on the same pooled backend: its state outlives DISCARD ALL.
describe("the random generator is not the session's to seed", () => {
  it('setseed and SET seed are refused at every level; RESET seed and random() run', async () => {
    for (const ctx of [carol, alice, writer]) {
      for (const sql of ['SELECT setseed(0.42)', 'SELECT * FROM setseed(0.42)', 'SET seed = 0.42', 'SET LOCAL seed TO 0.5', 'SET SESSION seed = DEFAULT']) {
        expect(refused(await decide(ctx, sql)).sqlstate, `${ctx.user} ${sql}`).toBe('42501');
      }
      expect(refused(await decide(ctx, 'SET seed = 0.42')).message).toMatch(/SET seed is not permitted through Gatehouse/);
      expect(forwarded(await decide(ctx, 'RESET seed')).sql).toBe('RESET seed');
      expect(forwarded(await decide(ctx, 'SELECT random()')).sql).toBe('SELECT random()');
    }
    for (const sql of ['SELECT setseed(0.42)', 'SET seed = 0.42']) expect(refused(await decide(bob, sql)).sqlstate).toBe('42501');
  });
});
