import { describe, expect, it } from 'vitest';
import {
  BackendFramer,
  commandTag,
  dataRowValues,
  errorFields,
  extendedMessage,
  frame,
  FramingError,
  messages,
  MSG,
  queryMessage,
  readyStatus,
  visitMessages,
} from '../../../src/warehouses/pg-framing.ts';
import { FrontendDecoder } from '../../../src/wire/decode.ts';
import type { Bind, ExtendedStep } from '../../../src/wire/messages.ts';

function dataRow(values: (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0, values.length])];
  for (const v of values) {
    const len = Buffer.alloc(4);
    if (v === null) len.writeInt32BE(-1);
    else len.writeInt32BE(Buffer.byteLength(v));
    parts.push(len);
    if (v !== null) parts.push(Buffer.from(v));
  }
  return frame(MSG.DataRow, Buffer.concat(parts));
}
const stream = Buffer.concat([
  dataRow(['1', 'a\tb', null]),
  frame(MSG.ParameterStatus, Buffer.from('TimeZone\0UTC\0')),
  dataRow(['ünï', '']),
  frame(MSG.CommandComplete, Buffer.from('SELECT 2\0')),
  frame(MSG.ReadyForQuery, Buffer.from('I')),
]);

function collect(chunks: Buffer[]) {
  const f = new BackendFramer();
  const out: { kind: 'run' | 'msg'; type?: number; bytes: Buffer }[] = [];
  for (const c of chunks) {
    visitMessages(f.feed(c), {
      consumes: (t) => t === MSG.ParameterStatus || t === MSG.ReadyForQuery,
      run: (b) => out.push({ kind: 'run', bytes: Buffer.from(b) }),
      message: (type, body) => out.push({ kind: 'msg', type, bytes: Buffer.from(body) }),
    });
  }
  expect(f.pending).toBe(0);
  return out;
}

describe('backend framing', () => {
  it('splits whole messages and batches the relayed ones', () => {
    const out = collect([stream]);
    expect(out.map((o) => o.kind)).toEqual(['run', 'msg', 'run', 'msg']);
    expect(readyStatus(out[3].bytes)).toBe('I');
    expect(Buffer.concat([out[0].bytes, out[2].bytes]).length).toBe(stream.length - 18 - 6);
  });

  it('gives the same relayed bytes and messages whatever the split (every byte position, and two cuts)', () => {
    const whole = collect([stream]);
    const relayed = Buffer.concat(whole.filter((o) => o.kind === 'run').map((o) => o.bytes));
    const consumed = whole.filter((o) => o.kind === 'msg').map((o) => o.bytes.toString('hex'));
    for (let i = 0; i <= stream.length; i++) {
      for (const j of [i, Math.min(stream.length, i + 1), Math.min(stream.length, i + 7)]) {
        const out = collect([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
        expect(Buffer.concat(out.filter((o) => o.kind === 'run').map((o) => o.bytes)).equals(relayed)).toBe(true);
        expect(out.filter((o) => o.kind === 'msg').map((o) => o.bytes.toString('hex'))).toEqual(consumed);
      }
    }
  });

  it('relays only whole messages even when fed one byte at a time', () => {
    const f = new BackendFramer();
    for (let i = 0; i < stream.length; i++) {
      const got = f.feed(stream.subarray(i, i + 1));
      for (const m of messages(got)) expect(m.frame.length).toBe(1 + m.frame.readInt32BE(1));
    }
  });

  it('rejects an impossible length', () => {
    const f = new BackendFramer();
    expect(() => f.feed(Buffer.from([0x44, 0, 0, 0, 2]))).toThrow(FramingError);
  });

  it('decodes the few messages Gatehouse reads itself', () => {
    const [d] = [...messages(dataRow(['x', null, '']))];
    expect(dataRowValues(d.body)).toEqual(['x', null, '']);
    expect(commandTag(Buffer.from('SELECT 5\0'))).toBe('SELECT 5');
    expect(errorFields(Buffer.from('SERROR\0C42501\0Mno\0\0'))).toEqual({ S: 'ERROR', C: '42501', M: 'no' });
    expect(queryMessage('select 1').toString('latin1')).toBe('Q\0\0\0\rselect 1\0');
    expect(() => queryMessage('a\0b')).toThrow(FramingError);
  });
});

describe('extended messages relayed in the frame they came in', () => {
  const startup = Buffer.from([0, 0, 0, 9, 0, 3, 0, 0, 0]);
  function decodeAll(bytes: Buffer): ExtendedStep[] {
    const d = new FrontendDecoder();
    d.push(startup);
    d.next();
    d.push(bytes);
    const out: ExtendedStep[] = [];
    for (let m = d.next(); m; m = d.next()) out.push(m as ExtendedStep);
    return out;
  }
  const steps: ExtendedStep[] = [
    { type: 'Parse', name: 'P0_1', query: 'SELECT $1::int', paramTypes: [23] },
    { type: 'Bind', portal: 'pé', statement: 'P0_1', paramFormats: [0, 1], params: [Buffer.from('12345'), null], resultFormats: [1] },
    { type: 'Describe', kind: 'P', name: 'pé' },
    { type: 'Execute', portal: 'pé', maxRows: 10 },
    { type: 'Close', kind: 'S', name: 'P0_1' },
  ];
  const wire = Buffer.concat(steps.map(extendedMessage));

  it('gives back exactly the bytes the client sent, for every message kind', () => {
    const decoded = decodeAll(wire);
    expect(decoded.map((m) => m.type)).toEqual(['Parse', 'Bind', 'Describe', 'Execute', 'Close']);
    expect(Buffer.concat(decoded.map(extendedMessage)).equals(wire)).toBe(true);
  });
  it('encodes a message Gatehouse changed from its fields, never from the old frame', () => {
    const [parse, bind, , , close] = decodeAll(wire);
    const renamed = extendedMessage({ ...(bind as Bind), statement: 'gatehouse_1' });
    expect(renamed.includes(Buffer.from('gatehouse_1\0'))).toBe(true);
    expect(renamed.includes(Buffer.from('P0_1\0'))).toBe(false);
    expect(extendedMessage({ ...(close as ExtendedStep & { type: 'Close' }), name: 'other' }).includes(Buffer.from('other\0'))).toBe(true);
    // A Parse is always written from its (decided) text.
    const decided = extendedMessage({ ...(parse as ExtendedStep & { type: 'Parse' }), query: 'SELECT 2' });
    expect(decided.includes(Buffer.from('SELECT 2\0'))).toBe(true);
    expect(decided.includes(Buffer.from('SELECT $1::int'))).toBe(false);
  });
});
