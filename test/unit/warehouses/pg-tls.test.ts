// The postgres connection file's tls: block (docs/rules.md, "TLS to the warehouse"): the
// defaults by host, and what the rules loader makes of it. The handshakes themselves are
// tested against a real cluster (test/integration/warehouses/postgres-tls.test.ts).
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RulesError, loadRules } from '../../../src/config/load.ts';
import type { PostgresConnection } from '../../../src/config/model.ts';
import { postgresTls } from '../../../src/warehouses/pg-tls.ts';

function rulesWith(connectionFile: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-pgtls-'));
  cpSync(resolve(import.meta.dirname, '../../../rules'), dir, { recursive: true });
  writeFileSync(join(dir, 'acme/connections/pgwh.yaml'), connectionFile);
  return dir;
}

const BASE = 'kind: postgres\nhost: db.example.com\ndatabase: analytics\nuser: reader\npassword_env: PGWH_PW\n';

describe('postgres tls settings', () => {
  it('verify-full off loopback, none on it, unless the file says', () => {
    expect(postgresTls('db.example.com')).toEqual({ mode: 'verify-full' });
    expect(postgresTls('10.0.0.5')).toEqual({ mode: 'verify-full' });
    for (const host of ['127.0.0.1', '127.3.2.1', 'localhost', '::1']) expect(postgresTls(host)).toEqual({ mode: 'disable' });
    expect(postgresTls('db.example.com', { mode: 'require' })).toEqual({ mode: 'require' });
    expect(postgresTls('127.0.0.1', { ca_file: '/ca.pem' })).toEqual({ mode: 'disable', caFile: '/ca.pem' });
    expect(postgresTls('db.example.com', { ca_file: '/ca.pem' })).toEqual({ mode: 'verify-full', caFile: '/ca.pem' });
  });

  it('the loader keeps tls, with ca_file relative to the rules directory', () => {
    const dir = rulesWith(`${BASE}tls:\n  mode: verify-ca\n  ca_file: tls/warehouse-ca.pem\n`);
    const conn = loadRules(dir).orgs.get('acme')!.connections.get('pgwh')!;
    expect((conn.target as PostgresConnection).tls).toEqual({ mode: 'verify-ca', ca_file: join(dir, 'tls/warehouse-ca.pem') });
    const absolute = rulesWith(`${BASE}tls:\n  ca_file: /etc/gatehouse/ca.pem\n`);
    expect((loadRules(absolute).orgs.get('acme')!.connections.get('pgwh')!.target as PostgresConnection).tls).toEqual({ ca_file: '/etc/gatehouse/ca.pem' });
  });

  it('a mode that is not one of the four, or an unknown key, is refused at load', () => {
    for (const tls of ['tls:\n  mode: prefer\n', 'tls:\n  sslmode: verify-full\n']) {
      let problems: unknown;
      try {
        loadRules(rulesWith(`${BASE}${tls}`));
      } catch (e) {
        if (e instanceof RulesError) problems = e.problems;
      }
      expect(problems, tls).toEqual(
        expect.arrayContaining([expect.objectContaining({ file: 'acme/connections/pgwh.yaml', path: expect.stringMatching(/^tls/) })]),
      );
    }
  });
});
