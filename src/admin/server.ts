// The admin HTTP endpoint: health and metrics (the admin API for rules and grants comes later).
import { type Server, createServer } from 'node:http';
import type { Metrics } from './metrics.ts';

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

export function startAdminServer(opts: { host: string; port: number; metrics: Metrics; health: () => Record<string, unknown> }): Promise<AdminServer> {
  const server: Server = createServer(async (req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/healthz') {
        // A load balancer takes a shutting-down instance out of rotation on the 503.
        const health = { status: 'ok', ...opts.health() };
        res.writeHead(health.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(health));
      } else if (req.method === 'GET' && req.url === '/metrics') {
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(await opts.metrics.registry.metrics());
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found', endpoints: ['/healthz', '/metrics'] }));
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
