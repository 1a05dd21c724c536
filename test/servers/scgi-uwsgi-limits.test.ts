/**
 * Issue 10, part 3: a peer must not be able to hold SCGI or uwsgi connections for ever. Every phase the peer
 * controls has a timeout (the head from the accept, a body that stops arriving), every refusal at a limit is
 * logged through the rate-limited limit log (one line for a flood, not one per connection), and the server
 * serves normal requests again once the hostile peer stops. Real sockets throughout.
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeScgiHeader, encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { encodeUwsgiPacket } from '../../src/protocol/uwsgi/packet.js';
import type { OneRequestServer, OneRequestServerOptions } from '../../src/servers/one-request-server.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { createUwsgiServer } from '../../src/servers/uwsgi.js';
import type { App } from '../../src/types.js';
import { closedAfterEachTest, collect, delay, exchange, hello, open, parseReply, type RawReply } from './raw-socket.js';

interface Transport {
  name: 'scgi' | 'uwsgi';
  create(app: App, options: OneRequestServerOptions): OneRequestServer;
  /** A whole request: the head (CONTENT_LENGTH = body's length unless `declared`) and the body. */
  request(vars: Record<string, string>, body?: string, declared?: number): Buffer;
  /** A head that announces far more bytes than it sends: the first bytes of a 65535-byte head. */
  halfHead(): Buffer;
  nph: boolean;
}

const BASE = { REQUEST_METHOD: 'GET', REQUEST_URI: '/', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: 'localhost', SERVER_PORT: '80' };

const transports: Transport[] = [
  {
    name: 'scgi',
    create: (app, options) => createScgiServer(app, options),
    request(vars, body = '', declared) {
      if (declared === undefined) return encodeScgiRequest(vars, body);
      const head = encodeScgiHeader([['CONTENT_LENGTH', String(declared)], ['SCGI', '1'], ...Object.entries(vars)]);
      return Buffer.concat([head, Buffer.from(body)]);
    },
    halfHead: () => Buffer.from('65535:CONTENT_L', 'latin1'),
    nph: false,
  },
  {
    name: 'uwsgi',
    create: (app, options) => createUwsgiServer(app, options),
    request(vars, body = '', declared) {
      return encodeUwsgiPacket({ ...vars, CONTENT_LENGTH: String(declared ?? Buffer.byteLength(body)) }, body);
    },
    // The reproduction from the issue: a packet announcing 65535 bytes of vars, and 10 sent.
    halfHead: () => Buffer.concat([Buffer.from([0, 0xff, 0xff, 0]), Buffer.from('0e00524551', 'hex'), Buffer.alloc(5, 0x41)]),
    nph: true,
  },
];

const { servers, sockets } = closedAfterEachTest();

/** Lines of `log` about the limit `name`. */
const linesAbout = (log: string[], name: string): string[] => log.join('').split('\n').filter((line) => line.includes(`limit ${name}`));

