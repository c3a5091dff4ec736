// The embedded warehouse's PGlite, off the main thread: PostgreSQL-in-WASM runs
// synchronously, so in Node's main thread one long query would stall every session
// (DESIGN 3). The main thread drives it with small requests; every reply is a fresh
// ArrayBuffer, transferred (never a view of WASM memory, which must not be detached).
import { parentPort } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

export type WorkerRequest =
  | { id: number; op: 'init' }
  | { id: number; op: 'script'; sql: string }
  | { id: number; op: 'exec'; message: ArrayBuffer }
  | { id: number; op: 'close' };

export type WorkerReply = { id: number; ok: true; bytes?: ArrayBuffer } | { id: number; ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('embedded-worker.ts runs only as a worker thread');

let db: PGlite | undefined;
let chain: Promise<void> = Promise.resolve();

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  if (req.op === 'init') {
    db = await PGlite.create();
    return { id: req.id, ok: true };
  }
  if (!db) throw new Error('PGlite is not started');
  if (req.op === 'script') {
    await db.exec(req.sql);
    return { id: req.id, ok: true };
  }
  if (req.op === 'exec') {
    // Not execProtocolRaw: in PGlite 0.5.x it also parses every message it returns into
    // an internal results list that only execProtocol/execProtocolStream ever clear, so
    // each row ever fetched stayed on this thread's JS heap (~1.7x its bytes; a 1M-row
    // result ran a 64 MB heap out of memory). The stream variant hands over raw chunks
    // (views of WASM memory: copied at once) and parses nothing.
    const chunks: Uint8Array[] = [];
    let size = 0;
    await db.execProtocolRawStream(new Uint8Array(req.message), {
      syncToFs: false,
      onRawData: (chunk) => {
        chunks.push(chunk.slice());
        size += chunk.length;
      },
    });
    const out = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return { id: req.id, ok: true, bytes: out.buffer };
  }
  await db.close();
  db = undefined;
  return { id: req.id, ok: true };
}

port.on('message', (req: WorkerRequest) => {
  // One request at a time: PGlite is a single backend.
  chain = chain.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(req);
    } catch (e) {
      reply = { id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(reply, reply.ok && reply.bytes ? [reply.bytes] : []);
  });
});
