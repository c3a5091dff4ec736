// decide(): the whole policy decision for one simple-Query text, pure (no I/O).
// Parse (42601 on failure), then decide every statement before any runs: one refusal
// refuses all (DESIGN 3, fail closed). Query Topics users get the topic rewrite on the
// AST, whatever the warehouse: one planning path makes the plan (the rewritten tree, its
// parameters, the topics used) and the connection's SqlDialect (src/sql/dialects) writes it
// as the warehouse's text, owning the barrier and pushdown rules of its engine; the dialect
// is part of every cache key. Queriers and connection admins get their own text, read-only
// unless the connection allows writes: on PostgreSQL with topics-schema references replaced
// by barriers, on a warehouse that does not read PostgreSQL classified in its own dialect
// (row-statements.ts).
import { LRUCache } from 'lru-cache';
import { GatehouseError, isGatehouseError } from '../errors.ts';
import type { Decision, DecisionContext, PlannedStatement } from './decision.ts';
import { type ParsedStatement, type ParsedText, type AstNode, nodeType, parseSql, parseSqlSync } from '../sql/parse.ts';
import { Refusal, refuse } from '../sql/refusal.ts';
import { Walker, statementName } from '../sql/scope.ts';
import {
  asksReadWrite,
  catalogWriteTarget,
  copyOptions,
  factsOf,
  kindOf,
  returnsRows,
  sessionNamesOf,
  sessionReadOnly,
  setsReadOnlyOn,
} from '../sql/classify.ts';
import { SETTING_ALLOWLIST, SHOW_ONLY_SETTINGS } from '../sql/functions.ts';
import { deparseOneLine, deparsePretty, quoteIdent, sameTree } from '../sql/deparse.ts';
import { applySplices } from '../sql/splice.ts';
import { planCatalogQuery } from './catalog.ts';
import { checkTopicQuery } from '../sql/allowlist.ts';
import { changesLexing, safeLiteral, writeSessionStatement } from '../sql/session-statement.ts';
import { substituteSessionIdentity } from '../sql/identity.ts';
import { type ConstantClass, type NormalizedText, type Template, fill, normalizeConstants, templateOf } from '../sql/normalize.ts';
import { planRowRawStatement, planRowRawText, planRowTopicStatement } from './row-statements.ts';
import { type Planned, notForTopicUsers } from './planned.ts';
import type { SqlDialect } from '../sql/dialects/types.ts';
import { postgresDialect } from '../sql/dialects/postgres.ts';
import { createMysqlDialect } from '../sql/dialects/mysql.ts';
import { snowflakeDialect } from '../sql/dialects/snowflake.ts';

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
/**
 * Shared decisions by (context, the class of each constant, normalised text): a template per
 * statement, or EXACT when the normalised text may not share (each text is then decided on
 * its own, as before). Weighed like the decisions above.
 */
const sharedCache = new LRUCache<string, SharedDecision | typeof EXACT>({
  max: 10_000,
  maxSize: CACHE_MAX_BYTES,
  sizeCalculation: (_d, key) => 3 * key.length + 256,
});
const EXACT = 'exact' as const;
const topicMapIds = new WeakMap<object, number>();
const contextKeys = new WeakMap<DecisionContext, string>();
let nextTopicMapId = 1;

/** A decision of a normalised text that every text of its shape shares (sql/normalize.ts). */
interface SharedDecision {
  statements: Array<{ statement: Extract<PlannedStatement, { action: 'forward' }>; template: Template }>;
  rule: string;
  topics: string[];
}

/** Tests and rule reloads may start from nothing. */
export function clearDecisionCache(): void {
  cache.clear();
  sharedCache.clear();
}

function idOf(o: object): number {
  let id = topicMapIds.get(o);
  if (id === undefined) {
    id = nextTopicMapId++;
    topicMapIds.set(o, id);
  }
  return id;
}

