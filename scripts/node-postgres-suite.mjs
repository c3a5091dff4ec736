#!/usr/bin/env node
// node-postgres's own integration suites as an outside check of Gatehouse (issue 16).
//
// Run by hand, not in CI: the suites live only in the GitHub repository
// brianc/node-postgres (packages/pg/test/integration, packages/pg-cursor/test,
// packages/pg-query-stream/test), not in the npm package, and CI cannot reach GitHub.
//
//   git clone https://github.com/brianc/node-postgres /tmp/node-postgres   # or from a mirror
//   (cd /tmp/node-postgres && npx --yes yarn@1.22.22 install --frozen-lockfile --ignore-engines)
//                                      # yarn workspaces; its prepublish step runs `tsc --build`
//                                      # (pg-protocol's and pg-query-stream's dist)
//   node scripts/node-postgres-suite.mjs /tmp/node-postgres [--targets direct,account,gatehouse]
//                                      [--suites pg,pg-cursor,pg-query-stream] [--json FILE] [--keep]
//
// Needs the local PostgreSQL (SUITE_PGHOST 127.0.0.1, SUITE_PGPORT 5432, superuser
// SUITE_PGUSER postgres, reached without a password as npm test does) and psql.
// Every run drops and recreates what it uses there:
//   nodepg_direct     database of the `direct` target: the suites as the superuser
//   nodepg_gatehouse  role (LOGIN, password, not superuser, no CREATEDB) owning the next two
//   nodepg_account    database of the `account` target: the suites as that role, no Gatehouse
//                     (tells what the least-privilege account alone changes)
//   nodepg_warehouse  database of the `gatehouse` target's connection
// The `gatehouse` target: a copy of rules/ in a temp dir with acme's `warehouse` replaced
// by a postgres connection (allow_writes: true) on nodepg_warehouse as nodepg_gatehouse,
// a user nodepg@acme.example (connection_admin of it, SCRAM verifier from
// `gatehouse verifier`), no topics (acme's topics and policy tests removed: topics
// would require a topics account) and no globex (its embedded warehouse is not needed).
// Gatehouse is started with `bin/gatehouse.js serve --port 0 --admin-port 0` in the
// temp dir (its state dir .gatehouse, audit log included, is there) and stopped at the end.
// The suites read PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE; PGDATABASE is the
// connection's name, `warehouse`, through Gatehouse.
//
// Runners: pg's integration tests are one `node FILE` per *-tests.js (as `make
// test-integration`), whose runner (test/suite.js) exits at the first failure of a
// file. So that every test gets a result, a preload records each test's start and
// end, and after a failure the file is run again skipping the tests already run
// ("resumed"). The upstream-runner count (tests passed before a file's first failure)
// is printed too. pg-cursor and pg-query-stream run under mocha (json reporter,
// --exit), pg-query-stream with ts-node as its package.json says.
//
// Prints passing/failing per suite and target, and every test that passes directly
// but not through Gatehouse, with its error (and whether it also fails as the
// account without Gatehouse). Exit status 0 whatever the counts (it is a report).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SUITES = ['pg', 'pg-cursor', 'pg-query-stream'];
const TARGETS = ['direct', 'account', 'gatehouse'];
const USER = 'nodepg@acme.example';
const ROLE = 'nodepg_gatehouse';
const PG_FILE_TIMEOUT_MS = 180_000;
const MOCHA_TIMEOUT_MS = 900_000;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    targets: { type: 'string', default: TARGETS.join(',') },
    suites: { type: 'string', default: SUITES.join(',') },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const checkout = resolve(positionals[0] ?? '/tmp/node-postgres');
const targets = opts.targets.split(',');
const suites = opts.suites.split(',');
for (const t of targets) if (!TARGETS.includes(t)) fail(`unknown target ${t} (${TARGETS.join(', ')})`);
for (const s of suites) if (!SUITES.includes(s)) fail(`unknown suite ${s} (${SUITES.join(', ')})`);
if (!existsSync(join(checkout, 'packages/pg/test/integration'))) fail(`${checkout} is not a node-postgres checkout (no packages/pg/test/integration)`);
const mocha = [join(checkout, 'node_modules/.bin/mocha')].find(existsSync);
if (suites.some((s) => s !== 'pg') && !mocha) fail(`no mocha in ${checkout}/node_modules: install the checkout's dependencies first (see the header of this script)`);
if (!existsSync(join(checkout, 'packages/pg-protocol/dist'))) fail(`${checkout}/packages/pg-protocol/dist is missing: build the checkout (npx yarn build)`);

