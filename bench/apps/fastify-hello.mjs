/**
 * The "Fastify 5" row of bench/run.mjs's direct HTTP section (devDependency), logger off: "Hello, World!"
 * at /, the 64 KiB body of payload.mjs at /64k, text/plain with a Content-Length.
 *
 *   node bench/apps/fastify-hello.mjs PORT         prints "listening on 127.0.0.1:PORT (pid N)"
 */
import Fastify from 'fastify';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

const app = Fastify({ logger: false });
app.get('/', (_req, reply) => {
  reply.type('text/plain').send(HELLO_BODY);
});
app.get(BIG_PATH, (_req, reply) => {
  reply.type('text/plain').send(BIG_BODY);
});

const port = Number(process.argv[2] ?? 8005);
await app.listen({ port, host: '127.0.0.1' });
process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
