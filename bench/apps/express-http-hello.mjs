/**
 * The "Express on node:http via proxy_pass" row of bench/run.mjs: the Express hello world of
 * express-app.mjs on Express's own `app.listen` (node:http), no tsgi.
 *
 *   node bench/apps/express-http-hello.mjs PORT      prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createExpressHello } from './express-app.mjs';

const port = Number(process.argv[2] ?? 8002);
const server = createExpressHello().listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
