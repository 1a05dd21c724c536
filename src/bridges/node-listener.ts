/**
 * The bridge from Node's HTTP server to a tsgi app: one request listener that turns an IncomingMessage into
 * CGI variables, hands them to the shared translator (createEnviron) and the shared response state machine
 * (runApp), and sends the result through the ServerResponse.
 *
 * Paths. PATH_INFO is the request path percent-decoded into a byte string (one char per byte), as every CGI
 * server does: "%C3%A9" becomes "\u00c3\u00a9", and "%2F" becomes "/" (it can't be told apart from a real slash
 * afterwards; REQUEST_URI keeps the raw, still-encoded form for apps that care). Dot segments are passed as they
 * are: PATH_INFO is not a safe file system path.
 */
import { isHopByHop } from '../response/hop-by-hop.js';
import { equalsLowerCase } from '../response/status.js';
import { toByteString } from '../environ/to-byte-string.js';
import { normalizeMount } from '../environ/mount.js';
import { addHeaderVariable, headerVariableName } from '../environ/header-variables.js';
import { LazyAbort } from '../servers/lazy-abort.js';
import { readVersion } from '../version.js';
import { createLimitLog, type LimitLog } from '../servers/limit-log.js';
import { DEFAULT_BODY_TIMEOUT_MS } from '../servers/limits.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { AbortError, describeError, InputError, RequestError, statusOfError, TsgiError } from '../errors.js';
import { percentDecodeToByteString } from '../environ/byte-policy.js';
import { createEnviron } from '../environ/create-environ.js';
import { HOST_RE, hostWithoutPort } from '../environ/host.js';
import { createForwardedPolicy, DEFAULT_FORWARDED_ALLOW_IPS, type ForwardedPolicy } from '../environ/forwarded-policy.js';
import { runApp, sendErrorPage, type ResponseSink } from '../response/run-app.js';
import { writeToStream } from '../servers/write-to-stream.js';
import type { App, Environ, ErrorStream, Header } from '../types.js';

/** A Node request listener, as `http.createServer()` and the 'request' event take it. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Options for toNodeListener. */
export interface NodeListenerOptions {
  /** Where `tsgi.errors` and the bridge's own diagnostics go. Default: process.stderr. */
  errors?: ErrorStream;
  /**
   * The mount prefix ("/app"): it becomes SCRIPT_NAME and is cut from PATH_INFO. A request whose decoded path
   * is neither the prefix nor below it ("/app/...") gets a 404 and never reaches the app. Default: "" (root).
   */
  scriptName?: string;
  /** Called with one line per completed request (no trailing newline). Default: no access log. */
  accessLog?: (line: string) => void;
  /**
   * Most request body bytes. A Content-Length above it is answered 413 before the app runs; a chunked body
   * that grows past it makes the app's next read fail with a 413 InputError (the client gets a 413 page when
   * nothing was sent yet). Either way the connection closes after the response. Default: no limit.
   */
  maxBodyBytes?: number;
  /**
   * True when requests carrying `Expect: 100-continue` reach this listener through the server's
   * 'checkContinue' event, so that Node has not sent `100 Continue` yet: the listener then sends it just
   * before the app's first read of the body, and never when the app answers without reading (conformance G8).
   * createHttpServer sets it; leave it false for a listener registered only on 'request'.
   */
  deferContinue?: boolean;
  /**
   * True when whoever feeds this listener calls abortResponse(res) for every response still open when its
   * connection closes (createHttpServer does, from one 'close' listener per connection); the listener then adds
   * no 'close' listener per response. Leave it false for a listener on a server of your own.
   */
  abortsOnConnectionClose?: boolean;
  /** True when other processes serve the same app at the same time (`tsgi serve --workers N`, N > 1): the environ's `tsgi.multiprocess`. Default: false. */
  multiprocess?: boolean;
  /**
   * Most request header lines; a request with more gets 431 before the app runs (logged, rate-limited). Node's
   * parser keeps only the first `server.maxHeadersCount` lines (1,000 when unset) and drops the rest unseen, so
   * a request at that count may have lost headers (a Transfer-Encoding, say) that framed its body: the server
   * must keep at least maxHeaders + 1 lines for this check to see them (createHttpServer sets maxHeadersCount
   * so). Default: DEFAULT_LISTENER_MAX_HEADERS (999: on a server left at Node's default, 1,000 lines are refused).
   */
  maxHeaders?: number;
  /**
   * While the app waits for request body bytes, none arriving for this long (ms) makes its read fail with a 408
   * InputError (logged, rate-limited) and the connection close after the response; 0 turns it off.
   * Default: DEFAULT_BODY_TIMEOUT_MS (30 s).
   */
  bodyTimeoutMs?: number;
  /** Where refusals at a limit are logged (rate-limited). Default: a LimitLog on `errors`, prefix "http". */
  limitLog?: LimitLog;
  /**
   * The proxies whose X-Forwarded-For / -Proto / -Host and `Forwarded` fields are believed: comma-separated
   * addresses and CIDR networks, "*" for any, "" for none (src/environ/forwarded.ts). From a trusted peer they
   * set REMOTE_ADDR, the scheme, HTTP_HOST, SERVER_NAME and SERVER_PORT; from any other they change nothing.
   * Default: DEFAULT_FORWARDED_ALLOW_IPS ("127.0.0.1,::1", a proxy on the same machine).
   */
  forwardedAllowIps?: string;
}

