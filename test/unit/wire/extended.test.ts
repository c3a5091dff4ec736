// The extended-query messages Gatehouse forwards upstream are the client's own: encoding a
// decoded batch gives back the same messages, whatever way TCP cut the bytes.
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { extendedMessage } from '../../../src/warehouses/pg-framing.ts';
import { FrontendDecoder } from '../../../src/wire/decode.ts';
import type { ExtendedStep, FrontendMessage } from '../../../src/wire/messages.ts';

const batch: ExtendedStep[] = [
  { type: 'Parse', name: 'S_1', query: 'SELECT region FROM orders WHERE amount > $1 AND id = $2', paramTypes: [1700, 23] },
  { type: 'Bind', portal: 'p', statement: 'S_1', paramFormats: [0, 1], params: [Buffer.from('10.5'), Buffer.from([0, 0, 0, 42])], resultFormats: [1] },
  { type: 'Bind', portal: '', statement: '', paramFormats: [], params: [null], resultFormats: [] },
  { type: 'Describe', kind: 'S', name: 'S_1' },
  { type: 'Describe', kind: 'P', name: 'p' },
  { type: 'Execute', portal: 'p', maxRows: 100 },
  { type: 'Close', kind: 'P', name: 'p' },
  { type: 'Close', kind: 'S', name: 'S_1' },
];

function decodeAll(bytes: Buffer, cut: number): FrontendMessage[] {
  const d = new FrontendDecoder();
  // Skip the startup phase with a minimal StartupMessage.
  d.push(serialize.startup({ user: 'bob@acme.example' }));
  expect(d.next()?.type).toBe('StartupMessage');
  d.push(bytes.subarray(0, cut));
  const out: FrontendMessage[] = [];
  for (let m = d.next(); m; m = d.next()) out.push(m);
  d.push(bytes.subarray(cut));
  for (let m = d.next(); m; m = d.next()) out.push(m);
  return out;
}

describe('extended-query batch on the wire', () => {
  const bytes = Buffer.concat(batch.map(extendedMessage));

  it('decode(encode(batch)) is the batch, cut at every byte', () => {
    for (let cut = 0; cut <= bytes.length; cut++) expect(decodeAll(bytes, cut)).toEqual(batch);
  });

  it("encodes as node-postgres's serializer does (the bytes a real client sends)", () => {
    expect(extendedMessage(batch[0])).toEqual(serialize.parse({ name: 'S_1', text: batch[0].type === 'Parse' ? batch[0].query : '', types: [1700, 23] }));
    expect(extendedMessage(batch[5])).toEqual(serialize.execute({ portal: 'p', rows: 100 }));
    expect(extendedMessage(batch[3])).toEqual(serialize.describe({ type: 'S', name: 'S_1' }));
    expect(extendedMessage(batch[7])).toEqual(serialize.close({ type: 'S', name: 'S_1' }));
  });
});
