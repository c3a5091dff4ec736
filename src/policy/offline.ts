// Decisions without a network: what `gatehouse check` and `gatehouse explain`
// use. The same decide() the server runs, with the session refusals in front.
import type { PolicyTest, Rules } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { Decision, DecisionContext } from './decision.ts';
import { decide } from './decide.ts';
import { sessionPolicy } from './session.ts';

export interface OfflineDecision {
  context?: DecisionContext;
  levelSource?: string;
  decision: Decision;
}

export async function decideOffline(rules: Rules, email: string, connection: string, sql: string): Promise<OfflineDecision> {
  const user = rules.users.get(email.toLowerCase());
  if (!user) return refuse('28P01', `unknown user ${email}`, 'unknown_user');
  try {
    const { context, levelSource } = sessionPolicy(rules.orgs.get(user.org)!, user, connection);
    return { context, levelSource, decision: await decide(context, sql) };
  } catch (e) {
    if (!(e instanceof GatehouseError)) throw e;
    return { decision: { outcome: 'refuse', rule: e.sqlstate === '3D000' ? 'unknown_connection' : 'no_access', error: e } };
  }
}

function refuse(sqlstate: '28P01', message: string, rule: string): OfflineDecision {
  return { decision: { outcome: 'refuse', rule, error: new GatehouseError(sqlstate, message) } };
}

export interface PolicyTestResult {
  test: PolicyTest;
  ok: boolean;
  problem?: string;
}

/** Runs rules/<org>/tests/*.yaml: as user U, statement S -> allowed / refused (SQLSTATE) / rewritten. */
export async function runPolicyTests(rules: Rules): Promise<PolicyTestResult[]> {
  const results: PolicyTestResult[] = [];
  for (const org of rules.orgs.values()) {
    for (const test of org.tests) {
      const { decision } = await decideOffline(rules, test.user, test.connection, test.sql);
      results.push({ test, ...judge(test, decision) });
    }
  }
  return results;
}

function judge(test: PolicyTest, d: Decision): { ok: boolean; problem?: string } {
  const got = d.outcome === 'refuse' ? 'refused' : d.outcome === 'run' && d.topics.length ? 'rewritten' : 'allowed';
  const text =
    d.outcome === 'refuse'
      ? `${d.error.message} ${d.error.hint ?? ''}`
      : d.outcome === 'run'
        ? d.statements.map((s) => (s.action === 'forward' ? s.sql : s.action === 'catalog' ? s.statement.sql : s.rows.join('\n'))).join('\n')
        : '';
  const expectOk = test.expect === got || (test.expect === 'allowed' && got === 'rewritten');
  if (!expectOk)
    return { ok: false, problem: `expected ${test.expect}, got ${got}${d.outcome === 'refuse' ? ` (${d.error.sqlstate}: ${d.error.message})` : ''}` };
  if (test.sqlstate && (d.outcome !== 'refuse' || d.error.sqlstate !== test.sqlstate)) {
    return { ok: false, problem: `expected SQLSTATE ${test.sqlstate}, got ${d.outcome === 'refuse' ? d.error.sqlstate : 'none'}` };
  }
  const missing = (test.contains ?? []).filter((c) => !text.includes(c));
  if (missing.length) return { ok: false, problem: `output lacks ${missing.map((m) => JSON.stringify(m)).join(', ')}: ${text}` };
  return { ok: true };
}
