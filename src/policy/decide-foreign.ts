// decide() for a connection whose warehouse does not read PostgreSQL (kind mysql: MySQL and
// MariaDB). Clients still speak PostgreSQL to Gatehouse; what differs is what reaches the
// warehouse:
// - Query Topics users write PostgreSQL: parsed with libpg-query, the same allowlist and topic
//   rewrite as on PostgreSQL (DESIGN 3), then written by the connection's SqlDialect
//   (src/sql/dialects/mysql.ts), never deparsed as PostgreSQL text.
// - Queriers and connection admins write the warehouse's own dialect: classified read-only by
//   node-sql-parser (classifyRawSql) and forwarded unchanged.
// - Every level: the session statements PostgreSQL clients send (SET/SHOW/RESET of allowlisted
//   settings, DISCARD) are answered by Gatehouse (`emulated`: row-session.ts keeps them per
//   session), transactions are written as MySQL's, catalog queries run on the topic catalog.
import { LRUCache } from 'lru-cache';
import { GatehouseError, isGatehouseError } from '../errors.ts';
import type { Decision, DecisionContext, PlannedStatement } from './decision.ts';
import type { EmulatedSession } from '../warehouses/types.ts';
import { type AstNode, type ParsedStatement, type ParsedText, nodeType, parseSql } from '../sql/parse.ts';
import { Refusal, refuse } from '../sql/refusal.ts';
import { Walker, statementName } from '../sql/scope.ts';
import { asksReadWrite, containsNode, setsReadOnlyOn } from '../sql/classify.ts';
import { SETTING_ALLOWLIST, SHOW_ONLY_SETTINGS } from '../sql/functions.ts';
import { checkTopicQuery } from '../sql/allowlist.ts';
import { changesLexing, writeSessionStatement } from '../sql/session-statement.ts';
import { substituteSessionIdentity } from '../sql/identity.ts';
import { createMysqlDialect } from '../sql/dialects/mysql.ts';
import { quoteIdent } from '../sql/dialects/mysql-text.ts';
import { type RawKind, classifyRawSql } from '../sql/dialects/classify-raw.ts';
import type { SqlDialect } from '../sql/dialects/types.ts';
import { planCatalogQuery, relationNames } from './catalog.ts';

// The same bounds as decide()'s cache (decide.ts): an entry weighs about three times its text.
const CACHED_TEXT_MAX = 64 * 1024;
const cache = new LRUCache<string, Decision>({ max: 10_000, maxSize: 64 * 1024 * 1024, sizeCalculation: (_d, key) => 3 * key.length + 256 });
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;

function idOf(o: object | undefined): number {
  if (!o) return 0;
  let id = objectIds.get(o);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(o, id);
  }
  return id;
}

export function clearForeignDecisionCache(): void {
  cache.clear();
}

/**
 * The context as the cache sees it: the connection (its dialect and flavor among it), the
 * topics map, and what the emitter knows of each topic's column types. Those are read from
 * the warehouse at start (gateway.ts learnColumnTypes) and replaced whole, so a decision made
 * before they were known (refused: unknown types) is not served after.
 */
function contextKey(ctx: DecisionContext): string {
  const attrs = Object.keys(ctx.attributes).sort().map((k) => [k, ctx.attributes[k]]);
  const types = [...ctx.topics.values()].map((t) => idOf(t.columnTypes));
  return JSON.stringify([ctx.org, ctx.user, ctx.level, attrs, ctx.connection, idOf(ctx.topics), types]);
}

