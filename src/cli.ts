#!/usr/bin/env node
// gatehouse serve | check | explain | verifier | encrypt | rotate-keys | login
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatehouseError } from './errors.ts';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { RulesError, loadRules } from './config/load.ts';
import { formatVerifier, makeVerifier } from './identity/scram.ts';
import { SECRET_FIELDS } from './config/secret-fields.ts';
import { serverFileSchema } from './config/schema.ts';
import { SecretError, sealSecret } from './secrets/envelope.ts';
import type { KeyProvider } from './secrets/keys.ts';
import { resolveKeys } from './secrets/resolve.ts';
import { rotateRules } from './secrets/rotate.ts';
import { decideOffline, runPolicyTests } from './policy/offline.ts';
import { serve } from './serve.ts';
import { ensureDemoCertificate } from './wire/demo-certificate.ts';
import { type DemoWarehouse, WarehouseUrlError, loadDemoWarehouse } from './demo/warehouse.ts';
import type { KeyResolution } from './secrets/resolve.ts';
import pino from 'pino';
import { systemOpener } from './login/browser-flow.ts';
import { LoginError } from './login/errors.ts';
import { type LoginResult, login, refreshSaved } from './login/login.ts';

const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `usage:
  gatehouse serve [--rules DIR] [--demo] [--host H] [--port P] [--admin-port P]
                                     (port 0: a free port, logged in "gatehouse listening")
  gatehouse serve --demo --warehouse postgres://ADMIN[:PASSWORD]@HOST[:PORT]/DATABASE
  gatehouse serve --demo --warehouse mysql://ADMIN[:PASSWORD]@HOST[:PORT]/DATABASE
                                     the same demo with its data loaded into that server: DATABASE (and
                                     DATABASE_<org> for every other org) created or replaced, with new
                                     least-privilege accounts; ADMIN is used only to set up (docs/warehouses.md)
  gatehouse check [DIR]
  gatehouse explain [--rules DIR] --user EMAIL --connection NAME "SQL"
  gatehouse verifier PASSWORD        print a SCRAM-SHA-256 verifier for org.yaml
  gatehouse encrypt --org ORG --connection NAME [--field ${SECRET_FIELDS.join('|')}] [--rules DIR]
                                     encrypt the secret read from stdin; prints the ciphertext for the connection file
  gatehouse rotate-keys [DIR]        re-encrypt every ciphertext in DIR (rules/) to the current master key
  gatehouse login https://GATEHOUSE[:PORT]/ORG | ORG [--server URL]
                [--device] [--no-browser] [--fresh] [--pg-host H] [--pg-port P] [--timeout SECONDS]
                                     sign in with your org's identity provider and write the token to your
                                     password file (PGPASSFILE or ~/.pgpass) for psql; a saved sign-in is
                                     refreshed without a browser (README "Signing in")
  gatehouse login --refresh [TARGET] refresh saved sign-ins now (for cron); never opens a browser`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'check':
      return checkCommand(rest);
    case 'explain':
      return explainCommand(rest);
    case 'encrypt':
      return encryptCommand(rest);
    case 'rotate-keys':
      return rotateKeysCommand(rest);
    case 'login':
      return loginCommand(rest);
    case 'verifier': {
      if (!rest[0]) return usage();
      console.log(formatVerifier(makeVerifier(rest[0])));
      return 0;
    }
    default:
      return usage();
  }
}

