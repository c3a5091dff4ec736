// The Snowflake dialect: PostgreSQL's AST (libpg-query, as decide() rewrote it) written as
// Snowflake SQL, for an allowlisted subset. Anything outside it is refused with 0A000 naming the
// construct, never guessed (DESIGN 3, "Other dialects"; sqlglot's UnsupportedError).
//
// Identifiers. PostgreSQL folds unquoted names to lower case, Snowflake to UPPER case, and the
// AST holds names after PostgreSQL's folding. The rules/ files name Snowflake objects the way
// people write them unquoted (`base: public.orders`, `fields: [id, amount]`), which on Snowflake
// are PUBLIC.ORDERS and ID, AMOUNT. So every identifier is emitted quoted, and a name made only of
// lower-case letters, digits, _ and $ (what an unquoted PostgreSQL name folds to) is emitted in
// upper case: `orders` -> "ORDERS", exactly the object an unquoted ORDERS names on Snowflake. Any
// other name (mixed case, spaces, non-ASCII: it was quoted in PostgreSQL) is emitted verbatim:
// `"Orders"` -> "Orders". Quoting every name also keeps Snowflake's reserved words out of the way.
// Consequence: an all-lower-case Snowflake object (created quoted, "orders") cannot be named; a
// topic over one needs a view with an upper-case name. Aliases follow the same rule, so an
// alias and its references always agree. The output column names a PostgreSQL client expects
// (`id`, `count`) are returned as columnNames for the connector to report, since Snowflake names
// the columns in upper case.
//
// Semantics kept, or refused:
// - String literals: Snowflake's '...' reads backslash escapes, PostgreSQL's (standard strings)
//   does not. A literal with no backslash is written '...'; one with backslashes as $$...$$ (no
//   escapes in either engine); one holding both a backslash and $$ is refused.
// - Numeric literals in exponent form (1.5e3) are numeric in PostgreSQL but FLOAT in Snowflake:
//   written out as plain decimals.
// - Division: PostgreSQL's int / int truncates, Snowflake's / is always numeric (and rounds the
//   quotient to a scale); numeric / numeric has different scales in each. Without operand types
//   the emitter cannot choose, so `/` is written only when an operand is cast to double precision
//   (IEEE division in both), and refused otherwise; `%` is refused.
// - NULL ordering: PostgreSQL sorts NULLs last ascending and first descending; Snowflake does the
//   same by default but its DEFAULT_NULL_ORDERING parameter (added 2025) can change it per
//   account or session, so NULLS FIRST/LAST is always written out.
// - OFFSET without LIMIT is written LIMIT NULL OFFSET n (both read LIMIT NULL as no limit).
// - Casts only to types with the same meaning: NUMERIC needs its precision and scale (Snowflake's
//   bare NUMBER is NUMBER(38,0), PostgreSQL's bare numeric keeps every digit); float4 (real) is
//   refused (Snowflake's REAL is a double); text dates and timestamps must be ISO literals.
// - GREATEST/LEAST (PostgreSQL ignores NULLs, Snowflake returns NULL), window functions, LATERAL,
//   NATURAL/USING joins, DISTINCT ON, recursive CTEs, INTERSECT/EXCEPT ALL: refused.
//
// The barrier. Gatehouse's topic rewrite fences the topic's derived table with OFFSET 0, which
// PostgreSQL's planner treats as a wall (never flattened, no conditions pushed in). Snowflake
// promises no such thing for a derived table: its optimizer pushes and reorders filters freely,
// and its documentation ("Pushdown Optimization and Data Visibility") says a filter may run
// before the one that hides rows. Only SECURE views (and secure UDFs, row access policies) are
// documented to keep the user's predicates from running before the view's own. OFFSET 0 means
// nothing there and is dropped. What the emitter does instead, fail-closed: when a statement
// holds a fenced derived table, every expression outside the fences may only use constructs that
// cannot raise an error from a value (no division, no cast of a non-constant except to VARCHAR),
// so a user condition evaluated early on a hidden row can filter it but cannot report it.
// Residual risk this does not close: Snowflake converts a VARCHAR column compared with a number
// to NUMBER and fails on a non-numeric value; the emitter sees no column types. A real fence on
// Snowflake is a secure view or a row access policy over the base table; the fake server (which
// runs on PostgreSQL) can prove neither, nor Snowflake's pushdown: it proves the emitted text means
// the same as the PostgreSQL statement on the same rows.
import { GatehouseError } from '../../errors.ts';
import type { AstNode } from '../parse.ts';
import type { EmittedSql as DialectEmittedSql, SqlDialect } from './types.ts';

