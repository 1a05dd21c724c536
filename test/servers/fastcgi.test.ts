import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role } from '../../src/protocol/fastcgi/constants.js';
import { encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { encodeBeginRequest, encodeRecord, encodeStreamRecords } from '../../src/protocol/fastcgi/record-encoder.js';
import { createFastCgiServer, type FastCgiServer, type FastCgiServerOptions } from '../../src/servers/fastcgi.js';
import { conformanceApp, conformanceCases } from '../../src/testing/conformance.js';
import { FastCgiClient, encodeFastCgiRequest, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import { formatCgiHead } from '../../src/response/cgi-head.js';
import type { App, Environ, Header } from '../../src/types.js';

const servers: FastCgiServer[] = [];
const clients: FastCgiClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
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
const text = (body: string, status = '200 OK'): App => (_e, start) => (start(status, [['Content-Type', 'text/plain']]), [body]);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('FastCGI responder: records out (C2-C4)', () => {
  it('C2: a 70,000-byte body -> STDOUT records <= 65535, the empty STDOUT, END_REQUEST{0, COMPLETE}', async () => {
    const { port } = await start((_e, s) => (s('200 OK', [['Content-Type', 'application/octet-stream']]), [Buffer.alloc(70_000, 1)]));
    const reply = await (await client(port)).request({ params: GET });
    const stdout = reply.records.filter((r) => r.type === RecordType.STDOUT).map((r) => r.content.length);
    expect(Math.max(...stdout)).toBeLessThanOrEqual(65535);
    expect(stdout.at(-1)).toBe(0);
    expect(stdout.slice(0, -1).every((length) => length > 0)).toBe(true);
    expect(reply.records.at(-1)?.type).toBe(RecordType.END_REQUEST);
    expect([reply.appStatus, reply.protocolStatus]).toEqual([0, ProtocolStatus.REQUEST_COMPLETE]);
    expect(parseFastCgiResponse(reply).body.length).toBe(70_000);
  });

  it('C2: an empty body still sends the head and the empty STDOUT', async () => {
    const { port } = await start((_e, s) => (s('204 No Content', []), []));
    const reply = await (await client(port)).request({ params: GET });
    expect(reply.stdout.toString()).toBe('Status: 204 No Content\r\n\r\n');
    expect(reply.records.map((r) => [r.type, r.content.length > 0])).toEqual([
      [RecordType.STDOUT, true],
      [RecordType.STDOUT, false],
      [RecordType.END_REQUEST, true],
    ]);
  });

  it('C3: empty chunks from the app never become an empty STDOUT mid-stream', async () => {
    const { port } = await start((_e, s) => {
      s('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield 'a';
        yield '';
        yield new Uint8Array(0);
        await delay(5);
        yield 'b';
      })();
    });
    const reply = await (await client(port)).request({ params: GET });
    const empties = reply.records.filter((r) => r.type === RecordType.STDOUT && r.content.length === 0);
    expect(empties).toHaveLength(1);
    expect(parseFastCgiResponse(reply).body.toString()).toBe('ab');
  });

  it('C4: tsgi.errors -> STDERR records and their terminator, before the STDOUT terminator', async () => {
    const { port } = await start((environ, s) => {
      environ['tsgi.errors'].write('warning one\n');
      s('200 OK', [['Content-Type', 'text/plain']]);
      return ['ok'];
    });
    const reply = await (await client(port)).request({ params: GET });
    expect(reply.stderr).toBe('warning one\n');
    const order = reply.records.map((r) => `${r.type}:${r.content.length === 0 ? 'end' : 'data'}`);
    expect(order.indexOf('7:end')).toBeGreaterThan(order.indexOf('7:data'));
    expect(order.indexOf('7:end')).toBeLessThan(order.indexOf('6:end'));
  });

  it('C15: appStatus is non-zero when the app failed (a 500 page went out)', async () => {
    const { port } = await start(() => {
      throw new Error('boom');
    });
    const reply = await (await client(port)).request({ params: GET });
    expect(parseFastCgiResponse(reply).status).toBe(500);
    expect(reply.appStatus).toBe(1);
    expect(reply.stderr).toContain('boom');
  });
});

describe('FastCGI responder: params and input (C5, C6, C14, T1, T3, T6)', () => {
  const envApp: App = async (environ, s) => {
    const body = await environ['tsgi.input'].read();
    s('200 OK', [['Content-Type', 'application/json']]);
    const picked: Record<string, unknown> = { body: Buffer.from(body).toString('latin1'), terminated: environ['tsgi.input_terminated'] };
    for (const key of Object.keys(environ)) if (!key.includes('.')) picked[key] = environ[key];
    return [JSON.stringify(picked)];
  };
  const json = (reply: Awaited<ReturnType<FastCgiClient['reply']>>) => JSON.parse(parseFastCgiResponse(reply).body.toString()) as Record<string, string>;

  it('C5/T3: a pair and a length prefix split across PARAMS records; 70,000-byte value; 260-byte name', async () => {
    const { port } = await start(envApp);
    const c = await client(port);
    const block = encodeNameValuePairs([
      ['REQUEST_METHOD', 'GET'],
      ['HTTP_X_BIG', 'v'.repeat(70_000)],
      ['HTTP_' + 'N'.repeat(255), 'name'],
    ]);
    // Record 1 ends in the middle of HTTP_X_BIG's 4-byte value length.
    const cut = 2 + 'REQUEST_METHOD'.length + 3 + 1 + 2;
    const parts = [encodeBeginRequest(1, Role.RESPONDER, 0)];
    parts.push(encodeRecord(RecordType.PARAMS, 1, block.subarray(0, cut)));
    for (let at = cut; at < block.length; at += 60_000) parts.push(encodeRecord(RecordType.PARAMS, 1, block.subarray(at, at + 60_000)));
    parts.push(encodeRecord(RecordType.PARAMS, 1), encodeRecord(RecordType.STDIN, 1));
    await c.send(Buffer.concat(parts));
    const env = json(await c.reply(1));
    expect(env.REQUEST_METHOD).toBe('GET');
    expect(env.HTTP_X_BIG?.length).toBe(70_000);
    expect(env[`HTTP_${'N'.repeat(255)}`]).toBe('name');
  });

  it('raw bytes in params reach the app as latin-1 chars (byte policy)', async () => {
    const { port } = await start(envApp);
    const env = json(await (await client(port)).request({ params: { ...GET, PATH_INFO: '/caf\u00c3\u00a9/\u00e9' } }));
    expect(env.PATH_INFO).toBe('/caf\u00c3\u00a9/\u00e9');
  });

  it('C6: empty CONTENT_LENGTH and CONTENT_TYPE (nginx) mean absent', async () => {
    const { port } = await start(envApp);
    const env = json(await (await client(port)).request({ params: { ...GET, CONTENT_LENGTH: '', CONTENT_TYPE: '' } }));
    expect(env.CONTENT_LENGTH).toBeUndefined();
    expect(env.CONTENT_TYPE).toBeUndefined();
  });

  it('T1: a body over many STDIN records, sent in 7-byte pieces, arrives byte-identical', async () => {
    const { port } = await start(envApp);
    const c = await client(port);
    const body = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    const bytes = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, 0),
      encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs([['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '3000']])),
      encodeRecord(RecordType.PARAMS, 1),
      ...Array.from({ length: 30 }, (_, i) => encodeRecord(RecordType.STDIN, 1, body.subarray(i * 100, i * 100 + 100))),
      encodeRecord(RecordType.STDIN, 1),
    ]);
    await c.send(bytes, 7, 0);
    expect(Buffer.from(json(await c.reply(1)).body ?? '', 'latin1').equals(body)).toBe(true);
  });

  it('C14: no CONTENT_LENGTH -> the body is read to the empty STDIN record (tsgi.input_terminated)', async () => {
    const { port } = await start(envApp);
    const env = json(await (await client(port)).request({ params: { REQUEST_METHOD: 'POST' }, stdin: 'chunked upload' }));
    expect(env.body).toBe('chunked upload');
    expect(env.terminated).toBe(true);
  });

  it('C14/A9: STDIN shorter than CONTENT_LENGTH -> 400; a bad CONTENT_LENGTH -> 400 without running the app', async () => {
    let ran = 0;
    const { port } = await start(async (environ, s) => {
      ran++;
      await environ['tsgi.input'].read();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return ['x'];
    });
    const c = await client(port);
    const short = await c.request({ keepConn: true, params: { REQUEST_METHOD: 'POST', CONTENT_LENGTH: '10' }, stdin: 'hello' });
    expect(parseFastCgiResponse(short).status).toBe(400);
    const bad = await c.request({ keepConn: true, params: { REQUEST_METHOD: 'POST', CONTENT_LENGTH: '1x' }, stdin: 'x' });
    expect(parseFastCgiResponse(bad).status).toBe(400);
    expect(ran).toBe(1);
  });

  it('T6: the app runs without any STDIN record; a duplicated empty STDIN or PARAMS is ignored', async () => {
    const { port } = await start(text('ran'));
    const c = await client(port);
    await c.send(Buffer.concat([encodeBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN), encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs(Object.entries(GET))), encodeRecord(RecordType.PARAMS, 1)]));
    expect(parseFastCgiResponse(await c.reply(1)).body.toString()).toBe('ran');
    await c.send(Buffer.concat([encodeRecord(RecordType.STDIN, 1), encodeRecord(RecordType.STDIN, 1)]));
    await c.send(Buffer.concat([encodeFastCgiRequest({ id: 1, keepConn: true, params: GET }).subarray(0), encodeRecord(RecordType.PARAMS, 1)]));
    expect(parseFastCgiResponse(await c.reply(1)).body.toString()).toBe('ran');
  });
});

