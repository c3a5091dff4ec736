// What a forwarded statement reaches, read from PostgreSQL's own plan of it
// (EXPLAIN (VERBOSE, FORMAT JSON)): only the topics' base relations, only their allowed
// columns, only allowlisted functions and built-in scalar types. Fail closed: a plan node
// kind, function name, type or SQL keyword this file does not recognise is reported.
// The lists here are the test's own, on purpose independent of src/sql/functions.ts.

/** Functions a query_topics statement may reach (names as EXPLAIN prints them, unquoted). */
export const FUZZ_FUNCTION_ALLOWLIST: ReadonlySet<string> = new Set([
  // aggregates and windows
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'stddev',
  'stddev_pop',
  'stddev_samp',
  'variance',
  'var_pop',
  'var_samp',
  'string_agg',
  'array_agg',
  'bool_and',
  'bool_or',
  'every',
  'percentile_cont',
  'percentile_disc',
  'mode',
  'corr',
  'covar_pop',
  'covar_samp',
  'regr_slope',
  'regr_intercept',
  'regr_r2',
  'regr_count',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'bit_and',
  'bit_or',
  'any_value',
  'row_number',
  'rank',
  'dense_rank',
  'percent_rank',
  'cume_dist',
  'ntile',
  'lag',
  'lead',
  'first_value',
  'last_value',
  'nth_value',
  // dates
  'date_trunc',
  'date_part',
  'extract',
  'now',
  'to_char',
  'to_date',
  'to_timestamp',
  'to_number',
  'age',
  'make_date',
  'make_time',
  'make_timestamp',
  'make_timestamptz',
  'make_interval',
  'date_bin',
  'justify_days',
  'justify_hours',
  'justify_interval',
  'isfinite',
  'timezone',
  'statement_timestamp',
  'transaction_timestamp',
  'clock_timestamp',
  // strings
  'lower',
  'upper',
  'length',
  'char_length',
  'character_length',
  'octet_length',
  'bit_length',
  'substr',
  'substring',
  'btrim',
  'ltrim',
  'rtrim',
  'replace',
  'concat',
  'concat_ws',
  'left',
  'right',
  'split_part',
  'position',
  'strpos',
  'initcap',
  'lpad',
  'rpad',
  'format',
  'reverse',
  'repeat',
  'translate',
  'md5',
  'starts_with',
  'regexp_replace',
  'regexp_match',
  'regexp_matches',
  'regexp_split_to_array',
  'regexp_like',
  'regexp_count',
  'regexp_substr',
  'string_to_array',
  'array_to_string',
  'quote_literal',
  'quote_ident',
  'quote_nullable',
  'chr',
  'ascii',
  'to_hex',
  'overlay',
  'normalize',
  'textlen',
  // maths
  'round',
  'floor',
  'ceil',
  'ceiling',
  'abs',
  'trunc',
  'mod',
  'power',
  'pow',
  'sqrt',
  'cbrt',
  'ln',
  'log',
  'log10',
  'exp',
  'sign',
  'random',
  'div',
  'width_bucket',
  'pi',
  'degrees',
  'radians',
  'gcd',
  'lcm',
  'scale',
  // arrays and json values
  'generate_series',
  'unnest',
  'array_length',
  'cardinality',
  'array_position',
  'array_append',
  'array_prepend',
  'array_cat',
  'array_remove',
  'array_upper',
  'array_lower',
  'to_json',
  'to_jsonb',
  'json_build_object',
  'jsonb_build_object',
  'json_build_array',
  'jsonb_build_array',
  'jsonb_pretty',
  'json_typeof',
  'jsonb_typeof',
  'jsonb_extract_path',
  'jsonb_extract_path_text',
  'json_extract_path',
  'json_extract_path_text',
]);

