// Bad input and failing upstreams get a clear error, and Gatehouse keeps serving
// everyone else: the real server, real clients (psql, pg, a raw socket), the
// local PostgreSQL as the warehouse.
import net from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../src/serve.ts';
import { DEMO_PASSWORD, DEMO_RULES, demoRulesWith, pgClient, psql, startGatehouse } from '../helpers/gatehouse.ts';
import { RawClient, sendRaw } from '../helpers/raw-client.ts';
import { createAcmeWarehouse, deadPort, psqlAdmin, requirePostgres } from '../helpers/servers.ts';

const PG_DATABASE = 'gatehouse_it_faults';
const BIG_QUERY = `SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 1000000) g`;
const SECRET_ENV = 'GATEHOUSE_FAULTS_SECRET';
const SECRET = 'Sup3r-S3cret-pw-7f3a9c1e';

const carol = (port: number) => RawClient.connect({ port, user: 'carol@acme.example', password: DEMO_PASSWORD });

function pgWarehouseYaml(opts: { port?: number; user?: string; passwordEnv?: string } = {}): string {
  return `kind: postgres
host: 127.0.0.1
port: ${opts.port ?? 5432}
database: ${PG_DATABASE}
user: ${opts.user ?? 'gatehouse_reader'}
topics_user: gatehouse_topics
${opts.passwordEnv ? `password_env: ${opts.passwordEnv}\n` : ''}permissions:
  default: no_access
  groups:
    sales-emea: query_topics
    analysts: querier
`;
}

/** Gatehouse in this process, its log lines kept (to check what it logs). */
async function serveLogged(rulesDir: string): Promise<{ gh: RunningGatehouse; logs: string[] }> {
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(s) });
  const gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, logger });
  return { gh, logs };
}

/** Backends of the warehouse account on this test's database. */
function upstreamBackends(): number {
  return Number(psqlAdmin('test', `SELECT count(*) FROM pg_stat_activity WHERE usename = 'gatehouse_reader' AND datname = '${PG_DATABASE}'`).trim());
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(100);
  }
  return cond();
}

const bobsCount = async (gh: { port: number }) => {
  const r = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders');
  return { stdout: r.stdout.trim(), stderr: r.stderr };
};

beforeAll(async () => {
  await requirePostgres();
  createAcmeWarehouse(PG_DATABASE, resolve(DEMO_RULES, 'acme/data/acme.sql'));
});

describe('an upstream that refuses the connection', () => {
  let gh: RunningGatehouse;
  let logs: string[];
  let port: number;
  let proxy: net.Server | undefined;
  beforeAll(async () => {
    process.env[SECRET_ENV] = SECRET;
    port = await deadPort();
    const rules = demoRulesWith(pgWarehouseYaml({ port, passwordEnv: SECRET_ENV }));
    // A second acme connection behind the same dead port, signing in as a superuser:
    // once the port answers, its least-privilege check must still refuse it.
    writeFileSync(join(rules, 'acme/connections/superuser.yaml'), pgWarehouseYaml({ port, user: 'postgres', passwordEnv: SECRET_ENV }));
    ({ gh, logs } = await serveLogged(rules));
  });
  afterAll(async () => {
    await gh?.close();
    proxy?.close();
    delete process.env[SECRET_ENV];
  });

  it('Gatehouse starts anyway and serves the other org (hank on globex)', async () => {
    const r = await psql(gh, 'hank@globex.example', 'SELECT count(*) FROM orders');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1200');
    expect(logs.join('')).toMatch(/warehouse unreachable at start/);
  });

  it("acme's users get FATAL 08001 naming the connection, never the secret", async () => {
    const r = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL: {2}could not connect to warehouse of connection "warehouse"/);
    expect(r.stderr).toMatch(/ECONNREFUSED/); // the network reason, in DETAIL
    expect(r.stderr).not.toContain(SECRET);
    const c = await carol(gh.port).then(
      () => undefined,
      (e) => e,
    );
    expect(c?.code).toBe('08001');
    expect(c?.severity).toBe('FATAL');
    const all = logs.join('');
    expect(all).toMatch(/"connection":"warehouse"/);
    expect(all).not.toContain(SECRET);
    // hank is still served
    expect((await psql(gh, 'hank@globex.example', 'SELECT count(*) FROM orders')).stdout.trim()).toBe('1200');
  });

  it('once the warehouse answers, the next session starts it (least-privilege check included) and is served', async () => {
    // The "warehouse" comes up: a TCP relay on the dead port to the local PostgreSQL.
    proxy = net.createServer((client) => {
      const up = net.connect({ host: '127.0.0.1', port: 5432 });
      client.pipe(up).pipe(client);
      client.on('error', () => up.destroy());
      up.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => proxy!.listen(port, '127.0.0.1', () => r()));
    expect(await bobsCount(gh)).toEqual({ stdout: '1667', stderr: '' });
    // The superuser connection is refused now that it can be checked: fail closed.
    const su = await psql(gh, 'carol@acme.example', 'SELECT 1', { database: 'superuser' });
    expect(su.code).not.toBe(0);
    expect(su.stderr).toMatch(/FATAL: {2}warehouse account "postgres" of connection "superuser" is a superuser/);
    expect(su.stderr).not.toContain(SECRET);
    expect(logs.join('')).not.toContain(SECRET);
  });

  it('an account with more than read privileges still stops the start (42501)', async () => {
    const rules = demoRulesWith(pgWarehouseYaml({ user: 'postgres' }));
    rmSync(join(rules, 'globex'), { recursive: true, force: true });
    await expect(serveLogged(rules)).rejects.toMatchObject({ sqlstate: '42501', message: expect.stringMatching(/superuser/) });
  });
});