describe('FastCGI connections (C7-C13, C16, T4, T8-T12)', () => {
  it('C8: flags=0 -> the connection closes after END_REQUEST', async () => {
    const { port } = await start(text('bye'));
    const c = await client(port);
    await c.request({ params: GET });
    await c.closed;
  });

  it('C8/T8: FCGI_KEEP_CONN -> 1,000 sequential requests with id 1 on one connection', async () => {
    const { port, server } = await start(text('again'));
    const c = await client(port);
    for (let i = 0; i < 1000; i++) {
      const reply = await c.request({ keepConn: true, params: GET });
      expect(reply.protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
    }
    expect(c.socket.destroyed).toBe(false);
    expect(server.activeRequests).toBe(0);
  });

  it('C9: requests 1 and 2 interleaved on one connection are both answered', async () => {
    const { port } = await start(async (environ, s) => {
      const body = await environ['tsgi.input'].read();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.from(body)];
    });
    const c = await client(port);
    const params = (id: number) => encodeStreamRecords(RecordType.PARAMS, id, encodeNameValuePairs([['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '6']]));
    await c.send(Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN),
      encodeBeginRequest(2, Role.RESPONDER, FCGI_KEEP_CONN),
      params(2), params(1),
      encodeRecord(RecordType.PARAMS, 1), encodeRecord(RecordType.PARAMS, 2),
      encodeRecord(RecordType.STDIN, 2, Buffer.from('two-')), encodeRecord(RecordType.STDIN, 1, Buffer.from('one-')),
      encodeRecord(RecordType.STDIN, 1, Buffer.from('1!')), encodeRecord(RecordType.STDIN, 2, Buffer.from('2!')),
      encodeRecord(RecordType.STDIN, 1), encodeRecord(RecordType.STDIN, 2),
    ]));
    const [one, two] = await Promise.all([c.reply(1), c.reply(2)]);
    expect(parseFastCgiResponse(one).body.toString()).toBe('one-1!');
    expect(parseFastCgiResponse(two).body.toString()).toBe('two-2!');
  });

  it('C9: with multiplexing off, a second request gets END_REQUEST{CANT_MPX_CONN}', async () => {
    const { port } = await start(async (_e, s) => (await delay(50), s('200 OK', [['Content-Type', 'text/plain']]), ['one']), { multiplex: false });
    const c = await client(port);
    await c.send(encodeFastCgiRequest({ id: 1, keepConn: true, params: GET }));
    await c.send(encodeBeginRequest(2, Role.RESPONDER, FCGI_KEEP_CONN));
    const refused = await c.reply(2);
    expect(refused.protocolStatus).toBe(ProtocolStatus.CANT_MPX_CONN);
    expect(parseFastCgiResponse(await c.reply(1)).body.toString()).toBe('one');
  });

  it('C9: a second BEGIN_REQUEST for an active id is a protocol error: the connection closes', async () => {
    const { port, log } = await start(async () => new Promise(() => {}));
    const c = await client(port);
    await c.send(encodeFastCgiRequest({ id: 1, keepConn: true, params: GET }));
    await c.send(encodeBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN));
    await c.closed;
    expect(log.join('')).toContain('BEGIN_REQUEST for active request 1');
  });

  it('C7: a BEGIN_REQUEST body that is not 8 bytes closes the connection; an unknown role gets UNKNOWN_ROLE', async () => {
    const { port } = await start(text('x'));
    const c = await client(port);
    await c.send(encodeFastCgiRequest({ id: 1, role: 7, keepConn: true, params: GET }));
    expect((await c.reply(1)).protocolStatus).toBe(ProtocolStatus.UNKNOWN_ROLE);
    await c.send(encodeRecord(RecordType.BEGIN_REQUEST, 2, new Uint8Array(5)));
    await c.closed;
  });

  it('C10/T12: GET_VALUES is answered (FOO omitted) and the connection stays usable', async () => {
    const { port } = await start(text('after'), { maxConnections: 50, maxRequests: 40 });
    const c = await client(port);
    const names = encodeNameValuePairs([['FCGI_MAX_CONNS', ''], ['FCGI_MAX_REQS', ''], ['FCGI_MPXS_CONNS', ''], ['FOO', '']]);
    await c.send(encodeRecord(RecordType.GET_VALUES, 0, names));
    await c.waitFor(() => c.records(0).length === 1);
    const result = c.records(0)[0];
    expect(result?.type).toBe(RecordType.GET_VALUES_RESULT);
    expect(Buffer.from(result?.content ?? []).toString('latin1')).toBe('\x0e\x02FCGI_MAX_CONNS50\x0d\x02FCGI_MAX_REQS40\x0f\x01FCGI_MPXS_CONNS1');
    expect(parseFastCgiResponse(await c.request({ params: GET })).body.toString()).toBe('after');
  });

  it('C11: a management record of unknown type 99 -> UNKNOWN_TYPE{99}; records for inactive ids are ignored', async () => {
    const { port } = await start(text('fine'));
    const c = await client(port);
    await c.send(Buffer.concat([encodeRecord(99, 0, new Uint8Array(3)), encodeRecord(RecordType.STDIN, 42, Buffer.from('stray'))]));
    await c.waitFor(() => c.records(0).length === 1);
    expect(c.records(0)[0]?.type).toBe(RecordType.UNKNOWN_TYPE);
    expect(c.records(0)[0]?.content[0]).toBe(99);
    expect(parseFastCgiResponse(await c.request({ params: GET })).body.toString()).toBe('fine');
  });

  it('C12/T10: past maxRequests, END_REQUEST{OVERLOADED}; thousands of idle BEGINs stay bounded', async () => {
    const { port, server } = await start(async () => new Promise(() => {}), { maxRequests: 100, maxRequestsPerConnection: 10_000 });
    const c = await client(port);
    const begins = [];
    for (let id = 1; id <= 10_000; id++) {
      begins.push(encodeBeginRequest(id, Role.RESPONDER, FCGI_KEEP_CONN));
    }
    await c.send(Buffer.concat(begins));
    await c.waitFor(() => c.records(10_000).length === 1, 10_000, 'the last refusal');
    expect(server.activeRequests).toBe(100);
    expect((await c.reply(101)).protocolStatus).toBe(ProtocolStatus.OVERLOADED);
  });

  // Found by fuzzing (test/fuzz/servers.test.ts): a request whose PARAMS never completed (the connection closed
  // first, or they were malformed) kept its slot for good, so 1024 such connections left every later request
  // refused with OVERLOADED.
  it('C12: requests whose connection closes before their PARAMS end, or with malformed PARAMS, free their slots', async () => {
    const { port, server } = await start(text('still here'), { maxRequests: 2 });
    const waitForActive = async (count: number): Promise<void> => {
      for (let i = 0; i < 500 && server.activeRequests !== count; i++) await delay(10);
      expect(server.activeRequests).toBe(count);
    };
    const waitForIdle = (): Promise<void> => waitForActive(0);
    for (let round = 0; round < 3; round++) {
      const c = await client(port);
      const params = encodeNameValuePairs(Object.entries(GET));
      await c.send(Buffer.concat([encodeBeginRequest(1, Role.RESPONDER, 0), encodeRecord(RecordType.PARAMS, 1, params.subarray(0, 5))]));
      await waitForActive(1);
      c.close();
      await waitForIdle();
      const bad = await client(port);
      // A name length running past the block, then the empty PARAMS record that makes the server decode it.
      await bad.send(Buffer.concat([encodeBeginRequest(1, Role.RESPONDER, 0), encodeRecord(RecordType.PARAMS, 1, Uint8Array.of(0x7f, 0x01, 0x41)), encodeRecord(RecordType.PARAMS, 1)]));
      await bad.closed;
      await waitForIdle();
    }
    const reply = await (await client(port)).request({ params: GET });
    expect(reply.protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE);
    expect(parseFastCgiResponse(reply).body.toString()).toBe('still here');
  });

  it('C13: ABORT_REQUEST fires tsgi.signal, runs close(), sends END_REQUEST at once and nothing later for that id', async () => {
    let aborted = false;
    let closed = 0;
    const { port } = await start((environ, s) => {
      if (environ.PATH_INFO === '/again') return (s('200 OK', [['Content-Type', 'text/plain']]), ['again']);
      environ['tsgi.signal'].addEventListener('abort', () => void (aborted = true));
      s('200 OK', [['Content-Type', 'text/plain']]);
      const body = (async function* () {
        for (;;) {
          yield 'tick';
          await delay(5);
        }
      })();
      return Object.assign(body, { close: () => void closed++ });
    });
    const c = await client(port);
    await c.send(encodeFastCgiRequest({ id: 1, keepConn: true, params: GET }));
    await c.waitFor(() => c.records(1).length > 2);
    await c.send(encodeRecord(RecordType.ABORT_REQUEST, 1));
    const reply = await c.reply(1);
    expect(reply.records.at(-1)?.type).toBe(RecordType.END_REQUEST);
    await delay(50);
    expect(c.records(1)).toHaveLength(0);
    expect(aborted).toBe(true);
    expect(closed).toBe(1);
    expect(parseFastCgiResponse(await c.request({ id: 1, keepConn: true, params: { ...GET, PATH_INFO: '/again' } })).body.toString()).toBe('again');
  });

  it('T9: the connection closing mid-request fires tsgi.signal and body.close()', async () => {
    let resolveClosed: () => void = () => {};
    const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
    let aborted = false;
    const { port, log } = await start((environ, s) => {
      environ['tsgi.signal'].addEventListener('abort', () => {
        aborted = true;
        environ['tsgi.errors'].write('app saw the abort\n');
      });
      s('200 OK', [['Content-Type', 'text/plain']]);
      const body = (async function* () {
        for (;;) {
          yield 'x'.repeat(1000);
          await delay(2);
        }
      })();
      return Object.assign(body, { close: () => resolveClosed() });
    });
    const c = await client(port);
    await c.send(encodeFastCgiRequest({ keepConn: true, params: GET }));
    await c.waitFor(() => c.records(1).length > 2);
    c.close();
    await closed;
    expect(aborted).toBe(true);
    // STDERR can't reach the web server any more: the line lands in the server's own log, not lost.
    expect(log.join('')).toContain('app saw the abort');
  });

  it('T4: params beyond maxParamsBytes close the connection, logged', async () => {
    const { port, log } = await start(text('x'), { maxParamsBytes: 1000 });
    const c = await client(port);
    await c.send(encodeFastCgiRequest({ params: { HTTP_X: 'y'.repeat(2000) } }));
    await c.closed;
    expect(log.join('')).toContain('refused at the limit maxParamsBytes');
  });

  it('T4: a hostile name-value length closes the connection', async () => {
    const { port, log } = await start(text('x'));
    const c = await client(port);
    await c.send(Buffer.concat([encodeBeginRequest(1, Role.RESPONDER, 0), encodeRecord(RecordType.PARAMS, 1, Buffer.from('ffffffff0141', 'hex')), encodeRecord(RecordType.PARAMS, 1)]));
    await c.closed;
    expect(log.join('')).toContain('name-value lengths run past the block');
  });

  it('C1: a record of version 2 closes the connection', async () => {
    const { port } = await start(text('x'));
    const c = await client(port);
    await c.send(Buffer.from('0201000100080000' + '0001000000000000', 'hex'));
    await c.closed;
  });

  it('C16: FCGI_WEB_SERVER_ADDRS refuses other peers at once; ::ffff:127.0.0.1 counts as 127.0.0.1', async () => {
    const refused = await start(text('x'), { webServerAddrs: ['10.0.0.2'] });
    const c1 = await client(refused.port);
    await c1.closed;
    expect(refused.log.join('')).toContain('not in FCGI_WEB_SERVER_ADDRS');
    const allowed = await start(text('allowed'), { webServerAddrs: ['::ffff:127.0.0.1', '10.0.0.2'] });
    expect(parseFastCgiResponse(await (await client(allowed.port)).request({ params: GET })).body.toString()).toBe('allowed');
  });

  it('T11: interleaved STDOUT/STDERR to a slow reader finishes without deadlock', async () => {
    const { port } = await start((environ, s) => {
      s('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        for (let i = 0; i < 200; i++) {
          environ['tsgi.errors'].write(`line ${i} ${'e'.repeat(500)}\n`);
          yield 'o'.repeat(5000);
        }
      })();
    });
    const c = await client(port);
    c.socket.pause();
    await c.send(encodeFastCgiRequest({ params: GET }));
    await delay(100);
    c.socket.resume();
    const reply = await c.reply(1, 20_000);
    expect(parseFastCgiResponse(reply).body.length).toBe(200 * 5000);
    expect(reply.stderr.split('\n')).toHaveLength(201);
  });
});

