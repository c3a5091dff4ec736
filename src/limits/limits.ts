// Operating under load (issue 17): the limits a session runs under, as rules/ sets them
// (gatehouse.yaml server-wide; an org's org.yaml `limits` and a connection's file replace
// them), and the errors a client gets when one is reached. Each error names the limit, its
// value and where to raise it. Counting sessions lives here; the wire layer keeps the idle
// timers, statement-deadline.ts the statement deadline, the warehouse relay the result size.
import type { Connection, Org, ServerConfig } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';

export type LimitName =
  | 'max_sessions'
  | 'max_sessions_per_org'
  | 'max_sessions_per_user'
  | 'authentication_timeout'
  | 'idle_session_timeout'
  | 'idle_in_transaction_session_timeout'
  | 'statement_timeout'
  | 'max_result_rows'
  | 'max_result_bytes';

/** Where a limit's value is set: what a hint tells an administrator to edit. */
const SERVER_FILE = 'rules/gatehouse.yaml';
const orgFile = (org: string) => `rules/${org}/org.yaml`;

/** A duration as the rules write it: 1500 -> '1500ms', 30000 -> '30s', 120000 -> '2min'. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A session refused at sign-in because a count limit is reached (53300, FATAL). */
export interface SessionRefusal {
  limit: LimitName;
  value: number;
  error: GatehouseError;
}

/**
 * Signed-in sessions in all, per org and per user. A slot is taken synchronously before the
 * upstream session is opened (so concurrent sign-ins cannot overshoot) and given back when the
 * session ends or fails to open. The most specific limit reached is the one named: a user at
 * their own limit learns that, not that the server is full.
 */
export class SessionCounter {
  private total = 0;
  private readonly byOrg = new Map<string, number>();
  private readonly byUser = new Map<string, number>();

  constructor(
    private readonly server: ServerConfig,
    private readonly orgs: ReadonlyMap<string, Org>,
  ) {}

  /** A slot for one more session of this user, or why not. */
  admit(org: string, user: string): { release: () => void } | SessionRefusal {
    const refusal = this.refusal(org, user);
    if (refusal) return refusal;
    this.total++;
    bump(this.byOrg, org, 1);
    bump(this.byUser, user, 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        bump(this.byOrg, org, -1);
        bump(this.byUser, user, -1);
      },
    };
  }

  /** Open sessions (signed in, or signing in past authentication), for tests and health. */
  counts(): { total: number; byOrg: Record<string, number> } {
    return { total: this.total, byOrg: Object.fromEntries(this.byOrg) };
  }

  private refusal(org: string, user: string): SessionRefusal | undefined {
    const own = this.orgs.get(org)?.limits ?? {};
    const perUser = own.max_sessions_per_user ?? this.server.max_sessions_per_user;
    if ((this.byUser.get(user) ?? 0) >= perUser) {
      const where =
        own.max_sessions_per_user !== undefined ? `limits.max_sessions_per_user in ${orgFile(org)}` : `server.max_sessions_per_user in ${SERVER_FILE}`;
      return tooMany('max_sessions_per_user', perUser, `too many connections for user "${user}": the limit is ${perUser} sessions per user`, {
        detail: `set by ${where}`,
        hint: `close sessions you no longer use (a connection pool may hold many: lower its maximum size), or ask an administrator to raise ${where}`,
      });
    }
    const perOrg = own.max_sessions ?? this.server.max_sessions_per_org;
    if ((this.byOrg.get(org) ?? 0) >= perOrg) {
      const where = own.max_sessions !== undefined ? `limits.max_sessions in ${orgFile(org)}` : `server.max_sessions_per_org in ${SERVER_FILE}`;
      return tooMany('max_sessions_per_org', perOrg, `too many connections for organization ${org}: the limit is ${perOrg} sessions`, {
        detail: `set by ${where}`,
        hint: `try again when other sessions of ${org} end, or ask an administrator to raise ${where}`,
      });
    }
    const all = this.server.max_sessions;
    if (this.total >= all) {
      return tooMany('max_sessions', all, `sorry, too many clients already: Gatehouse serves at most ${all} sessions`, {
        detail: `set by server.max_sessions in ${SERVER_FILE}`,
        hint: `try again when other sessions end, or ask an administrator to raise server.max_sessions in ${SERVER_FILE} (or add a Gatehouse instance)`,
      });
    }
    return undefined;
  }
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

