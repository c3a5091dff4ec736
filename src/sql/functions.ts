// Which functions and settings a statement may use. DESIGN 3: functions are checked
// against an allowlist for Query Topics users; a denylist holds at every level because
// these functions leaked data (or reached the server's files/network) in our probes.
//
// Names are compared after the parser's case folding; a name qualified with
// `pg_catalog.` is the same function, any other schema is not on the allowlist.

/**
 * Functions a Query Topics user may call. Chosen to cover analytic SQL from BI tools
 * (aggregates, windows, dates, strings, maths) and nothing that reads relations,
 * files, settings or other sessions. `format` is allowed: it only formats its
 * arguments. `random` is harmless. `version` is not: it names the warehouse build.
 */
export const TOPIC_FUNCTION_ALLOWLIST: ReadonlySet<string> = new Set([
  // aggregates
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
  // window functions
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
  // dates and times
  'date_trunc',
  'date_part',
  'extract',
  'now',
  'current_date',
  'current_timestamp',
  'localtimestamp',
  'clock_timestamp',
  'statement_timestamp',
  'transaction_timestamp',
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
  // conditionals (coalesce/nullif/greatest/least are their own nodes, listed for clarity)
  'coalesce',
  'nullif',
  'greatest',
  'least',
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
  'trim',
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
  'numeric',
  // arrays, sets, json values
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
  // settings: only of allowlisted settings (checked separately)
  'current_setting',
  // session identity: answered by Gatehouse (sql/identity.ts), never sent
  'current_database',
  'current_schema',
  'current_user',
  'session_user',
]);

/**
 * Refused at every level, whatever the schema (a `public.dblink` is still dblink).
 * Exact names; prefixes below.
 */
export const FUNCTION_DENYLIST: ReadonlySet<string> = new Set([
  'ts_stat',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_ls_logdir',
  'pg_ls_waldir',
  'pg_ls_tmpdir',
  'pg_ls_archive_statusdir',
  'set_config',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_file_sync',
  'pg_logdir_ls',
  'pg_execute_server_program',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_signal_backend',
  'pg_log_backend_memory_contexts',
  'pg_import_system_collations',
  'pg_current_logfile',
  'loread',
  'lowrite',
  // ts_rewrite(query, 'SELECT ...') runs its second argument as SQL, as ts_stat does: any
  // function that takes SQL text is a way around every other check (an outside review ran
  // set_config, lo_from_bytea and pg_terminate_backend through it).
  'ts_rewrite',
  // The random generator's state outlives DISCARD ALL: on a pooled connection the next
  // person's random() would be the one this session seeded (an outside review, 2026-12-03).
  'setseed',
  // Other sessions' activity: who runs what, and which backends block which.
  'pg_lock_status',
  'pg_blocking_pids',
  'pg_safe_snapshot_blocking_pids',
]);

/** Every function whose name starts with one of these is refused at every level. */
export const FUNCTION_DENY_PREFIXES: readonly string[] = [
  'dblink',
  'lo_',
  'pg_advisory',
  'pg_try_advisory',
  // pg_stat_get_backend_activity, pg_stat_get_db_tuples_fetched...: the views' functions.
  'pg_stat_',
];

/** Every function whose name contains one of these is refused at every level. */
export const FUNCTION_DENY_SUBSTRINGS: readonly string[] = [
  // query_to_xml, table_to_xml, cursor_to_xml, *_to_xmlschema, *_to_xml_and_xmlschema,
  // database_to_xml, schema_to_xml ... all read whole relations.
  '_to_xml',
];

/**
 * Refused for Query Topics users wherever their statements run (the topic allowlist leaves
 * them out; the topic catalog's walker checks this list), allowed to queriers and up:
 * pg_sleep, pg_sleep_for and pg_sleep_until hold only the caller's own backend, bounded by
 * statement_timeout (docs/security.md, "Functions refused at every level, and why"). For a
 * Query Topics user a sleep is a timing oracle's clock and holds the shared catalog server.
 */
/**
 * Functions that are statements in disguise: allowed exactly where the statement is. pg_notify
 * is NOTIFY (it reaches other sessions' LISTEN), so, like NOTIFY, it needs a connection with
 * allow_writes and a level that may write there (queriers and up).
 */
export const WRITE_FUNCTIONS: ReadonlySet<string> = new Set(['pg_notify']);

export const QUERY_TOPICS_DENY_PREFIXES: readonly string[] = ['pg_sleep'];

export function isDeniedForQueryTopics(name: string): boolean {
  const n = name.toLowerCase();
  return isDeniedFunction(n) || QUERY_TOPICS_DENY_PREFIXES.some((p) => n.startsWith(p));
}

export function isDeniedFunction(name: string): boolean {
  const n = name.toLowerCase();
  return FUNCTION_DENYLIST.has(n) || FUNCTION_DENY_PREFIXES.some((p) => n.startsWith(p)) || FUNCTION_DENY_SUBSTRINGS.some((s) => n.includes(s));
}

/**
 * Why no one reads this relation through Gatehouse, or undefined. Statistics views leaked
 * hidden values (pg_stats histograms; pg_stat_database and pg_stat_user_tables count the
 * rows an index scan fetched before the access filter dropped them); activity views show
 * other sessions' statements and locks (sessions share a warehouse account).
 */
export function deniedRelation(name: string): string | undefined {
  if (name === 'pg_locks' || name === 'pg_stat_activity') return "it shows other sessions' activity";
  // pg_statistic_ext stays readable: it holds extended statistics' definitions (psql's \d reads it), not data.
  const statistics = ['pg_stats', 'pg_statistic', 'pg_statistic_ext_data', 'pg_stats_ext', 'pg_stats_ext_exprs'];
  if (statistics.includes(name) || name.startsWith('pg_stat_') || name.startsWith('pg_statio_')) return 'its statistics and counters leak hidden rows';
  return undefined;
}

/**
 * Settings a Query Topics user may SET, SHOW, RESET or read with current_setting:
 * what drivers send at startup and what changes formatting or time limits only.
 * Never search_path (fixed by Gatehouse), role, session_authorization or the
 * read-only settings.
 */
export const SETTING_ALLOWLIST: ReadonlySet<string> = new Set([
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
  'row_security',
  'default_transaction_deferrable',
  'transaction_deferrable',
  'xmloption',
  'escape_string_warning',
  'array_nulls',
  'quote_all_identifiers',
]);

/** SET/RESET of these is a write of the session's read-only guarantee (every level). */
export const READ_ONLY_GUARD_SETTINGS: ReadonlySet<string> = new Set([
  'default_transaction_read_only',
  'transaction_read_only',
  'role',
  'session_authorization',
]);

/** `SHOW search_path` is fine (it reads what Gatehouse fixed); SET is not. */
export const SHOW_ONLY_SETTINGS: ReadonlySet<string> = new Set(['search_path', 'transaction_read_only', 'default_transaction_read_only', 'is_superuser']);
