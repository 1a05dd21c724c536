import type { Socket } from 'node:net';
import { AbortError, InputError, ProtocolError, describeError, statusOfError } from '../../errors.js';
import { createOwnedEnviron, schemeOf, type EnvironSettings } from '../../environ/create-environ.js';
import { applyNormalizedMount } from '../../environ/mount.js';
import { refuseRequest, runAppEagerly, type ResponseSink, type RunResult } from '../../response/run-app.js';
import type { App, Header } from '../../types.js';
import { ByteQueue } from '../fastcgi/byte-queue.js';
import { LazyAbort } from '../lazy-abort.js';
import { waitForDrain } from '../write-to-stream.js';
import type { LimitLog, PeerLog } from '../limit-log.js';
import { answerHeadTimeout, closeAfterAnswer, linger, PEER_GONE_CODES } from './closing.js';
import type { HeadDeadlines, HeadWaiter } from './head-deadlines.js';
import { refusalOfHead } from './head-checks.js';
import type { ResolvedOneRequestOptions } from './options.js';
import type { OneRequestHead, OneRequestProtocol } from './protocol.js';
import { errorPage, writeHeadWith } from './response-head.js';

const EMPTY = new Uint8Array(0);

/** Where a socket's listeners find its connection. */
const CONNECTION = Symbol('tsgi.oneRequestConnection');
type ConnectionSocket = Socket & { [CONNECTION]: OneRequestConnection };

/** What a connection needs from its server (OneRequestServer). */
export interface OneRequestHost {
  readonly app: App;
  readonly protocol: OneRequestProtocol;
  readonly options: ResolvedOneRequestOptions;
  /** Requests whose app is running. */
  activeRequests: number;
  /** Refusals at a limit, rate-limited. */
  readonly limitLog: LimitLog;
  /** What peers make the server log, rate-limited. */
  readonly peerLog: PeerLog;
  /** The head timeouts of the server's connections (null: headerTimeoutMs is 0). */
  readonly headDeadlines: HeadDeadlines | null;
  /** The environ settings of every request, by the request's scheme (createOwnedEnviron: no options object per request). */
  readonly environSettings: { readonly http: EnvironSettings; readonly https: EnvironSettings };
}

/**
 * One connection: reads the head, runs the app while the body streams in (the socket is paused while more
 * than inputHighWaterBytes wait for the app), writes the response, closes (see #close). The connection is the
 * ResponseSink of its request: no sink object or closures per request. A malformed head is answered 400
 * (nothing was sent yet) and logged; the loss of the connection fires `tsgi.signal`; nothing here throws out
 * of a socket event. A deadline per phase the peer controls: the head must be complete within headerTimeoutMs
 * of the accept (the server's HeadDeadlines: one timer for all its connections); then, while body bytes are due
 * and the socket is not paused for the app, each chunk re-arms (refresh()) a bodyTimeoutMs timer.
 */
export class OneRequestConnection implements ResponseSink, HeadWaiter {
  readonly #server: OneRequestHost;
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
  /** The body timer (null when none is due). */
  #timer: NodeJS.Timeout | null = null;
  // HeadWaiter: the server's HeadDeadlines keeps these while the head is awaited.
  headDeadline = 0;
  previousWaiter: HeadWaiter | null = null;
  nextWaiter: HeadWaiter | null = null;

  constructor(server: OneRequestHost, socket: Socket) {
    this.#server = server;
    this.#socket = socket;
    this.#options = server.options;
    this.#name = server.protocol.name;
    this.#reader = server.protocol.createReader(this.#options.maxHeaderBytes);
    // The listeners are shared by every connection (no closures per connection): each finds its connection on the socket.
    (socket as ConnectionSocket)[CONNECTION] = this;
    socket.on('data', OneRequestConnection.#dataListener);
    socket.on('end', OneRequestConnection.#endListener);
    socket.on('error', OneRequestConnection.#errorListener);
    socket.on('close', OneRequestConnection.#closeListener);
    server.headDeadlines?.add(this);
  }

  static #dataListener(this: ConnectionSocket, chunk: Buffer): void {
    this[CONNECTION].#onData(chunk);
  }

  static #endListener(this: ConnectionSocket): void {
    this[CONNECTION].#onEnd();
  }

  static #errorListener(this: ConnectionSocket, error: NodeJS.ErrnoException): void {
    this[CONNECTION].#onError(error);
  }

  static #closeListener(this: ConnectionSocket): void {
    this[CONNECTION].#onClose();
  }

