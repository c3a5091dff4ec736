// An attacker probing which emails exist: every spelling that finds a user (or finds
// nobody) must get the same SCRAM exchange. The salt and iteration count of the
// server-first message, and the failure that follows a wrong proof, must not differ
// between a known and an unknown name, nor between spellings of one unknown name.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRules } from '../../../src/config/load.ts';
import { Gateway } from '../../../src/gateway.ts';
import { Directory } from '../../../src/identity/directory.ts';
import { formatVerifier, makeVerifier } from '../../../src/identity/scram.ts';
import { cstring, errorFields, frame, MSG } from '../../../src/warehouses/pg-framing.ts';
import { startWireServer, type WireServer } from '../../../src/wire/server.ts';
import { DEMO_RULES } from '../../helpers/gatehouse.ts';

interface Exchange {
  salt: string;
  iterations: number;
  serverNonceLength: number;
  failure: { S?: string; C?: string; M?: string };
  ms: number;
}

/** Startup, SASLInitialResponse, then a well-formed but wrong proof: what the server answered at each step. */
async function probe(port: number, user: string): Promise<Exchange> {
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((r, j) => s.once('connect', () => r()).once('error', j));
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  s.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (): Promise<{ type: number; body: Buffer }> => {
    for (;;) {
      if (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const len = buf.readInt32BE(1);
        const m = { type: buf[0], body: Buffer.from(buf.subarray(5, 1 + len)) };
        buf = buf.subarray(1 + len);
        return m;
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const head = Buffer.alloc(8);
  head.writeInt32BE(196608, 4);
  const startup = Buffer.concat([head, cstring('user'), cstring(user), cstring('database'), cstring('warehouse'), Buffer.from([0])]);
  startup.writeInt32BE(startup.length, 0);
  s.write(startup);
  const sasl = await next();
  expect(sasl.type).toBe(MSG.Authentication);
  expect(sasl.body.readInt32BE(0)).toBe(10);
  const clientNonce = 'fixednonce0123456789abcd';
  const first = Buffer.from(`n,,n=*,r=${clientNonce}`);
  const len = Buffer.alloc(4);
  len.writeInt32BE(first.length);
  s.write(frame(0x70, Buffer.concat([cstring('SCRAM-SHA-256'), len, first])));
  const cont = await next();
  expect(cont.body.readInt32BE(0)).toBe(11);
  const attrs = Object.fromEntries(
    cont.body
      .subarray(4)
      .toString('utf8')
      .split(',')
      .map((p) => [p[0], p.slice(2)]),
  );
  const t0 = process.hrtime.bigint();
  s.write(frame(0x70, Buffer.from(`c=biws,r=${attrs.r},p=${Buffer.alloc(32, 7).toString('base64')}`)));
  const err = await next();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  s.destroy();
  expect(err.type).toBe(MSG.ErrorResponse);
  const f = errorFields(err.body);
  return {
    salt: attrs.s,
    iterations: Number(attrs.i),
    serverNonceLength: attrs.r.length - clientNonce.length,
    failure: { S: f.S, C: f.C, M: f.M?.replace(user, '<user>') },
    ms,
  };
}

/** The demo rules with every verifier at 8192 iterations: a mock at 4096 would stand out. */
function rulesWithIterations(iterations: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rules-'));
  cpSync(DEMO_RULES, dir, { recursive: true });
  const org = join(dir, 'acme/org.yaml');
  writeFileSync(
    org,
    readFileSync(org, 'utf8').replace(/SCRAM-SHA-256\$[^\s]+/g, () => formatVerifier(makeVerifier('gatehouse-demo', iterations))),
  );
  return dir;
}

describe('an unknown user gets the same SCRAM exchange as a known one', () => {
  let server: WireServer;
  beforeAll(async () => {
    const rules = loadRules(rulesWithIterations(8192));
    const logger = pino({ level: 'silent' });
    // No warehouse is started: sign-in is all this test exercises.
    const gateway = new Gateway(rules, logger, { statement: () => {}, event: () => {} }, mkdtempSync(join(tmpdir(), 'gatehouse-state-')));
    server = await startWireServer({ host: '127.0.0.1', port: 0, handler: gateway, logger });
  });
  afterAll(async () => server?.close());

  it('spellings of one unknown name get one salt, as spellings of a known name do', async () => {
    const known = await Promise.all(['bob@acme.example', 'BOB@acme.example', 'Bob@ACME.example', ' bob@acme.example '].map((u) => probe(server.port, u)));
    expect(new Set(known.map((e) => e.salt)).size).toBe(1);
    for (const variants of [
      ['nobody@x', 'NOBODY@x', 'NoBody@X', ' nobody@x', 'nobody@x\t'],
      ['mallory@acme.example', 'MALLORY@ACME.EXAMPLE', 'Mallory@Acme.Example  '],
      ['émile@acme.example', 'ÉMILE@acme.example', 'Émile@ACME.example'],
    ]) {
      const got = await Promise.all(variants.map((u) => probe(server.port, u)));
      expect(new Set(got.map((e) => e.salt)).size, `salts of ${variants.join(' | ')}`).toBe(1);
    }
    // Different unknown names still get different salts (a constant salt would itself tell).
    const [a, b] = await Promise.all([probe(server.port, 'nobody@x'), probe(server.port, 'somebody@x')]);
    expect(a.salt).not.toBe(b.salt);
  });

  it("the iteration count, salt length, nonce and failure are the known users' own", async () => {
    const known = await probe(server.port, 'BOB@acme.example');
    expect(known.iterations).toBe(8192);
    for (const u of ['nobody@x', 'NOBODY@acme.example', 'dave2@acme.example']) {
      const unknown = await probe(server.port, u);
      expect(unknown.iterations).toBe(known.iterations);
      expect(Buffer.from(unknown.salt, 'base64').length).toBe(Buffer.from(known.salt, 'base64').length);
      expect(unknown.serverNonceLength).toBe(known.serverNonceLength);
      expect(unknown.failure).toEqual(known.failure);
    }
  });

  it('a wrong proof fails as fast for an unknown name as for a known one (no extra work either way)', async () => {
    const median = async (u: string) => {
      const ms: number[] = [];
      for (let i = 0; i < 15; i++) ms.push((await probe(server.port, u)).ms);
      return ms.sort((x, y) => x - y)[7];
    };
    const known = await median('bob@acme.example');
    const unknown = await median('nobody@acme.example');
    // Loose bound: the machine is shared; a PBKDF2 at 8192 iterations on one side only would be several ms.
    expect(Math.abs(known - unknown)).toBeLessThan(Math.max(5, known));
  });
});

describe('Directory', () => {
  it('derives the mock from the same normalised name it looks users up by', () => {
    const d = new Directory(loadRules(DEMO_RULES), randomBytes(32));
    const salt = (u: string) => d.verifierFor(u).verifier.salt.toString('base64');
    expect(salt('NOBODY@x')).toBe(salt('nobody@x'));
    expect(salt(' NoBody@X ')).toBe(salt('nobody@x'));
    expect(d.verifierFor('BOB@acme.example').known).toBe(true);
    expect(salt('BOB@acme.example')).toBe(salt('bob@acme.example'));
  });
});