describe('faults on a running Gatehouse (postgres warehouse)', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    const rules = demoRulesWith(pgWarehouseYaml());
    rmSync(join(rules, 'globex'), { recursive: true, force: true });
    gh = await startGatehouse(rules);
  });
  afterAll(async () => {
    await gh?.close();
  });

  it('an upstream that dies mid-query: the client gets a clear error, a new session works', async () => {
    const c = await carol(gh.port);
    let killed = '';
    const r = await c.query(BIG_QUERY, {
      throttle: { bytesPerPause: 256 << 10, pauseMs: 20 },
      onRow: (n) => {
        if (n === 10_000)
          killed = psqlAdmin(
            'test',
            `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'gatehouse_reader' AND datname = '${PG_DATABASE}' AND pid <> pg_backend_pid()`,
          ).trim();
      },
    });
    expect(killed).toBe('1');
    expect(r.rows).toBeGreaterThanOrEqual(10_000);
    expect(r.rows).toBeLessThan(1_000_000);
    console.log(`upstream killed mid-query: ${r.rows} rows, then ${JSON.stringify(r.errors)}, status ${r.status}, closedEarly ${r.closedEarly}`);
    // The backend was blocked writing to a paused socket, so PostgreSQL's own FATAL 57P01
    // may never be sent; if it is, it is relayed as it came.
    if (r.errors.length > 1) expect(r.errors[0]).toMatchObject({ C: '57P01', S: 'FATAL' });
    // Gatehouse's own error ends the result, and the session: FATAL, then the connection closes
    // (as PostgreSQL does when a backend dies), so clients reconnect rather than fail forever.
    expect(r.errors.at(-1)).toMatchObject({
      S: 'FATAL',
      C: '08006',
      M: 'lost the connection to warehouse of connection "warehouse"',
      D: 'the warehouse closed the connection',
    });
    expect(r.tags).toEqual([]);
    expect(r.status).toBeUndefined();
    expect(r.closedEarly).toBe(true);
    await c.closed;
    expect(await bobsCount(gh)).toEqual({ stdout: '1667', stderr: '' });
    expect(await waitFor(() => upstreamBackends() === 0, 5000)).toBe(true);
    const again = await carol(gh.port);
    expect((await again.query('SELECT count(*) FROM employees', { keepRows: 1 })).firstRows).toEqual([['50']]);
    await again.close();
  });

  it('a client that disconnects mid-result: the upstream backend goes away, others are served', async () => {
    await waitFor(() => upstreamBackends() === 0, 5000);
    const c = await carol(gh.port);
    expect(upstreamBackends()).toBe(1);
    const r = await c.query(BIG_QUERY, { onRow: (n) => n === 5000 });
    expect(r.closedEarly).toBe(true);
    expect(r.rows).toBe(5000);
    expect(await waitFor(() => upstreamBackends() === 0, 5000)).toBe(true);
    expect(await bobsCount(gh)).toEqual({ stdout: '1667', stderr: '' });
    expect(upstreamBackends()).toBe(0); // psql's session ended too
  });

  it('garbage bytes before the startup packet: an error or a close, others unaffected', async () => {
    const bob = await pgClient(gh, 'bob@acme.example');
    try {
      const garbage = await sendRaw(gh.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      expect(garbage.closed).toBe(true);
      const random = await sendRaw(gh.port, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff)));
      expect(random.closed).toBe(true);
      // A startup packet claiming 2 GB.
      const huge = Buffer.alloc(8);
      huge.writeInt32BE(0x7fffffff, 0);
      huge.writeInt32BE(196608, 4);
      const big = await sendRaw(gh.port, huge);
      expect(big.closed).toBe(true);
      for (const r of [garbage, random, big]) for (const e of r.errors) expect(e.S).toBe('FATAL');
      console.log(`garbage: ${JSON.stringify([garbage.errors, random.errors, big.errors])}`);
      expect((await bob.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1667 }]);
    } finally {
      await bob.end();
    }
  });

  it('an oversized message after sign-in: FATAL 08P01 and a close, others unaffected', async () => {
    const bob = await pgClient(gh, 'bob@acme.example');
    try {
      const c = await carol(gh.port);
      const head = Buffer.alloc(5);
      head[0] = 0x51; // Query
      head.writeInt32BE(1 << 30, 1); // 1 GB, above max_message_bytes (16 MiB)
      c.socket.write(head);
      const m = await c.next();
      expect(String.fromCharCode(m.type)).toBe('E');
      const { errorFields } = await import('../../src/warehouses/pg-framing.ts');
      const f = errorFields(m.body);
      expect(f).toMatchObject({ S: 'FATAL', C: '08P01' });
      await c.closed; // the server closes the connection
      // Garbage message type after sign-in.
      const d = await carol(gh.port);
      d.socket.write(Buffer.from([0x01, 0, 0, 0, 4]));
      const m2 = await d.next();
      expect(errorFields(m2.body)).toMatchObject({ S: 'FATAL', C: '08P01' });
      await d.closed;
      expect((await bob.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1667 }]);
      expect(await bobsCount(gh)).toEqual({ stdout: '1667', stderr: '' });
    } finally {
      await bob.end();
    }
  });

  it('ten wrong passwords in a row (throttled from the sixth) do not affect a concurrent good session', async () => {
    const bob = await pgClient(gh, 'bob@acme.example');
    let stop = false;
    let served = 0;
    const failures: string[] = [];
    const loop = (async () => {
      while (!stop) {
        try {
          const r = await bob.query('SELECT count(*)::int AS n FROM orders');
          if (r.rows[0].n === 1667) served++;
          else failures.push(JSON.stringify(r.rows));
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    })();
    try {
      const started = performance.now();
      for (let i = 0; i < 10; i++) {
        const r = await psql(gh, 'bob@acme.example', 'SELECT 1', { password: `wrong-${i}` });
        expect(r.code).not.toBe(0);
        // The sign-in throttle (server.sign_in_throttle, 5 per user by default) refuses from the sixth on.
        if (i < 5) expect(r.stderr).toMatch(/FATAL: {2}password authentication failed for user "bob@acme.example"/);
        else expect(r.stderr).toMatch(/FATAL: {2}too many failed sign-ins for this user or address; wait \d+ seconds?/);
      }
      const ms = performance.now() - started;
      stop = true;
      await loop;
      console.log(`10 wrong passwords in ${ms.toFixed(0)} ms; meanwhile bob's session answered ${served} queries`);
      expect(failures).toEqual([]);
      expect(served).toBeGreaterThan(10);
      // New sign-ins as bob are locked out for now (even with the right password), his open session is not.
      expect((await bobsCount(gh)).stderr).toMatch(/too many failed sign-ins for this user or address/);
      expect((await bob.query('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBe(1667);
    } finally {
      stop = true;
      await loop;
      await bob.end();
    }
  });
});
