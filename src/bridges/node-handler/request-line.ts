/**
 * The request line a bridged handler sees: `req.url` (and `req.originalUrl` when mounted), `req.method` and
 * `req.httpVersion*` from the environ, and the environ itself on the request (environOf).
 */
import type { IncomingMessage } from 'node:http';
import { rawPathBelow } from '../../environ/byte-policy.js';
import type { Environ } from '../../types.js';
import { ENVIRON } from './settings.js';
import { percentEncodePath } from '../../environ/percent-encode.js';

const PROTOCOL_RE = /^HTTP\/(\d+)(?:\.(\d+))?$/;
// RFC 3986 pchar plus "/": what may stay unescaped in a path rebuilt from the decoded PATH_INFO.

/** Sets url, method and version from the environ, and the environ itself, on a request. */
export function dressRequest(req: IncomingMessage, environ: Environ, urlMode: 'path-info' | 'request-uri'): void {
  (req as { [ENVIRON]?: Environ })[ENVIRON] = environ;
  const plain = urlMode === 'path-info' ? plainUrl(environ) : null;
  if (plain !== null) {
    req.url = plain;
  } else {
    const { url, originalUrl } = buildUrl(environ, urlMode);
    req.url = url;
    if (originalUrl !== undefined) (req as { originalUrl?: string }).originalUrl = originalUrl;
  }
  if (req.method !== environ.REQUEST_METHOD) req.method = environ.REQUEST_METHOD;
  const protocol = environ.SERVER_PROTOCOL === 'HTTP/1.1' ? null : PROTOCOL_RE.exec(environ.SERVER_PROTOCOL);
  if (protocol && `${protocol[1]}.${protocol[2] ?? '0'}` !== '1.1') {
    req.httpVersionMajor = Number(protocol[1]);
    req.httpVersionMinor = Number(protocol[2] ?? '0');
    req.httpVersion = `${req.httpVersionMajor}.${req.httpVersionMinor}`;
  } else if (req.httpVersion !== '1.1') {
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
  }
}

/**
 * The common request's url in "path-info" mode, without building anything: REQUEST_URI itself when nothing is
 * mounted (SCRIPT_NAME empty), its path is PATH_INFO as it is (so nothing in it was percent-encoded) and its query
 * is QUERY_STRING. buildUrl() gives the same string for such a request; null for any other.
 */
export function plainUrl(environ: Environ): string | null {
  const requestUri = environ.REQUEST_URI;
  if (environ.SCRIPT_NAME !== '' || typeof requestUri !== 'string') return null;
  const pathInfo = environ.PATH_INFO;
  const query = environ.QUERY_STRING;
  // (A "%" or "?" in PATH_INFO was percent-encoded in the request: buildUrl encodes it again.)
  if (pathInfo.charCodeAt(0) !== 0x2f || !requestUri.startsWith(pathInfo) || pathInfo.includes('%') || pathInfo.includes('?')) return null;
  if (requestUri.length === pathInfo.length) return query ? null : requestUri;
  // "?QUERY_STRING" must be all that follows the path (a "?" with nothing after it is left to buildUrl).
  if (!query || requestUri.charCodeAt(pathInfo.length) !== 0x3f || requestUri.length !== pathInfo.length + 1 + query.length) return null;
  return requestUri.endsWith(query) ? requestUri : null;
}

/**
 * `req.url` (and `req.originalUrl` when mounted) from the environ; see NodeHandlerOptions.url. PATH_INFO is
 * decoded, so the original encoding is recovered from REQUEST_URI when that decodes to SCRIPT_NAME + PATH_INFO
 * (a `%2F` stays `%2F`); otherwise the path is re-encoded.
 */
export function buildUrl(environ: Environ, mode: 'path-info' | 'request-uri'): { url: string; originalUrl?: string } {
  const query = environ.QUERY_STRING ? `?${environ.QUERY_STRING}` : '';
  const requestUri = typeof environ.REQUEST_URI === 'string' && environ.REQUEST_URI.startsWith('/') ? environ.REQUEST_URI : undefined;
  const full = requestUri ?? `${percentEncodePath(environ.SCRIPT_NAME + environ.PATH_INFO) || '/'}${query}`;
  if (mode === 'request-uri') return { url: full };
  let path: string | null = null;
  if (requestUri !== undefined) {
    const rawPath = requestUri.split('?', 1)[0] as string;
    path = rawPathBelow(rawPath, environ.SCRIPT_NAME, environ.PATH_INFO);
  }
  path ??= percentEncodePath(environ.PATH_INFO);
  const url = `${path || '/'}${query}`;
  return environ.SCRIPT_NAME === '' ? { url } : { url, originalUrl: full };
}
