// The MySQL/MariaDB dialect: our own emitter from PostgreSQL's tree (DESIGN 3, "Other
// dialects") for an allowlisted subset. Every node kind, operator, function and cast it
// does not know is refused with 0A000 naming it; where MySQL would give another answer
// (integer division, NULL ordering, case-insensitive and PAD SPACE collations, `||`,
// GREATEST with NULLs...) it writes PostgreSQL's meaning or refuses. Written for the session
// of mysql-session.ts; literals read the same whatever the sql_mode (mysql-text.ts).
//
// The barrier: a topic's derived table `(SELECT ... FROM base WHERE filters OFFSET 0)` is
// written with `LIMIT 18446744073709551615`, which MariaDB and MySQL neither merge into the
// outer query nor push conditions into (the session's optimizer_switch turns both off as
// well). A warehouse table may be read only inside such a derived table.
import type { AstNode } from '../parse.ts';
import { GatehouseError } from '../../errors.ts';
import { postgresPushdownClass } from '../topic.ts';
import { baseName, outputName, sqlTypeOf } from './columns.ts';
import { TEXT_COLLATION, type MysqlFlavor } from './mysql-session.ts';
import { type ColumnTypes, Scope } from './mysql-scope.ts';
import { emitFunction } from './mysql-functions.ts';
import { category, DATETIME, type Expr, type ExprWriter, intConst, isInt, isNumeric } from './mysql-ast.ts';
import { boolLiteral, dateLiteral, intervalLiteral, numberLiteral, quoteIdent, quoteString, TextError, timestampLiteral } from './mysql-text.ts';
import { type EmittedColumn, type EmittedSql, type SqlDialect, type SqlType, unsupported } from './types.ts';

export interface MysqlDialectOptions {
  flavor?: MysqlFlavor;
  /**
   * The PostgreSQL type names of a warehouse table's columns (from the connector's catalog),
   * or undefined when unknown: a topic whose columns are unknown is refused, since its text
   * columns must be read with PostgreSQL's collation.
   */
  columnTypes?: (schema: string | undefined, table: string) => Record<string, string> | undefined;
  /**
   * The schema that stands for the connection's own database (the rules' default, `public`):
   * a table in it is written unqualified, so it resolves in the session's database.
   */
  defaultSchema?: string;
}

/** The largest LIMIT: "all rows", and a fence MySQL/MariaDB do not merge or push into. */
export const BARRIER_LIMIT = '18446744073709551615';

const COMPARISONS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);

export class MysqlWriter implements ExprWriter {
  readonly flavor: MysqlFlavor;
  private readonly columnTypes: MysqlDialectOptions['columnTypes'];
  private subqueries = 0;

  constructor(opts: MysqlDialectOptions) {
    this.flavor = opts.flavor ?? 'mariadb';
    this.columnTypes = opts.columnTypes;
  }

  fail(construct: string): never {
    throw unsupported('mysql', construct);
  }

  ident(name: string): string {
    try {
      return quoteIdent(name);
    } catch (e) {
      if (e instanceof TextError) this.fail(e.message);
      throw e;
    }
  }

  string(value: string): string {
    try {
      return quoteString(value, this.flavor);
    } catch (e) {
      if (e instanceof TextError) this.fail(e.message);
      throw e;
    }
  }

  // ---- statements -------------------------------------------------------------------

  statement(stmt: AstNode): { sql: string; columns: EmittedColumn[] | undefined } {
    if (!stmt.SelectStmt) this.fail(`${Object.keys(stmt)[0] ?? 'this kind of'} statements`);
    return this.select(stmt.SelectStmt, undefined);
  }

  /** One SELECT (or set operation) at a new query level whose outer level is `outer`. */
  select(sel: AstNode, outer: Scope | undefined, renames?: string[]): { sql: string; columns: EmittedColumn[] | undefined } {
    const scope = new Scope(outer);
    let withSql = '';
    if (sel.withClause) withSql = this.withClause(sel.withClause, scope);
    if (sel.op && sel.op !== 'SETOP_NONE') {
      if (renames) this.fail('column aliases on a derived table of a set operation');
      const r = this.setOperation(sel, scope);
      return { sql: withSql + r.sql, columns: r.columns };
    }
    this.checkSelectClauses(sel);
    const barrier = isBarrier(sel);
    const from = (sel.fromClause as AstNode[] | undefined)?.map((f) => this.fromItem(f, scope, barrier)) ?? [];
    const targets = this.targetList(sel.targetList ?? [], scope, renames);
    let sql = `${withSql}SELECT ${sel.distinctClause ? 'DISTINCT ' : ''}${targets.sql}`;
    if (from.length) sql += ` FROM ${from.join(', ')}`;
    if (sel.whereClause) sql += `${from.length ? '' : ' FROM DUAL'} WHERE ${this.bool(sel.whereClause, scope)}`;
    if (sel.groupClause) sql += ` GROUP BY ${(sel.groupClause as AstNode[]).map((g) => this.groupItem(g, scope, sel)).join(', ')}`;
    if (sel.havingClause) sql += ` HAVING ${this.bool(sel.havingClause, scope)}`;
    if (sel.sortClause) {
      const keys = this.orderBy(sel.sortClause, sel.targetList ?? [], scope, targets.names);
      if (keys) sql += ` ORDER BY ${keys}`;
    }
    sql += this.limit(sel);
    return { sql, columns: targets.columns };
  }

  private checkSelectClauses(sel: AstNode): void {
    if (sel.intoClause) this.fail('SELECT INTO');
    if (sel.lockingClause) this.fail('FOR UPDATE/FOR SHARE');
    if (sel.windowClause) this.fail('window functions');
    if (sel.valuesLists) this.fail('VALUES lists');
    if (sel.limitOption === 'LIMIT_OPTION_WITH_TIES') this.fail('FETCH ... WITH TIES');
    const d = sel.distinctClause as AstNode[] | undefined;
    if (d && !(d.length === 1 && Object.keys(d[0] ?? {}).length === 0)) this.fail('DISTINCT ON');
  }

