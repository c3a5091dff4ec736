// `gatehouse serve --demo --warehouse URL` (DESIGN 4): the URL of a real PostgreSQL or
// MySQL/MariaDB server and an admin account there, read into plain data. The password is
// kept apart from everything that is printed, logged or hashed (redactedUrl never holds it).
// Also the names the demo gives what it makes there: one database per embedded connection
// of the rules, and two accounts per database. Pure: no I/O.
import { createHash } from 'node:crypto';

export type DemoWarehouseKind = 'postgres' | 'mysql';

export interface WarehouseUrl {
  kind: DemoWarehouseKind;
  host: string;
  port: number;
  /** The admin account: used only to set the demo up, never stored in the generated rules. */
  user: string;
  password?: string;
  /** The first organization's database; the others are named after it (demoDatabases). */
  database: string;
  /** The URL without its password, for messages and logs. */
  redacted: string;
}

/** A bad --warehouse value: the message never repeats the URL (it may hold a password). */
export class WarehouseUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WarehouseUrlError';
  }
}

const DEFAULT_PORTS: Record<DemoWarehouseKind, number> = { postgres: 5432, mysql: 3306 };

/**
 * Lower-case letters, digits and underscores: a name both engines read the same way unquoted
 * (PostgreSQL folds case, MySQL's database names follow the file system's case rules).
 */
const NAME = /^[a-z_][a-z0-9_]*$/;

/** Databases the demo never replaces: the servers' own. */
const SYSTEM_DATABASES = new Set(['postgres', 'template0', 'template1', 'mysql', 'sys', 'information_schema', 'performance_schema']);

export function parseWarehouseUrl(text: string): WarehouseUrl {
  const usage = 'expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE or mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WarehouseUrlError(`--warehouse is not a URL: ${usage}`);
  }
  const scheme = url.protocol.replace(/:$/, '');
  const kind: DemoWarehouseKind | undefined =
    scheme === 'postgres' || scheme === 'postgresql' ? 'postgres' : scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : undefined;
  if (!kind) throw new WarehouseUrlError(`--warehouse must be a postgres:// or mysql:// URL, not ${scheme}://: ${usage}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new WarehouseUrlError(`--warehouse names no host: ${usage}`);
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[kind];
  let user: string;
  let password: string | undefined;
  try {
    user = decodeURIComponent(url.username);
    password = url.password ? decodeURIComponent(url.password) : undefined;
  } catch {
    throw new WarehouseUrlError('--warehouse: the user or password is not valid percent-encoding');
  }
  if (!user) throw new WarehouseUrlError(`--warehouse names no admin account: ${usage}`);
  const database = url.pathname.replace(/^\//, '');
  if (!database) throw new WarehouseUrlError(`--warehouse names no database (the demo's, created or replaced): ${usage}`);
  if (!NAME.test(database)) {
    throw new WarehouseUrlError(`--warehouse database "${database}" must be lower-case letters, digits and underscores, starting with a letter or underscore`);
  }
  if (SYSTEM_DATABASES.has(database)) throw new WarehouseUrlError(`--warehouse database "${database}" is the server's own: name a database for the demo`);
  if (url.search || url.hash) throw new WarehouseUrlError('--warehouse takes no query parameters or fragment');
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const redacted = `${kind}://${encodeURIComponent(user)}${password === undefined ? '' : ':***'}@${hostPart}:${port}/${database}`;
  return { kind, host, port, user, password, database, redacted };
}

/** The generated rules' directory name under .gatehouse: one per server, admin and database (never the password). */
export function generatedRulesName(w: WarehouseUrl): string {
  const id = createHash('sha256')
    .update(JSON.stringify([w.kind, w.host, w.port, w.user, w.database]))
    .digest('hex')
    .slice(0, 12);
  return `rules-${id}`;
}

/** What the demo makes for one embedded connection of the rules. */
export interface DemoDatabase {
  org: string;
  connection: string;
  database: string;
  /** Queriers and connection admins sign in as this account. */
  querierAccount: string;
  /** query_topics sessions sign in as this account. */
  topicsAccount: string;
}

/**
 * Longest names: PostgreSQL cuts identifiers at 63 bytes, MySQL 8 user names at 32 characters
 * (MariaDB allows more; the shorter limit keeps one rule for both).
 */
const LIMITS: Record<DemoWarehouseKind, { database: number; account: number }> = {
  postgres: { database: 63, account: 63 },
  mysql: { database: 64, account: 32 },
};

/**
 * One database per embedded connection: the first organization (in name order) in the URL's
 * database, every other in `<database>_<org>`; a connection other than the org's only embedded
 * one gets `_<connection>` as well. Each database has its own two accounts,
 * `<that database>_querier` and `<that database>_topics`, so no account of one org is
 * granted anything in another org's database.
 */
export function demoDatabases(w: WarehouseUrl, connections: { org: string; connection: string }[]): DemoDatabase[] {
  const orgs = [...new Set(connections.map((c) => c.org))].sort();
  const out: DemoDatabase[] = [];
  for (const c of connections) {
    const perOrg = connections.filter((o) => o.org === c.org).length;
    const suffix = [orgs[0] === c.org ? '' : `_${c.org}`, perOrg > 1 ? `_${c.connection}` : '']
      .join('')
      .toLowerCase()
      .replace(/[^a-z0-9_]/g, '_');
    const database = `${w.database}${suffix}`;
    const d: DemoDatabase = { org: c.org, connection: c.connection, database, querierAccount: `${database}_querier`, topicsAccount: `${database}_topics` };
    const limit = LIMITS[w.kind];
    if (database.length > limit.database || d.querierAccount.length > limit.account) {
      throw new WarehouseUrlError(
        `--warehouse database "${w.database}" is too long: org ${c.org}'s account would be "${d.querierAccount}" (${w.kind === 'mysql' ? 'MySQL user names take at most 32 characters' : 'PostgreSQL names take at most 63 bytes'}); name a shorter database`,
      );
    }
    out.push(d);
  }
  const names = out.map((d) => d.database);
  const clash = names.find((n, i) => names.indexOf(n) !== i);
  if (clash) throw new WarehouseUrlError(`two demo connections would share database "${clash}": rename an org or connection`);
  return out;
}
