// Queriers' raw MySQL/MariaDB/Snowflake SQL: classified read-only with node-sql-parser before
// it is passed through unchanged. Allowed statements give their kind; refused ones a
// GatehouseError with a SQLSTATE and a message naming what refused them.
import { describe, expect, it } from 'vitest';
import { classifyRawSql, type RawDialect } from '../../../../src/sql/dialects/classify-raw.ts';

const ALLOWED: Array<[string, string, RawDialect?]> = [
  ['SELECT 1', 'select'],
  ["SELECT id, name FROM customers WHERE region = 'EMEA' ORDER BY 1 LIMIT 10", 'select'],
  ['SELECT region, COUNT(*), SUM(amount), AVG(amount) FROM orders GROUP BY region HAVING COUNT(*) > 1', 'select'],
  ["SELECT COUNT(DISTINCT customer_id), GROUP_CONCAT(status SEPARATOR ',') FROM orders", 'select'],
  ["SELECT DATE_FORMAT(ordered_at, '%Y-%m'), DATE_ADD(ordered_at, INTERVAL 1 DAY), EXTRACT(YEAR FROM ordered_at) FROM orders", 'select'],
  ["SELECT CAST(amount AS CHAR), CONVERT(amount, CHAR), IF(amount > 1, 'a', 'b'), IFNULL(note, '') FROM orders", 'select'],
  ['SELECT ROW_NUMBER() OVER (PARTITION BY region ORDER BY amount DESC) FROM orders', 'select'],
  ['WITH t AS (SELECT region, SUM(amount) AS s FROM orders GROUP BY region) SELECT * FROM t', 'select'],
  ['SELECT a FROM t UNION ALL SELECT b FROM u', 'select'],
  ['SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id IN (SELECT id FROM orders WHERE amount > 5)', 'select'],
  ["SELECT JSON_EXTRACT(doc, '$.a') FROM docs", 'select'],
  ["SELECT 'it''s', 'a\\\\b', \"double\" FROM t", 'select'],
  ["SELECT 'a;b' AS x -- trailing; comment\n", 'select'],
  ['SELECT 1 /* a comment; with a semicolon */', 'select'],
  ['SELECT 1; SELECT 2', 'multiple'],
  ['SHOW TABLES', 'show'],
  ['SHOW DATABASES', 'show'],
  ['SHOW COLUMNS FROM orders', 'show'],
  ['SHOW INDEX FROM orders', 'show'],
  ['SHOW CREATE TABLE orders', 'show'],
  ['SHOW CREATE VIEW v', 'show'],
  ["SHOW DATABASES LIKE 'gate%'", 'show'],
  ["SHOW COLLATION LIKE 'utf8mb4%'", 'show'],
  ['DESCRIBE orders', 'describe'],
  ['DESC orders', 'describe'],
  ['EXPLAIN SELECT * FROM orders WHERE id = 1', 'explain'],
  ['SET group_concat_max_len = 4096', 'set'],
  ['SET SESSION sql_select_limit = 10', 'set'],
  ['SET @@session.group_concat_max_len = 100000', 'set'],
  ['SELECT 1', 'select', 'mariadb'],
  ['SELECT IFF(a > 1, 1, 2), NVL(a, 0), DATEADD(day, 1, d) FROM t', 'select', 'snowflake'],
  ["SELECT 'a' // a Snowflake comment; with a semicolon\nFROM t", 'select', 'snowflake'],
  ['SHOW TABLES', 'show', 'snowflake'],
  // Comments every reader ends where the warehouse does: MySQL's `-- ` needs a space or a
  // control character after it, or the end of the text.
  ['SELECT 1 -- , USER()\n', 'select'],
  ['SELECT 1 --\t, USER()', 'select'],
  ['SELECT 1 --', 'select'],
  ['SELECT 1 --\r\n', 'select'],
  ['SELECT 1 # , USER()', 'select', 'mariadb'],
  ['SELECT 1 /* , USER() */ AS a -- x\r\n', 'select', 'mariadb'],
  ['SELECT 1 - -1', 'select'],
  ['SELECT \'a--1\', "/* #", `x--y` FROM t', 'select'],
  ['SELECT 1 // , CURRENT_USER()', 'select', 'snowflake'],
  ['SELECT 1 -- , CURRENT_USER()', 'select', 'snowflake'],
  ['SELECT 1 //\t, CURRENT_USER()', 'select', 'snowflake'],
  ['SELECT \'a -- b\', "c--d" FROM t /* x */', 'select', 'snowflake'],
];

