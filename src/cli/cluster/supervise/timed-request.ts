/**
 * A request under --timeout (superviseApp with timeoutMs > 0): the app's promise and each chunk of an async
 * body are raced against the request's clock; past the timeout the request gets 504 if none of its response
 * was sent yet, else it is cut.
 */
import type { App, Body, Chunk, Environ, Header, StartResponse } from '../../../types.js';
import { isThenable } from '../../../thenable.js';
import { carriesBytes } from '../../../response/run-app.js';
import { closeQuietly, isAsyncBody, isIterableBody, trackBody } from './body-tracking.js';
import { RequestClock } from './request-clock.js';
import { requestUri } from './request-uri.js';

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

/** What timedRequest needs of SuperviseOptions. */
export interface TimedRequestOptions {
  /** The app may keep the request waiting at most this long (> 0). */
  timeoutMs: number;
  /** Called once if the request times out. */
  onTimeout?: (info: TimeoutInfo, environ: Environ) => void;
}

/** The error a timed-out request ends with; `status` 504 says what it means to an error handler. */
export class GatewayTimeoutError extends Error {
  readonly status = 504;
  constructor(message: string) {
    super(message);
    this.name = 'GatewayTimeoutError';
  }
}

const TIMEOUT_PAGE = Buffer.from('504 Gateway Timeout\n', 'utf8');
const TIMEOUT_HEADERS: Header[] = [
  ['Content-Type', 'text/plain; charset=utf-8'],
  ['Content-Length', String(TIMEOUT_PAGE.length)],
];

/**
 * Calls the app for one request with the clock running; `finish` marks the request ended (once its body is
 * closed, or at once when the app throws).
 */
export async function timedRequest(
  app: App,
  environ: Environ,
  startResponse: StartResponse,
  options: TimedRequestOptions,
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
        if (carriesBytes(chunk)) clock.sent = true;
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
