// TLS for clients (issue 14) with the real clients in each sslmode: psql (libpq 15), the pg
// driver and pgjdbc, against a Gatehouse serving a certificate signed by a test CA (made with
// openssl), with `server.tls.mode` optional and required; and the bad input of the TLS
// negotiation over raw sockets. Every case checks the session really is (or is not) TLS in
// Gatehouse's own audit record, and bob still sees EMEA rows only.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { demoCertificatePaths } from '../../src/wire/demo-certificate.ts';
import { DEMO_PASSWORD } from '../helpers/gatehouse.ts';
import { type GatehouseProcess, spawnGatehouse } from '../helpers/gatehouse-process.ts';
import { RawClient, readByte, sendRaw, sslRequest, startupMessage, tlsSocket } from '../helpers/raw-client.ts';
import { makeTestPki, type TestPki, tlsRulesDir } from '../helpers/tls.ts';
import { errorFields, MSG } from '../../src/warehouses/pg-framing.ts';

const JDBC_JAR = '/usr/share/java/postgresql.jar';
const BOB = 'bob@acme.example';
const CAROL = 'carol@acme.example';
const EMEA_ONLY = 'EMEA';

interface Started {
  gh: RunningGatehouse;
  auditPath: string;
}

async function startTlsGatehouse(pki: TestPki, mode: 'optional' | 'required'): Promise<Started> {
  const auditPath = join(mkdtempSync(join(tmpdir(), 'gatehouse-tls-audit-')), 'audit.jsonl');
  const gh = await serve({
    rulesDir: tlsRulesDir(pki, mode),
    host: '127.0.0.1',
    port: 0,
    adminPort: 0,
    auditPath,
    logger: pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'silent' }),
  });
  return { gh, auditPath };
}

/**
 * Gatehouse's audit records of a type whose application_name is `app` (each case names its
 * own), read once the audit trail's write-behind has had time to write them.
 */
