/**
 * The bridges between tsgi and the Fetch API (WinterTC-style handlers: `(request: Request) => Response`):
 * - fromFetch(handler) runs a Fetch handler (Hono's `app.fetch`, itty-router, ...) as a tsgi App, under any
 *   tsgi transport (CGI, FastCGI, the HTTP server);
 * - toFetch(app) runs a tsgi App as a Fetch handler, for hosts that speak Fetch (Deno.serve, Bun.serve, a
 *   service worker, or a Fetch app that mounts another).
 *
 * Both stream bodies in both directions with backpressure: nothing is read from a source before the consumer
 * asks for it (a few chunks of lookahead at most), so a slow reader slows the writer instead of filling memory.
 *
 * Bytes. CGI variables are byte strings (docs/SPEC.md, the byte policy). A Request URL is text, so fromFetch
 * re-encodes the decoded PATH_INFO bytes as percent-escapes ("\u00c3\u00a9" -> "%C3%A9"); the Fetch app decodes
 * them once, as it would behind any Fetch server. Header values are ByteStrings in the Fetch API too: they
 * pass through unchanged.
 */
import { HOP_BY_HOP_HEADERS } from '../response/status.js';
import { AbortError, AppError, RequestError, TsgiError } from '../errors.js';
import { encodeUtf8Latin1, percentDecodeToByteString, rawPathBelow } from '../environ/byte-policy.js';
import { createEnviron } from '../environ/create-environ.js';
import { headersToVariables, variablesToHeaders } from '../environ/header-variables.js';
import { STATUS_TEXT } from '../helpers/status-text.js';
import { runApp, type ResponseSink } from '../response/run-app.js';
import type { App, Body, Environ, ErrorStream, Header, InputStream } from '../types.js';
import { readVersion } from '../version.js';

/**
 * A Fetch handler. It gets the environ as its second argument, which Hono exposes as `c.env` (so a handler can
 * reach `tsgi.errors`, REMOTE_ADDR or SCRIPT_NAME); handlers that take one argument ignore it.
 */
export type FetchHandler = (request: Request, environ: Environ) => Response | Promise<Response>;

/** Options for fromFetch. */
export interface FromFetchOptions {
  /**
   * Put SCRIPT_NAME in front of PATH_INFO in the Request URL. Default false: the handler sees the path below
   * its mount point, the way Hono's `app.mount()` and Express's `app.use(prefix, sub)` hand a mounted app its
   * paths, so the same app routes alike as `/cgi-bin/app.cgi`, behind `--mount /app` or at the root.
   */
  includeScriptName?: boolean;
}

/** Options for toFetch. */
export interface ToFetchOptions {
  /**
   * The mount prefix ("/app"): it becomes SCRIPT_NAME and is cut from PATH_INFO. A request whose decoded path
   * is neither the prefix nor below it gets a 404 and never reaches the app. Default "" (root).
   */
  scriptName?: string;
  /** Where `tsgi.errors` goes. Default: process.stderr. */
  errors?: ErrorStream;
  /**
   * Extra CGI variables per request (REMOTE_ADDR from the host's connection info, HTTPS behind a proxy...).
   * They override what toFetch derived from the Request.
   */
  variables?: (request: Request) => Record<string, string | undefined>;
}

/**
 * How many response body bytes toFetch queues ahead of the consumer before the app's writes wait for it to
 * read: enough to keep a fast consumer busy, small enough that a slow one bounds the app's memory.
 */
export const FETCH_RESPONSE_HIGH_WATER_BYTES = 64 * 1024;

/** Statuses whose Response must have a null body (Fetch: "null body status"), besides 1xx which it can't carry. */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([204, 205, 304]);


/**
 * RFC 9110 §7.2 Host = uri-host [ ":" port ] without userinfo (T33: "a.com@evil.com" must not become the URL's
 * host). "_" is allowed: internal host names use it and the URL parser keeps it.
 */
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=]+)(?::[0-9]{0,5})?$/;
const NON_LATIN1_RE = /[^\x00-\xff]/;
/** A path of pchars and well-formed escapes only: what the URL parser keeps exactly as it is. */
const RAW_PATH_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;
const DEFAULT_ERRORS: ErrorStream = { write: (text) => void process.stderr.write(text) };

