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
 *
 * This file holds the entry points and their types; the work lives in fetch/, by direction:
 * - from-fetch-request.ts (the environ as a Request), from-fetch-url.ts (its URL), from-fetch-response.ts (the
 *   Response's head as tsgi status and headers), from-fetch-body.ts (its body as a tsgi Body);
 * - to-fetch-handler.ts (one Request through the app), to-fetch-environ.ts (the Request's CGI variables and
 *   input), to-fetch-response.ts (the app's answer as a Response);
 * - options.ts (the option and handler types), abort-reason.ts, shared by both.
 */
import { normalizeMount } from '../environ/mount.js';
import type { App, ErrorStream } from '../types.js';
import { readBody } from './fetch/from-fetch-body.js';
import { buildRequest } from './fetch/from-fetch-request.js';
import { checkResponse, responseHeaders, statusLineOf } from './fetch/from-fetch-response.js';
import type { FetchHandler, FromFetchOptions, ToFetchOptions } from './fetch/options.js';
import { handleRequest, type ToFetchSettings } from './fetch/to-fetch-handler.js';

export type { FetchHandler, FromFetchOptions, ToFetchOptions } from './fetch/options.js';
export { FETCH_RESPONSE_HIGH_WATER_BYTES } from './fetch/to-fetch-response.js';

const DEFAULT_ERRORS: ErrorStream = { write: (text) => void process.stderr.write(text) };

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
    const response = checkResponse(await handler(request, environ));
    startResponse(statusLineOf(response), responseHeaders(response.headers));
    return response.body ? readBody(response.body, environ['tsgi.signal']) : [];
  };
}

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
  const settings: ToFetchSettings = {
    scriptName: normalizeMount(options.scriptName ?? '', 'fetch: scriptName'),
    errors: options.errors ?? DEFAULT_ERRORS,
    variables: options.variables,
  };
  return (request) => handleRequest(app, request, settings);
}
