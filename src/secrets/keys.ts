// Master keys: where they come from and which one is current. Never from rules/ (rules are
// policy, shared and versioned; a key there would sit beside the ciphertexts it opens).
//
// A provider holds several keys at once, by id, so keys rotate without downtime: add the new
// key last (it becomes current: new ciphertexts use it), restart, `gatehouse rotate-keys`,
// then drop the old one. A KMS or Vault provider implements the same interface: it fetches
// or unwraps its keys when it is made and serves them from memory.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';

export const KEY_BYTES = 32;
/** A key id: what a ciphertext names its key by (letters, digits, _ and -). */
export const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface KeyProvider {
  /** Where the keys come from, for messages: 'GATEHOUSE_MASTER_KEYS', 'key file /etc/...'. Never a key. */
  readonly source: string;
  /** The id of the key new ciphertexts are made with. */
  readonly currentId: string;
  /** The 32-byte key with this id; undefined when the provider has none by that id. */
  key(id: string): Buffer | undefined;
  /** Every active key id, oldest first. */
  ids(): string[];
}

/** A key list is refused with this: it names the source and the entry, never a key. */
export class KeyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyConfigError';
  }
}

/** A provider over keys already in memory (environment, key file, tests). The last one is current. */
export function memoryKeyProvider(source: string, keys: [id: string, key: Buffer][]): KeyProvider {
  if (keys.length === 0) throw new KeyConfigError(`${source} holds no key`);
  const byId = new Map<string, Buffer>();
  for (const [id, key] of keys) {
    if (byId.has(id)) throw new KeyConfigError(`${source} lists key id "${id}" twice`);
    byId.set(id, key);
  }
  const currentId = keys[keys.length - 1][0];
  return { source, currentId, key: (id) => byId.get(id), ids: () => [...byId.keys()] };
}

/** The id of a key given without one: derived from the key (a fingerprint cannot give the key back). */
export function keyIdOf(key: Buffer): string {
  return `k${createHash('sha256').update('gatehouse key id\0').update(key).digest('hex').slice(0, 12)}`;
}

function decodeKey(b64: string, source: string, where: string): Buffer {
  const text = b64.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(text) ? Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64') : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) {
    throw new KeyConfigError(`${source}: ${where} is not ${KEY_BYTES} bytes of base64 (make one with: openssl rand -base64 32)`);
  }
  return key;
}

/**
 * Parses a key list: entries `id:base64` separated by commas or new lines (# starts a comment
 * line), or one bare base64 key whose id is derived from it. Oldest first, the last is current.
 */
export function parseKeyList(text: string, source: string): [string, Buffer][] {
  const entries = text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (entries.length === 0) throw new KeyConfigError(`${source} holds no key`);
  return entries.map((entry, i) => {
    const where = `entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) {
      const key = decodeKey(entry, source, where);
      return [keyIdOf(key), key];
    }
    const id = entry.slice(0, colon);
    if (!KEY_ID.test(id)) throw new KeyConfigError(`${source}: ${where} has a key id that is not letters, digits, _ or - (at most 64)`);
    return [id, decodeKey(entry.slice(colon + 1), source, `key "${id}"`)];
  });
}

/** The environment's keys: GATEHOUSE_MASTER_KEYS (a list) or GATEHOUSE_MASTER_KEY (one); undefined when neither is set. */
export function envKeyProvider(env: NodeJS.ProcessEnv): KeyProvider | undefined {
  const list = env.GATEHOUSE_MASTER_KEYS?.trim();
  const one = env.GATEHOUSE_MASTER_KEY?.trim();
  if (list && one) throw new KeyConfigError('both GATEHOUSE_MASTER_KEYS and GATEHOUSE_MASTER_KEY are set: keep one (GATEHOUSE_MASTER_KEYS for several keys)');
  if (list) return memoryKeyProvider('GATEHOUSE_MASTER_KEYS', parseKeyList(list, 'GATEHOUSE_MASTER_KEYS'));
  if (one) {
    const keys = parseKeyList(one, 'GATEHOUSE_MASTER_KEY');
    if (keys.length !== 1) throw new KeyConfigError('GATEHOUSE_MASTER_KEY holds one key; use GATEHOUSE_MASTER_KEYS for several');
    return memoryKeyProvider('GATEHOUSE_MASTER_KEY', keys);
  }
  return undefined;
}

/**
 * The keys of a key file (the same list format). Refused when the file can be read or written
 * by anyone but its owner: a key others can read is not a secret.
 */
export function keyFileProvider(path: string): KeyProvider {
  const source = `key file ${path}`;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new KeyConfigError(`cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    // Checked on the open descriptor, so the file read is the file checked.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new KeyConfigError(`${source} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new KeyConfigError(`${source} is readable or writable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
    }
    return memoryKeyProvider(source, parseKeyList(readFileSync(fd, 'utf8'), source));
  } finally {
    closeSync(fd);
  }
}

/** A new key file with one random key (0600; fails if the file exists). Returns its key id. */
export function createKeyFile(path: string, id = 'demo1'): string {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(
      fd,
      `# Gatehouse master key (generated). Keep this file private (0600); never put it in rules/.\n${id}:${randomBytes(KEY_BYTES).toString('base64')}\n`,
    );
  } finally {
    closeSync(fd);
  }
  return id;
}
