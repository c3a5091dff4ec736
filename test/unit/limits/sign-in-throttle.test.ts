// The sign-in throttle on its own, with a clock the test moves: thresholds, the lockout and
// its doubling, the window, reset on success, parallel attempts, the memory bound, addresses.
import { describe, expect, it } from 'vitest';
import type { SignInThrottleConfig } from '../../../src/config/model.ts';
import { serverFileSchema } from '../../../src/config/schema.ts';
import { type SignInAttempt, SignInThrottle, addressKey } from '../../../src/limits/sign-in-throttle.ts';

const settings = (over: Partial<SignInThrottleConfig> = {}): SignInThrottleConfig => ({
  max_failures_per_user: 3,
  max_failures_per_address: 10,
  failure_window: 60_000,
  lockout: 1000,
  max_lockout: 8000,
  max_pending_per_address: 4,
  max_signing_in_per_user: 32,
  max_tracked: 1000,
  ...over,
});

function clocked(over: Partial<SignInThrottleConfig> = {}) {
  let t = 1_000_000;
  const throttle = new SignInThrottle(settings(over), () => t);
  const attempt = (user: string, address = '10.0.0.1') => {
    const r = throttle.begin(user, address);
    if ('refusal' in r) throw new Error(`refused: ${r.refusal.error.message}`);
    return r.attempt;
  };
  const refusal = (user: string, address = '10.0.0.1') => {
    const r = throttle.begin(user, address);
    if ('attempt' in r) {
      r.attempt.abandoned();
      return undefined;
    }
    return r.refusal;
  };
  const fail = (user: string, address?: string, n = 1) => {
    for (let i = 0; i < n; i++) attempt(user, address).failed();
  };
  return { throttle, attempt, refusal, fail, advance: (ms: number) => (t += ms) };
}

describe('per user', () => {
  it('refuses after max failures with 28P01 and a wait, the same words for any name', () => {
    const c = clocked();
    c.fail('bob@acme.example', '10.0.0.1', 2);
    expect(c.refusal('bob@acme.example')).toBeUndefined();
    c.fail('bob@acme.example');
    const r = c.refusal('bob@acme.example');
    expect(r?.error).toMatchObject({ sqlstate: '28P01', severity: 'FATAL', message: 'too many failed sign-ins for this user or address; wait 1 second' });
    expect(r).toMatchObject({ limit: 'sign_in_failures', by: ['user'], user_failures: 3 });
    // An unknown name is counted and refused exactly alike (the throttle never looks users up).
    c.fail('nobody@acme.example', '10.0.0.2', 3);
    expect(c.refusal('nobody@acme.example', '10.0.0.2')?.error.message).toBe(r?.error.message);
  });

  it('spellings of one name share one tally (the lookup normalisation)', () => {
    const c = clocked();
    c.fail('Bob@Acme.Example');
    c.fail(' BOB@acme.example');
    c.fail('bob@acme.example\t');
    expect(c.refusal('bob@ACME.example')).toBeDefined();
  });

  it('the lockout doubles with each further failure, up to max_lockout, and then lets one attempt through', () => {
    const c = clocked();
    c.fail('bob', undefined, 3);
    expect(c.refusal('bob')?.retry_after_seconds).toBe(1);
    c.advance(1001);
    c.fail('bob'); // 4th: 2 s
    expect(c.refusal('bob')?.retry_after_seconds).toBe(2);
    c.advance(2001);
    c.fail('bob'); // 5th: 4 s
    expect(c.refusal('bob')?.retry_after_seconds).toBe(4);
    c.advance(4001);
    c.fail('bob'); // 6th: 8 s
    c.advance(8001);
    c.fail('bob'); // 7th: 16 s, capped at 8
    expect(c.refusal('bob')?.retry_after_seconds).toBe(8);
    c.advance(8001);
    // Past the limit, one attempt at a time: a second one while it runs is refused.
    const one = c.attempt('bob');
    expect(c.refusal('bob')).toBeDefined();
    one.abandoned();
    expect(c.refusal('bob')).toBeUndefined();
  });

  it("a success forgets the user's failures", () => {
    const c = clocked();
    c.fail('bob', undefined, 2);
    c.attempt('bob').succeeded();
    c.fail('bob', undefined, 2);
    expect(c.refusal('bob')).toBeUndefined();
    c.fail('bob');
    expect(c.refusal('bob')).toBeDefined();
  });

  it('failures are forgotten after a quiet failure_window', () => {
    const c = clocked();
    c.fail('bob', undefined, 2);
    c.advance(60_001);
    c.fail('bob', undefined, 2);
    expect(c.refusal('bob')).toBeUndefined();
  });

  it('attempts running at once count as failures once one failed: parallel connections get no extra guesses', () => {
    const c = clocked({ max_pending_per_address: 0 });
    c.fail('bob'); // 2 left
    const a = c.attempt('bob', '10.0.0.7');
    const b = c.attempt('bob', '10.0.0.8');
    expect(c.refusal('bob', '10.0.0.9')).toBeDefined();
    a.failed();
    b.failed();
    expect(c.refusal('bob', '10.0.0.9')?.retry_after_seconds).toBe(1);
  });

  it("a clean name may sign in many times at once (a BI tool's pool), within a bound", () => {
    const c = clocked({ max_failures_per_address: 0 });
    const pool: SignInAttempt[] = [];
    for (let i = 0; i < 32; i++) pool.push(c.attempt('bob'));
    // Nothing failed: the refusal says what it is (too many at once, 53300), not failed sign-ins.
    expect(c.refusal('bob')).toMatchObject({
      limit: 'max_signing_in_per_user',
      pending: 32,
      error: { sqlstate: '53300', message: expect.stringMatching(/^too many sign-ins under way at once for this user/) },
    });
    expect(c.refusal('bob')?.error.hint).toContain('max_signing_in_per_user');
    // After a failure the failures left are the budget, and the refusal is about failures.
    pool.pop()?.failed();
    expect(c.refusal('bob')).toMatchObject({ limit: 'sign_in_failures', error: { sqlstate: '28P01' } });
    for (const a of pool) a.succeeded();
    expect(c.refusal('bob')).toBeUndefined();
  });

  it('0 turns the per-user check off', () => {
    const c = clocked({ max_failures_per_user: 0, max_failures_per_address: 0 });
    c.fail('bob', undefined, 50);
    expect(c.refusal('bob')).toBeUndefined();
  });
});