/**
 * What each byte becomes in a URL path: itself when RFC 3986 allows it in a path segment (unreserved,
 * sub-delims, ":", "@") or "/", else its percent-escape. "%" is escaped too: PATH_INFO is decoded, so a "%"
 * in it was "%25" on the wire, and leaving it bare would decode twice. "\\" is escaped because the URL parser
 * would turn it into "/".
 */
const PATH_BYTE = buildByteTable(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]/);
/**
 * The same for QUERY_STRING, which is raw (still escaped): only what can't stand in a URL is escaped (controls,
 * space, "#" and bytes above 0x7E); "%" stays, so existing escapes are kept as they are.
 */
const QUERY_BYTE = buildByteTable(/[\x21\x22\x24-\x7e]/);

function buildByteTable(keep: RegExp): string[] {
  const table: string[] = [];
  for (let byte = 0; byte < 256; byte++) {
    const char = String.fromCharCode(byte);
    table.push(keep.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`);
  }
  return table;
}

/** Percent-encodes a byte string with `table`; a char above U+00FF (a broken byte policy) goes as its UTF-8 bytes. */
function encodeByteString(value: string, table: readonly string[]): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 256) {
      out += table[code] as string;
    } else {
      for (const byte of Buffer.from(value.slice(i, i + 1), 'utf8')) out += table[byte] as string;
    }
  }
  return out;
}

// --- fromFetch --------------------------------------------------------------------------------------------

/**
 * Runs a Fetch handler as a tsgi App. Per request it builds a global `Request`:
 * - URL: `tsgi.url_scheme`, the Host header (else SERVER_NAME and SERVER_PORT), PATH_INFO (after SCRIPT_NAME
 *   with `includeScriptName`) as the client spelled it in REQUEST_URI when that agrees, else re-encoded as
 *   percent-escapes, and QUERY_STRING with only what a URL can't hold escaped;
 * - method REQUEST_METHOD; headers from every HTTP_* variable plus CONTENT_TYPE and CONTENT_LENGTH;
 * - body: a pull-based ReadableStream over `tsgi.input` (`duplex: 'half'`), read only as the handler reads;
 *   GET and HEAD have none (Fetch forbids it);
 * - signal: `tsgi.signal`.
 * The Response goes back as status and statusText (the standard reason when empty), its headers (several
 * Set-Cookie stay separate; hop-by-hop headers are dropped) and its body, read chunk by chunk as the
 * transport takes them. The body's reader is cancelled when the client goes away or the response ends early.
 * A request the Fetch API can't represent (a Host with userinfo, CONNECT/TRACE, a header value it refuses)
 * gets a RequestError (400, 501) before the handler runs.
 */
export function fromFetch(handler: FetchHandler, options: FromFetchOptions = {}): App {
  const includeScriptName = options.includeScriptName ?? false;
  return async (environ, startResponse) => {
    const request = buildRequest(environ, includeScriptName);
    const response: unknown = await handler(request, environ);
    if (!isResponse(response)) {
      throw new AppError(`fetch: the handler must return a Response (${Object.prototype.toString.call(response)})`);
    }
    if (response.type === 'error' || response.status < 200) {
      throw new AppError(`fetch: the handler returned a network error, not a response (status ${response.status})`);
    }
    const reason = response.statusText || (STATUS_TEXT[response.status] ?? '');
    startResponse(reason ? `${response.status} ${reason}` : String(response.status), responseHeaders(response.headers));
    return response.body ? readBody(response.body, environ['tsgi.signal']) : [];
  };
}

/** Builds the Request fromFetch hands to the handler (see fromFetch). Throws RequestError for what can't be one. */
function buildRequest(environ: Environ, includeScriptName: boolean): Request {
  const path = pathOf(environ, includeScriptName) || '/';
  const query = environ.QUERY_STRING ? `?${encodeByteString(environ.QUERY_STRING, QUERY_BYTE)}` : '';
  const url = `${environ['tsgi.url_scheme']}://${hostOf(environ)}${path}${query}`;

  const headers = new Headers();
  for (const [name, value] of variablesToHeaders(environ)) {
    try {
      headers.append(name, value);
    } catch (error) {
      throw new RequestError(`fetch: a request header the Fetch API refuses (${name})`, 400, error);
    }
  }

  const method = environ.REQUEST_METHOD;
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: environ['tsgi.signal'] };
  const length = environ.CONTENT_LENGTH;
  const hasBody = length !== undefined ? length !== '0' : environ['tsgi.input_terminated'];
  if (hasBody && method !== 'GET' && method !== 'HEAD') {
    init.body = inputToStream(environ['tsgi.input']);
    init.duplex = 'half';
  }
  try {
    return new Request(url, init);
  } catch (error) {
    // undici refuses CONNECT, TRACE and TRACK ("forbidden methods"); everything else it refuses is malformed.
    if (/method/i.test((error as Error).message)) {
      throw new RequestError(`fetch: method not supported by the Fetch API (${method.slice(0, 20)})`, 501, error);
    }
    throw new RequestError(`fetch: request can't be a Request (${url.slice(0, 120)})`, 400, error);
  }
}

/**
 * The URL path: the client's own spelling from REQUEST_URI when it decodes to exactly SCRIPT_NAME + PATH_INFO
 * (so "%2F" stays "%2F", which decoding made "/"), else PATH_INFO re-encoded. A REQUEST_URI that a rewrite
 * changed, or that holds anything but pchars and well-formed escapes, is not used.
 */
function pathOf(environ: Environ, includeScriptName: boolean): string {
  const scriptName = environ.SCRIPT_NAME;
  const pathInfo = environ.PATH_INFO;
  const uri = environ.REQUEST_URI;
  if (typeof uri === 'string' && uri.startsWith('/')) {
    const rawPath = uri.split('?', 1)[0] as string;
    if (RAW_PATH_RE.test(rawPath)) {
      const below = rawPathBelow(rawPath, scriptName, pathInfo);
      if (below !== null) return includeScriptName ? rawPath : below;
    }
  }
  return encodeByteString((includeScriptName ? scriptName : '') + pathInfo, PATH_BYTE);
}

/** The authority of the Request URL: the Host header when there is one, else SERVER_NAME[:SERVER_PORT]. */
function hostOf(environ: Environ): string {
  const host = environ.HTTP_HOST;
  if (host !== undefined && host !== '') {
    if (!HOST_RE.test(host)) throw new RequestError(`fetch: bad Host header (${JSON.stringify(host).slice(0, 80)})`);
    return host;
  }
  const name = environ.SERVER_NAME;
  if (!HOST_RE.test(name)) throw new RequestError(`fetch: bad SERVER_NAME (${JSON.stringify(name).slice(0, 80)})`);
  const port = environ.SERVER_PORT;
  const standard = environ['tsgi.url_scheme'] === 'https' ? '443' : '80';
  return port && port !== standard && /^[0-9]+$/.test(port) ? `${name}:${port}` : name;
}

/**
 * A ReadableStream over `tsgi.input`. highWaterMark 0: it pulls a chunk only when the handler is waiting for
 * one, so the body moves at the handler's pace (and, through the transport, the client's).
 */
function inputToStream(input: InputStream): ReadableStream<Uint8Array> {
  let iterator: AsyncIterator<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= input[Symbol.asyncIterator]();
        const step = await iterator.next();
        if (step.done) controller.close();
        else controller.enqueue(step.value);
      },
      async cancel() {
        await iterator?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Duck-typed, not instanceof: a handler may build its Response with another copy of the Fetch classes. */
function isResponse(value: unknown): value is Response {
  const candidate = value as Partial<Response> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.status === 'number' &&
    typeof candidate.headers?.forEach === 'function' &&
    'body' in candidate
  );
}

/** A Response's headers as tsgi pairs: one pair per Set-Cookie (never joined: RFC 6265 §3), hop-by-hop dropped. */
function responseHeaders(headers: Headers): Header[] {
  const out: Header[] = [];
  headers.forEach((value, name) => {
    if (name !== 'set-cookie' && !HOP_BY_HOP_HEADERS.has(name)) out.push([name, value]);
  });
  for (const cookie of headers.getSetCookie()) out.push(['set-cookie', cookie]);
  return out;
}

/**
 * The tsgi body over a Response body: each `next()` reads one chunk, so the transport's pace sets the
 * stream's. When `signal` fires, the reader is cancelled (which settles a read that waits for a slow producer,
 * such as server-sent events) and the body fails with the abort reason; `close()` cancels a body that was not
 * read to its end.
 */
function readBody(stream: ReadableStream<Uint8Array>, signal: AbortSignal): Body {
  const reader = stream.getReader();
  let finished = false;
  const finish = async (reason?: unknown): Promise<void> => {
    if (finished) return;
    finished = true;
    signal.removeEventListener('abort', onAbort);
    if (reason === undefined) return;
    try {
      await reader.cancel(reason);
    } catch {
      // A stream that errored can't be cancelled; there is nothing left to release.
    }
  };
  const onAbort = (): void => void finish(abortReason(signal));
  signal.addEventListener('abort', onAbort, { once: true });

  // The first read: when it is not ready by the end of this turn of the event loop, the body yields an empty
  // chunk first, so the head leaves at once (SPEC 4.1: server-sent events, long polls), as Node's Fetch
  // servers send a Response's head before its body.
  let first: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  let firstTried = false;
  const iterator: AsyncIterator<Uint8Array> = {
    async next() {
      if (signal.aborted) throw abortReason(signal);
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        if (!firstTried) {
          firstTried = true;
          const read = reader.read();
          const ready = await Promise.race([read, nextTurn()]);
          if (ready === NOT_YET) {
            first = read;
            return { done: false, value: EMPTY_CHUNK };
          }
          step = ready as ReadableStreamReadResult<Uint8Array>;
        } else if (first !== null) {
          const read = first;
          first = null;
          step = await read;
        } else {
          step = await reader.read();
        }
      } catch (error) {
        finished = true;
        signal.removeEventListener('abort', onAbort);
        throw error;
      }
      // A cancel on abort ends a pending read as "done": that is not the end of the body.
      if (signal.aborted) throw abortReason(signal);
      if (step.done) {
        await finish();
        return { done: true, value: undefined };
      }
      const chunk: unknown = step.value;
      if (!(chunk instanceof Uint8Array)) {
        const error = new AppError(`fetch: response body chunks must be Uint8Array (${Object.prototype.toString.call(chunk)})`);
        await finish(error);
        throw error;
      }
      return { done: false, value: chunk };
    },
    async return() {
      await finish(new AbortError('fetch: the response body was not read to its end'));
      return { done: true, value: undefined };
    },
  };
  return {
    [Symbol.asyncIterator]: () => iterator,
    close: () => finish(signal.aborted ? abortReason(signal) : new AbortError('fetch: the response body was not read to its end')),
  };
}

