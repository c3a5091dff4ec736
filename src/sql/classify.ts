// What a statement is: its kind, whether it writes, whether it returns rows, and
// the COPY options. Pure functions of the AST; policy (who may) lives in decide.ts.
import type { SessionNames, StatementKind } from '../policy/decision.ts';
import type { AstNode } from './parse.ts';
import { nodeType } from './parse.ts';
import { PG_CATALOG_RELATIONS } from './pg-catalog-relations.ts';
import { refuse } from './refusal.ts';
import { statementName } from './scope.ts';

const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Statements that only read (or only touch session state) on the warehouse. */
const READ_STATEMENTS = new Set([
  'SelectStmt',
  'ExplainStmt',
  'CopyStmt',
  'VariableSetStmt',
  'VariableShowStmt',
  'TransactionStmt',
  'DiscardStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'PrepareStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'ListenStmt',
  'UnlistenStmt',
]);

/** Refused at every level: they reach the server's files, run code, or define code. */
const DENIED_STATEMENTS = new Set(['DoStmt', 'CreateFunctionStmt', 'LoadStmt', 'AlterSystemStmt', 'CreateExtensionStmt']);

export function kindOf(stmt: AstNode): StatementKind {
  const t = nodeType(stmt);
  switch (t) {
    case 'SelectStmt':
      return stmt.SelectStmt.intoClause ? 'ddl' : 'select';
    case 'ExplainStmt':
      return 'explain';
    case 'CopyStmt':
      return stmt.CopyStmt.is_from ? 'write' : 'copy_out';
    case 'VariableSetStmt':
      return stmt.VariableSetStmt.kind?.startsWith('VAR_RESET') ? 'reset' : 'set';
    case 'VariableShowStmt':
      return 'show';
    case 'TransactionStmt':
      return 'transaction';
    case 'DiscardStmt':
      return 'discard';
    default:
      if (DML.has(t)) return 'write';
      if (READ_STATEMENTS.has(t)) return 'other';
      return 'ddl';
  }
}

/** A plain row-returning query: SELECT/VALUES/TABLE/WITH..SELECT without INTO or locking. */
export function returnsRows(stmt: AstNode): boolean {
  const s = stmt.SelectStmt;
  return Boolean(s) && !s.intoClause && !s.lockingClause?.length && !containsNode(s, DML);
}

/** Does the tree hold a node of one of these types anywhere (writable CTEs, nested DML)? */
export function containsNode(node: unknown, types: Set<string>): boolean {
  if (Array.isArray(node)) return node.some((n) => containsNode(n, types));
  if (!node || typeof node !== 'object') return false;
  for (const [k, v] of Object.entries(node as AstNode)) {
    if (types.has(k)) return true;
    if (v && typeof v === 'object' && containsNode(v, types)) return true;
  }
  return false;
}

/** `transaction_read_only` false among BEGIN / SET TRANSACTION options = READ WRITE. */
export function asksReadWrite(options: AstNode[] | undefined): boolean {
  for (const o of options ?? []) {
    const d = o.DefElem;
    if (d?.defname === 'transaction_read_only') {
      const c = d.arg?.A_Const;
      const v = c?.ival?.ival ?? (c?.boolval?.boolval ? 1 : 0);
      if (!v) return true;
    }
  }
  return false;
}

export interface StatementFacts {
  /** The statement writes (or could write, or lifts the read-only guard). */
  writes: boolean;
  /** Refused at every level. */
  denied?: string;
  /** What to call it in a refusal. */
  name: string;
}

const GUARD_SETTINGS = new Set(['default_transaction_read_only', 'transaction_read_only', 'role', 'session_authorization']);

const SEED_REFUSAL = "SET seed is not permitted through Gatehouse: the random generator's state outlives the session on a pooled warehouse connection";

