// The admin HTTP endpoint: health, metrics, and what `gatehouse login` needs to find an org's
// identity provider (the admin API for rules and grants comes later).
import { type Server, createServer } from 'node:http';
import { DEFAULT_LOGIN_PATH, LOGIN_PATH, type LoginDocument } from '../login/document.ts';
import type { Metrics } from './metrics.ts';

/** The login documents (src/login/document.ts): by org, and the one org's when only one publishes. */
export interface LoginPublisher {
  forOrg(org: string): LoginDocument | undefined;
  onlyOne(): LoginDocument | undefined;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

export function startAdminServer(opts: {
  host: string;
  port: number;
  metrics: Metrics;
  health: () => Record<string, unknown>;
  login?: LoginPublisher;
}): Promise<AdminServer> {
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  const server: Server = createServer(async (req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/healthz') {
        // A load balancer takes a shutting-down instance out of rotation on the 503.
        const health = { status: 'ok', ...opts.health() };
        res.writeHead(health.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(health));
      } else if (req.method === 'GET' && req.url === '/metrics') {
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(await opts.metrics.registry.metrics());
      } else if (req.method === 'GET' && req.url?.startsWith(LOGIN_PATH)) {
        // One answer for an org that does not exist and one that publishes no login.
        // Org names are identifiers: anything else (an escape included) is no org, never decoded.
        const org = req.url.slice(LOGIN_PATH.length).split('?')[0];
        const doc = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(org) ? opts.login?.forOrg(org) : undefined;
        if (doc) json(res, 200, doc);
        else
          json(res, 404, {
            error: 'no gatehouse login for that org here',
            hint: 'check the org name; an org admin sets identity_provider.login in its org.yaml',
          });
      } else if (req.method === 'GET' && req.url === DEFAULT_LOGIN_PATH) {
        const doc = opts.login?.onlyOne();
        if (doc) json(res, 200, doc);
        else json(res, 404, { error: 'this Gatehouse has no single org to sign in to', hint: 'name your org: gatehouse login ORG --server URL, or URL/ORG' });
      } else {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: 'not found', endpoints: ['/healthz', '/metrics', `${LOGIN_PATH}<org>`] }));
      }
    } catch {
      res.writeHead(500).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : opts.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
