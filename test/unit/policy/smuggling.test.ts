import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/policy/decide.ts';
import { smugglingCases } from '../../fixtures/smuggling.ts';
import { bob } from './demo-context.ts';

describe('smuggling attempts by bob (query_topics, region EMEA)', () => {
  it('has enough cases', () => {
    expect(smugglingCases.length).toBeGreaterThanOrEqual(45);
    expect(new Set(smugglingCases.map((c) => c.name)).size).toBe(smugglingCases.length);
  });

  for (const c of smugglingCases) {
    it(`${c.expect}: ${c.name}`, async () => {
      const d = await decide(bob, c.sql);
      if (c.expect === 'refused') {
        expect(d.outcome, JSON.stringify(d)).toBe('refuse');
        if (d.outcome === 'refuse') expect(['42501', '42601', '0A000']).toContain(d.error.sqlstate);
      } else if (c.expect === 'catalog') {
        expect(d.outcome === 'run' && d.statements.map((s) => s.action), JSON.stringify(d)).toEqual(['catalog']);
      } else {
        expect(d.outcome, JSON.stringify(d)).toBe('run');
        if (d.outcome === 'run') {
          for (const s of d.statements) {
            expect(s.action).toBe('forward');
            if (s.action === 'forward') {
              expect(s.sql).toMatch(/WHERE region = 'EMEA' OFFSET 0\s*\)/);
              expect(s.sql).not.toMatch(/FROM public\.orders\s*\)/);
            }
          }
        }
      }
    });

    it(`twin allowed: ${c.name}`, async () => {
      const d = await decide(bob, c.twin);
      expect(d.outcome, `${c.twin} -> ${JSON.stringify(d)}`).toBe('run');
      if (d.outcome !== 'run') return;
      // Every topic read by the twin is behind bob's filter.
      for (const s of d.statements) {
        const text = s.action === 'forward' ? s.sql : s.action === 'catalog' ? s.statement.sql : s.rows.join('\n');
        const bases = text.match(/FROM public\.(orders|customers)/g) ?? [];
        const filtered = text.match(/FROM public\.(orders|customers)\s+WHERE\s+region = 'EMEA'/g) ?? [];
        expect(filtered.length).toBe(bases.length);
      }
    });
  }
});
