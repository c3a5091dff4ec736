// The topic rewrite (DESIGN 3): a topic reference becomes
//   (SELECT <fields> FROM <base> WHERE <access filters> OFFSET 0) AS <alias>
// built as AST nodes (attribute values are A_Const nodes, never spliced text).
// OFFSET 0 is the security barrier: PostgreSQL neither flattens such a subquery
// nor pushes the user's conditions into it, so they never run on hidden rows.
import type { Attributes, Topic } from '../config/model.ts';
import type { AstNode } from './parse.ts';
import { refuse } from './refusal.ts';
import type { ConstantClass } from './normalize.ts';
import type { PushdownClass } from './dialects/types.ts';

/** A topic as decide() sees it: the server may add column types read from the warehouse catalog. */
export type TopicInfo = Topic & { columnTypes?: Record<string, string> };

export const str = (sval: string): AstNode => ({ String: { sval } });
export const colRef = (...names: string[]): AstNode => ({ ColumnRef: { fields: names.map(str) } });
export const strConst = (sval: string): AstNode => ({ A_Const: { sval: { sval } } });

/** The WHERE of a topic's derived table for these attributes, or undefined for "all rows". */
export function accessFilterCondition(topic: Topic, attributes: Attributes, user: string): AstNode | undefined {
  const conds: AstNode[] = [];
  for (const f of topic.access_filters) {
    const values = attributes[f.attribute] ?? [];
    if (values.length === 0) {
      refuse(
        'topic.missing_attribute',
        '42501',
        `topic ${topic.name} needs user attribute "${f.attribute}", which ${user} does not have; ask an org admin to set it`,
      );
    }
    if (values.some((v) => f.values_for_unfiltered.includes(v))) continue;
    if (values.length === 1) {
      conds.push({ A_Expr: { kind: 'AEXPR_OP', name: [str('=')], lexpr: colRef(f.field), rexpr: strConst(values[0]) } });
    } else {
      conds.push({
        A_Expr: { kind: 'AEXPR_IN', name: [str('=')], lexpr: colRef(f.field), rexpr: { List: { items: values.map(strConst) } } },
      });
    }
  }
  return andAll(conds);
}

export function andAll(conds: AstNode[]): AstNode | undefined {
  if (conds.length === 0) return undefined;
  if (conds.length === 1) return conds[0];
  return { BoolExpr: { boolop: 'AND_EXPR', args: conds } };
}

/** The SelectStmt body (unwrapped) of a topic's derived table. */
export function derivedSelect(topic: Topic, attributes: Attributes, user: string): AstNode {
  const sel: AstNode = {
    targetList: topic.fields.map((f) => ({ ResTarget: { val: colRef(f) } })),
    fromClause: [{ RangeVar: { schemaname: topic.base.schema, relname: topic.base.table, inh: true, relpersistence: 'p' } }],
    limitOffset: { A_Const: { ival: {} } },
    limitOption: 'LIMIT_OPTION_COUNT',
    op: 'SETOP_NONE',
  };
  const where = accessFilterCondition(topic, attributes, user);
  if (where) sel.whereClause = where;
  return sel;
}

/** AND one more condition into a derived table's WHERE. */
export function addCondition(sel: AstNode, cond: AstNode): void {
  const cur = sel.whereClause as AstNode | undefined;
  if (!cur) sel.whereClause = cond;
  else if (cur.BoolExpr?.boolop === 'AND_EXPR') cur.BoolExpr.args.push(cond);
  else sel.whereClause = { BoolExpr: { boolop: 'AND_EXPR', args: [cur, cond] } };
}

// Types whose comparison operators (= <> < > <= >=) are leakproof in PostgreSQL
// (pg_proc.proleakproof). numeric, float and json ones are not: a failing numeric
// comparison could report a hidden value.
const LEAKPROOF_TYPES: Record<string, PushdownClass> = {
  int2: 'int',
  int4: 'int',
  int8: 'int',
  smallint: 'int',
  integer: 'int',
  bigint: 'int',
  oid: 'int',
  text: 'text',
  varchar: 'text',
  'character varying': 'text',
  bpchar: 'text',
  character: 'text',
  name: 'text',
  date: 'other',
  timestamp: 'other',
  'timestamp without time zone': 'other',
  timestamptz: 'other',
  'timestamp with time zone': 'other',
  uuid: 'other',
  bool: 'bool',
  boolean: 'bool',
};
const PUSHABLE_OPS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);

/** PostgreSQL's pushdown rule (the default of a Walker): the leakproof comparison operators of the type. */
export function postgresPushdownClass(columnType: string): PushdownClass | undefined {
  return LEAKPROOF_TYPES[columnType.toLowerCase()];
}

/**
 * If `expr` is `<column> op <literal>` (either side) with a leakproof operator for the
 * column's type, the copy to place inside the barrier with the column unqualified;
 * `resolve` maps a ColumnRef to the column name of this topic, or undefined.
 */
export function pushableCopy(
  expr: AstNode,
  topic: TopicInfo,
  resolve: (ref: AstNode) => string | undefined,
  constants?: readonly ConstantClass[],
  classOf: (columnType: string) => PushdownClass | undefined = postgresPushdownClass,
): AstNode | undefined {
  const a = expr.A_Expr;
  if (a?.kind !== 'AEXPR_OP' || a.name?.length !== 1) return undefined;
  const op = a.name[0]?.String?.sval as string | undefined;
  if (!op || !PUSHABLE_OPS.has(op)) return undefined;
  let colSide: 'lexpr' | 'rexpr';
  let lit: AstNode | undefined;
  if (a.lexpr?.ColumnRef && (lit = literalOf(a.rexpr, constants))) colSide = 'lexpr';
  else if (a.rexpr?.ColumnRef && (lit = literalOf(a.lexpr, constants))) colSide = 'rexpr';
  else return undefined;
  const col = resolve(a[colSide]);
  if (!col) return undefined;
  const type = topic.columnTypes?.[col]?.toLowerCase();
  const cls = type ? classOf(type) : undefined;
  if (!cls) return undefined;
  if (lit.isnull) return undefined;
  // The literal's own type decides the operator: 5.5 against an int column is a numeric
  // comparison (not leakproof); a quoted literal takes the column's type.
  const ok = lit.sval !== undefined || (cls === 'int' && lit.ival !== undefined) || (cls === 'bool' && lit.boolval !== undefined);
  if (!ok) return undefined;
  // The copy keeps a placeholder as a placeholder: the constant goes back in at both places.
  const copy = structuredClone(expr);
  copy.A_Expr[colSide] = colRef(col);
  delete copy.A_Expr.location;
  return copy;
}

/**
 * The A_Const an operand is, or stands for: a placeholder of a shared decision (ParamRef $n
 * with constants[n-1] known, sql/normalize.ts) is treated exactly as the literal it replaced
 * (a string as an sval, an int4 integer as an ival; a numeric as an fval, never pushed).
 * Any other ParamRef (the extended protocol's, whose type the client may declare) is not a
 * literal of a known class, so never pushed.
 */
function literalOf(operand: AstNode | undefined, constants: readonly ConstantClass[] | undefined): AstNode | undefined {
  if (operand?.A_Const) return operand.A_Const;
  const n = operand?.ParamRef?.number as number | undefined;
  const cls = n !== undefined && constants ? constants[n - 1] : undefined;
  if (cls === 'string') return { sval: { sval: '' } };
  if (cls === 'int') return { ival: {} };
  if (cls === 'numeric') return { fval: { fval: '0' } };
  return undefined;
}
