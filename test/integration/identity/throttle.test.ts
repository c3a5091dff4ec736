// Brute force (issue 14) with real clients: the pg driver and psql type wrong passwords until
// Gatehouse throttles them. Each case comes from its own loopback address (127.0.0.x: every
// address of 127/8 is this machine's), so the per-address tallies of one case do not reach
// another; psql cannot choose its source address and uses 127.0.0.1 alone.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../../src/serve.ts';
import { cstring, errorFields, frame, MSG } from '../../../src/warehouses/pg-framing.ts';
import { DEMO_PASSWORD, DEMO_RULES } from '../../helpers/gatehouse.ts';
import { startupMessage } from '../../helpers/raw-client.ts';

const THROTTLE = `  sign_in_throttle:
    max_failures_per_user: 3
    max_failures_per_address: 12
    failure_window: 1min
    lockout: 2s
    max_lockout: 4s
    max_pending_per_address: 6
    max_tracked: 40
`;

let gh: RunningGatehouse;
let auditPath: string;
let rulesDir: string;

beforeAll(async () => {
  rulesDir = mkdtempSync(join(tmpdir(), 'gatehouse-throttle-rules-'));
  cpSync(DEMO_RULES, rulesDir, { recursive: true });
  // acme alone: globex's embedded warehouse would be a second server started for nothing.
  rmSync(join(rulesDir, 'globex'), { recursive: true, force: true });
  const yaml = readFileSync(join(rulesDir, 'gatehouse.yaml'), 'utf8');
  writeFileSync(join(rulesDir, 'gatehouse.yaml'), `${yaml.trimEnd()}\n${THROTTLE}`);
  auditPath = join(mkdtempSync(join(tmpdir(), 'gatehouse-throttle-audit-')), 'audit.jsonl');
  gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, auditPath, logger: pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'silent' }) });
}, 120_000);
afterAll(async () => gh?.close());

/** A pg client whose connection comes from `from` (a loopback address). */
function client(user: string, password: string, from: string): pg.Client {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: gh.port,
    user,
    password,
    database: 'warehouse',
    stream: () => {
      const s = new net.Socket();
      const connect = s.connect.bind(s) as (o: net.TcpNetConnectOpts) => net.Socket;
      (s as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port, host) => connect({ port, host, localAddress: from });
      return s;
    },
  });
  c.on('error', () => {});
  return c;
}

/** Signs in and runs one query: its rows, or the error's code and message (and how long the refusal took). */
async function signIn(user: string, password: string, from: string): Promise<{ ok?: string; code?: string; message?: string; ms: number }> {
  const c = client(user, password, from);
  const t0 = performance.now();
  try {
    await c.connect();
    const r = await c.query('SELECT DISTINCT region FROM orders ORDER BY 1');
    return { ok: r.rows.map((x) => x.region).join(','), ms: performance.now() - t0 };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: err.code, message: err.message, ms: performance.now() - t0 };
  } finally {
    await c.end().catch(() => {});
  }
}

async function audit(type: string): Promise<Record<string, unknown>[]> {
  await new Promise((r) => setTimeout(r, 150)); // the audit file writes behind by 20 ms
  if (!existsSync(auditPath)) return [];
  return readFileSync(auditPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.type === type);
}

const THROTTLED = /^too many failed sign-ins for this user or address; wait \d seconds?$/;

