// The allowlist of a Query Topics user's query (DESIGN 3, "Security by construction").
//
// Every node of the parse tree is a node kind this walker knows and checks, or the
// statement is refused naming the construct. The switch over node kinds is exhaustive:
// a new kind in @pgsql/types is a compile error here until someone decides about it.
// Every way PostgreSQL calls a function is a call here: ordinary calls, SQL-standard
// syntax (it parses to pg_catalog.* calls), operators, casts and typed literals (the
// type's input function), and column notation (`(x).fn` and `a.fn` call fn(x)): a field
// selection is allowed only where it provably names a column of a FROM item in scope.
//
// This walker only proves; it never rewrites. The topic rewrite (scope.ts) runs after it.
import type { A_Expr, ColumnRef, FuncCall, Node, SelectStmt, TypeName } from '@pgsql/types';
import type { Topic } from '../config/model.ts';
import { refuse } from './refusal.ts';
import { SETTING_ALLOWLIST, SHOW_ONLY_SETTINGS, TOPIC_FUNCTION_ALLOWLIST, isDeniedForQueryTopics } from './functions.ts';

/** What the walker needs of the session: the topics it may read. */
export interface AllowlistContext {
  connection: string;
  topicsSchema: string;
  topics: ReadonlyMap<string, Topic>;
}

/** Every node kind of the parse tree (the keys of @pgsql/types' Node union). */
type NodeKind = Node extends infer N ? (N extends Record<infer K, unknown> ? K : never) : never;

/** The body of a node of a known kind: `{ BoolExpr: {...} }` -> `{...}`, typed. */
function body<K extends NodeKind>(node: Node, kind: K): Extract<Node, Record<K, unknown>>[K] {
  return (node as unknown as Record<K, Extract<Node, Record<K, unknown>>[K]>)[kind];
}

/** Built-in scalar types a cast, a typed literal or a declared parameter may name (by pg_type name). */
export const CASTABLE_TYPES: ReadonlySet<string> = new Set([
  'bool',
  'boolean',
  'int2',
  'int4',
  'int8',
  'smallint',
  'integer',
  'int',
  'bigint',
  'numeric',
  'decimal',
  'float4',
  'float8',
  'real',
  'money',
  'text',
  'varchar',
  'bpchar',
  'char',
  'character',
  'name',
  'date',
  'time',
  'timetz',
  'timestamp',
  'timestamptz',
  'interval',
  'uuid',
  'json',
  'jsonb',
  'bytea',
  'bit',
  'varbit',
  'inet',
  'cidr',
  'macaddr',
]);

/**
 * OIDs of the same built-in types and their arrays, for the parameter types a Parse
 * declares (0 = let the server infer; 705 = unknown, what drivers send for untyped strings).
 */
export const PARAMETER_TYPE_OIDS: ReadonlySet<number> = new Set([
  0, 705, 16, 17, 18, 19, 20, 21, 23, 25, 114, 700, 701, 790, 1042, 1043, 1082, 1083, 1114, 1184, 1186, 1266, 1560, 1562, 1700, 2950, 3802, 869, 650, 829,
  // arrays of the above
  1000, 1001, 1002, 1003, 1016, 1005, 1007, 1009, 199, 1021, 1022, 791, 1014, 1015, 1182, 1183, 1115, 1185, 1187, 1270, 1561, 1563, 1231, 2951, 3807, 1041, 651,
  1040,
]);

/** Functions that SQL-standard syntax parses into (SIMILAR TO, AT TIME ZONE, OVERLAPS...). */
const SQL_SYNTAX_FUNCTIONS: ReadonlySet<string> = new Set(['similar_to_escape', 'overlaps', 'timezone', 'is_normalized']);

/** Functions allowed in FROM (set-returning functions over values, not relations). */
const FROM_FUNCTIONS: ReadonlySet<string> = new Set(['generate_series', 'unnest']);

/** A FROM item as the walker sees it: its name and, when known, its columns. */
interface Item {
  name?: string;
  /** undefined = not known: then nothing may be selected from it by name. */
  columns?: string[];
}

interface Scope {
  parent?: Scope;
  /** CTEs visible here, with their columns (undefined = not known). */
  ctes: Map<string, string[] | undefined>;
  items: Item[];
  /** Output column names of this SELECT (ORDER BY / GROUP BY may name them). */
  outputs: string[];
  /** Window names defined by this SELECT's WINDOW clause. */
  windows: Set<string>;
}

export function checkTopicQuery(ctx: AllowlistContext, stmt: Node): void {
  new AllowlistWalker(ctx).statement(stmt);
}

/** A Parse's declared parameter types: built-in scalar types (and their arrays) only. */
export function checkParameterTypes(ctx: AllowlistContext, oids: readonly number[]): void {
  for (const oid of oids) {
    if (!PARAMETER_TYPE_OIDS.has(oid)) {
      refuse(
        'query_topics.type_not_allowed',
        '42501',
        `parameter type OID ${oid} is not permitted for query_topics users on connection ${ctx.connection}; declare parameters as built-in scalar types (or leave them unspecified)`,
      );
    }
  }
}

class AllowlistWalker {
  constructor(private readonly ctx: AllowlistContext) {}