/** Default maxHeaders of toNodeListener: below the 1,000 header lines Node's parser keeps by default. */
export const DEFAULT_LISTENER_MAX_HEADERS = 999;

const ABSOLUTE_FORM_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** The same test Node's server applies before it emits 'checkContinue'. */
const EXPECT_CONTINUE_RE = /(?:^|\W)100-continue(?:$|\W)/i;
/** How long a cut response may take to flush what it already wrote before the connection is destroyed, in ms. */
const ABORT_FLUSH_TIMEOUT_MS = 2000;
const EMPTY = new Uint8Array(0);
/** Bodies up to this size leave in the same write as the head. */
const JOIN_LIMIT_BYTES = 16 * 1024;

/**
 * Returns a Node request listener that runs `app` for each request (the embedded HTTP server's core; also
 * usable with any `http.Server` or `https.Server`). Per request it builds the CGI variables (see
 * buildVariables), creates the environ with createEnviron (multithread, not multiprocess, not run-once) and runs
 * the app with runApp. A request the bridge refuses (two Host headers, a Host with userinfo, an unsupported
 * Transfer-Encoding, a path outside the mount) gets a plain error page and never reaches the app.
 * `tsgi.signal` fires when the connection closes before the response finished. Never throws; failures go to
 * `options.errors`.
 */
export function toNodeListener(app: App, options: NodeListenerOptions = {}): NodeListener {
  const errors: ErrorStream = options.errors ?? { write: (text) => void process.stderr.write(text) };
  const settings: Settings = {
    errors,
    scriptName: normalizeMount(options.scriptName ?? '', 'http: scriptName'),
    accessLog: options.accessLog,
    deferContinue: options.deferContinue ?? false,
    abortsOnConnectionClose: options.abortsOnConnectionClose ?? false,
    maxBodyBytes: checkMaxBodyBytes(options.maxBodyBytes),
    multiprocess: options.multiprocess ?? false,
    maxHeaderEntries: 2 * checkCount('maxHeaders', options.maxHeaders ?? DEFAULT_LISTENER_MAX_HEADERS, 1),
    bodyTimeoutMs: checkCount('bodyTimeoutMs', options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS, 0),
    limitLog: options.limitLog ?? createLimitLog(errors, 'http'),
    forwarded: createForwardedPolicy(options.forwardedAllowIps ?? DEFAULT_FORWARDED_ALLOW_IPS),
  };
  return (req, res) => {
    void handleRequest(app, req, res, settings);
  };
}

