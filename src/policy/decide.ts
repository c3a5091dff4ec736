// decide(): the whole policy decision for one simple-Query text, pure (no I/O).
// Parse (42601 on failure), then decide every statement before any runs: one refusal
// refuses all (DESIGN 3, fail closed). Query Topics users get the topic rewrite on the
// AST; queriers and connection admins get their own text, read-only unless the
// connection allows writes, with topics-schema references replaced by barriers.
import { LRUCache } from 'lru-cache';
import { GatehouseError } from '../errors.ts';
import type { Decision, DecisionContext, PlannedStatement } from './decision.ts';
import { type ParsedStatement, type ParsedText, type AstNode, nodeType, parseSql, parseSqlSync } from '../sql/parse.ts';
import { Refusal, refuse } from '../sql/refusal.ts';
import { Walker, statementName } from '../sql/scope.ts';
import { asksReadWrite, catalogWriteTarget, copyOptions, factsOf, kindOf, returnsRows, sessionNamesOf, sessionReadOnly, setsReadOnlyOn } from '../sql/classify.ts';
import { SETTING_ALLOWLIST, SHOW_ONLY_SETTINGS } from '../sql/functions.ts';
import { deparseFaithfully, deparseOneLine, deparsePretty, quoteIdent, sameTree } from '../sql/deparse.ts';
import { applySplices } from '../sql/splice.ts';
import { planCatalogQuery } from './catalog.ts';
import { checkTopicQuery } from '../sql/allowlist.ts';
import { changesLexing, safeLiteral, writeSessionStatement } from '../sql/session-statement.ts';
import { substituteSessionIdentity } from '../sql/identity.ts';
import { clearForeignDecisionCache, decideForeign } from './decide-foreign.ts';

/**
 * Decisions by (context, text), bounded by count and by memory: a key holds the statement's
 * text, and the decision its rewritten SQL (about as long), so an entry weighs about three
 * times its text. Texts over CACHED_TEXT_MAX are not cached at all: a BI tool's statements
 * repeat and are small, while a stream of distinct 1 MB statements (an outside review's
 * memory exhaustion) would otherwise evict everything useful or fill the heap.
 */
const CACHE_MAX_BYTES = 64 * 1024 * 1024;
const CACHED_TEXT_MAX = 64 * 1024;
const cache = new LRUCache<string, Decision>({ max: 10_000, maxSize: CACHE_MAX_BYTES, sizeCalculation: (_d, key) => 3 * key.length + 256 });
const topicMapIds = new WeakMap<object, number>();
let nextTopicMapId = 1;

/** Tests and rule reloads may start from nothing. */
export function clearDecisionCache(): void {
  cache.clear();
  clearForeignDecisionCache();
}

function contextKey(ctx: DecisionContext): string {
  let id = topicMapIds.get(ctx.topics);
  if (id === undefined) {
    id = nextTopicMapId++;
    topicMapIds.set(ctx.topics, id);
  }
  const attrs = Object.keys(ctx.attributes).sort().map((k) => [k, ctx.attributes[k]]);
  return JSON.stringify([ctx.org, ctx.user, ctx.level, attrs, ctx.connection, id]);
}

