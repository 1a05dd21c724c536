import { AbortError, InputError, describeError } from '../../errors.js';
import { createEnviron } from '../../environ/create-environ.js';
import { createInput } from '../../environ/input.js';
import { applyNormalizedMount } from '../../environ/mount.js';
import { ProtocolStatus, RecordType, Role } from '../../protocol/fastcgi/constants.js';
import { NameValueCollector, type ByteBudget, type NameValueCache } from '../../protocol/fastcgi/name-value.js';
import { addRequestVariable } from '../../protocol/request-variables.js';
import { formatCgiHead } from '../../response/cgi-head.js';
import { refuseRequest, runApp, type ResponseSink, type RunResult } from '../../response/run-app.js';
import type { App, ErrorStream, Header } from '../../types.js';
import { LazyAbort } from '../lazy-abort.js';
import { waitForDrain } from '../write-to-stream.js';
import { ByteQueue } from './byte-queue.js';
import type { ResolvedFastCgiOptions } from './options.js';
import type { RecordWriter } from './record-writer.js';

/** What a request needs from its connection. */
export interface RequestHost {
  readonly writer: RecordWriter;
  readonly socket: import('node:net').Socket;
  readonly options: ResolvedFastCgiOptions;
  /** The server's count of bytes buffered for peers (unfinished PARAMS, unread STDIN/DATA). */
  readonly budget: ByteBudget;
  /** The server's coarse clock (milliseconds, updated by its timeout sweep): when records arrived. */
  readonly now: number;
  /** Logs a refusal at a limit, rate-limited (see createLimitLog). */
  limitHit(limit: string, what: string, raise: string): void;
  /** Strings of the previous request's params on this connection, to reuse. */
  readonly nameCache: NameValueCache;
  /** The app for a role. */
  appFor(role: number): App;
  /** Called once when the request sent its END_REQUEST (or was dropped): the id is free again. */
  release(request: FastCgiRequest): void;
  /** Called when a request's buffered input fell below its low-water mark. */
  inputDrained(): void;
  /** inputDrained as a function of its own, made once per connection (the ByteQueues' onDrain). */
  readonly onInputDrained: () => void;
  /** Cuts the connection: a response failed after its head, the peer can only learn it this way. */
  fail(reason: string, log?: boolean): void;
}

const ROLE_NAMES: Record<number, string> = { [Role.RESPONDER]: 'RESPONDER', [Role.AUTHORIZER]: 'AUTHORIZER', [Role.FILTER]: 'FILTER' };
const EMPTY = new Uint8Array(0);
// One shared reason for reads after the end: a new Error per request (with its stack) costs measurable time.
const REQUEST_ENDED = new AbortError('fastcgi: the request has ended');

/**
 * One FastCGI request on a connection (§5-6): gathers PARAMS, then runs the app while STDIN (and DATA for the
 * Filter role) stream in, and writes the response as STDOUT records, tsgi.errors as STDERR records, then the
 * stream terminators and END_REQUEST. ABORT_REQUEST or the loss of the connection fires `tsgi.signal`; the
 * END_REQUEST then goes out at once and nothing later carries this id (conformance C13).
 */
export class FastCgiRequest implements ResponseSink {
  readonly id: number;
  readonly role: number;
  readonly keepConn: boolean;
  readonly #host: RequestHost;
  readonly #params: NameValueCollector;
  /**
   * Why the request was aborted (ABORT_REQUEST, the connection lost), and the signal behind tsgi.signal, made
   * only if the app reads it. Given as is to createEnviron and runApp: no closure per request.
   */
  readonly #abort = new LazyAbort();
  readonly stdin: ByteQueue;
  // Only the Filter role has a DATA stream: created on demand.
  #data: ByteQueue | null = null;
  #started = false;
  /** The app was started (or the request refused) and will settle into #finish: it owns the release. */
  #running = false;
  #done = false;
  #stdinBytes = 0;
  #stderrUsed = false;
  /** The head runApp gave (sendHead), held back to leave with the first body bytes: null once queued. */
  #headHeaders: Header[] | null = null;
  #headCode = 0;
  #headReason = '';
  /** True while #start creates the environ and runs the app's synchronous part: writes are flushed after it. */
  #inStart = false;
  /** runApp called end() (or endWith()): the response is complete, the END_REQUEST is a promise turn away. */
  #ended = false;
  /**
   * The host's coarse clock when the request began (BEGIN_REQUEST), then when input last arrived for it: the
   * timeout sweep compares it with headerTimeoutMs before the end of PARAMS, bodyTimeoutMs after.
   */
  since: number;

