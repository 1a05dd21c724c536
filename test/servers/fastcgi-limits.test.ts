/**
 * Issue 10 (FastCGI): the server against hostile peers, over real sockets. Timeouts for every phase a peer
 * controls (headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs), the cap on requests per connection, the server-wide
 * budget of buffered bytes, memory per 1-byte record, maxConnections refusals logged, a negative
 * CONTENT_LENGTH (Caddy), and the server's own log receiving refusals and the app's errors.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role } from '../../src/protocol/fastcgi/constants.js';
import { encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { encodeBeginRequest, encodeRecord, encodeStreamRecords } from '../../src/protocol/fastcgi/record-encoder.js';
import { createFastCgiServer, type FastCgiServer, type FastCgiServerOptions } from '../../src/servers/fastcgi.js';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import type { App } from '../../src/types.js';

const servers: FastCgiServer[] = [];
const clients: FastCgiClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) {
    server.destroyConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function start(app: App, options: FastCgiServerOptions = {}): Promise<{ server: FastCgiServer; port: number; log: string[] }> {
  const log: string[] = [];
  const server = createFastCgiServer(app, { errors: { write: (text) => void log.push(text) }, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, log };
}

async function client(port: number): Promise<FastCgiClient> {
  const c = await FastCgiClient.connect(port);
  clients.push(c);
  return c;
}

const GET = { REQUEST_METHOD: 'GET', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: 'localhost', SERVER_PORT: '80' };
const ok: App = (environ, s) => (s('200 OK', [['Content-Type', 'text/plain']]), [`ok ${environ.QUERY_STRING ?? ''}`]);
const echo: App = async (environ, s) => {
  const body = await environ['tsgi.input'].read();
  s('200 OK', [['Content-Type', 'application/octet-stream']]);
  return [body];
};
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const begin = (id: number) => encodeBeginRequest(id, Role.RESPONDER, FCGI_KEEP_CONN);
const paramsOf = (id: number, params: Record<string, string>) =>
  Buffer.concat([encodeStreamRecords(RecordType.PARAMS, id, encodeNameValuePairs(Object.entries(params))), encodeRecord(RecordType.PARAMS, id)]);
/** `data` as 1-byte records. */
function oneByteRecords(type: number, id: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(data.length * 9);
  for (let i = 0; i < data.length; i++) {
    out.set([1, type, id >> 8, id & 0xff, 0, 1, 0, 0, data[i] as number], i * 9);
  }
  return out;
}
const limitLines = (log: string[], limit: string) => log.join('').split('\n').filter((line) => line.includes(`refused at the limit ${limit}`));