const admin = { host: process.env.SUITE_PGHOST ?? '127.0.0.1', port: process.env.SUITE_PGPORT ?? '5432', user: process.env.SUITE_PGUSER ?? 'postgres' };
const scratch = mkdtempSync(join(tmpdir(), 'node-postgres-suite-'));
const rolePassword = randomBytes(18).toString('base64url');
const userPassword = randomBytes(18).toString('base64url');

function fail(msg) {
  console.error(`node-postgres-suite: ${msg}`);
  process.exit(2);
}

function psqlAdmin(sql) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', admin.host, '-p', admin.port, '-U', admin.user, '-d', 'postgres', '-c', sql], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
  });
}

function resetDatabases() {
  for (const db of ['nodepg_direct', 'nodepg_account', 'nodepg_warehouse']) psqlAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  psqlAdmin(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN CREATE ROLE ${ROLE}; END IF; END $$`);
  psqlAdmin(`ALTER ROLE ${ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '${rolePassword}'`);
  psqlAdmin('CREATE DATABASE nodepg_direct');
  psqlAdmin(`CREATE DATABASE nodepg_account OWNER ${ROLE}`);
  psqlAdmin(`CREATE DATABASE nodepg_warehouse OWNER ${ROLE}`);
}

/** The demo rules with acme's warehouse on nodepg_warehouse (allow_writes) and USER its connection_admin. */
function writeRules() {
  const dir = join(scratch, 'rules');
  cpSync(join(PROJECT, 'rules'), dir, { recursive: true });
  for (const p of ['globex', 'acme/topics', 'acme/tests']) rmSync(join(dir, p), { recursive: true, force: true });
  const verifier = execFileSync(process.execPath, [join(PROJECT, 'bin/gatehouse.js'), 'verifier', userPassword], { encoding: 'utf8' }).trim();
  const org = YAML.parse(readFileSync(join(dir, 'acme/org.yaml'), 'utf8'));
  org.users.push({ email: USER, scram: verifier });
  writeFileSync(join(dir, 'acme/org.yaml'), YAML.stringify(org));
  writeFileSync(
    join(dir, 'acme/connections/warehouse.yaml'),
    `# node-postgres-suite: acme's warehouse on the local PostgreSQL, writable, for node-postgres's own tests.
kind: postgres
host: ${admin.host}
port: ${admin.port}
database: nodepg_warehouse
user: ${ROLE}
password_env: NODEPG_SUITE_WAREHOUSE_PASSWORD
allow_writes: true
permissions:
  default: no_access
  users:
    ${USER}: connection_admin
`,
  );
  return dir;
}

/** Gatehouse on free ports, in the scratch dir (its .gatehouse state there); resolves with its port and a stop(). */
function startGatehouse(rulesDir) {
  const state = join(scratch, 'gatehouse');
  execFileSync('mkdir', ['-p', state]);
  const log = join(scratch, 'gatehouse.log');
  const child = spawn(process.execPath, [join(PROJECT, 'bin/gatehouse.js'), 'serve', '--rules', rulesDir, '--port', '0', '--admin-port', '0'], {
    cwd: state,
    env: { ...process.env, NODEPG_SUITE_WAREHOUSE_PASSWORD: rolePassword },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exited = false;
  const exitedP = new Promise((done) => child.on('exit', () => ((exited = true), done())));
  return new Promise((done, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`Gatehouse did not start within 60s; see ${log}`)), 60_000);
    const onData = (d) => {
      appendFileSync(log, d);
      buf += d;
      for (const line of buf.split('\n')) {
        if (!line.includes('gatehouse listening')) continue;
        try {
          const port = JSON.parse(line).port;
          clearTimeout(timer);
          buf = '';
          done({
            port,
            log,
            stop: async () => {
              if (!exited) child.kill('SIGTERM');
              const t = setTimeout(() => exited || child.kill('SIGKILL'), 15_000);
              await exitedP;
              clearTimeout(t);
            },
          });
          return;
        } catch {}
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => appendFileSync(log, d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Gatehouse exited (${code}) before listening: ${readFileSync(log, 'utf8').slice(-2000)}`));
    });
  });
}