  private notPermitted(what: string, sqlstate: '0A000' | '42501' = '0A000'): never {
    refuse(
      'query_topics.construct_not_allowed',
      sqlstate,
      `${what} is not permitted for query_topics users on connection ${this.ctx.connection}; query the topics with plain SELECT: ${[...this.ctx.topics.keys()].sort().join(', ')}`,
    );
  }

  statement(stmt: Node): void {
    if (!('SelectStmt' in stmt)) this.notPermitted(`${Object.keys(stmt)[0]}`, '42501');
    this.select(stmt.SelectStmt, undefined);
  }

  /** One SELECT (or set operation) with its own scope; returns its output column names (undefined = unknown). */
  select(sel: SelectStmt, parent: Scope | undefined): string[] | undefined {
    if (sel.intoClause) this.notPermitted('SELECT INTO', '42501');
    if (sel.lockingClause?.length) this.notPermitted('SELECT FOR UPDATE/SHARE', '42501');
    const scope: Scope = { parent, ctes: new Map(parent?.ctes ?? []), items: [], outputs: [], windows: new Set() };
    if (sel.withClause) {
      const w = sel.withClause;
      // In WITH RECURSIVE every CTE of the list is in scope in every other, a later one too:
      // its columns are unknown until it is walked.
      if (w.recursive) for (const c of w.ctes ?? []) if ('CommonTableExpr' in c) scope.ctes.set(c.CommonTableExpr.ctename ?? '', undefined);
      for (const c of w.ctes ?? []) {
        if (!('CommonTableExpr' in c)) this.notPermitted(Object.keys(c)[0]);
        const cte = c.CommonTableExpr;
        if (cte.search_clause || cte.cycle_clause) this.notPermitted('SEARCH/CYCLE clauses of recursive queries');
        const q = cte.ctequery;
        if (!q || !('SelectStmt' in q)) this.notPermitted(`a data-modifying WITH (${q ? Object.keys(q)[0] : 'empty'})`, '42501');
        const named = cte.aliascolnames?.map((n) => this.stringOf(n));
        const name = cte.ctename ?? '';
        const cteScope: Scope = { ...scope, ctes: new Map(scope.ctes), items: [], outputs: [], windows: new Set() };
        if (w.recursive) {
          // A recursive CTE sees itself: its columns come from the non-recursive term.
          const body = q.SelectStmt;
          const seed = body.op && body.op !== 'SETOP_NONE' && body.larg ? this.outputNamesOf(body.larg, cteScope) : undefined;
          cteScope.ctes.set(name, named ?? seed);
        }
        const cols = this.select(q.SelectStmt, { ...cteScope, parent: scope.parent });
        scope.ctes.set(name, named ?? cols);
      }
    }
    if (sel.op && sel.op !== 'SETOP_NONE') {
      if (!sel.larg || !sel.rarg) this.notPermitted('a set operation without both sides');
      const cols = this.select(sel.larg, scope);
      this.select(sel.rarg, scope);
      scope.outputs = cols ?? [];
      this.list(sel.sortClause, scope);
      this.expr(sel.limitCount, scope);
      this.expr(sel.limitOffset, scope);
      return cols;
    }
    if (sel.valuesLists?.length) {
      for (const row of sel.valuesLists) this.expr(row, scope);
      const first = sel.valuesLists[0];
      const n = first && 'List' in first ? (first.List.items?.length ?? 0) : 0;
      return Array.from({ length: n }, (_, i) => `column${i + 1}`);
    }
    for (const item of sel.fromClause ?? []) scope.items.push(...this.fromItem(item, scope));
    for (const w of sel.windowClause ?? []) {
      if (!('WindowDef' in w)) this.notPermitted(Object.keys(w)[0]);
      if (w.WindowDef.name) scope.windows.add(w.WindowDef.name);
    }
    const outputs = this.targets(sel.targetList ?? [], scope);
    scope.outputs = outputs ?? [];
    this.expr(sel.whereClause, scope);
    this.list(sel.groupClause, scope);
    this.expr(sel.havingClause, scope);
    for (const w of sel.windowClause ?? []) if ('WindowDef' in w) this.windowDef(w.WindowDef, scope);
    // Plain DISTINCT is a list holding one empty node; DISTINCT ON lists expressions.
    this.list(
      sel.distinctClause?.filter((n) => Object.keys(n).length > 0),
      scope,
    );
    this.list(sel.sortClause, scope);
    this.expr(sel.limitCount, scope);
    this.expr(sel.limitOffset, scope);
    return outputs;
  }

  /** The select list: each target checked; the output names computed as PostgreSQL names them. */
  private targets(list: Node[], scope: Scope): string[] | undefined {
    let names: string[] | undefined = [];
    for (const t of list) {
      if (!('ResTarget' in t)) this.notPermitted(Object.keys(t)[0]);
      const rt = t.ResTarget;
      if (rt.indirection?.length) this.notPermitted('assignment indirection');
      const val = rt.val;
      if (val && 'ColumnRef' in val && val.ColumnRef.fields?.some((f) => 'A_Star' in f)) {
        this.columnRef(val.ColumnRef, scope);
        const expanded = this.starColumns(val.ColumnRef, scope);
        names = names && expanded ? [...names, ...expanded] : undefined;
        continue;
      }
      this.expr(val, scope);
      // `(x).*` expands to x's columns, whose names the walker does not follow: unknown from here.
      const ind = val && 'A_Indirection' in val ? (val.A_Indirection.indirection ?? []) : [];
      if (ind.some((n) => 'A_Star' in n)) names = undefined;
      const name = rt.name ?? this.figureName(val);
      if (name === undefined) names = undefined;
      else names?.push(name);
    }
    return names;
  }

