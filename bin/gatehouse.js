#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (no build step), from any working directory:
// tsx is resolved from this file's location (the project's node_modules), never from
// the working directory as `node --import tsx` would, and it compiles with the
// project's own tsconfig.json, not one that happens to lie in the working directory.
// The Docker image's ENTRYPOINT (test/integration/docker-command.test.ts).
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli.ts');
