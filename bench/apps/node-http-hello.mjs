/**
 * The hello world of bench/fastcgi.mjs on Node's own http server (no tsgi): the "Node http via proxy" row.
 *
 *   node bench/apps/node-http-hello.mjs PORT      prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createServer } from 'node:http';

const BODY = Buffer.from('Hello, World!');
const port = Number(process.argv[2] ?? 8001);

const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
