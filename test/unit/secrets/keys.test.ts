// Where master keys come from: the environment, a key file (owner-only), the demo's generated
// file; never the rules directory. Errors name the source, never a key.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyConfigError, envKeyProvider, keyFileProvider, keyIdOf, parseKeyList } from '../../../src/secrets/keys.ts';
import { resolveKeys } from '../../../src/secrets/resolve.ts';

const b64 = () => randomBytes(32).toString('base64');

describe('key lists', () => {
  it('id:base64 entries, by comma or line; the last is current; a bare key gets an id derived from it', () => {
    const [a, b] = [b64(), b64()];
    const keys = envKeyProvider({ GATEHOUSE_MASTER_KEYS: `old:${a}, new:${b}` })!;
    expect(keys.ids()).toEqual(['old', 'new']);
    expect(keys.currentId).toBe('new');
    expect(keys.key('old')!.toString('base64')).toBe(a);
    const single = envKeyProvider({ GATEHOUSE_MASTER_KEY: a })!;
    expect(single.currentId).toBe(keyIdOf(Buffer.from(a, 'base64')));
    expect(single.currentId).toMatch(/^k[0-9a-f]{12}$/);
    expect(parseKeyList(`# comment\nk1:${a}\n\nk2:${b}\n`, 'file').map(([id]) => id)).toEqual(['k1', 'k2']);
    expect(envKeyProvider({})).toBeUndefined();
  });

  it('refuses a key that is not 32 bytes, a bad or repeated id, both variables, without showing the key', () => {
    const short = randomBytes(16).toString('base64');
    const cases: [Record<string, string>, RegExp][] = [
      [{ GATEHOUSE_MASTER_KEY: short }, /GATEHOUSE_MASTER_KEY: entry 1 is not 32 bytes of base64/],
      [{ GATEHOUSE_MASTER_KEYS: `k1:${short}` }, /key "k1" is not 32 bytes/],
      [{ GATEHOUSE_MASTER_KEYS: `bad id:${b64()}` }, /key id that is not letters/],
      [{ GATEHOUSE_MASTER_KEYS: `k1:${b64()},k1:${b64()}` }, /lists key id "k1" twice/],
      [{ GATEHOUSE_MASTER_KEYS: `k1:${b64()}`, GATEHOUSE_MASTER_KEY: b64() }, /both GATEHOUSE_MASTER_KEYS and GATEHOUSE_MASTER_KEY/],
      [{ GATEHOUSE_MASTER_KEYS: ' , ' }, /holds no key/],
    ];
    for (const [env, message] of cases) {
      let err: unknown;
      try {
        envKeyProvider(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KeyConfigError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain(short);
    }
  });
});

describe('key files', () => {
  it('reads an owner-only file; refuses one readable or writable by group or others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
    const file = join(dir, 'master.key');
    const key = b64();
    writeFileSync(file, `k7:${key}\n`, { mode: 0o600 });
    expect(keyFileProvider(file).currentId).toBe('k7');
    for (const mode of [0o640, 0o604, 0o620, 0o602]) {
      chmodSync(file, mode);
      expect(() => keyFileProvider(file)).toThrow(new RegExp(`readable or writable by group or others \\(mode ${mode.toString(8)}\\): chmod 600`));
    }
    expect(() => keyFileProvider(join(dir, 'none.key'))).toThrow(/cannot read key file .*ENOENT/);
  });
});

describe('resolveKeys', () => {
  function layout() {
    const root = mkdtempSync(join(tmpdir(), 'gh-resolve-'));
    const rules = join(root, 'rules');
    mkdirSync(rules);
    const key = join(root, 'master.key');
    writeFileSync(key, `file1:${b64()}\n`, { mode: 0o600 });
    return { root, rules, key };
  }

  it('order: environment keys, GATEHOUSE_KEY_FILE, secrets.key_file (relative to rules/), the demo file', () => {
    const { root, rules, key } = layout();
    const envKeys = resolveKeys({ env: { GATEHOUSE_MASTER_KEYS: `e1:${b64()}`, GATEHOUSE_KEY_FILE: key }, rulesDir: rules });
    expect('provider' in envKeys && envKeys.provider.source).toBe('GATEHOUSE_MASTER_KEYS');
    const envFile = resolveKeys({ env: { GATEHOUSE_KEY_FILE: key }, rulesDir: rules, configuredKeyFile: 'elsewhere.key' });
    expect('provider' in envFile && envFile.provider.currentId).toBe('file1');
    const configured = resolveKeys({ env: {}, rulesDir: rules, configuredKeyFile: '../master.key' });
    expect('provider' in configured && configured.provider.source).toBe(`key file ${key}`);
    expect(resolveKeys({ env: {}, rulesDir: rules })).toEqual({ none: expect.stringMatching(/no master key is configured/) });
    const demo = join(root, 'state', 'master.key');
    expect(resolveKeys({ env: {}, rulesDir: rules, fallbackKeyFile: { path: demo, create: false } })).toHaveProperty('none');
  });

  it('the demo key file: made 0600 in a 0700 directory on first use, the same key afterwards', () => {
    const { root, rules } = layout();
    const demo = join(root, '.gatehouse', 'master.key');
    const first = resolveKeys({ env: {}, rulesDir: rules, fallbackKeyFile: { path: demo, create: true } });
    expect(statSync(demo).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, '.gatehouse')).mode & 0o777).toBe(0o700);
    const text = readFileSync(demo, 'utf8');
    const again = resolveKeys({ env: {}, rulesDir: rules, fallbackKeyFile: { path: demo, create: true } });
    expect(readFileSync(demo, 'utf8')).toBe(text);
    if (!('provider' in first) || !('provider' in again)) throw new Error('no provider');
    expect(again.provider.key(again.provider.currentId)).toEqual(first.provider.key(first.provider.currentId));
  });

  it('a key file inside the rules directory is refused, however it is named', () => {
    const { rules } = layout();
    const inside = join(rules, 'master.key');
    writeFileSync(inside, `k1:${b64()}\n`, { mode: 0o600 });
    expect(resolveKeys({ env: {}, rulesDir: rules, configuredKeyFile: 'master.key' })).toEqual({
      problem: expect.stringMatching(/is inside the rules directory/),
    });
    expect(resolveKeys({ env: { GATEHOUSE_KEY_FILE: inside }, rulesDir: rules })).toEqual({
      problem: expect.stringMatching(/GATEHOUSE_KEY_FILE .* inside the rules directory/),
    });
    expect(resolveKeys({ env: {}, rulesDir: rules, configuredKeyFile: '../rules/./master.key' })).toHaveProperty('problem');
  });
});