/** SQL syntax EXPLAIN prints in upper case before a parenthesis. */
const KEYWORDS = new Set([
  'EXTRACT',
  'SUBSTRING',
  'TRIM',
  'POSITION',
  'OVERLAY',
  'COALESCE',
  'GREATEST',
  'LEAST',
  'NULLIF',
  'ROW',
  'ARRAY',
  'CASE',
  'WHEN',
  'THEN',
  'ELSE',
  'END',
  'EXISTS',
  'ANY',
  'ALL',
  'SOME',
  'NOT',
  'AND',
  'OR',
  'IN',
  'OVER',
  'FILTER',
  'WHERE',
  'WITHIN',
  'GROUP',
  'GROUPING',
  'CAST',
  'IS',
  'NORMALIZE',
  'FROM',
  'FOR',
  'PLACING',
  'BOTH',
  'LEADING',
  'TRAILING',
  'DISTINCT',
  'ORDER',
  'BY',
  'ASC',
  'DESC',
  'NULLS',
  'FIRST',
  'LAST',
  'LIKE',
  'ILIKE',
  'SIMILAR',
  'TO',
  'ESCAPE',
  'BETWEEN',
  'SYMMETRIC',
  'NULL',
  'TRUE',
  'FALSE',
  'AS',
  'USING',
  'VALUES',
  'CURRENT_DATE',
  'CURRENT_TIMESTAMP',
  'LOCALTIMESTAMP',
  'CURRENT_TIME',
  'LOCALTIME',
  'COLLATE',
  'AT',
  'TIME',
  'ZONE',
  'INTERVAL',
  'ON',
  'SubPlan',
  'InitPlan',
  'hashed',
  'returns',
]);

/** First words of the built-in scalar types EXPLAIN may print after `::`. */
const SCALAR_TYPES = new Set([
  'integer',
  'bigint',
  'smallint',
  'numeric',
  'text',
  'character',
  'varchar',
  'boolean',
  'date',
  'timestamp',
  'time',
  'interval',
  'double',
  'real',
  'jsonb',
  'json',
  'bytea',
  'uuid',
  'name',
  'bit',
  'oid',
  'unknown',
  '"char"',
  'int4',
  'int8',
  'float8',
  'money',
  'inet',
  'cidr',
  'point',
  'tsvector',
  'tsquery',
  '"bit"',
  'xml',
  // bpchar: N'x' is a national character literal; record: an anonymous ROW(...) constant.
  'bpchar',
  'record',
]);

/** current_setting() of these settings only (what a client may SHOW anyway). */
export const READABLE_SETTINGS: ReadonlySet<string> = new Set([
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'extra_float_digits',
  'intervalstyle',
  'server_version',
  'server_version_num',
  'server_encoding',
  'integer_datetimes',
  'max_identifier_length',
  'standard_conforming_strings',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
  'statement_timeout',
  'bytea_output',
  'transaction_isolation',
  'default_transaction_isolation',
  'client_min_messages',
]);

/** Removes current_setting('<readable setting>') calls (with or without the ::text EXPLAIN adds). */
export function withoutReadableSettings(s: string): string {
  return s.replace(/(?:pg_catalog\.)?current_setting\s*\(\s*'([^']*)'(?:::text)?\s*\)/gi, (m, name: string) =>
    READABLE_SETTINGS.has(name.toLowerCase()) ? "''" : m,
  );
}

/** Types that name a relation or look one up: never in a query_topics plan. */
export const REG_TYPES = [
  'regclass',
  'regproc',
  'regprocedure',
  'regoper',
  'regoperator',
  'regtype',
  'regconfig',
  'regdictionary',
  'regnamespace',
  'regrole',
  'regcollation',
];

const PLAN_NODES = new Set([
  'Result',
  'ProjectSet',
  'Limit',
  'Sort',
  'Incremental Sort',
  'Aggregate',
  'WindowAgg',
  'Hash',
  'Hash Join',
  'Merge Join',
  'Nested Loop',
  'Seq Scan',
  'Index Scan',
  'Index Only Scan',
  'Bitmap Heap Scan',
  'Bitmap Index Scan',
  'BitmapAnd',
  'BitmapOr',
  'Subquery Scan',
  'CTE Scan',
  'WorkTable Scan',
  'Recursive Union',
  'Function Scan',
  'Values Scan',
  'Append',
  'Merge Append',
  'SetOp',
  'Unique',
  'Materialize',
  'Memoize',
  'Group',
  'Gather',
  'Gather Merge',
  'Sample Scan',
  'Tid Scan',
  'Tid Range Scan',
]);

