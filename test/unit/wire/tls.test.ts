// The TLS configuration checks, the tls-server-end-point hash per signature algorithm (certificates
// made with openssl), the demo's self-signed certificate, and server.tls in rules/gatehouse.yaml.
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { RulesError, loadRules } from '../../../src/config/load.ts';
import { demoCertificatePaths, ensureDemoCertificate } from '../../../src/wire/demo-certificate.ts';
import { loadWireTls, signatureAlgorithmOid, TlsConfigError, type TlsSettings, tlsServerEndPoint, upgradeToTls } from '../../../src/wire/tls.ts';
import { DEMO_RULES } from '../../helpers/gatehouse.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-unit-'));

/** A self-signed certificate and key made by openssl: `<name>.pem`, `<name>.key` (0600). */
async function selfSigned(name: string, keyArgs: string[], digest?: string): Promise<{ cert: string; key: string; der: Buffer }> {
  await run(
    'openssl',
    [
      'req',
      '-x509',
      ...keyArgs,
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      ...(digest ? [`-${digest}`] : []),
    ],
    { cwd: dir },
  );
  chmodSync(join(dir, `${name}.key`), 0o600);
  const pem = readFileSync(join(dir, `${name}.pem`));
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), der: new X509Certificate(pem).raw };
}

let rsa: Awaited<ReturnType<typeof selfSigned>>;
let ec384: Awaited<ReturnType<typeof selfSigned>>;
let ed25519: Awaited<ReturnType<typeof selfSigned>>;
beforeAll(async () => {
  [rsa, ec384, ed25519] = await Promise.all([
    selfSigned('rsa', ['-newkey', 'rsa:2048'], 'sha256'),
    selfSigned('ec384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'sha384'),
    selfSigned('ed25519', ['-newkey', 'ed25519']),
  ]);
}, 60_000);

describe('tls-server-end-point (RFC 5929 4.1)', () => {
  it('hashes the certificate with its signature hash', () => {
    expect(signatureAlgorithmOid(rsa.der)).toBe('1.2.840.113549.1.1.11');
    expect(tlsServerEndPoint(rsa.der)).toEqual(createHash('sha256').update(rsa.der).digest());
    expect(signatureAlgorithmOid(ec384.der)).toBe('1.2.840.10045.4.3.3');
    expect(tlsServerEndPoint(ec384.der)).toEqual(createHash('sha384').update(ec384.der).digest());
  });

  it('is undefined (no -PLUS offered) where the algorithm names no hash, and for garbage', () => {
    expect(signatureAlgorithmOid(ed25519.der)).toBe('1.3.101.112');
    expect(tlsServerEndPoint(ed25519.der)).toBeUndefined();
    expect(tlsServerEndPoint(Buffer.from('not a certificate'))).toBeUndefined();
    expect(tlsServerEndPoint(rsa.der.subarray(0, 40))).toBeUndefined();
    expect(tlsServerEndPoint(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('loadWireTls', () => {
  it('loads a certificate and its key', () => {
    const t = loadWireTls({ cert_file: rsa.cert, key_file: rsa.key, mode: 'required' });
    expect(t.mode).toBe('required');
    expect(t.tlsServerEndPoint).toHaveLength(32);
  });

  it('refuses a key readable by others, naming the file and the fix', () => {
    const key = join(dir, 'open.key');
    writeFileSync(key, readFileSync(rsa.key));
    chmodSync(key, 0o644);
    expect(() => loadWireTls({ cert_file: rsa.cert, key_file: key, mode: 'optional' })).toThrow(TlsConfigError);
    expect(() => loadWireTls({ cert_file: rsa.cert, key_file: key, mode: 'optional' })).toThrow(`chmod 600 ${key}`);
    // 0640 (a group such as ssl-cert) is allowed, as PostgreSQL allows it.
    chmodSync(key, 0o640);
    expect(() => loadWireTls({ cert_file: rsa.cert, key_file: key, mode: 'optional' })).not.toThrow();
  });

  it('refuses a key that does not match the certificate, and a missing file', () => {
    expect(() => loadWireTls({ cert_file: rsa.cert, key_file: ec384.key, mode: 'optional' })).toThrow(/is not the key of the certificate/);
    expect(() => loadWireTls({ cert_file: join(dir, 'absent.pem'), key_file: rsa.key, mode: 'optional' })).toThrow(
      /server\.tls\.cert_file: cannot read .*absent\.pem: ENOENT/,
    );
  });
});

describe('ca_file: the issuer certificates sent with the certificate', () => {
  /** Upgrades every accepted socket (direct TLS) with the settings; a client trusting only `root` connects to 127.0.0.1. */
  async function handshake(settings: TlsSettings, root: Buffer): Promise<string> {
    const wire = loadWireTls(settings);
    const server = net.createServer((sock) => {
      sock.once('data', (hello: Buffer) => {
        const t = upgradeToTls(sock, wire, hello);
        t.on('error', () => {});
        t.once('secure', () => t.end());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as net.AddressInfo).port;
      return await new Promise<string>((resolve) => {
        const c = tls.connect({ port, host: '127.0.0.1', ca: root, ALPNProtocols: ['postgresql'] });
        c.once('secureConnect', () => {
          c.destroy();
          resolve('verified');
        });
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
    } finally {
      server.close();
    }
  }

  it('lets a client that trusts only the root verify a certificate signed by an intermediate', async () => {
    const sh = (...args: string[]) => run('openssl', args, { cwd: dir });
    await sh(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'root.key',
      '-out',
      'root.pem',
      '-days',
      '1',
      '-subj',
      '/CN=root',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    );
    await sh('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'inter.key', '-out', 'inter.csr', '-subj', '/CN=intermediate');
    writeFileSync(join(dir, 'inter.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n');
    await sh(
      'x509',
      '-req',
      '-in',
      'inter.csr',
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-CAcreateserial',
      '-out',
      'inter.pem',
      '-days',
      '1',
      '-extfile',
      'inter.ext',
    );
    await sh('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\n');
    await sh(
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'inter.pem',
      '-CAkey',
      'inter.key',
      '-CAcreateserial',
      '-out',
      'leaf.pem',
      '-days',
      '1',
      '-extfile',
      'leaf.ext',
    );
    chmodSync(join(dir, 'leaf.key'), 0o600);
    const root = readFileSync(join(dir, 'root.pem'));
    const leaf = { cert_file: join(dir, 'leaf.pem'), key_file: join(dir, 'leaf.key'), mode: 'optional' as const };
    expect(await handshake(leaf, root)).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(await handshake({ ...leaf, ca_file: join(dir, 'inter.pem') }, root)).toBe('verified');
  });
});

describe("the demo's self-signed certificate", () => {
  it('is made on first start for localhost and 127.0.0.1, the key 0600 in a 0700 directory, and kept after', async () => {
    const state = mkdtempSync(join(tmpdir(), 'gatehouse-demo-state-'));
    const first = await ensureDemoCertificate(state);
    expect(first.created).toBe(true);
    expect(first).toMatchObject(demoCertificatePaths(state));
    expect(statSync(first.key_file).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'tls')).mode & 0o777).toBe(0o700);
    const cert = new X509Certificate(readFileSync(first.cert_file));
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('example.com')).toBeUndefined();
    expect(cert.verify(cert.publicKey)).toBe(true); // self-signed
    // Usable as Gatehouse's certificate, with channel binding (ECDSA with SHA-256).
    expect(loadWireTls(first).tlsServerEndPoint).toEqual(createHash('sha256').update(cert.raw).digest());

    const before = readFileSync(first.cert_file);
    chmodSync(first.key_file, 0o644); // an older run or a umask left it wider
    const again = await ensureDemoCertificate(state);
    expect(again.created).toBe(false);
    expect(readFileSync(again.cert_file)).toEqual(before);
    expect(statSync(again.key_file).mode & 0o777).toBe(0o600);

    writeFileSync(first.cert_file, 'garbage');
    expect((await ensureDemoCertificate(state)).created).toBe(true);
  });
});

describe('server.tls in rules/gatehouse.yaml', () => {
  function rulesWith(tlsYaml: string): string {
    const rules = mkdtempSync(join(tmpdir(), 'gatehouse-rules-'));
    cpSync(DEMO_RULES, rules, { recursive: true });
    writeFileSync(join(rules, 'gatehouse.yaml'), `server:\n  host: 127.0.0.1\n${tlsYaml}`);
    return rules;
  }

  it('resolves relative paths against the rules directory; mode defaults to optional', () => {
    const rules = rulesWith('  tls:\n    cert_file: tls/server.pem\n    key_file: /etc/gatehouse/server.key\n');
    expect(loadRules(rules).server.tls).toEqual({ cert_file: join(rules, 'tls/server.pem'), key_file: '/etc/gatehouse/server.key', mode: 'optional' });
    expect(loadRules(DEMO_RULES).server.tls).toBeUndefined();
  });

  it('refuses an unknown mode or key, with the path', () => {
    expect(() => loadRules(rulesWith('  tls:\n    cert_file: a.pem\n    key_file: a.key\n    mode: prefer\n'))).toThrow(/server\.tls\.mode/);
    expect(() => loadRules(rulesWith('  tls:\n    cert_file: a.pem\n    key_file: a.key\n    sslmode: require\n'))).toThrow(RulesError);
    expect(() => loadRules(rulesWith('  tls:\n    cert_file: a.pem\n'))).toThrow(/server\.tls\.key_file/);
  });
});
