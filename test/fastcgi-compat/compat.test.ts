/**
 * tsgi/fastcgi against node-fastcgi 2.0.0: the same node-fastcgi-style apps, the same FastCGI requests, one
 * connection per request (node-fastcgi closes every connection after one request). Where node-fastcgi is
 * right the answers must be identical; where it is wrong (field-notes "node-fastcgi 2.0.0, measured") tsgi
 * must answer correctly, and node-fastcgi's failure is shown too. node-fastcgi always runs in a child process:
 * several of its failures kill the process that runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, isService, Server, type FastCgiCompatConfig } from '../../src/fastcgi-compat/index.js';
import { FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role } from '../../src/protocol/fastcgi/constants.js';
import { encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { encodeBeginRequest, encodeRecord, encodeStreamRecords } from '../../src/protocol/fastcgi/record-encoder.js';
import { FastCgiClient, parseFastCgiResponse, type FastCgiClientRequest } from '../../src/testing/fastcgi-client.js';
import type { Header } from '../../src/types.js';

const REPO = new URL('../../', import.meta.url);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The apps, as node-fastcgi users write them (its README's examples and then some); loaded by both servers. */
const APPS_SOURCE = `
export function responder(req, res) {
  const url = req.url || '';
  if (url.startsWith('/headers')) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, url, ua: req.headers['user-agent'], custom: req.headers['x-custom'],
      type: req.headers['content-type'], length: req.headers['content-length'] }));
  } else if (url.startsWith('/status')) {
    res.statusCode = 404;
    res.setHeader('X-Reason', 'gone');
    res.end('not here');
  } else if (url.startsWith('/stream')) {
    res.setHeader('Content-Type', 'text/plain');
    res.write('a');
    setTimeout(() => { res.write('b'); res.end('c'); }, 5);
  } else if (url.startsWith('/method')) {
    res.end(req.method + ' ' + url);
  } else if (url.startsWith('/raw')) {
    res.end(Buffer.from(req.headers['x-raw'] || '', 'latin1').toString('hex'));
  } else if (url.startsWith('/continue')) {
    res.writeContinue();
    res.end('after continue');
  } else if (url.startsWith('/never-read')) {
    // Neither reads the body nor answers: what happens to a large upload?
  } else if (req.method === 'GET') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end("It's working");
  } else if (req.method === 'POST') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    let body = '';
    req.on('data', (data) => { body += data.toString(); });
    req.on('end', () => { res.end('Received data:\\n' + body); });
  } else {
    res.writeHead(501);
    res.end();
  }
}
export function authorizer(req, res) {
  if (req.headers.authorization === 'Bearer ok') {
    res.setVariable('USER', 'alice');
    res.allow();
  } else {
    res.deny();
  }
}
export function filter(req, res) {
  let data = '';
  req.socket.dataStream.on('data', (chunk) => { data += chunk.toString(); });
  req.socket.dataStream.on('end', () => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(data.toUpperCase() + ' (' + req.socket.params.FCGI_DATA_LENGTH + ')');
  });
}
`;

/** Starts node-fastcgi in a child process with the apps; prints its port. */
const CHILD_SOURCE = `
import { createRequire } from 'node:module';
const require = createRequire(process.env.REPO_PACKAGE);
const fcgi = require('node-fastcgi');
const apps = await import(process.env.APPS_URL);
const server = fcgi.createServer(apps.responder, apps.authorizer, apps.filter, JSON.parse(process.env.CONFIG));
server.listen(0, '127.0.0.1', () => console.log('PORT ' + server.address().port));
`;

let dir = '';
let appsUrl = '';
let childFile = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsgi-compat-'));
  writeFileSync(join(dir, 'apps.mjs'), APPS_SOURCE);
  writeFileSync(join(dir, 'node-fastcgi-server.mjs'), CHILD_SOURCE);
  appsUrl = pathToFileURL(join(dir, 'apps.mjs')).href;
  childFile = join(dir, 'node-fastcgi-server.mjs');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Running {
  port: number;
  /** Resolves with the exit code when the child dies (never for tsgi). */
  exited: Promise<number | null>;
  child?: ChildProcess;
}

