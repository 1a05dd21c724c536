/**
 * fromFetch: the URL of the Request a Fetch handler gets, from the environ. CGI variables are byte strings
 * (docs/SPEC.md, the byte policy) while a URL is text, so PATH_INFO's decoded bytes are re-encoded as
 * percent-escapes ("\u00c3\u00a9" -> "%C3%A9"), unless REQUEST_URI still holds the client's own spelling.
 */
import { rawPathBelow } from '../../environ/byte-policy.js';
import { HOST_RE } from '../../environ/host.js';
import { percentEncode, percentEncodePath, percentEncodeTable } from '../../environ/percent-encode.js';
import { RequestError } from '../../errors.js';
import type { Environ } from '../../types.js';

/** A path of pchars and well-formed escapes only: what the URL parser keeps exactly as it is. */
const RAW_PATH_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;

/**
 * What each byte of QUERY_STRING, which is raw (still escaped), becomes in the URL: only what can't stand in a
 * URL is escaped (controls, space, "#" and bytes above 0x7E); "%" stays, so existing escapes are kept as they are.
 */
const QUERY_BYTE = percentEncodeTable(/[\x21\x22\x24-\x7e]/);

/**
 * The Request URL: `tsgi.url_scheme`, the authority (hostOf), the path (pathOf) and QUERY_STRING with only
 * what a URL can't hold escaped. Throws RequestError for a Host (or SERVER_NAME) that is not one.
 */
export function requestUrlOf(environ: Environ, includeScriptName: boolean): string {
  const path = pathOf(environ, includeScriptName) || '/';
  const query = environ.QUERY_STRING ? `?${percentEncode(environ.QUERY_STRING, QUERY_BYTE)}` : '';
  return `${environ['tsgi.url_scheme']}://${hostOf(environ)}${path}${query}`;
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
  return percentEncodePath((includeScriptName ? scriptName : '') + pathInfo);
}

/**
 * The authority of the Request URL: the Host header when there is one, else SERVER_NAME[:SERVER_PORT]. Both
 * must pass the Host rule (environ/host.ts; T33: "a.com@evil.com" must not become the URL's host).
 */
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
