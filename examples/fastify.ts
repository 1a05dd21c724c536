import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { fromNodeHandler } from 'tsgi';

/**
 * A Fastify 5 app run by tsgi through the Node bridge: `tsgi serve examples/fastify.ts` (HTTP or
 * `--fastcgi`), or as a CGI script with cgi-bin/framework-fastify.ts. examples/express.ts, koa.ts and
 * hono.ts serve the same routes, so test/e2e/frameworks.test.ts checks all four with one suite. Fastify
 * serves a request through `fastify.routing(req, res)` once `ready()` resolved; the handler waits for it
 * instead of a top-level await, which a CGI bundle (CommonJS) can't have.
 */
export const fastify = Fastify();

/** GET /binary answers this many bytes, byte k being k % 256. */
const BINARY_BYTES = 70_000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Fastify parses JSON itself; forms and raw bytes need a parser (what @fastify/formbody would register).
fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
  done(null, Object.fromEntries(new URLSearchParams(body as string)));
});

fastify.get('/', async (_request, reply) => reply.type('text/plain').send('Hello from fastify!\n'));
fastify.get<{ Params: { id: string } }>('/users/:id', async (request) => ({ id: request.params.id, framework: 'fastify' }));
fastify.post<{ Body: { name?: string } }>('/json', async (request) => ({
  hello: request.body.name,
  contentType: request.headers['content-type'],
  contentLength: request.headers['content-length'],
}));
fastify.post<{ Body: Record<string, string> }>('/form', async (request) => ({ name: request.body.name, lang: request.body.lang }));
fastify.get('/redirect', async (_request, reply) => reply.redirect('/'));
fastify.get('/cookies', async (request, reply) =>
  reply
    .header('set-cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly'])
    .type('text/plain')
    .send(`cookie: ${request.headers.cookie ?? ''}\n`),
);
fastify.get('/stream', async (_request, reply) => {
  const chunks = (async function* () {
    for (let i = 0; i < 5; i++) {
      if (i > 0) await sleep(60);
      yield `chunk ${i}\n`;
    }
  })();
  return reply.type('text/plain').send(Readable.from(chunks));
});
fastify.get('/boom', async () => {
  throw new Error('fastify: thrown on purpose');
});
// T14 and T16 on the raw response: hijack() tells Fastify the handler answers by itself.
fastify.get<{ Querystring: { length?: string } }>('/write-end', (request, reply) => {
  reply.hijack();
  reply.raw.setHeader('Content-Type', 'text/plain');
  if (request.query.length !== undefined) reply.raw.setHeader('Content-Length', '2');
  reply.raw.write('a');
  reply.raw.end('b');
});
fastify.get('/headers', (_request, reply) => {
  reply.hijack();
  reply.raw.setHeader('X-Set-Header', 'yes');
  reply.raw.writeHead(200, { 'Content-Type': 'text/plain' });
  reply.raw.end('ok');
});
fastify.get('/binary', async (_request, reply) => {
  const bytes = Buffer.alloc(BINARY_BYTES);
  for (let k = 0; k < bytes.length; k++) bytes[k] = k & 0xff;
  return reply.type('application/octet-stream').send(bytes);
});
// Raw bytes need a parser of their own; each of the two routes below registers it in its own scope
// (a Fastify plugin), since they want different ones.
void fastify.register(async (scope) => {
  scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_request, body, done) => {
    done(null, body);
  });
  scope.post<{ Body: Buffer }>('/echo', async (request, reply) => reply.type('application/octet-stream').send(request.body));
});
// T18: this scope's parser hands over the unread stream; the handler reads it 400 ms later.
void fastify.register(async (scope) => {
  scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  scope.post('/late', async (request) => {
    await sleep(400);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of request.body as IncomingMessage) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { bytes, sha256: hash.digest('hex') };
  });
});
fastify.setErrorHandler((error, _request, reply) => {
  // The details go to the error log (stderr: the web server's log under CGI), not to the client.
  console.error('fastify:', error);
  void reply.code(500).type('text/plain').send('500 Internal Server Error\n');
});

const ready = fastify.ready();
export default fromNodeHandler(async (req, res) => {
  await ready;
  fastify.routing(req, res);
});
