/**
 * What SCGI and uwsgi share: one request per connection. The web server connects, sends a head (an SCGI
 * netstring, a uwsgi packet) and exactly CONTENT_LENGTH body bytes, reads the answer until the connection
 * closes. This module is the server (accepting connections); one-request/ holds the rest, one job a file:
 * options.ts (the options, checked once), protocol.ts (what a protocol supplies: its head reader and its
 * response head format), connection.ts (one exchange), head-checks.ts (whether a head may run the app),
 * head-deadlines.ts (the head timeouts of all connections on one timer), closing.ts (how a connection ends),
 * response-head.ts (the bytes of a response head).
 */
import { Server, type Socket } from 'node:net';
import type { EnvironSettings } from '../environ/create-environ.js';
import type { App } from '../types.js';
import { createLimitLog, createPeerLog, type LimitLog, type PeerLog } from './limit-log.js';
import { OneRequestConnection } from './one-request/connection.js';
import { HeadDeadlines } from './one-request/head-deadlines.js';
import { resolveOneRequestOptions, type OneRequestServerOptions, type ResolvedOneRequestOptions } from './one-request/options.js';
import type { OneRequestProtocol } from './one-request/protocol.js';
import { isAllowedPeer } from './web-server-addrs.js';

// How long a finished connection stays open, read and discarded, for the web server to close its side.
export { LINGER_MS } from './limits.js';
export { resolveOneRequestOptions, type OneRequestServerOptions, type ResolvedOneRequestOptions } from './one-request/options.js';
export type { OneRequestHead, OneRequestProtocol } from './one-request/protocol.js';

/**
 * A net.Server that answers one request per connection with a tsgi app, for a protocol such as SCGI or uwsgi
 * (listen on TCP, a unix socket, or an inherited socket: see listenOn). The connection closes after each
 * response, so a keep-alive pool on the web server's side does not apply.
 */
export class OneRequestServer extends Server {
  readonly app: App;
  readonly protocol: OneRequestProtocol;
  readonly options: ResolvedOneRequestOptions;
  /** Requests whose app is running (for a graceful shutdown). */
  activeRequests = 0;
  /** Refusals at a limit (timeouts, maxConnections, maxBodyBytes): a few log lines, never one per connection. */
  readonly limitLog: LimitLog;
  /** What peers make the server log (refused addresses, malformed heads): one line per kind per 10 s. */
  readonly peerLog: PeerLog;
  /** The head timeouts of the connections: one timer for all (null: headerTimeoutMs is 0). */
  readonly headDeadlines: HeadDeadlines | null;
  /** What every request's environ shares, by the request's scheme (see OneRequestConnection). */
  readonly environSettings: { readonly http: EnvironSettings; readonly https: EnvironSettings };

  constructor(app: App, protocol: OneRequestProtocol, options: OneRequestServerOptions = {}) {
    // allowHalfOpen: a client that shuts down its sending side after the request still gets the answer.
    super({ noDelay: true, allowHalfOpen: true });
    this.app = app;
    this.protocol = protocol;
    this.options = resolveOneRequestOptions(options, protocol);
    this.maxConnections = this.options.maxConnections;
    this.limitLog = createLimitLog(this.options.errors, protocol.name);
    this.peerLog = createPeerLog(this.options.errors);
    this.headDeadlines = this.options.headerTimeoutMs > 0 ? new HeadDeadlines(this.options.headerTimeoutMs) : null;
    const settings = (urlScheme: 'http' | 'https'): EnvironSettings => ({
      errors: this.options.errors,
      urlScheme,
      multithread: true,
      multiprocess: this.options.multiprocess,
      runOnce: false,
      forwarded: this.options.forwarded,
    });
    this.environSettings = { http: settings('http'), https: settings('https') };
    this.on('connection', (socket: Socket) => this.#accept(socket));
    // net.Server closes a connection over maxConnections itself, silently: say so (rate-limited).
    this.on('drop', () =>
      this.limitLog.hit('maxConnections', `closed a new connection: ${this.maxConnections} connections are open`, '--max-connections N (option maxConnections)'),
    );
  }

  #accept(socket: Socket): void {
    if (!isAllowedPeer(this.options.webServerAddrs, socket)) {
      this.peerLog.write('refused address', `tsgi: ${this.protocol.name}: refused a connection from ${socket.remoteAddress} (not in webServerAddrs)`);
      socket.destroy();
      return;
    }
    new OneRequestConnection(this, socket);
  }
}
