// Stored credentials end to end: a postgres connection whose warehouse accounts have known
// secret passwords, stored encrypted in a temp rules dir, served through Gatehouse against a
// cluster that checks passwords (SCRAM). Connections whose ciphertext was altered, moved from
// another connection, or made with a key Gatehouse does not hold are refused alone (08001
// naming them) while the good one serves; a wrong password upstream is 08001 too. Then the
// secret search: everything Gatehouse wrote (log, audit file, every error a client received,
// /metrics and /healthz, and its own object graph) holds no password, no master key, no ciphertext.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { parseCiphertext, sealSecret } from '../../src/secrets/envelope.ts';
import { memoryKeyProvider } from '../../src/secrets/keys.ts';
import { DEMO_PASSWORD, DEMO_RULES, psql } from '../helpers/gatehouse.ts';
import { type ScramCluster, startScramCluster } from '../helpers/scram-cluster.ts';
import { topicsAccountSql } from '../helpers/servers.ts';

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const DB = `ghsec_${suffix}`;
const READER = `ghsec_reader_${suffix}`;
const TOPICS = `ghsec_topics_${suffix}`;
// The secrets the search looks for: the accounts' real passwords and a wrong one.
const READER_PW = `Rd-${randomBytes(12).toString('base64url')}`;
const TOPICS_PW = `Tp-${randomBytes(12).toString('base64url')}`;
const WRONG_PW = `Wr-${randomBytes(12).toString('base64url')}`;
const OLD_KEY = randomBytes(32);
const CUR_KEY = randomBytes(32);
const GONE_KEY = randomBytes(32);
const keys = memoryKeyProvider('test', [
  ['old', OLD_KEY],
  ['cur', CUR_KEY],
]);
const env = { GATEHOUSE_MASTER_KEYS: `old:${OLD_KEY.toString('base64')},cur:${CUR_KEY.toString('base64')}` };

let cluster: ScramCluster | undefined;
let rulesDir = '';
let stateDir = '';
let gh: RunningGatehouse | undefined;
let other: RunningGatehouse | undefined;
const logs: string[] = [];
/** Everything a client was sent in an error: message, detail, hint, SQLSTATE, psql's stderr. */
const clientSaw: string[] = [];
const ciphertexts: string[] = [];

const bind = (connection: string, field: string) => ({ org: 'acme', connection, field });

function connectionYaml(name: string, fields: Record<string, string>, topics = false): string {
  return `# ${name}: stored credentials (test)
kind: postgres
host: 127.0.0.1
port: ${cluster!.port}
database: ${DB}
user: ${READER}
${Object.entries(fields)
  .map(([k, v]) => `${k}: ${v}`)
  .join('\n')}
${topics ? `topics_user: ${TOPICS}\n` : ''}permissions:
  default: no_access
  groups:
${topics ? '    sales-emea: query_topics\n    sales-leads: query_topics\n' : ''}    analysts: querier
`;
}

/** One statement through Gatehouse with the pg driver; an error's every client-visible part is kept for the search. */
async function attempt(user: string, database: string, sql: string, password = DEMO_PASSWORD) {
  const c = new pg.Client({ host: '127.0.0.1', port: gh!.port, user, password, database });
  try {
    await c.connect();
    const r = await c.query(sql);
    clientSaw.push(JSON.stringify(r.rows));
    return { rows: r.rows as Record<string, unknown>[] };
  } catch (e) {
    const err = e as pg.DatabaseError;
    clientSaw.push(
      JSON.stringify({ message: err.message, detail: err.detail, hint: err.hint, code: err.code, severity: err.severity, where: err.where }),
      String(err.stack),
    );
    return { code: err.code, message: err.message, severity: err.severity, hint: err.hint };
  } finally {
    await c.end().catch(() => {});
  }
}

async function psqlSaw(user: string, sql: string, database = 'warehouse') {
  const r = await psql(gh!, user, sql, { database });
  clientSaw.push(r.stdout, r.stderr);
  return r;
}

