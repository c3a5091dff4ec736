// Prometheus metrics: what an operator watches. Labels never carry SQL text or user names.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolStats } from '../warehouses/pool.ts';

const POOL_LABELS = ['org', 'connection', 'account', 'mode'] as const;

export class Metrics {
  readonly registry = new Registry();
  /**
   * Statements are counted in plain numbers and their durations kept in a short list, and both
   * reach prom-client at a scrape (or every few thousand statements): a labelled inc() and
   * observe() per statement cost more than the rest of the bookkeeping.
   */
  private readonly counted = new Map<string, { org: string; decision: string; count: number }>();
  private readonly durations: { org: string; seconds: number }[] = [];
  private readonly statements = new Counter({
    name: 'gatehouse_statements_total',
    help: 'Statements by decision (allowed, rewritten, refused, answered, empty) and org',
    labelNames: ['org', 'decision'] as const,
    registers: [this.registry],
    collect: () => {
      for (const c of this.counted.values()) {
        if (c.count > 0) this.statements.inc({ org: c.org, decision: c.decision }, c.count);
        c.count = 0;
      }
    },
  });
  private readonly statementSeconds = new Histogram({
    name: 'gatehouse_statement_duration_seconds',
    help: 'Time from a Query message to its last result message',
    labelNames: ['org'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
    collect: () => this.observeDurations(),
  });
  readonly sessions = new Gauge({ name: 'gatehouse_sessions', help: 'Open client sessions', labelNames: ['org'] as const, registers: [this.registry] });
  readonly limitRefusals = new Counter({
    name: 'gatehouse_limit_refusals_total',
    help: 'Sessions refused or ended and statements stopped by a limit (max_sessions_per_user, statement_timeout, max_result_rows...)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'gatehouse_auth_failures_total',
    help: 'Failed sign-ins (wrong password or unknown user)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
  }

  /** One statement the audit trail recorded: its org, its decision and how long it took. */
  countStatement(org: string, decision: string, seconds: number): void {
    const key = `${org}\u0000${decision}`;
    const c = this.counted.get(key);
    if (c) c.count++;
    else this.counted.set(key, { org, decision, count: 1 });
    // Bounded without a scrape: every few thousand statements the durations reach the histogram.
    if (this.durations.push({ org, seconds }) >= 4096) this.observeDurations();
  }

  private observeDurations(): void {
    for (const d of this.durations) this.statementSeconds.observe({ org: d.org }, d.seconds);
    this.durations.length = 0;
  }

  /**
   * Upstream pools (issue 17, warehouses/pool.ts), read from the pools at each scrape: one
   * series per (org, connection, warehouse account). Counters are the pools' own running totals.
   */
  watchPools(stats: () => PoolStats[]): void {
    const registers = [this.registry];
    const labels = (p: PoolStats) => ({ org: p.org, connection: p.connection, account: p.account, mode: p.mode });
    new Gauge({
      name: 'gatehouse_pool_connections',
      help: 'Upstream warehouse connections in the pool, by state (idle: parked; in_use: lent to a session or transaction)',
      labelNames: [...POOL_LABELS, 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of stats()) {
          this.set({ ...labels(p), state: 'idle' }, p.idle);
          this.set({ ...labels(p), state: 'in_use' }, p.inUse);
        }
      },
    });
    const gauge = (name: string, help: string, value: (p: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: POOL_LABELS,
        registers,
        collect() {
          this.reset();
          for (const p of stats()) this.set(labels(p), value(p));
        },
      });
    const counter = (name: string, help: string, value: (p: PoolStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: POOL_LABELS,
        registers,
        collect() {
          this.reset();
          for (const p of stats()) this.inc(labels(p), value(p));
        },
      });
    gauge('gatehouse_pool_waiting', 'Statements waiting now for a free upstream connection (transaction pooling)', (p) => p.waiting);
    counter('gatehouse_pool_opened_total', 'Upstream connections opened (each a start-up and sign-in on the warehouse)', (p) => p.opened);
    counter('gatehouse_pool_reused_total', 'Checkouts served by a pooled upstream connection instead of a new one', (p) => p.reused);
    counter('gatehouse_pool_waits_total', 'Checkouts that waited for a free upstream connection', (p) => p.waits);
    counter('gatehouse_pool_wait_seconds_total', 'Total time checkouts waited for a free upstream connection', (p) => p.waitSeconds);
    counter('gatehouse_pool_wait_timeouts_total', 'Checkouts that gave up waiting (53300 to the client)', (p) => p.waitTimeouts);
  }
}
