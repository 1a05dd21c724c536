import { statusOfError } from '../errors.js';
import { STATUS_TEXT } from '../helpers/status-text.js';
import { isBodylessStatus } from '../response/status.js';
import type { App, Body, Chunk, Environ, Header, StartResponse, Write } from '../types.js';

/** Options for `accessLog`. */
export interface AccessLogOptions {
  /**
   * Receives one line per request, ending in "\n". An `fs.WriteStream` or `process.stderr` fits as it is. It
   * is called on the request path: it should queue the line (a stream write), not write synchronously to disk.
   */
  write(line: string): unknown;
  /** The clock, for tests. Default: `() => new Date()`. */
  now?: () => Date;
  /** The dates' offset from UTC in minutes (0 logs in UTC, -420 is -0700). Default: the local time zone's. */
  utcOffsetMinutes?: number;
  /**
   * "combined" (the default): Apache's Combined Log Format. "json": one JSON object a line (formatAccessLogJson):
   * time, remote address, method, URI, protocol, status, bytes, duration in ms, the process's pid, referer and
   * user agent, for log pipelines that parse JSON.
   */
  format?: 'combined' | 'json';
}

/** The fields of one Combined Log Format line. */
export interface AccessLogEntry {
  /** REMOTE_ADDR, or undefined. */
  host?: string | undefined;
  /** REMOTE_USER, or undefined. */
  user?: string | undefined;
  /** When the request arrived. */
  date: Date;
  /** The date's offset from UTC in minutes. Default: the local time zone's. */
  utcOffsetMinutes?: number | undefined;
  /** "GET /path?q=1 HTTP/1.1". */
  requestLine: string;
  /** The status code, or 0 when none was chosen. */
  status: number;
  /** Body bytes sent. */
  bytes: number;
  referer?: string | undefined;
  userAgent?: string | undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ESCAPED_CHAR_RE = /["\\\x00-\x1f\x7f-\uffff]/;
const NAMED_ESCAPES: Record<string, string> = { '\b': '\\b', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '"': '\\"', '\\': '\\\\' };

/**
 * Wraps `app` so that every request writes one line in the Combined Log Format (Apache's "combined", which
 * log analysers read as they are):
 *
 *     127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.1" 200 2326 "http://x/" "curl/8.5"
 *
 * - host is REMOTE_ADDR, authuser REMOTE_USER, ident always "-"; a missing value is "-".
 * - the date is when the request reached the middleware, in local time with its UTC offset.
 * - the request line is REQUEST_METHOD, REQUEST_URI (else SCRIPT_NAME + PATH_INFO + "?" + QUERY_STRING) and
 *   SERVER_PROTOCOL; `"`, `\`, control bytes and bytes above 0x7E are escaped (`\"`, `\\`, `\n`, `\xhh`) as
 *   Apache does, so a client cannot forge a line or a field.
 * - status is the app's (the last startResponse); when the app or its body failed before the response head
 *   went out, the status of the server's error page (the error's 4xx status, else 500).
 * - bytes counts the body bytes the app handed to the server, as actually sent: none for HEAD, 1xx, 204 and
 *   304, at most the declared Content-Length; "-" for none, as Apache writes it.
 *
 * The line is written once the request is finished: after the body's `close()` (which every tsgi server
 * calls exactly once), or at once when the app throws instead of returning a body. An array body stays an
 * array (servers compute its Content-Length).
 */
export function accessLog(app: App, options: AccessLogOptions): App {
  const now = options.now ?? (() => new Date());
  const write = options.write;
  const offset = options.utcOffsetMinutes;
  const json = options.format === 'json';
  if (options.format !== undefined && options.format !== 'combined' && !json) {
    throw new TypeError(`accessLog: format must be "combined" or "json" (${JSON.stringify(options.format)})`);
  }
  return async function logAccess(environ: Environ, startResponse: StartResponse): Promise<Body> {
    const state = new RequestState(environ, now(), offset, write, json);
    let body: Body;
    try {
      body = await app(environ, state.track(startResponse));
    } catch (error) {
      state.fail(error);
      state.finish();
      throw error;
    }
    return state.wrap(body);
  };
}

/** What the middleware learns about one request as it runs. */
class RequestState {
  readonly #environ: Environ;
  readonly #date: Date;
  readonly #offset: number | undefined;
  readonly #write: (line: string) => unknown;
  #status = 0;
  #declaredLength: number | null = null;
  #bytes = 0;
  /** A non-empty chunk reached the server: the response head went out with it. */
  #started = false;
  #failed = false;
  #failure: unknown = undefined;
  #finished = false;
  readonly #json: boolean;
  readonly #startedAt = performance.now();

  constructor(environ: Environ, date: Date, offset: number | undefined, write: (line: string) => unknown, json: boolean) {
    this.#environ = environ;
    this.#date = date;
    this.#offset = offset;
    this.#write = write;
    this.#json = json;
  }

  track(startResponse: StartResponse): StartResponse {
    return (status, headers, excInfo) => {
      const write = startResponse(status, headers, excInfo);
      // Recorded only once the server accepted the status and headers.
      this.#status = Number(/^\s*([0-9]{3})/.exec(status)?.[1] ?? 0);
      this.#declaredLength = declaredLengthOf(headers);
      return this.#trackWrite(write);
    };
  }

  #trackWrite(write: Write): Write {
    return (chunk: Chunk) => {
      this.#count(chunk);
      return write(chunk);
    };
  }

  #count(chunk: unknown): void {
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk instanceof Uint8Array ? chunk.length : 0;
    if (length === 0) return;
    this.#started = true;
    this.#bytes += length;
  }

  fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#failure = error;
  }

  /** Returns a body that counts what the server takes from `body` and logs after its close(). */
  wrap(body: Body): Body {
    if (body === null || typeof body !== 'object' || body instanceof Uint8Array) {
      // Not a body: the server answers 500 (AppError) and has nothing to close.
      this.fail(new Error('not a body'));
      this.finish();
      return body;
    }
    const close = async (): Promise<void> => {
      try {
        if (typeof body.close === 'function') await body.close();
      } finally {
        this.finish();
      }
    };
    if (Array.isArray(body)) {
      // Kept an array (a copy: the app's array may be shared between requests) so the server still computes
      // its Content-Length. Its bytes all go out unless the request ends early, which close() tells.
      for (const chunk of body as unknown[]) this.#count(chunk);
      return Object.assign(body.slice() as Chunk[], { close });
    }
    const asyncIterable = body as AsyncIterable<Chunk>;
    if (typeof asyncIterable[Symbol.asyncIterator] === 'function') {
      return {
        [Symbol.asyncIterator]: () => this.#countAsync(asyncIterable[Symbol.asyncIterator]()),
        close,
      };
    }
    const iterable = body as Iterable<Chunk>;
    if (typeof iterable[Symbol.iterator] === 'function') {
      return {
        [Symbol.iterator]: () => this.#countSync(iterable[Symbol.iterator]()),
        close,
      };
    }
    this.fail(new Error('not a body'));
    this.finish();
    return body;
  }

  #countSync(iterator: Iterator<Chunk>): Iterator<Chunk> {
    return {
      next: () => {
        let step: IteratorResult<Chunk>;
        try {
          step = iterator.next();
        } catch (error) {
          this.fail(error);
          throw error;
        }
        if (step.done !== true) this.#count(step.value);
        return step;
      },
      return: (value?: unknown) => (iterator.return ? iterator.return(value) : { done: true, value: undefined }),
    };
  }

  #countAsync(iterator: AsyncIterator<Chunk>): AsyncIterator<Chunk> {
    return {
      next: async () => {
        let step: IteratorResult<Chunk>;
        try {
          step = await iterator.next();
        } catch (error) {
          this.fail(error);
          throw error;
        }
        if (step.done !== true) this.#count(step.value);
        return step;
      },
      return: async (value?: unknown) => (iterator.return ? iterator.return(value) : { done: true, value: undefined }),
    };
  }

  /** Writes the line, once. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const environ = this.#environ;
    const isHead = environ.REQUEST_METHOD === 'HEAD';
    let status = this.#status;
    let bytes = this.#bytes;
    const clientGone = (environ['tsgi.signal'] as AbortSignal | undefined)?.aborted === true;
    if (!clientGone && ((this.#failed && !this.#started) || status === 0)) {
      // Nothing of the app's response went out (a failure before the head, or no startResponse at all): the
      // server answers with its error page (runApp's sendErrorPage).
      status = this.#failed ? statusOfError(this.#failure) : 500;
      bytes = isHead ? 0 : Buffer.byteLength(`${status} ${STATUS_TEXT[status] ?? 'Error'}\n`);
    } else {
      if (isHead || (status !== 0 && isBodylessStatus(status))) bytes = 0;
      if (this.#declaredLength !== null) bytes = Math.min(bytes, this.#declaredLength);
    }
    const entry: AccessLogEntry = {
      host: stringOf(environ.REMOTE_ADDR),
      user: stringOf(environ.REMOTE_USER),
      date: this.#date,
      utcOffsetMinutes: this.#offset,
      requestLine: requestLineOf(environ),
      status,
      bytes,
      referer: stringOf(environ.HTTP_REFERER),
      userAgent: stringOf(environ.HTTP_USER_AGENT),
    };
    const line = this.#json
      ? formatAccessLogJson(entry, {
          method: String(environ.REQUEST_METHOD),
          uri: requestUriOf(environ),
          protocol: String(environ.SERVER_PROTOCOL),
          durationMs: performance.now() - this.#startedAt,
        })
      : formatAccessLogLine(entry);
    try {
      this.#write(line);
    } catch (error) {
      // A broken log must not break the response; say so where the app's own diagnostics go.
      environ['tsgi.errors'].write(`tsgi.access-log: write failed (${error instanceof Error ? error.message : String(error)})\n`);
    }
  }
}

/** Formats one Combined Log Format line, with its "\n". */
export function formatAccessLogLine(entry: AccessLogEntry): string {
  const field = (value: string | undefined): string => (value ? escapeLogText(value) : '-');
  const quoted = (value: string | undefined): string => `"${value ? escapeLogText(value) : '-'}"`;
  return (
    `${field(entry.host)} - ${field(entry.user)} ${formatLogDate(entry.date, entry.utcOffsetMinutes)} "${escapeLogText(entry.requestLine)}" ` +
    `${entry.status > 0 ? entry.status : '-'} ${entry.bytes > 0 ? entry.bytes : '-'} ${quoted(entry.referer)} ${quoted(entry.userAgent)}\n`
  );
}

