#!/usr/bin/env node
// The gatehouse command. Runs the compiled JavaScript in dist/ (`npm run build`) when it is
// there and newer than every source file, so production never pays for compiling; otherwise
// the TypeScript CLI through tsx, resolved from this file's location (the project's
// node_modules), never from the working directory as `node --import tsx` would, with the
// project's own tsconfig.json. A dist/ older than a source file is never used: it would run
// code that is not what the checkout says. GATEHOUSE_RUN=tsx or =dist forces one.
// The Docker image's ENTRYPOINT (test/integration/docker-command.test.ts).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist', 'cli.js');

/** The newest modification time of any file under dir. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function useDist() {
  if (process.env.GATEHOUSE_RUN === 'tsx') return false;
  if (!existsSync(built)) {
    if (process.env.GATEHOUSE_RUN === 'dist') throw new Error(`${built} does not exist: run npm run build`);
    return false;
  }
  if (process.env.GATEHOUSE_RUN === 'dist') return true;
  const src = join(root, 'src');
  return !existsSync(src) || statSync(built).mtimeMs >= newest(src);
}

if (useDist()) {
  await import(built);
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: join(root, 'tsconfig.json') });
  await import('../src/cli.ts');
}
