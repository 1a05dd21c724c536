import { createForwardedPolicy, DEFAULT_FORWARDED_ALLOW_IPS, type ForwardedPolicy } from '../environ/forwarded-policy.js';
/**
 * What SCGI and uwsgi share: one request per connection. The web server connects, sends a head (an SCGI
 * netstring, a uwsgi packet) and exactly CONTENT_LENGTH body bytes, reads the answer until the connection
 * closes. This module runs that exchange for any such protocol; each protocol supplies its head reader and
 * its response head format (a OneRequestProtocol).
 */
import { LazyAbort } from './lazy-abort.js';
import { Server, type Socket } from 'node:net';
import { AbortError, InputError, ProtocolError, describeError, statusOfError } from '../errors.js';
import { createEnviron, schemeOf } from '../environ/create-environ.js';
import { applyMount } from '../environ/mount.js';
import { STATUS_TEXT } from '../helpers/status-text.js';
import { CgiHeadCache, cgiHeadLength, writeCgiHead } from '../protocol/cgi-head-bytes.js';
import { refuseRequest, runApp, type ResponseSink, type RunResult } from '../response/run-app.js';
import type { App, ErrorStream, Header } from '../types.js';
import { ByteQueue } from './fastcgi/byte-queue.js';
import { DEFAULT_INPUT_HIGH_WATER_BYTES, DEFAULT_MAX_CONNECTIONS, normalizeAddress } from './fastcgi/options.js';
import { createLimitLog, createPeerLog, type LimitLog, type PeerLog } from './limit-log.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS, LINGER_MS, type PeerTimeoutOptions } from './limits.js';
import { waitForDrain } from './write-to-stream.js';

// How long a finished connection stays open, read and discarded, for the web server to close its side.
export { LINGER_MS } from './limits.js';

/**
 * Options shared by createScgiServer and createUwsgiServer. Of PeerTimeoutOptions, `headerTimeoutMs` (a whole
 * request head within this of the connection's accept, else it is closed) and `bodyTimeoutMs` (body bytes
 * announced by CONTENT_LENGTH and not arriving for this long: the app's read fails, the connection closes)
 * apply; `idleTimeoutMs` does not (a connection carries one request). 0 turns a timeout off.
 */
export interface OneRequestServerOptions extends PeerTimeoutOptions {
  /**
   * Mount prefix: the app sees SCRIPT_NAME = this prefix and PATH_INFO = the rest of the request path, rebuilt
   * from REQUEST_URI (else DOCUMENT_URI), whatever split the web server made ("/" for an app at the root). See
   * applyMount. Unset: the web server's SCRIPT_NAME/PATH_INFO are kept, except that a request with neither
   * (nginx's scgi_params, conformance D6) gets the split for "/": SCRIPT_NAME "" and PATH_INFO the whole path.
   */
  mount?: string;
  /** Most bytes of a request head (SCGI: the netstring's payload; uwsgi: the vars block, at most 65535). */
  maxHeaderBytes?: number;
  /** Most request body bytes: a longer CONTENT_LENGTH is answered 413 without running the app. Default: no limit. */
  maxBodyBytes?: number;
  /** Body bytes buffered before the socket is paused (the app reads slower than the body arrives). */
  inputHighWaterBytes?: number;
  /** Most connections (so requests) at once; more are closed at once (and logged). Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** The server's log and the apps' `tsgi.errors` (these protocols have no error channel). Default: process.stderr. */
  errors?: ErrorStream;
  /**
   * Peers allowed to connect over TCP; others are closed at once. Default: anyone. IPv4-mapped IPv6 peers
   * ("::ffff:127.0.0.1") count as their IPv4 address. Unix-socket peers have no address and are always allowed.
   */
  webServerAddrs?: readonly string[] | null;
  /** True when other processes serve the same app at the same time (`tsgi serve --workers N`, N > 1): the environ's `tsgi.multiprocess`. Default: false. */
  multiprocess?: boolean;
  /**
   * The peers (REMOTE_ADDR as the web server passes it: the web server's client) whose X-Forwarded-For /
   * -Proto / -Host and `Forwarded` fields set the client's address, scheme and host: addresses and CIDR
   * networks, "*" for any, "" for none (src/environ/forwarded.ts). Default: DEFAULT_FORWARDED_ALLOW_IPS
   * ("127.0.0.1,::1").
   */
  forwardedAllowIps?: string;
}

