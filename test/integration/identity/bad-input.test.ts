// Bad input before and during sign-in (issue 14): malformed startup packets, absurd lengths,
// a 1 MB password, TLS handshake garbage, a plaintext StartupMessage after SSLRequest. Each
// gets a clear error or a closed socket, never a crash, and a session signed in before the
// case (held open across the whole file) runs a query before and after every case.
import { readFileSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../../src/serve.ts';
import { cstring, errorFields, frame, MSG } from '../../../src/warehouses/pg-framing.ts';
import { DEMO_PASSWORD } from '../../helpers/gatehouse.ts';
import { RawClient, readByte, sendRaw, sslRequest, startupMessage, tlsSocket } from '../../helpers/raw-client.ts';
import { makeTestPki, tlsRulesDir } from '../../helpers/tls.ts';

const BOB = 'bob@acme.example';
/** Bad sign-ins use a name nobody has, so bob's own throttle tally stays clean. */
const MALLORY = 'mallory@acme.example';

let gh: RunningGatehouse;
let healthy: pg.Client;
let ca: Buffer;

beforeAll(async () => {
  const pki = await makeTestPki();
  ca = readFileSync(pki.caCert);
  const rules = tlsRulesDir(pki, 'optional');
  rmSync(join(rules, 'globex'), { recursive: true, force: true }); // one embedded warehouse is enough
  gh = await serve({ rulesDir: rules, host: '127.0.0.1', port: 0, adminPort: 0, logger: pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'silent' }) });
  healthy = new pg.Client({ host: '127.0.0.1', port: gh.port, user: BOB, password: DEMO_PASSWORD, database: 'warehouse' });
  await healthy.connect();
}, 180_000);
afterAll(async () => {
  await healthy?.end().catch(() => {});
  await gh?.close();
});

/** The session opened before every case answers, before and after it. */
async function stillHealthy(): Promise<void> {
  const r = await healthy.query("SELECT count(*)::int AS n, string_agg(DISTINCT region, ',') AS r FROM orders");
  expect(r.rows[0].r).toBe('EMEA');
  expect(r.rows[0].n).toBeGreaterThan(0);
}
beforeEach(stillHealthy);
afterEach(stillHealthy);

/** A startup packet with the given length field and body (after the length). */
function packet(length: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeInt32BE(length | 0);
  return Buffer.concat([head, body]);
}
const v3 = () => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(196608);
  return b;
};
const withLength = (body: Buffer) => packet(body.length + 4, body);

describe('malformed startup packets', () => {
  it.each([
    ['a length below 8', packet(4, Buffer.alloc(0))],
    ['a negative length', packet(-1, Buffer.alloc(8))],
    ["a length past PostgreSQL's 10000-byte startup limit", packet(10_001, Buffer.alloc(16))],
    ['an absurd length (2^31-1), with no body sent', packet(0x7fffffff, v3())],
  ])('%s: the socket closes without a reply (PostgreSQL only logs a bad startup length)', async (_what, bytes) => {
    const out = await sendRaw(gh.port, bytes);
    expect(out.closed).toBe(true);
    expect(out.received.length).toBe(0);
  });

  it.each([
    ['parameters without their final NUL', '08P01', withLength(Buffer.concat([v3(), cstring('user'), cstring(BOB)])), /^invalid startup packet layout/],
    ['a name without a value', '08P01', withLength(Buffer.concat([v3(), cstring('user'), Buffer.from([0])])), /^invalid startup packet layout/],
    [
      'a user name that is not UTF-8',
      '08P01',
      withLength(Buffer.concat([v3(), cstring('user'), Buffer.from([0xff, 0xfe, 0x41, 0]), Buffer.from([0])])),
      /not valid UTF-8/,
    ],
    ['no user', '28000', withLength(Buffer.concat([v3(), cstring('database'), cstring('warehouse'), Buffer.from([0])])), /^no user name specified/],
    // (1234.5678 would be the CancelRequest code, 1234.5679 SSLRequest's.)
    [
      'protocol 9.9',
      '0A000',
      (() => {
        const b = startupMessage({ user: BOB });
        b.writeInt32BE((9 << 16) | 9, 4);
        return b;
      })(),
      /^unsupported frontend protocol 9\.9/,
    ],
    ['a CancelRequest of the wrong length', '08P01', withLength(Buffer.from([0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1])), /^invalid length of cancel request packet/],
  ] as const)('%s: FATAL %s, then closed', async (_what, code, bytes, message) => {
    const out = await sendRaw(gh.port, bytes);
    expect(out.closed).toBe(true);
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0].S).toBe('FATAL');
    expect(out.errors[0].C).toBe(code);
    expect(out.errors[0].M).toMatch(message);
  });

  it('half a startup packet, then the client leaves: nothing waits for the rest', async () => {
    const s = await RawClient.socket(gh.port);
    s.write(startupMessage({ user: BOB, database: 'warehouse' }).subarray(0, 11));
    s.destroy();
    await new Promise((r) => setTimeout(r, 100));
  });
});

/** A raw connection that sent its StartupMessage and read the AuthenticationSASL request. */
async function atSasl(): Promise<{ s: net.Socket; reply: () => Promise<Buffer> }> {
  const s = await RawClient.socket(gh.port);
  s.on('error', () => {});
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.write(startupMessage({ user: MALLORY, database: 'warehouse' }));
  for (let i = 0; i < 100 && Buffer.concat(chunks).length < 9; i++) await new Promise((r) => setTimeout(r, 20));
  const sasl = Buffer.concat(chunks.splice(0));
  expect(sasl[0]).toBe(MSG.Authentication);
  return {
    s,
    reply: async () => {
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
      return Buffer.concat(chunks);
    },
  };
}
const firstError = (b: Buffer) => (b[0] === MSG.ErrorResponse ? errorFields(b.subarray(5, 1 + b.readInt32BE(1))) : undefined);