describe('the pg driver', () => {
  it('wrong passwords until throttled (28P01, before any password is asked); another user from another address is served meanwhile', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await signIn('BOB@acme.example', 'wrong', '127.0.0.3')).toMatchObject({
        code: '28P01',
        message: 'password authentication failed for user "BOB@acme.example"',
      });
    }
    // The right password no longer helps: the attempt is refused at the StartupMessage.
    const locked = await signIn('bob@acme.example', DEMO_PASSWORD, '127.0.0.3');
    expect(locked.code).toBe('28P01');
    expect(locked.message).toMatch(THROTTLED);
    // Per user: another address does not unlock bob.
    expect((await signIn('bob@acme.example', DEMO_PASSWORD, '127.0.0.4')).message).toMatch(THROTTLED);
    // Another user from another address is unaffected.
    expect(await signIn('erin@acme.example', DEMO_PASSWORD, '127.0.0.4')).toMatchObject({ ok: 'AMER,APAC,EMEA' });

    const records = (await audit('auth_throttled')).filter((r) => r.remoteAddress === '127.0.0.3');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ user: 'bob@acme.example', org: 'acme', limit: 'sign_in_failures', by: ['user'], user_failures: 3, address_failures: 3 });
    expect(JSON.stringify(await audit('auth_throttled'))).not.toContain(DEMO_PASSWORD);

    // After the lockout (2 s) bob signs in, and that forgets his failures: two more wrong ones are not throttled.
    await new Promise((r) => setTimeout(r, 2100));
    expect(await signIn('bob@acme.example', DEMO_PASSWORD, '127.0.0.3')).toMatchObject({ ok: 'EMEA' });
    for (let i = 0; i < 2; i++) expect((await signIn('bob@acme.example', 'wrong', '127.0.0.5')).message).toMatch(/^password authentication failed/);
    expect(await signIn('bob@acme.example', DEMO_PASSWORD, '127.0.0.5')).toMatchObject({ ok: 'EMEA' });
  });

  it('an unknown user is throttled exactly as a known one: the same messages at the same counts', async () => {
    const run = async (user: string, from: string) => {
      const out: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await signIn(user, i === 4 ? DEMO_PASSWORD : 'wrong', from);
        out.push(`${r.code} ${r.message?.replaceAll(user, '<user>')}`);
      }
      return out;
    };
    const known = await run('grace@acme.example', '127.0.0.6');
    const unknown = await run('ghost@acme.example', '127.0.0.7');
    expect(unknown).toEqual(known);
    expect(known.slice(0, 3)).toEqual(Array(3).fill('28P01 password authentication failed for user "<user>"'));
    expect(known[3]).toMatch(/^28P01 too many failed sign-ins for this user or address; wait \d seconds?$/);
    const records = (await audit('auth_throttled')).filter((r) => r.remoteAddress === '127.0.0.6' || r.remoteAddress === '127.0.0.7');
    expect(records.map((r) => [r.user, r.user_failures, r.by])).toEqual([
      ['grace@acme.example', 3, ['user']],
      ['grace@acme.example', 3, ['user']],
      ['ghost@acme.example', 3, ['user']],
      ['ghost@acme.example', 3, ['user']],
    ]);
  });

  it('an address cycling through names is throttled whatever name it tries next, and only that address', async () => {
    for (let i = 0; i < 12; i++) expect((await signIn(`guess${i}@acme.example`, 'wrong', '127.0.0.8')).code).toBe('28P01');
    expect((await signIn('carol@acme.example', DEMO_PASSWORD, '127.0.0.8')).message).toMatch(THROTTLED);
    expect(await signIn('carol@acme.example', DEMO_PASSWORD, '127.0.0.9')).toMatchObject({ ok: expect.stringContaining('EMEA') });
    const rec = (await audit('auth_throttled')).find((r) => r.remoteAddress === '127.0.0.8');
    expect(rec).toMatchObject({ user: 'carol@acme.example', by: ['address'], address_failures: 12 });
  });
});

describe('psql', () => {
  it("prints the throttle's FATAL after wrong passwords, and no password prompt", async () => {
    const psql = (password: string) =>
      new Promise<{ code: number; stderr: string }>((done) =>
        execFile(
          'psql',
          [
            '-X',
            '-w',
            '-A',
            '-t',
            '-c',
            'SELECT 1',
            `host=127.0.0.1 port=${gh.port} dbname=warehouse user=frank@acme.example sslmode=disable connect_timeout=10`,
          ],
          { env: { ...process.env, PGPASSWORD: password }, timeout: 30_000 },
          (err, _out, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        ),
      );
    for (let i = 0; i < 3; i++) expect((await psql('wrong')).stderr).toMatch(/password authentication failed for user "frank@acme.example"/);
    const r = await psql(DEMO_PASSWORD);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL: {2}too many failed sign-ins for this user or address; wait \d seconds?/);
  });
});