export interface EmittedSql {
  sql: string;
  /** For each `?` in the text, in order: which PostgreSQL parameter ($n) it binds. */
  params: number[];
  /** The output column names PostgreSQL would give (undefined when a `*` cannot be expanded). */
  columnNames?: string[];
}

interface Ctx {
  params: number[];
  /** The statement holds a fenced derived table: expressions outside fences must not fail on values. */
  strict: boolean;
  inFence: boolean;
}

function unsupported(construct: string, hint?: string): never {
  throw new GatehouseError('0A000', `${construct} is not supported on Snowflake connections`, {
    hint: hint ?? 'Gatehouse writes Snowflake SQL only for a subset of PostgreSQL it can translate without changing meaning',
  });
}

/** Emits one statement node (`{ SelectStmt: ... }`). */
export function emitSnowflake(stmt: AstNode): EmittedSql {
  const sel = stmt.SelectStmt as AstNode | undefined;
  if (!sel) unsupported(`statement ${Object.keys(stmt)[0] ?? '(empty)'}`);
  const ctx: Ctx = { params: [], strict: hasFence(sel), inFence: false };
  const sql = selectStmt(sel, ctx);
  return { sql, params: ctx.params, columnNames: outputNames(sel, new Map()) };
}

/** A Snowflake identifier for a name as PostgreSQL's AST holds it (see the header). */
export function snowflakeIdent(name: string): string {
  const folded = /^[a-z_][a-z0-9_$]*$/.test(name) ? name.toUpperCase() : name;
  return `"${folded.replace(/"/g, '""')}"`;
}

/** A string literal both engines read the same way (see the header). */
export function snowflakeLiteral(value: string): string {
  if (!value.includes('\\')) return `'${value.replace(/'/g, "''")}'`;
  if (value.includes('$$') || value.endsWith('$')) unsupported('a string literal holding both a backslash and $$');
  return `$$${value}$$`;
}

function isFence(sub: AstNode): boolean {
  const s = sub.SelectStmt as AstNode | undefined;
  const off = s?.limitOffset?.A_Const;
  return !!off && !s.limitCount && off.ival !== undefined && !off.ival.ival;
}

function hasFence(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasFence);
  if (!node || typeof node !== 'object') return false;
  const n = node as AstNode;
  if (n.RangeSubselect && isFence(n.RangeSubselect.subquery)) return true;
  return Object.values(n).some(hasFence);
}

const SELECT_KEYS = new Set([
  'targetList',
  'fromClause',
  'whereClause',
  'groupClause',
  'havingClause',
  'sortClause',
  'limitCount',
  'limitOffset',
  'limitOption',
  'op',
  'withClause',
  'distinctClause',
  'all',
  'larg',
  'rarg',
]);

