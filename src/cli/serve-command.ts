import { parseArgs } from 'node:util';
import { parseListenAddress } from './listen-address.js';
import { loadApp } from './load-app.js';

import { SHUTDOWN_TIMEOUT_MS } from '../servers/http-serve.js';

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
  const { serveHttp } = await import('../servers/http-serve.js');
  let serving;
  try {
    serving = await serveHttp(app, { host: address.host, port: address.port, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS });
  } catch (error) {
    io.stderr.write(`tsgi serve: cannot listen on ${address.host}:${address.port} (${(error as Error).message})\n`);
    return 1;
  }
  io.stdout.write(`tsgi: serving ${reference} over HTTP at ${serving.url} (pid ${process.pid})\n`);
  return new Promise<number>(() => {});
}
