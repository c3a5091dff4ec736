// `gatehouse serve --demo --warehouse URL` (DESIGN 4): the demo's data in a real PostgreSQL or
// MySQL/MariaDB instead of the embedded warehouse. Every embedded connection of the rules gets
// a database there (load-postgres.ts, load-mysql.ts) with two new least-privilege accounts,
// and the rules are copied to .gatehouse/rules-<id>/ with that connection's file replaced by
// a postgres or mysql connection to its database: the accounts' passwords sealed for the
// connection as `gatehouse encrypt` would (src/secrets), never written in clear, and the URL's
// admin account nowhere in them. Gatehouse then serves those rules like any others.
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadRules } from '../config/load.ts';
import { sealSecret } from '../secrets/envelope.ts';
import type { KeyProvider } from '../secrets/keys.ts';
import { loadMysql } from './load-mysql.ts';
import { loadPostgres } from './load-postgres.ts';
import type { DemoLoad, DemoPasswords } from './types.ts';
import { type DemoDatabase, type WarehouseUrl, WarehouseUrlError, demoDatabases, generatedRulesName, parseWarehouseUrl } from './warehouse-url.ts';

export interface DemoWarehouseOptions {
  /** The --warehouse value as typed. */
  url: string;
  /** The rules to serve (rules/): their embedded connections are the ones moved. */
  rulesDir: string;
  /** .gatehouse: the generated rules go under it. */
  stateDir: string;
  /** The master keys the server will open the stored passwords with. */
  keys: KeyProvider;
  logger?: Logger;
}

export interface DemoWarehouse {
  url: WarehouseUrl;
  /** The generated rules directory, to serve. */
  rulesDir: string;
  databases: DemoDatabase[];
}

export { WarehouseUrlError };

export async function loadDemoWarehouse(opts: DemoWarehouseOptions): Promise<DemoWarehouse> {
  const url = parseWarehouseUrl(opts.url);
  const source = path.resolve(opts.rulesDir);
  const rules = loadRules(source);
  const connections: { org: string; connection: string; orgDir: string; load: Omit<DemoLoad, keyof DemoDatabase> }[] = [];
  for (const org of [...rules.orgs.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const conn of org.connections.values()) {
      if (conn.target.kind !== 'embedded') continue;
      connections.push({
        org: org.name,
        connection: conn.name,
        orgDir: org.dir,
        load: {
          seed: conn.target.seed.map((f) => path.resolve(org.dir, f)),
          topics: [...org.topics.values()].filter((t) => t.connection === conn.name),
          allowWrites: conn.allow_writes,
        },
      });
    }
  }
  if (connections.length === 0) throw new WarehouseUrlError(`--warehouse: the rules in ${source} have no embedded connection whose data could be loaded`);
  const databases = demoDatabases(url, connections);
  const loads: DemoLoad[] = databases.map((d, i) => ({ ...d, ...connections[i].load }));

  opts.logger?.info({ warehouse: url.redacted, databases: databases.map((d) => d.database) }, 'loading the demo into the warehouse');
  const passwords: Map<string, DemoPasswords> =
    url.kind === 'postgres' ? await loadPostgres(url, loads, opts.logger) : await loadMysql(url, loads, opts.stateDir, opts.logger);

  // The generated rules: made afresh at every start, private like the rest of .gatehouse.
  const out = path.join(opts.stateDir, generatedRulesName(url));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  cpSync(source, out, { recursive: true });
  chmodSync(out, 0o700);
  for (const [i, d] of databases.entries()) {
    const c = connections[i];
    const orgOut = path.join(out, path.relative(source, c.orgDir));
    const file = ['yaml', 'yml'].map((ext) => path.join(orgOut, 'connections', `${d.connection}.${ext}`)).find(existsSync)!;
    const pw = passwords.get(d.database)!;
    writeFileSync(file, connectionFile(url, d, readFileSync(file, 'utf8'), pw, opts.keys), { mode: 0o600 });
  }
  // Written as the server will read them: a mistake here stops the start now, naming the file.
  loadRules(out);
  return { url, rulesDir: out, databases };
}

/**
 * The connection file: the original's settings (permissions, allow_writes, timeouts, pooling)
 * with its kind, seed and address replaced by the warehouse's, and the new accounts with their
 * passwords sealed for this org, connection and field.
 */
export function connectionFile(url: WarehouseUrl, d: DemoDatabase, original: string, pw: DemoPasswords, keys: KeyProvider): string {
  const { kind: _kind, seed: _seed, ...settings } = (parseYaml(original) ?? {}) as Record<string, unknown>;
  const seal = (secret: string, field: string) => sealSecret(secret, { org: d.org, connection: d.connection, field }, keys);
  const doc = {
    kind: url.kind,
    host: url.host,
    port: url.port,
    database: d.database,
    user: d.querierAccount,
    password: seal(pw.querier, 'password'),
    topics_user: d.topicsAccount,
    topics_password: seal(pw.topics, 'topics_password'),
    ...settings,
  };
  return `# Generated by gatehouse serve --demo --warehouse ${url.redacted}; made afresh at every such start.
# Org ${d.org}'s data lives in database ${d.database}; the passwords are sealed with master key "${keys.currentId}".
${stringifyYaml(doc)}`;
}