/** The options with their defaults applied. */
export interface ResolvedOneRequestOptions {
  mount: string | null;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  inputHighWaterBytes: number;
  maxConnections: number;
  /** 0 = off. */
  headerTimeoutMs: number;
  /** 0 = off. */
  bodyTimeoutMs: number;
  errors: ErrorStream;
  webServerAddrs: ReadonlySet<string> | null;
  multiprocess: boolean;
  /** Built once from forwardedAllowIps. */
  forwarded: ForwardedPolicy;
}

/** A request head as a protocol's reader returns it. */
export interface OneRequestHead {
  /** CGI variables as byte strings, in an object the server may keep and change. */
  variables: Record<string, string>;
  /** Body bytes that follow the head. */
  contentLength: number;
  /** The first body bytes (those that came in the chunk that completed the head). */
  rest: Uint8Array;
}

/** What a protocol supplies to OneRequestServer. */
export interface OneRequestProtocol {
  /** For messages: "scgi", "uwsgi". */
  readonly name: string;
  /** The cap on a head when the options give none. */
  readonly defaultMaxHeaderBytes: number;
  /** A reader for one head: push() returns the head once complete, else null; throws ProtocolError. */
  createReader(maxHeaderBytes: number): { push(chunk: Uint8Array): OneRequestHead | null };
  /** The response head bytes (status line or `Status:` field, the headers, the blank line). */
  formatHead(code: number, reason: string, headers: readonly Header[]): Buffer;
  /**
   * Set when formatHead is formatCgiHead (`nph`: the protocol of its status line, as formatCgiHead's
   * `nph.protocol`; none: a `Status:` field): the server then writes small heads straight into the response's
   * buffer (writeCgiHead) instead of making one with formatHead. Unset for any other head format.
   */
  readonly cgiHead?: { readonly nph?: string };
}

/** Applies defaults. */
export function resolveOneRequestOptions(options: OneRequestServerOptions, protocol: OneRequestProtocol): ResolvedOneRequestOptions {
  const addrs = options.webServerAddrs ?? null;
  return {
    mount: options.mount ?? null,
    maxHeaderBytes: options.maxHeaderBytes ?? protocol.defaultMaxHeaderBytes,
    maxBodyBytes: options.maxBodyBytes ?? Number.POSITIVE_INFINITY,
    inputHighWaterBytes: options.inputHighWaterBytes ?? DEFAULT_INPUT_HIGH_WATER_BYTES,
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    headerTimeoutMs: timeoutOption(options.headerTimeoutMs, DEFAULT_HEADER_TIMEOUT_MS, 'headerTimeoutMs'),
    bodyTimeoutMs: timeoutOption(options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS, 'bodyTimeoutMs'),
    errors: options.errors ?? { write: (text) => void process.stderr.write(text) },
    webServerAddrs: addrs ? new Set(addrs.map((addr) => normalizeAddress(addr.trim())).filter((addr) => addr !== '')) : null,
    multiprocess: options.multiprocess ?? false,
    forwarded: createForwardedPolicy(options.forwardedAllowIps ?? DEFAULT_FORWARDED_ALLOW_IPS),
  };
}