async function audited(s: Started, type: string, app?: string): Promise<Record<string, unknown>[]> {
  // The file audit writes behind by 20 ms (src/audit/audit.ts).
  await new Promise((r) => setTimeout(r, 150));
  if (!existsSync(s.auditPath)) return [];
  return readFileSync(s.auditPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.type === type && (app === undefined || r.application_name === app));
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function psql(port: number, conninfo: string, sql: string, user = BOB): Promise<Run> {
  return new Promise((done) => {
    execFile(
      'psql',
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${port} dbname=warehouse user=${user} connect_timeout=10 ${conninfo}`, '-c', sql],
      // No PGSSLMODE and no ~/.postgresql from the environment: each case says its own.
      { env: { ...process.env, PGPASSWORD: DEMO_PASSWORD, PGSSLMODE: '', PGSSLROOTCERT: '', HOME: tmpdir() }, timeout: 30_000 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function java(port: number, params: string): Promise<Record<string, string>> {
  return new Promise((done, fail) => {
    execFile(
      'java',
      ['-cp', JDBC_JAR, resolve(import.meta.dirname, 'java/TlsJdbc.java'), String(port), BOB, DEMO_PASSWORD, params],
      { timeout: 120_000, env: { ...process.env, HOME: tmpdir() } },
      (err, stdout, stderr) => {
        if (err) return fail(new Error(`java TlsJdbc failed: ${err.message}\n${stderr}`));
        done(
          Object.fromEntries(
            stdout
              .trim()
              .split('\n')
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          ),
        );
      },
    );
  });
}

/** A pg client as bob (or carol) with the given ssl options; connected. */
async function pgClient(port: number, ssl: pg.ClientConfig['ssl'], extra: Record<string, unknown> = {}, user = BOB): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password: DEMO_PASSWORD, database: 'warehouse', ssl, ...extra });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const regionsOf = async (c: pg.Client) => (await c.query('SELECT DISTINCT region FROM orders ORDER BY 1')).rows.map((r) => r.region).join(',');
const encrypted = (c: pg.Client) => (c as any).connection.stream.encrypted === true;

let pki: TestPki;
let ca: Buffer;
let otherCa: Buffer;
beforeAll(async () => {
  pki = await makeTestPki();
  ca = readFileSync(pki.caCert);
  otherCa = readFileSync(pki.otherCaCert);
}, 60_000);

describe('server.tls mode optional', () => {
  let s: Started;
  let port: number;
  beforeAll(async () => {
    s = await startTlsGatehouse(pki, 'optional');
    port = s.gh.port;
  }, 120_000);
  afterAll(async () => s?.gh.close());

  /** A psql session that must work: bob's governed answer, and the audit's tls flag. */
  async function psqlWorks(sslmode: string, app: string, tls: boolean): Promise<void> {
    const r = await psql(port, `sslmode=${sslmode} application_name=${app}`, 'SELECT DISTINCT region FROM orders ORDER BY 1');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(EMEA_ONLY);
    const starts = await audited(s, 'session_start', app);
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatchObject({ user: BOB, tls, sign_in: 'scram' });
  }

  describe('psql (libpq 15) in each sslmode', () => {
    it('disable: plaintext, still served', () => psqlWorks('disable', 'psql-disable', false));
    it('prefer: TLS', () => psqlWorks('prefer', 'psql-prefer', true));
    it('require: TLS without verifying the certificate', () => psqlWorks('require', 'psql-require', true));
    it('verify-ca with the test CA', () => psqlWorks(`verify-ca sslrootcert=${pki.caCert}`, 'psql-verify-ca', true));
    it('verify-full with the test CA (127.0.0.1 is in the certificate)', () => psqlWorks(`verify-full sslrootcert=${pki.caCert}`, 'psql-verify-full', true));
    it('verify-full by name (host=localhost)', async () => {
      const r = await psql(port, `sslmode=verify-full sslrootcert=${pki.caCert} host=localhost hostaddr=127.0.0.1 application_name=psql-localhost`, 'SELECT 1');
      expect(r.stderr).toBe('');
      expect((await audited(s, 'session_start', 'psql-localhost'))[0]).toMatchObject({ tls: true });
    });
    it('channel_binding=require: SCRAM-SHA-256-PLUS bound to the certificate (tls-server-end-point)', () =>
      psqlWorks(`verify-full sslrootcert=${pki.caCert} channel_binding=require`, 'psql-channel-binding', true));
    it('verify-ca with a CA that did not sign the certificate is refused by psql', async () => {
      const r = await psql(port, `sslmode=verify-ca sslrootcert=${pki.otherCaCert} application_name=psql-other-ca`, 'SELECT 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/certificate verify failed/);
      expect(await audited(s, 'session_start', 'psql-other-ca')).toHaveLength(0);
    });
    it('verify-full with a host name the certificate does not name is refused by psql', async () => {
      const r = await psql(port, `sslmode=verify-full sslrootcert=${pki.caCert} host=gatehouse.invalid hostaddr=127.0.0.1`, 'SELECT 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/does not match host name "gatehouse\.invalid"/);
    });
    it('a wrong password over TLS is 28P01, and audited as a TLS sign-in failure', async () => {
      const r = await new Promise<Run>((done) =>
        execFile(
          'psql',
          ['-X', '-c', 'SELECT 1', `host=127.0.0.1 port=${port} dbname=warehouse user=${BOB} sslmode=require`],
          { env: { ...process.env, PGPASSWORD: 'wrong', HOME: tmpdir() } },
          (err, stdout, stderr) => done({ code: err ? 1 : 0, stdout, stderr }),
        ),
      );
      expect(r.stderr).toMatch(/password authentication failed for user "bob@acme.example"/);
      expect((await audited(s, 'auth_failed')).some((e) => e.user === BOB && e.tls === true && e.reason === 'wrong password')).toBe(true);
    });
  });

  describe('the pg driver', () => {
    it('ssl with the test CA (verify-full against 127.0.0.1)', async () => {
      const c = await pgClient(port, { ca, rejectUnauthorized: true });
      try {
        expect(encrypted(c)).toBe(true);
        expect(await regionsOf(c)).toBe(EMEA_ONLY);
      } finally {
        await c.end();
      }
    });
    it('ssl without verification (rejectUnauthorized: false, as sslmode=require)', async () => {
      const c = await pgClient(port, { rejectUnauthorized: false });
      try {
        expect(encrypted(c)).toBe(true);
        expect(await regionsOf(c)).toBe(EMEA_ONLY);
      } finally {
        await c.end();
      }
    });
    it('ssl with a CA that did not sign the certificate fails in the client', async () => {
      await expect(pgClient(port, { ca: otherCa, rejectUnauthorized: true })).rejects.toThrow(/certificate/);
    });
    it('enableChannelBinding: SCRAM-SHA-256-PLUS', async () => {
      const c = await pgClient(port, { ca, rejectUnauthorized: true }, { enableChannelBinding: true });
      try {
        expect(await regionsOf(c)).toBe(EMEA_ONLY);
      } finally {
        await c.end();
      }
    });
    it("direct TLS (sslNegotiation: 'direct', PostgreSQL 17's, ALPN postgresql)", async () => {
      const c = await pgClient(port, { ca, rejectUnauthorized: true }, { sslNegotiation: 'direct', application_name: 'pg-direct' });
      try {
        expect(encrypted(c)).toBe(true);
        expect(await regionsOf(c)).toBe(EMEA_ONLY);
        expect((await audited(s, 'session_start', 'pg-direct'))[0]).toMatchObject({ tls: true });
      } finally {
        await c.end();
      }
    });
    it("a CancelRequest over TLS (pg's cancel connection uses the same ssl) stops carol's running query with 57014", async () => {
      const carol = await pgClient(port, { ca }, {}, CAROL);
      try {
        const running = carol.query('SELECT pg_sleep(60)').then(
          () => 'finished',
          (e: { code?: string }) => e.code,
        );
        await new Promise((r) => setTimeout(r, 500));
        const canceller = new pg.Client({ host: '127.0.0.1', port, user: CAROL, password: DEMO_PASSWORD, database: 'warehouse', ssl: { ca } });
        (canceller as any).cancel(carol, (carol as any).activeQuery);
        expect(await running).toBe('57014');
      } finally {
        await carol.end();
      }
    });
  });

  describe('pgjdbc', () => {
    if (!existsSync(JDBC_JAR)) {
      it('needs the PostgreSQL JDBC driver', () => {
        throw new Error(`the PostgreSQL JDBC driver is missing at ${JDBC_JAR}: apt-get install -y libpostgresql-jdbc-java (bash .ci/run does this)`);
      });
      return;
    }
    it('sslmode=require', async () => {
      const out = await java(port, 'sslmode=require&assumeMinServerVersion=9.0&ApplicationName=jdbc-require');
      expect(out).toMatchObject({ ok: 'true', regions: 'EMEA:1667' });
      expect((await audited(s, 'session_start', 'jdbc-require'))[0]).toMatchObject({ tls: true });
    });
    it('sslmode=verify-full with sslrootcert (the test CA)', async () => {
      const out = await java(
        port,
        `sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.caCert)}&assumeMinServerVersion=9.0&ApplicationName=jdbc-verify-full`,
      );
      expect(out).toMatchObject({ ok: 'true', regions: 'EMEA:1667' });
      expect((await audited(s, 'session_start', 'jdbc-verify-full'))[0]).toMatchObject({ tls: true });
    });
    it('sslmode=verify-full with a CA that did not sign the certificate is refused by pgjdbc', async () => {
      const out = await java(port, `sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.otherCaCert)}`);
      expect(out.ok).toBeUndefined();
      expect(out.error).toMatch(/SSL|certificat|PKIX/i);
    });
  });

  describe('bad input in the TLS negotiation: a closed socket or a clear error, never a crash', () => {
    /** Another session works after each case. */
    async function stillServes(): Promise<void> {
      const c = await RawClient.connect({ port, user: BOB, password: DEMO_PASSWORD, tls: { negotiation: 'postgres', ca } });
      try {
        const r = await c.query('SELECT DISTINCT region FROM orders', { keepRows: 5 });
        expect(r.errors).toEqual([]);
        expect(r.firstRows).toEqual([[EMEA_ONLY]]);
      } finally {
        await c.close();
      }
    }

    it('TLS handshake garbage after S: the connection closes', async () => {
      const sock = await RawClient.socket(port);
      sock.on('error', () => {});
      sock.write(sslRequest());
      expect(await readByte(sock)).toBe('S');
      const closed = new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), 10_000);
        sock.once('close', () => {
          clearTimeout(t);
          r(true);
        });
      });
      sock.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      sock.write(Buffer.alloc(4096, 0x41));
      expect(await closed).toBe(true);
      await stillServes();
    });

    it('a plaintext StartupMessage after S is not read as one: the connection closes, nothing is signed in', async () => {
      const sock = await RawClient.socket(port);
      sock.on('error', () => {});
      const received: Buffer[] = [];
      sock.write(sslRequest());
      expect(await readByte(sock)).toBe('S');
      sock.on('data', (c: Buffer) => received.push(c));
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      sock.write(startupMessage({ user: BOB, database: 'warehouse', application_name: 'plaintext-after-s' }));
      await closed;
      // Whatever came back is a TLS alert at most, never an Authentication request in clear.
      expect(Buffer.concat(received).includes(Buffer.from('R'))).toBe(false);
      expect(await audited(s, 'session_start', 'plaintext-after-s')).toHaveLength(0);
      await stillServes();
    });

    it('bytes pipelined after SSLRequest (CVE-2021-23214) get FATAL 08P01 and no S', async () => {
      const out = await sendRaw(port, Buffer.concat([sslRequest(), startupMessage({ user: BOB, database: 'warehouse' })]));
      expect(out.closed).toBe(true);
      expect(out.received[0]).not.toBe('S'.charCodeAt(0));
      expect(out.errors).toHaveLength(1);
      expect(out.errors[0]).toMatchObject({ S: 'FATAL', C: '08P01', M: 'received unencrypted data after SSL request' });
      await stillServes();
    });

    it('a second SSLRequest inside TLS gets FATAL 08P01 (over TLS) and the connection closes', async () => {
      const t = await tlsSocket(port, { negotiation: 'postgres', ca });
      const chunks: Buffer[] = [];
      t.on('data', (c: Buffer) => chunks.push(c));
      t.on('error', () => {});
      const closed = new Promise<void>((r) => t.once('close', () => r()));
      t.write(sslRequest());
      await closed;
      const got = Buffer.concat(chunks);
      expect(got[0]).toBe(MSG.ErrorResponse);
      expect(errorFields(got.subarray(5, 1 + got.readInt32BE(1)))).toMatchObject({ S: 'FATAL', C: '08P01' });
      await stillServes();
    });

    it('GSSENCRequest is answered N; an SSLRequest after it gets S and the session signs in over TLS', async () => {
      const plain = await RawClient.socket(port);
      plain.on('error', () => {});
      const gss = Buffer.alloc(8);
      gss.writeInt32BE(8, 0);
      gss.writeInt32BE(80877104, 4);
      plain.write(gss);
      expect(await readByte(plain)).toBe('N');
      plain.destroy();
      await stillServes(); // stillServes itself signs in after SSLRequest
    });

    it('direct TLS with ALPN postgresql signs in; without ALPN (08P01) or with another protocol (TLS alert) it is refused', async () => {
      const c = await RawClient.connect({ port, user: BOB, password: DEMO_PASSWORD, tls: { negotiation: 'direct', ca } });
      const r = await c.query('SELECT DISTINCT region FROM orders', { keepRows: 5 });
      expect(r.firstRows).toEqual([[EMEA_ONLY]]);
      await c.close();

      const noAlpn = await tlsSocket(port, { negotiation: 'direct', ca, alpn: [] });
      const chunks: Buffer[] = [];
      noAlpn.on('data', (b: Buffer) => chunks.push(b));
      noAlpn.on('error', () => {});
      await new Promise<void>((r) => noAlpn.once('close', () => r()));
      const got = Buffer.concat(chunks);
      expect(got[0]).toBe(MSG.ErrorResponse);
      expect(errorFields(got.subarray(5, 1 + got.readInt32BE(1)))).toMatchObject({
        C: '08P01',
        M: 'direct TLS connection without the ALPN protocol "postgresql"',
      });

      // Another protocol (an HTTPS client pointed here) is refused in the handshake itself.
      await expect(tlsSocket(port, { negotiation: 'direct', ca, alpn: ['http/1.1'] })).rejects.toThrow(/no application protocol/);
      await stillServes();
    });
  });
});

describe('server.tls mode required', () => {
  let s: Started;
  let port: number;
  beforeAll(async () => {
    s = await startTlsGatehouse(pki, 'required');
    port = s.gh.port;
  }, 120_000);
  afterAll(async () => s?.gh.close());

  it('plaintext (psql sslmode=disable) is refused with a message saying to use sslmode=require', async () => {
    const r = await psql(port, 'sslmode=disable', 'SELECT 1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Gatehouse requires an encrypted connection \(TLS\)/);
    expect(r.stderr).toMatch(/sslmode=require/);
    expect((await audited(s, 'auth_failed')).some((e) => e.reason === 'TLS required' && e.tls === false)).toBe(true);
  });

  it('plaintext (the pg driver without ssl) gets FATAL 28000 before any password is asked for', async () => {
    const out = await sendRaw(port, startupMessage({ user: BOB, database: 'warehouse' }));
    expect(out.closed).toBe(true);
    expect(out.errors).toEqual([expect.objectContaining({ S: 'FATAL', C: '28000', M: 'Gatehouse requires an encrypted connection (TLS)' })]);
    expect(out.errors[0].H).toMatch(/sslmode=require/);
    // Only the ErrorResponse: no AuthenticationSASL was offered in clear.
    expect(out.received[0]).toBe(MSG.ErrorResponse);
    await expect(pgClient(port, false)).rejects.toMatchObject({ code: '28000' });
  });

  it('psql sslmode=require and sslmode=allow (retries with TLS) are served', async () => {
    for (const mode of ['require', 'allow', 'prefer']) {
      const r = await psql(port, `sslmode=${mode} application_name=required-${mode}`, 'SELECT DISTINCT region FROM orders');
      expect(r.stderr, mode).toBe('');
      expect(r.stdout.trim()).toBe(EMEA_ONLY);
      expect((await audited(s, 'session_start', `required-${mode}`))[0]).toMatchObject({ tls: true });
    }
  });

  it('a CancelRequest in clear (libpq 15 sends them unencrypted) still cancels a TLS session', async () => {
    const carol = await pgClient(port, { ca }, {}, CAROL);
    try {
      const running = carol.query('SELECT pg_sleep(60)').then(
        () => 'finished',
        (e: { code?: string }) => e.code,
      );
      await new Promise((r) => setTimeout(r, 500));
      const { processID, secretKey } = carol as any;
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      cancel.writeInt32BE(processID, 8);
      cancel.writeInt32BE(secretKey, 12);
      const out = await sendRaw(port, cancel);
      expect(out.closed).toBe(true);
      expect(out.received.length).toBe(0);
      expect(await running).toBe('57014');
    } finally {
      await carol.end();
    }
  });

  it('pgjdbc sslmode=disable is refused with 28000; sslmode=require is served', async () => {
    const refused = await java(port, 'sslmode=disable');
    expect(refused.sqlstate).toBe('28000');
    expect(refused.error).toMatch(/requires an encrypted connection/);
    expect(await java(port, 'sslmode=require')).toMatchObject({ ok: 'true', regions: 'EMEA:1667' });
  });
});

describe('the demo (gatehouse serve --demo) serves TLS out of the box', () => {
  let demo: GatehouseProcess;
  let cwd: string;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-demo-tls-'));
    demo = await spawnGatehouse(
      process.execPath,
      [resolve(import.meta.dirname, '../../bin/gatehouse.js'), 'serve', '--demo', '--port', '0', '--admin-port', '0'],
      { cwd, startTimeoutMs: 120_000 },
    );
  }, 150_000);
  afterAll(async () => {
    await demo?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('made a self-signed certificate under .gatehouse/tls (key 0600) and says how to connect', () => {
    const { cert_file, key_file } = demoCertificatePaths(join(cwd, '.gatehouse'));
    expect(statSync(key_file).mode & 0o777).toBe(0o600);
    expect(new X509Certificate(readFileSync(cert_file)).checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(demo.output()).toContain(`psql "sslmode=require host=127.0.0.1 port=${demo.port} dbname=warehouse user=bob@acme.example"`);
  });

  it('psql sslmode=require works, and verify-full with the certificate as its own root', async () => {
    const { cert_file } = demoCertificatePaths(join(cwd, '.gatehouse'));
    for (const mode of ['require', `verify-full sslrootcert=${cert_file}`]) {
      const r = await psql(demo.port, `sslmode=${mode}`, 'SELECT DISTINCT region FROM orders');
      expect(r.stderr, mode).toBe('');
      expect(r.stdout.trim()).toBe(EMEA_ONLY);
    }
  });
});