  private withClause(w: AstNode, scope: Scope): string {
    if (w.recursive) this.fail('WITH RECURSIVE');
    const parts: string[] = [];
    for (const c of w.ctes as AstNode[]) {
      const cte = c.CommonTableExpr;
      if (!cte) this.fail('this WITH item');
      if (cte.ctematerialized && cte.ctematerialized !== 'CTEMaterializeDefault') this.fail('MATERIALIZED/NOT MATERIALIZED');
      if (cte.search_clause || cte.cycle_clause) this.fail('SEARCH/CYCLE');
      if (!cte.ctequery?.SelectStmt) this.fail('a data-modifying WITH');
      const colnames = (cte.aliascolnames as AstNode[] | undefined)?.map((n) => n.String.sval as string);
      // Earlier CTEs of this WITH are visible to later ones (not recursive): the same scope.
      const inner = this.select(cte.ctequery.SelectStmt, scope);
      scope.ctes.set(cte.ctename, renameColumns(columnMap(inner.columns), colnames));
      const cols = colnames ? ` (${colnames.map((n) => this.ident(n)).join(', ')})` : '';
      parts.push(`${this.ident(cte.ctename)}${cols} AS (${inner.sql})`);
    }
    return `WITH ${parts.join(', ')} `;
  }

  private setOperation(sel: AstNode, scope: Scope): { sql: string; columns: EmittedColumn[] | undefined } {
    const ops: Record<string, string> = { SETOP_UNION: 'UNION' };
    const op = ops[sel.op];
    if (!op) this.fail(sel.op === 'SETOP_INTERSECT' ? 'INTERSECT' : 'EXCEPT');
    const branch = (b: AstNode, right: boolean): { sql: string; columns: EmittedColumn[] | undefined } => {
      // Branches see the WITH of the set operation (this level has no relations of its own).
      const r = this.select(b, scope);
      // Left-nested set operations associate alike in both engines; a right-nested one, or a
      // branch with its own ORDER BY/LIMIT, keeps its parentheses.
      const paren = (right && b.op && b.op !== 'SETOP_NONE') || b.sortClause || b.limitCount || b.limitOffset || b.withClause;
      return { sql: paren ? `(${r.sql})` : r.sql, columns: r.columns };
    };
    const l = branch(sel.larg, false);
    const r = branch(sel.rarg, true);
    let sql = `${l.sql} ${op}${sel.all ? ' ALL' : ''} ${r.sql}`;
    const columns = l.columns;
    if (sel.sortClause || sel.limitCount || sel.limitOffset) {
      // Sort and limit the union's result by output column, as PostgreSQL does.
      const alias = `gh_set_${++this.subqueries}`;
      const keys = (sel.sortClause as AstNode[] | undefined)?.map((s) => {
        const sb = s.SortBy;
        const name = this.setOutputColumn(sb.node, columns);
        const col = columns?.find((c) => c.name === name);
        return this.nullsOrdered(`${this.ident(alias)}.${this.ident(name)}`, sb, col?.type);
      });
      sql = `SELECT * FROM (${sql}) AS ${this.ident(alias)}${keys ? ` ORDER BY ${keys.join(', ')}` : ''}${this.limit(sel)}`;
    }
    return { sql, columns };
  }

  private setOutputColumn(node: AstNode, columns: EmittedColumn[] | undefined): string {
    if (!columns) this.fail('ORDER BY over a set operation whose columns are not known (SELECT *)');
    const k = intConst(node);
    if (k !== undefined) {
      const c = columns[k - 1];
      if (!c) this.fail(`ORDER BY position ${k}`);
      return c.name;
    }
    const f = node.ColumnRef?.fields as AstNode[] | undefined;
    if (f?.length === 1 && f[0]?.String) {
      const name = f[0].String.sval as string;
      if (columns.filter((c) => c.name === name).length === 1) return name;
    }
    return this.fail('ORDER BY of a set operation other than by an output column');
  }

  private limit(sel: AstNode): string {
    const count = sel.limitCount as AstNode | undefined;
    const offset = sel.limitOffset as AstNode | undefined;
    const value = (n: AstNode | undefined, what: string): string | undefined => {
      if (!n || n.A_Const?.isnull) return undefined;
      const k = intConst(n);
      if (k !== undefined && k >= 0) return String(k);
      if (n.ParamRef) return paramToken(n.ParamRef);
      return this.fail(`${what} other than a non-negative integer or a parameter`);
    };
    const c = value(count, 'LIMIT');
    const o = value(offset, 'OFFSET');
    if (c === undefined && o === undefined) return '';
    return ` LIMIT ${c ?? BARRIER_LIMIT}${o !== undefined ? ` OFFSET ${o}` : ''}`;
  }

  // ---- FROM -------------------------------------------------------------------------

  /** Adds the item's relations to `scope` and returns its text. */
  private fromItem(node: AstNode, scope: Scope, barrier: boolean): string {
    if (node.RangeVar) return this.rangeVar(node.RangeVar, scope, barrier);
    if (node.RangeSubselect) {
      const rs = node.RangeSubselect;
      if (rs.lateral) this.fail('LATERAL');
      if (!rs.subquery?.SelectStmt) this.fail('this kind of subquery in FROM');
      const name = (rs.alias?.aliasname as string | undefined) ?? `gh_subquery_${++this.subqueries}`;
      const renames = (rs.alias?.colnames as AstNode[] | undefined)?.map((n) => n.String.sval as string);
      // A subquery in FROM sees the outer levels and this level's CTEs, not its siblings.
      const view = new Scope(scope.parent);
      for (const [k, v] of scope.ctes) view.ctes.set(k, v);
      const inner = this.select(rs.subquery.SelectStmt, view, renames);
      scope.items.push({ name, columns: columnMap(inner.columns), base: false });
      return `(${inner.sql}) AS ${this.ident(name)}`;
    }
    if (node.JoinExpr) {
      const j = node.JoinExpr;
      if (j.isNatural) this.fail('NATURAL JOIN');
      if (j.alias || j.join_using_alias) this.fail('an alias on a JOIN');
      const kinds: Record<string, string> = { JOIN_INNER: 'JOIN', JOIN_LEFT: 'LEFT JOIN', JOIN_RIGHT: 'RIGHT JOIN' };
      const kind = kinds[j.jointype];
      if (!kind) this.fail(j.jointype === 'JOIN_FULL' ? 'FULL JOIN' : `the join ${j.jointype}`);
      const l = this.fromItem(j.larg, scope, barrier);
      const r = this.fromItem(j.rarg, scope, barrier);
      if (j.usingClause) {
        const cols = (j.usingClause as AstNode[]).map((n) => this.ident(n.String.sval)).join(', ');
        return `(${l} ${kind} ${r} USING (${cols}))`;
      }
      if (!j.quals) return `(${l} CROSS JOIN ${r})`;
      return `(${l} ${kind} ${r} ON ${this.bool(j.quals, scope)})`;
    }
    return this.fail(`${Object.keys(node)[0]} in FROM`);
  }

