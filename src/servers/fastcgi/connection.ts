import type { Socket } from 'node:net';
import { AbortError, ProtocolError, describeError } from '../../errors.js';
import {
  FCGI_KEEP_CONN,
  FCGI_MAX_CONNS,
  FCGI_MAX_REQS,
  FCGI_MPXS_CONNS,
  FCGI_NULL_REQUEST_ID,
  ProtocolStatus,
  RecordType,
  Role,
} from '../../protocol/fastcgi/constants.js';
import { NameValueCache, decodeNameValuePairs, encodeNameValuePairs } from '../../protocol/fastcgi/name-value.js';
import { RecordDecoder, type FastCgiRecord } from '../../protocol/fastcgi/record-decoder.js';
import type { App } from '../../types.js';
import type { ResolvedFastCgiOptions } from './options.js';
import { RecordWriter } from './record-writer.js';
import { FastCgiRequest, type RequestHost } from './request.js';

/** What a connection shares with its server: the apps, the options, the count of requests in progress. */
export interface ConnectionServer {
  readonly options: ResolvedFastCgiOptions;
  readonly app: App;
  /** Requests in progress in the whole server. */
  activeRequests: number;
  /** True once the server is closing: connections close as soon as they have no request in progress. */
  readonly draining: boolean;
  /** Called when a connection is gone, so the server stops tracking it. */
  forget(connection: FastCgiConnection): void;
}

/** Most GET_VALUES names answered in one query; a longer query is cut there (no unbounded work per record). */
const MAX_GET_VALUES_NAMES = 64;

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
  readonly nameCache = new NameValueCache();
  readonly #server: ConnectionServer;
  readonly #decoder: RecordDecoder;
  readonly #requests = new Map<number, FastCgiRequest>();
  #closing = false;
  #paused = false;

  constructor(server: ConnectionServer, socket: Socket) {
    this.#server = server;
    this.options = server.options;
    this.socket = socket;
    this.writer = new RecordWriter(socket);
    this.#decoder = new RecordDecoder((record) => this.#dispatch(record));
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
      const cut = new AbortError('fastcgi: the web server closed its side of the connection before the request was complete');
      for (const request of [...this.#requests.values()]) {
        if (!request.complete) request.abort(cut);
      }
      if (this.#requests.size === 0) this.#close();
    });
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
    this.inputDrained();
    if (this.#requests.size === 0 && (!request.keepConn || this.socket.readableEnded || this.#server.draining)) this.#close();
  }

  inputDrained(): void {
    if (!this.#paused) return;
    for (const request of this.#requests.values()) {
      if (request.buffered > this.options.inputHighWaterBytes) return;
    }
    this.#paused = false;
    this.socket.resume();
  }

  fail(reason: string): void {
    this.options.errors.write(`tsgi: fastcgi: closing the connection (${reason})\n`);
    this.#closing = true;
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    try {
      this.#decoder.push(chunk);
    } catch (error) {
      const message = error instanceof ProtocolError ? error.message : describeError(error);
      this.fail(message);
      return;
    }
    if (!this.#paused) {
      for (const request of this.#requests.values()) {
        if (request.buffered > this.options.inputHighWaterBytes) {
          this.#paused = true;
          this.socket.pause();
          break;
        }
      }
    }
  }

  #onGone(error: Error | null): void {
    if (error && !this.#closing) this.options.errors.write(`tsgi: fastcgi: connection error (${error.message})\n`);
    const reason = new AbortError('fastcgi: the web server closed the connection');
    for (const request of [...this.#requests.values()]) request.abort(reason);
  }

  /** The server is closing: close now when idle, else after the requests in progress (see release). */
  drain(): void {
    if (this.#requests.size === 0) this.#close();
  }

  #close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.writer.flush();
    this.socket.end();
  }

  #dispatch(record: FastCgiRecord): void {
    if (this.#closing) return;
    const { type, requestId, content } = record;
    if (requestId === FCGI_NULL_REQUEST_ID) {
      this.#onManagement(type, content);
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
        this.options.errors.write(`tsgi: fastcgi: ignored a record of type ${type} for request ${requestId}\n`);
    }
  }

  #onBegin(requestId: number, content: Uint8Array): void {
    if (content.length !== 8) throw new ProtocolError(`fastcgi: BEGIN_REQUEST body is not 8 bytes (${content.length})`);
    const role = ((content[0] as number) << 8) | (content[1] as number);
    const keepConn = ((content[2] as number) & FCGI_KEEP_CONN) !== 0;
    if (this.#requests.has(requestId)) throw new ProtocolError(`fastcgi: BEGIN_REQUEST for active request ${requestId}`);
    let refusal: number | null = null;
    if (!this.options.multiplex && this.#requests.size > 0) refusal = ProtocolStatus.CANT_MPX_CONN;
    else if (role !== Role.RESPONDER && role !== Role.AUTHORIZER && role !== Role.FILTER) refusal = ProtocolStatus.UNKNOWN_ROLE;
    else if (this.#server.activeRequests >= this.options.maxRequests) refusal = ProtocolStatus.OVERLOADED;
    if (refusal !== null) {
      this.writer.endRequest(requestId, 0, refusal);
      this.writer.schedule();
      if (!keepConn && this.#requests.size === 0) this.#close();
      return;
    }
    this.#server.activeRequests++;
    this.#requests.set(requestId, new FastCgiRequest(this, requestId, role, keepConn));
  }

  #onManagement(type: number, content: Uint8Array): void {
    if (type !== RecordType.GET_VALUES) {
      this.writer.record(RecordType.UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, Uint8Array.of(type, 0, 0, 0, 0, 0, 0, 0));
      this.writer.schedule();
      return;
    }
    const known: Record<string, string> = {
      [FCGI_MAX_CONNS]: String(this.options.maxConnections),
      [FCGI_MAX_REQS]: String(this.options.maxRequests),
      [FCGI_MPXS_CONNS]: this.options.multiplex ? '1' : '0',
    };
    const answer: Array<[string, string]> = [];
    for (const [name] of decodeNameValuePairs(content).slice(0, MAX_GET_VALUES_NAMES)) {
      const value = known[name];
      if (value !== undefined) answer.push([name, value]);
    }
    this.writer.record(RecordType.GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, encodeNameValuePairs(answer));
    this.writer.schedule();
  }
}