async function startNodeFastCgi(config: FastCgiCompatConfig = {}): Promise<Running> {
  const child = spawn(process.execPath, [childFile], {
    env: { ...process.env, REPO_PACKAGE: new URL('package.json', REPO).pathname, APPS_URL: appsUrl, CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(() => void child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString();
      const match = /PORT (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.stderr.resume();
    void exited.then((code) => reject(new Error(`node-fastcgi child exited early (${code})`)));
  });
  return { port, exited, child };
}

async function startTsgi(config: FastCgiCompatConfig = {}): Promise<Running & { server: Server; log: string[] }> {
  const apps = (await import(appsUrl)) as Record<'responder' | 'authorizer' | 'filter', never>;
  const server = createServer(apps.responder, apps.authorizer, apps.filter, config);
  const log: string[] = [];
  // The engine's own log (protocol errors): kept out of the test output, available to assertions.
  (server.options as { errors: { write: (text: string) => void } }).errors = { write: (text) => void log.push(text) };
  // A connection paused for backpressure notices its peer's FIN only when it reads again: close them here.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, exited: new Promise(() => undefined), server, log };
}

const BASE = {
  SERVER_NAME: 'localhost',
  SERVER_PORT: '80',
  SERVER_PROTOCOL: 'HTTP/1.1',
  GATEWAY_INTERFACE: 'CGI/1.1',
  REMOTE_ADDR: '127.0.0.1',
  REMOTE_PORT: '41000',
  HTTP_HOST: 'localhost',
};

function params(method: string, uri: string, extra: Record<string, string> = {}): Record<string, string> {
  const [path, query = ''] = uri.split('?');
  return { ...BASE, REQUEST_METHOD: method, SCRIPT_NAME: '', PATH_INFO: path as string, QUERY_STRING: query, REQUEST_URI: uri, ...extra };
}

interface Answer {
  status: number;
  headers: Header[];
  body: string;
  appStatus: number;
  protocolStatus: number;
}

/** One request on a fresh connection; headers without the per-connection ones (Date, Connection, Keep-Alive). */
async function ask(port: number, request: FastCgiClientRequest): Promise<Answer> {
  const client = await FastCgiClient.connect(port);
  try {
    const reply = await client.request(request, 5000);
    const parsed = parseFastCgiResponse(reply);
    const headers = parsed.headers.filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name.toLowerCase()));
    return { status: parsed.status, headers, body: parsed.body.toString('latin1'), appStatus: reply.appStatus, protocolStatus: reply.protocolStatus };
  } finally {
    client.close();
  }
}

/** Sends raw bytes on a fresh connection and collects what comes back until END_REQUEST of `id`, or closing. */
async function askRaw(port: number, bytes: Buffer, id = 1, timeoutMs = 3000): Promise<{ client: FastCgiClient; ended: boolean }> {
  const client = await FastCgiClient.connect(port);
  cleanups.push(() => client.close());
  await client.send(bytes);
  const ended = await client
    .waitFor(() => client.records(id).some((record) => record.type === RecordType.END_REQUEST), timeoutMs, 'END_REQUEST')
    .then(
      () => true,
      () => false,
    );
  return { client, ended };
}

function stdoutOf(client: FastCgiClient, id = 1): string {
  return Buffer.concat(client.records(id).filter((r) => r.type === RecordType.STDOUT).map((r) => r.content)).toString('latin1');
}

describe('identical answers where node-fastcgi is right', () => {
  const cases: Array<[string, FastCgiClientRequest]> = [
    ['README hello world (GET)', { params: params('GET', '/') }],
    ['README: POST body read with data/end', { params: params('POST', '/', { CONTENT_TYPE: 'text/plain', CONTENT_LENGTH: '11' }), stdin: 'hello there' }],
    ['README: other methods -> 501', { params: params('PUT', '/') }],
    [
      'request headers, Content-Type and Content-Length (T15)',
      { params: params('POST', '/headers?q=1', { HTTP_USER_AGENT: 'compat-test', HTTP_X_CUSTOM: 'yes', CONTENT_TYPE: 'application/x-test', CONTENT_LENGTH: '3' }), stdin: 'abc' },
    ],
    ['status codes and headers', { params: params('GET', '/status') }],
    ['res.write streaming (T14)', { params: params('GET', '/stream') }],
    ['url from SCRIPT_NAME + PATH_INFO + query without REQUEST_URI', { params: { ...params('GET', '/method'), SCRIPT_NAME: '/app', PATH_INFO: '/method/x', QUERY_STRING: 'k=v', REQUEST_URI: '' } }],
    ['Authorizer: allowed, with a variable', { role: Role.AUTHORIZER, params: { ...BASE, REQUEST_METHOD: 'GET', HTTP_AUTHORIZATION: 'Bearer ok' } }],
    ['Authorizer: denied', { role: Role.AUTHORIZER, params: { ...BASE, REQUEST_METHOD: 'GET', HTTP_AUTHORIZATION: 'Bearer bad' } }],
    ['Filter: the DATA stream', { role: Role.FILTER, params: params('GET', '/file.txt', { FCGI_DATA_LENGTH: '12', FCGI_DATA_LAST_MOD: '0' }), data: 'file content' }],
  ];

  it.each(cases)('%s', async (_name, request) => {
    const reference = await startNodeFastCgi();
    const tsgi = await startTsgi();
    const [expected, actual] = await Promise.all([ask(reference.port, request), ask(tsgi.port, request)]);
    // tsgi states an empty body's length (SPEC section 4: "Content-Length: 0"); node-fastcgi leaves it unsaid.
    if (expected.body === '' && !expected.headers.some(([name]) => name.toLowerCase() === 'content-length')) {
      actual.headers = actual.headers.filter(([name, value]) => !(name === 'Content-Length' && value === '0'));
    }
    expect(actual).toEqual(expected);
    // And what node-fastcgi answers is what was meant (the comparison alone would accept a shared mistake).
    expect(actual.status).toBeGreaterThanOrEqual(200);
  });

  it('answers as the apps intend (spot checks of the shared answers)', async () => {
    const tsgi = await startTsgi();
    expect((await ask(tsgi.port, { params: params('GET', '/') })).body).toBe("It's working");
    expect((await ask(tsgi.port, { params: params('POST', '/', { CONTENT_LENGTH: '2' }), stdin: 'hi' })).body).toBe('Received data:\nhi');
    const stream = await ask(tsgi.port, { params: params('GET', '/stream') });
    expect(stream.body).toBe('abc');
    const allowed = await ask(tsgi.port, { role: Role.AUTHORIZER, params: { ...BASE, REQUEST_METHOD: 'GET', HTTP_AUTHORIZATION: 'Bearer ok' } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers).toContainEqual(['Variable-USER', 'alice']);
    const filtered = await ask(tsgi.port, { role: Role.FILTER, params: params('GET', '/f', { FCGI_DATA_LENGTH: '3' }), data: 'abc' });
    expect(filtered.body).toBe('ABC (3)');
  });
});

describe('where node-fastcgi is wrong, tsgi/fastcgi answers correctly', () => {
  it('a name-value pair split across two PARAMS records', async () => {
    const pairs = encodeNameValuePairs(Object.entries(params('POST', '/method', { CONTENT_LENGTH: '0' })));
    const cut = pairs.indexOf(Buffer.from('REQUEST_METHOD')) + 5; // in the middle of REQUEST_METHOD's name
    const bytes = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, 0),
      encodeRecord(RecordType.PARAMS, 1, pairs.subarray(0, cut)),
      encodeRecord(RecordType.PARAMS, 1, pairs.subarray(cut)),
      encodeRecord(RecordType.PARAMS, 1),
      encodeRecord(RecordType.STDIN, 1),
    ]);
    const tsgi = await askRaw((await startTsgi()).port, bytes);
    expect(stdoutOf(tsgi.client)).toMatch(/\r\n\r\nPOST \/method$/);
    const reference = await askRaw((await startNodeFastCgi()).port, bytes);
    expect(stdoutOf(reference.client)).not.toMatch(/POST \/method$/);
  });

  it('raw non-UTF-8 bytes in a param reach the app as bytes', async () => {
    const request = { params: params('GET', '/raw', { HTTP_X_RAW: '\xff\xfeA' }) };
    expect((await ask((await startTsgi()).port, request)).body).toBe('fffe41');
    // node-fastcgi decoded the bytes as UTF-8: each became U+FFFD, and the original bytes are lost.
    expect((await ask((await startNodeFastCgi()).port, request)).body).toBe('fdfd41');
  });

  it('multiplex: false is enforced: a second request on a busy connection gets CANT_MPX_CONN', async () => {
    const bytes = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN),
      encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs(Object.entries(params('POST', '/never-read', { CONTENT_LENGTH: '5' })))),
      encodeRecord(RecordType.PARAMS, 1),
      encodeBeginRequest(2, Role.RESPONDER, FCGI_KEEP_CONN),
    ]);
    const tsgi = await askRaw((await startTsgi({ multiplex: false })).port, bytes, 2);
    expect(tsgi.ended).toBe(true);
    const end = tsgi.client.records(2).find((record) => record.type === RecordType.END_REQUEST);
    expect(end?.content[4]).toBe(ProtocolStatus.CANT_MPX_CONN);
    const reference = await askRaw((await startNodeFastCgi({ multiplex: false })).port, bytes, 2, 500);
    expect(reference.ended).toBe(false); // request 2 was accepted and waits for its params
  });

  it('a duplicated empty PARAMS record is ignored', async () => {
    const bytes = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, 0),
      encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs(Object.entries(params('GET', '/')))),
      encodeRecord(RecordType.PARAMS, 1),
      encodeRecord(RecordType.PARAMS, 1),
      encodeRecord(RecordType.STDIN, 1),
    ]);
    const tsgi = await askRaw((await startTsgi()).port, bytes);
    expect(tsgi.ended).toBe(true);
    expect(stdoutOf(tsgi.client)).toMatch(/^Status: 200 OK\r\n[\s\S]*\r\n\r\nIt's working$/);
    const running = await startNodeFastCgi();
    const reference = await askRaw(running.port, bytes);
    const died = await Promise.race([running.exited.then(() => true), delay(1000).then(() => false)]);
    expect(died || !reference.ended || stdoutOf(reference.client).split('Status:').length > 2).toBe(true);
  });

  it('res.writeContinue() works (node-fastcgi throws and dies)', async () => {
    const request = { params: params('GET', '/continue') };
    const tsgi = await ask((await startTsgi()).port, request);
    expect(tsgi.status).toBe(200);
    expect(tsgi.body).toBe('after continue');
    const running = await startNodeFastCgi();
    await ask(running.port, request).catch(() => undefined);
    expect(await Promise.race([running.exited, delay(3000).then(() => 'alive')])).not.toBe('alive');
  });

  it('an unknown management record (type 99) gets UNKNOWN_TYPE (node-fastcgi dies)', async () => {
    const probe = encodeRecord(99, 0, Buffer.alloc(8));
    const tsgi = await FastCgiClient.connect((await startTsgi()).port);
    cleanups.push(() => tsgi.close());
    await tsgi.send(probe);
    await tsgi.waitFor(() => tsgi.records(0).length > 0, 3000, 'UNKNOWN_TYPE');
    const record = tsgi.records(0)[0];
    expect(record?.type).toBe(RecordType.UNKNOWN_TYPE);
    expect(record?.content[0]).toBe(99);
    // The connection still works afterwards.
    expect((await tsgi.request({ params: params('GET', '/') })).stdout.toString()).toContain("It's working");

    const running = await startNodeFastCgi();
    const reference = await FastCgiClient.connect(running.port);
    cleanups.push(() => reference.close());
    await reference.send(probe);
    expect(await Promise.race([running.exited, delay(3000).then(() => 'alive')])).not.toBe('alive');
  });

  it('stdin is not buffered without bound: a body the app does not read stays in the client', async () => {
    const bodyBytes = 48 * 1024 * 1024;
    const head = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, 0),
      encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs(Object.entries(params('POST', '/never-read', { CONTENT_LENGTH: String(bodyBytes) })))),
      encodeRecord(RecordType.PARAMS, 1),
    ]);
    const pending = async (port: number): Promise<number> => {
      const client = await FastCgiClient.connect(port);
      cleanups.push(() => client.close());
      await client.send(head);
      await client.send(encodeStreamRecords(RecordType.STDIN, 1, Buffer.alloc(bodyBytes, 0x61)));
      await delay(1500);
      return client.socket.writableLength;
    };
    // tsgi stops reading once about 1 MiB (inputHighWaterBytes) waits for the app: most of the body is unsent.
    expect(await pending((await startTsgi()).port)).toBeGreaterThan(bodyBytes / 2);
    // node-fastcgi reads everything into memory.
    expect(await pending((await startNodeFastCgi()).port)).toBeLessThan(bodyBytes / 2);
  });
});