  private rangeVar(rv: AstNode, scope: Scope, barrier: boolean): string {
    if (rv.catalogname) this.fail('a relation name with a database part');
    const name = (rv.alias?.aliasname as string | undefined) ?? rv.relname;
    if (rv.alias?.colnames) this.fail('column aliases on a table reference');
    const cte = rv.schemaname ? null : scope.cte(rv.relname);
    // Inside a barrier the name is the warehouse table; MySQL would read a WITH query of the
    // same name instead (the topic would then filter the user's own rows).
    if (cte && barrier) this.fail(`a WITH query named ${rv.relname}, like the table a topic reads`);
    if (cte) {
      scope.items.push({ name, columns: cte.columns, base: false });
      return rv.alias ? `${this.ident(rv.relname)} AS ${this.ident(name)}` : this.ident(rv.relname);
    }
    // A warehouse table is read only inside a topic's barrier (Gatehouse's rewrite puts it there).
    if (!barrier) this.fail(`reading the table ${rv.relname} outside a topic's derived table`);
    const declared = this.columnTypes?.(rv.schemaname, rv.relname);
    if (!declared) this.fail(`the table ${rv.relname}, whose column types Gatehouse does not know`);
    const columns: ColumnTypes = new Map(Object.entries(declared).map(([c, t]) => [c, sqlTypeOf(t)]));
    scope.items.push({ name, columns, base: true });
    const rel = rv.schemaname ? `${this.ident(rv.schemaname)}.${this.ident(rv.relname)}` : this.ident(rv.relname);
    return rv.alias ? `${rel} AS ${this.ident(name)}` : rel;
  }

  // ---- select list, GROUP BY, ORDER BY ---------------------------------------------

  private targetList(list: AstNode[], scope: Scope, renames?: string[]): { sql: string; columns: EmittedColumn[] | undefined; names: string[] } {
    if (list.length === 0) this.fail('a SELECT without columns');
    const parts: string[] = [];
    const names: string[] = [];
    let columns: EmittedColumn[] | undefined = [];
    list.forEach((t, i) => {
      const rt = t.ResTarget;
      if (rt.indirection) this.fail('assignment indirection');
      const fields = rt.val?.ColumnRef?.fields as AstNode[] | undefined;
      if (fields?.[fields.length - 1]?.A_Star) {
        if (renames) this.fail('column aliases on a derived table selecting *');
        parts.push(this.star(fields, scope));
        const expanded = this.starColumns(fields, scope);
        columns = columns && expanded ? [...columns, ...expanded] : undefined;
        names.push('*');
        return;
      }
      const name = renames?.[i] ?? outputName(t);
      const e = this.expr(rt.val, scope);
      const type = e.type === 'untyped' ? 'text' : e.type;
      parts.push(`${e.sql} AS ${this.ident(name)}`);
      names.push(name);
      const oid = castOid(rt.val);
      columns?.push({ name, type, ...(oid ? { oid } : {}) });
    });
    return { sql: parts.join(', '), columns, names };
  }

  private star(fields: AstNode[], scope: Scope): string {
    if (fields.length > 2) this.fail('a three-part column reference');
    const items = fields.length === 2 ? scope.items.filter((i) => i.name === fields[0].String?.sval) : scope.items;
    if (items.length === 0) this.fail(fields.length === 2 ? `${fields[0].String?.sval}.* of an unknown relation` : 'SELECT * without FROM');
    // A warehouse table's text columns need the collation: they are listed by name instead.
    if (items.some((i) => i.base)) this.fail("* over a warehouse table (list the topic's fields)");
    return fields.length === 2 ? `${this.ident(fields[0].String.sval)}.*` : '*';
  }

  private starColumns(fields: AstNode[], scope: Scope): EmittedColumn[] | undefined {
    const items = fields.length === 2 ? scope.items.filter((i) => i.name === fields[0].String?.sval) : scope.items;
    const out: EmittedColumn[] = [];
    for (const i of items) {
      if (!i.columns) return undefined;
      for (const [name, type] of i.columns) out.push({ name, type });
    }
    return out;
  }

  private groupItem(g: AstNode, scope: Scope, sel: AstNode): string {
    if (g.GroupingSet) this.fail('GROUPING SETS, ROLLUP and CUBE');
    const k = intConst(g);
    if (k !== undefined) {
      // Both engines read GROUP BY <n> as the n-th output column; with * the count is of expanded columns.
      const targets = sel.targetList as AstNode[];
      if (hasStar(targets)) this.fail('GROUP BY position with * in the select list');
      if (!targets[k - 1]) this.fail(`GROUP BY position ${k}`);
      return String(k);
    }
    return this.expr(g, scope).sql;
  }

  private orderBy(sorts: AstNode[], targets: AstNode[], scope: Scope, names: string[]): string {
    const keys: string[] = [];
    for (const s of sorts) {
      const sb = s.SortBy;
      if (sb.useOp) this.fail('ORDER BY ... USING');
      const e = this.sortKey(sb.node, targets, scope, names);
      if (e) keys.push(this.nullsOrdered(e.sql, sb, e.type));
    }
    return keys.join(', ');
  }

