// The secret unknown names' mock SCRAM salts are derived from. PostgreSQL keeps its mock
// authentication nonce for the life of the cluster; so must Gatehouse, across restarts and
// across instances behind one address: a salt that changed with the process told an outside
// review which names were unknown (a known user's salt never changes). Kept in the state
// directory (0600, made once), or given by GATEHOUSE_MOCK_AUTH_KEY (64 hex digits) so every
// instance of a deployment answers alike.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateDir } from '../audit/private-files.ts';

const FILE = 'mock-auth.key';

export function mockAuthSecret(stateDir: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const given = env.GATEHOUSE_MOCK_AUTH_KEY;
  if (given !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(given.trim())) throw new Error('GATEHOUSE_MOCK_AUTH_KEY must be 64 hex digits (32 bytes), the same on every instance');
    return Buffer.from(given.trim(), 'hex');
  }
  privateDir(stateDir);
  const path = join(stateDir, FILE);
  try {
    writeFileSync(path, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error(`${path} is not 64 hex digits: remove it to make a new one`);
  return Buffer.from(text, 'hex');
}