describe('the drop-in API', () => {
  it('createServer(handler, config) takes the config from the second slot; the options map to the engine', () => {
    const server = createServer(() => undefined, { maxConns: '7', maxReqs: 9, multiplex: false, custom: 1 });
    expect(server.config).toMatchObject({ maxConns: 7, maxReqs: 9, multiplex: false, custom: 1 });
    expect(server.options).toMatchObject({ maxConnections: 7, maxRequests: 9, multiplex: false });
    expect(server.listenerCount('request')).toBe(1);
    const defaults = createServer();
    expect(defaults.config).toMatchObject({ maxConns: 2000, maxReqs: 2000, multiplex: true });
    expect(defaults.maxConnections).toBe(2000);
  });

  it('GET_VALUES reports maxConns, maxReqs and multiplex as node-fastcgi does', async () => {
    const query = encodeRecord(RecordType.GET_VALUES, 0, encodeNameValuePairs([['FCGI_MAX_CONNS', ''], ['FCGI_MAX_REQS', ''], ['FCGI_MPXS_CONNS', '']]));
    const answers: string[] = [];
    for (const running of [await startNodeFastCgi({ maxConns: 5, maxReqs: 6, multiplex: false }), await startTsgi({ maxConns: 5, maxReqs: 6, multiplex: false })]) {
      const client = await FastCgiClient.connect(running.port);
      cleanups.push(() => client.close());
      await client.send(query);
      await client.waitFor(() => client.records(0).length > 0, 3000, 'GET_VALUES_RESULT');
      answers.push(Buffer.from(client.records(0)[0]?.content ?? []).toString('latin1'));
    }
    expect(answers[1]).toBe(answers[0]);
    expect(answers[1]).toContain('FCGI_MAX_CONNS5');
  });

  it('a role without a listener gets 501; Express runs as a responder with real req/res', async () => {
    const express = (await import('express')).default;
    const app = express();
    app.use(express.json());
    app.post('/api', (req, res) => void res.json({ got: req.body as unknown }));
    const server = createServer(app);
    server.options.errors.write = () => undefined;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const reply = await ask(port, { params: params('POST', '/api', { CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '7' }), stdin: '{"a":1}' });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ got: { a: 1 } });
    const authorize = await ask(port, { role: Role.AUTHORIZER, params: { ...BASE, REQUEST_METHOD: 'GET' } });
    expect(authorize.status).toBe(501);
  });

  it('listen() without arguments listens on fd 0; isService() says whether fd 0 is a socket', async () => {
    expect(typeof isService()).toBe('boolean');
    const server = createServer(() => undefined);
    const calls: unknown[][] = [];
    const original = Object.getPrototypeOf(Server.prototype).listen as (...args: unknown[]) => unknown;
    Object.getPrototypeOf(Server.prototype).listen = function (this: unknown, ...args: unknown[]) {
      calls.push(args);
      return this;
    };
    try {
      const callback = (): void => undefined;
      server.listen();
      server.listen(callback);
      server.listen(0, '127.0.0.1');
      expect(calls).toEqual([[{ fd: 0 }], [{ fd: 0 }, callback], [0, '127.0.0.1']]);
    } finally {
      Object.getPrototypeOf(Server.prototype).listen = original;
    }
  });
});
