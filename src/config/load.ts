// Loads rules/ into the model: every file parsed as YAML, validated by its schema,
// then checked across files (groups, connections, topic fields). Any problem
// refuses the whole tree with file, path and reason: the last good rules keep serving.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import type { SealedSecret } from '../secrets/envelope.ts';
import type { Connection, Org, PolicyTest, Rules, Topic, User } from './model.ts';
import { connectionFileSchema, orgFileSchema, policyTestFileSchema, serverFileSchema, topicFileSchema } from './schema.ts';
import { isUnboundCiphertext } from './secret-fields.ts';

export interface RulesProblem {
  file: string;
  path: string;
  reason: string;
}

export class RulesError extends Error {
  constructor(readonly problems: RulesProblem[]) {
    super(`invalid rules:\n${problems.map((p) => `  ${p.file}${p.path ? ` at ${p.path}` : ''}: ${p.reason}`).join('\n')}`);
    this.name = 'RulesError';
  }
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));
}

export function loadRules(dir: string): Rules {
  const problems: RulesProblem[] = [];
  const hash = createHash('sha256');
  const rel = (file: string) => relative(dir, file) || file;

  function read<S extends z.ZodTypeAny>(file: string, schema: S): z.output<S> | undefined {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ file: rel(file), path: '', reason: `cannot read: ${(e as Error).message}` });
      return undefined;
    }
    hash.update(rel(file)).update('\0').update(text).update('\0');
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      problems.push({ file: rel(file), path: '', reason: `not valid YAML: ${(e as Error).message.split('\n')[0]}` });
      return undefined;
    }
    const result = schema.safeParse(doc ?? {});
    if (!result.success) {
      for (const issue of result.error.issues) {
        problems.push({ file: rel(file), path: issue.path.join('.'), reason: issue.message });
      }
      return undefined;
    }
    return result.data;
  }

  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new RulesError([{ file: dir, path: '', reason: 'rules directory does not exist' }]);
  }
  const serverFile = join(dir, 'gatehouse.yaml');
  const { server, secrets } = (existsSync(serverFile) ? read(serverFile, serverFileSchema) : undefined) ?? serverFileSchema.parse({});
  if (server.tls) {
    const at = (p: string) => resolve(dir, p);
    server.tls = {
      ...server.tls,
      cert_file: at(server.tls.cert_file),
      key_file: at(server.tls.key_file),
      ...(server.tls.ca_file ? { ca_file: at(server.tls.ca_file) } : {}),
    };
  }

  const orgs = new Map<string, Org>();
  const users = new Map<string, User>();
  for (const entry of readdirSync(dir).sort()) {
    const orgDir = join(dir, entry);
    const orgFile = join(orgDir, 'org.yaml');
    if (!statSync(orgDir).isDirectory() || !existsSync(orgFile)) continue;
    const orgDoc = read(orgFile, orgFileSchema);
    if (!orgDoc) continue;
    const org: Org = {
      name: orgDoc.name,
      dir: orgDir,
      limits: orgDoc.limits,
      ...(orgDoc.identity_provider ? { identity_provider: orgDoc.identity_provider } : {}),
      groups: orgDoc.groups,
      users: new Map(),
      connections: new Map(),
      topics: new Map(),
      tests: [],
    };
    if (orgs.has(org.name)) problems.push({ file: rel(orgFile), path: 'name', reason: `organization ${org.name} is defined twice` });
    orgDoc.users.forEach((u, i) => {
      const email = u.email.toLowerCase();
      for (const g of u.groups) {
        if (!org.groups.includes(g)) problems.push({ file: rel(orgFile), path: `users.${i}.groups`, reason: `unknown group ${g}` });
      }
      if (users.has(email)) {
        problems.push({ file: rel(orgFile), path: `users.${i}.email`, reason: `user ${email} already exists (in org ${users.get(email)!.org})` });
        return;
      }
      const attributes = Object.fromEntries(Object.entries(u.attributes).map(([k, v]) => [k, (Array.isArray(v) ? v : [v]).map(String)]));
      const user: User = { email, org: org.name, role: u.role, groups: u.groups, attributes, scram: u.scram };
      org.users.set(email, user);
      users.set(email, user);
    });

    const connectionFiles = new Map<string, string>();
    for (const file of yamlFiles(join(orgDir, 'connections'))) {
      const c = read(file, connectionFileSchema);
      if (!c) continue;
      const name = basename(file).replace(/\.ya?ml$/, '');
      connectionFiles.set(name, file);
      for (const g of Object.keys(c.permissions.groups)) {
        if (!org.groups.includes(g)) problems.push({ file: rel(file), path: `permissions.groups.${g}`, reason: `unknown group ${g}` });
      }
      for (const u of Object.keys(c.permissions.users)) {
        if (!org.users.has(u.toLowerCase())) problems.push({ file: rel(file), path: `permissions.users.${u}`, reason: `unknown user ${u}` });
      }
      const { allow_writes, topics_schema, permissions, statement_timeout, pooling, pool_size, pool_idle_timeout, pool_wait_timeout, ...target } = c;
      // The warehouse's CA file, like server.tls's files, relative to the rules directory.
      if ((target.kind === 'postgres' || target.kind === 'mysql') && target.tls?.ca_file)
        target.tls = { ...target.tls, ca_file: resolve(dir, target.tls.ca_file) };
      const connection: Connection = {
        name,
        org: org.name,
        target: target.kind === 'embedded' ? { kind: 'embedded', seed: target.seed } : bindSecrets(target, org.name, name),
        allow_writes,
        ...(statement_timeout === undefined ? {} : { statement_timeout }),
        topics_schema,
        pool: { mode: pooling, size: pool_size, idleTimeoutMs: pool_idle_timeout, waitTimeoutMs: pool_wait_timeout },
        permissions: {
          default: permissions.default,
          groups: permissions.groups,
          users: Object.fromEntries(Object.entries(permissions.users).map(([k, v]) => [k.toLowerCase(), v])),
        },
      };
      if (connection.target.kind === 'embedded') {
        for (const seed of connection.target.seed) {
          if (!existsSync(join(orgDir, seed))) problems.push({ file: rel(file), path: 'seed', reason: `seed file ${seed} does not exist` });
        }
      }
      org.connections.set(name, connection);
    }

    for (const file of yamlFiles(join(orgDir, 'topics'))) {
      const t = read(file, topicFileSchema);
      if (!t) continue;
      const name = basename(file).replace(/\.ya?ml$/, '');
      const [schema, table] = t.base.includes('.') ? t.base.split('.') : ['public', t.base];
      if (!org.connections.has(t.connection)) {
        problems.push({ file: rel(file), path: 'connection', reason: `unknown connection ${t.connection}` });
      }
      t.access_filters.forEach((f, i) => {
        if (!t.fields.includes(f.field)) {
          problems.push({ file: rel(file), path: `access_filters.${i}.field`, reason: `${f.field} is not one of the topic's fields` });
        }
      });
      const topic: Topic = { name, org: org.name, connection: t.connection, base: { schema, table }, fields: t.fields, access_filters: t.access_filters };
      org.topics.set(name, topic);
    }

    for (const [name, connection] of org.connections) {
      const problem = topicsAccountProblem(
        connection,
        [...org.topics.values()].filter((t) => t.connection === name).map((t) => t.name),
      );
      if (problem) problems.push({ file: rel(connectionFiles.get(name)!), path: 'topics_user', reason: problem });
    }

    for (const file of yamlFiles(join(orgDir, 'tests'))) {
      const cases = read(file, policyTestFileSchema);
      if (!cases) continue;
      cases.forEach((c, i) => {
        if (!org.users.has(c.user.toLowerCase())) problems.push({ file: rel(file), path: `${i}.user`, reason: `unknown user ${c.user}` });
        const test: PolicyTest = { file: rel(file), ...c, user: c.user.toLowerCase() };
        org.tests.push(test);
      });
    }
    orgs.set(org.name, org);
  }

  // A token's issuer names its org: two orgs trusting one issuer would make that ambiguous.
  const issuers = new Map<string, string>();
  for (const org of orgs.values()) {
    const issuer = org.identity_provider?.issuer;
    if (!issuer) continue;
    const other = issuers.get(issuer);
    if (other)
      problems.push({
        file: rel(join(org.dir, 'org.yaml')),
        path: 'identity_provider.issuer',
        reason: `issuer ${issuer} is already the identity provider of org ${other}: each org needs its own issuer`,
      });
    else issuers.set(issuer, org.name);
  }

  if (orgs.size === 0 && problems.length === 0) {
    problems.push({ file: rel(dir), path: '', reason: 'no organization found (expected <org>/org.yaml)' });
  }
  if (problems.length) throw new RulesError(problems);
  return { version: hash.digest('hex').slice(0, 12), dir, server, secrets, orgs, users };
}