  /** PostgreSQL reads an ORDER BY position or bare output name as that output column. */
  private sortKey(node: AstNode, targets: AstNode[], scope: Scope, names: string[]): Expr | undefined {
    // A constant output column sorts nothing; written out, MySQL would read `0` as a position.
    const key = (val: AstNode): Expr | undefined => (val.A_Const || val.TypeCast?.arg?.A_Const ? undefined : this.expr(val, scope));
    const k = intConst(node);
    if (k !== undefined) {
      // With * a position counts the expanded columns: refused rather than counted by Gatehouse.
      if (hasStar(targets)) this.fail('ORDER BY position with * in the select list');
      const t = targets[k - 1];
      if (!t) this.fail(`ORDER BY position ${k}`);
      return key(t.ResTarget.val);
    }
    const f = node.ColumnRef?.fields as AstNode[] | undefined;
    if (f?.length === 1 && f[0]?.String) {
      const i = names.indexOf(f[0].String.sval);
      if (i >= 0) return key(targets[i]!.ResTarget.val);
    }
    if (node.A_Const) this.fail('ORDER BY a constant other than a position');
    // MySQL resolves names in an ORDER BY expression against the select list's aliases
    // first, PostgreSQL against the input columns only: refuse where the two could differ.
    for (const ref of columnRefs(node)) {
      const i = names.indexOf(ref);
      if (i < 0) continue;
      const tf = targets[i]?.ResTarget?.val?.ColumnRef?.fields as AstNode[] | undefined;
      if (!(tf?.length === 1 && tf[0]?.String?.sval === ref)) this.fail(`an ORDER BY expression using ${ref}, which is also an output column's name`);
    }
    return this.expr(node, scope);
  }

  /** PostgreSQL sorts NULLs last ascending and first descending; MySQL the other way round. */
  nullsOrdered(key: string, sb: AstNode, _type: SqlType | undefined): string {
    const desc = sb.sortby_dir === 'SORTBY_DESC';
    if (sb.sortby_dir !== 'SORTBY_DEFAULT' && sb.sortby_dir !== 'SORTBY_ASC' && !desc) this.fail(`ORDER BY ${sb.sortby_dir}`);
    const nullsFirst = sb.sortby_nulls === 'SORTBY_NULLS_FIRST' || (desc && sb.sortby_nulls !== 'SORTBY_NULLS_LAST');
    return `(${key}) IS NULL${nullsFirst ? ' DESC' : ''}, ${key}${desc ? ' DESC' : ''}`;
  }

  // ---- expressions ------------------------------------------------------------------

  /** A condition (WHERE, ON, HAVING): must be boolean. */
  bool(node: AstNode, scope: Scope): string {
    const e = this.coerce(node, scope, 'bool');
    if (e.type !== 'bool') this.fail(`a condition of type ${e.type ?? 'unknown'}`);
    return e.sql;
  }

  /** An expression; an untyped literal or parameter takes `want` when given. */
  coerce(node: AstNode, scope: Scope, want: SqlType | undefined): Expr {
    if (want && want !== 'untyped') {
      if (node.A_Const?.sval) return { sql: this.literalAs(node.A_Const.sval.sval, want), type: want };
      if (node.A_Const?.isnull) return { sql: 'NULL', type: want };
      if (node.ParamRef) return { sql: paramToken(node.ParamRef), type: want };
    }
    return this.expr(node, scope);
  }

  /** A quoted literal read as PostgreSQL reads it for a column of type `t`. */
  literalAs(text: string, t: SqlType): string {
    const bad = (): never => this.fail(`the literal '${text}' as ${t}`);
    switch (t) {
      case 'text':
        return this.string(text);
      case 'int':
      case 'int8':
        return numberLiteral(text, true) ?? bad();
      case 'numeric':
      case 'float':
        return numberLiteral(text, false) ?? bad();
      case 'date':
        return dateLiteral(text) ?? bad();
      case 'timestamp':
      case 'timestamptz':
        return timestampLiteral(text) ?? bad();
      case 'bool':
        return boolLiteral(text) ?? bad();
      case 'interval':
        return intervalLiteral(text) ?? bad();
      default:
        return bad();
    }
  }

  expr(node: AstNode, scope: Scope): Expr {
    const kind = Object.keys(node)[0];
    const n = node[kind as string];
    switch (kind) {
      case 'ColumnRef':
        return this.columnRef(n, scope);
      case 'A_Const':
        return this.constant(n);
      case 'ParamRef':
        return { sql: paramToken(n), type: 'untyped' };
      case 'TypeCast':
        return this.cast(n, scope);
      case 'A_Expr':
        return this.aExpr(n, scope);
      case 'BoolExpr': {
        const args = (n.args as AstNode[]).map((a) => this.bool(a, scope));
        if (n.boolop === 'NOT_EXPR') return { sql: `(NOT ${args[0]})`, type: 'bool' };
        return { sql: `(${args.join(n.boolop === 'AND_EXPR' ? ' AND ' : ' OR ')})`, type: 'bool' };
      }
      case 'NullTest': {
        if (n.argisrow) this.fail('IS NULL on a row');
        const a = this.expr(n.arg, scope);
        return { sql: `(${a.sql} IS ${n.nulltesttype === 'IS_NOT_NULL' ? 'NOT ' : ''}NULL)`, type: 'bool' };
      }
      case 'BooleanTest': {
        const tests: Record<string, string> = {
          IS_TRUE: 'IS TRUE',
          IS_NOT_TRUE: 'IS NOT TRUE',
          IS_FALSE: 'IS FALSE',
          IS_NOT_FALSE: 'IS NOT FALSE',
          IS_UNKNOWN: 'IS NULL',
          IS_NOT_UNKNOWN: 'IS NOT NULL',
        };
        return { sql: `(${this.bool(n.arg, scope)} ${tests[n.booltesttype] ?? this.fail(n.booltesttype)})`, type: 'bool' };
      }
      case 'CaseExpr':
        return this.caseExpr(n, scope);
      case 'CoalesceExpr': {
        const args = n.args as AstNode[];
        const type = this.commonType(args, scope, 'COALESCE');
        return { sql: `COALESCE(${args.map((a) => this.coerce(a, scope, type).sql).join(', ')})`, type };
      }
      case 'FuncCall':
        return emitFunction(this, n, scope);
      case 'SubLink':
        return this.subLink(n, scope);
      case 'SQLValueFunction': {
        if (n.op === 'SVFOP_CURRENT_DATE') return { sql: 'CURRENT_DATE', type: 'date' };
        if (n.op === 'SVFOP_CURRENT_TIMESTAMP') return { sql: 'CURRENT_TIMESTAMP(6)', type: 'timestamptz' };
        if (n.op === 'SVFOP_LOCALTIMESTAMP') return { sql: 'CURRENT_TIMESTAMP(6)', type: 'timestamp' };
        return this.fail(`the function ${outputName({ val: node })}`);
      }
      case 'MinMaxExpr':
        // MySQL's GREATEST/LEAST return NULL when any argument is NULL; PostgreSQL's skip NULLs.
        return this.fail(n.op === 'IS_GREATEST' ? 'GREATEST' : 'LEAST');
      case 'CollateClause':
        return this.fail('COLLATE');
      default:
        return this.fail(`the expression ${kind}`);
    }
  }

