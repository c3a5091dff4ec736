// A client that sends and never reads its answers is not read either, as PostgreSQL blocks on
// its send: answers Gatehouse writes itself (refusals here) must not pile up in its memory.
// Found by an outside review: 300,000 pipelined refused statements took Gatehouse from 109 to
// 671 MB. The behaviour asserted: the bad client's own writes back up (Gatehouse stopped
// reading it), and another session is served meanwhile.
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGatehouse } from '../../src/serve.ts';
import { pgClient, startGatehouse } from '../helpers/gatehouse.ts';
import { requirePostgres } from '../helpers/servers.ts';

const BOB = 'bob@acme.example';
const CAROL = 'carol@acme.example';

/** One simple Query message. */
function query(sql: string): Buffer {
  const body = Buffer.from(`${sql}\0`);
  const msg = Buffer.alloc(5 + body.length);
  msg[0] = 0x51;
  msg.writeInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
}

describe('a client that never reads', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    await requirePostgres();
    gh = await startGatehouse();
  }, 120_000);
  afterAll(async () => {
    await gh?.close();
  });

  it('is not read past what its socket holds, while others are served', async () => {
    const bad = await pgClient(gh, BOB);
    bad.on('error', () => {}); // destroyed below
    const sock = (bad as unknown as { connection: { stream: Socket } }).connection.stream;
    sock.removeAllListeners('data');
    sock.pause();
    // Refused at once by policy: Gatehouse answers each with an ErrorResponse and ReadyForQuery.
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => query("SELECT pg_read_file('/etc/hostname')")));
    let sent = 0;
    let backedUp = false;
    try {
      // Up to 2,000,000 statements (about 70 MB): far more than the sockets hold.
      for (let i = 0; i < 2000 && !backedUp; i++) {
        if (!sock.write(batch)) {
          const drained = await Promise.race([
            new Promise<boolean>((r) => sock.once('drain', () => r(true))),
            new Promise<boolean>((r) => setTimeout(() => r(false), 3000)),
          ]);
          backedUp = !drained;
        }
        sent += 1000;
      }
      expect(backedUp).toBe(true);
      expect(sent).toBeLessThan(2_000_000);
      // Everyone else is served meanwhile.
      const carol = await pgClient(gh, CAROL);
      try {
        expect((await carol.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await carol.end();
      }
    } finally {
      sock.destroy();
    }
  }, 120_000);
});