/** Plan fields holding expressions. Other string fields are names, strategies and costs. */
const EXPRESSION_FIELDS = new Set([
  'Output',
  'Filter',
  'Join Filter',
  'Hash Cond',
  'Merge Cond',
  'Index Cond',
  'Recheck Cond',
  'Sort Key',
  'Presorted Key',
  'Group Key',
  'One-Time Filter',
  'Function Call',
  'Order By',
  'TID Cond',
  'Cache Key',
  'Run Condition',
  'Sampling Parameters',
  'Repeatable Seed',
  'Table Function Call',
  'Grouping Sets',
  'Hash Key',
]);

export interface TopicBase {
  schema: string;
  table: string;
  fields: string[];
  /** The base's other columns, system columns included (ctid, xmin...): never read. */
  hidden: string[];
}

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

const stripStrings = (s: string) => s.replace(/'(?:[^']|'')*'/g, "''");
const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);

function expressionsOf(node: PlanNode): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(node)) {
    if (!EXPRESSION_FIELDS.has(k)) continue;
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v.flat(3)) if (typeof x === 'string') out.push(x);
  }
  return out;
}

/** Problems in one expression: types after `::` and called names. */
export function checkExpression(expr: string): string[] {
  const problems: string[] = [];
  let s = stripStrings(withoutReadableSettings(expr));
  // Casts: the first word of the type must be a built-in scalar type.
  const castRe =
    /::\s*((?:"[^"]*"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]*"|[A-Za-z_][\w$]*))?)(?:\s+(?:with|without|time|zone|precision|varying))*(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*/g;
  for (const m of s.matchAll(castRe)) {
    const t = m[1];
    if (!SCALAR_TYPES.has(t) && !SCALAR_TYPES.has(t.replace(/^pg_catalog\./, ''))) problems.push(`type ${t} in ${expr}`);
  }
  s = s.replace(castRe, '');
  // Calls: name( with an optional schema.
  for (const m of s.matchAll(/(?:("?[A-Za-z_][\w$]*"?)\.)?("(?:[^"]|"")+"|[A-Za-z_][\w$]*)\s*\(/g)) {
    const schema = m[1] ? unquote(m[1]) : undefined;
    const raw = m[2];
    const name = unquote(raw);
    if (KEYWORDS.has(raw)) continue;
    if (schema !== undefined && schema !== 'pg_catalog') problems.push(`function ${schema}.${name} in ${expr}`);
    else if (!FUZZ_FUNCTION_ALLOWLIST.has(name)) problems.push(`function ${name} in ${expr}`);
  }
  for (const r of REG_TYPES) if (new RegExp(`\\b${r}\\b`).test(s)) problems.push(`${r} in ${expr}`);
  return problems;
}

