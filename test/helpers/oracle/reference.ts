// The oracle's reference side: the same rules as Gatehouse, read straight from the
// YAML (not through Gatehouse's loader, so a loader bug cannot hide in both sides),
// turned into PostgreSQL's own machinery: one role per person, column grants for the
// topic's fields and row-level security policies for its access filters.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { DecisionContext } from '../../../src/policy/decision.ts';
import { ctxFor } from '../../unit/policy/demo-context.ts';
import type { Topic } from '../../../src/config/model.ts';

export interface RuleTopic {
  name: string;
  schema: string;
  table: string;
  fields: string[];
  filters: { field: string; attribute: string; unfiltered: string[] }[];
}

export interface RulePerson {
  email: string;
  /** bob@acme.example -> bob */
  short: string;
  attributes: Record<string, string[]>;
}

export interface OrgRules {
  topics: RuleTopic[];
  people: RulePerson[];
}

/** Reads rules/<org>/topics/*.yaml and org.yaml; keeps the people named in `who`. */
export function readOrgRules(orgDir: string, who: string[]): OrgRules {
  const topicsDir = join(orgDir, 'topics');
  const topics: RuleTopic[] = readdirSync(topicsDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const y = parse(readFileSync(join(topicsDir, f), 'utf8'));
      const [schema, table] = String(y.base).includes('.') ? String(y.base).split('.') : ['public', String(y.base)];
      return {
        name: f.replace(/\.yaml$/, ''),
        schema,
        table,
        fields: y.fields.map(String),
        filters: (y.access_filters ?? []).map((a: { field: string; attribute: string; values_for_unfiltered?: string[] }) => ({
          field: a.field,
          attribute: a.attribute,
          unfiltered: (a.values_for_unfiltered ?? []).map(String),
        })),
      };
    });
  const org = parse(readFileSync(join(orgDir, 'org.yaml'), 'utf8'));
  const people: RulePerson[] = who.map((short) => {
    const u = org.users.find((x: { email: string }) => x.email.split('@')[0] === short);
    if (!u) throw new Error(`org.yaml has no user ${short}`);
    const attributes: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(u.attributes ?? {})) attributes[k] = (Array.isArray(v) ? v : [v]).map(String);
    return { email: u.email, short, attributes };
  });
  return { topics, people };
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

export const roleOf = (p: RulePerson) => `oracle_${p.short}`;

/** The USING clause of a person's policy on a topic's base: the same filters Gatehouse applies. */
export function policyCondition(t: RuleTopic, p: RulePerson): string {
  const parts: string[] = [];
  for (const f of t.filters) {
    const values = p.attributes[f.attribute];
    // A person without the attribute sees nothing (Gatehouse refuses the topic outright).
    if (!values?.length) return 'false';
    if (values.some((v) => f.unfiltered.includes(v))) continue;
    parts.push(`${ident(f.field)} = ANY (ARRAY[${values.map(lit).join(', ')}]::text[])`);
  }
  return parts.length ? parts.join(' AND ') : 'true';
}

/** SQL (run as superuser in the reference database) creating the roles, grants and policies. */
export function referenceSetupSql(rules: OrgRules, database: string): string {
  const out: string[] = [];
  for (const p of rules.people) {
    const r = roleOf(p);
    out.push(
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${lit(r)}) THEN CREATE ROLE ${ident(r)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT; END IF; END $$;`,
      `GRANT CONNECT ON DATABASE ${ident(database)} TO ${ident(r)};`,
    );
  }
  out.push(`REVOKE ALL ON SCHEMA public FROM PUBLIC;`);
  for (const t of rules.topics) {
    const rel = `${ident(t.schema)}.${ident(t.table)}`;
    out.push(`ALTER TABLE ${rel} ENABLE ROW LEVEL SECURITY;`);
    for (const p of rules.people) {
      const r = ident(roleOf(p));
      out.push(
        `GRANT USAGE ON SCHEMA ${ident(t.schema)} TO ${r};`,
        `GRANT SELECT (${t.fields.map(ident).join(', ')}) ON ${rel} TO ${r};`,
        `CREATE POLICY ${ident(`oracle_${p.short}_${t.name}`)} ON ${rel} FOR SELECT TO ${r} USING (${policyCondition(t, p)});`,
      );
    }
  }
  return out.join('\n');
}

/** The DecisionContext Gatehouse builds for this person (query_topics, the rules' topics). */
export function contextFor(rules: OrgRules, p: RulePerson): DecisionContext {
  const topics = new Map<string, Topic>(
    rules.topics.map((t) => [
      t.name,
      {
        name: t.name,
        org: 'acme',
        connection: 'warehouse',
        base: { schema: t.schema, table: t.table },
        fields: t.fields,
        access_filters: t.filters.map((f) => ({ field: f.field, attribute: f.attribute, values_for_unfiltered: f.unfiltered })),
      },
    ]),
  );
  return ctxFor(p.email, 'query_topics', p.attributes, { topics });
}
