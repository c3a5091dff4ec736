// A statement record of bob's, as the audit tests write them: only the statement differs.
import type { StatementRecord } from '../../src/audit/audit.ts';

export function statementRecord(statement: string): StatementRecord {
  return {
    org: 'acme',
    user: 'bob@acme.example',
    connection: 'warehouse',
    level: 'query_topics',
    client_address: '127.0.0.1',
    statement,
    decision: 'allowed',
    rule: 'r',
    policy_version: 'v',
    topics: [],
    duration_ms: 1,
  };
}