/**
 * Formats one JSON access log line, with its "\n": `{"time":"2026-12-03T10:00:00.123Z","remote":"127.0.0.1",
 * "user":null,"method":"GET","uri":"/a?b=1","protocol":"HTTP/1.1","status":200,"bytes":13,"duration_ms":0.42,
 * "pid":1234,"referer":null,"user_agent":"curl/8.5"}`. Strings are byte strings as the environ holds them,
 * decoded as latin-1 (JSON escapes every control character, so no line can be forged); absent values are null.
 */
export function formatAccessLogJson(
  entry: AccessLogEntry,
  request: { method: string; uri: string; protocol: string; durationMs: number },
): string {
  return `${JSON.stringify({
    time: entry.date.toISOString(),
    remote: entry.host ?? null,
    user: entry.user ?? null,
    method: request.method,
    uri: request.uri,
    protocol: request.protocol,
    status: entry.status > 0 ? entry.status : null,
    bytes: entry.bytes,
    duration_ms: Math.round(request.durationMs * 1000) / 1000,
    pid: process.pid,
    referer: entry.referer ?? null,
    user_agent: entry.userAgent ?? null,
  })}\n`;
}

/**
 * Apache's `%t`: "[10/Oct/2000:13:55:36 -0700]", local time. `offsetMinutes` is east of UTC (default: the
 * local zone's offset at that date).
 */
export function formatLogDate(date: Date, offsetMinutes: number = -date.getTimezoneOffset()): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const sign = offsetMinutes < 0 ? '-' : '+';
  const offset = Math.abs(offsetMinutes);
  return (
    `[${two(local.getUTCDate())}/${MONTHS[local.getUTCMonth()]}/${local.getUTCFullYear()}:` +
    `${two(local.getUTCHours())}:${two(local.getUTCMinutes())}:${two(local.getUTCSeconds())} ` +
    `${sign}${two(Math.floor(offset / 60))}${two(offset % 60)}]`
  );
}

/**
 * Escapes a byte string for a log field: `"` and `\` get a backslash, \b \n \r \t \v their C escapes, other
 * control bytes and bytes from 0x7F up `\xhh` (a char above U+00FF is escaped as its UTF-8 bytes).
 */
export function escapeLogText(text: string): string {
  if (!ESCAPED_CHAR_RE.test(text)) return text;
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (code >= 0x20 && code < 0x7f && char !== '"' && char !== '\\') {
      out += char;
      continue;
    }
    const named = NAMED_ESCAPES[char];
    if (named !== undefined) {
      out += named;
      continue;
    }
    const bytes = code <= 0xff ? [code] : [...Buffer.from(char, 'utf8')];
    for (const byte of bytes) out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** "METHOD target PROTOCOL" from the CGI variables. */
function requestLineOf(environ: Environ): string {
  const method = stringOf(environ.REQUEST_METHOD) ?? '-';
  const target = requestUriOf(environ);
  const protocol = stringOf(environ.SERVER_PROTOCOL);
  return protocol ? `${method} ${target} ${protocol}` : `${method} ${target}`;
}

/** REQUEST_URI, else SCRIPT_NAME + PATH_INFO + "?" + QUERY_STRING (else "/"). */
function requestUriOf(environ: Environ): string {
  const uri = stringOf(environ.REQUEST_URI);
  if (uri !== undefined) return uri;
  const query = stringOf(environ.QUERY_STRING);
  return `${stringOf(environ.SCRIPT_NAME) ?? ''}${stringOf(environ.PATH_INFO) ?? ''}${query ? `?${query}` : ''}` || '/';
}

function declaredLengthOf(headers: readonly Header[]): number | null {
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'content-length' && /^[0-9]+$/.test(value.trim())) return Number(value.trim());
  }
  return null;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
