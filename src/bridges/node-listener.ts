/**
 * The bridge from Node's HTTP server to a tsgi app: one request listener that turns an IncomingMessage into
 * CGI variables (environ/node-request-variables.ts), hands them to the shared translator (createEnviron) and
 * the shared response state machine (runApp), and sends the result through the ServerResponse
 * (node-listener/node-sink.ts); the request body reaches the app through node-listener/request-body.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createOwnedEnviron, type EnvironSettings } from '../environ/create-environ.js';
import { createForwardedPolicy, DEFAULT_FORWARDED_ALLOW_IPS, type ForwardedPolicy } from '../environ/forwarded-policy.js';
import { normalizeMount } from '../environ/mount.js';
import { buildVariables } from '../environ/node-request-variables.js';
import { AbortError, describeError, RequestError, statusOfError, TsgiError } from '../errors.js';
import { runAppEagerly, sendErrorPage } from '../response/run-app.js';
import type { LazyAbort } from '../servers/lazy-abort.js';
import { createLimitLog, type LimitLog } from '../servers/limit-log.js';
import { DEFAULT_BODY_TIMEOUT_MS } from '../servers/limits.js';
import type { App, Environ, ErrorStream } from '../types.js';
import { NodeSink } from './node-listener/node-sink.js';
import { RequestBody } from './node-listener/request-body.js';

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
  /**
   * Called with each response once its app ended it (or it was cut), for whoever tracks the server's
   * responses: createHttpServer lets go of it there (servers/http-drain.ts). Default: none.
   */
  onResponseEnded?: (res: ServerResponse) => void;
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

/** The same test Node's server applies before it emits 'checkContinue'. */
const EXPECT_CONTINUE_RE = /(?:^|\W)100-continue(?:$|\W)/i;

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
    onResponseEnded: options.onResponseEnded ?? null,
    maxBodyBytes: checkMaxBodyBytes(options.maxBodyBytes),
    multiprocess: options.multiprocess ?? false,
    maxHeaderEntries: 2 * checkCount('maxHeaders', options.maxHeaders ?? DEFAULT_LISTENER_MAX_HEADERS, 1),
    bodyTimeoutMs: checkCount('bodyTimeoutMs', options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS, 0),
    limitLog: options.limitLog ?? createLimitLog(errors, 'http'),
    forwarded: createForwardedPolicy(options.forwardedAllowIps ?? DEFAULT_FORWARDED_ALLOW_IPS),
    multithread: true,
    runOnce: false,
    afterResponse: (sink) => settle(settings, sink),
  };
  return (req, res) => {
    void handleRequest(app, req, res, settings);
  };
}

/** The listener's settings; also the environ settings of each of its requests (createOwnedEnviron). */
interface Settings extends EnvironSettings {
  errors: ErrorStream;
  scriptName: string;
  accessLog: ((line: string) => void) | undefined;
  deferContinue: boolean;
  abortsOnConnectionClose: boolean;
  onResponseEnded: ((res: ServerResponse) => void) | null;
  maxBodyBytes: number;
  multiprocess: boolean;
  /** 2 x maxHeaders: the length of req.rawHeaders at most. */
  maxHeaderEntries: number;
  bodyTimeoutMs: number;
  limitLog: LimitLog;
  forwarded: ForwardedPolicy;
  multithread: true;
  runOnce: false;
  /** What every NodeSink of this listener runs once its response ended (see settle). */
  afterResponse: (sink: NodeSink) => void;
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
    // The body is also the request's abort state (a LazyAbort): the AbortController is created only if the app
    // reads tsgi.signal, one per request costs measurable time.
    const body = new RequestBody(req, settings);
    const abort: LazyAbort = body;
    (res as TrackedResponse)[ABORT] = abort;
    if (!settings.abortsOnConnectionClose) res.on('close', onResponseClose);
    let environ: Environ;
    try {
      // Node's parser kept only the first header lines: what it dropped was never checked (field-notes: a
      // Transfer-Encoding past line 1,000 left the body unframed). Refused before anything else looks at them.
      if (req.rawHeaders.length > settings.maxHeaderEntries) {
        throw new RequestError(`http: more than ${settings.maxHeaderEntries / 2} request header lines`, 431);
      }
      checkDeclaredLength(req, settings.maxBodyBytes);
      const variables = buildVariables(req, settings.scriptName);
      // The header fields below are read from the variables (the same values, joined alike), not req.headers.
      // (buildVariables stores no undefined value: a key whose value is unknown is left out.)
      environ = createOwnedEnviron(
        variables as Record<string, string>,
        body,
        isChunked(variables.HTTP_TRANSFER_ENCODING),
        abort,
        settings.deferContinue && expectsContinue(req, variables.HTTP_EXPECT) ? () => sendContinue(res) : undefined,
        settings,
      );
    } catch (error) {
      void refuse(req, res, settings, abort, error, started);
      return;
    }
    // A body cut at maxBodyBytes, stalled or malformed leaves the rest of it on the wire: the connection can't be reused.
    const sink = new NodeSink(res, abort, body, settings.afterResponse, started);
    const run = runAppEagerly(app, environ, sink, abort);
    // The sink settles the request when the response ends (at once for a synchronous app); the run's end is
    // the fallback for a run that ended without ending the response (its error page could not be sent).
    if (!sink.settled) {
      if (run !== null) void run.then(() => sink.settle());
      else sink.settle();
    }
  } catch (error) {
    settings.errors.write(`tsgi: http: request handler failed: ${describeError(error)}\n`);
    res.destroy();
  }
}

/**
 * After the response: drops the body bytes the app left unread (they would stall the next request), logs, and
 * tells the server's tracker (onResponseEnded).
 */
function settle(settings: Settings, sink: NodeSink): void {
  if (sink.abortReason === null) sink.body?.discardRest();
  logAccess(settings, sink.response.req, sink, sink.startedAt);
  settings.onResponseEnded?.(sink.response);
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

function sendContinue(res: ServerResponse): void {
  if (!res.headersSent && !res.writableEnded && !res.destroyed) res.writeContinue();
}

/** True when the request asks for `100 Continue` (`expect`: its Expect field, as HTTP_EXPECT). */
function expectsContinue(req: IncomingMessage, expect: string | undefined): boolean {
  return expect !== undefined && req.httpVersion === '1.1' && EXPECT_CONTINUE_RE.test(expect);
}

/** True when the Transfer-Encoding field (as HTTP_TRANSFER_ENCODING) says the body is chunked. */
function isChunked(transferEncoding: string | undefined): boolean {
  return transferEncoding !== undefined && /(?:^|,)\s*chunked\s*$/i.test(transferEncoding);
}

/** Refuses a declared Content-Length above the limit before the app runs (413, like the other servers). */
function checkDeclaredLength(req: IncomingMessage, maxBodyBytes: number): void {
  if (maxBodyBytes === Number.POSITIVE_INFINITY) return;
  const declared = req.headers['content-length'];
  if (declared === undefined) return;
  // A malformed value never gets here: Node's parser refuses it.
  if (Number(declared) > maxBodyBytes) {
    throw new RequestError(`http: request body exceeds maxBodyBytes (${declared} > ${maxBodyBytes})`, 413);
  }
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