describe('FastCGI server close()', () => {
  it('closes idle kept-alive connections at once and busy ones after their request', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = createFastCgiServer(async (environ, s) => {
      if (environ.PATH_INFO === '/slow') await gate;
      s('200 OK', [['Content-Type', 'text/plain']]);
      return ['done'];
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const idle = await client(port);
    await idle.request({ keepConn: true, params: GET });
    const busy = await client(port);
    await busy.send(encodeFastCgiRequest({ keepConn: true, params: { ...GET, PATH_INFO: '/slow' } }));
    await delay(50);
    let closed = false;
    server.close(() => void (closed = true));
    await idle.closed;
    expect(closed).toBe(false);
    release();
    expect(parseFastCgiResponse(await busy.reply(1)).body.toString()).toBe('done');
    await busy.closed;
    await delay(20);
    expect(closed).toBe(true);
  });
});

describe('FastCGI backpressure', () => {
  it('a slow client pauses the app: the body generator is not run ahead unboundedly', async () => {
    let produced = 0;
    const { port } = await start((_e, s) => {
      s('200 OK', [['Content-Type', 'application/octet-stream']]);
      return (function* () {
        for (let i = 0; i < 2000; i++) {
          produced++;
          yield new Uint8Array(65536);
        }
      })();
    });
    const c = await client(port);
    c.socket.pause();
    await c.send(encodeFastCgiRequest({ params: GET }));
    await delay(300);
    // 2000 chunks are 128 MiB; with the client paused only socket buffers' worth may be produced.
    expect(produced).toBeLessThan(200);
    c.close();
  });

  it('a slow app pauses the socket: input beyond the high-water mark is not buffered', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let received = 0;
    const { port } = await start(
      async (environ, s) => {
        await gate;
        for await (const chunk of environ['tsgi.input']) received += chunk.length;
        s('200 OK', [['Content-Type', 'text/plain']]);
        return [String(received)];
      },
      { inputHighWaterBytes: 256 * 1024 },
    );
    const c = await client(port);
    const total = 32 * 1024 * 1024;
    const head = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, 0),
      encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs([['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', String(total)]])),
      encodeRecord(RecordType.PARAMS, 1),
    ]);
    c.socket.write(head);
    const chunk = encodeStreamRecords(RecordType.STDIN, 1, Buffer.alloc(65535, 1));
    let sent = 0;
    let blocked = false;
    while (sent < total) {
      const size = Math.min(65535, total - sent);
      const ok = c.socket.write(size === 65535 ? chunk : encodeStreamRecords(RecordType.STDIN, 1, Buffer.alloc(size, 1)));
      sent += size;
      if (!ok) {
        const drained = await Promise.race([new Promise((resolve) => c.socket.once('drain', () => resolve(true))), delay(300).then(() => false)]);
        if (!drained) {
          blocked = true;
          break;
        }
      }
    }
    // The server stopped reading long before 32 MiB: the client's writes could not drain.
    expect(blocked).toBe(true);
    expect(sent).toBeLessThan(total);
    release();
    while (sent < total) {
      const size = Math.min(65535, total - sent);
      if (!c.socket.write(encodeStreamRecords(RecordType.STDIN, 1, Buffer.alloc(size, 1)))) await new Promise((resolve) => c.socket.once('drain', resolve));
      sent += size;
    }
    c.socket.write(encodeRecord(RecordType.STDIN, 1));
    const reply = await c.reply(1, 30_000);
    expect(parseFastCgiResponse(reply).body.toString()).toBe(String(total));
  });
});

