/**
 * How SCGI and uwsgi answers are written (one request per connection): the head byte for byte as formatCgiHead
 * makes it, an empty first chunk that sends it at once, and how the connection ends. A request read to its
 * last byte leaves nothing the web server could still send: the server closes its socket as soon as the answer
 * is written (as node:http does after `Connection: close`), without waiting for the web server to close first.
 * A peer that sent more than its request may still be sending: closing then would answer its bytes with a
 * reset, which can destroy the answer in flight, so the connection lingers (reads and drops) until the peer
 * closes. Real sockets; the client keeps its side open (allowHalfOpen) so that only the server's behaviour
 * decides when the connection goes.
 */
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { encodeUwsgiPacket } from '../../src/protocol/uwsgi/packet.js';
import type { OneRequestServer } from '../../src/servers/one-request-server.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { createUwsgiServer } from '../../src/servers/uwsgi.js';
import { formatCgiHead } from '../../src/response/cgi-head.js';
import type { App, Header } from '../../src/types.js';
import { closedAfterEachTest, delay, parseReply } from './raw-socket.js';

const VARS = { REQUEST_METHOD: 'POST', REQUEST_URI: '/', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: 'localhost', SERVER_PORT: '80' };

const transports = [
  { name: 'scgi', create: (app: App) => createScgiServer(app), request: (body: string) => encodeScgiRequest(VARS, body), nph: false },
  {
    name: 'uwsgi',
    create: (app: App) => createUwsgiServer(app),
    request: (body: string) => encodeUwsgiPacket({ ...VARS, CONTENT_LENGTH: String(Buffer.byteLength(body)) }, body),
    nph: true,
  },
];

const { servers, sockets } = closedAfterEachTest();

/** Echoes the body it read. */
const echo: App = async (environ, start) => {
  const body = await environ['tsgi.input'].read();
  start('200 OK', [['Content-Type', 'text/plain']]);
  return [body];
};

/** The connections `server` has open now. */
function openConnections(server: OneRequestServer): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

/** Sends `bytes` on a connection that keeps its side open; resolves with what came back once the server's FIN arrived. */
async function ask(port: number, bytes: Uint8Array): Promise<{ socket: Socket; reply: Buffer }> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  sockets.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve) => socket.once('end', resolve));
  socket.write(bytes);
  await ended;
  return { socket, reply: Buffer.concat(chunks) };
}

describe.each(transports)('$name: the response head', (transport) => {
  it('is byte for byte what formatCgiHead makes: common heads, one with a char above U+00FF, one over 4 KiB with a large body', async () => {
    const heads: Array<{ headers: Header[]; body: string }> = [
      { headers: [['Content-Type', 'text/plain']], body: 'small' },
      { headers: [['Content-Type', 'text/plain'], ['X-Wide', 'caf\u00e9 \u20ac']], body: 'wide' },
      { headers: [['Content-Type', 'text/plain'], ['X-Long', 'x'.repeat(5000)]], body: 'y'.repeat(100_000) },
      { headers: [['Content-Type', 'text/html']], body: 'small' },
    ];
    // Some twice in a row: a head the same as the last one written is copied, any other written anew.
    const [small, wide, long, html] = heads as [(typeof heads)[number], (typeof heads)[number], (typeof heads)[number], (typeof heads)[number]];
    for (const { headers, body } of [small, small, wide, long, html, html, small]) {
      const server = transport.create((_environ, start) => (start('200 OK', headers), [body]));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      const { reply } = await ask((server.address() as AddressInfo).port, transport.request(''));
      const expected = formatCgiHead(200, 'OK', [...headers, ['Content-Length', String(body.length)]], transport.nph ? { protocol: 'HTTP/1.1' } : undefined);
      expect(reply.subarray(0, expected.length).toString('latin1')).toBe(expected.toString('latin1'));
      expect(reply.subarray(expected.length).toString('latin1')).toBe(body);
    }
  });
});

describe.each(transports)('$name: an empty first chunk', (transport) => {
  it('sends the head at once, before the body (SPEC 4.4: server-sent events)', async () => {
    let headSeen: () => void = () => {};
    const seen = new Promise<void>((resolve) => (headSeen = resolve));
    const server = transport.create((_environ, start) => {
      start('200 OK', [['Content-Type', 'text/event-stream']]);
      return (async function* () {
        yield '';
        // Only once the client has the head: a server that held it back for the body would never get here.
        await seen;
        yield 'data: 1\n\n';
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const socket = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
    sockets.push(socket);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (Buffer.concat(chunks).includes('\r\n\r\n')) headSeen();
    });
    const closed = new Promise<void>((resolve) => socket.once('close', resolve));
    socket.write(transport.request(''));
    await closed;
    expect(parseReply({ bytes: Buffer.concat(chunks), ending: 'end' }, transport.nph).body.toString()).toBe('data: 1\n\n');
  });
});

describe.each(transports)('$name: closing the connection after the answer', (transport) => {
  async function start(): Promise<{ server: OneRequestServer; port: number }> {
    const server = transport.create(echo);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return { server, port: (server.address() as AddressInfo).port };
  }

  it('a request read to its last byte: the server closes once the answer is out, while the web server still has its side open', async () => {
    const { server, port } = await start();
    for (const body of ['', 'a body of some bytes']) {
      const { socket, reply } = await ask(port, transport.request(body));
      expect(parseReply({ bytes: reply, ending: 'end' }, transport.nph).body.toString()).toBe(body);
      const started = Date.now();
      while ((await openConnections(server)) > 0) {
        // Lingering would keep it open for LINGER_MS (5 s): far longer than this.
        expect(Date.now() - started).toBeLessThan(2_000);
        await delay(10);
      }
      expect(socket.destroyed).toBe(false);
    }
  });

  it('a peer that sent more than its request: the connection stays open (read and dropped) until the peer closes', async () => {
    const { server, port } = await start();
    const { socket, reply } = await ask(port, Buffer.concat([transport.request('body'), Buffer.from('more bytes than announced')]));
    expect(parseReply({ bytes: reply, ending: 'end' }, transport.nph).body.toString()).toBe('body');
    await delay(300);
    expect(await openConnections(server)).toBe(1);
    socket.write('still sending');
    socket.end();
    const started = Date.now();
    while ((await openConnections(server)) > 0) {
      expect(Date.now() - started).toBeLessThan(2_000);
      await delay(10);
    }
  });
});