function selectStmt(s: AstNode, ctx: Ctx, fence = false): string {
  for (const k of Object.keys(s)) {
    if (!SELECT_KEYS.has(k)) {
      const names: Record<string, string> = {
        valuesLists: 'VALUES',
        lockingClause: 'FOR UPDATE/SHARE',
        windowClause: 'WINDOW',
        intoClause: 'SELECT INTO',
        groupDistinct: 'GROUP BY DISTINCT',
      };
      unsupported(names[k] ?? k);
    }
  }
  if (s.limitOption === 'LIMIT_OPTION_WITH_TIES') unsupported('FETCH ... WITH TIES');
  const parts: string[] = [];
  if (s.withClause) parts.push(withClause(s.withClause, ctx));
  if (s.op && s.op !== 'SETOP_NONE') {
    const op = { SETOP_UNION: 'UNION', SETOP_INTERSECT: 'INTERSECT', SETOP_EXCEPT: 'EXCEPT' }[s.op as string];
    if (!op) unsupported(`set operation ${s.op}`);
    if (s.all && op !== 'UNION') unsupported(`${op} ALL`);
    parts.push(`${setOperand(s.larg, ctx)} ${op}${s.all ? ' ALL' : ''} ${setOperand(s.rarg, ctx)}`);
  } else {
    let head = 'SELECT';
    if (s.distinctClause) {
      if (!(s.distinctClause as AstNode[]).every((d) => Object.keys(d).length === 0)) unsupported('DISTINCT ON');
      head += ' DISTINCT';
    }
    parts.push(`${head} ${((s.targetList as AstNode[] | undefined) ?? []).map((t) => target(t, ctx)).join(', ')}`);
    if (s.fromClause) parts.push(`FROM ${(s.fromClause as AstNode[]).map((f) => fromItem(f, ctx)).join(', ')}`);
    if (s.whereClause) parts.push(`WHERE ${expr(s.whereClause, ctx)}`);
    if (s.groupClause) {
      parts.push(
        `GROUP BY ${(s.groupClause as AstNode[]).map((g) => (g.GroupingSet ? unsupported('GROUPING SETS / ROLLUP / CUBE') : expr(g, ctx))).join(', ')}`,
      );
    }
    if (s.havingClause) parts.push(`HAVING ${expr(s.havingClause, ctx)}`);
  }
  if (s.sortClause) parts.push(`ORDER BY ${(s.sortClause as AstNode[]).map((x) => sortBy(x, ctx)).join(', ')}`);
  // A fence's OFFSET 0 is Gatehouse's PostgreSQL barrier marker: no meaning on Snowflake (header).
  if (!fence) {
    const count = s.limitCount ? limitValue(s.limitCount, ctx) : undefined;
    const offset = s.limitOffset ? limitValue(s.limitOffset, ctx) : undefined;
    if (count !== undefined || offset !== undefined) parts.push(`LIMIT ${count ?? 'NULL'}`);
    if (offset !== undefined) parts.push(`OFFSET ${offset}`);
  }
  return parts.join(' ');
}

function setOperand(s: AstNode, ctx: Ctx): string {
  const text = selectStmt(s, ctx);
  return s.sortClause || s.limitCount || s.limitOffset || s.withClause || (s.op && s.op !== 'SETOP_NONE') ? `(${text})` : text;
}

function limitValue(n: AstNode, ctx: Ctx): string {
  if (n.A_Const?.isnull) return 'NULL';
  if (n.A_Const?.ival !== undefined) return String(n.A_Const.ival.ival ?? 0);
  if (n.ParamRef) return param(n.ParamRef, ctx);
  return unsupported('a LIMIT or OFFSET that is not a constant or a parameter');
}

function withClause(w: AstNode, ctx: Ctx): string {
  if (w.recursive) unsupported('WITH RECURSIVE');
  const ctes = (w.ctes as AstNode[]).map((c) => {
    const cte = c.CommonTableExpr as AstNode;
    if (cte.aliascolnames) unsupported('a CTE with a column list');
    if (cte.ctematerialized && cte.ctematerialized !== 'CTEMaterializeDefault') unsupported('MATERIALIZED / NOT MATERIALIZED');
    if (!cte.ctequery?.SelectStmt) unsupported('a CTE that is not a SELECT');
    return `${snowflakeIdent(cte.ctename)} AS (${selectStmt(cte.ctequery.SelectStmt, ctx)})`;
  });
  return `WITH ${ctes.join(', ')}`;
}

