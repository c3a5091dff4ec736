// Brute force (issue 14): failed sign-ins are counted per user name and per client address,
// and past a limit further attempts are refused at the StartupMessage, before any password
// is asked for, with one message whichever of the two tripped and whether the user exists.
//
// - A name is counted as typed and normalised exactly as users are looked up
//   (identity/directory.ts), known or not: an unknown name reaches the same thresholds and
//   gets the same words as a known one, so the throttle tells nobody who exists.
// - An attempt reserves a failure while it runs: N connections opened at once for one
//   name get no more guesses than N one after the other.
// - After max failures within the window the name (or address) is locked for `lockout`,
//   doubled by each further failure up to `max_lockout`; a successful sign-in forgets the
//   user's failures (never the address's: one good account must not launder an address).
// - Memory is bounded: users and addresses live in two LRU tables of `max_tracked` entries
//   each, keyed by a hash of the name (a 10 KB user name costs what a short one does), and
//   an entry with nothing to remember is dropped at once.
// - Separately, connections of one address that have not signed in yet are capped (53300):
//   each holds a socket and a timer until authentication_timeout.
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { SignInThrottleConfig } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import { normalizeUserName } from '../identity/directory.ts';
import { RecentMap } from './recent-map.ts';

/** What the throttle remembers of one user name or address. */
interface Tally {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
  /** Attempts begun and not ended: each may become a failure. */
  pending: number;
}

/** Why a connection or an attempt was refused, for the client (error) and the audit (the rest). */
export interface ThrottleRefusal {
  error: GatehouseError;
  limit: 'sign_in_failures' | 'max_pending_per_address' | 'max_signing_in_per_user';
  /** Which tally refused (audit only: the client is never told). */
  by: ('user' | 'address')[];
  user_failures?: number;
  address_failures?: number;
  pending?: number;
  retry_after_seconds?: number;
}

/** One sign-in attempt under way: exactly one of these ends it (later calls do nothing). */
export interface SignInAttempt {
  /** The flow refused it (wrong password, unknown user, a malformed answer). */
  failed(): void;
  /** Signed in: the user's failures are forgotten. */
  succeeded(): void;
  /** Ended without a verdict (the client left, the authentication timeout): no failure counted. */
  abandoned(): void;
}

export class SignInThrottle {
  private readonly users: RecentMap<string, Tally>;
  private readonly addresses: RecentMap<string, Tally>;
  /** Connections not signed in yet, per address: bounded by the open sockets, so no LRU. */
  private readonly unfinished = new Map<string, number>();

  constructor(
    private readonly settings: SignInThrottleConfig,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.users = new RecentMap(settings.max_tracked);
    this.addresses = new RecentMap(settings.max_tracked);
  }

  /** Entries held: the memory the throttle uses is proportional to these. */
  get size(): { users: number; addresses: number; unfinished: number } {
    return { users: this.users.size, addresses: this.addresses.size, unfinished: this.unfinished.size };
  }

