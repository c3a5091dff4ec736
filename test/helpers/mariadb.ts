// The local MariaDB for the mysql connector's tests: a server that cannot be reached is a loud
// failure, never a silent skip (under CI=true and everywhere else).
import mysql from 'mysql2/promise';

export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };

/** A root connection to the local MariaDB (no database selected); fails loudly with how to start it. */
export async function mariadbAdmin(): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection({ ...MARIADB, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  } catch (e) {
    throw new Error(
      `these tests need the local MariaDB at ${MARIADB.host}:${MARIADB.port} (user root, no password) and could not reach it: ${(e as Error).message}. ` +
        'Start it: service mariadb start (bash .ci/run starts it too)',
    );
  }
}

/** Runs SQL as root (several statements allowed). */
export async function mariadbRun(sql: string): Promise<unknown> {
  const c = await mariadbAdmin();
  try {
    const [rows] = await c.query(sql);
    return rows;
  } finally {
    await c.end();
  }
}

/** A fresh database; `accounts`: users (name -> password) created afresh with nothing granted. */
export async function freshMariadbDatabase(database: string, setup: string, accounts: Record<string, string> = {}): Promise<void> {
  const users = Object.entries(accounts)
    .map(([u, p]) => `DROP USER IF EXISTS '${u}'@'%';\nCREATE USER '${u}'@'%' IDENTIFIED BY '${p}';`)
    .join('\n');
  await mariadbRun(
    `DROP DATABASE IF EXISTS \`${database}\`;\nCREATE DATABASE \`${database}\` CHARACTER SET utf8mb4;\nUSE \`${database}\`;\n${setup}\n${users}`,
  );
}
