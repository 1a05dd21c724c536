import type { App, Body, Chunk, Environ, Header, StartResponse } from '../../types.js';

/** What a worker learns about a request that timed out. */
export interface TimeoutInfo {
  method: string;
  /** REQUEST_URI, else SCRIPT_NAME + PATH_INFO (+ "?" QUERY_STRING). */
  uri: string;
  /** The --timeout that was exceeded, in seconds. */
  seconds: number;
  /** True when part of the response had gone out: it was cut instead of answered with 504. */
  sent: boolean;
  /** What the request was waiting for: the app's response (its promise) or the next chunk of its body. */
  waitingFor: 'response' | 'body';
}

/** Options for superviseApp. */
export interface SuperviseOptions {
  /**
   * The app may keep a request waiting at most this long (its response, or the next chunk of its body, or a
   * write); then the request gets 504 if nothing was sent yet, else is cut. 0 = no limit.
   */
  timeoutMs: number;
  /** Called at the start of every request with the number of requests so far (this one included). */
  onRequest?: (served: number) => void;
  /** Called once per request that timed out. */
  onTimeout?: (info: TimeoutInfo, environ: Environ) => void;
  /**
   * A request still running this long (ms) is slow: onSlow is called once for it, and it goes on (--slow-log).
   * 0 = off. Default 0.
   */
  slowMs?: number;
  onSlow?: (request: RunningRequest) => void;
  /** Keep the requests in flight for running() (the status page). Default false. */
  trackRunning?: boolean;
}

/** A request in flight, as the status page and the slow log show it. */
export interface RunningRequest {
  method: string;
  /** REQUEST_URI, else SCRIPT_NAME + PATH_INFO (+ "?" QUERY_STRING). */
  uri: string;
  /** Date.now() when the app was called. */
  started: number;
}

/** An app under supervision and its counters. */
export interface SupervisedApp {
  app: App;
  /** Requests started so far. */
  served(): number;
  /** Requests started and not finished (a request finishes when the server closes its body). */
  inFlight(): number;
  /** The requests in flight, oldest first (empty unless trackRunning or slowMs is set). */
  running(): RunningRequest[];
  /** Requests that were slow (slowMs) so far. */
  slow(): number;
}

/** The error a timed-out request ends with; `status` 504 says what it means to an error handler. */
export class GatewayTimeoutError extends Error {
  readonly status = 504;
  constructor(message: string) {
    super(message);
    this.name = 'GatewayTimeoutError';
  }
}

/**
 * Wraps an app for a worker: counts requests, tracks the ones in flight (until the server calls the body's
 * close(), which docs/SPEC.md guarantees exactly once), and enforces the per-request timeout on asynchronous
 * waits. A request whose app keeps it waiting past the timeout (a promise that never settles, a body that
 * yields nothing) gets `504 Gateway Timeout` if none of its response was sent yet — through startResponse's
 * excInfo, so any head the app had set is replaced — or is cut (the server aborts it) if it was.
 *
 * The body keeps its shape for the server: an array stays an array (Content-Length is still computed), a
 * sync iterable stays sync. Only an async body is guarded chunk by chunk, and only when a timeout is set.
 * A synchronous busy loop cannot be interrupted from inside the thread; the worker's watchdog handles it.
 */
export function superviseApp(app: App, options: SuperviseOptions): SupervisedApp {
  let served = 0;
  let inFlight = 0;
  let slow = 0;
  const slowMs = options.slowMs ?? 0;
  const tracking = options.trackRunning === true || slowMs > 0;
  const running = new Set<RunningRequest>();
  const supervised: App = (environ, startResponse) => {
    served++;
    inFlight++;
    let done = false;
    let entry: RunningRequest | null = null;
    let slowTimer: NodeJS.Timeout | null = null;
    if (tracking) {
      const request: RunningRequest = { method: String(environ.REQUEST_METHOD), uri: requestUri(environ), started: Date.now() };
      entry = request;
      running.add(request);
      if (slowMs > 0) {
        slowTimer = setTimeout(() => {
          slowTimer = null;
          if (done) return;
          slow++;
          try {
            options.onSlow?.(request);
          } catch {
            // A hook must not fail the request.
          }
        }, slowMs);
        slowTimer.unref();
      }
    }
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight--;
      if (entry !== null) running.delete(entry);
      if (slowTimer !== null) clearTimeout(slowTimer);
    };
    try {
      options.onRequest?.(served);
    } catch {
      // A hook must not fail the request.
    }
    if (options.timeoutMs > 0) return timedRequest(app, environ, startResponse, options, finish);
    let result: Body | Promise<Body>;
    try {
      result = app(environ, startResponse);
    } catch (error) {
      finish();
      throw error;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (body) => trackBody(body, finish),
        (error: unknown) => {
          finish();
          throw error;
        },
      );
    }
    return trackBody(result, finish);
  };
  return { app: supervised, served: () => served, inFlight: () => inFlight, running: () => [...running], slow: () => slow };
}

