#!/usr/bin/env node
// gatehouse serve | check | explain | verifier
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatehouseError } from './errors.ts';
import { parseArgs } from 'node:util';
import { RulesError, loadRules } from './config/load.ts';
import { formatVerifier, makeVerifier } from './identity/scram.ts';
import { decideOffline, runPolicyTests } from './policy/offline.ts';
import { serve } from './serve.ts';
import { ensureDemoCertificate } from './wire/demo-certificate.ts';

const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `usage:
  gatehouse serve [--rules DIR] [--demo] [--host H] [--port P] [--admin-port P]
                                     (port 0: a free port, logged in "gatehouse listening")
  gatehouse check [DIR]
  gatehouse explain [--rules DIR] --user EMAIL --connection NAME "SQL"
  gatehouse verifier PASSWORD        print a SCRAM-SHA-256 verifier for org.yaml`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'check':
      return checkCommand(rest);
    case 'explain':
      return explainCommand(rest);
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
    },
  });
  const rulesDir = values.rules ?? join(projectDir, 'rules');
  const state = join(process.cwd(), '.gatehouse');
  // The demo serves TLS out of the box with a self-signed certificate made on first start
  // (used only when rules/gatehouse.yaml configures no server.tls).
  const demoTls = values.demo ? await ensureDemoCertificate(state) : undefined;
  const running = await serve({
    defaultTls: demoTls,
    rulesDir,
    host: values.host,
    port: portOption(values.port, '--port', 'GATEHOUSE_PORT'),
    adminPort: portOption(values['admin-port'], '--admin-port', 'GATEHOUSE_ADMIN_PORT'),
    auditPath: join(state, 'audit.jsonl'),
    stateDir: state,
  });
  if (values.demo) {
    console.log(`
Gatehouse demo is listening on ${running.host}:${running.port} (embedded warehouses for orgs acme and globex).
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
  console.log(`rules valid (${[...rules.orgs.keys()].join(', ')}; policy version ${rules.version}); ${results.length - failed} of ${results.length} policy tests pass`);
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
  console.log(`decision: ${decision.topics.length ? 'rewritten' : 'allowed'} by ${decision.rule}${decision.topics.length ? ` (topics: ${decision.topics.join(', ')})` : ''}`);
  if (decision.topics.length) {
    console.log('(offline: without the warehouse\'s column types, explain never copies a condition inside the barrier; the server does so for leakproof comparisons, to keep index scans)');
  }
  for (const st of decision.statements) {
    if (st.action === 'forward') console.log(`sent to the warehouse:\n  ${st.sql}`);
    else if (st.action === 'catalog') console.log(`sent to the topic catalog (empty tables shaped like the topics):\n  ${st.statement.sql}`);
    else console.log(`answered by Gatehouse (${st.tag}):\n  ${st.rows.join('\n  ')}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (e) => {
    if (e instanceof RulesError) console.error(e.message);
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
