// Fuzzing the classifier (issue 11): mutations of real client statements
// (/work/shared/corpus/client-queries.json and schema.sql; CORPUS_DIR names another copy) and of the
// oracle's statements, fed to decide() as query_topics users (bob, grace, erin; bob also
// with typed topics, which turns on the leakproof pushdown). Two properties:
//   1. decide() never throws: every input gets a Decision (refuse, empty or run).
//   2. Whatever it would forward, PostgreSQL's own EXPLAIN (VERBOSE, FORMAT JSON) of the
//      forwarded SQL, planned as superuser on a database holding acme's demo schema,
//      reaches only the topics' base relations (public.orders, public.customers), only
//      their allowed columns (customers.email never), only allowlisted functions and
//      built-in scalar types (test/helpers/oracle/plan-check.ts, fail closed). The
//      forwarded text is also checked for reg* types and non-allowlisted calls, which a
//      plan can fold away. Session statements it forwards must be one allowlisted
//      statement. A forwarded text holding more than one statement is a failure.
// Size: FUZZ_RUNS mutations (default 50000, ~40 s; most mutations do not parse), seed FUZZ_SEED (printed on failure).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { loadModule, parseSync } from 'libpg-query';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearDecisionCache, decide } from '../../src/policy/decide.ts';
import type { Decision, DecisionContext } from '../../src/policy/decision.ts';
import { DEMO_RULES } from '../helpers/gatehouse.ts';
import { type Mutation, applyMutation, lex, mutationArb } from '../helpers/oracle/mutate.ts';
import { FUZZ_FUNCTION_ALLOWLIST, type TextPools, type TopicBase, checkForwardedText, checkPlan } from '../helpers/oracle/plan-check.ts';
import { contextFor, readOrgRules } from '../helpers/oracle/reference.ts';
import { answerable, fixedHostile, hostile } from '../helpers/oracle/statements.ts';
import { PG, createAcmeWarehouse, psqlAdmin, requirePostgres } from '../helpers/servers.ts';
import { ctxFor, typedTopics } from '../unit/policy/demo-context.ts';

const DB = 'gatehouse_it_fuzz';
const SEED = Number(process.env.FUZZ_SEED ?? 11011);
const RUNS = Number(process.env.FUZZ_RUNS ?? 50000);
const CORPUS = resolve(process.env.CORPUS_DIR ?? '/work/shared/corpus', 'client-queries.json');
const reproduce = `seed ${SEED}, FUZZ_RUNS=${RUNS} (reproduce: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS} npx vitest run test/integration/classifier-fuzz.test.ts)`;

/** Settings a forwarded SET/RESET/SHOW may name (the test's own list). */
const SESSION_SETTINGS = new Set([
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'extra_float_digits',
  'intervalstyle',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'client_min_messages',
  'bytea_output',
  'default_transaction_isolation',
  'transaction_isolation',
  'standard_conforming_strings',
  'server_version',
  'server_version_num',
  'server_encoding',
  'integer_datetimes',
  'max_identifier_length',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
  'geqo',
  'jit',
  'work_mem',
  'default_transaction_deferrable',
  'transaction_deferrable',
  'xmloption',
  'escape_string_warning',
  'array_nulls',
  'quote_all_identifiers',
  'search_path',
  'transaction_read_only',
  'default_transaction_read_only',
  'is_superuser',
  'session_authorization',
  'row_security',
]);
const SESSION_NODES = new Set(['VariableSetStmt', 'VariableShowStmt', 'TransactionStmt', 'DiscardStmt']);

let admin: pg.Client;
let topics: TopicBase[];
let contexts: [string, DecisionContext][];
let pools: { functions: string[]; text: TextPools };
let bases: string[];
const tally = { inputs: 0, refused: 0, empty: 0, forwarded: 0, explained: 0, explainErrors: new Map<string, number>(), catalog: 0, answered: 0, session: 0 };

