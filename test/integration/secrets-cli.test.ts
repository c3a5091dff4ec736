// The CLI of stored credentials, as an operator runs it: `gatehouse encrypt` reads the secret
// from stdin (never argv) and prints a ciphertext the server opens; `gatehouse rotate-keys`
// moves every ciphertext of a rules directory to the newest key, keeping the files' comments
// and layout; `serve --demo` makes .gatehouse/master.key (0600) on its first start.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRules } from '../../src/config/load.ts';
import { openSecret, parseCiphertext } from '../../src/secrets/envelope.ts';
import { envKeyProvider, keyFileProvider } from '../../src/secrets/keys.ts';
import { DEMO_RULES, demoRulesWith, postgresWarehouseYaml, psql } from '../helpers/gatehouse.ts';
import { spawnGatehouse } from '../helpers/gatehouse-process.ts';
import { createAcmeWarehouse, requirePostgres } from '../helpers/servers.ts';

const BIN = resolve(import.meta.dirname, '../../bin/gatehouse.js');
const SECRET = `Cli-${randomBytes(12).toString('base64url')}`;
/** No master key from this machine's environment reaches the CLI unless a test gives one. */
const NO_KEYS = { GATEHOUSE_MASTER_KEY: '', GATEHOUSE_MASTER_KEYS: '', GATEHOUSE_KEY_FILE: '' };

function gatehouse(
  args: string[],
  opts: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: opts.cwd ?? tmpdir(), env: { ...process.env, ...NO_KEYS, ...opts.env }, timeout: 60_000 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(opts.input ?? '');
  });
}

const key = () => randomBytes(32).toString('base64');
const k1 = key();
const k2 = key();

