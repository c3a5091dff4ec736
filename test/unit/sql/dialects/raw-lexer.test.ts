// The warehouse's own reading of a querier's text (raw-lexer.ts) and the placeholder scans on
// it (placeholders.ts): where comments, strings and binds are for MySQL/MariaDB and Snowflake,
// in exactly the places where PostgreSQL's parser and node-sql-parser read them differently.
import { describe, expect, it } from 'vitest';
import { countPlaceholders, numberedBinds } from '../../../../src/sql/dialects/placeholders.ts';
import { blankComments, commentMarkInCode, type LexDialect, lexRaw } from '../../../../src/sql/dialects/raw-lexer.ts';

// [text, dialect, the text with the comments the warehouse reads blanked out (trimmed)]
const BLANKED: Array<[string, LexDialect, string]> = [
  ['SELECT 1 --1, USER()', 'mysql', 'SELECT 1 --1, USER()'],
  ['SELECT 1 -- , USER()', 'mysql', 'SELECT 1'],
  ['SELECT 1 --\t, USER()', 'mysql', 'SELECT 1'],
  ['SELECT 1 --\r\n, 2', 'mysql', 'SELECT 1    \n, 2'],
  ['SELECT 1 --', 'mysql', 'SELECT 1'],
  ['SELECT 1 --\x7f, 2', 'mysql', 'SELECT 1 --\x7f, 2'],
  ['SELECT 1 # x\n, 2', 'mysql', 'SELECT 1    \n, 2'],
  ['SELECT 1 // x\n, 2', 'mysql', 'SELECT 1 // x\n, 2'],
  // Neither nests: the first */ ends the comment (the classifier refuses such text).
  ['SELECT 1 /* /* */ , 2 -- */', 'mysql', `SELECT 1 ${' '.repeat(8)} , 2`],
  ['SELECT 1 /* /* */ , 2 -- */', 'snowflake', `SELECT 1 ${' '.repeat(8)} , 2`],
  ['SELECT 1 --1, 2', 'snowflake', 'SELECT 1'],
  ['SELECT 1 // x\n, 2', 'snowflake', 'SELECT 1     \n, 2'],
  ['SELECT 1 # x', 'snowflake', 'SELECT 1 # x'],
  ['SELECT \'--\', "/*", `#` -- c', 'mysql', 'SELECT \'--\', "/*", `#`'],
  ['SELECT $$ -- $$ AS a', 'snowflake', 'SELECT $$ -- $$ AS a'],
];

describe('the warehouse reading: comments blanked out', () => {
  for (const [text, dialect, blanked] of BLANKED) {
    it(`${dialect}: ${JSON.stringify(text)}`, () => {
      const lexed = lexRaw(text, dialect, dialect === 'snowflake');
      expect(blankComments(text, lexed).trimEnd()).toBe(blanked);
      expect(blankComments(text, lexed)).toHaveLength(text.length);
    });
  }
});

describe('comment marks left in the code', () => {
  const cases: Array<[string, LexDialect, string | undefined]> = [
    ['SELECT 1 --1', 'mysql', '--'],
    ['SELECT 1 -- 1', 'mysql', undefined],
    ['SELECT 1 ---1', 'mysql', '--'],
    ['SELECT 1 //x', 'mysql', '//'],
    ['SELECT 1 */', 'mysql', '*/'],
    ['SELECT 1 #x', 'snowflake', '#'],
    ['SELECT 1 --1', 'snowflake', undefined],
    ["SELECT '--1' AS a", 'mysql', undefined],
    ['SELECT 3*/*x*/2', 'mysql', undefined],
  ];
  for (const [text, dialect, mark] of cases) {
    it(`${dialect}: ${JSON.stringify(text)} -> ${mark ?? 'none'}`, () => {
      expect(commentMarkInCode(text, lexRaw(text, dialect, true))).toBe(mark);
    });
  }

  it('flags what only some readers agree on', () => {
    expect(lexRaw('SELECT 1 /* /* */ */', 'snowflake', true).nestedComment).toBe(true);
    expect(lexRaw('SELECT 1 /* a */ /* b */', 'snowflake', true).nestedComment).toBe(false);
    expect(lexRaw('SELECT 1 -- a\rb\n', 'mysql', true).strayLineBreak).toBe(true);
    expect(lexRaw('SELECT 1 -- a\r', 'mysql', true).strayLineBreak).toBe(true);
    expect(lexRaw('SELECT 1 // a\u2028b', 'snowflake', true).strayLineBreak).toBe(true);
    expect(lexRaw('SELECT 1 -- a\vb\n', 'snowflake', true).strayLineBreak).toBe(true);
    expect(lexRaw('SELECT 1 -- a\r\n', 'mysql', true).strayLineBreak).toBe(false);
    expect(lexRaw('SELECT 1 /* a\rb */', 'mysql', true).strayLineBreak).toBe(false);
    expect(lexRaw('SELECT 1 /* a /*/', 'snowflake', true).nestedComment).toBe(true);
    expect(lexRaw('SELECT 1 --x', 'snowflake', true).unspacedLineComment).toBe(true);
    expect(lexRaw('SELECT 1 //x', 'snowflake', true).unspacedLineComment).toBe(true);
    expect(lexRaw('SELECT 1 -- x\n //\tx', 'snowflake', true).unspacedLineComment).toBe(false);
    expect(lexRaw('SELECT 1 #x', 'mysql', true).unspacedLineComment).toBe(false);
    expect(lexRaw('SELECT /*+ BKA(t) */ 1', 'mysql', true).optimizerHint).toBe(true);
    expect(lexRaw('SELECT /*!50000 1 */', 'mysql', true).executableComment).toBe(true);
    expect(lexRaw('SELECT /*M!100000 1 */', 'mysql', true).executableComment).toBe(true);
  });
});

describe('placeholders where the warehouse reads code', () => {
  it('MySQL `?`: --x is code, -- x a comment, a lone \\r does not end a comment', () => {
    expect(countPlaceholders('SELECT ? --1, ?')).toBe(2);
    expect(countPlaceholders('SELECT ? -- 1, ?')).toBe(1);
    expect(countPlaceholders('SELECT ? --')).toBe(1);
    expect(countPlaceholders('SELECT ? -- x\r, ?\n, ?')).toBe(2);
    expect(countPlaceholders('SELECT ? /* /* */ , ? -- */')).toBe(2);
    expect(countPlaceholders("SELECT '\\' , ?")).toBe(1); // NO_BACKSLASH_ESCAPES
    expect(countPlaceholders('SELECT 1 /*! , ? */, ?')).toBe(2);
  });

  it('Snowflake `:n`: // and -- end at the newline, comments do not nest, backslashes escape', () => {
    expect(numberedBinds('SELECT :1 // :2\n, :3')).toEqual([1, 3]);
    expect(numberedBinds('SELECT :1 --:2\n, :3')).toEqual([1, 3]);
    expect(numberedBinds('SELECT :1 /* /* */ , :2 -- */')).toEqual([1, 2]);
    expect(numberedBinds("SELECT 'a\\' :2', :1::int, $$ :3 $$, \":4\"")).toEqual([1]);
  });
});