const NOT_YET = Symbol('not yet');
const EMPTY_CHUNK = new Uint8Array(0);

/** Resolves to NOT_YET once the current turn of the event loop (its I/O callbacks) is over. */
function nextTurn(): Promise<typeof NOT_YET> {
  return new Promise((resolve) => setImmediate(resolve, NOT_YET));
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new AbortError();
}

// --- toFetch ----------------------------------------------------------------------------------------------

/**
 * Runs a tsgi App as a Fetch handler: `(request) => Promise<Response>`. Per request it builds the environ with
 * createEnviron, as every transport does:
 * - SCRIPT_NAME the mount prefix, PATH_INFO the rest of the URL path percent-decoded into a byte string,
 *   QUERY_STRING and REQUEST_URI raw, SERVER_NAME/SERVER_PORT from the URL, HTTPS for an https: URL;
 * - one HTTP_* per request header (Authorization included; Proxy never), CONTENT_TYPE and CONTENT_LENGTH;
 * - `tsgi.input` reads `request.body` as the app reads (without Content-Length the body ends where the
 *   stream ends: `tsgi.input_terminated`);
 * - `tsgi.signal` fires when `request.signal` does, or when the consumer cancels the Response body.
 * The promise resolves as soon as the app's status and headers are known; the body then streams through a
 * ReadableStream that queues at most FETCH_RESPONSE_HIGH_WATER_BYTES ahead of its reader (the app's writes
 * wait beyond that). Several Set-Cookie headers stay separate (`headers.getSetCookie()`). An app that fails
 * before its headers gets the usual plain 500 page; after them, the body stream errors. The promise rejects
 * only when the request was aborted before any response.
 */
