/**
 * The "Node http via proxy" row of bench/run.mjs: Node's own http server, no tsgi. "Hello, World!" at /,
 * the 64 KiB body of payload.mjs at /64k.
 *
 *   node bench/apps/node-http-hello.mjs PORT      prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createServer } from 'node:http';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

const port = Number(process.argv[2] ?? 8001);

const server = createServer((req, res) => {
  const body = req.url === BIG_PATH ? BIG_BODY : HELLO_BODY;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