export async function decide(ctx: DecisionContext, sql: string): Promise<Decision> {
  // A warehouse that does not read PostgreSQL: its own path (dialect emitter, raw MySQL SQL), its own cache.
  if (ctx.connection.dialect === 'mysql') return decideForeign(ctx, sql);
  const key = `${contextKey(ctx)}\u0000${sql}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const decision = await decideUncached(ctx, sql);
  if (sql.length <= CACHED_TEXT_MAX) cache.set(key, decision);
  return decision;
}

async function decideUncached(ctx: DecisionContext, sql: string): Promise<Decision> {
  if (ctx.level === 'no_access') {
    return refusal('level.no_access', new GatehouseError('42501', `${ctx.user} has no access to connection ${ctx.connection.name}`));
  }
  let parsed: ParsedText;
  try {
    parsed = await parseSql(sql);
  } catch (e) {
    if (e instanceof GatehouseError) return refusal('parse_error', e);
    throw e;
  }
  if (parsed.statements.length === 0) return { outcome: 'empty' };
  try {
    const statements: PlannedStatement[] = [];
    const topics = new Set<string>();
    for (const st of parsed.statements) {
      const lexing = changesLexing(st.stmt as never);
      if (lexing) refuse('lexing_setting', '42501', lexing, { hint: 'remove this SET; Gatehouse keeps the warehouse session on the settings it parses with' });
      const planned = ctx.level === 'query_topics' ? planTopicStatement(ctx, st) : planRawStatement(ctx, parsed, st);
      for (const t of planned.topics) topics.add(t);
      statements.push(planned.statement);
    }
    const catalog = statements.some((s) => s.action === 'catalog');
    const rule = topics.size > 0 ? 'topic_rewrite' : catalog ? 'query_topics.catalog' : ctx.level === 'query_topics' ? 'query_topics.session' : 'raw_sql';
    return { outcome: 'run', statements, rule, topics: [...topics].sort() };
  } catch (e) {
    if (e instanceof Refusal) return refusal(e.rule, e.error);
    throw e;
  }
}

function refusal(rule: string, error: GatehouseError): Decision {
  return { outcome: 'refuse', error, rule };
}

interface Planned {
  statement: PlannedStatement;
  topics: string[];
}

function topicList(ctx: DecisionContext): string {
  return [...ctx.topics.keys()].sort().join(', ');
}

function notForTopicUsers(ctx: DecisionContext, what: string): never {
  refuse(
    'query_topics.statement_kind',
    '42501',
    `${what} is not permitted for query_topics users on connection ${ctx.connection.name}; query a topic: ${topicList(ctx)}`,
  );
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
      return { statement: { action: 'forward', sql: faithfulSql(stmt), kind: 'select', returnsRows: true, topics }, topics };
    }
    case 'ExplainStmt': {
      // Answered by Gatehouse with the rewritten SQL: the warehouse's plan prints estimates
      // from whole-table statistics (DESIGN 3). EXPLAIN ANALYZE is never forwarded either.
      const q = body.query as AstNode;
      if (nodeType(q) !== 'SelectStmt') notForTopicUsers(ctx, `EXPLAIN ${statementName(nodeType(q))}`);
      if (q.SelectStmt.intoClause || q.SelectStmt.lockingClause?.length) notForTopicUsers(ctx, 'EXPLAIN of SELECT INTO or FOR UPDATE');
      const topics = rewriteTopicQuery(ctx, q);
      return {
        statement: { action: 'answer', kind: 'explain', column: 'QUERY PLAN', rows: deparsePretty(q).split('\n'), tag: 'EXPLAIN' },
        topics,
      };
    }
    case 'CopyStmt': {
      if (body.is_program || body.filename) {
        refuse('denied_statement', '42501', 'COPY to or from a program or server file is not permitted through Gatehouse');
      }
      if (body.is_from) notForTopicUsers(ctx, 'COPY FROM');
      let query: AstNode;
      if (body.relation) {
        // `COPY orders TO STDOUT` (psql's \copy) is the export of the whole topic.
        const cols: AstNode[] = body.attlist?.length
          ? body.attlist.map((c: AstNode) => ({ ResTarget: { val: { ColumnRef: { fields: [c] } } } }))
          : [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }];
        query = { SelectStmt: { targetList: cols, fromClause: [{ RangeVar: body.relation }], limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } };
      } else {
        query = body.query;
        if (nodeType(query) !== 'SelectStmt') notForTopicUsers(ctx, `COPY (${statementName(nodeType(query))})`);
        if (query.SelectStmt.intoClause || query.SelectStmt.lockingClause?.length) notForTopicUsers(ctx, 'COPY of SELECT INTO or FOR UPDATE');
      }
      const opts = copyOptions(body.options);
      const topics = rewriteTopicQuery(ctx, query);
      const inner = faithfulSql(query);
      const parts = [`FORMAT ${opts.format}`];
      if (opts.header) parts.push('HEADER true');
      if (opts.delimiter !== undefined) parts.push(`DELIMITER ${safeLiteral(opts.delimiter)}`);
      for (const x of opts.extra) parts.push(`${x.name.toUpperCase()} ${safeLiteral(x.value)}`);
      const copyOut = { query: inner, format: opts.format, header: opts.header, ...(opts.delimiter !== undefined ? { delimiter: opts.delimiter } : {}) };
      return {
        statement: { action: 'forward', sql: `COPY (${inner}) TO STDOUT WITH (${parts.join(', ')})`, kind: 'copy_out', returnsRows: false, copyOut, topics },
        topics,
      };
    }
    case 'VariableSetStmt': {
      const kind: string = body.kind;
      if (kind === 'VAR_SET_MULTI') {
        if (asksReadWrite(body.args)) {
          if (body.name === 'SESSION CHARACTERISTICS') return sessionStaysReadOnly(ctx, stmt);
          notForTopicUsers(ctx, `SET ${body.name} READ WRITE`);
        }
      } else if (setsReadOnlyOn(stmt)) {
        // Only tightens: the session or transaction is read only anyway.
      } else if (kind !== 'VAR_RESET_ALL') {
        const name = String(body.name ?? '').toLowerCase();
        if (GOVERNED_LIMITS.has(name) && !kind.startsWith('VAR_RESET')) {
          refuse('query_topics.setting_not_allowed', '42501', `SET ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}: the connection sets it for governed sessions`, {
            hint: 'RESET returns it to the connection\'s value; ask a connection admin to change topics_statement_timeout',
          });
        }
        if (!SETTING_ALLOWLIST.has(name)) {
          refuse('query_topics.setting_not_allowed', '42501', settingMessage(ctx, body.name, kind.startsWith('VAR_RESET') ? 'RESET' : 'SET'));
        }
      }
      return forwardAsWritten(st, kindOf(stmt));
    }
    case 'VariableShowStmt': {
      const name = String(body.name ?? '').toLowerCase();
      if (!SETTING_ALLOWLIST.has(name) && !SHOW_ONLY_SETTINGS.has(name)) {
        refuse('query_topics.setting_not_allowed', '42501', settingMessage(ctx, body.name, 'SHOW'));
      }
      return forwardAsWritten(st, 'show');
    }
    case 'TransactionStmt': {
      const allowed = ['TRANS_STMT_BEGIN', 'TRANS_STMT_START', 'TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK', 'TRANS_STMT_SAVEPOINT', 'TRANS_STMT_RELEASE', 'TRANS_STMT_ROLLBACK_TO'];
      if (!allowed.includes(body.kind)) notForTopicUsers(ctx, 'two-phase commit');
      if (asksReadWrite(body.options)) notForTopicUsers(ctx, 'BEGIN READ WRITE');
      return forwardAsWritten(st, 'transaction');
    }
    case 'DiscardStmt':
      return forwardAsWritten(st, 'discard');
    case 'DeclareCursorStmt':
      return planTopicCursor(ctx, st);
    case 'PrepareStmt':
      return planTopicPrepare(ctx, st);
    case 'ExecuteStmt':
      return planTopicExecute(ctx, st);
    case 'FetchStmt':
    case 'ClosePortalStmt':
    case 'DeallocateStmt': {
      // Names only: what the cursor or statement reads was decided when it was declared.
      const sql = writtenExactly(writeSessionStatement(stmt as never), stmt);
      return { statement: { action: 'forward', sql, kind: 'other', returnsRows: false, topics: [], names: sessionNamesOf(stmt) }, topics: [] };
    }
    default:
      notForTopicUsers(ctx, statementName(t));
  }
}

/** Text Gatehouse wrote, refused (0A000) unless it parses back to exactly the statement decided. */
function writtenExactly(sql: string, expected: AstNode): string {
  let again: AstNode | undefined;
  try {
    const parsed = parseSqlSync(sql).statements;
    again = parsed.length === 1 ? parsed[0].stmt : undefined;
  } catch {
    again = undefined;
  }
  if (!again || !sameTree(again, expected)) {
    refuse('unsupported', '0A000', 'Gatehouse cannot write this statement back exactly as it read it; rewrite it more plainly');
  }
  return sql;
}

/** A query a Query Topics user names in DECLARE or PREPARE: only what the same SELECT may be. */
function cursorQuery(ctx: DecisionContext, query: AstNode, what: string): AstNode {
  if (nodeType(query) !== 'SelectStmt') notForTopicUsers(ctx, `${what} of ${statementName(nodeType(query))}`);
  if (query.SelectStmt.intoClause) notForTopicUsers(ctx, 'SELECT INTO');
  if (query.SelectStmt.lockingClause?.length) notForTopicUsers(ctx, 'SELECT FOR UPDATE/SHARE');
  return query;
}

/**
 * The client's text of the query inside DECLARE ... FOR <query>: the suffix after a FOR that
 * parses to exactly the query the parser read (so a FOR inside a quoted cursor name or a
 * comment cannot mislead it), or undefined.
 */
function innerQueryText(text: string, query: AstNode): string | undefined {
  // Each candidate costs a parse of the rest: a few are plenty (the DECLARE's own FOR comes
  // after the name and options), and a text made of FORs cannot make the decision quadratic.
  for (const m of [...text.matchAll(/\bfor\b/gi)].slice(0, 8)) {
    const rest = text.slice((m.index ?? 0) + m[0].length).trim();
    try {
      const parsed = parseSqlSync(rest).statements;
      if (parsed.length === 1 && sameTree(parsed[0].stmt, query)) return rest;
    } catch {
      // not here
    }
  }
  return undefined;
}

// CURSOR_OPT_* of PostgreSQL's parsenodes.h, as DeclareCursorStmt.options holds them.
const CURSOR_BINARY = 0x1;
const CURSOR_SCROLL = 0x2;
const CURSOR_NO_SCROLL = 0x4;
const CURSOR_INSENSITIVE = 0x8;
const CURSOR_ASENSITIVE = 0x10;
const CURSOR_HOLD = 0x20;
/** What the grammar adds to every DECLARE (CURSOR_OPT_FAST_PLAN): nothing to write. */
const CURSOR_FAST_PLAN = 0x100;
const CURSOR_WRITTEN = CURSOR_BINARY | CURSOR_SCROLL | CURSOR_NO_SCROLL | CURSOR_INSENSITIVE | CURSOR_ASENSITIVE | CURSOR_HOLD | CURSOR_FAST_PLAN;

function declareText(name: string, options: number, query: string): string {
  const opts = [
    options & CURSOR_BINARY ? 'BINARY' : '',
    options & CURSOR_INSENSITIVE ? 'INSENSITIVE' : '',
    options & CURSOR_ASENSITIVE ? 'ASENSITIVE' : '',
    options & CURSOR_SCROLL ? 'SCROLL' : '',
    options & CURSOR_NO_SCROLL ? 'NO SCROLL' : '',
  ].filter(Boolean);
  return `DECLARE ${quoteIdent(name)}${opts.map((o) => ` ${o}`).join('')} CURSOR${options & CURSOR_HOLD ? ' WITH HOLD' : ''} FOR ${query}`;
}

/**
 * DECLARE name CURSOR ... FOR <query>: the query decided exactly as the same SELECT (a topic
 * query rewritten and written from the AST; a catalog query on the topic catalog), the
 * DECLARE written by Gatehouse around it. A cursor over a catalog query is declared WITH HOLD
 * on the catalog: the catalog session has no transaction of the client's to live in (a
 * WITHOUT HOLD cursor outside a transaction block is an error there), and its tables are empty.
 */
function planTopicCursor(ctx: DecisionContext, st: ParsedStatement): Planned {
  const d = st.stmt.DeclareCursorStmt as AstNode;
  const options = Number(d.options ?? 0);
  if (options & ~CURSOR_WRITTEN) refuse('unsupported', '0A000', `DECLARE CURSOR option ${options} is not supported through Gatehouse`);
  const query = cursorQuery(ctx, d.query, 'DECLARE CURSOR');
  const names = sessionNamesOf(st.stmt);
  const catalog = planCatalogQuery(ctx, query, st.text);
  if (catalog) {
    const inner = innerQueryText(st.text, query);
    if (inner === undefined) refuse('unsupported', '0A000', 'Gatehouse cannot find the query of this DECLARE in its text; write the cursor name and options without the word FOR in them');
    const held = options | CURSOR_HOLD;
    const sql = writtenExactly(declareText(d.portalname, held, inner), { DeclareCursorStmt: { ...d, options: held } });
    return { statement: { action: 'catalog', kind: 'other', statement: { sql, kind: 'other', returnsRows: false }, names }, topics: [] };
  }
  const topics = rewriteTopicQuery(ctx, query);
  const sql = writtenExactly(declareText(d.portalname, options, faithfulSql(query)), st.stmt);
  return { statement: { action: 'forward', sql, kind: 'other', returnsRows: false, topics, names }, topics };
}

/** A FROM-less SELECT of these expressions: what PREPARE's types and EXECUTE's arguments must pass. */
function selectOf(exprs: AstNode[]): AstNode {
  return { SelectStmt: { targetList: exprs.map((val) => ({ ResTarget: { val } })), limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } };
}

/**
 * PREPARE name [(types)] AS <query>: the query decided as the same SELECT; declared types
 * only the built-in scalar types a cast may name (what checkParameterTypes allows a Parse).
 */
function planTopicPrepare(ctx: DecisionContext, st: ParsedStatement): Planned {
  const p = st.stmt.PrepareStmt as AstNode;
  const query = cursorQuery(ctx, p.query, 'PREPARE');
  const types: AstNode[] = p.argtypes ?? [];
  if (types.length) {
    checkTopicQuery(
      { connection: ctx.connection.name, topicsSchema: ctx.connection.topicsSchema, topics: ctx.topics },
      selectOf(types.map((typeName) => ({ TypeCast: { arg: { A_Const: { isnull: true } }, typeName: typeName.TypeName } }))) as never,
    );
  }
  const names = sessionNamesOf(st.stmt);
  const catalog = planCatalogQuery(ctx, query, st.text);
  if (catalog) {
    // The client's text, as for any catalog query (policy/catalog.ts): the catalog has nothing to hide.
    return { statement: { action: 'catalog', kind: 'other', statement: { sql: st.text, kind: 'other', returnsRows: false }, names }, topics: [] };
  }
  const topics = rewriteTopicQuery(ctx, query);
  // Written by the deparser under a placeholder name (it leaves "_PLAN0x55d" unquoted), then named.
  const placeholder = 'gatehouse_prepared';
  const body = deparseOneLine({ PrepareStmt: { ...p, name: placeholder } });
  if (!body.startsWith(`PREPARE ${placeholder}`)) refuse('unsupported', '0A000', 'Gatehouse cannot write this PREPARE back exactly as it read it');
  const sql = writtenExactly(`PREPARE ${quoteIdent(p.name)}${body.slice(`PREPARE ${placeholder}`.length)}`, st.stmt);
  return { statement: { action: 'forward', sql, kind: 'other', returnsRows: false, topics, names }, topics };
}

/**
 * EXECUTE name [(args)]: what runs was decided at PREPARE; the arguments are constants and
 * simple expressions that pass the topic allowlist as a FROM-less SELECT.
 */
function planTopicExecute(ctx: DecisionContext, st: ParsedStatement): Planned {
  const e = st.stmt.ExecuteStmt as AstNode;
  const args: AstNode[] = e.params ?? [];
  let list = '';
  let topics: string[] = [];
  let expected = st.stmt;
  if (args.length) {
    const select = selectOf(args);
    topics = rewriteTopicQuery(ctx, select);
    // A column name the rewrite gave a target (current_user keeps its name) is no argument's.
    for (const rt of select.SelectStmt.targetList) delete rt.ResTarget.name;
    const text = faithfulSql(select);
    if (!text.startsWith('SELECT ')) refuse('unsupported', '0A000', 'Gatehouse cannot write these EXECUTE arguments back exactly as it read them');
    list = ` (${text.slice('SELECT '.length)})`;
    // The arguments as rewritten (current_user answered by Gatehouse replaces its node).
    expected = { ExecuteStmt: { ...e, params: select.SelectStmt.targetList.map((rt: AstNode) => rt.ResTarget.val) } };
  }
  const sql = writtenExactly(`EXECUTE ${quoteIdent(e.name)}${list}`, expected);
  return { statement: { action: 'forward', sql, kind: 'other', returnsRows: false, topics, names: sessionNamesOf(st.stmt) }, topics };
}

/**
 * SET SESSION CHARACTERISTICS AS TRANSACTION ... READ WRITE where writes are not allowed:
 * written READ ONLY, with a notice. pgjdbc (readOnly=true, readOnlyMode=always) sends it when
 * autocommit goes off and then opens each transaction with BEGIN READ ONLY; the session's
 * default stays what Gatehouse pins. A transaction's READ WRITE (BEGIN, SET TRANSACTION)
 * is still refused: that one asks to write now.
 */
function sessionStaysReadOnly(ctx: DecisionContext, stmt: AstNode): Planned {
  const sql = writeSessionStatement(sessionReadOnly(stmt) as never);
  const notice = `connection ${ctx.connection.name} is read only for ${ctx.user}: the session's transactions stay READ ONLY (Gatehouse sent ${sql})`;
  return { statement: { action: 'forward', sql, kind: 'set', returnsRows: false, topics: [], notice }, topics: [] };
}

