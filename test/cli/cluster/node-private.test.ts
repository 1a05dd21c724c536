/**
 * src/node-private/net.ts: the private Node members tsgi uses, each probed, with TSGI_NODE_PRIVATE=0 forcing the
 * public fallbacks. Real sockets; the switch is tried in a child process (a probe runs once per process).
 */
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { probeCreateServerHandle, probeReadStop, stopSocketReads } from '../../../src/node-private/net.js';

const ROOT = join(import.meta.dirname, '../../..');

async function socketPair(): Promise<{ ours: Socket; peer: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const peer = connect(port, '127.0.0.1');
  const [ours] = await accepted;
  await once(peer, 'connect');
  return {
    ours,
    peer,
    close: () => {
      ours.destroy();
      peer.destroy();
      server.close();
    },
  };
}

describe('node-private', () => {
  it('net._createServerHandle passes its probe on this Node and binds a socket without listening', () => {
    const create = probeCreateServerHandle();
    expect(create).not.toBeNull();
    const handle = (create as NonNullable<typeof create>)('127.0.0.1', 0, 4);
    expect(typeof handle).toBe('object');
    expect((handle as { fd: number }).fd).toBeGreaterThan(2);
    (handle as { close(): void }).close();
    // A bind failure is a negative errno, not an exception: an address this host does not have.
    expect((create as NonNullable<typeof create>)('192.0.2.1', 0, 4)).toBeLessThan(0);
  });

  it('stopSocketReads leaves what the peer sends in the kernel', async () => {
    const { ours, peer, close } = await socketPair();
    try {
      expect(probeReadStop(ours)).toBe(true);
      let received = 0;
      ours.on('data', (chunk: Buffer) => (received += chunk.length));
      expect(stopSocketReads(ours)).toBe(true);
      peer.write('x'.repeat(1000));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(received).toBe(0);
      expect(ours.bytesRead).toBe(0);
    } finally {
      close();
    }
  });

  it('TSGI_NODE_PRIVATE=0 makes every probe fail, and the handover off', async () => {
    const script = `
      const net = require('node:net');
      const { probeCreateServerHandle, stopSocketReads } = await import(${JSON.stringify(join(ROOT, 'dist/node-private/net.js'))});
      const { canStopReading } = await import(${JSON.stringify(join(ROOT, 'dist/servers/socket-handover.js'))});
      const server = net.createServer((socket) => {
        console.log(JSON.stringify({ create: probeCreateServerHandle() === null ? null : 'function', stop: stopSocketReads(socket), canStopReading }));
        socket.destroy();
        server.close();
      }).listen(0, '127.0.0.1', () => net.connect(server.address().port, '127.0.0.1').on('error', () => {}));
    `;
    const run = (value: string | undefined) =>
      execa(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); ${script}`], {
        env: value === undefined ? {} : { TSGI_NODE_PRIVATE: value },
      });
    expect(JSON.parse((await run('0')).stdout)).toEqual({ create: null, stop: false, canStopReading: false });
    expect(JSON.parse((await run(undefined)).stdout)).toEqual({ create: 'function', stop: true, canStopReading: true });
  });
});
