import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendKeys } from '../../../src/wire/connection.ts';
import { SocketSink } from '../../../src/wire/socket-sink.ts';

describe('BackendKeys', () => {
  it('cancels only with the matching secret, and forgets released keys', () => {
    const keys = new BackendKeys();
    let cancels = 0;
    const k = keys.allocate(() => cancels++);
    expect(k.processId).toBeGreaterThan(0);
    expect(keys.cancel(k.processId, k.secretKey ^ 1)).toBe(false);
    expect(keys.cancel(k.processId + 1, k.secretKey)).toBe(false);
    expect(cancels).toBe(0);
    expect(keys.cancel(k.processId, k.secretKey)).toBe(true);
    expect(cancels).toBe(1);
    keys.release(k.processId);
    expect(keys.cancel(k.processId, k.secretKey)).toBe(false);
    expect(keys.size).toBe(0);
  });

  it('gives distinct process ids', () => {
    const keys = new BackendKeys();
    const ids = new Set(Array.from({ length: 1000 }, () => keys.allocate(() => {}).processId));
    expect(ids.size).toBe(1000);
  });
});

describe('SocketSink', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));

  async function pair(): Promise<{ server: net.Socket; client: net.Socket }> {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
    const server = await accepted;
    // WireConnection owns these listeners in production.
    server.on('error', () => {});
    client.on('error', () => {});
    cleanup.push(() => {
      client.destroy();
      server.destroy();
      srv.close();
    });
    return { server, client };
  }

  it('write returns false at the high-water mark and drain() waits for the reader', async () => {
    const { server, client } = await pair();
    client.pause();
    const sink = new SocketSink(server);
    const row = Array.from({ length: 10 }, () => 'x'.repeat(1000));
    // Fill Node's buffer and then the kernel's: drain() must stay pending while nobody reads.
    let pending: Promise<void> | undefined;
    for (let round = 0; round < 1000 && !pending; round++) {
      while (sink.dataRow(row));
      const d = sink.drain();
      const waited = await Promise.race([d.then(() => false), new Promise((r) => setTimeout(() => r(true), 30))]);
      if (waited) pending = d;
    }
    expect(pending).toBeDefined();
    let drained = false;
    const d = pending!.then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(drained).toBe(false);
    client.resume();
    await d;
    expect(sink.closed).toBe(false);
  });

  it('becomes closed when the client goes, and drain() resolves', async () => {
    const { server, client } = await pair();
    client.pause();
    const sink = new SocketSink(server);
    while (sink.dataRow(['y'.repeat(10_000)]));
    const d = sink.drain();
    // Listen first: the close may come before drain() resolves.
    const serverClosed = new Promise((r) => server.once('close', r));
    client.destroy();
    await d;
    await serverClosed;
    expect(sink.closed).toBe(true);
    expect(sink.dataRow(['z'])).toBe(false);
    await sink.drain();
  });
});
