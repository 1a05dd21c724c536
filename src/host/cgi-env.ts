/**
 * Builds the environment of a CGI child from a request (RFC 3875 §4.1, conformance B1-B10).
 *
 * Byte policy. CGI variables are byte strings (one char per byte, latin-1), as everywhere in tsgi:
 * buildCgiVariables returns them in that form. A process environment, however, is handed to the child by
 * Node's child_process as UTF-8, so a byte string can't always reach the child byte for byte. buildChildEnv
 * converts each CGI value with toChildEnvValue: a value whose bytes are valid UTF-8 is passed as that text
 * (the child then sees exactly the original bytes); any other value is passed as its latin-1 text, which the
 * child sees UTF-8-encoded (0xE9 arrives as C3 A9). REQUEST_URI stays percent-encoded ASCII, so a script can
 * always recover the exact bytes of PATH_INFO from it (field-notes T24).
 *
 * "%2F" in the path. An encoded slash can't be told apart from a real one once PATH_INFO is decoded, so the
 * host refuses such a path with a 404 RequestError, as Apache does with its default `AllowEncodedSlashes Off`
 * (conformance B2). Dot segments ("." or "..", plain or encoded) and an encoded NUL are refused the same way:
 * the host doesn't normalise paths, and an env value can't hold NUL.
 */
import { TOKEN_RE } from '../response/status.js';
import { readVersion } from '../version.js';
import { isUtf8 } from 'node:buffer';
import { RequestError, TsgiError } from '../errors.js';
import { percentDecodeToByteString } from '../environ/byte-policy.js';
import { HOST_RE, hostWithoutPort } from '../environ/host.js';
import { toByteString } from '../environ/to-byte-string.js';
import { headersToVariables } from '../environ/header-variables.js';
import { percentEncodePath } from '../environ/percent-encode.js';

/** Request headers: a Node-style record (node:http's `req.headers` fits) or [name, value] pairs. */
export type CgiRequestHeaders =
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | ReadonlyArray<readonly [string, string]>;

/** The parts of a request that reach a CGI script through its environment. */
export interface CgiRequest {
  /** The request method. Default "GET". Must be a token. */
  method?: string;
  /**
   * The request target after the script name: an optional path starting with "/" (becomes PATH_INFO,
   * percent-decoded) and an optional "?query" (QUERY_STRING, raw). Default "": no PATH_INFO, empty query.
   * "/" gives PATH_INFO="/".
   */
  url?: string;
  /** Request headers; each becomes an HTTP_* variable, with the exceptions listed on buildCgiVariables. */
  headers?: CgiRequestHeaders;
  /** The request's protocol, e.g. "HTTP/1.0". Default "HTTP/1.1". */
  protocol?: string;
  /** The client's address. Default "127.0.0.1". */
  remoteAddress?: string;
  /** The client's port, when known (REMOTE_PORT). */
  remotePort?: number | string;
  /** The client's host name, when resolved; REMOTE_HOST falls back to the address (§4.1.9). */
  remoteHost?: string;
  /** The server's local address (SERVER_ADDR), when known. */
  localAddress?: string;
  /** True when the request came over TLS: HTTPS=on and REQUEST_SCHEME=https. */
  https?: boolean;
  /** The result of authentication done by the server (§4.1.1, §4.1.11): AUTH_TYPE and REMOTE_USER. */
  auth?: { type: string; user: string };
}

/** Server-side facts needed to build the CGI variables of a request. */
export interface CgiVariablesOptions {
  /** SCRIPT_NAME: the URL path of the script, starting with "/" and not ending with it (e.g. "/cgi-bin/s.cgi"). */
  scriptName: string;
  /** SCRIPT_FILENAME: the script's file path, when known (PHP and many frameworks read it). */
  scriptFilename?: string;
  /** The document root: DOCUMENT_ROOT, and PATH_TRANSLATED = documentRoot + PATH_INFO (§4.1.6). */
  documentRoot?: string;
  /** SERVER_NAME. Default: the host part of the Host header, else "localhost". */
  serverName?: string;
  /** SERVER_PORT: the local port the request came in on (never taken from Host). Default 80, 443 with https. */
  serverPort?: number | string;
  /** SERVER_SOFTWARE. Default "tsgi/<version of this package>". */
  serverSoftware?: string;
  /** The request body's length in bytes; undefined when the request has no body (no CONTENT_LENGTH/TYPE). */
  contentLength?: number;
  /** Export Authorization as HTTP_AUTHORIZATION (Apache's `CGIPassAuth On`). Default false (§9.2). */
  passAuthorization?: boolean;
}

