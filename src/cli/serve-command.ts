import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { parseListenAddress } from './listen-address.js';
import { loadApp } from './load-app.js';

/** How long a SIGTERM/SIGINT waits for in-flight requests before the process exits anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

const USAGE = `usage: tsgi serve MODULE[:EXPORT] [--http HOST:PORT]

Loads the app exported by MODULE (TypeScript or JavaScript; the default export, else "app", else EXPORT)
and serves it over HTTP.

  --http HOST:PORT   where to listen (default 127.0.0.1:8000; ":8080" or "8080" keep the default host)
  -h, --help         this help

SIGINT/SIGTERM stop accepting connections and exit once in-flight requests finish (at most ${SHUTDOWN_TIMEOUT_MS / 1000} s).
`;

/** The `tsgi serve` verb. Resolves with the exit status on a usage error or failure to start; else serves. */
export async function runServeCommand(
  args: string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { http: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    io.stderr.write(`tsgi serve: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [reference, ...rest] = parsed.positionals;
  if (!reference || rest.length > 0) {
    io.stderr.write(`tsgi serve: expected one MODULE[:EXPORT]\n${USAGE}`);
    return 2;
  }
  let address;
  let app;
  try {
    address = parseListenAddress(parsed.values.http ?? '127.0.0.1:8000');
    app = await loadApp(reference);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const { createHttpServer } = await import('../servers/http.js');
  const server = createHttpServer(app);
  try {
    await listen(server, address.host, address.port);
  } catch (error) {
    io.stderr.write(`tsgi serve: cannot listen on ${address.host}:${address.port} (${(error as Error).message})\n`);
    return 1;
  }
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : address.port;
  const shownHost = address.host.includes(':') ? `[${address.host}]` : address.host;
  io.stdout.write(`tsgi: serving ${reference} over HTTP at http://${shownHost}:${port}/ (pid ${process.pid})\n`);
  installShutdown(server, io.stderr);
  return new Promise<number>(() => {});
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function installShutdown(server: Server, stderr: NodeJS.WritableStream): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    stderr.write(`tsgi: ${signal} received, finishing in-flight requests\n`);
    const timer = setTimeout(() => process.exit(0), SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
