// Which of a Query Topics user's SELECTs are catalog queries, answered by the topic
// catalog (src/catalog: empty tables shaped like the topics) instead of the warehouse.
//
// The rule: a SELECT (WITH, VALUES, TABLE) whose relations are all catalog relations
// (schema pg_catalog or information_schema, or an unqualified pg_* name that is not a
// topic: pg_catalog comes first on the search path) goes to the catalog; so does one
// that reads no relation at all but calls a function or casts to a reg* type that the
// topic path does not allow (`SELECT version()`, `'orders'::regclass`). Only the
// denylists hold there (pg_stats, dblink, pg_read_file...): the catalog database has
// nothing to hide. A statement that reads both catalog relations and topics is refused
// (0A000): the two live in different databases. Anything else takes the topic path.
import { deparseFaithfully, sameTree } from '../sql/deparse.ts';
import { substitutePersonIdentity } from '../sql/identity.ts';
import { type AstNode, parseSqlSync } from '../sql/parse.ts';
import { refuse } from '../sql/refusal.ts';
import { Walker } from '../sql/scope.ts';
import { TOPIC_FUNCTION_ALLOWLIST } from '../sql/functions.ts';
import type { DecisionContext, PlannedStatement } from './decision.ts';

export const CATALOG_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema']);

export interface RelationNames {
  /** Catalog relations, as written. */
  catalog: string[];
  /** Everything else (topics, or names that are not topics), as written. */
  other: string[];
}

/**
 * The relations a statement names, CTE references left out. Conservative about scope
 * (a name of any CTE of the statement counts as a CTE reference): what goes wrong that
 * way lands on the catalog, whose tables are empty, never on the warehouse.
 */
export function relationNames(stmt: AstNode, topics: ReadonlyMap<string, unknown>): RelationNames {
  const ctes = new Set<string>();
  const vars: AstNode[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [key, val] of Object.entries(node as AstNode)) {
      if (key === 'RangeVar') vars.push(val);
      else if (key === 'CommonTableExpr') ctes.add(val.ctename);
      walk(val);
    }
  };
  walk(stmt);
  const out: RelationNames = { catalog: [], other: [] };
  for (const rv of vars) {
    const schema: string | undefined = rv.schemaname;
    const name: string = rv.relname;
    const written = [rv.catalogname, schema, name].filter(Boolean).join('.');
    if (!schema && !rv.catalogname && ctes.has(name)) continue;
    const isCatalog = schema ? CATALOG_SCHEMAS.has(schema) : name.startsWith('pg_') && !topics.has(name);
    (isCatalog ? out.catalog : out.other).push(written);
  }
  return out;
}

