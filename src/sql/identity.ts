// Session identity in a Query Topics user's query, answered by Gatehouse: the warehouse
// account behind the session is Gatehouse's, not the person's. CURRENT_USER, SESSION_USER,
// USER and CURRENT_ROLE are the person's email; CURRENT_CATALOG and current_database() the
// connection's name; CURRENT_SCHEMA and current_schema() the schema topics live in.
// A small AST-to-AST rewrite: each such node becomes a typed constant.
import type { AstNode } from './parse.ts';

export interface SessionIdentity {
  user: string;
  /** The connection's name: what the person wrote as dbname. */
  database: string;
}

const nameConst = (value: string): AstNode => ({
  TypeCast: {
    arg: { A_Const: { sval: { sval: value } } },
    typeName: { names: [{ String: { sval: 'pg_catalog' } }, { String: { sval: 'name' } }], typemod: -1 },
  },
});

/** The constant a node stands for, with the column name PostgreSQL would have given it. */
function identityValue(node: AstNode, id: SessionIdentity): { value: string; column: string } | undefined {
  const svf = node.SQLValueFunction;
  if (svf) {
    switch (svf.op) {
      case 'SVFOP_CURRENT_USER':
        return { value: id.user, column: 'current_user' };
      case 'SVFOP_CURRENT_ROLE':
        return { value: id.user, column: 'current_role' };
      case 'SVFOP_USER':
        return { value: id.user, column: 'user' };
      case 'SVFOP_SESSION_USER':
        return { value: id.user, column: 'session_user' };
      case 'SVFOP_CURRENT_CATALOG':
        return { value: id.database, column: 'current_catalog' };
      case 'SVFOP_CURRENT_SCHEMA':
        return { value: 'public', column: 'current_schema' };
      default:
        return undefined;
    }
  }
  const fc = node.FuncCall;
  if (fc && !fc.args?.length && !fc.over) {
    const names: string[] = (fc.funcname ?? []).map((n: AstNode) => n.String?.sval);
    const schema = names.length === 2 ? names[0] : undefined;
    if (names.length > 2 || (schema && schema !== 'pg_catalog')) return undefined;
    const name = names[names.length - 1];
    if (name === 'current_database') return { value: id.database, column: 'current_database' };
    if (name === 'current_schema') return { value: 'public', column: 'current_schema' };
    if (name === 'current_user' || name === 'session_user') return { value: id.user, column: name };
  }
  return undefined;
}

/** Replace every session-identity call in the tree, in place. */
export function substituteSessionIdentity(tree: AstNode, id: SessionIdentity): void {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as AstNode;
    // A select-list entry keeps the column name the call would have had.
    if (obj.ResTarget?.val && !obj.ResTarget.name) {
      const hit = identityValue(obj.ResTarget.val, id);
      if (hit) obj.ResTarget.name = hit.column;
    }
    const hit = identityValue(obj, id);
    if (hit) {
      for (const k of Object.keys(obj)) delete obj[k];
      Object.assign(obj, nameConst(hit.value));
      return;
    }
    for (const v of Object.values(obj)) if (v && typeof v === 'object') visit(v);
  };
  visit(tree);
}

/** Functions whose first argument names a role of the server: a person's email there would name no role. */
const ROLE_ARGUMENT = /^(has_[a-z_]+_privilege|pg_has_role)$/;
const PERSON_COLUMNS = new Set(['current_user', 'current_role', 'user', 'session_user']);

/**
 * The topic catalog's answer to who is asking (policy/catalog.ts): CURRENT_USER, SESSION_USER,
 * USER, CURRENT_ROLE, "current_user"(), "session_user"() and getpgusername() become the
 * person's email, in place, as on the topic path. A direct argument of a privilege function
 * (`has_table_privilege(current_user, ...)`) stays: there it names the role whose privileges
 * decide what the catalog shows, not a value shown. True when anything was replaced.
 */
export function substitutePersonIdentity(tree: AstNode, user: string): boolean {
  let replaced = false;
  const id: SessionIdentity = { user, database: '' };
  const personValue = (node: AstNode): { value: string; column: string } | undefined => {
    const names: string[] | undefined =
      node.FuncCall && !node.FuncCall.args?.length ? (node.FuncCall.funcname ?? []).map((n: AstNode) => n.String?.sval) : undefined;
    if (names && names[names.length - 1] === 'getpgusername' && (names.length === 1 || (names.length === 2 && names[0] === 'pg_catalog'))) {
      return { value: user, column: 'getpgusername' };
    }
    const hit = identityValue(node, id);
    return hit && PERSON_COLUMNS.has(hit.column) ? hit : undefined;
  };
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as AstNode;
    if (obj.ResTarget?.val && !obj.ResTarget.name) {
      const hit = personValue(obj.ResTarget.val);
      if (hit) obj.ResTarget.name = hit.column;
    }
    const hit = personValue(obj);
    if (hit) {
      for (const k of Object.keys(obj)) delete obj[k];
      Object.assign(obj, nameConst(hit.value));
      replaced = true;
      return;
    }
    const fc = obj.FuncCall;
    const fname: string | undefined = fc?.funcname?.[fc.funcname.length - 1]?.String?.sval;
    if (fc && fname && ROLE_ARGUMENT.test(fname)) {
      for (const [k, v] of Object.entries(fc)) {
        if (k !== 'args') visit(v);
      }
      for (const arg of fc.args ?? []) {
        if (!personValue(arg)) visit(arg);
      }
      return;
    }
    for (const v of Object.values(obj)) if (v && typeof v === 'object') visit(v);
  };
  visit(tree);
  return replaced;
}
