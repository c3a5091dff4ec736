// Starts a Gatehouse: rules, warehouses, audit, the wire server. Used by the CLI
// and by the integration tests (port 0), so both run the same code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { Metrics } from './admin/metrics.ts';
import { type AdminServer, startAdminServer } from './admin/server.ts';
import { type AuditSink, countedAudit, fileAudit, loggerAudit } from './audit/audit.ts';
import { loadRules } from './config/load.ts';
import { loginDocument, publishingOrgs } from './login/document.ts';
import { Gateway } from './gateway.ts';
import { SignInThrottle } from './limits/sign-in-throttle.ts';
import { type KeyResolution, resolveKeys } from './secrets/resolve.ts';
import { type WireServer, startWireServer } from './wire/server.ts';
import { type TlsSettings, type WireTls, loadWireTls } from './wire/tls.ts';

export interface ServeOptions {
  rulesDir: string;
  host?: string;
  /**
   * The wire port and the admin port (health and metrics over HTTP). Both must be
   * given: undefined takes the rules' port (6432, 6480), 0 a free one. A test passes
   * 0 for both, so it never collides with a Gatehouse already running here.
   */
  port: number | undefined;
  adminPort: number | undefined;
  /** Embedded servers' data: <stateDir>/embedded. Without it, a temp dir removed at close (so Gatehouses never share one). */
  stateDir?: string;
  /** Audit records go to this JSON-lines file; without it, to the logger. */
  auditPath?: string;
  /** Where master keys come from (GATEHOUSE_MASTER_KEY(S), GATEHOUSE_KEY_FILE); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The demo's key file (.gatehouse/master.key): made on first start and used when no other key is configured. */
  demoKeyFile?: string;
  /** Keys already resolved (the demo on a real warehouse sealed its accounts' passwords with them); else resolved here. */
  keys?: KeyResolution;
  logger?: Logger;
  /** TLS when rules/gatehouse.yaml configures none (the demo's self-signed certificate). */
  defaultTls?: TlsSettings;
}

export interface RunningGatehouse {
  host: string;
  port: number;
  /** The TLS served ('off' without a certificate). */
  tls: { mode: 'optional' | 'required'; certFile: string } | 'off';
  adminPort: number;
  gateway: Gateway;
  /** Failed sign-ins per user and address (its size: tests check the memory bound). */
  throttle: SignInThrottle;
  logger: Logger;
  /**
   * Graceful: stop accepting; idle sessions end now with 57P01, busy ones after their statement
   * or at server.shutdown_timeout; then the admin endpoint, the warehouses, the audit trail.
   */
  close(): Promise<void>;
  /** Ends close()'s wait for running statements now. */
  hurry(): void;
}

export async function serve(opts: ServeOptions): Promise<RunningGatehouse> {
  const logger = opts.logger ?? pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'info' });
  const rules = loadRules(opts.rulesDir);
  // Read and checked before anything starts: a missing key or a key readable by others stops the start.
  const tlsSettings = rules.server.tls ?? opts.defaultTls;
  const tls: WireTls | undefined = tlsSettings ? loadWireTls(tlsSettings) : undefined;
  const auditFile = opts.auditPath ? fileAudit(opts.auditPath) : undefined;
  const metrics = new Metrics();
  const audit: AuditSink = countedAudit(auditFile ?? loggerAudit(logger), metrics);
  const tempState = opts.stateDir ? undefined : mkdtempSync(join(tmpdir(), 'gatehouse-state-'));
  const keys =
    opts.keys ??
    resolveKeys({
      env: opts.env ?? process.env,
      rulesDir: opts.rulesDir,
      configuredKeyFile: rules.secrets.key_file,
      fallbackKeyFile: opts.demoKeyFile ? { path: opts.demoKeyFile, create: true } : undefined,
    });
  // Which keys, never a key: the source and the ids.
  if ('provider' in keys)
    logger.info({ key_source: keys.provider.source, key_ids: keys.provider.ids(), current_key: keys.provider.currentId }, 'master keys loaded');
  else if ('problem' in keys) logger.error({ err: keys.problem }, 'master keys not loaded: connections with stored credentials are refused');
  const gateway = new Gateway(rules, logger, audit, opts.stateDir ?? tempState!, keys);
  const throttle = new SignInThrottle(rules.server.sign_in_throttle);
  metrics.watchPools(() => gateway.poolStats()); // issue 17: upstream pools on /metrics
  const host = opts.host ?? rules.server.host;
  // A start that fails part way (a port in use, a warehouse that does not come up)
  // closes what it opened: a listener or an embedded server left running would outlive us.
  let wire: WireServer | undefined;
  let admin: AdminServer;
  let shuttingDown = false;
  try {
    await gateway.start();
    wire = await startWireServer({
      host,
      port: opts.port ?? rules.server.port,
      handler: gateway,
      maxMessageBytes: rules.server.max_message_bytes,
      logger,
      authTimeoutMs: rules.server.authentication_timeout,
      idleSessionTimeoutMs: rules.server.idle_session_timeout,
      idleInTransactionTimeoutMs: rules.server.idle_in_transaction_session_timeout,
      closeGraceMs: rules.server.shutdown_timeout,
      tls,
      throttle,
    });
    const listening = wire;
    admin = await startAdminServer({
      host,
      port: opts.adminPort ?? rules.server.admin_port,
      metrics,
      // gatehouse login finds the org's provider and this port here (src/login/document.ts).
      login: {
        forOrg: (org) => loginDocument(rules, org, { port: listening.port, tls: tls ? tls.mode : 'off' }),
        onlyOne: () => {
          const orgs = publishingOrgs(rules);
          return orgs.length === 1 ? loginDocument(rules, orgs[0], { port: listening.port, tls: tls ? tls.mode : 'off' }) : undefined;
        },
      },
      health: () => ({
        ...(shuttingDown ? { status: 'shutting_down' } : {}),
        policy_version: rules.version,
        connections: listening.connections,
        refused_connections: gateway.refusedConnections(),
      }),
    });
  } catch (e) {
    await wire?.close().catch(() => {});
    await gateway.close().catch(() => {});
    if (tempState) rmSync(tempState, { recursive: true, force: true });
    auditFile?.flush();
    throw e;
  }
  const { port } = wire;
  const listening = wire;
  // The real ports (a 0 asked for a free one): whoever started this process reads them here.
  logger.info(
    {
      host,
      port,
      admin_port: admin.port,
      tls: tls ? { mode: tls.mode, cert_file: tlsSettings!.cert_file } : 'off',
      policy_version: rules.version,
      orgs: [...rules.orgs.keys()],
    },
    'gatehouse listening',
  );
  return {
    host,
    port,
    tls: tls ? { mode: tls.mode, certFile: tlsSettings!.cert_file } : 'off',
    adminPort: admin.port,
    gateway,
    throttle,
    logger,
    hurry: () => listening.hurry(),
    close: async () => {
      shuttingDown = true;
      await listening.close();
      await admin.close();
      await gateway.close();
      if (tempState) rmSync(tempState, { recursive: true, force: true });
      auditFile?.flush();
    },
  };
}
