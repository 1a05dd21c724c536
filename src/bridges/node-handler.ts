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
 *   (node-handler/objects.ts lists them); probeObjectsEngine() checks them once per process, and the bridge
 *   uses the other engine when the check fails.
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
 */
import { HOP_BY_HOP_HEADERS } from '../response/status.js';
import { IncomingMessage, METHODS, ServerResponse, createServer, type Server } from 'node:http';
import { Duplex } from 'node:stream';
import { AbortError, AppError, RequestError, TsgiError } from '../errors.js';
import { rawPathBelow } from '../environ/byte-policy.js';
import { ServerResponseWithOptions, connectionReset, kNeedDrain, objectsEngineSupported, type IncomingInternals, type ResponseInternals } from './node-handler/objects.js';
import type { App, Body, Environ, Header, StartResponse } from '../types.js';

/** A Node request handler: what `http.createServer()` takes, an Express app, Koa's `app.callback()`... */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

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

/** Response headers that describe the in-memory connection, not the response: the tsgi server frames its own. */
// Proxy-Connection is not standard but still sent by old clients; it is hop-by-hop too.
const HOP_BY_HOP = new Set([...HOP_BY_HOP_HEADERS, 'proxy-connection']);
/** Methods llhttp parses; anything else travels as POST and is restored on `req.method`. */
const WIRE_METHODS = new Set(METHODS.filter((method) => method !== 'CONNECT' && method !== 'PRI'));
/** Methods that rarely carry a body: an unknown-length body is only framed for them when the client said so. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);
const HTTP_KEY_RE = /^HTTP_[A-Za-z0-9_]+$/;
// llhttp refuses control characters in header values (RFC 9110 §5.5); such a value can only come from a
// FastCGI param, and one header is better lost than the whole request.
const BAD_HEADER_VALUE_RE = /[\x00-\x08\x0a-\x1f\x7f]/;
const UPGRADE_RE = /upgrade/i;
const CONTINUE_RE = /(?:^|\W)100-continue(?:$|\W)/i;
const STATUS_LINE_RE = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/;
const CHUNKED_RE = /(?:^|,)\s*chunked\s*$/i;
const PROTOCOL_RE = /^HTTP\/(\d+)(?:\.(\d+))?$/;
// RFC 3986 pchar plus "/": what may stay unescaped in a path rebuilt from the decoded PATH_INFO.
const PATH_SAFE_RE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g;
/** Longest response head Node may write: it validates every header, this only bounds a runaway parse. */
const MAX_RESPONSE_HEAD_CHARS = 1024 * 1024;
/** http.Server's default maxHeadersCount: headers past it are dropped, under either engine. */
const MAX_HEADERS_COUNT = 2000;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/**
 * Objects engine: how many idle sockets a handler keeps, and how many requests one carries before it is
 * closed (as a web server closes a kept-alive connection after so many requests, so that listeners an app
 * leaves on `req.socket` do not pile up forever).
 */
const MAX_POOLED_SOCKETS = 64;
const MAX_REQUESTS_PER_SOCKET = 100;

/** Where a request built by this bridge keeps its environ (a symbol: invisible to apps, kept by prototype swaps). */
const ENVIRON = Symbol('tsgi.environ');
const exchanges = new WeakMap<Duplex, Exchange>();
const readIncoming = IncomingMessage.prototype._read as (this: IncomingMessage, size: number) => void;

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
  const server = settings.objects ? null : createHiddenServer(maxHeaderSize);
  return (environ, startResponse) => {
    const exchange = new Exchange(environ, settings);
    exchange.start(server);
    return exchange.respond(startResponse);
  };
}

interface Settings {
  handler: NodeHandler;
  urlMode: 'path-info' | 'request-uri';
  maxHeaderSize: number;
  /** True for the objects engine, false for the http-server one. */
  objects: boolean;
  /** Objects engine: idle sockets of finished requests, [plain, https], reused as kept-alive connections are. */
  pools: [BridgeSocket[], BridgeSocket[]];
}

/** The private http.Server: never listens (so none of its timers run), only parses what exchanges feed it. */
function createHiddenServer(maxHeaderSize: number): Server {
  const server = createServer({ maxHeaderSize, requireHostHeader: false, requestTimeout: 0, joinDuplicateHeaders: false });
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    exchanges.get(req.socket as Duplex)?.run(req, res);
  };
  server.on('request', onRequest);
  // With these listeners Node neither answers `100 Continue` nor `417` itself: the handler decides, as it
  // would behind a proxy, and the tsgi server sends 100 when the body is first read.
  server.on('checkContinue', onRequest);
  server.on('checkExpectation', onRequest);
  server.on('clientError', (error: Error, socket: Duplex) => {
    const exchange = exchanges.get(socket);
    if (exchange) exchange.refuse(error);
    else socket.destroy();
  });
  return server;
}

