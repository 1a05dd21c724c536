import type { Server as HttpServer, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';

/** A kept-alive connection idle this long while draining is closed (a busy client sends sooner). */
export const IDLE_CLOSE_MS = 1_000;
const POLL_MS = 25;

/** Drains an HTTP server without racing its kept-alive clients. */
export interface HttpDrain {
  /**
   * Stops accepting; then every request that arrives on an open connection is answered with
   * `Connection: close`, and a connection idle for IDLE_CLOSE_MS is closed. Resolves when no connection is
   * left, or after `graceMs` (what is left is then the caller's to cut).
   */
  drain(graceMs: number): Promise<void>;
}

interface ConnectionState {
  /** Responses in progress on the connection. */
  busy: Set<ServerResponse>;
  lastActive: number;
}

/**
 * Watches the connections of `server` so that a stopping server (serveHttp's shutdown, a `tsgi serve` worker)
 * can drain it without losing a request.
 *
 * Closing an idle kept-alive connection races the client: a request it sends at that moment is lost (the
 * client sees the connection close without an answer; a load generator counts a read error). Under load a
 * kept-alive connection is idle only for the instant between a response and the next request, so closing
 * "idle" connections at once loses requests at every worker recycle. Instead, while draining, the next
 * response on each connection (including one in progress whose head has not gone out) says `Connection: close`
 * (the client reconnects, to another worker), and only connections that stay idle for IDLE_CLOSE_MS are closed.
 *
 * Call before the server accepts its first connection.
 */
export function watchHttpConnections(server: HttpServer): HttpDrain {
  const connections = new Map<Socket, ConnectionState>();
  let draining = false;
  server.on('connection', (socket: Socket) => {
    connections.set(socket, { busy: new Set(), lastActive: Date.now() });
    socket.once('close', () => connections.delete(socket));
  });
  // First in line, so the flag is set before the app's response head can be written.
  server.prependListener('request', (request, response) => {
    const state = connections.get(request.socket);
    state?.busy.add(response);
    if (draining && !response.headersSent) response.shouldKeepAlive = false;
    response.once('close', () => {
      if (!state) return;
      state.busy.delete(response);
      state.lastActive = Date.now();
    });
  });
  return {
    drain(graceMs: number): Promise<void> {
      draining = true;
      for (const state of connections.values()) {
        for (const response of state.busy) if (!response.headersSent) response.shouldKeepAlive = false;
      }
      // Stop accepting without http.Server#close(), which would close the idle connections at once.
      if (server.listening) NetServer.prototype.close.call(server);
      const started = Date.now();
      return new Promise((resolve) => {
        const poll = (): void => {
          const now = Date.now();
          for (const [socket, state] of connections) {
            if (state.busy.size === 0 && now - state.lastActive >= IDLE_CLOSE_MS) socket.destroy();
          }
          if (connections.size === 0 || now - started >= graceMs) {
            clearInterval(timer);
            resolve();
          }
        };
        const timer = setInterval(poll, POLL_MS);
        poll();
      });
    },
  };
}