/** A timeout option: undefined = the default, 0 = off, else a positive number of milliseconds (a TypeError otherwise). */
function timeoutOption(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || value === Number.POSITIVE_INFINITY) {
    throw new TypeError(`${name} must be a number of milliseconds >= 0, 0 = off (got ${String(value)})`);
  }
  // setTimeout's largest delay; above it Node fires at once.
  return Math.min(value, 2 ** 31 - 1);
}

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

  constructor(app: App, protocol: OneRequestProtocol, options: OneRequestServerOptions = {}) {
    // allowHalfOpen: a client that shuts down its sending side after the request still gets the answer.
    super({ noDelay: true, allowHalfOpen: true });
    this.app = app;
    this.protocol = protocol;
    this.options = resolveOneRequestOptions(options, protocol);
    this.maxConnections = this.options.maxConnections;
    this.limitLog = createLimitLog(this.options.errors, protocol.name);
    this.peerLog = createPeerLog(this.options.errors);
    this.on('connection', (socket: Socket) => this.#accept(socket));
    // net.Server closes a connection over maxConnections itself, silently: say so (rate-limited).
    this.on('drop', () =>
      this.limitLog.hit('maxConnections', `closed a new connection: ${this.maxConnections} connections are open`, '--max-connections N (option maxConnections)'),
    );
  }

  #accept(socket: Socket): void {
    const allowed = this.options.webServerAddrs;
    if (allowed !== null && socket.remoteAddress !== undefined && !allowed.has(normalizeAddress(socket.remoteAddress))) {
      this.peerLog.write('refused address', `tsgi: ${this.protocol.name}: refused a connection from ${socket.remoteAddress} (not in webServerAddrs)`);
      socket.destroy();
      return;
    }
    new OneRequestConnection(this, socket);
  }
}

/** A head and a first body chunk that fit in this many bytes leave in one buffer (see #send). */
const COMBINE_LIMIT_BYTES = 4 * 1024;

const EMPTY = new Uint8Array(0);

/** The last response head written (any protocol: the cache compares it too), copied when the next is the same. */
const HEAD_CACHE = new CgiHeadCache();