function target(t: AstNode, ctx: Ctx): string {
  const r = t.ResTarget as AstNode;
  if (r.indirection) unsupported('subscripts or field selection in the select list');
  const text = expr(r.val, ctx);
  return r.name ? `${text} AS ${snowflakeIdent(r.name)}` : text;
}

function fromItem(f: AstNode, ctx: Ctx): string {
  if (f.RangeVar) {
    const v = f.RangeVar as AstNode;
    if (v.catalogname) unsupported('a database-qualified table name');
    if (v.inh === false) unsupported('ONLY');
    const name = [v.schemaname, v.relname].filter(Boolean).map(snowflakeIdent).join('.');
    return `${name}${alias(v.alias)}`;
  }
  if (f.RangeSubselect) {
    const r = f.RangeSubselect as AstNode;
    if (r.lateral) unsupported('LATERAL');
    const fence = isFence(r.subquery);
    const inner = selectStmt(r.subquery.SelectStmt, fence ? { ...ctx, inFence: true } : ctx, fence);
    return `(${inner})${alias(r.alias)}`;
  }
  if (f.JoinExpr) {
    const j = f.JoinExpr as AstNode;
    if (j.isNatural) unsupported('NATURAL JOIN');
    if (j.usingClause) unsupported('JOIN ... USING', 'write the join condition with ON');
    if (j.alias || j.join_using_alias) unsupported('an alias on a join');
    const kind = { JOIN_INNER: 'JOIN', JOIN_LEFT: 'LEFT JOIN', JOIN_RIGHT: 'RIGHT JOIN', JOIN_FULL: 'FULL JOIN' }[j.jointype as string];
    if (!kind) unsupported(`join type ${j.jointype}`);
    const left = fromItem(j.larg, ctx);
    const right = fromItem(j.rarg, ctx);
    if (!j.quals) return kind === 'JOIN' ? `${left} CROSS JOIN ${right}` : unsupported('an outer join without ON');
    return `${left} ${kind} ${right} ON ${expr(j.quals, ctx)}`;
  }
  return unsupported(`${Object.keys(f)[0]} in FROM`);
}

function alias(a: AstNode | undefined): string {
  if (!a) return '';
  if (a.colnames) unsupported('a column alias list in FROM');
  return ` AS ${snowflakeIdent(a.aliasname)}`;
}

function sortBy(x: AstNode, ctx: Ctx): string {
  const s = x.SortBy as AstNode;
  if (s.useOp) unsupported('ORDER BY ... USING');
  const desc = s.sortby_dir === 'SORTBY_DESC';
  // PostgreSQL's defaults, written out: Snowflake's can be changed by DEFAULT_NULL_ORDERING.
  const nullsFirst = s.sortby_nulls === 'SORTBY_NULLS_FIRST' || (s.sortby_nulls !== 'SORTBY_NULLS_LAST' && desc);
  return `${expr(s.node, ctx)} ${desc ? 'DESC' : 'ASC'} NULLS ${nullsFirst ? 'FIRST' : 'LAST'}`;
}

function param(p: AstNode, ctx: Ctx): string {
  ctx.params.push(Number(p.number));
  return '?';
}

const COMPARISONS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);