beforeAll(async () => {
  await requirePostgres();
  if (!existsSync(CORPUS)) throw new Error(`the classifier fuzz needs the shared corpus at ${CORPUS} (set CORPUS_DIR)`);
  await loadModule();
  createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
  admin = new pg.Client({ ...PG, database: DB });
  await admin.connect();
  await admin.query(`SET statement_timeout = 5000`);
  const rules = readOrgRules(resolve(DEMO_RULES, 'acme'), ['bob', 'grace', 'erin']);
  topics = [];
  for (const t of rules.topics) {
    const cols = await admin.query<{ attname: string }>(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND NOT attisdropped`, [
      `${t.schema}.${t.table}`,
    ]);
    topics.push({ schema: t.schema, table: t.table, fields: t.fields, hidden: cols.rows.map((r) => r.attname).filter((c) => !t.fields.includes(c)) });
  }
  contexts = [
    ...rules.people.map((p) => [p.short, contextFor(rules, p)] as [string, DecisionContext]),
    ['bob (typed topics)', ctxFor('bob@acme.example', 'query_topics', { region: ['EMEA'] }, { topics: typedTopics })],
  ];
  const procs = (
    await admin.query<{ proname: string; istype: boolean }>(
      `SELECT DISTINCT p.proname, EXISTS (SELECT 1 FROM pg_type t WHERE t.typname = p.proname) AS istype FROM pg_proc p ORDER BY 1`,
    )
  ).rows;
  const rels = (
    await admin.query<{ relname: string }>(
      `SELECT DISTINCT c.relname FROM pg_class c WHERE c.relkind IN ('r','v','m','p','f','S')
       AND NOT (c.relnamespace = 'public'::regnamespace AND c.relname IN (${topics.map((t) => `'${t.table}'`).join(', ')}))`,
    )
  ).rows;
  // The corpus schema's own relations and functions (secret, "weird.name", order_total...).
  const schemaSql = readFileSync(resolve(CORPUS, '../schema.sql'), 'utf8');
  const corpusNames = [...schemaSql.matchAll(/CREATE (?:TABLE|VIEW|FUNCTION)\s+(?:[\w"]+\.)?("?[\w.]+"?)/gi)].map((m) => m[1].replace(/"/g, '').toLowerCase());
  pools = {
    functions: procs.map((p) => p.proname),
    text: {
      rowTypes: new Set([...rels.map((r) => r.relname.toLowerCase()), ...corpusNames, ...topics.map((t) => t.table)]),
      relations: new Set([...rels.map((r) => r.relname.toLowerCase()), ...corpusNames.filter((n) => n !== 'orders' && n !== 'customers')]),
      functions: new Set([...procs.filter((p) => !p.istype && !FUZZ_FUNCTION_ALLOWLIST.has(p.proname)).map((p) => p.proname), 'order_total']),
    },
  };
  const corpus = (JSON.parse(readFileSync(CORPUS, 'utf8')) as { sql: string }[]).map((q) => q.sql);
  bases = [
    ...corpus,
    ...fc.sample(answerable, { seed: SEED, numRuns: 300 }).map((s) => s.sql),
    ...fc.sample(hostile, { seed: SEED + 1, numRuns: 40 }).map((s) => s.sql),
    ...fixedHostile,
  ];
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  const errs = [...tally.explainErrors].map(([k, v]) => `${k}:${v}`).join(' ');
  console.log(
    `classifier fuzz: ${tally.inputs} decisions: ${tally.refused} refused, ${tally.empty} empty, ${tally.forwarded} forwarded statements ` +
      `(${tally.explained} planned, EXPLAIN errors ${errs || 'none'}), ${tally.session} session statements, ${tally.catalog} catalog, ${tally.answered} answered; ${reproduce}`,
  );
  try {
    psqlAdmin('test', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE);`);
  } catch (e) {
    console.error(`fuzz teardown: ${(e as Error).message}`);
  }
});

function isDecision(d: unknown): d is Decision {
  const x = d as Decision;
  if (!x || typeof x !== 'object') return false;
  if (x.outcome === 'refuse') return typeof x.error?.sqlstate === 'string' && typeof x.rule === 'string';
  if (x.outcome === 'empty') return true;
  return x.outcome === 'run' && Array.isArray(x.statements) && x.statements.length > 0;
}