function run(cmd, args, { cwd, env, timeoutMs }) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d) => (out = (out + d).slice(-200_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let killed = false;
    const t = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      done({ code, signal, killed, out });
    });
  });
}

// ---------------------------------------------------------------- pg (custom runner)

const PRELOAD = `'use strict'
// node-postgres-suite: records each test of pg's runner (test/suite.js) as JSON lines; skips the first NODEPG_SUITE_SKIP.
const fs = require('fs')
const path = require('path')
const out = process.env.NODEPG_SUITE_RESULTS
const skip = Number(process.env.NODEPG_SUITE_SKIP || 0)
const Suite = require(path.resolve('test/suite.js'))
const emit = (o) => fs.appendFileSync(out, JSON.stringify(o) + '\\n')
let index = -1
let current = null
let captured = ''
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream)
  stream.write = (chunk, ...rest) => {
    captured = (captured + String(chunk)).slice(-8000)
    return write(chunk, ...rest)
  }
}
const run = Suite.prototype.run
Suite.prototype.run = function (test, cb) {
  const i = ++index
  if (i < skip) return cb()
  if (!test.action) {
    emit({ event: 'skipped', index: i, name: test.name })
    return run.call(this, test, cb)
  }
  current = { index: i, name: test.name }
  captured = ''
  emit({ event: 'start', index: i, name: test.name })
  return run.call(this, test, (err) => {
    emit({ event: 'pass', index: i, name: test.name })
    current = null
    cb(err)
  })
}
process.on('exit', (code) => {
  if (current) emit({ event: 'fail', index: current.index, name: current.name, code, output: captured })
  else if (code !== 0) emit({ event: 'crash', code, output: captured })
})
`;

/** The error a failed test's output shows: its first error line (and an assertion's next lines). */
function errorOf(output) {
  const lines = output.split('\n');
  const i = lines.findIndex((l) => /^(Message: |\S*Error\b|error: |\s*(Assertion)?Error)/.test(l) || /FAILED!/.test(l));
  if (i < 0) return output.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
  let j = i;
  if (/FAILED!/.test(lines[j])) {
    j++;
    while (j < lines.length && !lines[j].trim()) j++;
  }
  const msg = [];
  for (; j < lines.length && msg.length < 4 && !/^\s+at /.test(lines[j]); j++) if (lines[j].trim()) msg.push(lines[j].trim());
  return msg.join(' ').replace(/^Message: /, '').slice(0, 300);
}

function pgFiles() {
  const root = join(checkout, 'packages/pg');
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e.endsWith('-tests.js')) files.push(relative(root, p));
    }
  };
  walk(join(root, 'test/integration'));
  return files;
}

