// Statement metrics are counted in plain numbers and reach prom-client at a scrape: the totals
// must still add up across scrapes, and durations must reach the histogram without a scrape too.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/admin/metrics.ts';

const value = (text: string, series: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${series} `))
      ?.split(' ')[1],
  );

describe('Metrics.countStatement', () => {
  it('adds up across scrapes, per org and decision', async () => {
    const m = new Metrics();
    for (let i = 0; i < 3; i++) m.countStatement('acme', 'allowed', 0.002);
    m.countStatement('acme', 'refused', 0.0001);
    let text = await m.registry.metrics();
    expect(value(text, 'gatehouse_statements_total{org="acme",decision="allowed"}')).toBe(3);
    expect(value(text, 'gatehouse_statements_total{org="acme",decision="refused"}')).toBe(1);
    expect(value(text, 'gatehouse_statement_duration_seconds_count{org="acme"}')).toBe(4);
    expect(value(text, 'gatehouse_statement_duration_seconds_bucket{le="0.001",org="acme"}')).toBe(1);
    m.countStatement('acme', 'allowed', 0.002);
    text = await m.registry.metrics();
    expect(value(text, 'gatehouse_statements_total{org="acme",decision="allowed"}')).toBe(4);
    expect(value(text, 'gatehouse_statement_duration_seconds_count{org="acme"}')).toBe(5);
  });

  it('keeps a bounded list of durations when nobody scrapes', () => {
    const m = new Metrics();
    for (let i = 0; i < 100_000; i++) m.countStatement('acme', 'allowed', 0.001);
    expect((m as unknown as { durations: unknown[] }).durations.length).toBeLessThan(4096);
  });
});
