/**
 * The "createHttpServer(app) in-process" row of bench/run.mjs's direct HTTP section: tsgi's HTTP server
 * started from code in one process (no `tsgi serve` master, no worker, no TypeScript loader), serving
 * bench/apps/hello-app.mjs (the JavaScript twin of hello.ts).
 *
 *   node bench/apps/tsgi-http-inprocess.mjs PORT   prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createHttpServer } from 'tsgi';
import app from './hello-app.mjs';

const port = Number(process.argv[2] ?? 8003);
const server = createHttpServer(app);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
// A normal exit (so that --cpu-prof writes its profile), without waiting for kept-alive clients.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