/** Facts a raw-SQL decision needs. Unknown statements count as writes (fail closed). */
export function factsOf(stmt: AstNode): StatementFacts {
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  const name = statementName(t);
  if (DENIED_STATEMENTS.has(t)) return { writes: true, denied: `${name} is not permitted through Gatehouse`, name };
  switch (t) {
    case 'SelectStmt': {
      if (body.intoClause) return { writes: true, name: 'SELECT INTO' };
      if (body.lockingClause?.length) return { writes: true, name: 'SELECT FOR UPDATE/SHARE' };
      return { writes: containsNode(body, DML), name };
    }
    case 'CopyStmt': {
      if (body.is_program) return { writes: true, denied: 'COPY to or from a program is not permitted through Gatehouse', name };
      if (body.filename) return { writes: true, denied: 'COPY to or from a server file is not permitted through Gatehouse', name };
      if (body.is_from) return { writes: true, name: 'COPY FROM' };
      return { writes: containsNode(body, DML), name };
    }
    case 'ExplainStmt': {
      const analyze = (body.options ?? []).some((o: AstNode) => o.DefElem?.defname === 'analyze' && defBool(o.DefElem));
      const inner = factsOf(body.query);
      if (inner.denied) return inner;
      return { writes: analyze && inner.writes, name: analyze ? `EXPLAIN ANALYZE ${inner.name}` : name };
    }
    case 'PrepareStmt': {
      const inner = factsOf(body.query);
      if (inner.denied) return inner;
      return { writes: inner.writes, name: `PREPARE of ${inner.name}` };
    }
    case 'DeclareCursorStmt': {
      const inner = factsOf(body.query);
      return { ...inner, name: `DECLARE CURSOR of ${inner.name}` };
    }
    case 'VariableSetStmt': {
      const setting = String(body.name ?? '').toLowerCase();
      if (body.kind === 'VAR_SET_MULTI') return { writes: asksReadWrite(body.args), name: `SET ${body.name} READ WRITE` };
      if (GUARD_SETTINGS.has(setting)) return { writes: true, name: `${body.kind?.startsWith('VAR_RESET') ? 'RESET' : 'SET'} ${setting}` };
      // The random generator's state outlives DISCARD ALL and SET LOCAL alike: on a pooled
      // connection the next person's random() would be the one this session chose.
      if (setting === 'seed' && !body.kind?.startsWith('VAR_RESET')) return { writes: true, denied: SEED_REFUSAL, name: 'SET seed' };
      return { writes: false, name };
    }
    case 'TransactionStmt': {
      if (body.kind === 'TRANS_STMT_PREPARE' || body.kind === 'TRANS_STMT_COMMIT_PREPARED' || body.kind === 'TRANS_STMT_ROLLBACK_PREPARED') {
        return { writes: true, name: 'two-phase commit' };
      }
      return { writes: asksReadWrite(body.options), name: asksReadWrite(body.options) ? 'BEGIN READ WRITE' : name };
    }
    default:
      return { writes: !READ_STATEMENTS.has(t), name };
  }
}

function defBool(d: AstNode): boolean {
  if (!d.arg) return true;
  if (d.arg.Boolean) return Boolean(d.arg.Boolean.boolval);
  const s = d.arg.String?.sval ?? d.arg.A_Const?.sval?.sval;
  if (typeof s === 'string') return !['false', 'off', '0', 'no'].includes(s.toLowerCase());
  const i = d.arg.Integer?.ival ?? d.arg.A_Const?.ival?.ival;
  return i === undefined ? true : i !== 0;
}

export interface CopyOptions {
  format: 'text' | 'csv' | 'binary';
  header: boolean;
  delimiter?: string;
  /** Options Gatehouse itself writes back (the rest are refused for Query Topics users). */
  extra: Array<{ name: string; value: string }>;
}

/** COPY ... TO STDOUT options (both the WITH (...) and the legacy CSV HEADER spelling). */
export function copyOptions(options: AstNode[] | undefined, strict = true): CopyOptions {
  const out: CopyOptions = { format: 'text', header: false, extra: [] };
  for (const o of options ?? []) {
    const d = o.DefElem as AstNode;
    const sval: string | undefined = d.arg?.String?.sval;
    switch (d.defname) {
      case 'format':
        if (sval === 'csv' || sval === 'text' || sval === 'binary') out.format = sval;
        else refuse('unsupported', '0A000', `COPY format ${sval} is not supported through Gatehouse; use text, csv or binary`);
        break;
      case 'header':
        if (sval?.toLowerCase() === 'match') refuse('unsupported', '0A000', 'COPY HEADER MATCH applies only to COPY FROM');
        out.header = defBool(d);
        break;
      case 'delimiter':
        out.delimiter = sval;
        break;
      case 'null':
      case 'quote':
      case 'escape':
      case 'encoding':
        if (sval === undefined) refuse('unsupported', '0A000', `COPY option ${d.defname} needs a string value`);
        out.extra.push({ name: d.defname, value: sval });
        break;
      default:
        // Raw SQL keeps its other options (the warehouse reads them); topic exports do not.
        if (strict) refuse('unsupported', '0A000', `COPY option ${d.defname} is not supported through Gatehouse`);
    }
  }
  return out;
}

