import { RequestError } from '../errors.js';
import type { Environ, InputStream } from '../types.js';
import { decodeLatin1Utf8 } from '../environ/byte-policy.js';
import { variablesToHeaders } from '../environ/header-variables.js';
import { parseCookies } from './cookies.js';
import { parseMultipart } from './multipart.js';
import { percentEncodePath } from '../environ/percent-encode.js';

/** Default cap for bytes(), text(), json() and url-encoded formData(): 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Default cap for a whole multipart/form-data body: 16 MiB. */
export const DEFAULT_MAX_MULTIPART_BYTES = 16 * 1024 * 1024;
/** Default cap on the number of file parts in a multipart body. */
export const DEFAULT_MAX_FILES = 100;
/** Default cap on the number of non-file fields in a form. */
export const DEFAULT_MAX_FIELDS = 1000;
/** Default cap on one non-file field's value: 1 MiB. */
export const DEFAULT_MAX_FIELD_BYTES = 1024 * 1024;

/** Limits on reading the request body. Going over one rejects with RequestError 413. */
export interface RequestOptions {
  /** bytes(), text(), json() and url-encoded formData(); default DEFAULT_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** A whole multipart/form-data body; default DEFAULT_MAX_MULTIPART_BYTES. */
  maxMultipartBytes?: number;
  /** One file part; default: maxMultipartBytes. */
  maxFileBytes?: number;
  /** Number of file parts; default DEFAULT_MAX_FILES. */
  maxFiles?: number;
  /** Number of non-file fields; default DEFAULT_MAX_FIELDS. */
  maxFields?: number;
  /** One non-file field's value; default DEFAULT_MAX_FIELD_BYTES. */
  maxFieldBytes?: number;
}

/**
 * A read-only, case-insensitive view of the request headers an environ carries: every HTTP_* key
 * (HTTP_X_FORWARDED_FOR is "x-forwarded-for") plus CONTENT_TYPE and CONTENT_LENGTH. Names come out lower-case
 * and sorted; values are byte strings under the environ's byte policy (one char per byte).
 */
export class RequestHeaders implements Iterable<[string, string]> {
  readonly #map: Map<string, string>;

  /** Reads the headers out of `environ` once; later changes to the environ are not seen. */
  constructor(environ: Environ) {
    const pairs = variablesToHeaders(environ);
    pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.#map = new Map(pairs);
  }

  /** The value of header `name`, or null. */
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }

  /** True when the request has header `name`. */
  has(name: string): boolean {
    return this.#map.has(name.toLowerCase());
  }

  /** The [name, value] pairs. */
  entries(): IterableIterator<[string, string]> {
    return this.#map.entries();
  }

  /** The lower-case names. */
  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  /** The values. */
  values(): IterableIterator<string> {
    return this.#map.values();
  }

  /** Calls `callback(value, name)` for each header, like Headers.forEach. */
  forEach(callback: (value: string, name: string, headers: RequestHeaders) => void): void {
    for (const [name, value] of this.#map) callback(value, name, this);
  }

  /** Same as entries(). */
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#map.entries();
  }
}

/**
 * A convenience view of one request's environ. Getters read the environ when called (the headers, cookies and
 * URL are computed once and cached). Text getters decode the environ's byte strings as UTF-8.
 *
 * The body is read once: bytes(), text() and json() share one buffered copy, capped by `maxBodyBytes`.
 * formData() of a multipart body streams the input into the parser and keeps only the parsed FormData, so
 * bytes(), text() or json() after it reject; formData() after bytes() parses the buffered copy. Reading
 * `body` directly bypasses all of this.
 */
export class Request {
  /** The environ this request reads. */
  readonly environ: Environ;
  readonly #options: Required<RequestOptions>;
  #headers: RequestHeaders | undefined;
  #cookies: Readonly<Record<string, string>> | undefined;
  #url: URL | undefined;
  #bytes: Promise<Uint8Array> | undefined;
  #form: Promise<FormData> | undefined;
  #streamedMultipart = false;

