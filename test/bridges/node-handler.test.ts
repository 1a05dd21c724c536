import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { environOf, fromNodeHandler as fromNodeHandlerWith, type NodeHandlerEngine } from '../../src/bridges/node-handler.js';
import { toNodeListener } from '../../src/bridges/node-listener.js';
import { createEnviron } from '../../src/environ/create-environ.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { createHttpServer } from '../../src/servers/http.js';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import { conformanceApp, conformanceCases } from '../../src/testing/conformance.js';
import { testClient } from '../../src/testing/test-client.js';
import type { App, Header } from '../../src/types.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tempDir = mkdtempSync(join(tmpdir(), 'tsgi-node-handler-'));
const tempFile = join(tempDir, 'hello.txt');
writeFileSync(tempFile, 'file contents\n');
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The Express app most cases run: one route per feature the bridge must keep working. */
function buildExpressApp(): express.Express {
  const app = express();
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));
  app.get('/hello', (_req, res) => void res.type('text/plain').send('hello'));
  app.post('/json', (req, res) => void res.json({ got: req.body as unknown }));
  app.post('/form', (req, res) => void res.json({ got: req.body as unknown }));
  app.get('/redirect', (_req, res) => res.redirect('/hello'));
  app.get('/cookies', (_req, res) => {
    res.cookie('a', '1');
    res.cookie('b', '2', { httpOnly: true });
    res.send('two cookies');
  });
  app.get('/file', (_req, res) => res.sendFile(tempFile));
  app.get('/stream', (_req, res) => {
    res.type('text/plain');
    res.write('one,');
    setTimeout(() => {
      res.write('two,');
      res.end('three');
    }, 5);
  });
  app.get('/whoami', (req, res) => void res.json({ ip: req.ip, protocol: req.protocol, url: req.url, originalUrl: req.originalUrl }));
  app.get('/boom', () => {
    throw new Error('kaboom');
  });
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).type('text/plain').send(`handled: ${error.message}`);
  });
  return app;
}

interface Reply {
  status: number;
  headers: Header[];
  body: Buffer;
}
interface Req {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}
type Transport = (app: App, scriptName?: string) => Promise<(request: Req) => Promise<Reply>>;

const header = (reply: Reply, name: string): string | undefined => reply.headers.find(([key]) => key.toLowerCase() === name)?.[1];
const headerAll = (reply: Reply, name: string): string[] =>
  reply.headers.filter(([key]) => key.toLowerCase() === name).map(([, value]) => value);

const viaTestClient: Transport = async (app, scriptName = '') => {
  const client = testClient(app, { scriptName });
  return async (request) => {
    const reply = await client.request({ method: request.method ?? 'GET', url: request.url, headers: request.headers ?? {}, ...(request.body !== undefined ? { body: request.body } : {}) });
    return { status: reply.status, headers: reply.headers, body: reply.body };
  };
};

const viaFastCgi: Transport = async (app, scriptName = '') => {
  const server = createFastCgiServer(app, { errors: { write: () => undefined }, ...(scriptName ? { mount: scriptName } : {}) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  return async (request) => {
    const client = await FastCgiClient.connect(port);
    try {
      const [path, query = ''] = request.url.split('?');
      const params: Record<string, string> = {
        REQUEST_METHOD: request.method ?? 'GET',
        SCRIPT_NAME: scriptName,
        PATH_INFO: decodeURIComponent(path as string),
        QUERY_STRING: query,
        REQUEST_URI: scriptName + request.url,
        SERVER_NAME: 'localhost',
        SERVER_PORT: '80',
        SERVER_PROTOCOL: 'HTTP/1.1',
        REMOTE_ADDR: '127.0.0.1',
        REMOTE_PORT: '40000',
        HTTP_HOST: 'localhost',
      };
      for (const [name, value] of Object.entries(request.headers ?? {})) {
        if (name.toLowerCase() === 'content-type') params.CONTENT_TYPE = value;
        else params[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = value;
      }
      if (request.body !== undefined) params.CONTENT_LENGTH = String(Buffer.byteLength(request.body));
      const reply = parseFastCgiResponse(await client.request({ params, ...(request.body !== undefined ? { stdin: request.body } : {}) }));
      return { status: reply.status, headers: reply.headers, body: reply.body };
    } finally {
      client.close();
    }
  };
};

const viaHttp: Transport = async (app, scriptName = '') => {
  const server = createHttpServer(app, { errors: { write: () => undefined }, scriptName });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return async (request) => {
    const response = await fetch(`http://127.0.0.1:${port}${scriptName}${request.url}`, {
      method: request.method ?? 'GET',
      headers: request.headers ?? {},
      redirect: 'manual',
      ...(request.body !== undefined ? { body: request.body } : {}),
    });
    const headers: Header[] = [];
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') headers.push([name, value]);
    });
    for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
    return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()) };
  };
};

