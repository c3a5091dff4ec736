// Upstream sign-in methods (SCRAM-SHA-256, md5, cleartext) against a PostgreSQL cluster of
// our own: the shared local server trusts everyone. initdb refuses to run as root, so the
// cluster runs as the `postgres` OS user when the tests run as root. No silent skip: if the
// cluster cannot start, beforeAll fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, PostgresConnection } from '../../../src/config/model.ts';
import { PostgresWarehouse } from '../../../src/warehouses/postgres.ts';
import { CollectingSink } from '../../helpers/collecting-sink.ts';
import { type ScramCluster, startScramCluster } from '../../helpers/scram-cluster.ts';

let cluster: ScramCluster | undefined;
let port = 0;

beforeAll(async () => {
  cluster = await startScramCluster([
    'host all md5user 127.0.0.1/32 md5',
    'host all clearuser 127.0.0.1/32 password',
    'host all all 127.0.0.1/32 scram-sha-256',
  ]);
  port = cluster.port;
  cluster.psql('postgres', `CREATE ROLE scramuser LOGIN PASSWORD 'scram-pw-1'`);
  cluster.psql('postgres', `SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5-pw-2'`);
  cluster.psql('postgres', `CREATE ROLE clearuser LOGIN PASSWORD 'clear-pw-3'`);
}, 60_000);

afterAll(() => cluster?.stop());

function wh(user: string, passwordEnv?: string): PostgresWarehouse {
  const target: PostgresConnection = {
    kind: 'postgres',
    host: '127.0.0.1',
    port,
    database: 'postgres',
    user,
    password_env: passwordEnv,
    allow_superuser: false,
  };
  const conn: Connection = {
    name: 'authwh',
    org: 'acme',
    target,
    allow_writes: false,
    permissions: { default: 'no_access', groups: {}, users: {} },
    topics_schema: 'topics',
  };
  return new PostgresWarehouse(conn);
}

async function signInAndQuery(w: PostgresWarehouse) {
  await w.start();
  const s = await w.openSession({ params: {}, readOnly: true });
  const sink = new CollectingSink();
  await s.run([{ sql: 'SELECT current_user', kind: 'select', returnsRows: true }], sink);
  await s.close();
  return sink.rows()[0][0];
}

describe('postgres warehouse: upstream authentication', () => {
  it('signs in with SCRAM-SHA-256 (and checks the server signature)', async () => {
    process.env.GH_AUTH_SCRAM = 'scram-pw-1';
    expect(await signInAndQuery(wh('scramuser', 'GH_AUTH_SCRAM'))).toBe('scramuser');
  });

  it('signs in with md5 and with a cleartext password', async () => {
    process.env.GH_AUTH_MD5 = 'md5-pw-2';
    process.env.GH_AUTH_CLEAR = 'clear-pw-3';
    expect(await signInAndQuery(wh('md5user', 'GH_AUTH_MD5'))).toBe('md5user');
    expect(await signInAndQuery(wh('clearuser', 'GH_AUTH_CLEAR'))).toBe('clearuser');
  });

  it('a wrong password is 08001 with the server reason, never the password', async () => {
    const secret = 'Wr0ng-But-Secret-L00king!';
    process.env.GH_AUTH_WRONG = secret;
    for (const user of ['scramuser', 'md5user', 'clearuser']) {
      const err = await wh(user, 'GH_AUTH_WRONG')
        .start()
        .then(
          () => undefined,
          (e) => e,
        );
      expect(err).toMatchObject({ sqlstate: '08001', message: 'could not connect to warehouse of connection "authwh"' });
      expect(err.detail).toContain('password authentication failed');
      expect(JSON.stringify({ m: err.message, d: err.detail, h: err.hint, s: String(err.stack) })).not.toContain(secret);
    }
  });

  it('no configured password, when the server asks for one, is 08001 saying so', async () => {
    await expect(wh('scramuser').start()).rejects.toMatchObject({
      sqlstate: '08001',
      detail: expect.stringContaining('none is configured'),
    });
  });
});