function usage(): number {
  console.error(USAGE);
  return 2;
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rules: { type: 'string' },
      demo: { type: 'boolean' },
      host: { type: 'string' },
      port: { type: 'string' },
      'admin-port': { type: 'string' },
      warehouse: { type: 'string' },
    },
  });
  const sourceRules = values.rules ?? join(projectDir, 'rules');
  const state = join(process.cwd(), '.gatehouse');
  // The demo serves TLS out of the box with a self-signed certificate made on first start
  // (used only when rules/gatehouse.yaml configures no server.tls).
  const demoTls = values.demo ? await ensureDemoCertificate(state) : undefined;
  const port = portOption(values.port, '--port', 'GATEHOUSE_PORT');
  const adminPort = portOption(values['admin-port'], '--admin-port', 'GATEHOUSE_ADMIN_PORT');
  const logger = pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'info' });
  let rulesDir = sourceRules;
  let keys: KeyResolution | undefined;
  let demoWarehouse: DemoWarehouse | undefined;
  if (values.warehouse !== undefined) {
    // The demo's data in a real warehouse (DESIGN 4): loaded, then served from generated rules.
    if (!values.demo) throw new Error('--warehouse loads the demo into a warehouse: use it with --demo (npm start -- --warehouse URL)');
    keys = resolveKeys({
      env: process.env,
      rulesDir: sourceRules,
      configuredKeyFile: loadRules(sourceRules).secrets.key_file,
      fallbackKeyFile: { path: join(state, 'master.key'), create: true },
    });
    if (!('provider' in keys)) throw new Error(`--warehouse: the new accounts' passwords cannot be stored: ${'problem' in keys ? keys.problem : keys.none}`);
    demoWarehouse = await loadDemoWarehouse({ url: values.warehouse, rulesDir: sourceRules, stateDir: state, keys: keys.provider, logger });
    rulesDir = demoWarehouse.rulesDir;
  }
  const running = await serve({
    defaultTls: demoTls,
    rulesDir,
    keys,
    logger,
    host: values.host,
    port,
    adminPort,
    auditPath: join(state, 'audit.jsonl'),
    stateDir: state,
    // DESIGN 5: the demo's master key lives with its state, made on the first start.
    demoKeyFile: values.demo ? join(state, 'master.key') : undefined,
  });
  if (values.demo) {
    const where = demoWarehouse
      ? `orgs ${demoWarehouse.databases.map((d) => `${d.org} in database ${d.database}`).join(', ')} of ${demoWarehouse.url.redacted}`
      : 'embedded warehouses for orgs acme and globex';
    console.log(`
Gatehouse demo is listening on ${running.host}:${running.port} (${where}).
Every demo user's password is gatehouse-demo (demo only). Try:

  PGPASSWORD=gatehouse-demo psql "host=${running.host} port=${running.port} dbname=warehouse user=bob@acme.example"
${tlsBanner(running.tls, demoTls?.cert_file, running.host, running.port)}
Users: alice (admin), bob (EMEA), grace (EMEA+APAC), erin (ALL), frank (no region), carol (querier), dave (no access) @acme.example; hank@globex.example.
Audit records: ${join(state, 'audit.jsonl')}. Health and metrics: http://${running.host}:${running.adminPort}/healthz, /metrics. Ctrl-C stops.
`);
  }
  // Graceful shutdown (docs/rules.md): the first SIGTERM or SIGINT stops accepting and lets
  // running statements finish (server.shutdown_timeout); a second one ends that wait now.
  // Either way sessions end with 57P01, the audit trail is written, the embedded warehouses
  // stop, and the process exits 0.
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      running.logger.warn({ signal }, 'shutdown: second signal, ending running statements now');
      running.hurry();
      return;
    }
    stopping = true;
    running.logger.info({ signal }, 'shutdown: no new connections; waiting for running statements');
    running.close().then(
      () => {
        running.logger.info('gatehouse stopped');
        process.exit(0);
      },
      (e) => {
        running.logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise<number>(() => {});
}

function tlsBanner(tls: 'off' | { mode: string; certFile: string }, demoCertFile: string | undefined, host: string, port: number): string {
  if (tls === 'off') return '\nTLS is off (no server.tls in rules/gatehouse.yaml).\n';
  const demo = tls.certFile === demoCertFile;
  const psql = (opts: string) => `  PGPASSWORD=gatehouse-demo psql "${opts} host=${host} port=${port} dbname=warehouse user=bob@acme.example"`;
  return [
    '',
    `TLS (${tls.mode}) with ${tls.certFile}${demo ? ': self-signed for localhost and 127.0.0.1, demo only' : ''}:`,
    psql('sslmode=require'),
    ...(demo ? [psql(`sslmode=verify-full sslrootcert=${tls.certFile}`)] : []),
    '',
  ].join('\n');
}

/** A port from the command line, else the environment: 0 to 65535 (0 asks for a free one); neither keeps the rules' port. */
function portOption(flagValue: string | undefined, flag: string, envName: string): number | undefined {
  const value = flagValue ?? process.env[envName];
  const name = flagValue === undefined ? envName : flag;
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new Error(`${name} must be a port number from 0 to 65535, not '${value}'`);
  return port;
}

async function checkCommand(args: string[]): Promise<number> {
  const dir = args[0] ?? join(projectDir, 'rules');
  const rules = loadRules(dir);
  const results = await runPolicyTests(rules);
  for (const r of results) {
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.test.file}: ${r.test.name}${r.ok ? '' : `\n       ${r.problem}`}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `rules valid (${[...rules.orgs.keys()].join(', ')}; policy version ${rules.version}); ${results.length - failed} of ${results.length} policy tests pass`,
  );
  return failed ? 1 : 0;
}