  /** Wraps `environ`; `options` sets the body limits. */
  constructor(environ: Environ, options: RequestOptions = {}) {
    this.environ = environ;
    const maxMultipartBytes = options.maxMultipartBytes ?? DEFAULT_MAX_MULTIPART_BYTES;
    this.#options = {
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      maxMultipartBytes,
      maxFileBytes: options.maxFileBytes ?? maxMultipartBytes,
      maxFiles: options.maxFiles ?? DEFAULT_MAX_FILES,
      maxFields: options.maxFields ?? DEFAULT_MAX_FIELDS,
      maxFieldBytes: options.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES,
    };
  }

  /** REQUEST_METHOD ("GET", "POST", ...). */
  get method(): string {
    return this.environ.REQUEST_METHOD;
  }

  /** "http" or "https" (tsgi.url_scheme). */
  get scheme(): 'http' | 'https' {
    return this.environ['tsgi.url_scheme'] === 'https' ? 'https' : 'http';
  }

  /**
   * The host as in a URL's `host`: the Host header when it is usable, else SERVER_NAME with SERVER_PORT when
   * that is not the scheme's default port.
   */
  get host(): string {
    const header = this.environ.HTTP_HOST;
    if (typeof header === 'string' && /^[^\s/?#@\\]+$/.test(header)) return header.toLowerCase();
    let name = (this.environ.SERVER_NAME ?? '').toLowerCase();
    if (name.includes(':') && !name.startsWith('[')) name = `[${name}]`;
    const port = this.environ.SERVER_PORT;
    return port && port !== String(defaultPort(this.scheme)) ? `${name}:${port}` : name;
  }

  /** `host` without its port. */
  get hostname(): string {
    return this.host.replace(/:\d*$/, '');
  }

  /** The port the client addressed: the Host header's, the scheme's default when the header names none, else SERVER_PORT. */
  get port(): number {
    const match = /:(\d+)$/.exec(this.host);
    if (match) return Number(match[1]);
    return defaultPort(this.scheme);
  }

  /** SCRIPT_NAME decoded as UTF-8: where the app is mounted. */
  get scriptName(): string {
    return decodeLatin1Utf8(this.environ.SCRIPT_NAME ?? '');
  }

  /** PATH_INFO decoded as UTF-8: the path below the mount point. */
  get pathInfo(): string {
    return decodeLatin1Utf8(this.environ.PATH_INFO ?? '');
  }

  /** SCRIPT_NAME + PATH_INFO decoded as UTF-8 ("/" when both are empty). */
  get path(): string {
    return decodeLatin1Utf8((this.environ.SCRIPT_NAME ?? '') + (this.environ.PATH_INFO ?? '')) || '/';
  }

  /** The raw query string (QUERY_STRING, without "?"). */
  get queryString(): string {
    return this.environ.QUERY_STRING ?? '';
  }

  /** The query parameters, percent-decoded as UTF-8. A fresh object on each access. */
  get query(): URLSearchParams {
    return new URLSearchParams(decodeLatin1Utf8(this.queryString));
  }

  /** The full request URL, rebuilt from scheme, host, path (re-encoded) and query. */
  get url(): URL {
    if (this.#url === undefined) {
      const path = percentEncodePath((this.environ.SCRIPT_NAME ?? '') + (this.environ.PATH_INFO ?? '')) || '/';
      const query = this.queryString === '' ? '' : `?${decodeLatin1Utf8(this.queryString)}`;
      try {
        this.#url = new URL(`${this.scheme}://${this.host}${path}${query}`);
      } catch {
        this.#url = new URL(`${this.scheme}://localhost${path}${query}`);
      }
    }
    return new URL(this.#url.href);
  }

  /** `url` as a string. */
  get href(): string {
    return this.url.href;
  }

  /** The request headers, read-only. */
  get headers(): RequestHeaders {
    this.#headers ??= new RequestHeaders(this.environ);
    return this.#headers;
  }

  /** CONTENT_TYPE, or null when absent or empty. */
  get contentType(): string | null {
    return this.environ.CONTENT_TYPE || null;
  }

  /** CONTENT_LENGTH as a number, or null when absent. */
  get contentLength(): number | null {
    const value = this.environ.CONTENT_LENGTH;
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
  }

  /** The cookies of the Cookie header; see parseCookies. */
  get cookies(): Readonly<Record<string, string>> {
    this.#cookies ??= parseCookies(typeof this.environ.HTTP_COOKIE === 'string' ? this.environ.HTTP_COOKIE : '');
    return this.#cookies;
  }

  /** REMOTE_ADDR, or "" when the server did not set it. */
  get remoteAddr(): string {
    return this.environ.REMOTE_ADDR ?? '';
  }

  /** tsgi.signal: aborts when the client goes away. */
  get signal(): AbortSignal {
    return this.environ['tsgi.signal'];
  }

  /** tsgi.input, the raw body stream. */
  get body(): InputStream {
    return this.environ['tsgi.input'];
  }

  /**
   * The whole body, read once and cached. Rejects with RequestError 413 when CONTENT_LENGTH or the bytes
   * received exceed `maxBodyBytes`, with the input's own error when reading fails, and with RequestError 500
   * after a multipart formData() consumed the stream.
   */
  bytes(): Promise<Uint8Array> {
    if (this.#streamedMultipart) {
      return Promise.reject(new RequestError('request: body already consumed by formData() (multipart)', 500));
    }
    this.#bytes ??= readBody(this.body, this.contentLength, this.#options.maxBodyBytes, 'maxBodyBytes');
    return this.#bytes;
  }

  /** The body decoded as text: the Content-Type's charset when Node knows it, else UTF-8. */
  async text(): Promise<string> {
    const bytes = await this.bytes();
    return createDecoder(this.contentType).decode(bytes);
  }

  /** The body parsed as JSON. Rejects with RequestError 400 when it is empty or not JSON, 413 over the limit. */
  async json(): Promise<unknown> {
    const text = await this.text();
    if (text.trim() === '') throw new RequestError('request: body is not valid JSON (empty)', 400);
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new RequestError(`request: body is not valid JSON (${(error as Error).message})`, 400, error);
    }
  }

  /**
   * The form in the body, cached: application/x-www-form-urlencoded (capped by `maxBodyBytes`) or
   * multipart/form-data (streamed through @fastify/busboy; file parts become `File` objects holding their
   * exact bytes, named by their filename without its path, typed by their Content-Type). Rejects with
   * RequestError 415 for any other Content-Type, 400 for a malformed multipart body, 413 over a limit.
   */
  formData(): Promise<FormData> {
    this.#form ??= this.#readForm();
    return this.#form;
  }

  async #readForm(): Promise<FormData> {
    const contentType = this.contentType ?? '';
    const mediaType = (contentType.split(';', 1)[0] ?? '').trim().toLowerCase();
    if (mediaType === 'application/x-www-form-urlencoded') {
      const params = new URLSearchParams(new TextDecoder().decode(await this.bytes()));
      const form = new FormData();
      let count = 0;
      for (const [name, value] of params) {
        if (++count > this.#options.maxFields) throw new RequestError(`request: form has more than maxFields (${this.#options.maxFields})`, 413);
        form.append(name, value);
      }
      return form;
    }
    if (mediaType === 'multipart/form-data') {
      let source: AsyncIterable<Uint8Array>;
      if (this.#bytes !== undefined) {
        source = toAsyncIterable(await this.#bytes);
      } else {
        const declared = this.contentLength;
        if (declared !== null && declared > this.#options.maxMultipartBytes) {
          throw new RequestError(`request: body exceeds maxMultipartBytes (${declared})`, 413);
        }
        this.#streamedMultipart = true;
        source = this.body;
      }
      return parseMultipart(source, contentType, this.#options);
    }
    throw new RequestError(`request: formData() needs a form Content-Type (${JSON.stringify(contentType)})`, 415);
  }
}

async function readBody(input: InputStream, declared: number | null, limit: number, limitName: string): Promise<Uint8Array> {
  if (declared !== null && declared > limit) throw new RequestError(`request: body exceeds ${limitName} (${declared})`, 413);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of input) {
    total += chunk.length;
    if (total > limit) throw new RequestError(`request: body exceeds ${limitName} (${total})`, 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

async function* toAsyncIterable(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  if (bytes.length > 0) yield bytes;
}

function createDecoder(contentType: string | null): TextDecoder {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1];
  if (charset !== undefined) {
    try {
      return new TextDecoder(charset);
    } catch {
      // An unknown label: fall back to UTF-8, what the web assumes today.
    }
  }
  return new TextDecoder();
}


function defaultPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 443 : 80;
}
