// The statements of a connection whose warehouse does not read PostgreSQL (kind mysql:
// MySQL and MariaDB; kind snowflake), apart from a Query Topics user's query, which takes the
// one planning path of decide.ts and only reaches the warehouse through its SqlDialect.
// Clients still speak PostgreSQL to Gatehouse; what differs is what reaches the warehouse:
// - Queriers and connection admins write the warehouse's own dialect: classified read-only by
//   node-sql-parser in that dialect (classifyRawSql) and forwarded unchanged.
// - Every level: the session statements PostgreSQL clients send (SET/SHOW/RESET of allowlisted
//   settings, DISCARD) are answered by Gatehouse (`emulated`: row-session.ts keeps them per
//   session), transactions are written in the engine's syntax, PostgreSQL's cursors, COPY and
//   SQL PREPARE are refused (0A000), catalog queries run on the topic catalog.
import type { DecisionContext, PlannedStatement } from './decision.ts';
import type { EmulatedSession } from '../warehouses/types.ts';
import { type AstNode, type ParsedStatement, type ParsedText, nodeType } from '../sql/parse.ts';
import { refuse } from '../sql/refusal.ts';
import { statementName } from '../sql/scope.ts';
import { asksReadWrite, containsNode, kindOf, setsReadOnlyOn } from '../sql/classify.ts';
import { SETTING_ALLOWLIST, SHOW_ONLY_SETTINGS } from '../sql/functions.ts';
import { changesLexing, writeSessionStatement } from '../sql/session-statement.ts';
import { quoteIdent } from '../sql/dialects/mysql-text.ts';
import { countPlaceholders, numberedBinds } from '../sql/dialects/placeholders.ts';
import { type RawDialect, type RawKind, classifyRawSql } from '../sql/dialects/classify-raw.ts';
import { planCatalogQuery, relationNames } from './catalog.ts';
import { type Planned, notForTopicUsers } from './planned.ts';

/** The engine a connection's warehouse is, as messages name it. */
function engineOf(ctx: DecisionContext): string {
  return ctx.connection.dialect ?? 'postgres';
}

const ENGINE_NAMES: Record<string, string> = { mysql: 'MySQL', snowflake: 'Snowflake', postgres: 'PostgreSQL' };

function notOnWarehouse(ctx: DecisionContext, what: string, hint?: string): never {
  refuse('dialect.unsupported', '0A000', `${what} is not supported on connection ${ctx.connection.name} (a ${engineOf(ctx)} warehouse)`, hint ? { hint } : {});
}

// ---------------------------------------------------------------- Query Topics users

/**
 * A Query Topics user's statement other than a query (SELECT, EXPLAIN: decide.ts): a session
 * statement Gatehouse answers or writes for the engine, or a refusal.
 */
export function planRowTopicStatement(ctx: DecisionContext, st: ParsedStatement): Planned {
  const t = nodeType(st.stmt);
  switch (t) {
    case 'CopyStmt':
      return notOnWarehouse(ctx, 'COPY', 'run the query with SELECT instead');
    case 'DeclareCursorStmt':
    case 'FetchStmt':
    case 'ClosePortalStmt':
      return notOnWarehouse(
        ctx,
        'SQL cursors (DECLARE, FETCH, CLOSE)',
        'read the rows with SELECT; drivers can page them with the extended protocol (fetch size)',
      );
    case 'PrepareStmt':
    case 'ExecuteStmt':
    case 'DeallocateStmt':
      return notOnWarehouse(ctx, 'SQL PREPARE/EXECUTE/DEALLOCATE', "use the driver's prepared statements (the extended protocol) instead");
    default: {
      const session = sessionStatement(ctx, st, true);
      if (session) return session;
      return notForTopicUsers(ctx, statementName(t));
    }
  }
}

// ---------------------------------------------------------------- queriers and connection admins

