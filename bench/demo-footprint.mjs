// Cold start and memory of the demo: spawns `tsx src/cli.ts serve --demo` on free ports,
// times spawn -> the port accepting connections, then sums RSS and PSS over Gatehouse and
// every process it started (its embedded servers), at listening and after a few statements
// (bob reads orders, carol reads employees, bob runs psql's \dt on the topic catalog).
// Usage: node bench/demo-footprint.mjs   (run from the repository root; needs psql)
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';

const freePort = () =>
  new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
const accepts = (port) =>
  new Promise((res) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function children() {
  const map = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (map.get(ppid) ?? map.set(ppid, []).get(ppid)).push(Number(d));
    } catch {}
  }
  return map;
}
function tree(root) {
  const map = children();
  const out = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(map.get(p) ?? []));
  }
  return out;
}
function memory(root, extra = []) {
  let rss = 0,
    pss = 0;
  const pids = [...new Set([...tree(root), ...extra.flatMap((p) => tree(p))])];
  for (const p of pids) {
    try {
      const r = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(r)?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+)/m.exec(r)?.[1] ?? 0);
    } catch {}
  }
  return { processes: pids.length, rssMB: Math.round(rss / 1024), pssMB: Math.round(pss / 1024) };
}
/** Processes that left Gatehouse's tree (detached servers): those whose command line names this run's state dir. */
function detached(marker) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) out.push(Number(d));
    } catch {}
  }
  return out;
}

const port = await freePort();
const admin = await freePort();
const t0 = performance.now();
const child = spawn('node_modules/.bin/tsx', ['src/cli.ts', 'serve', '--demo'], {
  env: { ...process.env, GATEHOUSE_PORT: String(port), GATEHOUSE_ADMIN_PORT: String(admin), GATEHOUSE_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
while (!(await accepts(port))) {
  if (child.exitCode !== null) throw new Error('gatehouse exited');
  await sleep(20);
}
const coldMs = Math.round(performance.now() - t0);
await sleep(500);
const marker = `${process.cwd()}/.gatehouse/embedded`;
const atListen = memory(child.pid, detached(marker));
const psql = (user, sql) =>
  execFileSync('psql', ['-X', '-A', '-t', `host=127.0.0.1 port=${port} dbname=warehouse user=${user}`, '-c', sql], {
    env: { ...process.env, PGPASSWORD: 'gatehouse-demo' },
  })
    .toString()
    .trim();
psql('bob@acme.example', 'SELECT count(*) FROM orders');
psql('carol@acme.example', 'SELECT count(*) FROM employees');
psql('bob@acme.example', '\\dt');
await sleep(500);
const afterQueries = memory(child.pid, detached(marker));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
console.log(JSON.stringify({ coldStartToListeningMs: coldMs, atListen, afterQueries }, null, 1));
