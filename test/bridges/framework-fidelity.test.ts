/**
 * What Express's and Koa's own suites found different through tsgi than on node:http (issue 13, part 2), each
 * cause reproduced on its own: the same Node handler is served by node:http and by tsgi (the HTTP server and
 * the FastCGI server, through fromNodeHandler), and what a client sees is compared.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { fromNodeHandler } from '../../src/bridges/node-handler.js';
import { fromFetch } from '../../src/bridges/fetch.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { createHttpServer } from '../../src/servers/http.js';
import { RecordType } from '../../src/protocol/fastcgi/constants.js';
import { encodeFastCgiRequest, FastCgiClient } from '../../src/testing/fastcgi-client.js';
import type { App } from '../../src/types.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0).reverse()) close();
});

/** Starts `server` on a free loopback port (`host` '::' for a dual-stack listener). */
async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** The handler on node:http, and through tsgi's HTTP server. */
async function bothServers(handler: Handler, host = '127.0.0.1'): Promise<{ node: number; tsgi: number }> {
  const node = await listen(createServer(handler), host);
  const tsgi = await listen(createHttpServer(fromNodeHandler(handler), { errors: { write: () => {} } }), host);
  return { node, tsgi };
}

/** An HTTP/1.1 exchange on a raw socket: resolves when the head has arrived, then collects to the close. */
function request(port: number, text: string): { head: Promise<string>; all: Promise<string>; socket: Socket } {
  const socket = connect(port, '127.0.0.1');
  socket.write(text);
  let received = '';
  let headSeen: (head: string) => void = () => {};
  const head = new Promise<string>((resolve) => (headSeen = resolve));
  const all = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end >= 0) headSeen(received.slice(0, end));
    });
    socket.on('close', () => resolve(received));
    socket.on('error', () => {});
  });
  closers.push(() => socket.destroy());
  return { head, all, socket };
}

/** Resolves to 'timeout' after ms, for races that must not hang the test. */
const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())]);

function headerOf(head: string, name: string): string | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(line.indexOf(':') + 1).trim();
}

describe('res.flushHeaders() sends the head before any body byte', () => {
  /** A handler that flushes its head, then ends only when told: without the flush the head never comes. */
  function flushing(): { handler: Handler; release: () => void } {
    const waiting: ServerResponse[] = [];
    return {
      handler: (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.flushHeaders();
        waiting.push(res);
      },
      release: () => {
        for (const res of waiting.splice(0)) res.end('late');
      },
    };
  }

  for (const where of ['node', 'tsgi'] as const) {
    it(`over HTTP (${where}): the head arrives while the handler still holds the body`, async () => {
      const { handler, release } = flushing();
      const ports = await bothServers(handler);
      const { head, all } = request(ports[where], 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
      const got = await within(head, 3000);
      release();
      expect(got).toMatch(/^HTTP\/1\.1 200 /);
      expect(await all).toContain('late');
    });
  }

  it('over FastCGI: the STDOUT record with the head comes before the body is written', async () => {
    const { handler, release } = flushing();
    const server = createFastCgiServer(fromNodeHandler(handler), { errors: { write: () => {} } });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => {
      server.destroyConnections();
      server.close();
    });
    const client = await FastCgiClient.connect((server.address() as AddressInfo).port);
    closers.push(() => client.close());
    const params = { REQUEST_METHOD: 'GET', SCRIPT_NAME: '', PATH_INFO: '/', SERVER_PROTOCOL: 'HTTP/1.1', QUERY_STRING: '' };
    await client.send(encodeFastCgiRequest({ params }));
    const stdoutSeen = client.waitFor(() => client.records(1).some((r) => r.type === RecordType.STDOUT), 3000, 'STDOUT').then(
      () => 'seen',
      () => 'timeout',
    );
    const got = await stdoutSeen;
    release();
    const reply = await client.reply(1);
    expect(got).toBe('seen');
    expect(reply.stdout.toString('latin1')).toMatch(/^Status: 200 OK\r\n[^]*\r\n\r\nlate$/);
  });

  it('a stream that fails after flushHeaders() cuts the 200 instead of replacing it with a 500 page', async () => {
    const ports = await bothServers((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.flushHeaders();
      setTimeout(() => res.destroy(new Error('stream broke')), 50);
    });
    for (const port of [ports.node, ports.tsgi]) {
      const all = await request(port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n').all;
      expect(all).toMatch(/^HTTP\/1\.1 200 /);
      expect(all).not.toContain('500');
    }
  });

  it('a Fetch Response whose body has produced nothing yet sends its head at once', async () => {
    let push: (text: string) => void = () => {};
    let close: () => void = () => {};
    const app: App = fromFetch(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              push = (text) => controller.enqueue(new TextEncoder().encode(text));
              close = () => controller.close();
            },
          }),
          { headers: { 'Content-Type': 'text/event-stream' } },
        ),
    );
    const port = await listen(createHttpServer(app, { errors: { write: () => {} } }));
    const { head, all } = request(port, 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    const got = await within(head, 3000);
    push('data: one\n\n');
    close();
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(await all).toContain('data: one');
  });
});