/** Whether a call (its qualified name) or a reg* cast anywhere in the statement satisfies `catalogCall`. */
function callsCatalog(stmt: AstNode, catalogCall: (names: string[]) => boolean): boolean {
  let found = false;
  const walk = (node: unknown): void => {
    if (found || !node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    for (const [key, val] of Object.entries(node as AstNode)) {
      if (key === 'FuncCall') {
        if (catalogCall((val.funcname ?? []).map((n: AstNode) => n.String?.sval ?? ''))) found = true;
      } else if (key === 'TypeCast') {
        const names: string[] = (val.typeName?.names ?? []).map((n: AstNode) => n.String?.sval ?? '');
        if (/^reg[a-z]+$/.test(names[names.length - 1] ?? '')) found = true;
      }
      walk(val);
    }
  };
  walk(stmt);
  return found;
}

/** Topic path: a function not on the topic allowlist (or qualified by a schema other than pg_catalog) only the catalog answers. */
function notTopicFunction(names: string[]): boolean {
  const schema = names.length > 1 ? names[names.length - 2] : undefined;
  return Boolean(schema && schema !== 'pg_catalog') || !TOPIC_FUNCTION_ALLOWLIST.has(names[names.length - 1] ?? '');
}

/** Names a querier's text could only mean on PostgreSQL: pg_catalog functions, pg_*, and these. */
const POSTGRES_CATALOG_FUNCTIONS: ReadonlySet<string> = new Set([
  'current_schema',
  'current_schemas',
  'format_type',
  'obj_description',
  'col_description',
  'shobj_description',
  'has_table_privilege',
  'has_schema_privilege',
  'has_database_privilege',
  'current_setting',
  'current_database',
]);

/**
 * `written`: whether the text names pg_catalog at all. PostgreSQL's grammar names some calls
 * pg_catalog.<name> itself (JSON_OBJECT('a', 1), EXTRACT, TRIM...), and MySQL and Snowflake have
 * functions of those names: a pg_catalog the author did not write is not PostgreSQL's catalog.
 */
function postgresOnlyFunction(written: boolean): (names: string[]) => boolean {
  return (names) => {
    const name = names.at(-1) ?? '';
    return (written && names.at(-2) === 'pg_catalog') || name.startsWith('pg_') || POSTGRES_CATALOG_FUNCTIONS.has(name);
  };
}

/**
 * Who wrote the statement, and so which of its SELECTs the topic catalog answers:
 * - 'topics': a Query Topics user's PostgreSQL (the rule at the top of this file);
 * - 'warehouse_sql': a querier on a warehouse that does not read PostgreSQL (mysql,
 *   snowflake), whose SQL is the warehouse's own: only what could mean PostgreSQL's catalog
 *   (pg_catalog relations, PostgreSQL's catalog functions, reg* casts) goes to the catalog;
 *   information_schema and every other function are the warehouse's.
 */
export type CatalogRoute = 'topics' | 'warehouse_sql';

/**
 * The plan of a catalog query (one SELECT statement, wrapped node), or undefined when
 * it is not one. Refuses (0A000) a statement that mixes catalog relations and topics.
 */
export function planCatalogQuery(ctx: DecisionContext, stmt: AstNode, text: string, route: CatalogRoute = 'topics'): PlannedStatement | undefined {
  const rel = relationNames(stmt, ctx.topics);
  if (
    route === 'warehouse_sql' &&
    !rel.catalog.some((n) => !n.startsWith('information_schema.')) &&
    !callsCatalog(stmt, postgresOnlyFunction(/pg_catalog/i.test(text)))
  )
    return undefined;
  if (rel.catalog.length === 0 && (rel.other.length > 0 || !callsCatalog(stmt, notTopicFunction))) return undefined;
  if (rel.other.length > 0) {
    refuse(
      'query_topics.catalog_mix',
      '0A000',
      `a statement cannot read both catalog relations (${rel.catalog[0]}) and topics (${rel.other[0]}) on connection ${ctx.connection.name}`,
      { hint: 'query the catalog and the topics in separate statements' },
    );
  }
  // Denied relations (pg_stats) and functions, nested statements: refused as everywhere.
  new Walker(ctx, 'catalog').visit(stmt, undefined);
  // The client's own text: nothing in it is rewritten, and a deparse could change a name;
  // unless it asks who is asking (below).
  return { action: 'catalog', kind: 'select', statement: { sql: personalized(ctx, stmt, text) ?? text, kind: 'select', returnsRows: true } };
}

/**
 * The catalog's session runs as its own role (gatehouse_catalog), which CURRENT_USER and its
 * kin would show: a statement naming them is written with the person's email in their place
 * (sql/identity.ts), as the topic path answers them, and only such a statement is deparsed,
 * proved to read back as the tree decided. A catalog query inside DECLARE or PREPARE is sent
 * as the client wrote it (decide.ts), so there it is refused instead (0A000).
 */
function personalized(ctx: DecisionContext, stmt: AstNode, text: string): string | undefined {
  const shown = structuredClone(stmt);
  if (!substitutePersonIdentity(shown, ctx.user)) return undefined;
  const reparse = (sql: string): AstNode | undefined => {
    try {
      const parsed = parseSqlSync(sql).statements;
      return parsed.length === 1 ? parsed[0].stmt : undefined;
    } catch {
      return undefined;
    }
  };
  const own = reparse(text);
  if (!own || !sameTree(own, stmt)) {
    refuse(
      'query_topics.catalog_identity',
      '0A000',
      `a cursor or prepared statement over the catalog cannot ask for the session's user (current_user, session_user, user, current_role) on connection ${ctx.connection.name}`,
      {
        hint: 'run that catalog query directly, or ask for current_user in its own statement',
      },
    );
  }
  const sql = deparseFaithfully(shown, reparse);
  if (sql === undefined) {
    refuse(
      'query_topics.catalog_identity',
      '0A000',
      `Gatehouse cannot write this catalog query with your identity in place of current_user on connection ${ctx.connection.name}`,
      {
        hint: 'ask for current_user in its own statement',
      },
    );
  }
  return sql;
}