/**
 * Every ciphertext field of a connection (secret-fields.ts) becomes a SealedSecret bound to
 * this org, connection and field: the associated data it must have been encrypted with.
 * Nothing is decrypted here; the connector does that when it signs in.
 */
function bindSecrets<T extends object>(target: T, org: string, connection: string): BoundSecrets<T> {
  return Object.fromEntries(
    Object.entries(target).map(([field, v]) => [field, isUnboundCiphertext(v) ? { ciphertext: v.ciphertext, binding: { org, connection, field } } : v]),
  ) as BoundSecrets<T>;
}
type BoundSecrets<T> = { [K in keyof T]: T[K] extends { ciphertext: string } | undefined ? SealedSecret | Extract<T[K], undefined> : T[K] };

/**
 * A postgres connection whose topics someone reads at query_topics needs its own
 * warehouse account for them (least privilege per level): without one, the querier
 * account, which reads more than the topics, would serve governed sessions.
 */
function topicsAccountProblem(c: Connection, topics: string[]): string | undefined {
  if (c.target.kind === 'embedded' || c.target.topics_user) return undefined;
  const grants = [c.permissions.default, ...Object.values(c.permissions.groups), ...Object.values(c.permissions.users)];
  if (topics.length === 0 && !grants.includes('query_topics')) return undefined;
  const why = topics.length ? `connection has topics (${topics.join(', ')})` : 'connection grants query_topics';
  return `${why} but no topics account: add topics_user (and topics_password or topics_password_env), a warehouse account that can SELECT only the topics' fields, used by query_topics sessions (docs/rules.md)`;
}

/** Topics of one connection, by name (what policy sees of the org). */
export function topicsOf(org: Org, connection: string): Map<string, Topic> {
  return new Map([...org.topics].filter(([, t]) => t.connection === connection));
}