  #onError(error: NodeJS.ErrnoException): void {
    if (!PEER_GONE_CODES.has(error.code ?? '')) this.#server.peerLog.write('connection error', `tsgi: ${this.#name}: connection error (${error.message})`);
    // Now, not at 'close': that comes a loop turn later, after a blocked write has already seen the error.
    if (!this.#finished) this.#abortRequest(new AbortError(`${this.#name}: the web server closed the connection (${error.code ?? error.message})`));
  }

  #clearTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** No complete head within headerTimeoutMs of the accept (HeadDeadlines): logged (rate-limited), 408 if a head was begun, closed. */
  headTimedOut(): void {
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
    // Nothing was asked: nobody to answer.
    if (this.#received === 0 || this.#socket.destroyed) this.#socket.destroy();
    else answerHeadTimeout(this.#socket, this.#server.protocol);
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
      this.#server.headDeadlines?.remove(this);
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
    this.#server.headDeadlines?.remove(this);
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
    this.#socket.end(errorPage(this.#server.protocol, code));
    this.#paused = false;
    linger(this.#socket);
  }

  #start(head: OneRequestHead): void {
    const options = this.#options;
    const variables = head.variables;
    if (options.mount !== null) applyNormalizedMount(variables, options.mount);
    else if (variables.SCRIPT_NAME === undefined && variables.PATH_INFO === undefined) applyNormalizedMount(variables, '');
    const refusal = refusalOfHead(head, options, this.#name, this.#server.limitLog);
    if (refusal !== 0) {
      this.#finished = true;
      this.#writeErrorPage(refusal);
      return;
    }
    this.#remaining = head.contentLength;
    this.#inputDone = head.contentLength === 0;
    if (head.contentLength > 0) {
      this.#queue = new ByteQueue(() => this.#resume(), options.inputHighWaterBytes / 2);
      if (options.bodyTimeoutMs > 0) this.#timer = setTimeout(() => this.#onBodyTimeout(), options.bodyTimeoutMs).unref();
    }
    const settings = this.#server.environSettings;
    const scheme = variables.UWSGI_SCHEME?.toLowerCase() === 'https' ? 'https' : schemeOf(variables);
    this.#active = true;
    this.#server.activeRequests++;
    // null: the response was complete within the call (a synchronous app; the sink never waits): no promise.
    let run: Promise<RunResult> | null;
    try {
      const environ = createOwnedEnviron(variables, this.#queue, false, this.#abort, undefined, scheme === 'https' ? settings.https : settings.http);
      run = runAppEagerly(this.#server.app, environ, this, this.#abort);
    } catch (error) {
      // createEnviron refused the request: answer it without running the app.
      options.errors.write(`tsgi: ${describeError(error)}\n`);
      run = refuseRequest(this, error, variables.REQUEST_METHOD === 'HEAD');
    }
    if (run === null) {
      this.#done();
      return;
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
   * Writes `chunk` (possibly empty), after the head when it is still held back (in one buffer with it when
   * both are small: see writeHeadWith), and ends the response (FIN) when `last`.
   */
  #send(chunk: Uint8Array, last: boolean): void {
    const socket = this.#socket;
    const headers = this.#headHeaders;
    if (headers !== null) {
      this.#headHeaders = null;
      writeHeadWith(socket, this.#server.protocol, this.#headCode, this.#headReason, headers, chunk, last);
    } else if (last) {
      if (chunk.length > 0) socket.end(chunk);
      else socket.end();
    } else if (chunk.length > 0) socket.write(chunk);
  }

  /** The response is complete or abandoned: nothing more is written, no timeout applies any more. */
  #finish(): void {
    this.#finished = true;
    this.#clearTimer();
  }

  /** After the FIN: the input is over too (what the app left unread is dropped), then closeAfterAnswer. */
  #close(): void {
    this.#queue?.fail(new AbortError(`${this.#name}: the request has ended`));
    const readAll = this.#inputDone && !this.#overran;
    if (!readAll) this.#paused = false; // closeAfterAnswer lingers: the socket flows again.
    closeAfterAnswer(this.#socket, readAll);
  }
}