export function toFetch(app: App, options: ToFetchOptions = {}): (request: Request) => Promise<Response> {
  const scriptName = normalizeScriptName(options.scriptName ?? '');
  const errors = options.errors ?? DEFAULT_ERRORS;
  const variables = options.variables;
  return (request) => handleRequest(app, request, scriptName, errors, variables);
}

function normalizeScriptName(scriptName: string): string {
  if (scriptName === '' || scriptName === '/') return '';
  if (!scriptName.startsWith('/') || /[?#]/.test(scriptName)) {
    throw new TsgiError(`fetch: scriptName must be "" or a path starting with "/" (${JSON.stringify(scriptName)})`);
  }
  return scriptName.replace(/\/+$/, '');
}

async function handleRequest(
  app: App,
  request: Request,
  scriptName: string,
  errors: ErrorStream,
  extraVariables: ToFetchOptions['variables'],
): Promise<Response> {
  const url = new URL(request.url);
  const path = percentDecodeToByteString(url.pathname);
  if (scriptName !== '' && path !== scriptName && !path.startsWith(`${scriptName}/`)) {
    return plainResponse(404);
  }
  const method = request.method;
  const variables: Record<string, string | undefined> = headersToVariables(request.headers, { passAuthorization: true });
  const https = url.protocol === 'https:';
  variables.HTTP_HOST ??= url.host;
  variables.REQUEST_METHOD = method;
  variables.SCRIPT_NAME = scriptName;
  variables.PATH_INFO = path.slice(scriptName.length);
  variables.QUERY_STRING = url.search.slice(1);
  variables.REQUEST_URI = `${url.pathname}${url.search}`;
  variables.SERVER_NAME = url.hostname;
  variables.SERVER_PORT = url.port || (https ? '443' : '80');
  variables.SERVER_PROTOCOL = 'HTTP/1.1';
  variables.SERVER_SOFTWARE = `tsgi/${readVersion()}`;
  variables.GATEWAY_INTERFACE = 'CGI/1.1';
  if (https) variables.HTTPS = 'on';
  const body = method === 'GET' || method === 'HEAD' ? null : request.body;
  // No body, no CONTENT_LENGTH (RFC 3875 §4.1.2), whatever the headers claim.
  if (body === null) delete variables.CONTENT_LENGTH;
  if (extraVariables) Object.assign(variables, extraVariables(request));

  // Fires on request.signal and when the Response body is cancelled: the two ways the client can go away.
  const abort = new AbortController();
  const onRequestAbort = (): void => abort.abort(new AbortError('fetch: the request was aborted'));
  if (request.signal.aborted) onRequestAbort();
  else request.signal.addEventListener('abort', onRequestAbort, { once: true });

  let environ: Environ;
  try {
    environ = createEnviron({
      variables,
      ownsVariables: true,
      input: body ? streamToInput(body) : null,
      inputTerminated: body !== null && variables.CONTENT_LENGTH === undefined,
      errors,
      signal: abort.signal,
      multithread: true,
      multiprocess: false,
      runOnce: false,
    });
  } catch (error) {
    request.signal.removeEventListener('abort', onRequestAbort);
    errors.write(`tsgi: fetch: request refused: ${(error as Error).message}\n`);
    return plainResponse(error instanceof TsgiError ? error.status : 400);
  }

  const isHead = method === 'HEAD';
  return new Promise<Response>((resolve, reject) => {
    const output = new ResponseOutput(abort, isHead);
    const sink: ResponseSink = {
      sendHead: (code, reason, headers) => resolve(output.start(code, reason, headers)),
      write: (chunk) => output.write(chunk),
      end: () => output.end(),
      abort: (error) => {
        if (output.started) {
          output.fail(error);
        } else if (abort.signal.aborted) {
          reject(abortReason(abort.signal));
        } else {
          // The head could not be a Response (output.start threw): answer a plain 500 instead.
          resolve(plainResponse(500));
        }
      },
    };
    void runApp(app, environ, sink).then((result) => {
      request.signal.removeEventListener('abort', onRequestAbort);
      // runApp always sends a head or aborts; settle anyway so a caller never waits forever.
      if (!output.started) reject(result.error ?? new AbortError('fetch: the app produced no response'));
    });
  });
}

/** A plain-text status page ("404 Not Found\n"), as runApp's error pages look. */
function plainResponse(code: number): Response {
  const reason = STATUS_TEXT[code] ?? 'Error';
  const page = `${code} ${reason}\n`;
  return new Response(page, {
    status: code,
    statusText: reason,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(page.length) },
  });
}

