// The functions the MySQL emitter writes: an allowlist, each written with PostgreSQL's
// meaning (argument types checked, edge cases such as substring's start below 1 or trim's
// character set handled or refused). Anything else is refused naming the function.
import type { AstNode } from '../parse.ts';
import { baseName } from './columns.ts';
import { type Expr, type ExprWriter, intConst, isInt, isNumeric } from './mysql-ast.ts';
import type { SqlType } from './types.ts';

const AGGREGATES = new Set(['count', 'sum', 'avg', 'min', 'max']);

// extract/date_part fields and what MySQL computes for them. `dated`: also valid on a date.
const FIELDS: Record<string, { sql: (x: string) => string; dated: boolean }> = {
  year: { sql: (x) => `YEAR(${x})`, dated: true },
  quarter: { sql: (x) => `QUARTER(${x})`, dated: true },
  month: { sql: (x) => `MONTH(${x})`, dated: true },
  day: { sql: (x) => `DAYOFMONTH(${x})`, dated: true },
  doy: { sql: (x) => `DAYOFYEAR(${x})`, dated: true },
  dow: { sql: (x) => `(DAYOFWEEK(${x}) - 1)`, dated: true }, // PostgreSQL: Sunday 0
  isodow: { sql: (x) => `(WEEKDAY(${x}) + 1)`, dated: true }, // PostgreSQL: Monday 1 .. Sunday 7
  week: { sql: (x) => `WEEK(${x}, 3)`, dated: true }, // ISO 8601 week, as PostgreSQL's
  isoyear: { sql: (x) => `(YEARWEEK(${x}, 3) DIV 100)`, dated: true },
  hour: { sql: (x) => `HOUR(${x})`, dated: false },
  minute: { sql: (x) => `MINUTE(${x})`, dated: false },
  second: { sql: (x) => `(SECOND(${x}) + MICROSECOND(${x}) / 1000000)`, dated: false },
};

// date_trunc units as DATE_FORMAT patterns (the result is a DATETIME, as PostgreSQL's timestamp).
const TRUNC_FORMATS: Record<string, string> = {
  year: '%Y-01-01 00:00:00',
  month: '%Y-%m-01 00:00:00',
  day: '%Y-%m-%d 00:00:00',
  hour: '%Y-%m-%d %H:00:00',
  minute: '%Y-%m-%d %H:%i:00',
  second: '%Y-%m-%d %H:%i:%s',
};

