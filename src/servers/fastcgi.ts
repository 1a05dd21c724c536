import { Server, type Socket } from 'node:net';
import { describeError } from '../errors.js';
import { NameValueCache, type ByteBudget } from '../protocol/fastcgi/name-value.js';
import type { App } from '../types.js';
import { createLimitLog, createPeerLog, type LimitLog, type PeerLog } from './limit-log.js';
import { FastCgiConnection } from './fastcgi/connection.js';
import type { ConnectionServer } from './fastcgi/connection-server.js';
import { getValuesOf } from './fastcgi/management.js';
import { resolveFastCgiOptions, type FastCgiServerOptions, type ResolvedFastCgiOptions } from './fastcgi/options.js';
import { isAllowedPeer } from './web-server-addrs.js';

export type { FastCgiServerOptions } from './fastcgi/options.js';
export {
  DEFAULT_INPUT_HIGH_WATER_BYTES,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_PARAMS_BYTES,
  DEFAULT_MAX_REQUESTS,
  DEFAULT_MAX_REQUESTS_PER_CONNECTION,
} from './fastcgi/options.js';

/** Longest time between two timeout sweeps (shorter when a timeout is shorter than 4 of these). */
const MAX_SWEEP_MS = 1_000;
const MIN_SWEEP_MS = 20;
/** A connection holding fewer bytes of unfinished PARAMS than this is never cut to make room (see shed). */
const SHED_MIN_BYTES = 64 * 1024;

/**
 * A FastCGI 1.0 server for one tsgi app: a net.Server (listen on TCP, a unix socket, or an inherited socket
 * with `listen({ fd: 0 })`; see listenOn for all three) whose connections speak the FastCGI protocol.
 */
export class FastCgiServer extends Server implements ConnectionServer {
  readonly options: ResolvedFastCgiOptions;
  readonly app: App;
  activeRequests = 0;
  /** Bytes buffered for peers in the whole server: unfinished PARAMS, input the apps have not read yet. */
  readonly budget: ByteBudget = { used: 0 };
  /** Date.now() at the last timeout sweep or accept: the connections' cheap clock. */
  now = Date.now();
  readonly limitLog: LimitLog;
  readonly peerLog: PeerLog;
  /** The strings of the last PARAMS decoded, shared by the connections (see ConnectionServer.nameCache). */
  readonly nameCache = new NameValueCache();
  readonly getValues: Readonly<Record<string, string>>;
  #draining = false;
  readonly #connections = new Set<FastCgiConnection>();
  /** The timeout sweep: runs while there are connections. */
  #sweeper: NodeJS.Timeout | null = null;
  readonly #sweepMs: number;
  #shedNothingAt = -1;
  readonly #closeCallbacks: Array<(error?: Error) => void> = [];

  constructor(app: App, options: FastCgiServerOptions = {}) {
    // allowHalfOpen: a web server that shuts down its sending side after a request still gets the answer.
    super({ noDelay: true, allowHalfOpen: true });
    this.app = app;
    this.options = resolveFastCgiOptions(options);
    this.getValues = getValuesOf(this.options);
    this.limitLog = createLimitLog(this.options.errors, 'fastcgi');
    this.peerLog = createPeerLog(this.options.errors);
    const { headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = this.options;
    const shortest = Math.min(...[headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs].filter((ms) => ms > 0), 4 * MAX_SWEEP_MS);
    this.#sweepMs = Math.max(MIN_SWEEP_MS, Math.floor(shortest / 4));
    this.maxConnections = this.options.maxConnections;
    this.on('connection', (socket: Socket) => this.#accept(socket));
    // net.Server closes connections past maxConnections without a word: say so (Node >= 18.6).
    this.on('drop', (data?: { remoteAddress?: string }) => {
      this.limitLog.hit(
        'maxConnections',
        `refused a connection${data?.remoteAddress ? ` from ${data.remoteAddress}` : ''}: ${this.maxConnections} connections are open`,
        '--max-connections N',
      );
    });
  }

  #accept(socket: Socket): void {
    this.now = Date.now();
    // FCGI_WEB_SERVER_ADDRS applies to TCP peers; a unix socket's peer has no address (conformance C16).
    if (!isAllowedPeer(this.options.webServerAddrs, socket)) {
      this.peerLog.write('refused address', `tsgi: fastcgi: refused a connection from ${socket.remoteAddress} (not in FCGI_WEB_SERVER_ADDRS)`);
      socket.destroy();
      return;
    }
    const connection = new FastCgiConnection(this, socket);
    this.#connections.add(connection);
    // A connection that arrives while draining (handed over by another process, or accepted as the close began).
    if (this.#draining) connection.drain();
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.#sweep(), this.#sweepMs);
      this.#sweeper.unref();
    }
  }

  shed(): boolean {
    // A scan that found nothing is not repeated before the clock moves (the next sweep): over the budget with
    // only unread input, every read and BEGIN_REQUEST would scan every connection.
    if (this.#shedNothingAt === this.now) return false;
    let worst: FastCgiConnection | null = null;
    let most = SHED_MIN_BYTES - 1;
    for (const connection of this.#connections) {
      const held = connection.unfinishedParamsBytes();
      if (held > most) {
        most = held;
        worst = connection;
      }
    }
    if (worst === null) {
      this.#shedNothingAt = this.now;
      return false;
    }
    this.limitLog.hit(
      'maxBufferedBytes',
      `the server buffers ${this.budget.used} bytes of PARAMS and unread input: closed the connection piling up the most unfinished PARAMS (${most} bytes)`,
      'the maxBufferedBytes option',
    );
    worst.cut(`over maxBufferedBytes with ${most} bytes of unfinished PARAMS`);
    return true;
  }

  #sweep(): void {
    const now = (this.now = Date.now());
    for (const connection of this.#connections) {
      try {
        connection.sweep(now);
      } catch (error) {
        connection.fail(`timeout sweep failed: ${describeError(error)}`);
      }
    }
  }

  get draining(): boolean {
    return this.#draining;
  }

  forget(connection: FastCgiConnection): void {
    this.#connections.delete(connection);
    if (this.#connections.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
    this.#closedIfDrained();
  }

  /**
   * Stops accepting connections, closes the idle kept-alive ones at once and the others as soon as their
   * requests finish (web servers keep FastCGI connections open indefinitely, so a plain net.Server close would
   * never complete); each closes gracefully (connection.ts #close: FIN, then read until the peer closes or
   * LINGER_MS). `callback` runs once every connection is gone: only then may the process exit.
   */
  override close(callback?: (error?: Error) => void): this {
    this.#draining = true;
    if (callback) this.#closeCallbacks.push(callback);
    super.close();
    for (const connection of [...this.#connections]) connection.drain();
    this.#closedIfDrained();
    return this;
  }

  /**
   * Where connections go when the server drains, instead of closing: set by a `tsgi serve` worker, which sends
   * them to its master (see connection.ts #handOver and cli/cluster/handover.ts), and calls `sent` once the
   * socket is on its way. Null: they close.
   */
  handover: ((socket: Socket, sent: () => void) => void) | null = null;

  /**
   * Runs the close callbacks once draining is over. net.Server's own 'close' event is not enough: it waits for
   * the connections it counts, and a connection handed to another process is neither closed nor counted then.
   */
  #closedIfDrained(): void {
    if (!this.#draining || this.#connections.size > 0 || this.listening) return;
    for (const callback of this.#closeCallbacks.splice(0)) callback();
  }

  /** Cuts every connection at once (what is left when a graceful close ran out of time). */
  destroyConnections(): void {
    for (const connection of this.#connections) connection.socket.destroy();
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
