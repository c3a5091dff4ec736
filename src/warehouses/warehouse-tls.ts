// TLS to a warehouse, the part every connector shares: the modes a connection file may
// name (libpq's sslmode names, without the ones that fall back to plaintext) and what
// counts as loopback, where the default is no TLS (off loopback it is verify-full).
import net from 'node:net';

/** disable: plaintext; require: TLS, certificate not checked; verify-ca: chain checked; verify-full: chain and host name. */
export type WarehouseTlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1';
}
