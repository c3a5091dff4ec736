import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors.ts';
import { FrontendDecoder, decodeSASLInitialResponse, decodeSASLResponse } from '../../../src/wire/decode.ts';
import type { FrontendMessage } from '../../../src/wire/messages.ts';

// Frontend bytes come from pg-protocol's own client serializer: an independent encoder.
const startupStream = Buffer.concat([serialize.requestSsl(), serialize.startup({ user: 'bob@acme.example', database: 'warehouse', application_name: 'psql' })]);

const typedStream = Buffer.concat([
  serialize.password('ignored-body'),
  serialize.query("select 1; select 'é'"),
  serialize.query(''),
  serialize.parse({ name: 's1', text: 'select $1::int', types: [23] }),
  serialize.bind({ portal: 'p', statement: 's1', values: ['1', null] }),
  serialize.describe({ type: 'P', name: 'p' }),
  serialize.execute({ portal: 'p', rows: 10 }),
  serialize.flush(),
  serialize.sync(),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.copyData(Buffer.from('1\tx\n')),
  serialize.copyDone(),
  serialize.copyFail('client gave up'),
  serialize.end(),
]);

const expectedTyped: FrontendMessage[] = [
  { type: 'PasswordMessage', body: Buffer.from('ignored-body\0') },
  { type: 'Query', sql: "select 1; select 'é'" },
  { type: 'Query', sql: '' },
  { type: 'Parse', name: 's1', query: 'select $1::int', paramTypes: [23] },
  { type: 'Bind', portal: 'p', statement: 's1', paramFormats: [0, 0], params: [Buffer.from('1'), null], resultFormats: [0] },
  { type: 'Describe', kind: 'P', name: 'p' },
  { type: 'Execute', portal: 'p', maxRows: 10 },
  { type: 'Flush' },
  { type: 'Sync' },
  { type: 'Close', kind: 'S', name: 's1' },
  { type: 'CopyData', data: Buffer.from('1\tx\n') },
  { type: 'CopyDone' },
  { type: 'CopyFail', message: 'client gave up' },
  { type: 'Terminate' },
];

const expectedStartup: FrontendMessage[] = [
  { type: 'SSLRequest' },
  {
    type: 'StartupMessage',
    protocolVersion: 196608,
    params: { user: 'bob@acme.example', database: 'warehouse', application_name: 'psql', client_encoding: 'UTF8' },
  },
];

function drain(d: FrontendDecoder): FrontendMessage[] {
  const out: FrontendMessage[] = [];
  for (let m = d.next(); m; m = d.next()) out.push(m);
  return out;
}

/** Feeds the stream in pieces cut at the given positions. */
function decodeCut(stream: Buffer, cuts: number[]): FrontendMessage[] {
  const d = new FrontendDecoder();
  const out: FrontendMessage[] = [];
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    d.push(stream.subarray(prev, c));
    out.push(...drain(d));
    prev = c;
  }
  expect(d.bufferedBytes).toBe(0);
  return out;
}

const whole = Buffer.concat([startupStream, typedStream]);
const expected = [...expectedStartup, ...expectedTyped];

describe('FrontendDecoder framing', () => {
  it('decodes the whole stream in one chunk', () => {
    expect(decodeCut(whole, [])).toEqual(expected);
  });

  it('decodes the same messages with the stream cut at every byte position', () => {
    for (let i = 1; i < whole.length; i++) {
      expect(decodeCut(whole, [i]), `cut at ${i}`).toEqual(expected);
    }
  });

  it('decodes the same messages with every message cut at every pair of positions', () => {
    // Two cuts at once, within each message: exercises reassembly across three chunks.
    let offset = startupStream.length;
    const frames: Buffer[] = [];
    for (let o = 0; o < typedStream.length; ) {
      const len = typedStream.readInt32BE(o + 1) + 1;
      frames.push(typedStream.subarray(o, o + len));
      o += len;
    }
    for (const f of frames) {
      for (let a = 1; a < f.length; a++) {
        for (let b = a; b < f.length; b++) {
          expect(decodeCut(whole, [offset + a, offset + b])).toEqual(expected);
        }
      }
      offset += f.length;
    }
  });

  it('decodes one byte at a time', () => {
    const cuts = Array.from({ length: whole.length - 1 }, (_, i) => i + 1);
    expect(decodeCut(whole, cuts)).toEqual(expected);
  });

  it('decodes CancelRequest and GSSENCRequest', () => {
    const d = new FrontendDecoder();
    d.push(serialize.cancel(1234, -5678));
    expect(d.next()).toEqual({ type: 'CancelRequest', processId: 1234, secretKey: -5678 });
    const g = new FrontendDecoder();
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(80877104, 4);
    g.push(b);
    expect(g.next()).toEqual({ type: 'GSSENCRequest' });
    expect(g.inStartupPhase).toBe(true);
  });

  it('reports an unsupported protocol version as a StartupMessage with that version', () => {
    const b = Buffer.alloc(9);
    b.writeInt32BE(9, 0);
    b.writeInt32BE(2 << 16, 4);
    const d = new FrontendDecoder();
    d.push(b);
    expect(d.next()).toEqual({ type: 'StartupMessage', protocolVersion: 2 << 16, params: {} });
  });
});

function typedDecoder(max?: number): FrontendDecoder {
  const d = new FrontendDecoder({ maxMessageBytes: max });
  d.push(serialize.startup({ user: 'u' }));
  expect(d.next()?.type).toBe('StartupMessage');
  return d;
}

