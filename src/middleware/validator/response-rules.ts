import { isHopByHop } from '../../response/hop-by-hop.js';
import { TOKEN_RE } from '../../response/status.js';
import { LintError } from '../../errors.js';
import { isThenable } from '../../thenable.js';
import type { Chunk, Header, StartResponse, Write } from '../../types.js';
import { describeType, type WarningHandler } from './report.js';

const ignoreWarning: WarningHandler = () => {};

/** What the validator knows about one response; shared by the startResponse, write and body checks. */
export interface ResponseState {
  /** True for a HEAD request: the body must be empty. */
  readonly isHead: boolean;
  /** startResponse was called. */
  started: boolean;
  /** The status code of the latest startResponse call. */
  code: number;
  /** The declared Content-Length of the latest startResponse call, or null. */
  contentLength: number | null;
  /** A non-empty chunk went out (yielded or written): the head is sent and can no longer be replaced. */
  headSent: boolean;
  /** Body bytes produced so far, from the iterable and from write(). */
  bytes: number;
  /** The body's close() ran. */
  closed: boolean;
}

/** Creates the initial state for a request; `isHead` when REQUEST_METHOD is HEAD. */
export function createResponseState(isHead: boolean): ResponseState {
  return { isHead, started: false, code: 0, contentLength: null, headSent: false, bytes: 0, closed: false };
}

/** Checks a status line (F12) and returns its code. Throws LintError; warns about a missing reason or a code above 599. */
export function checkStatusLine(status: unknown, warn: WarningHandler = ignoreWarning): number {
  // F12: the status is a string: 3 digits (>= 100), one space, a reason phrase, no control characters.
  if (typeof status !== 'string') throw new LintError('F12', 'status must be a string', describeType(status));
  const match = /^(\d{3}) (.*)$/s.exec(status);
  if (!match) throw new LintError('F12', 'status must be 3 digits, a space and a reason', status);
  const code = Number(match[1]);
  if (code < 100) throw new LintError('F12', 'status code must be at least 100', status);
  const reason = match[2] as string;
  if (/[\0-\x1f\x7f]/.test(reason)) throw new LintError('F12', 'status holds a control character', status);
  if (/[^\0-\xff]/.test(reason)) throw new LintError('F12', 'status holds a char above U+00FF', status);
  if (reason.trim() === '') warn({ rule: 'F12', message: 'status has no reason phrase', value: status });
  if (code > 599) warn({ rule: 'F12', message: 'status code is above 599', value: status });
  return code;
}

/**
 * Checks response headers against the status (F13-F15, F23) and returns the declared Content-Length, or null.
 * Throws LintError for the first hard failure; warns about values with surrounding whitespace and a 200 that
 * carries Location.
 */
export function checkResponseHeaders(headers: unknown, code: number, warn: WarningHandler = ignoreWarning): number | null {
  // F13: headers are an array of [name, value] string pairs.
  if (!Array.isArray(headers)) throw new LintError('F13', 'headers must be an array of [name, value] pairs', describeType(headers));
  let contentType = false;
  let contentLength: number | null = null;
  let location: string | null = null;
  for (const pair of headers as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new LintError('F13', 'each header must be a [name, value] pair', describeType(pair));
    const [name, value] = pair as [unknown, unknown];
    if (typeof name !== 'string') throw new LintError('F13', 'header name must be a string', describeType(name));
    if (typeof value !== 'string') throw new LintError('F13', `header value must be a string (${name})`, describeType(value));
    // F13: the name is a token and not "Status" (the status has its own argument).
    if (!TOKEN_RE.test(name)) throw new LintError('F13', 'header name must be a token', name);
    const lower = name.toLowerCase();
    if (lower === 'status') throw new LintError('F13', '"Status" is not a header; pass it as the status', name);
    // F13: values hold no control characters (CR/LF would split the response) and no char above U+00FF.
    if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) throw new LintError('F13', `header value holds a control character (${name})`, value);
    if (/[^\0-\xff]/.test(value)) throw new LintError('F13', `header value holds a char above U+00FF (${name})`, value);
    if (value !== value.trim()) warn({ rule: 'F13', message: `header value has surrounding whitespace (${name})`, value });
    // F14: the fields a response may not carry (response/hop-by-hop.ts, the list every server drops) belong
    // to the server, never to the app. (Transfer-Encoding: chunked is the one exception, SPEC 3: it asks that
    // no Content-Length be computed.)
    if (isHopByHop(name) && !(lower === 'transfer-encoding' && value.trim().toLowerCase() === 'chunked')) {
      throw new LintError('F14', 'hop-by-hop header is not allowed', name);
    }
    if (lower === 'content-type') contentType = true;
    if (lower === 'location') location = value;
    // F13: Content-Length at most once, and decimal digits only.
    if (lower === 'content-length') {
      if (contentLength !== null) throw new LintError('F13', 'Content-Length given twice', value);
      if (!/^\d+$/.test(value)) throw new LintError('F13', 'Content-Length must be decimal digits', value);
      contentLength = Number(value);
    }
  }
  // F15: Content-Type is required, except with 1xx, 204 and 304, which may carry neither it nor Content-Length.
  const bodyless = code < 200 || code === 204 || code === 304;
  if (bodyless && contentType) throw new LintError('F15', `Content-Type is not allowed with status ${code}`);
  if (bodyless && contentLength !== null) throw new LintError('F15', `Content-Length is not allowed with status ${code}`);
  // A redirect or any answer declared empty (Content-Length: 0) says nothing a Content-Type could describe:
  // frameworks send those without one (Hono's redirect, Express's sendStatus on HEAD), so it is only a warning.
  const declaredEmpty = contentLength === 0 || (code >= 300 && code < 400);
  if (!bodyless && !contentType) {
    if (declaredEmpty) warn({ rule: 'F15', message: `no Content-Type with status ${code} and no body` });
    else throw new LintError('F15', `Content-Type is required with status ${code}`);
  }
  // F23: Apache (mod_cgi, mod_cgid, mod_fcgid) takes a 200 with Location from a CGI script or FastCGI app for
  // a redirect of its own (RFC 3875 §6.2.2): a local path serves that resource in place of the answer, an
  // absolute URL becomes a 302; over HTTP and other hosts the app's own answer goes out. Allowed, but the
  // answer then depends on the host: a redirect wants a 3xx status, a created resource 201.
  if (code === 200 && location !== null) {
    warn({ rule: 'F23', message: 'a 200 response carries Location (Apache CGI and mod_fcgid turn it into a redirect): use 3xx or 201', value: location });
  }
  return contentLength;
}

