import { Server, type Socket } from 'node:net';
import type { App } from '../types.js';
import { FastCgiConnection, type ConnectionServer } from './fastcgi/connection.js';
import { normalizeAddress, resolveFastCgiOptions, type FastCgiServerOptions, type ResolvedFastCgiOptions } from './fastcgi/options.js';

export type { FastCgiServerOptions } from './fastcgi/options.js';
export {
  DEFAULT_INPUT_HIGH_WATER_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_PARAMS_BYTES,
  DEFAULT_MAX_REQUESTS,
} from './fastcgi/options.js';

/**
 * A FastCGI 1.0 server for one tsgi app: a net.Server (listen on TCP, a unix socket, or an inherited socket
 * with `listen({ fd: 0 })`; see listenOn for all three) whose connections speak the FastCGI protocol.
 */
export class FastCgiServer extends Server implements ConnectionServer {
  readonly options: ResolvedFastCgiOptions;
  readonly app: App;
  activeRequests = 0;
  #draining = false;
  readonly #connections = new Set<FastCgiConnection>();

  constructor(app: App, options: FastCgiServerOptions = {}) {
    // allowHalfOpen: a web server that shuts down its sending side after a request still gets the answer.
    super({ noDelay: true, allowHalfOpen: true });
    this.app = app;
    this.options = resolveFastCgiOptions(options);
    this.maxConnections = this.options.maxConnections;
    this.on('connection', (socket: Socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    const allowed = this.options.webServerAddrs;
    // FCGI_WEB_SERVER_ADDRS applies to TCP peers; a unix socket's peer has no address (conformance C16).
    if (allowed !== null && socket.remoteAddress !== undefined && !allowed.has(normalizeAddress(socket.remoteAddress))) {
      this.options.errors.write(`tsgi: fastcgi: refused a connection from ${socket.remoteAddress} (not in FCGI_WEB_SERVER_ADDRS)\n`);
      socket.destroy();
      return;
    }
    this.#connections.add(new FastCgiConnection(this, socket));
  }

  get draining(): boolean {
    return this.#draining;
  }

  forget(connection: FastCgiConnection): void {
    this.#connections.delete(connection);
  }

  /**
   * Stops accepting connections, closes the idle kept-alive ones at once and the others as soon as their
   * requests finish (web servers keep FastCGI connections open indefinitely, so a plain net.Server close would
   * never complete). `callback` runs once every connection is closed.
   */
  override close(callback?: (error?: Error) => void): this {
    this.#draining = true;
    super.close(callback);
    for (const connection of this.#connections) connection.drain();
    return this;
  }
}

/**
 * Creates a FastCGI server for `app` (FastCGI Specification 1.0): Responder, Authorizer and Filter roles,
 * kept-alive and multiplexed connections, ABORT_REQUEST, GET_VALUES, UNKNOWN_TYPE, OVERLOADED, limits, and
 * backpressure both ways. Call `listen()` as on any net.Server, or use listenOn().
 */
export function createFastCgiServer(app: App, options: FastCgiServerOptions = {}): FastCgiServer {
  return new FastCgiServer(app, options);
}
