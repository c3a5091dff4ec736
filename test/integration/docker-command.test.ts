// The Docker image's command, run as the image runs it: no Docker engine is needed
// (nor assumed) here. The Dockerfile's last stage is read (WORKDIR, ENV, COPY,
// ENTRYPOINT, CMD) and its command line is run exactly, with the image's project
// directory (/app) standing for this checkout, from a fresh temporary directory
// standing for the image's working directory (/home/node), where nothing can be
// resolved from node_modules (the old `node --import tsx` failed there with
// ERR_MODULE_NOT_FOUND). Ports come from the environment, as `docker run -e` would.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql } from '../helpers/gatehouse.ts';
import { type GatehouseProcess, spawnGatehouse } from '../helpers/gatehouse-process.ts';

const REPO = resolve(import.meta.dirname, '../..');

interface Image {
  /** Where package.json is copied: the project's directory in the image. */
  appDir: string;
  workdir: string;
  env: Record<string, string>;
  /** What COPY put where: a path in the image, and the file or directory of the checkout it holds. */
  copied: { image: string; source: string }[];
  entrypoint: string[];
  cmd: string[];
}

/** The last stage of a Dockerfile, as far as running its command needs. ENTRYPOINT and CMD must be in exec form (JSON). */
function parseDockerfile(text: string): Image {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let image: Image | undefined;
  for (const line of lines) {
    const [, instruction, rest] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const op = instruction.toUpperCase();
    if (op === 'FROM') {
      image = { appDir: '', workdir: '/', env: {}, copied: [], entrypoint: [], cmd: [] };
      continue;
    }
    if (!image) throw new Error(`Dockerfile: ${op} before FROM`);
    switch (op) {
      case 'WORKDIR':
        image.workdir = posix.resolve(image.workdir, rest);
        break;
      case 'ENV': {
        const pairs = [...rest.matchAll(/(\w+)=("[^"]*"|\S*)/g)];
        if (pairs.length) for (const [, k, v] of pairs) image.env[k] = v.replace(/^"(.*)"$/, '$1');
        else {
          const [k, ...v] = rest.split(/\s+/);
          image.env[k] = v.join(' ');
        }
        break;
      }
      case 'COPY': {
        // A directory's contents go into the destination; a file goes into it when it
        // names a directory (several sources, or a trailing slash), else becomes it.
        const args = rest.split(/\s+/).filter((a) => !a.startsWith('--'));
        const sources = args.slice(0, -1);
        const destArg = args.at(-1) ?? '.';
        const dest = posix.resolve(image.workdir, destArg);
        const intoDir = sources.length > 1 || destArg.endsWith('/') || destArg === '.';
        for (const source of sources) {
          const isDir = statSync(join(REPO, source)).isDirectory();
          const at = !isDir && intoDir ? posix.join(dest, posix.basename(source)) : dest;
          image.copied.push({ image: at, source: join(REPO, source) });
          if (posix.basename(source) === 'package.json') image.appDir = posix.dirname(at);
        }
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD': {
        if (!rest.startsWith('[')) throw new Error(`Dockerfile: ${op} must be in exec form (a JSON array), so signals reach node, not /bin/sh: ${line}`);
        const argv = JSON.parse(rest) as string[];
        if (op === 'ENTRYPOINT') image.entrypoint = argv;
        else image.cmd = argv;
        break;
      }
    }
  }
  if (!image) throw new Error('Dockerfile: no FROM');
  if (!image.appDir) throw new Error('Dockerfile: no COPY of package.json: where is the project in the image?');
  return image;
}

const image = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const command = [...image.entrypoint, ...image.cmd];
/** An argument naming a path in the image's project directory, as a path of this checkout. */
const local = (arg: string) => (arg === image.appDir || arg.startsWith(`${image.appDir}/`) ? join(REPO, arg.slice(image.appDir.length)) : arg);

function run(argv: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(argv[0], argv.slice(1), { cwd, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the Docker image command', () => {
  let workdir: string;
  beforeAll(() => {
    // A stand-in for /home/node: no node_modules in it or above it.
    workdir = mkdtempSync(join(tmpdir(), 'gatehouse-image-workdir-'));
    // A tsconfig.json of someone else's in the working directory changes nothing.
    writeFileSync(join(workdir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { verbatimModuleSyntax: true, target: 'ES5' } }));
  });
  afterAll(() => rmSync(workdir, { recursive: true, force: true }));

  it('is read from the Dockerfile: node on the CLI in /app, run from another working directory', () => {
    expect(image.appDir).toBe('/app');
    expect(image.workdir).not.toBe(image.appDir);
    expect(command[0]).toBe('node');
    expect(command.length).toBeGreaterThan(1);
    expect(image.env.NODE_ENV).toBe('production');
    // The stand-in is as bare as the image's working directory: a bare `--import tsx` cannot resolve there.
    expect(() => createRequire(join(workdir, 'probe.js')).resolve('tsx')).toThrow(/Cannot find module/);
  });

  it('every path of the project it names is copied into the image, from where this checkout has it', () => {
    const inImage = (path: string) => {
      const c = image.copied.find((c) => path === c.image || path.startsWith(`${c.image}/`));
      return c && join(c.source, path.slice(c.image.length));
    };
    const named = command.filter((a) => a.startsWith(`${image.appDir}/`));
    expect(named.length).toBeGreaterThan(0);
    // What the command runs with: tsconfig.json (bin/gatehouse.js compiles with it), the CLI, the source.
    for (const path of [...named, ...['tsconfig.json', 'bin/gatehouse.js', 'src/cli.ts'].map((p) => posix.join(image.appDir, p))]) {
      const source = inImage(path);
      expect(source, `${path} is not copied by the Dockerfile`).toBeDefined();
      expect(source).toBe(local(path));
      expect(existsSync(local(path)), `${local(path)} is missing`).toBe(true);
    }
  });

  it('the packages src/ and bin/ import are production dependencies (the image installs with --omit=dev)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const files = [join(REPO, 'bin/gatehouse.js'), ...listTs(join(REPO, 'src'))];
    const imported = new Set<string>();
    for (const f of files) {
      const source = readFileSync(f, 'utf8');
      for (const [, from, bare, dynamic] of source.matchAll(
        /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|import\('([^']+)'\)/g,
      )) {
        const spec = from ?? bare ?? dynamic;
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        imported.add(name);
      }
    }
    expect(imported).toContain('tsx');
    for (const name of imported) expect(pkg.dependencies, `${name} is imported at run time but is not in dependencies`).toHaveProperty([name]);
  });

  describe('CMD: serve, on the ports given by GATEHOUSE_PORT=0 and GATEHOUSE_ADMIN_PORT=0', () => {
    let gh: GatehouseProcess;
    beforeAll(async () => {
      gh = await spawnGatehouse(command[0], command.slice(1).map(local), {
        cwd: workdir,
        env: { ...image.env, GATEHOUSE_PORT: '0', GATEHOUSE_ADMIN_PORT: '0' },
      });
    });
    afterAll(async () => {
      await gh?.stop();
    });

    it('serves: health on its admin port, bob gets his EMEA orders', async () => {
      expect(gh.port).toBeGreaterThan(0);
      expect(gh.adminPort).toBeGreaterThan(0);
      expect(gh.port).not.toBe(6432);
      expect(gh.adminPort).not.toBe(6480);
      const health = (await (await fetch(`http://127.0.0.1:${gh.adminPort}/healthz`)).json()) as { status: string };
      expect(health.status).toBe('ok');
      const r = await psql(gh, 'bob@acme.example', 'SELECT count(*) FROM orders');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('1667');
    });

    it('writes its state under the working directory', async () => {
      const audit = join(workdir, '.gatehouse/audit.jsonl');
      const until = Date.now() + 5000;
      while (!readIfExists(audit).includes('bob@acme.example') && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(readIfExists(audit)).toContain('bob@acme.example');
    });
  });

  it('ENTRYPOINT with another command: check validates the rules and runs the policy tests', async () => {
    expect(image.entrypoint, 'the ENTRYPOINT is the CLI, so `docker run IMAGE check` works').toEqual(['node', `${image.appDir}/bin/gatehouse.js`]);
    const r = await run([...image.entrypoint, 'check', `${image.appDir}/rules`].map(local), workdir, image.env);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toMatch(/rules valid \(acme, globex; .*\); (\d+) of \1 policy tests pass/);
    expect(r.code).toBe(0);
  });
});

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTs(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function readIfExists(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}
