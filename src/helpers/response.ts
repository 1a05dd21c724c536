import { TOKEN_RE } from '../response/status.js';
import { AppError } from '../errors.js';
import type { App, Body, Chunk, Environ, Header, StartResponse } from '../types.js';
import { serializeCookie, type CookieOptions } from './cookies.js';
import { getStatusText } from './status-text.js';

/** What a Response can carry: text (sent as UTF-8), bytes, or a sync or async iterable of chunks. */
export type ResponseBody = string | Uint8Array | Iterable<Chunk> | AsyncIterable<Chunk> | null | undefined;

/** Initial headers: [name, value] pairs, a record (an array value gives repeated headers), or ResponseHeaders. */
export type ResponseHeadersInit = readonly Header[] | Readonly<Record<string, string | readonly string[]>> | ResponseHeaders;

/** Status and headers for `new Response(body, init)` and the static constructors. */
export interface ResponseInit {
  /** An integer in 100..999; default 200. */
  status?: number;
  /** The reason phrase; default: the STATUS_TEXT entry for the status ("Unknown" for codes not in it). */
  statusText?: string;
  headers?: ResponseHeadersInit;
}


// RFC 9110 §5.5: field values are visible ASCII, obs-text (0x80-0xFF), SP and HTAB; CR, LF and NUL never.
const BAD_HEADER_VALUE_RE = /[\0-\x08\x0a-\x1f\x7f]|[^\0-\xff]/;
const REDIRECT_STATUSES = new Set([300, 301, 302, 303, 307, 308]);

/**
 * An ordered, case-insensitive list of response headers. Order, repetition and the spelling of names are kept,
 * so several Set-Cookie headers stay separate. Names must be tokens; values may not hold control characters
 * (CR and LF especially: response splitting) nor characters above U+00FF. Violations throw AppError.
 */
export class ResponseHeaders implements Iterable<Header> {
  readonly #list: Header[] = [];

  /** Copies `init` (pairs, a record, or another ResponseHeaders). */
  constructor(init?: ResponseHeadersInit) {
    if (init === undefined) return;
    if (init instanceof ResponseHeaders || Array.isArray(init)) {
      for (const [name, value] of init as Iterable<Header>) this.append(name, value);
      return;
    }
    for (const [name, value] of Object.entries(init as Record<string, string | readonly string[]>)) {
      if (typeof value === 'string') this.append(name, value);
      else for (const item of value) this.append(name, item);
    }
  }

  /** Adds a header after the others, keeping any of the same name. */
  append(name: string, value: string): this {
    checkHeader(name, value);
    this.#list.push([name, value]);
    return this;
  }

