// Starts a Gatehouse: rules, warehouses, audit, the wire server. Used by the CLI
// and by the integration tests (port 0), so both run the same code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { Metrics } from './admin/metrics.ts';
import { startAdminServer } from './admin/server.ts';
import { type AuditSink, countedAudit, fileAudit, loggerAudit } from './audit/audit.ts';
import { loadRules } from './config/load.ts';
import { Gateway } from './gateway.ts';
import { startWireServer } from './wire/server.ts';

export interface ServeOptions {
  rulesDir: string;
  host?: string;
  port?: number;
  /** Health and metrics over HTTP; 0 picks a free port. */
  adminPort?: number;
  /** Embedded servers' data: <stateDir>/embedded. Without it, a temp dir removed at close (so Gatehouses never share one). */
  stateDir?: string;
  /** Audit records go to this JSON-lines file; without it, to the logger. */
  auditPath?: string;
  logger?: Logger;
}

export interface RunningGatehouse {
  host: string;
  port: number;
  adminPort: number;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<RunningGatehouse> {
  const logger = opts.logger ?? pino({ level: process.env.GATEHOUSE_LOG_LEVEL ?? 'info' });
  const rules = loadRules(opts.rulesDir);
  const auditFile = opts.auditPath ? fileAudit(opts.auditPath) : undefined;
  const metrics = new Metrics();
  const audit: AuditSink = countedAudit(auditFile ?? loggerAudit(logger), metrics);
  const tempState = opts.stateDir ? undefined : mkdtempSync(join(tmpdir(), 'gatehouse-state-'));
  const gateway = new Gateway(rules, logger, audit, opts.stateDir ?? tempState!);
  try {
    await gateway.start();
  } catch (e) {
    if (tempState) rmSync(tempState, { recursive: true, force: true });
    throw e;
  }
  const host = opts.host ?? rules.server.host;
  // A listener that fails to start must not leave the embedded servers running.
  const stopGateway = async () => {
    await gateway.close();
    if (tempState) rmSync(tempState, { recursive: true, force: true });
  };
  const wire = await startWireServer({
    host,
    port: opts.port ?? rules.server.port,
    handler: gateway,
    maxMessageBytes: rules.server.max_message_bytes,
    logger,
  }).catch(async (e) => {
    await stopGateway();
    throw e;
  });
  const admin = await startAdminServer({
    host,
    port: opts.adminPort ?? rules.server.admin_port,
    metrics,
    health: () => ({ policy_version: rules.version, connections: wire.connections }),
  }).catch(async (e) => {
    await wire.close();
    await stopGateway();
    throw e;
  });
  logger.info({ host, port: wire.port, admin_port: admin.port, policy_version: rules.version, orgs: [...rules.orgs.keys()] }, 'gatehouse listening');
  return {
    host,
    port: wire.port,
    adminPort: admin.port,
    gateway,
    close: async () => {
      await wire.close();
      await admin.close();
      await stopGateway();
      auditFile?.flush();
    },
  };
}