/**
 * One statement of a querier's text that PostgreSQL's parser could read: Gatehouse's own
 * answer when it is a session statement or a PostgreSQL catalog query, else the statement's
 * own text in the warehouse's dialect.
 */
export function planRowRawStatement(ctx: DecisionContext, parsed: ParsedText, st: ParsedStatement): Planned {
  const session = sessionStatement(ctx, st, false);
  if (session) return session;
  const kind = kindOf(st.stmt);
  if (kind === 'write' || kind === 'ddl') {
    // What PostgreSQL's parser reads as a write or DDL is refused as one (42501), whether or
    // not the warehouse dialect's classifier can parse it (Snowflake's cannot read DELETE).
    const engine = ctx.connection.dialect === 'snowflake' ? 'Snowflake' : ctx.connection.flavor === 'mysql' ? 'MySQL' : 'MariaDB';
    refuse('raw_sql.denied', '42501', `${statementName(nodeType(st.stmt))} is not permitted: raw SQL on ${engine} connections through Gatehouse is read-only`);
  }
  if (nodeType(st.stmt) === 'SelectStmt') {
    const catalog = planCatalogQuery(ctx, st.stmt, st.text, 'warehouse_sql');
    if (catalog) return { statement: catalog, topics: [] };
  }
  const topicsSchema = relationNames(st.stmt, new Map()).other.find((n) => n.split('.').at(-2) === ctx.connection.topicsSchema);
  if (topicsSchema) {
    notOnWarehouse(
      ctx,
      `reading topics as ${ctx.connection.topicsSchema}.<topic> (${topicsSchema})`,
      'query the warehouse tables directly (your level reads them), or sign in as a query_topics user',
    );
  }
  if (containsNode(st.stmt, PARAM_REF)) {
    // pgjdbc and node-postgres write $1 for their parameters; MySQL reads ?, Snowflake :1.
    const written = withWarehousePlaceholders(ctx, parsed, st);
    const planned = planRowRawText(ctx, written.sql);
    if (planned.statement.action === 'forward') planned.statement.params = written.params;
    return planned;
  }
  return planRowRawText(ctx, st.text);
}

/**
 * A querier's text with PostgreSQL's parameters ($n, where PostgreSQL's parser read them)
 * written as the warehouse's own placeholders: `?` on MySQL (bound in order), `:n` on
 * Snowflake (bound by number). Only when the warehouse's own reading of the text finds no
 * placeholder before and exactly the ones written after, in the same order: a text MySQL or
 * Snowflake reads differently from PostgreSQL (a `$1` PostgreSQL sees outside a string and
 * the warehouse inside one) is refused, never bound.
 */
function withWarehousePlaceholders(ctx: DecisionContext, parsed: ParsedText, st: ParsedStatement): { sql: string; params: number[] } {
  const refs: { number: number; location: number }[] = [];
  collectParamRefs(st.stmt, refs);
  refs.sort((a, b) => a.location - b.location);
  const bytes = parsed.bytes.subarray(st.byteStart, st.byteEnd);
  const snowflake = ctx.connection.dialect === 'snowflake';
  const parts: Buffer[] = [];
  let at = 0;
  for (const r of refs) {
    const off = r.location - st.byteStart;
    const written = `$${r.number}`;
    if (off < at || bytes.toString('utf8', off, off + written.length) !== written || /[0-9]/.test(String.fromCharCode(bytes[off + written.length] ?? 0))) {
      return cannotBind(ctx);
    }
    parts.push(bytes.subarray(at, off), Buffer.from(snowflake ? `:${r.number}` : '?'));
    at = off + written.length;
  }
  parts.push(bytes.subarray(at));
  const sql = Buffer.concat(parts).toString('utf8').trim();
  const numbers = refs.map((r) => r.number);
  if (snowflake) {
    if (numberedBinds(st.text).length > 0 || numberedBinds(sql).join(',') !== numbers.join(',')) return cannotBind(ctx);
    return { sql, params: Array.from({ length: Math.max(...numbers) }, (_, i) => i + 1) };
  }
  if (countPlaceholders(st.text) > 0 || countPlaceholders(sql) !== refs.length) return cannotBind(ctx);
  return { sql, params: numbers };
}

