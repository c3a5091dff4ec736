// The demo's TLS certificate: self-signed for localhost and 127.0.0.1, made on the first
// `gatehouse serve --demo` under <state>/tls (the key 0600 in a 0700 directory) and kept
// while it is valid, so `psql "sslmode=require ..."` works out of the box and
// `sslmode=verify-full sslrootcert=.gatehouse/tls/demo-cert.pem` pins it. Not for
// production: nobody vouches for it (docs/security.md, "TLS").
import { X509Certificate, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateDir } from '../audit/private-files.ts';
import type { TlsSettings } from './tls.ts';

const VALID_DAYS = 365;
/** Made anew when it would expire within this many days (a demo left running keeps working). */
const RENEW_DAYS = 7;
export const DEMO_NAMES = { dns: ['localhost'], ip: ['127.0.0.1', '::1'] };

export function demoCertificatePaths(stateDir: string): { cert_file: string; key_file: string } {
  const dir = join(stateDir, 'tls');
  return { cert_file: join(dir, 'demo-cert.pem'), key_file: join(dir, 'demo-key.pem') };
}

/** The demo's certificate and key, made when absent, unreadable or near expiry. */
export async function ensureDemoCertificate(stateDir: string): Promise<TlsSettings & { created: boolean }> {
  const paths = demoCertificatePaths(stateDir);
  privateDir(join(stateDir, 'tls'));
  if (usable(paths.cert_file, paths.key_file)) {
    // An older run (or a umask) may have left the key wider: narrow it before use.
    chmodSync(paths.key_file, 0o600);
    return { ...paths, mode: 'optional', created: false };
  }
  const { certPem, keyPem } = await selfSignedCertificate(VALID_DAYS);
  const write = (file: string, text: string) => {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  };
  write(paths.key_file, keyPem);
  write(paths.cert_file, certPem);
  return { ...paths, mode: 'optional', created: true };
}

function usable(certFile: string, keyFile: string): boolean {
  if (!existsSync(certFile) || !existsSync(keyFile)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const key = readFileSync(keyFile, 'utf8');
    const renewAt = new Date(cert.validTo).getTime() - RENEW_DAYS * 86_400_000;
    return Date.now() < renewAt && cert.checkHost('localhost') !== undefined && cert.checkIP('127.0.0.1') !== undefined && key.includes('PRIVATE KEY');
  } catch {
    return false;
  }
}

/** An ECDSA P-256 key and a self-signed certificate for localhost, 127.0.0.1 and ::1, with @peculiar/x509 (Node has no X.509 writer). */
export async function selfSignedCertificate(days: number): Promise<{ certPem: string; keyPem: string }> {
  // @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata
  // polyfill: loaded here only, when a certificate is made, never on the serving path.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: 'CN=localhost, O=Gatehouse demo',
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86_400_000),
    signingAlgorithm: alg,
    keys: keys as CryptoKeyPair,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        ...DEMO_NAMES.dns.map((value) => ({ type: 'dns' as const, value })),
        ...DEMO_NAMES.ip.map((value) => ({ type: 'ip' as const, value })),
      ]),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as CryptoKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', (keys as CryptoKeyPair).privateKey as CryptoKey);
  return { certPem: `${cert.toString('pem')}\n`, keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n` };
}
