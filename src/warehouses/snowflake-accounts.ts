// Least privilege on Snowflake (DESIGN 3, "Security by construction"): what each account's
// role holds, from SHOW GRANTS TO ROLE (and the roles it was granted, followed), judged against
// what its level needs. Allowlists: whatever is not listed here is a problem.
// - The querier role: USAGE on warehouses, databases and schemas; SELECT and REFERENCES on
//   tables and views (INSERT, UPDATE, DELETE, TRUNCATE too with allow_writes); nothing owned,
//   nothing on the account, nothing with grant option.
// - The topics role: USAGE on warehouses, databases and schemas; SELECT on the topics' base
//   tables or views and nothing else (Snowflake has no column grants: a view with only the
//   topic's fields narrows columns too).
import type { Topic } from '../config/model.ts';

/** One row of SHOW GRANTS TO ROLE, the columns Gatehouse reads. */
export interface SnowflakeGrant {
  privilege: string;
  grantedOn: string;
  name: string;
  grantOption: boolean;
}

export interface GrantProblem {
  phrase: string;
}

const CONTAINERS = new Set(['WAREHOUSE', 'DATABASE', 'SCHEMA']);
const RELATIONS = new Set(['TABLE', 'VIEW', 'MATERIALIZED_VIEW', 'EXTERNAL_TABLE', 'DYNAMIC_TABLE']);
const READ = new Set(['SELECT', 'REFERENCES']);
const WRITE = new Set(['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']);

function phrase(g: SnowflakeGrant, what = 'holds'): GrantProblem {
  return { phrase: `${what} ${g.privilege} on ${g.grantedOn.toLowerCase()} ${g.name}` };
}

/** Problems common to both roles: ownership, account-level privileges, grant option. */
function common(g: SnowflakeGrant): GrantProblem | undefined {
  if (g.grantOption) return phrase(g, 'can grant');
  if (g.privilege === 'OWNERSHIP') return phrase(g, 'owns (OWNERSHIP)');
  if (g.grantedOn === 'ACCOUNT') return phrase(g);
  return undefined;
}

export function querierGrantProblems(grants: SnowflakeGrant[], opts: { allowWrites: boolean }): GrantProblem[] {
  const problems: GrantProblem[] = [];
  for (const g of grants) {
    const c = common(g);
    if (c) problems.push(c);
    else if (CONTAINERS.has(g.grantedOn) && g.privilege === 'USAGE') continue;
    else if (RELATIONS.has(g.grantedOn) && (READ.has(g.privilege) || (opts.allowWrites && WRITE.has(g.privilege)))) continue;
    else problems.push(phrase(g));
  }
  return problems;
}

/** `database`: the connection's; a topic's base `schema.table` names DATABASE.SCHEMA.TABLE in Snowflake's folding. */
export function topicsGrantProblems(grants: SnowflakeGrant[], topics: Topic[], database: string): GrantProblem[] {
  const fold = (n: string) => (/^[a-z_][a-z0-9_$]*$/.test(n) ? n.toUpperCase() : n);
  const db = database.replace(/^"|"$/g, '');
  const bases = new Set(topics.map((t) => `${fold(db)}.${fold(t.base.schema)}.${fold(t.base.table)}`));
  const problems: GrantProblem[] = [];
  for (const g of grants) {
    const c = common(g);
    if (c) problems.push(c);
    else if (CONTAINERS.has(g.grantedOn) && g.privilege === 'USAGE') continue;
    else if (RELATIONS.has(g.grantedOn) && g.privilege === 'SELECT' && bases.has(g.name.replace(/"/g, ''))) continue;
    else problems.push(phrase(g));
  }
  return problems;
}

/** SHOW GRANTS rows (columns by name) as grants; roles granted to the role come back separately, to be followed. */
export function parseGrantRows(fields: string[], rows: (string | null)[][]): { grants: SnowflakeGrant[]; roles: string[] } {
  const at = (row: (string | null)[], name: string) => String(row[fields.indexOf(name)] ?? '');
  const grants: SnowflakeGrant[] = [];
  const roles: string[] = [];
  for (const row of rows) {
    const g: SnowflakeGrant = {
      privilege: at(row, 'privilege').toUpperCase(),
      grantedOn: at(row, 'granted_on').toUpperCase().replace(/ /g, '_'),
      name: at(row, 'name'),
      grantOption: at(row, 'grant_option').toLowerCase() === 'true',
    };
    if (g.grantedOn === 'ROLE' && g.privilege === 'USAGE' && !g.grantOption) roles.push(g.name);
    else grants.push(g);
  }
  return { grants, roles };
}