interface ResponseHead {
  status: string;
  headers: Header[];
}

type BodyMode = 'none' | 'length' | 'chunked';

/** The request head as the environ describes it: raw header list (name, value, ...) and how the body is framed. */
interface RequestHead {
  raw: string[];
  bodyMode: BodyMode;
  /** Its size as HTTP/1.1 text, for maxHeaderSize. */
  bytes: number;
}

/**
 * The in-memory connection. Its readable side carries the request (http-server engine: head, then body pulled
 * from tsgi.input when Node asks for more; objects engine: nothing, the body goes into the request itself),
 * its writable side receives the response and hands it to the exchange; a write's callback runs only once the
 * tsgi side took its bytes (backpressure).
 */
class BridgeSocket extends Duplex {
  remoteAddress: string | undefined = undefined;
  remotePort: number | undefined = undefined;
  remoteFamily: string | undefined = undefined;
  localAddress: string | undefined = undefined;
  localPort: number | undefined = undefined;
  readonly connecting = false;
  readonly pending = false;
  bytesRead = 0;
  bytesWritten = 0;
  /** Requests this socket carried (a pooled one is retired after MAX_REQUESTS_PER_SOCKET). */
  requests = 0;
  #exchange: Exchange | null = null;

  constructor(https: boolean) {
    // Strings reach _write undecoded: Node writes its head as latin-1 text, sometimes joined to a UTF-8 body.
    super({ decodeStrings: false, allowHalfOpen: true });
    // TLSSocket's marker, which Express (req.protocol), Koa and Fastify read; absent on plain sockets.
    if (https) (this as { encrypted?: boolean }).encrypted = true;
  }

  /** Gives the socket to a request: the addresses are the environ's, its events go to `exchange`. */
  attach(exchange: Exchange, environ: Environ): void {
    this.#exchange = exchange;
    this.requests++;
    const remote = environ.REMOTE_ADDR || undefined;
    if (remote !== this.remoteAddress) {
      this.remoteAddress = remote;
      this.remoteFamily = familyOf(remote);
    }
    this.remotePort = toPort(environ.REMOTE_PORT);
    const local = (typeof environ.SERVER_ADDR === 'string' && environ.SERVER_ADDR) || undefined;
    if (local !== this.localAddress) this.localAddress = local;
    this.localPort = toPort(environ.SERVER_PORT);
  }

  /** The request is over (the socket goes back to the pool, or is destroyed). */
  detach(): void {
    this.#exchange = null;
  }

  /** The current request's exchange (null while pooled). */
  get exchange(): Exchange | null {
    return this.#exchange;
  }

  /** As net.Socket: the local address. */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localAddress === undefined) return {};
    return { address: this.localAddress, family: familyOf(this.localAddress) ?? 'IPv4', port: this.localPort ?? 0 };
  }

  // Connection tuning has no meaning for an in-memory stream; these exist because servers and apps call them.
  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  /** As net.Socket: end once the writes are done (Node's server calls it after a `Connection: close` response). */
  destroySoon(): void {
    if (this.writable) this.end();
    else this.destroy();
  }

  override _read(): void {
    this.#exchange?.socketRead();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    // Nothing is written to a pooled socket (a finished response is detached from it); dropped if it were.
    if (this.#exchange) this.#exchange.onOutput(chunk, encoding, callback);
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#exchange?.onOutputEnd();
    callback();
  }

  /** Pushes request bytes, counting them. */
  feed(bytes: Buffer | null): boolean {
    if (bytes) this.bytesRead += bytes.length;
    return this.push(bytes);
  }
}

/** One request through the bridge: the socket, the parse of Node's output, the body handed to tsgi. */
class Exchange {
  readonly #environ: Environ;
  readonly #settings: Settings;
  readonly #socket: BridgeSocket;
  #req: IncomingMessage | null = null;
  #res: ServerResponse | null = null;
  // Request body.
  #bodyMode: BodyMode = 'none';
  #input: AsyncIterator<Uint8Array> | null = null;
  #bodyGate = false;
  #wantsBody = false;
  #pumping = false;
  #inputDone = false;
  // Response head.
  #headText = '';
  #headDone = false;
  #head: ResponseHead | null = null;
  /** Set while respond() waits for the head. */
  #headWaiter: { resolve: () => void; reject: (error: unknown) => void } | null = null;
  // Response body.
  #chunked = false;
  #dechunker: Dechunker | null = null;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  #pendingCallback: ((error?: Error | null) => void) | null = null;
  #ended = false;
  #failure: unknown = null;
  #wake: (() => void) | null = null;
  #closed = false;
  #onAbort: (() => void) | null = null;
  /** Objects engine: the response finished (what takes a request off Node's server's in-flight list). */
  #responseFinished = false;
  /** The response emitted 'finish' (`writableFinished` turns true a tick earlier). */
  #finishEmitted = false;
  /**
   * True while Node has put the head on the socket with no body byte after it (`res.flushHeaders()`, a
   * `write('')`): node:http would have sent it, so the body's first step asks runApp to send it (SPEC 4.1).
   */
  #headAlone = false;