function tooMany(limit: LimitName, value: number, message: string, opts: { detail: string; hint: string }): SessionRefusal {
  return { limit, value, error: new GatehouseError('53300', message, { severity: 'FATAL', ...opts }) };
}

/** The limits of one session's statements: its connection's, else its org's, else the server's. */
export interface StatementLimits {
  /** ms; 0: none. */
  statementTimeout: number;
  /** 0: none. */
  maxResultRows: number;
  maxResultBytes: number;
  /** The 57014 a statement over the deadline ends with (PostgreSQL's own message; the detail names the limit). */
  timeoutError(): GatehouseError;
  /** The 54000 a result over a limit ends with. */
  resultError(which: 'rows' | 'bytes'): GatehouseError;
}

export function statementLimits(server: ServerConfig, org: Org, conn: Connection): StatementLimits {
  const own = org.limits;
  const [statementTimeout, timeoutWhere] =
    conn.statement_timeout !== undefined
      ? [conn.statement_timeout, `statement_timeout in rules/${org.name}/connections/${conn.name}.yaml`]
      : own.statement_timeout !== undefined
        ? [own.statement_timeout, `limits.statement_timeout in ${orgFile(org.name)}`]
        : [server.statement_timeout, `server.statement_timeout in ${SERVER_FILE}`];
  const rows = own.max_result_rows ?? server.max_result_rows;
  const bytes = own.max_result_bytes ?? server.max_result_bytes;
  const resultWhere = (which: 'rows' | 'bytes') =>
    own[`max_result_${which}`] !== undefined ? `limits.max_result_${which} in ${orgFile(org.name)}` : `server.max_result_${which} in ${SERVER_FILE}`;
  return {
    statementTimeout,
    maxResultRows: rows,
    maxResultBytes: bytes,
    timeoutError: () =>
      new GatehouseError('57014', 'canceling statement due to statement timeout', {
        detail: `Gatehouse ends statements on connection "${conn.name}" after ${formatMs(statementTimeout)} (${timeoutWhere})`,
        hint: 'make the statement cheaper (narrower conditions, an aggregate), or ask an administrator to raise the limit; SET statement_timeout cannot raise it',
      }),
    resultError: (which) => {
      const n = which === 'rows' ? rows : bytes;
      return new GatehouseError('54000', `result exceeds the limit of ${n} ${which} set for organization ${org.name}`, {
        detail: `the statement was canceled and no more rows were sent (${resultWhere(which)})`,
        hint: 'narrow the query (WHERE, LIMIT) or aggregate it, or ask an administrator to raise the limit',
      });
    },
  };
}

/** The FATAL errors the wire layer ends a session with (PostgreSQL's own SQLSTATEs and messages). */
export const idleSessionTimeout = (ms: number) =>
  new GatehouseError('57P05', 'terminating connection due to idle-session timeout', {
    severity: 'FATAL',
    detail: `the session waited for a command for ${formatMs(ms)} (server.idle_session_timeout in ${SERVER_FILE})`,
  });

export const idleInTransactionTimeout = (ms: number) =>
  new GatehouseError('25P03', 'terminating connection due to idle-in-transaction timeout', {
    severity: 'FATAL',
    detail: `the session held a transaction open without a command for ${formatMs(ms)} (server.idle_in_transaction_session_timeout in ${SERVER_FILE}); the transaction was rolled back`,
    hint: 'end transactions promptly (COMMIT or ROLLBACK), or turn autocommit on',
  });

export const administratorShutdown = () =>
  new GatehouseError('57P01', 'terminating connection due to administrator command', {
    severity: 'FATAL',
    detail: 'Gatehouse is shutting down',
    hint: 'reconnect once Gatehouse serves again (or to another instance)',
  });
