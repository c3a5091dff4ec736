// A querier's Snowflake text and the client's parameters: numbered binds (:n) found as
// Snowflake reads the text, never inside literals, quoted names or comments.
import { describe, expect, it } from 'vitest';
import { snowflakeRender } from '../../../src/warehouses/snowflake-warehouse.ts';
import { numberedBinds } from '../../../src/sql/dialects/placeholders.ts';

const highestNumberedBind = (sql: string) => Math.max(0, ...numberedBinds(sql));

describe('snowflakeRender', () => {
  it('maps :n binds by number and leaves the text unchanged', () => {
    expect(snowflakeRender({ sql: 'SELECT :2, :1' })).toEqual({ sql: 'SELECT :2, :1', params: [1, 2] });
    expect(snowflakeRender({ sql: 'SELECT ?', params: [3] })).toEqual({ sql: 'SELECT ?', params: [3] });
  });

  it.each([
    ["SELECT ':1', 'it''s :2', 'a\\' :3'", 0],
    ['SELECT ":1" FROM t', 0],
    ['SELECT $$ :1 $$', 0],
    ['SELECT 1 -- :1\n, :2', 2],
    ['SELECT 1 /* :5 */ // :6\n', 0],
    ['SELECT x::int, :1', 1],
    ["SELECT 'x' || :3", 3],
  ])('%s -> %d', (sql, n) => {
    expect(highestNumberedBind(sql)).toBe(n);
  });
});
