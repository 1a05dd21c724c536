import type { Socket } from 'node:net';
import { AbortError, InputError, ProtocolError, describeError } from '../../errors.js';
import { FCGI_NULL_REQUEST_ID, RecordType, Role } from '../../protocol/fastcgi/constants.js';
import type { ByteBudget, NameValueCache } from '../../protocol/fastcgi/name-value.js';
import { decodeBeginRequest } from '../../protocol/fastcgi/record-bodies.js';
import { RecordDecoder } from '../../protocol/fastcgi/record-decoder.js';
import type { App } from '../../types.js';
import type { ResolvedFastCgiOptions } from './options.js';
import { LINGER_MS } from '../limits.js';
import { stopReading } from '../socket-handover.js';
import { refusalOf } from './admission.js';
import type { ConnectionServer } from './connection-server.js';
import { answerManagementRecord } from './management.js';
import { RecordWriter } from './record-writer.js';
import { FastCgiRequest, type RequestHost } from './request.js';
import { RequestTable } from './request-table.js';

/** "10 s", "0.5 s": a timeout for a log line. */
function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

const EMPTY_CHUNK = Buffer.alloc(0);

/** A draining server closes a kept-alive connection once it has been idle this long (see drain). */
const DRAIN_IDLE_MS = 1_000;

/**
 * One FastCGI connection from a web server: decodes records, dispatches them to requests by id, answers
 * management records (GET_VALUES, UNKNOWN_TYPE), enforces multiplexing and the request limit, and applies
 * backpressure on reads when apps read their bodies slower than they arrive. A protocol error closes the
 * connection (the stream can't be trusted after it) and is logged; it never throws out of a socket event.
 */
export class FastCgiConnection implements RequestHost {
  readonly socket: Socket;
  readonly writer: RecordWriter;
  readonly options: ResolvedFastCgiOptions;
  readonly nameCache: NameValueCache;
  readonly onInputDrained = (): void => this.inputDrained();
  readonly #server: ConnectionServer<FastCgiConnection>;
  readonly #decoder: RecordDecoder;
  readonly #requests = new RequestTable<FastCgiRequest>();
  #closing = false;
  /** When the connection was opened or last finished a request (see drain). */
  #lastActive = Date.now();
  /** Requests begun on this connection (0: a fresh connection). */
  #begun = 0;
  #paused = false;
  /** Paused because the server holds maxBufferedBytes: the timeout sweep resumes it once there is room. */
  #starved = false;
  /** The server's clock at the last socket read (idle timeout). */
  #lastData: number;
  /** When the connection last had no request in progress (0: it has some): header and idle timeouts. */
  #idleSince: number;
  /** #begun at the last sweep: requests begun and ended between two sweeps also make the connection busy. */
  #sweptBegun = 0;

