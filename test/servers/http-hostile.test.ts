/**
 * The embedded HTTP server against bad apps and hostile clients (issue 10 part 4): response heads a client
 * could frame differently, headers past what Node keeps, versions other than 1.x, connection caps, and
 * slow clients. Real sockets throughout.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServerOptions } from '../../src/servers/http.js';
import type { App, Header } from '../../src/types.js';
import { collect, delay, open } from './raw-socket.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function start(app: App, options: HttpServerOptions = {}): Promise<{ port: number; calls: () => number; log: string[] }> {
  const log: string[] = [];
  let calls = 0;
  const server = createHttpServer(
    (environ, startResponse) => {
      calls++;
      return app(environ, startResponse);
    },
    { errors: { write: (text) => void log.push(text) }, ...options },
  );
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, calls: () => calls, log };
}

/** Sends `raw` and returns everything received until the server closes (latin-1) and the time it took. */
async function exchange(port: number, raw: string, timeoutMs = 5000): Promise<{ text: string; ms: number; ending: string }> {
  const started = Date.now();
  const socket = await open(port);
  const reply = collect(socket, timeoutMs);
  socket.write(Buffer.from(raw, 'latin1'));
  const { bytes, ending } = await reply;
  return { text: bytes.toString('latin1'), ms: Date.now() - started, ending };
}

/** The status codes of the responses in `text` (one per status line). */
const statuses = (text: string): number[] => [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));

const hello: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['hello'];
};