async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { rules: { type: 'string' }, user: { type: 'string' }, connection: { type: 'string' } },
  });
  if (!values.user || !values.connection || positionals.length !== 1) return usage();
  const rules = loadRules(values.rules ?? join(projectDir, 'rules'));
  const { context, levelSource, decision } = await decideOffline(rules, values.user, values.connection, positionals[0]);
  if (context) console.log(`user ${context.user} (org ${context.org}) on ${context.connection.name}: ${context.level} (from ${levelSource})`);
  if (decision.outcome === 'refuse') {
    const e = decision.error;
    console.log(`decision: refused by ${decision.rule}\nSQLSTATE ${e.sqlstate}: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
    return 1;
  }
  if (decision.outcome === 'empty') {
    console.log('decision: empty statement');
    return 0;
  }
  console.log(
    `decision: ${decision.topics.length ? 'rewritten' : 'allowed'} by ${decision.rule}${decision.topics.length ? ` (topics: ${decision.topics.join(', ')})` : ''}`,
  );
  if (decision.topics.length) {
    console.log(
      "(offline: without the warehouse's column types, explain never copies a condition inside the barrier; the server does so for leakproof comparisons, to keep index scans)",
    );
  }
  for (const st of decision.statements) {
    if (st.action === 'forward') console.log(`sent to the warehouse:\n  ${st.sql}`);
    else if (st.action === 'catalog') console.log(`sent to the topic catalog (empty tables shaped like the topics):\n  ${st.statement.sql}`);
    else console.log(`answered by Gatehouse (${st.tag}):\n  ${st.rows.join('\n  ')}`);
  }
  return 0;
}

/**
 * The master keys encrypt and rotate-keys use: as serve finds them (environment, key file,
 * gatehouse.yaml), else the demo's .gatehouse/master.key when it exists.
 */
function cliKeys(rulesDir: string): KeyProvider {
  const serverFile = join(rulesDir, 'gatehouse.yaml');
  let configuredKeyFile: string | undefined;
  if (existsSync(serverFile)) {
    const parsed = serverFileSchema.safeParse(parseYaml(readFileSync(serverFile, 'utf8')) ?? {});
    if (!parsed.success) throw new Error(`${serverFile} is not valid: run gatehouse check`);
    configuredKeyFile = parsed.data.secrets.key_file;
  }
  const keys = resolveKeys({
    env: process.env,
    rulesDir,
    configuredKeyFile,
    fallbackKeyFile: { path: join(process.cwd(), '.gatehouse', 'master.key'), create: false },
  });
  if ('provider' in keys) return keys.provider;
  throw new Error('problem' in keys ? keys.problem : keys.none);
}

/**
 * The secret, from stdin: never from argv, where ps and shell history would show it. From a
 * terminal it is typed without echo; from a pipe the whole input, less one final newline.
 */
async function readSecret(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    process.stderr.write('secret (not echoed), then Enter: ');
    stdin.setRawMode(true);
    stdin.resume();
    try {
      return await new Promise<string>((resolveSecret, reject) => {
        let typed = '';
        stdin.on('data', (chunk: Buffer) => {
          for (const ch of chunk.toString('utf8')) {
            if (ch === '\r' || ch === '\n') return resolveSecret(typed);
            if (ch === '\u0003' || ch === '\u0004') return reject(new Error('no secret given'));
            typed = ch === '\u007f' || ch === '\b' ? typed.slice(0, -1) : typed + ch;
          }
        });
      });
    } finally {
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function encryptCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { org: { type: 'string' }, connection: { type: 'string' }, field: { type: 'string', default: 'password' }, rules: { type: 'string' } },
  });
  if (positionals.length > 0) {
    // A secret on the command line would be in ps and the shell's history.
    console.error('gatehouse encrypt reads the secret from stdin, never from the command line');
    return 2;
  }
  if (!values.org || !values.connection) return usage();
  const field = values.field!;
  if (!(SECRET_FIELDS as readonly string[]).includes(field)) {
    console.error(`--field must be one of ${SECRET_FIELDS.join(', ')}`);
    return 2;
  }
  const keys = cliKeys(values.rules ?? join(projectDir, 'rules'));
  const secret = await readSecret();
  try {
    console.log(sealSecret(secret, { org: values.org, connection: values.connection, field }, keys));
  } catch (e) {
    if (e instanceof SecretError) {
      console.error(`gatehouse encrypt: ${e.message}`);
      return 1;
    }
    throw e;
  }
  console.error(`encrypted with master key "${keys.currentId}" (${keys.source}) for ${field} of connection "${values.connection}" of org ${values.org}`);
  return 0;
}

async function rotateKeysCommand(args: string[]): Promise<number> {
  const dir = args[0] ?? join(projectDir, 'rules');
  const keys = cliKeys(dir);
  const report = rotateRules(dir, keys);
  for (const f of report.failures) console.error(`FAIL ${f.file}${f.field ? ` ${f.field}` : ''}: ${f.reason}`);
  if (report.failures.length > 0) {
    console.error(`nothing written: ${report.failures.length} ciphertext(s) could not be decrypted with the keys of ${keys.source}`);
    return 1;
  }
  for (const r of report.rotated) console.log(`rotated   ${r.file} ${r.field}: key ${r.from} -> ${report.current}`);
  for (const r of report.unchanged) console.log(`unchanged ${r.file} ${r.field}: already on key ${report.current}`);
  console.log(
    `${report.rotated.length} ciphertext(s) re-encrypted to key ${report.current} in ${report.written.length} file(s); ${report.unchanged.length} already on it`,
  );
  return 0;
}

async function loginCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      device: { type: 'boolean' },
      'no-browser': { type: 'boolean' },
      fresh: { type: 'boolean' },
      refresh: { type: 'boolean' },
      'pg-host': { type: 'string' },
      'pg-port': { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  if (positionals.length > 1) return usage();
  const io = { env: process.env, print: (text: string) => process.stderr.write(`${text}\n`), openBrowser: systemOpener };
  const report = (r: LoginResult) => {
    const until = new Date(r.expiresAt * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    console.log(
      `Signed in to ${r.org} as ${r.email}${r.how === 'refresh' ? ' (refreshed)' : ''}; the token is valid until ${until} and is in ${r.pgpass} for ${r.host}:${r.port}.`,
    );
  };
  try {
    if (values.refresh) {
      const { refreshed, failed } = await refreshSaved({ target: positionals[0], server: values.server }, io);
      refreshed.forEach(report);
      for (const f of failed) console.error(`gatehouse login: ${f.org} at ${f.server}: ${f.error.message}${f.error.hint ? `\n  hint: ${f.error.hint}` : ''}`);
      return failed.length ? 1 : 0;
    }
    const pgPort = values['pg-port'] === undefined ? undefined : Number(values['pg-port']);
    if (pgPort !== undefined && !(/^\d+$/.test(values['pg-port']!) && pgPort >= 1 && pgPort <= 65535))
      throw new LoginError(`--pg-port must be a port number from 1 to 65535, not '${values['pg-port']}'`);
    const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
    if (timeout !== undefined && !(timeout > 0)) throw new LoginError(`--timeout must be a number of seconds, not '${values.timeout}'`);
    const r = await login(
      {
        target: positionals[0],
        server: values.server,
        device: values.device,
        noBrowser: values['no-browser'],
        fresh: values.fresh,
        pgHost: values['pg-host'],
        pgPort,
        timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      },
      io,
    );
    report(r);
    console.log(`Connect with: psql "host=${r.host} port=${r.port} dbname=CONNECTION user=${r.email} sslmode=require"`);
    return 0;
  } catch (e) {
    if (!(e instanceof LoginError)) throw e;
    console.error(`gatehouse login: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (e) => {
    if (e instanceof RulesError || e instanceof WarehouseUrlError) console.error(e instanceof RulesError ? e.message : `gatehouse: ${e.message}`);
    else {
      console.error(`gatehouse: ${(e as Error).message}`);
      // A start failure's detail and hint (an embedded server that cannot start says why and what to do instead).
      if (e instanceof GatehouseError) {
        if (e.detail) console.error(`  detail: ${e.detail}`);
        if (e.hint) console.error(`  hint: ${e.hint}`);
      }
    }
    // Exit now: whatever a failed command left open (a worker, a timer) must not keep the process alive.
    process.exit(1);
  },
);