  private starColumns(ref: ColumnRef, scope: Scope): string[] | undefined {
    const fields = ref.fields ?? [];
    if (fields.length === 1) {
      const all: string[] = [];
      for (const it of scope.items) {
        if (!it.columns) return undefined;
        all.push(...it.columns);
      }
      return all;
    }
    const rel = this.stringOf(fields[fields.length - 2]);
    return this.findItem(scope, rel)?.columns;
  }

  /**
   * PostgreSQL's FigureColname (parse_target.c), strengths and all: the name a select-list
   * entry gets. Undefined when the walker cannot be sure, which makes the derived table's
   * columns unknown: a name the walker got wrong could be a function PostgreSQL calls.
   */
  private figureName(val: Node | undefined): string | undefined {
    const [name, strength] = this.figure(val);
    return strength === -1 ? undefined : (name ?? '?column?');
  }

  /** [name, strength]: 2 a real name, 1 a type name, 0 none, -1 not known to the walker. */
  private figure(val: Node | undefined): [string | undefined, number] {
    if (!val) return [undefined, 0];
    if ('ColumnRef' in val) {
      const f = val.ColumnRef.fields ?? [];
      const last = f[f.length - 1];
      return last && 'String' in last ? [last.String.sval, 2] : [undefined, 0];
    }
    if ('A_Indirection' in val) {
      // The last field selected, subscripts after it aside: (x).f[1] is f.
      const fields = (val.A_Indirection.indirection ?? []).filter((n) => 'String' in n);
      const last = fields[fields.length - 1];
      if (last && 'String' in last) return [last.String.sval, 2];
      return this.figure(val.A_Indirection.arg);
    }
    if ('FuncCall' in val) {
      const n = val.FuncCall.funcname ?? [];
      return [this.stringOf(n[n.length - 1]), 2];
    }
    if ('TypeCast' in val) {
      const inner = this.figure(val.TypeCast.arg);
      if (inner[1] === -1 || inner[1] === 2) return inner;
      const n = val.TypeCast.typeName?.names ?? [];
      return n.length ? [this.stringOf(n[n.length - 1]), 1] : inner;
    }
    if ('CollateClause' in val) return this.figure(val.CollateClause.arg);
    if ('CaseExpr' in val) {
      const inner = this.figure(val.CaseExpr.defresult);
      return inner[1] === -1 || inner[1] === 2 ? inner : ['case', 1];
    }
    if ('A_Expr' in val) return val.A_Expr.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : [undefined, 0];
    if ('CoalesceExpr' in val) return ['coalesce', 2];
    if ('MinMaxExpr' in val) return [val.MinMaxExpr.op === 'IS_LEAST' ? 'least' : 'greatest', 2];
    if ('A_ArrayExpr' in val) return ['array', 2];
    if ('RowExpr' in val) return ['row', 2];
    if ('GroupingFunc' in val) return ['grouping', 2];
    if ('SQLValueFunction' in val)
      return [
        (val.SQLValueFunction.op ?? '')
          .replace(/^SVFOP_/, '')
          .replace(/_N$/, '')
          .toLowerCase(),
        2,
      ];
    if ('SubLink' in val) {
      const sl = val.SubLink;
      if (sl.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
      if (sl.subLinkType === 'ARRAY_SUBLINK') return ['array', 2];
      if (sl.subLinkType !== 'EXPR_SUBLINK') return [undefined, 0];
      // The subquery's first output column's name (whatever it was figured as).
      const q = sl.subselect && 'SelectStmt' in sl.subselect ? sl.subselect.SelectStmt : undefined;
      const first = q && (!q.op || q.op === 'SETOP_NONE') ? q.targetList?.[0] : undefined;
      if (!first || !('ResTarget' in first)) return [undefined, -1];
      if (first.ResTarget.name) return [first.ResTarget.name, 2];
      const v = first.ResTarget.val;
      if (v && 'ColumnRef' in v && v.ColumnRef.fields?.some((f) => 'A_Star' in f)) return [undefined, -1];
      const inner = this.figure(v);
      return inner[1] === -1 ? inner : [inner[0] ?? '?column?', 2];
    }
    if ('A_Const' in val || 'ParamRef' in val || 'BoolExpr' in val || 'NullTest' in val || 'BooleanTest' in val) return [undefined, 0];
    return [undefined, -1];
  }

  /** A FROM item: the items it brings into scope. */
  private fromItem(node: Node, scope: Scope): Item[] {
    if ('RangeVar' in node) {
      const rv = node.RangeVar;
      const name = rv.relname ?? '';
      const alias = rv.alias?.aliasname ?? name;
      const renamed = rv.alias?.colnames?.map((c) => this.stringOf(c));
      if (!rv.schemaname && !rv.catalogname && scope.ctes.has(name)) {
        return [{ name: alias, columns: renamed ?? scope.ctes.get(name) }];
      }
      const schemaOk = !rv.schemaname || rv.schemaname === 'public' || rv.schemaname === this.ctx.topicsSchema;
      const catalogOk = !rv.catalogname || rv.catalogname === this.ctx.connection;
      const topic = schemaOk && catalogOk ? this.ctx.topics.get(name) : undefined;
      if (!topic) {
        const written = [rv.catalogname, rv.schemaname, name].filter(Boolean).join('.');
        refuse(
          'query_topics.non_topic_relation',
          '42501',
          `relation "${written}" is not a topic on connection ${this.ctx.connection}; query_topics users may only read topics: ${[...this.ctx.topics.keys()].sort().join(', ')}`,
        );
      }
      return [{ name: alias, columns: renamed ?? [...topic.fields] }];
    }
    if ('JoinExpr' in node) {
      const j = node.JoinExpr;
      const left = j.larg ? this.fromItem(j.larg, scope) : [];
      // A LATERAL item on the right sees the items on the left.
      const right = j.rarg ? this.fromItem(j.rarg, { ...scope, items: [...scope.items, ...left] }) : [];
      const both = [...left, ...right];
      if (j.join_using_alias) this.notPermitted('a JOIN USING alias');
      for (const u of j.usingClause ?? []) this.stringOf(u);
      this.expr(j.quals, { ...scope, items: [...scope.items, ...both] });
      if (j.alias) {
        const cols = both.every((i) => i.columns) ? both.flatMap((i) => i.columns ?? []) : undefined;
        return [{ name: j.alias.aliasname, columns: j.alias.colnames?.map((c) => this.stringOf(c)) ?? cols }];
      }
      return both;
    }
    if ('RangeSubselect' in node) {
      const rs = node.RangeSubselect;
      const q = rs.subquery;
      if (!q || !('SelectStmt' in q)) this.notPermitted('a subquery in FROM that is not a SELECT', '42501');
      // LATERAL or not, the subquery may see the items before it (PostgreSQL rejects what it may not).
      const cols = this.select(q.SelectStmt, { ...scope, items: [...scope.items] });
      const renamed = rs.alias?.colnames?.map((c) => this.stringOf(c));
      return [{ name: rs.alias?.aliasname, columns: renamed ?? cols }];
    }
    if ('RangeFunction' in node) {
      const rf = node.RangeFunction;
      if (rf.coldeflist?.length) this.notPermitted('a column definition list for a function in FROM');
      const names: string[] = [];
      for (const f of rf.functions ?? []) {
        // Each entry is a List of [FuncCall, coldeflist].
        const items = 'List' in f ? (f.List.items ?? []) : [f];
        const call = items[0];
        if (!call || !('FuncCall' in call)) this.notPermitted('this function form in FROM');
        if (items[1] && Object.keys(items[1]).length > 0) this.notPermitted('a column definition list for a function in FROM');
        const fname = this.functionName(call.FuncCall).name;
        if (!FROM_FUNCTIONS.has(fname)) this.notPermitted(`function ${fname} in FROM`, '42501');
        this.funcCall(call.FuncCall, { ...scope, items: [...scope.items] });
        names.push(fname);
      }
      const alias = rf.alias?.aliasname;
      let columns = rf.alias?.colnames?.map((c) => this.stringOf(c));
      // Without a column list only generate_series's one column is certain: unnest's depend on
      // its argument's type (unnest(tsvector) has three) and on how many arguments it has.
      const single = rf.functions?.length === 1 && names[0] === 'generate_series';
      if (!columns && single) columns = [alias ?? names[0]];
      if (columns && rf.ordinality) columns.push('ordinality');
      return [{ name: alias ?? names[0], columns }];
    }
    return this.notPermitted(`${Object.keys(node)[0]} in FROM`);
  }

  private windowDef(w: NonNullable<FuncCall['over']>, scope: Scope): void {
    if (w.refname && !this.windowKnown(scope, w.refname)) this.notPermitted(`window "${w.refname}"`);
    this.list(w.partitionClause, scope);
    this.list(w.orderClause, scope);
    this.expr(w.startOffset, scope);
    this.expr(w.endOffset, scope);
  }

  private windowKnown(scope: Scope, name: string): boolean {
    return scope.windows.has(name);
  }

  private list(nodes: Node[] | undefined, scope: Scope): void {
    for (const n of nodes ?? []) this.expr(n, scope);
  }

  /** Any expression node: the exhaustive switch. */
  expr(node: Node | undefined, scope: Scope): void {
    if (!node) return;
    const kind = Object.keys(node)[0] as NodeKind;
    switch (kind) {
      // ---- values and names
      case 'A_Const':
      case 'ParamRef':
      case 'A_Star':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'String':
      case 'BitString':
        return;
      case 'SQLValueFunction':
        // CURRENT_USER and friends are answered by Gatehouse (session identity); dates run upstream.
        return;
      case 'ColumnRef':
        return this.columnRef(body(node, 'ColumnRef'), scope);
      case 'List': {
        const l = body(node, 'List');
        return this.list(l.items, scope);
      }
      // ---- operators and predicates
      case 'A_Expr':
        return this.aExpr(body(node, 'A_Expr'), scope);
      case 'BoolExpr':
        return this.list(body(node, 'BoolExpr').args, scope);
      case 'NullTest':
        return this.expr(body(node, 'NullTest').arg, scope);
      case 'BooleanTest':
        return this.expr(body(node, 'BooleanTest').arg, scope);
      case 'CaseExpr': {
        const c = body(node, 'CaseExpr');
        this.expr(c.arg, scope);
        this.list(c.args, scope);
        return this.expr(c.defresult, scope);
      }
      case 'CaseWhen': {
        const w = body(node, 'CaseWhen');
        this.expr(w.expr, scope);
        return this.expr(w.result, scope);
      }
      case 'CoalesceExpr':
        return this.list(body(node, 'CoalesceExpr').args, scope);
      case 'MinMaxExpr':
        return this.list(body(node, 'MinMaxExpr').args, scope);
      case 'RowExpr':
        return this.list(body(node, 'RowExpr').args, scope);
      case 'A_ArrayExpr':
        return this.list(body(node, 'A_ArrayExpr').elements, scope);
      case 'GroupingFunc':
        return this.list(body(node, 'GroupingFunc').args, scope);
      case 'GroupingSet':
        return this.list(body(node, 'GroupingSet').content, scope);
      case 'SortBy': {
        const s = body(node, 'SortBy');
        if (s.useOp) this.operatorName(s.useOp);
        return this.expr(s.node, scope);
      }
      case 'CollateClause': {
        const c = body(node, 'CollateClause');
        this.qualifiedName(c.collname ?? [], 'collation');
        return this.expr(c.arg, scope);
      }
      case 'NamedArgExpr':
        return this.expr(body(node, 'NamedArgExpr').arg as Node | undefined, scope);
      // ---- calls in every form
      case 'FuncCall':
        return this.funcCall(body(node, 'FuncCall'), scope);
      case 'TypeCast': {
        const tc = body(node, 'TypeCast');
        if (tc.typeName) this.typeName(tc.typeName);
        return this.expr(tc.arg, scope);
      }
      case 'A_Indirection':
        return this.indirection(body(node, 'A_Indirection'), scope);
      case 'A_Indices': {
        const i = body(node, 'A_Indices');
        this.expr(i.lidx, scope);
        return this.expr(i.uidx, scope);
      }
      // ---- subqueries
      case 'SubLink': {
        const s = body(node, 'SubLink');
        if (s.subLinkType === 'MULTIEXPR_SUBLINK' || s.subLinkType === 'CTE_SUBLINK') this.notPermitted(s.subLinkType);
        if (s.operName) this.operatorName(s.operName);
        this.expr(s.testexpr, scope);
        const q = s.subselect;
        if (!q || !('SelectStmt' in q)) this.notPermitted('a subquery that is not a SELECT', '42501');
        this.select(q.SelectStmt, scope);
        return;
      }
      case 'SelectStmt':
        this.select(body(node, 'SelectStmt'), scope);
        return;
      // ---- refused: XML and SQL/JSON constructors (they take their own paths through the
      // server), TABLESAMPLE (on a topic it would sample the base relation), and every node
      // that is not an expression of a SELECT.
      case 'XmlExpr':
      case 'XmlSerialize':
      case 'JsonFormat':
      case 'JsonReturning':
      case 'JsonValueExpr':
      case 'JsonConstructorExpr':
      case 'JsonIsPredicate':
      case 'JsonBehavior':
      case 'JsonExpr':
      case 'JsonTablePath':
      case 'JsonTablePathScan':
      case 'JsonTableSiblingJoin':
      case 'JsonOutput':
      case 'JsonArgument':
      case 'JsonFuncExpr':
      case 'JsonTablePathSpec':
      case 'JsonTable':
      case 'JsonTableColumn':
      case 'JsonKeyValue':
      case 'JsonParseExpr':
      case 'JsonScalarExpr':
      case 'JsonSerializeExpr':
      case 'JsonObjectConstructor':
      case 'JsonArrayConstructor':
      case 'JsonArrayQueryConstructor':
      case 'JsonAggConstructor':
      case 'JsonObjectAgg':
      case 'JsonArrayAgg':
      case 'RangeTableSample':
      case 'RangeTableFunc':
      case 'RangeTableFuncCol':
      case 'TableFunc':
      case 'MergeSupportFunc':
      case 'CurrentOfExpr':
      case 'SetToDefault':
      case 'MultiAssignRef':
      case 'IntoClause':
      case 'LockingClause':
      case 'WindowDef':
      case 'ResTarget':
      case 'RangeVar':
      case 'RangeSubselect':
      case 'RangeFunction':
      case 'JoinExpr':
      case 'Alias':
      case 'TypeName':
      case 'WithClause':
      case 'CommonTableExpr':
      case 'CTESearchClause':
      case 'CTECycleClause':
      case 'DefElem':
      case 'RoleSpec':
        return this.notPermitted(constructName(kind));
      // Planner and executor nodes never come out of the raw parser; statements are not expressions.
      case 'ParseResult':
      case 'ScanResult':
      case 'OidList':
      case 'IntList':
      case 'Var':
      case 'Param':
      case 'Aggref':
      case 'WindowFunc':
      case 'WindowFuncRunCondition':
      case 'SubscriptingRef':
      case 'FuncExpr':
      case 'OpExpr':
      case 'DistinctExpr':
      case 'NullIfExpr':
      case 'ScalarArrayOpExpr':
      case 'SubPlan':
      case 'AlternativeSubPlan':
      case 'FieldSelect':
      case 'FieldStore':
      case 'RelabelType':
      case 'CoerceViaIO':
      case 'ArrayCoerceExpr':
      case 'ConvertRowtypeExpr':
      case 'CollateExpr':
      case 'CaseTestExpr':
      case 'ArrayExpr':
      case 'RowCompareExpr':
      case 'MergeAction':
      case 'CoerceToDomain':
      case 'CoerceToDomainValue':
      case 'NextValueExpr':
      case 'InferenceElem':
      case 'TargetEntry':
      case 'RangeTblRef':
      case 'FromExpr':
      case 'OnConflictExpr':
      case 'Query':
      case 'ColumnDef':
      case 'TableLikeClause':
      case 'IndexElem':
      case 'PartitionElem':
      case 'PartitionSpec':
      case 'PartitionBoundSpec':
      case 'PartitionRangeDatum':
      case 'SinglePartitionSpec':
      case 'PartitionCmd':
      case 'RangeTblEntry':
      case 'RTEPermissionInfo':
      case 'RangeTblFunction':
      case 'TableSampleClause':
      case 'WithCheckOption':
      case 'SortGroupClause':
      case 'WindowClause':
      case 'RowMarkClause':
      case 'InferClause':
      case 'OnConflictClause':
      case 'MergeWhenClause':
      case 'TriggerTransition':
      case 'RawStmt':
      case 'InsertStmt':
      case 'DeleteStmt':
      case 'UpdateStmt':
      case 'MergeStmt':
      case 'SetOperationStmt':
      case 'ReturnStmt':
      case 'PLAssignStmt':
      case 'CreateSchemaStmt':
      case 'AlterTableStmt':
      case 'ReplicaIdentityStmt':
      case 'AlterTableCmd':
      case 'AlterCollationStmt':
      case 'AlterDomainStmt':
      case 'GrantStmt':
      case 'ObjectWithArgs':
      case 'AccessPriv':
      case 'GrantRoleStmt':
      case 'AlterDefaultPrivilegesStmt':
      case 'CopyStmt':
      case 'VariableSetStmt':
      case 'VariableShowStmt':
      case 'CreateStmt':
      case 'Constraint':
      case 'CreateTableSpaceStmt':
      case 'DropTableSpaceStmt':
      case 'AlterTableSpaceOptionsStmt':
      case 'AlterTableMoveAllStmt':
      case 'CreateExtensionStmt':
      case 'AlterExtensionStmt':
      case 'AlterExtensionContentsStmt':
      case 'CreateFdwStmt':
      case 'AlterFdwStmt':
      case 'CreateForeignServerStmt':
      case 'AlterForeignServerStmt':
      case 'CreateForeignTableStmt':
      case 'CreateUserMappingStmt':
      case 'AlterUserMappingStmt':
      case 'DropUserMappingStmt':
      case 'ImportForeignSchemaStmt':
      case 'CreatePolicyStmt':
      case 'AlterPolicyStmt':
      case 'CreateAmStmt':
      case 'CreateTrigStmt':
      case 'CreateEventTrigStmt':
      case 'AlterEventTrigStmt':
      case 'CreatePLangStmt':
      case 'CreateRoleStmt':
      case 'AlterRoleStmt':
      case 'AlterRoleSetStmt':
      case 'DropRoleStmt':
      case 'CreateSeqStmt':
      case 'AlterSeqStmt':
      case 'DefineStmt':
      case 'CreateDomainStmt':
      case 'CreateOpClassStmt':
      case 'CreateOpClassItem':
      case 'CreateOpFamilyStmt':
      case 'AlterOpFamilyStmt':
      case 'DropStmt':
      case 'TruncateStmt':
      case 'CommentStmt':
      case 'SecLabelStmt':
      case 'DeclareCursorStmt':
      case 'ClosePortalStmt':
      case 'FetchStmt':
      case 'IndexStmt':
      case 'CreateStatsStmt':
      case 'StatsElem':
      case 'AlterStatsStmt':
      case 'CreateFunctionStmt':
      case 'FunctionParameter':
      case 'AlterFunctionStmt':
      case 'DoStmt':
      case 'InlineCodeBlock':
      case 'CallStmt':
      case 'CallContext':
      case 'RenameStmt':
      case 'AlterObjectDependsStmt':
      case 'AlterObjectSchemaStmt':
      case 'AlterOwnerStmt':
      case 'AlterOperatorStmt':
      case 'AlterTypeStmt':
      case 'RuleStmt':
      case 'NotifyStmt':
      case 'ListenStmt':
      case 'UnlistenStmt':
      case 'TransactionStmt':
      case 'CompositeTypeStmt':
      case 'CreateEnumStmt':
      case 'CreateRangeStmt':
      case 'AlterEnumStmt':
      case 'ViewStmt':
      case 'LoadStmt':
      case 'CreatedbStmt':
      case 'AlterDatabaseStmt':
      case 'AlterDatabaseRefreshCollStmt':
      case 'AlterDatabaseSetStmt':
      case 'DropdbStmt':
      case 'AlterSystemStmt':
      case 'ClusterStmt':
      case 'VacuumStmt':
      case 'VacuumRelation':
      case 'ExplainStmt':
      case 'CreateTableAsStmt':
      case 'RefreshMatViewStmt':
      case 'CheckPointStmt':
      case 'DiscardStmt':
      case 'LockStmt':
      case 'ConstraintsSetStmt':
      case 'ReindexStmt':
      case 'CreateConversionStmt':
      case 'CreateCastStmt':
      case 'CreateTransformStmt':
      case 'PrepareStmt':
      case 'ExecuteStmt':
      case 'DeallocateStmt':
      case 'DropOwnedStmt':
      case 'ReassignOwnedStmt':
      case 'AlterTSDictionaryStmt':
      case 'AlterTSConfigurationStmt':
      case 'PublicationTable':
      case 'PublicationObjSpec':
      case 'CreatePublicationStmt':
      case 'AlterPublicationStmt':
      case 'CreateSubscriptionStmt':
      case 'AlterSubscriptionStmt':
      case 'DropSubscriptionStmt':
      case 'ScanToken':
        return this.notPermitted(constructName(kind), '42501');
      default: {
        // Unknown at compile time means a node kind no one has decided about: refuse.
        const unknown: never = kind;
        return this.notPermitted(`${String(unknown)}`);
      }
    }
  }

  /** A_Expr: every operator is a function call; only pg_catalog's operators. */
  private aExpr(a: A_Expr, scope: Scope): void {
    switch (a.kind) {
      case 'AEXPR_OP':
      case 'AEXPR_OP_ANY':
      case 'AEXPR_OP_ALL':
      case 'AEXPR_DISTINCT':
      case 'AEXPR_NOT_DISTINCT':
      case 'AEXPR_NULLIF':
      case 'AEXPR_IN':
      case 'AEXPR_LIKE':
      case 'AEXPR_ILIKE':
      case 'AEXPR_SIMILAR':
      case 'AEXPR_BETWEEN':
      case 'AEXPR_NOT_BETWEEN':
      case 'AEXPR_BETWEEN_SYM':
      case 'AEXPR_NOT_BETWEEN_SYM':
        break;
      default:
        this.notPermitted(`operator form ${a.kind}`);
    }
    if (a.name) this.operatorName(a.name);
    this.expr(a.lexpr, scope);
    this.expr(a.rexpr, scope);
  }

  /** An operator name: a symbol, unqualified or in pg_catalog (the session's search_path is pg_catalog). */
  private operatorName(name: Node[]): void {
    const parts = name.map((n) => this.stringOf(n));
    const op = parts[parts.length - 1];
    if (
      parts.length > 2 ||
      (parts.length === 2 && parts[0] !== 'pg_catalog') ||
      (!/^[-+*/<>=~!@#%^&|`?]+$/.test(op) && !/^(between|not between|between symmetric|not between symmetric)$/i.test(op))
    ) {
      this.notPermitted(`operator ${parts.join('.')}`, '42501');
    }
  }

  private funcCall(fc: FuncCall, scope: Scope): void {
    const { name, shown } = this.functionName(fc);
    if (isDeniedForQueryTopics(name)) refuse('denied_function', '42501', `function ${shown} is not permitted through Gatehouse`);
    if (!TOPIC_FUNCTION_ALLOWLIST.has(name) && !SQL_SYNTAX_FUNCTIONS.has(name) && !FROM_FUNCTIONS.has(name)) {
      refuse('query_topics.function_not_allowed', '42501', `function ${shown} is not permitted for query_topics users on connection ${this.ctx.connection}`);
    }
    if (name === 'current_setting') {
      const arg = fc.args?.[0];
      const setting = arg && 'A_Const' in arg ? arg.A_Const.sval?.sval : undefined;
      if (setting === undefined || (fc.args?.length ?? 0) > 2)
        refuse('denied_function', '42501', 'current_setting is permitted only with a constant setting name');
      const s = setting.toLowerCase();
      if (!SETTING_ALLOWLIST.has(s) && !SHOW_ONLY_SETTINGS.has(s)) {
        refuse('query_topics.setting_not_allowed', '42501', `setting "${setting}" is not readable by query_topics users`);
      }
    }
    this.list(fc.args, scope);
    this.list(fc.agg_order, scope);
    this.expr(fc.agg_filter, scope);
    if (fc.over) this.windowDef(fc.over, scope);
  }

  private functionName(fc: FuncCall): { name: string; shown: string } {
    const parts = (fc.funcname ?? []).map((n) => this.stringOf(n));
    const name = parts[parts.length - 1] ?? '';
    const shown = parts.join('.');
    if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) {
      refuse('query_topics.function_not_allowed', '42501', `function ${shown} is not permitted for query_topics users on connection ${this.ctx.connection}`);
    }
    return { name, shown };
  }

  /** Casts and typed literals run the type's input function: built-in scalar types only. */
  private typeName(t: TypeName): void {
    const parts = (t.names ?? []).map((n) => this.stringOf(n));
    const name = parts[parts.length - 1] ?? '';
    const shown = parts.join('.');
    if (t.setof || t.pct_type || parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog') || !CASTABLE_TYPES.has(name)) {
      refuse(
        'query_topics.type_not_allowed',
        '42501',
        `type ${shown || '?'} is not permitted for query_topics users on connection ${this.ctx.connection}; casts may name built-in scalar types only`,
      );
    }
    for (const m of t.typmods ?? []) {
      if (!('A_Const' in m) || m.A_Const.ival === undefined) this.notPermitted('a type modifier that is not an integer');
    }
  }

  /** A qualified name that must be unqualified or in pg_catalog (collations). */
  private qualifiedName(parts: Node[], what: string): void {
    const names = parts.map((n) => this.stringOf(n));
    if (names.length > 2 || (names.length === 2 && names[0] !== 'pg_catalog')) this.notPermitted(`${what} ${names.join('.')}`, '42501');
  }

  /**
   * Column references. `a.b` is a column of FROM item a, or else PostgreSQL reads it as
   * b(a): the qualifier must be a FROM item in scope and b one of its known columns.
   */
  private columnRef(ref: ColumnRef, scope: Scope): void {
    const fields = ref.fields ?? [];
    const star = fields.length > 0 && 'A_Star' in fields[fields.length - 1];
    const names = fields.filter((f) => !('A_Star' in f)).map((f) => this.stringOf(f));
    if (fields.slice(0, -1).some((f) => 'A_Star' in f)) this.notPermitted('a * inside a column reference');
    if (names.length === 0) return; // SELECT *
    if (names.length === 1 && !star) return; // a column, or a whole-row reference: never a call
    // qualifier.column, schema.qualifier.column or catalog.schema.qualifier.column
    const colName = star ? undefined : names[names.length - 1];
    const qual = star ? names : names.slice(0, -1);
    const rel = qual[qual.length - 1];
    if (qual.length > 1) {
      const schema = qual[qual.length - 2];
      const okSchema = schema === 'public' || schema === this.ctx.topicsSchema;
      const okCatalog = qual.length < 3 || qual[0] === this.ctx.connection;
      if (qual.length > 3 || !okSchema || !okCatalog || !this.ctx.topics.has(rel)) {
        this.notPermitted(`column reference ${names.join('.')}`, '42501');
      }
    }
    const item = this.findItem(scope, rel);
    if (!item) {
      this.notPermitted(`"${names.join('.')}": "${rel}" is not a table in FROM, and column notation calls a function`, '42501');
    }
    if (colName !== undefined && !item.columns?.includes(colName)) {
      refuse(
        'query_topics.non_topic_field',
        '42501',
        `column "${colName}" of "${rel}" is not a known column${item.columns ? `; its columns are: ${item.columns.join(', ')}` : ''} (column notation calls a function)`,
      );
    }
  }

  /** `(expr).name` selects a field or calls name(expr): only a FROM item's own column. */
  private indirection(ind: { arg?: Node; indirection?: Node[] }, scope: Scope): void {
    const steps = ind.indirection ?? [];
    const selections = steps.filter((s) => !('A_Indices' in s));
    for (const s of steps) if ('A_Indices' in s) this.expr(s, scope);
    if (selections.length === 0) return this.expr(ind.arg, scope);
    // The argument must be a whole-row reference to a FROM item: `(o)` (when no column is
    // named o) or `(o.*)`.
    const f = ind.arg && 'ColumnRef' in ind.arg ? (ind.arg.ColumnRef.fields ?? []) : [];
    const starred = f.length === 2 && 'String' in f[0] && 'A_Star' in f[1];
    const single = f.length === 1 && 'String' in f[0];
    const whole = starred || single ? this.stringOf(f[0]) : undefined;
    const item = whole !== undefined && (starred || !this.isColumnInScope(scope, whole)) ? this.findItem(scope, whole) : undefined;
    if (!item || selections.length > 1 || steps[0] !== selections[0]) {
      this.notPermitted('field selection (x).name on anything but a FROM item of the query (column notation calls a function)', '42501');
    }
    const sel = selections[0];
    if ('A_Star' in sel) return;
    const field = this.stringOf(sel);
    if (!item.columns?.includes(field)) {
      refuse('query_topics.non_topic_field', '42501', `"${field}" is not a column of "${whole}" (column notation calls a function)`);
    }
  }

  /** Is this name a column of some FROM item in scope (then a 1-part reference is that column)? Unknown counts as yes. */
  private isColumnInScope(scope: Scope, name: string): boolean {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      for (const it of s.items) if (!it.columns || it.columns.includes(name)) return true;
    }
    return false;
  }

  private findItem(scope: Scope, name: string): Item | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const hits = s.items.filter((i) => i.name === name);
      if (hits.length > 1) this.notPermitted(`the ambiguous table reference "${name}"`);
      if (hits[0]) return hits[0];
    }
    return undefined;
  }

  /** Output names of a SELECT without checking it again (a recursive CTE's seed term). */
  private outputNamesOf(sel: SelectStmt, scope: Scope): string[] | undefined {
    const probe = new AllowlistWalker(this.ctx);
    try {
      return probe.select(sel, scope);
    } catch {
      return undefined;
    }
  }

  private stringOf(n: Node | undefined): string {
    if (n && 'String' in n) return n.String.sval ?? '';
    return this.notPermitted(`a name of kind ${n ? Object.keys(n)[0] : 'none'}`);
  }
}

/** `XmlSerialize` -> `XMLSERIALIZE`, `RangeTableSample` -> `TABLESAMPLE`. */
function constructName(kind: string): string {
  const special: Record<string, string> = {
    RangeTableSample: 'TABLESAMPLE',
    RangeTableFunc: 'XMLTABLE',
    XmlSerialize: 'XMLSERIALIZE',
    XmlExpr: 'XML functions',
    CurrentOfExpr: 'WHERE CURRENT OF',
    SetToDefault: 'DEFAULT',
    MergeSupportFunc: 'MERGE_ACTION()',
    JsonTable: 'JSON_TABLE',
  };
  if (special[kind]) return special[kind];
  if (kind.startsWith('Json')) return `SQL/JSON (${kind})`;
  return kind
    .replace(/Stmt$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}
