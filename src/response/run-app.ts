import { AbortError, AppError, describeError, statusOfError } from '../errors.js';
import { STATUS_TEXT } from '../helpers/status-text.js';
import type { App, Body, Chunk, Environ, Header, StartResponse, Write } from '../types.js';
import { isThenable } from '../thenable.js';
import { checkHeaders, isBodylessStatus, parseStatus, type HeaderFacts } from './status.js';

/**
 * What a transport supplies to `runApp`: where the head and the body bytes go. Each method may return a
 * promise; `runApp` waits for it before producing more (backpressure).
 */
export interface ResponseSink {
  /**
   * Sends the status and headers. Called exactly once, before any body byte. `facts` (from runApp, not from an
   * error page) says what checkHeaders found in `headers`, so that the sink need not scan them again.
   */
  sendHead(code: number, reason: string, headers: Header[], facts?: Readonly<HeaderFacts>): void | Promise<void>;
  /** Sends body bytes (never empty). */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Ends a response that completed. */
  end(): void | Promise<void>;
  /**
   * Optional: sends the last body bytes (never empty) and ends the response, in one step (`write` then `end`
   * otherwise). runApp uses it for the last chunk of an array body, so a transport can send a small response
   * in one write without waiting for the end of the tick to know it was the last.
   */
  endWith?(chunk: Uint8Array): void | Promise<void>;
  /** Ends a response that failed after its head was sent: the transport must signal the failure (cut it). */
  abort(error: unknown): void | Promise<void>;
  /**
   * Optional: the app asked for its head to leave now, before any body byte (an empty chunk, or `write('')`,
   * while the head is still held: docs/SPEC.md 4.1). Called right after sendHead. A transport that holds the
   * head back to join it with the first body bytes sends it now; one that sends the head at once needs none.
   */
  flush?(): void | Promise<void>;
}

/** How one run ended. */
export interface RunResult {
  /** The status sent, or 0 when nothing was sent (client gone before the head). */
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** True when the response completed as the app meant it to. */
  ok: boolean;
  /** True when the head went out but the body could not be completed (the transport was told to abort). */
  failedAfterHead: boolean;
  /** True when the client went away. */
  aborted: boolean;
  /** The error that ended the run, if any. */
  error?: unknown;
}

/** Options for `runApp`. */
export interface RunOptions {
  /** Skip the body (HEAD). Default: REQUEST_METHOD === "HEAD". */
  head?: boolean;
  /**
   * Tells whether the client went away, and why. Default: `environ['tsgi.signal']`. A transport that creates
   * the signal only when the app asks for it passes its own flag here, so runApp never forces it into being.
   */
  abortReason?: () => Error | null;
  /**
   * The same as `abortReason`, as an object whose `reason` is read instead (a LazyAbort): saves a closure per
   * request. Takes precedence over `abortReason`.
   */
  abort?: { readonly reason: Error | null };
}

const encoder = new TextEncoder();

/**
 * True for a body chunk that puts bytes on the wire: a non-empty string or Uint8Array. (An empty one only asks
 * for the head to leave, SPEC 4.1; anything else is an error chunkToBytes reports.) Middleware that must know
 * whether the response has begun (the error handler, the timeout supervisor) watches chunks with this.
 */
export function carriesBytes(chunk: unknown): boolean {
  return (typeof chunk === 'string' || chunk instanceof Uint8Array) && chunk.length > 0;
}

/** Converts a body chunk to bytes (strings are UTF-8). Throws AppError for anything else. */
export function chunkToBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return chunk.length === 0 ? new Uint8Array(0) : Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return chunk;
  throw new AppError(`response: body chunks must be Uint8Array or string (${Object.prototype.toString.call(chunk)})`);
}

/**
 * Runs one request through an app and sends the response to `sink`: the state machine every transport shares.
 * - startResponse records status and headers; they go out with the first non-empty chunk, or at the end.
 * - An error before the head is sent becomes a plain error page (500, or the error's 4xx status), the details
 *   go to `tsgi.errors`; after the head, it is logged and the sink is told to abort.
 * - The body's `close()` runs exactly once, however the run ends.
 * - A declared Content-Length is enforced: extra bytes are dropped (logged), missing bytes fail the response.
 *   One that is not digits, or two that differ, make startResponse throw (checkHeaders): such a head never
 *   reaches any transport, the app gets a 500 unless it catches the error.
 * - A body given as an array with no Content-Length gets one computed; so does an empty body.
 * - HEAD: the body is not iterated (headers are computed the same way).
 * Never throws; the result says how the run ended.
 */