/** Every test of every file: { key -> {status: pass|fail|skipped, error, firstRun} }, crashes outside a test, upstream-runner passes. */
async function runPg(env, label) {
  const cwd = join(checkout, 'packages/pg');
  const preload = join(scratch, 'pg-preload.cjs');
  writeFileSync(preload, PRELOAD);
  const tests = new Map();
  const crashes = [];
  let upstreamPasses = 0;
  for (const file of pgFiles()) {
    const seen = new Map();
    const keyOf = (name) => {
      const n = (seen.get(name) ?? 0) + 1;
      seen.set(name, n);
      return `${file} :: ${name}${n > 1 ? ` (#${n})` : ''}`;
    };
    const names = new Map();
    let skip = 0;
    for (let pass = 0; pass < 100; pass++) {
      const results = join(scratch, `pg-${label}-results.jsonl`);
      rmSync(results, { force: true });
      const r = await run(process.execPath, ['-r', preload, file], {
        cwd,
        env: { ...env, NODEPG_SUITE_RESULTS: results, NODEPG_SUITE_SKIP: String(skip) },
        timeoutMs: PG_FILE_TIMEOUT_MS,
      });
      const events = existsSync(results) ? readFileSync(results, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      const key = (e) => {
        if (!names.has(e.index)) names.set(e.index, keyOf(e.name));
        return names.get(e.index);
      };
      let started = 0;
      let open;
      let failedAt;
      for (const e of events) {
        if (e.event === 'start') {
          started++;
          open = e;
        } else if (e.event === 'pass') {
          tests.set(key(e), { status: 'pass', firstRun: pass === 0 });
          if (pass === 0) upstreamPasses++;
          open = undefined;
        } else if (e.event === 'skipped') {
          tests.set(key(e), { status: 'skipped', firstRun: pass === 0 });
        } else if (e.event === 'fail') {
          tests.set(key(e), { status: 'fail', error: errorOf(e.output), firstRun: pass === 0 });
          failedAt = e.index;
          open = undefined;
        } else if (e.event === 'crash') {
          crashes.push({ file, error: errorOf(e.output) });
        }
      }
      if (open) {
        // Killed by the harness's timeout, or the event loop emptied with the test unfinished.
        const why = r.killed ? `killed after ${PG_FILE_TIMEOUT_MS / 1000}s (harness timeout)` : `process ended (${r.code ?? r.signal}) with the test unfinished`;
        tests.set(key(open), { status: 'fail', error: `${why}: ${errorOf(r.out.slice(-4000))}`, firstRun: pass === 0 });
        failedAt = open.index;
      } else if (r.killed && failedAt === undefined) {
        crashes.push({ file, error: `killed after ${PG_FILE_TIMEOUT_MS / 1000}s with no test running (open handles after the tests)` });
      }
      if (failedAt === undefined || started === 0) break;
      skip = failedAt + 1;
    }
  }
  return { tests, crashes, upstreamPasses };
}

// ---------------------------------------------------------------- mocha suites

async function runMocha(suite, env, label) {
  const cwd = join(checkout, 'packages', suite);
  const output = join(scratch, `${suite}-${label}.json`);
  rmSync(output, { force: true });
  const args = ['--reporter', 'json', '--reporter-option', `output=${output}`, '--exit'];
  if (suite === 'pg-query-stream') args.unshift('-r', 'ts-node/register'), args.push('test/**/*.ts');
  const r = await run(mocha, args, { cwd, env, timeoutMs: MOCHA_TIMEOUT_MS });
  const tests = new Map();
  const crashes = [];
  if (!existsSync(output)) {
    crashes.push({ file: suite, error: `mocha wrote no report (${r.killed ? 'killed by the harness timeout' : `exit ${r.code ?? r.signal}`}): ${r.out.slice(-1500)}` });
    return { tests, crashes };
  }
  const report = JSON.parse(readFileSync(output, 'utf8'));
  for (const t of report.passes) tests.set(t.fullTitle, { status: 'pass' });
  for (const t of report.pending) tests.set(t.fullTitle, { status: 'skipped' });
  for (const t of report.failures) {
    const error = `${t.err?.message ?? ''}`.split('\n').slice(0, 3).join(' ').slice(0, 300);
    if (t.title.startsWith('"') && t.title.includes('hook')) crashes.push({ file: t.fullTitle, error });
    else tests.set(t.fullTitle, { status: 'fail', error });
  }
  return { tests, crashes };
}

// ---------------------------------------------------------------- main

function envFor(target, gh) {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (/^PG/.test(k)) delete base[k];
  if (target === 'direct') return { ...base, PGHOST: admin.host, PGPORT: admin.port, PGUSER: admin.user, PGPASSWORD: '', PGDATABASE: 'nodepg_direct' };
  if (target === 'account') return { ...base, PGHOST: admin.host, PGPORT: admin.port, PGUSER: ROLE, PGPASSWORD: rolePassword, PGDATABASE: 'nodepg_account' };
  return { ...base, PGHOST: '127.0.0.1', PGPORT: String(gh.port), PGUSER: USER, PGPASSWORD: userPassword, PGDATABASE: 'warehouse' };
}

const results = {}; // suite -> target -> {tests, crashes, upstreamPasses}
let gh;
try {
  resetDatabases();
  if (targets.includes('gatehouse')) {
    gh = await startGatehouse(writeRules());
    console.log(`Gatehouse on 127.0.0.1:${gh.port} (log ${gh.log})`);
  }
  for (const target of targets) {
    for (const suite of suites) {
      const t0 = Date.now();
      process.stdout.write(`running ${suite} (${target})... `);
      const env = envFor(target, gh);
      const r = suite === 'pg' ? await runPg(env, target) : await runMocha(suite, env, target);
      (results[suite] ??= {})[target] = r;
      const c = counts(r);
      console.log(`${c.pass} passing, ${c.fail} failing (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
    }
  }
} finally {
  await gh?.stop();
  if (!opts.keep) rmSync(scratch, { recursive: true, force: true });
  else console.log(`kept ${scratch}`);
}

function counts(r) {
  let pass = 0;
  let fail = 0;
  let skipped = 0;
  for (const t of r.tests.values()) {
    if (t.status === 'pass') pass++;
    else if (t.status === 'fail') fail++;
    else skipped++;
  }
  return { pass, fail, skipped, crashes: r.crashes.length };
}

console.log('\n== Counts (passing / failing tests; "outside tests": a file or hook that failed outside any one test)');
const label = { direct: `direct (${admin.user})`, account: `direct (${ROLE})`, gatehouse: 'through Gatehouse' };
for (const suite of suites) {
  for (const target of targets) {
    const r = results[suite]?.[target];
    if (!r) continue;
    const c = counts(r);
    const upstream = r.upstreamPasses !== undefined ? `; upstream runner (each file stops at its first failure): ${r.upstreamPasses} passing` : '';
    const vsDirect = target !== 'direct' && results[suite].direct ? `; passes ${[...results[suite].direct.tests].filter(([k, t]) => t.status === 'pass' && r.tests.get(k)?.status === 'pass').length} of the ${counts(results[suite].direct).pass} that pass directly` : '';
    console.log(`${suite.padEnd(16)} ${label[target].padEnd(28)} ${String(c.pass).padStart(4)} passing ${String(c.fail).padStart(4)} failing${c.skipped ? ` ${c.skipped} skipped` : ''}${c.crashes ? `, ${c.crashes} outside tests` : ''}${upstream}${vsDirect}`);
  }
}

const report = {};
if (targets.includes('direct') && targets.includes('gatehouse')) {
  console.log('\n== Pass directly, fail through Gatehouse');
  for (const suite of suites) {
    const direct = results[suite].direct;
    const through = results[suite].gatehouse;
    const account = results[suite].account;
    const lost = [...direct.tests].filter(([k, t]) => t.status === 'pass' && through.tests.get(k)?.status !== 'pass');
    report[suite] = lost.map(([k]) => ({ test: k, ...(through.tests.get(k) ?? { status: 'not run' }), account: account?.tests.get(k)?.status }));
    console.log(`\n-- ${suite}: ${lost.length}`);
    for (const t of report[suite]) {
      const also = t.account && t.account !== 'pass' ? ' [also fails directly as the account]' : '';
      console.log(`  ${t.test}${also}\n      ${t.status === 'fail' ? t.error : t.status === 'not run' ? 'not run (a hook or the file failed before it)' : t.status}`);
    }
    if (through.crashes.length) {
      console.log(`  outside any test through Gatehouse:`);
      for (const c of through.crashes) console.log(`  ${c.file}\n      ${c.error}`);
    }
  }
  console.log('\n== The same errors, by message (numbers, quoted names and pids folded)');
  const byMessage = new Map();
  for (const suite of suites)
    for (const t of report[suite]) {
      const m = (t.error ?? t.status).replace(/"[^"]*"|'[^']*'/g, '"…"').replace(/\d+/g, 'N').slice(0, 160);
      const g = byMessage.get(m) ?? [];
      g.push(`${suite}: ${t.test}`);
      byMessage.set(m, g);
    }
  for (const [m, g] of [...byMessage].sort((a, b) => b[1].length - a[1].length)) console.log(`${String(g.length).padStart(4)}  ${m}\n        e.g. ${g[0]}`);
}

if (opts.json) {
  const plain = Object.fromEntries(
    Object.entries(results).map(([s, byTarget]) => [
      s,
      Object.fromEntries(Object.entries(byTarget).map(([t, r]) => [t, { counts: counts(r), upstreamPasses: r.upstreamPasses, tests: Object.fromEntries(r.tests), crashes: r.crashes }])),
    ]),
  );
  writeFileSync(opts.json, `${JSON.stringify({ checkout, results: plain, passDirectlyFailThroughGatehouse: report }, null, 2)}\n`);
  console.log(`\nwrote ${opts.json}`);
}