export async function decideForeign(ctx: DecisionContext, sql: string): Promise<Decision> {
  const key = `${contextKey(ctx)}\u0000${sql}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const decision = await decideUncached(ctx, sql);
  if (sql.length <= CACHED_TEXT_MAX) cache.set(key, decision);
  return decision;
}

interface Planned {
  statement: PlannedStatement;
  topics: string[];
  /** A querier's own text, forwarded as written. */
  raw?: boolean;
}

async function decideUncached(ctx: DecisionContext, sql: string): Promise<Decision> {
  if (ctx.level === 'no_access') {
    return refusal('level.no_access', new GatehouseError('42501', `${ctx.user} has no access to connection ${ctx.connection.name}`));
  }
  let parsed: ParsedText | undefined;
  let parseError: GatehouseError | undefined;
  try {
    parsed = await parseSql(sql);
  } catch (e) {
    if (!isGatehouseError(e)) throw e;
    parseError = e;
  }
  try {
    if (ctx.level === 'query_topics') {
      if (!parsed) return refusal('parse_error', parseError!);
      if (parsed.statements.length === 0) return { outcome: 'empty' };
      return finish(ctx, parsed.statements.map((st) => planTopicStatement(ctx, st)));
    }
    if (parsed && parsed.statements.length === 0) return { outcome: 'empty' };
    return finish(ctx, parsed ? parsed.statements.map((st) => planRawStatement(ctx, st)) : [forwardRaw(ctx, sql)]);
  } catch (e) {
    if (e instanceof Refusal) return refusal(e.rule, e.error);
    throw e;
  }
}

function finish(ctx: DecisionContext, planned: Planned[]): Decision {
  const topics = [...new Set(planned.flatMap((p) => p.topics))].sort();
  const statements = planned.map((p) => p.statement);
  const catalog = statements.some((s) => s.action === 'catalog');
  const rule =
    topics.length > 0
      ? 'topic_rewrite'
      : catalog
        ? 'query_topics.catalog'
        : planned.some((p) => p.raw)
          ? 'raw_sql'
          : ctx.level === 'query_topics'
            ? 'query_topics.session'
            : 'session';
  return { outcome: 'run', statements, rule, topics };
}

function refusal(rule: string, error: GatehouseError): Decision {
  return { outcome: 'refuse', error, rule };
}

function topicList(ctx: DecisionContext): string {
  return [...ctx.topics.keys()].sort().join(', ');
}

function notForTopicUsers(ctx: DecisionContext, what: string): never {
  refuse('query_topics.statement_kind', '42501', `${what} is not permitted for query_topics users on connection ${ctx.connection.name}; query a topic: ${topicList(ctx)}`);
}

function notOnMysql(ctx: DecisionContext, what: string, hint?: string): never {
  refuse('dialect.unsupported', '0A000', `${what} is not supported on connection ${ctx.connection.name} (a mysql warehouse)`, hint ? { hint } : {});
}

// ---------------------------------------------------------------- Query Topics users

function planTopicStatement(ctx: DecisionContext, st: ParsedStatement): Planned {
  const stmt = st.stmt;
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  switch (t) {
    case 'SelectStmt': {
      if (body.intoClause) notForTopicUsers(ctx, 'SELECT INTO');
      if (body.lockingClause?.length) notForTopicUsers(ctx, 'SELECT FOR UPDATE/SHARE');
      const catalog = planCatalogQuery(ctx, stmt, st.text);
      if (catalog) return { statement: catalog, topics: [] };
      const topics = rewriteTopicQuery(ctx, stmt);
      const emitted = emit(ctx, stmt);
      return {
        statement: { action: 'forward', sql: emitted.sql, params: emitted.params, ...(emitted.columns ? { columns: emitted.columns } : {}), kind: 'select', returnsRows: true, topics },
        topics,
      };
    }
    case 'ExplainStmt': {
      // Answered by Gatehouse with the MySQL text it would send: the warehouse's own plan
      // prints estimates from whole-table statistics (DESIGN 3).
      const q = body.query as AstNode;
      if (nodeType(q) !== 'SelectStmt') notForTopicUsers(ctx, `EXPLAIN ${statementName(nodeType(q))}`);
      if (q.SelectStmt.intoClause || q.SelectStmt.lockingClause?.length) notForTopicUsers(ctx, 'EXPLAIN of SELECT INTO or FOR UPDATE');
      const topics = rewriteTopicQuery(ctx, q);
      const emitted = emit(ctx, q);
      return { statement: { action: 'answer', kind: 'explain', column: 'QUERY PLAN', rows: [emitted.sql], tag: 'EXPLAIN' }, topics };
    }
    case 'CopyStmt':
      return notOnMysql(ctx, 'COPY', 'run the query with SELECT instead');
    case 'DeclareCursorStmt':
    case 'FetchStmt':
    case 'ClosePortalStmt':
      return notOnMysql(ctx, 'SQL cursors (DECLARE, FETCH, CLOSE)', 'read the rows with SELECT; drivers can page them with the extended protocol (fetch size)');
    case 'PrepareStmt':
    case 'ExecuteStmt':
    case 'DeallocateStmt':
      return notOnMysql(ctx, 'SQL PREPARE/EXECUTE/DEALLOCATE', "use the driver's prepared statements (the extended protocol) instead");
    default: {
      const session = sessionStatement(ctx, st, true);
      if (session) return session;
      return notForTopicUsers(ctx, statementName(t));
    }
  }
}

/**
 * The allowlist over the whole tree, then the rewrite (session identity answered by
 * Gatehouse, topics into barrier derived tables), as decide.ts does for PostgreSQL.
 */
function rewriteTopicQuery(ctx: DecisionContext, query: AstNode): string[] {
  checkTopicQuery({ connection: ctx.connection.name, topicsSchema: ctx.connection.topicsSchema, topics: ctx.topics }, query as never);
  substituteSessionIdentity(query, { user: ctx.user, database: ctx.connection.name });
  const w = new Walker(ctx, 'topics');
  w.visit(query, undefined);
  return [...w.topicsUsed].sort();
}

/**
 * The connection's dialect: the emitter knows each topic's base table's column types (from
 * the warehouse at start) and writes collations by the flavor. A base table in schema
 * `public` (the rules' default) is the connection's database: written unqualified.
 */
function dialectFor(ctx: DecisionContext): SqlDialect {
  return createMysqlDialect({
    flavor: ctx.connection.flavor ?? 'mariadb',
    columnTypes: (schema, table) => {
      for (const topic of ctx.topics.values()) {
        if (topic.base.table !== table) continue;
        if ((schema ?? 'public') === topic.base.schema) return topic.columnTypes;
      }
      return undefined;
    },
  });
}

function emit(ctx: DecisionContext, stmt: AstNode): ReturnType<SqlDialect['emit']> {
  unqualifyPublic(stmt);
  try {
    return dialectFor(ctx).emit(stmt);
  } catch (e) {
    if (isGatehouseError(e)) refuse('dialect.unsupported', e.sqlstate, e.message, e.hint ? { hint: e.hint } : {});
    throw e;
  }
}

function unqualifyPublic(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) unqualifyPublic(n);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const rv = (node as AstNode).RangeVar as AstNode | undefined;
  if (rv && rv.schemaname === 'public' && !rv.catalogname) delete rv.schemaname;
  for (const v of Object.values(node as object)) unqualifyPublic(v);
}

// ---------------------------------------------------------------- queriers and connection admins

/**
 * One statement of a querier's text that PostgreSQL's parser could read: Gatehouse's own
 * answer when it is a session statement or a PostgreSQL catalog query, else the statement's
 * own text as MySQL SQL.
 */
function planRawStatement(ctx: DecisionContext, st: ParsedStatement): Planned {
  const session = sessionStatement(ctx, st, false);
  if (session) return session;
  if (nodeType(st.stmt) === 'SelectStmt' && readsPostgresCatalog(st.stmt)) {
    const catalog = planCatalogQuery(ctx, st.stmt, st.text);
    if (catalog) return { statement: catalog, topics: [] };
  }
  const topicsSchema = relationNames(st.stmt, new Map()).other.find((n) => n.split('.').at(-2) === ctx.connection.topicsSchema);
  if (topicsSchema) {
    notOnMysql(ctx, `reading topics as ${ctx.connection.topicsSchema}.<topic> (${topicsSchema})`, 'query the warehouse tables directly (your level reads them), or sign in as a query_topics user');
  }
  if (containsNode(st.stmt, PARAM_REF)) {
    // pgjdbc and node-postgres write $1 for their parameters; MySQL reads ? (and `$1` not at all).
    notOnMysql(ctx, 'PostgreSQL parameters ($1) in raw SQL', 'raw SQL goes to the warehouse as written: write MySQL\'s placeholders (?), or send the values in the text');
  }
  return forwardRaw(ctx, st.text);
}

const PARAM_REF = new Set(['ParamRef']);

/** A querier's text, MySQL's dialect: classified read-only and forwarded unchanged, or refused with the classifier's SQLSTATE. */
function forwardRaw(ctx: DecisionContext, text: string): Planned {
  const c = classifyRawSql(text, ctx.connection.flavor === 'mysql' ? 'mysql' : 'mariadb');
  if (!c.ok) refuse(c.error.sqlstate === '42501' ? 'raw_sql.denied' : 'raw_sql.unsupported', c.error.sqlstate, c.error.message, c.error.hint ? { hint: c.error.hint } : {});
  if (c.kind === 'multiple') {
    // A connector session runs one statement per call, and Gatehouse never lets MySQL split text.
    notOnMysql(ctx, 'several MySQL statements in one query', 'send them one at a time');
  }
  const kind = c.kind as RawKind;
  return {
    statement: { action: 'forward', sql: text, kind: RAW_KINDS[kind], returnsRows: kind !== 'set', topics: [] },
    topics: [],
    raw: true,
  };
}

const RAW_KINDS: Record<RawKind, PlannedStatement['kind']> = { select: 'select', show: 'show', describe: 'other', explain: 'explain', set: 'set' };

/** Names a querier's text could only mean on PostgreSQL: pg_catalog relations and functions, reg* casts. */
const POSTGRES_CATALOG_FUNCTIONS = new Set([
  'current_schema', 'current_schemas', 'format_type', 'obj_description', 'col_description', 'shobj_description',
  'has_table_privilege', 'has_schema_privilege', 'has_database_privilege', 'current_setting', 'current_database',
]);

function readsPostgresCatalog(stmt: AstNode): boolean {
  if (relationNames(stmt, new Map()).catalog.some((n) => !n.startsWith('information_schema.'))) return true;
  let found = false;
  const walk = (node: unknown): void => {
    if (found || !node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    for (const [key, val] of Object.entries(node as AstNode)) {
      if (key === 'FuncCall') {
        const names: string[] = (val.funcname ?? []).map((n: AstNode) => n.String?.sval ?? '');
        const name = names.at(-1) ?? '';
        if (names.at(-2) === 'pg_catalog' || name.startsWith('pg_') || POSTGRES_CATALOG_FUNCTIONS.has(name)) found = true;
      } else if (key === 'TypeCast') {
        const names: string[] = (val.typeName?.names ?? []).map((n: AstNode) => n.String?.sval ?? '');
        if (/^reg[a-z]+$/.test(names.at(-1) ?? '')) found = true;
      }
      walk(val);
    }
  };
  walk(stmt);
  return found;
}

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
      if (name === 'all') notOnMysql(ctx, 'SHOW ALL', 'SHOW one setting at a time');
      if (!SETTING_ALLOWLIST.has(name) && !SHOW_ONLY_SETTINGS.has(name)) {
        if (topicUser) refuse('query_topics.setting_not_allowed', '42501', `SHOW ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}`);
        return undefined;
      }
      return emulated({ op: 'show', name }, 'show', stmt, true);
    }
    case 'TransactionStmt':
      return planTransaction(ctx, body, topicUser);
    case 'DiscardStmt': {
      const what = ({ DISCARD_ALL: 'all', DISCARD_PLANS: 'plans', DISCARD_SEQUENCES: 'sequences', DISCARD_TEMP: 'temp' } as const)[body.target as 'DISCARD_ALL'];
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
      refuse('query_topics.setting_not_allowed', '42501', `${verb} ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}${fixed}`);
    }
    return undefined;
  }
  if (topicUser && GOVERNED_LIMITS.has(name) && verb === 'SET') {
    refuse('query_topics.setting_not_allowed', '42501', `SET ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}: the connection sets it for governed sessions`, {
      hint: "RESET returns it to the connection's value; ask a connection admin to change topics_statement_timeout",
    });
  }
  if (FIXED_SETTINGS.has(name) && verb === 'SET') notOnMysql(ctx, `SET ${name} (the server reports it and it cannot be changed)`);
  if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') return emulated({ op: 'reset', name }, 'reset', stmt, false);
  if (kind !== 'VAR_SET_VALUE') notOnMysql(ctx, `SET ${name} FROM CURRENT`);
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
      if (!c) notOnMysql(ctx, `this value of ${name}`);
      if (c.sval) return String(c.sval.sval ?? '');
      if (c.ival) return String(c.ival.ival ?? 0);
      if (c.fval) return String(c.fval.fval);
      if (c.boolval) return c.boolval.boolval ? 'on' : 'off';
      return notOnMysql(ctx, `this value of ${name}`);
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
        return v === 'repeatable read';
      default:
        return true;
    }
  })();
  if (!ok) {
    notOnMysql(ctx, `${name} = '${value}'`, name === 'timezone' ? 'timestamps are read and printed in UTC on this connection' : `keep ${name} at its value (SHOW ${name})`);
  }
}

/**
 * SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION, written as MySQL's SET
 * [SESSION] TRANSACTION: read only or not, and the isolation level.
 */
function planSetTransaction(ctx: DecisionContext, body: AstNode, topicUser: boolean): Planned | undefined {
  const session = body.name === 'SESSION CHARACTERISTICS';
  if (!session && body.name !== 'TRANSACTION') return undefined;
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
      else refuse('read_only', '42501', `writes are not permitted on connection ${ctx.connection.name} (it does not set allow_writes): SET TRANSACTION READ WRITE refused`);
    } else if (d?.defname !== 'transaction_deferrable') notOnMysql(ctx, `SET TRANSACTION ${d?.defname ?? ''}`);
  }
  if (parts.length === 0) notOnMysql(ctx, 'SET TRANSACTION DEFERRABLE');
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
  if (!level) notOnMysql(ctx, 'this isolation level');
  return level;
}

/** BEGIN/COMMIT/ROLLBACK/SAVEPOINT as MySQL's; a read-only session's transactions start READ ONLY. */
function planTransaction(ctx: DecisionContext, body: AstNode, topicUser: boolean): Planned {
  const readOnly = topicUser || !ctx.connection.allowWrites;
  const savepoint = () => quoteIdent(String(body.savepoint_name ?? ''));
  let sql: string;
  switch (body.kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START': {
      for (const o of body.options ?? []) {
        const d = o.DefElem as AstNode | undefined;
        if (d?.defname === 'transaction_isolation') {
          notOnMysql(ctx, 'BEGIN ISOLATION LEVEL', 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ... first, then BEGIN');
        } else if (d?.defname !== 'transaction_read_only' && d?.defname !== 'transaction_deferrable') notOnMysql(ctx, `BEGIN ${d?.defname ?? ''}`);
      }
      if (asksReadWrite(body.options) && readOnly) {
        if (topicUser) notForTopicUsers(ctx, 'BEGIN READ WRITE');
        refuse('read_only', '42501', `writes are not permitted on connection ${ctx.connection.name} (it does not set allow_writes): BEGIN READ WRITE refused`);
      }
      sql = readOnly ? 'START TRANSACTION READ ONLY' : asksReadWrite(body.options) ? 'START TRANSACTION READ WRITE' : 'START TRANSACTION';
      break;
    }
    case 'TRANS_STMT_COMMIT':
      if (body.chain) notOnMysql(ctx, 'COMMIT AND CHAIN');
      sql = 'COMMIT';
      break;
    case 'TRANS_STMT_ROLLBACK':
      if (body.chain) notOnMysql(ctx, 'ROLLBACK AND CHAIN');
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
      return notOnMysql(ctx, 'two-phase commit');
  }
  return { statement: { action: 'forward', sql, kind: 'transaction', returnsRows: false, topics: [] }, topics: [] };
}
