// A test PKI made with openssl (a CA, a server certificate it signed for localhost and
// 127.0.0.1, and an unrelated CA that signed nothing here) and rules that serve it.
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEMO_RULES } from './gatehouse.ts';

const run = promisify(execFile);

export interface TestPki {
  dir: string;
  caCert: string;
  /** A CA that signed nothing Gatehouse serves: verify-ca with it must fail. */
  otherCaCert: string;
  serverCert: string;
  serverKey: string;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 30_000 });
  } catch (e) {
    throw new Error(`these tests need openssl to make their certificates: openssl ${args.join(' ')} failed: ${(e as Error).message}`);
  }
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

/** Makes the PKI in a fresh temp dir (RSA-2048 leaf signed SHA-256 by an ECDSA CA, as a mixed real-world chain would be). */
export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pki-'));
  await makeCa(dir, 'test-ca');
  await makeCa(dir, 'other-ca');
  await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'test-ca.pem',
    '-CAkey',
    'test-ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    'server.ext',
  );
  chmodSync(join(dir, 'server.key'), 0o600);
  return {
    dir,
    caCert: join(dir, 'test-ca.pem'),
    otherCaCert: join(dir, 'other-ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
  };
}

/**
 * The demo rules with `server.tls` serving the PKI's certificate. The certificate and key are
 * copied into the rules directory and named relative to it (as docs/rules.md shows).
 */
export function tlsRulesDir(pki: TestPki, mode: 'optional' | 'required'): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rules-tls-'));
  cpSync(DEMO_RULES, dir, { recursive: true });
  mkdirSync(join(dir, 'tls'), { mode: 0o700 });
  writeFileSync(join(dir, 'tls/server.pem'), readFileSync(pki.serverCert));
  writeFileSync(join(dir, 'tls/server.key'), readFileSync(pki.serverKey), { mode: 0o600 });
  chmodSync(join(dir, 'tls/server.key'), 0o600);
  const yaml = readFileSync(join(dir, 'gatehouse.yaml'), 'utf8');
  writeFileSync(join(dir, 'gatehouse.yaml'), `${yaml.trimEnd()}\n  tls:\n    cert_file: tls/server.pem\n    key_file: tls/server.key\n    mode: ${mode}\n`);
  return dir;
}