describe('per address', () => {
  it('an address cycling through names is locked; another address and the same names elsewhere are not', () => {
    const c = clocked();
    for (let i = 0; i < 10; i++) c.fail(`user${i}@x`, '10.0.0.1');
    const r = c.refusal('fresh@x', '10.0.0.1');
    expect(r).toMatchObject({ by: ['address'], address_failures: 10, error: { sqlstate: '28P01' } });
    expect(r?.error.message).toBe('too many failed sign-ins for this user or address; wait 1 second');
    expect(c.refusal('fresh@x', '10.0.0.2')).toBeUndefined();
  });

  it('a success does not reset the address', () => {
    const c = clocked();
    for (let i = 0; i < 9; i++) c.fail(`user${i}@x`, '10.0.0.1');
    c.attempt('good@x', '10.0.0.1').succeeded();
    c.fail('user9@x', '10.0.0.1');
    expect(c.refusal('good@x', '10.0.0.1')).toMatchObject({ by: ['address'] });
  });

  it('connections still signing in are capped per address with 53300', () => {
    const c = clocked();
    const held = [1, 2, 3, 4].map(() => c.throttle.connected('10.0.0.1'));
    const over = c.throttle.connected('10.0.0.1');
    expect(over).toMatchObject({ refusal: { limit: 'max_pending_per_address', pending: 4, error: { sqlstate: '53300', severity: 'FATAL' } } });
    expect('release' in c.throttle.connected('10.0.0.2')).toBe(true);
    const first = held[0];
    if (!('release' in first)) throw new Error('refused');
    first.release();
    first.release(); // idempotent
    expect('release' in c.throttle.connected('10.0.0.1')).toBe(true);
    expect('refusal' in c.throttle.connected('10.0.0.1')).toBe(true);
  });

  it('keys: IPv4-mapped as IPv4, IPv6 by its /64', () => {
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});

describe('memory', () => {
  it('20,000 names and addresses cycled through cannot grow the tables past max_tracked', () => {
    const c = clocked({ max_tracked: 500, max_failures_per_address: 0 });
    for (let i = 0; i < 20_000; i++) c.fail(`u${i}@x`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    // Names with nothing to remember are not kept at all.
    for (let i = 0; i < 20_000; i++) c.attempt(`ok${i}@x`, '10.9.9.9').succeeded();
    expect(c.throttle.size.users).toBeLessThanOrEqual(500);
    expect(c.throttle.size.addresses).toBeLessThanOrEqual(500);
    expect(c.throttle.size.unfinished).toBe(0);
  });

  it('a long name costs what a short one does (tallies are keyed by a hash)', () => {
    const c = clocked();
    c.fail('x'.repeat(10_000));
    expect(c.refusal('x'.repeat(10_000))).toBeUndefined();
    c.fail('X'.repeat(10_000), undefined, 2);
    expect(c.refusal('x'.repeat(10_000))).toBeDefined();
  });
});

it('gatehouse.yaml defaults: 5 per user, 50 per address, 15 min window, 10 s doubling to 15 min, 256 pending, 100000 tracked', () => {
  expect(serverFileSchema.parse({}).server.sign_in_throttle).toEqual({
    max_failures_per_user: 5,
    max_failures_per_address: 50,
    failure_window: 900_000,
    lockout: 10_000,
    max_lockout: 900_000,
    max_pending_per_address: 256,
    max_signing_in_per_user: 256,
    max_tracked: 100_000,
  });
  expect(serverFileSchema.parse({ server: { sign_in_throttle: { failure_window: '5min', lockout: '2s' } } }).server.sign_in_throttle).toMatchObject({
    failure_window: 300_000,
    lockout: 2000,
  });
  expect(serverFileSchema.safeParse({ server: { sign_in_throttle: { lockout: '1min', max_lockout: '10s' } } }).success).toBe(false);
  expect(serverFileSchema.safeParse({ server: { sign_in_throttle: { max_failures: 3 } } }).success).toBe(false);
});
