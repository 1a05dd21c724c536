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

/**
 * What is known of one connection, kept on the socket itself (a symbol key: one property load per request, where
 * a Map keyed by socket costs a hash lookup): its responses in progress, and since when it looked idle while
 * draining.
 */
interface ConnectionState {
  /**
   * The newest response handed out on the connection that may still need waiting for (null before the first,
   * and once it ended on its socket: see `ended`); it may have closed since. No 'close' listener per response:
   * closed ones are dropped when the next one is added or when the list is read.
   */
  last: ServerResponse | null;
  /** Earlier responses that were still open when a newer one was added (pipelining), oldest first; or null. */
  earlier: ServerResponse[] | null;
  /** While draining: socket.bytesRead when the connection was last seen idle, and when that was (0: not idle). */
  idleBytes: number;
  idleSince: number;
}

const STATE: unique symbol = Symbol('tsgi.httpConnection');
type TrackedSocket = Duplex & { [STATE]?: ConnectionState };

/** Options for HttpConnections. */
export interface HttpConnectionsOptions {
  /**
   * Called for each response still open when its connection closes (before the response's own 'close'), so
   * the listener need not watch every response: createHttpServer aborts the request there.
   */
  onConnectionClose?: (res: ServerResponse) => void;
}

/**
 * The connections of one HTTP server and the responses in progress on each, kept with no listener per request:
 * createHttpServer adds every request through `add()` (one property load) and uses `openResponses()` to put a
 * refusal after the pipelined responses before it; serveHttp's shutdown and a stopping `tsgi serve` worker
 * drain through it; a connection that closes tells `onConnectionClose` of its open responses.
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
  readonly #connections = new Set<TrackedSocket>();
  readonly #onConnectionClose: ((res: ServerResponse) => void) | null;
  #draining = false;

  constructor(server: HttpServer, options: HttpConnectionsOptions = {}) {
    this.#server = server;
    this.#onConnectionClose = options.onConnectionClose ?? null;
    server.on('connection', (socket: Socket) => this.#watch(socket));
  }

  #watch(socket: TrackedSocket): ConnectionState {
    const state: ConnectionState = { last: null, earlier: null, idleBytes: 0, idleSince: 0 };
    socket[STATE] = state;
    this.#connections.add(socket);
    socket.once('close', () => {
      this.#connections.delete(socket);
      const onClose = this.#onConnectionClose;
      if (onClose !== null) for (const res of openOf(state)) onClose(res);
    });
    return state;
  }

  /** Records a response handed to the app; while draining it will say `Connection: close`. */
  add(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as TrackedSocket;
    // (No state: a connection emitted without 'connection' having been seen, a server fed sockets by hand.)
    const state = socket[STATE] ?? (socket.destroyed ? null : this.#watch(socket));
    if (state !== null) {
      const last = state.last;
      if (last !== null && !last.closed) {
        const earlier = state.earlier === null ? [] : state.earlier.filter(isOpen);
        earlier.push(last);
        state.earlier = earlier;
      } else if (state.earlier !== null) {
        state.earlier = null;
      }
      state.last = res;
    }
    if (this.#draining && !res.headersSent) res.shouldKeepAlive = false;
  }

  /**
   * A response whose app ended it (the listener's after-response step): forgotten now rather than at the
   * connection's next request, so that an idle kept-alive connection holds no request or response and nothing
   * of them survives a scavenge (with 32 kept-alive connections that was ~60 KB promoted per young-generation
   * collection, growing the young generation and the worker's RSS). Only once the response is on its socket:
   * its bytes are then queued there, so a refusal written to the socket later still goes out after them, and
   * every response before it has finished. A pipelined response ended before its turn stays tracked until it
   * closes (openResponses must still wait for it).
   */
  ended(res: ServerResponse): void {
    if (res.socket === null || !res.writableEnded) return;
    const state = (res.socket as TrackedSocket)[STATE];
    if (state === undefined || state.last !== res) return;
    state.last = null;
    state.earlier = null;
  }

  /** The responses still open on `socket`, oldest first. */
  openResponses(socket: Duplex): ServerResponse[] {
    const state = (socket as TrackedSocket)[STATE];
    return state === undefined ? [] : openOf(state);
  }

  activeRequests(): number {
    let count = 0;
    for (const socket of this.#connections) {
      const state = socket[STATE];
      if (state !== undefined) count += openOf(state).length;
    }
    return count;
  }

  drain(graceMs: number): Promise<void> {
    this.#draining = true;
    const now = Date.now();
    for (const socket of this.#connections) {
      const state = socket[STATE] as ConnectionState;
      for (const res of openOf(state)) if (!res.headersSent) res.shouldKeepAlive = false;
      state.idleBytes = (socket as Socket).bytesRead ?? 0;
      state.idleSince = now;
    }
    // Stop accepting without http.Server#close(), which would close the idle connections at once.
    if (this.#server.listening) NetServer.prototype.close.call(this.#server);
    const started = now;
    return new Promise((resolve) => {
      const poll = (): void => {
        const at = Date.now();
        for (const socket of this.#connections) {
          const state = socket[STATE] as ConnectionState;
          const bytes = (socket as Socket).bytesRead ?? 0;
          // (A response the app ended may still be leaving: its bytes queued on the socket keep it busy.)
          if (openOf(state).length > 0 || bytes !== state.idleBytes || ((socket as Socket).writableLength ?? 0) > 0) {
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
export function trackHttpConnections(server: HttpServer, options: HttpConnectionsOptions = {}): HttpConnections {
  const tracker = new HttpConnections(server, options);
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

/** The responses still open on a connection, oldest first. */
function openOf(state: ConnectionState): ServerResponse[] {
  const open = state.earlier === null ? [] : state.earlier.filter(isOpen);
  if (state.last !== null && isOpen(state.last)) open.push(state.last);
  return open;
}