export function runApp(app: App, environ: Environ, sink: ResponseSink, options: RunOptions = {}): Promise<RunResult> {
  const abort = options.abort ?? null;
  const abortReason = abort !== null ? null : (options.abortReason ?? null);
  const run = new ResponseRun(environ, sink, options.head ?? environ.REQUEST_METHOD === 'HEAD', abort, abortReason);
  return run.run(app) ?? Promise.resolve(run.succeeded());
}

/**
 * runApp for a transport on the hot path: the same run, but one that completed within the call (a synchronous
 * app whose sink never asked to wait: the response was sent as the app meant it) returns null instead of a
 * promise of its result, and the client-gone state is given as is (a LazyAbort), not in an options object: no
 * promise, result nor options object per request. Otherwise the promise of the result, as runApp's. `head`
 * defaults to REQUEST_METHOD === "HEAD".
 */
export function runAppEagerly(
  app: App,
  environ: Environ,
  sink: ResponseSink,
  abort: { readonly reason: Error | null },
  head: boolean = environ.REQUEST_METHOD === 'HEAD',
): Promise<RunResult> | null {
  return new ResponseRun(environ, sink, head, abort, null).run(app);
}

/**
 * The state of one runApp call. A class with a synchronous fast path: when the sink takes bytes without asking
 * to wait (returns nothing), no promise is made per chunk — the hot path of every small response.
 */
class ResponseRun implements HeaderFacts {
  /** HeaderFacts of the pending headers (checkHeaders fills them in; runApp updates them when it adds a Content-Length). */
  contentLength: string | undefined = undefined;
  transferEncoding = false;
  hopByHop = false;
  wide = false;
  readonly #environ: Environ;
  readonly #sink: ResponseSink;
  readonly #isHead: boolean;
  readonly #abortReason: (() => Error | null) | null;
  readonly #abort: { readonly reason: Error | null } | null;
  /** True once startResponse was called: #code, #reason and #headers are the pending head. */
  #started = false;
  #code = 0;
  #reason = '';
  /**
   * The pending headers: a copy of the app's list, taken when startResponse checked it, so that what the app
   * does to its list afterwards (push a field, replace a pair) neither escapes the check nor reaches the head.
   */
  #headers: Header[] = NO_HEADERS;
  #headSent = false;
  #declaredLength: number | null = null;
  #bytes = 0;
  #overflowLogged = false;
  #body: Body | undefined = undefined;
  #closed = false;
  /** True while the last chunk of an array body is sent: it is kept for sink.endWith instead of written. */
  #holdLast = false;
  /** The last body bytes, kept for sink.endWith. */
  #lastPart: Uint8Array | null = null;

  constructor(
    environ: Environ,
    sink: ResponseSink,
    isHead: boolean,
    abort: { readonly reason: Error | null } | null,
    abortReason: (() => Error | null) | null,
  ) {
    this.#environ = environ;
    this.#sink = sink;
    this.#isHead = isHead;
    this.#abort = abort;
    this.#abortReason = abortReason;
  }

