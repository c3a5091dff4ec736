// Prometheus metrics: what an operator watches. Labels never carry SQL text or user names.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly statements = new Counter({
    name: 'gatehouse_statements_total',
    help: 'Statements by decision (allowed, rewritten, refused, answered, empty) and org',
    labelNames: ['org', 'decision'] as const,
    registers: [this.registry],
  });
  readonly statementSeconds = new Histogram({
    name: 'gatehouse_statement_duration_seconds',
    help: 'Time from a Query message to its last result message',
    labelNames: ['org'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly sessions = new Gauge({ name: 'gatehouse_sessions', help: 'Open client sessions', labelNames: ['org'] as const, registers: [this.registry] });
  readonly limitRefusals = new Counter({
    name: 'gatehouse_limit_refusals_total',
    help: 'Sessions refused or ended and statements stopped by a limit (max_sessions_per_user, statement_timeout, max_result_rows...)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({ name: 'gatehouse_auth_failures_total', help: 'Failed sign-ins (wrong password or unknown user)', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
  }
}