export function emitFunction(w: ExprWriter, fc: AstNode, scope: unknown): Expr {
  const name = baseName(fc.funcname);
  const shown = (fc.funcname as AstNode[]).map((n) => n.String?.sval).join('.');
  if (!name) return w.fail(`the function ${shown}`);
  if (fc.over) w.fail('window functions');
  if (fc.agg_filter) w.fail('aggregate FILTER');
  if (fc.agg_order || fc.agg_within_group) w.fail('ordered aggregates');
  if (fc.func_variadic) w.fail('VARIADIC');
  if (fc.agg_distinct && !AGGREGATES.has(name)) w.fail(`DISTINCT in ${name}`);
  const args = (fc.args as AstNode[] | undefined) ?? [];
  const arity = (...ok: number[]): void => {
    if (!ok.includes(args.length)) w.fail(`${name} with ${args.length} arguments`);
  };
  const arg = (i: number, want?: SqlType): Expr => w.coerce(args[i]!, scope, want);
  const text = (i: number): string => {
    const e = arg(i, 'text');
    if (e.type !== 'text') w.fail(`${name} on ${e.type ?? 'an argument of unknown type'}`);
    return e.sql;
  };
  const number = (i: number): Expr => {
    const e = arg(i);
    if (!isNumeric(e.type)) w.fail(`${name} on ${e.type ?? 'an argument of unknown type'}`);
    return e;
  };
  /** A non-negative integer constant argument. */
  const count = (i: number): number => {
    const k = intConst(args[i]);
    if (k === undefined || k < 0) w.fail(`${name} with a length other than a non-negative integer constant`);
    return k;
  };
  const distinct = fc.agg_distinct ? 'DISTINCT ' : '';

  switch (name) {
    case 'count':
      if (fc.agg_star) return { sql: 'COUNT(*)', type: 'int8' };
      arity(1);
      if (arg(0).type === undefined) w.fail('count of an expression of unknown type');
      return { sql: `COUNT(${distinct}${arg(0).sql})`, type: 'int8' };
    case 'sum':
    case 'avg': {
      arity(1);
      const e = number(0);
      // PostgreSQL: sum(int4) is bigint, sum(int8) and avg of integers are numeric.
      const type: SqlType = e.type === 'float' ? 'float' : name === 'sum' && e.type === 'int' ? 'int8' : 'numeric';
      return { sql: `${name.toUpperCase()}(${distinct}${e.sql})`, type };
    }
    case 'min':
    case 'max': {
      arity(1);
      const e = arg(0);
      if (e.type === undefined || e.type === 'untyped' || e.type === 'interval') w.fail(`${name} of ${e.type ?? 'an expression of unknown type'}`);
      return { sql: `${name.toUpperCase()}(${distinct}${e.sql})`, type: e.type };
    }
    case 'lower':
    case 'upper':
      arity(1);
      return { sql: `${name.toUpperCase()}(${text(0)})`, type: 'text' };
    case 'length':
    case 'char_length':
    case 'character_length':
      arity(1);
      return { sql: `CHAR_LENGTH(${text(0)})`, type: 'int' };
    case 'octet_length':
      arity(1);
      return { sql: `OCTET_LENGTH(${text(0)})`, type: 'int' };
    case 'substring':
    case 'substr': {
      arity(2, 3);
      const s = text(0);
      // PostgreSQL counts a start below 1 into the length; MySQL reads 0 as empty and a
      // negative start from the end. Written with PostgreSQL's arithmetic for constants.
      const start = intConst(args[1]);
      if (start === undefined) w.fail(`${name} with a start other than an integer constant`);
      if (args.length === 2) return { sql: `SUBSTRING(${s}, ${Math.max(start, 1)})`, type: 'text' };
      const len = count(2);
      const from = Math.max(start, 1);
      return { sql: `SUBSTRING(${s}, ${from}, ${Math.max(start + len - from, 0)})`, type: 'text' };
    }
    case 'btrim':
    case 'ltrim':
    case 'rtrim': {
      arity(1, 2);
      const s = text(0);
      const side = { btrim: 'BOTH', ltrim: 'LEADING', rtrim: 'TRAILING' }[name];
      if (args.length === 1) return { sql: `TRIM(${side} ' ' FROM ${s})`, type: 'text' };
      // PostgreSQL trims any of a set of characters, MySQL a whole string: alike for one character.
      const chars = args[1]?.A_Const?.sval?.sval as string | undefined;
      if (chars === undefined || [...chars].length !== 1) w.fail(`${name} with characters other than one constant character`);
      return { sql: `TRIM(${side} ${w.string(chars)} FROM ${s})`, type: 'text' };
    }
    case 'replace':
      arity(3);
      return { sql: `REPLACE(${text(0)}, ${text(1)}, ${text(2)})`, type: 'text' };
    case 'position':
    case 'strpos':
      // position(s, sub) in the tree (position(sub IN s) as written); LOCATE takes sub first.
      arity(2);
      {
        const s = text(0);
        const sub = text(1);
        return { sql: `LOCATE(${sub}, ${s})`, type: 'int' };
      }
    case 'left':
    case 'right':
      arity(2);
      {
        const s = text(0);
        return { sql: `${name.toUpperCase()}(${s}, ${count(1)})`, type: 'text' };
      }
    case 'concat': {
      // PostgreSQL's concat() skips NULLs, as CONCAT_WS does (MySQL's CONCAT gives NULL).
      if (args.length === 0) w.fail('concat without arguments');
      const parts = args.map((_, i) => {
        const e = arg(i);
        if (e.type === 'untyped') return arg(i, 'text').sql;
        if (!(e.type === 'text' || isInt(e.type) || e.type === 'numeric' || e.type === 'date')) w.fail(`concat of ${e.type ?? 'an argument of unknown type'}`);
        return e.sql;
      });
      return { sql: `CONCAT_WS('', ${parts.join(', ')})`, type: 'text' };
    }
    case 'abs': {
      arity(1);
      const e = number(0);
      return { sql: `ABS(${e.sql})`, type: e.type };
    }
    case 'ceil':
    case 'ceiling':
    case 'floor': {
      arity(1);
      const e = number(0);
      return { sql: `${name === 'floor' ? 'FLOOR' : 'CEILING'}(${e.sql})`, type: e.type };
    }
    case 'round': {
      arity(1, 2);
      const e = number(0);
      // PostgreSQL rounds numeric half away from zero, as MySQL rounds DECIMAL; doubles differ by platform.
      if (e.type === 'float') w.fail('round of double precision');
      if (args.length === 1) return { sql: `ROUND(${e.sql})`, type: 'numeric' };
      const places = intConst(args[1]);
      if (places === undefined) w.fail('round with places other than an integer constant');
      return { sql: `ROUND(${e.sql}, ${places < 0 ? `(${places})` : places})`, type: 'numeric' };
    }
    case 'now':
      arity(0);
      return { sql: 'CURRENT_TIMESTAMP(6)', type: 'timestamptz' };
    case 'extract':
    case 'date_part': {
      arity(2);
      const field = (args[0]?.A_Const?.sval?.sval as string | undefined)?.toLowerCase();
      const f = field ? FIELDS[field] : undefined;
      if (!f) w.fail(`${name}(${field ?? '?'} ...)`);
      const x = arg(1);
      if (!(x.type === 'timestamp' || x.type === 'timestamptz' || (x.type === 'date' && f.dated))) {
        w.fail(`${name}(${field} ...) of ${x.type ?? 'an argument of unknown type'}`);
      }
      return { sql: f.sql(x.sql), type: name === 'extract' ? 'numeric' : 'float' };
    }
    case 'date_trunc': {
      arity(2);
      const unit = (args[0]?.A_Const?.sval?.sval as string | undefined)?.toLowerCase();
      const x = arg(1);
      if (!(x.type === 'date' || x.type === 'timestamp' || x.type === 'timestamptz')) w.fail(`date_trunc of ${x.type ?? 'an argument of unknown type'}`);
      // date_trunc of a date (or timestamptz) gives a timestamptz in PostgreSQL: the session runs in UTC.
      const type: SqlType = x.type === 'timestamp' ? 'timestamp' : 'timestamptz';
      const fmt = unit ? TRUNC_FORMATS[unit] : undefined;
      if (fmt) return { sql: `CAST(DATE_FORMAT(${x.sql}, '${fmt}') AS DATETIME)`, type };
      if (unit === 'week') return { sql: `CAST((DATE(${x.sql}) - INTERVAL WEEKDAY(${x.sql}) DAY) AS DATETIME)`, type };
      if (unit === 'quarter') {
        return { sql: `CAST((MAKEDATE(YEAR(${x.sql}), 1) + INTERVAL (QUARTER(${x.sql}) - 1) QUARTER) AS DATETIME)`, type };
      }
      return w.fail(`date_trunc('${unit ?? '?'}', ...)`);
    }
    default:
      return w.fail(`the function ${shown}`);
  }
}