  /**
   * A connection was accepted from this address: refused when too many of the address's are
   * still signing in; otherwise `release` (idempotent) when it signs in or closes.
   */
  connected(address: string): { release: () => void } | { refusal: ThrottleRefusal } {
    const max = this.settings.max_pending_per_address;
    const key = addressKey(address);
    const open = this.unfinished.get(key) ?? 0;
    if (max > 0 && open >= max) {
      return {
        refusal: {
          limit: 'max_pending_per_address',
          by: ['address'],
          pending: open,
          error: new GatehouseError('53300', `too many connections from this address are still signing in (limit ${max})`, {
            severity: 'FATAL',
            hint: 'wait for them to sign in or time out (authentication_timeout); an administrator can raise server.sign_in_throttle.max_pending_per_address in rules/gatehouse.yaml',
          }),
        },
      };
    }
    this.unfinished.set(key, open + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const n = (this.unfinished.get(key) ?? 1) - 1;
        if (n <= 0) this.unfinished.delete(key);
        else this.unfinished.set(key, n);
      },
    };
  }

  /** A StartupMessage for this user name from this address: refused while either is locked out, else an attempt to end. */
  begin(user: string, address: string): { attempt: SignInAttempt } | { refusal: ThrottleRefusal } {
    const t = this.now();
    const s = this.settings;
    const userKey = hashKey(normalizeUserName(user));
    const addrKey = addressKey(address);
    const u = this.tally(this.users, userKey, t);
    const a = this.tally(this.addresses, addrKey, t);
    const userWait = this.wait(u, s.max_failures_per_user, t, s.max_signing_in_per_user);
    // A clean address is bounded by max_pending_per_address instead (an office behind one NAT).
    const addrWait = this.wait(a, s.max_failures_per_address, t, Number.POSITIVE_INFINITY);
    if (userWait !== undefined || addrWait !== undefined) {
      this.drop(this.users, userKey, u);
      this.drop(this.addresses, addrKey, a);
      const seconds = Math.max(1, Math.ceil(Math.max(userWait ?? 0, addrWait ?? 0) / 1000));
      const by = [...(userWait !== undefined ? ['user' as const] : []), ...(addrWait !== undefined ? ['address' as const] : [])];
      // Nothing failed yet: only too many sign-ins of one user name at once (a pool opening
      // more connections than max_signing_in_per_user together). Said as it is, 53300, not as failures.
      const busy = u.failures === 0 && a.failures === 0 && t >= u.lockedUntil && t >= a.lockedUntil;
      if (busy) {
        return {
          refusal: {
            limit: 'max_signing_in_per_user',
            by,
            pending: u.pending,
            retry_after_seconds: seconds,
            error: new GatehouseError('53300', `too many sign-ins under way at once for this user; try again in ${seconds} second${seconds === 1 ? '' : 's'}`, {
              severity: 'FATAL',
              hint: 'open fewer connections at once, or an administrator can raise server.sign_in_throttle.max_signing_in_per_user in rules/gatehouse.yaml',
            }),
          },
        };
      }
      return {
        refusal: {
          limit: 'sign_in_failures',
          by,
          user_failures: u.failures,
          address_failures: a.failures,
          retry_after_seconds: seconds,
          // The same words whichever tripped and whether or not the user exists.
          error: new GatehouseError('28P01', `too many failed sign-ins for this user or address; wait ${seconds} second${seconds === 1 ? '' : 's'}`, {
            severity: 'FATAL',
          }),
        },
      };
    }
    u.pending++;
    a.pending++;
    let ended = false;
    const end = (outcome: 'failed' | 'succeeded' | 'abandoned') => {
      if (ended) return;
      ended = true;
      const at = this.now();
      // The tallies are the objects of begin(): if the LRU dropped one meanwhile, the update
      // lands on an object nobody reads, which is harmless.
      u.pending = Math.max(0, u.pending - 1);
      a.pending = Math.max(0, a.pending - 1);
      if (outcome === 'failed') {
        this.fail(u, s.max_failures_per_user, at);
        this.fail(a, s.max_failures_per_address, at);
        // Re-inserted: counts that matter must be in the tables even if evicted meanwhile.
        this.keep(this.users, userKey, u);
        this.keep(this.addresses, addrKey, a);
        return;
      }
      if (outcome === 'succeeded') {
        u.failures = 0;
        u.lockedUntil = 0;
      }
      this.drop(this.users, userKey, u);
      this.drop(this.addresses, addrKey, a);
    };
    return { attempt: { failed: () => end('failed'), succeeded: () => end('succeeded'), abandoned: () => end('abandoned') } };
  }

  /** The tally for a key (made if new), its failures forgotten once the window has passed quietly. */
  private tally(table: RecentMap<string, Tally>, key: string, t: number): Tally {
    let e = table.get(key);
    if (!e) {
      e = { failures: 0, lastFailureAt: 0, lockedUntil: 0, pending: 0 };
      table.set(key, e);
    }
    if (e.failures > 0 && t - Math.max(e.lastFailureAt, e.lockedUntil) > this.settings.failure_window) {
      e.failures = 0;
      e.lockedUntil = 0;
    }
    return e;
  }

  /** How long this tally must wait (ms), or undefined when an attempt may begin. */
  private wait(e: Tally, max: number, t: number, clean: number): number | undefined {
    if (max === 0) return undefined;
    if (t < e.lockedUntil) return e.lockedUntil - t;
    // Once something failed, attempts still running count as failures: as many at once as
    // failures are left, and at the limit one at a time (each failure doubles the lockout).
    // Before any failure, a pool's connections may all sign in at once.
    const budget = e.failures === 0 ? clean : e.failures >= max ? 1 : max - e.failures;
    if (e.pending >= budget) return this.settings.lockout;
    return undefined;
  }

  private fail(e: Tally, max: number, t: number): void {
    if (e.failures > 0 && t - Math.max(e.lastFailureAt, e.lockedUntil) > this.settings.failure_window) e.failures = 0;
    e.failures++;
    e.lastFailureAt = t;
    if (max > 0 && e.failures >= max) {
      const doublings = Math.min(e.failures - max, 30);
      e.lockedUntil = t + Math.min(this.settings.lockout * 2 ** doublings, this.settings.max_lockout);
    }
  }

  /** An entry that remembers nothing (no failure, nothing running) is not kept. */
  private drop(table: RecentMap<string, Tally>, key: string, e: Tally): void {
    if (e.failures === 0 && e.pending === 0 && table.peek(key) === e) table.delete(key);
  }

  private keep(table: RecentMap<string, Tally>, key: string, e: Tally): void {
    const current = table.peek(key);
    if (current === e)
      table.get(key); // most recently used
    else if (!current) table.set(key, e);
    else {
      // A newer tally took the key after this one was evicted: merge the failure into it.
      current.failures = Math.max(current.failures, e.failures);
      current.lastFailureAt = Math.max(current.lastFailureAt, e.lastFailureAt);
      current.lockedUntil = Math.max(current.lockedUntil, e.lockedUntil);
      table.get(key);
    }
  }
}

const hashKey = (s: string) => createHash('sha256').update(s).digest('base64');

/**
 * The key an address is counted under: an IPv4-mapped IPv6 address as its IPv4 address, any
 * other IPv6 address by its /64 (one host commonly holds a whole /64, and cycling through it
 * must not give it 2^64 fresh tallies).
 */
export function addressKey(address: string): string {
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1];
  if (!isIPv6(bare)) return bare;
  const [head, tail = ''] = bare.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = bare.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = bare.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g.includes('.') ? g : Number.parseInt(g || '0', 16).toString(16)))
    .join(':')}::/64`;
}
