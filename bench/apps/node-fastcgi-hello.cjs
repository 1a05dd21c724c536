/**
 * The hello world of bench/fastcgi.mjs on node-fastcgi 2.0.0 (the baseline tsgi replaces), as its README
 * writes it, listening on TCP: the "node-fastcgi" row.
 *
 *   node bench/apps/node-fastcgi-hello.cjs PORT   prints "listening on 127.0.0.1:PORT (pid N)"
 */
'use strict';
const fcgi = require('node-fastcgi');

const BODY = Buffer.from('Hello, World!');
const port = Number(process.argv[2] || 9001);

const server = fcgi.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
