/**
 * The bridge from a Node `(req, res)` handler (Express, Fastify's `routing`, Koa's `callback()`, plain
 * node:http listeners) to a tsgi app.
 *
 * How it gets real objects. Frameworks depend on the exact behaviour of `http.IncomingMessage` and
 * `http.ServerResponse`: Express swaps their prototypes, its body parser checks the socket's state, `res.json`
 * and `res.sendFile` rely on how headers, drain and 'finish' work, `on-finished` on 'close'. Emulating those
 * objects is what broke node-fastcgi for Express users (fbbdev/node-fastcgi#4, #7; field-notes item 7). So
 * this bridge lets Node build them: each request gets an in-memory Duplex "socket" that is handed to a private,
 * never-listening `http.Server` through its documented `'connection'` event ("any Duplex stream can be
 * passed"). The socket carries a request head serialized from the environ and then the body pulled from
 * `tsgi.input`; Node's own parser creates the IncomingMessage/ServerResponse pair and emits 'request'. What
 * Node writes back (`HTTP/1.1 200 OK`, headers, the body, chunked when Node chose to) is parsed again: the
 * status and headers go to startResponse, the body bytes (de-chunked) become the app's body. Only documented
 * behaviour of Node is used: the 'connection' event, stream backpressure (`_read`/`_write` callbacks), the
 * HTTP/1.1 wire format, and public fields of req/res (`url`, `method`, `httpVersion`, 'finish', 'close').
 *
 * Consequences: backpressure holds both ways (the handler's `res.write()` returns false and 'drain' follows
 * when the tsgi server is slow; the body is pulled from `tsgi.input` only as fast as the handler reads it),
 * `Expect: 100-continue` reaches the handler, whose `res.writeContinue()` is harmless (interim 1xx heads are
 * dropped: the tsgi server sends `100 Continue` itself when the body is first read), and a client that goes
 * away (`tsgi.signal`) closes the socket, so `req` emits 'aborted'/'close' and `res` 'close', as under
 * node:http.
 */
