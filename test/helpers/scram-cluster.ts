// A PostgreSQL cluster of the test's own that checks passwords (the shared local server
// trusts everyone, so a wrong password would pass there). initdb refuses to run as root, so
// the cluster runs as the `postgres` OS user when the tests run as root. No silent skip: a
// cluster that cannot start fails the caller's beforeAll.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface ScramCluster {
  dir: string;
  port: number;
  /** Runs SQL as the cluster's superuser (over its Unix socket, trusted) on a database. */
  psql(database: string, sql: string): string;
  /** Stops the cluster (immediate) and removes its directory. */
  stop(): void;
}

const asPostgres = process.getuid?.() === 0;

function sh(cmd: string, args: string[], input?: string): string {
  const [c, a] = asPostgres ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(c, a, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface ClusterOptions {
  /** Serve TLS (ssl=on) with this certificate and key (PEM files, copied into the data directory). */
  ssl?: { certFile: string; keyFile: string };
  /** listen_addresses (default 127.0.0.1). */
  listen?: string;
}

/**
 * Starts a cluster on a free port of 127.0.0.1. `hba`: pg_hba.conf's host lines (the Unix
 * socket is trusted for the superuser); by default every TCP sign-in is scram-sha-256.
 */
export async function startScramCluster(hba: string[] = ['host all all 127.0.0.1/32 scram-sha-256'], opts: ClusterOptions = {}): Promise<ScramCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-scram-'));
  if (asPostgres) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), 0);
  const port = await freePort();
  const stop = () => {
    try {
      sh('pg_ctl', ['-D', `${dir}/data`, '-m', 'immediate', 'stop']);
    } catch {
      // not started, or already stopped
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    sh('initdb', ['-D', `${dir}/data`, '-U', 'postgres', '-A', 'trust', '--no-sync']);
    writeFileSync(`${dir}/data/pg_hba.conf`, ['local all all trust', ...hba, ''].join('\n'));
    let ssl = '';
    if (opts.ssl) {
      // The server reads its key only if the key is its own and 0600.
      const owner = asPostgres ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : process.getuid!();
      for (const [from, to] of [
        [opts.ssl.certFile, 'server.crt'],
        [opts.ssl.keyFile, 'server.key'],
      ]) {
        writeFileSync(`${dir}/data/${to}`, readFileSync(from), { mode: 0o600 });
        chownSync(`${dir}/data/${to}`, owner, 0);
      }
      ssl = ' -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key';
    }
    sh('pg_ctl', [
      '-D',
      `${dir}/data`,
      '-l',
      `${dir}/log`,
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=${opts.listen ?? '127.0.0.1'} -c fsync=off${ssl}`,
      'start',
    ]);
  } catch (e) {
    stop();
    throw e;
  }
  return {
    dir,
    port,
    psql: (database, sql) =>
      sh('psql', ['-X', '-q', '-A', '-t', '-h', dir, '-p', String(port), '-U', 'postgres', '-d', database, '-v', 'ON_ERROR_STOP=1'], sql),
    stop,
  };
}