describe('createHttpServer against bad apps and hostile clients', () => {
  describe('an app-set Content-Length that could be framed two ways never reaches the wire', () => {
    const cases: Array<[string, Header[]]> = [
      ['-1', [['Content-Length', '-1']]],
      ['abc', [['Content-Length', 'abc']]],
      ['3, 50', [['Content-Length', '3, 50']]],
      ['+3', [['Content-Length', '+3']]],
      ['empty', [['Content-Length', '']]],
      ['two different values', [['Content-Length', '3'], ['Content-Length', '50']]],
      ['with a Transfer-Encoding too', [['Transfer-Encoding', 'chunked'], ['Content-Length', '-1']]],
    ];
    it.each(cases)('%s: 500 with one well-formed Content-Length, logged, and the pipelined request behind is answered', async (_name, headers) => {
      const { port, log } = await start((environ, startResponse) => {
        if (environ.PATH_INFO === '/next') return hello(environ, startResponse);
        startResponse('200 OK', [['Content-Type', 'text/plain'], ...headers]);
        return ['abc'];
      });
      const raw = 'GET /bad HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
      const { text } = await exchange(port, raw);
      expect(statuses(text)).toEqual([500, 200]);
      const first = text.slice(0, text.indexOf('\r\n\r\n'));
      expect(first.match(/^content-length: /gim)).toHaveLength(1);
      expect(first).toMatch(/^Content-Length: 26$/m);
      expect(text.endsWith('\r\n\r\nhello')).toBe(true);
      expect(log.join('')).toMatch(/app failed: .*Content-Length/);
    });

    it('two identical Content-Length headers go out as one', async () => {
      const { port } = await start((_environ, startResponse) => {
        startResponse('200 OK', [['Content-Length', '3'], ['Content-Length', '3']]);
        return ['abc'];
      });
      const { text } = await exchange(port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      expect(statuses(text)).toEqual([200]);
      expect(text.match(/^content-length: /gim)).toHaveLength(1);
      expect(text.endsWith('\r\n\r\nabc')).toBe(true);
    });

    it('an app-set Transfer-Encoding is still dropped: Node frames the body itself', async () => {
      const { port } = await start((_environ, startResponse) => {
        startResponse('200 OK', [['Transfer-Encoding', 'gzip']]);
        return (async function* () {
          yield 'abc';
        })();
      });
      const { text } = await exchange(port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      expect(text).toMatch(/^Transfer-Encoding: chunked\r$/m);
      expect(text).not.toMatch(/gzip/);
      expect(text.endsWith('\r\n\r\n3\r\nabc\r\n0\r\n\r\n')).toBe(true);
    });
  });

  describe('header lines past what Node keeps', () => {
    const fillers = (count: number): string => Array.from({ length: count }, (_, i) => `X-F${i}: 1\r\n`).join('');

    it('a Transfer-Encoding after 999 fillers gets one 431 and never reaches the app', async () => {
      const { port, calls, log } = await start(hello);
      const raw = `POST / HTTP/1.1\r\nHost: t\r\n${fillers(999)}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`;
      const { text } = await exchange(port, raw);
      expect(statuses(text)).toEqual([431]);
      expect(text).toMatch(/^Connection: close\r$/m);
      expect(calls()).toBe(0);
      expect(log.join('')).toMatch(/refused at the limit maxHeaders/);
    });

    it('1,000 header lines are served; maxHeaders lowers the bound', async () => {
      const { port } = await start(hello);
      const { text } = await exchange(port, `GET / HTTP/1.1\r\nHost: t\r\n${fillers(998)}Connection: close\r\n\r\n`);
      expect(statuses(text)).toEqual([200]);
      const small = await start(hello, { maxHeaders: 10 });
      expect(statuses((await exchange(small.port, `GET / HTTP/1.1\r\nHost: t\r\n${fillers(9)}Connection: close\r\n\r\n`)).text)).toEqual([431]);
      expect(statuses((await exchange(small.port, `GET / HTTP/1.1\r\nHost: t\r\n${fillers(8)}Connection: close\r\n\r\n`)).text)).toEqual([200]);
      expect(small.calls()).toBe(1);
    });
  });

  describe('HTTP versions other than 1.x get 505', () => {
    it.each([
      ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: t\r\n\r\n'],
      ['HTTP/0.9 declared', 'GET / HTTP/0.9\r\nHost: t\r\n\r\n'],
      ['an HTTP/0.9 request line', 'GET /\r\n\r\n'],
    ])('%s', async (_name, raw) => {
      const { port, calls } = await start(hello);
      const { text } = await exchange(port, raw);
      expect(statuses(text)).toEqual([505]);
      expect(calls()).toBe(0);
    });
  });

  it('maxConnections: a connection past the cap is closed at once, logged once, and the server still serves', async () => {
    const { port, log } = await start(hello, { maxConnections: 2 });
    const held = [await open(port), await open(port)];
    await delay(50);
    const refused = await Promise.all([exchange(port, ''), exchange(port, '')]);
    for (const reply of refused) expect(reply.text).toBe('');
    expect(log.filter((line) => line.includes('refused at the limit maxConnections'))).toHaveLength(1);
    expect(log.join('')).toMatch(/--max-connections N/);
    held[0]?.destroy();
    await delay(50);
    const { text } = await exchange(port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    expect(statuses(text)).toEqual([200]);
    held[1]?.destroy();
  });

  it('headerTimeoutMs: slowloris clients get a 408 and are closed within the timeout; others are served meanwhile; one log line', async () => {
    const { port, log } = await start(hello, { headerTimeoutMs: 400 });
    const slow = async (): Promise<{ text: string; ms: number }> => {
      const started = Date.now();
      const socket = await open(port);
      const reply = collect(socket, 5000);
      const head = 'GET / HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n'.repeat(20);
      // One byte every 20 ms: never idle long enough for any idle timer.
      void (async () => {
        for (const byte of head) {
          if (socket.destroyed) return;
          socket.write(byte);
          await delay(20);
        }
      })();
      const { bytes } = await reply;
      return { text: bytes.toString('latin1'), ms: Date.now() - started };
    };
    const silent = exchange(port, '');
    const slowOnes = Promise.all([slow(), slow()]);
    await delay(100);
    for (let i = 0; i < 3; i++) {
      const { text } = await exchange(port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      expect(statuses(text)).toEqual([200]);
    }
    for (const { text, ms } of [...(await slowOnes), await silent]) {
      expect(statuses(text)).toEqual([408]);
      expect(ms).toBeGreaterThanOrEqual(350);
      // The timeout plus Node's check interval (a quarter of it) and some slack.
      expect(ms).toBeLessThan(1000);
    }
    expect(log.filter((line) => line.includes('refused at the limit headerTimeoutMs'))).toHaveLength(1);
    expect(log.join('')).toMatch(/--header-timeout SECONDS/);
  });

  describe('bodyTimeoutMs', () => {
    it('a body that stops arriving fails the read with 408, the connection closes, logged', async () => {
      let readError: unknown;
      const { port, log } = await start(
        async (environ, startResponse) => {
          try {
            await environ['tsgi.input'].read();
          } catch (error) {
            readError = error;
            throw error;
          }
          startResponse('200 OK', []);
          return [];
        },
        { bodyTimeoutMs: 200 },
      );
      const { text, ms } = await exchange(port, 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc');
      expect(statuses(text)).toEqual([408]);
      expect(text).toMatch(/^Connection: close\r$/m);
      expect(ms).toBeLessThan(1500);
      expect((readError as Error).name).toBe('InputError');
      expect(log.join('')).toMatch(/refused at the limit bodyTimeoutMs.*--body-timeout SECONDS/);
    });

    it('time the app takes before reading is not counted; a body arriving in slow pieces is not stalled', async () => {
      const { port } = await start(
        async (environ, startResponse) => {
          await delay(400);
          const body = await environ['tsgi.input'].read();
          startResponse('200 OK', []);
          return [body];
        },
        { bodyTimeoutMs: 200 },
      );
      const socket = await open(port);
      const reply = collect(socket);
      socket.write('POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 6\r\n\r\n');
      for (const piece of ['ab', 'cd', 'ef']) {
        await delay(120);
        socket.write(piece);
      }
      const text = (await reply).bytes.toString('latin1');
      expect(statuses(text)).toEqual([200]);
      expect(text.endsWith('\r\n\r\nabcdef')).toBe(true);
    });
  });

  it('bodyTimeoutMs: the rest of a body the app left unread is dropped while it arrives, and the connection closed when it stops', async () => {
    const { port, log } = await start(
      async (environ, startResponse) => {
        const part = await environ['tsgi.input'].read(3);
        startResponse('200 OK', []);
        return [part];
      },
      { bodyTimeoutMs: 200 },
    );
    const { text, ms } = await exchange(port, 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabcd');
    expect(statuses(text)).toEqual([200]);
    expect(text.endsWith('\r\n\r\nabc')).toBe(true);
    expect(ms).toBeLessThan(1500);
    expect(log.join('')).toMatch(/refused at the limit bodyTimeoutMs/);
  });

  it('idleTimeoutMs closes an idle kept-alive connection', async () => {
    const { port } = await start(hello, { idleTimeoutMs: 150 });
    const { text, ms } = await exchange(port, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    expect(statuses(text)).toEqual([200]);
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(1500);
  });

  it('refuses limits that are not whole numbers', () => {
    expect(() => createHttpServer(hello, { maxConnections: 0 })).toThrow(/maxConnections/);
    expect(() => createHttpServer(hello, { headerTimeoutMs: -1 })).toThrow(/headerTimeoutMs/);
    expect(() => createHttpServer(hello, { bodyTimeoutMs: 1.5 })).toThrow(/bodyTimeoutMs/);
  });
});
