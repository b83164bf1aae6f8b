import { once } from 'node:events';
import { createServer, type Server, Socket } from 'node:net';

import { afterEach, describe, expect, it } from '@jest/globals';

import { coalesceWrites } from './coalesced-writes.js';

/** The chunks each call of the socket's low-level write received (one call is one system call). */
function recordSystemWrites(socket: Socket): string[][] {
  const calls: string[][] = [];
  const internals = socket as unknown as {
    _write(chunk: Buffer, encoding: string, callback: () => void): void;
    _writev(chunks: { chunk: Buffer }[], callback: () => void): void;
  };
  const write = internals._write.bind(socket);
  const writev = internals._writev.bind(socket);
  internals._write = (chunk, encoding, callback) => {
    calls.push([String(chunk)]);
    write(chunk, encoding, callback);
  };
  internals._writev = (chunks, callback) => {
    calls.push(chunks.map((c) => String(c.chunk)));
    writev(chunks, callback);
  };
  return calls;
}

describe(coalesceWrites.name, () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    if (server) await new Promise((done) => server!.close(done));
    server = undefined;
  });

  async function connectedPair(): Promise<{ client: Socket; received: () => string }> {
    let text = '';
    server = createServer((peer) => {
      sockets.push(peer);
      peer.on('data', (chunk) => (text += String(chunk)));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const client = new Socket();
    sockets.push(client);
    client.connect(port, '127.0.0.1');
    await once(client, 'connect');
    return { client, received: () => text };
  }

  it('sends what is written in one tick in one system call, in order, and the next tick again', async () => {
    const { client, received } = await connectedPair();
    coalesceWrites(client);
    const calls = recordSystemWrites(client);
    let flushed = 0;
    client.write('a');
    client.write('b');
    client.write('c', () => (flushed += 1));
    expect(calls).toEqual([]);
    await new Promise((done) => setImmediate(done));
    client.write('d');
    client.write('e', () => (flushed += 1));
    await new Promise((done) => setImmediate(done));
    expect(calls).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
    expect(flushed).toBe(2);
    const deadline = Date.now() + 5_000;
    while (received() !== 'abcde' && Date.now() < deadline) await new Promise((done) => setTimeout(done, 10));
    expect(received()).toBe('abcde');
  });

  it('makes a system call per write without it (what it saves)', async () => {
    const { client } = await connectedPair();
    const calls = recordSystemWrites(client);
    client.write('a');
    client.write('b');
    client.write('c');
    await new Promise((done) => setImmediate(done));
    expect(calls.length).toBeGreaterThan(1);
  });
});
