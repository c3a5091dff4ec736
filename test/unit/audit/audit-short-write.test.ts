// A write the file takes only part of (a full disk, a file size limit: EFBIG) leaves the
// trail with the start of a line. The retry writes exactly the rest: every record once, whole,
// in order (an outside review filled the disk and found a torn line and a duplicate).
// The limit is a real one: RLIMIT_FSIZE on a child process (prlimit), lifted by the test.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const FILE_SIZE_LIMIT = 3000;

it('a write cut short by the file size limit is finished byte for byte once the limit is lifted: no torn line, none twice', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'gh-audit-')), 'audit.jsonl');
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const writer = join(import.meta.dirname, '../../fixtures/audit-writer.ts');
  // Soft limit only, so the test can raise it again without privileges.
  const child = spawn('prlimit', [`--fsize=${FILE_SIZE_LIMIT}:unlimited`, '--', process.execPath, '--import', tsx, writer, path], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    let out = '';
    const said = (word: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (out.includes(`${word}\n`) ? resolve() : undefined);
        child.stdout.on('data', (d) => {
          out += d;
          check();
        });
        child.once('exit', () => reject(new Error(`the writer exited before saying ${word}: ${out}`)));
        check();
      });
    await said('failed');
    const torn = readFileSync(path, 'utf8');
    expect(statSync(path).size).toBe(FILE_SIZE_LIMIT);
    expect(torn.endsWith('\n')).toBe(false); // the limit cut a line: the case under test
    execFileSync('prlimit', ['--pid', String(child.pid), '--fsize=unlimited:unlimited']);
    child.stdin.write('go\n');
    await said('written');
    child.stdin.write('flush\n');
    expect(await exited).toBe(0);
    const records = readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => r.statement.split(',')[0])).toEqual(Array.from({ length: 60 }, (_, i) => `SELECT ${i}`));
  } finally {
    child.kill('SIGKILL');
  }
});