function expr(n: AstNode, ctx: Ctx): string {
  const kind = Object.keys(n)[0];
  const v = n[kind] as AstNode;
  switch (kind) {
    case 'ColumnRef':
      return (v.fields as AstNode[]).map((f) => (f.A_Star ? '*' : snowflakeIdent(f.String.sval))).join('.');
    case 'A_Const':
      return constant(v);
    case 'ParamRef':
      return param(v, ctx);
    case 'A_Expr':
      return aExpr(v, ctx);
    case 'BoolExpr': {
      const args = (v.args as AstNode[]).map((a) => expr(a, ctx));
      if (v.boolop === 'NOT_EXPR') return `(NOT ${args[0]})`;
      return `(${args.join(v.boolop === 'AND_EXPR' ? ' AND ' : ' OR ')})`;
    }
    case 'NullTest':
      return `(${expr(v.arg, ctx)} IS ${v.nulltesttype === 'IS_NOT_NULL' ? 'NOT ' : ''}NULL)`;
    case 'CaseExpr': {
      const whens = (v.args as AstNode[]).map((w) => `WHEN ${expr(w.CaseWhen.expr, ctx)} THEN ${expr(w.CaseWhen.result, ctx)}`);
      const els = v.defresult ? ` ELSE ${expr(v.defresult, ctx)}` : '';
      return `CASE${v.arg ? ` ${expr(v.arg, ctx)}` : ''} ${whens.join(' ')}${els} END`;
    }
    case 'CoalesceExpr':
      return `COALESCE(${(v.args as AstNode[]).map((a) => expr(a, ctx)).join(', ')})`;
    case 'TypeCast':
      return typeCast(v, ctx);
    case 'FuncCall':
      return funcCall(v, ctx);
    case 'SubLink':
      return subLink(v, ctx);
    case 'MinMaxExpr':
      return unsupported('GREATEST/LEAST', 'PostgreSQL ignores NULL arguments there and Snowflake does not');
    default:
      return unsupported(kind);
  }
}

function constant(c: AstNode): string {
  if (c.isnull) return 'NULL';
  if (c.ival !== undefined) {
    const i = Number(c.ival.ival ?? 0);
    return i < 0 ? `(${i})` : String(i);
  }
  if (c.fval !== undefined) return plainDecimal(String(c.fval.fval));
  if (c.sval !== undefined) return snowflakeLiteral(String(c.sval.sval ?? ''));
  if (c.boolval !== undefined) return c.boolval.boolval ? 'TRUE' : 'FALSE';
  return unsupported('a bit-string literal');
}

/** 1.5e3 -> 1500, 2.5E-3 -> 0.0025: a numeric literal that stays NUMBER on Snowflake. */
export function plainDecimal(text: string): string {
  const neg = text.startsWith('-');
  const m = /^-?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return unsupported(`numeric literal ${text}`);
  if (m[3] === undefined) return neg ? `(${text})` : text;
  let digits = `${m[1]}${m[2] ?? ''}`;
  let point = m[1].length + Number(m[3]);
  if (Math.abs(point) > 400) unsupported(`numeric literal ${text}`);
  if (point <= 0) {
    digits = `${'0'.repeat(1 - point)}${digits}`;
    point = 1;
  }
  if (point > digits.length) digits = digits.padEnd(point, '0');
  const intPart = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  const frac = digits.slice(point);
  const out = frac ? `${intPart}.${frac}` : intPart;
  return neg ? `(-${out})` : out;
}