/** Options of buildChildEnv: what the child gets besides the CGI variables. */
export interface ChildEnvOptions {
  /** Names copied from the parent's environment when set there. Default DEFAULT_ENV_ALLOW_LIST. PATH is always copied. */
  envAllowList?: readonly string[];
  /** Variables added last; they override everything else (the operator's explicit choice). */
  extraEnv?: Readonly<Record<string, string>>;
  /** The parent environment to copy allowed names from. Default process.env (read at call time). */
  parentEnv?: Readonly<Record<string, string | undefined>>;
}

/** Everything buildCgiEnv needs. */
export type CgiEnvOptions = CgiVariablesOptions & ChildEnvOptions;

/** Names copied from the parent's environment by default (B10): locale, time zone, temp dir, Windows basics. */
export const DEFAULT_ENV_ALLOW_LIST: readonly string[] = Object.freeze([
  'PATH',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'SystemRoot',
  'SYSTEMROOT',
  'WINDIR',
  'COMSPEC',
  'PATHEXT',
  'TEMP',
  'TMP',
]);

/** PATH given to the child when the parent has none. */
export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

const PROTOCOL_RE = /^HTTP\/[0-9](\.[0-9])?$/;
const BAD_TARGET_RE = /[\x00-\x20\x7f]/;
const BAD_VALUE_RE = /[\x00\r\n]/;

/**
 * Builds the CGI/1.1 variables of a request (§4.1), as byte strings:
 * GATEWAY_INTERFACE=CGI/1.1, SERVER_PROTOCOL (the request's), SERVER_SOFTWARE, SERVER_NAME, SERVER_PORT,
 * REQUEST_METHOD, REMOTE_ADDR, REMOTE_HOST, REMOTE_PORT (when known), SCRIPT_NAME, SCRIPT_FILENAME (when
 * known), PATH_INFO (percent-decoded; unset when the target has no path), PATH_TRANSLATED (documentRoot +
 * PATH_INFO; unset without PATH_INFO or documentRoot), DOCUMENT_ROOT, QUERY_STRING (raw, "" when none),
 * REQUEST_URI (raw), REQUEST_SCHEME, HTTPS, SERVER_ADDR, AUTH_TYPE/REMOTE_USER (from `request.auth`),
 * CONTENT_LENGTH/CONTENT_TYPE (only when there is a body), and one HTTP_* per request header, where:
 * repeated headers are joined with ", " (Cookie with "; "); Content-Type/Content-Length never become HTTP_*;
 * names holding "_" or "." or other non-token chars are dropped (B9, they would alias "-" names); `Proxy`
 * is dropped (httpoxy, CVE-2016-5385); Authorization only with `passAuthorization`; Proxy-Authorization and
 * Transfer-Encoding never (the body reaches the script de-chunked).
 * Throws a RequestError: 400 for a bad method, protocol, target or header value (CR, LF, NUL); 404 for "%2F",
 * a dot segment or an encoded NUL in the path (see the file comment).
 */
