// Queriers' raw SQL on a mysql or snowflake connection is the warehouse's own dialect and is
// passed through unchanged (DESIGN 3): node-sql-parser's only job is to classify it read-only
// and free of denied functions first. Allowlists throughout: statement kinds (SELECT, SHOW
// and DESCRIBE of an allowlist, EXPLAIN SELECT, SET of allowlisted session variables),
// functions; what the parser cannot read is refused, as is text a server could read two ways.
// The warehouse account's privileges stay the real fence (a table hidden from the parser is
// still unreadable to a least-privilege account).
import { createRequire } from 'node:module';
import type { Parser } from 'node-sql-parser';
import { GatehouseError } from '../../errors.ts';
import { blankComments, commentMarkInCode, lexRaw } from './raw-lexer.ts';

export type RawDialect = 'mysql' | 'mariadb' | 'snowflake';
export type RawKind = 'select' | 'show' | 'describe' | 'explain' | 'set';

export type RawClassification = { ok: true; kind: RawKind | 'multiple'; kinds: RawKind[] } | { ok: false; error: GatehouseError };

const PARSER_DATABASE: Record<RawDialect, string> = { mysql: 'MySQL', mariadb: 'MariaDB', snowflake: 'Snowflake' };

/**
 * node-sql-parser's build of one dialect, loaded on first use: the package's index holds every
 * dialect's grammar (about 32 MB of heap once loaded, measured under tsx), one build about 3 MB,
 * and a Gatehouse without mysql or snowflake connections loads none.
 */
const BUILDS: Record<RawDialect, string> = {
  mysql: 'node-sql-parser/build/mysql',
  mariadb: 'node-sql-parser/build/mariadb',
  snowflake: 'node-sql-parser/build/snowflake',
};
const parserClasses = new Map<RawDialect, new () => Parser>();
const load = createRequire(import.meta.url);

function parserFor(dialect: RawDialect): Parser {
  let P = parserClasses.get(dialect);
  if (!P) {
    P = (load(BUILDS[dialect]) as { Parser: new () => Parser }).Parser;
    parserClasses.set(dialect, P);
  }
  return new P();
}
const ENGINE: Record<RawDialect, string> = { mysql: 'MySQL', mariadb: 'MariaDB', snowflake: 'Snowflake' };