/** Limits the connection sets on governed sessions (topics_statement_timeout...): RESET and SHOW only. */
const GOVERNED_LIMITS: ReadonlySet<string> = new Set(['statement_timeout', 'idle_in_transaction_session_timeout']);

function settingMessage(ctx: DecisionContext, name: string, verb: string): string {
  const fixed = String(name).toLowerCase() === 'search_path' ? ' (search_path is fixed by Gatehouse)' : '';
  return `${verb} ${name} is not permitted for query_topics users on connection ${ctx.connection.name}${fixed}`;
}

/** Session statements go upstream as Gatehouse writes them from the AST, never as typed. */
function forwardAsWritten(st: ParsedStatement, kind: PlannedStatement['kind']): Planned {
  return { statement: { action: 'forward', sql: writeSessionStatement(st.stmt as never), kind, returnsRows: false, topics: [] }, topics: [] };
}

/** The rewritten tree as text, refused (0A000) unless the text parses back to the same tree. */
function faithfulSql(stmt: AstNode): string {
  const sql = deparseFaithfully(stmt, (text) => {
    try {
      const [again] = parseSqlSync(text).statements;
      return again?.stmt;
    } catch {
      return undefined;
    }
  });
  if (sql === undefined) {
    refuse('unsupported', '0A000', 'Gatehouse cannot write this statement back exactly as it read it (a construct its SQL writer does not render faithfully); rewrite the query more plainly');
  }
  return sql;
}

