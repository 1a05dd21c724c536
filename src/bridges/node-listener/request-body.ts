/**
 * The request body of a Node request as the source of `tsgi.input` (toNodeListener's side of it): pulled one
 * chunk at a time with the request paused in between (backpressure reaches the client through TCP), bounded by
 * maxBodyBytes (413) and bodyTimeoutMs (408), failed by the server when Node's parser refuses the rest
 * (failRequestBody), and drained after the response so that keep-alive goes on.
 */
import type { IncomingMessage } from 'node:http';
import { AbortError, InputError } from '../../errors.js';
import { LazyAbort } from '../../servers/lazy-abort.js';
import type { LimitLog } from '../../servers/limit-log.js';

/** What the body source needs of the listener's settings. */
export interface BodySettings {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  limitLog: LimitLog;
}

/**
 * The request body as tsgi.input's source (a BodySource made on the first read: most requests never read a
 * body, and the source's listeners and closures would be made for nothing). It is also the request's
 * client-gone state (a LazyAbort: the `tsgi.signal` source, what runApp and the sink check), so that a request
 * costs one object for both.
 */
export class RequestBody extends LazyAbort implements AsyncIterable<Uint8Array> {
  readonly #req: IncomingMessage;
  readonly #settings: BodySettings;
  #source: BodySource | null = null;

  constructor(req: IncomingMessage, settings: BodySettings) {
    super();
    this.#req = req;
    this.#settings = settings;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#source ??= createBodySource(this.#req, this.#settings);
    return this.#source[Symbol.asyncIterator]();
  }