  /** Replaces every header named `name` with one, at the place of the first of them (or at the end). */
  set(name: string, value: string): this {
    checkHeader(name, value);
    const lower = name.toLowerCase();
    const index = this.#list.findIndex(([key]) => key.toLowerCase() === lower);
    if (index === -1) {
      this.#list.push([name, value]);
      return this;
    }
    this.#list[index] = [name, value];
    for (let i = this.#list.length - 1; i > index; i--) {
      if ((this.#list[i] as Header)[0].toLowerCase() === lower) this.#list.splice(i, 1);
    }
    return this;
  }

  /** The values of `name` joined with ", ", or null when absent. Use getAll() for Set-Cookie. */
  get(name: string): string | null {
    const values = this.getAll(name);
    return values.length === 0 ? null : values.join(', ');
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    return this.#list.filter(([key]) => key.toLowerCase() === lower).map(([, value]) => value);
  }

  /** True when at least one header is named `name`. */
  has(name: string): boolean {
    const lower = name.toLowerCase();
    return this.#list.some(([key]) => key.toLowerCase() === lower);
  }

  /** Removes every header named `name`; returns true when there was one. */
  delete(name: string): boolean {
    const lower = name.toLowerCase();
    const before = this.#list.length;
    for (let i = before - 1; i >= 0; i--) {
      if ((this.#list[i] as Header)[0].toLowerCase() === lower) this.#list.splice(i, 1);
    }
    return this.#list.length !== before;
  }

  /** A fresh copy of the pairs, as startResponse takes them. */
  toArray(): Header[] {
    return this.#list.map(([name, value]): Header => [name, value]);
  }

  /** Iterates over copies of the pairs in order. */
  [Symbol.iterator](): Iterator<Header> {
    return this.toArray()[Symbol.iterator]();
  }
}

/** A Response is an App: call it with (environ, startResponse), or pass it wherever an App is expected. */
export interface Response {
  (environ: Environ, startResponse: StartResponse): Body;
}

/**
 * A response that is itself an App. `new Response(...)` returns a function object (its prototype chain runs
 * through Response.prototype to Function.prototype), so `const app: App = Response.json({ ok: true })`
 * type-checks and a server can run it directly; `instanceof Response` holds. `toApp()` returns the same object,
 * typed as App, for readability.
 *
 * Each call answers with the current status, headers and body:
 * - the status line is `${status} ${statusText}`;
 * - a string or Uint8Array body gets a Content-Length, and a Content-Type when none was set
 *   ("text/plain; charset=utf-8" for text and for no body, "application/octet-stream" for bytes and iterables);
 * - 1xx, 204 and 304 answers drop Content-Type and Content-Length and send no body;
 * - HEAD requests get the same headers and an empty body (an iterable body's close() is still passed on);
 * - an iterable body is returned as it is: a one-shot iterable (a generator) can serve one request only.
 */
export class Response {
  /** The status code, an integer in 100..999. */
  declare status: number;
  declare readonly headers: ResponseHeaders;
  declare body: ResponseBody;
  declare private reason: string | undefined;

  /** Builds a response; see ResponseInit for the defaults. Throws AppError for a bad status or header. */
  constructor(body?: ResponseBody, init: ResponseInit = {}) {
    const app = (environ: Environ, startResponse: StartResponse): Body => respond(self, environ, startResponse);
    Object.setPrototypeOf(app, new.target.prototype);
    const self = app as unknown as Response;
    const status = init.status ?? 200;
    checkStatus(status);
    Object.defineProperties(self, {
      status: { value: status, writable: true, enumerable: true },
      headers: { value: new ResponseHeaders(init.headers), enumerable: true },
      body: { value: body, writable: true, enumerable: true },
      reason: { value: init.statusText, writable: true },
    });
    return self;
  }

  /** The reason phrase: the one given in ResponseInit, or the table's for `status`. Settable. */
  get statusText(): string {
    return this.reason ?? getStatusText(this.status);
  }

  set statusText(text: string) {
    if (/[\0-\x1f\x7f]|[^\0-\xff]/.test(text)) throw new AppError(`response: status text holds a control character (${JSON.stringify(text)})`);
    this.reason = text;
  }

  /** This response typed as an App (the same object). */
  toApp(): App {
    return this;
  }

  /**
   * Appends a Set-Cookie header. Throws AppError when the name is not a token, the value holds characters
   * outside RFC 6265's cookie-octet (encode it first, e.g. with encodeURIComponent), an attribute holds a
   * control character or ";", `maxAge` is not an integer, `expires` is an invalid date, SameSite=None lacks
   * `secure`, or a `__Secure-`/`__Host-` prefix's requirements are not met.
   */
  setCookie(name: string, value: string, options: CookieOptions = {}): this {
    this.headers.append('Set-Cookie', serializeCookie(name, value, options));
    return this;
  }

  /** Appends a Set-Cookie header that expires cookie `name` (same `path` and `domain` as when it was set). */
  deleteCookie(name: string, options: Pick<CookieOptions, 'path' | 'domain' | 'secure' | 'httpOnly' | 'sameSite'> = {}): this {
    return this.setCookie(name, '', { ...options, maxAge: 0, expires: new Date(0) });
  }

  /** A JSON response ("application/json" unless init sets a Content-Type). Throws AppError when `value` does not serialize. */
  static json(value: unknown, init: ResponseInit = {}): Response {
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) throw new AppError(`response: value does not serialize to JSON (${typeof value})`);
    return withDefaultType(new Response(text, init), 'application/json');
  }

  /** A plain-text response ("text/plain; charset=utf-8" unless init sets a Content-Type). */
  static text(text: string, init: ResponseInit = {}): Response {
    return withDefaultType(new Response(text, init), 'text/plain; charset=utf-8');
  }

  /** An HTML response ("text/html; charset=utf-8" unless init sets a Content-Type). */
  static html(html: string, init: ResponseInit = {}): Response {
    return withDefaultType(new Response(html, init), 'text/html; charset=utf-8');
  }

  /**
   * A redirect to `location` with an empty text/plain body. `status` is one of 300, 301, 302 (default), 303,
   * 307, 308, else AppError. Characters outside visible ASCII in a string location are percent-encoded as UTF-8.
   */
  static redirect(location: string | URL, status = 302): Response {
    if (!REDIRECT_STATUSES.has(status)) throw new AppError(`response: redirect status must be 300-303, 307 or 308 (${status})`);
    const target = location instanceof URL ? location.href : encodeLocation(location);
    return new Response('', { status, headers: [['Location', target]] });
  }
}

// Instances are functions: give them call/apply/bind like any other App.
Object.setPrototypeOf(Response.prototype, Function.prototype);

function respond(response: Response, environ: Environ, startResponse: StartResponse): Body {
  const code = response.status;
  checkStatus(code);
  const body = response.body;
  const headers = response.headers.toArray();
  const bodyless = code < 200 || code === 204 || code === 304;
  const lengthOf =
    typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body instanceof Uint8Array ? body.length : body == null ? 0 : null;
  let sent = headers;
  if (bodyless) {
    sent = headers.filter(([name]) => !/^content-(?:type|length)$/i.test(name));
  } else {
    if (!response.headers.has('content-type')) {
      sent.push(['Content-Type', typeof body === 'string' || body == null ? 'text/plain; charset=utf-8' : 'application/octet-stream']);
    }
    if (lengthOf !== null && !response.headers.has('content-length')) sent.push(['Content-Length', String(lengthOf)]);
  }
  startResponse(`${code} ${response.statusText}`, sent);
  if (bodyless || environ.REQUEST_METHOD === 'HEAD') {
    const close = typeof body === 'object' && body !== null && 'close' in body ? (body as Body).close : undefined;
    return typeof close === 'function' ? Object.assign([], { close: () => close.call(body) }) : [];
  }
  if (body == null) return [];
  if (typeof body === 'string' || body instanceof Uint8Array) return body.length === 0 ? [] : [body];
  return body;
}

function withDefaultType(response: Response, type: string): Response {
  if (!response.headers.has('content-type')) response.headers.set('Content-Type', type);
  return response;
}

function checkStatus(status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new AppError(`response: status must be an integer in 100..999 (${status})`);
  }
}

function checkHeader(name: string, value: string): void {
  if (typeof name !== 'string' || !TOKEN_RE.test(name)) throw new AppError(`response: header name is not a token (${JSON.stringify(name)})`);
  if (name.toLowerCase() === 'status') throw new AppError('response: "Status" is not a header; set the status instead');
  if (typeof value !== 'string') throw new AppError(`response: header value must be a string (${name}: ${typeof value})`);
  if (BAD_HEADER_VALUE_RE.test(value)) {
    throw new AppError(`response: header value holds a control character or one above U+00FF (${name}: ${JSON.stringify(value)})`);
  }
}

function encodeLocation(location: string): string {
  return location.replace(/[^\x21-\x7e]/gu, (ch) => encodeURIComponent(ch));
}
