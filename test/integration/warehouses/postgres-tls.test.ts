// TLS from the postgres connector to the warehouse (issue 13): a PostgreSQL cluster of the
// test's own with ssl=on and a certificate from a CA the test makes (test/helpers/tls.ts),
// listening on 127.0.0.1 (a name in the certificate) and 127.0.0.2 (not in it), and a second
// cluster without ssl. No silent skip: a cluster that cannot start fails beforeAll.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, PostgresConnection } from '../../../src/config/model.ts';
import { GatehouseError } from '../../../src/errors.ts';
import type { UpstreamTls } from '../../../src/warehouses/pg-tls.ts';
import { PostgresWarehouse, UpstreamConnection } from '../../../src/warehouses/postgres.ts';
import { CollectingSink } from '../../helpers/collecting-sink.ts';
import { type ScramCluster, startScramCluster } from '../../helpers/scram-cluster.ts';
import { DEMO_RULES, asUser, pgClient, startGatehouse } from '../../helpers/gatehouse.ts';
import { type TestPki, makeTestPki } from '../../helpers/tls.ts';

let pki: TestPki;
let tlsCluster: ScramCluster | undefined;
let plainCluster: ScramCluster | undefined;
const PASSWORD = 'tls-reader-pw-7';

beforeAll(async () => {
  pki = await makeTestPki();
  tlsCluster = await startScramCluster(['hostssl all all 127.0.0.0/8 scram-sha-256'], {
    ssl: { certFile: pki.serverCert, keyFile: pki.serverKey },
    listen: '127.0.0.1,127.0.0.2',
  });
  plainCluster = await startScramCluster(['host all all 127.0.0.0/8 scram-sha-256']);
  for (const c of [tlsCluster, plainCluster]) c.psql('postgres', `CREATE ROLE reader LOGIN PASSWORD '${PASSWORD}'`);
}, 90_000);

afterAll(() => {
  tlsCluster?.stop();
  plainCluster?.stop();
});

function open(host: string, port: number, tls: UpstreamTls | undefined): Promise<UpstreamConnection> {
  return UpstreamConnection.open({ connection: 'tlswh', host, port, database: 'postgres', user: 'reader', password: () => PASSWORD, ...(tls ? { tls } : {}) }, [
    ['user', 'reader'],
    ['database', 'postgres'],
    ['application_name', 'gh-tls-test'],
    ['client_encoding', 'UTF8'],
    ['standard_conforming_strings', 'on'],
  ]);
}