  constructor(environ: Environ, settings: Settings) {
    this.#environ = environ;
    this.#settings = settings;
    const https = environ['tsgi.url_scheme'] === 'https';
    let socket: BridgeSocket | undefined;
    if (settings.objects) {
      const pool = settings.pools[https ? 1 : 0];
      do socket = pool.pop();
      // (An app may still destroy a pooled socket: through an old request it destroys, say.)
      while (socket !== undefined && socket.destroyed);
      if (socket === undefined) {
        socket = new BridgeSocket(https);
        // As Node's server, once per connection: a socket 'drain' is the response's 'drain' when a
        // res.write() returned false; socket errors (a request destroyed with an error destroys its socket
        // with it) are dropped; a socket that closes aborts the request in flight.
        socket.on('drain', relayDrain);
        socket.on('error', ignoreError);
        socket.on('close', onSocketClose);
      }
    } else {
      socket = new BridgeSocket(https);
      exchanges.set(socket, this);
    }
    socket.attach(this, environ);
    this.#socket = socket;
  }

  /** Starts the request (through `server` for the http-server engine): the handler runs. */
  start(server: Server | null): void {
    const environ = this.#environ;
    const head = requestHeadOf(environ);
    this.#bodyMode = head.bodyMode;
    if (head.bytes > this.#settings.maxHeaderSize) {
      this.#fail(new RequestError(`node-handler: request head larger than maxHeaderSize (${head.bytes} > ${this.#settings.maxHeaderSize} bytes)`, 431));
    } else if (server === null) {
      this.#startObjects(head);
    } else {
      server.emit('connection', this.#socket);
      this.#socket.feed(Buffer.from(serializeRequestHead(environ.REQUEST_METHOD, head), 'latin1'));
    }
  }

  /**
   * Calls startResponse once Node wrote the response head, and returns the body: right away when the handler
   * answered synchronously (no promise), else once the head comes; rejects when the request failed first.
   */
  respond(startResponse: StartResponse): Body | Promise<Body> {
    // A handler that answered synchronously is done; any other must learn when the client goes away.
    // (tsgi.signal is only read here: servers create it lazily.)
    if (!this.#isComplete()) this.#watchAbort();
    if (this.#head === null && this.#failure === null) {
      return new Promise<void>((resolve, reject) => {
        this.#headWaiter = { resolve, reject };
      }).then(
        () => this.#respondNow(startResponse),
        (error: unknown) => {
          this.#cleanUp();
          throw error;
        },
      );
    }
    return this.#respondNow(startResponse);
  }

  #respondNow(startResponse: StartResponse): Body {
    const head = this.#head;
    if (head === null) {
      this.#cleanUp();
      throw this.#failure;
    }
    startResponse(head.status, head.headers);
    if (!this.#isComplete()) return this.#asyncBody;
    // The whole response is here already (the usual case of a small response written at once): a plain
    // iterable lets the tsgi server send it and end the request in one go.
    const parts = this.#queue.splice(0);
    this.#queuedBytes = 0;
    return { [Symbol.iterator]: () => parts[Symbol.iterator](), close: () => this.#close() };
  }

  /** Closes the socket when the client goes away (`tsgi.signal`), as a dropped connection would. */
  #watchAbort(): void {
    if (this.#onAbort !== null || this.#failure !== null) return;
    const signal = this.#environ['tsgi.signal'];
    if (signal.aborted) {
      this.#fail(signal.reason instanceof Error ? signal.reason : new AbortError());
      return;
    }
    this.#onAbort = () => this.#socket.destroy();
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** True when the handler ended the response and every byte of it reached the queue. */
  #isComplete(): boolean {
    const res = this.#res;
    return res !== null && res.writableEnded && this.#failure === null && this.#pendingCallback === null && this.#socket.writableLength === 0;
  }

  /** The response body for runApp: what Node writes after the head, until the response finishes. */
  readonly #asyncBody: Body = {
    [Symbol.asyncIterator]: () => ({
      next: () => this.#next(),
      return: () => Promise.resolve({ done: true as const, value: undefined }),
    }),
    close: () => this.#close(),
  };

  /**
   * The objects engine: what Node's http.Server does between parsing a request head and emitting 'request'
   * (parserOnIncoming), and at the end of the response (resOnFinish) and of the connection (abortIncoming).
   */
  #startObjects(head: RequestHead): void {
    const socket = this.#socket;
    const req = new IncomingMessage(socket as never) as IncomingMessage & IncomingInternals;
    this.#dress(req);
    // As the parser does: the raw list; Node derives `headers` and `headersDistinct` from it when read.
    if (head.raw.length > 0) req._addHeaderLines(head.raw, head.raw.length);
    const res = new ServerResponseWithOptions(req, { highWaterMark: socket.writableHighWaterMark });
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && CONTINUE_RE.test(req.headers.expect ?? '')) res._expect_continue = true;
    res.assignSocket(socket);
    res.on('finish', () => {
      this.#responseFinished = true;
      // A body the handler never read is discarded (pulled from tsgi.input and dropped), as Node does.
      if (!req._consuming && req.readableFlowing !== true) req._dump();
      res.detachSocket(socket);
      process.nextTick(emitResponseClose, res);
    });
    if (this.#bodyMode !== 'none') {
      req._read = (size: number): void => {
        readIncoming.call(req, size);
        this.#openBodyGate();
        this.pullBody();
      };
    }
    this.run(req, res);
    // A bodyless request is complete as soon as its head is: Node ends it right after the handler returns.
    if (this.#bodyMode === 'none' && !req.destroyed) {
      req.complete = true;
      req.push(null);
    }
  }

