/**
 * The head timeouts of SCGI and uwsgi connections share one timer per server (HeadDeadlines): each connection
 * must still get its whole headerTimeoutMs from its own accept, whatever the others do (some complete their
 * heads, some close, some time out), and the shared list must be reusable afterwards. Real sockets throughout;
 * then HeadDeadlines alone (pure code, real timers).
 */
import type { AddressInfo, Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { encodeUwsgiPacket } from '../../src/protocol/uwsgi/packet.js';
import { HeadDeadlines, type HeadWaiter } from '../../src/servers/one-request/head-deadlines.js';
import type { OneRequestServerOptions } from '../../src/servers/one-request-server.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { createUwsgiServer } from '../../src/servers/uwsgi.js';
import type { App } from '../../src/types.js';
import { closedAfterEachTest, collect, delay, hello, open, parseReply } from './raw-socket.js';

const BASE = { REQUEST_METHOD: 'GET', REQUEST_URI: '/', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: 'localhost', SERVER_PORT: '80' };

const transports = [
  {
    name: 'scgi',
    create: (app: App, options: OneRequestServerOptions) => createScgiServer(app, options),
    request: () => encodeScgiRequest(BASE),
    nph: false,
  },
  {
    name: 'uwsgi',
    create: (app: App, options: OneRequestServerOptions) => createUwsgiServer(app, options),
    request: () => encodeUwsgiPacket({ ...BASE, CONTENT_LENGTH: '' }),
    nph: true,
  },
];

const { servers, sockets } = closedAfterEachTest();

/** When `socket` closes, in ms from `from`. */
const closedAfter = (socket: Socket, from: number): Promise<number> => new Promise((resolve) => socket.once('close', () => resolve(Date.now() - from)));

describe.each(transports)('$name: head timeouts on one shared timer', (transport) => {
  async function start(options: OneRequestServerOptions): Promise<{ port: number; log: string[] }> {
    const log: string[] = [];
    const server = transport.create(hello, { errors: { write: (text) => void log.push(text) }, ...options });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return { port: (server.address() as AddressInfo).port, log };
  }

  it('each silent connection gets its whole timeout from its own accept, while others are served or close', async () => {
    const { port, log } = await start({ headerTimeoutMs: 400 });
    const started = Date.now();
    const first = await open(port);
    sockets.push(first);
    const firstClosed = closedAfter(first, started);
    await delay(250);
    // Accepted 250 ms later: must outlive the first by about that much.
    const secondStarted = Date.now();
    const second = await open(port);
    sockets.push(second);
    const secondClosed = closedAfter(second, secondStarted);
    // Meanwhile a connection that closes early and one that is served leave the list without disturbing it.
    const quitter = await open(port);
    quitter.destroy();
    const served = await open(port);
    sockets.push(served);
    const reply = collect(served, 5_000);
    served.write(transport.request());
    expect(parseReply(await reply, transport.nph).body.toString()).toBe('hello');

    const firstMs = await firstClosed;
    expect(firstMs).toBeGreaterThanOrEqual(390);
    expect(second.destroyed).toBe(false);
    const secondMs = await secondClosed;
    expect(secondMs).toBeGreaterThanOrEqual(390);
    expect(Date.now() - started).toBeGreaterThanOrEqual(640);
    // One line for both (rate-limited), and the server serves again with an empty list.
    expect(log.join('').split('\n').filter((line) => line.includes('limit headerTimeoutMs'))).toHaveLength(1);
    const again = await open(port);
    sockets.push(again);
    const againReply = collect(again, 5_000);
    again.write(transport.request());
    expect(parseReply(await againReply, transport.nph).body.toString()).toBe('hello');
  });
});

describe('HeadDeadlines', () => {
  const waiter = (name: string, fired: string[]): HeadWaiter => ({
    headDeadline: 0,
    previousWaiter: null,
    nextWaiter: null,
    headTimedOut: () => void fired.push(name),
  });

  it('times out, oldest first, only the waiters still in the list, each after its own timeout', async () => {
    const fired: string[] = [];
    const deadlines = new HeadDeadlines(150);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => waiter(name, fired)) as [HeadWaiter, HeadWaiter, HeadWaiter, HeadWaiter];
    deadlines.add(a);
    deadlines.add(b);
    deadlines.add(c);
    deadlines.remove(b); // the middle one
    deadlines.remove(b); // twice: nothing
    await delay(80);
    deadlines.add(d);
    await delay(100);
    expect(fired).toEqual(['a', 'c']);
    deadlines.remove(d); // the last one, now alone
    await delay(150);
    expect(fired).toEqual(['a', 'c']);
    // Empty again: a new waiter starts a new timer.
    deadlines.add(b);
    await delay(200);
    expect(fired).toEqual(['a', 'c', 'b']);
  });
});
