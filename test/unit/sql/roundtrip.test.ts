import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSql } from '../../../src/sql/parse.ts';
import { deparseOneLine } from '../../../src/sql/deparse.ts';

const corpus = JSON.parse(readFileSync('/work/shared/corpus/client-queries.json', 'utf8')) as Array<{ source: string; sql: string }>;

/** The AST without locations, for comparing a statement with its deparse. */
function strip(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strip);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'location' && k !== 'stmt_location' && k !== 'stmt_len') out[k] = strip(v);
  return out;
}

describe('client corpus', () => {
  it('parses every statement and reports deparse round-trip changes', async () => {
    expect(corpus.length).toBe(171);
    const changed: string[] = [];
    let statements = 0;
    for (const q of corpus) {
      const parsed = await parseSql(q.sql);
      expect(parsed.statements.length, q.source).toBeGreaterThan(0);
      for (const st of parsed.statements) {
        statements++;
        let again: unknown;
        try {
          const back = await parseSql(deparseOneLine(st.stmt));
          again = back.statements[0]?.stmt;
        } catch {
          again = undefined;
        }
        if (JSON.stringify(strip(again)) !== JSON.stringify(strip(st.stmt))) changed.push(q.source);
      }
    }
    // Recorded, not asserted exactly: the deparser's version decides. Raw SQL is never deparsed.
    console.log(`corpus: ${corpus.length} texts, ${statements} statements, ${changed.length} change on a deparse round trip: ${changed.join(' | ')}`);
    expect(changed.length).toBeLessThan(20);
  });
});
