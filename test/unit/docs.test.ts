// Docs and code agree by test: every SQLSTATE Gatehouse can send is documented, and nothing else is;
// every relative link of the docs points at a file (and heading) that exists.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { SQLSTATES } from '../../src/errors.ts';

it('docs/errors.md lists exactly the SQLSTATEs of src/errors.ts', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([0-9A-Z]{5})` \|/gm)].map((m) => m[1]).sort();
  expect(documented).toEqual(Object.keys(SQLSTATES).sort());
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

it('relative links in README.md and docs/*.md point at files (and headings) that exist', () => {
  const root = resolve(import.meta.dirname, '../..');
  const pages = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue;
      const [path, fragment] = target.split('#');
      const file = path === '' ? join(root, page) : resolve(dirname(join(root, page)), path);
      if (!existsSync(file)) {
        broken.push(`${page}: ${target} (no such file)`);
        continue;
      }
      if (fragment !== undefined && file.endsWith('.md')) {
        const headings = [...readFileSync(file, 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1]));
        if (!headings.includes(fragment)) broken.push(`${page}: ${target} (no such heading)`);
      }
    }
  }
  expect(broken).toEqual([]);
});