function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function isAsyncBody(body: Body): body is AsyncIterable<Chunk> & { close?: () => void | Promise<void> } {
  return typeof (body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator] === 'function';
}

/** True for what the server can iterate; anything else is an app error the server reports itself. */
function isIterableBody(body: unknown): body is Body {
  if (body === null || typeof body !== 'object' || body instanceof Uint8Array) return false;
  return (
    typeof (body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator] === 'function' ||
    typeof (body as Partial<Iterable<Chunk>>)[Symbol.iterator] === 'function'
  );
}

/** Calls body.close() (if any), then `finish`, even when close() throws or rejects. */
function closeThenFinish(body: Body, finish: () => void): () => void | Promise<void> {
  return () => {
    let result: void | Promise<void>;
    try {
      result = typeof body.close === 'function' ? body.close() : undefined;
    } catch (error) {
      finish();
      throw error;
    }
    if (isThenable(result)) return Promise.resolve(result).finally(finish);
    finish();
    return result;
  };
}

/** The same body for the server, with a close() that also marks the request finished. */
function trackBody(body: Body, finish: () => void): Body {
  if (!isIterableBody(body)) {
    // Not a body: the server answers 500 and will not call close(); the request ends now.
    finish();
    return body;
  }
  const close = closeThenFinish(body, finish);
  if (Array.isArray(body)) {
    // A copy, so an array the app reuses across requests is never changed; still an array for the server.
    const copy = body.slice() as Chunk[] & { close?: () => void | Promise<void> };
    copy.close = close;
    return copy;
  }
  if (isAsyncBody(body)) return { [Symbol.asyncIterator]: () => body[Symbol.asyncIterator](), close };
  const iterable = body as Iterable<Chunk>;
  return { [Symbol.iterator]: () => iterable[Symbol.iterator](), close };
}

function closeQuietly(body: unknown): void {
  if (!isIterableBody(body) || typeof body.close !== 'function') return;
  try {
    const result = body.close();
    if (isThenable(result)) Promise.resolve(result).catch(() => {});
  } catch {
    // The request is over; nothing to report to.
  }
}

/**
 * Measures how long the app keeps a request waiting. Each wait (the app's promise, the next body chunk)
 * starts the clock again; a write() during a wait counts as progress. One timer per request, re-armed lazily.
 */
class RequestClock {
  /** True once a non-empty chunk went to the server (the head is committed). */
  sent = false;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #waitingSince = 0;
  #reject: ((error: unknown) => void) | null = null;
  #stopped = false;
  readonly #makeError: () => Error;

  constructor(timeoutMs: number, makeError: () => Error) {
    this.#timeoutMs = timeoutMs;
    this.#makeError = makeError;
  }

  /** Resolves as `promise` does, or rejects with the timeout error when it takes too long. */
  wait<T>(promise: PromiseLike<T>): Promise<T> {
    if (this.#stopped) return Promise.resolve(promise);
    this.#waitingSince = Date.now();
    this.#arm(this.#timeoutMs);
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      promise.then(
        (value) => {
          this.#settle();
          resolve(value);
        },
        (error: unknown) => {
          this.#settle();
          reject(error);
        },
      );
    });
  }

  progress(): void {
    if (this.#waitingSince !== 0) this.#waitingSince = Date.now();
  }

  stop(): void {
    this.#stopped = true;
    this.#settle();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #settle(): void {
    this.#waitingSince = 0;
    this.#reject = null;
  }

  #arm(ms: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, ms));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#waitingSince === 0) return;
    const idle = Date.now() - this.#waitingSince;
    if (idle < this.#timeoutMs) {
      this.#arm(this.#timeoutMs - idle);
      return;
    }
    const reject = this.#reject;
    this.#settle();
    reject?.(this.#makeError());
  }
}

const TIMEOUT_PAGE = Buffer.from('504 Gateway Timeout\n', 'utf8');
const TIMEOUT_HEADERS: Header[] = [
  ['Content-Type', 'text/plain; charset=utf-8'],
  ['Content-Length', String(TIMEOUT_PAGE.length)],
];

