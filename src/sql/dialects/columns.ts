// Dialect-neutral facts about PostgreSQL's tree: the name PostgreSQL gives a result column,
// and the SqlType of a declared column type.
import type { AstNode } from '../parse.ts';
import type { SqlType } from './types.ts';

/** The unqualified name of a function or type (`pg_catalog.lower` -> lower), lower-cased; undefined if qualified otherwise. */
export function baseName(names: AstNode[] | undefined): string | undefined {
  const parts = (names ?? []).map((n) => n.String?.sval as string | undefined);
  if (parts.some((p) => p === undefined)) return undefined;
  if (parts.length === 1) return parts[0]!.toLowerCase();
  if (parts.length === 2 && parts[0] === 'pg_catalog') return parts[1]!.toLowerCase();
  return undefined;
}

const SQLVALUE_NAMES: Record<string, string> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'current_user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};

/** PostgreSQL's FigureColnameInternal: the name and its strength (0 none, 1 a type's name, 2 a real name). */
function figure(node: AstNode | undefined): [string, number] {
  if (!node) return ['?column?', 0];
  if (node.ColumnRef) {
    const fields = node.ColumnRef.fields as AstNode[];
    const last = fields[fields.length - 1];
    return last?.String ? [last.String.sval, 2] : ['?column?', 0];
  }
  if (node.FuncCall) {
    const names = node.FuncCall.funcname as AstNode[];
    return [names[names.length - 1]?.String?.sval ?? '?column?', 2];
  }
  if (node.A_Expr) return node.A_Expr.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : ['?column?', 0];
  if (node.TypeCast) {
    const [name, strength] = figure(node.TypeCast.arg);
    if (strength > 1) return [name, strength];
    const names = node.TypeCast.typeName?.names as AstNode[] | undefined;
    const t = names?.[names.length - 1]?.String?.sval;
    return t ? [t, 1] : [name, strength];
  }
  if (node.CaseExpr) return ['case', 1];
  if (node.CoalesceExpr) return ['coalesce', 2];
  if (node.MinMaxExpr) return [node.MinMaxExpr.op === 'IS_GREATEST' ? 'greatest' : 'least', 2];
  if (node.SQLValueFunction) return [SQLVALUE_NAMES[node.SQLValueFunction.op] ?? '?column?', 2];
  if (node.SubLink) {
    const sl = node.SubLink;
    if (sl.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
    if (sl.subLinkType === 'ARRAY_SUBLINK') return ['array', 2];
    if (sl.subLinkType === 'EXPR_SUBLINK' || sl.subLinkType === 'MULTIEXPR_SUBLINK') {
      const first = (sl.subselect?.SelectStmt?.targetList as AstNode[] | undefined)?.[0]?.ResTarget;
      if (first?.name) return [first.name, 2];
      return figure(first?.val);
    }
    return ['?column?', 0];
  }
  return ['?column?', 0];
}

/** The output name PostgreSQL gives a select-list entry. */
export function outputName(target: AstNode): string {
  const rt = target.ResTarget ?? target;
  if (rt.name) return rt.name as string;
  return figure(rt.val)[0];
}

/** A declared PostgreSQL column type (`integer`, `character varying(20)`, `numeric(10,2)`...) as a SqlType. */
export function sqlTypeOf(pgType: string): SqlType | undefined {
  const t = pgType
    .toLowerCase()
    .replace(/\(.*\)/, '')
    .replace(/\s+/g, ' ')
    .trim();
  switch (t) {
    case 'int2':
    case 'int4':
    case 'smallint':
    case 'integer':
    case 'int':
    case 'serial':
    case 'smallserial':
      return 'int';
    case 'int8':
    case 'bigint':
    case 'bigserial':
      return 'int8';
    case 'numeric':
    case 'decimal':
      return 'numeric';
    case 'float4':
    case 'float8':
    case 'real':
    case 'double precision':
    case 'float':
      return 'float';
    case 'text':
    case 'varchar':
    case 'character varying':
    case 'char':
    case 'character':
    case 'bpchar':
    case 'name':
      return 'text';
    case 'bool':
    case 'boolean':
      return 'bool';
    case 'date':
      return 'date';
    case 'timestamp':
    case 'timestamp without time zone':
      return 'timestamp';
    case 'timestamptz':
    case 'timestamp with time zone':
      return 'timestamptz';
    case 'interval':
      return 'interval';
    default:
      return undefined;
  }
}