function statementsIn(sql: string): { node: string; body: Record<string, unknown> }[] {
  const tree = parseSync(sql) as { stmts?: { stmt: Record<string, Record<string, unknown>> }[] };
  return (tree.stmts ?? []).map((s) => {
    const node = Object.keys(s.stmt)[0];
    return { node, body: s.stmt[node] };
  });
}

/** Problems with one forwarded SELECT (or COPY's query): its plan and its text. */
async function checkQuery(sql: string): Promise<string[]> {
  let parsed: { node: string }[];
  try {
    parsed = statementsIn(sql);
  } catch (e) {
    return [`forwarded text does not parse: ${(e as Error).message}`];
  }
  if (parsed.length !== 1 || parsed[0].node !== 'SelectStmt')
    return [`forwarded text holds ${parsed.map((p) => p.node).join(', ') || 'nothing'}, not one SELECT`];
  let plan: unknown;
  try {
    const r = await admin.query({ text: `EXPLAIN (VERBOSE, FORMAT JSON) ${sql}`, queryMode: 'extended' } as pg.QueryConfig);
    plan = r.rows[0]['QUERY PLAN'];
    tally.explained++;
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'client';
    tally.explainErrors.set(code, (tally.explainErrors.get(code) ?? 0) + 1);
    // Not planned (42703, 42P01, 42883...): the text is all there is to check.
    return checkForwardedText(sql, pools.text, lex, { relations: true });
  }
  return [...checkPlan(plan, topics), ...checkForwardedText(sql, pools.text, lex, { relations: false })];
}

function checkSession(sql: string, kind: string): string[] {
  let parsed: { node: string; body: Record<string, unknown> }[];
  try {
    parsed = statementsIn(sql);
  } catch (e) {
    return [`forwarded ${kind} does not parse: ${(e as Error).message}`];
  }
  if (parsed.length !== 1 || !SESSION_NODES.has(parsed[0].node)) return [`forwarded ${kind} holds ${parsed.map((p) => p.node).join(', ')}`];
  const { node, body } = parsed[0];
  if (node === 'VariableSetStmt' || node === 'VariableShowStmt') {
    const name = String(body.name ?? '').toLowerCase();
    if (body.kind === 'VAR_RESET_ALL' || body.kind === 'VAR_SET_MULTI') return [];
    if (!SESSION_SETTINGS.has(name)) return [`forwarded ${node} of setting ${name}`];
    if (node === 'VariableSetStmt' && name === 'standard_conforming_strings' && body.kind === 'VAR_SET_VALUE') {
      // Gatehouse parses with the setting on; any other value makes the warehouse read later text differently.
      const args = (body.args ?? []) as { A_Const?: { sval?: { sval: string }; ival?: { ival: number }; boolval?: { boolval: boolean } } }[];
      const v = args[0]?.A_Const;
      const value = String(v?.sval?.sval ?? v?.ival?.ival ?? v?.boolval?.boolval ?? '').toLowerCase();
      if (args.length !== 1 || !['on', 'true', 'yes', '1', 't', 'y'].includes(value))
        return [`forwarded SET standard_conforming_strings other than on: ${sql}`];
    }
    if (node === 'VariableSetStmt' && ['transaction_read_only', 'default_transaction_read_only'].includes(name)) {
      // Only tightening (issue 16): the read-only guard turned on, never off.
      const v = ((body.args ?? []) as { A_Const?: { sval?: { sval: string } } }[])[0]?.A_Const?.sval?.sval?.toLowerCase();
      if (body.kind !== 'VAR_SET_VALUE' || !['on', 'true', '1', 'yes'].includes(v ?? '')) return [`forwarded SET ${name} other than on: ${sql}`];
      return [];
    }
    if (node === 'VariableSetStmt' && ['search_path', 'session_authorization', 'role'].includes(name)) return [`forwarded SET ${name}`];
  }
  return [];
}

