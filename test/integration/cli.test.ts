// The CLI as the README documents it: its example lines run as written, the
// launcher works from any directory, `npm start` can be put on free ports (so it
// runs beside a demo already serving 6432 and 6480), and a serve that cannot
// start exits instead of lingering.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_RULES, demoRulesWith, postgresWarehouseYaml, psql } from '../helpers/gatehouse.ts';
import { type GatehouseProcess, spawnGatehouse } from '../helpers/gatehouse-process.ts';
import { deadPort } from '../helpers/servers.ts';

const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin/gatehouse.js');

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The indented command lines of the README's `## CLI` section. */
function readmeCliLines(): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = /\n## CLI\n([\s\S]*?)\n## /.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no ## CLI section');
  return [...section.matchAll(/^ {4}(\S.*)$/gm)].map((m) => m[1].replace(/\s+#.*$/, '').trim());
}

describe("the README's CLI lines", () => {
  const lines = readmeCliLines();

  it("use the project's launcher, never `npx gatehouse` (an unrelated package of that name is on the npm registry)", () => {
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^(npm run gatehouse -- |node bin\/gatehouse\.js )/);
  });

  // Every line without a placeholder ([--flag], DIR) runs as written, from the project directory.
  const runnable = lines.filter((l) => !/\[|\bDIR\b/.test(l) && !/ serve\b/.test(l));
  it('include check, explain and verifier examples that run as written', () => {
    expect(runnable.map((l) => /-- (\w+)|\.js (\w+)/.exec(l)?.slice(1).find(Boolean)).sort()).toEqual(['check', 'explain', 'verifier']);
  });
  it.each(runnable)('%s', async (line) => {
    const r = await run('bash', ['-c', line], REPO);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    if (/ check\b/.test(line)) expect(r.stdout).toMatch(/rules valid \(acme, globex; .*\); (\d+) of \1 policy tests pass/);
    if (/ explain\b/.test(line)) expect(r.stdout).toContain('decision: rewritten');
    if (/ verifier\b/.test(line)) expect(r.stdout).toMatch(/^SCRAM-SHA-256\$4096:/m);
  });
});

describe('node bin/gatehouse.js from another directory', () => {
  let cwd: string;
  beforeAll(() => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
    cpSync(DEMO_RULES, join(cwd, 'my-rules'), { recursive: true });
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('check DIR takes DIR relative to the working directory', async () => {
    const r = await run(process.execPath, [BIN, 'check', 'my-rules'], cwd);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/(\d+) of \1 policy tests pass/);
    expect(r.code).toBe(0);
  });

  it('a port that is not a number is refused before anything starts', async () => {
    const r = await run(process.execPath, [BIN, 'serve', '--port', '64x'], cwd);
    expect(r.stderr).toContain("--port must be a port number from 0 to 65535, not '64x'");
    expect(r.code).toBe(1);
    const env = await run(process.execPath, [BIN, 'serve'], cwd, { GATEHOUSE_ADMIN_PORT: '70000' });
    expect(env.stderr).toContain("GATEHOUSE_ADMIN_PORT must be a port number from 0 to 65535, not '70000'");
    expect(env.code).toBe(1);
  });

  it('serve on an admin port in use exits 1 naming it, leaving no process behind', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      // spawnGatehouse kills the process group whatever happens, and throws if any of it is left;
      // "exited (1)" says the CLI ended by itself, before any kill.
      // Rules that start at once: acme only, its warehouse a PostgreSQL that is not there (Gatehouse starts anyway).
      const rules = demoRulesWith(postgresWarehouseYaml('gatehouse_nowhere').replace('port: 5432', `port: ${await deadPort()}`));
      rmSync(join(rules, 'globex'), { recursive: true, force: true });
      const serve = [BIN, 'serve', '--rules', rules, '--port', '0', '--admin-port', String(port)];
      await expect(spawnGatehouse(process.execPath, serve)).rejects.toThrow(
        new RegExp(`exited \\(1\\) before listening[\\s\\S]*EADDRINUSE[\\s\\S]*127\\.0\\.0\\.1:${port}`),
      );
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});

describe('npm start on free ports (beside a demo on 6432 and 6480)', () => {
  let gh: GatehouseProcess;
  beforeAll(async () => {
    // npm, sh, tsx's CLI and the node it starts: one process group, all ended by stop().
    gh = await spawnGatehouse('npm', ['start', '--', '--port', '0', '--admin-port', '0'], { cwd: REPO });
  });
  afterAll(async () => {
    await gh?.stop();
  });

  it('the banner names the ports it really listens on, and they serve', async () => {
    expect(gh.port).not.toBe(6432);
    expect(gh.adminPort).not.toBe(6480);
    expect(gh.output()).toContain(`port=${gh.port} dbname=warehouse user=bob@acme.example`);
    expect(gh.output()).toContain(`http://127.0.0.1:${gh.adminPort}/healthz`);
    expect((await fetch(`http://127.0.0.1:${gh.adminPort}/healthz`)).status).toBe(200);
    const r = await psql(gh, 'erin@acme.example', 'SELECT count(*) FROM orders');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('5000');
  });
});