/** One fast failed sign-in from `from` with a raw socket: startup, SCRAM first message, a wrong proof. */
async function rawFailure(user: string, from: string): Promise<void> {
  const s = net.connect({ port: gh.port, host: '127.0.0.1', localAddress: from });
  s.on('error', () => {});
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  s.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    waiters.splice(0).forEach((w) => w());
  });
  const next = async () => {
    for (;;) {
      if (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const m = { type: buf[0], body: Buffer.from(buf.subarray(5, 1 + buf.readInt32BE(1))) };
        buf = buf.subarray(1 + buf.readInt32BE(1));
        return m;
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  s.write(startupMessage({ user, database: 'warehouse' }));
  const first = await next();
  if (first.type !== MSG.Authentication) throw new Error(`refused: ${errorFields(first.body).M}`);
  const clientFirst = Buffer.from('n,,n=*,r=abcdefghijklmnopqrstuvwx');
  const len = Buffer.alloc(4);
  len.writeInt32BE(clientFirst.length);
  s.write(frame(0x70, Buffer.concat([cstring('SCRAM-SHA-256'), len, clientFirst])));
  const cont = await next();
  const nonce = /r=([^,]+)/.exec(cont.body.subarray(4).toString())![1];
  s.write(frame(0x70, Buffer.from(`c=biws,r=${nonce},p=${Buffer.alloc(32).toString('base64')}`)));
  const err = await next();
  expect(errorFields(err.body).C).toBe('28P01');
  s.destroy();
}

describe('memory and floods', () => {
  it('cycling through 300 unknown names from 100 addresses keeps the tables within max_tracked (40)', async () => {
    for (let i = 0; i < 300; i++) await rawFailure(`cycle${i}@nowhere.example`, `127.0.1.${1 + (i % 100)}`);
    expect(gh.throttle.size.users).toBeLessThanOrEqual(40);
    expect(gh.throttle.size.addresses).toBeLessThanOrEqual(40);
    expect(gh.throttle.size.users).toBeGreaterThan(0);
    // The most recent names are remembered: the last one is still counted.
    expect(gh.throttle.size.unfinished).toBe(0);
  });

  it('an address holding max_pending_per_address unfinished connections gets 53300 at once for the next; other addresses sign in', async () => {
    const held: net.Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = net.connect({ port: gh.port, host: '127.0.0.1', localAddress: '127.0.0.30' });
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 100));
    const over = net.connect({ port: gh.port, host: '127.0.0.1', localAddress: '127.0.0.30' });
    over.on('error', () => {});
    const got: Buffer[] = [];
    over.on('data', (c: Buffer) => got.push(c));
    await new Promise<void>((r) => over.once('close', () => r()));
    const reply = Buffer.concat(got);
    expect(reply[0]).toBe(MSG.ErrorResponse);
    expect(errorFields(reply.subarray(5, 1 + reply.readInt32BE(1)))).toMatchObject({
      S: 'FATAL',
      C: '53300',
      M: 'too many connections from this address are still signing in (limit 6)',
    });
    // The pg driver sees the same refusal as its error.
    expect(await signIn('erin@acme.example', DEMO_PASSWORD, '127.0.0.30')).toMatchObject({ code: '53300' });
    expect(await signIn('erin@acme.example', DEMO_PASSWORD, '127.0.0.31')).toMatchObject({ ok: 'AMER,APAC,EMEA' });
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(await signIn('erin@acme.example', DEMO_PASSWORD, '127.0.0.30')).toMatchObject({ ok: 'AMER,APAC,EMEA' });
    const rec = (await audit('auth_throttled')).filter((r) => r.remoteAddress === '127.0.0.30');
    expect(rec[0]).toMatchObject({ limit: 'max_pending_per_address', pending: 6 });
  });
});
