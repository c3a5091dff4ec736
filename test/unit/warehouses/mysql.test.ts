// The mysql connector's pure parts: PostgreSQL's float text, SHOW GRANTS parsing, placeholders,
// command tags, error mapping, the person's comment and the TLS default.
import { describe, expect, it } from 'vitest';
import { parseGrant } from '../../../src/warehouses/mysql-accounts.ts';
import { mysqlError, pgFloat } from '../../../src/warehouses/mysql-types.ts';
import { tlsMode, whoComment } from '../../../src/warehouses/mysql.ts';
import { commandTag, countPlaceholders, passthroughRender } from '../../../src/warehouses/row-session.ts';

describe('pgFloat: a double as PostgreSQL 12+ prints float8 and float4', () => {
  it.each([
    [0.1, false, '0.1'],
    [1e20, false, '1e+20'],
    [1e15, false, '1e+15'],
    [123456789012345, false, '123456789012345'],
    [0.0001, false, '0.0001'],
    [0.00001, false, '1e-05'],
    [-1.5e-7, false, '-1.5e-07'],
    [1e300, false, '1e+300'],
    [2.5, false, '2.5'],
    [-0, false, '-0'],
    [0, false, '0'],
    [Number.NaN, false, 'NaN'],
    [Number.POSITIVE_INFINITY, false, 'Infinity'],
    [0.1, true, '0.1'],
    [Math.fround(0.1), true, '0.1'],
    [123456, true, '123456'],
    [1e6, true, '1e+06'],
    [Math.fround(3.14159274), true, '3.1415927'],
    [1.7976931348623157e308, false, '1.7976931348623157e+308'],
  ])('%s (float4: %s) -> %s', (x, float4, text) => {
    expect(pgFloat(x, float4)).toBe(text);
  });
});

describe('SHOW GRANTS lines', () => {
  it('reads privileges, column lists, the object and GRANT OPTION', () => {
    const g = parseGrant('GRANT SELECT (`id`, `we,ird``col`), INSERT ON `my db`.`t``x` TO `u`@`%` WITH GRANT OPTION');
    expect(g.privileges).toEqual([{ name: 'SELECT', columns: ['id', 'we,ird`col'] }, { name: 'INSERT' }]);
    expect(g.on).toEqual({ kind: 'table', db: 'my db', table: 't`x' });
    expect(g.grantOption).toBe(true);
  });
  it('global, database, role and routine grants', () => {
    expect(parseGrant("GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*ABC'").on).toEqual({ kind: 'global' });
    expect(parseGrant('GRANT ALL PRIVILEGES ON `db`.* TO `u`@`%`').privileges).toEqual([{ name: 'ALL PRIVILEGES' }]);
    expect(parseGrant('GRANT `r` TO `u`@`%`').role).toBe('r');
    expect(parseGrant('GRANT EXECUTE ON FUNCTION `db`.`f` TO `u`@`%`').on.kind).toBe('other');
    // A table whose name says ' TO ' stays a table.
    expect(parseGrant('GRANT SELECT ON `db`.` TO x` TO `u`@`%`').on).toEqual({ kind: 'table', db: 'db', table: ' TO x' });
  });
});

describe('placeholders and the passthrough renderer', () => {
  it('counts ? outside literals, quoted names and comments, inside executable comments', () => {
    expect(countPlaceholders("SELECT ?, '?', \"?\", `?`, 'it''s ?' -- ?\n, ? # ?\n /* ? */ /*! , ? */")).toBe(3);
    expect(countPlaceholders("SELECT 'a\\' , ?")).toBe(1); // NO_BACKSLASH_ESCAPES: the backslash is a character
    expect(countPlaceholders('SELECT 1--?')).toBe(1); // -- needs a space after it to start a comment in MySQL
    expect(passthroughRender({ sql: 'SELECT ? + ?' })).toEqual({ sql: 'SELECT ? + ?', params: [1, 2] });
  });
});

describe('command tags', () => {
  it.each([
    ['INSERT INTO t VALUES (1)', 3, 'INSERT 0 3'],
    ['/* c */ update t set a = 1', 2, 'UPDATE 2'],
    ['DELETE FROM t', 0, 'DELETE 0'],
    ['START TRANSACTION', undefined, 'BEGIN'],
    ['create table x (a int)', undefined, 'CREATE TABLE'],
    ['SET @a = 1', undefined, 'SET'],
  ])('%s -> %s', (sql, n, tag) => {
    expect(commandTag(sql, n)).toBe(tag);
  });
});

describe('MySQL errors as SQLSTATEs', () => {
  it.each([
    [1146, '42S02', '42P01'],
    [1054, '42S22', '42703'],
    [1064, '42000', '42601'],
    [1142, '42000', '42501'],
    [1143, '42000', '42501'],
    [1227, '42000', '42501'],
    [1317, '70100', '57014'],
    [1205, 'HY000', '55P03'],
    [1062, '23000', '23505'],
    [1048, '23000', '23502'],
    [1365, '22012', '22012'],
    [9999, '22007', '22007'],
    [9998, 'HY000', 'XX000'],
    [9997, 'nope!', 'XX000'],
  ])('errno %s (sqlState %s) -> %s', (errno, sqlState, want) => {
    expect(mysqlError({ errno, sqlState, sqlMessage: 'm' })).toEqual({ sqlstate: want, message: 'm' });
  });
});

describe('who is behind a statement', () => {
  it('names the person in a comment that cannot be ended early', () => {
    expect(whoComment('carol@acme.example')).toBe('/* gatehouse:carol@acme.example */ ');
    expect(whoComment('a*/DROP@x.y')).toBe('/* gatehouse:a%2a%2fDROP@x.y */ ');
    expect(whoComment(undefined)).toBe('/* gatehouse */ ');
  });
});

describe('TLS default', () => {
  it('verify-full off loopback, none on it, the file wins', () => {
    expect(tlsMode('db.example.com')).toBe('verify-full');
    expect(tlsMode('10.0.0.5')).toBe('verify-full');
    expect(tlsMode('127.0.0.1')).toBe('disable');
    expect(tlsMode('localhost')).toBe('disable');
    expect(tlsMode('::1')).toBe('disable');
    expect(tlsMode('db.example.com', 'require')).toBe('require');
  });
});
