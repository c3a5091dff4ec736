// The scope walker: visits every SELECT level of a statement with its CTE and FROM
// scope, resolves each relation (topic, CTE, or raw), rewrites topic references into
// their barrier subqueries, and checks functions and topic columns on the way.
// Three modes: 'topics' (Query Topics users: every name is a topic; the query has already
// passed the allowlist, sql/allowlist.ts, which checks every call form), 'raw'
// (queriers and connection admins: names resolve on the warehouse, except names in
// the topics schema, which are topics, governed) and 'catalog' (a Query Topics user's
// catalog query, run on the topic catalog, which holds nothing secret: only the
// denylists apply).
import type { DecisionContext } from '../policy/decision.ts';
import type { AstNode } from './parse.ts';
import { refuse } from './refusal.ts';
import { WRITE_FUNCTIONS, deniedRelation, isDeniedForQueryTopics, isDeniedFunction } from './functions.ts';
import type { PushdownClass } from './dialects/types.ts';
import { type TopicInfo, addCondition, derivedSelect, pushableCopy } from './topic.ts';
import type { ConstantClass } from './normalize.ts';

export type WalkMode = 'topics' | 'raw' | 'catalog';

interface FromItem {
  /** The name the item is referred to by (alias, or relation name). */
  refName?: string;
  topic?: TopicInfo;
  /** The topic's derived table body (for pushdown). */
  inner?: AstNode;
  /** The user renamed the columns (`orders AS o(a, b)`): column checks are off. */
  renamed?: boolean;
  /** The user wrote the schema (`public.orders`): `public.orders.id` must lose it. */
  schemaName?: string;
}

interface Level {
  parent?: Level;
  ctes: Set<string>;
  items: FromItem[];
  outputNames: Set<string>;
}

/** A topic reference in raw SQL: its text is replaced by the barrier subquery. */
export interface RawTopicSplice {
  /** Byte offset of the qualified name in the whole text. */
  location: number;
  /** Number of name parts written (schema.table = 2, catalog.schema.table = 3). */
  parts: number;
  hasAlias: boolean;
  aliasName: string;
  inner: AstNode;
}

export class Walker {
  readonly topicsUsed = new Set<string>();
  readonly splices: RawTopicSplice[] = [];
  constructor(
    readonly ctx: DecisionContext,
    readonly mode: WalkMode,
    /** A shared decision's placeholders $1..$n, by class (sql/normalize.ts): pushed down as the literals they stand for. */
    readonly constants?: readonly ConstantClass[],
    /** The warehouse dialect's pushdown rule (SqlDialect.pushdownClass); absent: PostgreSQL's. */
    readonly pushdownClass?: (columnType: string) => PushdownClass | undefined,
  ) {}

  private topicList(): string {
    return [...this.ctx.topics.keys()].sort().join(', ');
  }

