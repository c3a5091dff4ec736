// COPY TO STDOUT lines as the embedded warehouse produces them (PostgreSQL's copyto.c rules).
import { describe, expect, it } from 'vitest';
import { copyHeader, copyLine } from '../../../src/warehouses/embedded.ts';

function row(values: (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0].writeInt16BE(values.length);
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(v === null ? -1 : Buffer.byteLength(v));
    parts.push(len);
    if (v !== null) parts.push(Buffer.from(v));
  }
  return Buffer.concat(parts);
}
const text = { format: 'text' as const, header: false };
const csv = { format: 'csv' as const, header: false };

describe('COPY text format', () => {
  it('escapes backslash and control characters, writes NULL as \\N', () => {
    expect(copyLine(row(['a\\b', 'x\ty', 'l\nm\rn', '\b\f\v', null, '', 'ünï']), text).toString()).toBe(
      'a\\\\b\tx\\ty\tl\\nm\\rn\t\\b\\f\\v\t\\N\t\tünï\n',
    );
  });
  it('escapes a custom delimiter', () => {
    expect(copyLine(row(['a|b', 'c']), { ...text, delimiter: '|' }).toString()).toBe('a\\|b|c\n');
  });
  it('header in text format', () => {
    expect(copyHeader(['id', 'a\tb'], text).toString()).toBe('id\ta\\tb\n');
  });
});

describe('COPY csv format', () => {
  it('quotes only when needed; NULL is an empty unquoted field, empty string is ""', () => {
    expect(copyLine(row(['plain', 'a,b', 'say "hi"', 'l\nm', null, '', '\\.', ' sp ']), csv).toString()).toBe(
      'plain,"a,b","say ""hi""","l\nm",,"","\\.", sp \n',
    );
  });
  it('custom delimiter and header', () => {
    expect(copyLine(row(['a;b', 'c,d']), { ...csv, delimiter: ';' }).toString()).toBe('"a;b";c,d\n');
    expect(copyHeader(['id', 'full name', 'a,b'], csv).toString()).toBe('id,full name,"a,b"\n');
  });
});
