import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { abortResponse, toNodeListener, type NodeListenerOptions } from '../bridges/node-listener.js';
import { failRequestBody } from '../bridges/node-listener/request-body.js';
import { InputError, TsgiError } from '../errors.js';
import type { App } from '../types.js';
import { DEFAULT_MAX_CONNECTIONS } from './fastcgi/options.js';
import { createLimitLog, createPeerLog } from './limit-log.js';
import { DEFAULT_HEADER_TIMEOUT_MS, type PeerTimeoutOptions } from './limits.js';
import { trackHttpConnections } from './http-drain.js';

/** Default idleTimeoutMs of the HTTP server: Node's keepAliveTimeout (5 s), shorter than the shared default. */
export const DEFAULT_HTTP_IDLE_TIMEOUT_MS = 5_000;
/** Default maxHeaders of the HTTP server: the 1,000 header lines Node's parser keeps by default. */
export const DEFAULT_HTTP_MAX_HEADERS = 1000;

/** Options for createHttpServer. Host and port go to `server.listen()`. */
export interface HttpServerOptions extends Omit<NodeListenerOptions, 'deferContinue' | 'limitLog' | 'abortsOnConnectionClose'>, PeerTimeoutOptions {
  /**
   * Longest time to receive a request head, in ms, from the connection's start or the request's first byte
   * (Node's `headersTimeout`): a client that sends its head slower (slowloris) or nothing at all gets a 408 and
   * the connection closes (logged, rate-limited). 0 turns it off. Default: DEFAULT_HEADER_TIMEOUT_MS (10 s).
   */
  headerTimeoutMs?: number;
  /**
   * While the app waits for request body bytes, none arriving for this long (ms) fails its read with a 408
   * (logged, rate-limited); the connection closes after the response. 0 turns it off.
   * Default: DEFAULT_BODY_TIMEOUT_MS (30 s).
   */
  bodyTimeoutMs?: number;
  /**
   * How long a kept-alive connection with no request in progress stays open, in ms (Node's
   * `keepAliveTimeout`). 0 turns it off (kept open until the client closes). Default:
   * DEFAULT_HTTP_IDLE_TIMEOUT_MS (5 s, Node's; behind a proxy that keeps connections open longer, make it
   * longer than the proxy's so the proxy closes first).
   */
  idleTimeoutMs?: number;
  /**
   * Most connections open at once; a connection past it is closed as soon as it is accepted (net.Server's
   * `maxConnections`; logged, rate-limited). Default: DEFAULT_MAX_CONNECTIONS (1024), as the other servers.
   */
  maxConnections?: number;
  /**
   * Most request header lines; a request with more gets 431 before the app runs (logged, rate-limited).
   * Node's parser is told to keep one more line than this, so nothing the checks miss reaches the app.
   * Default: DEFAULT_HTTP_MAX_HEADERS (1,000).
   */
  maxHeaders?: number;
  /**
   * Longest time to receive a whole request, head and body, in ms (Node's `requestTimeout`; 0 = none); past
   * it the app's read fails with a 408, or the client gets a 408. Default: Node's (300 s).
   */
  requestTimeoutMs?: number;
  /** @deprecated Use headerTimeoutMs (this is used when headerTimeoutMs is not given). */
  headersTimeoutMs?: number;
  /** @deprecated Use idleTimeoutMs (this is used when idleTimeoutMs is not given). */
  keepAliveTimeoutMs?: number;
  /** Largest request head, in bytes; beyond it the client gets a 431. Default: Node's (16 KiB). */
  maxHeaderSize?: number;
}

/** Node checks request and head timeouts only this often by default; shorter timeouts get checked more often. */
const DEFAULT_TIMEOUT_CHECK_INTERVAL_MS = 30_000;
const MIN_TIMEOUT_CHECK_INTERVAL_MS = 10;
/** Node's own default requestTimeout. */
const NODE_REQUEST_TIMEOUT_MS = 300_000;
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const HEADERS_TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/**
 * Creates the embedded HTTP/1.1 server (the default transport): a `node:http` Server running
 * `toNodeListener(app)`; call `listen()` and `close()` on it as usual. What it adds to Node's server:
 * - `Expect: 100-continue` is answered with `100 Continue` only when the app starts reading the body, never
 *   when it answers without reading (conformance G8);
 * - a request Node's parser refuses (Content-Length with Transfer-Encoding, a bad or repeated Content-Length,
 *   obs-fold, whitespace before ":", a bare LF, a chunk size over 64 bits...) gets `400 Bad Request` with
 *   `Connection: close` (408 for a timeout, 431 for a head over maxHeaderSize), is logged to `errors`, and
 *   never reaches the app (G5, G6); a body the parser refuses while the app reads it fails the app's read
 *   with a 400 (the app's error page goes out, then the connection closes);
 * - the listener refuses what the parser lets through: two Host headers, a Host with userinfo, an unknown
 *   Transfer-Encoding, more than maxHeaders header lines (431), an HTTP version other than 1.x (505) (see
 *   buildVariables);
 * - limits on what a client controls, each logged once per interval (createLimitLog): headerTimeoutMs,
 *   bodyTimeoutMs, idleTimeoutMs, requestTimeoutMs, maxConnections, maxHeaders.
 * Node itself supplies Date (G9), keep-alive, pipelining, chunking for HTTP/1.1 and close-delimited bodies for
 * HTTP/1.0 (G4), and no body on HEAD/204/304 (G1, G2).
 */