describe('FastCGI roles (C7)', () => {
  it('Authorizer: FCGI_ROLE=AUTHORIZER; a 200 carries Variable-* headers; 401 otherwise', async () => {
    const authorizer: App = (environ, s) => {
      if (environ.HTTP_AUTHORIZATION === 'Bearer good') {
        s('200 OK', [['Variable-X-User', 'alice']]);
        return [];
      }
      s('401 Unauthorized', [['Content-Type', 'text/plain'], ['WWW-Authenticate', 'Bearer']]);
      return ['no'];
    };
    const { port } = await start(text('responder'), { authorizer });
    const c = await client(port);
    const ok = parseFastCgiResponse(await c.request({ keepConn: true, role: Role.AUTHORIZER, params: { HTTP_AUTHORIZATION: 'Bearer good', REQUEST_METHOD: 'GET' } }));
    expect(ok.status).toBe(200);
    expect(ok.headers).toContainEqual(['Variable-X-User', 'alice']);
    const denied = parseFastCgiResponse(await c.request({ keepConn: true, role: Role.AUTHORIZER, params: { REQUEST_METHOD: 'GET' } }));
    expect(denied.status).toBe(401);
    const role = await start((environ: Environ, s) => (s('200 OK', [['Content-Type', 'text/plain']]), [String(environ.FCGI_ROLE)]));
    expect(parseFastCgiResponse(await (await client(role.port)).request({ role: Role.AUTHORIZER, params: GET })).body.toString()).toBe('AUTHORIZER');
  });

  it('Filter: the DATA stream follows STDIN, sized by FCGI_DATA_LENGTH', async () => {
    const { port } = await start(async (environ, s) => {
      const data = environ['tsgi.fastcgi.data'] as Environ['tsgi.input'];
      const file = Buffer.from(await data.read()).toString();
      s('200 OK', [['Content-Type', 'text/plain'], ['X-Last-Mod', String(environ.FCGI_DATA_LAST_MOD)]]);
      return [file.toUpperCase()];
    });
    const reply = await (await client(port)).request({
      role: Role.FILTER,
      params: { ...GET, FCGI_DATA_LENGTH: '11', FCGI_DATA_LAST_MOD: '1700000000' },
      data: 'hello world',
    });
    const response = parseFastCgiResponse(reply);
    expect(response.body.toString()).toBe('HELLO WORLD');
    expect(response.headers).toContainEqual(['X-Last-Mod', '1700000000']);
  });
});

