// MySQL and MariaDB column types as PostgreSQL sees them: each column's type OID, size and
// modifier for RowDescription, and a formatter that writes its values as PostgreSQL's text
// output would (so a client parses them as it would PostgreSQL's). mysql2 reads every value
// without loss (big integers and decimals as strings, dates as strings, bytes as Buffers);
// this module only reformats. Anything not mapped goes as text (bytes as bytea), never dropped.
// Also: MySQL errors as SQLSTATEs. Pure functions, no I/O.
import type { FieldDescription } from '../wire/sink.ts';
import type { ConnectorError } from './connector.ts';

/** PostgreSQL type OIDs (pg_type.dat). */
export const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  float4: 700,
  float8: 701,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  bit: 1560,
  numeric: 1700,
} as const;

/** MySQL column types (protocol ColumnDefinition.column_type). */
export const MYSQL_TYPE = {
  DECIMAL: 0x00,
  TINY: 0x01,
  SHORT: 0x02,
  LONG: 0x03,
  FLOAT: 0x04,
  DOUBLE: 0x05,
  NULL: 0x06,
  TIMESTAMP: 0x07,
  LONGLONG: 0x08,
  INT24: 0x09,
  DATE: 0x0a,
  TIME: 0x0b,
  DATETIME: 0x0c,
  YEAR: 0x0d,
  NEWDATE: 0x0e,
  VARCHAR: 0x0f,
  BIT: 0x10,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  ENUM: 0xf7,
  SET: 0xf8,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
  GEOMETRY: 0xff,
} as const;

const FLAG_UNSIGNED = 32;
const FLAG_ENUM = 256;
const FLAG_SET = 2048;
/** The `binary` character set: the column holds bytes, not text. */
const BINARY_CHARSET = 63;

/** What mysql2 reports of a column (its ColumnDefinition), as far as the mapping needs. */
export interface MysqlColumn {
  name: string;
  columnType: number;
  flags: number;
  decimals: number;
  columnLength: number;
  characterSet: number;
  /** MariaDB's extended metadata: 'json' for a JSON column (MariaDB stores JSON as LONGTEXT). */
  extendedFormat?: string;
}

/** A value as mysql2 hands it over with the connector's options (strings for anything that could lose precision). */
export type MysqlValue = string | number | bigint | Buffer | null | undefined | Date | object;

export type Formatter = (v: MysqlValue) => string | null;

export interface MappedColumn {
  field: FieldDescription;
  format: Formatter;
}

function field(name: string, typeOid: number, typeSize: number, typeModifier = -1): FieldDescription {
  return { name, tableOid: 0, columnAttr: 0, typeOid, typeSize, typeModifier, format: 0 };
}

const asText: Formatter = (v) => {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};

const asBytea: Formatter = (v) => {
  if (v === null || v === undefined) return null;
  return `\\x${(Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8')).toString('hex')}`;
};

const asBool: Formatter = (v) => (v === null || v === undefined ? null : Number(v) !== 0 ? 't' : 'f');

/** BIT(n): MySQL sends the bits big-endian in whole bytes; PostgreSQL prints n binary digits. */
function asBits(n: number): Formatter {
  return (v) => {
    if (v === null || v === undefined) return null;
    const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1');
    let bits = '';
    for (const byte of b) bits += byte.toString(2).padStart(8, '0');
    return bits.slice(Math.max(0, bits.length - n)).padStart(n, '0');
  };
}

/** MySQL's zero date ('0000-00-00', legacy data only under the pinned sql_mode) has no PostgreSQL value: NULL, as Connector/J's convertToNull. */
const isZeroDate = (s: string) => s.startsWith('0000-00-00');

/** Fractional seconds as PostgreSQL prints them: trailing zeros and a bare point dropped. */
const trimFraction = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

const asDate: Formatter = (v) => {
  if (v === null || v === undefined) return null;
  const s = String(v);
  return isZeroDate(s) ? null : s;
};