describe('FastCGI: requests per connection (issue 10, part 3)', () => {
  it('1,024 held BEGIN_REQUESTs on one connection take 64 slots, not all: another connection is still served', async () => {
    const { port, server, log } = await start(ok);
    const hostile = await client(port);
    await hostile.send(Buffer.concat(Array.from({ length: 1024 }, (_, i) => begin(i + 1))));
    await hostile.waitFor(() => hostile.records(1024).length === 1, 10_000, 'the last refusal');
    expect(server.activeRequests).toBe(64);
    expect((await hostile.reply(65)).protocolStatus).toBe(ProtocolStatus.OVERLOADED);
    const reply = await (await client(port)).request({ params: { ...GET, QUERY_STRING: 'n=1' } });
    expect(reply.protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
    expect(parseFastCgiResponse(reply).body.toString()).toBe('ok n=1');
    // Rate-limited: 960 refusals, one line.
    expect(limitLines(log, 'maxRequestsPerConnection')).toHaveLength(1);
    expect(log.join('')).toContain('to change it: the maxRequestsPerConnection option');
  });
});

describe('FastCGI: timeouts (issue 10, part 3)', () => {
  it('a connection that sends nothing is closed after headerTimeoutMs, logged; other connections are served', async () => {
    const { port, log } = await start(ok, { headerTimeoutMs: 300 });
    const idle = await client(port);
    const started = Date.now();
    await idle.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(limitLines(log, 'headerTimeoutMs')[0]).toContain('to change it: --header-timeout SECONDS');
    expect((await (await client(port)).request({ params: GET })).protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
  });

  it('PARAMS trickled byte by byte are cut at headerTimeoutMs after BEGIN_REQUEST (a deadline, not an idle time); the slot is freed', async () => {
    const { port, server, log } = await start(ok, { headerTimeoutMs: 500 });
    const slow = await client(port);
    await slow.send(begin(1));
    const params = encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs(Object.entries(GET)));
    const started = Date.now();
    void slow.send(params, 1, 40).catch(() => undefined);
    await slow.closed;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.activeRequests).toBe(0);
    expect(limitLines(log, 'headerTimeoutMs')[0]).toMatch(/did not send their PARAMS within 0\.5 s/);
    expect((await (await client(port)).request({ params: GET })).protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
  });

  it('a body that stops arriving fails the app\'s read with a 408 after bodyTimeoutMs; the connection serves the next request', async () => {
    const { port, log } = await start(echo, { bodyTimeoutMs: 300 });
    const c = await client(port);
    await c.send(Buffer.concat([begin(1), paramsOf(1, { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '100' }), encodeRecord(RecordType.STDIN, 1, Buffer.from('partial'))]));
    const reply = await c.reply(1, 3_000);
    expect(parseFastCgiResponse(reply).status).toBe(408);
    expect(limitLines(log, 'bodyTimeoutMs')[0]).toContain('to change it: --body-timeout SECONDS');
    const next = await c.request({ id: 2, keepConn: true, params: { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5' }, stdin: 'hello' });
    expect(parseFastCgiResponse(next).body.toString()).toBe('hello');
  });

  it('a body that keeps arriving slowly, and an app that is slow to answer, are not timed out', async () => {
    const slowApp: App = async (environ, s) => {
      const body = await environ['tsgi.input'].read();
      await delay(700);
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [body];
    };
    const { port, log } = await start(slowApp, { bodyTimeoutMs: 400, idleTimeoutMs: 400, headerTimeoutMs: 400 });
    const c = await client(port);
    await c.send(Buffer.concat([begin(1), paramsOf(1, { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '4' })]));
    for (const byte of 'abcd') {
      await delay(200);
      await c.send(encodeRecord(RecordType.STDIN, 1, Buffer.from(byte)));
    }
    await c.send(encodeRecord(RecordType.STDIN, 1));
    expect(parseFastCgiResponse(await c.reply(1, 5_000)).body.toString()).toBe('abcd');
    expect(log.join('')).not.toContain('refused at the limit');
  });

  it('a kept-alive connection with no request is closed after idleTimeoutMs (logged)', async () => {
    const { port, log } = await start(ok, { idleTimeoutMs: 300 });
    const c = await client(port);
    expect((await c.request({ keepConn: true, params: GET })).protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
    const served = Date.now();
    await c.closed;
    expect(Date.now() - served).toBeGreaterThanOrEqual(250);
    expect(Date.now() - served).toBeLessThan(2_000);
    expect(limitLines(log, 'idleTimeoutMs')[0]).toContain('to change it: --idle-timeout SECONDS');
  });

  it('a kept-alive connection busy with short requests (each between two sweeps) is never taken for idle', async () => {
    const { port, log } = await start(ok, { idleTimeoutMs: 300, headerTimeoutMs: 300 });
    const c = await client(port);
    const until = Date.now() + 1_500; // more than idleTimeoutMs + headerTimeoutMs
    for (let n = 0; Date.now() < until; n++) {
      expect((await c.request({ keepConn: true, params: { ...GET, QUERY_STRING: `n=${n}` } })).protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
      await delay(30);
    }
    expect(c.socket.destroyed).toBe(false);
    expect(log.join('')).not.toContain('refused at the limit');
  });

  it('0 turns the timeouts off', async () => {
    const { port, log } = await start(ok, { headerTimeoutMs: 0, idleTimeoutMs: 0, bodyTimeoutMs: 0 });
    const idle = await client(port);
    const kept = await client(port);
    await kept.request({ keepConn: true, params: GET });
    await delay(600);
    expect(idle.socket.destroyed || kept.socket.destroyed).toBe(false);
    expect(log.join('')).not.toContain('refused at the limit');
  });
});

describe('FastCGI: maxConnections refusals are logged (issue 10, part 3)', () => {
  it('a connection past maxConnections is closed and the refusal logged, rate-limited', async () => {
    const { port, log } = await start(ok, { maxConnections: 2 });
    await client(port);
    await client(port);
    const third = await client(port);
    const fourth = await client(port);
    await third.closed;
    await fourth.closed;
    const lines = limitLines(log, 'maxConnections');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('to change it: --max-connections N');
  });
});

describe('FastCGI: memory whatever the record sizes (issue 10, part 2)', () => {
  it('16 unfinished requests of 256 KiB of 1-byte PARAMS records hold about their bytes, not ~150 bytes per byte', async () => {
    const { port, server } = await start(ok);
    const c = await client(port);
    const fill = encodeNameValuePairs([['HTTP_X_FILL', 'p'.repeat(256 * 1024)]]).subarray(0, 256 * 1024);
    const before = process.memoryUsage();
    for (let id = 1; id <= 16; id++) {
      await c.send(begin(id));
      await c.send(oneByteRecords(RecordType.PARAMS, id, fill));
    }
    // Everything was received once the server holds all of it.
    const deadline = Date.now() + 20_000;
    while (server.budget.used < 16 * 256 * 1024 && Date.now() < deadline) await delay(20);
    expect(server.budget.used).toBeGreaterThanOrEqual(16 * 256 * 1024);
    expect(server.budget.used).toBeLessThanOrEqual(2 * 16 * 256 * 1024);
    const after = process.memoryUsage();
    // 4 MiB of PARAMS content. Before: ~600 MB of heap (an object per record). Garbage not yet collected
    // (the decoder's per-record objects, the client's buffers) is what the slack covers.
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(grown).toBeLessThan(150 * 1024 * 1024);
    c.close();
    await c.closed;
    const gone = Date.now() + 5_000;
    while (server.budget.used > 0 && Date.now() < gone) await delay(20);
    expect(server.budget.used).toBe(0);
    expect(server.activeRequests).toBe(0);
  }, 30_000);

  it('past maxBufferedBytes, new requests get OVERLOADED (logged) and the sender stops being read; once the apps read, all is served', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gated: App = async (environ, s) => {
      if (environ.PATH_INFO === '/gated') await gate;
      const body = await environ['tsgi.input'].read();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [`${body.length}`];
    };
    const { port, server, log } = await start(gated, { maxBufferedBytes: 256 * 1024 });
    const sender = await client(port);
    const body = Buffer.alloc(1024 * 1024, 0x61);
    const answer = sender.request({ id: 1, keepConn: true, params: { ...GET, REQUEST_METHOD: 'POST', PATH_INFO: '/gated', CONTENT_LENGTH: String(body.length) }, stdin: body });
    const deadline = Date.now() + 5_000;
    while (server.budget.used < 256 * 1024 && Date.now() < deadline) await delay(20);
    await delay(200);
    // Bounded: the budget plus what one socket read brought.
    expect(server.budget.used).toBeGreaterThanOrEqual(256 * 1024);
    expect(server.budget.used).toBeLessThan(256 * 1024 + 256 * 1024);
    const other = await client(port);
    expect((await other.request({ params: GET })).protocolStatus).toBe(ProtocolStatus.OVERLOADED);
    expect(limitLines(log, 'maxBufferedBytes')[0]).toContain('to change it: the maxBufferedBytes option');
    release();
    expect(parseFastCgiResponse(await answer).body.toString()).toBe(String(body.length));
    expect(server.budget.used).toBe(0);
    const again = await client(port);
    expect(parseFastCgiResponse(await again.request({ params: GET })).status).toBe(200);
  }, 20_000);
});

describe('FastCGI: the connection piling up unfinished PARAMS is the one cut (issue 10, part 2)', () => {
  it('past maxBufferedBytes, the connection with the most unfinished PARAMS is closed (logged); a web server\'s requests go on', async () => {
    const { port, server, log } = await start(ok, { maxBufferedBytes: 256 * 1024 });
    const hostile = await client(port);
    const fill = encodeNameValuePairs([['HTTP_X_FILL', 'p'.repeat(100 * 1024)]]).subarray(0, 100 * 1024);
    for (let id = 1; id <= 4; id++) await hostile.send(Buffer.concat([begin(id), encodeStreamRecords(RecordType.PARAMS, id, fill)]));
    await hostile.closed;
    expect(server.budget.used).toBe(0);
    expect(server.activeRequests).toBe(0);
    expect(limitLines(log, 'maxBufferedBytes')[0]).toContain('closed the connection piling up the most unfinished PARAMS');
    const reply = await (await client(port)).request({ params: GET });
    expect(reply.protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
  });
});

describe('FastCGI: what web servers send (issue 10, parts 5 and 7)', () => {
  const envApp: App = async (environ, s) => {
    const body = await environ['tsgi.input'].read();
    s('200 OK', [['Content-Type', 'application/json']]);
    return [JSON.stringify({ body: Buffer.from(body).toString(), length: environ.CONTENT_LENGTH ?? null, dup: environ.HTTP_X_DUP ?? null })];
  };

  it('CONTENT_LENGTH=-1 (Caddy, a chunked upload) or empty: the body is read to the empty STDIN record', async () => {
    const { port } = await start(envApp);
    const c = await client(port);
    for (const length of ['-1', '']) {
      await c.send(
        Buffer.concat([
          begin(1),
          paramsOf(1, { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: length }),
          encodeRecord(RecordType.STDIN, 1, Buffer.from('hello ')),
          encodeRecord(RecordType.STDIN, 1, Buffer.from('world')),
          encodeRecord(RecordType.STDIN, 1),
        ]),
      );
      const reply = await c.reply(1);
      expect(parseFastCgiResponse(reply).status).toBe(200);
      expect(JSON.parse(parseFastCgiResponse(reply).body.toString())).toEqual({ body: 'hello world', length: null, dup: null });
    }
    // Other malformed lengths are still refused.
    const bad = await c.request({ keepConn: true, params: { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '-1x' }, stdin: 'x' });
    expect(parseFastCgiResponse(bad).status).toBe(400);
  });

  it('a repeated HTTP_* param (nginx: a header sent twice) reaches the app joined with ", "', async () => {
    const { port } = await start(envApp);
    const reply = await (await client(port)).request({ params: [...Object.entries(GET), ['HTTP_X_DUP', 'one'], ['HTTP_X_DUP', 'two']] });
    expect(JSON.parse(parseFastCgiResponse(reply).body.toString()).dup).toBe('one, two');
  });

  it('refusals and the app\'s tsgi.errors (with stacks) go to the server\'s own log as well as to STDERR records', async () => {
    const app: App = (environ, s) => {
      if (environ.PATH_INFO === '/boom') throw new Error('boom from the app');
      environ['tsgi.errors'].write('a line from the app\n');
      s('200 OK', [['Content-Type', 'text/plain']]);
      return ['fine'];
    };
    const { port, log } = await start(app);
    const c = await client(port);
    const fine = await c.request({ keepConn: true, params: GET });
    expect(fine.stderr).toContain('a line from the app');
    const boom = await c.request({ keepConn: true, params: { ...GET, PATH_INFO: '/boom' } });
    expect(parseFastCgiResponse(boom).status).toBe(500);
    expect(boom.stderr).toContain('boom from the app');
    const refused = await c.request({ keepConn: true, params: { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: 'abc' }, stdin: 'x' });
    expect(parseFastCgiResponse(refused).status).toBe(400);
    expect(refused.stderr).toContain('CONTENT_LENGTH');
    const text = log.join('');
    expect(text).toContain('a line from the app');
    expect(text).toMatch(/boom from the app\n\s+at /);
    expect(text).toContain('CONTENT_LENGTH');
  });
});