/**
 * A write into PostgreSQL's own catalog (`UPDATE pg_settings` is set_config() by a rule, so
 * a writable connection would run a denied function through it): the relation written, or
 * undefined. Nested writes (writable CTEs) count. Unqualified, a catalog relation's name
 * resolves to pg_catalog first; a table of the warehouse's own named pg_something does not
 * (node-postgres's suite writes pg_cursor_test). Only superusers can write catalog tables;
 * pg_settings is the one catalog view with write rules, so a relation a later PostgreSQL
 * adds to the catalog is no way around this.
 */
export function catalogWriteTarget(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const n of node) {
      const hit = catalogWriteTarget(n);
      if (hit) return hit;
    }
    return undefined;
  }
  if (!node || typeof node !== 'object') return undefined;
  for (const [k, v] of Object.entries(node as AstNode)) {
    if ((DML.has(k) || k === 'CopyStmt') && v?.relation) {
      const rv = v.relation as AstNode;
      const schema: string | undefined = rv.schemaname;
      const name: string = rv.relname ?? '';
      const written =
        (k !== 'CopyStmt' || v.is_from) && (schema === 'pg_catalog' || schema === 'information_schema' || (!schema && PG_CATALOG_RELATIONS.has(name)));
      if (written) return [schema, name].filter(Boolean).join('.');
    }
    if (v && typeof v === 'object') {
      const hit = catalogWriteTarget(v);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * The SQL cursor or prepared statement a statement creates, uses or drops (policy/decision.ts
 * SessionNames: the pipeline keeps the session's name tables with these), or undefined.
 */
export function sessionNamesOf(stmt: AstNode): SessionNames | undefined {
  const t = nodeType(stmt);
  const body = stmt[t] as AstNode;
  switch (t) {
    case 'DeclareCursorStmt':
      return { space: 'cursor', creates: body.portalname };
    case 'FetchStmt':
      return { space: 'cursor', uses: body.portalname };
    case 'ClosePortalStmt':
      // CLOSE ALL has no portalname.
      return body.portalname === undefined ? { space: 'cursor', drops: { all: true } } : { space: 'cursor', uses: body.portalname, drops: body.portalname };
    case 'PrepareStmt':
      return { space: 'statement', creates: body.name };
    case 'ExecuteStmt':
      return { space: 'statement', uses: body.name };
    case 'DeallocateStmt':
      return body.isall || body.name === undefined ? { space: 'statement', drops: { all: true } } : { space: 'statement', uses: body.name, drops: body.name };
    default:
      return undefined;
  }
}

/**
 * `SET SESSION CHARACTERISTICS AS TRANSACTION ... READ WRITE` with READ WRITE made READ ONLY
 * (a copy; the other modes kept). pgjdbc with readOnly=true&readOnlyMode=always sends READ
 * WRITE when autocommit goes off, then BEGIN READ ONLY for each transaction: on a connection
 * that does not allow writes, the session's default stays what Gatehouse pins, READ ONLY.
 */
export function sessionReadOnly(stmt: AstNode): AstNode {
  const s = stmt.VariableSetStmt as AstNode;
  const args = (s.args ?? []).map((o: AstNode) =>
    o.DefElem?.defname === 'transaction_read_only' ? { DefElem: { ...o.DefElem, arg: { A_Const: { ival: { ival: 1 } } } } } : o,
  );
  return { VariableSetStmt: { ...s, args } };
}

/** SET [SESSION|LOCAL] default_transaction_read_only / transaction_read_only TO on: a tightening. */
export function setsReadOnlyOn(stmt: AstNode): boolean {
  const s = stmt.VariableSetStmt as AstNode | undefined;
  if (s?.kind !== 'VAR_SET_VALUE' || s.args?.length !== 1) return false;
  const name = String(s.name ?? '').toLowerCase();
  if (name !== 'default_transaction_read_only' && name !== 'transaction_read_only') return false;
  const c = s.args[0].A_Const as AstNode | undefined;
  const v = c?.sval?.sval?.toLowerCase() ?? (c?.ival ? String(c.ival.ival ?? 0) : c?.boolval ? String(Boolean(c.boolval.boolval)) : undefined);
  return v === 'on' || v === 'true' || v === '1' || v === 'yes';
}