  private columnRef(n: AstNode, scope: Scope): Expr {
    const fields = (n.fields as AstNode[]).map((f) => (f.String ? (f.String.sval as string) : this.fail('* inside an expression')));
    if (fields.length > 2) this.fail('a three-part column reference');
    const r = scope.resolve(fields);
    if (r === 'missing') this.fail(`the column ${fields.join('.')}, which no relation of the query has`);
    const sql = fields.map((f) => this.ident(f)).join('.');
    if (r === 'unknown') return { sql, type: undefined };
    if (r.base) {
      if (!r.type) this.fail(`the column ${fields.join('.')}, whose type Gatehouse does not know`);
      // PostgreSQL compares text by code point with case and trailing spaces significant.
      if (r.type === 'text') return { sql: `(CONVERT(${sql} USING utf8mb4) COLLATE ${TEXT_COLLATION[this.flavor]})`, type: 'text' };
    }
    return { sql, type: r.type };
  }

  private constant(n: AstNode): Expr {
    if (n.isnull) return { sql: 'NULL', type: 'untyped' };
    if (n.ival) {
      const v = Number(n.ival.ival ?? 0);
      return { sql: v < 0 ? `(${v})` : String(v), type: 'int' };
    }
    if (n.fval) {
      const text = String(n.fval.fval);
      // PostgreSQL reads 1e3 as numeric; MySQL as a double: refuse rather than change the type.
      if (!/^-?(\d+\.?\d*|\.\d+)$/.test(text)) this.fail(`the number ${text} in exponent notation`);
      // An integer literal beyond int4 is int8 in PostgreSQL, beyond int8 numeric.
      const int8 = !/[.]/.test(text) && BigInt(text) <= 9223372036854775807n && BigInt(text) >= -9223372036854775808n;
      const type: SqlType = int8 ? 'int8' : 'numeric';
      return { sql: text.startsWith('-') ? `(${text})` : text, type };
    }
    if (n.boolval) return { sql: n.boolval.boolval ? 'TRUE' : 'FALSE', type: 'bool' };
    if (n.sval) return { sql: this.string(n.sval.sval), type: 'untyped' };
    return this.fail('bit-string literals');
  }

  /** The type a list of expressions (COALESCE, CASE results) resolves to, as PostgreSQL picks it. */
  commonType(nodes: AstNode[], scope: Scope, what: string): SqlType {
    const types = nodes.map((a) => this.expr(a, scope).type);
    if (types.some((t) => t === undefined)) this.fail(`${what} over an expression of unknown type`);
    const known = types.filter((t) => t !== 'untyped') as SqlType[];
    if (known.length === 0) return 'text';
    const cats = new Set(known.map(category));
    if (cats.size > 1) this.fail(`${what} mixing ${[...cats].join(' and ')}`);
    if (cats.has('number')) {
      if (known.includes('float')) return 'float';
      if (known.includes('numeric')) return 'numeric';
      return known.includes('int8') ? 'int8' : 'int';
    }
    if (cats.has('datetime')) {
      if (new Set(known).size > 1) this.fail(`${what} mixing ${[...new Set(known)].join(' and ')}`);
    }
    return known[0]!;
  }

  private caseExpr(n: AstNode, scope: Scope): Expr {
    const whens = n.args as AstNode[];
    const results = [...whens.map((w) => w.CaseWhen.result as AstNode), ...(n.defresult ? [n.defresult] : [])];
    const type = this.commonType(results, scope, 'CASE');
    const parts = whens.map((w) => {
      // CASE x WHEN v: written as CASE WHEN x = v so the comparison follows PostgreSQL's rules.
      const cond = n.arg ? this.comparison('=', n.arg, w.CaseWhen.expr, scope) : this.bool(w.CaseWhen.expr, scope);
      return `WHEN ${cond} THEN ${this.coerce(w.CaseWhen.result, scope, type).sql}`;
    });
    const def = n.defresult ? ` ELSE ${this.coerce(n.defresult, scope, type).sql}` : '';
    return { sql: `(CASE ${parts.join(' ')}${def} END)`, type };
  }

  /** `l op r` for a comparison operator, with both sides of one PostgreSQL type family. */
  comparison(op: string, lnode: AstNode, rnode: AstNode, scope: Scope): string {
    const [l, r] = this.pair(lnode, rnode, scope, `the comparison ${op}`);
    if (l.type === 'interval') this.fail('comparing intervals');
    return `(${l.sql} ${op === '!=' ? '<>' : op} ${r.sql})`;
  }

