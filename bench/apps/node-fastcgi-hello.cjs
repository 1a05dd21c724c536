/**
 * The "node-fastcgi" row of bench/run.mjs: node-fastcgi 2.0.0 (the baseline tsgi replaces), its README's
 * server, listening on TCP. "Hello, World!" at /, the 64 KiB body of payload.mjs at /64k.
 *
 *   node bench/apps/node-fastcgi-hello.cjs PORT   prints "listening on 127.0.0.1:PORT (pid N)"
 */
'use strict';
const fcgi = require('node-fastcgi');

const HELLO_BODY = Buffer.from('Hello, World!');
const BIG_BODY = Buffer.allocUnsafe(64 * 1024);
for (let i = 0; i < BIG_BODY.length; i++) BIG_BODY[i] = 97 + (i % 26); // as payload.mjs makes it
const port = Number(process.argv[2] || 9001);

const server = fcgi.createServer((req, res) => {
  const body = req.url === '/64k' ? BIG_BODY : HELLO_BODY;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