/**
 * The context as the caches see it, the warehouse's dialect first. A PostgreSQL session never
 * changes its DecisionContext (a new one comes with new rules): its key is made once. On a
 * warehouse that does not read PostgreSQL the emitter also depends on what is learned from the
 * warehouse after the context was made (the server's flavor, each topic's column types,
 * replaced whole when read: gateway.ts), so the key is made each time, with those in it: a
 * decision made before they were known (refused: unknown types) is not served after.
 */
function contextKey(ctx: DecisionContext): string {
  const known = contextKeys.get(ctx);
  if (known !== undefined) return known;
  const attrs = Object.keys(ctx.attributes)
    .sort()
    .map((k) => [k, ctx.attributes[k]]);
  const dialect = ctx.connection.dialect ?? 'postgres';
  if (dialect !== 'postgres') {
    const types = [...ctx.topics.values()].map((t) => (t.columnTypes ? idOf(t.columnTypes) : 0));
    return JSON.stringify([dialect, ctx.connection.flavor ?? '', ctx.org, ctx.user, ctx.level, attrs, ctx.connection, idOf(ctx.topics), types]);
  }
  const key = JSON.stringify([dialect, ctx.org, ctx.user, ctx.level, attrs, ctx.connection, idOf(ctx.topics)]);
  contextKeys.set(ctx, key);
  return key;
}

/**
 * The connection's dialect. MySQL's emitter knows each topic's base table's column types
 * (from the warehouse at start) and writes collations by the flavor; a base table in schema
 * `public` (the rules' default) is the connection's database, written unqualified.
 */
export function dialectFor(ctx: DecisionContext): SqlDialect {
  switch (ctx.connection.dialect) {
    case 'mysql':
      return createMysqlDialect({
        flavor: ctx.connection.flavor ?? 'mariadb',
        defaultSchema: 'public',
        columnTypes: (schema, table) => {
          for (const topic of ctx.topics.values()) {
            if (topic.base.table !== table) continue;
            if ((schema ?? 'public') === topic.base.schema) return topic.columnTypes;
          }
          return undefined;
        },
      });
    case 'snowflake':
      return snowflakeDialect;
    default:
      return postgresDialect;
  }
}

const CLASS_CODES: Record<ConstantClass, string> = { string: 's', int: 'i', numeric: 'n' };

function sharedKeyOf(ctxKey: string, n: NormalizedText): string {
  return `${ctxKey}\u0000${n.classes.map((c) => CLASS_CODES[c]).join('')}\u0000${n.text}`;
}

/**
 * Only PostgreSQL warehouses: the scanner reads constants as PostgreSQL's lexer does, and a
 * mysql connection's warehouse reads its text with other rules (backslash escapes, `#`
 * comments, double-quoted strings). Its texts are decided one by one.
 */
function sharesDecisions(ctx: DecisionContext): boolean {
  return ctx.connection.dialect === undefined || ctx.connection.dialect === 'postgres';
}

/**
 * Whether a text's shape shares one decision ('shared'), is decided text by text ('exact'),
 * or has not been decided yet ('unknown'): for tests and diagnostics.
 */
export function sharing(ctx: DecisionContext, sql: string): 'shared' | 'exact' | 'unknown' {
  const n = sharesDecisions(ctx) ? normalizeConstants(sql, CACHED_TEXT_MAX) : undefined;
  if (!n || n.constants.length === 0) return 'exact';
  const entry = sharedCache.get(sharedKeyOf(contextKey(ctx), n));
  return entry === undefined ? 'unknown' : entry === EXACT ? 'exact' : 'shared';
}