interface Settings {
  errors: ErrorStream;
  scriptName: string;
  accessLog: ((line: string) => void) | undefined;
  deferContinue: boolean;
  abortsOnConnectionClose: boolean;
  maxBodyBytes: number;
  multiprocess: boolean;
  /** 2 x maxHeaders: the length of req.rawHeaders at most. */
  maxHeaderEntries: number;
  bodyTimeoutMs: number;
  limitLog: LimitLog;
  forwarded: ForwardedPolicy;
}

/** Where a response finds the abort state of its request (one shared 'close' listener, no closure per request). */
const ABORT: unique symbol = Symbol('tsgi.abort');
type TrackedResponse = ServerResponse & { [ABORT]?: LazyAbort };

/** The 'close' listener of every response: a connection closed before the response finished aborts it. */
function onResponseClose(this: TrackedResponse): void {
  abortResponse(this);
}

/**
 * Aborts the request of a response from toNodeListener that has not finished (its app's `tsgi.signal` fires,
 * its reads of the body fail): its connection closed. Does nothing to a finished response or to one this
 * module did not answer. Called by the listener itself, or, with `abortsOnConnectionClose`, by the server.
 */
export function abortResponse(res: ServerResponse): void {
  if (!res.writableFinished) (res as TrackedResponse)[ABORT]?.abort(new AbortError('http: the client closed the connection'));
}

function handleRequest(app: App, req: IncomingMessage, res: ServerResponse, settings: Settings): void {
  try {
    const started = settings.accessLog ? performance.now() : 0;
    // The AbortController is created only if the app reads tsgi.signal: one per request costs measurable time.
    const abort = new LazyAbort();
    (res as TrackedResponse)[ABORT] = abort;
    if (!settings.abortsOnConnectionClose) res.on('close', onResponseClose);
    const body = new RequestBody(req, settings);
    let environ: Environ;
    try {
      // Node's parser kept only the first header lines: what it dropped was never checked (field-notes: a
      // Transfer-Encoding past line 1,000 left the body unframed). Refused before anything else looks at them.
      if (req.rawHeaders.length > settings.maxHeaderEntries) {
        throw new RequestError(`http: more than ${settings.maxHeaderEntries / 2} request header lines`, 431);
      }
      checkDeclaredLength(req, settings.maxBodyBytes);
      environ = createEnviron({
        variables: buildVariables(req, settings.scriptName),
        input: body,
        inputTerminated: isChunked(req),
        errors: settings.errors,
        signal: abort,
        ownsVariables: true,
        multithread: true,
        multiprocess: settings.multiprocess,
        runOnce: false,
        onFirstRead: settings.deferContinue && expectsContinue(req) ? () => sendContinue(res) : undefined,
        forwarded: settings.forwarded,
      });
    } catch (error) {
      void refuse(req, res, settings, abort, error, started);
      return;
    }
    // A body cut at maxBodyBytes, stalled or malformed leaves the rest of it on the wire: the connection can't be reused.
    const sink = new NodeSink(res, abort, body, () => settle(settings, req, sink, body, abort, started));
    const run = runApp(app, environ, sink, { abort });
    // The sink settles the request when the response ends (at once for a synchronous app); the run's end is
    // the fallback for a run that ended without ending the response (its error page could not be sent).
    if (!sink.settled) void run.then(() => sink.settle());
  } catch (error) {
    settings.errors.write(`tsgi: http: request handler failed: ${describeError(error)}\n`);
    res.destroy();
  }
}

/** After the response: drops the body bytes the app left unread (they would stall the next request), logs. */
function settle(settings: Settings, req: IncomingMessage, sink: NodeSink, body: RequestBody, abort: LazyAbort, started: number): void {
  if (abort.reason === null) body.discardRest();
  logAccess(settings, req, sink, started);
}