function aExpr(a: AstNode, ctx: Ctx): string {
  const op = a.name?.[a.name.length - 1]?.String?.sval as string | undefined;
  if (a.name?.length > 1) unsupported(`operator ${(a.name as AstNode[]).map((x) => x.String?.sval).join('.')}`);
  switch (a.kind) {
    case 'AEXPR_OP': {
      if (!a.lexpr) {
        if (op === '-' || op === '+') return `(${op}${expr(a.rexpr, ctx)})`;
        return unsupported(`prefix operator ${op}`);
      }
      if (op && COMPARISONS.has(op)) return `(${expr(a.lexpr, ctx)} ${op === '!=' ? '<>' : op} ${expr(a.rexpr, ctx)})`;
      if (op === '+' || op === '-' || op === '*' || op === '||') return `(${expr(a.lexpr, ctx)} ${op} ${expr(a.rexpr, ctx)})`;
      if (op === '/') return division(a, ctx);
      if (op === '%') return unsupported('the % operator', 'Snowflake MOD differs from PostgreSQL % on zero divisors and types');
      return unsupported(`operator ${op}`);
    }
    case 'AEXPR_IN': {
      const items = (a.rexpr.List?.items ?? a.rexpr) as AstNode[];
      return `(${expr(a.lexpr, ctx)} ${op === '<>' ? 'NOT IN' : 'IN'} (${items.map((i) => expr(i, ctx)).join(', ')}))`;
    }
    case 'AEXPR_LIKE':
    case 'AEXPR_ILIKE': {
      const like = a.kind === 'AEXPR_ILIKE' ? 'ILIKE' : 'LIKE';
      const not = op === '!~~' || op === '!~~*';
      if (a.rexpr?.FuncCall) unsupported('LIKE ... ESCAPE');
      // PostgreSQL's LIKE escapes with backslash by default: said explicitly, as a literal both read as one backslash.
      return `(${expr(a.lexpr, ctx)} ${not ? 'NOT ' : ''}${like} ${expr(a.rexpr, ctx)} ESCAPE $$\\$$)`;
    }
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN': {
      const [lo, hi] = a.rexpr.List.items as AstNode[];
      return `(${expr(a.lexpr, ctx)} ${a.kind === 'AEXPR_NOT_BETWEEN' ? 'NOT ' : ''}BETWEEN ${expr(lo, ctx)} AND ${expr(hi, ctx)})`;
    }
    case 'AEXPR_NULLIF':
      return `NULLIF(${expr(a.lexpr, ctx)}, ${expr(a.rexpr, ctx)})`;
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT':
      return `(${expr(a.lexpr, ctx)} IS ${a.kind === 'AEXPR_NOT_DISTINCT' ? 'NOT ' : ''}DISTINCT FROM ${expr(a.rexpr, ctx)})`;
    default:
      return unsupported(`${String(a.kind).replace(/^AEXPR_/, '')} expression`);
  }
}

function isDoubleCast(n: AstNode): boolean {
  const t = n.TypeCast?.typeName;
  return !!t && ['float8', 'double precision'].includes(typeNameOf(t));
}

function division(a: AstNode, ctx: Ctx): string {
  if (ctx.strict && !ctx.inFence) {
    unsupported(
      'division in a query over topics',
      'a division by zero on a row the topic hides would be reported: Snowflake may evaluate it before the access filter',
    );
  }
  if (!isDoubleCast(a.lexpr) && !isDoubleCast(a.rexpr)) {
    unsupported(
      'division without a double precision operand',
      'cast an operand to double precision (x::float8 / y): integer and numeric division differ between PostgreSQL and Snowflake',
    );
  }
  return `(${expr(a.lexpr, ctx)} / ${expr(a.rexpr, ctx)})`;
}

