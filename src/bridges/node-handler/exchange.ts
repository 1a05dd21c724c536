/**
 * One request through the bridge: the handler run on its request/response pair, Node's output read back (head
 * into startResponse, body bytes into the tsgi body), failures and aborts mapped both ways, and the socket
 * released at the end. Engine-specific steps live in objects-engine.ts and http-server-engine.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { AbortError, AppError, RequestError, TsgiError } from '../../errors.js';
import type { Body, Environ, StartResponse } from '../../types.js';
import type { BridgeSocket, SocketOwner } from './bridge-socket.js';
import { Dechunker } from './dechunker.js';
import { socketFor, startThroughServer } from './http-server-engine.js';
import { emitResponseClose, finishExchange } from '../../node-private/http.js';
import { abortRequest, releaseSocket, startObjects, takeSocket } from './objects-engine.js';
import { RequestBody } from './request-body.js';
import { requestHeadOf } from './request-head.js';
import { isThenable } from '../../thenable.js';
import { ResponseHeadReader } from './response-head.js';
import type { BodyMode, ExchangeSide, Settings } from './settings.js';

const EMPTY = Buffer.alloc(0);
/** Where a response of the http-server engine keeps its exchange (a symbol, invisible to apps), for the listeners below. */
const EXCHANGE = Symbol('tsgi.exchange');

/** One request through the bridge (see the top of this file). */
export class Exchange implements ExchangeSide, SocketOwner {
  readonly environ: Environ;
  readonly settings: Settings;
  readonly socket: BridgeSocket;
  req: IncomingMessage | null = null;
  res: ServerResponse | null = null;
  bodyMode: BodyMode = 'none';
  /** The request body's pump, made when Node's side first asks for the body (most requests have none). */
  #body: RequestBody | null = null;
  readonly #headReader: ResponseHeadReader;
  /** Set while respond() waits for the head. */
  #headWaiter: { resolve: () => void; reject: (error: unknown) => void } | null = null;
  // Response body.
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
  /** The exchange is over but 'finish' is still to come: release the socket after it. */
  #releaseOnFinish = false;
  /**
   * True while Node has put the head on the socket with no body byte after it (`res.flushHeaders()`, a
   * `write('')`): node:http would have sent it, so the body's first step asks runApp to send it (SPEC 4.1).
   */
  #headAlone = false;

  constructor(environ: Environ, settings: Settings) {
    this.environ = environ;
    this.settings = settings;
    const https = environ['tsgi.url_scheme'] === 'https';
    const socket = settings.objects ? takeSocket(settings, https) : socketFor(this, https);
    socket.attach(this, environ);
    this.socket = socket;
    this.#headReader = new ResponseHeadReader(environ.REQUEST_METHOD === 'HEAD');
  }