export function createHttpServer(app: App, options: HttpServerOptions = {}): Server {
  const errors = options.errors ?? { write: (text: string) => void process.stderr.write(text) };
  const limitLog = createLimitLog(errors, 'http');
  const peerLog = createPeerLog(errors);
  const headerTimeoutMs = checkLimit('headerTimeoutMs', options.headerTimeoutMs ?? options.headersTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS, 0);
  const requestTimeoutMs = checkLimit('requestTimeoutMs', options.requestTimeoutMs ?? NODE_REQUEST_TIMEOUT_MS, 0);
  const idleTimeoutMs = checkLimit('idleTimeoutMs', options.idleTimeoutMs ?? options.keepAliveTimeoutMs ?? DEFAULT_HTTP_IDLE_TIMEOUT_MS, 0);
  const maxConnections = checkLimit('maxConnections', options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1, true);
  const maxHeaders = checkLimit('maxHeaders', options.maxHeaders ?? DEFAULT_HTTP_MAX_HEADERS, 1);
  // Node refuses a headersTimeout above requestTimeout: the shorter of the two bounds the head anyway.
  const headersTimeout = requestTimeoutMs > 0 && headerTimeoutMs > requestTimeoutMs ? requestTimeoutMs : headerTimeoutMs;
  const timeouts = [requestTimeoutMs, headersTimeout].filter((ms): ms is number => !!ms && ms > 0);
  const checkInterval = Math.min(
    DEFAULT_TIMEOUT_CHECK_INTERVAL_MS,
    Math.max(MIN_TIMEOUT_CHECK_INTERVAL_MS, Math.floor(Math.min(...timeouts) / 4)),
  );
  const server = createServer({
    requireHostHeader: true,
    insecureHTTPParser: false,
    ...(options.maxHeaderSize !== undefined ? { maxHeaderSize: options.maxHeaderSize } : {}),
    requestTimeout: requestTimeoutMs,
    headersTimeout,
    keepAliveTimeout: idleTimeoutMs,
    ...(timeouts.length > 0 ? { connectionsCheckingInterval: checkInterval } : {}),
  });
  // One line more than the listener accepts: a request past maxHeaders is seen as such, never cut to fit.
  server.maxHeadersCount = maxHeaders + 1;
  server.maxConnections = maxConnections;
  server.on('drop', () => {
    limitLog.hit('maxConnections', `a connection was closed at once: ${maxConnections} already open`, '--max-connections N');
  });
  // The connections and their responses in flight: a parse error on a pipelined request must not write its 400
  // into the middle of an earlier response, a stopping server drains through it (http-drain.ts), and a closed
  // connection aborts its open responses' requests (no 'close' listener per response). A response the app
  // ended is let go of at once (an idle connection then holds nothing of its last request).
  const connections = trackHttpConnections(server, { onConnectionClose: abortResponse });
  const listener = toNodeListener(app, {
    ...options,
    errors,
    maxHeaders,
    limitLog,
    deferContinue: true,
    abortsOnConnectionClose: true,
    onResponseEnded: (res) => connections.ended(res),
  });
  const track = (req: IncomingMessage, res: ServerResponse): void => {
    connections.add(req, res);
    listener(req, res);
  };
  server.on('request', track);
  server.on('checkContinue', track);
  const refused = new WeakSet<Duplex>();
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // The parser is dead after an error; Node reports every later chunk on the socket again.
    if (refused.has(socket)) return;
    refused.add(socket);
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // Let this turn's microtasks run first: a response the listener refused synchronously is ended by then.
    setImmediate(() => {
      const pending = connections.openResponses(socket);
      // An error in a body belongs to a request already handed to the listener.
      const broken = pending.find((res) => !res.req.complete);
      if (!timedOut) {
        // What a peer can make the server log: one line per kind per interval (limit-log.ts).
        peerLog.write(`bad request ${error.code ?? 'error'}`, `tsgi: http: bad request refused (${error.code ?? 'error'}: ${error.message})`);
      } else if (broken === undefined) {
        limitLog.hit('headerTimeoutMs', `a connection sent no complete request head in ${headersTimeout / 1000} s`, '--header-timeout SECONDS');
      } else {
        limitLog.hit('requestTimeoutMs', `a request took over ${requestTimeoutMs / 1000} s to arrive`, 'the requestTimeoutMs option of createHttpServer');
      }
      if (broken !== undefined && !broken.writableEnded) {
        // A head already sent, or a client that closed its side mid-body (the body is cut, not malformed):
        // closing the connection is all that is left (tsgi.signal tells the app).
        if (broken.headersSent || error.code === 'HPE_INVALID_EOF_STATE') {
          socket.destroy();
          return;
        }
        // The app may still answer: its read of the body fails with a 400 (408), its error page goes out.
        const status = timedOut ? 408 : 400;
        failRequestBody(broken.req, new InputError(`http: request body refused (${error.code ?? 'error'}: ${error.message})`, status));
      }
      // A complete response to the broken request is the answer; otherwise the parser's refusal is.
      const answer = broken !== undefined ? '' : errorResponseOf(error);
      // Earlier pipelined requests keep their responses; the refusal goes out after them, in order.
      void Promise.all(pending.map((res) => (res.closed ? undefined : once(res, 'close')))).then(() => {
        if (!socket.writable) {
          socket.destroy();
          return;
        }
        socket.end(answer, () => socket.destroy());
      });
    });
  });
  return server;
}

function checkLimit(name: string, value: number, min: number, infinite = false): number {
  if (!(value >= min) || (!Number.isSafeInteger(value) && !(infinite && value === Number.POSITIVE_INFINITY))) {
    throw new TsgiError(`http: ${name} must be a whole number >= ${min} (${value})`);
  }
  return value;
}

function errorResponseOf(error: NodeJS.ErrnoException): string {
  if (error.code === 'HPE_HEADER_OVERFLOW') return HEADERS_TOO_LARGE;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return REQUEST_TIMEOUT;
  return BAD_REQUEST;
}