function typeNameOf(t: AstNode): string {
  const names = (t.names as AstNode[]).map((x) => x.String.sval as string);
  if (names.length === 2 && names[0] !== 'pg_catalog') unsupported(`type ${names.join('.')}`);
  return names[names.length - 1];
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$/;

function typeCast(c: AstNode, ctx: Ctx): string {
  const t = c.typeName as AstNode;
  if (t.arrayBounds) unsupported('a cast to an array type');
  const name = typeNameOf(t);
  const mods = ((t.typmods ?? []) as AstNode[]).map((m) =>
    m.A_Const?.ival !== undefined ? Number(m.A_Const.ival.ival ?? 0) : unsupported('a type modifier that is not a number'),
  );
  const constantArg = !!c.arg.A_Const || !!c.arg.ParamRef;
  let target: string;
  switch (name) {
    case 'int2':
    case 'smallint':
      target = 'SMALLINT';
      break;
    case 'int4':
    case 'integer':
    case 'int':
      target = 'INTEGER';
      break;
    case 'int8':
    case 'bigint':
      target = 'BIGINT';
      break;
    case 'numeric':
    case 'decimal':
      if (mods.length === 0) unsupported('a cast to numeric without precision and scale', "Snowflake's NUMBER defaults to scale 0: write numeric(p,s)");
      target = `NUMERIC(${mods[0]},${mods[1] ?? 0})`;
      break;
    case 'float8':
    case 'double precision':
      target = 'DOUBLE PRECISION';
      break;
    case 'text':
      target = 'VARCHAR';
      break;
    case 'varchar':
      target = mods.length ? `VARCHAR(${mods[0]})` : 'VARCHAR';
      break;
    case 'bool':
    case 'boolean':
      target = 'BOOLEAN';
      break;
    case 'date':
    case 'timestamp':
    case 'timestamptz': {
      if (mods.length) unsupported(`a ${name} with a precision`);
      const lit = c.arg.A_Const?.sval?.sval as string | undefined;
      if (lit !== undefined && !(name === 'date' ? ISO_DATE : ISO_TIMESTAMP).test(lit)) {
        unsupported(`the ${name} literal '${lit}'`, 'write it in ISO form (YYYY-MM-DD[ HH:MM:SS]): the engines read other forms differently');
      }
      target = { date: 'DATE', timestamp: 'TIMESTAMP_NTZ', timestamptz: 'TIMESTAMP_LTZ' }[name];
      break;
    }
    default:
      return unsupported(`a cast to ${name}`);
  }
  if (ctx.strict && !ctx.inFence && !constantArg && target !== 'VARCHAR' && !target.startsWith('VARCHAR(')) {
    unsupported(
      `a cast of a column to ${name} in a query over topics`,
      'a failing cast on a row the topic hides would be reported: Snowflake may evaluate it before the access filter',
    );
  }
  return `CAST(${expr(c.arg, ctx)} AS ${target})`;
}

const AGGREGATES = new Set(['count', 'sum', 'avg', 'min', 'max']);
const SCALARS: Record<string, [number, number]> = { upper: [1, 1], lower: [1, 1], length: [1, 1], abs: [1, 1], round: [1, 2] };

function funcCall(f: AstNode, ctx: Ctx): string {
  const names = (f.funcname as AstNode[]).map((x) => x.String.sval as string);
  if (names.length > 2 || (names.length === 2 && names[0] !== 'pg_catalog')) unsupported(`function ${names.join('.')}`);
  const name = names[names.length - 1];
  if (f.over) unsupported(`window function ${name}`);
  if (f.agg_filter) unsupported('FILTER (WHERE ...)');
  if (f.agg_order || f.agg_within_group) unsupported(`ordered aggregate ${name}`);
  if (f.func_variadic) unsupported('VARIADIC');
  const args = (f.args ?? []) as AstNode[];
  if (AGGREGATES.has(name)) {
    if (f.agg_star) {
      if (name !== 'count') unsupported(`${name}(*)`);
      return 'COUNT(*)';
    }
    if (args.length !== 1) unsupported(`${name} with ${args.length} arguments`);
    return `${name.toUpperCase()}(${f.agg_distinct ? 'DISTINCT ' : ''}${expr(args[0], ctx)})`;
  }
  const arity = SCALARS[name];
  if (!arity) unsupported(`function ${name}`);
  if (args.length < arity[0] || args.length > arity[1] || f.agg_distinct || f.agg_star) unsupported(`${name} with these arguments`);
  if (name === 'round' && args.length === 2 && args[1].A_Const?.ival === undefined) unsupported('round with a non-constant scale');
  return `${name.toUpperCase()}(${args.map((a) => expr(a, ctx)).join(', ')})`;
}

function subLink(s: AstNode, ctx: Ctx): string {
  const sub = s.subselect?.SelectStmt as AstNode;
  switch (s.subLinkType) {
    case 'EXISTS_SUBLINK':
      return `(EXISTS (${selectStmt(sub, ctx)}))`;
    case 'EXPR_SUBLINK':
      return `(${selectStmt(sub, ctx)})`;
    case 'ANY_SUBLINK':
      if (s.operName) unsupported('op ANY (subquery)');
      return `(${expr(s.testexpr, ctx)} IN (${selectStmt(sub, ctx)}))`;
    default:
      return unsupported(`${String(s.subLinkType).replace(/_SUBLINK$/, '')} subquery`);
  }
}

// The output names PostgreSQL gives (its FigureColname), so the client sees `id`, not Snowflake's `ID`.
type Scope = Map<string, string[] | undefined>;

function outputNames(s: AstNode, ctes: Scope): string[] | undefined {
  const scope: Scope = new Map(ctes);
  for (const c of (s.withClause?.ctes ?? []) as AstNode[]) {
    const cte = c.CommonTableExpr as AstNode;
    scope.set(cte.ctename, outputNames(cte.ctequery.SelectStmt, scope));
  }
  if (s.op && s.op !== 'SETOP_NONE') return outputNames(s.larg, scope);
  const sources = new Map<string, string[] | undefined>();
  const order: string[] = [];
  const addFrom = (f: AstNode) => {
    if (f.RangeVar) {
      const key = f.RangeVar.alias?.aliasname ?? f.RangeVar.relname;
      sources.set(key, !f.RangeVar.schemaname ? scope.get(f.RangeVar.relname) : undefined);
      order.push(key);
    } else if (f.RangeSubselect) {
      const key = f.RangeSubselect.alias?.aliasname ?? '';
      sources.set(key, outputNames(f.RangeSubselect.subquery.SelectStmt, scope));
      order.push(key);
    } else if (f.JoinExpr) {
      addFrom(f.JoinExpr.larg);
      addFrom(f.JoinExpr.rarg);
    }
  };
  for (const f of (s.fromClause ?? []) as AstNode[]) addFrom(f);
  const out: string[] = [];
  for (const t of (s.targetList ?? []) as AstNode[]) {
    const r = t.ResTarget as AstNode;
    const fields = r.val?.ColumnRef?.fields as AstNode[] | undefined;
    if (fields?.[fields.length - 1].A_Star) {
      const keys = fields.length === 1 ? order : [fields[fields.length - 2].String.sval];
      for (const k of keys) {
        const cols = sources.get(k);
        if (!cols) return undefined;
        out.push(...cols);
      }
      continue;
    }
    out.push(r.name ?? figureColname(r.val));
  }
  return out;
}

function figureColname(n: AstNode): string {
  const kind = Object.keys(n)[0];
  const v = n[kind] as AstNode;
  switch (kind) {
    case 'ColumnRef': {
      const last = (v.fields as AstNode[])[v.fields.length - 1];
      return last.String?.sval ?? '?column?';
    }
    case 'FuncCall':
      return (v.funcname as AstNode[])[v.funcname.length - 1].String.sval;
    case 'TypeCast': {
      const inner = figureColname(v.arg);
      if (inner !== '?column?') return inner;
      const t = (v.typeName.names as AstNode[]).map((x) => x.String.sval as string);
      const last = t[t.length - 1];
      return { int4: 'int4', int8: 'int8', float8: 'float8', bool: 'bool', timestamptz: 'timestamptz' }[last] ?? last;
    }
    case 'CaseExpr':
      return 'case';
    case 'CoalesceExpr':
      return 'coalesce';
    case 'A_Expr':
      return v.kind === 'AEXPR_NULLIF' ? 'nullif' : '?column?';
    case 'SubLink':
      if (v.subLinkType === 'EXISTS_SUBLINK') return 'exists';
      if (v.subLinkType === 'EXPR_SUBLINK') return outputNames(v.subselect.SelectStmt, new Map())?.[0] ?? '?column?';
      return '?column?';
    default:
      return '?column?';
  }
}

/**
 * The Snowflake dialect as the decision path uses it (types.ts). No pushdown: Snowflake's
 * optimizer moves filters across a derived table whatever Gatehouse writes (see the header),
 * so the emitter's strict mode outside the fences is the rule, and a copied condition would
 * add nothing.
 */
export const snowflakeDialect: SqlDialect = {
  name: 'snowflake',
  emit(stmt: AstNode): DialectEmittedSql {
    const out = emitSnowflake(stmt);
    return { sql: out.sql, params: out.params, ...(out.columnNames ? { columns: out.columnNames.map((name) => ({ name })) } : {}) };
  },
  pushdownClass: () => undefined,
};
