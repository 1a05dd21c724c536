import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { toNodeListener, type NodeListenerOptions } from '../bridges/node-listener.js';
import type { App } from '../types.js';

/** Options for createHttpServer. Host and port go to `server.listen()`. */
export interface HttpServerOptions extends Omit<NodeListenerOptions, 'deferContinue'> {
  /** Longest time to receive a whole request, in ms (Node's `requestTimeout`; 0 = none). Default: Node's (300 s). */
  requestTimeoutMs?: number;
  /**
   * Longest time to receive the request head, in ms (Node's `headersTimeout`; must not exceed requestTimeoutMs,
   * or Node throws). Default: Node's (60 s).
   */
  headersTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open, in ms (Node's `keepAliveTimeout`). Default: Node's (5 s). */
  keepAliveTimeoutMs?: number;
  /** Largest request head, in bytes; beyond it the client gets a 431. Default: Node's (16 KiB). */
  maxHeaderSize?: number;
}

/** Node checks request and head timeouts only this often by default; shorter timeouts get checked more often. */
const DEFAULT_TIMEOUT_CHECK_INTERVAL_MS = 30_000;
const MIN_TIMEOUT_CHECK_INTERVAL_MS = 10;
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const HEADERS_TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/**
 * Creates the embedded HTTP/1.1 server (the default transport): a `node:http` Server running
 * `toNodeListener(app)`; call `listen()` and `close()` on it as usual. What it adds to Node's server:
 * - `Expect: 100-continue` is answered with `100 Continue` only when the app starts reading the body, never
 *   when it answers without reading (conformance G8);
 * - a request Node's parser refuses (Content-Length with Transfer-Encoding, a bad or repeated Content-Length,
 *   obs-fold, whitespace before ":", a bare LF...) gets `400 Bad Request` with `Connection: close` (408 for a
 *   timeout, 431 for a head over maxHeaderSize), is logged to `errors`, and never reaches the app (G5, G6);
 * - the listener refuses what the parser lets through: two Host headers, a Host with userinfo, an unknown
 *   Transfer-Encoding (see buildVariables).
 * Node itself supplies Date (G9), keep-alive, pipelining, chunking for HTTP/1.1 and close-delimited bodies for
 * HTTP/1.0 (G4), and no body on HEAD/204/304 (G1, G2).
 */
export function createHttpServer(app: App, options: HttpServerOptions = {}): Server {
  const errors = options.errors ?? { write: (text: string) => void process.stderr.write(text) };
  const timeouts = [options.requestTimeoutMs, options.headersTimeoutMs].filter((ms): ms is number => !!ms && ms > 0);
  const checkInterval = Math.min(
    DEFAULT_TIMEOUT_CHECK_INTERVAL_MS,
    Math.max(MIN_TIMEOUT_CHECK_INTERVAL_MS, Math.floor(Math.min(...timeouts) / 4)),
  );
  const server = createServer({
    requireHostHeader: true,
    insecureHTTPParser: false,
    ...(options.maxHeaderSize !== undefined ? { maxHeaderSize: options.maxHeaderSize } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeout: options.requestTimeoutMs } : {}),
    ...(options.headersTimeoutMs !== undefined ? { headersTimeout: options.headersTimeoutMs } : {}),
    ...(options.keepAliveTimeoutMs !== undefined ? { keepAliveTimeout: options.keepAliveTimeoutMs } : {}),
    ...(timeouts.length > 0 ? { connectionsCheckingInterval: checkInterval } : {}),
  });
  const listener = toNodeListener(app, { ...options, errors, deferContinue: true });
  // Responses in flight per connection: a parse error on a pipelined request must not write its 400 into the
  // middle of an earlier response.
  const inFlight = new WeakMap<Duplex, Set<ServerResponse>>();
  const track = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    let responses = inFlight.get(socket);
    if (!responses) inFlight.set(socket, (responses = new Set()));
    responses.add(res);
    res.once('close', () => responses.delete(res));
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
    errors.write(`tsgi: http: bad request refused (${error.code ?? 'error'}: ${error.message})\n`);
    // Let this turn's microtasks run first: a response the listener refused synchronously is ended by then.
    setImmediate(() => {
      const pending = [...(inFlight.get(socket) ?? [])];
      // An error in a body belongs to a request already handed to the listener: its response, if already
      // complete, is the answer (the listener refuses a bad Transfer-Encoding itself); if not, the body the app
      // waits for will never come, so the connection goes (tsgi.signal tells the app).
      const broken = pending.find((res) => !res.req.complete);
      if (broken !== undefined && !broken.writableEnded) {
        socket.destroy();
        return;
      }
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

function errorResponseOf(error: NodeJS.ErrnoException): string {
  if (error.code === 'HPE_HEADER_OVERFLOW') return HEADERS_TOO_LARGE;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return REQUEST_TIMEOUT;
  return BAD_REQUEST;
}
