// Docs and code agree by test: every SQLSTATE Gatehouse can send is documented, and nothing else is.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { SQLSTATES } from '../../src/errors.ts';

it('docs/errors.md lists exactly the SQLSTATEs of src/errors.ts', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([0-9A-Z]{5})` \|/gm)].map((m) => m[1]).sort();
  expect(documented).toEqual(Object.keys(SQLSTATES).sort());
});