  /** Walk any node (statement or expression) with the given scope. */
  visit(node: unknown, lvl: Level | undefined): void {
    if (Array.isArray(node)) {
      for (const n of node) this.visit(n, lvl);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as AstNode;
    for (const key of Object.keys(obj)) {
      const val = obj[key];
      switch (key) {
        case 'SelectStmt':
          this.walkSelect(val, lvl);
          break;
        case 'FuncCall':
          this.checkFunction(val);
          this.visit(val, lvl);
          break;
        case 'ColumnRef':
          this.checkColumnNotation((val.fields ?? []).slice(1));
          this.checkColumn(val, lvl);
          break;
        case 'A_Indirection':
          // `(x).fn` calls fn(x): the denylist holds for calls in column notation too.
          this.checkColumnNotation(val.indirection ?? []);
          this.visit(val, lvl);
          break;
        case 'RangeVar':
        case 'RangeSubselect':
        case 'RangeFunction':
        case 'JoinExpr':
        case 'RangeTableSample':
        case 'RangeTableFunc':
          // FROM items outside a SELECT (UPDATE ... FROM, DELETE ... USING): their own scope.
          this.fromItem(obj, lvl ?? newLevel(undefined));
          break;
        default:
          if (this.mode !== 'raw' && /Stmt$/.test(key)) {
            // A writable CTE or any other statement nested in a query.
            refuse(
              'query_topics.statement_kind',
              '42501',
              `${statementName(key)} is not permitted for query_topics users on connection ${this.ctx.connection.name}; query a topic: ${this.topicList()}`,
            );
          }
          if (val && typeof val === 'object') this.visit(val, lvl);
      }
    }
  }

  /** One SELECT level (unwrapped SelectStmt). */
  walkSelect(sel: AstNode, parent: Level | undefined): void {
    const lvl = newLevel(parent);
    const w = sel.withClause as AstNode | undefined;
    if (w) {
      const ctes: AstNode[] = (w.ctes ?? []).map((c: AstNode) => c.CommonTableExpr);
      if (w.recursive) {
        for (const c of ctes) lvl.ctes.add(c.ctename);
        for (const c of ctes) this.visit(c.ctequery, lvl);
      } else {
        // Each CTE sees the ones before it, not itself: `WITH orders AS (SELECT * FROM orders)` reads the topic.
        for (const c of ctes) {
          this.visit(c.ctequery, { ...newLevel(parent), ctes: new Set(lvl.ctes) });
          lvl.ctes.add(c.ctename);
        }
      }
    }
    if (sel.op && sel.op !== 'SETOP_NONE') {
      this.walkSelect(sel.larg, lvl);
      this.walkSelect(sel.rarg, lvl);
      this.visit(sel.sortClause, lvl);
      this.visit(sel.limitCount, lvl);
      this.visit(sel.limitOffset, lvl);
      return;
    }
    for (const item of sel.fromClause ?? []) this.fromItem(item, lvl);
    for (const t of sel.targetList ?? []) {
      const name = t.ResTarget?.name;
      if (name) lvl.outputNames.add(name);
    }
    for (const key of [
      'valuesLists',
      'targetList',
      'whereClause',
      'groupClause',
      'havingClause',
      'windowClause',
      'sortClause',
      'distinctClause',
      'limitCount',
      'limitOffset',
    ]) {
      this.visit(sel[key], lvl);
    }
    if (sel.whereClause) this.pushDown(sel.whereClause, lvl);
  }

  /** A FROM item (wrapped node); mutates topic references into derived tables. */
  private fromItem(item: AstNode, lvl: Level): void {
    if (item.RangeVar) {
      this.rangeVar(item, lvl);
    } else if (item.JoinExpr) {
      const j = item.JoinExpr;
      this.fromItem(j.larg, lvl);
      this.fromItem(j.rarg, lvl);
      this.visit(j.quals, lvl);
      if (j.alias) lvl.items.push({ refName: j.alias.aliasname });
    } else if (item.RangeSubselect) {
      const rs = item.RangeSubselect;
      this.visit(rs.subquery, lvl);
      lvl.items.push({ refName: rs.alias?.aliasname });
    } else if (item.RangeFunction) {
      const rf = item.RangeFunction;
      this.visit(rf.functions, lvl);
      lvl.items.push({ refName: rf.alias?.aliasname });
    } else {
      if (this.mode !== 'raw') {
        refuse('unsupported', '0A000', `${Object.keys(item)[0]} in FROM is not supported for query_topics users`);
      }
      this.visit(Object.values(item), lvl);
      lvl.items.push({});
    }
  }

  private rangeVar(item: AstNode, lvl: Level): void {
    const rv = item.RangeVar as AstNode;
    const relname: string = rv.relname;
    const schema: string | undefined = rv.schemaname;
    const qualified = [rv.catalogname, schema, relname].filter(Boolean).join('.');
    const refName: string = rv.alias?.aliasname ?? relname;
    if (!schema && !rv.catalogname && lvl.ctes.has(relname)) {
      lvl.items.push({ refName });
      return;
    }
    const denied = deniedRelation(relname);
    if (denied && (!schema || schema === 'pg_catalog')) {
      refuse('denied_relation', '42501', `relation "${qualified}" is not readable through Gatehouse: ${denied}`);
    }
    if (this.mode === 'catalog') {
      lvl.items.push({ refName });
      return;
    }
    const topicsSchema = this.ctx.connection.topicsSchema;
    let topic: TopicInfo | undefined;
    if (this.mode === 'topics') {
      const schemaOk = !schema || schema === 'public' || schema === topicsSchema;
      const catalogOk = !rv.catalogname || rv.catalogname === this.ctx.connection.name;
      topic = schemaOk && catalogOk ? this.ctx.topics.get(relname) : undefined;
      if (!topic) {
        refuse(
          'query_topics.non_topic_relation',
          '42501',
          `relation "${qualified}" is not a topic on connection ${this.ctx.connection.name}; query_topics users may only read topics: ${this.topicList()}`,
        );
      }
    } else {
      if (schema !== topicsSchema) {
        lvl.items.push({ refName });
        return;
      }
      topic = this.ctx.topics.get(relname);
      if (!topic) {
        refuse(
          'topics_schema.unknown_topic',
          '42501',
          `relation "${qualified}" is not a topic on connection ${this.ctx.connection.name}; topics: ${this.topicList()}`,
        );
      }
    }
    this.topicsUsed.add(topic.name);
    const inner = derivedSelect(topic, this.ctx.attributes, this.ctx.user);
    lvl.items.push({ refName, topic, inner, renamed: Boolean(rv.alias?.colnames?.length), schemaName: rv.alias ? undefined : schema });
    if (this.mode === 'raw') {
      // Raw text is spliced, not deparsed; the AST is rewritten too (COPY's copyOut query).
      const parts = 1 + (schema ? 1 : 0) + (rv.catalogname ? 1 : 0);
      this.splices.push({ location: rv.location, parts, hasAlias: Boolean(rv.alias), aliasName: refName, inner });
    }
    const alias: AstNode = { aliasname: refName };
    if (rv.alias?.colnames) alias.colnames = rv.alias.colnames;
    delete item.RangeVar;
    item.RangeSubselect = { subquery: { SelectStmt: inner }, alias };
  }

  private checkFunction(fc: AstNode): void {
    const names: string[] = (fc.funcname ?? []).map((n: AstNode) => n.String?.sval ?? '');
    const name = names[names.length - 1] ?? '';
    const shown = names.join('.');
    if (isDeniedFunction(name)) {
      refuse('denied_function', '42501', `function ${shown} is not permitted through Gatehouse`);
    }
    if (this.mode !== 'raw' && isDeniedForQueryTopics(name)) {
      refuse('denied_function', '42501', `function ${shown} is not permitted for query_topics users on connection ${this.ctx.connection.name}`);
    }
    if (WRITE_FUNCTIONS.has(name.toLowerCase()) && !(this.mode === 'raw' && this.ctx.connection.allowWrites)) {
      refuse(
        'read_only',
        '42501',
        `writes are not permitted on connection ${this.ctx.connection.name} (it does not set allow_writes): ${shown}, like NOTIFY, refused`,
      );
    }
    if (name === 'current_setting') {
      const arg = fc.args?.[0]?.A_Const?.sval?.sval as string | undefined;
      if (arg === undefined) {
        refuse('denied_function', '42501', 'current_setting is permitted only with a constant setting name');
      }
    }
  }

  /** A name after a dot may be a function called in column notation: never a denied one. */
  private checkColumnNotation(parts: AstNode[]): void {
    for (const p of parts) {
      const name = p.String?.sval;
      if (name !== undefined && (this.mode === 'raw' ? isDeniedFunction(name) : isDeniedForQueryTopics(name))) {
        refuse('denied_function', '42501', `function ${name} (called in column notation) is not permitted through Gatehouse`);
      }
    }
  }

  /** Where it is statically clear that a topic column is not a field, say so. */
  private checkColumn(cr: AstNode, lvl: Level | undefined): void {
    if (!lvl) return;
    const fields: AstNode[] = cr.fields ?? [];
    if (fields.some((f) => f.A_Star)) return;
    const names: string[] = fields.map((f) => f.String?.sval ?? '');
    if (names.length === 3 || names.length === 4) {
      // schema.table.column: the derived table has no schema, so drop it (topic mode only).
      const [table, col] = names.slice(-2);
      const schema = names[names.length - 3];
      const item = findItem(lvl, table);
      if (item?.topic && item.schemaName === schema) {
        this.fieldCheck(item, col);
        if (this.mode === 'topics') cr.fields = fields.slice(-2);
      }
      return;
    }
    if (names.length === 2) {
      const item = findItem(lvl, names[0]);
      if (item?.topic) this.fieldCheck(item, names[1]);
      return;
    }
    const col = names[0];
    // A whole-row reference to a FROM item (`(o).amount`, `row_to_json(o)`): not a column.
    if (findItem(lvl, col) && !lvl.items.some((i) => i.topic?.fields.includes(col))) return;
    if (lvl.items.length !== 1 || !lvl.items[0].topic || lvl.outputNames.has(col)) return;
    const item = lvl.items[0];
    if (item.topic!.fields.includes(col)) return;
    // A correlated reference to an outer level? Only refuse when no outer level could supply it.
    for (let p = lvl.parent; p; p = p.parent) {
      for (const it of p.items) {
        if (!it.topic || it.renamed || it.topic.fields.includes(col)) return;
      }
      if (p.outputNames.has(col)) return;
    }
    this.fieldCheck(item, col);
  }

  private fieldCheck(item: FromItem, col: string): void {
    const topic = item.topic!;
    if (item.renamed || topic.fields.includes(col)) return;
    refuse('query_topics.non_topic_field', '42501', `column "${col}" is not a field of topic ${topic.name}; its fields are: ${topic.fields.join(', ')}`);
  }

  /** Leakproof pushdown: copy `col op literal` conjuncts of this level's WHERE inside the barrier. */
  private pushDown(where: AstNode, lvl: Level): void {
    const conjuncts: AstNode[] = where.BoolExpr?.boolop === 'AND_EXPR' ? where.BoolExpr.args : [where];
    for (const item of lvl.items) {
      if (!item.topic || !item.inner || item.renamed || !item.topic.columnTypes) continue;
      const resolve = (ref: AstNode): string | undefined => {
        const names: string[] = (ref.ColumnRef.fields ?? []).map((f: AstNode) => f.String?.sval);
        let col: string | undefined;
        if (names.length === 2 && names[0] === item.refName) col = names[1];
        else if (names.length === 1 && lvl.items.length === 1) col = names[0];
        return col && item.topic!.fields.includes(col) ? col : undefined;
      };
      for (const c of conjuncts) {
        const copy = pushableCopy(c, item.topic, resolve, this.constants, this.pushdownClass);
        if (copy) addCondition(item.inner, copy);
      }
    }
  }
}

function newLevel(parent: Level | undefined): Level {
  return { parent, ctes: new Set(parent?.ctes ?? []), items: [], outputNames: new Set() };
}

function findItem(lvl: Level, name: string): FromItem | undefined {
  for (let l: Level | undefined = lvl; l; l = l.parent) {
    const it = l.items.find((i) => i.refName === name);
    if (it) return it;
    if (l.ctes.has(name)) return undefined;
  }
  return undefined;
}

/** `InsertStmt` -> `INSERT`, `CreateFunctionStmt` -> `CREATE FUNCTION`. */
export function statementName(nodeType: string): string {
  const special: Record<string, string> = {
    SelectStmt: 'SELECT',
    InsertStmt: 'INSERT',
    UpdateStmt: 'UPDATE',
    DeleteStmt: 'DELETE',
    MergeStmt: 'MERGE',
    DoStmt: 'DO',
    CopyStmt: 'COPY',
    ExplainStmt: 'EXPLAIN',
    DeclareCursorStmt: 'DECLARE CURSOR',
    PrepareStmt: 'PREPARE',
    ExecuteStmt: 'EXECUTE',
    DeallocateStmt: 'DEALLOCATE',
    CreateFunctionStmt: 'CREATE FUNCTION',
    CreateTableAsStmt: 'CREATE TABLE AS',
    CreateStmt: 'CREATE TABLE',
    IndexStmt: 'CREATE INDEX',
    ViewStmt: 'CREATE VIEW',
    DropStmt: 'DROP',
    TruncateStmt: 'TRUNCATE',
    GrantStmt: 'GRANT',
    GrantRoleStmt: 'GRANT ROLE',
    VacuumStmt: 'VACUUM',
    ListenStmt: 'LISTEN',
    NotifyStmt: 'NOTIFY',
    UnlistenStmt: 'UNLISTEN',
    CallStmt: 'CALL',
    LockStmt: 'LOCK',
    FetchStmt: 'FETCH',
    ClosePortalStmt: 'CLOSE',
    LoadStmt: 'LOAD',
    CheckPointStmt: 'CHECKPOINT',
    VariableSetStmt: 'SET',
    VariableShowStmt: 'SHOW',
    TransactionStmt: 'transaction control',
    DiscardStmt: 'DISCARD',
    AlterSystemStmt: 'ALTER SYSTEM',
    RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW',
    ClusterStmt: 'CLUSTER',
    ReindexStmt: 'REINDEX',
    CommentStmt: 'COMMENT',
    RenameStmt: 'ALTER ... RENAME',
    CreateSchemaStmt: 'CREATE SCHEMA',
    CreateExtensionStmt: 'CREATE EXTENSION',
    CreateRoleStmt: 'CREATE ROLE',
    AlterTableStmt: 'ALTER TABLE',
  };
  if (special[nodeType]) return special[nodeType];
  return nodeType
    .replace(/Stmt$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}