/**
 * A Query Topics user's query: proved by the allowlist (every node known and checked), then
 * rewritten: session identity answered by Gatehouse, topics into their barrier subqueries.
 * Returns the topics used.
 */
function rewriteTopicQuery(ctx: DecisionContext, query: AstNode): string[] {
  checkTopicQuery({ connection: ctx.connection.name, topicsSchema: ctx.connection.topicsSchema, topics: ctx.topics }, query as never);
  substituteSessionIdentity(query, { user: ctx.user, database: ctx.connection.name });
  const w = new Walker(ctx, 'topics');
  w.visit(query, undefined);
  return [...w.topicsUsed].sort();
}

// ---------------------------------------------------------------- queriers and connection admins

function planRawStatement(ctx: DecisionContext, parsed: ParsedText, st: ParsedStatement): Planned {
  const stmt = st.stmt;
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  const facts = factsOf(stmt);
  if (facts.denied) refuse('denied_statement', '42501', facts.denied);
  if (t === 'VariableSetStmt' && body.kind === 'VAR_SET_MULTI' && body.name === 'SESSION CHARACTERISTICS' && asksReadWrite(body.args) && !ctx.connection.allowWrites) {
    return sessionStaysReadOnly(ctx, stmt);
  }
  const catalogWrite = catalogWriteTarget(stmt);
  if (catalogWrite) refuse('denied_statement', '42501', `writes to PostgreSQL's catalog (${catalogWrite}) are not permitted through Gatehouse, whatever the connection allows`);
  if (facts.writes && !ctx.connection.allowWrites && !setsReadOnlyOn(stmt)) {
    refuse(
      'read_only',
      '42501',
      `writes are not permitted on connection ${ctx.connection.name} (it does not set allow_writes): ${facts.name} refused`,
    );
  }
  const w = new Walker(ctx, 'raw');
  w.visit(stmt, undefined);
  const topics = [...w.topicsUsed].sort();
  const sql = w.splices.length > 0 ? applySplices(parsed.bytes, st.byteStart, st.byteEnd, w.splices) : st.text;
  const kind = kindOf(stmt);
  const names = sessionNamesOf(stmt);
  const statement: PlannedStatement = { action: 'forward', sql, kind, returnsRows: returnsRows(stmt), topics, ...(names ? { names } : {}) };
  if (t === 'CopyStmt' && !body.is_from) {
    const opts = copyOptions(body.options, false);
    const query = body.query
      ? deparseOneLine(body.query)
      : `SELECT ${body.attlist?.length ? body.attlist.map((c: AstNode) => quoteIdent(c.String.sval)).join(', ') : '*'} FROM ${[body.relation.schemaname, body.relation.relname].filter(Boolean).map((n: string) => quoteIdent(n)).join('.')}`;
    statement.copyOut = { query, format: opts.format, header: opts.header, ...(opts.delimiter !== undefined ? { delimiter: opts.delimiter } : {}) };
  }
  return { statement, topics };
}