/** Answers a request refused before its app could run (createEnviron or a check threw) with an error page. */
async function refuse(req: IncomingMessage, res: ServerResponse, settings: Settings, abort: LazyAbort, error: unknown, started: number): Promise<void> {
  try {
    const code = statusOfError(error);
    if (code === 431) {
      const what = `a request with more than ${settings.maxHeaderEntries / 2} header lines got 431`;
      settings.limitLog.hit('maxHeaders', what, 'the maxHeaders option of createHttpServer');
    } else if (code !== 404) {
      settings.errors.write(`tsgi: request refused: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    // A request refused for its framing or headers may have left body bytes on the wire: close after the page.
    const sink = new NodeSink(res, abort, code !== 404, null);
    try {
      await sendErrorPage(sink, code, req.method === 'HEAD');
    } catch {
      res.destroy();
    }
    logAccess(settings, req, sink, started);
  } catch (failure) {
    settings.errors.write(`tsgi: http: request handler failed: ${describeError(failure)}\n`);
    res.destroy();
  }
}

/**
 * The request body as tsgi.input's source (a BodySource made on the first read: most requests never read a
 * body, and the source's listeners and closures would be made for nothing).
 */
class RequestBody implements AsyncIterable<Uint8Array> {
  readonly #req: IncomingMessage;
  readonly #settings: Settings;
  #source: BodySource | null = null;

  constructor(req: IncomingMessage, settings: Settings) {
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
function createBodySource(req: IncomingMessage, settings: Settings): BodySource {
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

/**
 * Builds the CGI variables (RFC 3875 §4.1) of a Node request, as byte strings. Node decodes the request line
 * and header values as latin-1, so they are byte strings already.
 * - SCRIPT_NAME is the mount prefix; PATH_INFO the percent-decoded rest of the path; QUERY_STRING and
 *   REQUEST_URI are raw. An absolute-form target ("GET http://host/path") must name the Host it was sent with.
 * - SERVER_NAME comes from Host (else the local address), SERVER_PORT is the local port, REMOTE_ADDR has no
 *   port and no "::ffff:" prefix for IPv4 clients, HTTPS is "on" over TLS.
 * - One HTTP_* per request header name; repeated headers are joined with ", " (Cookie with "; ", RFC 6265
 *   §5.4). Names holding anything but letters, digits and "-" are dropped, so `X-Forwarded_For` can't pose as
 *   `X-Forwarded-For` (field-notes T32). Content-Type and Content-Length become CONTENT_TYPE and CONTENT_LENGTH
 *   only; `Proxy:` is never passed (httpoxy).
 * Throws RequestError: 505 for an HTTP major version other than 1 ("HTTP/2.0", "GET /"); 400 for zero
 * (HTTP/1.1) or several Host headers, a Host that isn't `host[:port]` (T33: "a.com@evil.com"), an
 * absolute-form target naming another host, a Transfer-Encoding whose last coding isn't chunked; 501 for any
 * coding besides chunked; 404 for a path outside the mount.
 */
export function buildVariables(req: IncomingMessage, scriptName = ''): Record<string, string | undefined> {
  // RFC 9110 §15.6.6: "HTTP/2.0" or an HTTP/0.9-style line ("GET /") is not a version this server speaks.
  if (req.httpVersionMajor !== 1) {
    throw new RequestError(`http: HTTP version not supported (HTTP/${req.httpVersion})`, 505);
  }
  const raw = req.rawHeaders;
  // The same variables as headersToVariables(pairs, { passAuthorization: true }), without the pairs.
  const variables: Record<string, string | undefined> = {};
  let hosts = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = headerVariableName(raw[i] as string, true);
    if (key === null) continue;
    if (key === 'HTTP_HOST') hosts++;
    addHeaderVariable(variables, key, raw[i + 1] as string);
  }
  // RFC 9112 §3.2: a request with no Host (HTTP/1.1) or several Host fields gets a 400.
  if (hosts > 1) throw new RequestError(`http: more than one Host header (${hosts})`);
  if (hosts === 0 && req.httpVersion === '1.1') throw new RequestError('http: HTTP/1.1 request without Host (0)');
  let host = variables.HTTP_HOST;
  // Clients send the same Host over and over: the last one that passed is not checked again.
  if (host !== undefined && host !== '' && host !== lastGoodHost) {
    if (!HOST_RE.test(host)) throw new RequestError(`http: bad Host header (${JSON.stringify(host).slice(0, 80)})`);
    lastGoodHost = host;
    lastGoodHostName = hostWithoutPort(host);
  }

  let target = req.url ?? '/';
  // An origin-form target ("/path") is the rule; only another one can be absolute-form.
  if (target.charCodeAt(0) !== 0x2f && ABSOLUTE_FORM_RE.test(target)) {
    const afterScheme = target.indexOf('//') + 2;
    let end = target.slice(afterScheme).search(/[/?#]/);
    end = end < 0 ? target.length : afterScheme + end;
    const authority = target.slice(afterScheme, end);
    // RFC 9112 §3.2.2 lets the target's authority override Host; refusing a mismatch keeps one answer (T33).
    if (!HOST_RE.test(authority) || (host !== undefined && authority.toLowerCase() !== host.toLowerCase())) {
      throw new RequestError(`http: request target names another host than Host (${JSON.stringify(target).slice(0, 80)})`);
    }
    if (host === undefined) variables.HTTP_HOST = host = authority;
    target = target.slice(end);
    if (!target.startsWith('/')) target = `/${target}`;
  }

  const question = target.indexOf('?');
  const rawPath = question < 0 ? target : target.slice(0, question);
  // OPTIONS * names the server, not a resource: it has no path.
  const path = rawPath === '*' ? '' : percentDecodeToByteString(rawPath);
  let pathInfo = path;
  if (scriptName !== '') {
    if (path !== scriptName && !path.startsWith(`${scriptName}/`)) {
      throw new RequestError(`http: path is outside the mount ${scriptName} (${JSON.stringify(path).slice(0, 80)})`, 404);
    }
    pathInfo = path.slice(scriptName.length);
  }

  const transferEncoding = req.headers['transfer-encoding'];
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim()).filter((c) => c !== '');
    // RFC 9112 §6.3: without chunked last the body length is unknowable (400); other codings are not ours (501).
    if (codings.at(-1) !== 'chunked') {
      throw new RequestError(`http: Transfer-Encoding must end with chunked (${JSON.stringify(transferEncoding)})`);
    }
    if (codings.length > 1) {
      throw new RequestError(`http: unsupported Transfer-Encoding (${JSON.stringify(transferEncoding)})`, 501);
    }
  }

  const connection = connectionOf(req.socket);
  variables.REQUEST_METHOD = req.method ?? 'GET';
  variables.SCRIPT_NAME = scriptName;
  variables.PATH_INFO = pathInfo;
  variables.QUERY_STRING = question < 0 ? '' : target.slice(question + 1);
  variables.REQUEST_URI = target;
  variables.SERVER_NAME = (host === lastGoodHost ? lastGoodHostName : hostWithoutPort(host)) ?? connection.serverName;
  // Keys whose value is unknown are left out (not set to undefined): the environ has no such key.
  if (connection.serverPort !== undefined) variables.SERVER_PORT = connection.serverPort;
  variables.SERVER_PROTOCOL = req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`;
  variables.SERVER_SOFTWARE = (serverSoftware ??= `tsgi/${readVersion()}`);
  variables.GATEWAY_INTERFACE = 'CGI/1.1';
  if (connection.remoteAddress !== undefined) variables.REMOTE_ADDR = connection.remoteAddress;
  if (connection.remotePort !== undefined) variables.REMOTE_PORT = connection.remotePort;
  if (connection.https) variables.HTTPS = 'on';
  return variables;
}

/** The last Host header that passed HOST_RE, and its name without the port (null when none has yet). */
let lastGoodHost: string | null = null;
let lastGoodHostName: string | undefined;
let serverSoftware: string | undefined;

/** What the variables of every request on one connection share, worked out once per connection. */
interface ConnectionVariables {
  /** SERVER_NAME when the request has no usable Host: the local address ("[::1]" for IPv6), else "localhost". */
  serverName: string;
  serverPort: string | undefined;
  remoteAddress: string | undefined;
  remotePort: string | undefined;
  https: boolean;
}

const connections = new WeakMap<object, ConnectionVariables>();

function connectionOf(socket: IncomingMessage['socket']): ConnectionVariables {
  let known = connections.get(socket);
  if (known === undefined) {
    const localAddress = unmapIpv4(socket.localAddress);
    known = {
      serverName: (localAddress?.includes(':') ? `[${localAddress}]` : localAddress) ?? 'localhost',
      serverPort: socket.localPort === undefined ? undefined : String(socket.localPort),
      // As node:http gives it: an IPv4 client of a dual-stack listener is "::ffff:127.0.0.1" (what
      // `req.socket.remoteAddress` and Express's `req.ip` show there).
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort === undefined ? undefined : String(socket.remotePort),
      https: (socket as Partial<TLSSocket>).encrypted === true,
    };
    // Not remembered before the socket knows its addresses (a socket that is closing may not yet or no more).
    if (socket.remoteAddress !== undefined && socket.localAddress !== undefined) connections.set(socket, known);
  }
  return known;
}

/**
 * The ResponseSink over a ServerResponse. Hop-by-hop headers from the app are dropped (Node frames the message
 * itself), so is Content-Length on 1xx/204 (RFC 9110 §8.6); headers go out as a flat list so repeated ones
 * (Set-Cookie) stay separate lines. `closeConnection` (a boolean, or an object whose `mustClose` is read when
 * the head goes out) adds `Connection: close`. A class: one object per response, no closures.
 */
class NodeSink implements ResponseSink {
  /** The status sent, 0 before the head. */
  status = 0;
  /** Body bytes handed to the socket. */
  bytes = 0;
  readonly #res: ServerResponse;
  readonly #abort: LazyAbort;
  readonly #closeConnection: boolean | { readonly mustClose: boolean };
  /**
   * The first body chunk waits for the end of the tick: when the response ends there, it leaves with the head
   * in one res.end() (one write of one buffer) instead of a write and an end.
   */
  #held: Uint8Array | null = null;
  /** True once a body chunk went to res.write(): the head has left, nothing can join it any more. */
  #wrote = false;
  /** What runs once the response ended (or the run did): see settle(). */
  #onSettled: (() => void) | null;
  /** True once #onSettled ran (or there is none). */
  settled: boolean;

  constructor(
    res: ServerResponse,
    abort: LazyAbort,
    closeConnection: boolean | { readonly mustClose: boolean },
    onSettled: (() => void) | null,
  ) {
    this.#res = res;
    this.#abort = abort;
    this.#closeConnection = closeConnection;
    this.#onSettled = onSettled;
    this.settled = onSettled === null;
  }

  /** Runs the after-response work once: when the response ends or is cut, else when the run ends. */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    const onSettled = this.#onSettled;
    this.#onSettled = null;
    onSettled?.();
  }

  sendHead(code: number, reason: string, headers: Header[]): void {
    const flat: string[] = [];
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as Header;
      const name = header[0];
      if (name === 'Content-Length') {
        // The common spelling, checked first: no lower-cased copy of it on every response.
        if (code < 200 || code === 204) continue;
      } else if (isHopByHop(name)) {
        continue;
      } else if (name.length === 14 && (code < 200 || code === 204) && equalsLowerCase(name, 'content-length')) {
        continue;
      }
      flat.push(name, toByteString(header[1]));
    }
    const close = this.#closeConnection;
    if (typeof close === 'boolean' ? close : close.mustClose) flat.push('Connection', 'close');
    this.status = code;
    this.#res.writeHead(code, toByteString(reason), flat);
  }

  write(chunk: Uint8Array): void | Promise<void> {
    this.bytes += chunk.length;
    if (!this.#wrote && this.#held === null) {
      this.#held = chunk;
      process.nextTick(releaseHeld, this);
      return;
    }
    this.release();
    this.#wrote = true;
    return writeToStream(this.#res, chunk);
  }

  /** Writes the held first chunk, if it is still held (the response did not end in its tick). */
  release(): void {
    const chunk = this.#held;
    if (chunk === null) return;
    this.#held = null;
    const res = this.#res;
    if (!res.destroyed && !res.writableEnded) {
      this.#wrote = true;
      res.write(chunk);
    }
  }

  /** The last chunk and the end: a response of one small chunk leaves with its head in one write. */
  endWith(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.release();
    this.#held = chunk;
    this.end();
  }

  end(): void {
    this.#end();
    this.settle();
  }

  #end(): void {
    const res = this.#res;
    const last = this.#held;
    this.#held = null;
    if (res.destroyed || res.writableEnded) return;
    if (last === null) {
      res.end();
    } else {
      // Node sends what is left with the end, in one writev.
      res.end(last);
    }
    // Nothing to wait for: Node flushes the rest on its own, and a connection that closes first fires the
    // request's abort ('close' before 'finish').
  }

  /** The app flushed its head (SPEC 4.1): Node sends it now instead of with the first body bytes. */
  flush(): void {
    const res = this.#res;
    // (headersSent is already true after writeHead: it says the head is stored, not that it left.)
    if (!res.destroyed && !res.writableEnded) res.flushHeaders();
  }

  abort(): void {
    // The head promised a body that won't come (G3; runApp has logged why): closing the connection is the
    // only way left to say so.
    this.release();
    const res = this.#res;
    const socket = res.socket;
    if (this.#abort.reason !== null || !socket || socket.destroyed) {
      res.destroy();
      return;
    }
    // Let the bytes already written reach the client first, or it might see nothing at all.
    const timer = setTimeout(() => socket.destroy(), ABORT_FLUSH_TIMEOUT_MS);
    timer.unref();
    socket.write(EMPTY, () => {
      clearTimeout(timer);
      socket.destroy();
    });
  }
}

function releaseHeld(sink: NodeSink): void {
  sink.release();
}

function sendContinue(res: ServerResponse): void {
  if (!res.headersSent && !res.writableEnded && !res.destroyed) res.writeContinue();
}

function expectsContinue(req: IncomingMessage): boolean {
  const expect = req.headers.expect;
  return req.httpVersion === '1.1' && expect !== undefined && EXPECT_CONTINUE_RE.test(expect);
}

function isChunked(req: IncomingMessage): boolean {
  const transferEncoding = req.headers['transfer-encoding'];
  return transferEncoding !== undefined && /(?:^|,)\s*chunked\s*$/i.test(transferEncoding);
}

/** "::ffff:127.0.0.1" (an IPv4 client on a dual-stack socket) -> "127.0.0.1". */
function unmapIpv4(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** Refuses a declared Content-Length above the limit before the app runs (413, like the other servers). */
function checkDeclaredLength(req: IncomingMessage, maxBodyBytes: number): void {
  const declared = req.headers['content-length'];
  if (declared === undefined || maxBodyBytes === Number.POSITIVE_INFINITY) return;
  // A malformed value never gets here: Node's parser refuses it.
  if (Number(declared) > maxBodyBytes) {
    throw new RequestError(`http: request body exceeds maxBodyBytes (${declared} > ${maxBodyBytes})`, 413);
  }
}

/** Clears a body timer; returns null for the variable that held it. */
function stopTimer(timer: NodeJS.Timeout): null {
  clearTimeout(timer);
  return null;
}

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new TsgiError(`http: ${name} must be a whole number >= ${min} (${value})`);
  }
  return value;
}

function checkMaxBodyBytes(value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!(value >= 0) || (!Number.isSafeInteger(value) && value !== Number.POSITIVE_INFINITY)) {
    throw new TsgiError(`http: maxBodyBytes must be a whole number of bytes (${value})`);
  }
  return value;
}

function logAccess(settings: Settings, req: IncomingMessage, sink: NodeSink, started: number): void {
  if (!settings.accessLog) return;
  const remote = req.socket.remoteAddress ?? '-';
  const ms = (performance.now() - started).toFixed(1);
  const status = sink.status === 0 ? '-' : String(sink.status);
  const line = `${remote} - - [${new Date().toISOString()}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${sink.bytes} ${ms}ms`;
  try {
    settings.accessLog(line);
  } catch (error) {
    settings.errors.write(`tsgi: http: access log failed: ${describeError(error)}\n`);
  }
}