export async function decide(ctx: DecisionContext, sql: string): Promise<Decision> {
  const ctxKey = contextKey(ctx);
  const key = `${ctxKey}\u0000${sql}`;
  // A text seen before (a dashboard's refresh) needs no scan; a shared shape's texts are not kept here.
  const hit = cache.get(key);
  if (hit) return hit;
  const normalized = sharesDecisions(ctx) ? normalizeConstants(sql, CACHED_TEXT_MAX) : undefined;
  if (normalized && normalized.constants.length > 0) {
    const sharedKey = sharedKeyOf(ctxKey, normalized);
    const entry = sharedCache.get(sharedKey);
    if (entry === undefined) {
      const built = await decideShared(ctx, sql, normalized);
      sharedCache.set(sharedKey, built.shared ?? EXACT);
      if (!built.shared) cache.set(key, built.exact);
      return built.exact;
    }
    if (entry !== EXACT) return filled(entry, normalized.constants);
  }
  const decision = await decideUncached(ctx, sql);
  if (sql.length <= CACHED_TEXT_MAX) cache.set(key, decision);
  return decision;
}

/**
 * The first text of a normalised shape: its normalised text decided with the constants as
 * parameters, and the text itself decided exactly. The shape shares its decision only when
 * (docs/security.md, "Shared decisions"):
 * - the parameterised decision runs, every statement a SELECT, INSERT, UPDATE or DELETE
 *   forwarded plainly (no session names, no notice, no COPY): a refusal, a catalog query,
 *   an answer or a session statement is decided text by text, so a statement refused with a
 *   parameter but allowed with a constant gets its own correct decision;
 * - every $n of the forwarded SQL is found by lexing it (templateOf);
 * - this text's exact decision runs too, and the template filled with this text's constants
 *   is that decision's SQL (the same text, or the same tree): a check that the placeholders
 *   went back where the constants were, paid once per shape.
 * Why a parameterised decision holds for every constant: the extended protocol decides Parse
 * texts with $n parameters and lets any Bind value through, and a constant is a value the
 * statement's author chose, as a Bind value is.
 */
async function decideShared(ctx: DecisionContext, sql: string, n: NormalizedText): Promise<{ exact: Decision; shared?: SharedDecision }> {
  const parameterised = await decideUncached(ctx, n.text, n.classes);
  const exact = await decideUncached(ctx, sql);
  const shared = sharedDecision(parameterised, n.constants.length);
  return { exact, shared: shared && fillsExactly(shared, exact, n.constants) ? shared : undefined };
}

function sharedDecision(d: Decision, count: number): SharedDecision | undefined {
  if (d.outcome !== 'run') return undefined;
  const statements: SharedDecision['statements'] = [];
  for (const st of d.statements) {
    if (st.action !== 'forward' || st.names || st.notice || st.copyOut) return undefined;
    const template = templateOf(st.sql, count);
    if (!template) return undefined;
    statements.push({ statement: st, template });
  }
  return { statements, rule: d.rule, topics: d.topics };
}

function fillsExactly(shared: SharedDecision, exact: Decision, constants: string[]): boolean {
  if (exact.outcome !== 'run' || exact.rule !== shared.rule || exact.statements.length !== shared.statements.length) return false;
  if (exact.topics.join(',') !== shared.topics.join(',')) return false;
  return shared.statements.every(({ statement, template }, i) => {
    const e = exact.statements[i];
    if (e.action !== 'forward' || e.names || e.notice || e.copyOut || e.kind !== statement.kind || e.returnsRows !== statement.returnsRows) return false;
    if (e.topics.join(',') !== statement.topics.join(',')) return false;
    const sql = fill(template, constants);
    return sql === e.sql || sameStatement(sql, e.sql);
  });
}

function sameStatement(a: string, b: string): boolean {
  try {
    const x = parseSqlSync(a).statements;
    const y = parseSqlSync(b).statements;
    return x.length === 1 && y.length === 1 && sameTree(x[0].stmt, y[0].stmt);
  } catch {
    return false;
  }
}

/** A shared decision for one text: each statement's SQL with this text's own constants put back. */
function filled(shared: SharedDecision, constants: string[]): Decision {
  return {
    outcome: 'run',
    statements: shared.statements.map(({ statement, template }) => ({ ...statement, sql: fill(template, constants) })),
    rule: shared.rule,
    topics: shared.topics,
  };
}

