import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import Koa, { type Context } from 'koa';
import { fromNodeHandler } from 'tsgi';

/**
 * A Koa 3 app run by tsgi through the Node bridge: `tsgi serve examples/koa.ts` (HTTP or `--fastcgi`), or as
 * a CGI script with cgi-bin/framework-koa.ts. examples/express.ts, fastify.ts and hono.ts serve the same
 * routes, so test/e2e/frameworks.test.ts checks all four with one suite. Koa ships no router and no body
 * parser: a route table and a body reader of a few lines stand in for koa-router and koa-bodyparser.
 */
export const koa = new Koa();

/** GET /binary answers this many bytes, byte k being k % 256. */
const BINARY_BYTES = 70_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the whole request body. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

type Route = [method: string, path: RegExp, handle: (ctx: Context, params: string[]) => unknown];

const routes: Route[] = [
  ['GET', /^\/$/, (ctx) => void (ctx.body = 'Hello from koa!\n')],
  ['GET', /^\/users\/([^/]+)$/, (ctx, [id]) => void (ctx.body = { id: decodeURIComponent(id ?? ''), framework: 'koa' })],
  [
    'POST',
    /^\/json$/,
    async (ctx) => {
      const body = JSON.parse((await readBody(ctx.req)).toString('utf8')) as { name?: string };
      ctx.body = { hello: body.name, contentType: ctx.get('content-type'), contentLength: ctx.get('content-length') };
    },
  ],
  [
    'POST',
    /^\/form$/,
    async (ctx) => {
      const form = new URLSearchParams((await readBody(ctx.req)).toString('utf8'));
      ctx.body = { name: form.get('name'), lang: form.get('lang') };
    },
  ],
  ['GET', /^\/redirect$/, (ctx) => ctx.redirect('/')],
  [
    'GET',
    /^\/cookies$/,
    (ctx) => {
      ctx.set('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
      ctx.body = `cookie: ${ctx.get('cookie')}\n`;
    },
  ],
  [
    'GET',
    /^\/stream$/,
    (ctx) => {
      ctx.type = 'text/plain';
      ctx.body = Readable.from(
        (async function* () {
          for (let i = 0; i < 5; i++) {
            if (i > 0) await sleep(60);
            yield `chunk ${i}\n`;
          }
        })(),
      );
    },
  ],
  [
    'GET',
    /^\/boom$/,
    () => {
      throw new Error('koa: thrown on purpose');
    },
  ],
  [
    'GET',
    /^\/write-end$/,
    (ctx) => {
      // T14 on the raw response: Koa steps aside with ctx.respond = false (its default status is 404).
      ctx.status = 200;
      ctx.respond = false;
      ctx.res.setHeader('Content-Type', 'text/plain');
      if (ctx.query.length !== undefined) ctx.res.setHeader('Content-Length', '2');
      ctx.res.write('a');
      ctx.res.end('b');
    },
  ],
  [
    'GET',
    /^\/headers$/,
    (ctx) => {
      ctx.respond = false;
      ctx.res.setHeader('X-Set-Header', 'yes');
      ctx.res.writeHead(200, { 'Content-Type': 'text/plain' });
      ctx.res.end('ok');
    },
  ],
  [
    'POST',
    /^\/late$/,
    async (ctx) => {
      // T18: starts reading the body only after 400 ms, while the client may still be sending it.
      await sleep(400);
      const body = await readBody(ctx.req);
      ctx.body = { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
    },
  ],
  [
    'POST',
    /^\/echo$/,
    async (ctx) => {
      const body = await readBody(ctx.req);
      ctx.type = 'application/octet-stream';
      ctx.body = body;
    },
  ],
  [
    'GET',
    /^\/binary$/,
    (ctx) => {
      const bytes = Buffer.alloc(BINARY_BYTES);
      for (let k = 0; k < bytes.length; k++) bytes[k] = k & 0xff;
      ctx.type = 'application/octet-stream';
      ctx.body = bytes;
    },
  ],
];

koa.use(async (ctx, next) => {
  for (const [method, path, handle] of routes) {
    const match = path.exec(ctx.path);
    if (match && ctx.method === method) {
      await handle(ctx, match.slice(1));
      return;
    }
  }
  await next();
});
// Koa answers a thrown error with a bare 500 and logs it on stderr (the web server's log under CGI) itself.

export default fromNodeHandler(koa.callback());
