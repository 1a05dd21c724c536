import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/servers/http.js';
import type { App, Environ, InputStream } from '../../src/types.js';

const LIMIT = 1000;
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

interface Started {
  port: number;
  calls: Environ[];
  log: string[];
}

/** Echoes the body's length; with `catchErrors`, answers 299 naming the read error instead of failing. */
function echoLength(catchErrors = false): App {
  return async (environ, startResponse) => {
    try {
      const body = await (environ['tsgi.input'] as InputStream).read();
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [`got ${body.length}`];
    } catch (error) {
      if (!catchErrors) throw error;
      const { name, status } = error as { name: string; status: number };
      startResponse('299 Caught', [['Content-Type', 'text/plain']]);
      return [`${name} ${status}`];
    }
  };
}

async function start(app: App): Promise<Started> {
  const calls: Environ[] = [];
  const log: string[] = [];
  const server = createHttpServer(
    (environ, startResponse) => {
      calls.push(environ);
      return app(environ, startResponse);
    },
    { maxBodyBytes: LIMIT, errors: { write: (text) => void log.push(text) } },
  );
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, calls, log };
}

/** Sends `pieces` on one connection (a few ms apart) and reads until the server closes it or `until` matches. */
async function exchange(port: number, pieces: string[], until?: RegExp): Promise<{ text: string; closed: boolean }> {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  let closed = false;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within 10 s: ${JSON.stringify(text)}`)), 10_000);
    const finish = (): void => {
      clearTimeout(timer);
      resolve();
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (until?.test(text)) finish();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
  for (const piece of pieces) {
    if (socket.destroyed) break;
    socket.write(piece);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await done;
  socket.destroy();
  return { text, closed };
}

const head = (headers: string): string => `POST /echo HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;
const chunk = (size: number): string => `${size.toString(16)}\r\n${'a'.repeat(size)}\r\n`;

describe('createHttpServer maxBodyBytes', () => {
  it('answers 413 to a Content-Length over the limit before the app runs, and closes', async () => {
    const { port, calls, log } = await start(echoLength());
    const reply = await exchange(port, [head(`Content-Length: ${LIMIT + 1}\r\n`), 'x'.repeat(200)]);
    expect(reply.text).toMatch(/^HTTP\/1\.1 413 Content Too Large\r\n/);
    expect(reply.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(reply.closed).toBe(true);
    expect(calls).toHaveLength(0);
    expect(log.join('')).toContain(`http: request body exceeds maxBodyBytes (${LIMIT + 1} > ${LIMIT})`);
  });

  it('lets a body of exactly the limit through, keeping the connection', async () => {
    const { port } = await start(echoLength());
    const request = head(`Content-Length: ${LIMIT}\r\n`) + 'b'.repeat(LIMIT);
    const reply = await exchange(port, [request, request], /(got 1000[\s\S]*){2}/);
    expect(reply.text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(reply.closed).toBe(false);
  });

  it('does not send 100 Continue for a declared body over the limit', async () => {
    const { port, calls } = await start(echoLength());
    const reply = await exchange(port, [head(`Content-Length: ${LIMIT * 10}\r\nExpect: 100-continue\r\n`)]);
    expect(reply.text).not.toContain('100 Continue');
    expect(reply.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(calls).toHaveLength(0);
  });

  it('fails the read of a chunked body that grows past the limit with a 413 InputError', async () => {
    const { port, calls } = await start(echoLength(true));
    const reply = await exchange(port, [head('Transfer-Encoding: chunked\r\n'), chunk(600), chunk(600), chunk(600), '0\r\n\r\n']);
    expect(calls).toHaveLength(1);
    expect(reply.text).toMatch(/^HTTP\/1\.1 299 Caught\r\n/);
    expect(reply.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(reply.text).toMatch(/InputError 413$/);
    expect(reply.closed).toBe(true);
  });

  it('answers 413 when the app lets that error through before sending anything', async () => {
    const { port, log } = await start(echoLength());
    const reply = await exchange(port, [head('Transfer-Encoding: chunked\r\n'), chunk(900), chunk(900)]);
    expect(reply.text).toMatch(/^HTTP\/1\.1 413 Content Too Large\r\n/);
    expect(reply.text).toMatch(/\r\n\r\n413 Content Too Large\n$/);
    expect(reply.closed).toBe(true);
    expect(log.join('')).toContain(`http: request body exceeds maxBodyBytes (${LIMIT})`);
  });

  it('leaves a chunked body within the limit alone', async () => {
    const { port } = await start(echoLength());
    const request = head('Transfer-Encoding: chunked\r\n') + chunk(500) + chunk(500) + '0\r\n\r\n';
    const reply = await exchange(port, [request, request], /(got 1000[\s\S]*){2}/);
    expect(reply.text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(reply.closed).toBe(false);
  });

  it('cuts a response already under way when the body passes the limit', async () => {
    const { port } = await start(async (environ, startResponse) => {
      const write = startResponse('200 OK', [['Content-Type', 'text/plain']]);
      await write('reading...');
      const input = environ['tsgi.input'] as InputStream;
      for await (const part of input) void part;
      return ['done'];
    });
    const reply = await exchange(port, [head('Transfer-Encoding: chunked\r\n'), chunk(800), chunk(800)]);
    expect(reply.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(reply.text).not.toContain('done');
    // The chunked response never got its last chunk: the client can tell it was cut.
    expect(reply.text).not.toMatch(/\r\n0\r\n\r\n$/);
    expect(reply.closed).toBe(true);
  });

  it('ends the connection after a complete response when the app caught the error after its head', async () => {
    const { port } = await start(async (environ, startResponse) => {
      const write = startResponse('200 OK', [['Content-Type', 'text/plain']]);
      await write('reading...');
      try {
        await (environ['tsgi.input'] as InputStream).read();
      } catch (error) {
        return [` caught ${(error as { status: number }).status}`];
      }
      return [' read it all'];
    });
    const reply = await exchange(port, [head('Transfer-Encoding: chunked\r\n'), chunk(800), chunk(800), chunk(800)]);
    expect(reply.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(reply.text).toContain(' caught 413');
    expect(reply.text).toMatch(/\r\n0\r\n\r\n$/);
    expect(reply.closed).toBe(true);
  });

  it('refuses a bad limit', () => {
    expect(() => createHttpServer(echoLength(), { maxBodyBytes: -1 })).toThrow(/maxBodyBytes must be a whole number/);
  });
});