/** Adds a chunk's size to the response and checks it against a HEAD request, the status, and Content-Length (F21). */
export function countChunk(state: ResponseState, chunk: Chunk): void {
  const size = typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk.length;
  // An empty chunk after startResponse sends the head too (SPEC 4.1), though no body byte.
  if (state.started) state.headSent = true;
  if (size === 0) return;
  state.bytes += size;
  // F21: a HEAD body is empty, and so is the body of a 1xx, 204 or 304.
  if (state.isHead) throw new LintError('F21', 'the body of a HEAD response must be empty', state.bytes);
  if (state.code < 200 || state.code === 204 || state.code === 304) {
    throw new LintError('F21', `the body of a ${state.code} response must be empty`, state.bytes);
  }
  // F21: no more bytes than the declared Content-Length.
  if (state.contentLength !== null && state.bytes > state.contentLength) {
    throw new LintError('F21', `body is longer than its Content-Length (${state.contentLength})`, state.bytes);
  }
}

/**
 * Wraps the server's startResponse to check rules F11-F17 as the app calls it: argument count, status,
 * headers, a second call only with excInfo, the server re-throwing excInfo once the head was sent, and the
 * write function it returns.
 */
export function wrapStartResponse(startResponse: StartResponse, state: ResponseState, warn: WarningHandler): StartResponse {
  return function checkedStartResponse(...args: unknown[]): Write {
    // F11: startResponse takes (status, headers) or (status, headers, excInfo).
    if (args.length < 2 || args.length > 3) throw new LintError('F11', 'startResponse takes 2 or 3 arguments', args.length);
    const [status, headers, excInfo] = args;
    const hasExcInfo = excInfo !== undefined && excInfo !== null;
    // F16: a second call needs excInfo, and once the head is sent the server must re-throw excInfo.
    if (state.started && !hasExcInfo) throw new LintError('F16', 'startResponse called again without excInfo');
    if (hasExcInfo && state.headSent) {
      (startResponse as (...rest: unknown[]) => Write)(...args);
      throw new LintError('F16', 'the server must re-throw excInfo once the head was sent; its startResponse returned');
    }
    const code = checkStatusLine(status, warn);
    const contentLength = checkResponseHeaders(headers, code, warn);
    const write = (startResponse as (...rest: unknown[]) => unknown)(...args);
    // F17 (server side): startResponse returns the write function.
    if (typeof write !== 'function') throw new LintError('F17', 'startResponse must return a write function', describeType(write));
    state.started = true;
    state.code = code;
    state.contentLength = contentLength;
    return wrapWrite(write as Write, state);
  } as StartResponse;
}

function wrapWrite(write: Write, state: ResponseState): Write {
  return function checkedWrite(...args: unknown[]): Promise<void> {
    // F17: write takes exactly one chunk (Uint8Array or string), while the response is open.
    if (args.length !== 1) throw new LintError('F17', 'write takes one argument', args.length);
    const chunk = args[0];
    if (!(chunk instanceof Uint8Array) && typeof chunk !== 'string') throw new LintError('F17', 'write needs a Uint8Array or string', describeType(chunk));
    if (state.closed) throw new LintError('F17', 'write called after the body was closed');
    countChunk(state, chunk);
    const result = write(chunk) as unknown;
    // F17 (server side): write returns a promise that settles when the server can take more.
    if (!isThenable(result)) {
      throw new LintError('F17', 'write must return a promise', describeType(result));
    }
    return result as Promise<void>;
  };
}
