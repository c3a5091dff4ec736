#!/usr/bin/env node
// Small PostgreSQL clients for bench/run.sh, for what pgbench cannot do (issue 17):
//
//   stream  --rows N               read `SELECT g, repeat('x', 100) FROM generate_series(1, N) g`,
//                                  discarding each row as it arrives (no accumulation), and print
//                                  {rows, bytes, seconds} as JSON
//   bad     --hold N --midauth N --noread N --rows N --seconds S
//                                  misbehave beside the measured clients until S seconds pass or
//                                  SIGTERM: hold N signed-in idle sessions; stop N connections
//                                  mid-authentication (StartupMessage sent, SASL exchange never
//                                  answered); send N big SELECTs and never read their results.
//                                  Prints "ready" on stderr once set up, and at the end a JSON
//                                  summary of what it saw (errors by SQLSTATE, closes by the server).
//   connect --conns N --seconds S  open N sessions at once, hold them S seconds, print how many
//                                  signed in and the errors of the others
//
// Common: --host --port --db --user; the password comes from PGPASSWORD (node-postgres reads it).
// Uses node-postgres from devDependencies; SSL off (Gatehouse does not serve TLS yet).
import net from 'node:net';
import pg from 'pg';

const args = process.argv.slice(2);
const cmd = args.shift();
const opt = {};
for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
const conn = {
  host: opt.host ?? '127.0.0.1',
  port: Number(opt.port ?? 5432),
  database: opt.db,
  user: opt.user,
  ssl: false,
  connectionTimeoutMillis: 20_000,
};
const num = (k, d) => Number(opt[k] ?? d);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errKey = (e) => `${e.code ?? e.errno ?? 'no-sqlstate'}: ${String(e.message).slice(0, 160)}`;

function tally(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

async function stream() {
  const rows = num('rows', 1_000_000);
  const client = new pg.Client(conn);
  await client.connect();
  const sock = client.connection.stream;
  const before = sock.bytesRead;
  const t0 = process.hrtime.bigint();
  let n = 0;
  await new Promise((resolve, reject) => {
    // A Query with a 'row' listener and no callback does not accumulate rows (pg/lib/query.js).
    const q = new pg.Query({ text: `SELECT g, repeat('x', 100) FROM generate_series(1, ${rows}) g`, rowMode: 'array' });
    q.on('row', () => {
      n++;
    });
    q.on('end', resolve);
    q.on('error', reject);
    client.query(q);
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = sock.bytesRead - before;
  await client.end();
  process.stdout.write(`${JSON.stringify({ rows: n, bytes, seconds })}\n`);
}

// A StartupMessage (protocol 3.0) and nothing after the server's authentication request.
function midAuth(summary, sockets) {
  return new Promise((resolve) => {
    const s = net.connect(conn.port, conn.host);
    sockets.push(s);
    let got = false;
    s.on('connect', () => {
      const params = Buffer.from(`user\0${conn.user}\0database\0${conn.database}\0\0`);
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(196608, 4);
      s.write(Buffer.concat([head, params]));
    });
    s.on('data', (d) => {
      if (!got) {
        got = true;
        // 'R' = an authentication request: the exchange is now left hanging.
        tally(summary.midauth.first_reply, d[0] === 0x52 ? `R (auth request ${d.readInt32BE(5)})` : String.fromCharCode(d[0]));
        resolve();
      }
    });
    s.on('error', (e) => {
      tally(summary.midauth.errors, errKey(e));
      resolve();
    });
    s.on('close', () => {
      if (!summary.stopping) summary.midauth.closed_by_server++;
      resolve();
    });
  });
}

async function bad() {
  const seconds = num('seconds', 60);
  const summary = {
    stopping: false,
    hold: { wanted: num('hold', 0), signed_in: 0, errors: {}, closed_by_server: 0 },
    midauth: { wanted: num('midauth', 0), first_reply: {}, errors: {}, closed_by_server: 0 },
    noread: { wanted: num('noread', 0), rows: num('rows', 10_000_000), sent: 0, errors: {}, closed_by_server: 0 },
  };
  const clients = [];
  const sockets = [];
  const watch = (c, part) => {
    c.on('error', (e) => tally(summary[part].errors, errKey(e)));
    c.on('end', () => {
      if (!summary.stopping) summary[part].closed_by_server++;
    });
  };
  // The never-reading sessions sign in first: the held ones then fill the user's session limit.
  const noread = Array.from({ length: summary.noread.wanted }, async () => {
    const c = new pg.Client(conn);
    clients.push(c);
    watch(c, 'noread');
    try {
      await c.connect();
      // Stop reading, then send the query: the results pile up in the server's send path.
      c.connection.stream.pause();
      c.query(`SELECT g, repeat('x', 100) FROM generate_series(1, ${summary.noread.rows}) g`).catch((e) => tally(summary.noread.errors, errKey(e)));
      summary.noread.sent++;
    } catch (e) {
      tally(summary.noread.errors, errKey(e));
    }
  });
  await Promise.race([Promise.all(noread), sleep(30_000)]);
  const held = Array.from({ length: summary.hold.wanted }, async () => {
    const c = new pg.Client(conn);
    clients.push(c);
    watch(c, 'hold');
    try {
      await c.connect();
      summary.hold.signed_in++;
    } catch (e) {
      tally(summary.hold.errors, errKey(e));
    }
  });
  const stuck = Array.from({ length: summary.midauth.wanted }, () => midAuth(summary, sockets));
  await Promise.race([Promise.all([...held, ...stuck]), sleep(30_000)]);
  process.stderr.write('ready\n');
  await new Promise((resolve) => {
    const t = setTimeout(resolve, seconds * 1000);
    process.once('SIGTERM', () => {
      clearTimeout(t);
      resolve();
    });
  });
  summary.stopping = true;
  for (const s of sockets) s.destroy();
  for (const c of clients) c.connection?.stream?.destroy();
  delete summary.stopping;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(0);
}

async function connect() {
  const n = num('conns', 150);
  const clients = [];
  const errors = {};
  let ok = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const c = new pg.Client(conn);
      c.on('error', () => {});
      // Every client is ended at the end, those whose SELECT failed too (they kept the process alive).
      clients.push(c);
      try {
        await c.connect();
        await c.query('SELECT 1');
        ok++;
      } catch (e) {
        tally(errors, errKey(e));
      }
    }),
  );
  await sleep(num('seconds', 2) * 1000);
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  process.stdout.write(`${JSON.stringify({ wanted: n, signed_in: ok, errors })}\n`);
  process.exit(0);
}

const commands = { stream, bad, connect };
if (!commands[cmd]) {
  process.stderr.write(`usage: clients.mjs stream|bad|connect --host H --port P --db D --user U ...\n`);
  process.exit(2);
}
commands[cmd]().catch((e) => {
  process.stderr.write(`clients.mjs ${cmd}: ${errKey(e)}\n`);
  process.exit(1);
});
