// The session a MySQL/MariaDB connector must set before it runs any emitted statement: the
// one source of it. The mysql connector (src/warehouses/mysql.ts) runs mysqlSessionStatements
// on every new and every reset connection, and the emitter writes for exactly this session;
// its literals are also written so that a session left in another sql_mode cannot read them
// differently (see mysql-text.ts).

export type MysqlFlavor = 'mariadb' | 'mysql';

/**
 * The collation PostgreSQL's text comparison corresponds to: code-point order, case and
 * trailing spaces significant (PostgreSQL's "C"/C.UTF-8 collation, deterministic). MySQL's
 * default collations are case-insensitive and PAD SPACE ('a' = 'A ' is true there).
 */
export const TEXT_COLLATION: Record<MysqlFlavor, string> = {
  mariadb: 'utf8mb4_nopad_bin',
  mysql: 'utf8mb4_0900_bin',
};

/**
 * sql_mode: NO_BACKSLASH_ESCAPES (a backslash is an ordinary character, as in PostgreSQL with
 * standard_conforming_strings), no ANSI_QUOTES, no PIPES_AS_CONCAT (`||` is never emitted,
 * but a session must not read it as concatenation either way), ONLY_FULL_GROUP_BY (a query
 * PostgreSQL refuses must not get an arbitrary answer), STRICT_ALL_TABLES and the zero-date
 * and division modes (writes where allow_writes permits them fail as PostgreSQL's would).
 */
export const MYSQL_SQL_MODE =
  'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,ONLY_FULL_GROUP_BY,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/** The character set of every session (client, connection and results). */
export const MYSQL_CHARSET = 'utf8mb4';
/** The session time zone: TIMESTAMP values and now() in UTC, printed as timestamptz with +00. */
export const MYSQL_TIME_ZONE = '+00:00';

/** MariaDB or MySQL, from the server's version string (MariaDB's says so: `10.11.6-MariaDB-0+deb12u1`). */
export function flavorOf(serverVersion: string | undefined): MysqlFlavor {
  return /mariadb/i.test(serverVersion ?? '') ? 'mariadb' : 'mysql';
}

/**
 * The optimizer switches that keep a topic's derived table a security barrier even if the
 * LIMIT fence the emitter writes were ever dropped: no merging of derived tables into the
 * outer query, no pushing of the outer query's conditions into them. Measured on MariaDB
 * 10.11: with derived_merge=off alone the condition is still pushed down and runs on hidden rows.
 */
export const BARRIER_OPTIMIZER_SWITCH: Record<MysqlFlavor, string> = {
  mariadb: 'derived_merge=off,condition_pushdown_for_derived=off,split_materialized=off,condition_pushdown_for_subquery=off,condition_pushdown_from_having=off',
  mysql: 'derived_merge=off,derived_condition_pushdown=off',
};

export interface MysqlSessionSetting {
  name: string;
  /** A string is a quoted value, a number a bare one (MySQL refuses '16' for a numeric variable). */
  value: string | number;
}

/** What the connector sets on every session, in order, before the first emitted statement. */
export function mysqlSessionSettings(flavor: MysqlFlavor): MysqlSessionSetting[] {
  return [
    { name: 'sql_mode', value: MYSQL_SQL_MODE },
    // Literals take the connection's collation: compare them as PostgreSQL does.
    { name: 'character_set_client', value: MYSQL_CHARSET },
    { name: 'character_set_connection', value: MYSQL_CHARSET },
    { name: 'character_set_results', value: MYSQL_CHARSET },
    { name: 'collation_connection', value: TEXT_COLLATION[flavor] },
    { name: 'optimizer_switch', value: BARRIER_OPTIMIZER_SWITCH[flavor] },
    // now(), current_date and TIMESTAMP columns read in UTC, as the PostgreSQL warehouses run.
    { name: 'time_zone', value: MYSQL_TIME_ZONE },
    // numeric division keeps at least 16 decimals, near PostgreSQL's numeric division scale.
    { name: 'div_precision_increment', value: 16 },
  ];
}

/** The settings as SET statements (values are Gatehouse's own constants, quoted for a single-quoted literal). */
export function mysqlSessionStatements(flavor: MysqlFlavor): string[] {
  return mysqlSessionSettings(flavor).map((s) =>
    typeof s.value === 'number' ? `SET SESSION ${s.name} = ${s.value}` : `SET SESSION ${s.name} = '${s.value.replace(/'/g, "''")}'`,
  );
}
