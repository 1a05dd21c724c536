import { IncomingMessage, createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { fromNodeHandler, type NodeHandlerEngine } from '../../src/bridges/node-handler.js';
import { objectsEngineSupported, probeObjectsEngine } from '../../src/node-private/http.js';
import { createHttpServer } from '../../src/servers/http.js';
import { testClient } from '../../src/testing/test-client.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * Lets the event loop turn, as it does between requests that arrive from a socket: the test client runs a
 * whole request in promise callbacks, so back-to-back awaits would never let Node's process.nextTick work
 * (a response's 'finish', a socket's return to the pool) run in between.
 */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
/** Polls `predicate` every 10 ms for up to `ms`. */
async function until(predicate: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; !predicate() && waited < ms; waited += 10) await delay(10);
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('fromNodeHandler engines: choice and fallback', () => {
  it('this Node passes the objects-engine probe, and the default engine reuses sockets as kept-alive connections', async () => {
    expect(probeObjectsEngine()).toBe(true);
    expect(objectsEngineSupported()).toBe(true);
    const sockets: unknown[] = [];
    const client = testClient(
      fromNodeHandler((req, res) => {
        sockets.push(req.socket);
        res.end('ok');
      }),
    );
    for (let i = 0; i < 3; i++) {
      expect((await client.get('/')).text()).toBe('ok');
      await nextTurn();
    }
    expect(sockets).toHaveLength(3);
    expect(new Set(sockets).size).toBe(1);
  });

  it('the http-server engine gives each request its own connection', async () => {
    const sockets: unknown[] = [];
    const client = testClient(
      fromNodeHandler(
        (req, res) => {
          sockets.push(req.socket);
          res.end('ok');
        },
        { engine: 'http-server' },
      ),
    );
    for (let i = 0; i < 3; i++) expect((await client.get('/')).text()).toBe('ok');
    expect(new Set(sockets).size).toBe(3);
  });

  it('the probe fails when an internal it relies on is missing (the bridge then uses the http-server engine)', () => {
    const proto = IncomingMessage.prototype as unknown as Record<string, unknown>;
    const saved = proto._addHeaderLines;
    try {
      proto._addHeaderLines = undefined;
      expect(probeObjectsEngine()).toBe(false);
      proto._addHeaderLines = () => undefined; // present but not doing what the parser's does
      expect(probeObjectsEngine()).toBe(false);
    } finally {
      proto._addHeaderLines = saved;
    }
    expect(probeObjectsEngine()).toBe(true);
  });

  it('an unknown engine is a clear error', () => {
    expect(() => fromNodeHandler(() => undefined, { engine: 'bogus' as NodeHandlerEngine })).toThrow(/unknown engine "bogus"/);
  });

  it.each<NodeHandlerEngine>(['objects', 'http-server'])('%s: a request head over maxHeaderSize gets 431 and never reaches the handler', async (engine) => {
    let calls = 0;
    const client = testClient(
      fromNodeHandler(
        (_req, res) => {
          calls++;
          res.end('ran');
        },
        { engine, maxHeaderSize: 2048 },
      ),
    );
    const big = await client.get('/', { headers: { 'x-big': 'y'.repeat(4096) } });
    expect(big.status).toBe(431);
    expect(calls).toBe(0);
    expect((await client.get('/', { headers: { 'x-small': 'y' } })).text()).toBe('ran');
  });
});

describe.each<NodeHandlerEngine>(['objects', 'http-server'])('fromNodeHandler (%s engine): one request after another', (engine) => {
  it('no state leaks from one request to the next: headers, req.body, res.locals, custom fields, aborted flag', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const app = express();
    app.use(express.json());
    app.use((req, res, next) => {
      const marked = req as unknown as { mark?: string };
      seen.push({
        headers: { ...req.headers },
        body: req.body as unknown,
        locals: { ...res.locals },
        mark: marked.mark,
        aborted: req.aborted,
        complete: req.complete,
        headersSent: res.headersSent,
        outHeaders: res.getHeaderNames(),
        remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      });
      marked.mark = 'set by an earlier request';
      res.locals.user = 'alice';
      res.setHeader('X-Leftover', 'yes');
      next();
    });
    app.post('/json', (req, res) => void res.json({ got: req.body as unknown }));
    app.get('/plain', (_req, res) => void res.send('plain'));
    const client = testClient(fromNodeHandler(app, { engine }));
    const first = await client.post('/json', '{"a":1}', {
      headers: { 'content-type': 'application/json', 'x-first': 'only-once' },
      variables: { REMOTE_ADDR: '10.0.0.1', REMOTE_PORT: '1111' },
    });
    expect(JSON.parse(first.text())).toEqual({ got: { a: 1 } });
    const second = await client.get('/plain', { variables: { REMOTE_ADDR: '10.0.0.2', REMOTE_PORT: '2222' } });
    expect(second.text()).toBe('plain');
    expect(second.header('x-leftover')).toBe('yes');
    // The same port again, then a port that is no number: the socket's ports follow every request.
    await client.get('/plain', { variables: { REMOTE_ADDR: '10.0.0.3', REMOTE_PORT: '2222' } });
    await client.get('/plain', { variables: { REMOTE_ADDR: '10.0.0.4', REMOTE_PORT: 'x' } });
    expect(seen.slice(2).map((entry) => entry.remote)).toEqual(['10.0.0.3:2222', '10.0.0.4:undefined']);
    seen.length = 2;
    expect(seen[0]).toMatchObject({ remote: '10.0.0.1:1111', headersSent: false, outHeaders: ['x-powered-by'] });
    expect((seen[0]?.headers as Record<string, string>)['x-first']).toBe('only-once');
    expect(seen[1]).toMatchObject({ body: undefined, locals: {}, mark: undefined, aborted: false, headersSent: false, remote: '10.0.0.2:2222' });
    expect(seen[1]?.outHeaders).toEqual(['x-powered-by']);
    const secondHeaders = seen[1]?.headers as Record<string, string>;
    expect(secondHeaders['x-first']).toBeUndefined();
    expect(secondHeaders['content-type']).toBeUndefined();
  });

  it('an aborted request does not break the next one: it sees aborted/close, the next is answered', async () => {
    const events: string[] = [];
    const sockets: unknown[] = [];
    const app = fromNodeHandler(
      (req, res) => {
        sockets.push(req.socket);
        if (req.url === '/hang') {
          req.on('aborted', () => events.push('req aborted'));
          req.on('close', () => events.push('req close'));
          res.on('close', () => events.push(`res close ${res.writableFinished}`));
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('partial');
          return;
        }
        res.end(`fine ${req.aborted}`);
      },
      { engine },
    );
    const client = testClient(app);
    expect((await client.get('/warm')).text()).toBe('fine false');
    const controller = new AbortController();
    const hung = client.get('/hang', { signal: controller.signal });
    await until(() => sockets.length === 2);
    await delay(20);
    controller.abort(new Error('client gone'));
    const reply = await hung;
    expect(reply.result.ok).toBe(false);
    await until(() => events.length >= 3);
    expect(events).toEqual(expect.arrayContaining(['req aborted', 'req close', 'res close false']));
    for (let i = 0; i < 3; i++) {
      expect((await client.get('/after')).text()).toBe('fine false');
      await nextTurn();
    }
    // The aborted request's connection is gone; the ones after it ran on another (objects: a live, pooled one).
    const hungSocket = sockets[1] as { destroyed: boolean };
    expect(hungSocket.destroyed).toBe(true);
    expect(sockets.slice(2)).not.toContain(hungSocket);
    if (engine === 'objects') for (const socket of sockets.slice(2)) expect((socket as { destroyed: boolean }).destroyed).toBe(false);
  });

  it("a request destroyed by the app after its response does not break the next request", async () => {
    const requests: IncomingMessage[] = [];
    const app = fromNodeHandler(
      (req, res) => {
        requests.push(req);
        if (req.method === 'POST') {
          // Answers without reading the body, then (later) destroys the request, as some apps do to stop an upload.
          res.end('early');
          return;
        }
        res.end('next');
      },
      { engine },
    );
    const client = testClient(app);
    const early = await client.request({
      method: 'POST',
      url: '/',
      body: (async function* () {
        yield Buffer.from('some');
        await delay(50);
        yield Buffer.from('more');
      })(),
      variables: { CONTENT_LENGTH: '8' },
    });
    expect(early.text()).toBe('early');
    requests[0]?.destroy();
    await delay(10);
    for (let i = 0; i < 3; i++) expect((await client.get('/')).text()).toBe('next');
  });

  it('req and res emit their events in the order node:http emits them', async () => {
    const recorder = (events: string[]) => (req: IncomingMessage, res: ServerResponse) => {
      req.on('end', () => events.push('req end'));
      req.on('close', () => events.push(`req close complete=${req.complete} aborted=${req.aborted}`));
      res.on('finish', () => events.push('res finish'));
      res.on('close', () => events.push(`res close finished=${res.writableFinished}`));
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => res.end(`got ${body}`));
    };
    const bridged: string[] = [];
    const reply = await testClient(fromNodeHandler(recorder(bridged), { engine })).post('/', 'payload');
    expect(reply.text()).toBe('got payload');
    const direct: string[] = [];
    const server = createServer(recorder(direct));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { method: 'POST', body: 'payload' });
    expect(await response.text()).toBe('got payload');
    await until(() => bridged.length >= 4 && direct.length >= 4);
    expect(direct).toHaveLength(4);
    expect(bridged).toEqual(direct);
  });

  it('Node derives headers, headersDistinct and rawHeaders as its parser would', async () => {
    let seen: Record<string, unknown> = {};
    const app = fromNodeHandler(
      (req, res) => {
        seen = { headers: req.headers, distinct: { ...req.headersDistinct }, raw: req.rawHeaders, version: req.httpVersion };
        res.end();
      },
      { engine },
    );
    await testClient(app).get('/', { headers: { 'x-one': 'a', cookie: 'k=v; k2=v2', accept: 'text/html' } });
    expect(seen.headers).toMatchObject({ 'x-one': 'a', cookie: 'k=v; k2=v2', accept: 'text/html' });
    expect(seen.distinct).toMatchObject({ 'x-one': ['a'], cookie: ['k=v; k2=v2'] });
    expect(seen.raw).toEqual(expect.arrayContaining(['X-One', 'a', 'Cookie', 'k=v; k2=v2']));
    expect(seen.version).toBe('1.1');
  });

  it('a socket carries at most 100 requests, then closes (as a web server ends a long kept-alive connection)', async () => {
    const sockets = new Set<unknown>();
    let closes = 0;
    const app = fromNodeHandler(
      (req, res) => {
        if (!sockets.has(req.socket)) req.socket.on('close', () => closes++);
        sockets.add(req.socket);
        res.end('x');
      },
      { engine },
    );
    const client = testClient(app);
    for (let i = 0; i < 150; i++) {
      expect((await client.get('/')).status).toBe(200);
      await nextTurn();
    }
    await until(() => closes >= (engine === 'objects' ? 1 : 149));
    if (engine === 'objects') {
      expect(sockets.size).toBe(2);
      expect(closes).toBe(1);
    } else {
      expect(sockets.size).toBe(150);
    }
  });
});

