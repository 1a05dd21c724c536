import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '../types.js';
import { watchHttpConnections } from './http-drain.js';
import { createHttpServer, type HttpServerOptions } from './http.js';

/** How long a graceful shutdown waits for in-flight responses before cutting their connections, in ms. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Options for serveHttp. */
export interface ServeHttpOptions extends HttpServerOptions {
  /** The address to listen on. Default: "127.0.0.1" (use "0.0.0.0" or "::" to accept remote clients). */
  host?: string;
  /** The port to listen on; 0 picks a free one. Default: 8000. */
  port?: number;
  /** How long shutdown() waits for in-flight responses, in ms. Default: SHUTDOWN_TIMEOUT_MS. */
  shutdownTimeoutMs?: number;
  /**
   * Install SIGINT/SIGTERM handlers that shut down gracefully and then exit the process (status 0; a second
   * signal exits at once with status 1). Default: true.
   */
  handleSignals?: boolean;
}

/** A listening server, as serveHttp resolves it. */
export interface HttpServing {
  server: Server;
  /** The bound address (the real port when port 0 was asked for). */
  address: AddressInfo;
  /** "http://host:port/" for the bound address. */
  url: string;
  /**
   * Stops accepting connections, lets in-flight responses finish (kept-alive clients are told
   * `Connection: close`; a connection idle for a second is closed), and after `shutdownTimeoutMs` cuts whatever
   * is left. Resolves once every connection is closed.
   * Removes the signal handlers. Safe to call more than once.
   */
  shutdown(): Promise<void>;
}

/**
 * Runs `app` on the embedded HTTP server (createHttpServer): listens on host:port, resolves once bound, and
 * (unless `handleSignals` is false) shuts down gracefully on SIGINT/SIGTERM. Rejects when listening fails
 * (EADDRINUSE, EACCES...).
 */
export async function serveHttp(app: App, options: ServeHttpOptions = {}): Promise<HttpServing> {
  const { host = '127.0.0.1', port = 8000, shutdownTimeoutMs = SHUTDOWN_TIMEOUT_MS, handleSignals = true } = options;
  const server = createHttpServer(app, options);
  const connections = watchHttpConnections(server);
  server.listen(port, host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]: unknown[]) => Promise.reject(error)),
  ]);
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let stopping: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    stopping ??= stop();
    return stopping;
  };
  async function stop(): Promise<void> {
    removeSignalHandlers();
    const closed = server.listening ? once(server, 'close') : Promise.resolve();
    // Kept-alive clients are told `Connection: close` rather than having idle connections shut under them.
    await connections.drain(shutdownTimeoutMs);
    server.closeAllConnections();
    await closed;
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.exit(1);
    }
    (options.errors ?? process.stderr).write(`tsgi: ${signal} received, finishing in-flight requests\n`);
    void shutdown().then(() => process.exit(0));
    // A second signal while draining forces the exit.
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  };
  function removeSignalHandlers(): void {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (handleSignals) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }

  return { server, address, url: `http://${urlHost}:${address.port}/`, shutdown };
}
