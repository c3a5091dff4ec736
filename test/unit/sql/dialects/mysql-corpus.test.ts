// Every statement of shared/corpus (real clients' catalog and analytic SQL) through the MySQL
// emitter: it writes text or refuses with 0A000, never fails another way (a TypeError on an
// AST shape it did not expect would be an internal error, not a refusal naming the construct).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { isGatehouseError } from '../../../../src/errors.ts';
import { createMysqlDialect } from '../../../../src/sql/dialects/mysql.ts';
import { ensureParser, parseSqlSync } from '../../../../src/sql/parse.ts';

const corpus = JSON.parse(readFileSync(resolve(process.env.CORPUS_DIR ?? '/work/shared/corpus', 'client-queries.json'), 'utf8')) as Array<{
  source: string;
  sql: string;
}>;

// Every relation typed as a table of text and integer columns, so emission goes deep.
const dialect = createMysqlDialect({ columnTypes: () => ({ id: 'integer', name: 'text', region: 'text', amount: 'numeric' }) });

beforeAll(async () => {
  await ensureParser();
});

it('writes or refuses with 0A000 every corpus statement', () => {
  const outcomes = { emitted: 0, refused: 0 };
  for (const { source, sql } of corpus) {
    let stmts;
    try {
      stmts = parseSqlSync(sql).statements;
    } catch {
      continue;
    }
    for (const st of stmts) {
      try {
        const e = dialect.emit(st.stmt);
        expect(e.sql.length, source).toBeGreaterThan(0);
        expect(e.sql, source).not.toContain('\u0000');
        outcomes.emitted++;
      } catch (err) {
        expect(isGatehouseError(err), `${source}: ${String(err)}\n${sql}`).toBe(true);
        expect((err as { sqlstate: string }).sqlstate, source).toBe('0A000');
        outcomes.refused++;
      }
    }
  }
  expect(outcomes.emitted + outcomes.refused).toBeGreaterThan(150);
  expect(outcomes.emitted).toBeGreaterThan(0);
});
