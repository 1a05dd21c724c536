import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { stream } from 'hono/streaming';
import { fromFetch, type Environ } from 'tsgi';

/**
 * A Hono 4 app run by tsgi through the Fetch bridge: `tsgi serve examples/hono.ts` (HTTP or `--fastcgi`), or
 * as a CGI script with cgi-bin/framework-hono.ts. examples/express.ts, fastify.ts and koa.ts serve the same
 * routes, so test/e2e/frameworks.test.ts checks all four with one suite. Paths are below the mount point
 * (fromFetch hands the app PATH_INFO), so the app routes alike at /cgi-bin/framework-hono.cgi or behind
 * `--mount /app`. The environ is Hono's `c.env`.
 */
export const hono = new Hono<{ Bindings: Environ }>();

/** GET /binary answers this many bytes, byte k being k % 256. */
const BINARY_BYTES = 70_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

hono.get('/', (c) => c.text('Hello from hono!\n'));
hono.get('/users/:id', (c) => c.json({ id: c.req.param('id'), framework: 'hono' }));
hono.post('/json', async (c) => {
  const body = await c.req.json<{ name?: string }>();
  return c.json({ hello: body.name, contentType: c.req.header('content-type'), contentLength: c.req.header('content-length') });
});
hono.post('/form', async (c) => {
  const form = await c.req.parseBody();
  return c.json({ name: form.name, lang: form.lang });
});
hono.get('/redirect', (c) => c.redirect('/'));
hono.get('/cookies', (c) => {
  setCookie(c, 'a', '1', { path: '/' });
  setCookie(c, 'b', '2', { path: '/', httpOnly: true });
  return c.text(`cookie: ${c.req.header('cookie') ?? ''}\n`);
});
hono.get('/stream', (c) => {
  c.header('Content-Type', 'text/plain; charset=utf-8');
  return stream(c, async (out) => {
    for (let i = 0; i < 5; i++) {
      if (i > 0) await out.sleep(60);
      await out.write(`chunk ${i}\n`);
    }
  });
});
hono.get('/boom', () => {
  throw new Error('hono: thrown on purpose');
});
// No res.write()/res.end() in Fetch: the same two writes as a stream, for the node-based examples' T14 route.
hono.get('/write-end', (c) => {
  c.header('Content-Type', 'text/plain');
  if (c.req.query('length') !== undefined) c.header('Content-Length', '2');
  return stream(c, async (out) => {
    await out.write('a');
    await out.write('b');
  });
});
hono.get('/headers', (c) => {
  c.header('X-Set-Header', 'yes');
  return c.text('ok');
});
hono.post('/late', async (c) => {
  // Starts reading the body only after 400 ms, while the client may still be sending it (T18).
  await sleep(400);
  const body = new Uint8Array(await c.req.arrayBuffer());
  return c.json({ bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
});
hono.post('/echo', async (c) => c.body(await c.req.arrayBuffer(), 200, { 'Content-Type': 'application/octet-stream' }));
hono.get('/binary', (c) => {
  const bytes = new Uint8Array(BINARY_BYTES);
  for (let k = 0; k < bytes.length; k++) bytes[k] = k & 0xff;
  return c.body(bytes, 200, { 'Content-Type': 'application/octet-stream' });
});
hono.onError((error, c) => {
  // The details go to the web server's error log (tsgi.errors), not to the client.
  c.env['tsgi.errors'].write(`hono: ${error.stack ?? String(error)}\n`);
  return c.text('500 Internal Server Error\n', 500);
});

export default fromFetch(hono.fetch);