// Functions a read-only analytic query may call (upper case). Everything else is refused:
// LOAD_FILE, SLEEP, BENCHMARK, GET_LOCK, sys_exec, USER(), stored functions...
const COMMON_FUNCTIONS = [
  // aggregates and window functions
  'COUNT',
  'SUM',
  'AVG',
  'MIN',
  'MAX',
  'GROUP_CONCAT',
  'STD',
  'STDDEV',
  'STDDEV_POP',
  'STDDEV_SAMP',
  'VAR_POP',
  'VAR_SAMP',
  'VARIANCE',
  'BIT_AND',
  'BIT_OR',
  'BIT_XOR',
  'ROW_NUMBER',
  'RANK',
  'DENSE_RANK',
  'NTILE',
  'LAG',
  'LEAD',
  'FIRST_VALUE',
  'LAST_VALUE',
  'NTH_VALUE',
  'PERCENT_RANK',
  'CUME_DIST',
  // strings
  'CONCAT',
  'CONCAT_WS',
  'LOWER',
  'UPPER',
  'LCASE',
  'UCASE',
  'LENGTH',
  'CHAR_LENGTH',
  'CHARACTER_LENGTH',
  'OCTET_LENGTH',
  'SUBSTRING',
  'SUBSTR',
  'SUBSTRING_INDEX',
  'LEFT',
  'RIGHT',
  'TRIM',
  'LTRIM',
  'RTRIM',
  'REPLACE',
  'REVERSE',
  'LPAD',
  'RPAD',
  'LOCATE',
  'POSITION',
  'INSTR',
  'REPEAT',
  'SPACE',
  'FORMAT',
  'HEX',
  'UNHEX',
  'ASCII',
  'ORD',
  'FIELD',
  'FIND_IN_SET',
  'ELT',
  'STRCMP',
  'SOUNDEX',
  'MD5',
  'SHA1',
  'SHA2',
  'TO_BASE64',
  'FROM_BASE64',
  'REGEXP_REPLACE',
  'REGEXP_SUBSTR',
  'REGEXP_INSTR',
  'QUOTE',
  'CONVERT',
  'INITCAP',
  'SPLIT_PART',
  // numbers
  'ABS',
  'CEIL',
  'CEILING',
  'FLOOR',
  'ROUND',
  'TRUNCATE',
  'TRUNC',
  'MOD',
  'POW',
  'POWER',
  'SQRT',
  'EXP',
  'LN',
  'LOG',
  'LOG10',
  'LOG2',
  'SIGN',
  'PI',
  'GREATEST',
  'LEAST',
  'SIN',
  'COS',
  'TAN',
  'ASIN',
  'ACOS',
  'ATAN',
  'ATAN2',
  'DEGREES',
  'RADIANS',
  // dates and times
  'NOW',
  'CURDATE',
  'CURRENT_DATE',
  'CURTIME',
  'CURRENT_TIME',
  'CURRENT_TIMESTAMP',
  'UTC_TIMESTAMP',
  'UTC_DATE',
  'DATE',
  'TIME',
  'YEAR',
  'MONTH',
  'DAY',
  'DAYOFMONTH',
  'DAYOFWEEK',
  'DAYOFYEAR',
  'WEEKDAY',
  'WEEK',
  'WEEKOFYEAR',
  'YEARWEEK',
  'QUARTER',
  'HOUR',
  'MINUTE',
  'SECOND',
  'MICROSECOND',
  'DATE_FORMAT',
  'DATE_ADD',
  'DATE_SUB',
  'ADDDATE',
  'SUBDATE',
  'DATEDIFF',
  'TIMESTAMPDIFF',
  'TIMESTAMPADD',
  'TIMEDIFF',
  'STR_TO_DATE',
  'FROM_UNIXTIME',
  'UNIX_TIMESTAMP',
  'LAST_DAY',
  'MAKEDATE',
  'MAKETIME',
  'MONTHNAME',
  'DAYNAME',
  'TO_DAYS',
  'FROM_DAYS',
  'CONVERT_TZ',
  'SEC_TO_TIME',
  'TIME_TO_SEC',
  'DATE_TRUNC',
  // conditionals
  'IF',
  'IFNULL',
  'NULLIF',
  'COALESCE',
  'ISNULL',
  // JSON reads
  'JSON_EXTRACT',
  'JSON_UNQUOTE',
  'JSON_VALUE',
  'JSON_CONTAINS',
  'JSON_LENGTH',
  'JSON_KEYS',
  'JSON_VALID',
  'JSON_OBJECT',
  'JSON_ARRAY',
  'JSON_TYPE',
];
const SNOWFLAKE_FUNCTIONS = [
  'IFF',
  'NVL',
  'NVL2',
  'ZEROIFNULL',
  'NULLIFZERO',
  'DATEADD',
  'TIMEADD',
  'TIMESTAMPADD',
  'TO_DATE',
  'TO_CHAR',
  'TO_VARCHAR',
  'TO_NUMBER',
  'TO_DECIMAL',
  'TO_TIMESTAMP',
  'TO_TIMESTAMP_NTZ',
  'CONTAINS',
  'STARTSWITH',
  'ENDSWITH',
  'LISTAGG',
  'MEDIAN',
  'APPROX_COUNT_DISTINCT',
  'DIV0',
  'SQUARE',
  'EDITDISTANCE',
  'DAYOFWEEKISO',
  'YEAROFWEEK',
  'CURRENT_DATE',
];
const FUNCTIONS: Record<RawDialect, ReadonlySet<string>> = {
  mysql: new Set(COMMON_FUNCTIONS),
  mariadb: new Set(COMMON_FUNCTIONS),
  snowflake: new Set([...COMMON_FUNCTIONS, ...SNOWFLAKE_FUNCTIONS]),
};