describe('absurd lengths and a 1 MB password', () => {
  it('an authentication message claiming 2^31-1 bytes: FATAL 08P01 at once, without waiting for the body', async () => {
    const { s, reply } = await atSasl();
    const head = Buffer.alloc(5);
    head[0] = 0x70;
    head.writeInt32BE(0x7fffffff, 1);
    s.write(head);
    expect(firstError(await reply())).toMatchObject({ S: 'FATAL', C: '08P01', M: 'message too large' });
  });

  it('a 1 MB SASL answer (a 1 MB password sent as such): FATAL 08P01 from its header alone; before sign-in 64 KiB is the most read', async () => {
    const { s, reply } = await atSasl();
    const big = Buffer.alloc(1024 * 1024, 0x61);
    const len = Buffer.alloc(4);
    len.writeInt32BE(big.length);
    const msg = frame(0x70, Buffer.concat([cstring('SCRAM-SHA-256'), len, big]));
    s.write(msg.subarray(0, 5)); // the header alone: the refusal must not wait for the megabyte
    expect(firstError(await reply())).toMatchObject({ S: 'FATAL', C: '08P01', M: 'message too large' });
  });

  it('a 1 MB password through the pg driver (SCRAM computed by the client): 28P01, as any wrong password', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user: MALLORY, password: 'p'.repeat(1024 * 1024), database: 'warehouse' });
    c.on('error', () => {});
    await expect(c.connect()).rejects.toMatchObject({ code: '28P01', message: `password authentication failed for user "${MALLORY}"` });
  });

  it('after sign-in: a Query claiming 2^31-1 bytes or a length below 4 ends that session with 08P01, no other', async () => {
    for (const len of [0x7fffffff, 2]) {
      const c = await RawClient.connect({ port: gh.port, user: BOB, password: DEMO_PASSWORD });
      const head = Buffer.alloc(5);
      head[0] = 0x51;
      head.writeInt32BE(len, 1);
      const r = await c.query(head);
      expect(r.errors[0]).toMatchObject({ S: 'FATAL', C: '08P01', M: len === 2 ? 'invalid message length' : 'message too large' });
      expect(r.closedEarly).toBe(true);
      await stillHealthy();
    }
  });

  it('a signed-in session may still send large messages (max_message_bytes): the 64 KiB cap is for sign-in only', async () => {
    const c = await RawClient.connect({ port: gh.port, user: BOB, password: DEMO_PASSWORD });
    const r = await c.query(`SELECT length('${'x'.repeat(200_000)}') AS n`, { keepRows: 1 });
    expect(r.errors).toEqual([]);
    expect(r.firstRows).toEqual([['200000']]);
    await c.close();
  });
});

describe('TLS negotiation', () => {
  it('handshake garbage after S: the connection closes', async () => {
    const s = await RawClient.socket(gh.port);
    s.on('error', () => {});
    s.write(sslRequest());
    expect(await readByte(s)).toBe('S');
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), Buffer.alloc(8192, 0xee)]));
    await closed;
  });

  it('garbage that starts like a ClientHello (direct TLS): the connection closes', async () => {
    const out = await sendRaw(gh.port, Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x10]), Buffer.alloc(16, 0x00)]));
    expect(out.closed).toBe(true);
    expect(out.errors).toEqual([]);
  });

  it('a plaintext StartupMessage after S is not read as one: closed, no Authentication request in clear', async () => {
    const s = await RawClient.socket(gh.port);
    s.on('error', () => {});
    s.write(sslRequest());
    expect(await readByte(s)).toBe('S');
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(startupMessage({ user: BOB, database: 'warehouse' }));
    await closed;
    expect(Buffer.concat(got).includes(Buffer.from([MSG.Authentication, 0, 0, 0]))).toBe(false);
  });

  it('a StartupMessage pipelined after SSLRequest (CVE-2021-23214): FATAL 08P01, no S', async () => {
    const out = await sendRaw(gh.port, Buffer.concat([sslRequest(), startupMessage({ user: BOB, database: 'warehouse' })]));
    expect(out.received[0]).not.toBe('S'.charCodeAt(0));
    expect(out.errors[0]).toMatchObject({ S: 'FATAL', C: '08P01', M: 'received unencrypted data after SSL request' });
  });

  it('over TLS, a malformed startup packet and an absurd length are refused as in clear', async () => {
    const t = await tlsSocket(gh.port, { negotiation: 'postgres', ca });
    t.on('error', () => {});
    const got: Buffer[] = [];
    t.on('data', (c: Buffer) => got.push(c));
    const closed = new Promise<void>((r) => t.once('close', () => r()));
    t.write(withLength(Buffer.concat([v3(), cstring('user'), cstring(MALLORY)])));
    await closed;
    expect(firstError(Buffer.concat(got))).toMatchObject({ S: 'FATAL', C: '08P01' });
    // And a session over TLS still signs in and sees bob's rows.
    const c = await RawClient.connect({ port: gh.port, user: BOB, password: DEMO_PASSWORD, tls: { negotiation: 'postgres', ca } });
    const r = await c.query('SELECT DISTINCT region FROM orders', { keepRows: 2 });
    expect(r.firstRows).toEqual([['EMEA']]);
    await c.close();
  });
});

it('the server took none of it personally: a new session signs in', async () => {
  const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user: BOB, password: DEMO_PASSWORD, database: 'warehouse' });
  await c.connect();
  expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  await c.end();
});
