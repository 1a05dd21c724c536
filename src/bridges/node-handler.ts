/**
 * The bridge from a Node `(req, res)` handler (Express, Fastify's `routing`, Koa's `callback()`, plain
 * node:http listeners) to a tsgi app.
 *
 * Why real objects. Frameworks depend on the exact behaviour of `http.IncomingMessage` and
 * `http.ServerResponse`: Express swaps their prototypes, its body parser checks the socket's state, `res.json`
 * and `res.sendFile` rely on how headers, drain and 'finish' work, `on-finished` on 'close'. Emulating those
 * objects is what broke node-fastcgi for Express users (fbbdev/node-fastcgi#4, #7; field-notes item 7). So the
 * handler always gets instances Node built with its own constructors, over an in-memory Duplex "socket"
 * (BridgeSocket) whose readable side carries the request body and whose writable side receives what the
 * ServerResponse writes: its head, as Node serialized it (status, reason, headers in Node's order, Node's Date
 * and Content-Length), then the body. The head is parsed into startResponse's status and headers, the body
 * bytes become the app's body. Two engines make the pair:
 *
 * - "objects" (the default): the bridge does what Node's http.Server does for each request it parsed: it
 *   creates `new IncomingMessage(socket)`, hands it the raw header list and method/url/version the way the
 *   parser does (`_addHeaderLines`, so `headers`/`headersDistinct` are Node's own), creates
 *   `new ServerResponse(req)` and assigns it the socket, calls the handler, pushes the body pulled from
 *   tsgi.input into the request (`complete`, then end-of-stream), and at 'finish' dumps an unread body,
 *   detaches the socket and emits the response's 'close', as the server does. No HTTP text is produced for
 *   the request and no parser is set up; a socket whose response finished cleanly is reused for a later
 *   request, as a kept-alive connection is (at most MAX_REQUESTS_PER_SOCKET requests; an aborted or failed
 *   request's socket is closed). It relies on a few undocumented members of Node's http classes
 *   (src/node-private/http.ts lists them, and is the only file that touches them); probeObjectsEngine() checks
 *   them once per process, and the bridge uses the other engine when the check fails.
 * - "http-server": each request gets a BridgeSocket handed to a private, never-listening `http.Server`
 *   through its documented 'connection' event; the socket carries a request head serialized from the environ
 *   and then the body; Node's parser creates the pair and emits 'request'; the response is de-chunked when
 *   Node chose chunked framing. Only documented behaviour of Node is used, at several times the CPU cost.
 *
 * Either way: backpressure holds both ways (the handler's `res.write()` returns false and 'drain' follows when
 * the tsgi server is slow; the body is pulled from `tsgi.input` only as fast as the handler reads it),
 * `Expect: 100-continue` reaches the handler, whose `res.writeContinue()` is harmless (interim 1xx heads are
 * dropped: the tsgi server sends `100 Continue` itself when the body is first read), and a client that goes
 * away (`tsgi.signal`) closes the socket, so `req` emits 'aborted'/'close' and `res` 'close', as under
 * node:http.
 *
 * The parts, one job each, under node-handler/: settings.ts (shared types), request-head.ts and request-line.ts
 * (what the handler's request carries), bridge-socket.ts (the in-memory connection), src/node-private/http.ts
 * (Node's undocumented members, probed), objects-engine.ts and http-server-engine.ts (the two ways to make the pair),
 * exchange.ts (one request: the handler run, the output read back, the end), request-body.ts (tsgi.input to
 * Node), response-head.ts (Node's serialized head to startResponse) and dechunker.ts.
 */
import type { IncomingMessage, Server } from 'node:http';
import { objectsEngineSupported } from '../node-private/http.js';
import { Exchange } from './node-handler/exchange.js';
import { createHiddenServer } from './node-handler/http-server-engine.js';
import { ENVIRON, type NodeHandler, type Settings } from './node-handler/settings.js';
import type { App, Environ } from '../types.js';

export type { NodeHandler } from './node-handler/settings.js';

/** Which engine makes the request/response pair (see the top of this file). */
export type NodeHandlerEngine = 'objects' | 'http-server';

