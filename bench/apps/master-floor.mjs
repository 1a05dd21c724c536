/**
 * The floor for a `tsgi serve` master's RSS (issue 11, goal 4): the least a prefork master does, in one ES module
 * file. It binds a listening socket (a net.Server with pauseOnConnect, as tsgi's public fallback), forks one
 * worker process with an IPC channel and sends it the server's handle, then idles. Its RSS against an idle
 * `node -e 'setInterval(() => {}, 1e3)'` is what Node itself costs a master; `tsgi serve`'s master against it
 * is what tsgi adds.
 *
 * Left out, all of which a real master has: parsing a command line, a plan, log lines, signal handlers for
 * reload and resize, timers for health checks, respawning, recycling, a status page. The forked child is this
 * file again, idle (it never accepts): it is there so that the master has a child process, its IPC channel and
 * the handle-passing code loaded, not to serve.
 *
 *   node bench/apps/master-floor.mjs PORT      prints "listening on 127.0.0.1:PORT (pid N)" (N: the master)
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'child') {
  // The idle child: keeps its IPC channel open (a 'message' listener) until the master goes.
  process.on('message', () => {});
  process.on('disconnect', () => process.exit(0));
} else {
  const port = Number(process.argv[2] ?? 8001);
  const server = createServer({ pauseOnConnect: true });
  server.listen(port, '127.0.0.1', () => {
    const child = fork(fileURLToPath(import.meta.url), ['child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.send({ type: 'listen' }, server);
    process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
    for (const signal of ['SIGINT', 'SIGTERM']) {
      // Exits at once: a connection it holds paused would keep server.close() waiting.
      process.on(signal, () => {
        child.kill();
        process.exit(0);
      });
    }
  });
}