  /** Both operands, untyped ones read as the other's type; refused when the families differ. */
  pair(lnode: AstNode, rnode: AstNode, scope: Scope, what: string): [Expr, Expr] {
    let l = this.expr(lnode, scope);
    let r = this.expr(rnode, scope);
    if (l.type === undefined || r.type === undefined) this.fail(`${what} on an operand of unknown type`);
    if (l.type === 'untyped' && r.type === 'untyped') {
      l = this.coerce(lnode, scope, 'text');
      r = this.coerce(rnode, scope, 'text');
    } else if (l.type === 'untyped') l = this.coerce(lnode, scope, r.type);
    else if (r.type === 'untyped') r = this.coerce(rnode, scope, l.type);
    if (category(l.type!) !== category(r.type!)) this.fail(`${what} between ${l.type} and ${r.type}`);
    return [l, r];
  }

  private aExpr(a: AstNode, scope: Scope): Expr {
    const op = a.name?.length === 1 ? (a.name[0].String?.sval as string) : undefined;
    switch (a.kind) {
      case 'AEXPR_OP': {
        if (!op) this.fail('a schema-qualified operator');
        if (!a.lexpr) return this.unary(op, a.rexpr, scope);
        if (COMPARISONS.has(op)) return { sql: this.comparison(op, a.lexpr, a.rexpr, scope), type: 'bool' };
        if (op === '||') return this.concat(a.lexpr, a.rexpr, scope);
        if (['+', '-', '*', '/', '%'].includes(op)) return this.arithmetic(op, a.lexpr, a.rexpr, scope);
        return this.fail(`the operator ${op}`);
      }
      case 'AEXPR_DISTINCT':
      case 'AEXPR_NOT_DISTINCT': {
        const [l, r] = this.pair(a.lexpr, a.rexpr, scope, 'IS DISTINCT FROM');
        const same = `(${l.sql} <=> ${r.sql})`;
        return { sql: a.kind === 'AEXPR_DISTINCT' ? `(NOT ${same})` : same, type: 'bool' };
      }
      case 'AEXPR_NULLIF': {
        const [l, r] = this.pair(a.lexpr, a.rexpr, scope, 'NULLIF');
        return { sql: `NULLIF(${l.sql}, ${r.sql})`, type: l.type };
      }
      case 'AEXPR_IN': {
        const items = a.rexpr.List?.items as AstNode[] | undefined;
        if (!items) this.fail('IN over a non-list');
        const l = this.expr(a.lexpr, scope);
        const type = this.commonType([a.lexpr, ...items], scope, 'IN');
        const left = this.coerce(a.lexpr, scope, l.type === 'untyped' ? type : l.type);
        const list = items.map((i) => this.coerce(i, scope, type).sql).join(', ');
        return { sql: `(${left.sql} ${op === '<>' ? 'NOT IN' : 'IN'} (${list}))`, type: 'bool' };
      }
      case 'AEXPR_LIKE': {
        if (op !== '~~' && op !== '!~~') this.fail(`the operator ${op}`);
        const [l, r] = this.pair(a.lexpr, a.rexpr, scope, 'LIKE');
        if (l.type !== 'text') this.fail(`LIKE on ${l.type}`);
        // PostgreSQL's LIKE escapes with a backslash; X'5C' reads as one whatever the sql_mode.
        const like = `(${l.sql} LIKE ${r.sql} ESCAPE X'5C')`;
        return { sql: op === '!~~' ? `(NOT ${like})` : like, type: 'bool' };
      }
      case 'AEXPR_BETWEEN':
      case 'AEXPR_NOT_BETWEEN': {
        const [lo, hi] = a.rexpr.List.items as AstNode[];
        const type = this.commonType([a.lexpr, lo!, hi!], scope, 'BETWEEN');
        const parts = [a.lexpr, lo!, hi!].map((x) => this.coerce(x, scope, type).sql);
        const not = a.kind === 'AEXPR_NOT_BETWEEN' ? 'NOT ' : '';
        return { sql: `(${parts[0]} ${not}BETWEEN ${parts[1]} AND ${parts[2]})`, type: 'bool' };
      }
      case 'AEXPR_ILIKE':
        return this.fail('ILIKE');
      case 'AEXPR_SIMILAR':
        return this.fail('SIMILAR TO');
      case 'AEXPR_OP_ANY':
      case 'AEXPR_OP_ALL':
        return this.fail(`${op} ANY/ALL over an array`);
      default:
        return this.fail(`the expression ${a.kind}${op ? ` ${op}` : ''}`);
    }
  }

  private unary(op: string, node: AstNode, scope: Scope): Expr {
    const e = this.expr(node, scope);
    if (!isNumeric(e.type)) this.fail(`unary ${op} on ${e.type ?? 'an operand of unknown type'}`);
    if (op === '-') return { sql: `(- ${e.sql})`, type: e.type };
    if (op === '+') return e;
    return this.fail(`the prefix operator ${op}`);
  }

  private concat(lnode: AstNode, rnode: AstNode, scope: Scope): Expr {
    // PostgreSQL's || is text concatenation only when one side is text (else array or jsonb
    // concatenation); NULL on either side gives NULL, as CONCAT does.
    const l = this.expr(lnode, scope);
    const r = this.expr(rnode, scope);
    const ok: ReadonlySet<SqlType | undefined> = new Set(['text', 'untyped', 'int', 'int8', 'numeric', 'date']);
    if (!ok.has(l.type) || !ok.has(r.type)) this.fail(`|| on ${l.type ?? 'unknown'} and ${r.type ?? 'unknown'}`);
    if (l.type !== 'text' && l.type !== 'untyped' && r.type !== 'text' && r.type !== 'untyped') this.fail('|| without a text operand');
    const side = (e: Expr, n: AstNode): string => (e.type === 'untyped' ? this.coerce(n, scope, 'text').sql : e.sql);
    return { sql: `CONCAT(${side(l, lnode)}, ${side(r, rnode)})`, type: 'text' };
  }