describe('the rest of what node:http does', () => {
  it('101 from a handler is sent as 101, not turned into a 500', async () => {
    const ports = await bothServers((_req, res) => {
      res.writeHead(101, { Upgrade: 'websocket', Connection: 'Upgrade' });
      res.end();
    });
    for (const port of [ports.node, ports.tsgi]) {
      const head = await within(request(port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n').head, 3000);
      expect(head).toMatch(/^HTTP\/1\.1 101 Switching Protocols/);
    }
  });

  it("a handler's own Transfer-Encoding: chunked is kept, and no Content-Length is added", async () => {
    const ports = await bothServers((_req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Transfer-Encoding', 'chunked');
      res.end('abc');
    });
    for (const port of [ports.node, ports.tsgi]) {
      const all = await request(port, 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n').all;
      const head = all.slice(0, all.indexOf('\r\n\r\n'));
      expect(headerOf(head, 'transfer-encoding')).toBe('chunked');
      expect(headerOf(head, 'content-length')).toBeUndefined();
      expect(all).toContain('3\r\nabc\r\n0\r\n\r\n');
    }
  });

  it('a 205 whose framing fields the handler removed (as Koa does) gets no Content-Length: 0', async () => {
    const ports = await bothServers((_req, res) => {
      res.statusCode = 205;
      res.removeHeader('Content-Length');
      res.removeHeader('Transfer-Encoding');
      res.end();
    });
    for (const port of [ports.node, ports.tsgi]) {
      const head = await within(request(port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n').head, 3000);
      expect(head).toMatch(/^HTTP\/1\.1 205 /);
      expect(headerOf(head as string, 'content-length')).toBeUndefined();
    }
  });

  it('an IPv4 client of a dual-stack listener is "::ffff:127.0.0.1" in req.socket.remoteAddress and req.ip', async (context) => {
    const app = express();
    app.get('/', (req, res) => void res.type('text/plain').send(`${req.socket.remoteAddress} ${req.ip}`));
    let ports: { node: number; tsgi: number };
    try {
      ports = await bothServers(app as unknown as Handler, '::');
    } catch {
      context.skip(); // No IPv6 on this machine.
      return;
    }
    const bodies: string[] = [];
    for (const port of [ports.node, ports.tsgi]) {
      const all = await request(port, 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n').all;
      bodies.push(all.slice(all.indexOf('\r\n\r\n') + 4));
    }
    expect(bodies[0]).toBe('::ffff:127.0.0.1 ::ffff:127.0.0.1');
    expect(bodies[1]).toBe(bodies[0]);
  });

  it('Host: http://example.com is refused with 400 (a deliberate refusal, listed in the README)', async () => {
    const ports = await bothServers((_req, res) => res.end('ok'));
    const head = await within(request(ports.tsgi, 'GET / HTTP/1.1\r\nHost: http://example.com\r\n\r\n').head, 3000);
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
  });
});