export function buildCgiVariables(request: CgiRequest, options: CgiVariablesOptions): Record<string, string> {
  const method = request.method ?? 'GET';
  if (!TOKEN_RE.test(method)) throw new RequestError(`cgi-host: method is not a token (${describe(method)})`);
  const protocol = request.protocol ?? 'HTTP/1.1';
  if (!PROTOCOL_RE.test(protocol)) throw new RequestError(`cgi-host: bad protocol (${describe(protocol)})`);
  const scriptName = options.scriptName;
  if (!scriptName.startsWith('/') || scriptName.endsWith('/') || BAD_VALUE_RE.test(scriptName)) {
    throw new TsgiError(`cgi-host: SCRIPT_NAME must start with "/" and not end with it (${describe(scriptName)})`);
  }
  const url = request.url ?? '';
  const { rawPath, query } = splitTarget(url);
  const pathInfo = decodePathInfo(rawPath);
  const headers = collectHeaders(request.headers);
  const https = request.https ?? false;
  const remoteAddress = request.remoteAddress ?? '127.0.0.1';

  const vars: Record<string, string> = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: protocol,
    SERVER_SOFTWARE: toByteString(options.serverSoftware ?? `tsgi/${readTsgiVersion()}`),
    SERVER_NAME: toByteString(options.serverName ?? hostnameOf(headers.get('host')) ?? 'localhost'),
    SERVER_PORT: String(options.serverPort ?? (https ? 443 : 80)),
    REQUEST_METHOD: method,
    REQUEST_SCHEME: https ? 'https' : 'http',
    REMOTE_ADDR: remoteAddress,
    REMOTE_HOST: request.remoteHost ?? remoteAddress,
    SCRIPT_NAME: toByteString(scriptName),
    QUERY_STRING: query,
    REQUEST_URI: percentEncodePath(toByteString(scriptName)) + toByteString(url),
  };
  if (https) vars.HTTPS = 'on';
  if (request.remotePort !== undefined) vars.REMOTE_PORT = String(request.remotePort);
  if (request.localAddress !== undefined) vars.SERVER_ADDR = request.localAddress;
  if (options.scriptFilename !== undefined) vars.SCRIPT_FILENAME = toByteString(options.scriptFilename);
  const documentRoot = options.documentRoot === undefined ? undefined : toByteString(options.documentRoot);
  if (documentRoot !== undefined) vars.DOCUMENT_ROOT = documentRoot;
  if (pathInfo !== '') {
    vars.PATH_INFO = pathInfo;
    // §4.1.6: PATH_TRANSLATED maps PATH_INFO into the document space; it is unset whenever PATH_INFO is.
    if (documentRoot !== undefined) vars.PATH_TRANSLATED = documentRoot.replace(/\/+$/, '') + pathInfo;
  }
  if (request.auth !== undefined) {
    vars.AUTH_TYPE = toByteString(request.auth.type);
    vars.REMOTE_USER = toByteString(request.auth.user);
  }
  if (options.contentLength !== undefined) {
    // §4.1.2-4.1.3: both describe the body, so both are unset for a request without one (B3).
    vars.CONTENT_LENGTH = String(options.contentLength);
    const contentType = headers.get('content-type');
    if (contentType !== undefined) vars.CONTENT_TYPE = contentType;
  }
  // The one header -> HTTP_* mapping (src/environ/header-variables.ts); the body's own variables were set above
  // from the body, and its Transfer-Encoding never reaches the script (the host de-chunks).
  const exported = headersToVariables(headers, { passAuthorization: options.passAuthorization ?? false });
  delete exported.CONTENT_TYPE;
  delete exported.CONTENT_LENGTH;
  delete exported.HTTP_TRANSFER_ENCODING;
  Object.assign(vars, exported);
  for (const [name, value] of Object.entries(vars)) {
    if (BAD_VALUE_RE.test(value)) throw new RequestError(`cgi-host: CR, LF or NUL in ${name} (${describe(value)})`);
  }
  return vars;
}

/**
 * Builds the complete environment of the child from CGI variables (byte strings, see buildCgiVariables):
 * the variables converted with toChildEnvValue, PATH (the parent's, else DEFAULT_PATH), the names of
 * `envAllowList` that are set in the parent, then `extraEnv`. Nothing else from the parent (B10): a secret in
 * the parent's environment never reaches a script.
 */
export function buildChildEnv(variables: Readonly<Record<string, string>>, options: ChildEnvOptions = {}): Record<string, string> {
  const parent = options.parentEnv ?? process.env;
  const env: Record<string, string> = {};
  for (const name of options.envAllowList ?? DEFAULT_ENV_ALLOW_LIST) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH = parent.PATH ?? DEFAULT_PATH;
  for (const [name, value] of Object.entries(variables)) env[name] = toChildEnvValue(value);
  if (options.extraEnv !== undefined) Object.assign(env, options.extraEnv);
  return env;
}