/** Socket errors that only mean the peer went away: not worth a log line. */
const PEER_GONE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * One connection: reads the head, runs the app while the body streams in (the socket is paused while more
 * than inputHighWaterBytes wait for the app), writes the response, closes (see #close). The connection is the
 * ResponseSink of its request: no sink object or closures per request. A malformed head is answered 400
 * (nothing was sent yet) and logged; the loss of the connection fires `tsgi.signal`; nothing here throws out
 * of a socket event. One timer per phase the peer controls: the head must be complete within headerTimeoutMs
 * of the accept; then, while body bytes are due and the socket is not paused for the app, each chunk re-arms
 * (refresh()) a bodyTimeoutMs timer.
 */
class OneRequestConnection implements ResponseSink {
  readonly #server: OneRequestServer;
  readonly #socket: Socket;
  readonly #options: ResolvedOneRequestOptions;
  readonly #name: string;
  #reader: { push(chunk: Uint8Array): OneRequestHead | null } | null;
  #queue: ByteQueue | null = null;
  /** Body bytes still to come from the web server. */
  #remaining = 0;
  #paused = false;
  #received = 0;
  // Created only if the app reads tsgi.signal (see LazyAbort).
  readonly #abort = new LazyAbort();
  /** The head runApp gave (sendHead), held back to leave with the first body bytes: null once sent. */
  #headHeaders: Header[] | null = null;
  #headCode = 0;
  #headReason = '';
  /** Every byte of the request arrived (the head and CONTENT_LENGTH bytes of body): nothing more is due. */
  #inputDone = false;
  /** The peer sent bytes past its request: more may come, so the connection lingers before it closes. */
  #overran = false;
  /** The response is complete (or abandoned): what still arrives is discarded. */
  #finished = false;
  #active = false;
  /** The head timer, then the body timer (null when none is due). */
  #timer: NodeJS.Timeout | null = null;
  /**
   * The linger timer (see #linger), cleared when the socket closes: a timer left pending would keep the socket
   * and this connection alive for LINGER_MS after every request.
   */
  #lingerTimer: NodeJS.Timeout | null = null;

  constructor(server: OneRequestServer, socket: Socket) {
    this.#server = server;
    this.#socket = socket;
    this.#options = server.options;
    this.#name = server.protocol.name;
    this.#reader = server.protocol.createReader(this.#options.maxHeaderBytes);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!PEER_GONE_CODES.has(error.code ?? '')) this.#server.peerLog.write('connection error', `tsgi: ${this.#name}: connection error (${error.message})`);
      // Now, not at 'close': that comes a loop turn later, after a blocked write has already seen the error.
      if (!this.#finished) this.#abortRequest(new AbortError(`${this.#name}: the web server closed the connection (${error.code ?? error.message})`));
    });
    socket.on('close', () => this.#onClose());
    const headerTimeoutMs = this.#options.headerTimeoutMs;
    if (headerTimeoutMs > 0) this.#timer = setTimeout(() => this.#onHeaderTimeout(), headerTimeoutMs).unref();
  }

  #clearTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** No complete head within headerTimeoutMs of the accept: logged (rate-limited), 408 if a head was begun, closed. */
  #onHeaderTimeout(): void {
    this.#timer = null;
    if (this.#reader === null || this.#finished) return;
    const options = this.#options;
    const seconds = options.headerTimeoutMs / 1000;
    this.#server.limitLog.hit(
      'headerTimeoutMs',
      this.#received === 0
        ? `a connection sent nothing for ${seconds} s`
        : `a connection sent ${this.#received} bytes and no complete request head in ${seconds} s`,
      '--header-timeout SECONDS (option headerTimeoutMs)',
    );
    this.#reader = null;
    this.#finished = true;
    const socket = this.#socket;
    if (this.#received === 0 || socket.destroyed) {
      // Nothing was asked: nobody to answer.
      socket.destroy();
      return;
    }
    // A web server that began a request waits for an answer. The peer has stopped sending (nothing unread to
    // turn the close into a reset), so no lingering: closed once the page is out.
    const page = Buffer.from('408 Request Timeout\n');
    const head = this.#server.protocol.formatHead(408, 'Request Timeout', [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(page.length)],
    ]);
    socket.end(Buffer.concat([head, page]), () => socket.destroy());
    // A peer that does not read either: cut after LINGER_MS at most.
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  /**
   * Body bytes stopped arriving for bodyTimeoutMs: the app's read fails with an InputError (408), its answer
   * (if it gives one) is sent and the connection closes. A socket paused because the app reads slowly does not
   * count: the timer is ignored then and re-armed on resume.
   */
  #onBodyTimeout(): void {
    if (this.#finished || this.#remaining === 0 || this.#paused) return;
    this.#timer = null;
    const seconds = this.#options.bodyTimeoutMs / 1000;
    this.#server.limitLog.hit(
      'bodyTimeoutMs',
      `a request body stopped arriving for ${seconds} s (${this.#remaining} of its CONTENT_LENGTH bytes missing)`,
      '--body-timeout SECONDS (option bodyTimeoutMs)',
    );
    this.#remaining = 0;
    this.#queue?.fail(new InputError(`${this.#name}: the request body stopped arriving (no bytes for ${seconds} s)`, 408));
  }

  #onData(chunk: Buffer): void {
    const reader = this.#reader;
    if (reader !== null) {
      this.#received += chunk.length;
      let head: OneRequestHead | null;
      try {
        head = reader.push(chunk);
      } catch (error) {
        this.#reader = null;
        this.#refuse(error);
        return;
      }
      if (head === null) return;
      this.#reader = null;
      this.#clearTimer();
      this.#start(head);
      if (head.rest.length > 0) this.#feed(head.rest);
      return;
    }
    this.#feed(chunk);
  }

  /** Body bytes: queued for the app up to CONTENT_LENGTH; anything after it, or after the end, is dropped. */
  #feed(chunk: Uint8Array): void {
    const queue = this.#queue;
    if (queue === null || this.#remaining === 0) {
      if (chunk.length > 0) this.#overran = true;
      return;
    }
    const take = Math.min(this.#remaining, chunk.length);
    if (take < chunk.length) this.#overran = true;
    queue.push(take === chunk.length ? chunk : chunk.subarray(0, take));
    this.#remaining -= take;
    if (this.#remaining === 0) {
      this.#inputDone = true;
      queue.end();
      this.#clearTimer();
    } else if (this.#timer !== null) this.#timer.refresh();
    if (this.#remaining > 0 && !this.#paused && queue.queued > this.#options.inputHighWaterBytes) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#socket.resume();
    // The peer gets a whole bodyTimeoutMs from now (the timer may have fired, ignored, while paused).
    this.#timer?.refresh();
  }

  #onEnd(): void {
    if (this.#reader !== null) {
      // The web server hung up before a whole head: nothing to answer.
      if (this.#received > 0) this.#server.peerLog.write('cut head', `tsgi: ${this.#name}: connection closed inside the request head (${this.#received} bytes)`);
      this.#reader = null;
      this.#finished = true;
      this.#socket.destroy();
      return;
    }
    // A body cut short: the app's next read fails with an InputError (fewer bytes than CONTENT_LENGTH). Nothing
    // more can arrive, so there is no stall left to time.
    if (this.#remaining > 0) {
      this.#clearTimer();
      this.#queue?.end();
    }
    if (this.#finished) this.#socket.destroySoon();
  }

  #onClose(): void {
    this.#clearTimer();
    if (this.#lingerTimer !== null) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = null;
    }
    if (!this.#finished) this.#abortRequest(new AbortError(`${this.#name}: the web server closed the connection`));
    this.#finished = true;
  }

  #abortRequest(reason: Error): void {
    if (this.#abort.reason !== null) return;
    this.#abort.abort(reason);
    this.#queue?.fail(reason);
  }

  /** A malformed head: logged, answered 400 (nothing was sent yet and the socket still works), closed. */
  #refuse(error: unknown): void {
    this.#server.peerLog.write('malformed head', `tsgi: ${error instanceof ProtocolError ? error.message : describeError(error)}`);
    this.#finished = true;
    this.#writeErrorPage(statusOfError(error) === 502 ? 400 : statusOfError(error));
  }

  #writeErrorPage(code: number): void {
    const reason = STATUS_TEXT[code] ?? 'Error';
    const page = Buffer.from(`${code} ${reason}\n`);
    const head = this.#server.protocol.formatHead(code, reason, [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(page.length)],
    ]);
    this.#socket.end(Buffer.concat([head, page]));
    this.#linger();
  }

  /** Keeps reading (and dropping) what the web server still sends until it closes, at most LINGER_MS. */
  #linger(): void {
    const socket = this.#socket;
    this.#paused = false;
    socket.resume();
    if (socket.readableEnded) {
      socket.destroySoon();
      return;
    }
    socket.once('finish', () => {
      if (!socket.destroyed) this.#lingerTimer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    });
  }

  #start(head: OneRequestHead): void {
    const options = this.#options;
    const variables = head.variables;
    if (options.mount !== null) applyMount(variables, options.mount);
    else if (variables.SCRIPT_NAME === undefined && variables.PATH_INFO === undefined) applyMount(variables, '/');
    const declared = variables.HTTP_CONTENT_LENGTH;
    if (declared !== undefined && /^[0-9]+$/.test(declared) && Number(declared) > head.contentLength && variables.HTTP_TRANSFER_ENCODING === undefined) {
      // nginx 1.22 with scgi_request_buffering off sends as CONTENT_LENGTH only the body bytes it had read so
      // far: running the app would hand it a silently truncated body. (A longer CONTENT_LENGTH is left alone: an
      // input filter such as mod_deflate's may have inflated the body.)
      options.errors.write(
        `tsgi: ${this.#name}: CONTENT_LENGTH is shorter than the Content-Length request header (${head.contentLength} < ${declared}); ` +
          'behind nginx over SCGI, keep scgi_request_buffering on\n',
      );
      this.#finished = true;
      this.#writeErrorPage(502);
      return;
    }
    if (head.contentLength > options.maxBodyBytes) {
      this.#server.limitLog.hit(
        'maxBodyBytes',
        `a request body of ${head.contentLength} bytes was answered 413 (over ${options.maxBodyBytes})`,
        '--max-body SIZE (option maxBodyBytes)',
      );
      this.#finished = true;
      this.#writeErrorPage(413);
      return;
    }
    this.#remaining = head.contentLength;
    this.#inputDone = head.contentLength === 0;
    if (head.contentLength > 0) {
      this.#queue = new ByteQueue(() => this.#resume(), options.inputHighWaterBytes / 2);
      if (options.bodyTimeoutMs > 0) this.#timer = setTimeout(() => this.#onBodyTimeout(), options.bodyTimeoutMs).unref();
    }
    const scheme = variables.UWSGI_SCHEME?.toLowerCase() === 'https' ? 'https' : schemeOf(variables);
    this.#active = true;
    this.#server.activeRequests++;
    let run: Promise<RunResult>;
    try {
      const environ = createEnviron({
        variables,
        input: this.#queue,
        errors: options.errors,
        signal: this.#abort,
        ownsVariables: true,
        urlScheme: scheme,
        multithread: true,
        multiprocess: options.multiprocess,
        forwarded: options.forwarded,
        runOnce: false,
      });
      run = runApp(this.#server.app, environ, this, { abort: this.#abort });
    } catch (error) {
      // createEnviron refused the request: answer it without running the app.
      options.errors.write(`tsgi: ${describeError(error)}\n`);
      run = refuseRequest(this, error, variables.REQUEST_METHOD === 'HEAD');
    }
    run.then(
      () => this.#done(),
      (error: unknown) => {
        options.errors.write(`tsgi: ${this.#name} request failed: ${describeError(error)}\n`);
        this.#socket.destroy();
        this.#done();
      },
    );
  }

  #done(): void {
    if (this.#active) {
      this.#active = false;
      this.#server.activeRequests--;
    }
    if (!this.#finished) {
      // The sink ended without end() or abort(): never leave the web server waiting.
      this.#finished = true;
      this.#socket.destroy();
    }
  }

  // The ResponseSink runApp writes to: the connection itself (no sink object, no closures per request).

  #gone(): Error {
    return this.#abort.reason ?? new AbortError(`${this.#name}: the connection is closed`);
  }

  /**
   * Holds the head back, so a small response leaves in one write with its body (runApp never changes the
   * headers array once it gave it here).
   */
  sendHead(code: number, reason: string, headers: Header[]): void {
    if (this.#finished) throw this.#gone();
    this.#headCode = code;
    this.#headReason = reason;
    this.#headHeaders = headers;
  }

  /** Sends a head still held back (the app asked for it before any body byte: runApp's flush). */
  flush(): void {
    if (this.#headHeaders === null || this.#finished || this.#socket.destroyed) return;
    this.#send(EMPTY, false);
  }

  /** Body bytes (with the head when it is still held back); a promise while the socket wants a drain. */
  write(chunk: Uint8Array): void | Promise<void> {
    const socket = this.#socket;
    if (this.#finished || socket.destroyed) throw this.#gone();
    this.#send(chunk, false);
    if (!socket.writableNeedDrain) return;
    return waitForDrain(socket, this.#abort.signal).then((drained) => {
      if (drained) return;
      if (!this.#finished) this.#abortRequest(new AbortError(`${this.#name}: the web server closed the connection`));
      throw this.#gone();
    });
  }

  /** The last body bytes and the end: head, body and the FIN leave together (runApp's endWith). */
  endWith(chunk: Uint8Array): void {
    if (this.#finished || this.#socket.destroyed) throw this.#gone();
    this.#finish();
    this.#send(chunk, true);
    this.#close();
  }

  /** The response is complete: the head if it is still held back, then the FIN. */
  end(): void {
    if (this.#finished) return;
    this.#finish();
    this.#send(EMPTY, true);
    this.#close();
  }

  /** The response failed after its head was sent. */
  abort(): void {
    if (this.#finished) return;
    this.#finish();
    this.#queue?.fail(new AbortError(`${this.#name}: the request has ended`));
    // After the head, the only way to tell the web server the body is incomplete is to cut the connection; a
    // reset (not a FIN) makes it a failed response rather than a short one.
    const socket = this.#socket;
    if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed && !socket.connecting) socket.resetAndDestroy();
    else socket.destroy();
  }

  /**
   * Writes `chunk` (possibly empty), after the head when it is still held back, and ends the response (FIN)
   * when `last`. A small head and chunk leave as one buffer (one plain write is cheaper than a corked writev),
   * the head written straight into it (or copied, when it is the head written last) when the protocol's heads
   * are CGI heads; else the two are corked.
   */
  #send(chunk: Uint8Array, last: boolean): void {
    const socket = this.#socket;
    let bytes = chunk;
    let corked = false;
    const headers = this.#headHeaders;
    if (headers !== null) {
      this.#headHeaders = null;
      const code = this.#headCode;
      const reason = this.#headReason;
      const cgiHead = this.#server.protocol.cgiHead;
      const nph = cgiHead?.nph;
      const cachedLength = cgiHead === undefined ? -1 : HEAD_CACHE.lengthOf(code, reason, headers, nph);
      const headLength = cachedLength >= 0 || cgiHead === undefined ? cachedLength : cgiHeadLength(code, reason, headers, nph);
      if (headLength >= 0 && headLength + chunk.length <= COMBINE_LIMIT_BYTES) {
        bytes = Buffer.allocUnsafe(headLength + chunk.length);
        let end: number;
        if (cachedLength >= 0) end = HEAD_CACHE.copyTo(bytes, 0);
        else {
          end = writeCgiHead(bytes, 0, code, reason, headers, nph);
          HEAD_CACHE.store(code, reason, headers, nph, bytes.subarray(0, end));
        }
        bytes.set(chunk, end);
      } else {
        const head = this.#server.protocol.formatHead(code, reason, headers);
        if (head.length + chunk.length <= COMBINE_LIMIT_BYTES) {
          bytes = Buffer.allocUnsafe(head.length + chunk.length);
          bytes.set(head, 0);
          bytes.set(chunk, head.length);
        } else {
          socket.cork();
          corked = true;
          socket.write(head);
        }
      }
    }
    if (last) {
      if (bytes.length > 0) socket.end(bytes);
      else socket.end();
    } else if (bytes.length > 0) socket.write(bytes);
    if (corked) socket.uncork();
  }

  /** The response is complete or abandoned: nothing more is written, no timeout applies any more. */
  #finish(): void {
    this.#finished = true;
    this.#clearTimer();
  }

  /**
   * After the FIN: a request read to its last byte has nothing more coming, so the socket is closed as soon
   * as the answer is written, as node:http does after `Connection: close`. Otherwise (the app answered before
   * its body arrived, or the peer sent more than it announced), the connection lingers: closing with unread
   * bytes would send a reset that can destroy the answer in flight.
   */
  #close(): void {
    // The input is over too: drop what the app left unread.
    this.#queue?.fail(new AbortError(`${this.#name}: the request has ended`));
    if (this.#inputDone && !this.#overran) this.#socket.destroySoon();
    else this.#linger();
  }
}