  /**
   * Objects engine: the socket closed (abort, failure, a retired socket). A request still in flight is
   * destroyed as Node destroys it ('aborted', then 'close'); the response's 'close' comes from assignSocket.
   */
  socketClosed(): void {
    const req = this.#req;
    if (req !== null && !this.#responseFinished && !req.destroyed) req.destroy(connectionReset());
  }

  /** Sets url, method and version from the environ, and the environ itself, on a request. */
  #dress(req: IncomingMessage): void {
    const environ = this.#environ;
    (req as { [ENVIRON]?: Environ })[ENVIRON] = environ;
    const { url, originalUrl } = buildUrl(environ, this.#settings.urlMode);
    req.url = url;
    if (originalUrl !== undefined) (req as { originalUrl?: string }).originalUrl = originalUrl;
    if (req.method !== environ.REQUEST_METHOD) req.method = environ.REQUEST_METHOD;
    const protocol = PROTOCOL_RE.exec(environ.SERVER_PROTOCOL);
    if (protocol && `${protocol[1]}.${protocol[2] ?? '0'}` !== '1.1') {
      req.httpVersionMajor = Number(protocol[1]);
      req.httpVersionMinor = Number(protocol[2] ?? '0');
      req.httpVersion = `${req.httpVersionMajor}.${req.httpVersionMinor}`;
    } else if (req.httpVersion !== '1.1') {
      req.httpVersionMajor = 1;
      req.httpVersionMinor = 1;
      req.httpVersion = '1.1';
    }
  }

  /** Node emitted 'request' for this exchange's socket (or the objects engine built the pair): run the handler. */
  run(req: IncomingMessage, res: ServerResponse): void {
    this.#req = req;
    this.#res = res;
    if (!this.#settings.objects) {
      this.#dress(req);
      // The body is pulled from tsgi.input only once the handler reads (Readable calls _read then): a body the
      // handler never reads is never requested, so `100 Continue` goes out only when it is wanted (SPEC 5.4).
      const readOwn = req._read;
      req._read = (size: number): void => {
        req._read = readOwn;
        this.#openBodyGate();
        readOwn.call(req, size);
      };
    }
    res.once('finish', () => {
      this.#finishEmitted = true;
      this.onOutputEnd();
    });
    res.once('close', () => {
      if (!res.writableFinished) this.#fail(this.#abortReason() ?? new AppError('node-handler: the response was closed before it ended'));
    });
    try {
      const result = this.#settings.handler(req, res);
      if (isThenable(result)) result.then(undefined, (error: unknown) => this.#handlerFailed(error));
    } catch (error) {
      this.#handlerFailed(error);
    }
  }

  /** Node's parser refused the request head, or the body failed: answer 400 (or the error's status). */
  refuse(error: Error): void {
    const gone = this.#abortReason();
    if (gone) this.#fail(gone);
    // The bridge's own errors (a truncated body from tsgi.input) keep their status; the parser's become 400s
    // (431 for a head too large).
    else if (error instanceof TsgiError) this.#fail(error);
    else {
      const code = (error as { code?: string }).code ?? error.message;
      this.#fail(new RequestError(`node-handler: Node's HTTP parser refused the request (${code})`, code === 'HPE_HEADER_OVERFLOW' ? 431 : 400, error));
    }
  }

  #handlerFailed(error: unknown): void {
    this.#fail(error instanceof Error ? error : new AppError(`node-handler: the handler failed (${String(error)})`));
  }

  #abortReason(): Error | null {
    const signal = this.#environ['tsgi.signal'];
    if (!signal.aborted) return null;
    return signal.reason instanceof Error ? signal.reason : new AbortError();
  }