describe.each<NodeHandlerEngine>(['objects', 'http-server'])('fromNodeHandler (%s engine) behind the tsgi HTTP server', (engine) => {
  it('backpressure from a slow client: res.write returns false, drain follows, every byte arrives', async () => {
    const CHUNK = 64 * 1024;
    const CHUNKS = 400; // 25 MiB: far more than loopback socket buffers hold, even autotuned
    let falses = 0;
    let drains = 0;
    let maxAhead = 0;
    let written = 0;
    const app = fromNodeHandler(
      (_req, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(CHUNK * CHUNKS) });
        const chunk = Buffer.alloc(CHUNK, 0x61);
        const pump = (): void => {
          while (written < CHUNKS) {
            written++;
            if (!res.write(chunk)) {
              falses++;
              res.once('drain', () => {
                drains++;
                pump();
              });
              return;
            }
          }
          res.end();
        };
        pump();
      },
      { engine },
    );
    const server = createHttpServer(app, { errors: { write: () => undefined } });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const socket: Socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    closers.push(() => void socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = 0;
    socket.on('data', (data: Buffer) => {
      received += data.length;
      maxAhead = Math.max(maxAhead, written * CHUNK - received);
    });
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // The client reads nothing: the handler must stop on a false write, far short of the whole body.
    await until(() => falses > 0);
    await delay(100);
    const writtenWhilePaused = written;
    expect(falses).toBeGreaterThan(0);
    expect(writtenWhilePaused).toBeLessThan(CHUNKS);
    // Now read slowly, then fully.
    socket.resume();
    await until(() => received >= CHUNK * CHUNKS, 30_000);
    expect(received).toBeGreaterThanOrEqual(CHUNK * CHUNKS);
    expect(drains).toBeGreaterThan(0);
    expect(written).toBe(CHUNKS);
  }, 60_000);
});