import { HOP_BY_HOP_HEADERS } from '../response/status.js';
import { METHODS, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { AbortError, AppError, RequestError, TsgiError } from '../errors.js';
import { rawPathBelow } from '../environ/byte-policy.js';
import type { App, Body, Environ, Header } from '../types.js';

/** A Node request handler: what `http.createServer()` takes, an Express app, Koa's `app.callback()`... */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

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
  /** Largest request head Node's parser accepts, in bytes. Default DEFAULT_MAX_HEADER_BYTES. */
  maxHeaderSize?: number;
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
const STATUS_LINE_RE = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/;
const PROTOCOL_RE = /^HTTP\/(\d+)(?:\.(\d+))?$/;
// RFC 3986 pchar plus "/": what may stay unescaped in a path rebuilt from the decoded PATH_INFO.
const PATH_SAFE_RE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g;
/** Longest response head Node may write: it validates every header, this only bounds a runaway parse. */
const MAX_RESPONSE_HEAD_CHARS = 1024 * 1024;

const environs = new WeakMap<IncomingMessage, Environ>();
const exchanges = new WeakMap<Duplex, Exchange>();

/**
 * Returns the tsgi environ behind a request that fromNodeHandler created (undefined for any other request):
 * the way to reach `tsgi.*` keys, FastCGI params or middleware keys from inside a Node handler.
 */
export function environOf(req: IncomingMessage): Environ | undefined {
  return environs.get(req);
}

/**
 * Turns a Node `(req, res)` handler into a tsgi app. The handler gets real `http.IncomingMessage` and
 * `http.ServerResponse` objects built by Node itself (see the top of this file), so Express (prototype swap,
 * body parsers, res.json/redirect/sendFile/cookie), Fastify (`(req, res) => fastify.routing(req, res)` after
 * `await fastify.ready()`), Koa (`app.callback()`) and plain listeners behave as under node:http.
 * - `req.url` follows `options.url`; `req.method`, `req.httpVersion`, `req.headers`/`req.rawHeaders` (from
 *   HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; names title-cased) come from the environ; `req.socket` has
 *   remoteAddress/remotePort (REMOTE_ADDR/PORT), localAddress/localPort (SERVER_ADDR/SERVER_PORT) and
 *   `encrypted` when `tsgi.url_scheme` is https. `environOf(req)` returns the environ.
 * - A body of unknown length (no CONTENT_LENGTH, `tsgi.input_terminated`) reaches Node as a chunked upload
 *   when the client sent Transfer-Encoding or the method usually has a body; otherwise the request is bodyless.
 * - The response: status and reason as the handler set them; headers as [name, value] pairs in Node's order,
 *   repeated ones (Set-Cookie) separate; hop-by-hop headers dropped; Node's Date and Content-Length kept; the
 *   body streamed as written, never chunk-framed.
 * - A handler that throws or rejects, or destroys the response, fails the request (500 before the head, a
 *   cut response after it); the error goes to `tsgi.errors`. A request Node's parser refuses gets a 400.
 */
export function fromNodeHandler(handler: NodeHandler, options: NodeHandlerOptions = {}): App {
  const settings: Settings = { handler, urlMode: options.url ?? 'path-info' };
  const server = createHiddenServer(options.maxHeaderSize ?? DEFAULT_MAX_HEADER_BYTES);
  return (environ, startResponse) => {
    const exchange = new Exchange(environ, settings);
    return exchange.start(server).then(({ status, headers }) => {
      startResponse(status, headers);
      return exchange.body;
    });
  };
}

interface Settings {
  handler: NodeHandler;
  urlMode: 'path-info' | 'request-uri';
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

/**
 * The in-memory connection Node's server talks to. Its readable side carries the request (head, then body
 * pulled from tsgi.input when Node asks for more), its writable side receives the response and hands it to
 * the exchange; a write's callback runs only once the tsgi side took its bytes (backpressure).
 */
class BridgeSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly connecting = false;
  readonly pending = false;
  bytesRead = 0;
  bytesWritten = 0;
  readonly #exchange: Exchange;

  constructor(exchange: Exchange, environ: Environ) {
    // Strings reach _write undecoded: Node writes its head as latin-1 text, sometimes joined to a UTF-8 body.
    super({ decodeStrings: false, allowHalfOpen: true });
    this.#exchange = exchange;
    this.remoteAddress = environ.REMOTE_ADDR || undefined;
    this.remotePort = toPort(environ.REMOTE_PORT);
    this.remoteFamily = familyOf(this.remoteAddress);
    this.localAddress = (typeof environ.SERVER_ADDR === 'string' && environ.SERVER_ADDR) || undefined;
    this.localPort = toPort(environ.SERVER_PORT);
    // TLSSocket's marker, which Express (req.protocol), Koa and Fastify read; absent on plain sockets.
    if (environ['tsgi.url_scheme'] === 'https') (this as { encrypted?: boolean }).encrypted = true;
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
    this.#exchange.pullBody();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    this.#exchange.onOutput(chunk, encoding, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#exchange.onOutputEnd();
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
  #bodyMode: 'none' | 'length' | 'chunked' = 'none';
  #input: AsyncIterator<Uint8Array> | null = null;
  #bodyGate = false;
  #wantsBody = false;
  #pumping = false;
  #inputDone = false;
  // Response head.
  #headText = '';
  #headDone = false;
  #resolveHead!: (head: ResponseHead) => void;
  #rejectHead!: (error: unknown) => void;
  readonly #headPromise: Promise<ResponseHead>;
  // Response body.
  #chunked = false;
  readonly #dechunker = new Dechunker();
  readonly #queue: Buffer[] = [];
  #pendingCallback: ((error?: Error | null) => void) | null = null;
  #ended = false;
  #failure: unknown = null;
  #wake: (() => void) | null = null;
  #closed = false;
  #onAbort: (() => void) | null = null;

  constructor(environ: Environ, settings: Settings) {
    this.#environ = environ;
    this.#settings = settings;
    this.#socket = new BridgeSocket(this, environ);
    exchanges.set(this.#socket, this);
    this.#headPromise = new Promise<ResponseHead>((resolve, reject) => {
      this.#resolveHead = resolve;
      this.#rejectHead = reject;
    });
    // Handled by the caller; this keeps a failure after the caller stopped listening from being "unhandled".
    this.#headPromise.catch(() => undefined);
  }

  /** Feeds the request head to `server` and resolves with the response head once Node wrote it. */
  start(server: Server): Promise<ResponseHead> {
    const environ = this.#environ;
    const signal = environ['tsgi.signal'];
    if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new AbortError());
    this.#onAbort = () => this.#socket.destroy();
    signal.addEventListener('abort', this.#onAbort, { once: true });
    server.emit('connection', this.#socket);
    this.#socket.feed(Buffer.from(this.#buildRequestHead(), 'latin1'));
    return this.#headPromise.catch((error: unknown) => {
      this.#cleanUp();
      throw error;
    });
  }

  /** The response body for runApp: what Node writes after the head, until the response finishes. */
  readonly body: Body = {
    [Symbol.asyncIterator]: () => ({
      next: () => this.#next(),
      return: () => Promise.resolve({ done: true as const, value: undefined }),
    }),
    close: () => this.#close(),
  };

  #buildRequestHead(): string {
    const environ = this.#environ;
    const method = environ.REQUEST_METHOD;
    let head = `${WIRE_METHODS.has(method) ? method : 'POST'} / HTTP/1.1\r\n`;
    let clientChunked = false;
    for (const key of Object.keys(environ)) {
      if (!key.startsWith('HTTP_')) continue;
      const value = environ[key];
      if (typeof value !== 'string' || !HTTP_KEY_RE.test(key) || BAD_HEADER_VALUE_RE.test(value)) continue;
      const lower = key.toLowerCase();
      // Framing is the bridge's (below); an upgrade can't happen over tsgi, and llhttp would stop parsing.
      if (lower === 'http_transfer_encoding') {
        clientChunked = true;
        continue;
      }
      if (lower === 'http_upgrade' || lower === 'http_content_length' || lower === 'http_content_type') continue;
      if (lower === 'http_connection' && /upgrade/i.test(value)) continue;
      head += `${titleCase(key.slice(5))}: ${value}\r\n`;
    }
    if (environ.CONTENT_TYPE !== undefined && !BAD_HEADER_VALUE_RE.test(environ.CONTENT_TYPE)) {
      head += `Content-Type: ${environ.CONTENT_TYPE}\r\n`;
    }
    if (environ.CONTENT_LENGTH !== undefined) {
      head += `Content-Length: ${environ.CONTENT_LENGTH}\r\n`;
      if (environ.CONTENT_LENGTH !== '0') this.#bodyMode = 'length';
    } else if (environ['tsgi.input_terminated'] && (clientChunked || !BODYLESS_METHODS.has(method))) {
      head += 'Transfer-Encoding: chunked\r\n';
      this.#bodyMode = 'chunked';
    }
    return `${head}\r\n`;
  }

  /** Node emitted 'request' for this exchange's socket: dress the request as the environ says, run the handler. */
  run(req: IncomingMessage, res: ServerResponse): void {
    this.#req = req;
    this.#res = res;
    const environ = this.#environ;
    environs.set(req, environ);
    const { url, originalUrl } = buildUrl(environ, this.#settings.urlMode);
    req.url = url;
    if (originalUrl !== undefined) (req as { originalUrl?: string }).originalUrl = originalUrl;
    if (req.method !== environ.REQUEST_METHOD) req.method = environ.REQUEST_METHOD;
    const protocol = PROTOCOL_RE.exec(environ.SERVER_PROTOCOL);
    if (protocol && `${protocol[1]}.${protocol[2] ?? '0'}` !== '1.1') {
      req.httpVersionMajor = Number(protocol[1]);
      req.httpVersionMinor = Number(protocol[2] ?? '0');
      req.httpVersion = `${req.httpVersionMajor}.${req.httpVersionMinor}`;
    }
    // The body is pulled from tsgi.input only once the handler reads (Readable calls _read then): a body the
    // handler never reads is never requested, so `100 Continue` goes out only when it is wanted (SPEC 5.4).
    const readOwn = req._read;
    req._read = (size: number): void => {
      req._read = readOwn;
      this.#openBodyGate();
      readOwn.call(req, size);
    };
    res.once('finish', () => this.onOutputEnd());
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
    // The bridge's own errors (a truncated body from tsgi.input) keep their status; the parser's become 400s.
    else if (error instanceof TsgiError) this.#fail(error);
    else {
      const code = (error as { code?: string }).code ?? error.message;
      this.#fail(new RequestError(`node-handler: Node's HTTP parser refused the request (${code})`, 400, error));
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
    if (!this.#headDone) this.#rejectHead(error);
    this.#wakeUp();
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  // ---- request body ----

  #openBodyGate(): void {
    if (this.#bodyGate) return;
    this.#bodyGate = true;
    if (this.#wantsBody) this.pullBody();
  }

  /** Node's side wants more request bytes (socket._read). */
  pullBody(): void {
    this.#wantsBody = true;
    if (!this.#bodyGate || this.#pumping || this.#inputDone || this.#bodyMode === 'none') return;
    this.#pumping = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    const socket = this.#socket;
    this.#input ??= this.#environ['tsgi.input'][Symbol.asyncIterator]();
    try {
      for (;;) {
        const { value, done } = await this.#input.next();
        if (socket.destroyed) return;
        if (done) {
          this.#inputDone = true;
          // The socket stays open after the body, as a kept-alive connection does: Express's body parser takes
          // a socket that is no longer readable for a finished request.
          if (this.#bodyMode === 'chunked') socket.feed(Buffer.from('0\r\n\r\n', 'latin1'));
          return;
        }
        if (value.length === 0) continue;
        const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        let more: boolean;
        if (this.#bodyMode === 'chunked') {
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
      // Destroying with the error makes Node do what it does when a client breaks off mid-body: 'clientError'
      // (-> refuse), then req 'aborted' and 'close'.
      socket.destroy(error instanceof Error ? error : new AbortError(String(error)));
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
      rest = this.#headDone ? toBuffer(chunk, encoding) : this.#takeHead(chunk, encoding);
    } catch (error) {
      this.#fail(error);
      callback();
      return;
    }
    if (rest !== null && rest.length > 0) {
      if (this.#chunked) this.#dechunker.push(rest, (part) => this.#queue.push(part));
      else this.#queue.push(rest);
    }
    if (this.#queue.length === 0) {
      callback();
      return;
    }
    // Released when the tsgi side has taken these bytes: until then Node's socket buffer fills and
    // res.write() returns false.
    this.#pendingCallback = callback;
    this.#wakeUp();
  }

  /** Parses the head text out of a write; returns the body bytes after it (null while the head is incomplete). */
  #takeHead(chunk: Buffer | string, encoding: BufferEncoding): Buffer | null {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const before = this.#headText.length;
    this.#headText += text;
    for (;;) {
      const end = this.#headText.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.#headText.length > MAX_RESPONSE_HEAD_CHARS) throw new AppError(`node-handler: response head too long (${this.#headText.length})`);
        return null;
      }
      const head = parseResponseHead(this.#headText.slice(0, end));
      const consumed = end + 4 - before;
      this.#headText = this.#headText.slice(end + 4);
      if (head.code < 200) {
        // 100 Continue from writeContinue(), 102/103 from writeProcessing()/writeEarlyHints(): tsgi has no
        // interim responses; drop them and read on.
        if (this.#headText === '') return null;
        continue;
      }
      this.#headDone = true;
      this.#headText = '';
      const isHead = this.#environ.REQUEST_METHOD === 'HEAD';
      this.#chunked = head.chunked && !isHead && head.code !== 204 && head.code !== 304;
      this.#resolveHead({ status: head.status, headers: head.headers });
      if (consumed >= text.length) return Buffer.alloc(0);
      return typeof chunk === 'string' ? Buffer.from(chunk.slice(consumed), encoding) : chunk.subarray(consumed);
    }
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
        if (this.#queue.length === 0) this.#releaseWrite();
        return { done: false, value: part };
      }
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended) return { done: true, value: undefined };
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
    this.#releaseWrite();
    // The exchange is over: close the in-memory connection (a response still running sees 'close', as when a
    // client disconnects).
    if (!this.#socket.destroyed) this.#socket.destroy();
  }
}

interface ParsedHead {
  code: number;
  status: string;
  headers: Header[];
  chunked: boolean;
}

/** Parses `HTTP/1.1 200 OK\r\nName: value...` as Node writes it. Header values are byte strings already. */
function parseResponseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const match = STATUS_LINE_RE.exec(lines[0] ?? '');
  if (!match) throw new AppError(`node-handler: bad status line from Node (${JSON.stringify(lines[0]).slice(0, 80)})`);
  const code = Number(match[1]);
  const headers: Header[] = [];
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(line.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1);
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding' && /(?:^|,)\s*chunked\s*$/i.test(value)) chunked = true;
    if (HOP_BY_HOP.has(lower)) continue;
    headers.push([name, value]);
  }
  return { code, status: `${match[1]} ${match[2] ?? ''}`.trimEnd(), headers, chunked };
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