  /** See BodySource.mustClose (a body never read can only have been failed by the server). */
  get mustClose(): boolean {
    if (this.#source !== null) return this.#source.mustClose;
    return (this.#req as FailableRequest)[BODY_FAILURE] !== undefined;
  }

  /** See BodySource.discardRest (a body never read is left to Node, which discards it itself). */
  discardRest(): void {
    this.#source?.discardRest();
  }
}

/** The request body as tsgi.input's source, plus a way to throw away whatever the app did not read. */
interface BodySource extends AsyncIterable<Uint8Array> {
  /** Reads and drops the rest of the body (as Node does for a body never touched), so keep-alive goes on. */
  discardRest(): void;
  /**
   * True once the rest of the body can't be read to its end: more than maxBodyBytes arrived (reads fail with a
   * 413), it stopped arriving for bodyTimeoutMs (408), or the server failed it (failRequestBody).
   */
  readonly mustClose: boolean;
}

/** The event, and the request's property, by which failRequestBody reaches the body source. */
const BODY_FAILURE: unique symbol = Symbol('tsgi.bodyFailure');
type FailableRequest = IncomingMessage & { [BODY_FAILURE]?: Error };

/**
 * Fails the body of a request handed to a listener from toNodeListener: the app's pending and later reads of
 * tsgi.input throw `error` (an InputError whose status the app's error page takes), and the response says
 * `Connection: close`. createHttpServer calls it when Node's parser refuses the body (a malformed chunk, a
 * request timeout) while the app may still answer. Does nothing to a request already complete.
 */
export function failRequestBody(req: IncomingMessage, error: Error): void {
  const failable = req as FailableRequest;
  if (req.complete || failable[BODY_FAILURE] !== undefined) return;
  failable[BODY_FAILURE] = error;
  req.emit(BODY_FAILURE, error);
}

/**
 * Reads the request body one chunk per pull, pausing the request in between (backpressure reaches the client
 * through TCP). It attaches to the request only on the first pull: a body the app never touches is left to
 * Node, which discards it itself. Node's own async iterator can't be used here: once an app stops reading
 * part-way, nothing could drain the rest and the next pipelined request would never be parsed.
 */
function createBodySource(req: IncomingMessage, settings: BodySettings): BodySource {
  const { maxBodyBytes, bodyTimeoutMs } = settings;
  const queue: Buffer[] = [];
  let attached = false;
  let ended = false;
  let failure: unknown = null;
  let received = 0;
  let overLimit = false;
  let stalled = false;
  let draining = false;
  let wake: (() => void) | null = null;
  // One timer per body that is read (refreshed, never re-created), armed while the body has not ended.
  let timer: NodeJS.Timeout | null = null;
  const notify = (): void => {
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  const onData = (chunk: Buffer): void => {
    timer?.refresh();
    if (overLimit || draining) return;
    received += chunk.length;
    if (received > maxBodyBytes) {
      // Same rule as the FastCGI server's maxBodyBytes. What follows is read and dropped (not left unread in
      // the socket) until the response closes the connection, so the client gets to read the 413.
      overLimit = true;
      queue.length = 0;
      failure ??= new InputError(`http: request body exceeds maxBodyBytes (${maxBodyBytes})`, 413);
      req.resume();
      notify();
      return;
    }
    queue.push(chunk);
    req.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    if (timer !== null) timer = stopTimer(timer);
    notify();
  };
  const onError = (error: Error): void => {
    failure ??= new AbortError(`http: request body failed (${error.message})`, error);
    notify();
  };
  const onClose = (): void => {
    if (!req.complete) failure ??= new AbortError('http: the client closed the connection during the body');
    if (timer !== null) timer = stopTimer(timer);
    notify();
  };
  return {
    async *[Symbol.asyncIterator]() {
      // Made here, not per request: only a body that is read needs them.
      const onTimeout = (): void => {
        // Time the app spends not reading is not the client's: only a read left waiting counts (or a drain).
        if (wake === null && !draining) {
          timer?.refresh();
          return;
        }
        timer = null;
        if (req.complete) return;
        stalled = true;
        const seconds = bodyTimeoutMs / 1000;
        settings.limitLog.hit('bodyTimeoutMs', `a request body stopped arriving for ${seconds} s`, '--body-timeout SECONDS');
        if (draining) {
          req.socket.destroy();
          return;
        }
        failure ??= new InputError(`http: the request body stopped arriving (nothing for ${seconds} s)`, 408);
        notify();
      };
      const onFailure = (error: Error): void => {
        failure ??= error;
        if (timer !== null) timer = stopTimer(timer);
        notify();
      };
      if (!attached) {
        attached = true;
        req.on('data', onData);
        req.on('end', onEnd);
        req.on('error', onError);
        req.on('close', onClose);
        const failed = (req as FailableRequest)[BODY_FAILURE];
        if (failed !== undefined) failure ??= failed;
        else req.on(BODY_FAILURE, onFailure);
        if (bodyTimeoutMs > 0 && failure === null && !req.complete) {
          timer = setTimeout(onTimeout, bodyTimeoutMs);
          timer.unref();
        }
      }
      for (;;) {
        const chunk = queue.shift();
        if (chunk !== undefined) {
          yield chunk;
          continue;
        }
        if (failure !== null) throw failure;
        if (ended) return;
        // The wait starts the clock: time the app took before asking is not the client's.
        timer?.refresh();
        await new Promise<void>((resolve) => {
          wake = resolve;
          req.resume();
        });
      }
    },
    get mustClose() {
      return overLimit || stalled || (req as FailableRequest)[BODY_FAILURE] !== undefined;
    },
    discardRest() {
      if (!attached || req.complete || req.destroyed) {
        if (timer !== null) timer = stopTimer(timer);
        return;
      }
      queue.length = 0;
      // A body over the limit, stalled or failed is not read to its end: the connection ends here (the response
      // head said so, unless the app had sent it before).
      if (overLimit || stalled || failure !== null) {
        if (timer !== null) timer = stopTimer(timer);
        req.off('data', onData);
        req.socket.end();
        req.resume();
        return;
      }
      // The rest is read and dropped, still under the body timeout (onData keeps refreshing it).
      draining = true;
      req.resume();
    },
  };
}

/** Clears a body timer; returns null for the variable that held it. */
function stopTimer(timer: NodeJS.Timeout): null {
  clearTimeout(timer);
  return null;
}