/** Options for fromNodeHandler. */
export interface NodeHandlerOptions {
  /**
   * What `req.url` holds. "path-info" (the default): the path below the mount, PATH_INFO (in its original
   * percent-encoding when REQUEST_URI agrees with it) plus `?QUERY_STRING`, so routes are written relative to
   * where the app is mounted, as with Express's `app.use('/prefix', sub)`; `req.originalUrl` then holds the
   * full request URI (Express keeps a preset originalUrl, and builds redirects and 404 pages from it).
   * "request-uri": REQUEST_URI as the client sent it (else SCRIPT_NAME + PATH_INFO + query), what
   * node-fastcgi does.
   */
  url?: 'path-info' | 'request-uri';
  /**
   * Largest request head accepted, in bytes (request line and headers as HTTP/1.1 text); a larger one gets
   * 431. Default DEFAULT_MAX_HEADER_BYTES.
   */
  maxHeaderSize?: number;
  /**
   * "objects" builds IncomingMessage/ServerResponse directly, "http-server" through a private http.Server;
   * see the top of this file. Default: "objects" when this Node passes probeObjectsEngine(), else
   * "http-server". Asking for "objects" on a Node that fails the probe throws.
   */
  engine?: NodeHandlerEngine;
}

/** Default for `maxHeaderSize`: the FastCGI server's own PARAMS cap, so the bridge refuses nothing it accepted. */
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

/**
 * Returns the tsgi environ behind a request that fromNodeHandler created (undefined for any other request):
 * the way to reach `tsgi.*` keys, FastCGI params or middleware keys from inside a Node handler.
 */
export function environOf(req: IncomingMessage): Environ | undefined {
  return (req as { [ENVIRON]?: Environ })[ENVIRON];
}

/**
 * Turns a Node `(req, res)` handler into a tsgi app. The handler gets real `http.IncomingMessage` and
 * `http.ServerResponse` objects built by Node's own constructors (see the top of this file), so Express
 * (prototype swap, body parsers, res.json/redirect/sendFile/cookie), Fastify (`(req, res) =>
 * fastify.routing(req, res)` after `await fastify.ready()`), Koa (`app.callback()`) and plain listeners behave
 * as under node:http.
 * - `req.url` follows `options.url`; `req.method`, `req.httpVersion`, `req.headers`/`req.rawHeaders` (from
 *   HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; names title-cased) come from the environ; `req.socket` has
 *   remoteAddress/remotePort (REMOTE_ADDR/PORT), localAddress/localPort (SERVER_ADDR/SERVER_PORT) and
 *   `encrypted` when `tsgi.url_scheme` is https. `environOf(req)` returns the environ.
 * - A body of unknown length (no CONTENT_LENGTH, `tsgi.input_terminated`) reaches Node as a chunked upload
 *   (`Transfer-Encoding: chunked` in the headers) when the client sent Transfer-Encoding or the method usually
 *   has a body; otherwise the request is bodyless.
 * - The response: status and reason as the handler set them; headers as [name, value] pairs in Node's order,
 *   repeated ones (Set-Cookie) separate; hop-by-hop headers dropped; Node's Date and Content-Length kept; the
 *   body streamed as written, never chunk-framed.
 * - A handler that throws or rejects, or destroys the response, fails the request (500 before the head, a
 *   cut response after it); the error goes to `tsgi.errors`. A request head over maxHeaderSize gets a 431,
 *   one Node's parser refuses (http-server engine) a 400.
 */
export function fromNodeHandler(handler: NodeHandler, options: NodeHandlerOptions = {}): App {
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_BYTES;
  const engine = options.engine ?? (objectsEngineSupported() ? 'objects' : 'http-server');
  if (engine === 'objects' && !objectsEngineSupported()) {
    throw new TypeError(`fromNodeHandler: engine "objects" needs http internals this Node (${process.version}) lacks; use engine "http-server"`);
  }
  if (engine !== 'objects' && engine !== 'http-server') throw new TypeError(`fromNodeHandler: unknown engine ${JSON.stringify(engine)}`);
  const settings: Settings = { handler, urlMode: options.url ?? 'path-info', maxHeaderSize, objects: engine === 'objects', pools: [[], []] };
  const server: Server | null = settings.objects ? null : createHiddenServer(maxHeaderSize);
  return (environ, startResponse) => {
    const exchange = new Exchange(environ, settings);
    exchange.start(server);
    return exchange.respond(startResponse);
  };
}
