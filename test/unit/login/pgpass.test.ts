// The password file as libpq reads it: gatehouse login's own line replaced in place and no
// other touched, fields escaped as libpq unescapes them, the file 0600 whatever the umask,
// and the target forms of `gatehouse login`.
import { mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRedirect } from '../../../src/login/browser-flow.ts';
import { LoginError } from '../../../src/login/errors.ts';
import { resolveTarget } from '../../../src/login/login.ts';
import { pgpassPath, withEntry, writePgpassEntry } from '../../../src/login/pgpass.ts';
import { LoginStore, configDir } from '../../../src/login/store.ts';

const entry = { host: 'gh.example.com', port: 6432, user: 'ivan@acme.example', password: 'eyJ.token.sig' };

describe('withEntry', () => {
  it('appends to an empty file, and replaces only host:port:*:user in place', () => {
    expect(withEntry('', entry)).toBe('gh.example.com:6432:*:ivan@acme.example:eyJ.token.sig\n');
    const before = [
      '# comment gh.example.com:6432:*:ivan@acme.example:x',
      'gh.example.com:6432:*:ivan@acme.example:old',
      'gh.example.com:6432:warehouse:ivan@acme.example:a-db-specific-line',
      'gh.example.com:5432:*:ivan@acme.example:another-port',
      'other.example.com:6432:*:ivan@acme.example:another-host',
      'gh.example.com:6432:*:zoe@acme.example:another-user',
      'no trailing newline',
    ].join('\n');
    const after = withEntry(before, entry).split('\n');
    expect(after).toEqual([
      '# comment gh.example.com:6432:*:ivan@acme.example:x',
      'gh.example.com:6432:*:ivan@acme.example:eyJ.token.sig',
      ...before.split('\n').slice(2),
      '',
    ]);
  });

  it('escapes : and \\ as libpq unescapes them, and recognises its own escaped line again', () => {
    const odd = { host: 'fe80::1', port: 6432, user: 'a\\b@x', password: 'p:w\\d' };
    const once = withEntry('', odd);
    expect(once).toBe('fe80\\:\\:1:6432:*:a\\\\b@x:p\\:w\\\\d\n');
    expect(withEntry(once, { ...odd, password: 'new' })).toBe('fe80\\:\\:1:6432:*:a\\\\b@x:new\n');
  });

  it('duplicates of its own line collapse into one', () => {
    const dup = 'gh.example.com:6432:*:ivan@acme.example:a\nkeep\ngh.example.com:6432:*:ivan@acme.example:b\n';
    expect(withEntry(dup, entry)).toBe('gh.example.com:6432:*:ivan@acme.example:eyJ.token.sig\nkeep\n');
  });
});

describe('writePgpassEntry', () => {
  it('writes 0600 even over a file that was readable by others, through a symlink to its target, creating the directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-pgpass-'));
    const real = join(dir, 'real-pgpass');
    writeFileSync(real, 'other:1:*:u:p\n', { mode: 0o644 });
    const link = join(dir, '.pgpass');
    symlinkSync(real, link);
    expect(writePgpassEntry(link, entry)).toBe(real);
    expect(statSync(real).mode & 0o777).toBe(0o600);
    expect(readFileSync(link, 'utf8')).toBe(`other:1:*:u:p\n${withEntry('', entry)}`);
    const nested = join(dir, 'a', 'b', 'pgpass');
    writePgpassEntry(nested, entry);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
  });

  it('PGPASSFILE, else ~/.pgpass (%APPDATA%\\postgresql\\pgpass.conf on Windows); the config dir likewise', () => {
    expect(pgpassPath({ PGPASSFILE: '/x/pg' }, '/home/i', 'linux')).toBe('/x/pg');
    expect(pgpassPath({}, '/home/i', 'linux')).toBe('/home/i/.pgpass');
    expect(pgpassPath({ APPDATA: 'C:/Users/i/AppData/Roaming' }, 'C:/Users/i', 'win32')).toBe(join('C:/Users/i/AppData/Roaming', 'postgresql', 'pgpass.conf'));
    expect(configDir({}, '/home/i', 'linux')).toBe('/home/i/.config/gatehouse');
    expect(configDir({ XDG_CONFIG_HOME: '/cfg' }, '/home/i', 'linux')).toBe('/cfg/gatehouse');
    expect(configDir({ GATEHOUSE_CONFIG_DIR: '/g' }, '/home/i', 'linux')).toBe('/g');
  });
});

describe('gatehouse login TARGET', () => {
  const store = new LoginStore(mkdtempSync(join(tmpdir(), 'gh-store-')));
  it('a URL with the org as its path, an org with --server or GATEHOUSE_SERVER; https only but for loopback', () => {
    expect(resolveTarget({ target: 'https://gh.example.com:8443/acme' }, {}, store)).toEqual({ server: 'https://gh.example.com:8443', org: 'acme' });
    expect(resolveTarget({ target: 'https://gh.example.com' }, {}, store)).toEqual({ server: 'https://gh.example.com', org: undefined });
    expect(resolveTarget({ target: 'acme', server: 'https://gh.example.com/' }, {}, store)).toEqual({ server: 'https://gh.example.com', org: 'acme' });
    expect(resolveTarget({ target: 'acme' }, { GATEHOUSE_SERVER: 'http://127.0.0.1:6480' }, store)).toEqual({ server: 'http://127.0.0.1:6480', org: 'acme' });
    expect(() => resolveTarget({ target: 'http://gh.example.com/acme' }, {}, store)).toThrow(LoginError);
    expect(() => resolveTarget({ target: 'https://gh.example.com/acme/extra' }, {}, store)).toThrow('expected https://HOST[:PORT][/ORG]');
    expect(() => resolveTarget({ target: 'acme' }, {}, store)).toThrow('which Gatehouse?');
  });
});

describe('the loopback redirect', () => {
  it('the state is checked before anything else; an error or a code follows', () => {
    const q = (o: Record<string, string>) => new URLSearchParams(o);
    expect(readRedirect(q({ code: 'c', state: 's' }), 's')).toEqual({ code: 'c' });
    expect(readRedirect(q({ code: 'c', state: 'other' }), 's')).toMatchObject({ error: { message: expect.stringContaining('state mismatch') } });
    expect(readRedirect(q({ error: 'access_denied', state: 'other' }), 's')).toMatchObject({ error: { message: expect.stringContaining('state mismatch') } });
    expect(readRedirect(q({ error: 'access_denied', error_description: 'no', state: 's' }), 's')).toMatchObject({
      error: { message: 'the sign-in was denied at the identity provider (access_denied: no)' },
    });
    expect(readRedirect(q({ error: 'invalid_request', state: 's' }), 's')).toMatchObject({
      error: { message: 'the identity provider refused the sign-in (invalid_request)' },
    });
    expect(readRedirect(q({ state: 's' }), 's')).toMatchObject({ error: { message: 'the browser came back without a sign-in code' } });
  });
});