// Why some well-known functions are refused: named in the message.
const DENIED_REASONS: Record<string, string> = {
  LOAD_FILE: 'it reads files on the database server',
  SLEEP: 'it holds a warehouse connection',
  BENCHMARK: 'it holds a warehouse connection',
  GET_LOCK: 'it takes server-wide locks',
  RELEASE_LOCK: 'it takes server-wide locks',
  IS_FREE_LOCK: 'it takes server-wide locks',
  IS_USED_LOCK: 'it takes server-wide locks',
  RELEASE_ALL_LOCKS: 'it takes server-wide locks',
  SYS_EXEC: 'it runs programs on the database server',
  SYS_EVAL: 'it runs programs on the database server',
  USER: "it answers the warehouse account's name",
  CURRENT_USER: "it answers the warehouse account's name",
  SESSION_USER: "it answers the warehouse account's name",
  SYSTEM_USER: "it answers the warehouse account's name",
};

// SHOW forms that describe the schema the account can already read. Not PROCESSLIST (other
// sessions' statements), GRANTS, BINLOG, MASTER/SLAVE STATUS...
const SHOW_KEYWORDS: Record<RawDialect, ReadonlySet<string>> = {
  mysql: new Set([
    'tables',
    'databases',
    'schemas',
    'columns',
    'fields',
    'index',
    'indexes',
    'keys',
    'create',
    'collation',
    'character',
    'engines',
    'warnings',
    'errors',
  ]),
  mariadb: new Set([
    'tables',
    'databases',
    'schemas',
    'columns',
    'fields',
    'index',
    'indexes',
    'keys',
    'create',
    'collation',
    'character',
    'engines',
    'warnings',
    'errors',
  ]),
  snowflake: new Set(['tables', 'schemas', 'databases', 'views', 'columns', 'objects']),
};
const SHOW_CREATE = new Set(['table', 'view']);

// Session variables a querier may SET (SESSION only; never sql_mode, character sets, or
// anything that changes how the server reads text Gatehouse classified; never time_zone, which
// the connector pins to UTC so timestamps read as it maps them, and which closes the connection).
const SET_VARIABLES: ReadonlySet<string> = new Set([
  'group_concat_max_len',
  'sql_select_limit',
  'div_precision_increment',
  'lc_time_names',
  'default_week_format',
]);

// Statement types node-sql-parser names, as the refusal says them.
const WRITES: Record<string, string> = {
  insert: 'INSERT',
  replace: 'REPLACE',
  update: 'UPDATE',
  delete: 'DELETE',
  create: 'CREATE',
  drop: 'DROP',
  alter: 'ALTER',
  truncate: 'TRUNCATE',
  rename: 'RENAME',
  grant: 'GRANT',
  revoke: 'REVOKE',
  lock: 'LOCK TABLES',
  unlock: 'UNLOCK TABLES',
  call: 'CALL',
  load_data: 'LOAD DATA',
  merge: 'MERGE',
  transaction: 'transaction control',
};

class Refused extends Error {
  constructor(readonly error: GatehouseError) {
    super(error.message);
  }
}

function refuse(sqlstate: '42501' | '0A000', message: string, hint?: string): never {
  throw new Refused(new GatehouseError(sqlstate, message, hint ? { hint } : {}));
}

type Node = Record<string, unknown>;

export function classifyRawSql(text: string, dialect: RawDialect): RawClassification {
  try {
    const kinds = classify(text, dialect);
    return { ok: true, kind: kinds.length === 1 ? kinds[0]! : 'multiple', kinds };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, error: e.error };
    throw e;
  }
}

function classify(text: string, dialect: RawDialect): RawKind[] {
  const engine = ENGINE[dialect];
  const classified = warehouseReading(text, dialect);
  let ast: Node | Node[];
  try {
    ast = parserFor(dialect).astify(classified.text, { database: PARSER_DATABASE[dialect] }) as unknown as Node | Node[];
  } catch (e) {
    const first = String((e as Error).message ?? e)
      .split('\n')[0]!
      .slice(0, 160);
    return refuse(
      '0A000',
      `Gatehouse cannot classify this statement as ${engine} SQL, so it is not run: ${first}`,
      'raw SQL must be read-only SQL Gatehouse can parse',
    );
  }
  const statements = (Array.isArray(ast) ? ast : [ast]).filter((s) => s && Object.keys(s).length > 0);
  if (statements.length !== classified.statements) {
    refuse('0A000', `Gatehouse read ${statements.length} statements where the ${engine} server would read ${classified.statements}, so it runs none`);
  }
  if (statements.length === 0) refuse('0A000', 'an empty statement');
  return statements.map((s) => statement(s, dialect));
}

