// The startup packet's `options` (libpq's PGOPTIONS, pgjdbc's `options=`): settings the
// client asks for before its first statement. PostgreSQL reads them as command-line switches
// of the backend; Gatehouse accepts only the two that set a run-time setting (`-c name=value`,
// `--name=value`) and decides each as the `SET name TO 'value'` it stands for, with decide(),
// so the same refusals hold at startup as in the session. Anything else refuses the startup:
// nothing is dropped silently, and nothing of `options` reaches the warehouse as written.
import { GatehouseError } from '../errors.ts';
import { quoteIdent } from '../sql/deparse.ts';
import { Refusal } from '../sql/refusal.ts';
import { safeLiteral } from '../sql/session-statement.ts';
import { decide } from './decide.ts';
import type { DecisionContext, PlannedStatement } from './decision.ts';

export interface StartupSetting {
  name: string;
  value: string;
  /** As the client wrote it, for messages: `option -c name=value` or `parameter name=value`. */
  written: string;
}

/**
 * Splits `options` as PostgreSQL's pg_split_opts does: arguments separated by whitespace, a
 * backslash taking the next character literally (`-c search_path=a\ b` is one argument).
 */
export function splitOptions(options: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && /\s/.test(options[i])) i++;
    if (i >= options.length) break;
    let arg = '';
    while (i < options.length && !/\s/.test(options[i])) {
      if (options[i] === '\\') i++;
      if (i < options.length) arg += options[i++];
    }
    out.push(arg);
  }
  return out;
}

function fatal(sqlstate: '0A000' | '42601', message: string, hint?: string): GatehouseError {
  return new GatehouseError(sqlstate, message, {
    severity: 'FATAL',
    ...(hint ? { hint } : {}),
  });
}

const OPTIONS_HINT = 'Gatehouse accepts only settings in options: -c name=value or --name=value (PGOPTIONS for libpq clients)';

/** `name=value` of -c or --: the name as PostgreSQL's ParseLongOption reads it (dashes are underscores). */
function setting(arg: string, written: string): StartupSetting {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw fatal('42601', `startup option ${written} needs a value: write -c name=value`, OPTIONS_HINT);
  return {
    name: arg.slice(0, eq).replace(/-/g, '_').toLowerCase(),
    value: arg.slice(eq + 1),
    written: `option ${written}`,
  };
}

/** The settings an options string asks for; throws a FATAL 0A000 naming any other switch. */
export function parseStartupOptions(options: string): StartupSetting[] {
  const args = splitOptions(options);
  const out: StartupSetting[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-c') {
      const next = args[++i];
      if (next === undefined) throw fatal('42601', 'startup option -c needs name=value after it', OPTIONS_HINT);
      out.push(setting(next, `-c ${next}`));
    } else if (a.startsWith('-c')) {
      out.push(setting(a.slice(2), a));
    } else if (a.startsWith('--')) {
      out.push(setting(a.slice(2), a));
    } else {
      throw fatal('0A000', `startup option ${a} is not supported through Gatehouse`, OPTIONS_HINT);
    }
  }
  return out;
}

/**
 * Startup parameters Gatehouse handles itself: the connection's sign-in, the encoding it
 * checks, `options` (above), and the ones it passes to the warehouse as they are
 * (warehouses/types.ts FORWARDED_PARAMS), by lower-case name.
 */
const HANDLED_PARAMETERS = new Set(['user', 'database', 'options', 'client_encoding', 'application_name', 'datestyle', 'timezone', 'extra_float_digits']);

/**
 * Every other startup parameter is a setting to PostgreSQL (node-postgres sends
 * statement_timeout and idle_in_transaction_session_timeout that way): decided as the SET
 * it stands for, like an option, never dropped. `replication` asks for a replication
 * connection, which Gatehouse does not serve.
 */
export function startupParameterSettings(params: Record<string, string>): StartupSetting[] {
  const out: StartupSetting[] = [];
  for (const [name, value] of Object.entries(params)) {
    const lower = name.toLowerCase();
    if (HANDLED_PARAMETERS.has(lower)) continue;
    if (lower === 'replication') throw fatal('0A000', 'replication connections are not supported through Gatehouse');
    out.push({ name: lower, value, written: `parameter ${name}=${value}` });
  }
  return out;
}

/** The SET Gatehouse writes for one startup setting (then decided like any client SET). */
export function setStatementFor(s: StartupSetting): string {
  if (s.value.includes('\0')) throw fatal('0A000', `startup ${s.written} holds a NUL character`);
  return `SET ${s.name.split('.').map(quoteIdent).join('.')} TO ${safeLiteral(s.value)}`;
}

/**
 * The statements to run on the upstream session before the client's first statement, one
 * decided SET per startup setting; throws the first refusal as a FATAL naming the option.
 */
export async function decideStartupOptions(
  ctx: DecisionContext,
  options: string | undefined,
  params: Record<string, string> = {},
): Promise<PlannedStatement[]> {
  const settings = [...startupParameterSettings(params), ...(options === undefined || options.trim() === '' ? [] : parseStartupOptions(options))];
  const statements: PlannedStatement[] = [];
  for (const s of settings) {
    let sql: string;
    try {
      sql = setStatementFor(s);
    } catch (e) {
      if (e instanceof Refusal) throw fatal('0A000', `startup ${s.written} refused: ${e.error.message}`);
      throw e;
    }
    const d = await decide(ctx, sql);
    if (d.outcome === 'refuse') {
      throw new GatehouseError(d.error.sqlstate, `startup ${s.written} refused: ${d.error.message}`, {
        severity: 'FATAL',
        hint: d.error.hint ?? 'remove it from options (PGOPTIONS); the session allows the same SET statements as it does after startup',
      });
    }
    if (d.outcome !== 'run' || d.statements.some((st) => st.action !== 'forward' || st.kind !== 'set')) {
      throw fatal('0A000', `startup ${s.written} is not a setting Gatehouse can apply at startup`, OPTIONS_HINT);
    }
    statements.push(...d.statements);
  }
  return statements;
}