// [sql, SQLSTATE, words the message must contain, dialect]
const REFUSED: Array<[string, string, string, RawDialect?]> = [
  ['DELETE FROM orders', '42501', 'DELETE is not permitted: raw SQL on MySQL connections through Gatehouse is read-only'],
  ['INSERT INTO orders (id) VALUES (1)', '42501', 'INSERT is not permitted'],
  ['UPDATE orders SET amount = 0', '42501', 'UPDATE is not permitted'],
  ['REPLACE INTO orders (id) VALUES (1)', '42501', 'REPLACE is not permitted'],
  ['DROP TABLE orders', '42501', 'DROP is not permitted'],
  ['CREATE TABLE x (a int)', '42501', 'CREATE is not permitted'],
  ['ALTER TABLE orders ADD COLUMN x int', '42501', 'ALTER is not permitted'],
  ['TRUNCATE TABLE orders', '42501', 'TRUNCATE is not permitted'],
  ["GRANT SELECT ON orders TO 'x'@'%'", '42501', 'GRANT is not permitted'],
  ['CALL p()', '42501', 'CALL is not permitted'],
  ['LOCK TABLES orders READ', '42501', 'LOCK TABLES is not permitted'],
  ['SELECT 1; DELETE FROM orders', '42501', 'DELETE is not permitted'],
  ["SELECT * FROM orders INTO OUTFILE '/tmp/x'", '42501', 'SELECT ... INTO OUTFILE'],
  ["SELECT * FROM orders INTO DUMPFILE '/tmp/x'", '42501', 'SELECT ... INTO DUMPFILE'],
  ['SELECT id INTO @x FROM orders', '42501', 'SELECT ... INTO variables'],
  ['SELECT * FROM orders FOR UPDATE', '42501', 'FOR UPDATE is not permitted: it takes row locks'],
  ['SELECT * FROM orders LOCK IN SHARE MODE', '42501', 'LOCK IN SHARE MODE is not permitted: it takes row locks'],
  ["SELECT LOAD_FILE('/etc/passwd')", '42501', 'function LOAD_FILE is not permitted through Gatehouse: it reads files'],
  ['SELECT SLEEP(10)', '42501', 'function SLEEP is not permitted'],
  ['SELECT `sleep`(10)', '42501', 'function sleep is not permitted'],
  ["SELECT BENCHMARK(1000000, MD5('x'))", '42501', 'function BENCHMARK is not permitted'],
  ["SELECT GET_LOCK('x', 10)", '42501', 'function GET_LOCK is not permitted'],
  ["SELECT sys_exec('id')", '42501', 'function sys_exec is not permitted'],
  ['SELECT USER()', '42501', "function USER is not permitted through Gatehouse: it answers the warehouse account's name"],
  ['SELECT CURRENT_USER()', '42501', 'function CURRENT_USER is not permitted'],
  ['SELECT my_stored_function(id) FROM orders', '42501', "function my_stored_function is not on Gatehouse's function allowlist for MySQL raw SQL"],
  ['SELECT app.f(id) FROM orders', '42501', 'schema-qualified function calls are not permitted'],
  ['SELECT * FROM orders WHERE id IN (SELECT SLEEP(1))', '42501', 'function SLEEP'],
  ["SELECT a FROM t UNION SELECT LOAD_FILE('/etc/passwd')", '42501', 'function LOAD_FILE'],
  ['SELECT @@version', '42501', 'variables (@@version) are not permitted'],
  ['SELECT @a', '42501', 'variables (@a) are not permitted'],
  ["SELECT * FROM orders /*! , LOAD_FILE('/etc/passwd') */", '42501', 'executable comments (/*! ... */) are not permitted'],
  ['SELECT 1 /*M!100000 , SLEEP(5) */', '42501', 'executable comments'],
  ['SHOW PROCESSLIST', '42501', 'SHOW PROCESSLIST is not permitted'],
  ['SHOW GRANTS', '42501', 'SHOW GRANTS is not permitted'],
  ['SHOW FULL PROCESSLIST', '0A000', 'cannot classify'],
  // SHOW's WHERE is an expression the server evaluates (an outside review ran SLEEP, BENCHMARK,
  // GET_LOCK and an oracle on USER() through it when only the keyword was checked).
  ['SHOW DATABASES WHERE SLEEP(2) = 0', '42501', 'SHOW DATABASES ... WHERE is not permitted'],
  ["SHOW COLLATION WHERE collation = 'utf8mb4_bin' AND BENCHMARK(5000000, MD5('x')) = 0", '42501', 'SHOW COLLATION ... WHERE is not permitted'],
  ["SHOW CHARACTER SET WHERE charset = 'utf8mb4' AND USER() LIKE 'x%'", '42501', 'SHOW CHARACTER SET ... WHERE is not permitted'],
  ["SHOW DATABASES WHERE GET_LOCK('x', 0) = 1", '42501', 'WHERE is not permitted'],
  ["SHOW DATABASES WHERE `Database` = 'x'", '42501', 'WHERE is not permitted'],
  ["SHOW DATABASES WHERE LOAD_FILE('/etc/passwd') IS NULL", '42501', 'WHERE is not permitted'],
  ['EXPLAIN DELETE FROM orders', '0A000', 'cannot classify'],
  ['USE mysql', '42501', 'USE is not permitted'],
  ['SET @a = 1', '42501', 'user variables (@name) are not permitted'],
  ["SET sql_mode = ''", '42501', 'SET sql_mode is not permitted in MySQL raw SQL through Gatehouse; settable: group_concat_max_len'],
  ["SET GLOBAL time_zone = '+00:00'", '42501', 'SET GLOBAL is not permitted'],
  ["SET @@global.time_zone = '+00:00'", '42501', 'SET @@global.time_zone is not permitted'],
  ["SET group_concat_max_len = (SELECT LOAD_FILE('/x'))", '42501', 'takes a constant value'],
  ["SET time_zone = '+01:00'", '42501', 'SET time_zone is not permitted'],
  ['SET NAMES latin1', '0A000', 'cannot classify'],
  ['HANDLER orders OPEN', '0A000', 'cannot classify'],
  ['DO SLEEP(1)', '0A000', 'cannot classify'],
  ["SELECT 'unterminated", '0A000', 'a quoted string or comment is not closed'],
  ['', '0A000', 'an empty statement'],
  // DESIGN 3: node-sql-parser read a backslash-quote as an escape; under NO_BACKSLASH_ESCAPES
  // the string ends there and what follows is SQL. Whatever follows, such text is refused.
  ["SELECT 'a\\'; DELETE FROM orders; -- '", '42501', 'a backslash before a quote in a string literal reads differently'],
  // Read with backslash escapes this never closes; without them it calls LOAD_FILE.
  ["SELECT 'x\\' , LOAD_FILE('/etc/passwd'), '' FROM orders", '0A000', 'a quoted string or comment is not closed'],
  ['SELECT "a\\"; DROP TABLE t; -- "', '42501', 'a backslash before a quote'],
  ['SELECT SYSTEM$WHITELIST()', '42501', "function SYSTEM$WHITELIST is not on Gatehouse's function allowlist for Snowflake raw SQL", 'snowflake'],
  ['COPY INTO t FROM @stage', '0A000', 'cannot classify this statement as Snowflake SQL', 'snowflake'],
  ['SET x = 1', '42501', 'SET is not permitted in Snowflake raw SQL', 'snowflake'],
  ['SELECT $$x$$', '0A000', '$$ strings are not supported in Snowflake raw SQL', 'snowflake'],
  ['DELETE FROM t', '42501', 'DELETE is not permitted: raw SQL on MariaDB connections', 'mariadb'],
];