/** Resolves once `check` holds (polled), or fails after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

describe.each(transports)('$name: peer timeouts and limits (issue 10, part 3)', (transport) => {
  async function start(app: App, options: OneRequestServerOptions = {}): Promise<{ server: OneRequestServer; port: number; log: string[] }> {
    const log: string[] = [];
    const server = transport.create(app, { errors: { write: (text) => void log.push(text) }, ...options });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return { server, port: (server.address() as AddressInfo).port, log };
  }

  async function served(port: number): Promise<string> {
    const reply = await exchange(port, transport.request(BASE));
    return parseReply(reply, transport.nph).body.toString();
  }

  it('has the documented defaults (10 s for the head, 30 s for a stalled body) and refuses a negative timeout', () => {
    const server = transport.create(hello, {});
    expect([server.options.headerTimeoutMs, server.options.bodyTimeoutMs]).toEqual([10_000, 30_000]);
    expect(() => transport.create(hello, { headerTimeoutMs: -1 })).toThrow(/headerTimeoutMs must be a number/);
    expect(() => transport.create(hello, { bodyTimeoutMs: Number.NaN })).toThrow(/bodyTimeoutMs must be a number/);
  });

  it('silent connections are closed after headerTimeoutMs, connections over maxConnections are dropped, each logged once; then requests are served', async () => {
    const { server, port, log } = await start(hello, { headerTimeoutMs: 300, maxConnections: 40 });
    const silent = await Promise.all(Array.from({ length: 120 }, () => open(port)));
    sockets.push(...silent);
    const replies = await Promise.all(silent.map((socket) => collect(socket, 5_000)));
    // Nothing was asked, so nothing is answered: every connection just closes.
    expect(replies.every((reply) => reply.bytes.length === 0)).toBe(true);
    await until(() => linesAbout(log, 'maxConnections').length > 0, 2_000, 'the maxConnections line');
    const timeouts = linesAbout(log, 'headerTimeoutMs');
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0]).toMatch(new RegExp(`^tsgi: ${transport.name}: a connection sent nothing for 0.3 s: refused at the limit headerTimeoutMs; to change it: --header-timeout SECONDS`));
    const drops = linesAbout(log, 'maxConnections');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatch(/40 connections are open: refused at the limit maxConnections; to change it: --max-connections N/);
    let open_ = -1;
    await until(() => (server.getConnections((_error, count) => (open_ = count)), open_ === 0), 2_000, 'every connection to close');
    expect(await served(port)).toBe('hello');
  });

  it('a head that announces more than it sends (the half-sent packet) gets 408 after headerTimeoutMs and the connection closes', async () => {
    const { port, log } = await start(hello, { headerTimeoutMs: 300 });
    const started = Date.now();
    const reply = await exchange(port, transport.halfHead());
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(parseReply(reply, transport.nph).status).toBe(408);
    expect(reply.ending).toBe('end');
    expect(linesAbout(log, 'headerTimeoutMs')[0]).toMatch(/a connection sent \d+ bytes and no complete request head in 0.3 s/);
    expect(await served(port)).toBe('hello');
  });

  it('the head timeout runs from the accept: a head trickled a byte at a time is not kept alive by its bytes', async () => {
    const { port, log } = await start(hello, { headerTimeoutMs: 400 });
    const socket = await open(port);
    sockets.push(socket);
    const reply = collect(socket, 5_000);
    const packet = transport.request(BASE);
    let closed = false;
    void reply.then(() => (closed = true));
    for (let at = 0; at < packet.length - 1 && !closed; at++) {
      if (!socket.destroyed) socket.write(packet.subarray(at, at + 1));
      await delay(40);
    }
    expect(parseReply(await reply, transport.nph).status).toBe(408);
    expect(linesAbout(log, 'headerTimeoutMs')).toHaveLength(1);
  });

  it('a head split in pieces that completes within headerTimeoutMs is served', async () => {
    const { port } = await start(hello, { headerTimeoutMs: 1_000 });
    const packet = transport.request(BASE);
    const socket = await open(port);
    sockets.push(socket);
    const reply = collect(socket, 5_000);
    for (const piece of [packet.subarray(0, 3), packet.subarray(3, 20), packet.subarray(20)]) {
      socket.write(piece);
      await delay(100);
    }
    expect(parseReply(await reply, transport.nph).body.toString()).toBe('hello');
  });

  it('a body that stops arriving: the app\'s read fails with an InputError 408 after bodyTimeoutMs, the answer is sent, the connection closes', async () => {
    let failure: { name: string; status: unknown } | null = null;
    const reader: App = async (environ, start) => {
      try {
        await environ['tsgi.input'].read();
      } catch (error) {
        failure = { name: (error as Error).name, status: (error as { status?: unknown }).status };
        throw error;
      }
      start('200 OK', [['Content-Type', 'text/plain']]);
      return ['read it all'];
    };
    const { port, log } = await start(reader, { bodyTimeoutMs: 300 });
    const started = Date.now();
    // 100 bytes announced, 10 sent, then silence (the socket stays open).
    const reply: RawReply = await exchange(port, transport.request({ ...BASE, REQUEST_METHOD: 'POST' }, '0123456789', 100));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(failure).toEqual({ name: 'InputError', status: 408 });
    expect(parseReply(reply, transport.nph).status).toBe(408);
    const lines = linesAbout(log, 'bodyTimeoutMs');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/a request body stopped arriving for 0.3 s \(90 of its CONTENT_LENGTH bytes missing\).*--body-timeout SECONDS/);
    expect(await served(port)).toBe('read it all');
  });

  it('a body that keeps trickling (each piece within bodyTimeoutMs) is not cut, however long it takes in all', async () => {
    const echo: App = async (environ, start) => {
      const body = await environ['tsgi.input'].read();
      start('200 OK', [['Content-Type', 'text/plain']]);
      return [body];
    };
    const { port, log } = await start(echo, { bodyTimeoutMs: 250 });
    const socket = await open(port);
    sockets.push(socket);
    const reply = collect(socket, 5_000);
    socket.write(transport.request({ ...BASE, REQUEST_METHOD: 'POST' }, '', 8));
    for (const piece of ['ab', 'cd', 'ef', 'gh']) {
      await delay(120);
      socket.write(piece);
    }
    expect(parseReply(await reply, transport.nph).body.toString()).toBe('abcdefgh');
    expect(linesAbout(log, 'bodyTimeoutMs')).toEqual([]);
  });

  it('an app that reads slowly (socket paused for backpressure) is not a stalled body', async () => {
    const body = 'x'.repeat(256 * 1024);
    const slow: App = async (environ, start) => {
      await delay(700);
      const input = environ['tsgi.input'];
      let total = 0;
      for (;;) {
        const part = await input.read(4096);
        if (part.length === 0) break;
        total += part.length;
        await delay(1);
      }
      start('200 OK', [['Content-Type', 'text/plain']]);
      return [String(total)];
    };
    const { port, log } = await start(slow, { bodyTimeoutMs: 200, inputHighWaterBytes: 16 * 1024 });
    const reply = await exchange(port, transport.request({ ...BASE, REQUEST_METHOD: 'POST' }, body));
    expect(parseReply(reply, transport.nph).body.toString()).toBe(String(body.length));
    expect(linesAbout(log, 'bodyTimeoutMs')).toEqual([]);
  });

  it('0 turns the head timeout off', async () => {
    const { port } = await start(hello, { headerTimeoutMs: 0 });
    const socket = await open(port);
    sockets.push(socket);
    let closed = false;
    socket.on('close', () => (closed = true));
    await delay(400);
    expect(closed).toBe(false);
  });

  it('a body over maxBodyBytes is answered 413 and logged once through the limit log, naming --max-body', async () => {
    const { port, log } = await start(hello, { maxBodyBytes: 4 });
    for (let i = 0; i < 3; i++) {
      const reply = await exchange(port, transport.request({ ...BASE, REQUEST_METHOD: 'POST' }, 'too long'));
      expect(parseReply(reply, transport.nph).status).toBe(413);
    }
    const lines = linesAbout(log, 'maxBodyBytes');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/a request body of 8 bytes was answered 413 \(over 4\).*--max-body SIZE/);
  });
});