beforeAll(async () => {
  cluster = await startScramCluster();
  cluster.psql('postgres', `CREATE DATABASE ${DB}`);
  cluster.psql(DB, readFileSync(resolve(DEMO_RULES, 'acme/data/acme.sql'), 'utf8'));
  // password_encryption is scram-sha-256 (PostgreSQL 14+): the cluster keeps SCRAM verifiers.
  cluster.psql(
    DB,
    `CREATE ROLE ${READER} LOGIN NOSUPERUSER PASSWORD '${READER_PW}';
     CREATE ROLE ${TOPICS} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD '${TOPICS_PW}';
     GRANT CONNECT ON DATABASE ${DB} TO ${READER};
     GRANT USAGE ON SCHEMA public TO ${READER};
     GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${READER};
     ${topicsAccountSql(DB, TOPICS)}`,
  );
  expect(cluster.psql('postgres', `SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '${READER}'`).trim()).toBe('t');

  const good = sealSecret(READER_PW, bind('warehouse', 'password'), keys, 'old'); // made before the rotation began
  const topics = sealSecret(TOPICS_PW, bind('warehouse', 'topics_password'), keys); // the current key
  const forTampered = sealSecret(READER_PW, bind('tampered', 'password'), keys);
  const payload = parseCiphertext(forTampered).payload;
  payload[payload.length >> 1] ^= 0x04;
  const tampered = `gh1:cur:${payload.toString('base64url')}`;
  const unknownKey = sealSecret(READER_PW, bind('unknownkey', 'password'), memoryKeyProvider('gone', [['gone', GONE_KEY]]));
  const wrong = sealSecret(WRONG_PW, bind('wrongpw', 'password'), keys);
  ciphertexts.push(good, topics, forTampered, tampered, unknownKey, wrong);

  rulesDir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-rules-'));
  cpSync(DEMO_RULES, rulesDir, { recursive: true });
  rmSync(join(rulesDir, 'globex'), { recursive: true, force: true });
  const conn = (name: string, text: string) => writeFileSync(join(rulesDir, `acme/connections/${name}.yaml`), text);
  conn('warehouse', connectionYaml('warehouse', { password: good, topics_password: topics }, true));
  conn('tampered', connectionYaml('tampered', { password: tampered }));
  conn('moved', connectionYaml('moved', { password: good })); // warehouse's ciphertext, copied
  conn('unknownkey', connectionYaml('unknownkey', { password: unknownKey }));
  conn('wrongpw', connectionYaml('wrongpw', { password: wrong }));

  stateDir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-state-'));
  // Everything, debug included: the search covers every line Gatehouse would log.
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, logger, auditPath: join(stateDir, 'audit.jsonl'), stateDir, env });
}, 120_000);