async function refusal(p: Promise<UpstreamConnection>): Promise<GatehouseError> {
  const got = await p.then(
    async (c) => {
      await c.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(got).toBeInstanceOf(GatehouseError);
  return got as GatehouseError;
}

/** What the warehouse says about this session's encryption. */
async function sslOfSession(c: UpstreamConnection): Promise<{ ssl: string | null; version: string | null }> {
  const r = await c.rows('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  return { ssl: r.rows[0][0], version: r.rows[0][1] };
}

describe('postgres connector: TLS to the warehouse', () => {
  it('verify-full with the CA that signed the certificate: encrypted (pg_stat_ssl), SCRAM bound to the channel', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const c = await open(host, tlsCluster!.port, { mode: 'verify-full', caFile: pki.caCert });
      try {
        expect(await sslOfSession(c)).toEqual({ ssl: 't', version: expect.stringMatching(/^TLSv1\.[23]$/) });
        expect(c.encrypted).toBe(true);
        // SCRAM-SHA-256-PLUS: the server checked our tls-server-end-point against its certificate.
        expect(c.channelBound).toBe(true);
      } finally {
        await c.close();
      }
    }
  });

  it('a result of many TLS records arrives whole (messages cut across records)', async () => {
    const c = await open('127.0.0.1', tlsCluster!.port, { mode: 'verify-full', caFile: pki.caCert });
    try {
      const r = await c.rows('SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 20000) g');
      expect(r.rows.length).toBe(20000);
      expect(r.rows[19999]).toEqual(['20000', expect.stringMatching(/^[0-9a-f]{1280}$/)]);
      expect(r.rows.every((row, i) => row[0] === String(i + 1))).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('a host name the certificate does not hold is refused (08001), and verify-ca accepts it', async () => {
    const err = await refusal(open('127.0.0.2', tlsCluster!.port, { mode: 'verify-full', caFile: pki.caCert }));
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toBe('could not connect to warehouse of connection "tlswh": its TLS certificate did not verify');
    expect(err.detail).toMatch(/127\.0\.0\.2/);
    expect(err.hint).toContain('tls.ca_file');
    const c = await open('127.0.0.2', tlsCluster!.port, { mode: 'verify-ca', caFile: pki.caCert });
    try {
      expect((await sslOfSession(c)).ssl).toBe('t');
    } finally {
      await c.close();
    }
  });

  it("a certificate from a CA not given is refused (08001), with another CA and with none (Node's own roots)", async () => {
    for (const tls of [
      { mode: 'verify-full', caFile: pki.otherCaCert },
      { mode: 'verify-full' },
      { mode: 'verify-ca', caFile: pki.otherCaCert },
    ] as UpstreamTls[]) {
      const err = await refusal(open('127.0.0.1', tlsCluster!.port, tls));
      expect(err).toMatchObject({ sqlstate: '08001', message: 'could not connect to warehouse of connection "tlswh": its TLS certificate did not verify' });
      expect(err.detail).toMatch(/certificate/i);
    }
  });

  it('require: encrypted without checking the certificate', async () => {
    const c = await open('127.0.0.2', tlsCluster!.port, { mode: 'require', caFile: pki.otherCaCert });
    try {
      expect((await sslOfSession(c)).ssl).toBe('t');
    } finally {
      await c.close();
    }
  });

  it('a server without ssl is refused when TLS is required (08001), never read in clear', async () => {
    for (const mode of ['verify-full', 'verify-ca', 'require'] as const) {
      const err = await refusal(open('127.0.0.1', plainCluster!.port, { mode, caFile: pki.caCert }));
      expect(err).toMatchObject({ sqlstate: '08001', message: 'could not connect to warehouse of connection "tlswh": the server does not accept TLS' });
      expect(err.hint).toContain('tls: {mode: disable}');
    }
    // disable (loopback's default) signs in in clear, and the server says so.
    const c = await open('127.0.0.1', plainCluster!.port, { mode: 'disable' });
    try {
      expect((await sslOfSession(c)).ssl).toBe('f');
      expect(c.encrypted).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('a CancelRequest goes over TLS too and cancels the statement', async () => {
    const c = await open('127.0.0.1', tlsCluster!.port, { mode: 'verify-full', caFile: pki.caCert });
    try {
      const started = Date.now();
      const running = c.rows('SELECT pg_sleep(30)').then(
        () => 'finished',
        (e: Error) => e.message,
      );
      await new Promise((r) => setTimeout(r, 300));
      await c.cancel();
      expect(await running).toMatch(/57014/);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await c.close();
    }
  });

  it("bytes in clear after the server's S are refused (CVE-2021-23222), as is an answer that is neither S nor N", async () => {
    for (const answer of [Buffer.from('SX\0\0\0\x08'), Buffer.from('E')]) {
      const server = net.createServer((s) => s.once('data', () => s.write(answer)));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const err = await refusal(open('127.0.0.1', (server.address() as net.AddressInfo).port, { mode: 'require' }));
        expect(err.sqlstate).toBe('08001');
        expect(err.message).toMatch(answer.length > 1 ? /unencrypted data after accepting TLS/ : /did not answer the SSLRequest/);
      } finally {
        server.close();
      }
    }
  });

  it("a connection file's tls reaches the warehouse; the session shows application_name gatehouse:<email> (pg_stat_activity)", async () => {
    process.env.GH_TLS_READER = PASSWORD;
    const target: PostgresConnection = {
      kind: 'postgres',
      host: '127.0.0.1',
      port: tlsCluster!.port,
      database: 'postgres',
      user: 'reader',
      password_env: 'GH_TLS_READER',
      allow_superuser: false,
      tls: { mode: 'verify-full', ca_file: pki.caCert },
    };
    const conn: Connection = {
      name: 'tlswh',
      org: 'acme',
      target,
      allow_writes: false,
      permissions: { default: 'no_access', groups: {}, users: {} },
      topics_schema: 'topics',
    };
    for (const pooling of ['session', 'none'] as const) {
      const w = new PostgresWarehouse({ ...conn, pool: { mode: pooling, size: 2, idleTimeoutMs: 60_000, waitTimeoutMs: 5_000 } });
      await w.start();
      const who = async (user: string) => {
        const s = await w.openSession({ params: { application_name: 'psql' }, readOnly: true, user });
        const sink = new CollectingSink();
        await s.run(
          [
            {
              sql: 'SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.pid = pg_backend_pid()',
              kind: 'select',
              returnsRows: true,
            },
          ],
          sink,
        );
        const seen = tlsCluster!
          .psql('postgres', `SELECT application_name FROM pg_stat_activity WHERE usename = 'reader' AND application_name LIKE 'gatehouse:%'`)
          .trim();
        await s.close();
        return { row: sink.rows()[0], seen };
      };
      expect(await who('bob@acme.example')).toEqual({ row: ['gatehouse:bob@acme.example', 't'], seen: 'gatehouse:bob@acme.example' });
      // Session pooling hands the same upstream to the next person: it is renamed for them.
      expect(await who('alice@acme.example')).toEqual({ row: ['gatehouse:alice@acme.example', 't'], seen: 'gatehouse:alice@acme.example' });
      await w.close();
    }
    const refused = new PostgresWarehouse({ ...conn, target: { ...target, tls: { mode: 'verify-full', ca_file: pki.otherCaCert } } });
    await expect(refused.start()).rejects.toMatchObject({ sqlstate: '08001', message: expect.stringContaining('certificate did not verify') });
  });

  it("through Gatehouse: a connection file with tls and a relative ca_file; carol's session is encrypted and named for her; the wrong CA is 08001", async () => {
    process.env.GH_TLS_READER = PASSWORD;
    const rulesWith = (ca: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rules-pgtls-'));
      cpSync(DEMO_RULES, dir, { recursive: true });
      mkdirSync(join(dir, 'tls'));
      writeFileSync(join(dir, 'tls/warehouse-ca.pem'), readFileSync(ca));
      writeFileSync(
        join(dir, 'acme/connections/tlswh.yaml'),
        `kind: postgres\nhost: 127.0.0.1\nport: ${tlsCluster!.port}\ndatabase: postgres\nuser: reader\npassword_env: GH_TLS_READER\ntls:\n  mode: verify-full\n  ca_file: tls/warehouse-ca.pem\npermissions:\n  default: no_access\n  groups:\n    analysts: querier\n`,
      );
      return dir;
    };
    const gh = await startGatehouse(rulesWith(pki.caCert));
    try {
      const c = await pgClient(gh, 'carol@acme.example', { database: 'tlswh' });
      try {
        // pg_stat_* are not readable through Gatehouse: the warehouse's superuser looks.
        const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        const seen = tlsCluster!
          .psql('postgres', `SELECT s.ssl, a.application_name FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE pid = ${Number(pid)}`)
          .trim();
        expect(seen).toBe('t|gatehouse:carol@acme.example');
      } finally {
        await c.end();
      }
    } finally {
      await gh.close();
    }
    const wrong = await startGatehouse(rulesWith(pki.otherCaCert));
    try {
      const got = await pgClient(wrong, 'carol@acme.example', { database: 'tlswh' }).then(
        async (c) => {
          try {
            await c.query('SELECT 1');
            return { code: 'none', message: '' };
          } finally {
            await c.end().catch(() => {});
          }
        },
        (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }),
      );
      expect(got).toEqual({ code: '08001', message: 'could not connect to warehouse of connection "tlswh": its TLS certificate did not verify' });
      // The other connections serve.
      expect((await asUser(wrong, 'carol@acme.example', 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await wrong.close();
    }
  }, 60_000);
});