/** The decision of this exact text, no cache and no sharing: what a shared decision must equal (tests). */
export async function decideExactly(ctx: DecisionContext, sql: string): Promise<Decision> {
  return decideUncached(ctx, sql);
}

/**
 * A placeholder as a direct argument of a call in SQL syntax (EXTRACT, TRIM, SUBSTRING,
 * OVERLAY, POSITION, AT TIME ZONE...): the deparser writes those calls from the text of their
 * arguments (EXTRACT('epoch' FROM x) becomes EXTRACT(EPOCH FROM x), and EXTRACT('*' FROM x)
 * something that does not read back), so what it writes for a constant there depends on the
 * value, and one value's exact decision can refuse where another's runs: never shared.
 */
function placeholderInSqlSyntaxCall(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(placeholderInSqlSyntaxCall);
  if (!node || typeof node !== 'object') return false;
  const fc = (node as AstNode).FuncCall as AstNode | undefined;
  if (fc?.funcformat === 'COERCE_SQL_SYNTAX' && (fc.args ?? []).some((a: AstNode) => a.ParamRef)) return true;
  return Object.values(node as AstNode).some(placeholderInSqlSyntaxCall);
}

/** What a shared decision may be: statements whose every constant may be a parameter. */
const SHAREABLE_STATEMENTS: ReadonlySet<string> = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);

/**
 * `constants`: the text is a normalised one whose $1..$n stand for constants of these classes
 * (decideShared): only the statements that may share are decided, and the placeholders are
 * pushed down as their literals would be.
 */
