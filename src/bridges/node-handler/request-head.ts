/**
 * The request head a bridged handler sees, built from the environ: the raw header list both engines hand to
 * Node (title-cased names from HTTP_*, CONTENT_TYPE, CONTENT_LENGTH), how the body is framed, and (http-server
 * engine) the same head as HTTP/1.1 text for Node's parser.
 */
import { METHODS } from 'node:http';
import type { Environ } from '../../types.js';
import type { BodyMode, RequestHead } from './settings.js';

/** http.Server's default maxHeadersCount: headers past it are dropped, under either engine. */
const MAX_HEADERS_COUNT = 2000;
/** Methods llhttp parses; anything else travels as POST and is restored on `req.method`. */
const WIRE_METHODS = new Set(METHODS.filter((method) => method !== 'CONNECT' && method !== 'PRI'));
/** Methods that rarely carry a body: an unknown-length body is only framed for them when the client said so. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);
const HTTP_KEY_RE = /^HTTP_[A-Za-z0-9_]+$/;
// llhttp refuses control characters in header values (RFC 9110 §5.5); such a value can only come from a
// FastCGI param, and one header is better lost than the whole request.
const BAD_HEADER_VALUE_RE = /[\x00-\x08\x0a-\x1f\x7f]/;
const UPGRADE_RE = /upgrade/i;

/** Title-cased header names by CGI key ("HTTP_USER_AGENT" -> "User-Agent"); a bounded cache. */
const headerNames = new Map<string, string>();
const HEADER_NAME_CACHE = 512;

/** The request head the environ describes (both engines start from it). */
export function requestHeadOf(environ: Environ): RequestHead {
  const method = environ.REQUEST_METHOD;
  const raw: string[] = [];
  // "METHOD / HTTP/1.1\r\n" and the blank line: what the http-server engine sends (its url is always "/").
  let bytes = method.length + 17;
  let clientChunked = false;
  let expect: string | undefined;
  // (for...in: no array of keys per request; an environ has no inherited enumerable keys.)
  for (const key in environ) {
    if (!key.startsWith('HTTP_')) continue;
    const value = environ[key];
    if (typeof value !== 'string' || BAD_HEADER_VALUE_RE.test(value)) continue;
    // Framing is the bridge's (below); an upgrade can't happen over tsgi, and llhttp would stop parsing.
    switch (key) {
      case 'HTTP_TRANSFER_ENCODING':
        clientChunked = true;
        continue;
      case 'HTTP_UPGRADE':
      case 'HTTP_CONTENT_LENGTH':
      case 'HTTP_CONTENT_TYPE':
        continue;
      case 'HTTP_CONNECTION':
        if (UPGRADE_RE.test(value)) continue;
    }
    // (A cached name's key passed HTTP_KEY_RE when it was cached.)
    let name = headerNames.get(key);
    if (name === undefined) {
      if (!HTTP_KEY_RE.test(key)) continue;
      name = titleCase(key.slice(5));
      if (headerNames.size < HEADER_NAME_CACHE) headerNames.set(key, name);
    }
    const added = addHeader(raw, name, value);
    bytes += added;
    // (Unless the list was full, and the header dropped.)
    if (key === 'HTTP_EXPECT' && added > 0) expect = value;
  }
  if (environ.CONTENT_TYPE !== undefined && !BAD_HEADER_VALUE_RE.test(environ.CONTENT_TYPE)) bytes += addHeader(raw, 'Content-Type', environ.CONTENT_TYPE);
  let bodyMode: BodyMode = 'none';
  if (environ.CONTENT_LENGTH !== undefined) {
    bytes += addHeader(raw, 'Content-Length', environ.CONTENT_LENGTH);
    if (environ.CONTENT_LENGTH !== '0') bodyMode = 'length';
  } else if (environ['tsgi.input_terminated'] && (clientChunked || !BODYLESS_METHODS.has(method))) {
    bytes += addHeader(raw, 'Transfer-Encoding', 'chunked');
    bodyMode = 'chunked';
  }
  return { raw, bodyMode, bytes, expect };
}

/** Appends a header to the raw list unless it is full; returns its size as HTTP/1.1 text (0 when dropped). */
function addHeader(raw: string[], name: string, value: string): number {
  if (raw.length >= MAX_HEADERS_COUNT * 2) return 0;
  raw.push(name, value);
  return name.length + value.length + 4;
}

/** The http-server engine's request head as HTTP/1.1 text. */
export function serializeRequestHead(method: string, head: RequestHead): string {
  let text = `${WIRE_METHODS.has(method) ? method : 'POST'} / HTTP/1.1\r\n`;
  const raw = head.raw;
  for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${text}\r\n`;
}

/** "ACCEPT_LANGUAGE" -> "Accept-Language": the spelling most clients send, for rawHeaders. */
function titleCase(name: string): string {
  return name
    .toLowerCase()
    .split('_')
    .map((word) => (word === '' ? word : word[0]?.toUpperCase() + word.slice(1)))
    .join('-');
}
