// The password file libpq reads (PostgreSQL docs, "The Password File"): PGPASSFILE, else
// ~/.pgpass (%APPDATA%\postgresql\pgpass.conf on Windows); lines host:port:database:user:password
// with \ escaping : and \; libpq ignores the file unless it is 0600 (or stricter). gatehouse
// login owns exactly one line per sign-in, host:port:*:email, and replaces only that one:
// every other line (other servers, other users, comments) stays as it was, in its place.
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PgpassEntry {
  host: string;
  port: number;
  user: string;
  password: string;
}

export function pgpassPath(env: NodeJS.ProcessEnv, home: string, platform: NodeJS.Platform = process.platform): string {
  if (env.PGPASSFILE) return env.PGPASSFILE;
  if (platform === 'win32') return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'postgresql', 'pgpass.conf');
  return join(home, '.pgpass');
}

const escapeField = (field: string) => field.replace(/[\\:]/g, (c) => `\\${c}`);

/** The first four fields of a line, unescaped (the password is never looked at); undefined for a comment or a short line. */
function keyOf(line: string): string[] | undefined {
  if (line.startsWith('#')) return undefined;
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < line.length && fields.length < 4; i++) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length) field += line[++i];
    else if (c === ':') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  return fields.length === 4 ? fields : undefined;
}

/** The file's text with this entry's line replaced in place (or appended); nothing else changes. */
export function withEntry(existing: string, entry: PgpassEntry): string {
  const line = [entry.host, String(entry.port), '*', entry.user, entry.password].map(escapeField).join(':');
  const own = (l: string) => {
    const k = keyOf(l);
    return k !== undefined && k[0] === entry.host && k[1] === String(entry.port) && k[2] === '*' && k[3] === entry.user;
  };
  const lines = existing === '' ? [] : existing.replace(/\n$/, '').split('\n');
  const at = lines.findIndex(own);
  const out = at === -1 ? [...lines, line] : lines.flatMap((l, i) => (i === at ? [line] : own(l) ? [] : [l]));
  return `${out.join('\n')}\n`;
}

/**
 * Writes the entry: a new file of mode 0600 beside the old one, then a rename, so libpq never
 * reads half a file and the token is never readable by others, not even for a moment.
 */
export function writePgpassEntry(path: string, entry: PgpassEntry): string {
  const target = existsSync(path) ? realpathSync(path) : path;
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const existing = existsSync(target) ? readFileSync(target, 'utf8') : '';
  writePrivateFile(target, withEntry(existing, entry));
  return target;
}

/** A file only its owner can read (0600), replaced atomically. */
export function writePrivateFile(path: string, text: string): void {
  const temp = `${path}.gatehouse-${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, 0o600); // whatever the umask did
  renameSync(temp, path);
}