describe('FastCGI mount (C18)', () => {
  const where: App = (environ, s) => (s('200 OK', [['Content-Type', 'text/plain']]), [`${environ.SCRIPT_NAME}|${environ.PATH_INFO}`]);
  it('nginx-style params (SCRIPT_NAME = the whole path, no PATH_INFO) re-split under a mount', async () => {
    const nginx = { ...GET, SCRIPT_NAME: '/app/users/42', REQUEST_URI: '/app/users/42?x=1', DOCUMENT_URI: '/app/users/42' };
    const mounted = await start(where, { mount: '/app' });
    expect(parseFastCgiResponse(await (await client(mounted.port)).request({ params: nginx })).body.toString()).toBe('/app|/users/42');
    const root = await start(where, { mount: '/' });
    expect(parseFastCgiResponse(await (await client(root.port)).request({ params: nginx })).body.toString()).toBe('|/app/users/42');
    const none = await start(where);
    expect(parseFastCgiResponse(await (await client(none.port)).request({ params: nginx })).body.toString()).toBe('/app/users/42|');
  });

  it('percent-escapes in REQUEST_URI are decoded under the byte policy', async () => {
    const { port } = await start(where, { mount: '/' });
    const reply = await (await client(port)).request({ params: { ...GET, REQUEST_URI: '/a%20b/caf%C3%A9' } });
    // The app's string is sent as UTF-8; the chars themselves are the latin-1 byte string.
    expect(parseFastCgiResponse(reply).body.toString('utf8')).toBe('|/a b/caf\u00c3\u00a9');
  });
});

