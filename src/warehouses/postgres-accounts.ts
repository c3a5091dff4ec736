// Least privilege per level on a PostgreSQL warehouse (DESIGN 3, issue 11): query_topics
// sessions connect with the connection's topics account, which start() checks here can
// SELECT each topic's base relation on exactly the topic's fields and do nothing else.
// The next classifier bug then reaches an account that has nothing more to give.
// Every check runs as the topics account itself (has_*_privilege of current_user), so
// grants through PUBLIC count as the account's own.
import type { Topic } from '../config/model.ts';

/** What a topics account's session gets besides the lexing settings: the connection's timeouts. */
export const DEFAULT_TOPICS_STATEMENT_TIMEOUT = '30s';
export const DEFAULT_TOPICS_IDLE_IN_TRANSACTION_TIMEOUT = '60s';

/** Schemas that are PostgreSQL's own: pg_catalog, information_schema, pg_toast*, pg_temp_*. */
const USER_SCHEMAS = `n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'pg_catalog'`;

export const TOPICS_ROLE_QUERY = `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
  has_database_privilege(current_database(), 'TEMP') AS temp,
  has_database_privilege(current_database(), 'CREATE') AS create_schema,
  (SELECT string_agg(g.rolname, ', ' ORDER BY g.rolname) FROM pg_catalog.pg_auth_members m
     JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS member_of,
  (SELECT string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_catalog.pg_namespace n
     WHERE ${USER_SCHEMAS} AND has_schema_privilege(n.oid, 'CREATE')) AS create_in,
  (SELECT string_agg(n.nspname || '.' || p.proname, ', ' ORDER BY n.nspname, p.proname) FROM pg_catalog.pg_proc p
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE ${USER_SCHEMAS} AND p.prosecdef AND has_function_privilege(p.oid, 'EXECUTE')) AS definer_functions
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`;

/** One row per table, view, materialized view, foreign or partitioned table and sequence outside PostgreSQL's own schemas. */
export const TOPICS_RELATIONS_QUERY = `SELECT n.nspname, c.relname, c.relkind,
  has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
  CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE, SELECT, UPDATE')
       ELSE has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') END AS other,
  (SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
     WHERE c.relkind <> 'S' AND a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       AND has_column_privilege(c.oid, a.attnum, 'SELECT')) AS select_columns,
  (SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
     WHERE c.relkind <> 'S' AND a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       AND has_column_privilege(c.oid, a.attnum, 'INSERT, UPDATE, REFERENCES')) AS write_columns
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S') AND ${USER_SCHEMAS}
ORDER BY 1, 2`;

type Row = Record<string, string | null>;

const KIND: Record<string, string> = { r: 'table', v: 'view', m: 'materialized view', f: 'foreign table', p: 'table', S: 'sequence' };
const list = (s: string | null) => (s ? s.split(',') : []);

/** Role attributes no warehouse account of Gatehouse may have (pg_roles columns as 't'/'f'), as refusal phrases. */
export function roleAttributeProblems(role: Row): string[] {
  const out: string[] = [];
  const t = (k: string) => role[k] === 't';
  if (t('rolsuper')) out.push('is a superuser');
  if (t('rolcreaterole')) out.push('can create roles (CREATEROLE)');
  if (t('rolcreatedb')) out.push('can create databases (CREATEDB)');
  if (t('rolbypassrls')) out.push('bypasses row level security (BYPASSRLS)');
  if (t('rolreplication')) out.push('can start replication (REPLICATION)');
  return out;
}

/** What is wrong with the topics account, as phrases for the refusal ("which check, which object"). */
export function topicsAccountProblems(role: Row | undefined, relations: Row[], topics: Iterable<Topic>): string[] {
  if (!role) return ['was not found in pg_roles'];
  const out = roleAttributeProblems(role);
  const t = (k: string) => role[k] === 't';
  if (role.member_of) out.push(`is a member of ${role.member_of} (a topics account must be a member of no role)`);
  if (t('temp')) out.push('can create temporary tables (REVOKE TEMP ON DATABASE <db> FROM PUBLIC, and from the account)');
  if (t('create_schema')) out.push('can create schemas (CREATE on the database)');
  if (role.create_in) out.push(`can create objects in schema ${role.create_in}`);
  // A SECURITY DEFINER function runs with its owner's privileges: whatever it reads, the account reads.
  if (role.definer_functions) out.push(`can execute SECURITY DEFINER functions ${role.definer_functions} (REVOKE EXECUTE ... FROM PUBLIC)`);

  // Base relation -> the columns topics on it read: the fields they expose and the ones their
  // access filters compare (the barrier's WHERE reads those too). Two topics on one relation: either's.
  const wanted = new Map<string, { topics: string[]; fields: Set<string> }>();
  for (const topic of topics) {
    const k = `${topic.base.schema}.${topic.base.table}`;
    const w = wanted.get(k) ?? { topics: [], fields: new Set<string>() };
    w.topics.push(topic.name);
    for (const f of topic.fields) w.fields.add(f);
    for (const f of topic.access_filters) w.fields.add(f.field);
    wanted.set(k, w);
  }
  const seen = new Set<string>();
  for (const r of relations) {
    const name = `${r.nspname}.${r.relname}`;
    const what = `${KIND[r.relkind ?? ''] ?? 'relation'} ${name}`;
    const base = wanted.get(name);
    const selectable = list(r.select_columns);
    if (r.relkind === 'S') {
      if (r.other === 't') out.push(`can use ${what} (USAGE, SELECT or UPDATE)`);
      continue;
    }
    if (r.other === 't') out.push(`has privileges other than SELECT on ${what}`);
    if (r.write_columns) out.push(`can INSERT, UPDATE or REFERENCES columns ${r.write_columns} of ${what}`);
    if (!base) {
      if (selectable.length > 0) out.push(`can SELECT ${what}, which is no topic's base relation`);
      continue;
    }
    seen.add(name);
    const topicNames = base.topics.join(', ');
    const extra = selectable.filter((c) => !base.fields.has(c));
    const missing = [...base.fields].filter((f) => !selectable.includes(f));
    if (extra.length)
      out.push(
        `can SELECT columns ${extra.join(', ')} of ${what}, which topic ${topicNames} does not expose (grant SELECT (<fields>) ON ${name}, not the whole table)`,
      );
    if (missing.length) out.push(`cannot SELECT columns ${missing.join(', ')} of ${what} (topic ${topicNames})`);
    if (r.schema_usage !== 't') out.push(`has no USAGE on schema ${r.nspname} (topic ${topicNames})`);
  }
  for (const [name, w] of wanted) {
    if (!seen.has(name)) out.push(`cannot see ${name}, the base relation of topic ${w.topics.join(', ')} (it does not exist)`);
  }
  return out;
}