// Why a comment mark left in the warehouse's code is refused, and what to write instead.
const COMMENT_MARK_HINTS: Record<string, string> = {
  '--': 'write `-- ` with a space after it for a comment, or /* */ (and `- -1` for a double negation)',
  '#': 'write -- or /* */ comments',
  '//': 'write -- or /* */ comments',
  '*/': 'close each /* comment once: nested comments are not allowed',
  '/*': 'close each /* comment once: nested comments are not allowed',
};

/**
 * The text the classifier parses: the querier's text read the warehouse's way (raw-lexer.ts),
 * its comments blanked out. The warehouse runs exactly this (a comment is blank space to it),
 * and no other reader has a comment left to read differently: whatever in it node-sql-parser
 * or PostgreSQL's parser could take for a comment, a `$$` string or the end of a string where
 * the warehouse does not is refused first. The original text is what is forwarded.
 */
function warehouseReading(text: string, dialect: RawDialect): { text: string; statements: number } {
  const engine = ENGINE[dialect];
  const lexDialect = dialect === 'snowflake' ? 'snowflake' : 'mysql';
  const lexed = lexRaw(text, lexDialect, true);
  if (lexed.unterminated) refuse('0A000', `Gatehouse cannot classify this ${engine} SQL: a quoted string or comment is not closed`);
  if (lexed.executableComment) {
    refuse('42501', `executable comments (/*! ... */) are not permitted in ${engine} raw SQL through Gatehouse: the server runs their contents`);
  }
  if (lexed.optimizerHint) {
    refuse(
      '42501',
      `optimizer hints (/*+ ... */) are not permitted in ${engine} raw SQL through Gatehouse: the server reads them (SET_VAR sets session variables)`,
      'write a plain /* */ comment, without the +',
    );
  }
  // The same text with and without backslash escapes (MySQL under NO_BACKSLASH_ESCAPES, as the
  // connector pins it, or not; Snowflake, which escapes, against PostgreSQL, which does not):
  // if a string ends elsewhere, a statement or a function call could hide behind `\'` for one
  // reader and not the other.
  const plain = lexRaw(text, lexDialect, false);
  if (plain.unterminated || plain.shape !== lexed.shape) {
    refuse(
      '42501',
      lexDialect === 'mysql'
        ? `a backslash before a quote in a string literal reads differently in ${engine} sessions with NO_BACKSLASH_ESCAPES, so Gatehouse refuses it`
        : `a backslash before a quote in a string literal is an escape to ${engine} and not to other SQL readers, so Gatehouse refuses it`,
      "write a quote inside a string doubled ('') instead of \\'",
    );
  }
  if (lexed.nestedComment) {
    refuse(
      '42501',
      `nested comments are not allowed on ${engine} through Gatehouse: ${engine} ends a comment at its first */, where other SQL readers nest /* */ comments`,
      'close each /* comment before opening another',
    );
  }
  if (lexed.strayLineBreak) {
    refuse(
      '42501',
      `a line break other than a newline (a carriage return not followed by one, \\v, \\f, U+2028...) inside a line comment is read as the comment's end by some SQL readers and not by others, so Gatehouse refuses it on ${engine}`,
      'end comment lines with a newline (\\n or \\r\\n)',
    );
  }
  if (lexed.unspacedLineComment) {
    refuse(
      '42501',
      `a line comment mark with no space after it (--x, //x) is not a comment to every SQL reader, so Gatehouse refuses it on ${engine}`,
      'write `-- ` or `// ` with a space after it, or /* */',
    );
  }
  if (lexed.tokens.some((t) => t.kind === 'dollar')) {
    refuse(
      '0A000',
      `$$ strings are not supported in ${engine} raw SQL through Gatehouse: the parser Gatehouse classifies with does not read them as ${engine} does`,
      "write '...' strings, with a quote inside doubled ('')",
    );
  }
  const mark = commentMarkInCode(text, lexed);
  if (mark) {
    refuse(
      '42501',
      `\`${mark}\` outside a string is not a comment mark to ${engine}, but other SQL readers take it for one, so Gatehouse refuses the text it could hide`,
      COMMENT_MARK_HINTS[mark],
    );
  }
  return { text: blankComments(text, lexed), statements: lexed.statements };
}