const transports: Array<[string, Transport]> = [
  ['testClient', viaTestClient],
  ['FastCGI server', viaFastCgi],
  ['HTTP server', viaHttp],
];

/** Runs `app` for one request by hand, pulling the body as slowly as the test wants. */
function runByHand(app: App, variables: Record<string, string> = {}, controller = new AbortController()) {
  const environ = createEnviron({
    variables: { REQUEST_METHOD: 'GET', SERVER_PROTOCOL: 'HTTP/1.1', REMOTE_ADDR: '10.1.2.3', REMOTE_PORT: '5555', ...variables },
    errors: { write: () => undefined },
    signal: controller.signal,
  });
  let status = '';
  let headers: Header[] = [];
  const body = Promise.resolve(
    app(environ, (s, h) => {
      status = s;
      headers = h;
      return async () => undefined;
    }),
  );
  return { environ, controller, body, head: () => ({ status, headers }) };
}

/** Every case below runs under both engines of fromNodeHandler. */
function suite(engine: NodeHandlerEngine): void {
  const fromNodeHandler: typeof fromNodeHandlerWith = (handler, options = {}) => fromNodeHandlerWith(handler, { engine, ...options });

  describe.each(transports)('Express 5 through fromNodeHandler, via %s', (_name, transport) => {
    it('routes, answers text, 404s what no route takes', async () => {
      const send = await transport(fromNodeHandler(buildExpressApp()));
      const hello = await send({ url: '/hello' });
      expect(hello.status).toBe(200);
      expect(hello.body.toString()).toBe('hello');
      expect(header(hello, 'content-type')).toBe('text/plain; charset=utf-8');
      expect(header(hello, 'x-powered-by')).toBe('Express');
      const missing = await send({ url: '/nope' });
      expect(missing.status).toBe(404);
      expect(missing.body.toString()).toContain('Cannot GET /nope');
    });

    it('T15/T17: express.json() and express.urlencoded() read the body; res.json answers', async () => {
      const send = await transport(fromNodeHandler(buildExpressApp()));
      const json = await send({ method: 'POST', url: '/json', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2],"b":"é"}' });
      expect(json.status).toBe(200);
      expect(JSON.parse(json.body.toString())).toEqual({ got: { a: [1, 2], b: 'é' } });
      expect(header(json, 'content-type')).toBe('application/json; charset=utf-8');
      expect(header(json, 'content-length')).toBe(String(json.body.length));
      const form = await send({ method: 'POST', url: '/form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=1&y=two+words' });
      expect(JSON.parse(form.body.toString())).toEqual({ got: { x: '1', y: 'two words' } });
    });

    it('res.redirect, two cookies as two Set-Cookie headers, res.sendFile', async () => {
      const send = await transport(fromNodeHandler(buildExpressApp()));
      const redirect = await send({ url: '/redirect' });
      expect(redirect.status).toBe(302);
      expect(header(redirect, 'location')).toBe('/hello');
      const cookies = await send({ url: '/cookies' });
      expect(headerAll(cookies, 'set-cookie')).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
      const file = await send({ url: '/file' });
      expect(file.status).toBe(200);
      expect(file.body.toString()).toBe('file contents\n');
      expect(header(file, 'content-type')).toBe('text/plain; charset=utf-8');
      expect(header(file, 'last-modified')).toBeDefined();
    });

    it('streams res.write chunks without leaking chunked framing into the body', async () => {
      const send = await transport(fromNodeHandler(buildExpressApp()));
      const reply = await send({ url: '/stream' });
      expect(reply.body.toString()).toBe('one,two,three');
      expect(header(reply, 'transfer-encoding') ?? 'chunked').toBe('chunked'); // only the HTTP server may frame
    });

    it("a thrown error reaches Express's error handler (500)", async () => {
      const send = await transport(fromNodeHandler(buildExpressApp()));
      const reply = await send({ url: '/boom' });
      expect(reply.status).toBe(500);
      expect(reply.body.toString()).toBe('handled: kaboom');
    });

    it('mounted at /app: routes see the path below the mount, originalUrl the full one, ip the client', async () => {
      const send = await transport(fromNodeHandler(buildExpressApp()), '/app');
      const reply = await send({ url: '/whoami?x=1' });
      expect(JSON.parse(reply.body.toString())).toEqual({ ip: '127.0.0.1', protocol: 'http', url: '/whoami?x=1', originalUrl: '/app/whoami?x=1' });
    });
  });

  describe.each(transports)('Fastify 5, Koa 3 and plain handlers via %s', (_name, transport) => {
    it('Fastify: routing, JSON body, 404', async () => {
      const fastify = Fastify();
      fastify.post('/echo', async (request) => ({ got: request.body, ip: request.ip }));
      fastify.get('/text', async (_request, reply) => reply.type('text/plain').send('from fastify'));
      await fastify.ready();
      closers.push(() => fastify.close());
      const send = await transport(fromNodeHandler((req, res) => fastify.routing(req, res)));
      const echo = await send({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, body: '{"n":5}' });
      expect(echo.status).toBe(200);
      expect(JSON.parse(echo.body.toString())).toEqual({ got: { n: 5 }, ip: '127.0.0.1' });
      expect((await send({ url: '/text' })).body.toString()).toBe('from fastify');
      expect((await send({ url: '/none' })).status).toBe(404);
    });

    it('Koa: app.callback(), body read by hand, status and headers', async () => {
      const koa = new Koa();
      koa.use(async (ctx) => {
        if (ctx.path === '/teapot') {
          ctx.status = 418;
          ctx.set('X-Kind', 'teapot');
          ctx.body = 'short and stout';
          return;
        }
        let body = '';
        for await (const chunk of ctx.req) body += String(chunk);
        ctx.body = { method: ctx.method, path: ctx.path, query: ctx.query, body };
      });
      const send = await transport(fromNodeHandler(koa.callback()));
      const teapot = await send({ url: '/teapot' });
      expect(teapot.status).toBe(418);
      expect(header(teapot, 'x-kind')).toBe('teapot');
      expect(teapot.body.toString()).toBe('short and stout');
      const echo = await send({ method: 'PUT', url: '/x?y=1', headers: { 'content-type': 'text/plain' }, body: 'payload' });
      expect(JSON.parse(echo.body.toString())).toEqual({ method: 'PUT', path: '/x', query: { y: '1' }, body: 'payload' });
    });

    it('T14: write("a") then end("b") -> "ab", with and without Content-Length; T16: setHeader then writeHead', async () => {
      const send = await transport(
        fromNodeHandler((req, res) => {
          res.setHeader('X-Set', 'before');
          if (req.url === '/length') res.writeHead(200, { 'Content-Length': '2' });
          else res.writeHead(201, 'Made', { 'Content-Type': 'text/plain' });
          res.write('a');
          res.end('b');
        }),
      );
      const plain = await send({ url: '/plain' });
      expect(plain.status).toBe(201);
      expect(plain.body.toString()).toBe('ab');
      expect(header(plain, 'x-set')).toBe('before');
      const length = await send({ url: '/length' });
      expect(length.body.toString()).toBe('ab');
      expect(header(length, 'content-length')).toBe('2');
    });
  });

  describe('fromNodeHandler: the node objects behave as under node:http', () => {
    it('hands over real IncomingMessage/ServerResponse with the socket facts and the environ', async () => {
      let seen: Record<string, unknown> = {};
      const run = runByHand(
        fromNodeHandler((req, res) => {
          seen = {
            incoming: req.constructor.name,
            response: res.constructor.name,
            remoteAddress: req.socket.remoteAddress,
            remotePort: req.socket.remotePort,
            localPort: req.socket.localPort,
            encrypted: (req.socket as { encrypted?: boolean }).encrypted,
            readable: req.socket.readable,
            httpVersion: req.httpVersion,
            method: req.method,
            rawHeaders: req.rawHeaders,
            environ: environOf(req)?.['tsgi.url_scheme'],
          };
          res.end();
        }),
        { REQUEST_METHOD: 'PURGE', SERVER_PORT: '8443', HTTPS: 'on', SERVER_PROTOCOL: 'HTTP/1.0', HTTP_USER_AGENT: 'probe', HTTP_X_MULTI_WORD: 'yes' },
      );
      for await (const _ of await run.body);
      expect(seen).toEqual({
        incoming: 'IncomingMessage',
        response: 'ServerResponse',
        remoteAddress: '10.1.2.3',
        remotePort: 5555,
        localPort: 8443,
        encrypted: true,
        readable: true,
        httpVersion: '1.0',
        method: 'PURGE',
        rawHeaders: ['User-Agent', 'probe', 'X-Multi-Word', 'yes'],
        environ: 'https',
      });
    });

    it('backpressure: res.write returns false while the tsgi side is slow, and drain follows when it reads', async () => {
      const results: boolean[] = [];
      let drains = 0;
      const chunk = 'x'.repeat(8192);
      const run = runByHand(
        fromNodeHandler((_req, res) => {
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          let written = 0;
          const writeMore = (): void => {
            while (written < 8) {
              written++;
              const ok = res.write(chunk);
              results.push(ok);
              if (!ok) {
                res.once('drain', () => {
                  drains++;
                  writeMore();
                });
                return;
              }
            }
            res.end();
          };
          writeMore();
        }),
      );
      const body = (await run.body) as AsyncIterable<Uint8Array>;
      await delay(20);
      // Nothing was taken yet: the handler must be waiting for 'drain' rather than buffering everything.
      expect(results.length).toBeLessThan(8);
      expect(results.at(-1)).toBe(false);
      let total = 0;
      for await (const part of body) {
        total += part.length;
        await delay(1);
      }
      expect(total).toBe(8 * 8192);
      expect(drains).toBeGreaterThan(0);
    });

    it('a response written at once is complete when the handler ends it, a 64 KiB one too; a second write waits', async () => {
      const big = Buffer.alloc(64 * 1024, 'b');
      const whole = runByHand(fromNodeHandler((_req, res) => res.end(big)));
      const parts = (await whole.body) as Buffer[];
      // (An array: the response came whole, no iteration waits on the handler.)
      expect(Array.isArray(parts)).toBe(true);
      expect(Buffer.concat(parts).equals(big)).toBe(true);
      const returns: boolean[] = [];
      const two = runByHand(
        fromNodeHandler((_req, res) => {
          res.writeHead(200, { 'Content-Length': String(2 * big.length) });
          returns.push(res.write(big), res.write(big));
          res.once('drain', () => res.end());
        }),
      );
      const body = (await two.body) as AsyncIterable<Uint8Array>;
      expect(Array.isArray(body)).toBe(false);
      expect(returns).toEqual([false, false]);
      let total = 0;
      for await (const part of body) total += part.length;
      expect(total).toBe(2 * big.length);
    });

    it('tsgi.signal abort: req emits aborted and close, res emits close, the body fails', async () => {
      const events: string[] = [];
      const run = runByHand(
        fromNodeHandler((req, res) => {
          req.on('aborted', () => events.push('req aborted'));
          req.on('close', () => events.push('req close'));
          res.on('close', () => events.push(`res close (destroyed=${res.destroyed})`));
          res.writeHead(200);
          res.write('started');
        }),
      );
      const body = (await run.body) as AsyncIterable<Uint8Array>;
      const iterator = body[Symbol.asyncIterator]();
      expect(Buffer.from((await iterator.next()).value as Uint8Array).toString()).toBe('started');
      run.controller.abort(new Error('client gone'));
      await delay(20);
      expect(events).toEqual(expect.arrayContaining(['res close (destroyed=true)', 'req close']));
    });

    it('a handler that destroys its response half-way: the request is aborted before the response closes, the body fails', async () => {
      const events: string[] = [];
      const run = runByHand(
        fromNodeHandler((req, res) => {
          req.on('aborted', () => events.push('req aborted'));
          res.on('close', () => events.push(`res close (finished=${res.writableFinished})`));
          res.writeHead(200);
          res.write('started');
          setTimeout(() => res.destroy(), 10);
        }),
      );
      const body = (await run.body) as AsyncIterable<Uint8Array>;
      const iterator = body[Symbol.asyncIterator]();
      expect(Buffer.from((await iterator.next()).value as Uint8Array).toString()).toBe('started');
      await expect(iterator.next()).rejects.toThrow(/closed before it ended|aborted/);
      await delay(20);
      expect(events).toEqual(['req aborted', 'res close (finished=false)']);
    });

    it('HEAD: the head of GET, no body; 204 and 304 carry no body', async () => {
      const app = fromNodeHandler((req, res) => {
        if (req.url === '/204') return void res.writeHead(204).end();
        if (req.url === '/304') return void res.writeHead(304, { ETag: '"x"' }).end();
        res.setHeader('Content-Type', 'text/plain');
        res.setHeader('Content-Length', '9');
        // A HEAD handler that streams late still gets to finish: runApp does not wait on its body.
        setTimeout(() => res.end('body text'), 20);
      });
      const client = testClient(app);
      const get = await client.get('/');
      expect(get.text()).toBe('body text');
      const head = await client.request({ method: 'HEAD', url: '/' });
      expect(head.status).toBe(200);
      expect(head.header('content-length')).toBe('9');
      expect(head.header('content-type')).toBe('text/plain');
      expect(head.body.length).toBe(0);
      expect(head.errors).toBe('');
      expect((await client.get('/204')).status).toBe(204);
      const notModified = await client.get('/304');
      expect(notModified.status).toBe(304);
      expect(notModified.header('etag')).toBe('"x"');
      expect(notModified.body.length).toBe(0);
    });

    it('writeContinue() does not throw and never reaches the client; Expect reaches the handler', async () => {
      const app = fromNodeHandler((req, res) => {
        res.writeContinue();
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => res.end(`expect=${req.headers.expect} body=${body}`));
      });
      const reply = await testClient(app).post('/', 'data', { headers: { expect: '100-continue' } });
      expect(reply.status).toBe(200);
      expect(reply.text()).toBe('expect=100-continue body=data');
    });

    it('a handler that throws or rejects before answering gives a 500, logged', async () => {
      const thrower = testClient(fromNodeHandler(() => {
        throw new Error('sync boom');
      }));
      const sync = await thrower.get('/');
      expect(sync.status).toBe(500);
      expect(sync.errors).toContain('sync boom');
      const rejecter = testClient(fromNodeHandler(async () => {
        await delay(1);
        throw new Error('async boom');
      }));
      const async = await rejecter.get('/');
      expect(async.status).toBe(500);
      expect(async.errors).toContain('async boom');
    });

    it('a body of unknown length (de-chunked upload) reaches the handler as a chunked request', async () => {
      const app = fromNodeHandler((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => res.end(`${req.headers['transfer-encoding']}:${body}`));
      });
      const reply = await testClient(app).request({ method: 'POST', url: '/', body: 'streamed upload', chunked: true });
      expect(reply.text()).toBe('chunked:streamed upload');
    });

    it('a body shorter than CONTENT_LENGTH fails the read: the handler sees aborted, the client a 400', async () => {
      const events: string[] = [];
      const app = fromNodeHandler((req, res) => {
        req.on('aborted', () => events.push('aborted'));
        req.on('data', () => undefined);
        req.on('end', () => res.end('should not happen'));
      });
      const reply = await testClient(app).request({
        method: 'POST',
        url: '/',
        body: (async function* () {
          yield Buffer.from('abc');
        })(),
        variables: { CONTENT_LENGTH: '10' },
      });
      expect(reply.status).toBe(400);
      expect(events).toEqual(['aborted']);
    });
  });

  describe('fromNodeHandler over real connections', () => {
    it('T18: a handler that starts reading 400 ms late gets the whole trickled body (HTTP server)', async () => {
      const app = fromNodeHandler((req, res) => {
        setTimeout(() => {
          const parts: Buffer[] = [];
          req.on('data', (chunk: Buffer) => parts.push(chunk));
          req.on('end', () => res.end(`got ${Buffer.concat(parts).toString()}`));
        }, 400);
      });
      const server = createHttpServer(app, { errors: { write: () => undefined } });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      await once(socket, 'connect');
      let text = '';
      socket.on('data', (data: Buffer) => (text += data.toString('latin1')));
      const body = 'abcdefghij';
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      for (const char of body) {
        socket.write(char);
        await delay(60);
      }
      for (let waited = 0; !text.includes('got ') && waited < 5000; waited += 20) await delay(20);
      socket.destroy();
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text.endsWith('got abcdefghij')).toBe(true);
    });

    it('round trip: toNodeListener(fromNodeHandler(expressApp)) in node:http answers like the Express app itself', async () => {
      const startServer = async (listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> => {
        const server: Server = createServer(listener);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        closers.push(() => {
          server.closeAllConnections();
          return new Promise<void>((resolve) => server.close(() => resolve()));
        });
        return (server.address() as AddressInfo).port;
      };
      const direct = await startServer(buildExpressApp());
      const bridged = await startServer(toNodeListener(fromNodeHandler(buildExpressApp()), { errors: { write: () => undefined } }));
      const requests: Array<[string, RequestInit]> = [
        ['/hello', {}],
        ['/nope', {}],
        ['/redirect', { redirect: 'manual' }],
        ['/cookies', {}],
        ['/file', {}],
        ['/stream', {}],
        ['/boom', {}],
        ['/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"k":"v"}' }],
        ['/hello', { method: 'HEAD' }],
      ];
      for (const [path, init] of requests) {
        const [a, b] = await Promise.all([fetch(`http://127.0.0.1:${direct}${path}`, init), fetch(`http://127.0.0.1:${bridged}${path}`, init)]);
        const shape = async (response: Response) => {
          const headers = [...response.headers].filter(([name]) => !['date', 'keep-alive', 'connection', 'last-modified', 'etag'].includes(name));
          return { status: response.status, headers, setCookie: response.headers.getSetCookie(), body: await response.text() };
        };
        expect(await shape(b), path).toEqual(await shape(a));
      }
    });
  });

  describe('conformance suite through fromNodeHandler(toNodeListener(app)): the round trip changes nothing', () => {
    const client = testClient(fromNodeHandler(toNodeListener(conformanceApp)));
    for (const testCase of conformanceCases) {
      it(testCase.name, async () => {
        const { method, path, headers, body } = testCase.request;
        const response = await client.request({ method, url: path, ...(headers ? { headers } : {}), ...(body ? { body } : {}) });
        testCase.check({ status: response.status, headers: response.headers, body: response.body }, { scriptName: '', transport: 'node-bridge' });
      });
    }
  });
}

describe.each<NodeHandlerEngine>(['objects', 'http-server'])('fromNodeHandler, %s engine', suite);