  constructor(server: ConnectionServer<FastCgiConnection>, socket: Socket) {
    this.#server = server;
    this.#lastData = this.#idleSince = server.now;
    this.options = server.options;
    this.nameCache = server.nameCache;
    this.socket = socket;
    this.writer = new RecordWriter(socket);
    this.#decoder = RecordDecoder.withFields((type, requestId, content) => this.#dispatch(type, requestId, content));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#onGone(error));
    socket.on('close', () => {
      this.#onGone(null);
      server.forget(this);
    });
    socket.on('end', () => {
      // The web server closed its sending side (half-close): complete requests still answer, then release()
      // closes ours; a request whose records can no longer all arrive is aborted (its app sees the abort).
      // (The Error is made only when there is a request to abort: its stack costs microseconds.)
      let cut: AbortError | null = null;
      for (const request of [...this.#requests.values()]) {
        if (!request.complete) {
          cut ??= new AbortError('fastcgi: the web server closed its side of the connection before the request was complete');
          request.cancel(cut);
        }
      }
      if (this.#requests.size === 0) this.#close();
    });
  }

  get budget(): ByteBudget {
    return this.#server.budget;
  }

  get now(): number {
    return this.#server.now;
  }

  limitHit(limit: string, what: string, raise: string): void {
    this.#server.limitLog.hit(limit, what, raise);
  }

  appFor(role: number): App {
    if (role === Role.AUTHORIZER) return this.options.authorizer ?? this.#server.app;
    if (role === Role.FILTER) return this.options.filter ?? this.#server.app;
    return this.#server.app;
  }

  release(request: FastCgiRequest): void {
    if (this.#requests.get(request.id) !== request) return;
    this.#requests.delete(request.id);
    this.#server.activeRequests--;
    this.#lastActive = Date.now();
    this.inputDrained();
    if (this.#requests.size > 0) return;
    if (!request.keepConn || this.socket.readableEnded) this.#close();
    else if (this.#server.draining && !this.#handOver()) this.#close();
  }

  inputDrained(): void {
    if (!this.#paused) return;
    if (this.#starved) {
      if (this.#server.budget.used >= this.options.maxBufferedBytes) return;
      this.#starved = false;
    }
    for (const request of this.#requests.values()) {
      if (request.buffered > this.options.inputHighWaterBytes) return;
    }
    this.#paused = false;
    this.socket.resume();
  }

  /** PARAMS bytes held for requests of this connection whose PARAMS have not ended. */
  unfinishedParamsBytes(): number {
    let held = 0;
    for (const request of this.#requests.values()) held += request.paramsHeld;
    return held;
  }

  /** Cuts the connection and aborts its requests now, so what they buffered is let go at once (see shed). */
  cut(reason: string): void {
    this.fail(reason, false);
    const error = new AbortError(`fastcgi: the connection was closed (${reason})`);
    for (const request of [...this.#requests.values()]) request.cancel(error);
  }

  /** Cuts the connection at once; `log` false when the reason was logged already (a rate-limited limit line). */
  fail(reason: string, log = true): void {
    if (log) this.#server.peerLog.write('protocol error', `tsgi: fastcgi: closing the connection (${reason})`);
    this.#closing = true;
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    // Closing: read and discarded (see #close).
    if (this.#closing) return;
    this.#lastData = this.#server.now;
    try {
      this.#decoder.push(chunk);
    } catch (error) {
      const message = error instanceof ProtocolError ? error.message : describeError(error);
      this.fail(message);
      return;
    }
    if (!this.#paused) {
      if (this.#server.budget.used > this.options.maxBufferedBytes && this.#requests.size > 0 && !this.#overBudget()) {
        // The whole server holds its maximum of buffered input: stop reading this connection until the apps
        // (or the timeouts) free some; the sweep resumes it.
        this.#starved = this.#paused = true;
        this.socket.pause();
        this.limitHit(
          'maxBufferedBytes',
          `the server buffers ${this.#server.budget.used} bytes of PARAMS and unread input (over ${this.options.maxBufferedBytes}): stopped reading a connection until the apps catch up`,
          'the maxBufferedBytes option',
        );
        return;
      }
      // A request's unread input is counted in the server's budget too: below the mark there, none is over it.
      if (this.#server.budget.used <= this.options.inputHighWaterBytes) return;
      for (const request of this.#requests.values()) {
        if (request.buffered > this.options.inputHighWaterBytes) {
          this.#paused = true;
          this.socket.pause();
          break;
        }
      }
    }
  }

  /**
   * The timeout sweep (the server calls it for every connection, every second or so, with its clock): a
   * connection that never began a request closes after headerTimeoutMs; a kept-alive one with no request for
   * idleTimeoutMs closes (gracefully); a request whose PARAMS did not end within headerTimeoutMs of its
   * BEGIN_REQUEST is aborted and the connection closed; a body (STDIN/DATA) that stopped arriving for
   * bodyTimeoutMs fails the app's next read with a 408. Also resumes a connection paused for maxBufferedBytes.
   * All of it here, so the path of a record pays only a field write or two.
   */
  sweep(now: number): void {
    const options = this.options;
    if (this.#starved && this.#server.budget.used < options.maxBufferedBytes) {
      this.#starved = false;
      this.#paused = false;
      this.socket.resume();
      this.#onData(EMPTY_CHUNK); // Pauses again for inputHighWaterBytes if a request is over it.
    }
    if (this.#closing) return;
    const { headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = options;
    if (this.#requests.size === 0) {
      if (this.#idleSince === 0 || this.#sweptBegun !== this.#begun) this.#idleSince = now;
      this.#sweptBegun = this.#begun;
      if (this.#begun === 0) {
        if (headerTimeoutMs > 0 && now - this.#idleSince >= headerTimeoutMs) {
          this.limitHit('headerTimeoutMs', `a connection sent no complete request in ${seconds(headerTimeoutMs)} (closed)`, '--header-timeout SECONDS');
          this.#close();
        }
        return;
      }
      // Kept alive: closed when quiet for idleTimeoutMs, or when bytes trickle in without a request beginning.
      if (idleTimeoutMs > 0) {
        const quiet = now - Math.max(this.#idleSince, this.#lastData);
        if (quiet >= idleTimeoutMs || now - this.#idleSince >= idleTimeoutMs + headerTimeoutMs) {
          this.limitHit('idleTimeoutMs', `closed a kept-alive connection with no request for ${seconds(idleTimeoutMs)}`, '--idle-timeout SECONDS');
          this.#close();
        }
      }
      return;
    }
    this.#idleSince = 0;
    let stuck: FastCgiRequest[] | null = null;
    for (const request of this.#requests.values()) {
      if (!request.started) {
        if (headerTimeoutMs > 0 && now - request.since >= headerTimeoutMs) (stuck ??= []).push(request);
      } else if (this.#paused) {
        // Not read because the app (or the server's buffer) is full: not the peer's delay.
        request.since = now;
      } else if (bodyTimeoutMs > 0 && !request.complete && now - request.since >= bodyTimeoutMs) {
        this.limitHit('bodyTimeoutMs', `a request body (STDIN) stopped arriving for ${seconds(bodyTimeoutMs)} (answered 408)`, '--body-timeout SECONDS');
        request.timeOutBody(new InputError(`fastcgi: the request body stopped arriving for ${seconds(bodyTimeoutMs)} (bodyTimeoutMs)`, 408));
      }
    }
    if (stuck !== null) {
      this.limitHit(
        'headerTimeoutMs',
        `${stuck.length} request(s) did not send their PARAMS within ${seconds(headerTimeoutMs)} of BEGIN_REQUEST (aborted, connection closed)`,
        '--header-timeout SECONDS',
      );
      const reason = new AbortError(`fastcgi: the request's PARAMS did not arrive within ${seconds(headerTimeoutMs)} (headerTimeoutMs)`);
      for (const request of stuck) request.cancel(reason);
      this.#close();
    }
  }

  /**
   * The server holds more than maxBufferedBytes: first the connection piling up the most unfinished PARAMS is
   * cut (a web server sends a request's PARAMS at once; a peer that piles them up is the offender). Returns
   * false when that was not enough (the rest waits for the apps to read: this connection is paused), true when
   * there is room again or this connection was the one cut.
   */
  #overBudget(): boolean {
    this.#server.shed();
    return this.#closing || this.#server.budget.used <= this.options.maxBufferedBytes;
  }

  #onGone(error: Error | null): void {
    if (error && !this.#closing) this.#server.peerLog.write('connection error', `tsgi: fastcgi: connection error (${error.message})`);
    // An Error (its stack) costs microseconds: none made for a connection that ends with no request (the usual).
    if (this.#requests.size === 0) return;
    const reason = new AbortError('fastcgi: the web server closed the connection');
    for (const request of [...this.#requests.values()]) request.cancel(reason);
  }

  /**
   * The server is closing (a worker of `tsgi serve` that is recycled or reloaded, or any server's close()).
   * Where the process has somewhere to hand its connections (server.handover: the master passes them to a
   * worker that stays), an idle kept-alive connection is handed over now and a busy one right after its
   * request: the web server never sees it close, so no request is lost whatever the web server does.
   *
   * Otherwise connections close: a busy one right after its last END_REQUEST (see release), so that the FIN
   * follows the answer at once, before the web server takes the connection from its pool again; an idle one
   * is still served and closes after its next request or once idle for DRAIN_IDLE_MS (under load a pooled
   * connection is idle only between two requests, and closing it then races the web server, which may be
   * writing the next request into it; nginx retries such a request, Apache's mod_proxy_fcgi does not).
   */
  drain(): void {
    if (this.#requests.size > 0 || this.#closing) return;
    if (this.#handOver()) return;
    const idleFor = Date.now() - this.#lastActive;
    if (idleFor >= DRAIN_IDLE_MS) {
      this.#close();
      return;
    }
    const timer = setTimeout(() => this.drain(), DRAIN_IDLE_MS - idleFor);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  /**
   * Hands the connection to the server's handover (another process) when it is between requests with nothing
   * half-read or unsent: true when done (this object is finished with the socket), false when it can't.
   */
  #handOver(): boolean {
    const handover = this.#server.handover;
    if (handover === null || this.#closing || this.#requests.size > 0 || !this.#decoder.idle) return false;
    this.writer.flush();
    const socket = this.socket;
    if (socket.writableLength > 0 || socket.readableEnded || socket.destroyed) return false;
    if (!stopReading(socket)) return false;
    this.#closing = true;
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('close');
    // Still counted until the socket is on its way: a process that exits before would lose it.
    handover(socket, () => this.#server.forget(this));
    return true;
  }

  /**
   * The graceful close (the only way this server ends a connection that did nothing wrong): no new request
   * is taken, what is pending goes out, then a half-close (FIN). The socket stays open for reading, and what
   * arrives is discarded, until the web server closes its side or LINGER_MS pass. Closing outright would make
   * the kernel answer a request the web server is writing at that moment (it may have taken the connection
   * from its keep-alive pool) with a reset, which it cannot retry; a FIN it can: nginx and Apache send the
   * request again on another connection. The process must not exit while connections linger: the server's
   * close callback fires after the last one is gone (startServer waits for it).
   */
  #close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.writer.flush();
    this.socket.end();
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
    if (this.socket.readableEnded) return; // Both sides are done: the socket closes by itself.
    const linger = setTimeout(() => this.socket.destroy(), LINGER_MS);
    linger.unref();
    this.socket.once('close', () => clearTimeout(linger));
  }

  #dispatch(type: number, requestId: number, content: Uint8Array): void {
    if (this.#closing) return;
    if (requestId === FCGI_NULL_REQUEST_ID) {
      answerManagementRecord(this.writer, this.#server.getValues, type, content);
      return;
    }
    if (type === RecordType.BEGIN_REQUEST) {
      this.#onBegin(requestId, content);
      return;
    }
    const request = this.#requests.get(requestId);
    // Records for ids that are not active are ignored (§3.3): late STDIN after an early answer, say (T7).
    if (!request) return;
    switch (type) {
      case RecordType.PARAMS:
        request.onParams(content);
        break;
      case RecordType.STDIN:
        if (request.started) request.onStdin(content);
        else throw new ProtocolError(`fastcgi: STDIN before the end of PARAMS (request ${requestId})`);
        break;
      case RecordType.DATA:
        request.onData(content);
        break;
      case RecordType.ABORT_REQUEST:
        request.onAbortRequest();
        break;
      default:
        this.#server.peerLog.write('ignored record', `tsgi: fastcgi: ignored a record of type ${type} for request ${requestId}`);
    }
  }

  #onBegin(requestId: number, content: Uint8Array): void {
    const { role, keepConn } = decodeBeginRequest(content);
    if (this.#requests.has(requestId)) throw new ProtocolError(`fastcgi: BEGIN_REQUEST for active request ${requestId}`);
    const refusal = refusalOf(this.#server, role, this.#requests.size);
    if (refusal !== null) {
      this.writer.endRequest(requestId, 0, refusal);
      this.writer.schedule();
      if (!keepConn && this.#requests.size === 0) this.#close();
      return;
    }
    this.#server.activeRequests++;
    this.#begun++;
    this.#requests.set(requestId, new FastCgiRequest(this, requestId, role, keepConn));
  }
}
