// MySQL/MariaDB tokens: identifiers, string literals, interval literals. Written so that
// their reading does not depend on sql_mode: a string holding a backslash is written as a
// hex literal (NO_BACKSLASH_ESCAPES on or off, it reads the same), everything else doubles
// its quotes, which both modes read alike.
import type { MysqlFlavor } from './mysql-session.ts';
import { TEXT_COLLATION } from './mysql-session.ts';

export class TextError extends Error {}

/** A backquoted identifier (doubled backquotes). MySQL refuses a name ending in a space or longer than 64. */
export function quoteIdent(name: string): string {
  // MySQL: 1 to 64 characters of the Basic Multilingual Plane, no NUL, no trailing space;
  // MariaDB silently drops leading spaces and control characters from an alias (measured),
  // so those are refused too rather than return a column under another name.
  if (name.length === 0 || name.length > 64 || /^\s|\s$/.test(name) || /[\u0000-\u001f\u007f-\u009f]/.test(name) || /[\u{10000}-\u{10FFFF}]/u.test(name)) {
    throw new TextError(
      `the identifier "${name}" (MySQL names are 1 to 64 characters of the Basic Multilingual Plane, without control characters or leading or trailing spaces)`,
    );
  }
  return `\`${name.replace(/`/g, '``')}\``;
}

/** A text literal with PostgreSQL's comparison semantics (the code-point collation). */
export function quoteString(value: string, flavor: MysqlFlavor): string {
  if (value.includes('\0')) throw new TextError('a string holding NUL');
  if (value.includes('\\')) {
    return `_utf8mb4 X'${Buffer.from(value, 'utf8').toString('hex').toUpperCase()}' COLLATE ${TEXT_COLLATION[flavor]}`;
  }
  return `'${value.replace(/'/g, "''")}'`;
}

const UNITS: Record<string, string> = {
  year: 'YEAR',
  years: 'YEAR',
  month: 'MONTH',
  months: 'MONTH',
  mon: 'MONTH',
  mons: 'MONTH',
  week: 'WEEK',
  weeks: 'WEEK',
  day: 'DAY',
  days: 'DAY',
  hour: 'HOUR',
  hours: 'HOUR',
  minute: 'MINUTE',
  minutes: 'MINUTE',
  min: 'MINUTE',
  mins: 'MINUTE',
  second: 'SECOND',
  seconds: 'SECOND',
  sec: 'SECOND',
  secs: 'SECOND',
};

/** `'3 days'` -> `INTERVAL 3 DAY`; only a whole number of one unit, else undefined. */
export function intervalLiteral(text: string): string | undefined {
  const m = /^\s*([+-]?\d{1,9})\s*([a-z]+)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[2].toLowerCase()];
  if (!unit) return undefined;
  return `INTERVAL ${Number(m[1])} ${unit}`;
}

/** An ISO date literal, or undefined. */
export function dateLiteral(text: string): string | undefined {
  const m = /^\s*(\d{4}-\d{2}-\d{2})\s*$/.exec(text);
  return m ? `DATE'${m[1]}'` : undefined;
}

/** An ISO timestamp literal without zone (a bare date is midnight), or undefined. */
export function timestampLiteral(text: string): string | undefined {
  const m = /^\s*(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2})(:\d{2}(\.\d{1,6})?)?)?\s*$/.exec(text);
  if (!m) return undefined;
  return `TIMESTAMP'${m[1]} ${m[2] ?? '00:00'}${m[3] ?? ':00'}'`;
}

/** A PostgreSQL boolean literal's spelling, or undefined. */
export function boolLiteral(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  if (['t', 'true', 'y', 'yes', 'on', '1'].includes(t)) return 'TRUE';
  if (['f', 'false', 'n', 'no', 'off', '0'].includes(t)) return 'FALSE';
  return undefined;
}

/** A number as PostgreSQL reads it from a quoted literal for an int or numeric context. */
export function numberLiteral(text: string, integer: boolean): string | undefined {
  const re = integer ? /^\s*([+-]?\d+)\s*$/ : /^\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*$/;
  const m = re.exec(text);
  return m ? `(${m[1]})` : undefined;
}
