/**
 * The "Hono 4 on @hono/node-server" row of bench/run.mjs's direct HTTP section (both devDependencies):
 * "Hello, World!" at /, the 64 KiB body of payload.mjs at /64k, text/plain with a Content-Length.
 *
 *   node bench/apps/hono-hello.mjs PORT            prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

const HELLO = new Uint8Array(HELLO_BODY);
const BIG = new Uint8Array(BIG_BODY);
const app = new Hono();
const headers = (body) => ({ 'Content-Type': 'text/plain', 'Content-Length': String(body.byteLength) });
app.get('/', (c) => c.body(HELLO, 200, headers(HELLO)));
app.get(BIG_PATH, (c) => c.body(BIG, 200, headers(BIG)));

const port = Number(process.argv[2] ?? 8004);
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