/** Every problem in a plan (the JSON EXPLAIN returns: an array with one { Plan }). */
export function checkPlan(explain: unknown, topics: TopicBase[]): string[] {
  const problems: string[] = [];
  const root = (explain as { Plan: PlanNode }[])[0]?.Plan;
  if (!root) return ['no plan'];
  const visit = (node: PlanNode) => {
    const kind = String(node['Node Type']);
    if (!PLAN_NODES.has(kind)) problems.push(`plan node ${kind}`);
    const exprs = expressionsOf(node);
    for (const e of exprs) problems.push(...checkExpression(e));
    if (node['Relation Name'] !== undefined) {
      const rel = String(node['Relation Name']);
      const schema = String(node.Schema ?? '');
      const topic = topics.find((t) => t.table === rel && t.schema === schema);
      if (!topic) problems.push(`relation ${schema}.${rel} (${kind})`);
      else {
        const alias = String(node.Alias ?? rel);
        const quoted = /^[a-z_][a-z0-9_$]*$/.test(alias) ? alias : `"${alias.replace(/"/g, '""')}"`;
        const esc = quoted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const colRe = new RegExp(`(?<![\\w$".])${esc}\\.("(?:[^"]|"")+"|[A-Za-z_][\\w$]*|\\*)`, 'g');
        for (const e of exprs) {
          const bare = stripStrings(e);
          for (const m of bare.matchAll(colRe)) {
            const col = unquote(m[1]);
            if (!topic.fields.includes(col)) problems.push(`column ${schema}.${rel}.${col} in ${e}`);
          }
          // With one relation in the statement EXPLAIN prints columns unqualified ("email").
          for (const m of bare.matchAll(/(?<![\w$."])("(?:[^"]|"")+"|[A-Za-z_][\w$]*)(?![\w$"]|\s*\()/g)) {
            const col = unquote(m[1]);
            if (topic.hidden.includes(col)) problems.push(`column ${schema}.${rel}.${col} in ${e}`);
          }
        }
      }
    }
    if (node['Function Name'] !== undefined) {
      const fn = String(node['Function Name']);
      if (!FUZZ_FUNCTION_ALLOWLIST.has(fn) || (node.Schema !== undefined && node.Schema !== 'pg_catalog')) problems.push(`function scan ${node.Schema}.${fn}`);
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  visit(root);
  return problems;
}

export interface TextPools {
  /** Relation names other than the topics' bases (lower case). */
  relations: ReadonlySet<string>;
  /** Every relation name, the topics' bases included: a row type never appears as a type. */
  rowTypes: ReadonlySet<string>;
  /** pg_proc names not on the allowlist, and not also type names. */
  functions: ReadonlySet<string>;
}

/**
 * A check of the forwarded text itself, for what a plan may fold away ('employees'::regclass::oid
 * is a plain oid constant in the plan): no reg* type, no call (plain or column notation) of a
 * non-allowlisted pg_proc function, no relation's row type as a type; and when EXPLAIN failed,
 * no non-topic relation right after FROM or JOIN (with a plan, the plan says what is read,
 * and a CTE may legitimately be called employees). A statement PostgreSQL cannot plan runs
 * nothing, so these text checks guard what a failed plan cannot show: the error itself
 * (42P01 for 'employees'::regclass tells that employees exists or not).
 */
export function checkForwardedText(
  sql: string,
  pools: TextPools,
  lexWords: (s: string) => { kind: string; text: string }[],
  opts: { relations: boolean },
): string[] {
  const problems: string[] = [];
  // Type positions (`::t`, `::schema.t`, `CAST(x AS t)`): never a relation's row type.
  const toks = lexWords(sql).filter((t) => t.kind !== 'space' && t.kind !== 'comment');
  const typeAt = (i: number) => {
    // the last name of a dotted type name starting at token i
    let j = i;
    while (toks[j + 1]?.text === '.' && toks[j + 2]) j += 2;
    const t = toks[j];
    if (!t || (t.kind !== 'word' && t.kind !== 'qident')) return;
    const name = t.kind === 'word' ? t.text.toLowerCase() : unquote(t.text);
    if (pools.rowTypes.has(name)) problems.push(`row type ${name} as a type`);
  };
  const castStack: number[] = [];
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.text === '::') typeAt(i + 1);
    else if (t.kind === 'word' && /^cast$/i.test(t.text) && toks[i + 1]?.text === '(') {
      castStack.push(depth + 1);
    } else if (t.text === '(') depth++;
    else if (t.text === ')') {
      if (castStack.at(-1) === depth) castStack.pop();
      depth--;
    } else if (t.kind === 'word' && /^as$/i.test(t.text) && castStack.at(-1) === depth) typeAt(i + 1);
  }
  const ts = lexWords(withoutReadableSettings(sql)).filter((t) => t.kind !== 'space' && t.kind !== 'comment');
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i];
    if (t.kind !== 'word' && t.kind !== 'qident') continue;
    const name = t.kind === 'word' ? t.text.toLowerCase() : unquote(t.text);
    const next = ts[i + 1]?.text;
    const prev = ts[i - 1]?.text;
    const prev2 = ts[i - 2]?.text;
    // A relation right after FROM or JOIN (an alias elsewhere may be called anything).
    const before = prev === '.' ? ts[i - 3]?.text : prev;
    if (opts.relations && pools.relations.has(name) && /^(from|join)$/i.test(before ?? '')) problems.push(`relation name ${name}`);
    if (REG_TYPES.includes(name)) problems.push(`type ${name}`);
    if (pools.functions.has(name) && (next === '(' || (prev === '.' && prev2 === ')'))) problems.push(`function ${name}`);
  }
  return problems;
}