// The same text read two ways (F1, F2 of the second review): the warehouse's lexer decides,
// and whatever another reader (node-sql-parser, PostgreSQL's parser) would read differently
// is refused. Each text would hide a denied call or a second statement from the classifier.
const READ_TWO_WAYS: Array<[string, string, RawDialect]> = [
  // MySQL/MariaDB: `--` without a space after it is two minus signs.
  ['SELECT 1 --1, USER() AS u', '`--` outside a string is not a comment mark to MariaDB', 'mariadb'],
  ['SELECT 1 --1, USER() AS u', '`--` outside a string is not a comment mark to MySQL', 'mysql'],
  ['SELECT 1 --1 INTO @x', '`--`', 'mariadb'],
  ["SELECT 1 --1, GET_LOCK('x', 0) AS got", '`--`', 'mariadb'],
  ['SELECT ? --1, USER()', '`--`', 'mariadb'],
  ['SELECT name FROM employees WHERE name = ? --1 OR 1=1', '`--`', 'mariadb'],
  ['SELECT 1 ---1, USER()', '`--`', 'mariadb'],
  ["SELECT 'a'--1, USER()", '`--`', 'mariadb'],
  ['SELECT 1 --\x7f, USER()', '`--`', 'mariadb'],
  ['SELECT 1 --\u00a0, USER()', '`--`', 'mariadb'],
  ['SELECT 1 --1\n; DELETE FROM orders', '`--`', 'mariadb'],
  ['SELECT 1 // , USER()', '`//`', 'mariadb'],
  ['SELECT 1 */ , USER()', '`*/`', 'mariadb'],
  // Nested block comments: PostgreSQL and node-sql-parser nest them, MySQL and Snowflake end at the first */.
  ['SELECT 1 AS a /* /* */ , CURRENT_USER() AS u -- */', 'nested comments are not allowed on Snowflake', 'snowflake'],
  ['SELECT 1 AS a /* /* */ , CURRENT_USER() AS u /* */ */', 'nested comments', 'snowflake'],
  ['SELECT 1 AS a /* /* */ ; DELETE FROM t -- */', 'nested comments', 'snowflake'],
  ['SELECT 1 AS a /* /* */ , USER() AS u -- */', 'nested comments are not allowed on MariaDB', 'mariadb'],
  // Snowflake: `#` is no comment; `$$` strings the classifier reads as variables; escapes.
  ['SELECT 1 # , CURRENT_USER()', '`#` outside a string is not a comment mark to Snowflake', 'snowflake'],
  // Snowflake documents --x and //x as comments; MySQL does not read --x as one, and the fake cannot prove Snowflake's lexer.
  ['SELECT 1 --1, CURRENT_USER()', 'a line comment mark with no space after it', 'snowflake'],
  ['SELECT 1 //x\n', 'a line comment mark with no space after it', 'snowflake'],
  // `/*/` inside a comment ends it on Snowflake (its documentation); PostgreSQL nests there.
  ['SELECT 1 /* a /*/ , CURRENT_USER() -- */', 'nested comments', 'snowflake'],
  ['SELECT $$ -- $$, CURRENT_USER()', '$$ strings are not supported', 'snowflake'],
  ["SELECT 'a\\' -- ', CURRENT_USER() AS u", 'a backslash before a quote in a string literal is an escape to Snowflake', 'snowflake'],
  // A carriage return in a line comment: PostgreSQL and node-sql-parser end the comment there.
  ['SELECT 1 -- x\r, USER()\n', 'inside a line comment is read as the comment', 'mariadb'],
  ['SELECT 1 // x\r, CURRENT_USER()\n', 'inside a line comment is read as the comment', 'snowflake'],
  ['SELECT 1 -- x\u2028, CURRENT_USER()\n', 'inside a line comment is read as the comment', 'snowflake'],
  // MySQL 8 reads /*+ */ as optimizer hints (SET_VAR sets session variables for the statement).
  ["SELECT /*+ SET_VAR(sql_mode='') */ 1", 'optimizer hints', 'mysql'],
];