describe('conformance suite over FastCGI (in-process client, nginx-like params)', () => {
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      const { port } = await start(conformanceApp, { mount: '/' });
      const c = await client(port);
      const { method, path, headers = [], body } = testCase.request;
      const query = path.includes('?') ? path.slice(path.indexOf('?') + 1) : '';
      const params: Array<[string, string]> = [
        ['REQUEST_METHOD', method],
        ['REQUEST_URI', path],
        ['SCRIPT_NAME', path.split('?')[0] as string],
        ['QUERY_STRING', query],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['SERVER_NAME', 'localhost'],
        ['SERVER_PORT', '80'],
        ['GATEWAY_INTERFACE', 'CGI/1.1'],
        ['CONTENT_LENGTH', body ? String(body.length) : ''],
        ['CONTENT_TYPE', ''],
      ];
      for (const [name, value] of headers) {
        if (name.toLowerCase() === 'content-type') params.push(['CONTENT_TYPE', value]);
        else if (name.toLowerCase() !== 'proxy') params.push([`HTTP_${name.toUpperCase().replace(/-/g, '_')}`, value]);
      }
      const reply = await c.request({ params, ...(body ? { stdin: body } : {}) });
      const response = parseFastCgiResponse(reply);
      testCase.check(
        { status: response.status, headers: response.headers, body: method === 'HEAD' ? new Uint8Array(0) : response.body },
        { scriptName: '', transport: 'fastcgi' },
      );
    });
  }
});

