/**
 * The tsgi interface, stated as types. docs/SPEC.md is the prose version of the same contract; every rule
 * there has a type or a field here.
 */

/** A chunk of response body: bytes, or a string that the server encodes as UTF-8. */
export type Chunk = Uint8Array | string;

/**
 * What an app returns: a sync or async iterable of chunks. If it has a `close()` method, the server calls it
 * exactly once, however the response ends (completed, failed, or the client went away).
 */
export type Body = (Iterable<Chunk> | AsyncIterable<Chunk>) & { close?: () => void | Promise<void> };

/**
 * Sends body bytes right away (after the status line and headers). Present for apps ported from imperative
 * APIs; prefer returning an iterable. The returned promise settles when the server can take more
 * (backpressure); awaiting it is optional but recommended for large writes.
 */
export type Write = (chunk: Chunk) => Promise<void>;

/** A response header as a [name, value] pair. Names are case-insensitive; order and repetition are kept. */
export type Header = [name: string, value: string];

/**
 * Begins the response. `status` is "NNN Reason" (e.g. "200 OK"); `headers` are [name, value] pairs.
 * Nothing is sent yet: the status and headers go out with the first non-empty body chunk (or at the end for
 * an empty body), so an app may call startResponse again with `excInfo` to replace them while handling an
 * error. Once they have been sent, a call with `excInfo` re-throws `excInfo`.
 */
export type StartResponse = (status: string, headers: Header[], excInfo?: unknown) => Write;

/** The request body stream. Never yields more than CONTENT_LENGTH bytes. */
export interface InputStream extends AsyncIterable<Uint8Array> {
  /**
   * Reads up to `n` bytes (all that remain when `n` is omitted). Resolves with fewer than `n` bytes only at
   * the end of the body, and with an empty array once the body is exhausted. Rejects with an InputError when
   * the client sent fewer bytes than CONTENT_LENGTH promised, and with the abort reason when the client went
   * away.
   */
  read(n?: number): Promise<Uint8Array>;
}

/** Where an app writes diagnostics: the web server's error log, stderr, or the FastCGI STDERR stream. */
export interface ErrorStream {
  write(text: string): void;
  flush?(): void;
}

/** Keys that tsgi itself defines in every environ. */
export interface TsgiKeys {
  /** Always [1, 0] for this version of the interface. */
  'tsgi.version': readonly [1, 0];
  /** "https" when the request came over TLS (HTTPS on/1/yes, or REQUEST_SCHEME), else "http". */
  'tsgi.url_scheme': 'http' | 'https';
  /** The request body; see InputStream. */
  'tsgi.input': InputStream;
  /**
   * True when the input stream ends by itself at the end of the body even without CONTENT_LENGTH (a
   * chunked upload the server de-chunks). When false and CONTENT_LENGTH is absent, the body is empty.
   */
  'tsgi.input_terminated': boolean;
  /** The error stream. */
  'tsgi.errors': ErrorStream;
  /** Fires when the client goes away (or the web server aborts the request). */
  'tsgi.signal': AbortSignal;
  /** True when the same process may run several requests at once. */
  'tsgi.multithread': boolean;
  /** True when several processes may serve the same app. */
  'tsgi.multiprocess': boolean;
  /** True when this process will serve one request only (CGI). */
  'tsgi.run_once': boolean;
}

/** The CGI/1.1 meta-variables (RFC 3875 §4.1). Values follow the byte policy: one char per byte (latin-1). */
export interface CgiVariables {
  REQUEST_METHOD: string;
  /** "" or a path starting with "/" but not "/" alone: where the app is mounted. */
  SCRIPT_NAME: string;
  /** "" or a path starting with "/": the rest of the path, percent-decoded. */
  PATH_INFO: string;
  /** The raw query string, without "?"; "" when there is none. */
  QUERY_STRING: string;
  SERVER_NAME: string;
  SERVER_PORT: string;
  SERVER_PROTOCOL: string;
  CONTENT_TYPE?: string;
  /** Decimal digits only; absent when the request has no body. */
  CONTENT_LENGTH?: string;
  GATEWAY_INTERFACE?: string;
  REMOTE_ADDR?: string;
  REMOTE_HOST?: string;
  REMOTE_PORT?: string;
  REMOTE_USER?: string;
  AUTH_TYPE?: string;
  PATH_TRANSLATED?: string;
  SERVER_SOFTWARE?: string;
  REQUEST_URI?: string;
  HTTPS?: string;
}

/**
 * Everything a request brings: CGI variables (including one HTTP_* key per request header), tsgi.* keys, and
 * whatever middleware adds under its own dotted prefix. A plain, mutable object.
 */
export interface Environ extends CgiVariables, TsgiKeys {
  [header: `HTTP_${string}`]: string | undefined;
  [key: string]: unknown;
}

/** A tsgi application. */
export type App = (environ: Environ, startResponse: StartResponse) => Body | Promise<Body>;

/** A function that wraps an app and returns an app. */
export type Middleware = (app: App) => App;