function statement(s: Node, dialect: RawDialect): RawKind {
  const engine = ENGINE[dialect];
  const type = String(s.type ?? '');
  switch (type) {
    case 'select':
      checkTree(s, dialect);
      return 'select';
    case 'explain': {
      const expr = s.expr as Node | undefined;
      if (expr?.type !== 'select') refuse('42501', `EXPLAIN is permitted only of SELECT in ${engine} raw SQL`);
      checkTree(expr, dialect);
      return 'explain';
    }
    case 'desc':
      checkChildren(s, dialect);
      return 'describe';
    case 'show': {
      const keyword = String(s.keyword ?? '').toLowerCase();
      const what = `SHOW ${keyword.toUpperCase()}${s.suffix ? ` ${String(s.suffix).toUpperCase()}` : ''}`;
      const ok = SHOW_KEYWORDS[dialect].has(keyword) && (keyword !== 'create' || SHOW_CREATE.has(String(s.suffix ?? '').toLowerCase()));
      if (!ok) refuse('42501', `${what} is not permitted in ${engine} raw SQL through Gatehouse`);
      checkShowFilter(s.expr as Node | undefined, what, engine);
      checkChildren({ ...s, expr: undefined }, dialect);
      return 'show';
    }
    case 'set':
      checkSet(s, dialect);
      return 'set';
    case 'use':
      // A connection is bound to its database: the account's grants and the audit assume it.
      return refuse('42501', `USE is not permitted in ${engine} raw SQL through Gatehouse: the connection is bound to its database; qualify names instead`);
    default: {
      const write = WRITES[type];
      if (write) return refuse('42501', `${write} is not permitted: raw SQL on ${engine} connections through Gatehouse is read-only`);
      return refuse('42501', `${type ? type.toUpperCase() : 'this'} statements are not permitted in ${engine} raw SQL through Gatehouse`);
    }
  }
}

function checkSet(s: Node, dialect: RawDialect): void {
  const engine = ENGINE[dialect];
  if (dialect === 'snowflake') refuse('42501', 'SET is not permitted in Snowflake raw SQL through Gatehouse');
  if (s.keyword && String(s.keyword).toUpperCase() !== 'SESSION' && String(s.keyword).toUpperCase() !== 'LOCAL') {
    refuse('42501', `SET ${String(s.keyword).toUpperCase()} is not permitted: only session variables may be set`);
  }
  for (const a of (s.expr as Node[] | undefined) ?? []) {
    const left = a.left as Node | undefined;
    if (left?.type !== 'var') refuse('42501', `this SET is not permitted in ${engine} raw SQL`);
    let name = String(left.name ?? '').toLowerCase();
    const members = (left.members as string[] | undefined) ?? [];
    if (left.prefix === '@') refuse('42501', 'user variables (@name) are not permitted in raw SQL through Gatehouse');
    if (left.prefix === '@@') {
      if (!['session', 'local'].includes(name) || members.length !== 1)
        refuse('42501', `SET @@${[name, ...members].join('.')} is not permitted: only session variables may be set`);
      name = members[0]!.toLowerCase();
    } else if (members.length) {
      refuse('42501', `SET ${[name, ...members].join('.')} is not permitted in ${engine} raw SQL`);
    }
    if (!SET_VARIABLES.has(name)) {
      refuse('42501', `SET ${name} is not permitted in ${engine} raw SQL through Gatehouse; settable: ${[...SET_VARIABLES].join(', ')}`);
    }
    const right = a.right as Node | undefined;
    if (!right || !['single_quote_string', 'double_quote_string', 'number', 'bool'].includes(String(right.type))) {
      refuse('42501', `SET ${name} takes a constant value in raw SQL through Gatehouse`);
    }
  }
}

