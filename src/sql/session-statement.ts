// Session statements (SET, RESET, SHOW, transaction control, DISCARD) as Gatehouse writes
// them from the AST. A Query Topics user's session statement never reaches the warehouse as
// typed (DESIGN 3, "Security by construction"): the text sent is rebuilt here from what the
// parser read, with literals that mean the same under any standard_conforming_strings.
// pgsql-deparser is not used for these: it writes `SET x TO a\` for the string 'a\'.
import type { ClosePortalStmt, DeallocateStmt, DefElem, FetchStmt, Node, TransactionStmt, VariableSetStmt } from '@pgsql/types';
import { quoteIdent } from './deparse.ts';
import { refuse } from './refusal.ts';

/**
 * A string literal that PostgreSQL reads the same whatever standard_conforming_strings says:
 * plain '...' when the value holds no backslash, else E'...' with backslashes doubled.
 */
export function safeLiteral(value: string): string {
  if (value.includes('\0')) refuse('unsupported', '0A000', 'a string with a NUL character is not supported');
  const quoted = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}

function unsupported(what: string): never {
  refuse('unsupported', '0A000', `${what} is not supported through Gatehouse`);
}

/** One SET value: a constant (string, number, boolean word), written by Gatehouse. */
function settingValue(n: Node): string {
  if ('A_Const' in n) {
    const c = n.A_Const;
    if (c.sval) return safeLiteral(c.sval.sval ?? '');
    if (c.ival) return String(c.ival.ival ?? 0);
    if (c.fval) {
      const f = c.fval.fval ?? '';
      if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(f)) unsupported(`the number ${f}`);
      return f;
    }
    if (c.boolval) return c.boolval.boolval ? 'true' : 'false';
    if (c.isnull) unsupported('NULL as a setting value');
  }
  return unsupported('a setting value that is not a constant');
}

function settingName(name: string | undefined): string {
  if (!name) unsupported('a setting without a name');
  // Dotted custom names (extension.setting) are two identifiers.
  return name.split('.').map(quoteIdent).join('.');
}

/** Transaction modes of BEGIN / SET TRANSACTION / SET SESSION CHARACTERISTICS. */
function transactionModes(options: Node[] | undefined): string {
  const parts: string[] = [];
  for (const o of options ?? []) {
    if (!('DefElem' in o)) unsupported('this transaction option');
    const d: DefElem = o.DefElem;
    const arg = d.arg && 'A_Const' in d.arg ? d.arg.A_Const : undefined;
    switch (d.defname) {
      case 'transaction_isolation': {
        const level = arg?.sval?.sval?.toLowerCase();
        if (!level || !['read uncommitted', 'read committed', 'repeatable read', 'serializable'].includes(level)) unsupported(`isolation level ${level}`);
        parts.push(`ISOLATION LEVEL ${level.toUpperCase()}`);
        break;
      }
      case 'transaction_read_only':
        parts.push(arg?.ival?.ival ? 'READ ONLY' : 'READ WRITE');
        break;
      case 'transaction_deferrable':
        parts.push(arg?.ival?.ival ? 'DEFERRABLE' : 'NOT DEFERRABLE');
        break;
      default:
        unsupported(`transaction option ${d.defname}`);
    }
  }
  return parts.join(', ');
}

function setStatement(s: VariableSetStmt): string {
  const local = s.is_local ? 'LOCAL ' : '';
  switch (s.kind) {
    case 'VAR_SET_VALUE':
      return `SET ${local}${settingName(s.name)} TO ${(s.args ?? []).map(settingValue).join(', ')}`;
    case 'VAR_SET_DEFAULT':
      return `SET ${local}${settingName(s.name)} TO DEFAULT`;
    case 'VAR_SET_CURRENT':
      return `SET ${local}${settingName(s.name)} FROM CURRENT`;
    case 'VAR_RESET':
      return `RESET ${settingName(s.name)}`;
    case 'VAR_RESET_ALL':
      return 'RESET ALL';
    case 'VAR_SET_MULTI': {
      if (s.name === 'TRANSACTION') return `SET TRANSACTION ${transactionModes(s.args)}`;
      if (s.name === 'SESSION CHARACTERISTICS') return `SET SESSION CHARACTERISTICS AS TRANSACTION ${transactionModes(s.args)}`;
      return unsupported(`SET ${s.name}`);
    }
    default:
      return unsupported(`SET of kind ${s.kind}`);
  }
}

function transactionStatement(t: TransactionStmt): string {
  const modes = transactionModes(t.options);
  const savepoint = (): string => {
    if (!t.savepoint_name) unsupported('a savepoint without a name');
    return quoteIdent(t.savepoint_name);
  };
  const chain = t.chain ? ' AND CHAIN' : '';
  switch (t.kind) {
    case 'TRANS_STMT_BEGIN':
      return `BEGIN${modes ? ` ${modes}` : ''}`;
    case 'TRANS_STMT_START':
      return `START TRANSACTION${modes ? ` ${modes}` : ''}`;
    case 'TRANS_STMT_COMMIT':
      return `COMMIT${chain}`;
    case 'TRANS_STMT_ROLLBACK':
      return `ROLLBACK${chain}`;
    case 'TRANS_STMT_SAVEPOINT':
      return `SAVEPOINT ${savepoint()}`;
    case 'TRANS_STMT_RELEASE':
      return `RELEASE SAVEPOINT ${savepoint()}`;
    case 'TRANS_STMT_ROLLBACK_TO':
      return `ROLLBACK TO SAVEPOINT ${savepoint()}`;
    default:
      return unsupported(`transaction statement ${t.kind}`);
  }
}