function requestUri(environ: Environ): string {
  if (typeof environ.REQUEST_URI === 'string' && environ.REQUEST_URI !== '') return environ.REQUEST_URI;
  const query = environ.QUERY_STRING ? `?${environ.QUERY_STRING}` : '';
  return `${environ.SCRIPT_NAME ?? ''}${environ.PATH_INFO ?? ''}${query}`;
}

async function timedRequest(
  app: App,
  environ: Environ,
  startResponse: StartResponse,
  options: SuperviseOptions,
  finish: () => void,
): Promise<Body> {
  const seconds = options.timeoutMs / 1000;
  const clock = new RequestClock(
    options.timeoutMs,
    () => new GatewayTimeoutError(`${environ.REQUEST_METHOD} ${requestUri(environ)}: the app produced nothing for ${seconds} s (--timeout)`),
  );
  const tracking: StartResponse = (status, headers, excInfo) => {
    const write = startResponse(status, headers, excInfo);
    return (chunk) => {
      if (chunk.length > 0) {
        clock.sent = true;
        clock.progress();
      }
      return write(chunk);
    };
  };
  /** Reports the timeout; returns the 504 body when nothing was sent, else throws (the server cuts). */
  const timedOut = (error: unknown, waitingFor: TimeoutInfo['waitingFor']): Chunk[] => {
    clock.stop();
    try {
      options.onTimeout?.({ method: String(environ.REQUEST_METHOD), uri: requestUri(environ), seconds, sent: clock.sent, waitingFor }, environ);
    } catch {
      // A hook must not change the answer.
    }
    if (clock.sent) throw error;
    startResponse('504 Gateway Timeout', TIMEOUT_HEADERS, error);
    return environ.REQUEST_METHOD === 'HEAD' ? [] : [TIMEOUT_PAGE];
  };

  let pending: Body | Promise<Body>;
  try {
    pending = app(environ, tracking);
  } catch (error) {
    clock.stop();
    finish();
    throw error;
  }
  let body: Body;
  if (isThenable<Body>(pending)) {
    try {
      body = await clock.wait(pending);
    } catch (error) {
      if (!(error instanceof GatewayTimeoutError)) {
        clock.stop();
        finish();
        throw error;
      }
      // A body that arrives after the timeout is released at once.
      Promise.resolve(pending).then(closeQuietly, () => {});
      let page: Chunk[];
      try {
        page = timedOut(error, 'response');
      } catch (cut) {
        finish();
        throw cut;
      }
      return trackBody(page, finish);
    }
  } else {
    body = pending;
  }
  if (!isIterableBody(body) || !isAsyncBody(body)) {
    // Nothing left to wait for: a sync body is iterated synchronously (a busy loop there is the watchdog's).
    clock.stop();
    return trackBody(body, finish);
  }
  return guardBody(body, clock, timedOut, finish);
}

/** An async body whose every next() is raced against the request's clock. */
function guardBody(
  body: AsyncIterable<Chunk> & { close?: () => void | Promise<void> },
  clock: RequestClock,
  timedOut: (error: unknown, waitingFor: TimeoutInfo['waitingFor']) => Chunk[],
  finish: () => void,
): Body {
  let expired = false;
  let innerClosed = false;
  async function* guard(): AsyncGenerator<Chunk, void, undefined> {
    const iterator = body[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        let step: IteratorResult<Chunk>;
        try {
          step = await clock.wait(iterator.next());
        } catch (error) {
          finished = true;
          if (!(error instanceof GatewayTimeoutError)) throw error;
          expired = true;
          yield* timedOut(error, 'body');
          return;
        }
        if (step.done === true) {
          finished = true;
          return;
        }
        const chunk = step.value;
        if ((typeof chunk === 'string' || chunk instanceof Uint8Array) && chunk.length > 0) clock.sent = true;
        yield chunk;
      }
    } finally {
      // The server stopped early (client gone, Content-Length reached): let a generator body run its finally.
      if (!finished && iterator.return) await iterator.return();
    }
  }
  const guarded = guard();
  return {
    [Symbol.asyncIterator]: () => guarded,
    close: async () => {
      clock.stop();
      try {
        if (!innerClosed) {
          innerClosed = true;
          // After a timeout the app is stuck: its close() must not hold the request (and the worker's drain).
          if (expired) closeQuietly(body);
          else if (typeof body.close === 'function') await body.close();
        }
      } finally {
        finish();
        // Not awaited: a next() still pending inside the app would otherwise hold close() hostage.
        guarded.return(undefined).catch(() => {});
      }
    },
  };
}
