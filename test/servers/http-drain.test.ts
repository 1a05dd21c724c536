import { once } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/servers/http.js';
import { IDLE_CLOSE_MS, watchHttpConnections } from '../../src/servers/http-drain.js';
import type { App } from '../../src/types.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function start(app: App): Promise<{ server: Server; port: number }> {
  const server = createHttpServer(app, { errors: { write: () => {} } });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function open(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await once(socket, 'connect');
  return socket;
}

/** Reads from `socket` until `done(text so far)` says the expected answer is complete. */
function readUntil(socket: Socket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (!done(text)) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

const hello: App = (_environ, startResponse) => {
  startResponse('200 OK', [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '5'],
  ]);
  return [new TextEncoder().encode('hello')];
};

describe('createHttpServer: the connection tracker (http-drain.ts)', () => {
  it('lets go of a response the app ended: an idle kept-alive connection holds nothing of its last request', async () => {
    const { server, port } = await start(hello);
    const seen: WeakRef<ServerResponse>[] = [];
    const requests: WeakRef<IncomingMessage>[] = [];
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      seen.push(new WeakRef(res));
      requests.push(new WeakRef(req));
    });
    const socket = await open(port);
    for (let i = 0; i < 3; i++) {
      const answer = readUntil(socket, (text) => text.endsWith('hello'));
      socket.write(`GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(await answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    }
    // The connection stays open and idle; its responses' 'close' events run on the next ticks.
    await new Promise((resolve) => setTimeout(resolve, 20));
    collectGarbage();
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(seen).toHaveLength(3);
    expect(seen.map((ref) => ref.deref() === undefined)).toEqual([true, true, true]);
    expect(requests.map((ref) => ref.deref() === undefined)).toEqual([true, true, true]);
    expect(socket.destroyed).toBe(false);
  });

  it('drains without cutting a response that is still leaving: its queued bytes keep the connection busy', async () => {
    const big = new Uint8Array(16 * 1024 * 1024).fill(0x61);
    const { server, port } = await start((_environ, startResponse) => {
      startResponse('200 OK', [
        ['Content-Type', 'application/octet-stream'],
        ['Content-Length', String(big.byteLength)],
      ]);
      return [big];
    });
    const socket = await open(port);
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    // The app ends its response at once; its bytes wait on the socket while the client does not read.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const drained = watchHttpConnections(server).drain(10_000);
    // Longer than a connection may stay idle while draining.
    await new Promise((resolve) => setTimeout(resolve, IDLE_CLOSE_MS + 500));
    let received = 0;
    let headEnd = -1;
    let head = '';
    const whole = new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        if (headEnd < 0) {
          head += chunk.toString('latin1');
          headEnd = head.indexOf('\r\n\r\n');
          if (headEnd >= 0) received = head.length - headEnd - 4;
        } else {
          received += chunk.length;
        }
        if (received >= big.byteLength) resolve();
      });
      socket.once('close', () => (received >= big.byteLength ? resolve() : reject(new Error(`cut after ${received} body bytes`))));
    });
    socket.resume();
    await whole;
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received).toBe(big.byteLength);
    await drained;
  }, 20_000);
});