function frame(type: string, body: Buffer, len = body.length + 4): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeInt32BE(len, 1);
  return Buffer.concat([h, body]);
}

function fatalOf(f: () => unknown): GatehouseError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GatehouseError);
    return e as GatehouseError;
  }
  throw new Error('expected a throw');
}

describe('FrontendDecoder refuses bad frames', () => {
  it('refuses a declared length above maxMessageBytes from the header alone', () => {
    const d = typedDecoder(1024);
    // Only the 5-byte header: the decoder must not wait for (or allocate) the 2 GB it claims.
    d.push(frame('Q', Buffer.alloc(0), 0x7ffffff0));
    const e = fatalOf(() => d.next());
    expect([e.sqlstate, e.severity, e.message]).toEqual(['08P01', 'FATAL', 'message too large']);
  });

  it('refuses a declared length below 4 (and negative)', () => {
    for (const len of [3, 0, -1]) {
      const d = typedDecoder();
      d.push(frame('Q', Buffer.alloc(0), len));
      expect(fatalOf(() => d.next()).message).toBe('invalid message length');
    }
  });

  it('names an unknown type byte', () => {
    const d = typedDecoder();
    d.push(frame('z', Buffer.alloc(0)));
    expect(fatalOf(() => d.next()).message).toBe("invalid frontend message type 'z' (0x7a)");
    const d2 = typedDecoder();
    d2.push(frame('\x00', Buffer.alloc(0)));
    expect(fatalOf(() => d2.next()).message).toBe('invalid frontend message type (0x00)');
  });

  it('refuses oversized and undersized startup packets', () => {
    for (const len of [4, 7, 10_001, 0x7fffffff]) {
      const d = new FrontendDecoder();
      const b = Buffer.alloc(8);
      b.writeInt32BE(len, 0);
      b.writeInt32BE(196608, 4);
      d.push(b);
      expect(fatalOf(() => d.next()).message).toMatch(/invalid length of startup packet/);
    }
  });

  it('refuses a startup packet whose parameters are not NUL-terminated', () => {
    const body = Buffer.from('\x00\x03\x00\x00user\x00bob');
    const d = new FrontendDecoder();
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length + 4);
    d.push(Buffer.concat([len, body]));
    expect(fatalOf(() => d.next()).sqlstate).toBe('08P01');
  });

  it('refuses an HTTP request sent to the port', () => {
    const d = new FrontendDecoder();
    d.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(fatalOf(() => d.next()).sqlstate).toBe('08P01');
  });
});

describe('malformed bodies keep the stream in step', () => {
  it('a Query without a NUL terminator is a MalformedMessage, and the next message still decodes', () => {
    const d = typedDecoder();
    d.push(Buffer.concat([frame('Q', Buffer.from('select 1')), serialize.query('select 2')]));
    const m = d.next();
    expect(m?.type).toBe('MalformedMessage');
    if (m?.type !== 'MalformedMessage') return;
    expect([m.code, m.error.sqlstate, m.error.severity]).toEqual(['Q', '08P01', 'ERROR']);
    expect(d.next()).toEqual({ type: 'Query', sql: 'select 2' });
  });

  it('a Query with bytes after its NUL, or invalid UTF-8, is malformed', () => {
    for (const body of [Buffer.from('select 1\0x\0'), Buffer.from([0x73, 0xff, 0xfe, 0])]) {
      const d = typedDecoder();
      d.push(frame('Q', body));
      expect(d.next()?.type).toBe('MalformedMessage');
    }
  });

  it('a Bind whose parameter length runs past the message is malformed', () => {
    const body = Buffer.from([0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
    const d = typedDecoder();
    d.push(frame('B', body));
    const m = d.next();
    expect(m?.type === 'MalformedMessage' && m.code).toBe('B');
  });
});

describe('SASL bodies', () => {
  it('reads SASLInitialResponse and SASLResponse', () => {
    const init = serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=abc');
    expect(decodeSASLInitialResponse(init.subarray(5))).toEqual({
      type: 'SASLInitialResponse',
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=*,r=abc'),
    });
    const fin = serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz');
    expect(decodeSASLResponse(fin.subarray(5)).data.toString()).toBe('c=biws,r=abc,p=xyz');
  });

  it('a cleartext password body is not a SASLInitialResponse', () => {
    expect(() => decodeSASLInitialResponse(serialize.password('secret').subarray(5))).toThrow(GatehouseError);
  });
});

describe('random input', () => {
  it('never throws anything but a GatehouseError, in either phase', () => {
    // A small deterministic PRNG so a failure is reproducible.
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let round = 0; round < 2000; round++) {
      const d = round % 2 === 0 ? new FrontendDecoder({ maxMessageBytes: 4096 }) : typedDecoder(4096);
      const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
      // Bias towards plausible type bytes and small lengths so bodies get decoded too.
      if (round % 4 === 1) {
        bytes[0] = 'QXpPBDESHCdcfF'.charCodeAt(Math.floor(rand() * 14));
        if (bytes.length >= 5) bytes.writeInt32BE(bytes.length - 1, 1);
      }
      d.push(bytes);
      try {
        for (let i = 0; i < 100 && d.next(); i++);
      } catch (e) {
        expect(e).toBeInstanceOf(GatehouseError);
        expect((e as GatehouseError).sqlstate).toBe('08P01');
      }
    }
  });
});