  #fail(error: unknown): void {
    if (this.#failure !== null || this.#ended) return;
    this.#failure = error;
    if (!this.#headDone) {
      const waiter = this.#headWaiter;
      this.#headWaiter = null;
      waiter?.reject(error);
    }
    this.#wakeUp();
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  // ---- request body ----

  #openBodyGate(): void {
    if (this.#bodyGate) return;
    this.#bodyGate = true;
    if (this.#wantsBody) this.pullBody();
  }

  /** The socket's _read: Node's parser wants more request bytes (the objects engine never reads the socket). */
  socketRead(): void {
    if (!this.#settings.objects) this.pullBody();
  }

  /** Node's side wants more request bytes (http-server: socket._read; objects: req._read). */
  pullBody(): void {
    this.#wantsBody = true;
    if (!this.#bodyGate || this.#pumping || this.#inputDone || this.#bodyMode === 'none') return;
    this.#pumping = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    const socket = this.#socket;
    const req = this.#req;
    const objects = this.#settings.objects;
    this.#input ??= this.#environ['tsgi.input'][Symbol.asyncIterator]();
    try {
      for (;;) {
        const { value, done } = await this.#input.next();
        // (Objects engine: the socket is the connection's, and outlives the request; a closed one destroys it.)
        if (objects ? req === null || req.destroyed : socket.destroyed) return;
        if (done) {
          this.#inputDone = true;
          if (objects && req) {
            // As the parser does at the end of the message.
            req.complete = true;
            req.push(null);
          } else if (this.#bodyMode === 'chunked') {
            // The socket stays open after the body, as a kept-alive connection does: Express's body parser
            // takes a socket that is no longer readable for a finished request.
            socket.feed(Buffer.from('0\r\n\r\n', 'latin1'));
          }
          return;
        }
        if (value.length === 0) continue;
        const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        let more: boolean;
        if (objects && req) {
          socket.bytesRead += bytes.length;
          more = req.push(bytes);
        } else if (this.#bodyMode === 'chunked') {
          socket.feed(Buffer.from(`${value.length.toString(16)}\r\n`, 'latin1'));
          socket.feed(bytes);
          more = socket.feed(Buffer.from('\r\n', 'latin1'));
        } else {
          more = socket.feed(bytes);
        }
        if (!more) return;
      }
    } catch (error) {
      this.#inputDone = true;
      const cause = error instanceof Error ? error : new AbortError(String(error));
      if (objects) {
        // What Node does when a client breaks off mid-body: the request fails (refuse), the connection closes,
        // so the request emits 'aborted' and 'close'.
        socket.destroy();
        if (req && !req.destroyed) req.destroy(connectionReset());
        this.refuse(cause);
      } else {
        // Destroying with the error makes Node do the same: 'clientError' (-> refuse), then req 'aborted'.
        socket.destroy(cause);
      }
    } finally {
      this.#pumping = false;
    }
  }

  // ---- response ----

  /** Bytes Node wrote to the socket: the head, then body bytes (maybe chunk-framed). */
  onOutput(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#failure !== null || this.#closed) {
      callback();
      return;
    }
    let rest: Buffer | null;
    try {
      if (this.#headDone) {
        rest = toBuffer(chunk, encoding);
      } else {
        rest = this.#takeHead(chunk, encoding);
        if (this.#headDone) this.#headAlone = rest === null || rest.length === 0;
      }
    } catch (error) {
      this.#fail(error);
      callback();
      return;
    }
    if (rest !== null && rest.length > 0) {
      if (this.#chunked) (this.#dechunker ??= new Dechunker()).push(rest, (part) => this.#enqueue(part));
      else this.#enqueue(rest);
    }
    this.#wakeUp();
    // Up to a socket buffer's worth is taken at once, as a kernel socket buffer takes small writes (so a
    // small response is complete as soon as the handler ended it); past that the write is released only when
    // the tsgi side has taken enough: until then Node's socket buffer fills and res.write() returns false.
    if (this.#queuedBytes <= this.#socket.writableHighWaterMark) callback();
    else this.#pendingCallback = callback;
  }

  #enqueue(part: Buffer): void {
    this.#headAlone = false;
    this.#queue.push(part);
    this.#queuedBytes += part.length;
  }

  /** Takes the head out of a write; returns the body bytes after it (null while the head is incomplete). */
  #takeHead(chunk: Buffer | string, encoding: BufferEncoding): Buffer | null {
    if (this.#headText === '' && typeof chunk !== 'string') {
      // The usual case for a Buffer: the whole head in this write. Only the head is decoded.
      const end = chunk.indexOf(HEAD_END);
      if (end >= 0) {
        const rest = chunk.subarray(end + 4);
        if (this.#acceptHead(chunk.toString('latin1', 0, end))) return rest;
        return rest.length === 0 ? null : this.#takeHead(rest, encoding);
      }
    }
    // Strings (Node's head, maybe with the first body chunk joined to it), and heads split across writes.
    let text = this.#headText + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    // What follows the head always comes from this write: re-encode it as it came.
    const restEncoding = typeof chunk === 'string' ? encoding : 'latin1';
    this.#headText = '';
    for (;;) {
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        if (text.length > MAX_RESPONSE_HEAD_CHARS) throw new AppError(`node-handler: response head too long (${text.length})`);
        this.#headText = text;
        return null;
      }
      const done = this.#acceptHead(text.slice(0, end));
      text = text.slice(end + 4);
      if (done) return text === '' ? EMPTY : Buffer.from(text, restEncoding);
      if (text === '') return null;
    }
  }

  /**
   * Parses one head; false for an interim one (100 from writeContinue(), 102/103 from writeProcessing()/
   * writeEarlyHints()), which is dropped: tsgi has no interim responses. 101 is a final head (a handler that
   * answers `101 Switching Protocols` gets it sent, as under node:http; no upgrade follows over tsgi).
   */
  #acceptHead(text: string): boolean {
    const head = parseResponseHead(text);
    if (head.code < 200 && head.code !== 101) return false;
    this.#headDone = true;
    const isHead = this.#environ.REQUEST_METHOD === 'HEAD';
    const bodyless = isHead || head.code < 200 || head.code === 204 || head.code === 304;
    this.#chunked = head.chunked && !bodyless;
    // Node frames a body with Content-Length or chunked, unless the handler removed both fields (Koa for a
    // 205). Chunked from Node, or neither: no length may be computed for it (SPEC 3: Transfer-Encoding: chunked).
    if (!bodyless && (head.chunked || !head.sized)) head.headers.push(['Transfer-Encoding', 'chunked']);
    this.#head = { status: head.status, headers: head.headers };
    const waiter = this.#headWaiter;
    this.#headWaiter = null;
    waiter?.resolve();
    return true;
  }

  /** The response finished ('finish'), or Node ended the socket after it (`Connection: close`). */
  onOutputEnd(): void {
    if (this.#ended || this.#failure !== null) return;
    if (!this.#headDone) {
      // Node writes the head before 'finish'; a socket ended without one means the handler never answered.
      this.#fail(new AppError('node-handler: the response ended without a head'));
      return;
    }
    this.#ended = true;
    this.#wakeUp();
  }

  async #next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      const part = this.#queue.shift();
      if (part !== undefined) {
        this.#queuedBytes -= part.length;
        if (this.#queuedBytes <= this.#socket.writableHighWaterMark) this.#releaseWrite();
        return { done: false, value: part };
      }
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended) return { done: true, value: undefined };
      if (this.#headAlone) {
        // The head went out alone under node:http: an empty chunk makes runApp send it now.
        this.#headAlone = false;
        return { done: false, value: EMPTY };
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #releaseWrite(): void {
    const callback = this.#pendingCallback;
    this.#pendingCallback = null;
    callback?.();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    const res = this.#res;
    // runApp never iterates a HEAD response's body: let the handler finish it, as node:http would.
    if (res && !res.writableFinished && this.#failure === null && this.#environ.REQUEST_METHOD === 'HEAD') {
      await new Promise<void>((resolve) => {
        if (res.writableFinished || res.destroyed) resolve();
        res.once('finish', () => resolve());
        res.once('close', () => resolve());
      });
    }
    this.#closed = true;
    this.#cleanUp();
  }

  #cleanUp(): void {
    if (this.#onAbort) this.#environ['tsgi.signal'].removeEventListener('abort', this.#onAbort);
    this.#onAbort = null;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#releaseWrite();
    const socket = this.#socket;
    if (socket.destroyed) return;
    const res = this.#res;
    // The handler ended the response and its last write was taken: 'finish' is a tick away; release after it.
    // (Not from within 'finish': that runs inside the socket's write completion, and a stream destroyed there
    // makes an error object for its finish callbacks, which costs more than the rest of the cleanup.)
    if (res !== null && res.writableEnded && !this.#finishEmitted && this.#failure === null) {
      res.once('finish', () => process.nextTick(() => this.#release()));
      return;
    }
    this.#release();
  }

  /**
   * The exchange is over. Objects engine: a socket whose response finished cleanly goes back to the pool, as
   * a kept-alive connection waits for the next request. Otherwise the in-memory connection closes (a response
   * still running sees 'close', as when a client disconnects).
   */
  #release(): void {
    const socket = this.#socket;
    if (socket.destroyed || socket.exchange !== this) return;
    const pool = this.#settings.pools[(socket as { encrypted?: boolean }).encrypted ? 1 : 0];
    const reusable =
      this.#settings.objects &&
      this.#responseFinished &&
      this.#failure === null &&
      socket.writableLength === 0 &&
      !socket.writableEnded &&
      (socket as { _httpMessage?: unknown })._httpMessage == null &&
      socket.requests < MAX_REQUESTS_PER_SOCKET &&
      pool.length < MAX_POOLED_SOCKETS;
    if (reusable) {
      socket.detach();
      pool.push(socket);
    } else {
      socket.destroy();
    }
  }
}

/** As Node's server on a socket's 'drain' (`this` is the socket): the response waiting for one gets it. */
function relayDrain(this: Duplex): void {
  const res = (this as { _httpMessage?: (ServerResponse & Record<symbol, unknown>) | null })._httpMessage;
  if (!res || res.writableEnded || kNeedDrain === undefined || res[kNeedDrain] !== true) return;
  res[kNeedDrain] = false;
  res.emit('drain');
}

function ignoreError(): void {}

/** Objects engine, once per socket: the socket closed; the request on it (if any) hears of it. */
function onSocketClose(this: BridgeSocket): void {
  const exchange = this.exchange;
  this.detach();
  exchange?.socketClosed();
}

/** As Node's server after a response finished: the response's single 'close'. */
function emitResponseClose(res: ServerResponse & ResponseInternals): void {
  if (res._closed) return;
  res.destroyed = true;
  res._closed = true;
  res.emit('close');
}

/** Title-cased header names by CGI key ("HTTP_USER_AGENT" -> "User-Agent"); a bounded cache. */
const headerNames = new Map<string, string>();
const HEADER_NAME_CACHE = 512;

/** The request head the environ describes (both engines start from it). */
function requestHeadOf(environ: Environ): RequestHead {
  const method = environ.REQUEST_METHOD;
  const raw: string[] = [];
  // "METHOD / HTTP/1.1\r\n" and the blank line: what the http-server engine sends (its url is always "/").
  let bytes = method.length + 17;
  let clientChunked = false;
  const add = (name: string, value: string): void => {
    if (raw.length >= MAX_HEADERS_COUNT * 2) return;
    raw.push(name, value);
    bytes += name.length + value.length + 4;
  };
  for (const key of Object.keys(environ)) {
    if (!key.startsWith('HTTP_')) continue;
    const value = environ[key];
    if (typeof value !== 'string' || !HTTP_KEY_RE.test(key) || BAD_HEADER_VALUE_RE.test(value)) continue;
    // Framing is the bridge's (below); an upgrade can't happen over tsgi, and llhttp would stop parsing.
    switch (key) {
      case 'HTTP_TRANSFER_ENCODING':
        clientChunked = true;
        continue;
      case 'HTTP_UPGRADE':
      case 'HTTP_CONTENT_LENGTH':
      case 'HTTP_CONTENT_TYPE':
        continue;
      case 'HTTP_CONNECTION':
        if (UPGRADE_RE.test(value)) continue;
    }
    let name = headerNames.get(key);
    if (name === undefined) {
      name = titleCase(key.slice(5));
      if (headerNames.size < HEADER_NAME_CACHE) headerNames.set(key, name);
    }
    add(name, value);
  }
  if (environ.CONTENT_TYPE !== undefined && !BAD_HEADER_VALUE_RE.test(environ.CONTENT_TYPE)) add('Content-Type', environ.CONTENT_TYPE);
  let bodyMode: BodyMode = 'none';
  if (environ.CONTENT_LENGTH !== undefined) {
    add('Content-Length', environ.CONTENT_LENGTH);
    if (environ.CONTENT_LENGTH !== '0') bodyMode = 'length';
  } else if (environ['tsgi.input_terminated'] && (clientChunked || !BODYLESS_METHODS.has(method))) {
    add('Transfer-Encoding', 'chunked');
    bodyMode = 'chunked';
  }
  return { raw, bodyMode, bytes };
}

/** The http-server engine's request head as HTTP/1.1 text. */
function serializeRequestHead(method: string, head: RequestHead): string {
  let text = `${WIRE_METHODS.has(method) ? method : 'POST'} / HTTP/1.1\r\n`;
  const raw = head.raw;
  for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${text}\r\n`;
}

interface ParsedHead {
  code: number;
  status: string;
  headers: Header[];
  /** Node framed the body as chunked (Transfer-Encoding ending in chunked). */
  chunked: boolean;
  /** The head carries a Content-Length. */
  sized: boolean;
}

/** Parses `HTTP/1.1 200 OK\r\nName: value...` as Node writes it. Header values are byte strings already. */
function parseResponseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const match = STATUS_LINE_RE.exec(lines[0] ?? '');
  if (!match) throw new AppError(`node-handler: bad status line from Node (${JSON.stringify(lines[0]).slice(0, 80)})`);
  const code = Number(match[1]);
  const headers: Header[] = [];
  let chunked = false;
  let sized = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(line.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1);
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding' && CHUNKED_RE.test(value)) chunked = true;
    else if (lower === 'content-length') sized = true;
    if (HOP_BY_HOP.has(lower)) continue;
    headers.push([name, value]);
  }
  return { code, status: `${match[1]} ${match[2] ?? ''}`.trimEnd(), headers, chunked, sized };
}

/**
 * Removes HTTP/1.1 chunked framing (RFC 9112 §7.1) from a stream of writes that may split it anywhere: Node
 * writes the size line, the data and the CRLF separately.
 */
class Dechunker {
  #state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  #line = '';
  #remaining = 0;

  push(bytes: Buffer, emit: (part: Buffer) => void): void {
    let at = 0;
    while (at < bytes.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const take = Math.min(this.#remaining, bytes.length - at);
        emit(bytes.subarray(at, at + take));
        at += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = 'data-end';
        continue;
      }
      const newline = bytes.indexOf(0x0a, at);
      const end = newline < 0 ? bytes.length : newline + 1;
      this.#line += bytes.toString('latin1', at, end);
      at = end;
      if (newline < 0) break;
      const line = this.#line.replace(/\r?\n$/, '');
      this.#line = '';
      if (this.#state === 'data-end') {
        this.#state = 'size';
      } else if (this.#state === 'size') {
        const size = parseInt(line.split(';', 1)[0] as string, 16);
        if (!Number.isSafeInteger(size) || size < 0) throw new AppError(`node-handler: bad chunk size from Node (${JSON.stringify(line).slice(0, 40)})`);
        this.#remaining = size;
        this.#state = size === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.#state = 'done';
      }
    }
  }
}

/**
 * `req.url` (and `req.originalUrl` when mounted) from the environ; see NodeHandlerOptions.url. PATH_INFO is
 * decoded, so the original encoding is recovered from REQUEST_URI when that decodes to SCRIPT_NAME + PATH_INFO
 * (a `%2F` stays `%2F`); otherwise the path is re-encoded.
 */
function buildUrl(environ: Environ, mode: 'path-info' | 'request-uri'): { url: string; originalUrl?: string } {
  const query = environ.QUERY_STRING ? `?${environ.QUERY_STRING}` : '';
  const requestUri = typeof environ.REQUEST_URI === 'string' && environ.REQUEST_URI.startsWith('/') ? environ.REQUEST_URI : undefined;
  const full = requestUri ?? `${encodePath(environ.SCRIPT_NAME + environ.PATH_INFO) || '/'}${query}`;
  if (mode === 'request-uri') return { url: full };
  let path: string | null = null;
  if (requestUri !== undefined) {
    const rawPath = requestUri.split('?', 1)[0] as string;
    path = rawPathBelow(rawPath, environ.SCRIPT_NAME, environ.PATH_INFO);
  }
  path ??= encodePath(environ.PATH_INFO);
  const url = `${path || '/'}${query}`;
  return environ.SCRIPT_NAME === '' ? { url } : { url, originalUrl: full };
}

/** Percent-encodes a byte-string path (one char per byte) for a URL. */
function encodePath(path: string): string {
  return path.replace(PATH_SAFE_RE, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** "ACCEPT_LANGUAGE" -> "Accept-Language": the spelling most clients send, for rawHeaders. */
function titleCase(name: string): string {
  return name
    .toLowerCase()
    .split('_')
    .map((word) => (word === '' ? word : word[0]?.toUpperCase() + word.slice(1)))
    .join('-');
}

function toBuffer(chunk: Buffer | string, encoding: BufferEncoding): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
}

function toPort(value: unknown): number | undefined {
  return typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : undefined;
}

function familyOf(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.includes(':') ? 'IPv6' : 'IPv4';
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