  private arithmetic(op: string, lnode: AstNode, rnode: AstNode, scope: Scope): Expr {
    let l = this.expr(lnode, scope);
    let r = this.expr(rnode, scope);
    if (l.type === undefined || r.type === undefined || (l.type === 'untyped' && r.type === 'untyped')) {
      this.fail(`the operator ${op} on operands of unknown type`);
    }
    const dated = (t: SqlType | undefined): boolean => t !== undefined && (DATETIME.has(t) || t === 'interval');
    if (dated(l.type) || dated(r.type)) return this.dateArithmetic(op, lnode, rnode, scope);
    if (l.type === 'untyped') l = this.coerce(lnode, scope, r.type);
    if (r.type === 'untyped') r = this.coerce(rnode, scope, l.type);
    if (!isNumeric(l.type) || !isNumeric(r.type)) this.fail(`the operator ${op} on ${l.type} and ${r.type}`);
    const type: SqlType =
      l.type === 'float' || r.type === 'float'
        ? 'float'
        : l.type === 'numeric' || r.type === 'numeric'
          ? 'numeric'
          : l.type === 'int8' || r.type === 'int8'
            ? 'int8'
            : 'int';
    if (op === '/' && isInt(type)) return { sql: `(${l.sql} DIV ${r.sql})`, type }; // PostgreSQL truncates int / int
    if (op === '%' && type === 'float') this.fail('% on double precision');
    return { sql: `(${l.sql} ${op} ${r.sql})`, type };
  }

  private dateArithmetic(op: string, lnode: AstNode, rnode: AstNode, scope: Scope): Expr {
    const l = this.expr(lnode, scope);
    const r = this.expr(rnode, scope);
    const interval = (n: AstNode, e: Expr): string | undefined => {
      if (e.type !== 'interval') return undefined;
      const lit = n.TypeCast?.arg?.A_Const?.sval?.sval as string | undefined;
      if (lit === undefined) this.fail('interval arithmetic with an interval other than a literal');
      return e.sql;
    };
    const li = interval(lnode, l);
    const ri = interval(rnode, r);
    if (op === '+' || op === '-') {
      // date +/- integer: days, a date.
      if (l.type === 'date' && isInt(r.type)) return { sql: `(${l.sql} ${op} INTERVAL ${r.sql} DAY)`, type: 'date' };
      if (op === '+' && isInt(l.type) && r.type === 'date') return { sql: `(${r.sql} + INTERVAL ${l.sql} DAY)`, type: 'date' };
      // date - date: whole days.
      if (op === '-' && l.type === 'date' && r.type === 'date') return { sql: `DATEDIFF(${l.sql}, ${r.sql})`, type: 'int' };
      // timestamp +/- interval: a timestamp (a date is read as midnight, as PostgreSQL does).
      const point = (e: Expr): string | undefined =>
        e.type === 'date' ? `CAST(${e.sql} AS DATETIME)` : e.type === 'timestamp' || e.type === 'timestamptz' ? e.sql : undefined;
      const type = (e: Expr): SqlType => (e.type === 'timestamptz' ? 'timestamptz' : 'timestamp');
      if (ri && point(l)) return { sql: `(${point(l)} ${op} ${ri})`, type: type(l) };
      if (op === '+' && li && point(r)) return { sql: `(${point(r)} + ${li})`, type: type(r) };
    }
    return this.fail(`the operator ${op} on ${l.type} and ${r.type}`);
  }

  private cast(n: AstNode, scope: Scope): Expr {
    const tn = n.typeName as AstNode;
    if (tn.arrayBounds) this.fail('casts to arrays');
    const target = baseName(tn.names);
    const shown = (tn.names as AstNode[]).map((x) => x.String?.sval).join('.');
    const mods = (tn.typmods as AstNode[] | undefined)?.map((m) => intConst(m));
    if (mods?.some((m) => m === undefined)) this.fail(`the cast to ${shown} with these modifiers`);
    const t = target ? sqlTypeOf(target) : undefined;
    if (!t || target === 'bpchar' || target === 'char' || target === 'character' || target === 'float4' || target === 'real') this.fail(`the cast to ${shown}`);
    if (t === 'interval' && mods) this.fail('interval fields in a cast');
    const lit = n.arg?.A_Const?.sval?.sval as string | undefined;
    if (lit !== undefined && !(t === 'numeric' && mods)) {
      // A typed literal (date '2024-01-01', '3 days'::interval): read as PostgreSQL reads it.
      return { sql: this.literalAs(lit, t), type: t };
    }
    const e = this.expr(n.arg, scope);
    const from = e.type;
    const refuse = (): never => this.fail(`the cast from ${from ?? 'an unknown type'} to ${shown}`);
    switch (t) {
      case 'int':
      case 'int8':
        if (isInt(from)) return { sql: e.sql, type: t };
        // numeric -> int rounds half away from zero in both; double precision rounds half to even in PostgreSQL.
        if (from === 'numeric' || from === 'untyped' || from === 'bool') return { sql: `CAST(${e.sql} AS SIGNED)`, type: t };
        return refuse();
      case 'numeric': {
        if (mods && (mods.length > 2 || mods[0]! > 65 || mods[0]! < 1 || (mods[1] ?? 0) > 30 || (mods[1] ?? 0) < 0))
          this.fail(`numeric${mods ? `(${mods.join(',')})` : ''}`);
        const arg = lit !== undefined ? this.literalAs(lit, 'numeric') : e.sql;
        if (lit === undefined && !(isNumeric(from) && from !== 'float') && from !== 'untyped') return refuse();
        if (mods) return { sql: `CAST(${arg} AS DECIMAL(${mods[0]}, ${mods[1] ?? 0}))`, type: 'numeric' };
        if (from === 'numeric') return { sql: arg, type: 'numeric' };
        if (isInt(from)) return { sql: `CAST(${arg} AS DECIMAL(65, 0))`, type: 'numeric' };
        return refuse();
      }
      case 'float':
        if (isNumeric(from) || from === 'untyped') return { sql: `CAST(${e.sql} AS DOUBLE)`, type: 'float' };
        return refuse();
      case 'text': {
        if (!(from === 'text' || from === 'untyped' || isInt(from) || from === 'numeric' || from === 'date')) return refuse();
        if (mods && mods.length !== 1) refuse();
        // varchar(n) keeps the first n characters, as PostgreSQL's explicit cast does.
        return { sql: `CAST(${e.sql} AS CHAR${mods ? `(${mods[0]})` : ''})`, type: 'text' };
      }
      case 'date':
        if (from === 'date') return e;
        if (from === 'timestamp' || from === 'timestamptz') return { sql: `CAST(${e.sql} AS DATE)`, type: 'date' };
        return refuse();
      case 'timestamp':
      case 'timestamptz':
        if (from === 'timestamp' || from === 'timestamptz') return { sql: e.sql, type: t };
        if (from === 'date') return { sql: `CAST(${e.sql} AS DATETIME)`, type: t };
        return refuse();
      case 'bool':
        if (from === 'bool') return e;
        return refuse();
      default:
        return refuse();
    }
  }

