/**
 * The supervision of a worker's requests (--timeout, --slow-log, the status page): superviseApp, built from the
 * files of supervise/ (the request clock, body tracking, the timed request).
 */
import type { App, Body, Environ } from '../../types.js';
import { isThenable } from '../../thenable.js';
import { trackBody } from './supervise/body-tracking.js';
import { requestUri } from './supervise/request-uri.js';
import { timedRequest, type TimeoutInfo } from './supervise/timed-request.js';

export { GatewayTimeoutError, type TimeoutInfo } from './supervise/timed-request.js';

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