function asTimestamp(withZone: boolean): Formatter {
  return (v) => {
    if (v === null || v === undefined) return null;
    const s = v instanceof Date ? v.toISOString().replace('T', ' ').replace('Z', '') : String(v);
    if (isZeroDate(s)) return null;
    // A session's time_zone is pinned to +00:00, so TIMESTAMP values arrive in UTC.
    return `${trimFraction(s)}${withZone ? '+00' : ''}`;
  };
}

const asTime: Formatter = (v) => (v === null || v === undefined ? null : trimFraction(String(v)));

/** A finite nonzero double or float as m * 2^e exactly (IEEE 754 fields). */
function binaryParts(x: number, float4: boolean): { m: bigint; e: number } {
  const v = new DataView(new ArrayBuffer(8));
  if (float4) {
    v.setFloat32(0, Math.abs(x));
    const bits = v.getUint32(0);
    const E = bits >>> 23;
    const frac = BigInt(bits & 0x7fffff);
    return E === 0 ? { m: frac, e: -149 } : { m: frac | (1n << 23n), e: E - 150 };
  }
  v.setFloat64(0, Math.abs(x));
  const hi = v.getUint32(0);
  const E = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(v.getUint32(4));
  return E === 0 ? { m: frac, e: -1074 } : { m: frac | (1n << 52n), e: E - 1075 };
}

/** 2 * |digits x 10^q - x| and x's ulp, as exact integers on one scale; the decimal's unit too. */
function distances(x: number, float4: boolean, digits: string, exp10: number): { twice: bigint; ulp: bigint; unit: bigint } {
  const { m, e } = binaryParts(x, float4);
  const q = exp10 - (digits.length - 1);
  const s10 = q < 0 ? 10n ** BigInt(-q) : 1n;
  const s2 = e < 0 ? 2n ** BigInt(-e) : 1n;
  const C = BigInt(digits) * (q >= 0 ? 10n ** BigInt(q) : 1n) * s2;
  const X = m * (e >= 0 ? 2n ** BigInt(e) : 1n) * s10;
  return { twice: 2n * (C > X ? C - X : X - C), ulp: (e >= 0 ? 2n ** BigInt(e) : 1n) * s10, unit: (q >= 0 ? 10n ** BigInt(q) : 1n) * s2 };
}

/**
 * The shortest digits that read back to x as PostgreSQL's Ryu finds them: a decimal exactly
 * halfway between x and a neighbour does not count (ties-to-even would read it back, Ryu does
 * not accept the bound), and a last digit halfway between two is rounded to even (JavaScript's
 * toExponential rounds it up). Returns the digits and the decimal exponent.
 */
function shortestDigits(x: number, float4: boolean): { digits: string; exp: number } {
  const back = (s: string) => (float4 ? Math.fround(Number(s)) : Number(s));
  const max = float4 ? 9 : 17;
  const ax = Math.abs(x);
  for (let p = 1; p <= max; p++) {
    const s = ax.toExponential(p - 1);
    if (back(s) !== ax) continue;
    const [mant, expText] = s.split('e');
    let digits = mant.replace('.', '');
    const exp = Number(expText);
    const d = distances(ax, float4, digits, exp);
    if (p < max && d.twice === d.ulp) continue;
    if (d.twice === d.unit && Number(digits[digits.length - 1]) % 2 === 1) {
      const lower = (BigInt(digits) - 1n).toString();
      if (lower.length === digits.length && back(`${lower[0]}.${lower.slice(1)}e${exp}`) === ax) digits = lower;
    }
    return { digits, exp };
  }
  const [mant, expText] = ax.toExponential(max - 1).split('e');
  return { digits: mant.replace('.', ''), exp: Number(expText) };
}

/**
 * A double as PostgreSQL (12+, extra_float_digits 1, every driver's default) prints it: the
 * shortest digits that read back to the same value (Ryu), in exponent form below 1e-4 and from
 * 10^precision on (15 for float8, 6 for float4), the exponent signed and of at least two digits.
 */