/** The request body as the async iterable createEnviron reads: one reader.read() per pull, nothing ahead. */
function streamToInput(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const reader = stream.getReader();
      let done = false;
      try {
        for (;;) {
          const step = await reader.read();
          if (step.done) {
            done = true;
            return;
          }
          yield step.value;
        }
      } finally {
        // Reached when the app stopped reading early: let the request body go.
        if (!done) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    },
  };
}

/**
 * The Response side of toFetch: builds the Response at the head and feeds its body stream. `write()` returns
 * nothing while the queue is below the high-water mark, else a promise that settles when the reader pulls
 * (or cancels): the backpressure runApp waits on.
 */
class ResponseOutput {
  started = false;
  readonly #abort: AbortController;
  readonly #head: boolean;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #waiting: (() => void) | null = null;
  #closed = false;

  constructor(abort: AbortController, head: boolean) {
    this.#abort = abort;
    this.#head = head;
  }

  start(code: number, reason: string, list: Header[]): Response {
    const headers = new Headers();
    try {
      if (code < 200 || code > 599) throw new AppError(`fetch: a Response can't carry this status (${code})`);
      for (const [name, value] of list) {
        const lower = name.toLowerCase();
        if (HOP_BY_HOP_HEADERS.has(lower)) continue;
        headers.append(name, toByteString(value));
      }
    } catch (error) {
      throw error instanceof AppError ? error : new AppError(`fetch: a response header the Fetch API refuses (${describe(error)})`, error);
    }
    const nullBody = this.#head || NULL_BODY_STATUSES.has(code);
    const body = nullBody
      ? null
      : new ReadableStream<Uint8Array>(
          {
            start: (controller) => {
              this.#controller = controller;
            },
            pull: () => this.#wake(),
            cancel: (cause: unknown) => {
              this.#closed = true;
              this.#abort.abort(new AbortError('fetch: the response body was cancelled', cause));
              this.#wake();
            },
          },
          { highWaterMark: FETCH_RESPONSE_HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
        );
    const response = new Response(body, { status: code, statusText: toByteString(reason), headers });
    this.started = true;
    return response;
  }

  write(chunk: Uint8Array): Promise<void> | void {
    const controller = this.#controller;
    if (!controller || this.#closed) return;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) > 0) return;
    return new Promise<void>((resolve) => {
      this.#waiting = resolve;
    });
  }

  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller?.close();
  }

  fail(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller?.error(error);
    this.#wake();
  }

  #wake(): void {
    const resolve = this.#waiting;
    this.#waiting = null;
    resolve?.();
  }
}

/** Header values and reasons are byte strings; a char above U+00FF can't be one, so it goes out as UTF-8. */
function toByteString(value: string): string {
  return NON_LATIN1_RE.test(value) ? encodeUtf8Latin1(value) : value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