describe('text the warehouse and other readers lex differently is refused', () => {
  for (const [sql, words, dialect] of READ_TWO_WAYS) {
    it(`${dialect}: ${JSON.stringify(sql)}`, () => {
      const r = classifyRawSql(sql, dialect);
      expect(r.ok, JSON.stringify(r)).toBe(false);
      if (r.ok) return;
      expect(r.error.sqlstate).toMatch(/^(42501|0A000)$/);
      expect(r.error.message).toContain(words);
      expect(r.error.hint, 'a refusal says what to write instead').toBeTruthy();
    });
  }

  it('the `--` refusal says how to write a MySQL comment', () => {
    const r = classifyRawSql('SELECT 1 --1, USER()', 'mariadb');
    expect(r.ok ? '' : r.error.hint).toContain('write `-- ` with a space after it');
  });
});

describe('allowed raw SQL', () => {
  for (const [sql, kind, dialect = 'mysql'] of ALLOWED) {
    it(`${dialect}: ${sql}`, () => {
      const r = classifyRawSql(sql, dialect);
      expect(r.ok ? r.kind : r.error.message).toBe(kind);
    });
  }

  it('reports each statement of a multi-statement text', () => {
    expect(classifyRawSql('SELECT 1; SHOW TABLES; DESCRIBE t', 'mysql')).toEqual({ ok: true, kind: 'multiple', kinds: ['select', 'show', 'describe'] });
  });
});

describe('refused raw SQL', () => {
  for (const [sql, sqlstate, words, dialect = 'mysql'] of REFUSED) {
    it(`${dialect}: ${sql}`, () => {
      const r = classifyRawSql(sql, dialect);
      expect(r.ok, JSON.stringify(r)).toBe(false);
      if (r.ok) return;
      expect(r.error.sqlstate).toBe(sqlstate);
      expect(r.error.message).toContain(words);
    });
  }

  it('a backslash-quote in a string cannot hide a following statement or denied function', () => {
    // node-sql-parser alone reads this as one SELECT of one string (DESIGN 3); a MariaDB
    // session with NO_BACKSLASH_ESCAPES reads a second statement.
    for (const tail of ['; DELETE FROM orders; -- ', ", LOAD_FILE('/etc/passwd') -- ", ' UNION SELECT SLEEP(9) -- ']) {
      const r = classifyRawSql(`SELECT 'prefix\\'${tail}'`, 'mysql');
      expect(r.ok).toBe(false);
    }
  });
});
