// Gatehouse as a child process (the CLI, bin/gatehouse.js, the Docker image's
// command): started in its own process group on free ports, and ended with the
// test, pass or fail. The child reports its real ports in its 'gatehouse
// listening' log line (it is asked for port 0, so a Gatehouse already running
// here, such as the demo on 6432 and 6480, is never in the way).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export interface GatehouseProcess {
  proc: ChildProcess;
  pid: number;
  port: number;
  adminPort: number;
  /** The last 200 kB of its stdout and stderr. */
  output(): string;
  /** SIGTERM to its process group, SIGKILL after 5 s; then its temporary working directory goes. Throws if any process of the group is left. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Working directory; without it, a fresh temporary one (its .gatehouse/ goes with it). */
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

/**
 * Process groups started here and not yet ended. Killed after the test file's
 * last hook (so a test that timed out while one was starting leaves nothing), and
 * when this process exits.
 */
const live = new Map<number, string | undefined>(); // process group -> its temporary working directory
afterAll(() => {
  for (const [pgid, tempCwd] of live) {
    killGroup(pgid, 'SIGKILL');
    if (tempCwd) rmSync(tempCwd, { recursive: true, force: true });
  }
  live.clear();
});
process.once('exit', () => {
  for (const pgid of live.keys()) killGroup(pgid, 'SIGKILL');
});

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/**
 * Runs `command args` (which must end up in `gatehouse serve ... --port 0 --admin-port 0`
 * or equivalent) and resolves once it logs 'gatehouse listening', with the ports it
 * logged. If it does not start, its process group is killed before the error is thrown.
 */
export async function spawnGatehouse(command: string, args: string[], opts: SpawnOptions = {}): Promise<GatehouseProcess> {
  const tempCwd = opts.cwd ? undefined : mkdtempSync(join(tmpdir(), 'gatehouse-proc-'));
  const cwd = opts.cwd ?? (tempCwd as string);
  const proc = spawn(command, args, {
    cwd,
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: tsx's child and anything else it starts end with it
  });
  const pid = proc.pid;
  if (pid === undefined) {
    const error = await new Promise<Error>((r) => proc.once('error', r));
    throw new Error(`could not start ${command}: ${error.message}`);
  }
  live.set(pid, tempCwd);
  let out = '';
  const keep = (s: string) => {
    out = (out + s).slice(-200_000);
  };
  proc.stdout?.setEncoding('utf8').on('data', keep);
  proc.stderr?.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));

  const stop = async () => {
    if (running(proc)) {
      killGroup(pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    // Whatever is left of the group (the leader stuck, or a child it started).
    killGroup(pid, 'SIGKILL');
    if (running(proc)) await exited;
    const until = Date.now() + 5000;
    while (groupAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (tempCwd) rmSync(tempCwd, { recursive: true, force: true });
    if (groupAlive(pid)) throw new Error(`gatehouse's process group ${pid} outlived SIGKILL`);
    live.delete(pid);
  };

  try {
    const ports = await new Promise<{ port: number; adminPort: number }>((done, fail) => {
      const timeoutMs = opts.startTimeoutMs ?? 60_000;
      const timer = setTimeout(() => fail(new Error(`gatehouse did not start within ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
      const check = () => {
        for (const line of out.split('\n')) {
          if (!line.includes('"gatehouse listening"')) continue;
          const logged = JSON.parse(line) as { port: number; admin_port: number };
          clearTimeout(timer);
          done({ port: logged.port, adminPort: logged.admin_port });
          return;
        }
      };
      proc.stdout?.on('data', check);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        fail(new Error(`gatehouse exited (${signal ?? code}) before listening:\n${out}`));
      });
    });
    return { proc, pid, ...ports, output: () => out, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Is any process of this process group still there? */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  return true;
}