  constructor(host: RequestHost, id: number, role: number, keepConn: boolean) {
    this.#host = host;
    this.id = id;
    this.role = role;
    this.keepConn = keepConn;
    this.since = host.now;
    this.#params = new NameValueCollector(host.options.maxParamsBytes, host.nameCache, host.budget);
    this.stdin = new ByteQueue(host.onInputDrained, host.options.inputHighWaterBytes / 2, host.budget);
  }

  /** True once the app was started (PARAMS ended). */
  get started(): boolean {
    return this.#started;
  }

  /** True once END_REQUEST went out. */
  get done(): boolean {
    return this.#done;
  }

  /** Bytes of input waiting for the app. */
  get buffered(): number {
    return this.stdin.queued + (this.#data?.queued ?? 0);
  }

  /** A PARAMS record: content to gather, or the empty record that completes them and starts the app. */
  onParams(content: Uint8Array): void {
    if (this.#started) return; // A duplicated empty PARAMS record: nothing left to complete.
    if (content.length > 0) {
      try {
        this.#params.push(content);
      } catch {
        const max = this.#host.options.maxParamsBytes;
        this.#host.limitHit('maxParamsBytes', `a request's PARAMS ran over ${max} bytes (the connection was closed)`, 'the maxParamsBytes option');
        this.#host.fail(`params over maxParamsBytes (${max})`, false);
      }
      return;
    }
    this.#started = true;
    this.since = this.#host.now;
    this.#start();
  }

  /** Bytes of PARAMS gathered and not yet decoded (0 once the app started). */
  get paramsHeld(): number {
    return this.#params.held;
  }

  /**
   * A STDIN record; the empty one ends the body. The content is a view of a socket read, which Node never
   * reuses: ByteQueue.copy keeps a large one as it is (nginx's 8 KiB records, eight to a read, cost no copy),
   * charging its whole read once while any view of it waits, so what is counted is never less than what is
   * held; a small one is copied, so as not to hold a whole read alive for a few bytes.
   */
  onStdin(content: Uint8Array): void {
    if (content.length === 0) {
      this.stdin.end();
      return;
    }
    if (this.stdin.ended) return;
    this.since = this.#host.now;
    this.#stdinBytes += content.length;
    if (this.#stdinBytes > this.#host.options.maxBodyBytes) {
      this.stdin.fail(new InputError(`fastcgi: request body exceeds maxBodyBytes (${this.#host.options.maxBodyBytes})`, 413));
      return;
    }
    this.stdin.copy(content);
  }

  /** A DATA record (Filter role, §6.4); the empty one ends the data stream. */
  onData(content: Uint8Array): void {
    this.since = this.#host.now;
    if (content.length === 0) this.data.end();
    else this.data.copy(content);
  }

  /** The DATA stream (Filter role). */
  get data(): ByteQueue {
    this.#data ??= new ByteQueue(this.#host.onInputDrained, this.#host.options.inputHighWaterBytes / 2, this.#host.budget);
    return this.#data;
  }

  /** The input stopped arriving for bodyTimeoutMs: the app's next read fails with a 408 (no signal: it may answer). */
  timeOutBody(error: InputError): void {
    if (!this.stdin.ended) this.stdin.fail(error);
    if (this.role === Role.FILTER && !this.data.ended) this.data.fail(error);
  }

  /** ABORT_REQUEST (§5.4): the web server gave up on this request. */
  onAbortRequest(): void {
    this.cancel(new AbortError('fastcgi: request aborted by the web server (ABORT_REQUEST)'));
    if (!this.#done) this.#finish(1, ProtocolStatus.REQUEST_COMPLETE, true);
  }

  /** True once every record of the request arrived: the PARAMS, the STDIN (and for a Filter the DATA) ended. */
  get complete(): boolean {
    return this.#started && this.stdin.ended && (this.role !== Role.FILTER || (this.#data?.ended ?? false));
  }

  /** The client or the connection is gone: fire the signal, stop the input. */
  cancel(reason: Error): void {
    if (this.#abort.reason !== null) return;
    this.#abort.abort(reason);
    this.#params.discard();
    this.stdin.fail(reason);
    this.#data?.fail(reason);
    // No app runs for a request whose PARAMS never completed (or were malformed): nothing else would free its
    // slot, and each such request would count against maxRequests for the life of the server.
    if (!this.#running && !this.#done) {
      this.#done = true;
      this.#host.release(this);
    }
  }

  /** The AbortSignal behind tsgi.signal (created on first use, already aborted if the request is). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  #start(): void {
    let variables: Record<string, string>;
    try {
      variables = this.#params.finish(addRequestVariable);
    } catch (error) {
      this.#host.options.errors.write(`tsgi: ${describeError(error)}\n`);
      this.#host.fail('malformed PARAMS');
      return;
    }
    // A FastCGI body always ends with an empty STDIN record, so a negative CONTENT_LENGTH (Caddy sends -1 for a
    // chunked upload) means "length unknown": read STDIN to its end. Made empty, which createEnviron takes as
    // absent (nginx sends it empty on every GET: conformance C6), for this transport only.
    const declared = variables.CONTENT_LENGTH;
    if (declared !== undefined && declared.charCodeAt(0) === 45 /* - */ && /^-\d+$/.test(declared)) variables.CONTENT_LENGTH = '';
    variables.FCGI_ROLE = ROLE_NAMES[this.role] ?? String(this.role);
    if (this.#host.options.mount !== null && this.role !== Role.AUTHORIZER) applyNormalizedMount(variables, this.#host.options.mount);
    const errors = new RequestErrors(this);
    this.#running = true;
    this.#inStart = true;
    let run: Promise<RunResult>;
    try {
      const environ = createEnviron({
        variables,
        input: this.stdin,
        // STDIN always ends with its empty record, so a body without CONTENT_LENGTH (a chunked upload the web
        // server streams) can be read to its end (conformance C14).
        inputTerminated: true,
        errors,
        signal: this.#abort,
        ownsVariables: true,
        multithread: true,
        multiprocess: this.#host.options.multiprocess,
        forwarded: this.#host.options.forwarded,
        runOnce: false,
      });
      // A declared body over the limit is refused before the app runs (as over HTTP, SCGI and uwsgi).
      const { maxBodyBytes } = this.#host.options;
      if (environ.CONTENT_LENGTH && Number(environ.CONTENT_LENGTH) > maxBodyBytes) {
        throw new InputError(`fastcgi: request body exceeds maxBodyBytes (${environ.CONTENT_LENGTH} > ${maxBodyBytes})`, 413);
      }
      if (this.role === Role.FILTER) {
        const length = Number(variables.FCGI_DATA_LENGTH ?? '0');
        environ['tsgi.fastcgi.data'] = createInput({
          source: this.data,
          contentLength: Number.isSafeInteger(length) && length >= 0 ? length : 0,
          terminated: true,
        });
      }
      run = runApp(this.#host.appFor(this.role), environ, this, { abort: this.#abort });
    } catch (error) {
      // createEnviron refused the request (a bad CONTENT_LENGTH), or its body is over maxBodyBytes: answer it
      // without running the app.
      errors.write(`tsgi: ${describeError(error)}\n`);
      run = refuseRequest(this, error, variables.REQUEST_METHOD === 'HEAD');
    }
    this.#inStart = false;
    // Bytes the app wrote without ending: they leave at the end of the tick. (Ended: runApp returned a settled
    // promise, so the reaction below runs in this microtask checkpoint and sends them with the END_REQUEST.)
    if (!this.#ended && this.#host.writer.queued > 0) this.#host.writer.schedule();
    run.then(
      (result) => {
        if (!this.#done) this.#finish(result.ok ? 0 : 1, ProtocolStatus.REQUEST_COMPLETE, false);
      },
      (error: unknown) => {
        this.#host.options.errors.write(`tsgi: fastcgi request failed: ${describeError(error)}\n`);
        if (!this.#done) this.#finish(1, ProtocolStatus.REQUEST_COMPLETE, false);
      },
    );
  }

  #gone(): Error {
    return this.#abort.reason ?? REQUEST_ENDED;
  }

  // The ResponseSink runApp writes to (the request itself: no closures per request).

  /**
   * Holds the head back, so a small response leaves as one STDOUT record with its first body bytes (runApp
   * never changes the headers array once it gave it here).
   */
  sendHead(code: number, reason: string, headers: Header[]): void {
    if (this.#done) throw this.#gone();
    this.#headCode = code;
    this.#headReason = reason;
    this.#headHeaders = headers;
  }

  /** Body bytes as STDOUT records; a promise while the socket wants a drain (backpressure). */
  write(chunk: Uint8Array): void | Promise<void> {
    this.#queueStdout(chunk);
    // While #start runs the app, the flush waits for runApp to return (see #start): a response the app
    // completes at once then leaves with its END_REQUEST in one write.
    this.#scheduleFlush();
    const socket = this.#host.socket;
    if (!socket.writableNeedDrain) return;
    return waitForDrain(socket, this.signal).then((drained) => {
      if (!drained) throw this.#gone();
    });
  }

  /** Sends a head still held back: the app asked for it before any body byte (runApp's flush). */
  flush(): void {
    if (this.#headHeaders === null || this.#done) return;
    this.#queueHead(EMPTY);
    this.#scheduleFlush();
  }

  /** Flushes the writer at the end of the tick, or (while #start runs the app) only when a lot is queued. */
  #scheduleFlush(): void {
    if (this.#inStart) this.#host.writer.flushIfFull();
    else this.#host.writer.schedule();
  }

  /** Queues body bytes as STDOUT records, after the held-back head when it is still pending. */
  #queueStdout(chunk: Uint8Array): void {
    if (this.#done) throw this.#gone();
    if (this.#headHeaders !== null) this.#queueHead(chunk);
    else this.#host.writer.stream(RecordType.STDOUT, this.id, chunk);
  }

  /** Queues the held-back head, with `body` (possibly empty) in the same record when both are small. */
  #queueHead(body: Uint8Array): void {
    const headers = this.#headHeaders as Header[];
    this.#headHeaders = null;
    const writer = this.#host.writer;
    if (writer.streamHead(RecordType.STDOUT, this.id, this.#headCode, this.#headReason, headers, body)) return;
    writer.streamPair(RecordType.STDOUT, this.id, formatCgiHead(this.#headCode, this.#headReason, headers), body);
  }

  /**
   * The last body bytes and the end in one step (runApp's endWith): queued with the held-back head; the
   * terminators and END_REQUEST follow when runApp settles (see end), in the same socket write.
   */
  endWith(chunk: Uint8Array): void {
    this.#queueStdout(chunk);
    this.end();
  }

  /**
   * The terminators and END_REQUEST go out when runApp settles, with an appStatus that says how it ended. That
   * is a promise reaction away (in the same microtask checkpoint): what is queued waits for it rather than
   * leaving in a write of its own, so a small response is one socket write.
   */
  end(): void {
    this.#ended = true;
  }

  /** The response failed after its head: the only way to tell the web server is to cut the connection. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#host.fail(`request ${this.id} failed after its response head`);
    this.#host.release(this);
  }

  /** tsgi.errors: the server's log, and STDERR records while the request is alive. */
  stderr(text: string): void {
    if (text.length === 0) return;
    // Always in the server's own log too: some web servers drop STDERR records (Caddy), and once the
    // request ended or its connection is gone STDERR can't carry the text at all.
    this.#host.options.errors.write(text);
    if (this.#done || this.#abort.reason !== null || this.#host.socket.destroyed) return;
    this.#stderrUsed = true;
    this.#host.writer.stream(RecordType.STDERR, this.id, Buffer.from(text, 'utf8'));
    this.#scheduleFlush();
  }

  /** Sends what is pending, the terminators and END_REQUEST (§5.5), then releases the id. */
  #finish(appStatus: number, protocolStatus: number, aborted: boolean): void {
    this.#done = true;
    const writer = this.#host.writer;
    if (!aborted) {
      if (this.#headHeaders !== null) this.#queueHead(EMPTY);
      // STDERR ends before STDOUT: nginx without keep_conn stops reading at the end of STDOUT (conformance C4).
      if (this.#stderrUsed) writer.record(RecordType.STDERR, this.id, EMPTY);
      writer.record(RecordType.STDOUT, this.id, EMPTY);
    }
    this.#headHeaders = null;
    writer.endRequest(this.id, appStatus, protocolStatus);
    writer.flush();
    this.stdin.fail(REQUEST_ENDED);
    this.#data?.fail(REQUEST_ENDED);
    this.#host.release(this);
  }
}

/** The `tsgi.errors` of one request (see FastCgiRequest.stderr). */
class RequestErrors implements ErrorStream {
  readonly #request: FastCgiRequest;

  constructor(request: FastCgiRequest) {
    this.#request = request;
  }

  write(text: string): void {
    this.#request.stderr(text);
  }
}