export function pgFloat(x: number, float4 = false): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const { digits, exp } = shortestDigits(float4 ? Math.fround(x) : x, float4);
  const ds = digits.replace(/0+$/, '') || '0';
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= (float4 ? 6 : 15)) {
    const m = ds.length > 1 ? `${ds[0]}.${ds.slice(1)}` : ds;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${ds}`;
  if (ds.length <= exp + 1) return `${sign}${ds}${'0'.repeat(exp + 1 - ds.length)}`;
  return `${sign}${ds.slice(0, exp + 1)}.${ds.slice(exp + 1)}`;
}

function asFloat(float4: boolean): Formatter {
  return (v) => (v === null || v === undefined ? null : pgFloat(typeof v === 'number' ? v : Number(String(v)), float4));
}

const asInteger: Formatter = (v) => (v === null || v === undefined ? null : String(v));

/** numeric(p,s)'s type modifier, as PostgreSQL stores it. */
const numericTypmod = (precision: number, scale: number) => ((precision << 16) | scale) + 4;

/** The PostgreSQL face of one MySQL column. */
export function mapColumn(c: MysqlColumn): MappedColumn {
  const unsigned = (c.flags & FLAG_UNSIGNED) !== 0;
  const binary = c.characterSet === BINARY_CHARSET;
  const T = MYSQL_TYPE;
  switch (c.columnType) {
    case T.TINY:
      // tinyint(1) is MySQL's BOOLEAN (its display width is 1).
      if (c.columnLength === 1 && !unsigned) return { field: field(c.name, OID.bool, 1), format: asBool };
      return { field: field(c.name, OID.int2, 2), format: asInteger };
    case T.SHORT:
      return unsigned ? { field: field(c.name, OID.int4, 4), format: asInteger } : { field: field(c.name, OID.int2, 2), format: asInteger };
    case T.INT24:
      return { field: field(c.name, OID.int4, 4), format: asInteger };
    case T.LONG:
      return unsigned ? { field: field(c.name, OID.int8, 8), format: asInteger } : { field: field(c.name, OID.int4, 4), format: asInteger };
    case T.LONGLONG:
      // Unsigned BIGINT goes past int8: numeric.
      return unsigned ? { field: field(c.name, OID.numeric, -1), format: asInteger } : { field: field(c.name, OID.int8, 8), format: asInteger };
    case T.YEAR:
      return { field: field(c.name, OID.int2, 2), format: asInteger };
    case T.DECIMAL:
    case T.NEWDECIMAL: {
      // The column length counts the sign and the point: DECIMAL(10,2) signed is 12.
      const scale = c.decimals;
      const precision = Math.max(1, c.columnLength - (scale > 0 ? 1 : 0) - (unsigned ? 0 : 1));
      const typmod = scale <= precision && precision <= 1000 ? numericTypmod(precision, scale) : -1;
      return { field: field(c.name, OID.numeric, -1, typmod), format: asInteger };
    }
    case T.FLOAT:
      return { field: field(c.name, OID.float4, 4), format: asFloat(true) };
    case T.DOUBLE:
      return { field: field(c.name, OID.float8, 8), format: asFloat(false) };
    case T.DATE:
    case T.NEWDATE:
      return { field: field(c.name, OID.date, 4), format: asDate };
    case T.DATETIME:
      return { field: field(c.name, OID.timestamp, 8, c.decimals <= 6 ? c.decimals : -1), format: asTimestamp(false) };
    case T.TIMESTAMP:
      return { field: field(c.name, OID.timestamptz, 8, c.decimals <= 6 ? c.decimals : -1), format: asTimestamp(true) };
    case T.TIME:
      return { field: field(c.name, OID.time, 8, c.decimals <= 6 ? c.decimals : -1), format: asTime };
    case T.BIT:
      return { field: field(c.name, OID.bit, -1, c.columnLength), format: asBits(c.columnLength) };
    case T.JSON:
      return { field: field(c.name, OID.json, -1), format: asText };
    case T.ENUM:
    case T.SET:
      return { field: field(c.name, OID.text, -1), format: asText };
    case T.VARCHAR:
    case T.VAR_STRING:
    case T.STRING:
      if (binary) return { field: field(c.name, OID.bytea, -1), format: asBytea };
      if (c.flags & (FLAG_ENUM | FLAG_SET)) return { field: field(c.name, OID.text, -1), format: asText };
      return { field: field(c.name, OID.varchar, -1), format: asText };
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
      if (binary) return { field: field(c.name, OID.bytea, -1), format: asBytea };
      if (c.extendedFormat === 'json') return { field: field(c.name, OID.json, -1), format: asText };
      return { field: field(c.name, OID.text, -1), format: asText };
    case T.NULL:
      return { field: field(c.name, OID.text, -1), format: asText };
    default:
      // GEOMETRY, VECTOR and whatever comes next: bytes as bytea, else text. Never dropped.
      return binary || c.columnType === T.GEOMETRY
        ? { field: field(c.name, OID.bytea, -1), format: asBytea }
        : { field: field(c.name, OID.text, -1), format: asText };
  }
}

/** MySQL error numbers with a PostgreSQL SQLSTATE a client recognises (errcodes.txt). */
const ERRNO_SQLSTATE: Record<number, string> = {
  1044: '42501', // ER_DBACCESS_DENIED_ERROR
  1045: '28P01', // ER_ACCESS_DENIED_ERROR
  1046: '3D000', // ER_NO_DB_ERROR
  1048: '23502', // ER_BAD_NULL_ERROR
  1049: '3D000', // ER_BAD_DB_ERROR
  1050: '42P07', // ER_TABLE_EXISTS_ERROR
  1051: '42P01', // ER_BAD_TABLE_ERROR
  1052: '42702', // ER_NON_UNIQ_ERROR (ambiguous column)
  1054: '42703', // ER_BAD_FIELD_ERROR
  1062: '23505', // ER_DUP_ENTRY
  1064: '42601', // ER_PARSE_ERROR
  1142: '42501', // ER_TABLEACCESS_DENIED_ERROR
  1143: '42501', // ER_COLUMNACCESS_DENIED_ERROR
  1146: '42P01', // ER_NO_SUCH_TABLE
  1149: '42601', // ER_SYNTAX_ERROR
  1205: '55P03', // ER_LOCK_WAIT_TIMEOUT
  1213: '40P01', // ER_LOCK_DEADLOCK
  1227: '42501', // ER_SPECIFIC_ACCESS_DENIED_ERROR
  1264: '22003', // ER_WARN_DATA_OUT_OF_RANGE
  1295: '0A000', // ER_UNSUPPORTED_PS (not preparable)
  1305: '42883', // ER_SP_DOES_NOT_EXIST (function)
  1317: '57014', // ER_QUERY_INTERRUPTED (KILL QUERY)
  1365: '22012', // ER_DIVISION_BY_ZERO
  1406: '22001', // ER_DATA_TOO_LONG
  1451: '23503', // ER_ROW_IS_REFERENCED_2
  1452: '23503', // ER_NO_REFERENCED_ROW_2
  1792: '25006', // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
  1969: '57014', // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  3024: '57014', // ER_QUERY_TIMEOUT (MySQL max_execution_time)
  4025: '23514', // ER_CONSTRAINT_FAILED (MariaDB CHECK)
  3819: '23514', // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
};

/** A MySQL error (mysql2's err.errno, err.sqlState, err.sqlMessage) as a PostgreSQL SQLSTATE and the warehouse's message. */
export function mysqlError(err: { errno?: number; sqlState?: string; sqlMessage?: string; message?: string }): ConnectorError {
  const mapped = err.errno !== undefined ? ERRNO_SQLSTATE[err.errno] : undefined;
  // MySQL's generic HY000 says nothing; 42000 is its catch-all for syntax and access errors alike.
  const own = err.sqlState && /^[0-9A-Z]{5}$/.test(err.sqlState) && err.sqlState !== 'HY000' && !err.sqlState.startsWith('00') ? err.sqlState : undefined;
  return { sqlstate: mapped ?? own ?? 'XX000', message: err.sqlMessage ?? err.message ?? 'unknown warehouse error' };
}