  /** Why the client went away, or null while it is there. */
  #gone(): Error | null {
    if (this.#abort !== null) return this.#abort.reason;
    if (this.#abortReason !== null) return this.#abortReason();
    return signalReason(this.#environ['tsgi.signal']);
  }

  readonly write: Write = async (chunk: Chunk) => {
    if (!this.#started) throw new AppError('response: write() called before startResponse');
    await this.#sendBytes(chunkToBytes(chunk));
  };

  readonly startResponse: StartResponse = (status, headers, excInfo) => {
    if (excInfo !== undefined && excInfo !== null) {
      if (this.#headSent) throw excInfo;
    } else if (this.#started) {
      throw new AppError('response: startResponse called twice without excInfo');
    }
    const { code, reason } = parseStatus(status);
    const checked = checkHeaders(headers, this);
    this.#code = code;
    this.#reason = reason || (STATUS_TEXT[code] ?? '');
    this.#headers = checked.slice();
    this.#started = true;
    return this.write;
  };

  /**
   * Runs the app and sends its response. Synchronous as long as nothing asks to wait (the app returns its body,
   * the sink takes the bytes): then it returns null, the run succeeded (see succeeded()). From the first thing
   * that does ask, the rest of the run continues in #runAsync (the same steps, awaited): its promise is returned.
   */
  run(app: App): Promise<RunResult> | null {
    try {
      const body = app(this.#environ, this.startResponse);
      // Most apps answer synchronously: awaiting a body that is no promise would only cost a turn.
      if (isThenable(body)) return this.#runAsync(body, -1, null);
      const isAsync = this.#takeBody(body);
      if (!this.#isHead) {
        if (isAsync || !isPlainArray(body)) return this.#runAsync(body, 0, null);
        // The common body: an array, walked by index (no iterator object). The length is read on every step, as
        // for...of does. Its last chunk goes out with the end when the sink can do that.
        const endWith = typeof this.#sink.endWith === 'function';
        for (let i = 0; i < body.length; i++) {
          this.#holdLast = endWith && i === body.length - 1;
          const waiting = this.#sendChunk(body[i] as Chunk);
          if (waiting) return this.#runAsync(body, i + 1, waiting);
        }
        this.#holdLast = false;
      }
      const done = this.#complete();
      return done === null ? null : this.#recoverFrom(done);
    } catch (error) {
      return this.#recover(error);
    }
  }

  /**
   * The run from the first step that asked to wait: `body` is the app's answer (a promise of it when `from` is
   * -1), `from` the index of the next chunk of an array body (0 for any other body), `waiting` what the step
   * before asked to wait for.
   */
  async #runAsync(answer: unknown, from: number, waiting: Promise<void> | null): Promise<RunResult> {
    try {
      let body = answer;
      if (from < 0) {
        body = await answer;
        from = 0;
        if (this.#takeBody(body) || !isPlainArray(body)) return await this.#sendIterated(body);
      } else if (waiting) {
        await waiting;
      }
      if (!this.#isHead && isPlainArray(body)) {
        const endWith = typeof this.#sink.endWith === 'function';
        for (let i = from; i < body.length; i++) {
          this.#holdLast = endWith && i === body.length - 1;
          const next = this.#sendChunk(body[i] as Chunk);
          if (next) await next;
        }
        this.#holdLast = false;
      } else if (!this.#isHead) {
        return await this.#sendIterated(body);
      }
      return (await this.#complete()) ?? this.succeeded();
    } catch (error) {
      return this.#recover(error);
    }
  }

  /** Sends a body that is not a plain array (a sync or async iterable: #takeBody checked it), then completes. */
  async #sendIterated(body: unknown): Promise<RunResult> {
    if (!this.#isHead) {
      if (typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function') {
        for await (const chunk of body as AsyncIterable<Chunk>) {
          const waiting = this.#sendChunk(chunk);
          if (waiting) await waiting;
        }
      } else {
        for (const chunk of body as Iterable<Chunk>) {
          const waiting = this.#sendChunk(chunk);
          if (waiting) await waiting;
        }
      }
    }
    return (await this.#complete()) ?? this.succeeded();
  }

  /**
   * Checks what the app returned and keeps it (for close()); adds the length of an array body. Returns true for
   * an async iterable. Throws AppError for anything that is no iterable of chunks.
   */
  #takeBody(body: unknown): boolean {
    this.#body = body as Body;
    if (body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      throw new AppError('response: an app must return an iterable of chunks, not a string, bytes or nothing');
    }
    const iterable = body as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
    const isAsync = typeof iterable[Symbol.asyncIterator] === 'function';
    if (!isAsync && typeof iterable[Symbol.iterator] !== 'function') {
      throw new AppError('response: an app must return a sync or async iterable');
    }
    if (Array.isArray(body) && this.#started) this.#addLengthOfArray(body);
    return isAsync;
  }

  /**
   * The end of a run whose body was sent: the head if it has not left, the Content-Length check, the body's
   * close(), the sink's end. Synchronous (null: it succeeded) unless a step asks to wait (then the promise of
   * the result). Throws what a step throws.
   */
  #complete(): Promise<RunResult> | null {
    if (!this.#started) throw new AppError('response: the app returned without calling startResponse');
    if (!this.#headSent && !this.#isHead) this.#addEmptyLength();
    const head = this.#sendHead();
    if (head) return head.then(() => this.#completeAfterHead() ?? this.succeeded());
    return this.#completeAfterHead();
  }

  #completeAfterHead(): Promise<RunResult> | null {
    const declared = this.#declaredLength;
    if (!this.#isHead && declared !== null && this.#bytes < declared && !isBodylessStatus(this.#code)) {
      throw new AppError(`response: app sent ${this.#bytes} of its Content-Length (${declared}) bytes`);
    }
    const closing = this.#closeBody();
    if (closing) return closing.then(() => this.#endSink() ?? this.succeeded());
    return this.#endSink();
  }

  #endSink(): Promise<RunResult> | null {
    const last = this.#lastPart;
    this.#lastPart = null;
    const ended = last !== null ? (this.#sink.endWith as (chunk: Uint8Array) => void | Promise<void>)(last) : this.#sink.end();
    if (ended) return ended.then(() => this.succeeded());
    return null;
  }

  /** The result of a run that completed as the app meant it. */
  succeeded(): RunResult {
    return { status: this.#code, bytes: this.#bytes, ok: true, failedAfterHead: false, aborted: false };
  }

  /** The result of a run whose completion asked to wait; a failure while waiting ends as any failure does. */
  async #recoverFrom(completion: Promise<RunResult>): Promise<RunResult> {
    try {
      return await completion;
    } catch (error) {
      return this.#recover(error);
    }
  }

  /** A run that failed: bytes kept for the end go out first, the body is closed, then #fail. */
  async #recover(error: unknown): Promise<RunResult> {
    // Bytes kept for the end went out before the failure, as they would have without endWith.
    const last = this.#lastPart;
    this.#lastPart = null;
    if (last !== null && this.#gone() === null) {
      try {
        const waiting = this.#sink.write(last);
        if (waiting) await waiting;
      } catch {
        // The failure below is what the client learns.
      }
    }
    const closing = this.#closeBody();
    if (closing) await closing;
    return this.#fail(error);
  }

  /** One chunk from the body: checks it, then sends it. Returns a promise only when the sink asks to wait. */
  #sendChunk(chunk: Chunk): Promise<void> | void {
    const gone = this.#gone();
    if (gone) throw gone;
    const bytes = chunkToBytes(chunk);
    if (bytes.length > 0 && !this.#started) throw new AppError('response: body produced before startResponse was called');
    return this.#sendBytes(bytes);
  }

  #sendHead(): Promise<void> | void {
    if (this.#headSent) return;
    if (!this.#started) throw new AppError('response: body produced before startResponse was called');
    this.#headSent = true;
    const length = this.contentLength;
    // checkHeaders let through only 1*DIGIT values (and runApp adds only such values).
    this.#declaredLength = length !== undefined ? Number(length) : null;
    return this.#sink.sendHead(this.#code, this.#reason, this.#headers, this);
  }

  #sendBytes(chunk: Uint8Array): Promise<void> | void {
    // An empty chunk before the head went out asks for the head now (SPEC 4.1: server-sent events, long polls).
    if (chunk.length === 0) return this.#headSent || !this.#started ? undefined : this.#flushHead();
    if (!this.#headSent) {
      const head = this.#sendHead();
      if (head) return head.then(() => this.#sendBody(chunk));
    }
    return this.#sendBody(chunk);
  }

  /** Sends the head now, and tells the sink not to hold it back. */
  #flushHead(): Promise<void> | void {
    const head = this.#sendHead();
    const sink = this.#sink;
    if (typeof sink.flush !== 'function') return head;
    if (head) return head.then(() => sink.flush?.());
    return sink.flush();
  }

  #sendBody(chunk: Uint8Array): Promise<void> | void {
    if (this.#isHead || (this.#started && isBodylessStatus(this.#code))) return;
    const gone = this.#gone();
    if (gone) throw gone;
    let part = chunk;
    const declared = this.#declaredLength;
    if (declared !== null && this.#bytes + part.length > declared) {
      part = part.subarray(0, declared - this.#bytes);
      if (!this.#overflowLogged) {
        this.#overflowLogged = true;
        this.#environ['tsgi.errors'].write(`tsgi: app sent more than its Content-Length (${declared}); the rest was dropped\n`);
      }
      if (part.length === 0) return;
    }
    this.#bytes += part.length;
    if (this.#holdLast) {
      this.#lastPart = part;
      return;
    }
    return this.#sink.write(part);
  }

  /** A body given as an array, with no Content-Length nor Transfer-Encoding: its length is added. */
  #addLengthOfArray(body: readonly unknown[]): void {
    if (isBodylessStatus(this.#code) || this.contentLength !== undefined || this.transferEncoding) return;
    let total = 0;
    for (const chunk of body) {
      if (typeof chunk === 'string') total += Buffer.byteLength(chunk, 'utf8');
      else if (chunk instanceof Uint8Array) total += chunk.length;
      else return;
    }
    this.#addLength(String(total));
  }

  /** An empty body (nothing sent before the end) with no Content-Length nor Transfer-Encoding: "0" is added. */
  #addEmptyLength(): void {
    if (isBodylessStatus(this.#code) || this.contentLength !== undefined || this.transferEncoding) return;
    this.#addLength('0');
  }

  /** Adds Content-Length to the pending headers (runApp's copy: the app's own list is never changed). */
  #addLength(value: string): void {
    this.#headers.push(['Content-Length', value]);
    this.contentLength = value;
  }

  /** Calls the body's close() once; returns a promise only when there is one to call. */
  #closeBody(): Promise<void> | void {
    const body = this.#body;
    if (this.#closed || !body || typeof body.close !== 'function') return;
    this.#closed = true;
    return this.#callClose(body as { close(): void | Promise<void> });
  }

  async #callClose(body: { close(): void | Promise<void> }): Promise<void> {
    try {
      await body.close();
    } catch (error) {
      this.#environ['tsgi.errors'].write(`tsgi: body.close() failed: ${describeError(error)}\n`);
    }
  }

  async #fail(error: unknown): Promise<RunResult> {
    const sink = this.#sink;
    const headSent = this.#headSent;
    const bytes = this.#bytes;
    if (this.#gone() !== null) {
      try {
        await sink.abort(error);
      } catch {
        // The client is gone; nothing left to tell it.
      }
      const status = headSent && this.#started ? this.#code : 0;
      return { status, bytes, ok: false, aborted: true, failedAfterHead: headSent, error };
    }
    const errors = this.#environ['tsgi.errors'];
    errors.write(`tsgi: ${headSent ? 'app failed after the response head was sent' : 'app failed'}: ${describeError(error)}\n`);
    if (headSent) {
      try {
        await sink.abort(error);
      } catch {
        // Aborting is the last resort already.
      }
      return { status: this.#started ? this.#code : 0, bytes, ok: false, failedAfterHead: true, aborted: false, error };
    }
    const code = statusOfError(error);
    try {
      await sendErrorPage(sink, code, this.#isHead);
    } catch (sinkError) {
      errors.write(`tsgi: could not send the error page: ${describeError(sinkError)}\n`);
      return { status: 0, bytes: 0, ok: false, failedAfterHead: false, aborted: false, error };
    }
    return { status: code, bytes: 0, ok: false, failedAfterHead: false, aborted: false, error };
  }
}

/** The pending headers of a run before startResponse (never changed: #addLength runs only after it). */
const NO_HEADERS: Header[] = Object.freeze([]) as unknown as Header[];

const arrayIterator = Array.prototype[Symbol.iterator];

/** An array whose iteration is the built-in one (for...of would walk it index by index). */
function isPlainArray(body: unknown): body is readonly unknown[] {
  return Array.isArray(body) && (body as unknown[])[Symbol.iterator] === arrayIterator;
}


function signalReason(signal: AbortSignal): Error | null {
  if (!signal.aborted) return null;
  return signal.reason instanceof Error ? signal.reason : new AbortError();
}

/**
 * Answers a request that was refused before its app could run (createEnviron threw: a bad CONTENT_LENGTH, say)
 * with the error's status page, and reports it as a RunResult like runApp's.
 */
export async function refuseRequest(sink: ResponseSink, error: unknown, head: boolean): Promise<RunResult> {
  const status = statusOfError(error);
  await sendErrorPage(sink, status, head);
  return { status, bytes: 0, ok: false, failedAfterHead: false, aborted: false, error };
}

/** Sends a minimal plain-text page for `code` ("500 Internal Server Error\n") and ends the response. */
export async function sendErrorPage(sink: ResponseSink, code: number, head = false): Promise<void> {
  const reason = STATUS_TEXT[code] ?? 'Error';
  const page = encoder.encode(`${code} ${reason}\n`);
  await sink.sendHead(code, reason, [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(page.length)],
  ]);
  if (!head) await sink.write(page);
  await sink.end();
}
