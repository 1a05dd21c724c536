import { createHash } from 'node:crypto';
import express, { type ErrorRequestHandler } from 'express';
import { fromNodeHandler } from 'tsgi';

/**
 * An Express 5 app run by tsgi through the Node bridge: `tsgi serve examples/express.ts` (HTTP or
 * `--fastcgi`), or as a CGI script with cgi-bin/framework-express.ts. examples/fastify.ts, koa.ts and hono.ts
 * serve the same routes, so test/e2e/frameworks.test.ts checks all four with one suite. Express gets real
 * IncomingMessage/ServerResponse objects, so its body parsers, res.json, res.redirect and res.cookie work as
 * under node:http; routes are below the mount point (`req.url` is PATH_INFO + query).
 */
export const expressApp = express();

/** GET /binary answers this many bytes, byte k being k % 256. */
const BINARY_BYTES = 70_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

expressApp.get('/', (_req, res) => {
  res.type('text/plain').send('Hello from express!\n');
});
expressApp.get('/users/:id', (req, res) => {
  res.json({ id: req.params.id, framework: 'express' });
});
expressApp.post('/json', express.json(), (req, res) => {
  const body = req.body as { name?: string };
  res.json({ hello: body.name, contentType: req.get('content-type'), contentLength: req.get('content-length') });
});
expressApp.post('/form', express.urlencoded({ extended: false }), (req, res) => {
  const form = req.body as Record<string, string>;
  res.json({ name: form.name, lang: form.lang });
});
expressApp.get('/redirect', (_req, res) => {
  res.redirect('/');
});
expressApp.get('/cookies', (req, res) => {
  res.cookie('a', '1');
  res.cookie('b', '2', { httpOnly: true });
  res.type('text/plain').send(`cookie: ${req.get('cookie') ?? ''}\n`);
});
expressApp.get('/stream', async (_req, res) => {
  res.type('text/plain');
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(60);
    res.write(`chunk ${i}\n`);
  }
  res.end();
});
expressApp.get('/boom', () => {
  throw new Error('express: thrown on purpose');
});
// T14: two writes, the second through end(); with ?length, under a Content-Length.
expressApp.get('/write-end', (req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  if (req.query.length !== undefined) res.setHeader('Content-Length', '2');
  res.write('a');
  res.end('b');
});
// T16: setHeader, then writeHead adding more.
expressApp.get('/headers', (_req, res) => {
  res.setHeader('X-Set-Header', 'yes');
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('ok');
});
// T18: starts reading the body only after 400 ms, while the client may still be sending it.
expressApp.post('/late', async (req, res) => {
  await sleep(400);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  res.json({ bytes, sha256: hash.digest('hex') });
});
expressApp.post('/echo', express.raw({ type: '*/*', limit: '64mb' }), (req, res) => {
  res.type('application/octet-stream').send(req.body as Buffer);
});
expressApp.get('/binary', (_req, res) => {
  const bytes = Buffer.alloc(BINARY_BYTES);
  for (let k = 0; k < bytes.length; k++) bytes[k] = k & 0xff;
  res.type('application/octet-stream').send(bytes);
});
const onError: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
  // The details go to the error log (stderr: the web server's log under CGI), not to the client.
  console.error('express:', error);
  res.status(500).type('text/plain').send('500 Internal Server Error\n');
};
expressApp.use(onError);

export default fromNodeHandler(expressApp);