function collectParamRefs(node: unknown, out: { number: number; location: number }[]): void {
  if (Array.isArray(node)) {
    for (const n of node) collectParamRefs(n, out);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const p = (node as AstNode).ParamRef as AstNode | undefined;
  if (p) out.push({ number: Number(p.number ?? 0), location: Number(p.location ?? -1) });
  for (const v of Object.values(node as object)) collectParamRefs(v, out);
}

function cannotBind(ctx: DecisionContext): never {
  const own = ctx.connection.dialect === 'snowflake' ? ':1' : '?';
  return notOnWarehouse(
    ctx,
    'PostgreSQL parameters ($1) where the warehouse reads this text differently',
    `raw SQL goes to the warehouse as written: write ${ENGINE_NAMES[engineOf(ctx)]}'s placeholders (${own}) or plain $1 outside quotes and comments`,
  );
}

const PARAM_REF = new Set(['ParamRef']);

function rawDialectOf(ctx: DecisionContext): RawDialect {
  if (ctx.connection.dialect === 'snowflake') return 'snowflake';
  return ctx.connection.flavor === 'mysql' ? 'mysql' : 'mariadb';
}

/** A querier's text in the warehouse's dialect: classified read-only and forwarded unchanged, or refused with the classifier's SQLSTATE. */
export function planRowRawText(ctx: DecisionContext, text: string): Planned {
  const c = classifyRawSql(text, rawDialectOf(ctx));
  if (!c.ok)
    refuse(
      c.error.sqlstate === '42501' ? 'raw_sql.denied' : 'raw_sql.unsupported',
      c.error.sqlstate,
      c.error.message,
      c.error.hint ? { hint: c.error.hint } : {},
    );
  if (c.kind === 'multiple') {
    // A connector session runs one statement per call, and Gatehouse never lets the warehouse split text.
    notOnWarehouse(ctx, `several ${engineOf(ctx)} statements in one query`, 'send them one at a time');
  }
  const kind = c.kind as RawKind;
  return {
    statement: { action: 'forward', sql: text, kind: RAW_KINDS[kind], returnsRows: kind !== 'set', topics: [] },
    topics: [],
    raw: true,
  };
}

const RAW_KINDS: Record<RawKind, PlannedStatement['kind']> = { select: 'select', show: 'show', describe: 'other', explain: 'explain', set: 'set' };

// ---------------------------------------------------------------- session statements, every level

/** Settings the server reports and never lets a session change (PostgreSQL's 55P02). */
const FIXED_SETTINGS = new Set(['server_version', 'server_version_num', 'server_encoding', 'integer_datetimes', 'max_identifier_length']);
/** Query Topics sessions: the connection's limits, RESET and SHOW only (as on PostgreSQL). */
const GOVERNED_LIMITS = new Set(['statement_timeout', 'idle_in_transaction_session_timeout']);

/**
 * A session statement Gatehouse answers or writes for MySQL, or undefined when the statement
 * is not one (a querier's text then goes to MySQL as written; a Query Topics user is refused).
 */
function sessionStatement(ctx: DecisionContext, st: ParsedStatement, topicUser: boolean): Planned | undefined {
  const stmt = st.stmt;
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  switch (t) {
    case 'VariableSetStmt':
      return planSet(ctx, stmt, topicUser);
    case 'VariableShowStmt': {
      const name = String(body.name ?? '').toLowerCase();
      if (name === 'all') notOnWarehouse(ctx, 'SHOW ALL', 'SHOW one setting at a time');
      if (!SETTING_ALLOWLIST.has(name) && !SHOW_ONLY_SETTINGS.has(name)) {
        if (topicUser)
          refuse('query_topics.setting_not_allowed', '42501', `SHOW ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}`);
        return undefined;
      }
      return emulated({ op: 'show', name }, 'show', stmt, true);
    }
    case 'TransactionStmt':
      return planTransaction(ctx, body, topicUser);
    case 'DiscardStmt': {
      const what = ({ DISCARD_ALL: 'all', DISCARD_PLANS: 'plans', DISCARD_SEQUENCES: 'sequences', DISCARD_TEMP: 'temp' } as const)[
        body.target as 'DISCARD_ALL'
      ];
      if (!what) return undefined;
      return emulated({ op: 'discard', what }, 'discard', stmt, false);
    }
    default:
      return undefined;
  }
}

/**
 * A statement Gatehouse answers itself. Its `sql` is the statement as Gatehouse writes it in
 * PostgreSQL (the audit's sent_sql, and what the topic catalog's PostgreSQL session runs where
 * a statement goes to every upstream, as DISCARD ALL does); the warehouse never gets it.
 */
function emulated(op: EmulatedSession, kind: PlannedStatement['kind'], stmt: AstNode, returnsRows: boolean): Planned {
  return { statement: { action: 'forward', sql: writeSessionStatement(stmt as never), kind, returnsRows, topics: [], emulated: op }, topics: [] };
}

function planSet(ctx: DecisionContext, stmt: AstNode, topicUser: boolean): Planned | undefined {
  const body = stmt.VariableSetStmt as AstNode;
  const lexing = changesLexing(stmt as never);
  if (lexing) refuse('lexing_setting', '42501', lexing, { hint: 'remove this SET; Gatehouse keeps the warehouse session on the settings it parses with' });
  const kind: string = body.kind;
  if (kind === 'VAR_SET_MULTI') return planSetTransaction(ctx, body, topicUser);
  if (kind === 'VAR_RESET_ALL') return emulated({ op: 'reset_all' }, 'reset', stmt, false);
  const name = String(body.name ?? '').toLowerCase();
  const verb = kind.startsWith('VAR_RESET') ? 'RESET' : 'SET';
  if (name === 'default_transaction_read_only' || name === 'transaction_read_only') {
    // Only ever tightening where writes are not allowed; the warehouse session is read only anyway.
    if (verb === 'SET' && !setsReadOnlyOn(stmt) && !ctx.connection.allowWrites) {
      refuse('read_only', '42501', `connection ${ctx.connection.name} is read only: ${name} stays on`);
    }
  } else if (!SETTING_ALLOWLIST.has(name)) {
    if (topicUser) {
      const fixed = name === 'search_path' ? ' (search_path is fixed by Gatehouse)' : '';
      refuse(
        'query_topics.setting_not_allowed',
        '42501',
        `${verb} ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}${fixed}`,
      );
    }
    return undefined;
  }
  if (topicUser && GOVERNED_LIMITS.has(name) && verb === 'SET') {
    refuse(
      'query_topics.setting_not_allowed',
      '42501',
      `SET ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}: the connection sets it for governed sessions`,
      {
        hint: "RESET returns it to the connection's value; ask a connection admin to change topics_statement_timeout",
      },
    );
  }
  if (FIXED_SETTINGS.has(name) && verb === 'SET') notOnWarehouse(ctx, `SET ${name} (the server reports it and it cannot be changed)`);
  if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') return emulated({ op: 'reset', name }, 'reset', stmt, false);
  if (kind !== 'VAR_SET_VALUE') notOnWarehouse(ctx, `SET ${name} FROM CURRENT`);
  const value = settingValue(ctx, name, body.args ?? []);
  checkValue(ctx, name, value);
  const local = Boolean(body.is_local);
  return emulated({ op: 'set', name, value, local }, 'set', stmt, false);
}

/** A SET's value as PostgreSQL would show it (a list joined with ', '); only constants. */
function settingValue(ctx: DecisionContext, name: string, args: AstNode[]): string {
  return args
    .map((a) => {
      const c = a.A_Const as AstNode | undefined;
      if (!c) notOnWarehouse(ctx, `this value of ${name}`);
      if (c.sval) return String(c.sval.sval ?? '');
      if (c.ival) return String(c.ival.ival ?? 0);
      if (c.fval) return String(c.fval.fval);
      if (c.boolval) return c.boolval.boolval ? 'on' : 'off';
      return notOnWarehouse(ctx, `this value of ${name}`);
    })
    .join(', ');
}

/**
 * Settings that change how PostgreSQL prints values take only what the mysql connector prints
 * (UTC timestamps, ISO dates, hex bytea): any other value would be kept but not obeyed.
 */
function checkValue(ctx: DecisionContext, name: string, value: string): void {
  const v = value.trim().toLowerCase();
  const ok = (() => {
    switch (name) {
      case 'timezone':
        return /^(utc|gmt|etc\/utc|etc\/gmt|etc\/universal|universal|zulu|z|[+-]?0+(:00)?)$/.test(v);
      case 'datestyle':
        return v.split(/\s*,\s*/).every((p) => ['iso', 'mdy', 'dmy', 'ymd', 'us', 'european', 'noneuropean', 'euro', 'noneuro'].includes(p));
      case 'intervalstyle':
        return v === 'postgres';
      case 'bytea_output':
        return v === 'hex';
      case 'extra_float_digits':
        return /^-?\d+$/.test(v) && Number(v) >= -15 && Number(v) <= 3;
      case 'transaction_isolation':
      case 'default_transaction_isolation':
        // The level the warehouse runs (pg-settings.ts answers it): InnoDB's, or Snowflake's only one.
        return v === (ctx.connection.dialect === 'snowflake' ? 'read committed' : 'repeatable read');
      default:
        return true;
    }
  })();
  if (!ok) {
    notOnWarehouse(
      ctx,
      `${name} = '${value}'`,
      name === 'timezone' ? 'timestamps are read and printed in UTC on this connection' : `keep ${name} at its value (SHOW ${name})`,
    );
  }
}

/**
 * SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION, written as MySQL's SET
 * [SESSION] TRANSACTION: read only or not, and the isolation level.
 */
function planSetTransaction(ctx: DecisionContext, body: AstNode, topicUser: boolean): Planned | undefined {
  const session = body.name === 'SESSION CHARACTERISTICS';
  if (!session && body.name !== 'TRANSACTION') return undefined;
  if (ctx.connection.dialect === 'snowflake') {
    notOnWarehouse(ctx, 'SET TRANSACTION', 'Snowflake runs every transaction READ COMMITTED; the warehouse account keeps the session from writing');
  }
  const parts: string[] = [];
  let notice: string | undefined;
  for (const o of body.args ?? []) {
    const d = o.DefElem as AstNode | undefined;
    if (d?.defname === 'transaction_isolation') parts.push(`ISOLATION LEVEL ${isolationLevel(ctx, d.arg)}`);
    else if (d?.defname === 'transaction_read_only') {
      if (!asksReadWrite([o])) parts.push('READ ONLY');
      else if (ctx.connection.allowWrites && !topicUser) parts.push('READ WRITE');
      else if (session) {
        // pgjdbc sends it when autocommit goes off: written READ ONLY, as decide.ts does on PostgreSQL.
        parts.push('READ ONLY');
        notice = `connection ${ctx.connection.name} is read only for ${ctx.user}: the session's transactions stay READ ONLY`;
      } else if (topicUser) notForTopicUsers(ctx, 'SET TRANSACTION READ WRITE');
      else
        refuse(
          'read_only',
          '42501',
          `writes are not permitted on connection ${ctx.connection.name} (it does not set allow_writes): SET TRANSACTION READ WRITE refused`,
        );
    } else if (d?.defname !== 'transaction_deferrable') notOnWarehouse(ctx, `SET TRANSACTION ${d?.defname ?? ''}`);
  }
  if (parts.length === 0) notOnWarehouse(ctx, 'SET TRANSACTION DEFERRABLE');
  const sql = `SET ${session ? 'SESSION ' : ''}TRANSACTION ${parts.join(', ')}`;
  return { statement: { action: 'forward', sql, kind: 'set', returnsRows: false, topics: [], ...(notice ? { notice } : {}) }, topics: [] };
}

const ISOLATION: Record<string, string> = {
  'read uncommitted': 'READ UNCOMMITTED',
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
};

function isolationLevel(ctx: DecisionContext, arg: AstNode | undefined): string {
  const level = ISOLATION[String(arg?.A_Const?.sval?.sval ?? '').toLowerCase()];
  if (!level) notOnWarehouse(ctx, 'this isolation level');
  return level;
}

/**
 * BEGIN/COMMIT/ROLLBACK/SAVEPOINT in the engine's syntax. MySQL: a read-only session's
 * transactions start READ ONLY. Snowflake has no read-only transactions and no savepoints:
 * BEGIN TRANSACTION, the warehouse account (and the classifier) keeping the session from writing.
 */
function planTransaction(ctx: DecisionContext, body: AstNode, topicUser: boolean): Planned {
  const readOnly = topicUser || !ctx.connection.allowWrites;
  const snowflake = ctx.connection.dialect === 'snowflake';
  const savepoint = () => {
    if (snowflake) notOnWarehouse(ctx, 'savepoints');
    return quoteIdent(String(body.savepoint_name ?? ''));
  };
  let sql: string;
  switch (body.kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START': {
      for (const o of body.options ?? []) {
        const d = o.DefElem as AstNode | undefined;
        if (d?.defname === 'transaction_isolation') {
          notOnWarehouse(ctx, 'BEGIN ISOLATION LEVEL', 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ... first, then BEGIN');
        } else if (d?.defname !== 'transaction_read_only' && d?.defname !== 'transaction_deferrable') notOnWarehouse(ctx, `BEGIN ${d?.defname ?? ''}`);
      }
      if (asksReadWrite(body.options) && readOnly) {
        if (topicUser) notForTopicUsers(ctx, 'BEGIN READ WRITE');
        refuse('read_only', '42501', `writes are not permitted on connection ${ctx.connection.name} (it does not set allow_writes): BEGIN READ WRITE refused`);
      }
      if (snowflake) sql = 'BEGIN TRANSACTION';
      else sql = readOnly ? 'START TRANSACTION READ ONLY' : asksReadWrite(body.options) ? 'START TRANSACTION READ WRITE' : 'START TRANSACTION';
      break;
    }
    case 'TRANS_STMT_COMMIT':
      if (body.chain) notOnWarehouse(ctx, 'COMMIT AND CHAIN');
      sql = 'COMMIT';
      break;
    case 'TRANS_STMT_ROLLBACK':
      if (body.chain) notOnWarehouse(ctx, 'ROLLBACK AND CHAIN');
      sql = 'ROLLBACK';
      break;
    case 'TRANS_STMT_SAVEPOINT':
      sql = `SAVEPOINT ${savepoint()}`;
      break;
    case 'TRANS_STMT_RELEASE':
      sql = `RELEASE SAVEPOINT ${savepoint()}`;
      break;
    case 'TRANS_STMT_ROLLBACK_TO':
      sql = `ROLLBACK TO SAVEPOINT ${savepoint()}`;
      break;
    default:
      if (topicUser) notForTopicUsers(ctx, 'two-phase commit');
      return notOnWarehouse(ctx, 'two-phase commit');
  }
  return { statement: { action: 'forward', sql, kind: 'transaction', returnsRows: false, topics: [] }, topics: [] };
}
