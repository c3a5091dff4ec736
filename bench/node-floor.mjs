// The floor for any proxy written on Node's net module: bytes relayed between client and
// PostgreSQL with nothing read, decided or audited (one 'data' callback and one write per
// direction). bench/run.sh runs pgbench through it beside Gatehouse, so the report shows how
// much of Gatehouse's cost per statement is Node's socket round trip and how much is Gatehouse.
// Usage: node bench/node-floor.mjs <listen port> <upstream host> <upstream port>
import net from 'node:net';

const [port, host, upstreamPort] = process.argv.slice(2);
const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host, port: Number(upstreamPort), noDelay: true });
  client.on('data', (d) => upstream.write(d));
  upstream.on('data', (d) => client.write(d));
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('close', end);
  upstream.on('close', end);
  client.on('error', end);
  upstream.on('error', end);
});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