describe('gatehouse encrypt', () => {
  const env = { GATEHOUSE_MASTER_KEYS: `k1:${k1}` };

  it('reads the secret from stdin (one final newline dropped) and prints a ciphertext bound to org, connection, field', async () => {
    const r = await gatehouse(['encrypt', '--org', 'acme', '--connection', 'warehouse', '--field', 'topics_password'], { input: `${SECRET}\n`, env });
    expect(r.code).toBe(0);
    const ct = r.stdout.trim();
    expect(ct).toMatch(/^gh1:k1:[A-Za-z0-9_-]+$/);
    expect(r.stderr).toMatch(/encrypted with master key "k1" \(GATEHOUSE_MASTER_KEYS\) for topics_password of connection "warehouse" of org acme/);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const keys = envKeyProvider(env)!;
    expect(openSecret({ ciphertext: ct, binding: { org: 'acme', connection: 'warehouse', field: 'topics_password' } }, keys)).toBe(SECRET);
    expect(() => openSecret({ ciphertext: ct, binding: { org: 'acme', connection: 'warehouse', field: 'password' } }, keys)).toThrow(/does not decrypt/);
  });

  it('refuses a secret on the command line, an unknown field, no key, an empty secret; never echoing the secret', async () => {
    const argv = await gatehouse(['encrypt', '--org', 'acme', '--connection', 'warehouse', SECRET], { env });
    expect(argv.code).toBe(2);
    expect(argv.stderr).toMatch(/reads the secret from stdin, never from the command line/);
    const field = await gatehouse(['encrypt', '--org', 'acme', '--connection', 'warehouse', '--field', 'user'], { input: SECRET, env });
    expect(field.code).toBe(2);
    expect(field.stderr).toMatch(/--field must be one of password, topics_password/);
    const none = await gatehouse(['encrypt', '--org', 'acme', '--connection', 'warehouse'], { input: SECRET });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no master key is configured/);
    const empty = await gatehouse(['encrypt', '--org', 'acme', '--connection', 'warehouse'], { input: '\n', env });
    expect(empty.code).toBe(1);
    expect(empty.stdout).toBe('');
    for (const r of [argv, field, none, empty]) expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

describe('gatehouse rotate-keys', () => {
  let dir: string;
  beforeAll(() => {
    dir = demoRulesWith('kind: embedded\npermissions: { default: no_access }\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('re-encrypts to the newest key, keeps comments and layout, reports what it changed; the rules still load', async () => {
    const enc = async (connection: string, field: string, keys: string) =>
      (
        await gatehouse(['encrypt', '--org', 'acme', '--connection', connection, '--field', field, '--rules', dir], {
          input: SECRET,
          env: { GATEHOUSE_MASTER_KEYS: keys },
        })
      ).stdout.trim();
    const pw = await enc('vault', 'password', `k1:${k1}`);
    const tpw = await enc('vault', 'topics_password', `k1:${k1}`);
    const file = join(dir, 'acme/connections/vault.yaml');
    const before = `# The vault warehouse: credentials encrypted at rest.
kind: postgres
host: 127.0.0.1
database: analytics
user: gatehouse_reader
password: ${pw}    # made with k1
topics_user: gatehouse_topics
topics_password: "${tpw}"
permissions:
  default: no_access   # nobody until granted
`;
    writeFileSync(file, before);
    const env = { GATEHOUSE_MASTER_KEYS: `k1:${k1},k2:${k2}` };
    const r = await gatehouse(['rotate-keys', dir], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rotated   acme/connections/vault.yaml password: key k1 -> k2');
    expect(r.stdout).toContain('rotated   acme/connections/vault.yaml topics_password: key k1 -> k2');
    expect(r.stdout).toMatch(/2 ciphertext\(s\) re-encrypted to key k2 in 1 file\(s\); 0 already on it/);
    const after = readFileSync(file, 'utf8');
    const npw = /^password: (\S+) {4}# made with k1$/m.exec(after)?.[1];
    const ntpw = /^topics_password: "(\S+)"$/m.exec(after)?.[1];
    expect(npw && parseCiphertext(npw).keyId).toBe('k2');
    expect(ntpw && parseCiphertext(ntpw).keyId).toBe('k2');
    expect(after).toBe(before.replace(pw, npw!).replace(tpw, ntpw!));
    // The old key can go now: the rotated files open with k2 alone, through the loader's binding.
    const conn = loadRules(dir).orgs.get('acme')!.connections.get('vault')!;
    if (conn.target.kind !== 'postgres') throw new Error('not postgres');
    const onlyK2 = envKeyProvider({ GATEHOUSE_MASTER_KEYS: `k2:${k2}` })!;
    expect(openSecret(conn.target.password!, onlyK2)).toBe(SECRET);
    expect(openSecret(conn.target.topics_password!, onlyK2)).toBe(SECRET);
    // Again: nothing left to do.
    const again = await gatehouse(['rotate-keys', dir], { env });
    expect(again.stdout).toMatch(/0 ciphertext\(s\) re-encrypted to key k2 in 0 file\(s\); 2 already on it/);
  });

  it('a ciphertext the keys do not open: nothing written, exit 1, the file and field named', async () => {
    const file = join(dir, 'acme/connections/vault.yaml');
    const before = readFileSync(file, 'utf8');
    const r = await gatehouse(['rotate-keys', dir], { env: { GATEHOUSE_MASTER_KEYS: `k3:${key()}` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAIL acme\/connections\/vault.yaml password: .*master key "k2", which GATEHOUSE_MASTER_KEYS does not hold/);
    expect(r.stderr).toMatch(/nothing written/);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

describe('serve --demo: the demo master key', () => {
  const DB = 'gatehouse_it_secrets_cli';
  let cwd: string;
  let rules: string;
  beforeAll(async () => {
    await requirePostgres();
    createAcmeWarehouse(DB, resolve(DEMO_RULES, 'acme/data/acme.sql'));
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-demo-key-'));
    rules = demoRulesWith(postgresWarehouseYaml(DB));
    rmSync(join(rules, 'globex'), { recursive: true, force: true }); // no embedded server: a quick start
  });
  afterAll(() => {
    for (const d of [cwd, rules]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('is made 0600 on the first start, kept across starts, and opens what gatehouse encrypt made beside it', async () => {
    const serveArgs = [BIN, 'serve', '--demo', '--rules', rules, '--port', '0', '--admin-port', '0'];
    const first = await spawnGatehouse(process.execPath, serveArgs, { cwd, env: NO_KEYS });
    const keyFile = join(cwd, '.gatehouse', 'master.key');
    try {
      expect(existsSync(keyFile)).toBe(true);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(first.output()).toMatch(/"key_source":"key file [^"]*\/\.gatehouse\/master\.key".*"msg":"master keys loaded"/);
    } finally {
      await first.stop();
    }
    const made = readFileSync(keyFile, 'utf8');
    const demoKeys = keyFileProvider(keyFile);
    // encrypt in the same directory uses the demo key (nothing else configured).
    const enc = await gatehouse(['encrypt', '--org', 'acme', '--connection', 'warehouse', '--rules', rules], { input: 'any-password', cwd });
    expect(enc.code).toBe(0);
    expect(enc.stderr).toContain(`key file ${keyFile}`);
    const ct = enc.stdout.trim();
    expect(openSecret({ ciphertext: ct, binding: { org: 'acme', connection: 'warehouse', field: 'password' } }, demoKeys)).toBe('any-password');
    writeFileSync(
      join(rules, 'acme/connections/warehouse.yaml'),
      postgresWarehouseYaml(DB).replace('user: gatehouse_reader\n', `user: gatehouse_reader\npassword: ${ct}\n`),
    );
    const second = await spawnGatehouse(process.execPath, serveArgs, { cwd, env: NO_KEYS });
    try {
      expect(readFileSync(keyFile, 'utf8')).toBe(made);
      expect(second.output()).not.toMatch(/connection refused at start/);
      const r = await psql(second, 'carol@acme.example', 'SELECT count(*) FROM employees');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('50');
    } finally {
      await second.stop();
    }
  });
});