/** The query Gatehouse wrote inside its DECLARE (`DECLARE name [options] CURSOR [WITH HOLD] FOR query`). */
const DECLARED = /^DECLARE (?:"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*)(?: (?:BINARY|INSENSITIVE|ASENSITIVE|SCROLL|NO SCROLL))* CURSOR(?: WITH HOLD)? FOR (.*)$/s;
/** The query Gatehouse wrote inside its PREPARE (`PREPARE name [(types)] AS query`). */
const PREPARED = /^PREPARE (?:"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*)(?: \([^()]*(?:\([^()]*\)[^()]*)*\))? AS (.*)$/s;
const NAME_NODES = new Set(['FetchStmt', 'ClosePortalStmt', 'ExecuteStmt', 'DeallocateStmt']);

/** Problems with a forwarded cursor or prepared-statement statement (issue 16): what runs is checked like a SELECT. */
async function checkNamed(sql: string): Promise<string[]> {
  let parsed: { node: string; body: Record<string, unknown> }[];
  try {
    parsed = statementsIn(sql);
  } catch (e) {
    return [`forwarded text does not parse: ${(e as Error).message}`];
  }
  if (parsed.length !== 1) return [`forwarded text holds ${parsed.map((p) => p.node).join(', ')}`];
  const { node } = parsed[0];
  if (node === 'DeclareCursorStmt' || node === 'PrepareStmt') {
    const m = (node === 'DeclareCursorStmt' ? DECLARED : PREPARED).exec(sql);
    if (!m) return [`forwarded ${node} not as Gatehouse writes it`];
    return checkQuery(m[1]);
  }
  if (!NAME_NODES.has(node)) return [`forwarded ${node} as kind other`];
  return node === 'ExecuteStmt' ? checkForwardedText(sql, pools.text, lex, { relations: true }) : [];
}

async function problemsOf(ctxName: string, ctx: DecisionContext, sql: string): Promise<string[]> {
  tally.inputs++;
  let d: unknown;
  try {
    d = await decide(ctx, sql);
  } catch (e) {
    return [`decide() threw ${(e as Error)?.stack ?? e}`];
  }
  if (!isDecision(d)) return [`decide() returned a non-Decision: ${JSON.stringify(d)?.slice(0, 300)}`];
  if (d.outcome === 'refuse') {
    tally.refused++;
    return [];
  }
  if (d.outcome === 'empty') {
    tally.empty++;
    return [];
  }
  const problems: string[] = [];
  for (const st of d.statements) {
    if (st.action === 'catalog') {
      tally.catalog++;
      continue;
    }
    if (st.action === 'answer') {
      tally.answered++;
      continue;
    }
    tally.forwarded++;
    const at = (ps: string[]) => ps.map((p) => `${p}\n    forwarded as ${ctxName}: ${st.sql}`);
    if (st.kind === 'select') problems.push(...at(await checkQuery(st.sql)));
    else if (st.kind === 'copy_out') {
      const copy = statementsIn(st.sql);
      if (copy.length !== 1 || copy[0].node !== 'CopyStmt' || copy[0].body.filename || copy[0].body.is_program || copy[0].body.is_from)
        problems.push(...at(['forwarded COPY is not one COPY (query) TO STDOUT']));
      const q = (st as { copyOut?: { query: string } }).copyOut?.query;
      if (!q) problems.push(...at(['forwarded COPY without its query']));
      else problems.push(...at(await checkQuery(q)));
    } else if (['set', 'show', 'reset', 'transaction', 'discard'].includes(st.kind)) {
      tally.session++;
      problems.push(...at(checkSession(st.sql, st.kind)));
    } else if (st.kind === 'other' && st.names) {
      tally.session++;
      problems.push(...at(await checkNamed(st.sql)));
    } else problems.push(...at([`forwarded a statement of kind ${st.kind}`]));
  }
  return problems;
}

interface Failure {
  input: string;
  problems: string[];
}

async function fuzz(inputs: string[]): Promise<Failure[]> {
  const failures: Failure[] = [];
  for (const [i, sql] of inputs.entries()) {
    const [name, ctx] = contexts[i % contexts.length];
    const ps = await problemsOf(name, ctx, sql);
    if (ps.length) failures.push({ input: sql, problems: [...new Set(ps)] });
  }
  return failures;
}

/** Failures by kind of problem first (one line each), then up to 150 inputs in full. */
function report(failures: Failure[], what: string): string {
  const kinds = new Map<string, number>();
  for (const f of failures) {
    for (const k of new Set(
      f.problems.map((p) =>
        p
          .split('\n')[0]
          .replace(/ in .*$/, '')
          .replace(/(does not parse: [a-z ]+).*/, '$1')
          .replace(/(other than on): .*/, '$1'),
      ),
    )) {
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
  }
  const byKind = [...kinds]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `  ${n} × ${k}`)
    .join('\n');
  const shown = failures
    .slice(0, 150)
    .map((f) => `input: ${f.input}\n  ${f.problems.join('\n  ')}`)
    .join('\n\n');
  return `${failures.length} ${what} failed (${reproduce}).\nBy problem:\n${byKind}\n\n${shown}${failures.length > 150 ? `\n\n... and ${failures.length - 150} more` : ''}`;
}

describe("classifier fuzz: decide() as query_topics users, forwarded SQL checked by PostgreSQL's EXPLAIN", () => {
  it('the plan check sees what it must (a forwarded leak would be caught)', async () => {
    expect(await checkQuery(`SELECT email FROM public.customers`)).toEqual([expect.stringMatching(/column public\.customers\.email/)]);
    expect((await checkQuery(`SELECT * FROM public.employees`)).join()).toMatch(/relation public\.employees/);
    expect((await checkQuery(`SELECT ('x'::text).ts_stat`)).join()).toMatch(/ts_stat/);
    expect((await checkQuery(`SELECT (NULL::employees).*`)).join()).toMatch(/type employees/);
    expect((await checkQuery(`SELECT 'employees'::regclass::oid`)).join()).toMatch(/regclass/);
    expect((await checkQuery(`SELECT * FROM ts_stat('select 1')`)).join()).toMatch(/ts_stat/);
    expect((await checkQuery(`SELECT 1; SELECT 2`)).join()).toMatch(/not one SELECT/);
    expect((await checkQuery(`SELECT (NULL::employees).*`)).join()).toMatch(/row type employees/);
    expect((await checkQuery(`SELECT (CAST(NULL AS public.customers)).*`)).join()).toMatch(/row type customers/);
    expect((await checkQuery(`SELECT ctid FROM public.orders`)).join()).toMatch(/column public\.orders\.ctid/);
    expect((await checkQuery(`SELECT c.email FROM public.customers c, public.orders o`)).join()).toMatch(/column public\.customers\.email/);
    expect(await checkQuery(`SELECT current_setting('TimeZone'), now()`)).toEqual([]);
    expect((await checkQuery(`SELECT current_setting('data_directory')`)).join()).toMatch(/current_setting/);
    expect(
      await checkQuery(
        `SELECT o.id, upper(o.status), EXTRACT(year FROM o.ordered_at), sum(o.amount) OVER (PARTITION BY o.region) FROM (SELECT id, customer_id, region, amount, status, ordered_at FROM public.orders WHERE region = 'EMEA' OFFSET 0) AS o`,
      ),
    ).toEqual([]);
  });

  it('the corpus and the oracle statements, unmutated', { timeout: 300_000 }, async () => {
    clearDecisionCache();
    const failures = await fuzz(bases);
    expect(failures.length, report(failures, 'unmutated statements')).toBe(0);
  });

  it(`${RUNS} mutations`, { timeout: 600_000 }, async () => {
    clearDecisionCache();
    const muts: Mutation[] = fc.sample(mutationArb(bases.length), { seed: SEED, numRuns: RUNS });
    const failures = await fuzz(muts.map((m) => applyMutation(bases[m.base], m, pools)));
    expect(failures.length, report(failures, 'mutated statements')).toBe(0);
  });
});