/** buildChildEnv(buildCgiVariables(request, options), options): the child's whole environment for a request. */
export function buildCgiEnv(request: CgiRequest, options: CgiEnvOptions): Record<string, string> {
  return buildChildEnv(buildCgiVariables(request, options), options);
}

/**
 * Converts a byte-string value for a child's environment, which Node encodes as UTF-8 (see the file comment):
 * ASCII as is; bytes that are valid UTF-8 as the text they encode, so the child gets exactly those bytes;
 * anything else unchanged (the child gets its UTF-8 encoding).
 */
export function toChildEnvValue(value: string): string {
  if (/^[\x00-\x7f]*$/.test(value) || /[^\x00-\xff]/.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : value;
}

/** This package's version (see src/version.ts). */
export const readTsgiVersion = readVersion;

/**
 * The first value of the request header `name` (lower case) in either shape CgiRequestHeaders takes, trimmed;
 * undefined when absent. (Not status.ts's findHeader, which reads the [name, value] pairs an app answered with.)
 */
export function findCgiRequestHeader(headers: CgiRequestHeaders | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    for (const [key, value] of headers as ReadonlyArray<readonly [string, string]>) if (key.toLowerCase() === name) return value.trim();
    return undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    return (typeof value === 'string' ? value : value[0])?.trim();
  }
  return undefined;
}

/** Groups headers by lower-cased name in first-seen order, joining repeats (§4.1.18, RFC 9110 §5.3). */
function collectHeaders(headers: CgiRequestHeaders | undefined): Map<string, string> {
  const pairs: Array<readonly [string, string]> = [];
  if (Array.isArray(headers)) {
    pairs.push(...(headers as ReadonlyArray<readonly [string, string]>));
  } else if (headers !== undefined) {
    for (const [name, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
      if (value === undefined) continue;
      for (const item of typeof value === 'string' ? [value] : value) pairs.push([name, item]);
    }
  }
  const grouped = new Map<string, string>();
  for (const [name, rawValue] of pairs) {
    const lower = name.toLowerCase();
    const value = toByteString(rawValue.replace(/^[ \t]+|[ \t]+$/g, ''));
    if (BAD_VALUE_RE.test(value)) throw new RequestError(`cgi-host: CR, LF or NUL in header ${name} (${describe(value)})`);
    const previous = grouped.get(lower);
    // Cookie pairs are separated by "; " (RFC 6265 §5.4); a comma would merge two cookies into one.
    grouped.set(lower, previous === undefined ? value : `${previous}${lower === 'cookie' ? '; ' : ', '}${value}`);
  }
  return grouped;
}

function splitTarget(url: string): { rawPath: string; query: string } {
  if (BAD_TARGET_RE.test(url)) throw new RequestError(`cgi-host: blank or control character in the URL (${describe(url)})`);
  const mark = url.indexOf('?');
  const rawPath = mark < 0 ? url : url.slice(0, mark);
  const query = mark < 0 ? '' : url.slice(mark + 1);
  if (rawPath !== '' && !rawPath.startsWith('/')) {
    throw new RequestError(`cgi-host: URL must be empty or start with "/" or "?" (${describe(url)})`);
  }
  return { rawPath, query: toByteString(query) };
}

function decodePathInfo(rawPath: string): string {
  if (/%2f/i.test(rawPath)) throw new RequestError(`cgi-host: encoded slash in the path (${describe(rawPath)})`, 404);
  const decoded = percentDecodeToByteString(toByteString(rawPath));
  if (decoded.includes('\0')) throw new RequestError(`cgi-host: encoded NUL in the path (${describe(rawPath)})`, 404);
  if (decoded.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new RequestError(`cgi-host: dot segment in the path (${describe(rawPath)})`, 404);
  }
  return decoded;
}

/** The host part of a Host header, or undefined when it is not a Host (environ/host.ts; T33: no userinfo). */
function hostnameOf(host: string | undefined): string | undefined {
  return host !== undefined && HOST_RE.test(host) ? hostWithoutPort(host) : undefined;
}

function describe(value: string): string {
  const short = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return /^[\x20-\x7e]*$/.test(short) ? short : JSON.stringify(short);
}