  private subLink(n: AstNode, scope: Scope): Expr {
    const sub = n.subselect?.SelectStmt as AstNode | undefined;
    if (!sub) this.fail('this subquery');
    switch (n.subLinkType) {
      case 'EXISTS_SUBLINK':
        return { sql: `EXISTS (${this.select(sub, scope).sql})`, type: 'bool' };
      case 'EXPR_SUBLINK': {
        const inner = this.select(sub, scope);
        if (inner.columns?.length !== 1) this.fail('a scalar subquery without exactly one known column');
        return { sql: `(${inner.sql})`, type: inner.columns[0]!.type };
      }
      case 'ANY_SUBLINK':
      case 'ALL_SUBLINK': {
        const op = (n.operName as AstNode[] | undefined)?.map((x) => x.String?.sval).join('.') ?? '=';
        const isIn = n.subLinkType === 'ANY_SUBLINK' && op === '=';
        const notIn = n.subLinkType === 'ALL_SUBLINK' && op === '<>';
        if (!isIn && !notIn) this.fail(`${op} ${n.subLinkType === 'ANY_SUBLINK' ? 'ANY' : 'ALL'} (subquery)`);
        if (n.testexpr?.RowExpr) this.fail('a row IN (subquery)');
        const inner = this.select(sub, scope);
        const l = this.expr(n.testexpr, scope);
        const rt = inner.columns?.length === 1 ? inner.columns[0]!.type : undefined;
        if (l.type === undefined || rt === undefined) this.fail('IN (subquery) on an operand of unknown type');
        const left = l.type === 'untyped' ? this.coerce(n.testexpr, scope, rt) : l;
        if (category(left.type!) !== category(rt)) this.fail(`IN (subquery) between ${left.type} and ${rt}`);
        return { sql: `(${left.sql} ${notIn ? 'NOT IN' : 'IN'} (${inner.sql}))`, type: 'bool' };
      }
      default:
        return this.fail(`${n.subLinkType} subqueries`);
    }
  }
}

/** The topic barrier as Gatehouse builds it (src/sql/topic.ts): a plain SELECT with OFFSET 0 and no LIMIT. */
export function isBarrier(sel: AstNode): boolean {
  return (!sel.op || sel.op === 'SETOP_NONE') && intConst(sel.limitOffset) === 0 && !sel.limitCount;
}

function hasStar(targets: AstNode[]): boolean {
  return targets.some((t) => (t.ResTarget?.val?.ColumnRef?.fields as AstNode[] | undefined)?.some((f) => f.A_Star));
}

function paramToken(p: AstNode): string {
  return `\u0000${Number(p.number)}\u0000`;
}

function columnMap(columns: EmittedColumn[] | undefined): ColumnTypes | undefined {
  if (!columns) return undefined;
  return new Map(columns.map((c) => [c.name, c.type]));
}

function renameColumns(cols: ColumnTypes | undefined, names: string[] | undefined): ColumnTypes | undefined {
  if (!cols || !names) return cols;
  const entries = [...cols.entries()];
  return new Map(entries.map(([n, t], i) => [names[i] ?? n, t]));
}

/** Unqualified column names used anywhere in an expression. */
function columnRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const x of node) columnRefs(x, out);
  else if (node && typeof node === 'object') {
    const cr = (node as AstNode).ColumnRef;
    if (cr && cr.fields?.length === 1 && cr.fields[0]?.String) out.push(cr.fields[0].String.sval);
    for (const v of Object.values(node as object)) columnRefs(v, out);
  }
  return out;
}

export function createMysqlDialect(opts: MysqlDialectOptions = {}): SqlDialect {
  return {
    name: 'mysql',
    variant: opts.flavor ?? 'mariadb',
    // Comparisons of integers, text (under the collation the emitter writes), dates and
    // booleans with a constant raise no error on MySQL/MariaDB whatever the row: the same
    // columns as PostgreSQL's leakproof operators may be compared inside the LIMIT fence.
    pushdownClass: postgresPushdownClass,
    emit(stmt: AstNode): EmittedSql {
      if (opts.defaultSchema !== undefined) unqualify(stmt, opts.defaultSchema);
      const w = new MysqlWriter(opts);
      const { sql, columns } = w.statement(stmt);
      const params: number[] = [];
      const text = sql.replace(/\u0000(\d+)\u0000/g, (_m, n: string) => {
        params.push(Number(n));
        return '?';
      });
      if (text.includes('\u0000')) throw new GatehouseError('XX000', 'internal error in the MySQL emitter');
      return { sql: text, params, columns };
    },
  };
}

/** Drops `schema` from every table name qualified by it (MysqlDialectOptions.defaultSchema). */
function unqualify(node: unknown, schema: string): void {
  if (Array.isArray(node)) {
    for (const n of node) unqualify(n, schema);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const rv = (node as AstNode).RangeVar as AstNode | undefined;
  if (rv && rv.schemaname === schema && !rv.catalogname) delete rv.schemaname;
  for (const v of Object.values(node as object)) unqualify(v, schema);
}

/** PostgreSQL's int2 and int4: a select-list cast to them is typed so (MySQL's integers are BIGINT). */
const CAST_OIDS: Record<string, number> = { int4: 23, integer: 23, int: 23, int2: 21, smallint: 21 };

function castOid(val: AstNode | undefined): number | undefined {
  const tn = val?.TypeCast?.typeName as AstNode | undefined;
  if (!tn || tn.arrayBounds) return undefined;
  return CAST_OIDS[baseName(tn.names) ?? ''];
}