/**
 * FETCH_ALL as libpg-query reads it: its WASM build is 32-bit, where FETCH_ALL (LONG_MAX) is
 * 2^31-1. Written back as ALL, which the warehouse reads as its own FETCH_ALL.
 */
const FETCH_ALL_32 = 2147483647;

function cursorName(name: string | undefined): string {
  if (!name) unsupported('a cursor or prepared statement without a name');
  return quoteIdent(name);
}

/** FETCH / MOVE: direction and count as the parser read them (NEXT = FORWARD 1, LAST = ABSOLUTE -1...). */
function fetchStatement(f: FetchStmt): string {
  const verb = f.ismove ? 'MOVE' : 'FETCH';
  const n = Number(f.howMany ?? 0);
  if (!Number.isSafeInteger(n)) unsupported(`a ${verb} count of ${f.howMany}`);
  let how: string;
  switch (f.direction) {
    case 'FETCH_FORWARD':
      how = n === FETCH_ALL_32 ? 'FORWARD ALL' : `FORWARD ${n}`;
      break;
    case 'FETCH_BACKWARD':
      how = n === FETCH_ALL_32 ? 'BACKWARD ALL' : `BACKWARD ${n}`;
      break;
    case 'FETCH_ABSOLUTE':
      how = `ABSOLUTE ${n}`;
      break;
    case 'FETCH_RELATIVE':
      how = `RELATIVE ${n}`;
      break;
    default:
      return unsupported(`${verb} direction ${f.direction}`);
  }
  return `${verb} ${how} FROM ${cursorName(f.portalname)}`;
}

function closeStatement(c: ClosePortalStmt): string {
  return c.portalname === undefined ? 'CLOSE ALL' : `CLOSE ${cursorName(c.portalname)}`;
}

function deallocateStatement(d: DeallocateStmt): string {
  return d.isall || d.name === undefined ? 'DEALLOCATE ALL' : `DEALLOCATE ${cursorName(d.name)}`;
}

/**
 * Whether a statement Gatehouse forwards (its own writing of it) is DISCARD ALL: the statement
 * tables of policy (statements/session.ts) and of the transaction pool forget the session's
 * names at it, and must agree on which statements those are.
 */
export function isDiscardAll(sql: string): boolean {
  return /^\s*DISCARD\s+ALL\b/i.test(sql);
}

/** The text Gatehouse sends for a session statement, written from its AST. */
export function writeSessionStatement(stmt: Node): string {
  if ('FetchStmt' in stmt) return fetchStatement(stmt.FetchStmt);
  if ('ClosePortalStmt' in stmt) return closeStatement(stmt.ClosePortalStmt);
  if ('DeallocateStmt' in stmt) return deallocateStatement(stmt.DeallocateStmt);
  if ('VariableSetStmt' in stmt) return setStatement(stmt.VariableSetStmt);
  if ('VariableShowStmt' in stmt) {
    const name = stmt.VariableShowStmt.name ?? '';
    // SHOW ALL, SHOW TIME ZONE, SHOW TRANSACTION ISOLATION LEVEL, SHOW SESSION AUTHORIZATION are keywords, not names.
    if (name === 'all') return 'SHOW ALL';
    return `SHOW ${settingName(name)}`;
  }
  if ('TransactionStmt' in stmt) return transactionStatement(stmt.TransactionStmt);
  if ('DiscardStmt' in stmt) {
    const target = stmt.DiscardStmt.target;
    const what = { DISCARD_ALL: 'ALL', DISCARD_PLANS: 'PLANS', DISCARD_SEQUENCES: 'SEQUENCES', DISCARD_TEMP: 'TEMP' }[target ?? 'DISCARD_ALL'];
    return `DISCARD ${what}`;
  }
  return unsupported(Object.keys(stmt)[0] ?? 'this statement');
}

/** A SET that would make the warehouse read string literals differently from Gatehouse's parser. */
export function changesLexing(stmt: Node): string | undefined {
  if (!('VariableSetStmt' in stmt)) return undefined;
  const s = stmt.VariableSetStmt;
  const name = String(s.name ?? '').toLowerCase();
  if (name !== 'standard_conforming_strings' && name !== 'backslash_quote' && name !== 'client_encoding') return undefined;
  if (s.kind === 'VAR_RESET' || s.kind === 'VAR_SET_DEFAULT' || s.kind === 'VAR_RESET_ALL') return undefined;
  const arg = s.args?.[0];
  const value =
    arg && 'A_Const' in arg
      ? (arg.A_Const.sval?.sval ??
        (arg.A_Const.ival ? String(arg.A_Const.ival.ival ?? 0) : arg.A_Const.boolval ? String(arg.A_Const.boolval.boolval ?? false) : undefined))
      : undefined;
  const v = value?.toLowerCase();
  if (name === 'standard_conforming_strings') {
    if (v === 'on' || v === 'true' || v === '1' || v === 'yes') return undefined;
    return 'standard_conforming_strings stays on through Gatehouse: it reads every statement with it on, and a warehouse reading backslashes differently would see other statements than Gatehouse decided';
  }
  if (name === 'client_encoding') {
    // SQL_ASCII is accepted at startup (the upstream stays UTF8), not as a SET that would change the upstream.
    if (v !== undefined && ['utf8', 'unicode'].includes(v.replace(/[-_]/g, ''))) return undefined;
    return 'client_encoding stays UTF8 through Gatehouse: it reads every statement as UTF8';
  }
  // backslash_quote: only the safe values.
  if (v === 'off' || v === 'safe_encoding' || v === 'false' || v === '0') return undefined;
  return 'backslash_quote cannot be turned on through Gatehouse';
}