afterAll(async () => {
  await gh?.close();
  await other?.close();
  cluster?.stop();
  for (const d of [rulesDir, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('a postgres connection with encrypted passwords', () => {
  it('starts; the connections whose ciphertext does not open are refused at start, each named with its reason', () => {
    const refused = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'connection refused at start: its stored credentials do not decrypt');
    expect(Object.fromEntries(refused.map((l) => [l.connection, l.detail]))).toEqual({
      tampered: expect.stringMatching(/password of connection "tampered" of org acme does not decrypt with master key "cur"/),
      moved: expect.stringMatching(/password of connection "moved" of org acme does not decrypt with master key "old"/),
      unknownkey: expect.stringMatching(/encrypted with master key "gone", which GATEHOUSE_MASTER_KEYS does not hold \(active: old, cur\)/),
    });
    for (const l of refused) expect(l).toMatchObject({ org: 'acme', sqlstate: '08001', level: 50 });
    expect(logs.join('')).toMatch(/"msg":"master keys loaded"/);
  });

  it('sessions work through Gatehouse: the querier account (old key) and the topics account (current key)', async () => {
    const carol = await psqlSaw('carol@acme.example', 'SELECT count(*) FROM employees');
    expect(carol.stderr).toBe('');
    expect(carol.stdout.trim()).toBe('50');
    const bob = await psqlSaw('bob@acme.example', 'SELECT count(*) FROM orders');
    expect(bob.stderr).toBe('');
    expect(bob.stdout.trim()).toBe('1667');
    // Upstream, they really are the two accounts, signed in with their passwords.
    expect((await attempt('carol@acme.example', 'warehouse', 'SELECT current_user AS u')).rows).toEqual([{ u: READER }]);
  });

  it('a session on a refused connection gets FATAL 08001 naming it; the good connection keeps serving', async () => {
    for (const name of ['tampered', 'moved', 'unknownkey']) {
      const r = await attempt('carol@acme.example', name, 'SELECT 1');
      expect(r).toMatchObject({
        code: '08001',
        severity: 'FATAL',
        message: `connection "${name}" of org acme is refused: its stored password cannot be decrypted`,
        hint: expect.stringMatching(/Gatehouse log/),
      });
    }
    expect((await attempt('carol@acme.example', 'warehouse', 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a wrong password upstream is 08001 naming the connection, with the server reason', async () => {
    const r = await psqlSaw('carol@acme.example', 'SELECT 1', 'wrongpw');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL: {2}could not connect to warehouse of connection "wrongpw"/);
    expect(r.stderr).toMatch(/password authentication failed/);
    expect(logs.join('')).toMatch(/warehouse unreachable at start/);
  });

  it('failing statements of every kind, and a wrong Gatehouse password', async () => {
    const cases: [string, string, string][] = [
      ['carol@acme.example', 'SELECT * FROM no_such_table', '42P01'],
      ['carol@acme.example', 'SELECT rolname, rolpassword FROM pg_authid', '42501'],
      ['carol@acme.example', 'SELECT usename, passwd FROM pg_shadow', '42501'],
      ['carol@acme.example', 'INSERT INTO employees (id) VALUES (1)', '42501'],
      ['carol@acme.example', 'SELEC 1', '42601'],
      ['bob@acme.example', 'SELECT * FROM employees', '42501'],
      ['bob@acme.example', "SELECT current_setting('password_encryption')", '42501'],
    ];
    for (const [user, sql, code] of cases) expect([sql, (await attempt(user, 'warehouse', sql)).code]).toEqual([sql, code]);
    const explain = await psqlSaw('bob@acme.example', 'EXPLAIN SELECT * FROM orders WHERE id = 42');
    expect(explain.stdout).toMatch(/OFFSET 0/);
    expect((await attempt('carol@acme.example', 'warehouse', 'SELECT 1', 'not-the-password')).code).toBe('28P01');
  });

  it('the secret search: no password, master key or ciphertext in the log, the audit, client errors, /metrics, /healthz, or held in memory', async () => {
    const admin = `http://127.0.0.1:${gh!.adminPort}`;
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    const health = await (await fetch(`${admin}/healthz`)).text();
    expect(metrics).toMatch(/gatehouse_/);
    // /healthz names the connections refused for their credentials, so an operator sees them without the log.
    expect(JSON.parse(health).refused_connections).toEqual(
      expect.arrayContaining([
        { org: 'acme', connection: 'tampered' },
        { org: 'acme', connection: 'moved' },
        { org: 'acme', connection: 'unknownkey' },
      ]),
    );
    expect(JSON.parse(health).refused_connections).toHaveLength(3);
    // The object graph after sessions ran (pools hold upstream connections): the plaintexts were dropped after each sign-in.
    const heldInMemory = inspect(gh!.gateway, { depth: 12, maxArrayLength: 1000, maxStringLength: Infinity, breakLength: Infinity });
    await gh!.close();
    gh = undefined;
    const audit = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8');

    const places: Record<string, string> = {
      log: logs.join(''),
      audit,
      'client errors': clientSaw.join('\n'),
      '/metrics': metrics,
      '/healthz': health,
      'gateway object graph': heldInMemory,
    };
    // The search found something to search: every place is non-empty and holds what was done.
    expect(places.log).toMatch(/"connection":"tampered"/);
    expect(places.audit).toMatch(/pg_authid/);
    expect(places.audit).toMatch(/"refused":true/);
    expect(places['client errors']).toMatch(/wrongpw/);
    // Deep enough to reach the pooled upstream connections and their targets: the account name is there, its password must not be.
    expect(heldInMemory).toMatch(/UpstreamConnection \{/);
    expect(heldInMemory).toContain(READER);

    const secrets: Record<string, string> = {
      'reader password': READER_PW,
      'topics password': TOPICS_PW,
      'wrong password': WRONG_PW,
    };
    for (const [name, key] of [
      ['old', OLD_KEY],
      ['cur', CUR_KEY],
      ['gone', GONE_KEY],
    ] as const) {
      secrets[`master key ${name} (base64)`] = key.toString('base64');
      secrets[`master key ${name} (base64url)`] = key.toString('base64url');
      secrets[`master key ${name} (hex)`] = key.toString('hex');
    }
    ciphertexts.forEach((ct, i) => (secrets[`ciphertext ${i}`] = ct.split(':')[2]));
    const found: string[] = [];
    for (const [place, text] of Object.entries(places)) {
      for (const [name, secret] of Object.entries(secrets)) {
        if (name.startsWith('ciphertext') && place === 'gateway object graph') continue; // the loaded rules hold ciphertexts by design
        if (text.includes(secret)) found.push(`${name} in ${place}`);
      }
    }
    expect(found).toEqual([]);
  });
});

describe('master keys that cannot be loaded', () => {
  it('refuse every connection with stored passwords, naming the setting; a connection with password_env keeps serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-badkey-'));
    const keyFile = join(dir, 'master.key');
    writeFileSync(keyFile, `cur:${CUR_KEY.toString('base64')}\n`, { mode: 0o644 });
    const rules = join(dir, 'rules');
    cpSync(rulesDir, rules, { recursive: true });
    for (const name of ['tampered', 'moved', 'unknownkey', 'wrongpw']) rmSync(join(rules, `acme/connections/${name}.yaml`));
    writeFileSync(join(rules, 'acme/connections/byenv.yaml'), connectionYaml('byenv', { password_env: 'GATEHOUSE_SECRETS_TEST_PW' }));
    process.env.GATEHOUSE_SECRETS_TEST_PW = READER_PW;
    const lines: string[] = [];
    try {
      other = await serve({
        rulesDir: rules,
        host: '127.0.0.1',
        port: 0,
        adminPort: 0,
        logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }),
        stateDir: dir,
        env: { GATEHOUSE_KEY_FILE: keyFile },
      });
      const log = lines.join('');
      expect(log).toMatch(/"msg":"master keys not loaded: connections with stored credentials are refused"/);
      expect(log).toMatch(/readable or writable by group or others \(mode 644\)/);
      const r = await new Promise<{ code?: string; message: string }>((done) => {
        const c = new pg.Client({ host: '127.0.0.1', port: other!.port, user: 'carol@acme.example', password: DEMO_PASSWORD, database: 'warehouse' });
        c.connect().then(
          () => c.end().then(() => done({ message: 'connected' })),
          (e) => done(e),
        );
      });
      expect(r).toMatchObject({ code: '08001', message: 'connection "warehouse" of org acme is refused: its stored password cannot be decrypted' });
      const byEnv = await psql(other, 'carol@acme.example', 'SELECT count(*) FROM employees', { database: 'byenv' });
      expect(byEnv.stderr).toBe('');
      expect(byEnv.stdout.trim()).toBe('50');
      expect(log + lines.join('')).not.toContain(READER_PW);
      expect(lines.join('')).not.toContain(CUR_KEY.toString('base64'));
    } finally {
      await other?.close();
      other = undefined;
      delete process.env.GATEHOUSE_SECRETS_TEST_PW;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