/**
 * SHOW's filter: LIKE with a constant pattern only. A WHERE is an expression the server
 * evaluates (an outside review ran SLEEP, BENCHMARK, GET_LOCK and USER() through
 * `SHOW DATABASES WHERE ...` when only the keyword was checked).
 */
function checkShowFilter(filter: Node | undefined, what: string, engine: string): void {
  if (filter === undefined || filter === null) return;
  const right = filter.right as Node | undefined;
  const likeConstant =
    String(filter.op ?? '').toUpperCase() === 'LIKE' &&
    Object.keys(filter).every((k) => k === 'op' || k === 'right') &&
    ['single_quote_string', 'double_quote_string'].includes(String(right?.type));
  if (!likeConstant) {
    refuse('42501', `${what} ... WHERE is not permitted in ${engine} raw SQL through Gatehouse; filter with LIKE 'pattern' or query information_schema`);
  }
}

/** Every node below a statement's own (names, filters): checked as a SELECT's nodes are. */
function checkChildren(s: Node, dialect: RawDialect): void {
  for (const [key, value] of Object.entries(s)) if (key !== 'type' && value && typeof value === 'object') checkTree(value, dialect);
}

/** Every node of a SELECT: no writing form, no variables, only allowlisted functions. */
function checkTree(node: unknown, dialect: RawDialect): void {
  const engine = ENGINE[dialect];
  if (Array.isArray(node)) {
    for (const x of node) checkTree(x, dialect);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const n = node as Node;
  const type = typeof n.type === 'string' ? n.type : undefined;
  if (type && (WRITES[type] || ['use', 'set', 'show', 'desc', 'explain'].includes(type))) {
    refuse('42501', `${WRITES[type] ?? type.toUpperCase()} inside a query is not permitted: raw SQL on ${engine} connections through Gatehouse is read-only`);
  }
  const into = n.into as Node | undefined;
  if (type === 'select' && into && (into.keyword || into.type || into.expr)) {
    const what = String(into.keyword ?? 'variables').toUpperCase();
    refuse('42501', `SELECT ... INTO ${what === 'VAR' ? 'variables' : what} is not permitted: raw SQL on ${engine} connections through Gatehouse is read-only`);
  }
  if (type === 'select' && n.locking_read) refuse('42501', `SELECT ... ${String(n.locking_read).toUpperCase()} is not permitted: it takes row locks`);
  if (type === 'var') refuse('42501', `variables (${String(n.prefix ?? '')}${String(n.name ?? '')}) are not permitted in raw SQL through Gatehouse`);
  if (type === 'function' || type === 'aggr_func') checkFunction(n, dialect);
  for (const v of Object.values(n)) if (v && typeof v === 'object') checkTree(v, dialect);
}

function checkFunction(n: Node, dialect: RawDialect): void {
  const engine = ENGINE[dialect];
  let name: string;
  if (n.type === 'aggr_func') name = String(n.name ?? '');
  else {
    const fn = n.name as Node | undefined;
    if (fn?.schema) refuse('42501', `schema-qualified function calls are not permitted in ${engine} raw SQL through Gatehouse`);
    const parts = ((fn?.name as Node[] | undefined) ?? []).map((p) => String(p.value ?? ''));
    if (parts.length !== 1) refuse('42501', `the function ${parts.join('.')} is not permitted in ${engine} raw SQL through Gatehouse`);
    name = parts[0]!;
  }
  const upper = name.toUpperCase();
  const reason = DENIED_REASONS[upper];
  if (reason) refuse('42501', `function ${name} is not permitted through Gatehouse: ${reason}`);
  if (!FUNCTIONS[dialect].has(upper)) {
    refuse(
      '42501',
      `function ${name} is not on Gatehouse's function allowlist for ${engine} raw SQL`,
      'docs/warehouses.md lists the functions raw SQL may call',
    );
  }
}