  /** Starts the request (through `server` for the http-server engine): the handler runs. */
  start(server: Server | null): void {
    const head = requestHeadOf(this.environ);
    this.bodyMode = head.bodyMode;
    if (head.bytes > this.settings.maxHeaderSize) {
      this.#fail(new RequestError(`node-handler: request head larger than maxHeaderSize (${head.bytes} > ${this.settings.maxHeaderSize} bytes)`, 431));
    } else if (server === null) {
      startObjects(this, head);
    } else {
      startThroughServer(this, server, head);
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
    if (this.#headReader.head === null && this.#failure === null) {
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
    const head = this.#headReader.head;
    if (head === null) {
      this.#cleanUp();
      throw this.#failure;
    }
    startResponse(head.status, head.headers);
    if (!this.#isComplete()) return this.#asyncBody();
    // The whole response is here already (the usual case of a small response written at once): its parts as
    // an array let the tsgi server send it and end the request in one go. (Only when the head frames it: an
    // array of known length would otherwise get a computed Content-Length.) Nothing is left for a close() to
    // do but let the socket go once 'finish' has come (a tick away, or already past), so the body has none.
    const parts = this.#queue.splice(0);
    this.#queuedBytes = 0;
    this.#closeNow();
    if (head.framed) return parts;
    return { [Symbol.iterator]: () => parts[Symbol.iterator]() };
  }

  /** Closes the socket when the client goes away (`tsgi.signal`), as a dropped connection would. */
  #watchAbort(): void {
    if (this.#onAbort !== null || this.#failure !== null) return;
    const signal = this.environ['tsgi.signal'];
    if (signal.aborted) {
      this.#fail(signal.reason instanceof Error ? signal.reason : new AbortError());
      return;
    }
    this.#onAbort = () => this.socket.destroy();
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** True when the handler ended the response and every byte of it reached the queue. */
  #isComplete(): boolean {
    const res = this.res;
    return res !== null && res.writableEnded && this.#failure === null && this.#pendingCallback === null && this.socket.writableLength === 0;
  }

  /** The response body for runApp: what Node writes after the head, until the response finishes. */
  #asyncBody(): Body {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => this.#next(),
        return: () => Promise.resolve({ done: true as const, value: undefined }),
      }),
      close: () => this.#close(),
    };
  }

  /** Runs the handler on the pair (both engines call it once the pair exists). */
  run(req: IncomingMessage, res: ServerResponse): void {
    this.req = req;
    this.res = res;
    // One listener function for every response (no closures per request): the response leads back here.
    // Objects engine: through its socket, which carries it until 'finish' (a property of our own on the
    // response would give it another shape for Express's code to meet: ~2% of a bridged Express hello). A
    // response can only close unfinished when its socket does, and socketClosed() hears of that. The
    // http-server engine's responses lose their socket to Node's server before 'finish' reaches us.
    if (this.settings.objects) {
      res.on('finish', onObjectsResponseFinish);
    } else {
      (res as ResponseOfExchange)[EXCHANGE] = this;
      res.on('finish', onResponseFinish);
      res.on('close', onResponseClose);
    }
    try {
      const result = this.settings.handler(req, res);
      if (isThenable(result)) result.then(undefined, (error: unknown) => this.#handlerFailed(error));
    } catch (error) {
      this.#handlerFailed(error);
    }
  }

  /** The response's 'finish': as Node's server (objects engine), then the end of the body. */
  responseFinished(req: IncomingMessage, res: ServerResponse): void {
    if (this.settings.objects) {
      this.#responseFinished = true;
      finishExchange(req, res, this.socket);
    }
    this.#finishEmitted = true;
    this.onOutputEnd();
    // (Not released from within 'finish': that runs inside the socket's write completion, and a stream destroyed
    // there makes an error object for its finish callbacks, which costs more than the rest of the cleanup.)
    if (this.settings.objects) process.nextTick(afterFinish, this, res);
    else if (this.#releaseOnFinish) process.nextTick(releaseExchange, this);
  }

  /** The response closed (http-server engine: its 'close'): one that closes before it finished fails the request. */
  responseClosed(res: ServerResponse): void {
    if (!res.writableFinished) this.#fail(this.#abortReason() ?? new AppError('node-handler: the response was closed before it ended'));
  }

  /**
   * Objects engine, a tick after 'finish' (when Node's server emits it): the response's 'close', then the socket
   * released if the exchange ended before 'finish' came (one tick for both).
   */
  afterFinish(res: ServerResponse): void {
    emitResponseClose(res);
    if (this.#releaseOnFinish) this.release();
  }

  /**
   * Objects engine: the socket was destroyed (abort, failure, a retired socket). A request still in flight is
   * destroyed, as Node's server does for a lost connection, and a response that had not finished fails the
   * exchange (its 'close' follows, from the socket's). (The http-server engine hears of it from Node's server.)
   */
  socketClosed(): void {
    if (!this.settings.objects) return;
    const req = this.req;
    if (req !== null && !this.#responseFinished) abortRequest(req);
    const res = this.res;
    if (res !== null && !res.writableFinished) this.responseClosed(res);
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
    const signal = this.environ['tsgi.signal'];
    if (!signal.aborted) return null;
    return signal.reason instanceof Error ? signal.reason : new AbortError();
  }

  #fail(error: unknown): void {
    if (this.#failure !== null || this.#ended) return;
    this.#failure = error;
    if (this.#headReader.head === null) {
      const waiter = this.#headWaiter;
      this.#headWaiter = null;
      waiter?.reject(error);
    }
    this.#wakeUp();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  // ---- request body ----

  /** The handler read the body for the first time (http-server engine). */
  openBodyGate(): void {
    (this.#body ??= new RequestBody(this)).openGate();
  }

  /** Objects engine: the handler reads the body (req._read). */
  bodyWanted(): void {
    const body = (this.#body ??= new RequestBody(this));
    body.openGate();
    body.pull();
  }

  /** The socket's _read: Node's parser wants more request bytes (the objects engine never reads the socket). */
  socketRead(): void {
    if (!this.settings.objects) (this.#body ??= new RequestBody(this)).pull();
  }

  // ---- response ----

  /** Bytes Node wrote to the socket: the head, then body bytes (maybe chunk-framed). */
  onOutput(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#failure !== null || this.#closed) {
      callback();
      return;
    }
    const reader = this.#headReader;
    // What the tsgi side had still to take before this write (see the end).
    const queuedBefore = this.#queuedBytes;
    let rest: Buffer | null;
    try {
      if (reader.head !== null) {
        // (Node ends a response with an empty write, whose callback is its 'finish': nothing to convert.)
        rest = typeof chunk !== 'string' ? chunk : chunk === '' ? null : Buffer.from(chunk, encoding);
      } else {
        rest = reader.take(chunk, encoding);
        if (reader.head !== null) {
          this.#headAlone = rest === null || rest.length === 0;
          const waiter = this.#headWaiter;
          this.#headWaiter = null;
          waiter?.resolve();
        }
      }
    } catch (error) {
      this.#fail(error);
      callback();
      return;
    }
    if (rest !== null && rest.length > 0) {
      if (reader.head?.chunked) (this.#dechunker ??= new Dechunker()).push(rest, (part) => this.#enqueue(part));
      else this.#enqueue(rest);
    }
    this.#wakeUp();
    // A write is taken at once while less than a socket buffer's worth waits before it (as a kernel socket
    // buffer takes a write while it has room), and so is a write that queued nothing (Node's empty last one):
    // a response written at once, a 64 KiB one too, is complete as soon as the handler ended it, and no more
    // than one write past the buffer is held. Otherwise the write is released only when the tsgi side has taken
    // enough: until then Node's socket buffer fills and res.write() returns false.
    if (queuedBefore < this.socket.writableHighWaterMark || this.#queuedBytes === queuedBefore) callback();
    else this.#pendingCallback = callback;
  }

  #enqueue(part: Buffer): void {
    this.#headAlone = false;
    this.#queue.push(part);
    this.#queuedBytes += part.length;
  }

  /** The response finished ('finish'), or Node ended the socket after it (`Connection: close`). */
  onOutputEnd(): void {
    if (this.#ended || this.#failure !== null) return;
    if (this.#headReader.head === null) {
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
        if (this.#queuedBytes < this.socket.writableHighWaterMark) this.#releaseWrite();
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

  /** The body's close(): the exchange is over (a HEAD response is first let finish, as node:http would). */
  #close(): void | Promise<void> {
    if (this.#closed) return;
    const res = this.res;
    // runApp never iterates a HEAD response's body: let the handler finish it, as node:http would.
    if (res && !res.writableFinished && this.#failure === null && this.environ.REQUEST_METHOD === 'HEAD') {
      return new Promise<void>((resolve) => {
        if (res.writableFinished || res.destroyed) resolve();
        res.once('finish', () => resolve());
        res.once('close', () => resolve());
      }).then(() => this.#closeNow());
    }
    this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cleanUp();
  }

  #cleanUp(): void {
    if (this.#onAbort) this.environ['tsgi.signal'].removeEventListener('abort', this.#onAbort);
    this.#onAbort = null;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#releaseWrite();
    if (this.socket.destroyed) return;
    const res = this.res;
    // The handler ended the response and its last write was taken: 'finish' is a tick away; release after it.
    if (res !== null && res.writableEnded && !this.#finishEmitted && this.#failure === null) {
      this.#releaseOnFinish = true;
      return;
    }
    this.release();
  }

  /**
   * The exchange is over. Objects engine: a socket whose response finished cleanly goes back to the pool, as
   * a kept-alive connection waits for the next request. Otherwise the in-memory connection closes (a response
   * still running sees 'close', as when a client disconnects).
   */
  release(): void {
    const socket = this.socket;
    if (socket.destroyed || socket.exchange !== this) return;
    if (this.settings.objects) releaseSocket(this.settings, socket, this.#responseFinished && this.#failure === null);
    else socket.destroy();
  }
}

/** A response of the http-server engine: it holds its exchange under EXCHANGE (a symbol, invisible to apps). */
type ResponseOfExchange = ServerResponse & { [EXCHANGE]?: Exchange };

/** The 'finish' listener of every response of the objects engine (`this` is the response, still on its socket). */
function onObjectsResponseFinish(this: ServerResponse): void {
  const exchange = (this.socket as BridgeSocket | null)?.exchange;
  if (exchange instanceof Exchange && exchange.res === this && exchange.req) exchange.responseFinished(exchange.req, this);
}

/** The 'finish' listener of every response of the http-server engine (`this` is the response). */
function onResponseFinish(this: ServerResponse): void {
  const exchange = (this as ResponseOfExchange)[EXCHANGE];
  if (exchange?.req) exchange.responseFinished(exchange.req, this);
}

/** The 'close' listener of every response of the http-server engine (`this` is the response). */
function onResponseClose(this: ServerResponse): void {
  (this as ResponseOfExchange)[EXCHANGE]?.responseClosed(this);
}

function releaseExchange(exchange: Exchange): void {
  exchange.release();
}

function afterFinish(exchange: Exchange, res: ServerResponse): void {
  exchange.afterFinish(res);
}

