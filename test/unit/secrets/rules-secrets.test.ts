// Secrets in rules/: a connection file holds ciphertexts only, loaded as sealed values bound
// to their org, connection and field (never decrypted by the loader); rotate-keys rewrites
// the ciphertexts and nothing else of the file.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RulesError, loadRules } from '../../../src/config/load.ts';
import { openSecret, parseCiphertext, sealSecret } from '../../../src/secrets/envelope.ts';
import { memoryKeyProvider } from '../../../src/secrets/keys.ts';
import { rotateRules } from '../../../src/secrets/rotate.ts';

const DEMO = resolve(import.meta.dirname, '../../../rules');
const k1 = memoryKeyProvider('test keys', [['k1', randomBytes(32)]]);
const k12 = memoryKeyProvider('test keys', [
  ['k1', k1.key('k1')!],
  ['k2', randomBytes(32)],
]);
const PW = 'reader-Secret-9d2f';
const TOPICS_PW = 'topics-Secret-41ac';

function rulesWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-rules-secrets-'));
  cpSync(DEMO, dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

const pgConnection = (extra: string) => `kind: postgres
host: 127.0.0.1
database: analytics
user: gatehouse_reader
topics_user: gatehouse_topics
${extra}permissions:
  default: no_access
`;

function problemsOf(dir: string) {
  try {
    loadRules(dir);
  } catch (e) {
    if (e instanceof RulesError) return e.problems;
    throw e;
  }
  throw new Error('rules loaded but should have been refused');
}

describe('connection files with stored secrets', () => {
  it('password and topics_password load as sealed values bound to org, connection and field', () => {
    const pw = sealSecret(PW, { org: 'acme', connection: 'vault', field: 'password' }, k1);
    const tpw = sealSecret(TOPICS_PW, { org: 'acme', connection: 'vault', field: 'topics_password' }, k1);
    const dir = rulesWith({ 'acme/connections/vault.yaml': pgConnection(`password: ${pw}\ntopics_password: "${tpw}"\n`) });
    const conn = loadRules(dir).orgs.get('acme')!.connections.get('vault')!;
    if (conn.target.kind !== 'postgres') throw new Error('not postgres');
    expect(conn.target.password).toEqual({ ciphertext: pw, binding: { org: 'acme', connection: 'vault', field: 'password' } });
    expect(conn.target.topics_password?.binding.field).toBe('topics_password');
    // The model holds no plaintext: nothing in it spells the secrets.
    expect(JSON.stringify(conn)).not.toContain(PW);
    expect(openSecret(conn.target.password!, k1)).toBe(PW);
    expect(openSecret(conn.target.topics_password!, k1)).toBe(TOPICS_PW);
  });

  it('a value that is not a ciphertext is refused at load, saying to run gatehouse encrypt, without repeating it', () => {
    const dir = rulesWith({ 'acme/connections/vault.yaml': pgConnection(`password: ${PW}\ntopics_password: gh1:k1:short\n`) });
    const problems = problemsOf(dir);
    expect(problems.map((p) => [p.file, p.path])).toEqual([
      ['acme/connections/vault.yaml', 'password'],
      ['acme/connections/vault.yaml', 'topics_password'],
    ]);
    for (const p of problems) {
      expect(p.reason).toMatch(/must be a ciphertext .*gatehouse encrypt --org ORG --connection NAME --field (topics_)?password/);
      expect(p.reason).not.toContain(PW);
    }
  });

  it('password and password_env together are refused; password_env alone still works', () => {
    const pw = sealSecret(PW, { org: 'acme', connection: 'vault', field: 'password' }, k1);
    expect(problemsOf(rulesWith({ 'acme/connections/vault.yaml': pgConnection(`password: ${pw}\npassword_env: X\n`) }))).toEqual([
      { file: 'acme/connections/vault.yaml', path: 'password', reason: 'set password or password_env, not both' },
    ]);
    const conn = loadRules(rulesWith({ 'acme/connections/vault.yaml': pgConnection('password_env: X\n') }))
      .orgs.get('acme')!
      .connections.get('vault')!;
    expect(conn.target).toMatchObject({ password_env: 'X' });
  });

  it('gatehouse.yaml secrets.key_file is read into the model', () => {
    const dir = rulesWith({ 'gatehouse.yaml': 'secrets:\n  key_file: /etc/gatehouse/master.key\n' });
    expect(loadRules(dir).secrets).toEqual({ key_file: '/etc/gatehouse/master.key' });
    expect(loadRules(DEMO).secrets).toEqual({});
  });
});

describe('rotateRules', () => {
  const binding = (connection: string, field: string) => ({ org: 'acme', connection, field });

  it('re-encrypts older ciphertexts to the current key, changing only their characters; reports each', () => {
    const a = sealSecret(PW, binding('vault', 'password'), k1);
    const b = sealSecret(TOPICS_PW, binding('vault', 'topics_password'), k1);
    const c = sealSecret(PW, binding('other', 'password'), k12); // already on k2
    const vault = `# The analytics warehouse (comment kept)
kind: postgres
host: 127.0.0.1      # aligned comment
database: analytics
user: gatehouse_reader
password: ${a}   # rotated
topics_user: gatehouse_topics
topics_password: '${b}'
permissions: { default: no_access }
`;
    const dir = rulesWith({
      'acme/connections/vault.yaml': vault,
      'acme/connections/other.yaml': pgConnection(`password: "${c}"\n`).replace('topics_user: gatehouse_topics\n', ''),
    });
    const mode = statSync(join(dir, 'acme/connections/vault.yaml')).mode & 0o777;
    const report = rotateRules(dir, k12);
    expect(report.failures).toEqual([]);
    expect(report.rotated).toEqual([
      { file: 'acme/connections/vault.yaml', field: 'password', from: 'k1' },
      { file: 'acme/connections/vault.yaml', field: 'topics_password', from: 'k1' },
    ]);
    expect(report.unchanged).toEqual([{ file: 'acme/connections/other.yaml', field: 'password', from: 'k2' }]);
    expect(report.written).toEqual(['acme/connections/vault.yaml']);
    const after = readFileSync(join(dir, 'acme/connections/vault.yaml'), 'utf8');
    const [, na] = /password: (gh1:\S+) {3}# rotated/.exec(after)!;
    const [, nb] = /topics_password: '(gh1:\S+)'/.exec(after)!;
    // Byte for byte the same file but for the two ciphertexts.
    expect(after).toBe(vault.replace(a, na).replace(b, nb));
    expect(parseCiphertext(na).keyId).toBe('k2');
    expect(openSecret({ ciphertext: na, binding: binding('vault', 'password') }, k12)).toBe(PW);
    expect(openSecret({ ciphertext: nb, binding: binding('vault', 'topics_password') }, k12)).toBe(TOPICS_PW);
    expect(statSync(join(dir, 'acme/connections/vault.yaml')).mode & 0o777).toBe(mode);
    // The rotated tree loads, and a second run has nothing to do.
    loadRules(dir);
    expect(rotateRules(dir, k12).rotated).toEqual([]);
  });

  it('writes nothing when any ciphertext does not decrypt, and names each failure', () => {
    const good = sealSecret(PW, binding('vault', 'password'), k1);
    const moved = sealSecret(PW, binding('elsewhere', 'password'), k1);
    const dir = rulesWith({
      'acme/connections/vault.yaml': pgConnection(`password: ${good}\n`),
      'acme/connections/moved.yaml': pgConnection(`password: ${moved}\n`),
    });
    const before = readFileSync(join(dir, 'acme/connections/vault.yaml'), 'utf8');
    const report = rotateRules(dir, k12);
    expect(report.failures).toEqual([{ file: 'acme/connections/moved.yaml', field: 'password', reason: expect.stringMatching(/does not decrypt/) }]);
    expect(report.written).toEqual([]);
    expect(readFileSync(join(dir, 'acme/connections/vault.yaml'), 'utf8')).toBe(before);
    expect(JSON.stringify(report)).not.toContain(PW);
  });
});
