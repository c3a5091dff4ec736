// Which master keys this Gatehouse uses, first found wins: the environment
// (GATEHOUSE_MASTER_KEYS, GATEHOUSE_MASTER_KEY), GATEHOUSE_KEY_FILE, rules/gatehouse.yaml
// `secrets.key_file`, then (the demo, and the CLI beside it) .gatehouse/master.key.
// A key file inside the rules directory is refused: keys never live with the rules.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { privateDir } from '../audit/private-files.ts';
import { type KeyProvider, KeyConfigError, createKeyFile, envKeyProvider, keyFileProvider } from './keys.ts';

export interface KeySettings {
  env: NodeJS.ProcessEnv;
  rulesDir: string;
  /** rules/gatehouse.yaml `secrets.key_file` as written: absolute, or relative to the rules directory. */
  configuredKeyFile?: string;
  /**
   * Used when nothing above is configured: the demo's .gatehouse/master.key. `create`: made
   * (one random key, 0600, in a 0700 directory) when absent, as the demo's first start does.
   */
  fallbackKeyFile?: { path: string; create: boolean };
}

/** The keys, or why there are none: a problem (a bad key list or file) or nothing configured. */
export type KeyResolution = { provider: KeyProvider } | { problem: string } | { none: string };

export const NO_KEY_CONFIGURED =
  'no master key is configured (set GATEHOUSE_MASTER_KEY, GATEHOUSE_MASTER_KEYS or GATEHOUSE_KEY_FILE, or secrets.key_file in rules/gatehouse.yaml)';

/** Whether path (a file that exists) lies inside dir, symlinks resolved. */
function inside(path: string, dir: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  const rel = relative(real(dir), real(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function fromFile(path: string, rulesDir: string, named: string): KeyProvider {
  if (inside(path, rulesDir)) throw new KeyConfigError(`${named} (${path}) is inside the rules directory: keep master keys out of rules/`);
  return keyFileProvider(path);
}

export function resolveKeys(s: KeySettings): KeyResolution {
  try {
    const env = envKeyProvider(s.env);
    if (env) return { provider: env };
    const envFile = s.env.GATEHOUSE_KEY_FILE?.trim();
    if (envFile) return { provider: fromFile(resolve(envFile), s.rulesDir, 'GATEHOUSE_KEY_FILE') };
    if (s.configuredKeyFile) {
      const path = isAbsolute(s.configuredKeyFile) ? s.configuredKeyFile : resolve(s.rulesDir, s.configuredKeyFile);
      return { provider: fromFile(path, s.rulesDir, 'secrets.key_file of gatehouse.yaml') };
    }
    const fallback = s.fallbackKeyFile;
    if (fallback && (existsSync(fallback.path) || fallback.create)) {
      if (!existsSync(fallback.path)) {
        privateDir(dirname(fallback.path));
        try {
          createKeyFile(fallback.path);
        } catch (e) {
          // A second demo starting at the same moment made it first: use that one.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
      return { provider: fromFile(fallback.path, s.rulesDir, 'the demo key file') };
    }
    return { none: NO_KEY_CONFIGURED };
  } catch (e) {
    if (e instanceof KeyConfigError) return { problem: e.message };
    throw e;
  }
}