describe('FastCGI: maxBodyBytes', () => {
  it('a CONTENT_LENGTH over the limit gets 413 before the app runs; the connection keeps serving', async () => {
    let calls = 0;
    const { port } = await start(
      (_e, startResponse) => {
        calls++;
        startResponse('200 OK', []);
        return ['ran'];
      },
      { maxBodyBytes: 100 },
    );
    const c = await client(port);
    const refused = await c.request({ params: { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '1000' }, stdin: Buffer.alloc(1000, 7), keepConn: true });
    expect(parseFastCgiResponse(refused).status).toBe(413);
    expect(calls).toBe(0);
    const small = await c.request({ id: 2, params: { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '100' }, stdin: Buffer.alloc(100, 7), keepConn: true });
    expect(parseFastCgiResponse(small).body.toString()).toBe('ran');
    expect(calls).toBe(1);
  });
});

describe('FastCGI: socket writes', () => {
  /** Counts the writes the server hands to each socket (a corked batch counts once: one writev). */
  function countWrites(server: FastCgiServer): { count: number } {
    const counter = { count: 0 };
    server.on('connection', (socket: import('node:net').Socket) => {
      const write = socket.write;
      const uncork = socket.uncork;
      socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
        if (this.writableCorked === 0) counter.count++;
        return write.apply(this, args);
      } as typeof write;
      socket.uncork = function (this: typeof socket) {
        if (this.writableCorked === 1) counter.count++;
        uncork.call(this);
      };
    });
    return counter;
  }

  it('a small response (head, body, empty STDOUT, END_REQUEST) leaves in one write, from a sync or an async app', async () => {
    const sync: App = (_e, s) => (s('200 OK', [['Content-Type', 'text/plain']]), ['hello']);
    const later: App = async (_e, s) => (await delay(1), s('200 OK', [['Content-Type', 'text/plain']]), ['hello']);
    for (const app of [sync, later]) {
      const { server, port } = await start(app);
      const writes = countWrites(server);
      const c = await client(port);
      for (let i = 0; i < 3; i++) {
        const reply = await c.request({ params: GET, keepConn: true });
        expect(reply.records.map((r) => r.type)).toEqual([RecordType.STDOUT, RecordType.STDOUT, RecordType.END_REQUEST]);
        expect(parseFastCgiResponse(reply).body.toString()).toBe('hello');
      }
      expect(writes.count).toBe(3);
    }
  });

  it('a streamed body leaves as it is produced: a chunk is written before the app makes the next one', async () => {
    let writes = { count: 0 };
    const app: App = (_e, s) => {
      s('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield 'first ';
        // Only once the first chunk (with the head) was handed to the socket: a server that held it until the
        // end would never get here.
        while (writes.count === 0) await delay(5);
        yield 'second';
      })();
    };
    const { server, port } = await start(app);
    writes = countWrites(server);
    const reply = await (await client(port)).request({ params: GET });
    expect(parseFastCgiResponse(reply).body.toString()).toBe('first second');
    expect(reply.appStatus).toBe(0);
    expect(writes.count).toBe(2);
  });

  it('an empty first chunk sends the head at once, before the body (SPEC 4.4: server-sent events)', async () => {
    let writes = { count: 0 };
    const app: App = (_e, s) => {
      s('200 OK', [['Content-Type', 'text/event-stream']]);
      return (async function* () {
        yield '';
        while (writes.count === 0) await delay(5);
        yield 'data: 1\n\n';
      })();
    };
    const { server, port } = await start(app);
    writes = countWrites(server);
    const reply = await (await client(port)).request({ params: GET });
    expect(parseFastCgiResponse(reply).body.toString()).toBe('data: 1\n\n');
    expect(reply.records.filter((r) => r.type === RecordType.STDOUT)[0]?.content.toString()).toMatch(/^Status: 200 OK\r\n[^]*\r\n\r\n$/);
  });

  it('heads that change from one response to the next are each written as they are (the last head is copied only when it is the same)', async () => {
    const heads: Header[][] = [
      [['Content-Type', 'text/plain']],
      [['Content-Type', 'text/html'], ['X-Wide', 'caf\u00e9 \u20ac']],
      [['Content-Type', 'text/plain']],
      [['Content-Type', 'text/plain'], ['X-Request', '4']],
      [['Content-Type', 'text/plain'], ['X-Request', '5']],
    ];
    let next = 0;
    const { port } = await start((_e, s) => (s('200 OK', heads[next++ % heads.length] as Header[]), ['body']));
    const c = await client(port);
    for (const headers of [...heads, ...heads]) {
      const reply = await c.request({ params: GET, keepConn: true });
      expect(reply.stdout.toString('latin1')).toBe(`${formatCgiHead(200, 'OK', [...headers, ['Content-Length', '4']]).toString('latin1')}body`);
    }
  });

  it('an error page (a request refused, an app that failed) still ends with appStatus 1', async () => {
    const { port } = await start(text('never'), { maxBodyBytes: 10 });
    const refused = await (await client(port)).request({ params: { ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '11' }, stdin: 'hello world' });
    expect([parseFastCgiResponse(refused).status, refused.appStatus]).toEqual([413, 1]);
    const failing = await start(() => {
      throw new Error('boom');
    });
    const failed = await (await client(failing.port)).request({ params: GET });
    expect([parseFastCgiResponse(failed).status, failed.appStatus]).toEqual([500, 1]);
  });
});