async function decideUncached(ctx: DecisionContext, sql: string, constants?: readonly ConstantClass[]): Promise<Decision> {
  if (ctx.level === 'no_access') {
    return refusal('level.no_access', new GatehouseError('42501', `${ctx.user} has no access to connection ${ctx.connection.name}`));
  }
  const dialect = dialectFor(ctx);
  let parsed: ParsedText;
  try {
    parsed = await parseSql(sql);
  } catch (e) {
    if (!(e instanceof GatehouseError)) throw e;
    // A querier's text that PostgreSQL's parser cannot read may be the warehouse's own SQL.
    if (dialect.name === 'postgres' || ctx.level === 'query_topics') return refusal('parse_error', e);
    try {
      return finish(ctx, [planRowRawText(ctx, sql)]);
    } catch (r) {
      if (r instanceof Refusal) return refusal(r.rule, r.error);
      throw r;
    }
  }
  if (parsed.statements.length === 0) return { outcome: 'empty' };
  try {
    const planned: Planned[] = [];
    for (const st of parsed.statements) {
      if (constants && (!SHAREABLE_STATEMENTS.has(nodeType(st.stmt)) || placeholderInSqlSyntaxCall(st.stmt))) {
        return refusal('not_shared', new GatehouseError('0A000', 'not a statement that shares decisions'));
      }
      const lexing = changesLexing(st.stmt as never);
      if (lexing) refuse('lexing_setting', '42501', lexing, { hint: 'remove this SET; Gatehouse keeps the warehouse session on the settings it parses with' });
      if (ctx.level === 'query_topics') planned.push(planTopicStatement(ctx, dialect, st, constants));
      else if (dialect.name === 'postgres') planned.push(planRawStatement(ctx, parsed, st, constants));
      else planned.push(planRowRawStatement(ctx, parsed, st));
    }
    return finish(ctx, planned);
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
        : ctx.level === 'query_topics'
          ? 'query_topics.session'
          : planned.some((p) => p.raw)
            ? 'raw_sql'
            : 'session';
  return { outcome: 'run', statements, rule, topics };
}

function refusal(rule: string, error: GatehouseError): Decision {
  return { outcome: 'refuse', error, rule };
}

// ---------------------------------------------------------------- Query Topics users

/**
 * A Query Topics user's statement. Queries (SELECT, EXPLAIN) take one path on every warehouse:
 * the allowlist, the rewrite (planTopicQuery), then the dialect writes the plan. The session
 * statements, COPY, cursors and SQL PREPARE that PostgreSQL reads are written for PostgreSQL
 * here, and for a warehouse that does not read it by row-statements.ts (answered by Gatehouse,
 * written in the engine's syntax, or refused).
 */
function planTopicStatement(ctx: DecisionContext, dialect: SqlDialect, st: ParsedStatement, constants?: readonly ConstantClass[]): Planned {
  const stmt = st.stmt;
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  switch (t) {
    case 'SelectStmt': {
      if (body.intoClause) notForTopicUsers(ctx, 'SELECT INTO');
      if (body.lockingClause?.length) notForTopicUsers(ctx, 'SELECT FOR UPDATE/SHARE');
      const catalog = planCatalogQuery(ctx, stmt, st.text);
      if (catalog) return { statement: catalog, topics: [] };
      const plan = planTopicQuery(ctx, dialect, stmt, constants);
      const emitted = emit(dialect, plan.ast);
      // PostgreSQL text keeps the client's $n: no placeholder order, no result columns to carry.
      const written = dialect.name === 'postgres' ? {} : { params: emitted.params, ...(emitted.columns ? { columns: emitted.columns } : {}) };
      return { statement: { action: 'forward', sql: emitted.sql, ...written, kind: 'select', returnsRows: true, topics: plan.topics }, topics: plan.topics };
    }
    case 'ExplainStmt': {
      // Answered by Gatehouse with the rewritten SQL: the warehouse's plan prints estimates
      // from whole-table statistics (DESIGN 3). EXPLAIN ANALYZE is never forwarded either.
      const q = body.query as AstNode;
      if (nodeType(q) !== 'SelectStmt') notForTopicUsers(ctx, `EXPLAIN ${statementName(nodeType(q))}`);
      if (q.SelectStmt.intoClause || q.SelectStmt.lockingClause?.length) notForTopicUsers(ctx, 'EXPLAIN of SELECT INTO or FOR UPDATE');
      const plan = planTopicQuery(ctx, dialect, q);
      // On PostgreSQL the tree pretty-printed; elsewhere the text the warehouse would get.
      const rows = dialect.name === 'postgres' ? deparsePretty(plan.ast).split('\n') : [emit(dialect, plan.ast).sql];
      return { statement: { action: 'answer', kind: 'explain', column: 'QUERY PLAN', rows, tag: 'EXPLAIN' }, topics: plan.topics };
    }
    default:
      if (dialect.name !== 'postgres') return planRowTopicStatement(ctx, st);
      return planPostgresTopicStatement(ctx, st);
  }
}

/** The session statements, COPY, cursors and SQL PREPARE of a Query Topics user on PostgreSQL. */
function planPostgresTopicStatement(ctx: DecisionContext, st: ParsedStatement): Planned {
  const stmt = st.stmt;
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  switch (t) {
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
          refuse(
            'query_topics.setting_not_allowed',
            '42501',
            `SET ${body.name} is not permitted for query_topics users on connection ${ctx.connection.name}: the connection sets it for governed sessions`,
            {
              hint: "RESET returns it to the connection's value; ask a connection admin to change topics_statement_timeout",
            },
          );
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
      const allowed = [
        'TRANS_STMT_BEGIN',
        'TRANS_STMT_START',
        'TRANS_STMT_COMMIT',
        'TRANS_STMT_ROLLBACK',
        'TRANS_STMT_SAVEPOINT',
        'TRANS_STMT_RELEASE',
        'TRANS_STMT_ROLLBACK_TO',
      ];
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
    if (inner === undefined)
      refuse(
        'unsupported',
        '0A000',
        'Gatehouse cannot find the query of this DECLARE in its text; write the cursor name and options without the word FOR in them',
      );
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

/** The rewritten tree as PostgreSQL text, refused (0A000) unless the text parses back to the same tree. */
function faithfulSql(stmt: AstNode): string {
  return emit(postgresDialect, stmt).sql;
}

/**
 * A Query Topics user's query as a plan, whatever the warehouse: the rewritten tree (the
 * client's $n parameters, or a shared decision's constants as $n, stand in it as written)
 * and the topics it reads. What a dialect writes as text.
 */
export interface TopicPlan {
  ast: AstNode;
  topics: string[];
}

/**
 * Proved by the allowlist (every node known and checked), then rewritten in place: session
 * identity answered by Gatehouse, topics into their barrier subqueries, a user's condition
 * copied inside a barrier only where the dialect's pushdown rule allows it.
 */
export function planTopicQuery(ctx: DecisionContext, dialect: SqlDialect, query: AstNode, constants?: readonly ConstantClass[]): TopicPlan {
  return { ast: query, topics: rewriteTopicQuery(ctx, query, constants, dialect) };
}

function rewriteTopicQuery(ctx: DecisionContext, query: AstNode, constants?: readonly ConstantClass[], dialect: SqlDialect = postgresDialect): string[] {
  checkTopicQuery({ connection: ctx.connection.name, topicsSchema: ctx.connection.topicsSchema, topics: ctx.topics }, query as never);
  substituteSessionIdentity(query, { user: ctx.user, database: ctx.connection.name });
  const w = new Walker(ctx, 'topics', constants, dialect.pushdownClass);
  w.visit(query, undefined);
  return [...w.topicsUsed].sort();
}

/** A plan written by the dialect; what it cannot write with the same meaning is refused (0A000), never guessed. */
function emit(dialect: SqlDialect, ast: AstNode): ReturnType<SqlDialect['emit']> {
  try {
    return dialect.emit(ast);
  } catch (e) {
    if (isGatehouseError(e)) refuse(dialect.name === 'postgres' ? 'unsupported' : 'dialect.unsupported', e.sqlstate, e.message, e.hint ? { hint: e.hint } : {});
    throw e;
  }
}

// ---------------------------------------------------------------- queriers and connection admins

function planRawStatement(ctx: DecisionContext, parsed: ParsedText, st: ParsedStatement, constants?: readonly ConstantClass[]): Planned {
  const stmt = st.stmt;
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  const facts = factsOf(stmt);
  if (facts.denied) refuse('denied_statement', '42501', facts.denied);
  if (
    t === 'VariableSetStmt' &&
    body.kind === 'VAR_SET_MULTI' &&
    body.name === 'SESSION CHARACTERISTICS' &&
    asksReadWrite(body.args) &&
    !ctx.connection.allowWrites
  ) {
    return { ...sessionStaysReadOnly(ctx, stmt), raw: true };
  }
  const catalogWrite = catalogWriteTarget(stmt);
  if (catalogWrite)
    refuse('denied_statement', '42501', `writes to PostgreSQL's catalog (${catalogWrite}) are not permitted through Gatehouse, whatever the connection allows`);
  if (facts.writes && !ctx.connection.allowWrites && !setsReadOnlyOn(stmt)) {
    refuse('read_only', '42501', `writes are not permitted on connection ${ctx.connection.name} (it does not set allow_writes): ${facts.name} refused`);
  }
  const w = new Walker(ctx, 'raw', constants);
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
      : `SELECT ${body.attlist?.length ? body.attlist.map((c: AstNode) => quoteIdent(c.String.sval)).join(', ') : '*'} FROM ${[
          body.relation.schemaname,
          body.relation.relname,
        ]
          .filter(Boolean)
          .map((n: string) => quoteIdent(n))
          .join('.')}`;
    statement.copyOut = { query, format: opts.format, header: opts.header, ...(opts.delimiter !== undefined ? { delimiter: opts.delimiter } : {}) };
  }
  return { statement, topics, raw: true };
}
