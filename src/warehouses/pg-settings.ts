// PostgreSQL's session settings, kept by Gatehouse for a warehouse that has none (row-session.ts
// on a mysql connection). Clients send SET/SHOW/RESET of them at connect and around queries
// (pgjdbc's extra_float_digits and application_name, SQLAlchemy's `show standard_conforming_strings`
// and `show transaction isolation level`); policy decides which (policy/row-statements.ts) and which
// values, and this module answers them per session. Nothing here reaches the warehouse.
import type { EmulatedSession } from './types.ts';

/** The name SHOW prints as its column (PostgreSQL's GUC name: a few are mixed case). */
/** The PostgreSQL version Gatehouse announces (ParameterStatus server_version where the warehouse has none of its own). */
export const SERVER_VERSION = '15.0 (Gatehouse 0.1.0)';

const DISPLAY_NAMES: Record<string, string> = { datestyle: 'DateStyle', timezone: 'TimeZone', intervalstyle: 'IntervalStyle' };

/**
 * What a new session shows: PostgreSQL's defaults where the mysql connector prints that way
 * (UTC timestamps, ISO dates, hex bytea), and the truth about the warehouse where it differs
 * (InnoDB's REPEATABLE READ). server_version is the one announced at sign-in (gateway.ts).
 */
const DEFAULTS: Record<string, string> = {
  application_name: '',
  client_encoding: 'UTF8',
  datestyle: 'ISO, MDY',
  timezone: 'UTC',
  extra_float_digits: '1',
  intervalstyle: 'postgres',
  statement_timeout: '0',
  lock_timeout: '0',
  idle_in_transaction_session_timeout: '0',
  client_min_messages: 'notice',
  bytea_output: 'hex',
  default_transaction_isolation: 'repeatable read',
  transaction_isolation: 'repeatable read',
  standard_conforming_strings: 'on',
  server_version: SERVER_VERSION,
  server_version_num: '150000',
  server_encoding: 'UTF8',
  integer_datetimes: 'on',
  max_identifier_length: '63',
  lc_monetary: 'C',
  lc_numeric: 'C',
  lc_time: 'C',
  geqo: 'on',
  jit: 'off',
  work_mem: '4MB',
  row_security: 'on',
  default_transaction_deferrable: 'off',
  transaction_deferrable: 'off',
  xmloption: 'content',
  escape_string_warning: 'on',
  array_nulls: 'on',
  quote_all_identifiers: 'off',
  search_path: '"$user", public',
  is_superuser: 'off',
};

/** The column SHOW name prints under. */
export function showColumn(name: string): string {
  return DISPLAY_NAMES[name] ?? name;
}

export interface EmulatedResult {
  /** SHOW: its one column and value. */
  show?: { column: string; value: string };
  tag: string;
}

export class EmulatedSettings {
  private readonly initial: Map<string, string>;
  private session: Map<string, string>;
  /** SET LOCAL values: gone when the transaction ends. */
  private local = new Map<string, string>();

  constructor(opts: { readOnly: boolean; params?: Record<string, string>; isolation?: string }) {
    const ro = opts.readOnly ? 'on' : 'off';
    // The warehouse's own isolation level where it is not InnoDB's (Snowflake: READ COMMITTED).
    const iso = opts.isolation ?? DEFAULTS.transaction_isolation;
    this.initial = new Map(
      Object.entries({
        ...DEFAULTS,
        default_transaction_read_only: ro,
        transaction_read_only: ro,
        default_transaction_isolation: iso,
        transaction_isolation: iso,
      }),
    );
    // The client's allowlisted startup parameters (application_name; DateStyle and TimeZone as the connector prints).
    const app = opts.params?.application_name;
    if (app !== undefined) this.initial.set('application_name', app);
    this.session = new Map(this.initial);
  }

  /** Answers one emulated statement; throws nothing (policy checked names and values). */
  apply(op: EmulatedSession): EmulatedResult {
    switch (op.op) {
      case 'set':
        (op.local ? this.local : this.session).set(op.name, op.value);
        return { tag: 'SET' };
      case 'reset':
        this.local.delete(op.name);
        this.session.set(op.name, this.initial.get(op.name) ?? '');
        return { tag: 'RESET' };
      case 'reset_all':
        this.resetAll();
        return { tag: 'RESET' };
      case 'show':
        return { show: { column: showColumn(op.name), value: this.local.get(op.name) ?? this.session.get(op.name) ?? '' }, tag: 'SHOW' };
      case 'discard':
        if (op.what === 'all') this.resetAll();
        return { tag: `DISCARD ${op.what.toUpperCase()}` };
    }
  }

  /** The transaction ended: SET LOCAL values go. */
  endTransaction(): void {
    this.local.clear();
  }

  private resetAll(): void {
    this.local.clear();
    this.session = new Map(this.initial);
  }
}
