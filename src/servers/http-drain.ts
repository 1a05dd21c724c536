import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

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
  /** Requests whose responses have not closed yet, over all connections. */
  activeRequests(): number;
}

/** What is known of one connection: its responses in progress, and since when it looked idle while draining. */
interface ConnectionState {
  /**
   * Responses handed out on the connection, oldest first; closed ones are dropped when the next one is added or
   * when the list is read (no 'close' listener per response: the list holds at most one pipeline's responses).
   */
  responses: ServerResponse[];
  /** While draining: socket.bytesRead when the connection was last seen idle, and when that was (0: not idle). */
  idleBytes: number;
  idleSince: number;
}

/**
 * The connections of one HTTP server and the responses in progress on each, kept with no listener per request:
 * createHttpServer adds every request through `add()` (one map lookup) and uses `openResponses()` to put a
 * refusal after the pipelined responses before it; serveHttp's shutdown and a stopping `tsgi serve` worker
 * drain through it.
 *
 * Draining. Closing an idle kept-alive connection races the client: a request it sends at that moment is lost
 * (the client sees the connection close without an answer; a load generator counts a read error). Under load a
 * kept-alive connection is idle only for the instant between a response and the next request, so closing
 * "idle" connections at once loses requests at every worker recycle. Instead, while draining, the next
 * response on each connection (including one in progress whose head has not gone out) says `Connection: close`
 * (the client reconnects, to another worker), and only a connection that stays idle — no response open and no
 * byte received — for IDLE_CLOSE_MS is closed.
 */
export class HttpConnections implements HttpDrain {
  readonly #server: HttpServer;
  readonly #connections = new Map<Duplex, ConnectionState>();
  #draining = false;

  constructor(server: HttpServer) {
    this.#server = server;
    server.on('connection', (socket: Socket) => {
      this.#connections.set(socket, { responses: [], idleBytes: 0, idleSince: 0 });
      socket.once('close', () => this.#connections.delete(socket));
    });
  }

  /** Records a response handed to the app; while draining it will say `Connection: close`. */
  add(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const state = this.#connections.get(socket);
    if (state === undefined) {
      // A connection emitted without 'connection' having been seen (a server fed sockets by hand).
      if (!socket.destroyed) {
        this.#connections.set(socket, { responses: [res], idleBytes: 0, idleSince: 0 });
        socket.once('close', () => this.#connections.delete(socket));
      }
    } else {
      state.responses = withOpen(state.responses, res);
    }
    if (this.#draining && !res.headersSent) res.shouldKeepAlive = false;
  }

  /** The responses still open on `socket`, oldest first. */
  openResponses(socket: Duplex): ServerResponse[] {
    const state = this.#connections.get(socket);
    if (state === undefined) return [];
    state.responses = state.responses.filter(isOpen);
    return state.responses;
  }

  activeRequests(): number {
    let count = 0;
    for (const state of this.#connections.values()) {
      for (const res of state.responses) if (isOpen(res)) count++;
    }
    return count;
  }

  drain(graceMs: number): Promise<void> {
    this.#draining = true;
    const now = Date.now();
    for (const [socket, state] of this.#connections) {
      for (const res of state.responses) if (isOpen(res) && !res.headersSent) res.shouldKeepAlive = false;
      state.idleBytes = (socket as Socket).bytesRead ?? 0;
      state.idleSince = now;
    }
    // Stop accepting without http.Server#close(), which would close the idle connections at once.
    if (this.#server.listening) NetServer.prototype.close.call(this.#server);
    const started = now;
    return new Promise((resolve) => {
      const poll = (): void => {
        const at = Date.now();
        for (const [socket, state] of this.#connections) {
          const bytes = (socket as Socket).bytesRead ?? 0;
          if (state.responses.some(isOpen) || bytes !== state.idleBytes) {
            // Busy, or a request is arriving: idle again only from the next quiet moment on.
            state.idleBytes = bytes;
            state.idleSince = 0;
          } else if (state.idleSince === 0) {
            state.idleSince = at;
          } else if (at - state.idleSince >= IDLE_CLOSE_MS) {
            socket.destroy();
          }
        }
        if (this.#connections.size === 0 || at - started >= graceMs) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(poll, POLL_MS);
      poll();
    });
  }
}

/** The tracker of each server createHttpServer made (watchHttpConnections finds it here). */
const trackers = new WeakMap<HttpServer, HttpConnections>();

/** Makes the tracker of a server; createHttpServer calls it before the server accepts its first connection. */
export function trackHttpConnections(server: HttpServer): HttpConnections {
  const tracker = new HttpConnections(server);
  trackers.set(server, tracker);
  return tracker;
}

/**
 * The drain of `server`: the tracker createHttpServer made, else (any other node:http server) a tracker fed by
 * a 'request' listener put first in line. Call before the server accepts its first connection.
 */
export function watchHttpConnections(server: HttpServer): HttpDrain {
  const known = trackers.get(server);
  if (known !== undefined) return known;
  const tracker = trackHttpConnections(server);
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => tracker.add(req, res));
  return tracker;
}

function isOpen(res: ServerResponse): boolean {
  return !res.closed;
}

/**
 * `responses` without those that closed, plus `added`. The usual case, one response per connection at a time
 * and the previous one closed, makes a fresh one-element array (cheaper than editing the old one in place).
 */
function withOpen(responses: ServerResponse[], added: ServerResponse): ServerResponse[] {
  if (responses.length === 0 || (responses.length === 1 && (responses[0] as ServerResponse).closed)) return [added];
  const open = responses.filter(isOpen);
  open.push(added);
  return open;
}
